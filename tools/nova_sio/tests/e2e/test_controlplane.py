# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The control plane of the end-to-end harness.

The configuration writers, the Neutron stand-in and the process
supervisor are tested always (loopback and child processes only). The
live test starts the whole control plane on 127.0.0.1 with a compute
service on Nova's fake driver, sends Neutron the port, network and
extension reads Nova makes for a server with no networks (first thing,
then again for the booted server), asks every service one question
through openstacksdk, boots and deletes a server, and checks that
stopping leaves no process, once with a real neutron-server and once
with the Neutron stand-in; it runs only with ``NOVA_SIO_E2E=1`` as root (see
``e2e/base.py``).
"""

import configparser
import json
import os
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile

from unittest import mock

import fixtures
from oslotest import base

from nova_sio.e2e import cleanup
from nova_sio.e2e import cloud as cloud_mod
from nova_sio.e2e import controlplane
from nova_sio.e2e import neutron_stub
from nova_sio.e2e import novaconf
from nova_sio.e2e import sdkcalls
from nova_sio.e2e import services
from nova_sio.tests.e2e import base as e2e_base

SCALEIO = {
    'rest_server_ip': '10.251.0.1',
    'rest_server_port': 8443,
    'san_login': 'admin',
    'verify_server_certificate': True,
    'server_certificate_path': '/srv/ca.pem',
    'device_root': '/srv/h1/dev/disk/by-id',
    'drv_cfg_path': '/srv/h1/drv_cfg',
    'default_sdcguid': 'AAAA-BBBB',
}


def read_ini(path):
    # oslo.config's DEFAULT is a section like the others.
    parser = configparser.ConfigParser(interpolation=None,
                                       default_section='__none__')
    with open(path) as handle:
        parser.read_file(handle)
    return parser


def serve_stub(test):
    """Serve the Neutron stand-in on loopback for ``test``; return its URL.

    :param test: the test case (its clean-ups stop the server).
    """
    httpd = neutron_stub.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), neutron_stub.Handler)
    test.addCleanup(httpd.server_close)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    test.addCleanup(httpd.shutdown)
    # Its access log goes to stderr: keep the test output clean.
    test.useFixture(fixtures.MonkeyPatch('sys.stderr', open(
        os.devnull, 'w')))
    return 'http://127.0.0.1:%d' % httpd.server_address[1]


class TestRequirements(base.BaseTestCase):

    def test_services_of_the_same_series(self):
        self.assertEqual(
            ['nova==34.0.0', 'keystone>=30,<31', 'glance>=33,<34',
             'openstack-placement>=16,<17'],
            controlplane.service_requirements('34.0.0'))
        # Zed: Debian bookworm ships keystone 22, glance 25, placement 8.
        self.assertEqual(
            ['nova==26.2.2', 'keystone>=22,<23', 'glance>=25,<26',
             'openstack-placement>=8,<9'],
            controlplane.service_requirements('26.2.2'))

    def test_neutron_of_the_same_series(self):
        reqs = controlplane.service_requirements('34.0.0', neutron=True)
        self.assertIn('neutron>=29,<30', reqs)
        self.assertIn('pyroute2', reqs)
        a = controlplane.ControlPlane('/w', '34.0.0', neutron='server')
        b = controlplane.ControlPlane('/w', '34.0.0', neutron='stub')
        self.assertNotEqual(a.venv_key(), b.venv_key())
        self.assertRaises(controlplane.ControlPlaneError,
                          controlplane.ControlPlane, '/w', '34.0.0',
                          neutron='none')

    def test_release_before_placement_is_refused(self):
        exc = self.assertRaises(controlplane.ControlPlaneError,
                                controlplane.service_requirements, '18.3.0')
        self.assertIn('Placement', exc.message)

    def test_requires_dist_skips_extras_and_body(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 'x-1.0-py3-none-any.whl')
        with zipfile.ZipFile(path, 'w') as zf:
            zf.writestr('x-1.0.dist-info/METADATA', (
                'Metadata-Version: 2.1\nName: x\n'
                'Requires-Dist: keystoneauth1>=5.16.0\n'
                'Requires-Dist: oslotest>=1; extra == "test"\n'
                'Requires-Dist: pbr!=2.1.0\n\n'
                'Requires-Dist: not-a-header\n'))
        self.assertEqual(['keystoneauth1>=5.16.0', 'pbr!=2.1.0'],
                         controlplane.requires_dist(path))

    def test_venv_key_follows_the_release(self):
        a = controlplane.ControlPlane('/w', '34.0.0', '127.0.0.1')
        b = controlplane.ControlPlane('/w', '33.0.0', '127.0.0.1')
        self.assertNotEqual(a.venv_key(), b.venv_key())
        self.assertEqual(a.venv_key(), controlplane.ControlPlane(
            '/other', '34.0.0', '10.251.0.1').venv_key())


class TestPatchNova(base.BaseTestCase):
    """``patch_nova`` runs ``nova-sio install`` the operator's way."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.nova_dir = os.path.join(self.tmp, 'site-packages', 'nova')
        os.makedirs(self.nova_dir)
        self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.controlplane.nova_dir_of',
            return_value=self.nova_dir))
        self.calls = []

        def run(argv, **kwargs):
            self.calls.append(argv[3:])
        self.useFixture(fixtures.MockPatch(
            'nova_sio.util.run', side_effect=run))
        self.cp = controlplane.ControlPlane(self.tmp, '34.0.0',
                                            progress=lambda m: None)
        self.cp.venv = os.path.join(self.tmp, 'venv')

    def _state(self, status, digest):
        from nova_sio.operator import install as operator_install
        path = os.path.join(self.nova_dir, operator_install.STATE_DIR)
        os.makedirs(path)
        with open(os.path.join(path, operator_install.STATE_FILE),
                  'w') as handle:
            json.dump({'status': status, 'diff_sha256': digest}, handle)

    def _digest(self):
        from nova_sio.engine import emit as engine
        from nova_sio import util
        return util.sha256_file(engine.diff_path('34.0.0'))

    def test_fresh_tree_is_installed(self):
        self.assertEqual('installed', self.cp.patch_nova())
        self.assertEqual([['install', '--nova-dir', self.nova_dir,
                           '--version', '34.0.0', '--python',
                           os.path.join(self.tmp, 'venv', 'bin', 'python'),
                           '-q']], self.calls)

    def test_same_diff_is_kept(self):
        self._state('installed', self._digest())
        self.assertEqual('already installed', self.cp.patch_nova())
        self.assertEqual([], self.calls)

    def test_other_diff_is_reverted_first(self):
        self._state('installed', '0' * 64)
        self.assertEqual('installed', self.cp.patch_nova())
        self.assertEqual(['revert', 'install'],
                         [call[0] for call in self.calls])


class TestConf(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.cp = controlplane.ControlPlane(
            os.path.join(self.tmp, 'ctl'), '34.0.0', '10.251.0.1',
            password='s3cret')
        self.cp.venv = '/venv'

    def test_compute_conf(self):
        workdir = os.path.join(self.tmp, 'h1')
        path = self.cp.compute_conf('h1', '10.251.0.11', SCALEIO, workdir)
        self.assertEqual(os.path.join(workdir, 'nova.conf'), path)
        conf = read_ini(path)
        self.assertEqual('h1', conf['DEFAULT']['host'])
        self.assertEqual('10.251.0.11', conf['DEFAULT']['my_ip'])
        self.assertEqual('libvirt.LibvirtDriver',
                         conf['DEFAULT']['compute_driver'])
        instances = conf['DEFAULT']['instances_path']
        self.assertEqual(os.path.join(workdir, 'instances'), instances)
        self.assertTrue(os.path.isdir(instances))
        self.assertEqual('rabbit://nova:s3cret@10.251.0.1:5672/',
                         conf['DEFAULT']['transport_url'])
        libvirt = conf['libvirt']
        self.assertEqual('qemu', libvirt['virt_type'])
        self.assertEqual('sio', libvirt['images_type'])
        self.assertEqual('tcp', libvirt['live_migration_scheme'])
        self.assertEqual('10.251.0.11',
                         libvirt['live_migration_inbound_addr'])
        self.assertNotIn('connection_uri', libvirt)
        for section in novaconf.PRIVSEP_SECTIONS:
            self.assertEqual('/venv/bin/privsep-helper --config-file %s'
                             % path, conf[section]['helper_command'])
        self.assertEqual({k: str(v) for k, v in SCALEIO.items()},
                         dict(conf['scaleio']))
        for section in ('placement', 'neutron', 'service_user'):
            self.assertEqual('http://10.251.0.1:5000/v3',
                             conf[section]['auth_url'])
        self.assertEqual('True',
                         conf['service_user']['send_service_user_token'])

    def test_venv_build_holds_a_lock_of_its_own(self):
        # Two runs building the same venv at once must not both write it.
        builder = self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.venvbuild.CachedVenv')).mock
        builder.return_value.seconds = 1.0
        self.useFixture(fixtures.MockPatchObject(
            self.cp, '_requirements', return_value=['nova==34.0.0']))
        self.useFixture(fixtures.MockPatchObject(
            self.cp, '_venv_extras', return_value=((), (), ())))
        self.useFixture(fixtures.MockPatchObject(
            self.cp, '_python_version', return_value='3.12'))
        venv = self.cp.build_venv()
        self.assertEqual('e2e-venv-%s' % os.path.basename(venv),
                         builder.call_args[1]['lock'])
        builder.return_value.build.assert_called_once_with()

    def _cloud_conf(self, images_type, zero_copy=False):
        """The file Cloud.write_compute_conf writes for h1 (stub hosts)."""
        node = mock.Mock(address='10.251.0.11',
                         workdir=os.path.join(self.tmp, 'h1'))
        node.run.return_value = mock.Mock(returncode=0, stdout='')
        made = cloud_mod.Cloud.__new__(cloud_mod.Cloud)
        made.hosts = {'h1': node}
        made.gateway = mock.Mock()
        made.gateway.scaleio_options.return_value = SCALEIO
        made.controlplane = self.cp
        made.images_type = images_type
        made.zero_copy = zero_copy
        made.run_id = 'r1'
        made.compute_confs = {}
        return read_ini(made.write_compute_conf('h1'))

    def test_cloud_compute_conf_has_each_section_once(self):
        # configparser is strict: a repeated section or option raises.
        for images_type in ('sio', 'qcow2', 'lvm'):
            conf = self._cloud_conf(images_type)
            self.assertEqual(images_type, conf['libvirt']['images_type'])
            self.assertEqual('rsync',
                             conf['libvirt']['remote_filesystem_transport'])
            self.assertEqual('True', conf['workarounds'][
                'disable_deep_image_inspection'])
            self.assertEqual(cloud_mod.INSTANCES_PATH,
                             conf['DEFAULT']['instances_path'])
        conf = self._cloud_conf('sio', zero_copy=True)
        self.assertEqual('True', conf['scaleio']['zero_copy_boot'])

    def test_compute_conf_hosts_are_separate(self):
        a = read_ini(self.cp.compute_conf(
            'h1', '10.251.0.11', SCALEIO, os.path.join(self.tmp, 'h1')))
        b = read_ini(self.cp.compute_conf(
            'h2', '10.251.0.12', dict(SCALEIO, default_sdcguid='CCCC'),
            os.path.join(self.tmp, 'h2'), connection_uri='qemu:///system'))
        self.assertNotEqual(a['DEFAULT']['instances_path'],
                            b['DEFAULT']['instances_path'])
        self.assertEqual('10.251.0.12',
                         b['libvirt']['live_migration_inbound_addr'])
        self.assertEqual('qemu:///system', b['libvirt']['connection_uri'])
        self.assertEqual('CCCC', b['scaleio']['default_sdcguid'])

    def test_compute_conf_needs_scaleio_options(self):
        exc = self.assertRaises(novaconf.ConfError, self.cp.compute_conf,
                                'h1', '10.251.0.11', {}, self.tmp)
        self.assertIn('h1', exc.message)

    def test_control_nova_conf(self):
        ep = novaconf.Endpoints('10.251.0.1', 'pw')
        path = novaconf.write_ini(os.path.join(self.tmp, 'nova.conf'),
                                  novaconf.nova_conf(ep, self.tmp))
        conf = read_ini(path)
        self.assertEqual('1', conf['conductor']['workers'])
        self.assertEqual('1', conf['scheduler']['workers'])
        self.assertEqual('-1', conf['scheduler'][
            'discover_hosts_in_cells_interval'])
        self.assertEqual(
            'mysql+pymysql://nova:pw@10.251.0.1:3306/nova_api?charset=utf8',
            conf['api_database']['connection'])
        self.assertEqual('nova', conf['keystone_authtoken']['username'])

    def test_neutron_conf(self):
        ep = novaconf.Endpoints('10.251.0.1', 'pw')
        conf = read_ini(novaconf.write_ini(
            os.path.join(self.tmp, 'neutron.conf'),
            novaconf.neutron_conf(ep, self.tmp, '/etc/api-paste.ini')))
        default = conf['DEFAULT']
        self.assertEqual('ml2', default['core_plugin'])
        # auto_allocate (always loaded) requires the L3 plugin.
        self.assertEqual(['router'], default['service_plugins'].split(','))
        self.assertEqual('1', default['api_workers'])
        self.assertEqual('0', default['rpc_workers'])
        self.assertEqual('False',
                         default['notify_nova_on_port_status_changes'])
        self.assertEqual(
            'mysql+pymysql://neutron:pw@10.251.0.1:3306/neutron'
            '?charset=utf8', conf['database']['connection'])

    def test_ml2_conf_queries_at_start(self):
        conf = read_ini(novaconf.write_ini(
            os.path.join(self.tmp, 'ml2_conf.ini'), novaconf.ml2_conf()))
        ml2 = conf['ml2']
        self.assertEqual('', ml2['mechanism_drivers'])
        self.assertEqual('', ml2['tenant_network_types'])
        # A segmentation type driver with a range: it syncs its
        # allocations (an ORM query) when the API worker starts, which
        # configures the mappers get_ports needs.
        types = ml2['type_drivers'].split(',')
        self.assertIn('vxlan', types)
        low, high = conf['ml2_type_vxlan']['vni_ranges'].split(':')
        self.assertLessEqual(1, int(low))
        self.assertLessEqual(int(low), int(high))
        self.assertEqual('', conf['ml2_type_flat']['flat_networks'])

    def test_rabbitmq_user_may_connect_remotely(self):
        text = novaconf.rabbitmq_conf(novaconf.Endpoints('10.0.0.1', 'pw'))
        self.assertIn('loopback_users = none\n', text)
        self.assertIn('default_user = nova\n', text)
        self.assertIn('default_pass = pw\n', text)

    def test_write_ini_refuses_newlines(self):
        self.assertRaises(novaconf.ConfError, novaconf.write_ini,
                          os.path.join(self.tmp, 'x.conf'),
                          {'DEFAULT': {'a': 'b\n[evil]'}})

    def test_auth(self):
        auth = self.cp.auth
        self.assertEqual('http://10.251.0.1:5000/v3', auth['auth_url'])
        self.assertEqual('s3cret', auth['password'])
        self.assertEqual('admin', auth['project_name'])
        self.assertEqual(novaconf.REGION, auth['region_name'])


class TestNeutronStub(base.BaseTestCase):

    def test_routes(self):
        base_url = 'http://127.0.0.1:9696'
        status, body = neutron_stub.route('GET', '/', base_url)
        self.assertEqual(200, status)
        self.assertEqual('v2.0', body['versions'][0]['id'])
        self.assertEqual({'ports': []}, neutron_stub.route(
            'GET', '/v2.0/ports', base_url)[1])
        self.assertEqual({'security_groups': []}, neutron_stub.route(
            'GET', '/v2.0/security-groups.json', base_url)[1])
        self.assertEqual({'extensions': []}, neutron_stub.route(
            'GET', '/v2.0/extensions', base_url)[1])
        status, body = neutron_stub.route('GET', '/v2.0/ports/p1', base_url)
        self.assertEqual(404, status)
        self.assertEqual('PortNotFound', body['NeutronError']['type'])
        status, body = neutron_stub.route('POST', '/v2.0/ports', base_url)
        self.assertEqual(400, status)
        self.assertIn('stand-in', body['NeutronError']['message'])
        status, body = neutron_stub.route('GET', '/v3/ports', base_url)
        self.assertEqual(404, status)

    def test_over_http(self):
        url = serve_stub(self)
        with urllib.request.urlopen(url + '/v2.0/ports?device_id=x') as r:
            self.assertEqual({'ports': []}, json.loads(r.read()))
        req = urllib.request.Request(url + '/v2.0/ports/x', method='DELETE')
        exc = self.assertRaises(urllib.error.HTTPError,
                                urllib.request.urlopen, req)
        self.assertEqual(400, exc.code)


class FakeConnection(object):
    """What :func:`sdkcalls.neutron_reads` uses of a connection."""

    current_project_id = 'p1'

    def __init__(self, endpoint):
        self.network = self
        self.session = self
        self.endpoint = endpoint
        self.paths = []

    def get_endpoint(self):
        return self.endpoint

    def get(self, url, raise_exc=True):
        self.paths.append(urllib.parse.urlsplit(url))
        try:
            with urllib.request.urlopen(url) as resp:
                return FakeResponse(resp.status, resp.read())
        except urllib.error.HTTPError as exc:
            return FakeResponse(exc.code, exc.read())


class FakeResponse(object):

    def __init__(self, status, data):
        self.status_code = status
        self.text = data.decode()

    def json(self):
        return json.loads(self.text)


class TestNeutronReads(base.BaseTestCase):
    """The reads of Nova that the live test sends, against the stand-in
    over HTTP.
    """

    def setUp(self):
        super().setUp()
        self.url = serve_stub(self)

    def test_queries_as_neutronclient_sends_them(self):
        conn = FakeConnection(self.url + '/v2.0/')
        out = sdkcalls.neutron_reads(conn, {'device_id': 'd1',
                                            'host': 'h1'})
        self.assertEqual(len(sdkcalls.NOVA_READS), len(out))
        self.assertEqual([200] * len(out), [r['status'] for r in out])
        # The read that failed on a fresh neutron-server comes first.
        self.assertEqual('/v2.0/ports', conn.paths[0].path)
        self.assertEqual('fields=security_groups&fields=device_id&'
                         'device_id=d1', conn.paths[0].query)
        queries = [urllib.parse.parse_qs(p.query) for p in conn.paths]
        self.assertIn({'device_id': ['d1'], 'tenant_id': ['p1'],
                       'binding:host_id': ['h1']}, queries)
        self.assertEqual({'/v2.0/ports', '/v2.0/networks',
                          '/v2.0/extensions'},
                         {p.path for p in conn.paths})
        self.assertEqual({0}, {r['items'] for r in out})
        self.assertEqual({None}, {r['error'] for r in out})

    def test_errors_are_reported(self):
        conn = FakeConnection(self.url + '/nowhere')
        out = sdkcalls.neutron_reads(conn, {'device_id': 'd1',
                                            'host': 'h1'})
        self.assertEqual({404}, {r['status'] for r in out})
        self.assertEqual({None}, {r['items'] for r in out})
        self.assertIn('HTTPNotFound', out[0]['error'])


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class TestSupervisor(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.ledger = cleanup.Ledger(os.path.join(self.tmp, 'ledger'))
        self.addCleanup(self.ledger.release_all)
        self.sup = services.Supervisor(os.path.join(self.tmp, 'run'),
                                       self.ledger, progress=lambda m: None)

    def test_start_wait_stop(self):
        port = free_port()
        code = ('import socket, subprocess, sys, time\n'
                'child = subprocess.Popen([sys.executable, "-c", '
                '"import time; time.sleep(600)"])\n'
                's = socket.socket(); s.bind(("127.0.0.1", %d)); '
                's.listen(); print("listening", flush=True)\n'
                'time.sleep(600)\n' % port)
        service = self.sup.start('svc', [sys.executable, '-c', code])
        self.sup.wait_port('svc', '127.0.0.1', port, timeout=30)
        self.assertEqual([service.record], [
            r for r in self.ledger.held() if r['kind'] == 'process'])
        self.assertEqual(service.pid, service.record['pid'])
        # The leader and its child, in the service's own process group.
        for _attempt in range(50):
            if len(services.group_pids(service.pid)) == 2:
                break
            time.sleep(0.1)
        self.assertEqual(2, len(services.group_pids(service.pid)))
        self.assertGreater(self.sup.sample()['svc'], 1000)
        self.sup.stop_all()
        self.assertEqual([], self.sup.leftover_pids())
        self.assertEqual([], self.ledger.held())
        with open(self.sup.log_path('svc')) as handle:
            self.assertIn('listening', handle.read())

    def test_stop_kills_what_ignores_sigterm(self):
        code = ('import signal, time\n'
                'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n'
                'print("ready", flush=True)\ntime.sleep(600)\n')
        service = self.sup.start('stubborn', [sys.executable, '-c', code])
        for _attempt in range(100):
            with open(service.log_path) as handle:
                if 'ready' in handle.read():
                    break
            time.sleep(0.05)
        begin = time.monotonic()
        self.sup.stop('stubborn', grace=0.5)
        self.assertLess(time.monotonic() - begin, 10)
        self.assertFalse(service.alive())
        self.assertEqual(-9, service.popen.returncode)

    def test_death_while_waiting_names_the_log(self):
        self.sup.start('dies', [sys.executable, '-c',
                                'print("bad config"); raise SystemExit(3)'])
        exc = self.assertRaises(services.ServiceError, self.sup.wait_port,
                                'dies', '127.0.0.1', free_port(), 30)
        self.assertIn('exited with status 3', exc.message)
        self.assertIn('bad config', exc.message)
        self.assertIn(self.sup.log_path('dies'), exc.message)

    def test_wait_http_times_out(self):
        self.sup.start('quiet', [sys.executable, '-c',
                                 'import time; time.sleep(600)'])
        exc = self.assertRaises(
            services.ServiceError, self.sup.wait_http, 'quiet',
            'http://127.0.0.1:%d/' % free_port(), 1)
        self.assertIn('did not answer', exc.message)


class TestLiveControlPlane(base.BaseTestCase):
    """The whole control plane on loopback (``NOVA_SIO_E2E=1``, root)."""

    VERSION = os.environ.get('NOVA_SIO_E2E_VERSION',
                             controlplane.DEFAULT_VERSION)

    def _run(self, neutron):
        e2e_base.require_e2e(self)
        if os.geteuid() != 0:
            self.fail('%s=1 but not root: the control plane runs MariaDB '
                      'and RabbitMQ as root' % e2e_base.OPT_IN)
        workdir = e2e_base.shared_dir(self)
        ledger = cleanup.Ledger(tempfile.mkdtemp(dir=workdir))
        self.addCleanup(ledger.release_all)
        lines = []
        cp = controlplane.ControlPlane(workdir, self.VERSION, '127.0.0.1',
                                       ledger, progress=lines.append,
                                       neutron=neutron)
        self.addCleanup(cp.stop)
        cp.install()
        self.assertEqual('already installed', cp.patch_nova())
        cp.start()
        health = cp.service_health()
        self.assertEqual({'up'}, set(health.values()), health)
        self.assertEqual({'mariadb', 'epmd', 'rabbitmq', 'keystone', 'glance',
                          'placement', 'neutron', 'nova-api',
                          'nova-conductor', 'nova-scheduler'}, set(health))
        # Nova's reads of Neutron for a server with no networks, before
        # any other request reaches Neutron (as on a boot's first show).
        reads = cp.sdk('neutron-reads', device_id=str(uuid.uuid4()),
                       host='fake-1')
        self._check_reads(reads, neutron)
        cp.start_fake_compute('fake-1')
        image = os.path.join(workdir, 'image.raw')
        with open(image, 'wb') as handle:
            handle.write(os.urandom(65536))
        smoke = cp.sdk('smoke', image_file=image, name='nsio-smoke')
        self.assertTrue(smoke['token'])
        self.assertEqual(['compute', 'identity', 'image', 'network',
                          'placement'], smoke['catalog'])
        self.assertEqual('active', smoke['image']['status'])
        self.assertEqual(65536, smoke['image']['size'])
        self.assertTrue(smoke['image']['round_trip'])
        self.assertEqual(8, smoke['flavor']['disk'])
        self.assertEqual(['fake-1'], smoke['resource_providers'])
        self.assertEqual([], smoke['networks'])
        booted = cp.sdk('boot', name='nsio-boot', image='nsio-smoke',
                        flavor='nsio-smoke')
        self.assertEqual('ACTIVE', booted['status'], booted)
        self.assertEqual('fake-1', booted['host'])
        self._check_reads(cp.sdk('neutron-reads', device_id=booted['id'],
                                 host=booted['host']), neutron)
        with open(cp.logs['neutron']) as handle:
            log = handle.read()
        self.assertIn('GET /v2.0/ports?', log)
        self.assertIn(booted['id'], log)
        if neutron == 'server':
            errors = [line for line in log.splitlines()
                      if ' ERROR ' in line]
            self.assertEqual([], errors[:5])
        cp.sdk('cleanup-smoke', name='nsio-smoke')
        peaks = cp.peak_rss_mib()
        pids = [s.pid for s in cp.supervisor.services.values()]
        self.assertEqual([], cp.stop())
        for pid in pids:
            self.assertIsNone(cleanup.process_start_time(pid))
        self.assertEqual([], [r for r in ledger.held()
                              if r['kind'] == 'process'])
        self.assertTrue(any(line.startswith('e2e: control plane up')
                            for line in lines), lines)
        sys.stderr.write('control plane (neutron %s): %s\n' % (
            neutron, json.dumps({'timings': cp.timings, 'boot': booted,
                                 'peak_rss_mib': peaks}, sort_keys=True)))
        return smoke

    def _check_reads(self, reads, neutron):
        self.assertEqual([r[0] for r in sdkcalls.NOVA_READS],
                         [r['what'] for r in reads])
        failed = [r for r in reads if r['status'] != 200]
        self.assertEqual([], failed)
        for read in reads:
            if read['what'] == 'extensions':
                if neutron == 'server':
                    self.assertGreater(read['items'], 0)
                else:
                    self.assertEqual(0, read['items'])
            else:
                self.assertEqual(0, read['items'], read)

    def test_with_neutron_server(self):
        smoke = self._run('server')
        # The real server's ML2 plugin, with no mechanism driver.
        self.assertIn('binding', smoke['extensions'])

    def test_with_neutron_stand_in(self):
        smoke = self._run('stub')
        self.assertEqual([], smoke['extensions'])
