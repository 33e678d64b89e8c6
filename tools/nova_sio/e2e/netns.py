# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The network of the two-host cloud: namespaces, a bridge, veth pairs.

:class:`CloudNetwork` makes a control namespace ``nsio-<run>-ctl``
holding a bridge ``nsiobr0`` with ``10.251.0.1/24``, and one namespace
per compute host (``nsio-<run>-<host>``) whose ``eth0`` is one end of a
veth pair whose other end is a port of that bridge. Every address lives
inside these namespaces: nothing is added to the machine's own network.

Each namespace and link is written to the
:class:`~nova_sio.e2e.cleanup.Ledger` before it is made; releasing a
namespace first ends the processes still inside it (QEMU that libvirtd
left, a daemon of a crashed run), so that ``python -m nova_sio.e2e
sweep`` removes what a dead run left. The veth pairs are made directly
inside the namespaces, so the machine's own namespace never holds one,
not even for a moment.

:meth:`CloudNetwork.enter_ctl` moves the calling thread (the whole
process when it has no other thread yet) into the control namespace
with ``setns(2)`` through ctypes (``os.setns`` needs Python 3.12).
"""

import ctypes
import ctypes.util
import ipaddress
import os
import re
import subprocess

from nova_sio.e2e import cleanup
from nova_sio import errors

#: Namespace name prefix; a run's namespaces are ``nsio-<run>-<role>``.
PREFIX = 'nsio-'
SUBNET = ipaddress.ip_network('10.251.0.0/24')
CTL_ADDRESS = '10.251.0.1'
BRIDGE = 'nsiobr0'
NETNS_DIR = '/run/netns'
CLONE_NEWNET = 0x40000000
_RUN_RE = re.compile(r'^[a-z0-9]{1,8}$')


class NetworkError(errors.NovaSioError):
    msg_fmt = 'Cloud network: %(action)s failed: %(reason)s'


def ip(action, *args, **kwargs):
    """Run ``ip ARGS``; return its output.

    :param action: what it does, for the error message.
    :param args: arguments of ``ip``.
    :param kwargs: ``netns``: run as ``ip -n NETNS``.
    :raises NetworkError: on a non-zero exit status.
    """
    argv = ['ip']
    if kwargs.get('netns'):
        argv += ['-n', kwargs['netns']]
    argv += list(args)
    proc = subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    out = proc.stdout.decode(errors='replace').strip()
    if proc.returncode:
        raise NetworkError(action=action, reason='%s: %s' % (
            ' '.join(argv), out))
    return out


def namespaces():
    """Return the names of the named network namespaces."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def setns(path, nstype=CLONE_NEWNET):
    """Move the calling thread into the namespace at ``path``.

    :param path: a namespace file, e.g. ``/run/netns/NAME`` or
        ``/proc/PID/ns/net``.
    :param nstype: the ``CLONE_NEW*`` flag of its type.
    :raises NetworkError: when ``setns(2)`` fails.
    """
    libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, nstype) != 0:
            err = ctypes.get_errno()
            raise NetworkError(action='setns %s' % path,
                               reason=os.strerror(err))
    finally:
        os.close(fd)


class CloudNetwork(object):
    """The namespaces and links of one run.

    :param ledger: the :class:`~nova_sio.e2e.cleanup.Ledger` recording
        them.
    :param run_id: short run id (1-8 lower-case letters or digits), part
        of every namespace name.
    :param ctl_address: the bridge address in the control namespace.
    """

    def __init__(self, ledger, run_id, ctl_address=CTL_ADDRESS):
        if not _RUN_RE.match(run_id or ''):
            raise NetworkError(action='naming the namespaces',
                               reason='run id %r is not 1-8 lower-case '
                                      'letters or digits' % run_id)
        self.ledger = ledger
        self.run_id = run_id
        self.ctl_address = ctl_address
        self.ctl = '%s%s-ctl' % (PREFIX, run_id)
        self.hosts = {}             # name -> (netns, address)
        self._records = []
        self._saved_netns = None

    def netns_name(self, role):
        """Return the namespace name of ``role`` (``ctl``, ``h1``...).

        :param role: ``ctl`` or a host name.
        """
        return '%s%s-%s' % (PREFIX, self.run_id, role)

    def netns_path(self, role):
        """Return the namespace file of ``role``.

        :param role: ``ctl`` or a host name.
        """
        return os.path.join(NETNS_DIR, self.netns_name(role))

    def _add_netns(self, name):
        record = self.ledger.hold('netns', name=name)
        self._records.append(record)
        ip('making namespace %s' % name, 'netns', 'add', name)
        ip('loopback up in %s' % name, 'link', 'set', 'lo', 'up',
           netns=name)
        return record

    def create(self):
        """Make the control namespace with its bridge; return self."""
        try:
            self._add_netns(self.ctl)
            ip('making the bridge', 'link', 'add', BRIDGE, 'type', 'bridge',
               netns=self.ctl)
            ip('addressing the bridge', 'addr', 'add',
               '%s/%d' % (self.ctl_address, SUBNET.prefixlen), 'dev',
               BRIDGE, netns=self.ctl)
            ip('bridge up', 'link', 'set', BRIDGE, 'up', netns=self.ctl)
        except BaseException:
            self.destroy()
            raise
        return self

    def add_host(self, name, address):
        """Make the namespace of host ``name`` wired to the bridge.

        :param name: host name (letters and digits, e.g. ``h1``).
        :param address: its IP address in the subnet.
        :returns: the namespace name.
        """
        if ipaddress.ip_address(address) not in SUBNET:
            raise NetworkError(action='adding host %s' % name,
                               reason='%s is not in %s' % (address, SUBNET))
        netns = self.netns_name(name)
        port = 'v%s' % name          # the bridge end, inside ctl
        self._add_netns(netns)
        record = self.ledger.hold('link', netns=self.ctl, name=port)
        self._records.append(record)
        ip('making the veth pair of %s' % name, 'link', 'add', port,
           'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns,
           netns=self.ctl)
        ip('joining %s to the bridge' % port, 'link', 'set', port,
           'master', BRIDGE, netns=self.ctl)
        ip('bridge port up', 'link', 'set', port, 'up', netns=self.ctl)
        ip('addressing %s' % name, 'addr', 'add', '%s/%d' % (
            address, SUBNET.prefixlen), 'dev', 'eth0', netns=netns)
        ip('eth0 up in %s' % netns, 'link', 'set', 'eth0', 'up',
           netns=netns)
        ip('default route of %s' % name, 'route', 'add', 'default', 'via',
           self.ctl_address, netns=netns)
        self.hosts[name] = (netns, address)
        return netns

    def enter_ctl(self):
        """Move the calling thread into the control namespace.

        Call it before the process starts any thread: threads started
        later, and every child process, inherit the namespace.
        :meth:`leave_ctl` returns to the namespace it was called from.
        """
        if self._saved_netns is None:
            self._saved_netns = os.open('/proc/self/ns/net',
                                        os.O_RDONLY | os.O_CLOEXEC)
        setns(self.netns_path('ctl'))

    def leave_ctl(self):
        """Return to the namespace :meth:`enter_ctl` was called from."""
        if self._saved_netns is None:
            return
        libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
        try:
            if libc.setns(self._saved_netns, CLONE_NEWNET) != 0:
                raise NetworkError(action='returning to the first network '
                                   'namespace',
                                   reason=os.strerror(ctypes.get_errno()))
        finally:
            os.close(self._saved_netns)
            self._saved_netns = None

    def destroy(self):
        """End the processes left inside, remove links and namespaces."""
        self.leave_ctl()
        problems = []
        while self._records:
            record = self._records.pop()
            try:
                self.ledger.release(record)
            except cleanup.CleanupError as exc:
                problems.append(exc.message)
        self.hosts.clear()
        if problems:
            raise NetworkError(action='removing the namespaces',
                               reason='; '.join(problems))
