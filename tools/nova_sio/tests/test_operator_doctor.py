# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""``nova-sio doctor`` against the gateway and SDC emulator.

A real nova.conf is written for every test, from a correct one with one
option changed; the doctor must fail exactly the checks concerned and
skip the ones that depend on them.
"""

import http.server
import io
import json
import os
import sys
import threading

import fixtures
import testtools
import yaml

from nova_sio import cli
from nova_sio.emulator import fixture as emu_fixture
from nova_sio import operator_doctor
from nova_sio.tests import test_operator_install as install_tests

OS_VARS = ('OS_CLOUD', 'OS_AUTH_URL', 'OS_USERNAME', 'OS_PASSWORD',
           'OS_PROJECT_NAME', 'OS_USER_DOMAIN_NAME',
           'OS_PROJECT_DOMAIN_NAME', 'OS_REGION_NAME', 'OS_INTERFACE',
           'OS_CACERT')


class DoctorTestCase(testtools.TestCase):
    emulator_kwargs = {}

    def setUp(self):
        super(DoctorTestCase, self).setUp()
        self.useFixture(fixtures.Timeout(60, gentle=True))
        for name in OS_VARS:
            self.useFixture(fixtures.EnvironmentVariable(name))
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable('HOME', self.tmp))
        self.emu = self.useFixture(emu_fixture.EmulatorFixture(
            https=True, **self.emulator_kwargs))
        info = self.emu.info
        host = self.emu.host('host-a')
        self.guid = host['guid']
        self.options = {
            ('libvirt', 'images_type'): 'sio',
            ('scaleio', 'rest_server_ip'): info['host'],
            ('scaleio', 'rest_server_port'): str(info['port']),
            ('scaleio', 'rest_server_scheme'): info['scheme'],
            ('scaleio', 'rest_server_username'): info['username'],
            ('scaleio', 'rest_server_password'): info['password'],
            ('scaleio', 'server_certificate_path'): info['ca_cert'],
            ('scaleio', 'protection_domain_name'): 'pd1',
            ('scaleio', 'storage_pool_name'): 'sp1',
            ('scaleio', 'drv_cfg_path'): host['drv_cfg'],
            ('scaleio', 'device_root'): host['device_root'],
        }

    def write_conf(self, **changes):
        """Write nova.conf; ``group__option=None`` drops an option."""
        options = dict(self.options)
        for key, value in changes.items():
            group, name = key.split('__')
            if value is None:
                options.pop((group, name), None)
            else:
                options[(group, name)] = value
        lines = ['[DEFAULT]', 'debug = False']
        for group in ('libvirt', 'scaleio'):
            lines.append('[%s]' % group)
            for (g, name), value in sorted(options.items()):
                if g == group:
                    lines.append('%s = %s' % (name, value))
        path = os.path.join(self.tmp, 'nova.conf')
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        return path

    def doctor(self, *extra, **changes):
        out, err = io.StringIO(), io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', err))
        if '--nova-dir' not in extra:
            # An interpreter without Nova: the tree checks are skipped.
            extra += ('--python', sys.executable)
        code = cli.main(['doctor', '--json', '--config-file',
                         self.write_conf(**changes)] + list(extra))
        doc = json.loads(out.getvalue())
        self.assertEqual(1 if not doc['ok'] else 0, code)
        return dict((r['check'], r) for r in doc['checks'])

    def assertStatuses(self, checks, **expected):
        """Each named check has that status; every other one passes."""
        wanted = dict((k if k in checks else k.replace('_', ' '), v)
                      for k, v in expected.items())
        for name, result in checks.items():
            want = wanted.pop(name, 'pass')
            if name == 'flavors' and 'flavors' not in expected:
                want = 'skip'
            if name in ('nova backend', 'upgrade hook') and \
                    name.replace(' ', '_') not in expected:
                want = 'skip'
            self.assertEqual(want, result['status'],
                             '%s: %s' % (name, result['detail']))
            if want == 'fail':
                self.assertTrue(result['hint'], name)
        self.assertEqual({}, wanted, 'checks not run')


class DoctorConfigTest(DoctorTestCase):

    def test_correct_config_passes(self):
        checks = self.doctor()
        self.assertStatuses(checks)
        self.assertIn(self.guid, checks['sdc registered']['detail'])

    def test_human_output(self):
        out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', io.StringIO()))
        code = cli.main(['doctor', '--config-file',
                         self.write_conf(scaleio__storage_pool_name='nope')])
        self.assertEqual(1, code)
        text = out.getvalue()
        self.assertIn('[FAIL] storage pool', text)
        self.assertIn('fix: correct [scaleio] storage_pool_name', text)
        self.assertIn('1 failed', text)
        self.assertNotIn(self.emu.info['password'], text)

    def test_images_type_wrong(self):
        checks = self.doctor(libvirt__images_type='qcow2')
        self.assertStatuses(checks, images_type='fail')
        self.assertIn('qcow2', checks['images_type']['detail'])

    def test_each_mandatory_option_missing(self):
        for name in ('rest_server_ip', 'rest_server_username',
                     'rest_server_password', 'protection_domain_name',
                     'storage_pool_name'):
            checks = self.doctor(**{'scaleio__' + name: None})
            self.assertEqual('fail', checks['option ' + name]['status'])
            for later in ('gateway', 'credentials', 'protection domain',
                          'storage pool', 'sdc registered'):
                self.assertEqual('skip', checks[later]['status'], name)
            # Host checks do not depend on the gateway.
            self.assertEqual('pass', checks['drv_cfg']['status'])

    def test_gateway_address_wrong(self):
        checks = self.doctor(scaleio__rest_server_ip='127.0.0.2')
        self.assertStatuses(checks, gateway='fail', tls='skip',
                            credentials='skip',
                            protection_domain='skip', storage_pool='skip',
                            pool_layout='skip',
                            sdc_registered='skip')

    def test_username_wrong(self):
        checks = self.doctor(scaleio__rest_server_username='intruder')
        self.assertStatuses(checks, credentials='fail',
                            protection_domain='skip', storage_pool='skip',
                            pool_layout='skip',
                            sdc_registered='skip')
        self.assertIn('intruder', checks['credentials']['detail'])

    def test_password_wrong(self):
        checks = self.doctor(scaleio__rest_server_password='wrong')
        self.assertStatuses(checks, credentials='fail',
                            protection_domain='skip', storage_pool='skip',
                            pool_layout='skip',
                            sdc_registered='skip')

    def test_protection_domain_wrong(self):
        checks = self.doctor(scaleio__protection_domain_name='pd9')
        self.assertStatuses(checks, protection_domain='fail',
                            storage_pool='skip', pool_layout='skip')

    def test_storage_pool_wrong(self):
        checks = self.doctor(scaleio__storage_pool_name='sp9')
        self.assertStatuses(checks, storage_pool='fail', pool_layout='skip')

    def test_untrusted_certificate(self):
        checks = self.doctor(scaleio__server_certificate_path=None)
        self.assertStatuses(checks, tls='fail', credentials='skip',
                            protection_domain='skip', storage_pool='skip',
                            pool_layout='skip',
                            sdc_registered='skip')
        self.assertIn('server_certificate_path', checks['tls']['hint'])

    def test_verification_off_warns(self):
        checks = self.doctor(scaleio__server_certificate_path=None,
                             scaleio__verify_server_certificate='False')
        self.assertStatuses(checks, tls='warn')

    def test_invalid_option_value(self):
        checks = self.doctor(scaleio__volume_name_prefix='toolong')
        self.assertStatuses(checks, option_values='fail', gateway='skip',
                            tls='skip', credentials='skip',
                            protection_domain='skip', storage_pool='skip',
                            pool_layout='skip',
                            sdc_registered='skip')
        self.assertIn('volume_name_prefix', checks['option values'][
            'detail'])

    def test_sdc_guid_from_config_any_case(self):
        checks = self.doctor(scaleio__default_sdcguid=self.guid.lower())
        self.assertStatuses(checks)
        self.assertIn('default_sdcguid', checks['sdc registered']['detail'])

    def test_sdc_guid_unknown(self):
        other = '00000000-1111-2222-3333-444444444444'
        checks = self.doctor(scaleio__default_sdcguid=other)
        # The configured GUID also differs from this host's SDC.
        self.assertStatuses(checks, sdc_guid='warn', sdc_registered='fail')

    def test_drv_cfg_missing(self):
        checks = self.doctor(scaleio__drv_cfg_path=os.path.join(
            self.tmp, 'no-drv_cfg'))
        self.assertStatuses(checks, drv_cfg='fail', sdc_guid='fail',
                            sdc_registered='skip')

    def test_device_root_missing(self):
        checks = self.doctor(scaleio__device_root=os.path.join(
            self.tmp, 'by-id'))
        self.assertStatuses(checks, device_directory='fail')

    def test_config_file_missing(self):
        out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        code = cli.main(['doctor', '--json', '--config-file',
                         os.path.join(self.tmp, 'absent.conf')])
        self.assertEqual(1, code)
        doc = json.loads(out.getvalue())
        self.assertEqual([('config', 'fail')],
                         [(r['check'], r['status']) for r in doc['checks']])


class DoctorPoolLayoutTest(DoctorTestCase):
    emulator_kwargs = {'pools': (
        ('pd1', 'sp1', 64),
        ('pd1', 'fg', 64, {'data_layout': 'FineGranularity'}),
        ('pd1', 'raw', 64, {'zero_padding': False}))}

    def test_padded_medium_pool_passes(self):
        checks = self.doctor()
        self.assertStatuses(checks)
        self.assertEqual('pd1:sp1 zero padding on, Medium Granularity',
                         checks['pool layout']['detail'])

    def test_zero_padding_off(self):
        checks = self.doctor(scaleio__storage_pool_name='raw')
        self.assertStatuses(checks, pool_layout='fail')
        self.assertIn('pd1:raw zero padding off: volumes are refused',
                      checks['pool layout']['detail'])
        self.assertIn('allow_non_padded_volumes',
                      checks['pool layout']['hint'])
        checks = self.doctor(scaleio__storage_pool_name='raw',
                             scaleio__allow_non_padded_volumes='True')
        self.assertStatuses(checks, pool_layout='warn')
        self.assertIn('may show old data', checks['pool layout']['detail'])

    def test_fine_granularity_against_provisioning(self):
        checks = self.doctor(scaleio__storage_pool_name='fg')
        self.assertStatuses(checks, pool_layout='warn')
        self.assertIn('pd1:fg zero padding on, Fine Granularity: thick '
                      'volumes are created thin',
                      checks['pool layout']['detail'])
        checks = self.doctor(scaleio__storage_pool_name='fg',
                             scaleio__provisioning_type='thin')
        self.assertStatuses(checks)
        self.assertEqual('pd1:fg zero padding on, Fine Granularity',
                         checks['pool layout']['detail'])

    def test_additional_pools_are_inspected(self):
        checks = self.doctor(scaleio__additional_pools='pd1:raw,pd1:fg')
        self.assertStatuses(checks, pool_layout='fail')
        detail = checks['pool layout']['detail']
        for text in ('pd1:sp1 zero padding on', 'pd1:raw zero padding off',
                     'pd1:fg zero padding on, Fine Granularity: thick'):
            self.assertIn(text, detail)


class _FakeCloud(http.server.BaseHTTPRequestHandler):
    """Keystone v3 password auth and the compute flavor list."""

    flavors = []
    token = 'tok-123'
    max_microversion = '2.90'
    seen_versions = []

    def log_message(self, *args):
        pass

    def _send(self, code, doc, headers=()):
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers[
            'Content-Length'])))
        user = body['auth']['identity']['password']['user']
        if user['name'] != 'admin' or user['password'] != 'secret':
            return self._send(401, {'error': {'code': 401}})
        base = 'http://%s:%d' % self.server.server_address
        catalog = [{'type': 'compute', 'endpoints': [
            {'interface': 'internal', 'region': 'R1',
             'url': base + '/wrong'},
            {'interface': 'public', 'region': 'R1',
             'url': base + '/compute/v2.1'}]}]
        self._send(201, {'token': {'catalog': catalog}},
                   [('X-Subject-Token', self.token)])

    def do_GET(self):
        if self.headers.get('X-Auth-Token') != self.token:
            return self._send(401, {})
        if not self.path.startswith('/compute/v2.1/flavors/detail'):
            return self._send(404, {})
        wanted = self.headers.get('X-OpenStack-Nova-API-Version')
        self.seen_versions.append(wanted)
        if wanted and (tuple(int(x) for x in wanted.split('.')) >
                       tuple(int(x) for x in
                             self.max_microversion.split('.'))):
            return self._send(406, {})
        flavors = [dict(f) for f in self.flavors]
        if not wanted:
            for flavor in flavors:
                flavor.pop('extra_specs', None)
        self._send(200, {'flavors': flavors})


class DoctorFlavorTest(DoctorTestCase):

    def setUp(self):
        super(DoctorFlavorTest, self).setUp()
        _FakeCloud.flavors = [
            {'name': 'm1.sio', 'disk': 16, 'swap': '',
             'OS-FLV-EXT-DATA:ephemeral': 0},
            {'name': 'm1.odd', 'disk': 10, 'swap': 512,
             'OS-FLV-EXT-DATA:ephemeral': 8},
            {'name': 'm1.eph', 'disk': 8, 'swap': 8192,
             'OS-FLV-EXT-DATA:ephemeral': 4},
        ]
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                 _FakeCloud)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.auth_url = 'http://127.0.0.1:%d' % server.server_address[1]

    def os_args(self, password='secret'):
        return ['--os-auth-url', self.auth_url, '--os-username', 'admin',
                '--os-password', password, '--os-project-name', 'admin']

    def test_flavors_breaking_the_rule(self):
        checks = self.doctor(*self.os_args())
        self.assertStatuses(checks, flavors='fail')
        detail = checks['flavors']['detail']
        self.assertIn('m1.odd (root disk 10 GiB, swap 512 MiB)', detail)
        self.assertIn('m1.eph (ephemeral 4 GiB)', detail)
        self.assertNotIn('m1.sio', detail)

    def test_rounding_turns_failure_into_warning(self):
        checks = self.doctor(*self.os_args(),
                             scaleio__round_volume_capacity='True')
        self.assertStatuses(checks, flavors='warn')

    def test_all_flavors_fit(self):
        _FakeCloud.flavors = _FakeCloud.flavors[:1]
        checks = self.doctor(*self.os_args())
        self.assertStatuses(checks, flavors='pass')

    def test_bad_credentials(self):
        checks = self.doctor(*self.os_args(password='nope'))
        self.assertStatuses(checks, flavors='fail')
        self.assertIn('401', checks['flavors']['detail'])

    def test_clouds_yaml(self):
        path = os.path.join(self.tmp, '.config', 'openstack')
        os.makedirs(path)
        with open(os.path.join(path, 'clouds.yaml'), 'w') as f:
            yaml.safe_dump({'clouds': {'mycloud': {
                'region_name': 'R1',
                'auth': {'auth_url': self.auth_url, 'username': 'admin',
                         'password': 'secret', 'project_name': 'admin'},
            }}}, f)
        checks = self.doctor('--os-cloud', 'mycloud')
        self.assertStatuses(checks, flavors='fail')

    def test_flavor_pools(self):
        _FakeCloud.seen_versions = []
        _FakeCloud.flavors = _FakeCloud.flavors[:1] + [
            {'name': 'm1.fg', 'disk': 16, 'swap': '',
             'OS-FLV-EXT-DATA:ephemeral': 0,
             'extra_specs': {'sio:provisioning_type': 'thick'}}]
        self.emu.admin.set_pool('sp1', data_layout='FineGranularity')
        checks = self.doctor(*self.os_args(),
                             scaleio__provisioning_type='thin')
        self.assertStatuses(checks, flavors='pass', flavor_pools='warn')
        self.assertEqual('pd1:sp1 zero padding on, Fine Granularity',
                         checks['pool layout']['detail'])
        self.assertIn('pd1:sp1 zero padding on, Fine Granularity: thick '
                      'volumes are created thin',
                      checks['flavor pools']['detail'])
        self.assertEqual(['2.61'], _FakeCloud.seen_versions)

    def test_flavor_list_before_2_61(self):
        _FakeCloud.seen_versions = []
        self.addCleanup(setattr, _FakeCloud, 'max_microversion', '2.90')
        _FakeCloud.max_microversion = '2.1'
        _FakeCloud.flavors = [dict(_FakeCloud.flavors[0], extra_specs={
            'sio:provisioning_type': 'thick'})]
        checks = self.doctor(*self.os_args())
        self.assertStatuses(checks, flavors='pass')
        self.assertNotIn('flavor pools', checks)
        self.assertEqual(['2.61', None], _FakeCloud.seen_versions)

    def test_flavor_problems(self):
        self.assertEqual([], operator_doctor.flavor_problems(
            {'disk': 0, 'swap': '', 'OS-FLV-EXT-DATA:ephemeral': 0}))
        self.assertEqual(['swap 1024 MiB'], operator_doctor.flavor_problems(
            {'disk': 24, 'swap': 1024}))


class DoctorBackendTest(install_tests.OperatorTestCase):
    """The ``nova backend`` check on a real (pip-like) Nova tree."""

    def backend(self, images_type='sio'):
        conf = os.path.join(self.base, 'nova.conf')
        with open(conf, 'w') as f:
            f.write('[libvirt]\nimages_type = %s\n' % images_type)
        _code, doc = self.cli('doctor', '--json', '--config-file', conf,
                              '--nova-dir', self.nova)
        checks = dict((r['check'], r) for r in doc['checks'])
        return checks['nova backend'], checks['upgrade hook']

    def test_installed_backend_passes(self):
        self.assertEqual(0, self.install()[0])
        backend, hook = self.backend()
        self.assertEqual('pass', backend['status'], backend)
        self.assertIn(self.nova, backend['detail'])
        self.assertEqual('skip', hook['status'])
        self.assertIn('no distribution package', hook['detail'])

    def test_configured_for_sio_without_backend(self):
        backend, _hook = self.backend()
        self.assertEqual('fail', backend['status'])
        self.assertIn('configured for sio but the backend is missing',
                      backend['detail'])
        self.assertIn('nova-sio install', backend['hint'])

    def test_replaced_files_fail_with_the_reinstall_hint(self):
        self.assertEqual(0, self.install()[0])
        rel, _hunk = install_tests.first_hunk(self.version)
        with open(os.path.join(install_tests.golden_tree(self.version),
                               rel), 'rb') as f:
            pristine = f.read()
        with open(os.path.join(self.root, rel), 'wb') as f:
            f.write(pristine)
        backend, _hook = self.backend()
        self.assertEqual('fail', backend['status'])
        self.assertIn('configured for sio but the backend is missing',
                      backend['detail'])
        self.assertIn(rel, backend['detail'])
        self.assertIn('nova-sio reinstall', backend['hint'])

    def test_not_configured_for_sio(self):
        backend, _hook = self.backend(images_type='qcow2')
        self.assertEqual('pass', backend['status'])
        self.assertIn('images_type is not sio', backend['detail'])
