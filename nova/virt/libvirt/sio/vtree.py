# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Room for snapshots in a volume's vTree.

A volume and all its snapshots form a vTree, which holds a limited number
of snapshots (``[scaleio] vtree_snapshot_limit``). A resize snapshot, a
live snapshot and every root disk booted by zero-copy from a base volume
take one; an operation that needs one is refused before it changes
anything when the vTree is full (:func:`check_snapshot_room`).
"""

from __future__ import absolute_import

import logging

from oslo_config import cfg

from nova.virt.libvirt.sio import connection
from nova.virt.libvirt.sio import disks
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import volumes

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


def volume_count(client, volume_id):
    """Return how many volumes share the vTree of ``volume_id``.

    The figure is ``numOfVolumes`` of the vTree's statistics, where
    Cinder's PowerFlex driver reads it too; the vTree object is read when
    the statistics lack it.

    :param client: the gateway client.
    :param volume_id: a volume of the vTree.
    :raises MalformedResponse: neither has the figure.
    """
    info = client.get_volume(volume_id)
    vtree_id = info.get('vtreeId')
    if not vtree_id:
        raise sio_exc.MalformedResponse(method='GET', path=volume_id,
                                        reason='no vtreeId')
    path = '/api/instances/VTree::%s' % vtree_id
    for where in (path + '/relationships/Statistics', path):
        found = client._request('GET', where, context={'volume': volume_id},
                                not_found=sio_exc.VolumeNotFound,
                                expect=dict)
        if found.get('numOfVolumes') is not None:
            return int(found['numOfVolumes'])
    raise sio_exc.MalformedResponse(method='GET', path=path,
                                    reason='no numOfVolumes')


def snapshot_count(client, volume_id):
    """Return how many snapshots the vTree of ``volume_id`` holds.

    :param client: the gateway client.
    :param volume_id: a volume of the vTree.
    """
    return max(volume_count(client, volume_id) - 1, 0)


def check_snapshot_room(instance, disk_names=None,
                        kind=volumes.RESIZE_SNAPSHOT):
    """Refuse a snapshot of an instance's disks that its vTree cannot take.

    Meant to run before anything is changed: before the power-off of a
    resize (its resize snapshots are taken on the destination) and
    before the freeze of a live snapshot. A disk whose vTree holds
    ``[scaleio] vtree_snapshot_limit`` snapshots has no room, unless a
    snapshot of the same kind left by an earlier operation is there to
    be replaced.

    :param instance: the instance.
    :param disk_names: the disks to check (default: every disk volume).
    :param kind: the snapshot to be taken: ``'snapshot'`` (resize) or
        ``'temporary'`` (live snapshot).
    :raises VTreeLimitReached: naming the first disk volume without room.
    """
    client = connection.get_client()
    limit = CONF.scaleio.vtree_snapshot_limit
    for volume in disks.instance_volumes(instance, kinds=('',)):
        if disk_names is not None and volume.disk_name not in disk_names:
            continue
        try:
            count = snapshot_count(client, volume.id)
        except sio_exc.VolumeNotFound:
            continue
        except sio_exc.MalformedResponse as exc:
            LOG.warning('Cannot count the snapshots in the vTree of ScaleIO '
                        'volume %s: %s', volume.name, exc)
            continue
        if count < limit:
            continue
        stale = client.get_volume_id(volumes.volume_name(
            instance.uuid, volume.disk_name, kind))
        if stale is not None:
            continue
        LOG.warning('The vTree of ScaleIO volume %s holds %d snapshots, '
                    '[scaleio] vtree_snapshot_limit is %d', volume.name,
                    count, limit)
        raise sio_exc.VTreeLimitReached(volume=volume.name)
