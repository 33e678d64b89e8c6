# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The volumes of an instance through its life on this host.

Map them where the instance runs (:func:`map_volumes`), unmap them where
it left (:func:`unmap_volumes`, which never fails the operation: see
:mod:`~nova.virt.libvirt.sio.stale`), delete them with the instance
(:func:`destroy_volumes`), and the driver's clean-up entry points built
on these (:func:`cleanup_volumes`, :func:`cleanup_resize`,
:func:`remove_rescue_volume`).
"""

from __future__ import absolute_import

import logging
import os

from oslo_config import cfg

from nova.virt.libvirt.sio import connection
from nova.virt.libvirt.sio import disks
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import resize
from nova.virt.libvirt.sio import stale
from nova.virt.libvirt.sio import volumes

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


def map_volumes(instance):
    """Map every disk volume of an instance to this host (idempotent).

    Snapshots and temporary volumes are never mapped. When one volume
    cannot be mapped, the volumes this call mapped are unmapped again
    before the error is raised; mappings that were there stay. A stale
    mapping of the instance recorded here (see :func:`unmap_volumes`) is
    forgotten: the instance uses this host again.

    :param instance: the instance.
    :returns: the device paths.
    """
    stale.forget_stale_mappings(instance.uuid)
    paths = []
    mapped = []
    try:
        for volume in disks.instance_volumes(instance, kinds=('',)):
            path, newly = volumes.map_and_wait(volume.id)
            paths.append(path)
            if newly:
                mapped.append(volume.id)
    except Exception:
        for volume_id in mapped:
            try:
                volumes.unmap_volume(volume_id)
            except Exception:
                LOG.exception('Could not unmap ScaleIO volume %s of '
                              'instance %s', volume_id, instance.uuid)
        raise
    LOG.debug('Mapped %d ScaleIO volumes of instance %s', len(paths),
              instance.uuid)
    return paths


def unmap_volumes(instance):
    """Unmap every volume of an instance from this host (idempotent).

    The volumes are the ones the gateway lists as mapped to this SDC (one
    call). This is clean-up after the instance left this host (live
    migration source, confirmed resize, evacuation): it never fails the
    operation. A volume that cannot be unmapped is logged and recorded
    under the instances directory;
    :func:`~.stale.sweep_stale_mappings` unmaps it later. A device that
    lingers after the unmap is only logged.

    :param instance: the instance.
    :returns: the number of volumes unmapped.
    """
    try:
        found = disks.mapped_here(instance)
    except Exception as exc:  # never fail the operation for a clean-up
        LOG.warning('Could not list the ScaleIO volumes mapped to this '
                    'host for instance %s (%s); its mappings here are '
                    'left for a later clean-up', instance.uuid, exc)
        stale.record_stale_mapping(instance.uuid, None)
        return 0
    count = 0
    for volume in found:
        if _unmap_or_record(instance.uuid, volume.id):
            count += 1
    if found:
        stale.forget_stale_mappings(instance.uuid, only_instance_wide=True)
    LOG.debug('Unmapped %d ScaleIO volumes of instance %s', count,
              instance.uuid)
    return count


def _unmap_or_record(instance_uuid, volume_id):
    """Unmap a volume here; on failure record it; return whether unmapped.
    """
    try:
        return volumes.unmap_volume(volume_id)
    except sio_exc.DeviceTimeout as exc:
        LOG.warning('ScaleIO volume %s of instance %s is unmapped but its '
                    'device is still there: %s', volume_id, instance_uuid,
                    exc)
        return True
    except Exception as exc:  # never fail the operation for a clean-up
        LOG.warning('Could not unmap ScaleIO volume %s of instance %s '
                    'from this host (%s); it is left for a later clean-up',
                    volume_id, instance_uuid, exc)
        stale.record_stale_mapping(instance_uuid, volume_id)
        return False


def destroy_volumes(instance):
    """Delete every volume of an instance, snapshots first (idempotent).

    The volumes mapped to this host come from one listing (they are
    unmapped everywhere, then deleted); the other disks the instance may
    have are looked up by name (:func:`~.disks.instance_volumes`).

    :param instance: the instance.
    :returns: the number of volumes deleted.
    """
    client = connection.get_client()
    try:
        mapped = disks.mapped_here(instance)
    except (sio_exc.SdcNotFound, sio_exc.SdcGuidUnavailable):
        mapped = []  # no usable SDC here: nothing can be mapped here
    mapped_ids = set(v.id for v in mapped)
    found = disks.instance_volumes(instance, known=mapped)
    plan = disks.disk_plan(instance)
    if plan is not None and resize.RESIZE_SNAPSHOT not in plan[1] and \
            volumes.lookup(instance.uuid, 'disk',
                           resize.RESIZE_SNAPSHOT) is not None:
        # The root disk's resize snapshot is made first and removed last
        # (see resize.snapshot_volumes): a resize left snapshots behind.
        LOG.warning('Instance %s has resize snapshots left; looking up '
                    'every volume name it may have', instance.uuid)
        names = set(v.name for v in found)
        found.extend(v for v in disks.probe_every_name(client, instance,
                                                       disks.KINDS)
                     if v.name not in names)
    found.sort(key=lambda v: v.kind == '')
    count = 0
    for volume in found:
        if volume.id in mapped_ids:
            try:
                client.unmap_volume(volume.id, all_sdcs=True)
            except sio_exc.VolumeNotFound:
                continue
        if volumes.delete_volume(volume.id):
            count += 1
    stale.forget_stale_mappings(instance.uuid)
    stale.forget_stale_volumes(instance.uuid)
    if count:
        LOG.info('Deleted %d ScaleIO volumes of instance %s', count,
                 instance.uuid)
    return count


def lives_here(instance):
    """Whether this host runs the instance and it is not moving away.

    :param instance: the instance.
    """
    from nova.compute import task_states
    if instance.host != CONF.host:
        return False
    return instance.task_state not in (task_states.RESIZE_REVERTING,)


def cleanup_volumes(instance, destroy_disks):
    """The ``cleanup``/``_cleanup`` hook.

    :param instance: the instance.
    :param destroy_disks: delete the volumes (instance deleted, rebuilt,
        shelve-offloaded, failed spawn); otherwise unmap them from this
        host unless the instance still lives here (evacuation source,
        live-migration rollback on the destination, resize revert on the
        destination). A hard reboot keeps its mappings.
    """
    if destroy_disks:
        try:
            return destroy_volumes(instance)
        except Exception:
            # The instance may be gone before anyone tries again (a failed
            # build is deleted by the API without a host): the image cache
            # pass deletes what is left (see stale.sweep_stale_volumes).
            stale.record_stale_volumes(instance.uuid)
            raise
    if not lives_here(instance):
        return unmap_volumes(instance)
    return 0


def copy_config_drive(instance, instance_dir, copy_file):
    """Fetch the config drive file of an instance from its source host.

    Config drives stay files in the instance directory; live migration
    with a shared block backend copies no files, so the destination pulls
    ``disk.config`` before the guest moves.

    :param instance: the migrating instance (``host`` is the source).
    :param instance_dir: the instance directory on this host.
    :param copy_file: ``copy_file(src, dst)`` that understands
        ``host:path`` sources, e.g. the driver's ``_remotefs.copy_file``.
    """
    src = '%s:%s' % (instance.host, os.path.join(instance_dir, 'disk.config'))
    LOG.debug('Copying the config drive of instance %s from %s',
              instance.uuid, instance.host)
    copy_file(src, instance_dir)


def cleanup_resize(instance):
    """The ``_cleanup_resize`` hook: a resize was confirmed on this host.

    Removes the resize snapshots and, when the instance moved to another
    host, this host's mappings.

    :param instance: the resized instance.
    """
    resize.remove_snapshots(instance)
    if instance.host != CONF.host:
        unmap_volumes(instance)


def remove_rescue_volume(instance):
    """Delete the rescue disk volume(s) of an instance (unrescue).

    :param instance: the instance.
    :returns: the number of volumes deleted.
    """
    rescue = ('disk.rescue', 'disk.config.rescue')
    known = [v for v in disks.mapped_here(instance)
             if v.disk_name in rescue]
    names = set(v.name for v in known)
    client = connection.get_client()
    name = volumes.volume_name(instance.uuid, 'disk.rescue')
    if name not in names:
        volume_id = client.get_volume_id(name)
        if volume_id is not None:
            known.append(volumes.Volume(name, 'disk.rescue', '', volume_id))
    count = 0
    for volume in known:
        if volumes.delete_volume(volume.id):
            count += 1
    return count
