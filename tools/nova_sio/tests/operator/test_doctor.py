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
import time
import urllib.parse

import fixtures
import testtools
import yaml

from nova_sio import cli
from nova_sio.emulator import fixture as emu_fixture
from nova_sio.operator.doctor import base
from nova_sio.operator.doctor import checklist
from nova_sio.tests.operator import test_install as install_tests

OS_VARS = ('OS_CLOUD', 'OS_AUTH_URL', 'OS_USERNAME', 'OS_PASSWORD',
           'OS_PROJECT_NAME', 'OS_USER_DOMAIN_NAME',
           'OS_PROJECT_DOMAIN_NAME', 'OS_REGION_NAME', 'OS_INTERFACE',
           'OS_CACERT')


class RunnerTest(testtools.TestCase):
    """The check runner on plain check functions."""

    def run_named(self, checks):
        return [(name, base.STATUS[r.code], r.details)
                for name, r in base.run_checks(checks, None)]

    def test_skips_name_the_root_cause(self):
        found = self.run_named([
            base.Check('a', lambda ctx: base.failure('broken', 'fix a'),
                       blocked='a is broken'),
            base.Check('b', lambda ctx: base.success('fine'), needs=['a'],
                       blocked='b is off'),
            base.Check('c', lambda ctx: base.success('fine'), needs=['b']),
            base.Check('d', lambda ctx: base.warning('meh', 'fix d')),
            base.Check('e', lambda ctx: base.success('ran'), needs=['d'])])
        self.assertEqual([('a', 'fail', 'broken'),
                          ('b', 'skip', 'not checked: a is broken'),
                          ('c', 'skip', 'not checked: a is broken'),
                          ('d', 'warn', 'meh'), ('e', 'pass', 'ran')],
                         found)

    def test_raising_check_fails_and_the_rest_runs(self):
        def explode(ctx):
            raise KeyError('gone')
        found = base.run_checks([
            base.Check('x', explode),
            base.Check('y', lambda ctx: None),
            base.Check('z', lambda ctx: base.success('ran'))], None)
        self.assertEqual(['x', 'z'], [name for name, _r in found])
        self.assertEqual(base.Code.FAILURE, found[0][1].code)
        self.assertIn("KeyError: 'gone'", found[0][1].details)
        self.assertTrue(found[0][1].hint)
        self.assertEqual(base.Code.FAILURE, base.worst(found))

    def test_fatal_failure_stops(self):
        found = self.run_named([
            base.Check('config', lambda ctx: base.failure('no', 'fix'),
                       fatal=True),
            base.Check('other', lambda ctx: base.success('ran'))])
        self.assertEqual([('config', 'fail', 'no')], found)

    def test_json_keeps_the_keys_and_adds_the_code(self):
        found = base.run_checks([
            base.Check('w', lambda ctx: base.warning('meh', 'fix w'))], None)
        self.assertEqual([{'check': 'w', 'status': 'warn', 'detail': 'meh',
                           'hint': 'fix w', 'code': 1}],
                         base.as_dicts(found))


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
        groups = ['libvirt', 'scaleio'] + sorted(
            set(g for g, _n in options) - {'libvirt', 'scaleio'})
        for group in groups:
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
        rows = [[cell.strip() for cell in line.split('|')[1:-1]]
                for line in text.splitlines() if line.startswith('|')]
        self.assertEqual(['Code', 'Check', 'Details'], rows[0])
        at = rows.index(['FAIL', 'storage pool', "no storage pool 'nope' "
                         "in protection domain 'pd1'"])
        self.assertEqual(['', '', 'fix: correct [scaleio] '
                          'storage_pool_name'], rows[at + 1])
        self.assertIn(['OK', 'gateway'], [r[:2] for r in rows])
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
            # A skip names the root cause, not the check before.
            self.assertEqual('not checked: mandatory options are missing',
                             checks['tls']['detail'])

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
    """A small Keystone v3 and compute API over real HTTP on loopback.

    Version discovery of both, password authentication with a scoped
    token and a service catalog (the compute service under ``/compute``
    as the public endpoint and ``/internal`` as the internal one), and
    ``GET /flavors/detail`` with microversions, ``is_public`` and
    marker pagination of :attr:`page` flavors, as Nova's API answers.
    """

    flavors = []
    token = 'tok-123'
    max_microversion = '2.90'
    page = 2
    requests = []

    def log_message(self, *args):
        pass

    @property
    def base(self):
        return 'http://%s:%d' % self.server.server_address

    def _send(self, code, doc, headers=()):
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _keystone_version(self):
        return {'id': 'v3.14', 'status': 'stable',
                'updated': '2020-04-07T00:00:00Z',
                'links': [{'rel': 'self', 'href': self.base + '/v3/'}],
                'media-types': [{'base': 'application/json',
                                 'type': 'application/vnd.openstack.'
                                         'identity-v3+json'}]}

    def _compute_version(self, prefix):
        return {'id': 'v2.1', 'status': 'CURRENT',
                'version': self.max_microversion, 'min_version': '2.1',
                'updated': '2013-07-23T11:33:21Z',
                'links': [{'rel': 'self',
                           'href': '%s/%s/v2.1/' % (self.base, prefix)}]}

    def do_POST(self):
        if self.path.rstrip('/') != '/v3/auth/tokens':
            return self._send(404, {})
        body = json.loads(self.rfile.read(int(self.headers[
            'Content-Length'])))
        user = body['auth']['identity']['password']['user']
        scope = body['auth'].get('scope', {}).get('project', {})
        if (user['name'], user['password'], user.get('domain')) != (
                'admin', 'secret', {'name': 'Default'}) or \
                scope != {'name': 'admin', 'domain': {'name': 'Default'}}:
            return self._send(401, {'error': {
                'code': 401, 'title': 'Unauthorized',
                'message': 'The request you have made requires '
                           'authentication.'}})
        catalog = [{'type': 'compute', 'name': 'nova', 'id': 'c1',
                    'endpoints': [
                        {'id': 'e1', 'interface': 'internal',
                         'region': 'R1', 'region_id': 'R1',
                         'url': self.base + '/internal/v2.1'},
                        {'id': 'e2', 'interface': 'public',
                         'region': 'R1', 'region_id': 'R1',
                         'url': self.base + '/compute/v2.1'}]}]
        later = time.strftime('%Y-%m-%dT%H:%M:%S.000000Z',
                              time.gmtime(time.time() + 3600))
        now = time.strftime('%Y-%m-%dT%H:%M:%S.000000Z', time.gmtime())
        self._send(201, {'token': {
            'catalog': catalog, 'expires_at': later, 'issued_at': now,
            'methods': ['password'],
            'user': {'id': 'u1', 'name': 'admin',
                     'domain': {'id': 'default', 'name': 'Default'}},
            'project': {'id': 'p1', 'name': 'admin',
                        'domain': {'id': 'default', 'name': 'Default'}},
            'roles': [{'id': 'r1', 'name': 'admin'}]}},
            [('X-Subject-Token', self.token)])

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip('/')
        if path == '':
            return self._send(300, {'versions': {
                'values': [self._keystone_version()]}})
        if path == '/v3':
            return self._send(200, {'version': self._keystone_version()})
        prefix = path.split('/')[1]
        if prefix not in ('compute', 'internal'):
            return self._send(404, {})
        if path == '/%s' % prefix:
            return self._send(200, {'versions': [
                self._compute_version(prefix)]})
        if path == '/%s/v2.1' % prefix:
            return self._send(200, {'version': self._compute_version(
                prefix)})
        if self.headers.get('X-Auth-Token') != self.token:
            return self._send(401, {})
        if path != '/%s/v2.1/flavors/detail' % prefix:
            return self._send(404, {})
        query = urllib.parse.parse_qs(url.query)
        wanted = self.headers.get('OpenStack-API-Version', '')
        wanted = wanted.split()[-1] if wanted else None
        self.requests.append({'prefix': prefix, 'version': wanted,
                              'query': query})
        if wanted and (tuple(int(x) for x in wanted.split('.')) >
                       tuple(int(x) for x in
                             self.max_microversion.split('.'))):
            return self._send(406, {})
        with_specs = wanted and tuple(
            int(x) for x in wanted.split('.')) >= (2, 61)
        every = query.get('is_public', [''])[0].lower() == 'none'
        flavors = sorted((dict(f) for f in self.flavors
                          if every or f.get('os-flavor-access:is_public',
                                            True)),
                         key=lambda f: f['id'])
        marker = query.get('marker', [None])[0]
        if marker:
            flavors = [f for f in flavors if f['id'] > marker]
        page, rest = flavors[:self.page], flavors[self.page:]
        for flavor in page:
            if not with_specs:
                flavor.pop('extra_specs', None)
        doc = {'flavors': page}
        if rest:
            doc['flavors_links'] = [{'rel': 'next', 'href': (
                '%s/%s/v2.1/flavors/detail?%s' % (
                    self.base, prefix, urllib.parse.urlencode(
                        {'is_public': query.get('is_public', [''])[0],
                         'marker': page[-1]['id']})))}]
        self._send(200, doc)


def _flavor(fid, name, disk, eph=0, swap='', **extra):
    flavor = {'id': fid, 'name': name, 'disk': disk, 'swap': swap,
              'OS-FLV-EXT-DATA:ephemeral': eph, 'ram': 512, 'vcpus': 1,
              'os-flavor-access:is_public': True}
    flavor.update(extra)
    return flavor


class DoctorFlavorTest(DoctorTestCase):

    def setUp(self):
        super(DoctorFlavorTest, self).setUp()
        # Private and public flavors over two pages and a half.
        _FakeCloud.flavors = [
            _flavor('f1', 'm1.sio', 16),
            _flavor('f2', 'm1.odd', 10, eph=8, swap=512),
            _flavor('f3', 'm1.eph', 8, eph=4, swap=8192),
            _flavor('f4', 'm1.tiny', 1, **{
                'os-flavor-access:is_public': False}),
            _flavor('f5', 'm1.big', 64),
        ]
        _FakeCloud.requests = []
        for name in ('XDG_CONFIG_HOME', 'OS_CLIENT_CONFIG_FILE',
                     'OS_CLIENT_SECURE_FILE'):
            self.useFixture(fixtures.EnvironmentVariable(name))
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

    def placement(self, password='secret'):
        """nova.conf options of a ``[placement]`` section."""
        return {'placement__auth_type': 'password',
                'placement__auth_url': self.auth_url + '/v3',
                'placement__username': 'admin',
                'placement__password': password,
                'placement__user_domain_name': 'Default',
                'placement__project_name': 'admin',
                'placement__project_domain_name': 'Default',
                'placement__region_name': 'R1'}

    def test_flavors_breaking_the_rule(self):
        checks = self.doctor(*self.os_args())
        self.assertStatuses(checks, flavors='fail')
        detail = checks['flavors']['detail']
        self.assertIn('m1.odd (root disk 10 GiB, swap 512 MiB)', detail)
        self.assertIn('m1.eph (ephemeral 4 GiB)', detail)
        # A private flavor on the third page: all pages, is_public=None.
        self.assertIn('m1.tiny (root disk 1 GiB)', detail)
        self.assertNotIn('m1.sio', detail)
        pages = [r for r in _FakeCloud.requests]
        self.assertEqual(3, len(pages))
        self.assertEqual([None, 'f2', 'f4'], [
            r['query'].get('marker', [None])[0] for r in pages])
        self.assertEqual({'compute'}, set(r['prefix'] for r in pages))

    def test_rounding_turns_failure_into_warning(self):
        checks = self.doctor(*self.os_args(),
                             scaleio__round_volume_capacity='True')
        self.assertStatuses(checks, flavors='warn')

    def test_all_flavors_fit(self):
        _FakeCloud.flavors = [_FakeCloud.flavors[0],
                              _FakeCloud.flavors[-1]]
        checks = self.doctor(*self.os_args())
        self.assertStatuses(checks, flavors='pass')
        self.assertIn('all 2 flavors', checks['flavors']['detail'])

    def test_bad_credentials(self):
        checks = self.doctor(*self.os_args(password='nope'))
        self.assertStatuses(checks, flavors='fail')
        self.assertIn('401', checks['flavors']['detail'])
        self.assertEqual([], _FakeCloud.requests)

    def test_os_environment_variables(self):
        for name, value in (('OS_AUTH_URL', self.auth_url),
                            ('OS_USERNAME', 'admin'),
                            ('OS_PASSWORD', 'secret'),
                            ('OS_PROJECT_NAME', 'admin')):
            self.useFixture(fixtures.EnvironmentVariable(name, value))
        checks = self.doctor()
        self.assertStatuses(checks, flavors='fail')
        self.assertIn('m1.odd', checks['flavors']['detail'])

    def write_clouds(self, clouds, secure=None):
        # openstacksdk fixes its search path (~/.config/openstack, ...)
        # when it is imported: the files are named by the variables it
        # reads when it loads them.
        for name, doc in (('clouds', clouds), ('secure', secure)):
            if doc is None:
                continue
            path = os.path.join(self.tmp, '%s.yaml' % name)
            with open(path, 'w') as f:
                yaml.safe_dump({'clouds': doc}, f)
            self.useFixture(fixtures.EnvironmentVariable(
                'OS_CLIENT_%s_FILE' % ('CONFIG' if name == 'clouds' else
                                       'SECURE'), path))

    def test_clouds_yaml(self):
        self.write_clouds({'mycloud': {
            'region_name': 'R1',
            'auth': {'auth_url': self.auth_url, 'username': 'admin',
                     'password': 'secret', 'project_name': 'admin',
                     'user_domain_name': 'Default',
                     'project_domain_name': 'Default'}}})
        checks = self.doctor('--os-cloud', 'mycloud')
        self.assertStatuses(checks, flavors='fail')
        self.assertIn('m1.odd', checks['flavors']['detail'])

    def test_os_cloud_and_secure_yaml(self):
        # The password only in secure.yaml; the cloud from OS_CLOUD.
        self.write_clouds({'mycloud': {
            'auth': {'auth_url': self.auth_url, 'username': 'admin',
                     'project_name': 'admin',
                     'user_domain_name': 'Default',
                     'project_domain_name': 'Default'}}},
            secure={'mycloud': {'auth': {'password': 'secret'}}})
        self.useFixture(fixtures.EnvironmentVariable('OS_CLOUD', 'mycloud'))
        checks = self.doctor()
        self.assertStatuses(checks, flavors='fail')
        self.assertIn('m1.odd', checks['flavors']['detail'])

    def test_unknown_cloud(self):
        checks = self.doctor('--os-cloud', 'nocloud')
        self.assertStatuses(checks, flavors='fail')
        self.assertIn('nocloud', checks['flavors']['detail'])

    def test_nova_conf_credentials_by_default(self):
        checks = self.doctor(**self.placement())
        self.assertStatuses(checks, flavors='fail')
        self.assertIn('(read with nova.conf [placement])',
                      checks['flavors']['detail'])
        # The internal endpoint, as a compute host reaches it.
        self.assertEqual({'internal'}, set(
            r['prefix'] for r in _FakeCloud.requests))
        _FakeCloud.flavors = _FakeCloud.flavors[:1]
        _FakeCloud.requests = []
        # --os-interface still reads with the credentials of nova.conf.
        checks = self.doctor('--os-interface', 'public', **self.placement())
        self.assertStatuses(checks, flavors='pass')
        self.assertIn('read with nova.conf [placement]',
                      checks['flavors']['detail'])
        self.assertEqual({'compute'}, set(
            r['prefix'] for r in _FakeCloud.requests))

    def test_keystone_authtoken_and_auth_section(self):
        options = dict(
            (k.replace('placement__', 'keystone_authtoken__'), v)
            for k, v in self.placement().items())
        checks = self.doctor(**options)
        self.assertStatuses(checks, flavors='fail')
        self.assertIn('m1.odd', checks['flavors']['detail'])
        # --auth-section picks a section; one without credentials fails.
        checks = self.doctor('--auth-section', 'service_user', **options)
        self.assertStatuses(checks, flavors='fail')
        self.assertIn('service_user', checks['flavors']['hint'])

    def test_nova_conf_bad_password(self):
        checks = self.doctor(**self.placement(password='nope'))
        self.assertStatuses(checks, flavors='fail')
        self.assertIn('401', checks['flavors']['detail'])

    def test_flavor_pools(self):
        _FakeCloud.flavors = _FakeCloud.flavors[:1] + [
            _flavor('f9', 'm1.fg', 16, extra_specs={
                'sio:provisioning_type': 'thick'})]
        self.emu.admin.set_pool('sp1', data_layout='FineGranularity')
        checks = self.doctor(*self.os_args(),
                             scaleio__provisioning_type='thin')
        self.assertStatuses(checks, flavors='pass', flavor_pools='warn')
        self.assertEqual('pd1:sp1 zero padding on, Fine Granularity',
                         checks['pool layout']['detail'])
        self.assertIn('pd1:sp1 zero padding on, Fine Granularity: thick '
                      'volumes are created thin',
                      checks['flavor pools']['detail'])
        self.assertEqual(['2.61'], [r['version']
                                    for r in _FakeCloud.requests])

    def test_flavor_list_before_2_61(self):
        self.addCleanup(setattr, _FakeCloud, 'max_microversion', '2.90')
        _FakeCloud.max_microversion = '2.1'
        _FakeCloud.flavors = [dict(_FakeCloud.flavors[0], extra_specs={
            'sio:provisioning_type': 'thick'})]
        checks = self.doctor(*self.os_args())
        self.assertStatuses(checks, flavors='pass')
        # No extra specs in the list: no pools to inspect.
        self.assertNotIn('flavor pools', checks)
        self.assertEqual(1, len(_FakeCloud.requests))
        self.assertNotEqual('2.61', _FakeCloud.requests[0]['version'])

    def test_flavor_problems(self):
        self.assertEqual([], checklist.flavor_problems(
            {'disk': 0, 'swap': '', 'OS-FLV-EXT-DATA:ephemeral': 0}))
        self.assertEqual(['swap 1024 MiB'], checklist.flavor_problems(
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
