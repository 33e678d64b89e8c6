# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Resize: the new flavor's check, the resize snapshots and the revert.

A resize keeps the volumes (the storage is shared), so a revert returns
to ScaleIO snapshots taken before the disks change: the *resize
snapshots*, one per disk, named with the ``snapshot`` kind. The root
disk's snapshot is made first and removed last, so that while any resize
snapshot is left the root disk's is, which is what the clean-up of a
deleted instance looks for. A flavor that names another pool moves the
disk into it (:func:`move_volume`); the snapshot stays in the old pool.
"""

from __future__ import absolute_import

import logging

from nova.virt.libvirt.sio import capacity
from nova.virt.libvirt.sio import connection
from nova.virt.libvirt.sio import disks
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import flavors
from nova.virt.libvirt.sio import naming
from nova.virt.libvirt.sio import volumes
from nova.virt.libvirt.sio import vtree

LOG = logging.getLogger(__name__)

RESIZE_SNAPSHOT = volumes.RESIZE_SNAPSHOT


def check_resize(instance, flavor, booted_from_volume=False):
    """The ``migrate_disk_and_power_off`` check of a resize's new flavor.

    Run before the guest is powered off, so that a flavor whose disks
    break the 8 GiB rule fails the resize at once and Nova rolls it back
    (the guest keeps running on the source) instead of failing in
    ``finish_migration``. The disks' vTrees are checked too: a disk whose
    vTree cannot take the resize snapshot (see
    :func:`~.vtree.check_snapshot_room`) refuses the resize the same way.

    :param instance: the instance being resized (its current flavor).
    :param flavor: the new flavor.
    :param booted_from_volume: the root disk is a Cinder volume (its size
        is not checked).
    :raises InstanceFaultRollback: wrapping ``ResizeError`` with the
        reason, the exception Nova's compute manager rolls back on.
    """
    disk_names = ['disk.local', 'disk.swap']
    if not booted_from_volume:
        disk_names.append('disk')
    try:
        flavors.check_flavor_sizes(flavor, disk_names=disk_names)
        vtree.check_snapshot_room(instance, kind=RESIZE_SNAPSHOT)
    except (sio_exc.InvalidSize, sio_exc.VTreeLimitReached) as exc:
        from nova import exception as nova_exception
        LOG.warning('Refusing to resize instance %s: %s',
                    getattr(instance, 'uuid', '?'), exc)
        raise nova_exception.InstanceFaultRollback(
            nova_exception.ResizeError(reason=str(exc)))


def move_volume(instance, disk_name, flavor, copy):
    """Move a disk's volume into the pool its flavor asks for.

    A resize to a flavor with other ``sio:pd_name`` / ``sio:sp_name``
    extra specs copies the disk into a temporary volume of the new pool,
    deletes the old volume and gives the new one its name. The resize
    snapshot taken before stays in the old pool, so a revert still finds
    the old data. Nothing happens when the volume is in the right pool.

    :param instance: the instance being resized.
    :param disk_name: the Nova disk name.
    :param flavor: the new flavor.
    :param copy: ``copy(source_device, target_device)``, run as root.
    :returns: the id of the disk's volume afterwards.
    """
    client = connection.get_client()
    name = volumes.volume_name(instance.uuid, disk_name)
    old_id = client.get_volume_id(name)
    if old_id is None:
        raise sio_exc.VolumeNotFound(volume=name)
    domain, pool, thin = flavors.storage_for(flavor)
    pool_id = client.get_pool_id(domain, pool)
    info = client.get_volume(old_id)
    if info.get('storagePoolId') in (None, pool_id):
        return old_id
    size = int(info.get('sizeInKb') or 0) * 1024
    temp_name = volumes.volume_name(instance.uuid, disk_name, 'temporary')
    stale = client.get_volume_id(temp_name)
    if stale is not None:
        volumes.delete_volume(stale)
    LOG.info('Moving ScaleIO volume %s to pool %s/%s', name, domain, pool)
    new_id = client.create_volume(temp_name, naming.size_in_gb(size),
                                  pool_id, thin=thin)
    capacity.capacity_changed()
    try:
        copy(volumes.map_volume(old_id), volumes.map_volume(new_id))
    except Exception:
        volumes.delete_volume(new_id)
        raise
    volumes.delete_volume(old_id)
    client.rename_volume(new_id, name)
    return new_id


def snapshot_volumes(instance):
    """Take the resize snapshot of every disk volume of an instance.

    A snapshot left by an earlier resize is replaced, so that a revert
    always returns to the state before this resize.

    :param instance: the instance being resized.
    :returns: the names of the snapshots.
    """
    client = connection.get_client()
    names = []
    found = disks.instance_volumes(instance, kinds=('',))
    # The root disk first: see remove_snapshots.
    found.sort(key=lambda v: (v.disk_name != 'disk', v.disk_name))
    for volume in found:
        snap_name = volumes.volume_name(instance.uuid, volume.disk_name,
                                        RESIZE_SNAPSHOT)
        stale = client.get_volume_id(snap_name)
        if stale is not None:
            LOG.warning('Replacing stale resize snapshot %s', snap_name)
            volumes.delete_volume(stale)
        client.snapshot_volume(volume.id, snap_name)
        capacity.capacity_changed()
        names.append(snap_name)
    return names


def remove_snapshots(instance):
    """Delete the resize snapshots of an instance (idempotent).

    The snapshot of the root disk goes last (and is made first): while
    any resize snapshot is left, the root disk's is, which is what
    :func:`~.lifecycle.destroy_volumes` looks for.

    :param instance: the instance.
    :returns: the number of snapshots deleted.
    """
    count = 0
    found = disks.instance_volumes(instance, kinds=(RESIZE_SNAPSHOT,))
    found.sort(key=lambda v: (v.disk_name == 'disk', v.disk_name))
    for volume in found:
        if volumes.delete_volume(volume.id):
            count += 1
    return count


def rollback_pending(instance):
    """Whether a revert of the instance stopped half-way.

    True when a disk has no volume under its own name but a temporary
    volume and its resize snapshot (see :func:`rollback_snapshots`).

    :param instance: the instance.
    """
    by_disk = {}
    for volume in disks.instance_volumes(instance):
        by_disk.setdefault(volume.disk_name, set()).add(volume.kind)
    return any('' not in kinds and 'temporary' in kinds and
               RESIZE_SNAPSHOT in kinds for kinds in by_disk.values())


def rollback_snapshots(instance, map_here=True):
    """Return every disk of an instance to its resize snapshot.

    Disks with a snapshot get it back under their own name; disks without
    one were made by the resize and are deleted. The steps keep a disk
    volume or its data under a known name at every moment: the current
    volume is renamed to its temporary (``#``) name, the snapshot takes
    the disk name, and the temporary volume is deleted last. A call after
    a crash finishes the half-done revert. Nothing happens when the
    instance has neither a snapshot nor a temporary volume.

    :param instance: the instance whose resize is reverted.
    :param map_here: map the restored volumes to this host.
    :returns: the number of disks restored in this call.
    """
    client = connection.get_client()
    by_disk = {}
    for volume in disks.instance_volumes(instance):
        by_disk.setdefault(volume.disk_name, {})[volume.kind] = volume
    snapped = sorted(d for d, kinds in by_disk.items()
                     if RESIZE_SNAPSHOT in kinds)
    pending = sorted(d for d, kinds in by_disk.items()
                     if 'temporary' in kinds and
                     (RESIZE_SNAPSHOT in kinds or '' in kinds))
    if not snapped and not pending:
        return 0
    if snapped:
        # Disks the resize made (no snapshot, not being restored).
        for disk_name, kinds in sorted(by_disk.items()):
            if (RESIZE_SNAPSHOT not in kinds and
                    'temporary' not in kinds and '' in kinds):
                volumes.delete_volume(kinds[''].id)
    restored = 0
    for disk_name in snapped:
        kinds = by_disk[disk_name]
        temp_name = volumes.volume_name(instance.uuid, disk_name,
                                        'temporary')
        if '' in kinds:
            if 'temporary' in kinds:
                # Left by an earlier failure (e.g. a pool move).
                volumes.delete_volume(kinds['temporary'].id)
            client.rename_volume(kinds[''].id, temp_name)
            kinds['temporary'] = volumes.Volume(
                temp_name, disk_name, 'temporary', kinds.pop('').id)
        snap = kinds.pop(RESIZE_SNAPSHOT)
        client.rename_volume(snap.id,
                             volumes.volume_name(instance.uuid, disk_name))
        kinds[''] = snap
        restored += 1
    for disk_name, kinds in sorted(by_disk.items()):
        temp = kinds.get('temporary')
        if temp is not None and '' in kinds and \
                (disk_name in snapped or disk_name in pending):
            volumes.delete_volume(temp.id)
    if map_here:
        for disk_name in sorted(set(snapped) | set(pending)):
            volumes.map_volume(by_disk[disk_name][''].id)
    LOG.info('Restored %d ScaleIO volumes of instance %s from their resize '
             'snapshots', restored, instance.uuid)
    return restored
