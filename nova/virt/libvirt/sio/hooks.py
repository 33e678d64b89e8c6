# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The functions the libvirt driver hunks of every Nova release call.

The driver hunks of every era call these names, always the same, so
that each hunk stays one to three lines::

    if CONF.libvirt.images_type == 'sio':
        sio_hooks.unmap_volumes(instance)

This module is only that API: each name is bound to the function of the
module that owns its concern, with the same signature and behaviour.
Nothing here (or there) imports the libvirt driver or the image backend,
so the runtime loads on every Nova release from Kilo on and on Python
2.7 as well as 3.x.

Instance lifecycle (:mod:`~nova.virt.libvirt.sio.lifecycle`):

* :func:`map_volumes` - map every disk volume of an instance here;
* :func:`unmap_volumes` - unmap them after the instance left this host;
  it never fails: a mapping it cannot remove is recorded and removed at
  the next image cache manager pass
  (:mod:`~nova.virt.libvirt.sio.stale`);
* :func:`cleanup_volumes` - ``cleanup``/``_cleanup``: delete, or unmap
  when the instance lives elsewhere now;
* :func:`cleanup_resize` - confirmed resize: drop the resize snapshots and
  unmap on the old host;
* :func:`remove_rescue_volume` - unrescue;
* :func:`copy_config_drive` - live migration: fetch ``disk.config`` from
  the source host.

Resize (:mod:`~nova.virt.libvirt.sio.resize`):

* :func:`check_resize` - the 8 GiB rule and the vTree room for a resize's
  new flavor, before the guest is powered off;
* :func:`snapshot_volumes` / :func:`rollback_snapshots` - the resize
  snapshots, for the eras whose image backend has no hooks for them.

Snapshots, image cache, capacity, devices:

* :func:`live_snapshot_allowed` / :func:`live_snapshot` - ``snapshot``:
  export from a ScaleIO snapshot of the running (quiesced) guest
  (:mod:`~nova.virt.libvirt.sio.snapshots`);
* :func:`manage_base_volumes` - ``manage_image_cache``: remove the base
  volumes of images this node no longer uses
  (:mod:`~nova.virt.libvirt.sio.imagecache`; zero-copy boot itself is
  :mod:`~nova.virt.libvirt.sio.zerocopy`);
* :func:`get_pool_info` (bytes) / :func:`get_local_gb_info` (GiB) -
  capacity of the served storage pools
  (:mod:`~nova.virt.libvirt.sio.capacity`);
* :func:`is_sio_path` - whether a libvirt disk path is a ScaleIO device
  (:mod:`~nova.virt.libvirt.sio.connection`).

For tests and tools: :func:`reset` forgets the process-wide client and
SDC identity, ``sio_client`` is the REST client module.

The other runtime modules, from the bottom up: ``connection`` (the
gateway client and this host's SDC), ``flavors`` (storage of a flavor's
disks, the 8 GiB rule), ``volumes`` (names and primitives of one volume),
``disks`` (the volumes of an instance), ``vtree`` (snapshot room),
``stale``, ``resize``, ``lifecycle``, ``snapshots``, ``zerocopy``,
``imagecache`` and ``capacity``; :mod:`~nova.virt.libvirt.sio.image` is
the image backend built on them.
"""

from __future__ import absolute_import

from oslo_config import cfg

from nova.virt.libvirt.sio import capacity
from nova.virt.libvirt.sio import client as sio_client
from nova.virt.libvirt.sio import connection
from nova.virt.libvirt.sio import imagecache
from nova.virt.libvirt.sio import lifecycle
from nova.virt.libvirt.sio import resize
from nova.virt.libvirt.sio import snapshots

CONF = cfg.CONF

__all__ = [
    'check_resize', 'cleanup_resize', 'cleanup_volumes',
    'copy_config_drive', 'get_local_gb_info', 'get_pool_info',
    'is_sio_path', 'live_snapshot', 'live_snapshot_allowed',
    'manage_base_volumes', 'map_volumes', 'remove_rescue_volume', 'reset',
    'rollback_snapshots', 'sio_client', 'snapshot_volumes', 'unmap_volumes',
]

# Instance lifecycle.
map_volumes = lifecycle.map_volumes
unmap_volumes = lifecycle.unmap_volumes
cleanup_volumes = lifecycle.cleanup_volumes
cleanup_resize = lifecycle.cleanup_resize
remove_rescue_volume = lifecycle.remove_rescue_volume
copy_config_drive = lifecycle.copy_config_drive

# Resize.
check_resize = resize.check_resize
snapshot_volumes = resize.snapshot_volumes
rollback_snapshots = resize.rollback_snapshots

# Live snapshots.
live_snapshot_allowed = snapshots.live_snapshot_allowed
live_snapshot = snapshots.live_snapshot

# Image cache manager pass.
manage_base_volumes = imagecache.manage_base_volumes

# Capacity.
get_pool_info = capacity.get_pool_info
get_local_gb_info = capacity.get_local_gb_info

# Devices and process state.
is_sio_path = connection.is_sio_path
reset = connection.reset
