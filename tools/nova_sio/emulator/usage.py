# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Bytes written into the emulator's volumes, counted at the storage.

A compute host writes into a volume through its device link, which
points at the volume's sparse backing file (see ``sdc.py``); nothing on
that path passes through the emulator. What reached the storage is read
from the backing files themselves: :class:`StorageMeter` takes the
blocks allocated to every backing file (``st_blocks * 512``) at a mark
and again later, and counts for each volume the growth since the mark.
A volume made after the mark starts from zero, a snapshot from the
blocks its backing file got when the emulator made it (copy-on-write
clone or data copy, recorded by the emulator as ``inherited``): those
blocks were not written through an SDC.

What this counts is allocation growth in file system blocks: data
written into holes. Rewriting blocks that are already allocated adds
nothing; :func:`child_write_bytes` (the kernel's write accounting of the
writer processes) counts those too.

The meter works on an emulator in this process (``Emulator``) or in
another one (``AdminClient``): both offer ``info()`` and
``storage_stats()``.
"""

import os
import resource

SUFFIX = '.img'
METHOD = 'growth of the st_blocks of the backing files'


def allocated(path):
    """Return the bytes allocated to ``path`` (0 when it is gone).

    :param path: a file.
    """
    try:
        return os.stat(path).st_blocks * 512
    except FileNotFoundError:
        return 0


def sample(directory):
    """Return ``{volume id: allocated bytes}`` for the backing files.

    :param directory: the emulator's ``storage_dir``.
    """
    result = {}
    for name in os.listdir(directory):
        if name.endswith(SUFFIX):
            result[name[:-len(SUFFIX)]] = allocated(
                os.path.join(directory, name))
    return result


class StorageMeter(object):
    """Count bytes written into the volumes between a mark and now.

    :param emulator: an ``Emulator`` or an ``AdminClient``.
    """

    def __init__(self, emulator):
        self.emulator = emulator
        self.directory = emulator.info()['storage_dir']

    def mark(self):
        """Return the allocation of every backing file now."""
        return sample(self.directory)

    def since(self, mark):
        """Return what was written since ``mark``.

        :param mark: a :meth:`mark` result.
        :returns: dict with ``bytes`` (total), ``volumes`` (volume id ->
            bytes, only volumes written to) and ``method``.
        """
        inherited = self.emulator.storage_stats().get('inherited', {})
        now = sample(self.directory)
        volumes = {}
        for volume_id, blocks in now.items():
            if volume_id in mark:
                start = mark[volume_id]
            else:
                start = inherited.get(volume_id, 0)
            grown = blocks - start
            if grown > 0:
                volumes[volume_id] = grown
        return {'bytes': sum(volumes.values()), 'volumes': volumes,
                'method': METHOD}


def child_write_bytes():
    """Bytes the reaped child processes of this one wrote to storage.

    The kernel's write accounting (``write_bytes`` of ``/proc/<pid>/io``)
    summed over the children that were waited for, from
    ``getrusage(RUSAGE_CHILDREN).ru_oublock`` (512-byte units). The
    difference around a step that runs ``qemu-img`` is what it wrote.
    """
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock * 512
