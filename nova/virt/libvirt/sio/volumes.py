# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""One volume of an instance disk: its name and the primitives on it.

Every instance disk is one ScaleIO volume named by
:func:`~nova.virt.libvirt.sio.naming.volume_name` from the instance UUID,
the Nova disk name and a *kind*: ``''`` for the disk itself,
``'snapshot'`` for its resize snapshot, ``'temporary'`` for a live
snapshot or a volume being moved or restored. The functions here create,
map, unmap, grow and delete single volumes through the process-wide
client (:mod:`~nova.virt.libvirt.sio.connection`); the instance-level
operations are built on them.
"""

from __future__ import absolute_import

import logging
import os

from oslo_config import cfg

from nova.virt.libvirt.sio import capacity
from nova.virt.libvirt.sio import connection
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import flavors
from nova.virt.libvirt.sio import host as sio_host
from nova.virt.libvirt.sio import naming

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

GiB = flavors.GiB
RESIZE_SNAPSHOT = 'snapshot'
TEMPORARY_SNAPSHOT = 'temporary'
KINDS = ('', RESIZE_SNAPSHOT, TEMPORARY_SNAPSHOT)


class Volume(object):
    """A ScaleIO volume of an instance disk.

    :param name: the volume name.
    :param disk_name: the Nova disk name, e.g. ``disk.local``.
    :param kind: ``''``, ``'snapshot'`` or ``'temporary'``.
    :param volume_id: the ScaleIO volume id.
    """

    def __init__(self, name, disk_name, kind, volume_id):
        self.name = name
        self.disk_name = disk_name
        self.kind = kind
        self.id = volume_id

    def __repr__(self):
        return '<Volume %s %s>' % (self.name, self.id)


def volume_name(instance_uuid, disk_name, kind=''):
    """Return the volume name of an instance disk.

    :param instance_uuid: the instance UUID.
    :param disk_name: the Nova disk name.
    :param kind: ``''``, ``'snapshot'`` or ``'temporary'``.
    """
    return naming.volume_name(instance_uuid, disk_name,
                              prefix=CONF.scaleio.volume_name_prefix,
                              kind=kind)


def lookup(instance_uuid, disk_name, kind=''):
    """Return the id of an instance disk's volume, or None.

    :param instance_uuid: the instance UUID.
    :param disk_name: the Nova disk name.
    :param kind: ``''``, ``'snapshot'`` or ``'temporary'``.
    """
    return connection.get_client().get_volume_id(
        volume_name(instance_uuid, disk_name, kind))


def volume_size(volume_id):
    """Return the size of a volume in bytes.

    :param volume_id: the ScaleIO volume id.
    """
    info = connection.get_client().get_volume(volume_id)
    return int(info.get('sizeInKb') or 0) * 1024


def create_volume(instance_uuid, disk_name, size_bytes, flavor,
                  thin=None, kind=''):
    """Create the volume of a disk; return its id.

    :param instance_uuid: the instance UUID.
    :param disk_name: the Nova disk name.
    :param size_bytes: a multiple of 8 GiB (see
        :func:`~.flavors.checked_size`).
    :param flavor: the flavor whose extra specs pick domain, pool and
        provisioning.
    :param thin: force thin (True) or thick (False) provisioning.
    :param kind: ``''``, ``'snapshot'`` or ``'temporary'``.
    """
    client = connection.get_client()
    domain, pool, flavor_thin = flavors.storage_for(flavor)
    name = volume_name(instance_uuid, disk_name, kind)
    pool_id = client.get_pool_id(domain, pool)
    try:
        volume_id = client.create_volume(
            name, naming.size_in_gb(size_bytes), pool_id,
            thin=flavor_thin if thin is None else thin)
        capacity.capacity_changed()
        return volume_id
    except sio_exc.NameInUse:
        # An earlier attempt whose answer was lost made it already.
        volume_id = client.get_volume_id(name)
        if volume_id is None:
            raise
        return volume_id


def wait_for_growth(volume_id, size_bytes):
    """Make this host's device of a grown volume show its new size.

    The SDC shows the new size of a mapped volume only after a rescan,
    as os-brick does before it reads the size of an extended volume.
    Nothing happens when the volume has no device on this host: a later
    mapping shows the current size.

    :param volume_id: the volume that was extended.
    :param size_bytes: its new size.
    :returns: whether the device is here (and shows the new size).
    :raises DeviceTimeout: the device kept its old size.
    """
    path = connection.device_path(volume_id)
    if not os.path.exists(path):
        return False
    if connection.device_size(path) >= size_bytes:
        return True
    LOG.info('Rescanning the SDC for the new size of ScaleIO volume %s',
             volume_id)
    connection.rescan()
    sio_host.wait_for_size(path, size_bytes,
                           CONF.scaleio.device_wait_timeout,
                           read_size=connection.device_size)
    return True


def map_and_wait(volume_id, wait=True):
    """Map a volume here; return ``(device path, newly mapped)``.

    A volume that is mapped already but has no device on this host may
    be in use (a guest whose XML names the device), so it is never
    unmapped to repair the device: the SDC is rescanned and the device
    waited for. When the device of a volume this call mapped does not
    appear in time the volume is unmapped from this SDC before the error
    is raised, so that no mapping without a device is left behind; a
    mapping that was there before stays.

    :param volume_id: the ScaleIO volume id.
    :param wait: wait until the device node is there.
    :raises DeviceTimeout: the device did not appear.
    """
    client = connection.get_client()
    guid = connection.sdc_guid()
    newly = client.map_volume(volume_id, guid=guid, allow_multiple=True)
    if newly:
        LOG.debug('Mapped ScaleIO volume %s', volume_id)
    path = connection.device_path(volume_id)
    if not wait:
        return path, newly
    if not newly and not os.path.exists(path):
        LOG.warning('ScaleIO volume %s is mapped to this host but %s is '
                    'missing; rescanning the SDC', volume_id, path)
        connection.rescan()
    try:
        sio_host.wait_for_device(path, CONF.scaleio.device_wait_timeout)
    except sio_exc.DeviceTimeout:
        if not newly:
            LOG.error('The device of ScaleIO volume %s, mapped to this '
                      'host before, did not appear after a rescan; the '
                      'mapping is left in place', volume_id)
            raise
        LOG.error('The device of ScaleIO volume %s did not appear; '
                  'unmapping it from this host', volume_id)
        try:
            client.unmap_volume(volume_id, guid=guid)
        except sio_exc.SioError:
            LOG.exception('Could not unmap ScaleIO volume %s', volume_id)
        raise
    return path, newly


def map_volume(volume_id, wait=True):
    """Map a volume to this host's SDC; return its device path.

    :param volume_id: the ScaleIO volume id.
    :param wait: wait until the device node is there.
    :raises DeviceTimeout: the device did not appear; the volume is
        unmapped from this host again.
    """
    return map_and_wait(volume_id, wait=wait)[0]


def unmap_elsewhere(volume_id):
    """Unmap a volume from every SDC but this host's; return how many.

    For an instance that runs here (hard reboot): a mapping left on
    another host by a failed move would otherwise outlive it.

    :param volume_id: the ScaleIO volume id.
    """
    client = connection.get_client()
    here = connection.sdc_id()
    count = 0
    for other in client.get_mapped_sdc_ids(volume_id):
        if other and other != here:
            try:
                if client.unmap_volume(volume_id, sdc_id=other):
                    count += 1
            except sio_exc.NotFound:
                continue
    if count:
        LOG.info('Unmapped ScaleIO volume %s from %d other hosts',
                 volume_id, count)
    return count


def unmap_volume(volume_id, wait=True):
    """Unmap a volume from this host's SDC (no error if it was not).

    :param volume_id: the ScaleIO volume id.
    :param wait: wait until the device node is gone.
    """
    client = connection.get_client()
    try:
        unmapped = client.unmap_volume(volume_id, guid=connection.sdc_guid())
    except sio_exc.VolumeNotFound:
        return False
    if unmapped and wait:
        sio_host.wait_for_removal(connection.device_path(volume_id),
                                  CONF.scaleio.device_wait_timeout)
    return unmapped


def delete_volume(volume_id):
    """Unmap a volume everywhere and delete it; False if it was gone.

    :param volume_id: the ScaleIO volume id.
    """
    try:
        return connection.get_client().delete_volume(volume_id, unmap=True)
    except sio_exc.VolumeNotFound:
        return False
    finally:
        capacity.capacity_changed()
