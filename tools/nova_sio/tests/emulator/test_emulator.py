# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The emulator pinned to documented gateway facts (scaleio-api.md).

These tests speak raw HTTP with ``requests``, not the runtime client, so
a client bug cannot hide an emulator bug.
"""

import argparse
import base64
import io
import json
import os
import subprocess
import threading
import time
from unittest import mock
from urllib.parse import quote

import requests

from nova_sio.emulator import cli
from nova_sio.emulator import fixture as emu_fixture
from nova_sio.emulator import server
from nova_sio.tests import sio_base

KiB_PER_GiB = 1024 * 1024
NOT_FOUND = {'message': 'Not found', 'httpStatusCode': 500, 'errorCode': 3}


class Raw(object):
    """Minimal gateway speaker for the tests."""

    def __init__(self, info, auth_user='admin'):
        self.url = info['url']
        self.info = info
        self.session = requests.Session()
        self.session.verify = info['ca_cert'] or True
        self.token = None
        self.auth_user = auth_user

    def login(self):
        resp = self.session.get(self.url + '/api/login',
                                auth=(self.info['username'],
                                      self.info['password']))
        assert resp.status_code == 200, resp.text
        self.token = resp.json()
        return resp

    def get(self, path, **kwargs):
        kwargs.setdefault('auth', (self.auth_user, self.token))
        return self.session.get(self.url + path, **kwargs)

    def post(self, path, body=None, **kwargs):
        kwargs.setdefault('auth', (self.auth_user, self.token))
        return self.session.post(self.url + path, json=body or {},
                                 **kwargs)

    def ok(self, resp):
        assert resp.status_code == 200, (resp.status_code, resp.text)
        return resp.json()

    def create(self, name, size_kb=8 * KiB_PER_GiB, vtype='ThickProvisioned',
               pool=None):
        pool = pool or self.info['pools'][0]['id']
        return self.post('/api/types/Volume/instances', {
            'name': name, 'volumeSizeInKb': str(size_kb),
            'storagePoolId': pool, 'volumeType': vtype})

    def volume(self, vol_id):
        return self.ok(self.get('/api/instances/Volume::%s' % vol_id))

    def action(self, vol_id, action, body):
        return self.post('/api/instances/Volume::%s/action/%s'
                         % (vol_id, action), body)

    def snapshot(self, vol_id, name, system=''):
        return self.post('/api/instances/System%s/action/snapshotVolumes'
                         % system, {'snapshotDefs': [
                             {'volumeId': vol_id, 'snapshotName': name}]})


class RawTestCase(sio_base.EmulatorTestCase):

    def setUp(self):
        super().setUp()
        self.raw = Raw(self.emu_fixture.info)
        self.addCleanup(self.raw.session.close)
        self.raw.login()

    def assertError(self, resp, status, code, text=None):
        self.assertEqual(status, resp.status_code, resp.text)
        body = resp.json()
        self.assertEqual(code, body['errorCode'])
        self.assertEqual(status, body['httpStatusCode'])
        if text:
            self.assertIn(text, body['message'])
        return body


class AuthTest(RawTestCase):

    def test_login_answers_json_string(self):
        resp = self.raw.login()
        self.assertTrue(resp.text.startswith('"'))
        self.assertTrue(resp.text.endswith('"'))
        decoded = base64.b64decode(self.raw.token + '==').decode()
        self.assertTrue(decoded.startswith('admin:'))

    def test_token_is_basic_password_for_any_user(self):
        for user in ('admin', '', 'whoever'):
            raw = Raw(self.emu_fixture.info, auth_user=user)
            raw.token = self.raw.token
            self.assertEqual(200, raw.get('/api/types/System/instances')
                             .status_code)

    def test_bad_credentials(self):
        resp = self.raw.session.get(self.raw.url + '/api/login',
                                    auth=('admin', 'nope'))
        self.assertEqual(401, resp.status_code)
        self.assertEqual({'message': 'Unauthorized', 'httpStatusCode': 401,
                          'errorCode': 0}, resp.json())
        resp = self.raw.get('/api/types/System/instances',
                            auth=('admin', 'not-a-token'))
        self.assertEqual(401, resp.status_code)

    def test_version_3x_needs_token_not_password(self):
        # Cinder's rest_client and PyPowerFlex read it after GET
        # /api/login, with the token.
        info = self.emu_fixture.info
        resp = self.raw.session.get(self.raw.url + '/api/version',
                                    auth=(info['username'],
                                          info['password']))
        self.assertEqual(401, resp.status_code)
        resp = self.raw.get('/api/version')
        self.assertEqual('"3.6"', resp.text)

    def test_bearer_and_appliance_login_absent_in_3x(self):
        resp = self.raw.get('/api/types/System/instances', auth=None,
                            headers={'Authorization':
                                     'Bearer ' + self.raw.token})
        self.assertEqual(401, resp.status_code)
        info = self.emu_fixture.info
        for path in ('/rest/auth/login', '/rest/auth/logout',
                     '/rest/v1/corelcm/status'):
            resp = self.raw.session.post(self.raw.url + path,
                                         json={'username': info['username'],
                                               'password': info['password']})
            self.assertEqual(404, resp.status_code, path)

    def test_idle_expiry_and_old_tokens_stay_valid(self):
        first = self.raw.token
        self.raw.login()
        self.raw.token = first
        self.assertEqual(200, self.raw.get('/api/types/System/instances')
                         .status_code)
        self.emu.configure(token_idle_timeout=0.1)
        time.sleep(0.2)
        self.assertEqual(401, self.raw.get('/api/types/System/instances')
                         .status_code)

    def test_absolute_lifetime(self):
        self.emu.configure(token_lifetime=0.1)
        time.sleep(0.15)
        self.assertEqual(401, self.raw.get('/api/types/System/instances')
                         .status_code)

    def test_logout(self):
        self.assertEqual(200, self.raw.get('/api/logout').status_code)
        self.assertEqual(401, self.raw.get('/api/types/System/instances')
                         .status_code)

    def test_unknown_route(self):
        resp = self.raw.get('/api/types/Nothing/instances')
        self.assertEqual({'message': 'no route handled',
                          'httpStatusCode': 400, 'errorCode': 0},
                         resp.json())


class Auth4xTest(RawTestCase):
    emulator_kwargs = {'version': '4.5'}

    def test_version_needs_token(self):
        info = self.emu_fixture.info
        resp = self.raw.session.get(self.raw.url + '/api/version',
                                    auth=(info['username'],
                                          info['password']))
        self.assertEqual(401, resp.status_code)
        self.assertEqual('4.5', self.raw.get('/api/version').json())

    def test_appliance_login_and_bearer(self):
        info = self.emu_fixture.info
        resp = self.raw.session.post(self.raw.url + '/rest/auth/login',
                                     json={'username': info['username'],
                                           'password': info['password']})
        body = resp.json()
        self.assertEqual({'access_token', 'refresh_token'}, set(body))
        bearer = {'Authorization': 'Bearer ' + body['access_token']}
        self.assertEqual(200, self.raw.get('/api/types/System/instances',
                                           auth=None, headers=bearer)
                         .status_code)
        # The legacy token also works with Bearer in 4.x (goscaleio).
        legacy = {'Authorization': 'Bearer ' + self.raw.token}
        self.assertEqual(200, self.raw.get('/api/types/System/instances',
                                           auth=None, headers=legacy)
                         .status_code)
        # PyPowerFlex's _appliance_logout sends the refresh token; an
        # empty body does not close the session.
        for wrong in ({}, {'refresh_token': 'not-this-session'}):
            resp = self.raw.session.post(
                self.raw.url + '/rest/auth/logout', json=wrong,
                headers=bearer)
            self.assertEqual(400, resp.status_code)
            self.assertEqual(200, self.raw.get(
                '/api/types/System/instances', auth=None,
                headers=bearer).status_code)
        resp = self.raw.session.post(self.raw.url + '/rest/auth/logout',
                                     json={'refresh_token':
                                           body['refresh_token']},
                                     headers=bearer)
        self.assertEqual(204, resp.status_code)
        self.assertEqual(401, self.raw.get('/api/types/System/instances',
                                           auth=None, headers=bearer)
                         .status_code)
        resp = self.raw.session.post(self.raw.url + '/rest/auth/login',
                                     json={'username': 'admin',
                                           'password': 'bad'})
        self.assertEqual(401, resp.status_code)


class LookupTest(RawTestCase):

    def test_system(self):
        systems = self.raw.ok(self.raw.get('/api/types/System/instances'))
        self.assertEqual(1, len(systems))
        system = systems[0]
        self.assertEqual(self.emu_fixture.info['system_id'], system['id'])
        self.assertRegex(system['id'], '^[0-9a-f]{16}$')
        self.assertFalse(system['restrictedSdcModeEnabled'])
        self.assertIn({'rel': 'self', 'href': '/api/instances/System::%s'
                       % system['id']}, system['links'])

    def test_domain_and_pool_by_name(self):
        pd_id = self.raw.ok(self.raw.get(
            '/api/types/Domain/instances/getByName::pd1'))
        self.assertEqual(pd_id, self.raw.ok(self.raw.post(
            '/api/types/ProtectionDomain/instances/action/queryIdByKey',
            {'name': 'pd1'})))
        sp_id = self.raw.ok(self.raw.get(
            '/api/types/Pool/instances/getByName::%s,sp1' % pd_id))
        self.assertEqual(sp_id, self.raw.ok(self.raw.post(
            '/api/types/StoragePool/instances/action/queryIdByKey',
            {'name': 'sp1', 'protectionDomainName': 'pd1'})))
        pool = self.raw.ok(self.raw.get('/api/instances/StoragePool::%s'
                                        % sp_id))
        self.assertTrue(pool['zeroPaddingEnabled'])
        self.assertEqual('MediumGranularity', pool['dataLayout'])
        self.assertEqual(pd_id, pool['protectionDomainId'])
        self.assertEqual(NOT_FOUND, self.raw.get(
            '/api/types/Domain/instances/getByName::nope').json())
        self.assertEqual(NOT_FOUND, self.raw.get(
            '/api/types/Pool/instances/getByName::%s,nope' % pd_id).json())

    def test_volume_names_once_or_twice_quoted(self):
        for name in ('/////////////////////w==', 'a+b=c/d'):
            vol = self.raw.ok(self.raw.create(name))['id']
            for quoted in (quote(name, ''), quote(quote(name, ''), '')):
                self.assertEqual(vol, self.raw.ok(self.raw.get(
                    '/api/types/Volume/instances/getByName::' + quoted)))
            self.assertEqual(vol, self.raw.ok(self.raw.post(
                '/api/types/Volume/instances/action/queryIdByKey',
                {'name': name})))
        self.assertEqual(NOT_FOUND, self.raw.get(
            '/api/types/Volume/instances/getByName::nope').json())

    def test_sdcs(self):
        sdcs = self.raw.ok(self.raw.get('/api/types/Sdc/instances'))
        self.assertEqual(1, len(sdcs))
        sdc = sdcs[0]
        self.assertEqual(sdc['sdcGuid'].upper(), sdc['sdcGuid'])
        self.assertEqual('Connected', sdc['mdmConnectionState'])
        self.assertEqual(sdc, self.raw.ok(self.raw.get(
            '/api/instances/Sdc::%s' % sdc['id'])))
        self.assertEqual(sdc['id'], self.raw.ok(self.raw.post(
            '/api/types/Sdc/instances/action/queryIdByKey',
            {'ip': sdc['sdcIp']})))
        self.emu.set_host('host-a', connected=False)
        sdc = self.raw.ok(self.raw.get('/api/types/Sdc/instances'))[0]
        self.assertEqual('Disconnected', sdc['mdmConnectionState'])
        self.assertError(self.raw.get('/api/instances/Sdc::0123456789abcdef'),
                         500, 80, 'Could not find the SDC')


class VolumeTest(RawTestCase):

    def test_create_rounds_up_to_8_gib(self):
        for size_kb, expect_gib in ((1, 8), (4 * KiB_PER_GiB, 8),
                                    (8 * 1024, 8),
                                    (9 * KiB_PER_GiB, 16),
                                    (16 * KiB_PER_GiB, 16)):
            vol = self.raw.ok(self.raw.create('v%d' % size_kb, size_kb))
            self.assertEqual({'id'}, set(vol))
            self.assertEqual(expect_gib * KiB_PER_GiB,
                             self.raw.volume(vol['id'])['sizeInKb'])
        vol = self.raw.ok(self.raw.post('/api/types/Volume/instances', {
            'name': 'gb', 'volumeSizeInGb': 10,
            'storagePoolId': self.emu_fixture.info['pools'][0]['id'],
            'volumeType': 'ThinProvisioned'}))
        self.assertEqual(16 * KiB_PER_GiB,
                         self.raw.volume(vol['id'])['sizeInKb'])

    def test_create_errors(self):
        self.assertEqual(500, self.raw.create('zero', 0).status_code)
        self.assertError(self.raw.create('x' * 32), 500, 226,
                         'exceeds the allowed length of 31 characters')
        self.assertEqual(200, self.raw.create('x' * 31).status_code)
        self.assertError(self.raw.create('with space'), 500, 227,
                         'Spaces are not allowed')
        self.raw.ok(self.raw.create('dup'))
        self.assertError(self.raw.create('dup'), 500, 99,
                         'Volume name already in use')
        self.assertEqual(NOT_FOUND,
                         self.raw.create('np', pool='0123456789abcdef')
                         .json())
        self.assertEqual(400, self.raw.create('t', vtype='Fat').status_code)

    def test_volume_object(self):
        vol_id = self.raw.ok(self.raw.create('obj'))['id']
        vol = self.raw.volume(vol_id)
        self.assertRegex(vol_id, '^[0-9a-f]{16}$')
        self.assertIsNone(vol['mappedSdcInfo'])
        self.assertIsNone(vol['ancestorVolumeId'])
        self.assertEqual('ThickProvisioned', vol['volumeType'])
        self.assertIsInstance(vol['sizeInKb'], int)
        self.assertIn({'rel': 'self', 'href': '/api/instances/Volume::%s'
                       % vol_id}, vol['links'])

    def test_unknown_and_malformed_ids(self):
        self.assertError(self.raw.get('/api/instances/Volume::'
                                      '0123456789abcdef'),
                         500, 79, 'Could not find the volume')
        self.assertError(self.raw.get('/api/instances/Volume::xyz'),
                         500, 0, 'must be a hexadecimal number')
        self.assertError(self.raw.action('0123456789abcdef', 'removeVolume',
                                         {'removeMode': 'ONLY_ME'}),
                         500, 79)

    def test_set_size_rules(self):
        vol = self.raw.ok(self.raw.create('rs'))['id']
        self.assertError(self.raw.action(vol, 'setVolumeSize',
                                         {'sizeInGB': '10'}), 400, 225)
        self.assertError(self.raw.action(vol, 'setVolumeSize',
                                         {'sizeInGB': '6'}), 400, 225)
        self.raw.ok(self.raw.action(vol, 'setVolumeSize',
                                    {'sizeInGB': '16'}))
        self.assertError(self.raw.action(vol, 'setVolumeSize',
                                         {'sizeInGB': '8'}), 400, 133,
                         'Volume capacity can only be increased')
        self.assertEqual({}, self.raw.ok(self.raw.action(
            vol, 'setVolumeSize', {'sizeInGB': 16})))
        self.assertEqual(16 * KiB_PER_GiB, self.raw.volume(vol)['sizeInKb'])

    def test_rename(self):
        one = self.raw.ok(self.raw.create('one'))['id']
        self.raw.ok(self.raw.create('two'))
        self.assertError(self.raw.action(one, 'setVolumeName',
                                         {'newName': 'two'}), 500, 99)
        self.assertEqual({}, self.raw.ok(self.raw.action(
            one, 'setVolumeName', {'newName': 'uno'})))
        self.assertEqual('uno', self.raw.volume(one)['name'])
        self.assertEqual(NOT_FOUND, self.raw.get(
            '/api/types/Volume/instances/getByName::one').json())

    def test_capacity_rules(self):
        self.emu.set_pool('sp1', capacity_gb=24, overprovision=2)
        self.raw.ok(self.raw.create('thick', 16 * KiB_PER_GiB))
        self.assertError(self.raw.create('big', 16 * KiB_PER_GiB), 500, 300,
                         'exceeds the volume allocation limit')
        # Thin: thick + thin allocations stay within 2 x 24 GiB.
        self.raw.ok(self.raw.create('thin', 32 * KiB_PER_GiB,
                                    'ThinProvisioned'))
        self.assertError(self.raw.create('thin2', 8 * KiB_PER_GiB,
                                         'ThinProvisioned'), 500, 300)

    def test_statistics(self):
        pool = self.emu_fixture.info['pools'][0]['id']
        props = ['capacityAvailableForVolumeAllocationInKb',
                 'thickCapacityInUseInKb', 'netUnusedCapacityInKb']
        path = '/api/types/StoragePool/instances/action/' \
            'querySelectedStatistics'
        before = self.raw.ok(self.raw.post(path, {'ids': [pool],
                                                  'properties': props}))
        self.assertEqual([pool], list(before))
        self.assertEqual(set(props), set(before[pool]))
        self.raw.ok(self.raw.create('st', 16 * KiB_PER_GiB))
        after = self.raw.ok(self.raw.post(path, {'ids': [pool],
                                                 'properties': props}))[pool]
        # Both mirror copies: 2 x 16 GiB.
        self.assertEqual(32 * KiB_PER_GiB, after['thickCapacityInUseInKb'])
        avail = after['capacityAvailableForVolumeAllocationInKb']
        self.assertEqual(0, avail % (8 * KiB_PER_GiB))
        self.assertEqual(before[pool][props[0]] - 16 * KiB_PER_GiB, avail)
        full = self.raw.ok(self.raw.get(
            '/api/instances/StoragePool::%s/relationships/Statistics'
            % pool))
        for key in ('capacityLimitInKb', 'spareCapacityInKb',
                    'thinCapacityAllocatedInKb', 'snapshotCapacityInKb',
                    'netCapacityInUseInKb', 'volumeAllocationLimitInKb'):
            self.assertIn(key, full)
        # 3.5 replaced snapCapacityInUseInKb by snapshotCapacityInKb.
        self.assertNotIn('snapCapacityInUseInKb', full)
        self.assertEqual(
            full['netCapacityInUseInKb'] + full['netUnusedCapacityInKb'],
            (full['capacityLimitInKb'] - full['spareCapacityInKb']) // 2)


class MappingTest(RawTestCase):
    emulator_kwargs = {'hosts': ('host-a', 'host-b')}

    def setUp(self):
        super().setUp()
        self.vol = self.raw.ok(self.raw.create('map'))['id']
        self.a = self.sdc_id('host-a')
        self.b = self.sdc_id('host-b')

    def test_map_rules(self):
        self.assertError(self.raw.action(self.vol, 'addMappedSdc',
                                         {'sdcId': '0123456789abcdef'}),
                         500, 80)
        self.assertEqual(400, self.raw.action(self.vol, 'addMappedSdc',
                                              {}).status_code)
        guid = self.emu_fixture.host('host-a')['guid'].lower()
        self.assertEqual({}, self.raw.ok(self.raw.action(
            self.vol, 'addMappedSdc', {'guid': guid})))
        self.assertError(self.raw.action(self.vol, 'addMappedSdc',
                                         {'sdcId': self.a}), 500, 81,
                         'already mapped')
        self.assertError(self.raw.action(self.vol, 'addMappedSdc',
                                         {'sdcId': self.b}), 500, 306,
                         'Only a single SDC')
        for flag in ('True', 'TRUE', True):
            self.raw.ok(self.raw.action(self.vol, 'addMappedSdc', {
                'sdcId': self.b, 'allowMultipleMappings': flag}))
            self.raw.ok(self.raw.action(self.vol, 'removeMappedSdc',
                                        {'sdcId': self.b}))
        info = self.raw.volume(self.vol)['mappedSdcInfo']
        self.assertEqual([self.a], [m['sdcId'] for m in info])
        self.assertEqual('ReadWrite', info[0]['accessMode'])
        mapped = self.raw.ok(self.raw.get(
            '/api/instances/Sdc::%s/relationships/Volume' % self.a))
        self.assertEqual([self.vol], [v['id'] for v in mapped])

    def test_unmap_rules(self):
        self.assertError(self.raw.action(self.vol, 'removeMappedSdc',
                                         {'sdcId': self.a}), 500, 84,
                         'not mapped')
        self.assertEqual({}, self.raw.ok(self.raw.action(
            self.vol, 'removeMappedSdc', {'allSdcs': ''})))
        for sdc in (self.a, self.b):
            self.raw.ok(self.raw.action(self.vol, 'addMappedSdc', {
                'sdcId': sdc, 'allowMultipleMappings': 'TRUE'}))
        self.raw.ok(self.raw.action(self.vol, 'removeMappedSdc',
                                    {'allSdcs': ''}))
        self.assertIsNone(self.raw.volume(self.vol)['mappedSdcInfo'])

    def test_limits(self):
        self.assertError(self.raw.action(self.vol, 'setMappedSdcLimits', {
            'sdcId': self.a, 'iopsLimit': '0'}), 500, 84)
        self.raw.ok(self.raw.action(self.vol, 'addMappedSdc',
                                    {'sdcId': self.a}))
        for bad in ({'iopsLimit': '5'}, {'bandwidthLimitInKbps': '1000'}):
            bad['sdcId'] = self.a
            self.assertEqual(400, self.raw.action(
                self.vol, 'setMappedSdcLimits', bad).status_code)
        self.raw.ok(self.raw.action(self.vol, 'setMappedSdcLimits', {
            'sdcId': self.a, 'iopsLimit': '11',
            'bandwidthLimitInKbps': '2048'}))
        info = self.raw.volume(self.vol)['mappedSdcInfo'][0]
        self.assertEqual(11, info['limitIops'])
        self.assertEqual(2, info['limitBwInMbps'])

    def test_devices_follow_mappings(self):
        self.emu.set_host('host-a', device_delay=0.3)
        self.raw.ok(self.raw.action(self.vol, 'addMappedSdc',
                                    {'sdcId': self.a}))
        link = self.device(self.vol, 'host-a')
        self.assertFalse(os.path.lexists(link))
        self.assertTrue(sio_base.wait_until(lambda: os.path.exists(link)))
        self.assertEqual(8 * 1024 ** 3, os.path.getsize(os.path.realpath(
            link)))
        self.assertFalse(os.path.lexists(self.device(self.vol, 'host-b')))
        self.emu.set_host('host-a', linger=0.3)
        self.raw.ok(self.raw.action(self.vol, 'removeMappedSdc',
                                    {'sdcId': self.a}))
        self.assertTrue(os.path.lexists(link))
        self.assertTrue(sio_base.wait_until(
            lambda: not os.path.lexists(link)))

    def test_device_never_appears(self):
        self.emu.set_host('host-b', never_appear=True, device_delay=0)
        self.raw.ok(self.raw.action(self.vol, 'addMappedSdc',
                                    {'sdcId': self.b}))
        time.sleep(0.2)
        self.assertFalse(os.path.lexists(self.device(self.vol, 'host-b')))
        self.assertIsNotNone(self.raw.volume(self.vol)['mappedSdcInfo'])

    def test_snapshot_and_extend_keep_data(self):
        self.emu.set_host('host-a', device_delay=0)
        self.raw.ok(self.raw.action(self.vol, 'addMappedSdc',
                                    {'sdcId': self.a}))
        link = self.device(self.vol, 'host-a')
        with open(link, 'r+b') as dev:
            dev.seek(3 * 1024 ** 3)
            dev.write(b'before snapshot')
        snap = self.raw.ok(self.raw.snapshot(self.vol, 'map-s'))
        snap_id = snap['volumeIdList'][0]
        with open(link, 'r+b') as dev:
            dev.seek(3 * 1024 ** 3)
            dev.write(b'after  snapshot')
        self.raw.ok(self.raw.action(self.vol, 'setVolumeSize',
                                    {'sizeInGB': '16'}))
        # The SDC shows the new size after a rescan.
        subprocess.check_call([self.emu_fixture.host()['drv_cfg'],
                               '--rescan'])
        self.assertEqual(16 * 1024 ** 3, os.path.getsize(link))
        self.raw.ok(self.raw.action(snap_id, 'addMappedSdc',
                                    {'sdcId': self.b}))
        snap_link = self.device(snap_id, 'host-b')
        self.assertTrue(sio_base.wait_until(
            lambda: os.path.exists(snap_link)))
        with open(snap_link, 'rb') as dev:
            dev.seek(3 * 1024 ** 3)
            self.assertEqual(b'before snapshot', dev.read(15))


class RemovalTest(RawTestCase):

    def tree(self):
        """base <- s1 <- s2, base <- s3."""
        base = self.raw.ok(self.raw.create('base'))['id']
        s1 = self.raw.ok(self.raw.snapshot(base, 's1'))['volumeIdList'][0]
        s2 = self.raw.ok(self.raw.snapshot(s1, 's2'))['volumeIdList'][0]
        s3 = self.raw.ok(self.raw.snapshot(base, 's3'))['volumeIdList'][0]
        return base, s1, s2, s3

    def names(self):
        return sorted(v['name'] for v in self.raw.ok(
            self.raw.get('/api/types/Volume/instances')))

    def remove(self, vol, mode):
        return self.raw.action(vol, 'removeVolume', {'removeMode': mode})

    def test_snapshot_object(self):
        base, s1, s2, s3 = self.tree()
        snap = self.raw.volume(s1)
        self.assertEqual('Snapshot', snap['volumeType'])
        self.assertEqual(base, snap['ancestorVolumeId'])
        self.assertEqual(self.raw.volume(base)['vtreeId'], snap['vtreeId'])
        self.assertIsNone(snap['mappedSdcInfo'])
        self.assertEqual(s1, self.raw.volume(s2)['ancestorVolumeId'])
        resp = self.raw.ok(self.raw.post(
            '/api/instances/System::%s/action/snapshotVolumes'
            % self.emu_fixture.info['system_id'], {'snapshotDefs': [
                {'volumeId': base, 'snapshotName': 'g1'},
                {'volumeId': s3, 'snapshotName': 'g2'}]}))
        self.assertEqual(2, len(resp['volumeIdList']))
        self.assertRegex(resp['snapshotGroupId'], '^[0-9a-f]{16}$')
        self.assertEqual(['g1', 'g2'], [self.raw.volume(v)['name']
                                        for v in resp['volumeIdList']])
        self.assertError(self.raw.snapshot(base, 's1'), 500, 99)

    def test_vtree_limit(self):
        self.emu.configure(max_vtree_volumes=3)
        base, = [self.raw.ok(self.raw.create('lim'))['id']]
        self.raw.ok(self.raw.snapshot(base, 'l1'))
        self.raw.ok(self.raw.snapshot(base, 'l2'))
        body = self.assertError(self.raw.snapshot(base, 'l3'), 500, 0,
                                'Error with details')
        self.assertEqual(182, body['details'][0]['rc'])
        self.assertEqual('TOO_MANY_SNAPS_IN_VTREE',
                         body['details'][0]['error'])

    def test_only_me_keeps_snapshots(self):
        base, s1, s2, s3 = self.tree()
        self.raw.ok(self.remove(base, 'ONLY_ME'))
        self.assertEqual(['s1', 's2', 's3'], self.names())
        self.assertEqual(s1, self.raw.ok(self.raw.get(
            '/api/types/Volume/instances/getByName::s1')))

    def test_including_descendants(self):
        base, s1, s2, s3 = self.tree()
        self.raw.ok(self.remove(s1, 'INCLUDING_DESCENDANTS'))
        self.assertEqual(['base', 's3'], self.names())

    def test_descendants_only(self):
        base, s1, s2, s3 = self.tree()
        self.raw.ok(self.remove(base, 'DESCENDANTS_ONLY'))
        self.assertEqual(['base'], self.names())

    def test_whole_vtree_from_a_snapshot(self):
        self.tree()
        other = self.raw.ok(self.raw.create('other'))['id']
        self.raw.ok(self.remove(self.raw.ok(self.raw.get(
            '/api/types/Volume/instances/getByName::s2')), 'WHOLE_VTREE'))
        self.assertEqual(['other'], self.names())
        self.assertEqual(other, self.raw.volume(other)['id'])

    def test_mapped_volumes_block_removal(self):
        base, s1, s2, s3 = self.tree()
        self.raw.ok(self.raw.action(s2, 'addMappedSdc',
                                    {'sdcId': self.sdc_id()}))
        self.assertError(self.remove(s2, 'ONLY_ME'), 500, 104,
                         'Volume is mapped')
        self.assertError(self.remove(base, 'WHOLE_VTREE'), 500, 104)
        self.raw.ok(self.remove(s3, 'ONLY_ME'))
        self.assertEqual(400, self.remove(base, 'EVERYTHING').status_code)

    def test_mapped_removal_4x_is_renumbered(self):
        self.emu.configure(version='4.5')
        vol = self.raw.ok(self.raw.create('m4'))['id']
        self.raw.ok(self.raw.action(vol, 'addMappedSdc',
                                    {'sdcId': self.sdc_id()}))
        body = self.assertError(self.remove(vol, 'ONLY_ME'), 500, 4063)
        self.assertNotIn('Volume is mapped', body['message'])
        mapped = self.raw.volume(vol)['mappedSdcInfo']
        self.assertEqual([self.sdc_id()], [m['sdcId'] for m in mapped])

    def test_removal_window(self):
        self.emu.configure(removal_window=5)
        vol = self.raw.ok(self.raw.create('gone'))['id']
        self.raw.ok(self.remove(vol, 'ONLY_ME'))
        self.assertError(self.raw.get('/api/instances/Volume::%s' % vol),
                         500, 0, 'removal operation is currently in '
                         'progress')


class FaultTest(RawTestCase):

    def test_count_skip_and_probability(self):
        self.emu.add_fault('server_error', path='System/instances',
                           count=2, skip=1)
        self.emu.add_fault('forbidden', path='Sdc/instances',
                           probability=0.0, count=None)
        codes = [self.raw.get('/api/types/System/instances').status_code
                 for _ in range(4)]
        self.assertEqual([200, 500, 500, 200], codes)
        self.assertEqual(200, self.raw.get('/api/types/Sdc/instances')
                         .status_code)
        faults = self.emu.list_faults()
        self.assertEqual(['status'], [f['kind'] for f in faults])
        self.emu.clear_faults()
        self.assertEqual([], self.emu.list_faults())

    def test_method_filter_and_html(self):
        self.emu.add_fault('unavailable', method='POST', count=None)
        self.assertEqual(200, self.raw.get('/api/types/System/instances')
                         .status_code)
        resp = self.raw.create('h')
        self.assertEqual(503, resp.status_code)
        self.assertIn('text/html', resp.headers['Content-Type'])
        self.assertRaises(ValueError, resp.json)

    def test_reset_and_hang(self):
        self.emu.add_fault('reset', path='System', count=1)
        self.assertRaises(requests.ConnectionError, self.raw.get,
                          '/api/types/System/instances')
        self.emu.add_fault('hang', path='System', seconds=2, count=1)
        self.assertRaises(requests.Timeout, self.raw.get,
                          '/api/types/System/instances', timeout=0.2)
        self.assertEqual(200, self.raw.get('/api/types/System/instances')
                         .status_code)

    def test_lost_response_applies_the_change(self):
        self.emu.add_fault('lost_response', path='Volume/instances$',
                           count=1, mode='500')
        self.assertEqual(500, self.raw.create('lost').status_code)
        self.assertEqual(1, len(self.emu.volumes()))

    def test_expire_token_fault(self):
        self.emu.add_fault('expire_token', count=1)
        self.assertEqual(401, self.raw.get('/api/types/System/instances')
                         .status_code)
        self.raw.login()
        self.assertEqual(200, self.raw.get('/api/types/System/instances')
                         .status_code)

    def test_unknown_fault_kind(self):
        self.assertRaises(ValueError, self.emu.add_fault, 'meteor')

    def test_request_log_has_no_credentials(self):
        self.raw.create('logged')
        log = self.emu.request_log()
        text = json.dumps(log)
        self.assertNotIn(self.emu_fixture.info['password'], text)
        self.assertNotIn(self.raw.token, text)
        last = log[-1]
        self.assertEqual(('POST', '/api/types/Volume/instances', 200,
                          'basic'), (last['method'], last['path'],
                                     last['status'], last['auth']))
        self.assertGreater(last['bytes_out'], 0)


class RequestLogOrderTest(sio_base.TestCase):

    def test_entry_is_complete_before_the_answer_leaves(self):
        # A client may read the request log as soon as it has the answer.
        handler = server._Handler.__new__(server._Handler)
        for name in ('send_response', 'send_header', 'end_headers'):
            setattr(handler, name, mock.Mock())
        entry = {'time': time.time() - 1.0, 'status': 200}
        seen = []
        handler.wfile = mock.Mock()
        handler.wfile.write.side_effect = lambda data: seen.append(
            dict(entry))
        length = len(json.dumps({'id': 'ab'}))
        self.assertEqual(length, handler._send(200, {'id': 'ab'},
                                               entry=entry))
        self.assertEqual(length, seen[0]['bytes_out'])
        self.assertGreaterEqual(seen[0]['duration'], 1.0)


class AuditTest(RawTestCase):

    def test_leaks_strays_allow_and_baseline(self):
        keep = self.raw.ok(self.raw.create('keep'))['id']
        self.emu.baseline()
        leak = self.raw.ok(self.raw.create('leak'))['id']
        allowed = self.raw.ok(self.raw.create('allowed'))['id']
        self.emu.set_host('host-a', device_delay=0)
        self.raw.ok(self.raw.action(leak, 'addMappedSdc',
                                    {'sdcId': self.sdc_id()}))
        audit = self.emu.audit(['allowed'])
        self.assertEqual([leak], [v['id'] for v in audit['leaked_volumes']])
        self.assertEqual([{'volumeId': leak, 'name': 'leak',
                           'sdcId': self.sdc_id(), 'host': 'host-a'}],
                         audit['stray_mappings'])
        self.assertEqual([], audit['stray_devices'])
        self.assertNotIn(keep, [v['id'] for v in audit['leaked_volumes']])
        self.assertIn(allowed, [v['id'] for v in
                                self.emu.audit()['leaked_volumes']])
        # A device link left behind without a mapping is reported.
        root = self.emu_fixture.host()['device_root']
        os.symlink('/nonexistent', os.path.join(
            root, 'emc-vol-%s-%s' % (self.emu_fixture.info['system_id'],
                                     allowed)))
        self.assertEqual(1, len(self.emu.audit()['stray_devices']))

    def test_vtree_and_limits_endpoints(self):
        vol = self.raw.ok(self.raw.create('vt'))['id']
        self.raw.ok(self.raw.snapshot(vol, 'vt-s'))
        tree_id = self.raw.volume(vol)['vtreeId']
        tree = self.raw.ok(self.raw.get('/api/instances/VTree::%s'
                                        % tree_id))
        self.assertEqual((vol, 2), (tree['baseVolumeId'],
                                    tree['numOfVolumes']))
        stats = self.raw.ok(self.raw.get(
            '/api/instances/VTree::%s/relationships/Statistics' % tree_id))
        self.assertEqual(1, stats['numOfSnapshots'])
        limits = self.raw.ok(self.raw.post(
            '/api/instances/System/action/querySystemLimits'))
        by_type = dict((e['type'], e['maxVal'])
                       for e in limits['systemLimitEntryList'])
        self.assertEqual('127', by_type['volumePerVtree'])
        self.assertEqual('1048576', by_type['volumeSizeGb'])

    def test_preload_is_fast_and_baseline(self):
        started = time.time()
        self.emu.preload(volumes=10000, sdcs=1000)
        self.assertLess(time.time() - started, 5)
        self.assertEqual([], self.emu.audit()['leaked_volumes'])
        vol = self.raw.ok(self.raw.get(
            '/api/types/Volume/instances/getByName::pre00005000'))
        self.assertRegex(vol, '^[0-9a-f]{16}$')
        self.assertEqual(1001, len(self.raw.ok(self.raw.get(
            '/api/types/Sdc/instances'))))


class DrvCfgScriptTest(sio_base.EmulatorTestCase):

    def test_formats(self):
        info = self.emu_fixture.host()
        run = [info['drv_cfg']]
        out = subprocess.check_output(run + ['--query_guid']).decode()
        self.assertEqual(info['guid'] + '\n', out)
        out = subprocess.check_output(run + ['--query_vols']).decode()
        self.assertEqual('Retrieved 0 volume(s)\n', out)
        vol = self.client.create_volume('dv', 8, self.pool_id())
        self.emu.set_host('host-a', device_delay=0)
        self.client.map_volume(vol, sdc_id=info['sdc_id'])
        out = subprocess.check_output(run + ['--query_vols']).decode()
        self.assertEqual('Retrieved 1 volume(s)\nVOL-ID %s MDM-ID %s\n'
                         % (vol, self.emu_fixture.info['system_id']), out)
        out = subprocess.check_output(run + ['--query_mdms']).decode()
        self.assertIn('MDM-ID %s SDC ID %s' % (
            self.emu_fixture.info['system_id'], info['sdc_id']), out)
        self.assertEqual(1, subprocess.call(run + ['--bogus'],
                                            stderr=subprocess.DEVNULL))


class PoolLayoutTest(RawTestCase):
    emulator_kwargs = {'pools': (
        ('pd1', 'sp1', 64),
        ('pd1', 'fg', 64, {'data_layout': 'FineGranularity'}),
        ('pd1', 'raw', 64, {'zero_padding': False}))}

    def pool(self, name):
        for entry in self.emu_fixture.info['pools']:
            if entry['storage_pool'] == name:
                return self.raw.ok(self.raw.get(
                    '/api/instances/StoragePool::%s' % entry['id']))
        raise KeyError(name)

    def test_pool_properties(self):
        self.assertEqual((True, 'MediumGranularity'),
                         (self.pool('sp1')['zeroPaddingEnabled'],
                          self.pool('sp1')['dataLayout']))
        self.assertEqual((True, 'FineGranularity'),
                         (self.pool('fg')['zeroPaddingEnabled'],
                          self.pool('fg')['dataLayout']))
        self.assertEqual((False, 'MediumGranularity'),
                         (self.pool('raw')['zeroPaddingEnabled'],
                          self.pool('raw')['dataLayout']))
        self.emu.set_pool('sp1', zero_padding=False,
                          data_layout='FineGranularity')
        self.assertEqual((False, 'FineGranularity'),
                         (self.pool('sp1')['zeroPaddingEnabled'],
                          self.pool('sp1')['dataLayout']))
        self.assertRaises(ValueError, self.emu.set_pool, 'sp1',
                          data_layout='Coarse')

    def test_fine_granularity_refuses_thick(self):
        fg = self.pool('fg')['id']
        body = self.assertError(self.raw.create('thick-fg', pool=fg), 500,
                                0)
        self.assertIn('Fine Granularity', body['message'])
        self.assertEqual([], self.emu.volumes())
        thin = self.raw.ok(self.raw.create('thin-fg', vtype='ThinProvisioned',
                                           pool=fg))['id']
        self.assertEqual('FineGranularity',
                         self.raw.volume(thin)['dataLayout'])
        # Zero padding off refuses nothing: the gateway leaves the
        # decision to the client (Cinder's is_volume_creation_safe).
        raw = self.pool('raw')['id']
        self.raw.ok(self.raw.create('thick-raw', pool=raw))


class StatisticsByVersionTest(RawTestCase):
    emulator_kwargs = {'version': '3.0'}
    path = '/api/types/StoragePool/instances/action/querySelectedStatistics'

    def query(self, *props):
        pool = self.emu_fixture.info['pools'][0]['id']
        return self.raw.post(self.path, {'ids': [pool],
                                         'properties': list(props)})

    def test_both_copies_and_snapshot_name(self):
        vol = self.raw.ok(self.raw.create('thick', 16 * KiB_PER_GiB))['id']
        self.raw.ok(self.raw.create('thin', 8 * KiB_PER_GiB,
                                    'ThinProvisioned'))
        self.raw.ok(self.raw.snapshot(vol, 'snap'))
        pool = self.emu_fixture.info['pools'][0]['id']
        stats = self.raw.ok(self.query(
            'thickCapacityInUseInKb', 'thinCapacityAllocatedInKb',
            'snapCapacityInUseInKb', 'netCapacityInUseInKb'))[pool]
        self.assertEqual({'thickCapacityInUseInKb': 32 * KiB_PER_GiB,
                          'thinCapacityAllocatedInKb': 16 * KiB_PER_GiB,
                          'snapCapacityInUseInKb': 32 * KiB_PER_GiB,
                          'netCapacityInUseInKb': 16 * KiB_PER_GiB},
                         stats)
        self.assertEqual(400, self.query('snapshotCapacityInKb').status_code)
        self.emu.configure(version='3.5')
        stats = self.raw.ok(self.query('snapshotCapacityInKb'))[pool]
        self.assertEqual(32 * KiB_PER_GiB, stats['snapshotCapacityInKb'])
        self.assertEqual(400, self.query('snapCapacityInUseInKb').status_code)


class SubprocessTest(sio_base.TestCase):

    def test_subprocess_fixture_and_admin_client(self):
        fix = self.useFixture(emu_fixture.EmulatorFixture(
            mode='subprocess', https=True, version='4.5',
            hosts=('h1', 'h2'), password='pw-123'))
        self.assertEqual('https', fix.info['scheme'])
        self.assertEqual({'h1', 'h2'}, set(fix.info['hosts']))
        client = sio_base.client_mod.Client(**fix.client_kwargs())
        self.addCleanup(client.session.close)
        pool = client.get_pool_id('pd1', 'sp1')
        fix.admin.add_fault('insufficient_resources', path='Volume/inst',
                            count=1)
        vol = client.create_volume('sub', 8, pool)
        self.assertEqual([vol], [v['id'] for v in
                                 fix.admin.audit()['leaked_volumes']])
        self.assertEqual(
            [500, 200], [e['status'] for e in fix.admin.request_log()
                         if e['path'] == '/api/types/Volume/instances'])
        self.assertEqual('4.5', client.get_api_version())
        client.delete_volume(vol)
        self.assertEqual([], fix.admin.audit()['leaked_volumes'])

    def test_cli_prints_json_then_stops(self):
        parser = cli.configure_parser(argparse.ArgumentParser())
        args = parser.parse_args(['--hosts', 'x,y', '--api-version', '4.0',
                                  '--pool', 'pdA:spA:64',
                                  '--pool', 'pdA:spB:64:nopadding:fine',
                                  '--preload-volumes', '5'])
        out = io.StringIO()
        stop = threading.Event()
        thread = threading.Thread(target=cli.run, args=(args, out, stop))
        thread.start()
        self.assertTrue(sio_base.wait_until(lambda: out.getvalue()))
        info = json.loads(out.getvalue())
        stop.set()
        thread.join(10)
        self.assertFalse(thread.is_alive())
        self.assertEqual('4.0', info['version'])
        self.assertEqual(['x', 'y'], sorted(info['hosts']))
        self.assertEqual([('pdA', 'spA'), ('pdA', 'spB')], [
            (p['protection_domain'], p['storage_pool'])
            for p in info['pools']])
        self.assertEqual(('pd', 'sp', 8, {'zero_padding': False}),
                         cli._pool('pd:sp:8:nopadding'))
        self.assertEqual('pd:sp:8:fine:nopadding', cli.pool_argument(
            ('pd', 'sp', 8, {'zero_padding': False,
                             'data_layout': 'FineGranularity'})))
        self.assertRaises(argparse.ArgumentTypeError, cli._pool,
                          'pd:sp:8:bogus')
        self.assertFalse(os.path.exists(info['state_dir']))
        self.assertRaises(requests.ConnectionError, requests.get,
                          info['url'] + '/api/version', timeout=2)
