# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""A scratch file system in a loop-mounted image file.

Gives the emulator a storage directory on a chosen file system, e.g.
XFS with reflink so that snapshots are copy-on-write clones::

    reason = loopfs.unavailable('xfs')
    if reason is None:
        with loopfs.LoopFilesystem('xfs') as mount_point:
            ...

Needs root, ``mkfs.<fstype>`` and loop devices. The image is a sparse
file; the file system is unmounted and the image removed on exit, also
when the body raises (``KeyboardInterrupt`` included).
"""

import os
import shutil
import subprocess
import tempfile
import time

GiB = 1024 ** 3

#: mkfs options per file system type.
MKFS_OPTIONS = {
    'xfs': ['-q', '-m', 'reflink=1'],
    'btrfs': ['-q'],
    'ext4': ['-q', '-F'],
}


class LoopFsError(Exception):
    """The loop file system could not be made or mounted."""


def unavailable(fstype='xfs'):
    """Return why a loop file system cannot be made here, or None.

    :param fstype: ``xfs``, ``btrfs`` or ``ext4``.
    """
    if fstype not in MKFS_OPTIONS:
        return 'unknown file system type %s' % fstype
    if os.geteuid() != 0:
        return 'mounting a loop file system needs root'
    if shutil.which('mkfs.' + fstype) is None:
        return 'mkfs.%s is not installed' % fstype
    if shutil.which('mount') is None or shutil.which('umount') is None:
        return 'mount/umount are not installed'
    if not os.path.exists('/dev/loop-control'):
        return 'no loop device support (/dev/loop-control missing)'
    return None


def fstype_of(path):
    """Return the type of the file system holding ``path`` (Linux).

    :param path: an existing path.
    :returns: e.g. ``'ext4'``, or None when ``/proc/self/mounts`` is not
        readable.
    """
    path = os.path.realpath(path)
    best, kind = '', None
    try:
        with open('/proc/self/mounts') as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace('\\040', ' ')
        inside = (path == point or
                  path.startswith(point.rstrip('/') + '/'))
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def _run(argv):
    proc = subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    if proc.returncode:
        raise LoopFsError('%s failed (%d): %s' % (
            ' '.join(argv), proc.returncode,
            proc.stdout.decode(errors='replace').strip()))


class LoopFilesystem(object):
    """Context manager: a mounted scratch file system; yields its path.

    :param fstype: ``xfs`` (with reflink), ``btrfs`` or ``ext4``.
    :param size: size of the sparse image file in bytes.
    :param parent: directory for the image and mount point (default: the
        system temporary directory).
    """

    def __init__(self, fstype='xfs', size=16 * GiB, parent=None):
        self.fstype = fstype
        self.size = size
        self.parent = parent
        self.workdir = None
        self.mount_point = None
        self.mounted = False

    def __enter__(self):
        reason = unavailable(self.fstype)
        if reason:
            raise LoopFsError(reason)
        self.workdir = tempfile.mkdtemp(prefix='sio-loopfs-',
                                        dir=self.parent)
        try:
            image = os.path.join(self.workdir, '%s.img' % self.fstype)
            with open(image, 'wb') as handle:
                handle.truncate(self.size)
            _run(['mkfs.' + self.fstype] + MKFS_OPTIONS[self.fstype] +
                 [image])
            self.mount_point = os.path.join(self.workdir, 'mnt')
            os.mkdir(self.mount_point)
            _run(['mount', '-o', 'loop', image, self.mount_point])
            self.mounted = True
        except BaseException:
            self.close()
            raise
        return self.mount_point

    def __exit__(self, *exc_info):
        self.close()
        return False

    def close(self):
        """Unmount (retrying, then lazily) and remove the image."""
        if self.mounted:
            for _attempt in range(5):
                if subprocess.call(['umount', self.mount_point],
                                   stderr=subprocess.DEVNULL) == 0:
                    break
                time.sleep(0.2)
            else:
                subprocess.call(['umount', '-l', self.mount_point])
            self.mounted = False
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
