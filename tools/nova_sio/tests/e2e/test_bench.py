# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The image backend choice of the cloud and the side-by-side benchmark.

Unit tests of the backends' configuration and ledger logic, of the
counters, medians, table and goals of the benchmark, and of the large
image; one live test (``NOVA_SIO_E2E=1``, see ``e2e/base.py``) boots a
server with ``images_type = qcow2`` on a real cloud and checks that the
bytes written reached the counters of the host's loop device.
"""

import configparser
import io
import os
import subprocess
import sys
from unittest import mock

import fixtures
from oslotest import base

from nova_sio.e2e import __main__ as e2e_main
from nova_sio.e2e import backends
from nova_sio.e2e import bench
from nova_sio.e2e import cleanup
from nova_sio.e2e import cloud as cloud_mod
from nova_sio.e2e import novaconf
from nova_sio.tests.e2e import base as e2e_base

MiB = 1024 ** 2


class ChoiceTest(base.BaseTestCase):

    def test_unknown_backend_and_zero_copy_of_a_local_one_are_refused(self):
        self.assertRaises(backends.BackendError, backends.check, 'rbd')
        exc = self.assertRaises(backends.BackendError, backends.check,
                                'qcow2', True)
        self.assertIn('sio backend only', exc.message)
        backends.check('sio', True)
        for name in backends.IMAGES_TYPES:
            backends.check(name)

    def test_libvirt_options(self):
        self.assertEqual({'images_type': 'qcow2'},
                         dict(backends.libvirt_options('qcow2', 'vg')))
        self.assertEqual({'images_type': 'lvm',
                          'images_volume_group': 'nsio_ab12_h1'},
                         dict(backends.libvirt_options('lvm',
                                                       'nsio_ab12_h1')))
        self.assertRaises(backends.BackendError, backends.libvirt_options,
                          'lvm')

    def test_zero_copy_and_block_migration(self):
        self.assertEqual({'zero_copy_boot': True},
                         backends.scaleio_options('sio', True))
        self.assertEqual({}, backends.scaleio_options('sio'))
        self.assertFalse(backends.block_migration('sio'))
        for name in ('qcow2', 'raw', 'flat', 'lvm'):
            self.assertTrue(backends.block_migration(name))
        self.assertEqual('sio-zero-copy', backends.label('sio', True))

    def test_volume_group_names_have_no_hyphen(self):
        name = backends.volume_group_name('0a1b2c', 'h2')
        self.assertEqual('nsio_0a1b2c_h2', name)
        self.assertNotIn('-', name)

    def test_set_options_replaces_in_place_and_adds_the_missing(self):
        text = ('[DEFAULT]\nimages_type = nope\n[libvirt]\nvirt_type = qemu\n'
                'images_type = sio\n\n[scaleio]\nx = 1\n')
        out = novaconf.set_options(text, 'libvirt', {
            'images_type': 'lvm', 'images_volume_group': 'vg1'})
        parser = configparser.ConfigParser()
        parser.read_string(out)
        self.assertEqual('lvm', parser['libvirt']['images_type'])
        self.assertEqual('vg1', parser['libvirt']['images_volume_group'])
        self.assertEqual('qemu', parser['libvirt']['virt_type'])
        self.assertEqual('nope', parser['DEFAULT']['images_type'])
        self.assertEqual(1, out.count('images_type = lvm'))
        self.assertNotIn('images_type = sio', out)

    def test_set_options_needs_exactly_one_section(self):
        self.assertRaises(novaconf.ConfError, novaconf.set_options,
                          '[DEFAULT]\n', 'libvirt', {'a': 1})
        self.assertRaises(novaconf.ConfError, novaconf.set_options,
                          '[libvirt]\n[libvirt]\n', 'libvirt', {'a': 1})
        self.assertRaises(novaconf.ConfError, novaconf.set_options,
                          '[libvirt]\n', 'libvirt', {'a': 'x\ny'})

    def test_run_refuses_zero_copy_of_qcow2_before_building(self):
        self.useFixture(fixtures.MockPatchObject(e2e_main.machine, 'check',
                                                 return_value=[]))
        build = self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.cloud.run_cloud')).mock
        err = io.StringIO()
        with mock.patch.object(sys, 'stderr', err), \
                mock.patch.object(e2e_main.cleanup, 'sweep', return_value={
                    'released': [], 'errors': [], 'live': []}):
            code = e2e_main.main(['run', '--images-type', 'qcow2',
                                  '--zero-copy', '--steps', 'boot'])
        self.assertEqual(2, code)
        self.assertIn('zero-copy boot is an option of the sio backend',
                      err.getvalue())
        build.assert_not_called()

    def test_cloud_refuses_an_unknown_backend(self):
        self.assertRaises(backends.BackendError, cloud_mod.Cloud, '34.0.0',
                          '/nonexistent', None, images_type='ploop')


class LvmConfTest(base.BaseTestCase):

    def test_only_the_hosts_loop_device_and_no_udev(self):
        text = backends.lvm_conf('h1', '/dev/loop7', '/w/h1/run-lvm')
        self.assertIn('filter = [ "a|^/dev/loop7$|", "r|.*|" ]', text)
        self.assertIn('global_filter = [ "a|^/dev/loop7$|", "r|.*|" ]',
                      text)
        for line in ('udev_sync = 0', 'udev_rules = 0',
                     'obtain_device_list_from_udev = 0',
                     'use_devicesfile = 0', 'monitoring = 0',
                     'locking_dir = "/w/h1/run-lvm/lock"'):
            self.assertIn(line, text)

    def test_quotes_are_refused(self):
        self.assertRaises(backends.BackendError, backends.lvm_conf, 'h1',
                          '/dev/loop"7', '/w')

    def test_device_mapper_missing_is_named(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        misc = os.path.join(tmp, 'misc')
        with open(misc, 'w') as handle:
            handle.write('237 loop-control\n232 kvm\n')
        control = os.path.join(tmp, 'control')
        # A control node that libdevmapper made does not count.
        with open(control, 'w'):
            pass
        reason = backends.dm_unavailable(misc, control)
        self.assertIn('no device-mapper', reason)
        with open(misc, 'a') as handle:
            handle.write('236 device-mapper\n')
        self.assertIsNone(backends.dm_unavailable(
            misc, os.path.join(tmp, 'control')))


class CountersTest(base.BaseTestCase):

    def test_sectors_are_512_bytes(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        os.makedirs(os.path.join(tmp, 'loop3'))
        with open(os.path.join(tmp, 'loop3', 'stat'), 'w') as handle:
            handle.write('  10 0 200 5  7 0 4096 9  0 1 2 0 0 0 0 0 0\n')
        self.assertEqual({'read_bytes': 200 * 512,
                          'write_bytes': 4096 * 512, 'write_ios': 7},
                         backends.device_counters('loop3', sys_block=tmp))

    def test_mount_source_is_the_deepest_mount(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        mounts = os.path.join(tmp, 'mounts')
        with open(mounts, 'w') as handle:
            handle.write('/dev/vda / ext4 rw 0 0\n'
                         '/dev/loop4 /var/tmp/run/gw/mnt xfs rw 0 0\n'
                         '/dev/loop5 /var/tmp/run/gw/mnt2 xfs rw 0 0\n')
        self.assertEqual('/dev/loop4', backends.mount_source(
            '/var/tmp/run/gw/mnt/storage', mounts))
        self.assertEqual('/dev/vda', backends.mount_source(
            '/var/tmp/run/gw/mnt3', mounts))


class FakeLedger(object):

    def __init__(self):
        self.released = []

    def release(self, record):
        self.released.append(record)


class FakeProc(object):

    def __init__(self, alive=True):
        self.alive = alive

    def poll(self):
        return None if self.alive else 0


class FakeHost(object):

    def __init__(self, workdir, alive=True):
        self.name = 'h1'
        self.workdir = workdir
        self.holder = FakeProc(alive)
        self.commands = []

    def run(self, argv):
        self.commands.append(argv)
        return subprocess.CompletedProcess(argv, 0, '')


class LocalStorageTest(base.BaseTestCase):

    def setUp(self):
        super(LocalStorageTest, self).setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def test_stop_unmounts_in_the_host_then_releases_newest_first(self):
        host = FakeHost(self.tmp)
        ledger = FakeLedger()
        storage = backends.LocalStorage(host, ledger, 'lvm', '/inst',
                                        volume_group='nsio_x_h1')
        storage._loop = {'kind': 'loop', 'device': '/dev/loop9'}
        storage._vg = {'kind': 'vg', 'name': 'nsio_x_h1'}
        self.assertEqual([], storage.stop())
        self.assertEqual(['vg', 'loop'], [r['kind'] for r in
                                          ledger.released])
        fs = backends.LocalStorage(host, ledger, 'qcow2', '/inst')
        fs._loop = {'kind': 'loop', 'device': '/dev/loop8'}
        fs._mounted = True
        fs.stop()
        self.assertEqual(['umount', '/inst'], host.commands[-1])

    def test_a_dead_host_took_its_mount_with_it(self):
        host = FakeHost(self.tmp, alive=False)
        ledger = FakeLedger()
        fs = backends.LocalStorage(host, ledger, 'raw', '/inst')
        fs._loop = {'kind': 'loop', 'device': '/dev/loop8'}
        fs._mounted = True
        self.assertEqual([], fs.stop())
        self.assertEqual([], host.commands)
        self.assertEqual(1, len(ledger.released))

    def test_nothing_is_made_where_the_backend_cannot_run(self):
        host = FakeHost(self.tmp)
        self.useFixture(fixtures.MockPatchObject(
            backends, 'unavailable', return_value='no device-mapper'))
        storage = backends.LocalStorage(host, FakeLedger(), 'lvm', '/inst',
                                        volume_group='vg')
        exc = self.assertRaises(backends.BackendError, storage.start)
        self.assertIn('no device-mapper', exc.message)
        self.assertEqual([], os.listdir(self.tmp))
        self.assertEqual([], host.commands)

    def test_vg_records_are_released_by_the_ledger(self):
        self.assertIn('vg', cleanup.KINDS)
        self.assertRaises(cleanup.CleanupError, cleanup._release,
                          {'kind': 'vg', 'name': 'a-b'})
        runs = []

        def fake_run(argv):
            runs.append(argv)
            if argv[:2] == ['dmsetup', 'ls']:
                return 0, ('nsio_ab_h1-uuid_disk\t(253:0)\n'
                           'nsio_ab_h10-x\t(253:1)\nother-lv\t(253:2)')
            return 0, ''
        self.useFixture(fixtures.MockPatchObject(cleanup, '_run', fake_run))
        self.useFixture(fixtures.MockPatch('shutil.which',
                                           return_value='/sbin/dmsetup'))
        self.assertTrue(cleanup._release({'kind': 'vg',
                                          'name': 'nsio_ab_h1'}))
        self.assertEqual([['dmsetup', 'ls'],
                          ['dmsetup', 'remove', '--retry',
                           'nsio_ab_h1-uuid_disk']], runs)


def boot(backend, image, phase, active, console, local=0, pool=0,
         error=None):
    sample = {'backend': backend, 'kind': 'boot', 'image': image,
              'phase': phase, 'active_s': active, 'console_s': console,
              'bytes': {'local-h1': {'write_bytes': local},
                        'pool': {'write_bytes': pool}}}
    if error:
        sample['error'] = error
    return sample


def migration(backend, seconds, mode='shared', written=0):
    return {'backend': backend, 'kind': 'migration', 'image': 'large',
            'mode': mode, 'seconds': seconds,
            'bytes': {'pool': {'write_bytes': written}}}


class FiguresTest(base.BaseTestCase):

    def test_median_ignores_missing_values(self):
        self.assertEqual(2, bench.median([3, None, 1, 2]))
        self.assertEqual(2.5, bench.median([1, 2, 3, 4]))
        self.assertIsNone(bench.median([None]))

    def test_delta_and_a_counter_that_went_down(self):
        before = {'pool': {'write_bytes': 100, 'read_bytes': 5}}
        after = {'pool': {'write_bytes': 612, 'read_bytes': 5},
                 'local-h1': {'write_bytes': 1}}
        self.assertEqual({'pool': {'write_bytes': 512, 'read_bytes': 0}},
                         bench.delta(before, after))
        self.assertRaises(bench.BenchError, bench.delta, after, before)

    def test_summary_separates_cold_and_warm_and_takes_medians(self):
        samples = [
            boot('qcow2', 'large', 'cold', 30.0, 40.0, local=1100 * MiB),
            boot('qcow2', 'large', 'warm', 9.0, 20.0, local=3 * MiB),
            boot('qcow2', 'large', 'warm', 11.0, 22.0, local=1 * MiB),
            boot('qcow2', 'large', 'warm', 10.0, 21.0, local=2 * MiB),
            boot('qcow2', 'large', 'warm', None, None, error='ERROR'),
            migration('qcow2', 50.0, 'block', 8 * MiB),
            migration('qcow2', 30.0, 'block', 4 * MiB),
            migration('qcow2', 40.0, 'block', 6 * MiB),
        ]
        summary = bench.summarize(samples)
        warm = summary['qcow2']['boot']['large']['warm']
        self.assertEqual(3, warm['runs'])
        self.assertEqual(['ERROR'], warm['errors'])
        self.assertEqual(10.0, warm['active_s'])
        self.assertEqual(21.0, warm['console_s'])
        self.assertEqual(2 * MiB, warm['write_bytes'])
        self.assertEqual({'local-h1': 2 * MiB, 'pool': 0},
                         warm['write_by_device'])
        cold = summary['qcow2']['boot']['large']['cold']
        self.assertEqual((1, 30.0, 1100 * MiB), (
            cold['runs'], cold['active_s'], cold['write_bytes']))
        mig = summary['qcow2']['migration']
        self.assertEqual((40.0, 50.0, 6 * MiB), (
            mig['seconds'], mig['first_s'], mig['write_bytes']))

    def test_spawn_time_is_read_from_the_compute_log(self):
        log = ('2026 INFO nova.compute.manager [req] [instance: '
               'aa-11] Took 2.51 seconds to spawn the instance on the '
               'hypervisor.\n'
               '2026 INFO nova.compute.manager [req] [instance: '
               'bb-22] Took 9.75 seconds to spawn the instance on the '
               'hypervisor.\n'
               '2026 INFO nova.compute.manager [req] [instance: '
               'aa-11] Took 3.01 seconds to build instance.\n')
        self.assertEqual(2.51, bench.spawn_seconds(log, 'aa-11'))
        self.assertEqual(9.75, bench.spawn_seconds(log, 'bb-22'))
        self.assertIsNone(bench.spawn_seconds(log, 'cc-33'))
        samples = [dict(boot('qcow2', 'small', 'warm', 1, 2), spawn_s=v)
                   for v in (3.0, 1.0, 2.0)]
        self.assertEqual(2.0, bench.summarize(samples)['qcow2']['boot'][
            'small']['warm']['spawn_s'])

    def test_written_adds_every_device(self):
        self.assertEqual(7, bench.written(boot('sio', 'small', 'warm', 1, 2,
                                               local=3, pool=4)))

    def test_table_rows_and_unavailable_backends(self):
        samples = [boot('sio', 'small', 'cold', 5.0, 12.0, pool=64 * MiB),
                   boot('sio', 'small', 'warm', 4.0, 11.0, pool=64 * MiB),
                   migration('sio', 2.0)]
        doc = bench.result(samples, {'lvm': 'no device-mapper'},
                           {'cores': 2, 'load_average': [0.5, 0.4, 0.3]},
                           [0.9, 0.5, 0.3], 1, '34.0.0')
        lines = bench.table(doc['summary'], doc['unavailable'])
        self.assertTrue(lines[0].startswith('backend'))
        row = [ln for ln in lines if ln.startswith('sio ')][0].split()
        self.assertEqual(['sio', 'small', '5.0', '12.0', '64', '4.0',
                          '11.0', '-', '64', '1'], row)
        self.assertIn('lvm: n/a: no device-mapper', lines)
        mig = [ln for ln in lines if ln.startswith('sio ')][1].split()
        self.assertEqual(['sio', 'shared', '2.0', '2.0', '0', '1'], mig)
        self.assertEqual([0.5, 0.4, 0.3],
                         doc['machine']['load_average_before'])
        self.assertEqual([0.9, 0.5, 0.3],
                         doc['machine']['load_average_after'])

    def _goals(self, zero_large, qcow2_large, sio_mig, qcow2_mig,
               zero_other=3.0, qcow2_other=25.0):
        samples = [
            boot('sio-zero-copy', 'small', 'warm', 4.0, 10.0),
            boot('sio-zero-copy', 'large', 'warm', zero_large, 10.0),
            boot('sio-zero-copy', 'large', 'other-host', zero_other, 9.0),
            boot('sio', 'large', 'warm', 14.0, 20.0),
            boot('qcow2', 'large', 'warm', qcow2_large, 12.0),
            boot('qcow2', 'large', 'other-host', qcow2_other, 30.0),
            migration('sio', sio_mig), migration('qcow2', qcow2_mig),
        ]
        return dict((g, (m, e)) for g, m, e in
                    bench.goals(bench.summarize(samples)))

    def test_goals_met(self):
        goals = self._goals(4.2, 6.0, 2.0, 13.0)
        self.assertEqual([True] * 5, [m for m, _e in goals.values()])

    def test_goals_not_met(self):
        goals = self._goals(8.0, 6.0, 2.0, 7.0, zero_other=26.0)
        self.assertEqual([False] * 5, [m for m, _e in goals.values()])
        evidence = goals['live migration faster than qcow2 block migration '
                         'by the image-copy time'][1]
        self.assertIn('image copy 6.0 s', evidence)
        evidence = goals['sio zero-copy ahead of every local backend '
                         '(large image)'][1]
        self.assertIn('fastest local qcow2 6.0 s', evidence)
        evidence = goals['sio zero-copy first boot on a further host ahead '
                         'of every local backend (large image)'][1]
        self.assertEqual('to ACTIVE on h2: zero-copy 26.0 s, fastest local '
                         'qcow2 25.0 s', evidence)

    def test_first_migration_goal_reads_the_first_sample(self):
        # qcow2's first migration fetched the image on its destination;
        # the next ones found it there.
        samples = [
            boot('sio-zero-copy', 'large', 'warm', 2.4, 9.0),
            boot('sio', 'large', 'warm', 5.8, 12.0),
            migration('sio', 6.4), migration('sio', 5.5),
            migration('sio', 4.5),
            migration('qcow2', 30.0), migration('qcow2', 5.4),
            migration('qcow2', 5.0),
        ]
        goals = dict((g, (m, e)) for g, m, e in
                     bench.goals(bench.summarize(samples)))
        met, evidence = goals['live migration to a host without the image '
                              'faster than qcow2 block migration by the '
                              'image-copy time']
        self.assertTrue(met)
        self.assertEqual('first migration: sio 6.4 s, qcow2 30.0 s, image '
                         'copy 3.4 s', evidence)
        met, evidence = goals['live migration faster than qcow2 block '
                              'migration by the image-copy time']
        self.assertFalse(met)
        self.assertIn('sio 5.5 s, qcow2 5.4 s', evidence)

    def test_other_host_goal_needs_its_figures(self):
        samples = [boot('sio-zero-copy', 'large', 'warm', 4.0, 10.0),
                   boot('qcow2', 'large', 'warm', 5.0, 10.0)]
        goals = dict((g, (m, e)) for g, m, e in
                     bench.goals(bench.summarize(samples)))
        self.assertEqual((None, 'figures missing'), goals[
            'sio zero-copy first boot on a further host ahead of every '
            'local backend (large image)'])

    def test_table_of_first_boots_on_the_other_host(self):
        samples = [boot('sio-zero-copy', 'large', 'other-host', 3.0, 9.0),
                   boot('qcow2', 'large', 'other-host', 25.0, 30.0,
                        local=1100 * MiB),
                   boot('qcow2', 'large', 'warm', 5.0, 10.0)]
        lines = bench.table(bench.summarize(samples))
        start = [i for i, ln in enumerate(lines)
                 if ln.startswith('backend  ') and 'first boot on h2' in ln]
        self.assertEqual(1, len(start))
        rows = [ln.split() for ln in lines[start[0] + 2:start[0] + 4]]
        self.assertEqual([['sio-zero-copy', 'large', '3.0', '9.0', '0'],
                          ['qcow2', 'large', '25.0', '30.0', '1100']], rows)
        # The h1 table shows no row for a backend with only h2 figures.
        self.assertFalse([ln for ln in lines[:start[0]]
                          if ln.startswith('sio-zero-copy')])

    def test_errors_are_listed_on_one_line(self):
        samples = [boot('lvm', 'small', 'cold', None, None,
                        error='went to ERROR: lvcreate\nExit code: 3'),
                   {'backend': 'lvm', 'kind': 'migration', 'image': 'large',
                    'error': 'no server to migrate', 'bytes': {}}]
        lines = bench.table(bench.summarize(samples))
        self.assertIn('lvm live migration failed: no server to migrate',
                      lines)
        self.assertIn('lvm small cold boot failed: went to ERROR: lvcreate '
                      '| Exit code: 3', lines)
        long_text = bench.one_line('x' * 1000, limit=100)
        self.assertEqual(100 - 1, len(long_text))

    def test_goals_unknown_without_figures(self):
        self.assertEqual([None] * 5,
                         [m for _g, m, _e in bench.goals({})])

    def test_machine_figures_from_proc(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(tmp, 'cpuinfo'), 'w') as handle:
            handle.write('processor\t: 0\nmodel name\t: Test CPU 9000\n')
        with open(os.path.join(tmp, 'meminfo'), 'w') as handle:
            handle.write('MemTotal:       2048 kB\n')
        with open(os.path.join(tmp, 'loadavg'), 'w') as handle:
            handle.write('1.50 0.75 0.25 1/100 42\n')
        figures = bench.machine_figures(tmp)
        self.assertEqual('Test CPU 9000', figures['cpu_model'])
        self.assertEqual(2048 * 1024, figures['memory_bytes'])
        self.assertEqual([1.5, 0.75, 0.25], figures['load_average'])
        self.assertEqual(os.cpu_count(), figures['cores'])


class LargeImageTest(base.BaseTestCase):

    def test_small_image_then_non_zero_deterministic_data(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        small = os.path.join(tmp, 'small.img')
        with open(small, 'wb') as handle:
            handle.truncate(2 * MiB)
            handle.seek(MiB)
            handle.write(b'NSIO-ROOT-IMAGE:x')
        large = os.path.join(tmp, 'large.img')
        self.assertEqual(5 * MiB, bench.make_large_image(small, large,
                                                         3 * MiB))
        with open(large, 'rb') as handle:
            data = handle.read()
        with open(small, 'rb') as handle:
            self.assertEqual(handle.read(), data[:2 * MiB])
        tail = data[2 * MiB:]
        self.assertNotIn(b'\0', tail)
        blocks = [tail[i:i + MiB] for i in range(0, len(tail), MiB)]
        self.assertEqual(3, len(set(blocks)))
        self.assertTrue(blocks[1].startswith(b'NSIO-BENCH-00000001'))
        again = os.path.join(tmp, 'again.img')
        bench.make_large_image(small, again, 3 * MiB)
        with open(again, 'rb') as handle:
            self.assertEqual(data, handle.read())

    def test_whole_mib_only(self):
        self.assertRaises(bench.BenchError, bench.make_large_image,
                          '/nonexistent', '/nonexistent2', MiB + 1)


class BackendOrderTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.host = mock.Mock()
        self.cloud = mock.Mock(images_type='qcow2', zero_copy=False,
                               hosts={'h2': self.host})
        self.host.run.return_value = mock.Mock(returncode=0, stdout='')
        self.runner = bench.Bench(self.cloud, ['qcow2'], runs=1,
                                  progress=lambda line: None)
        self.runner.current = ('qcow2', False)
        self.calls = []
        for name in ('measure_boot', 'measure_migrations'):
            self.useFixture(fixtures.MockPatchObject(
                self.runner, name, side_effect=(
                    lambda *a, _n=name: self.calls.append((_n,) + a))))
        self.host.run.side_effect = lambda argv, **kw: (
            self.calls.append(('run', tuple(argv))) or
            mock.Mock(returncode=0, stdout=''))

    def test_h2_cache_is_emptied_before_the_migrations(self):
        self.runner.run_backend('qcow2', 'qcow2', False)
        names = [c[0] for c in self.calls]
        self.assertEqual(['measure_boot'] * 6 + ['run', 'measure_migrations'],
                         names)
        self.assertEqual(('measure_boot', 'qcow2', 'large', 'other-host',
                          'h2'), self.calls[5])
        self.assertEqual(('find', '%s/_base' % cloud_mod.INSTANCES_PATH,
                          '-mindepth', '1', '-maxdepth', '1', '-type', 'f',
                          '-delete'), self.calls[6][1])

    def test_a_cache_that_cannot_be_emptied_stops_the_backend(self):
        self.host.run.side_effect = None
        self.host.run.return_value = mock.Mock(
            returncode=1, stdout='find: cannot delete\n')
        error = self.assertRaises(bench.BenchError, self.runner.run_backend,
                                  'qcow2', 'qcow2', False)
        self.assertIn('find: cannot delete', str(error))
        self.assertNotIn('measure_migrations', [c[0] for c in self.calls])


class LiveQcow2BootTest(base.BaseTestCase):
    """One qcow2 boot on the real cloud, its bytes counted at the host's
    loop device.
    """

    def test_qcow2_boot_bytes_are_counted(self):
        e2e_base.require_e2e(self, need_guest_kernel=True)
        if os.geteuid() != 0:
            self.fail('NOVA_SIO_E2E=1 but not root')
        lines = []
        ledger = cleanup.Ledger()
        self.addCleanup(ledger.release_all)
        workdir = cloud_mod.make_workdir(ledger)
        cloud = cloud_mod.Cloud(_default_version(), workdir, ledger,
                                progress=lines.append, images_type='qcow2')
        self.addCleanup(cloud.close)
        runner = bench.Bench(cloud, ['qcow2'], runs=1,
                             progress=lines.append)
        cloud.build()
        large = os.path.join(e2e_base.shared_dir(self), 'large.img')
        bench.make_large_image(cloud.guest.root_image, large, 8 * MiB)
        runner.prepare(large)
        sample = runner.measure_boot('qcow2', 'small', 'cold')
        self.assertNotIn('error', sample, '\n'.join(lines))
        image_size = os.path.getsize(cloud.guest.root_image)
        # The image was downloaded into _base on h1's own disk.
        self.assertGreaterEqual(sample['bytes']['local-h1']['write_bytes'],
                                image_size)
        self.assertGreater(sample['console_s'], 0)
        sys.stderr.write('qcow2 cold boot: ACTIVE %.1f s, console %.1f s, '
                         '%d bytes written on h1\n' % (
                             sample['active_s'], sample['console_s'],
                             sample['bytes']['local-h1']['write_bytes']))
        # Once h1's image cache is emptied the next boot fetches again.
        runner.drop_image_cache('h1')
        again = runner.measure_boot('qcow2', 'small', 'cold')
        self.assertNotIn('error', again, '\n'.join(lines))
        self.assertGreaterEqual(again['bytes']['local-h1']['write_bytes'],
                                image_size)


def _default_version():
    from nova_sio.e2e import controlplane
    return controlplane.DEFAULT_VERSION
