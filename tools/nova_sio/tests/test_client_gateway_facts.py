# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The client against gateway behaviour taken from public clients.

Each class pins one fact that Cinder's PowerFlex driver
(``cinder/volume/drivers/dell_emc/powerflex/``), os-brick's ScaleIO
connector or PyPowerFlex rely on, with the emulator behaving that way
(see the docstrings of ``emulator/state.py`` and ``emulator/server.py``).
"""

import logging

import fixtures

from nova_sio.tests import sio_base

exception = sio_base.exception
GiB = sio_base.GiB
VOL = r'^/api/instances/Volume::'


class Login3xTest(sio_base.EmulatorTestCase):
    """3.x: ``GET /api/login``, then the version with the token."""

    def test_login_then_version_like_pypowerflex(self):
        self.client.get_system_id()
        self.assertEqual('3.6', self.client.get_api_version())
        self.assertEqual(
            [('GET', '/api/login', 'basic', 200),
             ('GET', '/api/version', 'basic', 200),
             ('GET', '/api/types/System/instances', 'basic', 200)],
            [(e['method'], e['path'], e['auth'], e['status'])
             for e in self.emu.request_log()])

    def test_no_appliance_probe_whatever_rest_answers(self):
        # A proxy in front of a 3.x gateway may answer /rest/* with 401
        # or 400 instead of 404: the client must not ask there at all.
        for status in (401, 400, 500):
            self.emu.add_fault('status', path='^/rest/', status=status,
                               count=None)
            client = self.make_client()
            self.assertTrue(client.get_system_id())
            self.emu.clear_faults()
        self.assertEqual([], self.log_entries('^/rest/'))

    def test_forced_bearer_on_3x_falls_back(self):
        client = self.make_client(auth_flow='bearer')
        self.assertTrue(client.get_system_id())
        self.assertEqual(['basic'], [e['auth'] for e in
                                     self.log_entries('^/api/types/')])


class Login4xTest(sio_base.EmulatorTestCase):
    emulator_kwargs = {'version': '4.5'}

    def test_flow_and_no_session_left_behind(self):
        self.client.get_system_id()
        self.assertEqual(
            [('GET', '/api/login', 'basic', 200),
             ('GET', '/api/version', 'basic', 200),
             ('POST', '/rest/auth/login', 'none', 200),
             ('GET', '/api/logout', 'basic', 200),
             ('GET', '/api/types/System/instances', 'bearer', 200)],
            [(e['method'], e['path'], e['auth'], e['status'])
             for e in self.emu.request_log()])
        self.assertEqual(1, len(self.emu.tokens))

    def test_logout_sends_refresh_token(self):
        self.client.get_system_id()
        self.client.close()
        logout = self.log_entries('^/rest/auth/logout$')
        self.assertEqual([204], [e['status'] for e in logout])
        self.assertEqual({}, self.emu.tokens)
        self.assertEqual({}, self.emu.refresh_tokens)

    def test_relogin_logout_closes_latest_session(self):
        self.client.get_system_id()
        self.emu.expire_tokens()
        self.client.get_volume_id('x')
        self.client.close()
        self.assertEqual({}, self.emu.tokens)
        self.assertEqual({}, self.emu.refresh_tokens)


class Delete4xTest(sio_base.EmulatorTestCase):
    """4.x answers removal of a mapped volume with an unknown code."""

    emulator_kwargs = {'version': '4.5', 'hosts': ('host-a', 'host-b')}

    def mapped_volume(self, name):
        vol = self.client.create_volume(name, 8, self.pool_id())
        for host in ('host-a', 'host-b'):
            self.assertTrue(self.client.map_volume(
                vol, sdc_id=self.sdc_id(host)))
        return vol

    def test_delete_mapped_volume(self):
        vol = self.mapped_volume('mapped4')
        self.emu.clear_log()
        self.assertTrue(self.client.delete_volume(vol, unmap=True))
        self.assertEqual([], self.emu.volumes())
        self.assertEqual(2, len(self.log_entries('removeMappedSdc')))
        removals = self.log_entries('removeVolume')
        # The refusal is not retried: mappedSdcInfo is read instead.
        self.assertEqual([(500, 4063), (200, None)],
                         [(e['status'], e.get('error_code'))
                          for e in removals])
        self.assertEqual(1, len(self.log_entries(VOL + '[0-9a-f]+$',
                                                 'GET')))
        audit = self.emu.audit()
        self.assertEqual([], audit['leaked_volumes'])
        self.assertEqual([], audit['stray_mappings'])

    def test_mapped_without_unmap_raises_volume_mapped(self):
        vol = self.mapped_volume('keep4')
        exc = self.assertRaises(exception.VolumeMapped,
                                self.client.delete_volume, vol)
        self.assertIn(vol, str(exc))
        self.assertEqual(1, len(self.log_entries('removeVolume')))
        self.assertEqual([], self.log_entries('removeMappedSdc'))
        self.assertEqual(2, len(self.client.get_mapped_sdc_ids(vol)))

    def test_unknown_removal_error_is_not_taken_for_mapped(self):
        vol = self.client.create_volume('odd4', 8, self.pool_id())
        self.emu.add_fault('status', path='removeVolume', status=500,
                           error_code=4063, message='Something else',
                           count=None)
        self.assertRaises(exception.GatewayError, self.client.delete_volume,
                          vol, unmap=True)
        self.assertEqual([], self.log_entries('removeMappedSdc'))
        self.emu.clear_faults()
        self.emu.clear_log()
        self.emu.add_fault('status', path='removeVolume', status=400,
                           error_code=4100, message='Refused', count=None)
        self.assertRaises(exception.GatewayError, self.client.delete_volume,
                          vol, unmap=True)
        self.assertEqual(1, len(self.log_entries('removeVolume')))
        self.assertEqual([], self.log_entries('removeMappedSdc'))

    def test_transient_failure_is_retried(self):
        vol = self.client.create_volume('flaky4', 8, self.pool_id())
        self.emu.add_fault('server_error', path='removeVolume', count=1)
        self.assertTrue(self.client.delete_volume(vol, unmap=True))
        self.assertEqual([], self.emu.volumes())

    def test_delete_unmapped_volume_is_one_call(self):
        vol = self.client.create_volume('plain4', 8, self.pool_id())
        self.emu.clear_log()
        self.assertTrue(self.client.delete_volume(vol, unmap=True))
        self.assertEqual(['removeVolume'],
                         [e['path'].rsplit('/', 1)[1]
                          for e in self.emu.request_log()])

    def test_missing_volume(self):
        self.assertFalse(self.client.delete_volume('0123456789abcdef',
                                                   unmap=True))


class VolumeLookupTest(sio_base.EmulatorTestCase):
    """A name lookup that finds nothing never fails a spawn."""

    def test_not_found_answers(self):
        for status, code, text in (
                (500, 3, 'Not found'),
                (500, 3, 'Object of type Volume was not located'),
                (404, 0, 'The requested resource is not available'),
                (404, None, 'Volume with name x does not exist'),
                (500, 79, 'Could not find the volume')):
            self.emu.add_fault('status', path='getByName', status=status,
                               error_code=code, message=text, count=1)
            self.assertIsNone(self.client.get_volume_id('x'), (status, text))

    def test_other_errors_still_raise(self):
        self.emu.add_fault('status', path='getByName', status=500,
                           error_code=1, message='Internal error',
                           count=None)
        self.assertRaises(exception.GatewayError, self.client.get_volume_id,
                          'x')


class PoolSafetyTest(sio_base.EmulatorTestCase):
    emulator_kwargs = {'pools': (
        ('pd1', 'sp1', 64),
        ('pd1', 'fg', 64, {'data_layout': 'FineGranularity'}),
        ('pd1', 'raw', 64, {'zero_padding': False}))}

    def test_non_padded_pool_refused(self):
        pool = self.client.get_pool_id('pd1', 'raw')
        exc = self.assertRaises(exception.UnsafePool,
                                self.client.create_volume, 'leak', 8, pool)
        self.assertIn(pool, str(exc))
        self.assertIn('zero padding', str(exc))
        self.assertIn('allow_non_padded_volumes', str(exc))
        self.assertEqual([], self.emu.volumes())
        self.assertEqual([], self.log_entries('^/api/types/Volume/'
                                              'instances$', 'POST'))

    def test_non_padded_pool_allowed_by_option(self):
        client = self.make_client(allow_non_padded_volumes=True)
        pool = client.get_pool_id('pd1', 'raw')
        vol = client.create_volume('allowed', 8, pool)
        self.assertEqual('ThickProvisioned',
                         client.get_volume(vol)['volumeType'])

    def test_thick_falls_back_to_thin_on_fine_granularity(self):
        logger = self.useFixture(fixtures.FakeLogger(
            level=logging.WARNING, name=sio_base.client_mod.__name__))
        pool = self.client.get_pool_id('pd1', 'fg')
        vol = self.client.create_volume('fg-thick', 8, pool, thin=False)
        self.assertEqual('ThinProvisioned',
                         self.client.get_volume(vol)['volumeType'])
        self.assertIn('Fine Granularity', logger.output)
        self.assertIn(pool, logger.output)
        thin = self.client.create_volume('fg-thin', 8, pool, thin=True)
        self.assertEqual('ThinProvisioned',
                         self.client.get_volume(thin)['volumeType'])

    def test_properties_read_once(self):
        pool = self.pool_id()
        for n in range(3):
            self.client.create_volume('p%d' % n, 8, pool)
        self.assertEqual(1, len(self.log_entries('^/api/instances/'
                                                 'StoragePool::')))
        self.assertEqual({'zero_padding': True, 'fine_granularity': False},
                         self.client.pool_properties(pool))


class ProvisionedCapacityTest(sio_base.EmulatorTestCase):
    """Halved thick + thin + snapshot figures, as Cinder computes them."""

    emulator_kwargs = {'version': '3.6'}

    def fill(self):
        pool = self.pool_id()
        thick = self.client.create_volume('thick', 16, pool)
        self.client.create_volume('thin', 24, pool, thin=True)
        self.client.snapshot_volume(thick, 'snap')
        return pool

    def test_3_5_and_later(self):
        cap = self.client.pool_capacity(self.fill())
        # 16 thick + 24 thin + 16 snapshot, each counted once.
        self.assertEqual(56 * GiB, cap['provisioned_bytes'])
        self.assertEqual(1024 * GiB, cap['total_bytes'])
        self.assertEqual(1008 * GiB, cap['free_bytes'])


class ProvisionedCapacity30Test(ProvisionedCapacityTest):
    emulator_kwargs = {'version': '3.0'}


class ProvisionedCapacityLegacyTest(ProvisionedCapacityTest):
    emulator_kwargs = {'version': '2.0'}
