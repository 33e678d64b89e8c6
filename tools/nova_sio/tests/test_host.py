# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Host side helpers: SDC GUID, drv_cfg parsing, device waits."""

import os
import threading
import time

import fixtures

from nova_sio.tests import sio_base

host = sio_base.host_mod
exception = sio_base.exception

GUID = 'b0e3bfb8-c20b-43bf-93c8-13339e85aa50'


class Recorder(object):
    """Executor recording argv lists; answers from a table."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, *argv):
        self.calls.append(argv)
        answer = self.answers[argv[0]]
        if isinstance(answer, Exception):
            raise answer
        return answer, ''


class GuidTest(sio_base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.first = os.path.join(self.tmp, 'opt-drv_cfg')
        self.second = os.path.join(self.tmp, 'bin-drv_cfg')

    def touch(self, path):
        open(path, 'w').close()

    def test_known_paths_are_both_probed(self):
        self.assertEqual(('/opt/emc/scaleio/sdc/bin/drv_cfg',
                          '/bin/emc/scaleio/drv_cfg'), host.DRV_CFG_PATHS)

    def test_config_guid_wins_in_any_case(self):
        run = Recorder({})
        self.assertEqual(GUID.upper(), host.get_sdc_guid(
            '  %s\n' % GUID, execute=run))
        self.assertEqual(GUID.upper(), host.get_sdc_guid(GUID.upper()))
        self.assertEqual([], run.calls)

    def test_bad_config_guid_names_option(self):
        exc = self.assertRaises(exception.InvalidConfig,
                                host.get_sdc_guid, 'not-a-guid')
        self.assertIn('default_sdcguid', str(exc))

    def test_first_existing_path_with_argument_list(self):
        self.touch(self.second)
        run = Recorder({self.second: GUID.lower() + '\n'})
        guid = host.get_sdc_guid(execute=run,
                                 candidates=(self.first, self.second))
        self.assertEqual(GUID.upper(), guid)
        self.assertEqual([(self.second, '--query_guid')], run.calls)

    def test_falls_back_to_second_path_when_first_fails(self):
        self.touch(self.first)
        self.touch(self.second)
        run = Recorder({self.first: OSError('boom'),
                        self.second: 'Some banner\n%s\n' % GUID.upper()})
        guid = host.get_sdc_guid(execute=run,
                                 candidates=(self.first, self.second))
        self.assertEqual(GUID.upper(), guid)
        self.assertEqual(2, len(run.calls))

    def test_override_path_is_used_alone(self):
        run = Recorder({'/custom/drv_cfg': GUID})
        self.assertEqual(GUID.upper(), host.get_sdc_guid(
            drv_cfg_path='/custom/drv_cfg', execute=run,
            candidates=(self.first,)))
        self.assertEqual([('/custom/drv_cfg', '--query_guid')], run.calls)

    def test_no_drv_cfg(self):
        exc = self.assertRaises(exception.SdcGuidUnavailable,
                                host.get_sdc_guid,
                                candidates=(self.first, self.second))
        self.assertIn(self.first, str(exc))
        self.assertIn('default_sdcguid', str(exc))

    def test_all_fail_or_no_guid(self):
        self.touch(self.first)
        run = Recorder({self.first: OSError('permission denied')})
        exc = self.assertRaises(exception.SdcGuidUnavailable,
                                host.get_sdc_guid, execute=run,
                                candidates=(self.first,))
        self.assertIn('permission denied', str(exc))
        run = Recorder({self.first: 'nothing here\n'})
        self.assertRaises(exception.SdcGuidUnavailable, host.get_sdc_guid,
                          execute=run, candidates=(self.first,))

    def test_parsers(self):
        self.touch(self.first)
        out = ('Retrieved 2 volume(s)\n'
               'VOL-ID 6c33633100000009 MDM-ID 218ce1797566a00f\n'
               'VOL-ID 6C3363310000000A MDM-ID 218ce1797566a00f\n')
        run = Recorder({self.first: out})
        self.assertEqual([('6c33633100000009', '218ce1797566a00f'),
                          ('6c3363310000000a', '218ce1797566a00f')],
                         host.query_mapped_volumes(
                             execute=run, candidates=(self.first,)))
        out = ('Retrieved 1 mdm(s)\nMDM-ID 218ce1797566a00f SDC ID '
               'd7ea4b1a00000002 INSTALLATION ID 1 IPs [0]-10.0.0.1\n')
        run = Recorder({self.first: out})
        self.assertEqual({'218ce1797566a00f': 'd7ea4b1a00000002'},
                         host.query_sdc_ids(execute=run,
                                            candidates=(self.first,)))
        run = Recorder({self.first: 'Retrieved 0 volume(s)\n'})
        self.assertEqual([], host.query_mapped_volumes(
            execute=run, candidates=(self.first,)))

    def test_default_execute_failure(self):
        exc = self.assertRaises(exception.CommandFailed,
                                host.default_execute, 'sh', '-c',
                                'echo oops >&2; exit 3')
        self.assertEqual(3, exc.kwargs['code'])
        self.assertIn('oops', str(exc))

    def test_default_execute_takes_no_shell(self):
        out, _ = host.default_execute('echo', '$HOME;', 'x')
        self.assertEqual('$HOME; x\n', out)


class DeviceTest(sio_base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def test_device_path(self):
        self.assertEqual(
            '/dev/disk/by-id/emc-vol-218ce1797566a00f-6c33633100000009',
            host.device_path('/dev/disk/by-id', '218ce1797566a00f',
                             '6c33633100000009'))

    def test_appears_quickly(self):
        path = os.path.join(self.tmp, 'emc-vol-a-b')
        target = os.path.join(self.tmp, 'backing')
        open(target, 'w').close()
        timer = threading.Timer(0.1, os.symlink, (target, path))
        timer.start()
        self.addCleanup(timer.cancel)
        started = time.time()
        self.assertEqual(path, host.wait_for_device(path, 5))
        self.assertLess(time.time() - started, 0.8)

    def test_dangling_link_is_not_a_device(self):
        path = os.path.join(self.tmp, 'emc-vol-a-b')
        os.symlink(os.path.join(self.tmp, 'missing'), path)
        exc = self.assertRaises(exception.DeviceTimeout,
                                host.wait_for_device, path, 0.2)
        self.assertIn(path, str(exc))
        self.assertIn('appear', str(exc))
        # ... but it still counts as present for removal.
        self.assertRaises(exception.DeviceTimeout, host.wait_for_removal,
                          path, 0.2)
        os.unlink(path)
        self.assertEqual(path, host.wait_for_removal(path, 0.2))

    def test_polling_grows_and_respects_deadline(self):
        now = [100.0]
        delays = []

        def sleep(seconds):
            delays.append(seconds)
            now[0] += seconds

        self.assertRaises(exception.DeviceTimeout, host.wait_for_device,
                          os.path.join(self.tmp, 'never'), 3.0,
                          sleep=sleep, clock=lambda: now[0])
        self.assertAlmostEqual(0.05, delays[0])
        self.assertTrue(all(b >= a for a, b in zip(delays, delays[1:-1])))
        self.assertAlmostEqual(0.5, max(delays))
        self.assertAlmostEqual(3.0, sum(delays), places=6)
        self.assertLess(len(delays), 20)

    def test_already_present_returns_without_sleeping(self):
        path = os.path.join(self.tmp, 'dev')
        open(path, 'w').close()
        calls = []
        host.wait_for_device(path, 1, sleep=calls.append)
        self.assertEqual([], calls)


class EmulatedDrvCfgTest(sio_base.EmulatorTestCase):
    """The real default executor against the emulator's fake drv_cfg."""

    def test_guid_ids_and_volumes(self):
        info = self.emu_fixture.host()
        drv_cfg = info['drv_cfg']
        self.assertEqual(info['guid'], host.get_sdc_guid(
            drv_cfg_path=drv_cfg))
        system_id = self.client.get_system_id()
        self.assertEqual({system_id: info['sdc_id']},
                         host.query_sdc_ids(drv_cfg_path=drv_cfg))
        self.assertEqual([], host.query_mapped_volumes(drv_cfg_path=drv_cfg))
        vol = self.client.create_volume('v1', 8, self.pool_id())
        self.client.map_volume(vol, guid=info['guid'].lower())
        host.wait_for_device(self.device(vol), 5)
        self.assertEqual([(vol, system_id)],
                         host.query_mapped_volumes(drv_cfg_path=drv_cfg))
