# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Snapshot data in the emulator: copy-on-write clone or sparse copy.

Whatever the method, a snapshot must read what the source held when it
was taken, and later writes to either must not show in the other. The
reflink cases run on a scratch XFS file system in a loop-mounted image
and are skipped, with the reason, where that cannot be made (not root,
no ``mkfs.xfs``, no loop devices).
"""

import errno
import os
from unittest import mock

import fixtures

from nova_sio.emulator import fixture as emu_fixture
from nova_sio.emulator import loopfs
from nova_sio.emulator import sdc
from nova_sio.emulator import server
from nova_sio.tests.emulator.test_emulator import Raw
from nova_sio.tests import sio_base

MiB = 1024 * 1024
KiB_PER_GiB = 1024 * 1024
# Data extents of the test file: (offset, length).
EXTENTS = ((0, MiB), (512 * MiB, MiB))
FILE_SIZE = sio_base.GiB


def _pattern(tag, length):
    return (tag * (length // len(tag) + 1))[:length]


def _read(path, offset, length):
    with open(path, 'rb') as handle:
        handle.seek(offset)
        return handle.read(length)


def _write(path, offset, data):
    with open(path, 'r+b') as handle:
        handle.seek(offset)
        handle.write(data)


def _data_bytes(path):
    """Bytes in the data extents of a sparse file."""
    total = offset = 0
    size = os.path.getsize(path)
    with open(path, 'rb') as handle:
        while offset < size:
            try:
                start = os.lseek(handle.fileno(), offset, os.SEEK_DATA)
            except OSError:
                break
            offset = os.lseek(handle.fileno(), start, os.SEEK_HOLE)
            total += offset - start
    return total


def _allocated(path):
    return os.stat(path).st_blocks * 512


def _xfs_mount(test):
    """Mount a scratch XFS for ``test`` (cleaned up) or skip the test."""
    reason = loopfs.unavailable('xfs')
    if reason:
        test.skipTest('no scratch XFS with reflink: %s' % reason)
    mount = loopfs.LoopFilesystem('xfs', size=4 * sio_base.GiB)
    try:
        path = mount.__enter__()
    except loopfs.LoopFsError as exc:
        test.skipTest('no scratch XFS with reflink: %s' % exc)
    test.addCleanup(mount.close)
    return path


class CloneFileTest(sio_base.TestCase):
    """``sdc.clone_file`` on the local file systems."""

    def make_source(self, directory):
        src = os.path.join(directory, 'src.img')
        with open(src, 'wb') as handle:
            handle.truncate(FILE_SIZE)
        for offset, length in EXTENTS:
            _write(src, offset, _pattern(b'source-%d ' % offset, length))
        return src

    def check_clone(self, directory, expected_method):
        """Clone in ``directory``; check data, sparseness, independence."""
        src = self.make_source(directory)
        dst = os.path.join(directory, 'dst.img')
        method, copied = sdc.clone_file(src, dst)
        self.assertEqual(expected_method, method)
        data = sum(length for _offset, length in EXTENTS)
        self.assertEqual(0 if method == sdc.REFLINK else data, copied)
        self.assertEqual(FILE_SIZE, os.path.getsize(dst))
        # Sparse size kept: the holes of the source stay holes.
        self.assertLessEqual(_allocated(dst), data + 4 * MiB)
        for offset, length in EXTENTS:
            self.assertEqual(_read(src, offset, length),
                             _read(dst, offset, length))
        self.assertEqual(b'\0' * 4096, _read(dst, 256 * MiB, 4096))

        # Writes to the source after the snapshot do not show in it ...
        offset = EXTENTS[1][0]
        _write(src, offset, b'source after clone')
        _write(src, 768 * MiB, b'new source extent')
        self.assertEqual(_pattern(b'source-%d ' % offset, 18),
                         _read(dst, offset, 18))
        self.assertEqual(b'\0' * 17, _read(dst, 768 * MiB, 17))
        # ... and writes to the snapshot do not show in the source.
        _write(dst, 0, b'clone wrote here')
        _write(dst, 900 * MiB, b'clone extent')
        self.assertEqual(_pattern(b'source-0 ', 16), _read(src, 0, 16))
        self.assertEqual(b'\0' * 12, _read(src, 900 * MiB, 12))
        self.assertEqual(b'source after clone', _read(src, offset, 18))
        self.assertEqual(b'clone wrote here', _read(dst, 0, 16))
        return method

    def test_temp_dir_uses_the_probed_method(self):
        directory = self.useFixture(fixtures.TempDir()).path
        self.check_clone(directory, sdc.clone_support(directory))

    def test_ext4_falls_back_to_sparse_copy(self):
        directory = self.useFixture(fixtures.TempDir()).path
        fstype = loopfs.fstype_of(directory)
        if fstype != 'ext4':
            self.skipTest('the temporary directory is on %s, not ext4'
                          % fstype)
        self.assertEqual(sdc.SPARSE_COPY, sdc.clone_support(directory))
        self.check_clone(directory, sdc.SPARSE_COPY)

    def test_refused_clone_falls_back_to_sparse_copy(self):
        directory = self.useFixture(fixtures.TempDir()).path
        for code in (errno.EOPNOTSUPP, errno.EXDEV, errno.ENOTTY):
            refuse = OSError(code, os.strerror(code))
            with mock.patch.object(sdc.fcntl, 'ioctl', side_effect=refuse):
                self.assertEqual(sdc.SPARSE_COPY,
                                 sdc.clone_support(directory))
                self.check_clone(directory, sdc.SPARSE_COPY)

    def test_other_clone_errors_propagate(self):
        directory = self.useFixture(fixtures.TempDir()).path
        src = self.make_source(directory)
        dst = os.path.join(directory, 'dst.img')
        failure = OSError(errno.EIO, os.strerror(errno.EIO))
        with mock.patch.object(sdc.fcntl, 'ioctl', side_effect=failure):
            error = self.assertRaises(OSError, sdc.clone_file, src, dst)
        self.assertEqual(errno.EIO, error.errno)
        self.assertFalse(os.path.exists(dst))

    def test_reflink_on_xfs(self):
        reason = loopfs.unavailable('xfs')
        if reason:
            self.skipTest('no scratch XFS with reflink: %s' % reason)
        with loopfs.LoopFilesystem('xfs', size=4 * sio_base.GiB) as mnt:
            self.assertEqual('xfs', loopfs.fstype_of(mnt))
            self.assertEqual(sdc.REFLINK, sdc.clone_support(mnt))
            self.check_clone(mnt, sdc.REFLINK)
            self.assertTrue(os.path.ismount(mnt))
        self.assertFalse(os.path.ismount(mnt))
        self.assertFalse(os.path.exists(os.path.dirname(mnt)))


class EmulatorSnapshotDataTest(sio_base.TestCase):
    """Snapshots through the gateway API keep the data apart."""

    def start(self, **kwargs):
        fix = self.useFixture(emu_fixture.EmulatorFixture(**kwargs))
        fix.admin.set_host('host-a', device_delay=0)
        raw = Raw(fix.info)
        self.addCleanup(raw.session.close)
        raw.login()
        return fix, raw

    def device(self, fix, vol_id):
        return os.path.join(fix.host()['device_root'], '%s-%s-%s' % (
            sdc.DEVICE_PREFIX, fix.info['system_id'], vol_id))

    def map(self, fix, raw, vol_id):
        raw.ok(raw.action(vol_id, 'addMappedSdc',
                          {'sdcId': fix.host()['sdc_id']}))
        link = self.device(fix, vol_id)
        self.assertTrue(sio_base.wait_until(
            lambda: os.path.exists(link)))
        return link

    def check_snapshot(self, fix, raw):
        """Write, snapshot, write both; return the backing files."""
        vol = raw.ok(raw.create('clone-src', 8 * KiB_PER_GiB))['id']
        src = self.map(fix, raw, vol)
        _write(src, 0, b'boot sector')
        _write(src, 3 * sio_base.GiB, b'before snapshot')
        snap = raw.ok(raw.snapshot(vol, 'clone-snap'))['volumeIdList'][0]
        _write(src, 3 * sio_base.GiB, b'after  snapshot')
        dst = self.map(fix, raw, snap)
        self.assertEqual(8 * sio_base.GiB, os.path.getsize(dst))
        self.assertEqual(b'boot sector', _read(dst, 0, 11))
        self.assertEqual(b'before snapshot',
                         _read(dst, 3 * sio_base.GiB, 15))
        _write(dst, 0, b'snap sector')
        self.assertEqual(b'boot sector', _read(src, 0, 11))
        self.assertEqual(b'after  snapshot',
                         _read(src, 3 * sio_base.GiB, 15))
        self.assertLessEqual(_allocated(os.path.realpath(dst)), 4 * MiB)
        return os.path.realpath(src), os.path.realpath(dst)

    def test_default_storage(self):
        fix, raw = self.start()
        storage = fix.info['storage_dir']
        self.assertEqual(os.path.join(fix.info['state_dir'], 'volumes'),
                         storage)
        method = sdc.clone_support(storage)
        self.assertEqual(method, fix.info['clone_method'])
        src, dst = self.check_snapshot(fix, raw)
        self.assertEqual(storage, os.path.dirname(dst))
        stats = fix.admin.storage_stats()
        self.assertEqual(1, stats['snapshots'][method])
        self.assertEqual(1, sum(stats['snapshots'].values()))
        if method == sdc.SPARSE_COPY:
            # The data extents of the source when the snapshot was taken
            # (the snapshot's own write landed inside one of them).
            self.assertEqual(_data_bytes(dst),
                             stats['snapshot_bytes_copied'])
        else:
            self.assertEqual(0, stats['snapshot_bytes_copied'])

    def test_snapshot_of_unwritten_volume_copies_nothing(self):
        fix, raw = self.start()
        vol = raw.ok(raw.create('blank', 8 * KiB_PER_GiB))['id']
        snap = raw.ok(raw.snapshot(vol, 'blank-snap'))['volumeIdList'][0]
        dst = self.map(fix, raw, snap)
        self.assertEqual(b'\0' * 16, _read(dst, 0, 16))
        stats = fix.admin.storage_stats()
        self.assertEqual(0, sum(stats['snapshots'].values()))

    def test_storage_dir_subdirectory_removed_on_stop(self):
        parent = self.useFixture(fixtures.TempDir()).path
        emu = server.Emulator(storage_dir=parent).start()
        try:
            storage = emu.info()['storage_dir']
            self.assertEqual(parent, os.path.dirname(storage))
            self.assertTrue(os.path.isdir(storage))
        finally:
            emu.stop()
        self.assertFalse(os.path.exists(storage))
        self.assertEqual([], os.listdir(parent))

    def test_storage_dir_in_subprocess_mode(self):
        parent = self.useFixture(fixtures.TempDir()).path
        fix, raw = self.start(mode='subprocess', storage_dir=parent)
        storage = fix.info['storage_dir']
        self.assertEqual(parent, os.path.dirname(storage))
        self.check_snapshot(fix, raw)
        stats = fix.admin.storage_stats()
        self.assertEqual(storage, stats['storage_dir'])
        self.assertEqual(1, stats['snapshots'][fix.info['clone_method']])

    def test_reflink_storage_on_xfs(self):
        mnt = _xfs_mount(self)
        fix, raw = self.start(storage_dir=mnt)
        self.assertEqual(sdc.REFLINK, fix.info['clone_method'])
        src, dst = self.check_snapshot(fix, raw)
        self.assertEqual(mnt, os.path.dirname(os.path.dirname(dst)))
        stats = fix.admin.storage_stats()
        self.assertEqual({sdc.REFLINK: 1, sdc.SPARSE_COPY: 0},
                         stats['snapshots'])
        self.assertEqual(0, stats['snapshot_bytes_copied'])
