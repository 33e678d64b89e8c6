# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Mappings left on this host after their instance moved away.

Unmapping the volumes of an instance that left this host never fails the
operation. A mapping that could not be removed is recorded as an empty
file ``<instance uuid>.<volume id>`` (``.all`` when not even the list of
mapped volumes could be read) under
``<instances_path>/_sio_stale_mappings``; :func:`sweep_stale_mappings`
unmaps them at the next image cache manager pass.

Deleting the volumes of an instance (a failed spawn, a deleted or
shelved-offloaded instance) can fail too, while the gateway is away. The
instance is then recorded as an empty file ``<instance uuid>`` under
``<instances_path>/_sio_stale_volumes``; :func:`sweep_stale_volumes`
deletes its volumes at a later pass, once Nova no longer lists the
instance on this host and none of them is mapped to another host's SDC
(an instance rebuilt elsewhere keeps its volumes).
"""

from __future__ import absolute_import

import logging
import os

from oslo_config import cfg

from nova.virt.libvirt.sio import connection
from nova.virt.libvirt.sio import disks
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import flavors
from nova.virt.libvirt.sio import volumes

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

STALE_DIR = '_sio_stale_mappings'
STALE_VOLUMES_DIR = '_sio_stale_volumes'
_ALL = 'all'


def _stale_dir(name=STALE_DIR):
    try:
        base = CONF.instances_path
    except (AttributeError, cfg.NoSuchOptError):
        return None
    return os.path.join(base, name) if base else None


def _touch(directory, name, what):
    path = os.path.join(directory, name)
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory)
        with open(path, 'a'):
            pass
    except (IOError, OSError) as exc:
        LOG.warning('Could not record the stale %s %s: %s', what, path, exc)


def record_stale_mapping(instance_uuid, volume_id):
    """Record a mapping to remove later (None: all of the instance's).

    :param instance_uuid: the instance the volume belongs to.
    :param volume_id: the volume id, or None.
    """
    directory = _stale_dir()
    if directory is not None:
        _touch(directory, '%s.%s' % (instance_uuid, volume_id or _ALL),
               'mapping')


def stale_mappings():
    """Return the recorded ``[(instance_uuid, volume_id or None)]``."""
    directory = _stale_dir()
    try:
        names = os.listdir(directory) if directory else ()
    except (IOError, OSError):
        return []
    found = []
    for name in sorted(names):
        owner, _sep, volume_id = name.partition('.')
        if owner and volume_id:
            found.append((owner, None if volume_id == _ALL else volume_id))
    return found


def _drop_stale(instance_uuid, volume_id):
    try:
        os.unlink(os.path.join(_stale_dir(), '%s.%s' % (
            instance_uuid, volume_id or _ALL)))
    except (IOError, OSError, TypeError, AttributeError):
        pass


def forget_stale_mappings(instance_uuid, only_instance_wide=False):
    """Drop the records of an instance (it uses this host again).

    :param instance_uuid: the instance UUID.
    :param only_instance_wide: drop only the "all mappings" record.
    """
    for owner, volume_id in stale_mappings():
        if owner == str(instance_uuid) and \
                (volume_id is None or not only_instance_wide):
            _drop_stale(owner, volume_id)


class _Owner(object):
    """The part of an instance :func:`~.disks.mapped_here` reads."""

    def __init__(self, uuid):
        self.uuid = uuid


def sweep_stale_mappings(all_instances):
    """Remove the recorded stale mappings of this host; never raises.

    A record whose instance lives on this host again (or is moving here)
    is dropped without unmapping anything. Other records are unmapped; a
    record stays until its unmap succeeds.

    :param all_instances: the instances Nova's image cache manager sees.
    :returns: the number of volumes unmapped.
    """
    records = stale_mappings()
    if not records:
        return 0
    here = {}
    for instance in all_instances or ():
        if flavors.field(instance, 'host') == CONF.host or \
                flavors.field(instance, 'task_state') == 'migrating':
            here[str(flavors.field(instance, 'uuid'))] = instance
    count = 0
    for owner, volume_id in records:
        if owner in here:
            _drop_stale(owner, volume_id)
            continue
        try:
            if volume_id is None:
                ids = [v.id for v in disks.mapped_here(_Owner(owner))]
            else:
                ids = [volume_id]
            for one in ids:
                try:
                    if volumes.unmap_volume(one):
                        count += 1
                except sio_exc.DeviceTimeout:
                    count += 1  # unmapped; the device lingers
                except sio_exc.VolumeNotFound:
                    pass
        except Exception as exc:  # tried again at the next pass
            LOG.warning('Could not remove the stale mapping of instance %s '
                        '(%s): %s', owner, volume_id or 'all volumes', exc)
            continue
        _drop_stale(owner, volume_id)
        LOG.info('Removed the stale ScaleIO mapping of instance %s (%s) '
                 'from this host', owner, volume_id or 'all volumes')
    return count


def record_stale_volumes(instance_uuid):
    """Record an instance whose volumes could not be deleted.

    :param instance_uuid: the instance the volumes belong to.
    """
    directory = _stale_dir(STALE_VOLUMES_DIR)
    if directory is not None:
        _touch(directory, str(instance_uuid), 'volumes of')


def stale_volume_owners():
    """Return the recorded instance UUIDs whose volumes are left."""
    directory = _stale_dir(STALE_VOLUMES_DIR)
    try:
        return sorted(os.listdir(directory)) if directory else []
    except (IOError, OSError):
        return []


def forget_stale_volumes(instance_uuid):
    """Drop the record of an instance (its volumes are handled).

    :param instance_uuid: the instance UUID.
    """
    try:
        os.unlink(os.path.join(_stale_dir(STALE_VOLUMES_DIR),
                               str(instance_uuid)))
    except (IOError, OSError, TypeError, AttributeError):
        pass


def sweep_stale_volumes(all_instances):
    """Delete the recorded volumes left by failed deletions; never raises.

    A record whose instance Nova still lists here is kept: the
    instance's own deletion deletes its volumes and drops the record
    (:func:`~.lifecycle.destroy_volumes`). Otherwise every volume the
    instance may have is looked up by name and deleted, unless one is
    mapped to another host's SDC (the instance was built or moved
    elsewhere): then nothing is deleted and the record is dropped. A
    gateway error keeps the record for the next pass.

    :param all_instances: the instances Nova's image cache manager sees.
    :returns: the number of volumes deleted.
    """
    owners = stale_volume_owners()
    if not owners:
        return 0
    listed = set(str(flavors.field(instance, 'uuid'))
                 for instance in all_instances or ())
    count = 0
    for owner in owners:
        if owner in listed:
            continue  # its own deletion runs destroy_volumes again
        try:
            client = connection.get_client()
            found = disks.probe_every_name(client, _Owner(owner),
                                           disks.KINDS)
            mine = connection.sdc_id()
            elsewhere = [v for v in found
                         if set(client.get_mapped_sdc_ids(v.id)) - {mine}]
            if elsewhere:
                LOG.info('Volumes of instance %s are mapped to another host '
                         '(%s); not deleting them', owner,
                         ', '.join(v.name for v in elsewhere))
                forget_stale_volumes(owner)
                continue
            found.sort(key=lambda v: v.kind == '')  # snapshots first
            for volume in found:
                if volumes.delete_volume(volume.id):
                    count += 1
        except Exception as exc:  # tried again at the next pass
            LOG.warning('Could not delete the stale ScaleIO volumes of '
                        'instance %s: %s', owner, exc)
            continue
        forget_stale_volumes(owner)
        LOG.info('Deleted the stale ScaleIO volumes of instance %s', owner)
    return count
