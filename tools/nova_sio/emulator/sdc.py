# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""SDC host simulation: by-id links that follow the volume mappings.

Each emulated host has a directory standing in for ``/dev/disk/by-id``
and a fake ``drv_cfg`` script. Mapping a volume to the host's SDC makes
``emc-vol-<systemId>-<volumeId>`` appear there after ``device_delay``
seconds, as a symbolic link to the volume's sparse backing file, which
every host shares: data written through one host is visible on another.
Unmapping removes the link after ``linger`` seconds.

The SDC's own view is a second directory of links made at once on a
mapping: ``drv_cfg --rescan`` creates every by-id link missing from it
(a device that udev lost). A grown volume keeps its old size on the hosts
it is mapped to until one of them runs ``drv_cfg --rescan`` (the size
is applied to the shared backing file then) or maps it again. ``never_appear``
models a broken data network (REST says mapped, no device shows up),
``connected=False`` a disconnected SDC and ``registered=False`` an SDC
that is not registered or not approved (restricted SDC mode).

A ScaleIO snapshot shares its data with the source (vTree pointers) and
costs no data copy. The emulator models that with a copy-on-write clone
of the backing file (``FICLONE``) when the storage directory supports it
(XFS with reflink, btrfs); elsewhere it falls back to copying the data
extents. Either way the snapshot and its source are independent from
then on. :meth:`HostSimulator.stats` tells which method was used.
"""

import errno
import fcntl
import os
import shutil
import stat
import tempfile
import threading
import time

DEVICE_PREFIX = 'emc-vol'

_DRV_CFG_HEAD = r'''#!/bin/sh
# Fake ScaleIO drv_cfg for emulated host %(name)s%(kind)s.
ROOT='%(root)s'
SDC='%(sdc_dir)s'
GROWN='%(grown_dir)s'
case "$1" in
--query_guid)
    echo '%(guid)s' ;;
--query_mdms|--query_mdm)
    echo 'Retrieved 1 mdm(s)'
    echo 'MDM-ID %(system_id)s SDC ID %(sdc_id)s' \
        'INSTALLATION ID 0 IPs [0]-127.0.0.1' ;;
--query_vols)
    set -- "$ROOT"/%(prefix)s-*
    if [ -e "$1" ] || [ -L "$1" ]; then
        echo "Retrieved $# volume(s)"
        for f in "$@"; do
            b=${f##*/%(prefix)s-}
            echo "VOL-ID ${b#*-} MDM-ID ${b%%%%-*}"
        done
    else
        echo 'Retrieved 0 volume(s)'
    fi ;;
'''

#: ``drv_cfg --rescan`` of file-backed devices: a grown volume's file
#: takes its new size, a lost device link comes back.
_RESCAN_FILES = r'''--rescan)
    for f in "$SDC"/%(prefix)s-*; do
        [ -L "$f" ] || continue
        n=${f##*/}
        if [ -f "$GROWN/$n" ]; then
            truncate -s "$(cat "$GROWN/$n")" "$f" && rm -f "$GROWN/$n"
        fi
        [ -L "$ROOT/$n" ] || ln -s "$(readlink "$f")" "$ROOT/$n" || :
    done ;;
'''

_DRV_CFG_TAIL = r'''*)
    echo "drv_cfg: unknown option $1" >&2
    exit 1 ;;
esac
'''


#: Linux ``FICLONE`` ioctl request: ``_IOW(0x94, 9, int)``.
FICLONE = 0x40049409

#: Snapshot methods: copy-on-write clone, or a copy of the data extents.
REFLINK = 'reflink'
SPARSE_COPY = 'sparse-copy'

# errno values meaning "this file system (pair) cannot clone".
_NO_CLONE = frozenset(getattr(errno, name) for name in (
    'EOPNOTSUPP', 'ENOTSUP', 'ENOTTY', 'EXDEV', 'EINVAL', 'ENOSYS')
    if hasattr(errno, name))


def reflink(src, dst):
    """Make ``dst`` a copy-on-write clone of ``src``.

    :param src: existing file.
    :param dst: file to create (or replace).
    :raises OSError: when the file system cannot clone (``errno`` in
        ``EOPNOTSUPP``, ``EXDEV``, ...); ``dst`` is removed then.
    """
    with open(src, 'rb') as fin, open(dst, 'wb') as fout:
        try:
            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
        except OSError:
            fout.close()
            os.unlink(dst)
            raise


def clone_file(src, dst):
    """Copy ``src`` to ``dst`` as cheaply as the file system allows.

    :param src: existing (sparse) file.
    :param dst: file to create (or replace).
    :returns: ``(method, bytes copied)``: ``(REFLINK, 0)`` for a
        copy-on-write clone, ``(SPARSE_COPY, n)`` otherwise.
    """
    try:
        reflink(src, dst)
        return REFLINK, 0
    except OSError as exc:
        if exc.errno not in _NO_CLONE:
            raise
    return SPARSE_COPY, sparse_copy(src, dst)


def clone_support(directory):
    """Return the method :func:`clone_file` uses in ``directory``.

    :param directory: an existing directory; two small scratch files are
        made in it and removed.
    """
    scratch = tempfile.mkdtemp(prefix='.clone-probe-', dir=directory)
    try:
        src = os.path.join(scratch, 'src')
        with open(src, 'wb') as handle:
            handle.write(b'probe')
        try:
            reflink(src, os.path.join(scratch, 'dst'))
        except OSError as exc:
            if exc.errno not in _NO_CLONE:
                raise
            return SPARSE_COPY
        return REFLINK
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def sparse_copy(src, dst):
    """Copy a sparse file, reading only its data extents.

    :returns: the number of bytes copied.
    """
    size = os.path.getsize(src)
    copied = 0
    with open(src, 'rb') as fin, open(dst, 'wb') as fout:
        fout.truncate(size)
        fd = fin.fileno()
        offset = 0
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:
                break  # no more data
            end = os.lseek(fd, start, os.SEEK_HOLE)
            fin.seek(start)
            fout.seek(start)
            remaining = end - start
            while remaining:
                chunk = fin.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                fout.write(chunk)
                copied += len(chunk)
                remaining -= len(chunk)
            offset = end
    return copied


class Host(object):
    """One emulated compute host with an SDC."""

    def __init__(self, name, root, drv_cfg, sdc):
        self.name = name
        self.device_root = root
        self.drv_cfg = drv_cfg
        self.sdc = sdc
        self.device_delay = 0.05
        self.linger = 0.0
        self.never_appear = False

    def describe(self):
        return {'name': self.name, 'device_root': self.device_root,
                'drv_cfg': self.drv_cfg, 'sdc_id': self.sdc.id,
                'guid': self.sdc.guid, 'ip': self.sdc.ip,
                'device_delay': self.device_delay, 'linger': self.linger,
                'never_appear': self.never_appear}


class HostSimulator(object):
    """Volume listener keeping the hosts' device links in step.

    :param state_dir: directory for host trees (and backing files when
        ``storage_dir`` is None).
    :param system: the :class:`state.System` (for ids and locking).
    :param storage_dir: existing directory for the volumes' backing
        files; they go into a new subdirectory of it, removed by
        :meth:`cleanup`. Default: ``<state_dir>/volumes``.
    """

    #: The ``--rescan`` branch of the hosts' ``drv_cfg`` script.
    RESCAN = _RESCAN_FILES
    #: How the script's comment names the kind of device.
    KIND = ''

    def __init__(self, state_dir, system, storage_dir=None):
        self.state_dir = state_dir
        self.system = system
        self.hosts = {}          # name -> Host
        self.by_sdc = {}         # sdc id -> Host
        self._gen = {}           # (sdc id, volume id) -> generation
        self._timers = set()
        self._lock = threading.Lock()
        self.storage_dir = storage_dir
        if storage_dir is None:
            self.backing_dir = os.path.join(state_dir, 'volumes')
            os.makedirs(self.backing_dir, exist_ok=True)
        else:
            self.backing_dir = tempfile.mkdtemp(prefix='sio-emu-volumes-',
                                                dir=storage_dir)
        self.clone_method = clone_support(self.backing_dir)
        self.snapshots = {REFLINK: 0, SPARSE_COPY: 0}
        self.snapshot_bytes_copied = 0
        # Volume id -> bytes allocated to a snapshot's backing file when
        # it was made (shared extents count): not written through an SDC.
        self.inherited = {}
        self.snapshot_seconds = 0.0

    def add_host(self, name, guid=None, ip=None):
        """Create host ``name`` with its own SDC; return the Host."""
        import uuid
        if name in self.hosts:
            return self.hosts[name]
        base = os.path.join(self.state_dir, 'hosts', name)
        root = os.path.join(base, 'dev', 'disk', 'by-id')
        os.makedirs(root, exist_ok=True)
        index = len(self.hosts) + 1
        sdc = self.system.add_sdc(guid or str(uuid.uuid4()),
                                  ip or '192.0.2.%d' % index,
                                  'sdc-%s' % name, host=name)
        for sub in ('sdc', 'grown'):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        drv_cfg = os.path.join(base, 'drv_cfg')
        with open(drv_cfg, 'w') as handle:
            handle.write(self.drv_cfg_script(name, root, sdc, base))
        os.chmod(drv_cfg, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP)
        host = Host(name, root, drv_cfg, sdc)
        self.hosts[name] = host
        self.by_sdc[sdc.id] = host
        return host

    def drv_cfg_script(self, name, root, sdc, base):
        """Return the ``drv_cfg`` script of emulated host ``name``.

        :param name: the host name.
        :param root: its by-id device directory.
        :param sdc: its SDC object.
        :param base: its state directory (``sdc/`` and ``grown/`` inside).
        """
        script = _DRV_CFG_HEAD + self.RESCAN + _DRV_CFG_TAIL
        return script % {
            'name': name, 'kind': self.KIND, 'root': root,
            'guid': sdc.guid, 'sdc_dir': os.path.join(base, 'sdc'),
            'grown_dir': os.path.join(base, 'grown'),
            'system_id': self.system.id, 'sdc_id': sdc.id,
            'prefix': DEVICE_PREFIX}

    def set_host(self, name, **options):
        host = self.hosts[name]
        for key in ('device_delay', 'linger', 'never_appear'):
            if key in options:
                setattr(host, key, options[key])
        if 'connected' in options:
            host.sdc.connected = bool(options['connected'])
        if 'registered' in options:
            host.sdc.registered = bool(options['registered'])
        return host.describe()

    def backing_file(self, vol_id):
        return os.path.join(self.backing_dir, '%s.img' % vol_id)

    def link_path(self, host, vol_id):
        return os.path.join(host.device_root, '%s-%s-%s' % (
            DEVICE_PREFIX, self.system.id, vol_id))

    def _side_path(self, host, sub, vol_id):
        """The SDC-view link or the pending-growth file of a volume."""
        return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            host.device_root))), sub, os.path.basename(
                self.link_path(host, vol_id)))

    def _apply_growth(self, vol):
        """Give the backing file the volume's size (a host sees it)."""
        path = self.backing_file(vol.id)
        if os.path.exists(path) and os.path.getsize(path) < vol.size_kb * 1024:
            with open(path, 'r+b') as handle:
                handle.truncate(vol.size_kb * 1024)
        for host in self.hosts.values():
            try:
                os.unlink(self._side_path(host, 'grown', vol.id))
            except FileNotFoundError:
                pass

    def _ensure_backing(self, vol):
        path = self.backing_file(vol.id)
        if not os.path.exists(path):
            with open(path, 'wb') as handle:
                handle.truncate(vol.size_kb * 1024)
        return path

    def _later(self, delay, func, *args):
        if delay <= 0:
            func(*args)
            return
        timer = threading.Timer(delay, self._fire, (func, args))
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def _fire(self, func, args):
        with self._lock:
            self._timers.discard(threading.current_thread())
        func(*args)

    def _bump(self, sdc_id, vol_id):
        with self._lock:
            key = (sdc_id, vol_id)
            self._gen[key] = self._gen.get(key, 0) + 1
            return self._gen[key]

    def _current(self, sdc_id, vol_id, gen):
        with self._lock:
            return self._gen.get((sdc_id, vol_id)) == gen

    # -- listener interface ------------------------------------------------

    def mapped(self, vol, sdc):
        host = self.by_sdc.get(sdc.id)
        if host is None:
            return
        backing = self._ensure_backing(vol)
        self._apply_growth(vol)
        gen = self._bump(sdc.id, vol.id)
        if host.never_appear:
            return
        try:
            os.symlink(backing, self._side_path(host, 'sdc', vol.id))
        except FileExistsError:
            pass
        self._appear_later(host, sdc.id, vol.id, gen, backing)

    def _appear_later(self, host, sdc_id, vol_id, gen, target):
        """Make a mapping's device link appear after the host's delay.

        :param host: the emulated host.
        :param sdc_id: the SDC the volume is mapped to.
        :param vol_id: the volume id.
        :param gen: the mapping generation; a later map or unmap wins.
        :param target: what the link points at (backing file or device).
        """
        link = self.link_path(host, vol_id)

        def appear():
            if not self._current(sdc_id, vol_id, gen):
                return
            try:
                os.symlink(target, link)
            except FileExistsError:
                pass
        self._later(host.device_delay, appear)

    def _vanish_later(self, host, sdc_id, vol_id, then=None):
        """Remove a mapping's device link after the host's linger time.

        :param host: the emulated host.
        :param sdc_id: the SDC the volume was mapped to.
        :param vol_id: the volume id.
        :param then: called once the link is gone (unless remapped).
        """
        gen = self._bump(sdc_id, vol_id)
        link = self.link_path(host, vol_id)
        for sub in ('sdc', 'grown'):
            try:
                os.unlink(self._side_path(host, sub, vol_id))
            except FileNotFoundError:
                pass

        def vanish():
            if not self._current(sdc_id, vol_id, gen):
                return
            try:
                os.unlink(link)
            except FileNotFoundError:
                pass
            if then is not None:
                then()
        self._later(host.linger, vanish)

    def unmapped(self, vol, sdc):
        host = self.by_sdc.get(sdc.id)
        if host is None:
            return
        self._vanish_later(host, sdc.id, vol.id)

    def resized(self, vol):
        seen_by = [host for sdc_id, host in self.by_sdc.items()
                   if vol.id in self.system.sdc_volumes.get(sdc_id, ())]
        if not seen_by:
            self._apply_growth(vol)
            return
        # Mapped: the hosts see the old size until a rescan.
        for host in seen_by:
            with open(self._side_path(host, 'grown', vol.id), 'w') as out:
                out.write('%d\n' % (vol.size_kb * 1024))

    def snapshotted(self, source, snap):
        src = self.backing_file(source.id)
        if not os.path.exists(src):
            return  # never written: the snapshot starts empty too
        began = time.time()
        dst = self.backing_file(snap.id)
        method, copied = clone_file(src, dst)
        inherited = os.stat(dst).st_blocks * 512
        with self._lock:
            self.snapshots[method] += 1
            self.snapshot_bytes_copied += copied
            self.inherited[snap.id] = inherited
            self.snapshot_seconds += time.time() - began

    def removed(self, vol):
        with self._lock:
            self.inherited.pop(vol.id, None)
        try:
            os.unlink(self.backing_file(vol.id))
        except FileNotFoundError:
            pass

    # -- inspection --------------------------------------------------------

    def stats(self):
        """Return how snapshots were made in the data plane.

        :returns: dict with ``storage_dir`` (where the backing files
            are), ``clone_method`` (what this directory supports),
            ``snapshots`` (count per method), ``snapshot_bytes_copied``,
            ``inherited`` (volume id -> bytes allocated to a snapshot's
            backing file when it was made) and ``snapshot_seconds`` (time
            spent making backing files).
        """
        with self._lock:
            return {'storage_dir': self.backing_dir,
                    'clone_method': self.clone_method,
                    'snapshots': dict(self.snapshots),
                    'snapshot_bytes_copied': self.snapshot_bytes_copied,
                    'inherited': dict(self.inherited),
                    'snapshot_seconds': self.snapshot_seconds}

    def stray_devices(self):
        """Links present on a host without a matching mapping."""
        result = []
        for host in self.hosts.values():
            mapped = self.system.sdc_volumes.get(host.sdc.id, set())
            for entry in sorted(os.listdir(host.device_root)):
                vol_id = entry.rsplit('-', 1)[-1]
                if vol_id not in mapped:
                    result.append({'host': host.name, 'device': entry})
        return result

    def stop(self):
        with self._lock:
            timers, self._timers = list(self._timers), set()
        for timer in timers:
            timer.cancel()

    def release_storage(self):
        """Remove the backing files made in a given ``storage_dir``."""
        if self.storage_dir is not None:
            shutil.rmtree(self.backing_dir, ignore_errors=True)

    def cleanup(self):
        self.stop()
        shutil.rmtree(os.path.join(self.state_dir, 'hosts'),
                      ignore_errors=True)
        shutil.rmtree(self.backing_dir, ignore_errors=True)
