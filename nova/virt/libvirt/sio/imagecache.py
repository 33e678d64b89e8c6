# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The image cache manager pass for ScaleIO: unused base volumes.

The libvirt driver's ``manage_image_cache`` calls
:func:`manage_base_volumes` after Nova's own pass over the image cache.
It removes the stale mappings recorded on this host, the abandoned fills
of base volumes, and the base volumes of the images this node no longer
uses (see :mod:`~nova.virt.libvirt.sio.zerocopy` for the record of the
images this host booted). A base volume is deleted only when no root
disk anywhere is a snapshot of it.
"""

from __future__ import absolute_import

import logging
import os
import time

from oslo_config import cfg

from nova.virt.libvirt.sio import capacity
from nova.virt.libvirt.sio import connection
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import stale
from nova.virt.libvirt.sio import volumes
from nova.virt.libvirt.sio import vtree
from nova.virt.libvirt.sio import zerocopy

LOG = logging.getLogger(__name__)
CONF = cfg.CONF


def _cache_option(name, default):
    """Read an image cache option from ``[image_cache]`` or ``DEFAULT``.

    The options moved to the ``[image_cache]`` group in Ussuri.
    """
    group = getattr(CONF, 'image_cache', None)
    if group is not None:
        try:
            return getattr(group, name)
        except (AttributeError, cfg.NoSuchOptError):
            pass
    try:
        return getattr(CONF, name)
    except (AttributeError, cfg.NoSuchOptError):
        return default


def _existing_pool_ids(client, pools=None):
    """Yield the ids of the pools that exist, skipping unknown ones.

    :param client: the gateway client.
    :param pools: ``(domain, pool)`` pairs; default
        :func:`~.capacity.served_pools`.
    """
    for domain, pool in pools or capacity.served_pools():
        try:
            yield client.get_pool_id(domain, pool)
        except sio_exc.NotFound:
            continue


def remove_unused_base_volumes(image_ids, pools=None):
    """Delete the base volumes no root disk is a snapshot of.

    Meant for Nova's image cache manager: it passes the images it no
    longer needs on this node; a base volume is deleted only when its
    vTree holds no other volume, whichever host made them. The remaining
    generations are renamed down so that they stay numbered without gaps.

    :param image_ids: Glance image ids to look at.
    :param pools: ``(domain, pool)`` pairs; default
        :func:`~.capacity.served_pools`.
    :returns: the names of the deleted base volumes.
    """
    client = connection.get_client()
    removed = []
    for pool_id in _existing_pool_ids(client, pools):
        for image_id in image_ids:
            kept = []
            for generation, volume_id in zerocopy.base_volumes(image_id,
                                                               pool_id):
                name = zerocopy.base_volume_name(image_id, pool_id,
                                                 generation)
                try:
                    in_use = vtree.volume_count(client, volume_id) > 1
                except sio_exc.VolumeNotFound:
                    continue
                if in_use:
                    kept.append((generation, volume_id))
                elif volumes.delete_volume(volume_id):
                    LOG.info('Deleted unused ScaleIO base volume %s of '
                             'image %s', name, image_id)
                    removed.append(name)
            for wanted, (generation, volume_id) in enumerate(kept):
                if wanted != generation:
                    client.rename_volume(
                        volume_id, zerocopy.base_volume_name(
                            image_id, pool_id, wanted))
    return removed


def remove_stale_fills(image_ids, pools=None):
    """Delete the stale ``#`` volumes of images.

    See :func:`~.zerocopy.stale_fill` for when a fill is stale.

    :param image_ids: Glance image ids to look at.
    :param pools: ``(domain, pool)`` pairs; default
        :func:`~.capacity.served_pools`.
    :returns: the names of the deleted ``#`` volumes.
    """
    client = connection.get_client()
    removed = []
    for pool_id in _existing_pool_ids(client, pools):
        for image_id in image_ids:
            for name, fill_id in zerocopy.fills(client, image_id, pool_id):
                reason = zerocopy.stale_fill(client, fill_id)
                if reason is not None and zerocopy.remove_stale_fill(
                        name, fill_id, reason):
                    removed.append(name)
    return removed


def _image_ref(instance):
    try:
        return instance.image_ref
    except AttributeError:
        return instance.get('image_ref')


def manage_base_volumes(all_instances):
    """Remove the base volumes of images this node no longer uses.

    Called by the libvirt driver's ``manage_image_cache`` after Nova's own
    image cache manager pass, with the same instances. It honours
    ``remove_unused_base_images`` and
    ``remove_unused_original_minimum_age_seconds`` (counted from the
    last boot from the image on this host). A base volume is deleted only
    when no root disk anywhere is a snapshot of it
    (:func:`remove_unused_base_volumes`); the record of an image is
    dropped once none of its base volumes (or fills) remain. Stale fills
    (:func:`remove_stale_fills`) of every recorded image are removed at
    each pass, whatever these options say. Gateway errors are logged and
    the image is tried again at the next pass. The stale mappings of this
    host are swept first (:func:`~.stale.sweep_stale_mappings`), then the
    volumes a failed deletion left (:func:`~.stale.sweep_stale_volumes`).

    :param all_instances: the instances Nova's image cache manager sees.
    :returns: the names of the deleted base volumes and stale fills.
    """
    stale.sweep_stale_mappings(all_instances)
    stale.sweep_stale_volumes(all_instances)
    recorded = zerocopy.recorded_base_images()
    if not recorded:
        return []
    removed = []
    for image_id in sorted(recorded):
        try:
            removed.extend(remove_stale_fills([image_id]))
        except sio_exc.SioError as exc:
            LOG.warning('Could not look for abandoned fills of the base '
                        'volumes of image %s: %s', image_id, exc)
    if not _cache_option('remove_unused_base_images', True):
        LOG.debug('remove_unused_base_images is off; keeping base volumes')
        return removed
    min_age = int(_cache_option(
        'remove_unused_original_minimum_age_seconds', 86400))
    in_use = set(_image_ref(instance) for instance in all_instances)
    now = time.time()
    for image_id, last_use in sorted(recorded.items()):
        if image_id in in_use:
            zerocopy.record_base_image(image_id)
            continue
        if now - last_use < min_age:
            continue
        try:
            removed.extend(remove_unused_base_volumes([image_id]))
            remaining = _remaining_base_volumes(image_id)
        except sio_exc.SioError as exc:
            LOG.warning('Could not remove the base volumes of image %s: '
                        '%s', image_id, exc)
            continue
        if remaining:
            LOG.debug('Image %s still has %d base volumes in use',
                      image_id, remaining)
            continue
        try:
            os.unlink(os.path.join(zerocopy.registry_dir(), image_id))
        except (IOError, OSError):
            pass
    return removed


def _remaining_base_volumes(image_id):
    client = connection.get_client()
    count = 0
    for domain, pool in capacity.served_pools():
        try:
            pool_id = client.get_pool_id(domain, pool)
        except sio_exc.NotFound:
            continue
        count += len(zerocopy.base_volumes(image_id, pool_id))
        count += len(zerocopy.fills(client, image_id, pool_id))
    return count
