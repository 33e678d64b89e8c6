# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The control plane of the real cloud: real services, one worker each.

:meth:`ControlPlane.install` makes sure Debian's MariaDB and RabbitMQ are
installed, builds (or reuses from the nova-sio cache) a virtualenv with
Nova at the release under test and the Keystone, Glance and Placement
releases of the same series from PyPI, pinned by the series' committed
constraints, then patches that Nova the operator's way (``nova-sio
install``), so the code under test is exactly ``releases/<version>.diff``.

:meth:`ControlPlane.start` runs, all on one address: MariaDB and RabbitMQ
with their data under the work directory, Keystone, Glance (file store),
Placement and Neutron under gunicorn, nova-api (gunicorn), nova-conductor
and nova-scheduler. Neutron is a real ``neutron-server`` of the same
series by default: ML2 with no mechanism driver, no agent and no network
(servers boot with ``networks: none``), the L3 service plugin; it
answers Nova exactly as a cloud without ports would. Its ML2 loads the
VXLAN type driver although no VXLAN network is made: that driver's
start-up query configures SQLAlchemy's mappers, without which Neutron's
port list fails (HTTP 500, ``type object 'Port' has no attribute
'port_forwardings'``) until some other query has run, and a boot's first
Neutron request is such a port list (see
:func:`~nova_sio.e2e.novaconf.ml2_conf`). ``neutron='stub'`` puts the
stand-in of :mod:`~nova_sio.e2e.neutron_stub` there instead (no neutron
in the venv, one process of 20 MiB instead of 180). Every process is
supervised by :mod:`~nova_sio.e2e.services` and recorded in the ledger;
:meth:`ControlPlane.stop` stops them all, also after a failed start.
"""

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

from nova_sio.e2e import eras
from nova_sio.e2e import novaconf
from nova_sio.e2e import services
from nova_sio.e2e import venvbuild
from nova_sio import errors
from nova_sio import paths
from nova_sio import releases as rel_mod
from nova_sio import testenv
from nova_sio import util

DEFAULT_VERSION = '34.0.0'
# Debian packages: the database, the message queue, and what building
# the libvirt binding from PyPI needs.
DEBS = ('mariadb-server', 'mariadb-client', 'rabbitmq-server',
        'libvirt-dev', 'pkg-config', 'gcc')
# Major-version distance between Nova and the other services of the same
# series (holds from Stein, when Placement left Nova, on).
SERVICE_OFFSETS = (('keystone', 4), ('glance', 1),
                   ('openstack-placement', 18))
NEUTRON_OFFSET = 5
# The Neutron endpoint: a real neutron-server (ML2, no mechanism driver,
# no agent) or the stand-in of neutron_stub.
NEUTRON_KINDS = ('server', 'stub')
FIRST_MAJOR = 19
# Clients and servers added to the services.
EXTRAS = ('openstacksdk', 'python-openstackclient', 'gunicorn',
          'libvirt-python', 'PyMySQL')
# WSGI applications of the newest era; each era's are in its profile
# (:mod:`~nova_sio.e2e.eras`).
WSGI_APPS = dict(eras.WSGI_MODULES)
# The distribution of the libvirt binding in the constraints files.
LIBVIRT_BINDING = 'libvirt-python'
SDK_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'sdkcalls.py')


class ControlPlaneError(errors.NovaSioError):
    msg_fmt = 'Control plane of Nova %(version)s: %(reason)s'


def service_requirements(version, neutron=False):
    """Return the pip requirements of the services of ``version``'s series.

    :param version: a final Nova release (``34.0.0``).
    :param neutron: also neutron (the real server).
    :returns: ``['nova==34.0.0', 'keystone>=30,<31', ...]``.
    :raises ControlPlaneError: for a release older than Stein.
    """
    major = int(version.split('.')[0])
    if major < FIRST_MAJOR:
        raise ControlPlaneError(
            version=version, reason='the harness needs Placement as its '
            'own service (Nova %d.0.0 and later)' % FIRST_MAJOR)
    reqs = ['nova==%s' % version]
    for name, offset in SERVICE_OFFSETS:
        reqs.append('%s>=%d,<%d' % (name, major - offset,
                                    major - offset + 1))
    if neutron:
        reqs.append('neutron>=%d,<%d' % (major - NEUTRON_OFFSET,
                                         major - NEUTRON_OFFSET + 1))
        # Imported by neutron's models (neutron.privileged) but not in
        # its requirements since it is meant for agents.
        reqs.append('pyroute2')
    return reqs


def _vtuple(text):
    return tuple(int(x) for x in re.findall(r'[0-9]+', text)[:3])


def host_libvirt_version():
    """Return the version of the host's libvirt (``9.0.0``), as its
    development files declare it, or None without them.
    """
    try:
        proc = subprocess.run(['pkg-config', '--modversion', 'libvirt'],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    except OSError:
        return None
    text = proc.stdout.decode().strip()
    return text if proc.returncode == 0 and text else None


def libvirt_binding_pin(cons, host_version):
    """Return the libvirt binding to install instead of a pinned one
    older than the host's libvirt, or None to keep the pin.

    The binding's code generator refuses a libvirt API newer than itself
    (``libvirt-python`` 8.0.0 over libvirt 9.0's API description: ``ERROR:
    failed virDomainFDAssociate``), while a binding builds against any
    older libvirt. An older era's pin is therefore raised to the binding
    of the host's own libvirt version.

    :param cons: a constraints file.
    :param host_version: the host's libvirt version, or None.
    :returns: ``'libvirt-python==9.0.0'`` or None.
    """
    if not host_version:
        return None
    pins = []
    with open(cons) as handle:
        for line in handle:
            found = re.match(r'^\s*%s===([0-9.]+)' % re.escape(
                LIBVIRT_BINDING), line, re.I)
            if found:
                pins.append(_vtuple(found.group(1)))
    host = _vtuple(host_version)
    if not pins or min(pins) >= host:
        return None
    return '%s==%s' % (LIBVIRT_BINDING, '.'.join(str(x) for x in host))


#: Moved to :mod:`~nova_sio.e2e.venvbuild`; callers of this module keep
#: the name.
requires_dist = venvbuild.requires_dist


def nova_dir_of(python):
    """Return the directory of the ``nova`` package ``python`` imports.

    :param python: an interpreter path.
    """
    code = ('import importlib.util as u; '
            's = u.find_spec("nova"); '
            'print(list(s.submodule_search_locations)[0])')
    proc = util.run([python, '-c', code], isolated=False)
    return proc.stdout.decode().strip()


def gunicorn_has_setting(venv, name):
    """Tell whether the gunicorn of ``venv`` knows setting ``name``.

    :param venv: a venv path.
    :param name: a setting name (``control_socket_disable``).
    """
    found = glob.glob(os.path.join(venv, 'lib', 'python*', 'site-packages',
                                   'gunicorn', 'config.py'))
    if not found:
        return False
    with open(found[0]) as handle:
        return 'name = "%s"' % name in handle.read()


class ControlPlane(object):
    """The control-plane services of one run.

    :param workdir: the run's directory (data, configuration, logs).
    :param version: the Nova release under test.
    :param address: the address every service listens on.
    :param ledger: the run's :class:`~nova_sio.e2e.cleanup.Ledger`.
    :param progress: a callable taking one progress line.
    :param password: the one password of every account (default: a
        random one).
    :param ports: ``{name: port}`` overriding
        :data:`~nova_sio.e2e.novaconf.PORTS`.
    :param neutron: ``'server'`` (a real neutron-server) or ``'stub'``
        (:mod:`~nova_sio.e2e.neutron_stub`).
    """

    def __init__(self, workdir, version=DEFAULT_VERSION, address='127.0.0.1',
                 ledger=None, progress=print, password=None, ports=None,
                 neutron='server'):
        if neutron not in NEUTRON_KINDS:
            raise ControlPlaneError(version=version, reason='neutron must '
                                    'be one of %s' % ', '.join(NEUTRON_KINDS))
        self.neutron = neutron
        self.workdir = os.path.abspath(workdir)
        self.version = version
        self.address = address
        self.ledger = ledger
        self.progress = progress
        self.series = rel_mod.series_of(version)
        self.era = eras.profile_for(version)
        self._binding = None
        self.ep = novaconf.Endpoints(
            address, password or hashlib.sha256(os.urandom(16)).hexdigest()[
                :20], ports)
        self.venv = None
        self.supervisor = None
        self.mysql_socket = None
        self.setup_logs = {}
        self.timings = {}
        self.etc = os.path.join(self.workdir, 'etc')
        self.nova_conf_path = os.path.join(self.etc, 'nova', 'nova.conf')

    # -- install ---------------------------------------------------------

    def _say(self, message):
        self.progress('e2e: %s' % message)

    def _python_version(self):
        return testenv.PYTHON.get(self.series, '3.12')

    def venv_key(self):
        """Return the cache key of the venv: release, Python, constraints.

        :returns: a hex string.
        """
        key = [self.version, self._python_version(), self._requirements(),
               EXTRAS]
        binding = self.libvirt_binding()
        if binding:
            key.append(binding)
        return venvbuild.cache_key(self.series, key)

    def libvirt_binding(self):
        """Return the libvirt binding replacing the series' pin (see
        :func:`libvirt_binding_pin`), or None.
        """
        if self._binding is None:
            self._binding = libvirt_binding_pin(
                testenv.constraints_file(self.series),
                host_libvirt_version()) or ''
        return self._binding or None

    def _requirements(self):
        return service_requirements(self.version,
                                    neutron=self.neutron == 'server')

    def venv_path(self):
        """Return where the venv of this release is cached."""
        return venvbuild.cache_path('venvs', self.version,
                                    self._python_version(), self.venv_key())

    def install_debs(self, packages=DEBS, selections=None):
        """Install the Debian packages the control plane needs.

        :param packages: the package names (default :data:`DEBS`).
        :param selections: ``debconf-set-selections`` lines preseeding
            the packages' questions, fed before the installation, or None.
        :returns: the packages installed (empty when all were there).
        """
        need = [p for p in packages if subprocess.run(
            ['dpkg', '-s', p], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL).returncode != 0]
        if not need:
            return need
        self._say('apt-get install %s ...' % ' '.join(need))
        env = {'DEBIAN_FRONTEND': 'noninteractive'}
        # Packages must not start their services: the harness starts its
        # own instances. policy-rc.d is Debian's switch for that.
        policy = '/usr/sbin/policy-rc.d'
        made_policy = not os.path.exists(policy)
        if made_policy:
            with open(policy, 'w') as handle:
                handle.write('#!/bin/sh\nexit 101\n')
            os.chmod(policy, 0o755)
        try:
            util.run(['apt-get', '-qq', 'update'], isolated=False, env=env,
                     timeout=600)
            if selections:
                util.run(['debconf-set-selections'], isolated=False,
                         env=env, input='\n'.join(selections).encode() +
                         b'\n')
            util.run(['apt-get', '-qq', 'install', '-y',
                      '--no-install-recommends'] + need, isolated=False,
                     env=env, timeout=1800)
        finally:
            if made_policy:
                os.unlink(policy)
        return need

    def build_venv(self):
        """Build or reuse the cached venv; return its path."""
        venv = self.venv_path()
        reqs = self._requirements()
        extras, drop, notes = self._venv_extras(reqs)
        builder = venvbuild.CachedVenv(
            venv, self.series, self._python_version(), reqs,
            ('.nova-sio-e2e-ready', self.version), self._venv_wording(venv),
            extras=extras, drop=drop, notes=notes,
            lock='e2e-venv-%s' % os.path.basename(venv),
            progress=self.progress)
        builder.build()
        self.timings['venv_build_s'] = builder.seconds
        return venv

    def _venv_extras(self, reqs):
        """Return what the venv adds to the services' requirements.

        :param reqs: the services' requirements.
        :returns: ``(extras, constraints to drop, progress notes)``.
        """
        extras = list(EXTRAS)
        drop = []
        notes = []
        binding = self.libvirt_binding()
        if binding:
            # Dropped from the constraints, required at the host's level.
            drop.append(LIBVIRT_BINDING)
            extras[extras.index(LIBVIRT_BINDING)] = binding
            notes.append('%s instead of the series\' pin (the host\'s '
                         'libvirt is newer)' % binding)
        notes.append('pip install %s ...' % ' '.join(reqs + extras))
        return extras, drop, notes

    def _venv_wording(self, venv):
        """Return the progress lines of the venv's build.

        :param venv: the venv path.
        """
        return venvbuild.Wording(
            reuse='reusing the nova %s venv %s' % (
                self.version, os.path.basename(venv)),
            install='installing nova %s venv (Python %s, %s series) into '
            '%s; this takes minutes ...' % (
                self.version, self._python_version(), self.series, venv),
            # A release may need newer libraries than its series pinned
            # when the constraints were frozen.
            unpinned='unpinned for the services\' own minimums: %s',
            built='venv built in %.0f s')

    def bin(self, name):
        """Return the path of ``name`` in the venv's ``bin``.

        :param name: a console script.
        """
        return os.path.join(self.venv, 'bin', name)

    @property
    def python(self):
        return self.bin('python')

    @property
    def sdk_python(self):
        """The interpreter of :meth:`sdk` (one with openstacksdk)."""
        return self.python

    def paste_file(self, service, name):
        """Return the packaged paste configuration ``name`` of ``service``.

        :param service: ``nova``, ``glance`` or ``neutron``.
        :param name: the file name (``api-paste.ini``).
        """
        return os.path.join(self.venv, 'etc', service, name)

    def patch_nova(self):
        """Install ``releases/<version>.diff`` into the venv's Nova with
        ``nova-sio install``; a tree holding this very diff is kept, one
        holding another diff is reverted first.

        :returns: ``'installed'`` or ``'already installed'``.
        """
        from nova_sio.engine import emit as engine
        from nova_sio.operator import install as operator_install
        nova_dir = nova_dir_of(self.python)
        diff = engine.diff_path(self.version)
        want = util.sha256_file(diff)
        state_path = os.path.join(nova_dir, operator_install.STATE_DIR,
                                  operator_install.STATE_FILE)
        cli = [sys.executable, '-m', 'nova_sio.cli']
        env = {'PYTHONPATH': os.path.join(paths.project_root(), 'tools')}
        if os.path.exists(state_path):
            with open(state_path) as handle:
                state = json.load(handle)
            if state.get('status') == 'installed' and \
                    state.get('diff_sha256') == want:
                self._say('nova-sio %s already installed in %s' % (
                    self.version, nova_dir))
                return 'already installed'
            self._say('nova-sio revert --nova-dir %s (another diff was '
                      'installed)' % nova_dir)
            util.run(cli + ['revert', '--nova-dir', nova_dir, '-q'],
                     isolated=False, env=env)
        self._say('nova-sio install --nova-dir %s --version %s' % (
            nova_dir, self.version))
        util.run(cli + ['install', '--nova-dir', nova_dir, '--version',
                        self.version, '--python', self.python, '-q'],
                 isolated=False, env=env, timeout=900)
        return 'installed'

    def install(self):
        """Install the packages, the venv and nova-sio; idempotent.

        :returns: the venv path.
        :raises ~nova_sio.e2e.eras.EraError: for an era the harness
            cannot run.
        """
        eras.check_runnable(self.version, self.neutron)
        self.install_debs()
        self.venv = self.build_venv()
        self.patch_nova()
        return self.venv

    # -- start -----------------------------------------------------------

    def _dir(self, *parts):
        path = os.path.join(self.workdir, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    def _env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if k not in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME')}
        env['PATH'] = os.path.join(self.venv, 'bin') + os.pathsep + \
            env.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')
        env.update(extra)
        return env

    def _setup(self, name, argv, env=None, ok_codes=(0,), timeout=900,
               input_data=None):
        """Run a one-shot set-up command, its output appended to
        ``logs/<name>.log``.

        :param name: the log name.
        :param argv: argument list.
        :param env: environment (default :meth:`_env`).
        :param ok_codes: exit codes taken as success.
        :param timeout: seconds.
        :param input_data: bytes for stdin.
        :returns: its stdout (text).
        :raises ControlPlaneError: on another exit code.
        """
        path = os.path.join(self._dir('logs'), '%s.log' % name)
        try:
            proc = subprocess.run(argv, input=input_data,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  env=env or self._env(), cwd=self.workdir,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ControlPlaneError(version=self.version, reason='%s did '
                                    'not finish in %ds' % (name, timeout))
        with open(path, 'ab') as handle:
            handle.write(b'$ ' + ' '.join(argv).encode() + b'\n')
            handle.write(proc.stdout + proc.stderr)
        self.setup_logs[name] = path
        if proc.returncode not in ok_codes:
            tail = (proc.stderr or proc.stdout).decode('utf-8', 'replace')
            raise ControlPlaneError(
                version=self.version, reason='%s exited %d: %s (log: %s)' % (
                    name, proc.returncode, tail.strip()[-1500:], path))
        return proc.stdout.decode('utf-8', 'replace')

    def sdk(self, command, **request):
        """Run one command of :mod:`~nova_sio.e2e.sdkcalls` with the
        venv's openstacksdk as admin.

        :param command: a command name.
        :param request: its arguments.
        :returns: its decoded JSON answer.
        """
        request['auth'] = self.auth
        out = self._setup('sdk-%s' % command, [self.sdk_python,
                                               SDK_SCRIPT, command],
                          input_data=json.dumps(request).encode(),
                          timeout=600)
        return json.loads(out)

    def start(self):
        """Start every service and wait until each answers.

        On failure every started service is stopped before the error
        propagates.

        :raises ControlPlaneError: or :class:`~nova_sio.e2e.services.
            ServiceError` naming the service and its log.
        """
        if self.venv is None:
            self.install()
        if self.ledger is None:
            from nova_sio.e2e import cleanup
            self.ledger = cleanup.Ledger()
        self.supervisor = services.Supervisor(self.workdir, self.ledger,
                                              self.progress)
        begin = time.monotonic()
        try:
            self._start_mariadb()
            self._start_rabbitmq()
            self._start_keystone()
            self._say('registering service users and endpoints ...')
            self.sdk('register', password=self.ep.password,
                     region=novaconf.REGION, users=list(
                         novaconf.SERVICE_USERS),
                     services=self._catalog())
            self._start_glance()
            self._start_placement()
            self._start_neutron()
            self._start_nova()
        except BaseException:
            self.stop()
            raise
        self.timings['start_to_healthy_s'] = round(
            time.monotonic() - begin, 1)
        self.supervisor.sample()
        self._say('control plane up on %s in %.0f s' % (
            self.address, self.timings['start_to_healthy_s']))

    def _catalog(self):
        ep = self.ep
        return [
            {'name': 'glance', 'type': 'image', 'url': ep.url('glance')},
            {'name': 'placement', 'type': 'placement',
             'url': ep.url('placement')},
            {'name': 'nova', 'type': 'compute',
             'url': ep.url('nova_api', '/v2.1')},
            {'name': 'neutron', 'type': 'network',
             'url': ep.url('neutron')},
        ]

    def _mysql(self, sql):
        return self._setup('mariadb-sql', [
            'mariadb', '--no-defaults', '-S', self.mysql_socket, '-u',
            'root', '-e', sql])

    def _start_mariadb(self):
        self._say('starting MariaDB ...')
        base = self._dir('mysql')
        datadir = os.path.join(base, 'data')
        self.mysql_socket = os.path.join(base, 'mysqld.sock')
        if not os.path.isdir(os.path.join(datadir, 'mysql')):
            os.makedirs(datadir, exist_ok=True)
            self._setup('mariadb-install-db', [
                'mariadb-install-db', '--no-defaults', '--user=root',
                '--datadir=%s' % datadir, '--skip-test-db',
                '--auth-root-authentication-method=normal'])
        self.supervisor.start('mariadb', novaconf.mariadb_argv(
            '/usr/sbin/mariadbd', datadir, self.mysql_socket, self.ep,
            os.path.join(base, 'mysqld.pid')))
        self.supervisor.wait_port('mariadb', self.address,
                                  self.ep.ports['mysql'])
        for _attempt in range(50):
            if os.path.exists(self.mysql_socket):
                break
            time.sleep(0.2)
        users = {'keystone': ['keystone'], 'glance': ['glance'],
                 'placement': ['placement'], 'neutron': ['neutron'],
                 'nova': ['nova_api', 'nova_cell0', 'nova']}
        sql = []
        for user, dbs in sorted(users.items()):
            sql.append("CREATE OR REPLACE USER '%s'@'%%' IDENTIFIED BY "
                       "'%s';" % (user, self.ep.password))
            for db in dbs:
                sql.append('CREATE DATABASE IF NOT EXISTS %s;' % db)
                sql.append("GRANT ALL PRIVILEGES ON %s.* TO '%s'@'%%';" % (
                    db, user))
        self._mysql('\n'.join(sql))

    def _start_rabbitmq(self):
        self._say('starting RabbitMQ ...')
        base = self._dir('rabbitmq')
        home = self._dir('rabbitmq', 'home')
        conf = os.path.join(base, 'rabbitmq.conf')
        with open(conf, 'w') as handle:
            handle.write(novaconf.rabbitmq_conf(self.ep))
        plugins = os.path.join(base, 'enabled_plugins')
        with open(plugins, 'w') as handle:
            handle.write('[].\n')
        env_file = os.path.join(base, 'rabbitmq-env.conf')
        open(env_file, 'w').close()
        epmd_port = str(self.ep.ports['epmd'])
        # A private epmd on its own port, so that no epmd of the machine
        # (or of another run) is shared, and the supervisor stops it.
        self.supervisor.start('epmd', ['epmd', '-port', epmd_port],
                              env=self._env(ERL_EPMD_PORT=epmd_port))
        self.supervisor.wait_port('epmd', '127.0.0.1', int(epmd_port))
        env = self._env(
            HOME=home, ERL_EPMD_PORT=epmd_port,
            RABBITMQ_NODENAME='nsio@localhost',
            RABBITMQ_NODE_IP_ADDRESS=self.address,
            RABBITMQ_NODE_PORT=str(self.ep.ports['amqp']),
            RABBITMQ_DIST_PORT=str(self.ep.ports['rabbit_dist']),
            RABBITMQ_MNESIA_BASE=self._dir('rabbitmq', 'mnesia'),
            RABBITMQ_LOG_BASE=self._dir('rabbitmq', 'log'),
            RABBITMQ_LOGS='-',
            RABBITMQ_CONFIG_FILE=conf,
            RABBITMQ_ADVANCED_CONFIG_FILE=os.path.join(base,
                                                       'advanced.config'),
            RABBITMQ_ENABLED_PLUGINS_FILE=plugins,
            RABBITMQ_CONF_ENV_FILE=env_file,
            RABBITMQ_PID_FILE=os.path.join(base, 'rabbitmq.pid'))
        self.supervisor.start('rabbitmq',
                              ['/usr/lib/rabbitmq/bin/rabbitmq-server'],
                              env=env)
        self.supervisor.wait_port('rabbitmq', self.address,
                                  self.ep.ports['amqp'], timeout=180)

    def _gunicorn(self, name, port, env):
        """Serve ``WSGI_APPS[name]`` with gunicorn, one worker.

        Everything goes in ``gunicorn.conf.py`` of the service's own
        directory (gunicorn reads it from its working directory): the
        applications parse ``sys.argv`` with oslo.config, which must
        hold no gunicorn option.
        """
        rundir = self._dir('gunicorn', name)
        target = self.era.wsgi_target(name)
        if target.startswith(eras.SCRIPT):
            target = eras.wsgi_script_target(
                os.path.dirname(nova_dir_of(self.python)),
                target[len(eras.SCRIPT):])
        settings = {
            'wsgi_app': target,
            'bind': ['%s:%d' % (self.address, port)],
            'workers': 1,
            'timeout': 600,
            'accesslog': '-',
            'errorlog': '-',
            'proc_name': 'nsio-%s' % name,
        }
        lines = ['%s = %r' % item for item in sorted(settings.items())]
        if gunicorn_has_setting(self.venv, 'control_socket_disable'):
            lines.append('control_socket_disable = True')
        with open(os.path.join(rundir, 'gunicorn.conf.py'), 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        self.supervisor.start(name, [self.bin('gunicorn')], env=env,
                              cwd=rundir)

    def _start_keystone(self):
        self._say('starting Keystone ...')
        base = self._dir('keystone')
        conf = novaconf.write_ini(os.path.join(self.etc, 'keystone',
                                               'keystone.conf'),
                                  novaconf.keystone_conf(self.ep, base))
        for sub in ('fernet-keys', 'credential-keys'):
            os.makedirs(os.path.join(base, sub), mode=0o700, exist_ok=True)
        manage = [self.bin('keystone-manage'), '--config-file', conf]
        self._setup('keystone-manage', manage + ['db_sync'])
        owner = ['--keystone-user', 'root', '--keystone-group', 'root']
        self._setup('keystone-manage', manage + ['fernet_setup'] + owner)
        self._setup('keystone-manage', manage + ['credential_setup'] + owner)
        url = self.ep.auth_url
        self._setup('keystone-manage', manage + [
            'bootstrap', '--bootstrap-password', self.ep.password,
            '--bootstrap-admin-url', url, '--bootstrap-public-url', url,
            '--bootstrap-internal-url', url,
            '--bootstrap-region-id', novaconf.REGION])
        self._gunicorn('keystone', self.ep.ports['keystone'],
                       self._env(OS_KEYSTONE_CONFIG_FILES=conf))
        self.supervisor.wait_http('keystone', url)

    def _start_glance(self):
        self._say('starting Glance ...')
        base = self._dir('glance')
        etc = os.path.join(self.etc, 'glance')
        os.makedirs(etc, exist_ok=True)
        paste = os.path.join(etc, 'glance-api-paste.ini')
        shutil.copy(self.paste_file('glance', 'glance-api-paste.ini'),
                    paste)
        sections = novaconf.glance_conf(self.ep, base)
        sections['paste_deploy']['config_file'] = paste
        conf = novaconf.write_ini(os.path.join(etc, 'glance-api.conf'),
                                  sections)
        self._setup('glance-manage', [self.bin('glance-manage'),
                                      '--config-file', conf, 'db_sync'])
        self._gunicorn('glance', self.ep.ports['glance'],
                       self._env(OS_GLANCE_CONFIG_DIR=etc))
        self.supervisor.wait_http('glance', self.ep.url('glance', '/'))

    def _start_placement(self):
        self._say('starting Placement ...')
        etc = os.path.join(self.etc, 'placement')
        conf = novaconf.write_ini(os.path.join(etc, 'placement.conf'),
                                  novaconf.placement_conf(self.ep))
        self._setup('placement-manage', [self.bin('placement-manage'),
                                         '--config-file', conf, 'db',
                                         'sync'])
        self._gunicorn('placement', self.ep.ports['placement'],
                       self._env(OS_PLACEMENT_CONFIG_DIR=etc))
        self.supervisor.wait_http('placement',
                                  self.ep.url('placement', '/'))

    def _start_neutron(self):
        if self.neutron == 'stub':
            self._say('starting the Neutron stand-in ...')
            stub = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                'neutron_stub.py')
            self.supervisor.start('neutron', [
                self.python, stub, '--listen', self.address, '--port',
                str(self.ep.ports['neutron'])], env=self._env())
            self.supervisor.wait_http('neutron',
                                      self.ep.url('neutron', '/'))
            return
        self._say('starting neutron-server (ML2, no agents) ...')
        etc = os.path.join(self.etc, 'neutron')
        os.makedirs(os.path.join(etc, 'plugins', 'ml2'), exist_ok=True)
        paste = os.path.join(etc, 'api-paste.ini')
        shutil.copy(self.paste_file('neutron', 'api-paste.ini'), paste)
        conf = novaconf.write_ini(
            os.path.join(etc, 'neutron.conf'),
            novaconf.neutron_conf(self.ep, self._dir('neutron'), paste))
        ml2 = novaconf.write_ini(
            os.path.join(etc, 'plugins', 'ml2', 'ml2_conf.ini'),
            novaconf.ml2_conf())
        self._setup('neutron-db-manage', [
            self.bin('neutron-db-manage'), '--config-file', conf,
            '--config-file', ml2, 'upgrade', 'heads'], timeout=1800)
        self._gunicorn('neutron', self.ep.ports['neutron'],
                       self._env(OS_NEUTRON_CONFIG_DIR=etc))
        self.supervisor.wait_http('neutron', self.ep.url('neutron', '/'))

    def _start_nova(self):
        self._say('starting nova-api, nova-conductor, nova-scheduler ...')
        etc = os.path.join(self.etc, 'nova')
        os.makedirs(etc, exist_ok=True)
        shutil.copy(self.paste_file('nova', 'api-paste.ini'),
                    os.path.join(etc, 'api-paste.ini'))
        conf = novaconf.write_ini(self.nova_conf_path, novaconf.nova_conf(
            self.ep, self._dir('nova')))
        manage = [self.bin('nova-manage'), '--config-file', conf]
        self._setup('nova-manage', manage + ['api_db', 'sync'])
        self._setup('nova-manage', manage + [
            'cell_v2', 'map_cell0', '--database_connection',
            novaconf.cell0_url(self.ep)])
        # 2: the cell exists already (a restart on the same data).
        self._setup('nova-manage', manage + [
            'cell_v2', 'create_cell', '--name', novaconf.CELL],
            ok_codes=(0, 2))
        self._setup('nova-manage', manage + ['db', 'sync'])
        env = self._env(OS_NOVA_CONFIG_DIR=etc)
        self._gunicorn('nova-api', self.ep.ports['nova_api'], env)
        for binary in ('nova-conductor', 'nova-scheduler'):
            self.supervisor.start(binary, [self.bin(binary), '--config-file',
                                           conf], env=env)
        self.supervisor.wait_http('nova-api', self.ep.url('nova_api', '/'))
        self.wait_compute_services(['nova-conductor', 'nova-scheduler'])

    def wait_compute_services(self, binaries, host=None, timeout=180):
        """Wait until Nova lists each of ``binaries`` as up.

        :param binaries: service binaries (``nova-compute``...).
        :param host: only services on this host, if given.
        :param timeout: seconds.
        :returns: Nova's service list.
        :raises ControlPlaneError: when one is not up in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            for name in self.supervisor.services:
                self.supervisor._check_alive(self.supervisor.services[name])
            listed = self.sdk('compute-services')
            up = {s['binary'] for s in listed if s['state'] == 'up' and
                  (host is None or s['host'] == host)}
            missing = sorted(set(binaries) - up)
            if not missing:
                return listed
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    version=self.version, reason='%s not up after %ds '
                    '(Nova lists %s); see %s' % (
                        ', '.join(missing), timeout, json.dumps(listed),
                        self.supervisor.log_dir))
            time.sleep(2)

    # -- compute hosts ---------------------------------------------------

    def compute_conf(self, host, my_ip, scaleio_options, workdir,
                     connection_uri=None):
        """Write the nova.conf of a compute host; return its path.

        :param host: the compute host name.
        :param my_ip: its address.
        :param scaleio_options: ``{option: value}`` of its ``[scaleio]``.
        :param workdir: its directory (``nova.conf``, instances, locks).
        :param connection_uri: libvirt URI (default: libvirt's own, i.e.
            the daemon of the namespace nova-compute runs in).
        """
        path = os.path.join(workdir, 'nova.conf')
        os.makedirs(os.path.join(workdir, 'instances'), exist_ok=True)
        return novaconf.write_ini(path, novaconf.compute_conf(
            self.ep, host, my_ip, scaleio_options, workdir,
            self.bin('privsep-helper'), path,
            connection_uri=connection_uri))

    def nova_compute_argv(self, conf_path):
        """Return the argument list of nova-compute with ``conf_path``.

        :param conf_path: a file :meth:`compute_conf` wrote.
        """
        return [self.bin('nova-compute'), '--config-file', conf_path]

    def discover_hosts(self):
        """Map new compute hosts to the cell; return nova-manage's output.
        """
        return self._setup('nova-manage', [
            self.bin('nova-manage'), '--config-file', self.nova_conf_path,
            'cell_v2', 'discover_hosts', '--verbose'])

    def start_fake_compute(self, host='fake-1'):
        """Start a nova-compute with Nova's fake driver, wait until it is
        up and discovered.

        :param host: its host name.
        :returns: the service name in :attr:`logs`.
        """
        workdir = self._dir('compute-%s' % host)
        os.makedirs(os.path.join(workdir, 'instances'), exist_ok=True)
        conf = novaconf.write_ini(
            os.path.join(workdir, 'nova.conf'),
            novaconf.fake_compute_conf(self.ep, host, self.address,
                                       workdir))
        name = 'nova-compute-%s' % host
        self.supervisor.start(name, self.nova_compute_argv(conf),
                              env=self._env())
        self.wait_compute_services(['nova-compute'], host=host)
        self.discover_hosts()
        return name

    # -- state -----------------------------------------------------------

    @property
    def auth(self):
        """Keyword arguments of ``openstack.connect`` for the admin."""
        return {
            'auth_url': self.ep.auth_url,
            'username': 'admin',
            'password': self.ep.password,
            'project_name': 'admin',
            'user_domain_name': novaconf.DOMAIN,
            'project_domain_name': novaconf.DOMAIN,
            'region_name': novaconf.REGION,
            'identity_api_version': '3',
        }

    @property
    def logs(self):
        """``{service or set-up step: log path}``."""
        out = dict(self.setup_logs)
        if self.supervisor is not None:
            for name, service in self.supervisor.services.items():
                out[name] = service.log_path
        return out

    def service_health(self):
        """Return ``{service: 'up' or why not}`` of every started service.
        """
        out = {}
        if self.supervisor is None:
            return out
        http = {'keystone': self.ep.auth_url,
                'glance': self.ep.url('glance', '/'),
                'placement': self.ep.url('placement', '/'),
                'nova-api': self.ep.url('nova_api', '/'),
                'neutron': self.ep.url('neutron', '/')}
        self.supervisor.sample()
        for name, service in self.supervisor.services.items():
            if not service.alive():
                out[name] = 'exited %s' % service.popen.returncode
                continue
            out[name] = 'up'
            if name in http:
                try:
                    self.supervisor.wait_http(name, http[name], timeout=0)
                except services.ServiceError as exc:
                    out[name] = exc.message
        return out

    def peak_rss_mib(self):
        """Return ``{service: peak RSS MiB}`` and ``'total'``."""
        if self.supervisor is None:
            return {}
        peaks = self.supervisor.sample()
        out = {k: round(v / 1024.0, 1) for k, v in peaks.items()}
        out['total'] = round(sum(peaks.values()) / 1024.0, 1)
        return out

    def stop(self):
        """Stop every service, newest first; idempotent.

        :returns: pids still alive in the services' groups (empty).
        """
        if self.supervisor is None:
            return []
        self.supervisor.stop_all()
        return self.supervisor.leftover_pids()
