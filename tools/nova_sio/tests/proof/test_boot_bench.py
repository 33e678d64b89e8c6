# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The boot benchmark: measured bytes, leaks and targets decide its exit.

The end-to-end case boots through Nova (``Sio.cache``) in the Nova
34.0.0 test virtualenv that ``nova-sio test 34.0.0`` builds; it is
skipped, with that reason, where there is none.
"""

import copy
import json
import os
import tempfile

import fixtures

from nova_sio.emulator import server
from nova_sio import paths
from nova_sio.proof import boot_bench
from nova_sio.tests import sio_base

MiB = 1024 * 1024
# Found before the tests' temporary HOME hides it.
CACHE = paths.cache_dir()
NOVA_PYTHON = boot_bench.nova_python(build=False)[0]


class LeftoversTest(sio_base.TestCase):
    """What a run leaves behind is found, and fails the run."""

    def setUp(self):
        super().setUp()
        self.emu = server.Emulator(hosts=(boot_bench.HOST,)).start()
        self.addCleanup(self.emu.stop)
        self.instances = self.useFixture(fixtures.TempDir()).path
        self.cached = os.path.join(self.instances, '_base', 'image')
        os.makedirs(os.path.dirname(self.cached))
        open(self.cached, 'wb').close()
        os.makedirs(os.path.join(self.instances, 'locks'))
        open(os.path.join(self.instances, 'locks', 'nova-image'),
             'wb').close()

    def _found(self):
        return boot_bench.leftovers(self.emu, self.instances, self.cached)

    def _result(self, leaks):
        run = {'bytes': 0, 'qemu_img_io_bytes': 0, 'seconds': 0.1,
               'snapshot_call_seconds': 0.0, 'device_waits': [0.05]}
        return {'image_gb': 1, 'image_data_bytes': MiB,
                'path': boot_bench.PATHS[1], 'boots': 1,
                'device_delay': 0.05, 'runs': [run], 'first': run,
                'last': run, 'snapshots': {}, 'leaks': leaks}

    def test_clean_run(self):
        found = self._found()
        self.assertEqual({}, dict((k, v) for k, v in found.items() if v))
        self.assertEqual(0, boot_bench.status([self._result(found)], []))

    def test_volume_mapping_device_backing_file_and_file_left(self):
        info = self.emu.info()
        client = sio_base.client_mod.Client(
            info['host'], info['username'], info['password'],
            port=info['port'], scheme=info['scheme'])
        self.addCleanup(client.close)
        volume_id = client.create_volume(
            'left-behind', 8, client.get_pool_id('pd1', 'sp1'))
        host = info['hosts'][boot_bench.HOST]
        client.map_volume(volume_id, sdc_id=host['sdc_id'])
        link = os.path.join(host['device_root'], 'emc-vol-%s-%s' % (
            info['system_id'], volume_id))
        self.assertTrue(sio_base.wait_until(
            lambda: os.path.lexists(link)))
        with open(link, 'r+b') as handle:
            handle.write(b'x' * 4096)
        open(os.path.join(self.instances, 'disk.info'), 'wb').close()
        found = self._found()
        self.assertEqual([volume_id],
                         [v['id'] for v in found['leaked_volumes']])
        self.assertEqual([volume_id],
                         [m['volumeId'] for m in found['stray_mappings']])
        self.assertEqual([volume_id], found['backing_files'])
        self.assertEqual(['disk.info'], found['instance_files'])
        self.assertEqual(1, boot_bench.status([self._result(found)], []))
        # A device link without its mapping is a leak too.
        client.unmap_volume(volume_id, sdc_id=host['sdc_id'])
        self.assertTrue(sio_base.wait_until(
            lambda: not os.path.lexists(link)))
        os.symlink(self.cached, link)
        self.assertEqual(1, len(self._found()['stray_devices']))


class BootThroughNovaTest(sio_base.TestCase):
    """A real run: Sio.cache in Nova against the emulator."""

    def setUp(self):
        super().setUp()
        if NOVA_PYTHON is None:
            self.skipTest('no Nova %s test virtualenv; "nova-sio test %s" '
                          'builds it' % ((boot_bench.NOVA_VERSION,) * 2))
        self.useFixture(fixtures.EnvironmentVariable('NOVA_SIO_CACHE',
                                                     CACHE))
        self.workdir = self.useFixture(fixtures.TempDir()).path
        self.report = os.path.join(self.workdir, 'bench.json')

    def _main(self, *argv):
        with fixtures.MonkeyPatch('sys.stdout', open(os.devnull, 'w')):
            return boot_bench.main(list(argv))

    def test_figures_leaks_and_targets(self):
        self.assertEqual(0, self._main(
            '--sizes', '1', '2', '--boots', '2', '--data-percent', '0.5',
            '--json', self.report))
        with open(self.report) as handle:
            report = json.load(handle)
        results = report['results']
        self.assertEqual(4, len(results))
        for r in results:
            data = r['image_data_bytes']
            self.assertEqual(r['image_gb'] * 1024 * 5, data // 1024)
            # Boot 1 writes the image's data, measured at the storage.
            self.assertEqual(data, r['first']['bytes'], r['path'])
            self.assertGreaterEqual(r['first']['qemu_img_io_bytes'], data)
            if r['path'] == 'full copy':
                self.assertEqual(data, r['last']['bytes'])
            else:
                self.assertEqual(0, r['last']['bytes'])
                self.assertEqual(0, r['last']['qemu_img_io_bytes'])
            self.assertEqual({}, boot_bench.leaked(r))
            for run in r['runs']:
                self.assertTrue(run['device_waits'])
        self.assertTrue(all(t['met'] for t in report['targets']))
        # Checked again: the same figures pass...
        self.assertEqual(0, self._main('--results', self.report))
        # ... a target they miss fails the run ...
        self.assertEqual(1, self._main('--results', self.report,
                                       '--max-bootn-seconds', '0.000001'))
        self.assertEqual(1, self._main('--results', self.report,
                                       '--max-ratio', '0.001',
                                       '--slack', '0'))
        # ... and so does one leaked volume.
        leaky = copy.deepcopy(report)
        leaky['results'][-1]['leaks']['leaked_volumes'] = [
            {'id': 'feed00000001', 'name': 'left-behind'}]
        handle, path = tempfile.mkstemp(dir=self.workdir, suffix='.json')
        with os.fdopen(handle, 'w') as out:
            json.dump(leaky, out)
        self.assertEqual(1, self._main('--results', path))

    def test_missed_target_on_a_live_run(self):
        self.assertEqual(1, self._main(
            '--sizes', '1', '--boots', '2', '--data-percent', '0.2',
            '--max-bootn-seconds', '0.000001', '--json', self.report))
        with open(self.report) as handle:
            report = json.load(handle)
        self.assertEqual([True, False],
                         [t['met'] for t in report['targets']])
        self.assertEqual([{}, {}], [boot_bench.leaked(r)
                                    for r in report['results']])


class TargetsTest(sio_base.TestCase):
    """The targets look at every zero-copy boot after the first."""

    def _zero_copy(self, size_gb, runs):
        runs = [{'bytes': b, 'seconds': s} for b, s in runs]
        return {'image_gb': size_gb, 'path': boot_bench.PATHS[1],
                'boots': len(runs), 'runs': runs, 'first': runs[0],
                'last': runs[-1], 'leaks': {}}

    def test_a_write_in_any_later_boot_misses(self):
        result = self._zero_copy(1, [(MiB, 1.0), (0, 0.3), (4096, 0.3),
                                     (0, 0.3)])
        checks = boot_bench.targets([result])
        self.assertEqual([False], [met for met, _line in checks])
        self.assertIn('boots 2..4, 1 GiB image: at most 4096 bytes',
                      checks[0][1])
        self.assertEqual(1, boot_bench.status([result], checks))

    def test_time_targets_take_the_median(self):
        small = self._zero_copy(1, [(MiB, 1.0), (0, 0.3), (0, 0.4),
                                    (0, 0.3)])
        large = self._zero_copy(10, [(10 * MiB, 9.0), (0, 0.4), (0, 5.0),
                                     (0, 0.4)])
        checks = boot_bench.targets([small, large], max_bootn_seconds=0.4)
        self.assertEqual([True] * 5, [met for met, _line in checks])
        self.assertIn('median 0.300 s vs 0.400 s (x1.33', checks[-1][1])
        checks = boot_bench.targets([small, large], max_ratio=1.2,
                                    slack=0.0, max_bootn_seconds=0.35)
        self.assertEqual([True, True, True, False, False],
                         [met for met, _line in checks])
