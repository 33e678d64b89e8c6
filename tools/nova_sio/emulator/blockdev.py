# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""SDC emulation with real block devices (loop devices).

:class:`BlockDeviceSimulator` is the :class:`~.sdc.HostSimulator` of the
end-to-end harness. Mapping a volume to a host attaches a loop device
over the volume's backing file (``losetup --find --show``) and the
host's ``emc-vol-<systemId>-<volumeId>`` link points at that
``/dev/loopN``: QEMU and libvirt get a real ``type='block'`` disk.
Unmapping detaches it. The file mode of ``sdc.py`` stays for unit tests.

What a real SDC does, as modelled here:

* **The device appears after a delay.** os-brick's ScaleIO connector
  polls for the by-id link after the mapping call
  (``_wait_for_volume_path``); the link is made ``device_delay`` seconds
  after the mapping, the loop device at once.
* **A grown volume shows its new size only after a rescan.** os-brick's
  ``extend_volume`` runs ``drv_cfg --rescan`` and then reads the size
  with ``blockdev --getsize64``. Here each host's loop device keeps the
  size it was attached with: the host's ``drv_cfg --rescan`` grows the
  backing file and runs ``losetup -c`` on *its* loop device, so another
  host still sees the old size until it rescans too (or maps again).
* **A volume unmapped while a process still has it open.** No public
  source checked (os-brick's ``disconnect_volume``, PyPowerFlex's
  ``unmap_volume_from_sdc``, the REST API's ``removeMappedSdc`` with its
  optional ``skipApplianceValidation``) states what the SDC does to the
  open handles, so it is not invented: the unmap succeeds as the gateway
  reported, the link goes, the loop device is detached with
  ``losetup -d``, which Linux turns into a detach on last close
  (autoclear) while it is open, and the event is recorded in
  :meth:`BlockDeviceSimulator.stats` (``unmapped_in_use``, with the pids
  that held it) so a harness can fail on it instead of hiding it.

Every loop device and mount is written to a :class:`~nova_sio.e2e.
cleanup.Ledger` before it is used, so that a crash of the harness
leaves nothing that the next :func:`~nova_sio.e2e.cleanup.sweep` does
not remove. :class:`ScratchXfs` gives the backing files an XFS with
reflink, so that snapshots are copy-on-write clones (``sdc.clone_file``).
"""

import os
import shutil
import subprocess
import tempfile

from nova_sio.e2e import cleanup
from nova_sio.emulator import sdc
from nova_sio import errors

GiB = 1024 ** 3

#: ``drv_cfg --rescan`` of loop devices: a grown volume's loop device
#: takes the new size of its file (``losetup -c``).
_RESCAN_LOOPS = r'''--rescan)
    rc=0
    for f in "$SDC"/%(prefix)s-*; do
        [ -L "$f" ] || continue
        n=${f##*/}
        dev=$(readlink "$f")
        if [ -f "$GROWN/$n" ]; then
            read -r size back < "$GROWN/$n"
            cur=$(stat -c %%s "$back")
            [ "$cur" -ge "$size" ] || truncate -s "$size" "$back" || rc=1
            losetup -c "$dev" && rm -f "$GROWN/$n" || rc=1
        fi
        [ -L "$ROOT/$n" ] || ln -s "$dev" "$ROOT/$n" || :
    done
    exit $rc ;;
'''


class BlockDevError(errors.NovaSioError):
    msg_fmt = '%(action)s failed: %(reason)s'


def unavailable():
    """Return why loop devices cannot be used here, or None."""
    if os.geteuid() != 0:
        return 'loop devices need root: run it as root'
    if not os.path.exists('/dev/loop-control'):
        return ('no loop device support (/dev/loop-control missing): '
                'load the loop module or give the container loop devices')
    if shutil.which('losetup') is None:
        return 'losetup is not installed (Debian package mount)'
    return None


def _run(action, argv):
    proc = subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    out = proc.stdout.decode(errors='replace').strip()
    if proc.returncode:
        raise BlockDevError(action=action, reason='%s (exit %d): %s' % (
            ' '.join(argv), proc.returncode, out))
    return out


def attach_loop(ledger, backing, direct_io=False, read_only=False):
    """Attach a free loop device over ``backing``; record it.

    :param ledger: the :class:`~nova_sio.e2e.cleanup.Ledger`.
    :param backing: the file to expose.
    :param direct_io: open the backing file with ``O_DIRECT``.
    :param read_only: attach read-only.
    :returns: the ledger record (``device``: ``/dev/loopN``).
    """
    argv = ['losetup', '--find', '--show']
    if direct_io:
        argv.append('--direct-io=on')
    if read_only:
        argv.append('--read-only')
    backing = os.path.realpath(backing)
    device = _run('attaching a loop device', argv + [backing])
    return ledger.hold('loop', device=device, backing=backing)


def device_size(device):
    """Return the size in bytes the kernel gives block ``device``.

    :param device: a block device path (links are followed).
    """
    name = os.path.basename(os.path.realpath(device))
    with open('/sys/class/block/%s/size' % name) as handle:
        return int(handle.read()) * 512


def openers(device):
    """Return the pids that hold ``device`` open (or mmapped).

    :param device: a block device path (links are followed).
    """
    real = os.path.realpath(device)
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        fd_dir = '/proc/%s/fd' % entry
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(os.path.join(fd_dir, fd)) == real:
                    found.append(int(entry))
                    break
            except OSError:
                continue
    return sorted(found)


class ScratchXfs(object):
    """Context manager: an XFS with reflink in a sparse image; its path.

    The image's loop device and the mount are recorded in ``ledger``
    before use, so that a crash leaves nothing a sweep cannot remove.

    :param ledger: the :class:`~nova_sio.e2e.cleanup.Ledger`.
    :param size: size of the sparse image in bytes.
    :param parent: directory for the image and the mount point.
    """

    def __init__(self, ledger, size=16 * GiB, parent=None):
        self.ledger = ledger
        self.size = size
        self.parent = parent
        self.workdir = None
        self.mount_point = None
        self._records = []

    def __enter__(self):
        reason = unavailable()
        if reason:
            raise BlockDevError(action='making a scratch XFS', reason=reason)
        self.workdir = tempfile.mkdtemp(prefix='sio-xfs-', dir=self.parent)
        self._records.append(self.ledger.hold('dir', path=self.workdir))
        try:
            image = os.path.join(self.workdir, 'xfs.img')
            with open(image, 'wb') as handle:
                handle.truncate(self.size)
            _run('making a scratch XFS',
                 ['mkfs.xfs', '-q', '-m', 'reflink=1', image])
            loop = attach_loop(self.ledger, image)
            self._records.append(loop)
            self.mount_point = os.path.join(self.workdir, 'mnt')
            os.mkdir(self.mount_point)
            record = self.ledger.hold('mount', target=self.mount_point,
                                      source=loop['device'])
            self._records.append(record)
            _run('mounting the scratch XFS',
                 ['mount', '-t', 'xfs', loop['device'], self.mount_point])
        except BaseException:
            self.close()
            raise
        return self.mount_point

    def __exit__(self, *exc_info):
        self.close()
        return False

    def close(self):
        """Unmount, detach and remove the image (newest first)."""
        while self._records:
            self.ledger.release(self._records.pop())


class BlockDeviceSimulator(sdc.HostSimulator):
    """Host simulator whose devices are loop devices.

    :param state_dir: directory for host trees (see ``HostSimulator``).
    :param system: the :class:`state.System`.
    :param storage_dir: directory for the backing files, e.g. the mount
        point of a :class:`ScratchXfs`.
    :param ledger: the :class:`~nova_sio.e2e.cleanup.Ledger` recording
        every loop device (a new one when None).
    :param direct_io: attach the loop devices with ``--direct-io=on``
        (no double caching; the backing file must allow ``O_DIRECT``).
    """

    mode = 'block'
    RESCAN = _RESCAN_LOOPS
    KIND = ' (loop devices)'

    def __init__(self, state_dir, system, storage_dir=None, ledger=None,
                 direct_io=False):
        reason = unavailable()
        if reason:
            raise BlockDevError(action='block device SDC mode',
                                reason=reason)
        super().__init__(state_dir, system, storage_dir=storage_dir)
        self.ledger = ledger or cleanup.Ledger()
        self.direct_io = direct_io
        self.loops = {}              # (host name, volume id) -> record
        self.unmapped_in_use = []

    def device(self, host_name, vol_id):
        """Return the loop device of a mapping, or None.

        :param host_name: emulated host name.
        :param vol_id: volume id.
        """
        record = self.loops.get((host_name, vol_id))
        return record and record['device']

    def _grow_for(self, host, vol):
        """A (re)mapping host sees the current size: grow the file."""
        path = self.backing_file(vol.id)
        if os.path.getsize(path) < vol.size_kb * 1024:
            with open(path, 'r+b') as handle:
                handle.truncate(vol.size_kb * 1024)
        try:
            os.unlink(self._side_path(host, 'grown', vol.id))
        except FileNotFoundError:
            pass

    def _detach(self, host, vol_id):
        record = self.loops.pop((host.name, vol_id), None)
        if record is None:
            return
        holders = openers(record['device'])
        if holders:
            self.unmapped_in_use.append({
                'host': host.name, 'volume': vol_id,
                'device': record['device'], 'pids': holders})
        # Busy: the kernel detaches it on the last close (autoclear).
        self.ledger.release(record)

    # -- listener interface ------------------------------------------------

    def mapped(self, vol, sdc_obj):
        host = self.by_sdc.get(sdc_obj.id)
        if host is None:
            return
        backing = self._ensure_backing(vol)
        self._grow_for(host, vol)
        gen = self._bump(sdc_obj.id, vol.id)
        if host.never_appear:
            return
        key = (host.name, vol.id)
        with self._lock:
            record = self.loops.get(key)
        if record is None:
            record = attach_loop(self.ledger, backing,
                                 direct_io=self.direct_io)
            with self._lock:
                self.loops[key] = record
        device = record['device']
        side = self._side_path(host, 'sdc', vol.id)
        if not os.path.islink(side):
            os.symlink(device, side)
        self._appear_later(host, sdc_obj.id, vol.id, gen, device)

    def unmapped(self, vol, sdc_obj):
        host = self.by_sdc.get(sdc_obj.id)
        if host is None:
            return
        self._vanish_later(host, sdc_obj.id, vol.id,
                           then=lambda: self._detach(host, vol.id))

    def resized(self, vol):
        seen_by = [host for sdc_id, host in self.by_sdc.items()
                   if vol.id in self.system.sdc_volumes.get(sdc_id, ())]
        path = self.backing_file(vol.id)
        if not seen_by:
            if os.path.exists(path) and (
                    os.path.getsize(path) < vol.size_kb * 1024):
                with open(path, 'r+b') as handle:
                    handle.truncate(vol.size_kb * 1024)
            return
        # Each mapped host sees the old size until its own rescan.
        for host in seen_by:
            with open(self._side_path(host, 'grown', vol.id), 'w') as out:
                out.write('%d %s\n' % (vol.size_kb * 1024, path))

    def removed(self, vol):
        for host in list(self.hosts.values()):
            self._detach(host, vol.id)
        super().removed(vol)

    # -- inspection and teardown --------------------------------------------

    def stats(self):
        """Return :meth:`HostSimulator.stats` plus the block-mode facts.

        Adds ``mode`` (``'block'``), ``loop_devices`` (``host/volume`` ->
        device) and ``unmapped_in_use`` (unmaps of a device some process
        still held open: host, volume, device, pids).
        """
        result = super().stats()
        with self._lock:
            result['mode'] = self.mode
            result['loop_devices'] = dict(
                ('%s/%s' % key, rec['device'])
                for key, rec in sorted(self.loops.items()))
            result['unmapped_in_use'] = list(self.unmapped_in_use)
        return result

    def detach_all(self):
        """Detach every loop device of this simulator."""
        for (host_name, vol_id) in list(self.loops):
            self._detach(self.hosts[host_name], vol_id)

    def release_storage(self):
        self.stop()
        self.detach_all()
        super().release_storage()

    def cleanup(self):
        self.stop()
        self.detach_all()
        super().cleanup()
