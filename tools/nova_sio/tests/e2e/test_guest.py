# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The offline-built guest boots on emulated ScaleIO volumes.

Real QEMU (TCG) and real libvirt, three volumes of the loop-device SDC
mode as its root, ephemeral and swap disks. Runs only with
``NOVA_SIO_E2E=1`` (see ``e2e/base.py``); boot times go to stderr.
"""

import functools
import os
import shutil
import socket
import subprocess
import sys
import time
from xml.etree import ElementTree

import testtools

from nova_sio.e2e import guest as guest_mod
from nova_sio.emulator import blockdev
from nova_sio.emulator import fixture as emu_fixture
from nova_sio.tests.e2e import base as e2e_base
from nova_sio.tests import sio_base

GiB = 1024 ** 3
ROLES = ('root', 'ephemeral', 'swap')
LIBVIRT_SOCKET = '/run/libvirt/libvirt-sock'


class GuestOnVolumesTest(e2e_base.LiveTestCase):
    """Boots the guest with three emulated volumes as its disks."""

    TIMEOUT = 300
    GUEST = True

    def setUp(self):
        super().setUp()
        xfs = blockdev.ScratchXfs(self.ledger, size=4 * GiB,
                                  parent=self.dir)
        storage = xfs.__enter__()
        self.addCleanup(xfs.close)
        # The by-id links too (a temporary state directory is private).
        self.emu_fixture = self.useFixture(emu_fixture.EmulatorFixture(
            state_dir=os.path.join(self.dir, 'emulator'),
            storage_dir=storage, simulator=functools.partial(
                blockdev.BlockDeviceSimulator, ledger=self.ledger)))
        self.emu = self.emu_fixture.emulator
        self.emu.set_host('host-a', device_delay=0.2)
        self.client = sio_base.EmulatorTestCase.make_client(self)
        pool = self.client.get_pool_id('pd1', 'sp1')
        self.volumes = [self.client.create_volume('e2e-%s' % role, 8, pool)
                        for role in ROLES]
        sdc_id = self.emu_fixture.host()['sdc_id']
        self.links = []
        for vol in self.volumes:
            self.client.map_volume(vol, sdc_id=sdc_id)
            self.addCleanup(self.client.unmap_volume, vol, sdc_id=sdc_id)
            self.links.append(sio_base.EmulatorTestCase.device(self, vol))
        for link in self.links:
            self.assertTrue(sio_base.wait_until(
                lambda: os.path.exists(link)))
        # What Nova does: the image on the root disk, mkswap on swap.
        with open(self.guest.root_image, 'rb') as src, \
                open(self.links[0], 'r+b') as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        subprocess.run(['mkswap', self.links[2]], check=True,
                       stdout=subprocess.DEVNULL)

    def ledger_at_end(self):
        """Nothing is left: the test's clean-ups released it all."""
        self.assertEqual({}, e2e_base.loops_backed_under(self.dir))
        self.assertEqual([], e2e_base.mounts_under(self.dir))
        self.assertEqual([], self.ledger.held())

    def check_console(self, parsed, before):
        """Assert one boot's report; ``before``: role -> expected."""
        self.assertEqual([], parsed['errors'])
        self.assertEqual(self.guest.info['release'],
                         parsed['booted']['kernel'])
        self.assertEqual(self.guest.info['root_marker'],
                         parsed['root_image'])
        boot_id = parsed['booted']['boot_id']
        for dev, role in zip(('vda', 'vdb', 'vdc'), ROLES):
            fields = parsed['disks'][dev]
            self.assertEqual(role, fields['role'])
            self.assertEqual(str(8 * GiB), fields['size'])
            self.assertEqual(before[role], fields['before'])
            self.assertEqual('NSIO-DATA:%s:%s' % (role, boot_id),
                             fields['wrote'])
            self.assertEqual('ok', fields['readback'])
        self.assertEqual({'signature': 'ok', 'swapon': 'ok'},
                         parsed['swap']['vdc'])
        counters = parsed['counters']
        self.assertEqual(list(range(len(counters))),
                         [n for n, _b in counters])
        self.assertEqual({boot_id}, set(b for _n, b in counters))
        return boot_id

    def written(self):
        """The data markers on the volumes, read by the host."""
        return dict((role, guest_mod.read_marker(link))
                    for role, link in zip(ROLES, self.links))

    def boot_qemu(self, console):
        began = time.monotonic()
        proc = subprocess.Popen(
            guest_mod.qemu_argv(self.guest, self.links, console),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        record = self.ledger.hold('process', pid=proc.pid)
        try:
            parsed, _text = guest_mod.wait_console(
                console, lambda c: c['ready'], 120, proc)
            ready = time.monotonic() - began
            parsed, _text = guest_mod.wait_console(
                console, lambda c: len(c['counters']) >= 3, 30, proc)
        finally:
            self.ledger.release(record)
            proc.wait()
            proc.stdout.close()
        return parsed, ready

    def test_guest_boots_on_loop_devices_under_qemu_tcg(self):
        first, ready = self.boot_qemu(os.path.join(self.dir, 'boot1.log'))
        sys.stderr.write('\nguest boot to READY under TCG: %.1f s\n'
                         % ready)
        boot_id = self.check_console(first, dict.fromkeys(ROLES, '-'))
        # The guest's writes reached the volumes.
        self.assertEqual(dict((r, 'NSIO-DATA:%s:%s' % (r, boot_id))
                              for r in ROLES), self.written())
        # A second boot finds them: another guest, the same data.
        second, _ready = self.boot_qemu(os.path.join(self.dir,
                                                     'boot2.log'))
        self.assertNotEqual(boot_id, second['booted']['boot_id'])
        self.check_console(second, dict(
            (r, 'NSIO-DATA:%s:%s' % (r, boot_id)) for r in ROLES))
        self.assertEqual([], self.emu.storage_stats()['unmapped_in_use'])

    def start_libvirtd(self):
        """Start virtlogd and libvirtd by hand unless libvirtd runs."""
        if _listening(LIBVIRT_SOCKET):
            return
        began = time.monotonic()
        for daemon in ('virtlogd', 'libvirtd'):
            proc = subprocess.Popen([daemon], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            record = self.ledger.hold('process', pid=proc.pid)
            self.addCleanup(proc.wait)
            self.addCleanup(self.ledger.release, record)
        self.assertTrue(sio_base.wait_until(
            lambda: _listening(LIBVIRT_SOCKET), timeout=30),
            'libvirtd did not listen on %s' % LIBVIRT_SOCKET)
        sys.stderr.write('\nlibvirtd listening after %.1f s\n' % (
            time.monotonic() - began))

    def virsh(self, *args):
        proc = subprocess.run(['virsh', '-c', 'qemu:///system'] +
                              list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        self.assertEqual(0, proc.returncode, proc.stdout.decode())
        return proc.stdout.decode()

    def test_guest_boots_through_libvirt_with_block_disks(self):
        self.start_libvirtd()
        name = 'nova-sio-e2e-%d' % os.getpid()
        console = os.path.join(self.dir, 'console.log')
        xml = os.path.join(self.dir, 'domain.xml')
        with open(xml, 'w') as handle:
            handle.write(e2e_base.domain_xml(
                name, self.guest.kernel, self.guest.initrd,
                'console=ttyS0 panic=-1 loglevel=3', list(zip(
                    self.links, ('vda', 'vdb', 'vdc'))), console))
        # Copies the test can expose to QEMU's user.
        for attr in ('kernel', 'initrd'):
            path = os.path.join(self.dir, os.path.basename(
                getattr(self.guest, attr)))
            shutil.copyfile(getattr(self.guest, attr), path)
        with open(xml) as handle:
            text = handle.read()
        text = text.replace(self.guest.kernel, os.path.join(
            self.dir, 'vmlinuz')).replace(self.guest.initrd, os.path.join(
                self.dir, 'initrd.img'))
        with open(xml, 'w') as handle:
            handle.write(text)
        self.virsh('define', xml)
        self.addCleanup(self.virsh, 'undefine', name)
        began = time.monotonic()
        self.virsh('start', name)
        try:
            guest_mod.wait_console(console, lambda c: c['ready'], 120)
            ready = time.monotonic() - began
            parsed, _text = guest_mod.wait_console(
                console, lambda c: len(c['counters']) >= 3, 30)
            blk = self.virsh('domblklist', name)
        finally:
            self.virsh('destroy', name)
        sys.stderr.write('\nguest boot to READY through libvirt: %.1f s\n'
                         % ready)
        boot_id = self.check_console(parsed, dict.fromkeys(ROLES, '-'))
        for link in self.links:
            self.assertIn(link, blk)
        self.assertEqual(dict((r, 'NSIO-DATA:%s:%s' % (r, boot_id))
                              for r in ROLES), self.written())


def _listening(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        return True
    except OSError:
        return False
    finally:
        sock.close()


class DomainXmlTest(testtools.TestCase):

    def test_disks_console_and_cmdline(self):
        dom = ElementTree.fromstring(e2e_base.domain_xml(
            'g1', '/k', '/i', 'console=ttyS0 x=1',
            [('/dev/a', 'vda'), ('/dev/b', 'vdb')], '/c.log', append=True))
        self.assertEqual('g1', dom.findtext('name'))
        self.assertEqual('console=ttyS0 x=1', dom.findtext('os/cmdline'))
        self.assertEqual([('/dev/a', 'vda'), ('/dev/b', 'vdb')], [
            (d.find('source').get('dev'), d.find('target').get('dev'))
            for d in dom.findall('devices/disk')])
        source = dom.find('devices/serial/source')
        self.assertEqual(('/c.log', 'on'),
                         (source.get('path'), source.get('append')))
        plain = ElementTree.fromstring(e2e_base.domain_xml(
            'g1', '/k', '/i', 'c', [], '/c.log'))
        self.assertIsNone(plain.find('devices/serial/source').get('append'))
