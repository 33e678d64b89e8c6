# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The control plane of a distribution: Debian's own OpenStack packages.

:class:`PackagedControlPlane` has the interface of
:class:`~nova_sio.e2e.controlplane.ControlPlane`, but its OpenStack code
is the distribution's: :meth:`~PackagedControlPlane.install` installs
Debian's packages with ``apt-get`` (``python3-nova`` and the packages of
the Nova daemons, ``placement-api``, ``glance-api``, ``keystone``) into
the machine's system Python, with a ``policy-rc.d`` that keeps their
maintainer scripts from starting any daemon and with debconf answers
that keep them from configuring a database, a message queue, service
users or endpoints (:data:`SELECTIONS`). It then patches the packaged
Nova the operator's way::

    nova-sio install --nova-dir /usr/lib/python3/dist-packages/nova

without ``--version``: the release comes from the package's metadata.
:meth:`~PackagedControlPlane.restore`, which the cloud calls at the end
of every run whatever happened, runs ``nova-sio revert`` and proves the
package byte-exact again (``dpkg --verify python3-nova``, no file of
nova-sio left in the tree, the upgrade hooks gone).

The services are the packaged executables run by the system Python,
each started by the harness with the harness's own configuration files
(:mod:`~nova_sio.e2e.novaconf`), one worker each: the API services are
served by Debian's uWSGI with the packages' own uWSGI settings
(:func:`uwsgi_ini`) and WSGI scripts, ``nova-conductor``,
``nova-scheduler`` and ``nova-compute`` are the packages' scripts in
``/usr/bin``. Neutron is the harness's stand-in
(:mod:`~nova_sio.e2e.neutron_stub`): the issue asks for Nova, Placement,
Glance and Keystone of the distribution, and Debian's ``neutron-server``
would add its agents' dependencies (Open vSwitch among them) to the
machine for a network no server of the scenario uses.
"""

import os
import re
import subprocess
import sys

from nova_sio.e2e import controlplane
from nova_sio import errors
from nova_sio import paths
from nova_sio import util

#: The distributions the harness knows: codename -> facts.
DISTROS = {
    'bookworm': {
        'name': 'Debian 12 (bookworm)',
        'python': '/usr/bin/python3',
        'nova_dir': '/usr/lib/python3/dist-packages/nova',
        'nova_package': 'python3-nova',
    },
}
#: The distribution's OpenStack packages the control plane and the
#: compute hosts run.
OPENSTACK_PACKAGES = ('python3-nova', 'nova-common', 'nova-api',
                      'nova-conductor', 'nova-scheduler', 'nova-compute',
                      'placement-api', 'glance-api', 'keystone',
                      'uwsgi-core', 'uwsgi-plugin-python3')
#: The database and the message queue (as the venv control plane).
SERVICE_PACKAGES = ('mariadb-server', 'mariadb-client', 'rabbitmq-server')
PACKAGES = SERVICE_PACKAGES + OPENSTACK_PACKAGES
#: Packages whose debconf questions (openstack-pkg-tools) would
#: configure a database (dbconfig-common), the message queue, Keystone
#: service users, an admin project or endpoints: each is answered "no".
_NO = {
    'nova-common': ('nova/configure_db', 'nova/configure_rabbit',
                    'nova/configure_ksat', 'nova/ksat-create-service-user',
                    'nova/configure_neutron', 'nova/configure_placement',
                    'nova-common/dbconfig-install'),
    'nova-api': ('novaapi/configure_db', 'nova/configure_api-endpoint',
                 'nova-api/dbconfig-install'),
    'keystone': ('keystone/configure_db', 'keystone/create-admin-tenant',
                 'keystone/register-endpoint',
                 'keystone/dbconfig-install'),
    'glance-common': ('glance/configure_db', 'glance/configure_rabbit',
                      'glance/configure_ksat',
                      'glance/ksat-create-service-user',
                      'glance-common/dbconfig-install'),
    'glance-api': ('glance/configure_api-endpoint',),
    'placement-common': ('placement/configure_db',
                         'placement/configure_ksat',
                         'placement/ksat-create-service-user',
                         'placement-common/dbconfig-install'),
    'placement-api': ('placement/configure_api-endpoint',),
}
SELECTIONS = tuple('%s %s boolean false' % (package, question)
                   for package, questions in sorted(_NO.items())
                   for question in questions)
#: The WSGI script each API service's package ships (run by uWSGI), and
#: the uWSGI settings file of that package.
WSGI_SCRIPTS = {
    'keystone': ('/usr/bin/keystone-wsgi-public',
                 '/etc/keystone/keystone-uwsgi.ini'),
    'glance': ('/usr/bin/glance-wsgi-api', '/etc/glance/glance-api-uwsgi.ini'),
    'placement': ('/usr/bin/placement-api',
                  '/etc/placement/placement-api-uwsgi.ini'),
    'nova-api': ('/usr/bin/nova-api-wsgi', '/etc/nova/nova-api-uwsgi.ini'),
}
#: uWSGI settings of the packages the harness drops: it runs every
#: service as root, in its own directory, logging to the service's log,
#: with no AppArmor profile (the host has none loaded), in one process.
DROPPED_UWSGI = ('logto', 'uid', 'gid', 'chdir', 'apparmor-profile',
                 'processes', 'http-socket', 'socket', 'pidfile',
                 'daemonize')
#: Added to every service. The packages' settings remove the
#: ``Content-Length`` header of the answers (``rem-header``) and uWSGI's
#: plain HTTP socket serves one request per connection; an answer with a
#: body ends with the connection, but one without (Keystone's ``204`` to
#: a role assignment) left the client believing it could send its next
#: request on it: that request met a closed connection (``Connection
#: reset by peer``). Glance's and Placement's packages add this header
#: themselves; Keystone's and Nova's do not.
CONNECTION_CLOSE = 'Connection: close'
UWSGI = '/usr/bin/uwsgi'
POLICY_RC = '/usr/sbin/policy-rc.d'
#: Files ``nova-sio install`` writes outside the Nova tree for a
#: distribution package; ``nova-sio revert`` removes them.
HOOK_FILES = ('/etc/apt/apt.conf.d/80nova-sio',
              '/etc/systemd/system/nova-compute.service.d/50-nova-sio.conf')
_DEB_VERSION = re.compile(r'^(?:\d+:)?(\d+(?:\.\d+)+)')


class PackagedError(errors.NovaSioError):
    msg_fmt = 'Packaged control plane (%(distro)s): %(reason)s'


def upstream_version(deb_version):
    """Return the Nova release of a Debian package version.

    :param deb_version: ``2:26.2.2-1~deb12u5``.
    :returns: ``26.2.2``.
    :raises PackagedError: for a version with no release in it.
    """
    match = _DEB_VERSION.match(deb_version or '')
    if not match:
        raise PackagedError(distro='?', reason='no Nova release in the '
                            'package version %r' % deb_version)
    return match.group(1)


def installed_version(package):
    """Return the installed version of a Debian package, or None.

    :param package: its name.
    """
    proc = subprocess.run(['dpkg-query', '-W', '-f', '${Status}|${Version}',
                           package], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL)
    if proc.returncode:
        return None
    status, _sep, version = proc.stdout.decode().partition('|')
    return version if status.endswith(' installed') else None


def candidate_version(package):
    """Return the version ``apt-get install`` would install, or None.

    :param package: its name.
    """
    proc = subprocess.run(['apt-cache', 'policy', package],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          env=dict(os.environ, LC_ALL='C'))
    for line in proc.stdout.decode().splitlines():
        key, _sep, value = line.strip().partition(':')
        if key == 'Candidate' and value.strip() not in ('', '(none)'):
            return value.strip()
    return None


def machine_codename(os_release='/etc/os-release'):
    """Return ``VERSION_CODENAME`` of this machine's ``os-release``.

    :param os_release: the file.
    """
    try:
        with open(os_release) as handle:
            for line in handle:
                key, _sep, value = line.strip().partition('=')
                if key == 'VERSION_CODENAME':
                    return value.strip('"\'')
    except OSError:
        pass
    return None


def release_of(distro):
    """Return ``(Nova release, Debian version)`` a run of ``distro`` tests:
    the installed ``python3-nova``, else the one APT would install.

    :param distro: a key of :data:`DISTROS`.
    :raises PackagedError: on another distribution, or with no package.
    """
    facts = check_distro(distro)
    package = facts['nova_package']
    deb = installed_version(package) or candidate_version(package)
    if not deb:
        raise PackagedError(distro=distro, reason='APT has no %s (is the '
                            'distribution\'s main archive in the APT '
                            'sources?)' % package)
    return upstream_version(deb), deb


def describe(distro):
    """Return one line naming the packages a run of ``distro`` tests.

    :param distro: a key of :data:`DISTROS`.
    :returns: ``python3-nova 2:26.2.2-1~deb12u5 of Debian 12 (bookworm),
        system Python 3.11, uWSGI``.
    """
    facts = DISTROS[distro]
    _release, deb = release_of(distro)
    proc = subprocess.run([facts['python'], '-c', 'import sys; print('
                           '"%d.%d" % sys.version_info[:2])'],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return '%s %s of %s, system Python %s, uWSGI' % (
        facts['nova_package'], deb, facts['name'],
        proc.stdout.decode().strip() or '?')


def check_distro(distro):
    """Return the facts of ``distro`` if this machine runs it.

    :param distro: a key of :data:`DISTROS`.
    :raises PackagedError: for an unknown or another distribution.
    """
    if distro not in DISTROS:
        raise PackagedError(distro=distro, reason='unknown distribution '
                            '(known: %s)' % ', '.join(sorted(DISTROS)))
    here = machine_codename()
    if here != distro:
        raise PackagedError(distro=distro, reason='this machine runs %s, '
                            'not %s: the packaged services are installed '
                            'into the machine\'s own system' % (
                                here or 'an unknown system', distro))
    return DISTROS[distro]


def unanswered(templates, package):
    """Return the boolean debconf questions of a package's templates that
    :data:`SELECTIONS` does not answer "no" for ``package``: a question a
    new package version added, which might configure something.

    :param templates: the text of the package's ``templates`` file.
    :param package: the package name.
    """
    answered = set(line.split()[1] for line in SELECTIONS
                   if line.split()[0] == package)
    found = []
    for block in re.split(r'\n\s*\n', templates):
        fields = dict(re.findall(r'^([A-Za-z-]+):\s*(.*)$', block, re.M))
        name = fields.get('Template')
        if name and fields.get('Type') == 'boolean' and \
                name not in answered:
            found.append(name)
    return sorted(found)


def uwsgi_ini(packaged, wsgi_file, bind, name):
    """Return the uWSGI settings of one API service: the package's own,
    with one process, the harness's address, no log file, user or
    AppArmor profile (see :data:`DROPPED_UWSGI`), and every answer
    closing its connection (see :data:`CONNECTION_CLOSE`).

    :param packaged: the text of the package's ``*-uwsgi.ini``.
    :param wsgi_file: the package's WSGI script.
    :param bind: ``address:port``.
    :param name: the process name.
    :returns: the text of an ini file.
    """
    kept = []
    section = None
    # Line by line: uWSGI options may repeat (several add-header).
    for line in packaged.splitlines():
        line = line.strip()
        if not line or line.startswith(('#', ';')):
            continue
        if line.startswith('[') and line.endswith(']'):
            section = line[1:-1].strip()
            continue
        key, sep, value = line.partition('=')
        key, value = key.strip(), value.strip()
        if section != 'uwsgi' or not sep or key in DROPPED_UWSGI or \
                key in ('wsgi-file', 'name'):
            continue
        if key == 'add-header' and value == CONNECTION_CLOSE:
            continue
        if key == 'plugins':
            value = ','.join(p.strip() for p in value.split(',')
                             if p.strip() != 'apparmor')
        if (key, value) not in kept:
            kept.append((key, value))
    kept += [('name', name), ('processes', '1'),
             ('add-header', CONNECTION_CLOSE), ('http-socket', bind),
             ('wsgi-file', wsgi_file)]
    return '[uwsgi]\n' + ''.join('%s = %s\n' % kv for kv in kept)


def process_argvs():
    """Return ``[(pid, argv)]`` of the machine's processes."""
    out = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % name, 'rb') as handle:
                raw = handle.read()
        except OSError:
            continue
        if raw:
            out.append((int(name), [a.decode('utf-8', 'replace')
                                    for a in raw.rstrip(b'\0').split(
                                        b'\0')]))
    return out


def package_daemons(processes):
    """Return the processes that run with the packages' own
    configuration: what a maintainer script would have started. The
    harness's services read theirs from the run's directory (its
    ``etc/nova``...) and never name a file of ``/etc/<service>`` or
    ``/var/log/<service>``.

    :param processes: ``[(pid, argv)]``.
    """
    marks = tuple('%s/%s/' % (top, service)
                  for top in ('/etc', '/var/log')
                  for service in ('nova', 'keystone', 'glance', 'placement'))
    return [(pid, argv) for pid, argv in processes
            if any(arg.partition('=')[2 if '=' in arg else 0].startswith(
                marks) for arg in argv)]


def tree_leftovers(nova_dir, owned):
    """Return the files of ``nova_dir`` the package does not own, apart
    from byte-code: what an install left.

    :param nova_dir: the package's Nova directory.
    :param owned: the set of paths the package lists (``dpkg -L``).
    """
    found = []
    for top, dirs, files in os.walk(nova_dir):
        dirs[:] = [d for d in dirs if d != '__pycache__']
        for name in files:
            path = os.path.join(top, name)
            if path not in owned and not name.endswith('.pyc'):
                found.append(path)
        for name in dirs:
            path = os.path.join(top, name)
            if path not in owned:
                found.append(path + '/')
    return sorted(found)


class PackagedControlPlane(controlplane.ControlPlane):
    """The control plane on a distribution's packages.

    :param workdir: the run's directory (data, configuration, logs).
    :param version: the Nova release the package holds (default: the
        installed or candidate package's, see :func:`release_of`).
    :param address: the address every service listens on.
    :param ledger: the run's :class:`~nova_sio.e2e.cleanup.Ledger`.
    :param progress: a callable taking one progress line.
    :param password: the one password of every account.
    :param ports: ``{name: port}`` overriding the default ports.
    :param neutron: ``'stub'`` only (see the module docstring).
    :param distro: a key of :data:`DISTROS`.
    """

    def __init__(self, workdir, version=None, address='127.0.0.1',
                 ledger=None, progress=print, password=None, ports=None,
                 neutron='stub', distro='bookworm'):
        if neutron != 'stub':
            raise PackagedError(distro=distro, reason='the packaged control '
                                'plane serves Neutron with the stand-in '
                                '(--neutron stub)')
        self.distro = distro
        self.facts = check_distro(distro)
        self.deb_version = None
        if version is None:
            version, self.deb_version = release_of(distro)
        super(PackagedControlPlane, self).__init__(
            workdir, version, address, ledger, progress, password, ports,
            neutron)
        self.venv = None
        self.nova_dir = self.facts['nova_dir']
        #: Lines ``nova-sio install`` and ``revert`` printed (the
        #: operator's view), for the report.
        self.operator_lines = []
        self._patched = False

    # -- paths of the packaged executables -------------------------------

    def bin(self, name):
        """Return the path of the packaged executable ``name``.

        :param name: a command (``nova-compute``, ``keystone-manage``).
        """
        return os.path.join('/usr/bin', name)

    @property
    def python(self):
        return self.facts['python']

    @property
    def sdk_python(self):
        """The harness's interpreter: it carries openstacksdk."""
        return sys.executable

    def paste_file(self, service, name):
        """Return the package's paste file (a conffile in ``/etc``).

        :param service: ``nova`` or ``glance``.
        :param name: the file name.
        """
        return os.path.join('/etc', service, name)

    # -- install ---------------------------------------------------------

    def install(self):
        """Install the packages and patch the packaged Nova; idempotent.

        :returns: ``/usr`` (where the packaged executables live).
        :raises PackagedError: when the installed release is not the one
            this control plane was made for.
        """
        installed = self.install_debs(PACKAGES, SELECTIONS)
        if installed:
            started = package_daemons(process_argvs())
            if started:
                raise PackagedError(distro=self.distro, reason='the '
                                    'packages\' maintainer scripts started '
                                    'daemons with the packages\' '
                                    'configuration: %s' % '; '.join(
                                        '%d %s' % (pid, ' '.join(argv))
                                        for pid, argv in started))
        deb = installed_version(self.facts['nova_package'])
        if deb is None:
            raise PackagedError(distro=self.distro, reason='%s is not '
                                'installed after apt-get' %
                                self.facts['nova_package'])
        if upstream_version(deb) != self.version:
            raise PackagedError(distro=self.distro, reason='%s %s is '
                                'installed, not Nova %s' % (
                                    self.facts['nova_package'], deb,
                                    self.version))
        self.deb_version = deb
        self._say('%s %s (Nova %s) from %s' % (
            self.facts['nova_package'], deb, self.version,
            self.facts['name']))
        missing = [path for path, _ini in WSGI_SCRIPTS.values()
                   if not os.path.exists(path)] + [
            p for p in (UWSGI,) if not os.path.exists(p)]
        if missing:
            raise PackagedError(distro=self.distro, reason='the packages '
                                'lack %s' % ', '.join(missing))
        self.venv = '/usr'
        self.patch_nova()
        return self.venv

    def _nova_sio(self, args, name):
        """Run ``nova-sio ARGS`` as an operator would (the system Python
        first on ``PATH``); log and keep its lines.

        :param args: its arguments.
        :param name: the set-up log name.
        :returns: the CompletedProcess.
        """
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin',
               'PYTHONPATH': os.path.join(paths.project_root(), 'tools')}
        proc = util.run([sys.executable, '-m', 'nova_sio.cli'] + args,
                        isolated=False, env=env, check=False, timeout=900)
        # Its progress lines (stderr) come before its summary (stdout).
        out = (proc.stderr + proc.stdout).decode('utf-8', 'replace')
        path = os.path.join(self._dir('logs'), '%s.log' % name)
        with open(path, 'a') as handle:
            handle.write('$ nova-sio %s\n%s' % (' '.join(args), out))
        self.setup_logs[name] = path
        lines = [ln for ln in out.splitlines() if ln.strip()]
        self.operator_lines.append(('nova-sio %s' % ' '.join(args), lines,
                                    proc.returncode))
        for line in lines:
            self.progress('e2e:   | %s' % line)
        return proc

    def modified_files(self):
        """Return what ``dpkg --verify`` reports of the Nova package
        (nothing when it is not installed).
        """
        if installed_version(self.facts['nova_package']) is None:
            return []
        proc = subprocess.run(['dpkg', '--verify',
                               self.facts['nova_package']],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return [ln for ln in (proc.stdout + proc.stderr).decode(
            'utf-8', 'replace').splitlines() if ln.strip()]

    def leftovers(self):
        """Return the files in the Nova tree or in ``/etc`` that nova-sio
        left: files the package does not own, and its hook files.
        """
        found = [p for p in HOOK_FILES if os.path.exists(p)]
        if installed_version(self.facts['nova_package']) is None:
            # A failed installation: no tree, nothing patched in it.
            return found
        proc = util.run(['dpkg', '-L', self.facts['nova_package']],
                        isolated=False)
        owned = set(proc.stdout.decode().splitlines())
        return tree_leftovers(self.nova_dir, owned) + found

    def patch_nova(self):
        """Install nova-sio into the packaged Nova, the operator's way.

        A tree some earlier run left patched (a killed run) is reverted
        first, so that every run installs from the pristine package.

        :returns: ``'installed'``.
        :raises PackagedError: when the install fails or the tree cannot
            be made pristine first.
        """
        if self.modified_files() or self.leftovers():
            self._say('the packaged Nova is not pristine (an earlier run '
                      'was killed?): nova-sio revert first')
            self.restore()
        self._say('nova-sio install --nova-dir %s' % self.nova_dir)
        proc = self._nova_sio(['install', '--nova-dir', self.nova_dir],
                              'nova-sio-install')
        self._patched = True
        if proc.returncode:
            raise PackagedError(distro=self.distro, reason='nova-sio '
                                'install exited %d (log: %s)' % (
                                    proc.returncode,
                                    self.setup_logs['nova-sio-install']))
        return 'installed'

    def restore(self):
        """Revert nova-sio from the packaged Nova and prove the package
        byte-exact; safe to call when nothing was installed.

        :returns: ``dpkg --verify``'s (empty) report.
        :raises PackagedError: when the tree is not the package's after
            the revert.
        """
        if self._patched or self.modified_files() or self.leftovers():
            self._say('nova-sio revert --nova-dir %s' % self.nova_dir)
            proc = self._nova_sio(['revert', '--nova-dir', self.nova_dir],
                                  'nova-sio-revert')
            self._patched = False
            if proc.returncode:
                raise PackagedError(distro=self.distro, reason='nova-sio '
                                    'revert exited %d (log: %s)' % (
                                        proc.returncode,
                                        self.setup_logs['nova-sio-revert']))
        changed = self.modified_files()
        left = self.leftovers()
        if changed or left:
            raise PackagedError(distro=self.distro, reason='the packaged '
                                'Nova is not pristine: dpkg --verify %s: %s;'
                                ' files left: %s (reinstall it: apt-get '
                                'install --reinstall %s)' % (
                                    self.facts['nova_package'],
                                    '; '.join(changed) or 'clean',
                                    ' '.join(left) or 'none',
                                    self.facts['nova_package']))
        self._say('dpkg --verify %s: clean; no file of nova-sio left' %
                  self.facts['nova_package'])
        return changed

    # -- services ----------------------------------------------------------

    def _gunicorn(self, name, port, env):
        """Serve the package's WSGI script of ``name`` with Debian's uWSGI
        and the package's uWSGI settings, one process (the packaged
        counterpart of the venv control plane's gunicorn).
        """
        script, packaged_ini = WSGI_SCRIPTS[name]
        rundir = self._dir('uwsgi', name)
        with open(packaged_ini) as handle:
            text = uwsgi_ini(handle.read(), script, '%s:%d' % (
                self.address, port), 'nsio-%s' % name)
        ini = os.path.join(rundir, 'uwsgi.ini')
        with open(ini, 'w') as handle:
            handle.write(text)
        self.supervisor.start(name, self.uwsgi_argv(ini), env=env,
                              cwd=rundir)

    @staticmethod
    def uwsgi_argv(ini):
        """Return the argument list of uWSGI with settings file ``ini``.

        :param ini: a file :func:`uwsgi_ini` wrote.
        """
        return [UWSGI, '--ini', ini]

    def packaged_argv(self):
        """Return ``{service: argv head}`` of every OpenStack service this
        control plane runs (for the report and the tests).
        """
        out = {name: self.uwsgi_argv('<%s uwsgi.ini>' % name) + [script]
               for name, (script, _ini) in WSGI_SCRIPTS.items()}
        for binary in ('nova-conductor', 'nova-scheduler', 'nova-compute'):
            out[binary] = [self.bin(binary)]
        return out
