# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The volumes of an instance, found without listing the system.

The volumes of an instance are found by looking up the names of the disks
its flavors and state give it (:func:`disk_plan`,
:func:`instance_volumes`) and by one listing of the volumes mapped to
this host's SDC (:func:`mapped_here`), never by listing the whole
system, whose size has no bound.
"""

from __future__ import absolute_import

from oslo_config import cfg

from nova.virt.libvirt.sio import connection
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import flavors
from nova.virt.libvirt.sio import naming
from nova.virt.libvirt.sio import volumes

CONF = cfg.CONF

KINDS = volumes.KINDS
# Disk names that are probed for every instance, besides disk.eph<n>.
FIXED_DISKS = ('disk', 'disk.local', 'disk.swap', 'disk.rescue',
               'disk.config', 'disk.config.rescue')
MAX_EPHEMERALS = 100

# Task states in which a disk may have a resize snapshot or a temporary
# volume (a pool move or an interrupted revert).
_RESIZE_TASKS = ('resize_prep', 'resize_migrating', 'resize_migrated',
                 'resize_finish', 'resize_reverting', 'resize_confirming')
_RESCUE_TASKS = ('rescuing', 'unrescuing')


def _probe(client, instance_uuid, disk_name, kinds):
    found = []
    for kind in kinds:
        name = volumes.volume_name(instance_uuid, disk_name, kind)
        volume_id = client.get_volume_id(name)
        if volume_id is not None:
            found.append(volumes.Volume(name, disk_name, kind, volume_id))
    return found


def probe_every_name(client, instance, kinds):
    """Look up every name an instance disk may have (state unknown).

    :param client: the gateway client.
    :param instance: the instance (only ``uuid`` is read).
    :param kinds: the kinds to return.
    """
    found = []
    for disk_name in FIXED_DISKS:
        found.extend(_probe(client, instance.uuid, disk_name, kinds))
    for index in range(MAX_EPHEMERALS):
        eph = _probe(client, instance.uuid, 'disk.eph%d' % index, KINDS)
        if not eph:
            break
        found.extend(v for v in eph if v.kind in kinds)
    return found


def disk_plan(instance):
    """Return the disks an instance may have, from its flavors and state.

    :param instance: a Nova instance.
    :returns: ``(disk names, kinds, ephemeral)``: the disk names to look
        up, the kinds that may exist now (resize snapshots and temporary
        volumes only around a resize), and whether the flavor has
        ephemeral space (``disk.local`` or ``disk.eph<n>``); None when the
        state or the flavor is unknown or the instance is in ERROR, then
        every possible name is looked up.
    """
    field = flavors.field
    vm_state = field(instance, 'vm_state')
    flavor_list = [f for f in (field(instance, 'flavor'),
                               field(instance, 'old_flavor'),
                               field(instance, 'new_flavor'))
                   if f is not None]
    if not vm_state or vm_state == 'error' or not flavor_list:
        return None
    task = field(instance, 'task_state') or ''
    disks = ['disk']
    ephemeral = any(flavors.flavor_value(f, 'ephemeral_gb')
                    for f in flavor_list)
    if any(flavors.flavor_value(f, 'swap') for f in flavor_list):
        disks.append('disk.swap')
    if vm_state == 'rescued' or task in _RESCUE_TASKS:
        disks.append('disk.rescue')
    resizing = vm_state == 'resized' or task in _RESIZE_TASKS
    return disks, (KINDS if resizing else ('',)), ephemeral


def _parse_own(name, instance_uuid):
    """Return ``(disk_name, kind)`` of a volume of this instance, or None."""
    try:
        owner, disk_name, prefix, kind = naming.parse_volume_name_full(name)
    except sio_exc.InvalidName:
        return None
    if owner != str(instance_uuid) or \
            prefix != (CONF.scaleio.volume_name_prefix or ''):
        return None
    return disk_name, kind


def mapped_here(instance, kinds=KINDS):
    """Return the volumes of an instance mapped to this host's SDC.

    One gateway call, whatever the size of the system: the list of the
    volumes mapped to this SDC.

    :param instance: the instance (only ``uuid`` is read).
    :param kinds: the kinds to return.
    """
    found = []
    client = connection.get_client()
    for info in client.get_sdc_volumes(connection.local_sdc_id()):
        own = _parse_own(info.get('name'), instance.uuid)
        if own is None or own[1] not in kinds:
            continue
        found.append(volumes.Volume(info['name'], own[0], own[1],
                                    info['id']))
    return found


def instance_volumes(instance, kinds=KINDS, known=()):
    """Return the :class:`~.volumes.Volume` list of an instance.

    The names looked up come from :func:`disk_plan`: the disks the
    flavors give the instance, the rescue disk while it is rescued, and
    resize snapshots and temporary volumes only around a resize (or when
    only those kinds are asked for). Ephemeral disks are ``disk.local``
    or ``disk.eph0`` up to the first index with no volume. When the plan
    is unknown every possible name is looked up.

    :param instance: the instance.
    :param kinds: the kinds to look for.
    :param known: volumes found already (e.g. :func:`mapped_here`); their
        names are not looked up again and they are part of the result.
    """
    client = connection.get_client()
    plan = disk_plan(instance)
    if plan is None:
        found = dict((v.name, v) for v in known if v.kind in kinds)
        for volume in probe_every_name(client, instance, kinds):
            found.setdefault(volume.name, volume)
        return list(found.values())
    disks, may_exist, ephemeral = plan
    if '' in kinds:
        kinds = tuple(k for k in kinds if k in may_exist)
    found = dict((v.name, v) for v in known if v.kind in kinds)

    def probe(disk_name):
        hits = []
        for kind in kinds:
            name = volumes.volume_name(instance.uuid, disk_name, kind)
            volume = found.get(name)
            if volume is None:
                volume_id = client.get_volume_id(name)
                if volume_id is None:
                    continue
                volume = found[name] = volumes.Volume(name, disk_name, kind,
                                                      volume_id)
            hits.append(volume)
        return hits

    for disk_name in disks:
        probe(disk_name)
    if ephemeral and not probe('disk.local'):
        for index in range(MAX_EPHEMERALS):
            if not probe('disk.eph%d' % index):
                break
    return list(found.values())
