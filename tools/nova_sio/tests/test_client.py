# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The runtime REST client against the emulator, over real sockets."""

import logging
import os
import socket
import time
import warnings

import fixtures

from nova_sio.emulator import tls
from nova_sio.tests import sio_base

client_mod = sio_base.client_mod
exception = sio_base.exception
host = sio_base.host_mod

VOL = r'^/api/instances/Volume::'
CREATE = r'^/api/types/Volume/instances$'


class LifecycleMixin(object):

    def test_lifecycle(self):
        client = self.client
        pool = self.pool_id()
        vol = client.create_volume('life1', 16, pool)
        self.assertEqual(vol, client.get_volume_id('life1'))
        self.assertEqual(16 * 1024 * 1024,
                         client.get_volume(vol)['sizeInKb'])
        sdc = client.get_sdc_id(self.emu_fixture.host()['guid'].lower())
        self.assertEqual(self.sdc_id(), sdc)
        self.assertTrue(client.map_volume(vol, sdc_id=sdc))
        self.assertTrue(client.is_mapped(vol, sdc))
        path = host.wait_for_device(self.device(vol), 5)
        client.extend_volume(vol, 24)
        # The SDC shows the new size after a rescan, as os-brick runs it.
        host.rescan(drv_cfg_path=self.emu_fixture.host()['drv_cfg'])
        self.assertEqual(24 * sio_base.GiB, os.path.getsize(
            os.path.realpath(path)))
        self.assertTrue(client.unmap_volume(vol, sdc_id=sdc))
        host.wait_for_removal(path, 5)
        self.assertFalse(client.is_mapped(vol))
        self.assertTrue(client.delete_volume(vol))
        self.assertIsNone(client.get_volume_id('life1'))
        audit = self.emu.audit()
        self.assertEqual([], audit['leaked_volumes'])
        self.assertEqual([], audit['stray_mappings'])
        self.assertEqual([], audit['stray_devices'])


class HttpTest(LifecycleMixin, sio_base.EmulatorTestCase):
    pass


class HttpsTest(LifecycleMixin, sio_base.EmulatorTestCase):
    emulator_kwargs = {'https': True}

    def test_verification_uses_ca_bundle(self):
        self.assertEqual(self.emu_fixture.info['ca_cert'],
                         self.client.session.verify)
        self.assertTrue(self.client.get_system_id())

    def test_wrong_ca_rejected_without_retry(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        other_ca, _ = tls.make_ca(tmp, 'some other CA')
        client = self.make_client(verify=other_ca)
        exc = self.assertRaises(exception.GatewayUnreachable,
                                client.get_system_id)
        self.assertIn('TLS', str(exc))
        self.assertEqual(1, client.stats['calls'])
        self.assertEqual(0, client.stats['retries'])
        self.assertEqual([], self.emu.request_log())

    def test_system_ca_store_rejects_self_signed(self):
        client = self.make_client(verify=True)
        self.assertRaises(exception.GatewayUnreachable,
                          client.get_system_id)

    def test_no_verification_warns_once(self):
        logger = self.useFixture(fixtures.FakeLogger(
            level=logging.WARNING, name=client_mod.__name__))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            client = self.make_client(verify=False)
            for _ in range(3):
                client.get_volume_id('nothing')
        self.assertEqual(1, logger.output.count('verification'))
        self.assertEqual([], [w for w in caught
                              if 'Unverified' in str(w.message)])


class AuthFlowTest(sio_base.EmulatorTestCase):

    def test_3x_uses_legacy_login_and_basic_token(self):
        self.client.get_system_id()
        self.assertEqual('3.6', self.client.get_api_version())
        paths = [(e['method'], e['path'], e['auth'])
                 for e in self.emu.request_log()]
        self.assertEqual([('GET', '/api/login', 'basic'),
                          ('GET', '/api/version', 'basic'),
                          ('GET', '/api/types/System/instances', 'basic')],
                         paths)

    def test_bad_password(self):
        client = self.make_client(password='wrong')
        exc = self.assertRaises(exception.AuthenticationFailed,
                                client.get_system_id)
        self.assertIn('admin', str(exc))
        self.assertNotIn('wrong', str(exc))
        self.assertEqual(1, len(self.log_entries('^/api/login$')))

    def test_relogin_really_uses_new_token(self):
        self.client.get_system_id()
        self.emu.expire_tokens()
        self.emu.clear_log()
        vol = self.client.create_volume('after-expiry', 8, self.pool_id())
        vol_pool = self.emu_fixture.info['pools'][0]['id']
        steps = [(e['path'], e['status']) for e in self.emu.request_log()]
        self.assertEqual([('/api/types/Domain/instances/getByName::pd1', 401),
                          ('/api/login', 200),
                          ('/api/types/Domain/instances/getByName::pd1', 200),
                          ('/api/types/Pool/instances/getByName::%s,sp1'
                           % self.client.get_protection_domain_id('pd1'),
                           200),
                          ('/api/instances/StoragePool::%s' % vol_pool,
                           200),
                          ('/api/types/Volume/instances', 200)], steps)
        self.assertEqual(1, len(self.emu.tokens))
        self.assertEqual(vol, self.client.get_volume_id('after-expiry'))

    def test_replay_happens_exactly_once(self):
        self.client.get_system_id()
        self.emu.add_fault('unauthorized', path='^/api/instances/Volume::',
                           count=5)
        self.emu.clear_log()
        self.assertRaises(exception.AuthenticationFailed,
                          self.client.get_volume, '0123456789abcdef')
        self.assertEqual(2, len(self.log_entries(VOL)))
        self.assertEqual(1, len(self.log_entries('^/api/login$')))

    def test_single_401_is_transparent(self):
        self.client.get_system_id()
        self.emu.add_fault('unauthorized', path=CREATE, count=1)
        vol = self.client.create_volume('one401', 8, self.pool_id())
        self.assertEqual(vol, self.client.get_volume_id('one401'))
        self.assertEqual(2, len(self.log_entries(CREATE, 'POST')))
        self.assertEqual(1, len(self.emu.volumes()))

    def test_403_relogin_then_forbidden(self):
        self.client.get_system_id()
        self.emu.add_fault('forbidden', path=VOL, count=1)
        self.assertRaises(exception.VolumeNotFound, self.client.get_volume,
                          '0123456789abcdef')
        self.emu.add_fault('forbidden', path=VOL, count=2)
        self.assertRaises(exception.Forbidden, self.client.get_volume,
                          '0123456789abcdef')

    def test_idle_token_refreshed_and_failed_refresh_keeps_old(self):
        client = self.make_client(token_refresh_interval=0.05)
        client.get_system_id()
        time.sleep(0.1)
        self.emu.clear_log()
        client.get_volume_id('x')
        self.assertEqual(['/api/login', '/api/types/Volume/instances/'
                          'getByName::x'],
                         [e['path'] for e in self.emu.request_log()])
        time.sleep(0.1)
        self.emu.add_fault('server_error', path='^/api/login$', count=1)
        self.emu.clear_log()
        self.assertIsNone(client.get_volume_id('x'))
        self.assertEqual([('/api/login', 500),
                          ('/api/types/Volume/instances/getByName::x', 500)],
                         [(e['path'], e['status'])
                          for e in self.emu.request_log()])

    def test_login_retried_on_5xx(self):
        self.emu.add_fault('unavailable', path='^/api/login$', count=2)
        self.assertTrue(self.client.get_system_id())
        self.assertEqual(3, len(self.log_entries('^/api/login$')))

    def test_logout(self):
        self.client.get_system_id()
        self.assertEqual(1, len(self.emu.tokens))
        self.client.close()
        self.assertEqual(0, len(self.emu.tokens))


class AuthFlow4xTest(sio_base.EmulatorTestCase):
    emulator_kwargs = {'version': '4.5'}

    def test_bearer_flow(self):
        self.client.get_system_id()
        log = [(e['method'], e['path'], e['auth'], e['status'])
               for e in self.emu.request_log()]
        self.assertEqual([('GET', '/api/login', 'basic', 200),
                          ('GET', '/api/version', 'basic', 200),
                          ('POST', '/rest/auth/login', 'none', 200),
                          ('GET', '/api/logout', 'basic', 200),
                          ('GET', '/api/types/System/instances', 'bearer',
                           200)], log)
        self.assertEqual('4.5', self.client.get_api_version())

    def test_fallback_to_legacy_login(self):
        self.emu.add_fault('status', path='^/rest/auth/login$', status=404,
                           count=None)
        self.client.get_system_id()
        auths = [e['auth'] for e in self.log_entries('^/api/types/')]
        self.assertEqual(['basic'], auths)
        self.assertEqual(1, len(self.log_entries('^/api/login$')))

    def test_relogin_uses_new_bearer_token(self):
        self.client.get_system_id()
        self.emu.expire_tokens()
        self.emu.clear_log()
        self.client.get_volume_id('x')
        self.assertEqual(
            [('/api/types/Volume/instances/getByName::x', 401),
             ('/rest/auth/login', 200),
             ('/api/types/Volume/instances/getByName::x', 500)],
            [(e['path'], e['status']) for e in self.emu.request_log()])

    def test_4x_error_codes(self):
        pool = self.pool_id()
        vol = self.client.create_volume('v4', 8, pool)
        self.assertTrue(self.client.map_volume(vol, sdc_id=self.sdc_id()))
        self.assertFalse(self.client.map_volume(vol, sdc_id=self.sdc_id()))
        self.assertTrue(self.client.unmap_volume(vol, sdc_id=self.sdc_id()))
        self.assertFalse(self.client.unmap_volume(vol,
                                                  sdc_id=self.sdc_id()))
        codes = [e.get('error_code') for e in
                 self.log_entries('/action/(add|remove)MappedSdc')]
        self.assertEqual([None, 4037, None, 4039], codes)

    def test_malformed_appliance_login(self):
        self.emu.add_fault('status', path='^/rest/auth/login$', status=200,
                           body='{"token_type": "bearer"}', count=1)
        exc = self.assertRaises(exception.MalformedResponse,
                                self.client.get_system_id)
        self.assertIn('access_token', str(exc))

    def test_html_401_from_ingress(self):
        self.client.get_system_id()
        self.emu.add_fault('status', path=VOL, status=401, html=True,
                           count=2)
        self.assertRaises(exception.AuthenticationFailed,
                          self.client.get_volume, '0123456789abcdef')


class RetryTest(sio_base.EmulatorTestCase):

    def setUp(self):
        super().setUp()
        self.client = self.make_client(max_retries=2)
        self.vol = self.client.create_volume('r1', 8, self.pool_id())
        self.emu.clear_log()

    def test_idempotent_retry_bound(self):
        self.emu.add_fault('server_error', path=VOL, count=None)
        exc = self.assertRaises(exception.GatewayError,
                                self.client.get_volume, self.vol)
        self.assertEqual(500, exc.http_status)
        self.assertEqual(3, len(self.log_entries(VOL)))
        self.assertEqual(2, self.client.stats['retries'])

    def test_transient_html_503_recovers(self):
        self.emu.add_fault('unavailable', path=VOL, count=1)
        self.assertEqual(self.vol, self.client.get_volume(self.vol)['id'])
        self.assertEqual([503, 200],
                         [e['status'] for e in self.log_entries(VOL)])

    def test_html_error_is_reported_not_parsed(self):
        self.emu.add_fault('unavailable', path=VOL, count=None)
        exc = self.assertRaises(exception.GatewayError,
                                self.client.get_volume, self.vol)
        self.assertEqual(503, exc.http_status)
        self.assertIn('503', str(exc))

    def test_create_never_retried_on_5xx(self):
        self.emu.add_fault('server_error', path=CREATE, count=None)
        self.assertRaises(exception.GatewayError, self.client.create_volume,
                          'r2', 8, self.pool_id())
        self.assertEqual(1, len(self.log_entries(CREATE)))

    def test_create_never_retried_on_reset(self):
        self.emu.add_fault('reset', path=CREATE, count=None)
        self.assertRaises(exception.GatewayUnreachable,
                          self.client.create_volume, 'r2', 8,
                          self.pool_id())
        self.assertEqual(1, len(self.log_entries(CREATE)))

    def test_lost_create_answer_then_name_in_use(self):
        pool = self.pool_id()
        self.emu.add_fault('lost_response', path=CREATE, count=1)
        self.assertRaises(exception.GatewayUnreachable,
                          self.client.create_volume, 'lost', 8, pool)
        exc = self.assertRaises(exception.NameInUse,
                                self.client.create_volume, 'lost', 8, pool)
        self.assertIn('lost', str(exc))
        vol = self.client.get_volume_id('lost')
        self.assertEqual('lost', self.client.get_volume(vol)['name'])
        self.assertEqual(2, len(self.emu.volumes()))

    def test_create_retried_on_insufficient_resources(self):
        self.emu.add_fault('insufficient_resources', path=CREATE, count=2)
        vol = self.client.create_volume('busy', 8, self.pool_id())
        self.assertEqual(3, len(self.log_entries(CREATE)))
        self.assertEqual(vol, self.client.get_volume_id('busy'))
        self.assertEqual(2, len(self.emu.volumes()))

    def test_insufficient_resources_bounded(self):
        self.emu.add_fault('insufficient_resources', path=CREATE,
                           count=None)
        self.assertRaises(exception.InsufficientResources,
                          self.client.create_volume, 'busy', 8,
                          self.pool_id())
        self.assertEqual(3, len(self.log_entries(CREATE)))

    def test_reset_on_get_is_retried(self):
        self.emu.add_fault('reset', path=VOL, count=1)
        self.assertEqual(self.vol, self.client.get_volume(self.vol)['id'])
        self.assertEqual(2, len(self.log_entries(VOL)))

    def test_read_timeout_on_idempotent_call(self):
        client = self.make_client(read_timeout=0.3, max_retries=1)
        client.get_system_id()
        self.emu.add_fault('hang', path=VOL, seconds=3, count=None)
        started = time.time()
        exc = self.assertRaises(exception.GatewayTimeout, client.get_volume,
                                self.vol)
        self.assertLess(time.time() - started, 2.5)
        self.assertIn('0.3', str(exc))
        self.assertEqual(2, len(self.log_entries(VOL)))

    def test_read_timeout_on_create_not_retried(self):
        client = self.make_client(read_timeout=0.3)
        client.get_system_id()
        self.emu.add_fault('delay', path=CREATE, seconds=1, count=None)
        self.assertRaises(exception.GatewayTimeout, client.create_volume,
                          'slow', 8, self.pool_id())
        self.assertEqual(1, len(self.log_entries(CREATE)))

    def test_slow_answers_within_timeout(self):
        self.emu.add_fault('delay', path=VOL, seconds=0.2, count=2)
        started = time.time()
        self.client.get_volume(self.vol)
        self.client.get_volume(self.vol)
        self.assertGreaterEqual(time.time() - started, 0.4)

    def test_refused_connection_is_retried_even_for_create(self):
        sock = socket.socket()
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
        sock.close()
        client = self.make_client(port=port, scheme='http', max_retries=2)
        self.assertRaises(exception.GatewayUnreachable,
                          client.create_volume, 'x', 8, 'abcd')
        # Three attempts of the version probe; the create never got sent.
        self.assertEqual(3, client.stats['calls'])

    def test_rename_replay_after_lost_answer(self):
        self.emu.add_fault('lost_response', path='setVolumeName', count=1)
        self.client.rename_volume(self.vol, 'r1-new')
        self.assertEqual('r1-new', self.client.get_volume(self.vol)['name'])
        self.assertEqual([None, 99], [
            e.get('error_code') for e in self.log_entries('setVolumeName')])

    def test_extend_replay_after_lost_answer(self):
        self.emu.add_fault('lost_response', path='setVolumeSize', count=1,
                           mode='500')
        self.client.extend_volume(self.vol, 16)
        self.assertEqual(16 * 1024 * 1024,
                         self.client.get_volume(self.vol)['sizeInKb'])

    def test_map_replay_after_lost_answer(self):
        self.emu.add_fault('lost_response', path='addMappedSdc', count=1)
        self.assertFalse(self.client.map_volume(self.vol,
                                                sdc_id=self.sdc_id()))
        self.assertTrue(self.client.is_mapped(self.vol, self.sdc_id()))

    def test_delete_replay_after_lost_answer(self):
        self.emu.add_fault('lost_response', path='removeVolume', count=1)
        self.assertFalse(self.client.delete_volume(self.vol))
        self.assertEqual([], self.emu.volumes())


class ErrorTest(sio_base.EmulatorTestCase):

    def test_lookups(self):
        exc = self.assertRaises(exception.ProtectionDomainNotFound,
                                self.client.get_pool_id, 'nopd', 'sp1')
        self.assertIn('nopd', str(exc))
        exc = self.assertRaises(exception.PoolNotFound,
                                self.client.get_pool_id, 'pd1', 'nosp')
        self.assertIn('nosp', str(exc))
        self.assertIn('pd1', str(exc))
        exc = self.assertRaises(exception.SdcNotFound,
                                self.client.get_sdc_id,
                                '00000000-0000-0000-0000-000000000000')
        self.assertIn('00000000-0000', str(exc))
        exc = self.assertRaises(exception.VolumeNotFound,
                                self.client.get_volume, '0123456789abcdef')
        self.assertIn('0123456789abcdef', str(exc))
        self.assertEqual(79, exc.error_code)
        self.assertRaises(exception.NotFound, self.client.get_volume,
                          'not-hex')
        self.assertIsNone(self.client.get_volume_id('absent'))

    def test_lookups_are_cached(self):
        self.client.get_pool_id('pd1', 'sp1')
        self.client.get_system_id()
        self.client.get_sdc_id(self.emu_fixture.host()['guid'])
        calls = self.client.stats['calls']
        self.client.get_pool_id('pd1', 'sp1')
        self.client.get_system_id()
        self.client.get_sdc_id(self.emu_fixture.host()['guid'].lower())
        self.assertEqual(calls, self.client.stats['calls'])

    def test_sdc_id_with_hint(self):
        guid = self.emu_fixture.host()['guid']
        self.emu.preload(sdcs=50)
        self.assertEqual(self.sdc_id(), self.client.get_sdc_id(
            guid.lower(), hint=self.sdc_id()))
        self.assertEqual([], self.log_entries('^/api/types/Sdc/'))
        self.assertEqual(1, len(self.log_entries('^/api/instances/Sdc::')))
        # A wrong or unknown hint falls back to the list.
        client = self.make_client()
        for hint in ('0123456789abcdef', None):
            client._cache.clear()
            self.assertEqual(self.sdc_id(), client.get_sdc_id(guid,
                                                              hint=hint))
        self.assertEqual(2, len(self.log_entries('^/api/types/Sdc/')))

    def test_cinder_style_names_resolve(self):
        pool = self.pool_id()
        for name in ('/////////////////////w==', 'a+b=c', 'per%cent'):
            vol = self.client.create_volume(name, 8, pool)
            self.assertEqual(vol, self.client.get_volume_id(name))

    def test_create_errors(self):
        pool = self.pool_id()
        self.client.create_volume('dup', 8, pool)
        exc = self.assertRaises(exception.NameInUse,
                                self.client.create_volume, 'dup', 8, pool)
        self.assertIn('dup', str(exc))
        self.assertEqual(99, exc.error_code)
        calls = self.client.stats['calls']
        for size in (0, 10, -8, 8.5, '16'):
            exc = self.assertRaises(exception.InvalidSize,
                                    self.client.create_volume, 'bad', size,
                                    pool)
            self.assertIn('bad', str(exc))
        self.assertEqual(calls, self.client.stats['calls'])
        exc = self.assertRaises(exception.InvalidName,
                                self.client.create_volume, 'x' * 32, 8, pool)
        self.assertEqual(226, exc.error_code)
        self.assertRaises(exception.PoolNotFound, self.client.create_volume,
                          'nopool', 8, '0123456789abcdef')

    def test_capacity_exhausted(self):
        self.emu.set_pool('sp1', capacity_gb=16)
        pool = self.pool_id()
        self.client.create_volume('fits', 16, pool)
        exc = self.assertRaises(exception.CapacityExceeded,
                                self.client.create_volume, 'full', 8, pool)
        self.assertIn(pool, str(exc))
        self.assertIn('full', str(exc))
        self.assertEqual(300, exc.error_code)
        self.assertEqual(0, self.client.pool_capacity(pool)['free_bytes'])

    def test_extend_errors(self):
        vol = self.client.create_volume('ext', 16, self.pool_id())
        exc = self.assertRaises(exception.InvalidSize,
                                self.client.extend_volume, vol, 8)
        self.assertEqual(133, exc.error_code)
        self.assertIn(vol, str(exc))
        self.client.extend_volume(vol, 16)
        calls = self.client.stats['calls']
        self.assertRaises(exception.InvalidSize, self.client.extend_volume,
                          vol, 20)
        self.assertEqual(calls, self.client.stats['calls'])
        self.assertRaises(exception.VolumeNotFound,
                          self.client.extend_volume, '0123456789abcdef', 16)

    def test_mapping_errors_and_idempotence(self):
        vol = self.client.create_volume('m', 8, self.pool_id())
        exc = self.assertRaises(exception.SdcNotFound,
                                self.client.map_volume, vol,
                                sdc_id='0123456789abcdef')
        self.assertIn('0123456789abcdef', str(exc))
        guid = self.emu_fixture.host()['guid'].lower()
        self.assertTrue(self.client.map_volume(vol, guid=guid))
        self.assertFalse(self.client.map_volume(vol, sdc_id=self.sdc_id()))
        self.assertEqual([self.sdc_id()],
                         self.client.get_mapped_sdc_ids(vol))
        exc = self.assertRaises(exception.VolumeMapped,
                                self.client.delete_volume, vol)
        self.assertIn(vol, str(exc))
        self.assertTrue(self.client.delete_volume(vol, unmap=True))
        self.assertFalse(self.client.delete_volume(vol))
        self.assertRaises(ValueError, self.client.map_volume, vol)
        self.assertRaises(ValueError, self.client.delete_volume, vol,
                          remove_mode='ALL')

    def test_unregistered_sdc(self):
        guid = self.emu_fixture.host()['guid']
        self.emu.set_host('host-a', registered=False)
        vol = self.client.create_volume('unreg', 8, self.pool_id())
        self.assertRaises(exception.SdcNotFound, self.client.get_sdc_id,
                          guid)
        exc = self.assertRaises(exception.SdcNotFound,
                                self.client.map_volume, vol, guid=guid)
        self.assertIn(guid, str(exc))
        self.emu.set_host('host-a', registered=True)
        self.assertTrue(self.client.map_volume(vol, guid=guid.lower()))

    def test_single_mapping_refused(self):
        self.emu.add_host('host-b')
        vol = self.client.create_volume('single', 8, self.pool_id())
        self.client.map_volume(vol, sdc_id=self.sdc_id())
        other = self.emu_fixture.admin.info()['hosts']['host-b']['sdc_id']
        self.assertRaises(exception.MultipleMappingsRefused,
                          self.client.map_volume, vol, sdc_id=other,
                          allow_multiple=False)
        self.assertTrue(self.client.map_volume(vol, sdc_id=other))
        self.assertTrue(self.client.unmap_volume(vol, all_sdcs=True))
        self.assertEqual([], self.client.get_mapped_sdc_ids(vol))

    def test_snapshots(self):
        self.emu.configure(max_vtree_volumes=3)
        vol = self.client.create_volume('base', 8, self.pool_id())
        snap = self.client.snapshot_volume(vol, 'base-s1')
        info = self.client.get_volume(snap)
        self.assertEqual(vol, info['ancestorVolumeId'])
        self.assertEqual('Snapshot', info['volumeType'])
        exc = self.assertRaises(exception.NameInUse,
                                self.client.snapshot_volume, vol, 'base-s1')
        self.assertIn('base-s1', str(exc))
        self.client.snapshot_volume(vol, 'base-s2')
        exc = self.assertRaises(exception.VTreeLimitReached,
                                self.client.snapshot_volume, vol, 'base-s3')
        self.assertIn(vol, str(exc))
        self.assertRaises(exception.VolumeNotFound,
                          self.client.snapshot_volume, '0123456789abcdef',
                          'x')

    def test_rename(self):
        pool = self.pool_id()
        one = self.client.create_volume('one', 8, pool)
        self.client.create_volume('two', 8, pool)
        self.assertRaises(exception.NameInUse, self.client.rename_volume,
                          one, 'two')
        self.client.rename_volume(one, 'uno')
        self.assertEqual(one, self.client.get_volume_id('uno'))
        self.assertRaises(exception.VolumeNotFound,
                          self.client.rename_volume, '0123456789abcdef', 'z')

    def test_removal_in_progress(self):
        self.emu.configure(removal_window=5)
        vol = self.client.create_volume('going', 8, self.pool_id())
        self.client.delete_volume(vol)
        self.assertRaises(exception.VolumeRemovalInProgress,
                          self.client.get_volume, vol)

    def test_pool_capacity(self):
        pool = self.pool_id()
        before = self.client.pool_capacity(pool)
        self.assertEqual(1024 * sio_base.GiB, before['total_bytes'])
        self.client.create_volume('thick', 16, pool)
        self.client.create_volume('thin', 64, pool, thin=True)
        after = self.client.pool_capacity(pool)
        self.assertEqual(before['free_bytes'] - 16 * sio_base.GiB,
                         after['free_bytes'])
        self.assertEqual(after['total_bytes'] - after['free_bytes'],
                         after['used_bytes'])
        self.assertEqual(80 * sio_base.GiB, after['provisioned_bytes'])
        self.assertEqual(0, after['free_bytes'] % (8 * sio_base.GiB))

    def test_malformed_answers(self):
        self.emu.add_fault('status', path='/api/types/System/instances',
                           status=200, count=1)
        # A 200 whose body is an error object is not a list of systems.
        self.assertRaises(exception.MalformedResponse,
                          self.client.get_system_id)
        pool = self.pool_id()
        for path, body, call in (
                (CREATE, '{}', lambda: self.client.create_volume(
                    'm1', 8, pool)),
                (CREATE, '<html>', lambda: self.client.create_volume(
                    'm2', 8, pool)),
                ('getByName', '42', lambda: self.client.get_volume_id('x')),
                ('snapshotVolumes', '{"volumeIdList": []}',
                 lambda: self.client.snapshot_volume('0' * 16, 's')),
                ('querySelectedStatistics', '{}',
                 lambda: self.client.pool_capacity(pool))):
            self.emu.add_fault('status', path=path, status=200, body=body,
                               count=1)
            exc = self.assertRaises(exception.MalformedResponse, call)
            self.assertIn(path.strip('^$'), str(exc))

    def test_malformed_login_answers(self):
        self.emu.add_fault('status', path='^/api/login$', status=200,
                           body='{"token": 1}', count=1)
        self.assertRaises(exception.MalformedResponse,
                          self.client.get_system_id)
        self.emu.add_fault('status', path='^/api/version$', status=200,
                           body='"3.x"', count=1)
        self.assertRaises(exception.MalformedResponse,
                          self.make_client().get_system_id)


class LegacyVersionTest(sio_base.EmulatorTestCase):
    emulator_kwargs = {'version': '2.0'}

    def test_pool_capacity_pre_3(self):
        pool = self.pool_id()
        self.client.create_volume('thick', 16, pool)
        cap = self.client.pool_capacity(pool)
        self.assertEqual(1024 * sio_base.GiB, cap['total_bytes'])
        self.assertEqual(1008 * sio_base.GiB, cap['free_bytes'])
        props = self.log_entries('querySelectedStatistics')
        self.assertEqual(1, len(props))


class BadVersionTest(sio_base.EmulatorTestCase):
    emulator_kwargs = {'version': 'bad'}

    def test_rejected(self):
        exc = self.assertRaises(exception.MalformedResponse,
                                self.client.get_system_id)
        self.assertIn('version', str(exc))


class MultiHostTest(sio_base.EmulatorTestCase):
    emulator_kwargs = {'hosts': ('host-a', 'host-b')}

    def test_data_visible_across_hosts(self):
        vol = self.client.create_volume('shared', 8, self.pool_id())
        sdc_a, sdc_b = self.sdc_id('host-a'), self.sdc_id('host-b')
        self.client.map_volume(vol, sdc_id=sdc_a)
        path_a = host.wait_for_device(self.device(vol, 'host-a'), 5)
        with open(path_a, 'r+b') as dev:
            dev.seek(5 * sio_base.GiB)
            dev.write(b'written on host-a')
        self.client.map_volume(vol, sdc_id=sdc_b)
        self.client.unmap_volume(vol, sdc_id=sdc_a)
        host.wait_for_removal(path_a, 5)
        path_b = host.wait_for_device(self.device(vol, 'host-b'), 5)
        with open(path_b, 'rb') as dev:
            dev.seek(5 * sio_base.GiB)
            self.assertEqual(b'written on host-a', dev.read(17))
        self.assertEqual([sdc_b], self.client.get_mapped_sdc_ids(vol))

    def test_mapped_but_device_never_appears(self):
        self.emu.set_host('host-b', never_appear=True)
        vol = self.client.create_volume('ghost', 8, self.pool_id())
        self.client.map_volume(vol, sdc_id=self.sdc_id('host-b'))
        self.assertTrue(self.client.is_mapped(vol, self.sdc_id('host-b')))
        started = time.time()
        exc = self.assertRaises(exception.DeviceTimeout,
                                host.wait_for_device,
                                self.device(vol, 'host-b'), 0.5)
        self.assertLess(time.time() - started, 1.5)
        self.assertIn(vol, str(exc))


class LogHygieneTest(sio_base.EmulatorTestCase):
    emulator_kwargs = {'password': 'Pa55-w0rd-xyz', 'version': '4.5'}

    def test_no_secrets_in_logs_or_errors(self):
        minted = []
        original = self.emu.mint_token

        def mint(user):
            token = original(user)
            minted.append(token)
            return token
        self.emu.mint_token = mint
        logger = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG,
                                                     name=None))
        errors = []
        client = self.make_client()
        vol = client.create_volume('hyg', 8, client.get_pool_id('pd1',
                                                                'sp1'))
        client.map_volume(vol, sdc_id=self.sdc_id())
        self.emu.expire_tokens()
        client.unmap_volume(vol, sdc_id=self.sdc_id())
        for call in (lambda: client.get_volume('0123456789abcdef'),
                     lambda: client.create_volume('hyg', 8, 'ffff'),
                     lambda: self.make_client(
                         password='Wr0ng-Pa55').get_system_id()):
            try:
                call()
            except exception.SioError as exc:
                errors.append(str(exc) + repr(exc.kwargs))
        client.delete_volume(vol)
        client.close()
        self.assertGreaterEqual(len(minted), 2)
        self.assertEqual(3, len(errors))
        text = logger.output + '\n'.join(errors) + repr(client)
        self.assertIn('getByName', text)
        for secret in ['Pa55-w0rd-xyz', 'Wr0ng-Pa55'] + minted:
            self.assertNotIn(secret, text)
        self.assertNotIn('Pa55', repr(self.emu.request_log()))


class ConcurrencyTest(sio_base.EmulatorTestCase):

    def test_threads_share_one_client_through_token_expiry(self):
        import threading
        pool = self.pool_id()
        sdc = self.sdc_id()
        errors = []

        def worker(n):
            try:
                for round_ in range(3):
                    name = 'c%d-%d' % (n, round_)
                    vol = self.client.create_volume(name, 8, pool)
                    self.client.map_volume(vol, sdc_id=sdc)
                    if n == 0 and round_ == 1:
                        self.emu.expire_tokens()
                    self.client.unmap_volume(vol, sdc_id=sdc)
                    self.client.delete_volume(vol)
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,))
                   for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual([], errors)
        self.assertEqual([], self.emu.audit()['leaked_volumes'])
        self.assertEqual(1, len(self.emu.tokens))
        # One login at start, one after the expiry: threads that hit the
        # 401 together must not each log in.
        self.assertLessEqual(len(self.log_entries('^/api/login$')), 3)
