# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The control plane on a distribution's packages (``--distro``).

What needs no cloud is tested always: the packages and the debconf
answers, the release read from a Debian version, the uWSGI settings
derived from a package's own, the argument lists of the packaged
services, how the compute hosts' configuration differs from the venv
control plane's, and the install/revert bookkeeping (with the commands
replaced). The live test runs the short slice of the scenario (boot,
live migration, delete) on Debian bookworm's own packages with
``python -m nova_sio.e2e run --distro bookworm --slice short`` and
checks the package byte-exact afterwards; it installs packages into the
machine's system, so it needs ``NOVA_SIO_E2E_DISTRO=1`` besides
``NOVA_SIO_E2E=1``, root and a bookworm machine.
"""

import configparser
import json
import os
import subprocess
import sys
import tempfile

import fixtures
from oslotest import base

from nova_sio.e2e import controlplane
from nova_sio.e2e import novaconf
from nova_sio.e2e import packaged
from nova_sio import paths
from nova_sio.tests.e2e import base as e2e_base

DISTRO_OPT_IN = 'NOVA_SIO_E2E_DISTRO'
SCALEIO = {'rest_server_ip': '10.251.0.1', 'device_root': '/srv/by-id',
           'drv_cfg_path': '/srv/drv_cfg', 'default_sdcguid': 'AAAA'}
# What Debian's glance-api package ships in /etc/glance/glance-api-uwsgi.ini
# (abridged, with a second add-header) and keystone's (with its AppArmor
# plugin).
GLANCE_INI = """[uwsgi]
# comment
buffer-size = 65535
master = true
plugins = python3
processes = 8
threads = 32
http-chunked-input = true
add-header = X-Served-By: uwsgi
add-header = Connection: close
logto = /var/log/glance/glance-api.log
name = glance-api
uid = glance
gid = glance
chdir = /var/lib/glance
wsgi-file = /usr/bin/glance-wsgi-api
"""
KEYSTONE_INI = """[uwsgi]
rem-header = Content-Length
plugins = python3,apparmor
apparmor-profile = keystone
processes = 8
wsgi-file = /usr/bin/keystone-wsgi-public
"""
TEMPLATES = """Template: nova/configure_db
Type: boolean
Default: false

Template: nova/my-ip
Type: string

Template: nova/ksat-create-service-user
Type: boolean
Default: true

Template: nova/new-question
Type: boolean
Default: true
"""


def read_uwsgi(text):
    lines = text.splitlines()
    assert lines[0] == '[uwsgi]', lines[0]
    out = {}
    for line in lines[1:]:
        key, _sep, value = line.partition(' = ')
        out.setdefault(key, []).append(value)
    return out


class DistroFixture(fixtures.Fixture):
    """This machine seen as Debian bookworm."""

    def _setUp(self):
        self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.packaged.machine_codename',
            return_value='bookworm'))


def make_plane(test, **kwargs):
    test.useFixture(DistroFixture())
    workdir = test.useFixture(fixtures.TempDir()).path
    return packaged.PackagedControlPlane(workdir, version='26.2.2',
                                         address='10.251.0.1',
                                         progress=lambda line: None,
                                         password='pw', **kwargs)


class TestPackages(base.BaseTestCase):

    def test_every_service_comes_from_its_package(self):
        for name in ('python3-nova', 'nova-api', 'nova-conductor',
                     'nova-scheduler', 'nova-compute', 'placement-api',
                     'glance-api', 'keystone', 'mariadb-server',
                     'rabbitmq-server'):
            self.assertIn(name, packaged.PACKAGES)
        # Nothing is built: no compiler, no libvirt headers (the venv
        # control plane builds libvirt-python from PyPI).
        for name in ('gcc', 'libvirt-dev', 'neutron-server'):
            self.assertNotIn(name, packaged.PACKAGES)

    def test_no_package_configures_anything(self):
        lines = set(packaged.SELECTIONS)
        for package, question in (
                ('nova-common', 'nova/configure_db'),
                ('nova-common', 'nova/configure_rabbit'),
                ('nova-common', 'nova/ksat-create-service-user'),
                ('nova-api', 'nova/configure_api-endpoint'),
                ('nova-api', 'novaapi/configure_db'),
                ('keystone', 'keystone/configure_db'),
                ('keystone', 'keystone/create-admin-tenant'),
                ('keystone', 'keystone/register-endpoint'),
                ('glance-common', 'glance/configure_db'),
                ('glance-api', 'glance/configure_api-endpoint'),
                ('placement-common', 'placement/configure_db'),
                ('placement-api', 'placement/configure_api-endpoint')):
            self.assertIn('%s %s boolean false' % (package, question), lines)
        for line in packaged.SELECTIONS:
            self.assertEqual(4, len(line.split()), line)
            self.assertTrue(line.endswith(' boolean false'), line)

    def test_unanswered_questions_are_found(self):
        # Questions that would configure something and are not answered
        # "no": a package's new question is noticed, a string is not.
        self.assertEqual(['nova/new-question'], packaged.unanswered(
            TEMPLATES, 'nova-common'))
        self.assertEqual(['nova/configure_db',
                          'nova/ksat-create-service-user',
                          'nova/new-question'],
                         packaged.unanswered(TEMPLATES, 'nova-compute'))

    def test_daemons_a_maintainer_script_started_are_found(self):
        # What Debian's init scripts run, against the harness's services.
        init = [(10, ['/usr/bin/uwsgi_python3', '--http-socket',
                      '0.0.0.0:8774', '--ini',
                      '/etc/nova/nova-api-uwsgi.ini']),
                (11, ['/usr/bin/python3', '/usr/bin/nova-conductor',
                      '--config-file=/etc/nova/nova.conf',
                      '--log-file=/var/log/nova/nova-conductor.log'])]
        ours = [(20, ['/usr/bin/uwsgi', '--ini',
                      '/var/tmp/nova-sio-e2e-x/ctl/uwsgi/nova-api/uwsgi.ini']),
                (21, ['/usr/bin/python3', '/usr/bin/nova-conductor',
                      '--config-file', '/var/tmp/nova-sio-e2e-x/ctl/etc/'
                      'nova/nova.conf'])]
        self.assertEqual(init, packaged.package_daemons(init + ours))
        self.assertEqual([], packaged.package_daemons(ours))
        pids = [pid for pid, _argv in packaged.process_argvs()]
        self.assertIn(os.getpid(), pids)

    def test_describe(self):
        self.useFixture(DistroFixture())
        self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.packaged.release_of',
            return_value=('26.2.2', '2:26.2.2-1~deb12u5')))
        self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.packaged.DISTROS',
            {'bookworm': dict(packaged.DISTROS['bookworm'],
                              python=sys.executable)}))
        self.assertEqual('python3-nova 2:26.2.2-1~deb12u5 of Debian 12 '
                         '(bookworm), system Python %d.%d, uWSGI' %
                         sys.version_info[:2], packaged.describe('bookworm'))

    def test_upstream_version(self):
        self.assertEqual('26.2.2',
                         packaged.upstream_version('2:26.2.2-1~deb12u5'))
        self.assertEqual('8.0.0', packaged.upstream_version('8.0.0-2'))
        self.assertRaises(packaged.PackagedError,
                          packaged.upstream_version, 'unknown')
        self.assertRaises(packaged.PackagedError,
                          packaged.upstream_version, None)

    def test_machine_codename(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'os-release')
        with open(path, 'w') as handle:
            handle.write('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
                         'VERSION_CODENAME=bookworm\nID=debian\n')
        self.assertEqual('bookworm', packaged.machine_codename(path))
        self.assertIsNone(packaged.machine_codename(path + '.missing'))

    def test_other_distribution_is_refused(self):
        self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.packaged.machine_codename',
            return_value='trixie'))
        exc = self.assertRaises(packaged.PackagedError,
                                packaged.check_distro, 'bookworm')
        self.assertIn('this machine runs trixie, not bookworm', exc.message)
        exc = self.assertRaises(packaged.PackagedError,
                                packaged.check_distro, 'jammy')
        self.assertIn('unknown distribution', exc.message)


class TestUwsgi(base.BaseTestCase):

    def test_package_settings_one_process(self):
        got = read_uwsgi(packaged.uwsgi_ini(
            GLANCE_INI, '/usr/bin/glance-wsgi-api', '10.251.0.1:9292',
            'nsio-glance'))
        self.assertEqual(['1'], got['processes'])
        self.assertEqual(['10.251.0.1:9292'], got['http-socket'])
        self.assertEqual(['/usr/bin/glance-wsgi-api'], got['wsgi-file'])
        self.assertEqual(['nsio-glance'], got['name'])
        # The package's own settings stay (Glance's uploads need the
        # chunked input), its log file, user and directory do not.
        self.assertEqual(['true'], got['http-chunked-input'])
        self.assertEqual(['65535'], got['buffer-size'])
        self.assertEqual(['32'], got['threads'])
        self.assertEqual(['X-Served-By: uwsgi', 'Connection: close'],
                         got['add-header'])
        for key in ('logto', 'uid', 'gid', 'chdir'):
            self.assertNotIn(key, got)

    def test_every_answer_closes_its_connection(self):
        # Keystone's package does not close connections; with the
        # Content-Length header removed, a client reused one after an
        # answer without a body.
        got = read_uwsgi(packaged.uwsgi_ini(
            KEYSTONE_INI, '/usr/bin/keystone-wsgi-public', '10.0.0.1:5000',
            'nsio-keystone'))
        self.assertEqual(['Content-Length'], got['rem-header'])
        self.assertEqual(['Connection: close'], got['add-header'])

    def test_no_apparmor(self):
        got = read_uwsgi(packaged.uwsgi_ini(
            KEYSTONE_INI, '/usr/bin/keystone-wsgi-public', '10.0.0.1:5000',
            'nsio-keystone'))
        self.assertEqual(['python3'], got['plugins'])
        self.assertNotIn('apparmor-profile', got)


class TestPlane(base.BaseTestCase):

    def test_packaged_executables(self):
        plane = make_plane(self)
        self.assertEqual(['/usr/bin/nova-compute', '--config-file', '/c'],
                         plane.nova_compute_argv('/c'))
        self.assertEqual('/usr/bin/python3', plane.python)
        self.assertEqual(sys.executable, plane.sdk_python)
        self.assertEqual('/etc/nova/api-paste.ini',
                         plane.paste_file('nova', 'api-paste.ini'))
        argv = plane.packaged_argv()
        self.assertEqual(['/usr/bin/uwsgi', '--ini', '<nova-api uwsgi.ini>',
                          '/usr/bin/nova-api-wsgi'], argv['nova-api'])
        self.assertEqual(['/usr/bin/nova-conductor'],
                         argv['nova-conductor'])
        for name in ('keystone', 'glance', 'placement', 'nova-api'):
            self.assertEqual(packaged.UWSGI, argv[name][0])

    def test_compute_conf_differs_in_the_privsep_helper_only(self):
        plane = make_plane(self)
        venv = controlplane.ControlPlane(
            self.useFixture(fixtures.TempDir()).path, '26.2.2',
            '10.251.0.1', progress=lambda line: None, password='pw')
        venv.venv = '/venv'
        confs = []
        for cp in (plane, venv):
            work = self.useFixture(fixtures.TempDir()).path
            parser = configparser.RawConfigParser(default_section='__none__')
            parser.read(cp.compute_conf('h1', '10.251.0.11', SCALEIO, work))
            confs.append(dict((s, dict(parser.items(s)))
                              for s in parser.sections()))
        ours, theirs = confs
        for section in novaconf.PRIVSEP_SECTIONS:
            self.assertTrue(ours[section]['helper_command'].startswith(
                '/usr/bin/privsep-helper --config-file '))
            self.assertTrue(theirs[section]['helper_command'].startswith(
                '/venv/bin/privsep-helper --config-file '))
            del ours[section], theirs[section]
        for conf in confs:
            conf['DEFAULT'].pop('state_path')
            conf['DEFAULT'].pop('instances_path')
            conf['oslo_concurrency'].pop('lock_path')
        self.assertEqual(theirs, ours)
        self.assertEqual('sio', ours['libvirt']['images_type'])

    def test_failed_package_install_leaves_nothing_to_restore(self):
        # apt-get failed: no package, no tree, no hook; the tear-down
        # neither reverts nor complains.
        plane = make_plane(self)
        self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.packaged.installed_version', return_value=None))
        self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.packaged.HOOK_FILES', (os.path.join(
                self.useFixture(fixtures.TempDir()).path, '80nova-sio'),)))
        calls = []
        plane._nova_sio = lambda *args: calls.append(args)
        self.assertEqual([], plane.modified_files())
        self.assertEqual([], plane.leftovers())
        self.assertEqual([], plane.restore())
        self.assertEqual([], calls)

    def test_neutron_server_is_refused(self):
        exc = self.assertRaises(packaged.PackagedError, make_plane, self,
                                neutron='server')
        self.assertIn('--neutron stub', exc.message)


class TestPristine(base.BaseTestCase):
    """Install and revert bookkeeping, the commands replaced."""

    def setUp(self):
        super(TestPristine, self).setUp()
        self.plane = make_plane(self)
        self.calls = []
        self.changed = []
        self.left = []
        self.codes = {'install': 0, 'revert': 0}
        self.revert_clears = True

        def nova_sio(args, name):
            self.calls.append(args[0])
            if args[0] == 'install':
                self.changed[:] = ['??5??????   /usr/lib/python3/dist-'
                                   'packages/nova/virt/libvirt/driver.py']
                self.left[:] = ['/etc/apt/apt.conf.d/80nova-sio']
            elif self.codes['revert'] == 0 and self.revert_clears:
                self.changed[:] = []
                self.left[:] = []
            self.plane.setup_logs[name] = '/log/%s' % name
            return subprocess.CompletedProcess(args, self.codes[args[0]])
        self.plane._nova_sio = nova_sio
        self.plane.modified_files = lambda: list(self.changed)
        self.plane.leftovers = lambda: list(self.left)

    def test_install_then_restore(self):
        self.assertEqual('installed', self.plane.patch_nova())
        self.assertEqual(['install'], self.calls)
        self.assertEqual([], self.plane.restore())
        self.assertEqual(['install', 'revert'], self.calls)
        # Nothing installed any more: a second restore changes nothing.
        self.plane.restore()
        self.assertEqual(['install', 'revert'], self.calls)

    def test_tree_a_killed_run_left_is_reverted_first(self):
        self.changed[:] = ['??5?????? /usr/lib/python3/dist-packages/nova/'
                           'virt/images.py']
        self.plane.patch_nova()
        self.assertEqual(['revert', 'install'], self.calls)

    def test_restore_fails_when_the_package_is_not_pristine(self):
        self.plane.patch_nova()
        self.codes['revert'] = 1
        exc = self.assertRaises(packaged.PackagedError, self.plane.restore)
        self.assertIn('nova-sio revert exited 1', exc.message)
        # A revert that exits 0 but leaves a file of nova-sio.
        self.codes['revert'] = 0
        self.revert_clears = False
        self.changed[:] = []
        self.left[:] = ['/usr/lib/python3/dist-packages/nova/virt/libvirt/'
                        'sio/']
        exc = self.assertRaises(packaged.PackagedError, self.plane.restore)
        self.assertIn('files left: /usr/lib/python3/dist-packages/nova/'
                      'virt/libvirt/sio/', exc.message)
        self.assertIn('apt-get install --reinstall python3-nova',
                      exc.message)

    def test_failed_install_is_reported(self):
        self.codes['install'] = 3
        exc = self.assertRaises(packaged.PackagedError,
                                self.plane.patch_nova)
        self.assertIn('nova-sio install exited 3 (log: /log/nova-sio-'
                      'install)', exc.message)

    def test_tree_leftovers(self):
        root = self.useFixture(fixtures.TempDir()).path
        nova = os.path.join(root, 'nova')
        os.makedirs(os.path.join(nova, 'virt', '__pycache__'))
        os.makedirs(os.path.join(nova, 'virt', 'libvirt', 'sio'))
        owned = {nova, os.path.join(nova, 'virt'),
                 os.path.join(nova, 'virt', 'libvirt'),
                 os.path.join(nova, 'virt', 'images.py')}
        for path in ('virt/images.py', 'virt/__pycache__/images.pyc',
                     'virt/libvirt/sio/volume.py', 'virt/stray.py'):
            with open(os.path.join(nova, path), 'w') as handle:
                handle.write('x')
        self.assertEqual([os.path.join(nova, 'virt', 'libvirt', 'sio/'),
                          os.path.join(nova, 'virt', 'libvirt', 'sio',
                                       'volume.py'),
                          os.path.join(nova, 'virt', 'stray.py')],
                         packaged.tree_leftovers(nova, owned))


class TestLiveDistroCloud(base.BaseTestCase):
    """The short slice on Debian bookworm's own packaged services."""

    def test_short_slice_on_bookworm_packages(self):
        e2e_base.require_e2e(self, need_guest_kernel=True)
        if os.environ.get(DISTRO_OPT_IN) != '1':
            self.skipTest('installs Debian\'s OpenStack packages into this '
                          'machine\'s system: set %s=1 to run it' %
                          DISTRO_OPT_IN)
        packaged.check_distro('bookworm')
        out = tempfile.mkdtemp(prefix='nova-sio-distro-',
                               dir=e2e_base.SYSTEM_TMP)
        self.addCleanup(subprocess.call, ['rm', '-rf', out])
        result = os.path.join(out, 'result.json')
        env = dict(os.environ, PYTHONPATH=os.path.join(
            paths.project_root(), 'tools'))
        # A run killed before its tear-down left the package patched
        # (when the package is there already): the next run reverts it
        # first.
        killed = packaged.installed_version('python3-nova') is not None
        if killed:
            subprocess.run([sys.executable, '-m', 'nova_sio.cli', 'install',
                            '--nova-dir', packaged.DISTROS['bookworm'][
                                'nova_dir'], '-q'], env=dict(
                                    env, PATH='/usr/sbin:/usr/bin:/sbin:/bin'),
                           check=True, stdout=subprocess.DEVNULL)
        proc = subprocess.run(
            [sys.executable, '-m', 'nova_sio.e2e', 'run', '--distro',
             'bookworm', '--slice', 'short', '--json', result],
            cwd=out, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=3600)
        text = proc.stdout.decode('utf-8', 'replace')
        self.assertEqual(0, proc.returncode, text[-6000:])
        with open(result) as handle:
            report = json.load(handle)
        steps = dict((s['name'], s['status']) for s in report['steps'])
        for name in ('set-up', 'boot', 'live-migration', 'delete-all',
                     'tear-down'):
            self.assertEqual('passed', steps.get(name), text[-6000:])
        self.assertIn('e2e:   | nova-sio: ', text)
        self.assertIn('dpkg --verify python3-nova: clean', text)
        if killed:
            self.assertIn('the packaged Nova is not pristine (an earlier '
                          'run was killed?): nova-sio revert first', text)
        verify = subprocess.run(['dpkg', '--verify', 'python3-nova'],
                                stdout=subprocess.PIPE)
        self.assertEqual(b'', verify.stdout)
        for path in packaged.HOOK_FILES:
            self.assertFalse(os.path.exists(path), path)
        for package in packaged._NO:
            templates = '/var/lib/dpkg/info/%s.templates' % package
            with open(templates) as handle:
                self.assertEqual([], packaged.unanswered(handle.read(),
                                                         package))
