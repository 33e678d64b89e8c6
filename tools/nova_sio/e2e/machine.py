# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Can this machine run the end-to-end harness? What is missing?

:func:`check` returns one :class:`Missing` per unmet need, each naming
what is missing and what to do about it; an empty list means the machine
can run the harness. ``python -m nova_sio.e2e check`` prints them and
exits with status 2 when something is missing.
"""

import glob
import os
import shutil
import struct
import subprocess

from nova_sio import errors

#: Commands the harness runs -> the Debian package that provides them.
TOOLS = (
    ('losetup', 'mount'),
    ('mount', 'mount'),
    ('umount', 'mount'),
    ('mkfs.xfs', 'xfsprogs'),
    ('unshare', 'util-linux'),
    ('nsenter', 'util-linux'),
    ('ip', 'iproute2'),
    ('iptables', 'iptables'),
    ('truncate', 'coreutils'),
    ('cpio', 'cpio'),
    ('dpkg-deb', 'dpkg'),
    ('qemu-system-x86_64', 'qemu-system-x86'),
    ('qemu-img', 'qemu-utils'),
    ('libvirtd', 'libvirt-daemon-system'),
    ('virtlogd', 'libvirt-daemon-system'),
    ('virsh', 'libvirt-clients'),
)

SETUP_HINT = 'run tools/e2e-setup.sh as root'


class MachineUnfit(errors.NovaSioError):
    msg_fmt = ('This machine cannot run the end-to-end harness; missing:\n'
               '%(missing)s')
    exit_code = 2


class Missing(object):
    """One unmet need.

    :param what: what is missing, e.g. ``root``, ``qemu-system-x86_64``.
    :param fix: what to do about it.
    """

    def __init__(self, what, fix):
        self.what = what
        self.fix = fix

    def __str__(self):
        return '%s: %s' % (self.what, self.fix)

    def __repr__(self):
        return 'Missing(%r, %r)' % (self.what, self.fix)


def is_static_elf(path):
    """Tell whether ``path`` is an ELF executable without an interpreter.

    :param path: file to inspect.
    """
    try:
        with open(path, 'rb') as handle:
            head = handle.read(64)
            if head[:4] != b'\x7fELF' or head[4] != 2:
                return False
            endian = '<' if head[5] == 1 else '>'
            phoff, = struct.unpack(endian + 'Q', head[32:40])
            phentsize, phnum = struct.unpack(endian + 'HH', head[54:58])
            for index in range(phnum):
                handle.seek(phoff + index * phentsize)
                p_type, = struct.unpack(endian + 'I', handle.read(4))
                if p_type == 3:      # PT_INTERP: dynamically linked
                    return False
            return True
    except (OSError, struct.error, IndexError):
        return False


def find_busybox(path=None):
    """Return a statically linked busybox, or None.

    :param path: ``PATH`` to search (default: the environment's).
    """
    for cand in ('/bin/busybox', '/usr/bin/busybox',
                 shutil.which('busybox', path=path)):
        if cand and os.path.exists(cand) and is_static_elf(cand):
            return cand
    return None


def _netns_works():
    if shutil.which('unshare') is None:
        return 'unshare is not installed'
    proc = subprocess.run(['unshare', '--net', 'true'],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode:
        return proc.stdout.decode(errors='replace').strip() or (
            'exit status %d' % proc.returncode)
    return None


def _ip_netns_works():
    """Make and remove a named network namespace; return why not."""
    if shutil.which('ip') is None:
        return 'ip is not installed'
    name = 'nsio-check%d' % os.getpid()
    proc = subprocess.run(['ip', 'netns', 'add', name],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode:
        return proc.stdout.decode(errors='replace').strip() or (
            'exit status %d' % proc.returncode)
    proc = subprocess.run(['ip', 'netns', 'delete', name],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode:
        return 'cannot remove %s: %s' % (
            name, proc.stdout.decode(errors='replace').strip())
    return None


def _private_mounts_work():
    """Bind-mount inside a new mount + UTS namespace; return why not."""
    proc = subprocess.run(
        ['unshare', '--mount', '--uts', '--propagation', 'private', 'sh',
         '-c', 'hostname nsio-check && mount --bind /proc /proc && '
         'umount /proc'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode:
        return proc.stdout.decode(errors='replace').strip() or (
            'exit status %d' % proc.returncode)
    return None


def check(path=None, need_guest_kernel=True):
    """Return the list of :class:`Missing` needs (empty: all is there).

    :param path: ``PATH`` to search for commands (default: the
        environment's).
    :param need_guest_kernel: also require a kernel for the guest.
    """
    missing = []
    if os.geteuid() != 0:
        missing.append(Missing(
            'root', 'the harness attaches loop devices, mounts file '
            'systems and makes network namespaces: run it as root'))
    if not os.path.exists('/dev/loop-control'):
        missing.append(Missing(
            'loop devices', '/dev/loop-control is missing: load the loop '
            'module (modprobe loop) or give the container the loop '
            'devices'))
    packages = []
    for tool, package in TOOLS:
        if shutil.which(tool, path=path) is None:
            missing.append(Missing(tool, 'not installed (Debian package '
                                   '%s)' % package))
            packages.append(package)
    if find_busybox(path) is None:
        missing.append(Missing('busybox (static)', 'no statically linked '
                               'busybox for the guest initramfs (Debian '
                               'package busybox-static)'))
        packages.append('busybox-static')
    if os.geteuid() == 0 and shutil.which('unshare', path=path):
        reason = _netns_works()
        if reason:
            missing.append(Missing(
                'network namespaces', '"unshare --net true" failed (%s): '
                'the kernel or the container does not allow them' %
                reason))
        reason = _ip_netns_works()
        if reason:
            missing.append(Missing(
                'named network namespaces', '"ip netns add" failed (%s): '
                'the compute hosts need them' % reason))
        reason = _private_mounts_work()
        if reason:
            missing.append(Missing(
                'mount and UTS namespaces', 'a bind mount in "unshare '
                '--mount --uts" failed (%s): each compute host needs its '
                'own /run/libvirt and host name' % reason))
    if need_guest_kernel:
        from nova_sio.e2e import guest
        if guest.find_kernel_source() is None:
            missing.append(Missing(
                'guest kernel', 'no Debian kernel package in %s and no '
                'installed /boot/vmlinuz-* with its modules: %s (it '
                'downloads linux-image-<abi>-amd64)' % (
                    guest.deb_cache(), SETUP_HINT)))
    if packages:
        missing.append(Missing('packages', 'apt-get install %s, or %s' % (
            ' '.join(sorted(set(packages))), SETUP_HINT)))
    return missing


def notes():
    """Return facts worth knowing that do not stop the harness."""
    result = []
    if not os.path.exists('/dev/kvm'):
        result.append('/dev/kvm is missing: guests run under QEMU TCG '
                      '(virt_type=qemu), slower but enough')
    else:
        result.append('/dev/kvm is present; guests still use QEMU TCG '
                      '(virt_type=qemu): nested KVM may not boot Linux')
    leftovers = glob.glob('/run/nova-sio-e2e/*.jsonl')
    if leftovers:
        result.append('%d ledger file(s) of earlier runs: '
                      '"python -m nova_sio.e2e sweep" releases what dead '
                      'runs left' % len(leftovers))
    return result


def require(**kwargs):
    """Raise :class:`MachineUnfit` naming every unmet need.

    :param kwargs: passed to :func:`check`.
    """
    missing = check(**kwargs)
    if missing:
        raise MachineUnfit(missing='\n'.join('  - %s' % m for m in missing))
