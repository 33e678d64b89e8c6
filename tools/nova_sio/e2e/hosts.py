# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""A compute host of the two-host cloud: its namespaces and libvirt.

A :class:`ComputeHost` lives in the network namespace that
:meth:`~nova_sio.e2e.netns.CloudNetwork.add_host` made for it, plus a
mount and a UTS namespace of its own, kept by a *holder* process
(``unshare -m -u``) that:

* sets the host name (``h1``, ``h2``);
* bind-mounts per-host directories over ``/run/libvirt``,
  ``/var/lib/libvirt`` (seeded from the machine's with ``cp -a``),
  ``/etc/libvirt/qemu``, ``/var/log/libvirt`` and ``/var/cache/libvirt``,
  and a per-host ``qemu.conf`` over ``/etc/libvirt/qemu.conf``, so that
  two libvirt daemons on one machine share no socket, no domain
  definition, no state and no log;
* binds a per-host ``/etc/hosts`` (the cloud's names) and a
  ``/etc/resolv.conf`` without a name server;
* then sleeps: the namespaces stay while it lives.

:meth:`ComputeHost.attach_sdc` binds the host's by-id directory of the
gateway emulator (``<state>/hosts/<name>/dev/disk/by-id``) over
:data:`DEVICE_ROOT` inside the host's mount namespace: every host sees
its own SDC devices under the same path, as real SDC hosts do under
``/dev/disk/by-id``. This matters for live migration: Nova keeps the
source's disk paths in the domain XML it sends to the destination, so
the path must name the destination's own device there. (Nothing is
mounted over the real ``/dev/disk/by-id``: ``/dev`` here is the
kernel's devtmpfs, shared with the machine.)

``virtlogd`` and ``libvirtd --listen -f <its libvirtd.conf>`` run inside
the holder's namespaces (``nsenter -t HOLDER -n -m -u``), in the
foreground, each recorded in the ledger with the holder. Their
``libvirtd.conf`` listens on TCP on the host's own address without
authentication (``auth_tcp = "none"``, no TLS) and gives each host its
own ``host_uuid``: libvirt refuses a migration between two daemons with
the same one ("same host"). The UNIX socket is for root only.

QEMU runs as root (``user``/``group`` in the per-host ``qemu.conf``),
so the machine's ``/dev/kvm`` (``root:root 0600``) and the files of the
harness need no change of owner or mode; guests use TCG
(``<domain type='qemu'>``) anyway: nested KVM here does not boot a
Linux kernel. ``security_driver = "none"``: the container has no
AppArmor or SELinux to confine QEMU, and the DAC driver's relabelling
would chown the shared loop devices on each host in turn as a guest
starts or migrates; with QEMU running as root it protects nothing.

:func:`start_all` starts several hosts concurrently: libvirtd's first
answer after a start costs about 8 s (capability probing).
"""

import os
import shutil
import subprocess
import threading
import time
import uuid

from nova_sio.e2e import cleanup
from nova_sio.e2e import services
from nova_sio import errors

#: Machine directory -> name of the per-host directory bound over it.
BIND_DIRS = (
    ('/run/libvirt', 'run'),
    ('/var/lib/libvirt', 'lib'),
    ('/etc/libvirt/qemu', 'etc-qemu'),
    ('/var/log/libvirt', 'log'),
    ('/var/cache/libvirt', 'cache'),
)
#: Seeded with a copy of the machine's directory.
SEEDED = ('/var/lib/libvirt',)
QEMU_CONF = '/etc/libvirt/qemu.conf'
#: Where each host sees its own SDC's ``emc-vol-*`` links: inside the
#: host's own ``/run/libvirt``, so the mount point is made in the
#: host's tree and nothing is left on the machine.
DEVICE_ROOT = '/run/libvirt/nova-sio-sdc/disk/by-id'
READY = 'nsio-holder-ready'

_HOLDER = '''set -e
hostname "$1"
mount --make-rprivate /
shift
while [ $# -ge 2 ]; do
    [ -e "$2" ] || mkdir -p "$2"
    mount --bind "$1" "$2"
    shift 2
done
echo %s
exec sleep infinity
''' % READY

_LIBVIRTD_CONF = '''# libvirtd of compute host %(name)s (nova-sio e2e harness)
listen_tls = 0
listen_tcp = 1
listen_addr = "%(address)s"
auth_tcp = "none"
auth_unix_rw = "none"
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
host_uuid = "%(host_uuid)s"
log_outputs = "3:file:%(log)s"
'''

_QEMU_CONF = '''# qemu.conf of compute host %(name)s (nova-sio e2e harness)
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
'''


class HostError(errors.NovaSioError):
    msg_fmt = 'Compute host %(name)s: %(reason)s'


class ComputeHost(object):
    """One compute host: namespaces, virtlogd and libvirtd.

    :param name: host name, also its UTS host name (``h1``).
    :param address: its IP address (``10.251.0.11``).
    :param workdir: directory for its private trees, configuration and
        logs (made when missing).
    :param ledger: the :class:`~nova_sio.e2e.cleanup.Ledger`.
    :param network: the :class:`~nova_sio.e2e.netns.CloudNetwork`; the
        host's network namespace is made unless it was already added.
    """

    def __init__(self, name, address, workdir, ledger, network):
        self.name = name
        self.address = address
        self.workdir = os.path.abspath(workdir)
        self.ledger = ledger
        self.network = network
        self.logs = os.path.join(self.workdir, 'logs')
        self.root = os.path.join(self.workdir, 'root')
        self.host_uuid = str(uuid.uuid4())
        self.holder = None
        self.device_root = None
        self._procs = []            # (Popen, record), oldest first
        self.timings = {}

    @property
    def libvirt_uri(self):
        """The URI other hosts (and Nova) reach this libvirtd with."""
        return 'qemu+tcp://%s/system' % self.address

    @property
    def netns(self):
        """The name of the host's network namespace."""
        return self.network.netns_name(self.name)

    # -- life cycle -----------------------------------------------------------

    def _write(self, path, text):
        with open(path, 'w') as handle:
            handle.write(text)

    def _prepare(self):
        os.makedirs(self.logs, exist_ok=True)
        os.makedirs(self.root, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        binds = []
        for target, sub in BIND_DIRS:
            source = os.path.join(self.root, sub)
            if os.path.isdir(source):
                shutil.rmtree(source)
            if target in SEEDED and os.path.isdir(target):
                subprocess.run(['cp', '-a', target, source], check=True)
            else:
                os.makedirs(source)
            binds += [source, target]
        self.libvirtd_conf = os.path.join(self.workdir, 'libvirtd.conf')
        self._write(self.libvirtd_conf, _LIBVIRTD_CONF % {
            'name': self.name, 'address': self.address,
            'host_uuid': self.host_uuid,
            'log': os.path.join(self.logs, 'libvirtd-debug.log')})
        qemu_conf = os.path.join(self.workdir, 'qemu.conf')
        self._write(qemu_conf, _QEMU_CONF % {'name': self.name})
        binds += [qemu_conf, QEMU_CONF]
        # Names resolve from files only: the machine's DNS server is out
        # of reach from the namespaces, and libvirt looks its own host
        # name up during a migration (each lookup would wait for the
        # resolver's timeouts).
        hosts_file = os.path.join(self.workdir, 'hosts')
        names = dict((n, a) for n, (_ns, a) in self.network.hosts.items())
        names.update({self.name: self.address,
                      'ctl': self.network.ctl_address})
        self._write(hosts_file, '127.0.0.1 localhost\n' + ''.join(
            '%s %s\n' % (a, n) for n, a in sorted(names.items())))
        resolv = os.path.join(self.workdir, 'resolv.conf')
        self._write(resolv, '# no name server inside the cloud\n'
                    'options timeout:1 attempts:1\n')
        binds += [hosts_file, '/etc/hosts', resolv, '/etc/resolv.conf']
        return binds

    def _hold(self, proc):
        record = self.ledger.hold('process', pid=proc.pid)
        self._procs.append((proc, record))
        return record

    def launch(self):
        """Start the holder, virtlogd and libvirtd; do not wait."""
        if self.name not in self.network.hosts:
            self.network.add_host(self.name, self.address)
        binds = self._prepare()
        argv = ['nsenter', '--net=%s' % self.network.netns_path(self.name),
                'unshare', '--mount', '--uts', '--propagation', 'private',
                'sh', '-c', _HOLDER, 'holder', self.name] + binds
        with open(os.path.join(self.logs, 'holder.log'), 'ab') as log:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                    stderr=log, stdin=subprocess.DEVNULL)
        self._hold(proc)
        self.holder = proc
        line = proc.stdout.readline().decode(errors='replace').strip()
        proc.stdout.close()
        if line != READY:
            self.stop()
            raise HostError(name=self.name, reason='the namespace holder '
                            'failed: %s' % services.tail(os.path.join(
                                self.logs, 'holder.log')))
        self._began = time.monotonic()
        run = os.path.join(self.workdir, 'pids')
        os.makedirs(run, exist_ok=True)
        self._daemon(['virtlogd', '-p', os.path.join(run, 'virtlogd.pid')],
                     'virtlogd')
        self._daemon(['libvirtd', '--listen', '-f', self.libvirtd_conf,
                      '-p', os.path.join(run, 'libvirtd.pid')], 'libvirtd')

    def attach_sdc(self, gateway):
        """Show the host's emulated SDC devices under :data:`DEVICE_ROOT`.

        :param gateway: the started :class:`~nova_sio.e2e.gateway.Gateway`
            (its host tree for this host is bound there, in this host's
            mount namespace only).
        """
        source = gateway.info['hosts'][self.name]['device_root']
        proc = subprocess.run(
            ['nsenter', '-t', str(self.holder.pid), '-m', '--', 'sh', '-c',
             'mkdir -p "$2" && mount --bind "$1" "$2"', 'attach', source,
             DEVICE_ROOT], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, universal_newlines=True)
        if proc.returncode:
            raise HostError(name=self.name, reason='binding the SDC '
                            'devices: %s' % proc.stdout.strip())
        self.device_root = DEVICE_ROOT
        gateway.attached.add(self.name)

    def _daemon(self, argv, service):
        proc = self.popen(argv, os.path.join(self.logs, service + '.log'))
        self._hold(proc)
        return proc

    def wait_ready(self, timeout=180):
        """Wait until libvirtd answers on its socket and on TCP.

        :param timeout: seconds.
        :raises HostError: when it does not answer in time or exited.
        """
        deadline = time.monotonic() + timeout
        while True:
            for proc, _record in self._procs:
                if proc.poll() is not None:
                    raise HostError(name=self.name, reason='%s exited with '
                                    '%s: %s' % (proc.args[-1] if proc is
                                                self.holder else
                                                proc.args[0],
                                                proc.returncode,
                                                self._daemon_logs()))
            probe = self.run(['virsh', '-c', self.libvirt_uri, 'version'],
                             timeout=max(5, deadline - time.monotonic()))
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise HostError(name=self.name, reason='libvirtd did not '
                                'answer in %ds: %s %s' % (
                                    timeout, probe.stdout,
                                    self._daemon_logs()))
            time.sleep(0.5)
        self.timings['libvirtd_ready'] = time.monotonic() - self._began

    def _daemon_logs(self):
        return ' | '.join('%s: %s' % (s, services.tail(os.path.join(
            self.logs, s + '.log'), 600)) for s in ('virtlogd', 'libvirtd'))

    def start(self, timeout=180):
        """Start the host and wait until libvirtd answers; return self.

        :param timeout: seconds to wait for libvirtd.
        """
        try:
            self.launch()
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Destroy its guests, end its daemons, the holder and whatever
        else still runs in the host's network namespace.

        The per-host mounts live in the host's own mount namespace: they
        go with its last process.
        """
        if self.holder is not None and self.holder.poll() is None and any(
                p.poll() is None for p, _r in self._procs[1:]):
            try:
                for name, state in self.domains().items():
                    if state not in ('shut off',):
                        self.run(['virsh', '-c', 'qemu:///system',
                                  'destroy', name], timeout=30)
            except (HostError, subprocess.TimeoutExpired):
                pass
        problems = []
        while self._procs:
            proc, record = self._procs.pop()
            try:
                self.ledger.release(record)
            except cleanup.CleanupError as exc:
                problems.append(exc.message)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                problems.append('%s did not exit' % proc.args[0])
        # What is left inside (a QEMU libvirt did not end, a process
        # started with popen) would keep the host's mounts alive.
        if self.netns in self.network.hosts.get(self.name, ('',))[:1]:
            cleanup.end_processes_in([self.netns])
        self.holder = None
        self.device_root = None
        if problems:
            raise HostError(name=self.name, reason='; '.join(problems))

    # -- running things inside -----------------------------------------------

    def nsenter_argv(self):
        """Return the ``nsenter`` prefix entering the host's namespaces."""
        if self.holder is None:
            raise HostError(name=self.name, reason='not started')
        return ['nsenter', '-t', str(self.holder.pid), '-n', '-m', '-u',
                '--']

    def popen(self, argv, log_path, env=None):
        """Start ``argv`` inside the host's namespaces.

        :param argv: the command.
        :param log_path: file receiving its stdout and stderr (appended).
        :param env: its environment (default: this process's).
        :returns: the ``subprocess.Popen``; its pid is the command's own
            (``nsenter`` executes it without forking).
        """
        with open(log_path, 'ab') as log:
            return subprocess.Popen(self.nsenter_argv() + list(argv),
                                    stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True)

    def run(self, argv, **kwargs):
        """Run ``argv`` inside the host's namespaces; wait for it.

        :param argv: the command.
        :param kwargs: passed to ``subprocess.run``; by default stdout
            and stderr are captured together as text.
        :returns: the ``subprocess.CompletedProcess``.
        """
        kwargs.setdefault('stdout', subprocess.PIPE)
        if kwargs['stdout'] is subprocess.PIPE:
            kwargs.setdefault('stderr', subprocess.STDOUT)
        kwargs.setdefault('universal_newlines', True)
        kwargs.setdefault('stdin', subprocess.DEVNULL)
        return subprocess.run(self.nsenter_argv() + list(argv), **kwargs)

    def virsh(self, *args, **kwargs):
        """Run ``virsh -c qemu:///system ARGS`` on this host.

        :param args: virsh arguments.
        :param kwargs: ``timeout`` (seconds, default 120).
        :returns: its stdout.
        :raises HostError: on a non-zero exit status.
        """
        proc = self.run(['virsh', '-c', 'qemu:///system'] + list(args),
                        timeout=kwargs.get('timeout', 120))
        if proc.returncode:
            raise HostError(name=self.name, reason='virsh %s: %s' % (
                ' '.join(args), proc.stdout.strip()))
        return proc.stdout

    def domains(self):
        """Return ``{name: state}`` of every domain, inactive ones too."""
        result = {}
        lines = self.virsh('list', '--all').splitlines()
        for line in lines[2:]:
            fields = line.split(None, 2)
            if len(fields) == 3:
                result[fields[1]] = fields[2].strip()
        return result

    def pids(self):
        """Return the pids in the host's network namespace.

        Its daemons, QEMU, and what :meth:`popen` started.
        """
        return cleanup.netns_pids(self.netns)


def start_all(hosts, timeout=180):
    """Start ``hosts`` concurrently; wait until every libvirtd answers.

    :param hosts: :class:`ComputeHost` objects.
    :param timeout: seconds to wait for each libvirtd.
    :raises HostError: the first failure (every host is stopped then).
    """
    try:
        for host in hosts:      # every name is in each host's /etc/hosts
            if host.name not in host.network.hosts:
                host.network.add_host(host.name, host.address)
        for host in hosts:
            host.launch()
    except BaseException:
        for host in hosts:
            host.stop()
        raise
    failures = []

    def wait(host):
        try:
            host.wait_ready(timeout)
        except HostError as exc:
            failures.append(exc)
    threads = [threading.Thread(target=wait, args=(h,)) for h in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        for host in hosts:
            host.stop()
        raise failures[0]
