# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The loop-device SDC mode, the resource ledger and its sweep.

``LedgerTest`` and ``MachineCheckTest`` run everywhere. The tests that
attach loop devices and mount XFS run only with ``NOVA_SIO_E2E=1`` (see
``e2e/base.py``).
"""

import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import fixtures
from oslotest import base

import nova_sio
from nova_sio.e2e import cleanup
from nova_sio.e2e import machine
from nova_sio.emulator import blockdev
from nova_sio.emulator import fixture as emu_fixture
from nova_sio.tests.e2e import base as e2e_base
from nova_sio.tests import sio_base

GiB = 1024 ** 3
# The folder holding the nova_sio package, for the child interpreters.
TOOLS = os.path.dirname(os.path.dirname(os.path.abspath(nova_sio.__file__)))


def _child(code, *args):
    """Start a Python child running ``code``; wait for its first line."""
    env = dict(os.environ, PYTHONPATH=TOOLS)
    proc = subprocess.Popen([sys.executable, '-c', textwrap.dedent(code)] +
                            [str(a) for a in args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    if not line:
        raise AssertionError('child failed: %s' % proc.stderr.read())
    return proc, json.loads(line)


def _reap(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    proc.stdout.close()
    proc.stderr.close()


class LedgerTest(base.BaseTestCase):
    """A dead owner's resources are released by the next sweep."""

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.ledger_dir = os.path.join(self.dir, 'ledger')

    def test_sweep_releases_what_a_killed_owner_left(self):
        proc, made = _child('''
            import json, os, subprocess, sys, tempfile, time
            from nova_sio.e2e import cleanup
            ledger = cleanup.Ledger(sys.argv[1])
            scratch = tempfile.mkdtemp(dir=sys.argv[2])
            ledger.hold('dir', path=scratch)
            sleeper = subprocess.Popen(['sleep', '300'])
            ledger.hold('process', pid=sleeper.pid)
            print(json.dumps({'dir': scratch, 'pid': sleeper.pid}),
                  flush=True)
            time.sleep(300)
            ''', self.ledger_dir, self.dir)
        self.addCleanup(_reap, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        self.assertTrue(os.path.isdir(made['dir']))
        self.assertIsNotNone(cleanup.process_start_time(made['pid']))
        report = cleanup.sweep(self.ledger_dir)
        self.assertEqual([], report['errors'])
        self.assertEqual(['process', 'dir'],
                         [r['kind'] for r in report['released']])
        self.assertFalse(os.path.exists(made['dir']))
        # The orphaned sleep was re-parented; it is gone or a zombie.
        state = None
        try:
            with open('/proc/%d/stat' % made['pid']) as handle:
                state = handle.read().rsplit(')', 1)[1].split()[0]
        except FileNotFoundError:
            pass
        self.assertIn(state, (None, 'Z'))
        self.assertEqual([], os.listdir(self.ledger_dir))

    def test_sweep_leaves_live_owners_alone(self):
        ledger = cleanup.Ledger(self.ledger_dir)
        scratch = tempfile.mkdtemp(dir=self.dir)
        ledger.hold('dir', path=scratch)
        report = cleanup.sweep(self.ledger_dir)
        self.assertEqual([os.getpid()], report['live'])
        self.assertTrue(os.path.isdir(scratch))
        self.assertEqual([], ledger.release_all())
        self.assertFalse(os.path.exists(scratch))
        self.assertFalse(os.path.exists(ledger.path))

    def test_sweep_does_not_touch_a_reused_resource(self):
        sleeper = subprocess.Popen(['sleep', '300'])
        self.addCleanup(sleeper.wait)
        self.addCleanup(sleeper.kill)
        path = os.path.join(self.ledger_dir, '1.jsonl')
        os.makedirs(self.ledger_dir)
        with open(path, 'w') as handle:
            # A dead owner recorded this pid with another start time.
            for entry in ({'op': 'owner', 'pid': 2 ** 22 + 1,
                           'start_time': 1},
                          {'op': 'hold', 'kind': 'process',
                           'pid': sleeper.pid, 'start_time': 1}):
                handle.write(json.dumps(entry) + '\n')
        report = cleanup.sweep(self.ledger_dir)
        self.assertEqual(1, len(report['gone']))
        self.assertIsNone(sleeper.poll())

    def test_released_records_are_not_swept_again(self):
        ledger = cleanup.Ledger(self.ledger_dir)
        scratch = tempfile.mkdtemp(dir=self.dir)
        record = ledger.hold('dir', path=scratch)
        ledger.release(record)
        self.assertEqual([], ledger.held())
        owner, held = cleanup._read(ledger.path)
        self.assertEqual(os.getpid(), owner['pid'])
        self.assertEqual([], held)


class MachineCheckTest(base.BaseTestCase):
    """Missing tools are named with the package that provides them."""

    def test_missing_tools_name_their_packages(self):
        empty = self.useFixture(fixtures.TempDir()).path
        missing = machine.check(path=empty, need_guest_kernel=False)
        text = '\n'.join(str(m) for m in missing)
        self.assertIn('qemu-system-x86_64: not installed (Debian package '
                      'qemu-system-x86)', text)
        self.assertIn('mkfs.xfs: not installed (Debian package xfsprogs)',
                      text)
        packages = [m for m in missing if m.what == 'packages']
        self.assertEqual(1, len(packages))
        self.assertIn('libvirt-daemon-system', packages[0].fix)
        self.assertIn('tools/e2e-setup.sh', packages[0].fix)

    def test_cli_exits_2_and_lists_what_is_missing(self):
        empty = self.useFixture(fixtures.TempDir()).path
        env = dict(os.environ, PATH=empty, PYTHONPATH=TOOLS)
        proc = subprocess.run([sys.executable, '-m', 'nova_sio.e2e',
                               'check', '--no-guest-kernel'], env=env,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        out = proc.stdout.decode()
        self.assertEqual(2, proc.returncode, out)
        self.assertIn('missing:', out)
        self.assertIn('  - cpio: not installed (Debian package cpio)', out)
        self.assertEqual(b'', proc.stderr)

    def unprivileged(self, argv):
        """``argv`` run without root (in a user namespace if root)."""
        if os.geteuid() != 0:
            return argv
        probe = subprocess.run(['unshare', '--user', 'true'],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
        if probe.returncode:
            self.skipTest('cannot drop root to test the message: "unshare '
                          '--user true" failed: %s' % probe.stdout)
        return ['unshare', '--user'] + argv

    def test_without_root_the_cli_says_so(self):
        env = dict(os.environ, PYTHONPATH=TOOLS)
        proc = subprocess.run(self.unprivileged(
            [sys.executable, '-m', 'nova_sio.e2e', 'check',
             '--no-guest-kernel']), env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        self.assertEqual(2, proc.returncode)
        self.assertIn('  - root: the harness attaches loop devices',
                      proc.stdout.decode())
        self.assertEqual(b'', proc.stderr)

    def test_without_root_block_mode_fails_with_a_message(self):
        env = dict(os.environ, PYTHONPATH=TOOLS)
        proc = subprocess.run(self.unprivileged(
            [sys.executable, '-m', 'nova_sio.emulator', '--sdc-mode',
             'block']), env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(1, proc.returncode)
        self.assertEqual(b'nova-sio emulator: error: --sdc-mode block '
                         b'failed: '
                         b'loop devices need root: run it as root\n',
                         proc.stderr)

    def test_static_busybox_is_told_from_a_dynamic_binary(self):
        self.assertFalse(machine.is_static_elf(sys.executable))
        self.assertFalse(machine.is_static_elf(__file__))


class BlockDeviceTest(sio_base.TestCase):
    """Loop devices behind the by-id links (``NOVA_SIO_E2E=1``)."""

    def setUp(self):
        super().setUp()
        e2e_base.require_e2e(self)
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.ledger = cleanup.Ledger(os.path.join(self.dir, 'ledger'))
        self.addCleanup(self.assert_nothing_leaked)
        xfs = blockdev.ScratchXfs(self.ledger, size=4 * GiB,
                                  parent=self.dir)
        storage = xfs.__enter__()
        self.addCleanup(xfs.close)
        self.emu_fixture = self.useFixture(emu_fixture.EmulatorFixture(
            hosts=('host-a', 'host-b'), storage_dir=storage,
            simulator=functools.partial(blockdev.BlockDeviceSimulator,
                                        ledger=self.ledger)))
        self.emu = self.emu_fixture.emulator
        for host in ('host-a', 'host-b'):
            self.emu.set_host(host, device_delay=0)
        self.client = sio_base.EmulatorTestCase.make_client(self)
        self.pool = self.client.get_pool_id('pd1', 'sp1')

    def assert_nothing_leaked(self):
        self.assertEqual({}, e2e_base.loops_backed_under(self.dir))
        self.assertEqual([], e2e_base.mounts_under(self.dir))
        self.assertEqual([], self.ledger.held())

    sdc_id = sio_base.EmulatorTestCase.sdc_id
    device = sio_base.EmulatorTestCase.device

    def mapped_device(self, vol, host='host-a'):
        self.client.map_volume(vol, sdc_id=self.sdc_id(host))
        link = self.device(vol, host)
        self.assertTrue(sio_base.wait_until(lambda: os.path.exists(link)))
        return link

    def rescan(self, host):
        subprocess.check_call([self.emu_fixture.host(host)['drv_cfg'],
                               '--rescan'])

    def test_map_gives_a_loop_device_and_unmap_detaches_it(self):
        vol = self.client.create_volume('v1', 8, self.pool)
        link = self.mapped_device(vol)
        dev = os.path.realpath(link)
        self.assertRegex(dev, r'^/dev/loop\d+$')
        self.assertTrue(os.path.exists('/sys/block/%s/loop'
                                       % os.path.basename(dev)))
        marker = b'written through host-a'.ljust(4096, b'\0')
        fd = os.open(link, os.O_RDWR)
        try:
            os.pwrite(fd, marker, 1024 * 1024)
            os.fsync(fd)
        finally:
            os.close(fd)
        # Another host reads the same data through its own device.
        other = self.mapped_device(vol, 'host-b')
        self.assertNotEqual(dev, os.path.realpath(other))
        with open(other, 'rb') as handle:
            handle.seek(1024 * 1024)
            self.assertEqual(marker, handle.read(4096))
        backing = cleanup.loop_backing_file(dev)
        self.client.unmap_volume(vol, sdc_id=self.sdc_id())
        self.assertTrue(sio_base.wait_until(
            lambda: not os.path.lexists(link)))
        self.assertTrue(sio_base.wait_until(
            lambda: cleanup.loop_backing_file(dev) != backing))
        self.assertEqual({'host-b/%s' % vol: os.path.realpath(other)},
                         self.emu.storage_stats()['loop_devices'])
        self.client.unmap_volume(vol, sdc_id=self.sdc_id('host-b'))
        self.assertTrue(sio_base.wait_until(
            lambda: not self.emu.storage_stats()['loop_devices']))
        self.assertEqual([], self.emu.storage_stats()['unmapped_in_use'])

    def test_device_appears_after_the_delay(self):
        self.emu.set_host('host-a', device_delay=0.6)
        vol = self.client.create_volume('v1', 8, self.pool)
        began = time.monotonic()
        self.client.map_volume(vol, sdc_id=self.sdc_id())
        link = self.device(vol)
        self.assertFalse(os.path.lexists(link))
        self.assertTrue(sio_base.wait_until(lambda: os.path.exists(link)))
        self.assertGreaterEqual(time.monotonic() - began, 0.6)
        self.assertEqual(8 * GiB, blockdev.device_size(link))
        self.client.unmap_volume(vol, sdc_id=self.sdc_id())

    def test_grown_volume_shows_its_size_per_host_after_rescan(self):
        vol = self.client.create_volume('v1', 8, self.pool)
        link_a = self.mapped_device(vol)
        link_b = self.mapped_device(vol, 'host-b')
        self.client.extend_volume(vol, 16)
        self.assertEqual(8 * GiB, blockdev.device_size(link_a))
        self.assertEqual(8 * GiB, blockdev.device_size(link_b))
        self.rescan('host-a')
        self.assertEqual(16 * GiB, blockdev.device_size(link_a))
        self.assertEqual(8 * GiB, blockdev.device_size(link_b))
        self.rescan('host-b')
        self.assertEqual(16 * GiB, blockdev.device_size(link_b))
        for host in ('host-a', 'host-b'):
            self.client.unmap_volume(vol, sdc_id=self.sdc_id(host))

    def test_a_new_mapping_shows_the_current_size(self):
        vol = self.client.create_volume('v1', 8, self.pool)
        link_a = self.mapped_device(vol)
        self.client.extend_volume(vol, 16)
        # Unmapped: grows at once; a fresh mapping sees it, the host that
        # had it mapped still needs its rescan.
        link_b = self.mapped_device(vol, 'host-b')
        self.assertEqual(16 * GiB, blockdev.device_size(link_b))
        self.assertEqual(8 * GiB, blockdev.device_size(link_a))
        self.client.unmap_volume(vol, sdc_id=self.sdc_id())
        self.client.unmap_volume(vol, sdc_id=self.sdc_id('host-b'))
        self.client.extend_volume(vol, 24)
        link_a = self.mapped_device(vol)
        self.assertEqual(24 * GiB, blockdev.device_size(link_a))
        self.client.unmap_volume(vol, sdc_id=self.sdc_id())

    def test_unmap_of_an_open_device_is_recorded(self):
        vol = self.client.create_volume('v1', 8, self.pool)
        link = self.mapped_device(vol)
        dev = os.path.realpath(link)
        backing = cleanup.loop_backing_file(dev)
        holder = subprocess.Popen(['sh', '-c', 'exec 3<"$0"; echo ok; '
                                   'exec sleep 300', link],
                                  stdout=subprocess.PIPE)
        self.addCleanup(holder.wait)
        self.addCleanup(holder.kill)
        self.assertEqual(b'ok\n', holder.stdout.readline())
        holder.stdout.close()
        self.client.unmap_volume(vol, sdc_id=self.sdc_id())
        self.assertTrue(sio_base.wait_until(
            lambda: not os.path.lexists(link)))
        busy = self.emu.storage_stats()['unmapped_in_use']
        self.assertEqual([{'host': 'host-a', 'volume': vol, 'device': dev,
                           'pids': [holder.pid]}], busy)
        # Linux detaches a busy loop device on its last close.
        self.assertEqual(backing, cleanup.loop_backing_file(dev))
        holder.kill()
        holder.wait()
        self.assertTrue(sio_base.wait_until(
            lambda: cleanup.loop_backing_file(dev) != backing))

    def test_snapshot_is_a_reflink_clone_readable_through_its_device(self):
        vol = self.client.create_volume('v1', 8, self.pool)
        link = self.mapped_device(vol)
        with open(link, 'r+b') as handle:
            handle.seek(4096)
            handle.write(b'before the snapshot')
            handle.flush()
            os.fsync(handle.fileno())
        snap = self.client.snapshot_volume(vol, 'v1-snap')
        stats = self.emu.storage_stats()
        self.assertEqual('reflink', stats['clone_method'])
        self.assertEqual(1, stats['snapshots']['reflink'])
        self.assertEqual(0, stats['snapshot_bytes_copied'])
        snap_link = self.mapped_device(snap)
        with open(snap_link, 'rb') as handle:
            handle.seek(4096)
            self.assertEqual(b'before the snapshot', handle.read(19))
        for each in (vol, snap):
            self.client.unmap_volume(each, sdc_id=self.sdc_id())


class CrashCleanupTest(sio_base.TestCase):
    """Loop devices and mounts of a killed harness (``NOVA_SIO_E2E=1``)."""

    CHILD = '''
        import json, os, sys, time
        from nova_sio.e2e import cleanup
        from nova_sio.emulator import blockdev
        ledger = cleanup.Ledger(sys.argv[1])
        if sys.argv[3] == 'handlers':
            ledger.install_handlers()
        mnt = blockdev.ScratchXfs(ledger, size=1 << 30,
                                  parent=sys.argv[2]).__enter__()
        vol = os.path.join(mnt, 'vol.img')
        with open(vol, 'wb') as handle:
            handle.truncate(1 << 26)
        loop = blockdev.attach_loop(ledger, vol)
        print(json.dumps({'mount': mnt, 'loop': loop['device']}),
              flush=True)
        time.sleep(300)
        '''

    def setUp(self):
        super().setUp()
        e2e_base.require_e2e(self)
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.ledger_dir = os.path.join(self.dir, 'ledger')
        self.addCleanup(self.assert_nothing_leaked)
        # Whatever happens, do not leave this test's resources behind.
        self.addCleanup(cleanup.sweep, self.ledger_dir)

    def assert_nothing_leaked(self):
        self.assertEqual({}, e2e_base.loops_backed_under(self.dir))
        self.assertEqual([], e2e_base.mounts_under(self.dir))

    def start(self, mode):
        proc, made = _child(self.CHILD, self.ledger_dir, self.dir, mode)
        self.addCleanup(_reap, proc)
        self.assertTrue(cleanup.mounted(made['mount']))
        self.assertIn(made['loop'], e2e_base.loops_backed_under(self.dir))
        return proc, made

    def test_sweep_after_kill_9_removes_loop_devices_and_mounts(self):
        proc, made = self.start('plain')
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # The kill left everything in place ...
        self.assertTrue(cleanup.mounted(made['mount']))
        self.assertEqual(3, len(e2e_base.loops_backed_under(self.dir)) +
                         len(e2e_base.mounts_under(self.dir)))
        report = cleanup.sweep(self.ledger_dir)
        # ... and the next start's sweep removes it, newest first.
        self.assertEqual([], report['errors'])
        self.assertEqual(['loop', 'mount', 'loop', 'dir'],
                         [r['kind'] for r in report['released']])
        self.assertEqual([], os.listdir(self.ledger_dir))

    def test_sigterm_releases_without_a_sweep(self):
        proc, made = self.start('handlers')
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(128 + signal.SIGTERM, proc.wait(timeout=30))
        self.assertEqual({}, e2e_base.loops_backed_under(self.dir))
        self.assertFalse(cleanup.mounted(made['mount']))
        self.assertEqual([], os.listdir(self.ledger_dir))

    def test_sigint_releases_without_a_sweep(self):
        proc, made = self.start('handlers')
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        self.assertEqual({}, e2e_base.loops_backed_under(self.dir))
        self.assertFalse(cleanup.mounted(made['mount']))
        self.assertEqual([], os.listdir(self.ledger_dir))


class EmulatorProcessTest(sio_base.TestCase):
    """``nova-sio emulator --sdc-mode block`` (``NOVA_SIO_E2E=1``)."""

    def setUp(self):
        super().setUp()
        e2e_base.require_e2e(self)
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.ledger_dir = os.path.join(self.dir, 'ledger')
        self.useFixture(fixtures.EnvironmentVariable(
            'NOVA_SIO_E2E_LEDGER', self.ledger_dir))
        self.addCleanup(self.assert_nothing_leaked)
        self.addCleanup(cleanup.sweep, self.ledger_dir)
        # The storage belongs to this test, the loop devices of the
        # volumes to the emulator process.
        own = cleanup.Ledger(os.path.join(self.dir, 'own'))
        xfs = blockdev.ScratchXfs(own, size=2 * GiB, parent=self.dir)
        self.storage = xfs.__enter__()
        self.addCleanup(xfs.close)

    def assert_nothing_leaked(self):
        self.assertEqual({}, e2e_base.loops_backed_under(self.dir))
        self.assertEqual([], e2e_base.mounts_under(self.dir))

    def start(self):
        env = dict(os.environ, PYTHONPATH=TOOLS)
        proc = subprocess.Popen(
            [sys.executable, '-m', 'nova_sio.emulator', '--sdc-mode',
             'block', '--storage-dir', self.storage, '--device-delay', '0',
             '--state-dir', os.path.join(self.dir, 'state')],
            env=env, stdout=subprocess.PIPE)
        self.addCleanup(_reap_quiet, proc)
        info = json.loads(proc.stdout.readline())
        client = sio_base.client_mod.Client(
            host=info['host'], port=info['port'], scheme=info['scheme'],
            username=info['username'], password=info['password'],
            connect_timeout=5, read_timeout=10, retry_interval=0.01)
        self.addCleanup(client.session.close)
        vol = client.create_volume('v1', 8, client.get_pool_id('pd1',
                                                               'sp1'))
        client.map_volume(vol, sdc_id=info['hosts']['host-a']['sdc_id'])
        link = os.path.join(info['hosts']['host-a']['device_root'],
                            'emc-vol-%s-%s' % (info['system_id'], vol))
        self.assertTrue(sio_base.wait_until(lambda: os.path.exists(link)))
        self.assertRegex(os.path.realpath(link), r'^/dev/loop\d+$')
        return proc

    def test_killed_emulator_leaves_what_the_next_start_sweeps(self):
        proc = self.start()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        self.assertEqual(1, len(e2e_base.loops_backed_under(self.storage)))
        # The next emulator in block mode sweeps before it starts.
        self.start().terminate()
        self.assertTrue(sio_base.wait_until(
            lambda: not e2e_base.loops_backed_under(self.storage),
            timeout=10))

    def test_sigterm_detaches_the_loop_devices(self):
        proc = self.start()
        proc.terminate()
        self.assertEqual(0, proc.wait(timeout=30))
        self.assertEqual({}, e2e_base.loops_backed_under(self.storage))


def _reap_quiet(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()
    proc.stdout.close()
