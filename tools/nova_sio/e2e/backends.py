# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The image backend of the cloud's compute hosts, and their local storage.

``python -m nova_sio.e2e run --images-type T [--zero-copy]`` sets Nova's
``[libvirt] images_type`` of both compute hosts to ``T``:

* ``sio`` (the default): ScaleIO volumes of the gateway emulator, shared
  block storage (live migration copies no disk); ``--zero-copy`` sets
  ``[scaleio] zero_copy_boot``, so that a root disk is a snapshot of a
  per-image base volume instead of a full copy of the image;
* ``qcow2``, ``raw`` and ``flat`` (Nova 34.0.0 accepts both names and
  maps both to its ``Flat`` backend), ``lvm``: Nova's in-tree local
  backends. The instances directory is per host, so Nova live-migrates
  these with block migration.

:class:`LocalStorage` gives one host a disk of its own, a sparse file
attached to a loop device, so that what a backend writes can be read from
the kernel's counters of that device (``/sys/block/loopN/stat``, see
:func:`device_counters`):

* ``qcow2``/``raw``/``flat``: a file system on the loop device, mounted
  over the host's instances path inside the host's mount namespace (the
  ``_base`` image cache and the instance disks are on it). It is ext4 by
  default: Debian's ``cp`` clones files on a reflink XFS
  (``--reflink=auto`` is its default since coreutils 9.0), which would
  turn the ``raw`` backend's copy of the cached image into a clone no
  ext4 host makes. ``mkfs`` runs on the file before the loop device is
  attached and initialises every inode table and the journal at once, so
  neither its writes nor ext4's lazy initialisation reach the counters.
* ``lvm``: a volume group on the loop device (``[libvirt]
  images_volume_group``), with a per-host LVM configuration bound over
  ``/etc/lvm`` inside the host's mount namespace only: its device filter
  accepts that host's loop device alone (``h1`` never sees ``h2``'s
  volume group, the machine's own volume groups are never scanned), and
  it works without udev (``activation/udev_sync = 0``, ``udev_rules =
  0``: LVM makes its device nodes itself; ``obtain_device_list_from_udev
  = 0``). Logical volumes need the kernel's device-mapper: where it is
  missing, :func:`unavailable` says so before anything is made.

Every loop device and volume group is written to the run's
:class:`~nova_sio.e2e.cleanup.Ledger` before it is used. A mount made
inside a host's mount namespace lives as long as that namespace: the
namespace ends with the host's last process, which the ledger ends
before it detaches the loop devices, so a crashed run leaves nothing a
sweep does not release.
"""

import collections
import os
import shutil
import subprocess

from nova_sio.e2e import cleanup
from nova_sio.emulator import blockdev
from nova_sio import errors

GiB = 1024 ** 3

IMAGES_TYPES = ('sio', 'qcow2', 'raw', 'flat', 'lvm')
#: Backends whose disks are files in the instances directory.
FILE_BACKENDS = ('qcow2', 'raw', 'flat')
#: Backends that need a disk of their own on each host.
LOCAL_BACKENDS = FILE_BACKENDS + ('lvm',)
#: The file system made for the file backends.
DEFAULT_FS = 'ext4'
#: Size of each host's sparse local disk.
DEFAULT_SIZE = 48 * GiB
SECTOR = 512

_MKFS = {
    'ext4': ['mkfs.ext4', '-q', '-F', '-E',
             'lazy_itable_init=0,lazy_journal_init=0'],
    'xfs': ['mkfs.xfs', '-q', '-f'],
}

_LVM_CONF = '''# LVM of compute host %(host)s (nova-sio e2e harness): its
# own loop device only, no udev.
devices {
    scan = [ "/dev" ]
    filter = [ "a|^%(device)s$|", "r|.*|" ]
    global_filter = [ "a|^%(device)s$|", "r|.*|" ]
    obtain_device_list_from_udev = 0
    external_device_info_source = "none"
    use_devicesfile = 0
}
activation {
    udev_sync = 0
    udev_rules = 0
    monitoring = 0
}
global {
    locking_dir = "%(run)s/lock"
    use_lvmpolld = 0
    event_activation = 0
}
backup {
    backup = 0
    archive = 0
}
'''


class BackendError(errors.NovaSioError):
    msg_fmt = 'Image backend %(images_type)s: %(reason)s'


def _run(images_type, action, argv):
    proc = subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True)
    if proc.returncode:
        raise BackendError(images_type=images_type, reason='%s: %s (exit '
                           '%d): %s' % (action, ' '.join(argv),
                                        proc.returncode, proc.stdout.strip()))
    return proc.stdout


def check(images_type, zero_copy=False):
    """Refuse an unknown backend, or zero-copy boot of another than sio.

    :param images_type: a value of :data:`IMAGES_TYPES`.
    :param zero_copy: whether ``[scaleio] zero_copy_boot`` is asked for.
    :raises BackendError: on either.
    """
    if images_type not in IMAGES_TYPES:
        raise BackendError(images_type=images_type, reason='not one of %s'
                           % ', '.join(IMAGES_TYPES))
    if zero_copy and images_type != 'sio':
        raise BackendError(images_type=images_type, reason='zero-copy boot '
                           'is an option of the sio backend only')


def label(images_type, zero_copy=False):
    """Return the backend's name in reports (``sio-zero-copy``).

    :param images_type: a value of :data:`IMAGES_TYPES`.
    :param zero_copy: ``[scaleio] zero_copy_boot``.
    """
    return images_type + ('-zero-copy' if zero_copy else '')


def volume_group_name(run_id, host):
    """Return the volume group of ``host`` in run ``run_id``.

    No hyphen: device-mapper names join the group and the volume with
    one, and :func:`~nova_sio.e2e.cleanup` finds a group's devices by
    that prefix.

    :param run_id: the run's short id.
    :param host: host name.
    """
    return 'nsio_%s_%s' % (run_id, host)


def libvirt_options(images_type, volume_group=None):
    """Return the ``[libvirt]`` options of the backend.

    :param images_type: a value of :data:`IMAGES_TYPES`.
    :param volume_group: the host's volume group (``lvm`` only).
    :raises BackendError: for ``lvm`` without a volume group.
    """
    check(images_type)
    options = collections.OrderedDict([('images_type', images_type)])
    if images_type == 'lvm':
        if not volume_group:
            raise BackendError(images_type=images_type,
                               reason='no volume group')
        options['images_volume_group'] = volume_group
    return options


def scaleio_options(images_type, zero_copy=False):
    """Return the ``[scaleio]`` options the backend adds.

    :param images_type: a value of :data:`IMAGES_TYPES`.
    :param zero_copy: ``[scaleio] zero_copy_boot``.
    """
    check(images_type, zero_copy)
    return {'zero_copy_boot': True} if zero_copy else {}


def block_migration(images_type):
    """Tell whether Nova live-migrates the backend's disks by copying them.

    :param images_type: a value of :data:`IMAGES_TYPES`.
    """
    check(images_type)
    return images_type in LOCAL_BACKENDS


def lvm_conf(host, device, run_dir):
    """Return the ``lvm.conf`` text of one host.

    :param host: host name (a comment).
    :param device: the host's loop device, the only one LVM may scan.
    :param run_dir: the host's LVM run directory (locks).
    """
    for value in (device, run_dir):
        if '"' in value or '|' in value:
            raise BackendError(images_type='lvm', reason='%r cannot be '
                               'written in lvm.conf' % value)
    return _LVM_CONF % {'host': host, 'device': device, 'run': run_dir}


def dm_unavailable(misc='/proc/misc', control='/dev/mapper/control'):
    """Return why the kernel's device-mapper cannot be used, or None.

    The kernel lists its device-mapper in ``/proc/misc`` once it has
    one. The control node alone proves nothing: ``libdevmapper`` makes
    ``/dev/mapper/control`` itself when it is missing, and opening it
    then fails with ``ENODEV``.

    :param misc: the kernel's list of misc devices.
    :param control: device-mapper's control node.
    """
    try:
        with open(misc) as handle:
            names = [ln.split(None, 1)[-1].strip() for ln in handle]
    except OSError:
        names = None
    if names is not None and 'device-mapper' in names:
        return None
    if names is None:
        try:
            os.close(os.open(control, os.O_RDWR))
            return None
        except OSError:
            pass
    return ('the kernel has no device-mapper (no "device-mapper" in %s, '
            'no module to load): LVM cannot activate a logical volume, '
            'lvcreate fails with "/dev/mapper/control: open failed: No '
            'such device"' % misc)


def unavailable(images_type, fs=DEFAULT_FS):
    """Return why the backend's local storage cannot be made here, or None.

    :param images_type: a value of :data:`IMAGES_TYPES`.
    :param fs: the file system of the file backends.
    """
    check(images_type)
    reason = blockdev.unavailable()
    if reason:
        return reason
    if images_type == 'lvm':
        reason = dm_unavailable()
        if reason:
            return reason
        if shutil.which('vgcreate') is None:
            return 'lvm2 is not installed (Debian package lvm2)'
        return None
    if fs not in _MKFS:
        return 'no file system %s (one of %s)' % (fs, ', '.join(_MKFS))
    if shutil.which(_MKFS[fs][0]) is None:
        return '%s is not installed' % _MKFS[fs][0]
    return None


def device_counters(device, sys_block='/sys/block'):
    """Return what the kernel counted on block ``device`` since it exists.

    From ``/sys/block/<name>/stat`` (the kernel's ``iostats``): fields 3
    and 7 are sectors read and written, in 512-byte units whatever the
    device's block size.

    :param device: ``/dev/loopN`` (links are followed) or ``loopN``.
    :param sys_block: the sysfs directory of block devices.
    :returns: ``{'read_bytes', 'write_bytes', 'write_ios'}``.
    """
    name = os.path.basename(os.path.realpath(device)) \
        if device.startswith('/') else device
    with open(os.path.join(sys_block, name, 'stat')) as handle:
        fields = [int(f) for f in handle.read().split()]
    return {'read_bytes': fields[2] * SECTOR,
            'write_bytes': fields[6] * SECTOR,
            'write_ios': fields[4]}


def mount_source(path, mounts='/proc/self/mounts'):
    """Return the device mounted at the longest mount point above
    ``path``, or None.

    :param path: a path.
    :param mounts: the mount table to read.
    """
    path = os.path.realpath(path)
    best, source = '', None
    with open(mounts) as handle:
        for line in handle:
            fields = line.split()
            if len(fields) < 2:
                continue
            point = fields[1].replace('\\040', ' ')
            inside = path == point or path.startswith(
                point.rstrip('/') + '/')
            if inside and len(point) >= len(best):
                best, source = point, fields[0]
    return source


class LocalStorage(object):
    """One host's local disk for a backend (see the module docstring).

    :param host: the started :class:`~nova_sio.e2e.hosts.ComputeHost`.
    :param ledger: the run's :class:`~nova_sio.e2e.cleanup.Ledger`.
    :param images_type: a value of :data:`IMAGES_TYPES` (``sio``: the
        instances directory on a disk of its own, so that the ``_base``
        image cache's writes are counted too).
    :param mount_point: the instances path inside the host.
    :param volume_group: the volume group (``lvm``).
    :param size: bytes of the sparse disk.
    :param fs: file system of the file backends (``ext4``, ``xfs``).
    """

    def __init__(self, host, ledger, images_type, mount_point,
                 volume_group=None, size=DEFAULT_SIZE, fs=DEFAULT_FS):
        check(images_type)
        self.host = host
        self.ledger = ledger
        self.images_type = images_type
        self.mount_point = mount_point
        self.volume_group = volume_group
        self.size = size
        self.fs = fs
        self.directory = os.path.join(host.workdir, 'storage-%s' %
                                      images_type)
        self.device = None
        self._loop = None
        self._vg = None
        self._mounted = False

    @property
    def is_lvm(self):
        return self.images_type == 'lvm'

    def _in_host(self, action, argv):
        proc = self.host.run(argv)
        if proc.returncode:
            raise BackendError(images_type=self.images_type, reason='%s on '
                               '%s: %s' % (action, self.host.name,
                                           proc.stdout.strip()))
        return proc.stdout

    def start(self):
        """Make the disk, attach it, and mount it or make the volume
        group; return self.

        :raises BackendError: when this machine cannot (see
            :func:`unavailable`) or a command failed; what was made is
            released first.
        """
        reason = unavailable(self.images_type, self.fs)
        if reason:
            raise BackendError(images_type=self.images_type, reason=reason)
        os.makedirs(self.directory, exist_ok=True)
        image = os.path.join(self.directory, 'disk.img')
        with open(image, 'wb') as handle:
            handle.truncate(self.size)
        try:
            if not self.is_lvm:
                _run(self.images_type, 'making the %s file system' %
                     self.fs, _MKFS[self.fs] + [image])
            self._loop = blockdev.attach_loop(self.ledger, image)
            self.device = self._loop['device']
            if self.is_lvm:
                self._make_volume_group()
            else:
                self._in_host('mounting %s' % self.mount_point, [
                    'sh', '-c', 'mkdir -p "$2" && mount -t "$3" "$1" "$2"',
                    'mount', self.device, self.mount_point, self.fs])
                self._mounted = True
        except BaseException:
            self.stop()
            raise
        return self

    def _make_volume_group(self):
        lvm_dir = os.path.join(self.directory, 'etc-lvm')
        run_dir = os.path.join(self.directory, 'run-lvm')
        os.makedirs(os.path.join(run_dir, 'lock'), exist_ok=True)
        os.makedirs(lvm_dir, exist_ok=True)
        with open(os.path.join(lvm_dir, 'lvm.conf'), 'w') as handle:
            handle.write(lvm_conf(self.host.name, self.device, run_dir))
        self._in_host('binding its lvm.conf over /etc/lvm', [
            'sh', '-c', 'mkdir -p /etc/lvm && mount --bind "$1" /etc/lvm',
            'bind', lvm_dir])
        self._vg = self.ledger.hold('vg', name=self.volume_group,
                                    device=self.device)
        self._in_host('making volume group %s' % self.volume_group,
                      ['vgcreate', '-y', self.volume_group, self.device])

    def counters(self):
        """Return :func:`device_counters` of the host's loop device."""
        return device_counters(self.device)

    def stop(self):
        """Unmount (or deactivate the volume group), detach; forget.

        :returns: list of problems (empty when all went well).
        """
        problems = []
        alive = self.host.holder is not None and \
            self.host.holder.poll() is None
        if self._mounted and alive:
            proc = self.host.run(['umount', self.mount_point])
            if proc.returncode:
                problems.append('%s: umount %s: %s' % (
                    self.host.name, self.mount_point, proc.stdout.strip()))
        self._mounted = False
        for attr in ('_vg', '_loop'):
            record = getattr(self, attr)
            if record is None:
                continue
            try:
                self.ledger.release(record)
            except cleanup.CleanupError as exc:
                problems.append(exc.message)
            setattr(self, attr, None)
        return problems


def sync():
    """Write every dirty page back (``sync``), so that what a backend
    wrote reached its device's counters.
    """
    subprocess.run(['sync'], check=False)
