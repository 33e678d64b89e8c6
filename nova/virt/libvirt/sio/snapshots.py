# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Live snapshots: export a running guest's disk from a ScaleIO snapshot.

With ``[scaleio] live_snapshot`` the driver's ``snapshot`` does not
suspend the guest: a ScaleIO snapshot of the root disk's volume is taken
while the guest's file systems are frozen through the guest agent (when
the image has one), the guest is thawed at once, and the image is
exported from the snapshot, which is then unmapped and deleted.
"""

from __future__ import absolute_import

import logging

from oslo_config import cfg

from nova.virt.libvirt.sio import connection
from nova.virt.libvirt.sio import volumes
from nova.virt.libvirt.sio import vtree

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

TEMPORARY_SNAPSHOT = volumes.TEMPORARY_SNAPSHOT

# Errors of Nova's ``quiesce`` that mean "no guest agent to ask".
_NO_QUIESCE = ('InstanceQuiesceNotSupported', 'QemuGuestAgentNotEnabled',
               'NotImplementedError')


def export_from_snapshot(volume_id, instance_uuid, disk_name, export,
                         quiesce=None):
    """Export a disk from a ScaleIO snapshot taken now, then drop it.

    The snapshot is crash-consistent at the moment it is taken (or
    consistent for the guest's file systems when ``quiesce`` froze them),
    so the guest keeps running while ``export`` reads it.

    :param volume_id: the disk's volume id.
    :param instance_uuid: the instance UUID (names the snapshot).
    :param disk_name: the Nova disk name.
    :param export: ``export(device_path)`` reads the mapped snapshot.
    :param quiesce: optional ``quiesce()`` called just before the
        snapshot; it returns a ``thaw()`` callable (or None), which is
        called as soon as the snapshot exists or has failed.
    """
    client = connection.get_client()
    name = volumes.volume_name(instance_uuid, disk_name, 'temporary')
    stale = client.get_volume_id(name)
    if stale is not None:
        LOG.warning('Deleting stale temporary volume %s', name)
        volumes.delete_volume(stale)
    thaw = quiesce() if quiesce is not None else None
    try:
        snap_id = client.snapshot_volume(volume_id, name)
    finally:
        if thaw is not None:
            thaw()
    try:
        export(volumes.map_volume(snap_id))
    finally:
        try:
            volumes.unmap_volume(snap_id)
        finally:
            volumes.delete_volume(snap_id)
    LOG.info('Exported disk %s of instance %s from a ScaleIO snapshot',
             disk_name, instance_uuid)


def live_snapshot_allowed(source_type):
    """Whether the driver may snapshot a disk of this type live.

    ScaleIO disks are snapshotted live only with ``[scaleio]
    live_snapshot``; otherwise the driver takes its cold path (the guest
    is suspended while the disk is read). Other types are not affected.

    :param source_type: the disk type the driver found (``'sio'``...).
    """
    return source_type != 'sio' or bool(CONF.scaleio.live_snapshot)


def _image_property(image_meta, name):
    """Read an image property from an ImageMeta object or a dict."""
    if image_meta is None:
        return None
    props = getattr(image_meta, 'properties', None)
    if props is None and isinstance(image_meta, dict):
        props = image_meta.get('properties') or {}
    if props is None:
        return None
    if isinstance(props, dict):
        return props.get(name)
    try:
        return getattr(props, name) if props.obj_attr_is_set(name) else None
    except AttributeError:
        return None


def _truthy(value):
    if hasattr(value, 'lower'):
        return value.strip().lower() in ('1', 'true', 'yes', 'on', 'y')
    return bool(value)


def _quiescer(driver, context, instance, image_meta):
    """Return ``quiesce()`` for :func:`export_from_snapshot`.

    It freezes the guest's file systems through the guest agent when the
    image has one (``hw_qemu_guest_agent``) and returns the matching
    ``thaw()``. Without an agent, or when the agent does not answer, the
    snapshot is crash-consistent - unless the image sets
    ``os_require_quiesce``, then the error is raised and nothing is
    snapshotted.
    """
    def quiesce():
        if not _truthy(_image_property(image_meta, 'hw_qemu_guest_agent')):
            if _truthy(_image_property(image_meta, 'os_require_quiesce')):
                driver.quiesce(context, instance, image_meta)
                return _thawer(driver, context, instance, image_meta)
            LOG.info('Taking a crash-consistent live snapshot of instance '
                     '%s: its image has no guest agent', instance.uuid)
            return None
        try:
            driver.quiesce(context, instance, image_meta)
        except Exception as exc:
            if _truthy(_image_property(image_meta, 'os_require_quiesce')):
                raise
            level = (LOG.info if type(exc).__name__ in _NO_QUIESCE
                     else LOG.warning)
            level('Could not quiesce instance %s (%s); taking a '
                  'crash-consistent live snapshot', instance.uuid, exc)
            return None
        LOG.info('Quiesced instance %s for a live snapshot', instance.uuid)
        return _thawer(driver, context, instance, image_meta)
    return quiesce


def _thawer(driver, context, instance, image_meta):
    def thaw():
        try:
            driver.unquiesce(context, instance, image_meta)
        except Exception:
            LOG.exception('Could not thaw the file systems of instance %s '
                          'after its live snapshot', instance.uuid)
    return thaw


def live_snapshot(driver, context, instance, image_meta, disk, target,
                  out_format):
    """Export the root disk of a running guest without pausing it.

    A ScaleIO snapshot of the disk's volume is taken while the guest's
    file systems are frozen through the guest agent (when the image has
    one), the guest is thawed at once, and the image is exported from the
    snapshot, which is then unmapped and deleted.

    :param driver: the libvirt driver (its ``quiesce``/``unquiesce``).
    :param context: the request context.
    :param instance: the instance.
    :param image_meta: the image metadata the driver's ``quiesce`` takes.
    :param disk: the :class:`~nova.virt.libvirt.sio.image.Sio` root disk.
    :param target: the local file to write.
    :param out_format: the image format to write (``raw``, ``qcow2``...).
    :raises VTreeLimitReached: before the guest is frozen, when the vTree
        of the disk cannot take the temporary snapshot.
    """
    if CONF.scaleio.live_snapshot:
        vtree.check_snapshot_room(instance, disk_names=[disk.disk_name],
                                  kind=TEMPORARY_SNAPSHOT)
    disk.snapshot_extract(target, out_format,
                          quiesce=_quiescer(driver, context, instance,
                                            image_meta))
