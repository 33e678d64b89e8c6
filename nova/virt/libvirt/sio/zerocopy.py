# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Zero-copy boot: root disks as snapshots of per-image base volumes.

With ``[scaleio] zero_copy_boot`` the image of a root disk is copied once
per pool into a base volume, and every root disk is a ScaleIO snapshot
of it. A vTree holds a limited number of snapshots
(``[scaleio] vtree_snapshot_limit``), and the resize and live snapshots
of the instances booted from a base volume belong to its vTree too, so
boots stop at ``zero_copy_max_vtree_snapshots`` and fill a new base
volume (the next *generation*). Generations are numbered from 0 without
gaps: lookups probe 0, 1, ... up to the first miss.

A base volume being filled has a ``#`` name. A fill is *stale* when its
filler is gone: the ``#`` volume is mapped to this host's SDC but no
fill of this process runs (nova-compute stopped mid-fill), or it is
older than ``zero_copy_fill_timeout`` by the gateway's creation time.
A stale fill is removed and filled again by the next boot; creating
the ``#`` volume is the lock, so of two hosts taking over only one
fills. The image cache pass removes stale fills too
(:mod:`~nova.virt.libvirt.sio.imagecache`).

Base volumes are found by name, never by listing the system, so each
compute host keeps a record of the images it booted by zero-copy: an
empty file per image id under ``<instances_path>/_sio_base_volumes``,
touched on every use (:func:`record_base_image`).
"""

from __future__ import absolute_import

import base64
import hashlib
import logging
import os
import time

from oslo_config import cfg

from nova.virt.libvirt.sio import capacity
from nova.virt.libvirt.sio import connection
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import flavors
from nova.virt.libvirt.sio import naming
from nova.virt.libvirt.sio import volumes
from nova.virt.libvirt.sio import vtree

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

BASE_CODE = 'B'
MAX_GENERATIONS = 1000
REGISTRY_DIR = '_sio_base_volumes'
_FILL_POLL = 2.0
_FILL_ATTEMPTS = 3
# Ids of the ``#`` volumes this process is filling now.
_ACTIVE_FILLS = set()
# Returned by _wait_for_fill: the fill is gone, try to fill it here.
_RETRY = object()


def base_volume_name(image_id, pool_id, generation=0, filling=False):
    """Return the name of a base volume (at most 30 characters).

    ``<prefix><hash20>.B<generation>[#]``: ``hash20`` is 20 URL-safe
    base64 characters of the SHA-256 of the image id and the pool id, so
    the same image gets one name per pool; ``#`` marks a base volume
    still being filled. The names never parse as instance disk names.

    :param image_id: the Glance image id.
    :param pool_id: the ScaleIO storage pool id.
    :param generation: 0 for the first base volume of the image, then 1...
    :param filling: the name used while the image is copied in.
    """
    if not 0 <= int(generation) < MAX_GENERATIONS:
        raise sio_exc.InvalidName(name=str(generation),
                                  reason='base volume generation out of '
                                         'range')
    digest = hashlib.sha256(('%s/%s' % (image_id, pool_id)).encode(
        'utf-8')).digest()
    text = base64.urlsafe_b64encode(digest).decode('ascii')[:20]
    return '%s%s.%s%d%s' % (CONF.scaleio.volume_name_prefix or '', text,
                            BASE_CODE, int(generation),
                            '#' if filling else '')


def base_volumes(image_id, pool_id):
    """Return ``[(generation, volume_id)]`` of an image's base volumes.

    :param image_id: the Glance image id.
    :param pool_id: the ScaleIO storage pool id.
    """
    client = connection.get_client()
    found = []
    for generation in range(MAX_GENERATIONS):
        volume_id = client.get_volume_id(
            base_volume_name(image_id, pool_id, generation))
        if volume_id is None:
            break
        found.append((generation, volume_id))
    return found


def fills(client, image_id, pool_id):
    """Return ``[(name, volume id)]`` of the ``#`` volumes of an image.

    A fill is made at the generation after the last published one, or at
    a published generation's number when the numbering moved down; so
    the ``#`` names of generations 0 .. last + 1 are looked up.

    :param client: the gateway client.
    :param image_id: the Glance image id.
    :param pool_id: the ScaleIO storage pool id.
    """
    found = []
    count = len(base_volumes(image_id, pool_id))
    for generation in range(min(count + 1, MAX_GENERATIONS)):
        name = base_volume_name(image_id, pool_id, generation, filling=True)
        volume_id = client.get_volume_id(name)
        if volume_id is not None:
            found.append((name, volume_id))
    return found


def stale_fill(client, fill_id):
    """Say why the fill of the ``#`` volume ``fill_id`` is stale, or None.

    A fill is stale when this process does not run it and the volume is
    mapped to this host's SDC (nova-compute stopped mid-fill and started
    again), or when it is older than ``[scaleio] zero_copy_fill_timeout``
    (0: never by age) by the creation time the gateway reports.

    :param client: the gateway client.
    :param fill_id: the id of the ``#`` volume.
    """
    if fill_id in _ACTIVE_FILLS:
        return None
    try:
        info = client.get_volume(fill_id)
    except sio_exc.VolumeNotFound:
        return None
    mapped = [entry.get('sdcId') for entry in info.get('mappedSdcInfo') or ()
              if isinstance(entry, dict)]
    if mapped and connection.sdc_id() in mapped:
        return 'left by an earlier run of nova-compute on this host'
    timeout = CONF.scaleio.zero_copy_fill_timeout
    created = info.get('creationTime')
    if timeout and created:
        try:
            age = time.time() - float(created)
        except (TypeError, ValueError):
            return None
        if age > timeout:
            return ('started %d seconds ago, more than [scaleio] '
                    'zero_copy_fill_timeout (%d)' % (age, timeout))
    return None


def remove_stale_fill(name, fill_id, reason):
    """Delete a stale ``#`` volume; return whether this call deleted it.

    :param name: the ``#`` name (for the log).
    :param fill_id: the id of the ``#`` volume.
    :param reason: what :func:`stale_fill` said.
    """
    LOG.warning('Removing the abandoned fill of ScaleIO base volume %s '
                '(%s): %s', name, fill_id, reason)
    return volumes.delete_volume(fill_id)


def _wait_for_fill(client, image_id, pool_id, generation):
    """Wait for another fill of a base volume.

    :returns: the base volume's id once it is published; ``_RETRY`` when
        the fill is gone (it failed, or it was stale and this call removed
        it), so that the caller fills it; None when it is still running
        after ``[scaleio] zero_copy_fill_timeout`` seconds of waiting (the
        caller copies the image instead).
    """
    name = base_volume_name(image_id, pool_id, generation)
    filling = base_volume_name(image_id, pool_id, generation, filling=True)
    deadline = time.time() + CONF.scaleio.zero_copy_fill_timeout
    while True:
        volume_id = client.get_volume_id(name)
        if volume_id is not None:
            return volume_id
        fill_id = client.get_volume_id(filling)
        if fill_id is None:
            return _RETRY
        reason = stale_fill(client, fill_id)
        if reason is not None:
            remove_stale_fill(filling, fill_id, reason)
            return _RETRY
        if time.time() >= deadline:
            return None
        time.sleep(_FILL_POLL)


def _fill_base_volume(client, image_id, pool_id, generation, size_bytes,
                      fill):
    """Create, fill and publish one base volume generation; return its id.

    The volume is made under its ``#`` name, filled through this host's
    SDC, unmapped and renamed: a base volume under its final name is
    always complete. A host that finds the ``#`` name taken waits for the
    other host's copy, and takes the fill over when that copy is stale
    (see :func:`stale_fill`). None is returned when no base volume could
    be had: the other copy is still running after the wait, or this
    host's fill was removed as stale by another host.
    """
    filling = base_volume_name(image_id, pool_id, generation, filling=True)
    for _attempt in range(_FILL_ATTEMPTS):
        try:
            volume_id = client.create_volume(
                filling, naming.size_in_gb(size_bytes), pool_id, thin=True)
        except sio_exc.NameInUse:
            LOG.info('Waiting for another fill of base volume %s',
                     filling)
            found = _wait_for_fill(client, image_id, pool_id, generation)
            if found is _RETRY:
                continue
            return found
        capacity.capacity_changed()
        return _fill_created(client, volume_id, image_id, pool_id,
                             generation, fill)
    return None


def _fill_created(client, volume_id, image_id, pool_id, generation, fill):
    """Fill and publish the ``#`` volume this host created."""
    filling = base_volume_name(image_id, pool_id, generation, filling=True)
    final = base_volume_name(image_id, pool_id, generation)
    published = client.get_volume_id(final)
    if published is not None:
        # Another host published it between the lookup and the create.
        volumes.delete_volume(volume_id)
        return published
    record_base_image(image_id)
    LOG.info('Filling ScaleIO base volume %s (generation %d) with image %s',
             filling, generation, image_id)
    _ACTIVE_FILLS.add(volume_id)
    try:
        fill(volumes.map_volume(volume_id))
        volumes.unmap_volume(volume_id)
        client.rename_volume(volume_id, final)
    except sio_exc.NameInUse:
        # Another host took the fill over and published it first.
        volumes.delete_volume(volume_id)
        return client.get_volume_id(final)
    except Exception:
        if not volumes.delete_volume(volume_id):
            LOG.warning('The fill of ScaleIO base volume %s was removed as '
                        'stale by another host; not using it', filling)
            return None
        raise
    finally:
        _ACTIVE_FILLS.discard(volume_id)
    return volume_id


def boot_snapshot_mark():
    """Return how many snapshots boots take of one base volume's vTree."""
    return (CONF.scaleio.zero_copy_max_vtree_snapshots or
            CONF.scaleio.vtree_snapshot_limit // 2) or 1


def _pick_base(client, image_id, pool_id, full):
    """Choose the base volume a boot snapshots.

    The newest generation whose vTree holds fewer than
    :func:`boot_snapshot_mark` snapshots, else the next generation.

    :param full: ids of base volumes found full by this boot.
    :returns: ``(generation, volume id or None)``; None means that the
        generation is to be filled.
    """
    existing = base_volumes(image_id, pool_id)
    mark = boot_snapshot_mark()
    for generation, volume_id in reversed(existing):
        if volume_id in full:
            continue
        try:
            count = vtree.snapshot_count(client, volume_id)
        except sio_exc.VolumeNotFound:
            continue
        except sio_exc.MalformedResponse as exc:
            # Without the figure the system's own limit still holds.
            LOG.warning('Cannot count the snapshots of base volume %s: %s',
                        volume_id, exc)
            return generation, volume_id
        if count < mark:
            return generation, volume_id
        LOG.debug('Base volume %s holds %d snapshots (at most %d for '
                  'boots)', base_volume_name(image_id, pool_id, generation),
                  count, mark)
    return (existing[-1][0] + 1 if existing else 0), None


def snapshot_from_base(image_id, flavor, image_size, name, fill):
    """Make the volume ``name`` a snapshot of the image's base volume.

    The base volume of the image in the flavor's pool is filled first
    when there is none; a base volume whose vTree holds
    :func:`boot_snapshot_mark` snapshots (or that the system finds full)
    is not used, the next generation is.

    :param image_id: the Glance image id.
    :param flavor: the flavor (its extra specs pick the pool).
    :param image_size: the virtual size of the image in bytes.
    :param name: the name of the new snapshot (the root disk's volume).
    :param fill: ``fill(device_path)`` copies the image onto a mapped
        volume (run as root); None to use only a base volume that is
        filled already (the caller has no copy of the image yet).
    :returns: ``(volume_id, size_bytes)`` of the snapshot, or None when
        the base volume could not be had (the caller copies instead).
    """
    client = connection.get_client()
    domain, pool, _thin = flavors.storage_for(flavor)
    pool_id = client.get_pool_id(domain, pool)
    full = set()
    for _attempt in range(_FILL_ATTEMPTS):
        generation, base_id = _pick_base(client, image_id, pool_id, full)
        if generation >= MAX_GENERATIONS:
            return None
        if base_id is None:
            if fill is None:
                return None
            LOG.info('Starting generation %d of the base volume of image '
                     '%s in pool %s', generation, image_id, pool_id)
            size = naming.check_size(name, image_size, round_up=True)
            base_id = _fill_base_volume(client, image_id, pool_id,
                                        generation, size, fill)
            if base_id is None:
                return None
        try:
            snap_id = client.snapshot_volume(base_id, name)
        except sio_exc.VTreeLimitReached:
            LOG.info('The vTree of base volume %s is full',
                     base_volume_name(image_id, pool_id, generation))
            full.add(base_id)
            continue
        capacity.capacity_changed()
        record_base_image(image_id)
        return snap_id, volumes.volume_size(base_id)
    return None


# -- the record of the images this host booted -------------------------------


def registry_dir():
    """The record directory; None outside Nova (no ``instances_path``)."""
    try:
        base = CONF.instances_path
    except (AttributeError, cfg.NoSuchOptError):
        return None
    return os.path.join(base, REGISTRY_DIR) if base else None


def record_base_image(image_id):
    """Note that this host booted a root disk from ``image_id``'s base.

    :param image_id: the Glance image id.
    """
    registry = registry_dir()
    if registry is None:
        return
    path = os.path.join(registry, image_id)
    try:
        if not os.path.isdir(registry):
            os.makedirs(registry)
        with open(path, 'a'):
            os.utime(path, None)
    except (IOError, OSError) as exc:
        LOG.warning('Could not record the use of base volumes of image '
                    '%s in %s: %s', image_id, path, exc)


def recorded_base_images():
    """Return ``{image_id: last use (epoch seconds)}`` of this host."""
    found = {}
    registry = registry_dir()
    try:
        names = os.listdir(registry) if registry else ()
    except (IOError, OSError):
        return found
    for name in names:
        try:
            found[name] = os.stat(os.path.join(registry, name)).st_mtime
        except (IOError, OSError):
            continue
    return found
