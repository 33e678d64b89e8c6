# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Instance-level ScaleIO operations called from the libvirt driver.

The driver hunks of every Nova release call these functions, always with
the same names, so that each hunk stays one to three lines::

    if CONF.libvirt.images_type == 'sio':
        sio_hooks.unmap_volumes(instance)

The :class:`~nova.virt.libvirt.sio.image.Sio` image backend uses the same
helpers for single volumes. Nothing here imports the libvirt driver or
the image backend, so the module loads on every Nova release from Kilo on
and on Python 2.7 as well as 3.x.

Every instance disk is one ScaleIO volume named by
:func:`~nova.virt.libvirt.sio.naming.volume_name`; the volumes of an
instance are found by looking up the names of the disks its flavor and
state give it (:func:`disk_plan`) and by one listing of the volumes
mapped to this host's SDC, never by listing the whole system.

Functions for the driver:

* :func:`is_sio_path` - whether a libvirt disk path is a ScaleIO device;
* :func:`cleanup_volumes` - ``_cleanup``: delete, or unmap when the
  instance lives elsewhere now;
* :func:`destroy_volumes` / :func:`unmap_volumes` / :func:`map_volumes`;
  ``unmap_volumes`` never fails: a mapping it cannot remove is recorded
  and removed by :func:`sweep_stale_mappings` at the next image cache
  manager pass;
* :func:`wait_for_growth` - rescan the SDC after growing a mapped volume;
* :func:`cleanup_resize` - confirmed resize: drop the resize snapshots and
  unmap on the old host;
* :func:`remove_rescue_volume` - unrescue;
* :func:`get_pool_info` (bytes) / :func:`get_local_gb_info` (GiB) -
  capacity of the default storage pool;
* :func:`check_flavor_sizes` - the 8 GiB rule for a flavor's disks;
  :func:`check_resize` applies it to a resize's new flavor before the
  guest is powered off;
* :func:`base_volume_name` / :func:`snapshot_from_base` /
  :func:`remove_unused_base_volumes` - zero-copy boot from per-image,
  per-pool base volumes (``[scaleio] zero_copy_boot``);
* :func:`manage_base_volumes` - ``manage_image_cache``: remove the base
  volumes of images this node no longer uses;
* :func:`live_snapshot_allowed` / :func:`live_snapshot` - ``snapshot``:
  export from a ScaleIO snapshot of the running (quiesced) guest.
"""

from __future__ import absolute_import

import base64
import errno
import hashlib
import logging
import os
import threading
import time

from oslo_config import cfg

from nova.virt.libvirt.sio import client as sio_client
from nova.virt.libvirt.sio import conf as sio_conf
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import host as sio_host
from nova.virt.libvirt.sio import naming

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
sio_conf.register_opts(CONF)

GiB = 1024 ** 3
MiB = 1024 ** 2
RESIZE_SNAPSHOT = 'snapshot'
TEMPORARY_SNAPSHOT = 'temporary'
# Disk names that are probed for every instance, besides disk.eph<n>.
FIXED_DISKS = ('disk', 'disk.local', 'disk.swap', 'disk.rescue',
               'disk.config', 'disk.config.rescue')
KINDS = ('', 'snapshot', 'temporary')
MAX_EPHEMERALS = 100

# Flavor extra specs honoured since the 2016 patches.
SPEC_DOMAIN = 'sio:pd_name'
SPEC_POOL = 'sio:sp_name'
SPEC_PROVISIONING = 'sio:provisioning_type'
_PROVISIONING = {'thin': True, 'thinprovisioned': True,
                 'thick': False, 'thickprovisioned': False}

_LOCK = threading.Lock()
_STATE = {}


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


# -- process-wide connection state -------------------------------------------


def _conf_key():
    group = CONF.scaleio
    return tuple(group[name] for name in (
        'rest_server_ip', 'rest_server_port', 'rest_server_scheme',
        'rest_server_username', 'rest_server_password',
        'verify_server_certificate', 'server_certificate_path',
        'default_sdcguid', 'drv_cfg_path', 'allow_non_padded_volumes'))


def get_client():
    """Return the process-wide :class:`~.client.Client`.

    It is rebuilt when the gateway options change (tests, reloads).
    """
    key = _conf_key()
    with _LOCK:
        if _STATE.get('key') != key:
            old = _STATE.get('client')
            _STATE.clear()
            if old is not None:
                try:
                    old.close()
                except Exception:  # a dead session must not block
                    pass
            _STATE['client'] = sio_client.Client.from_conf(CONF)
            _STATE['key'] = key
        return _STATE['client']


def reset():
    """Forget the cached client, SDC identity and system id."""
    with _LOCK:
        _STATE.clear()


def _root_execute(*argv):
    """Run ``drv_cfg`` with root rights, through privsep where it exists."""
    if _privileged_drv_cfg is not None:
        return _privileged_drv_cfg(*argv)
    from nova import utils as nova_utils
    return nova_utils.execute(*argv, run_as_root=True)


def _drv_cfg_paths():
    paths = list(sio_host.DRV_CFG_PATHS)
    if CONF.scaleio.drv_cfg_path:
        paths.append(CONF.scaleio.drv_cfg_path)
    return paths


try:
    import nova.privsep as _nova_privsep
    _PCTXT = _nova_privsep.sys_admin_pctxt
except (ImportError, AttributeError):  # before Queens
    _PCTXT = None

if _PCTXT is not None:
    @_PCTXT.entrypoint
    def _privileged_drv_cfg(path, flag):
        """Run ``<drv_cfg> --query_*`` as root; nothing else is allowed."""
        from oslo_concurrency import processutils
        if path not in _drv_cfg_paths() or flag not in (
                '--query_guid', '--query_mdms', '--query_vols',
                '--rescan'):
            raise ValueError('refusing to run %s %s' % (path, flag))
        return processutils.execute(path, flag)

    @_PCTXT.entrypoint
    def _privileged_device_size(path):
        """Return the size of a ScaleIO device; nothing else is read."""
        root = os.path.normpath(CONF.scaleio.device_root)
        if os.path.dirname(os.path.normpath(path)) != root or \
                not is_sio_path(path):
            raise ValueError('refusing to read the size of %s' % path)
        return sio_host.device_size(path)
else:
    _privileged_drv_cfg = None
    _privileged_device_size = None


def sdc_guid():
    """Return the GUID of the local SDC (configured or from drv_cfg)."""
    get_client()
    with _LOCK:
        if 'guid' not in _STATE:
            _STATE['guid'] = sio_host.get_sdc_guid(
                CONF.scaleio.default_sdcguid, CONF.scaleio.drv_cfg_path,
                execute=_root_execute)
        return _STATE['guid']


def sdc_id():
    """Return the gateway id of the local SDC."""
    return get_client().get_sdc_id(sdc_guid())


def device_path(volume_id):
    """Return the by-id device path of a volume on this host."""
    client = get_client()
    return sio_host.device_path(CONF.scaleio.device_root,
                                client.get_system_id(), volume_id)


def is_sio_path(path):
    """Whether ``path`` is the device of a ScaleIO volume.

    :param path: a libvirt disk source path (or None).
    """
    if not path or not isinstance(path, (type(u''), str)):
        return False
    return os.path.basename(path).startswith(sio_host.DEVICE_PREFIX + '-')


def volume_id_from_path(path):
    """Return the volume id at the end of an ``emc-vol-<sys>-<id>`` path."""
    if not is_sio_path(path):
        raise sio_exc.InvalidName(name=path, reason='not a ScaleIO device')
    return os.path.basename(path).rsplit('-', 1)[1]


# -- names, sizes, pools -----------------------------------------------------


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
    """Return the id of an instance disk's volume, or None."""
    return get_client().get_volume_id(
        volume_name(instance_uuid, disk_name, kind))


def _extra_specs(flavor):
    if flavor is None:
        return {}
    try:
        return dict(flavor.extra_specs or {})
    except (AttributeError, KeyError, TypeError):
        try:
            return dict(flavor.get('extra_specs') or {})
        except (AttributeError, TypeError):
            return {}


def storage_for(flavor):
    """Return ``(domain, pool, thin)`` for new volumes of a flavor.

    The ``sio:*`` extra specs of the flavor win over ``[scaleio]``.

    :param flavor: a Flavor object, a dict or None.
    """
    specs = _extra_specs(flavor)
    domain = specs.get(SPEC_DOMAIN) or CONF.scaleio.protection_domain_name
    pool = specs.get(SPEC_POOL) or CONF.scaleio.storage_pool_name
    wanted = (specs.get(SPEC_PROVISIONING) or
              CONF.scaleio.provisioning_type or 'thick')
    thin = _PROVISIONING.get(wanted.strip().lower())
    if thin is None:
        raise sio_exc.InvalidConfig(
            option=SPEC_PROVISIONING,
            reason='%r is neither thin nor thick' % (wanted,))
    return domain, pool, thin


def _flavor_name(flavor):
    """Return the name of a flavor object or dict, None when not known.

    An object whose name is not set gives None instead of trying to load
    it (which fails for a flavor not read from the database).

    :param flavor: a Flavor object or a dict.
    """
    return _field(flavor, 'name')


def checked_size(flavor, disk_name, size_bytes, round_up=None,
                 volume=None):
    """Apply the 8 GiB rule to one disk; return the size to allocate.

    A size that is rounded up is logged at INFO with both sizes.

    :param flavor: the flavor the size comes from (for the message).
    :param disk_name: the Nova disk name.
    :param size_bytes: requested size in bytes.
    :param round_up: round instead of failing; default
        ``[scaleio] round_volume_capacity``.
    :param volume: the volume name, named in the log when known.
    :raises InvalidSize: naming the flavor, the disk and the sizes.
    """
    if round_up is None:
        round_up = CONF.scaleio.round_volume_capacity
    try:
        size = naming.check_size(disk_name, size_bytes, round_up=round_up)
    except sio_exc.InvalidSize as exc:
        raise sio_exc.InvalidSize(
            disk=disk_name,
            reason='flavor %s: %s' % (_flavor_name(flavor) or '?',
                                      exc.kwargs.get('reason', exc)))
    if size != int(size_bytes):
        LOG.info('Rounding disk %s%s of flavor %s up from %d bytes '
                 '(%.2f GiB) to %d bytes (%d GiB), the ScaleIO allocation '
                 'unit being 8 GiB', disk_name,
                 ' (%s)' % volume if volume else '',
                 _flavor_name(flavor) or '?', int(size_bytes),
                 int(size_bytes) / float(GiB), size, size // GiB)
    return size


def check_flavor_sizes(flavor, disk_names=None):
    """Check the root, ephemeral and swap sizes of a flavor.

    Called before the first volume of an instance is made, so that a
    flavor that cannot work fails at once with a clear message instead of
    half-way through the spawn.

    :param flavor: Flavor object or dict with ``root_gb``,
        ``ephemeral_gb`` and ``swap`` (MiB).
    :param disk_names: the disks the instance really has (when known);
        disks absent from it are not checked.
    :raises InvalidSize: for the first size that breaks the rule.
    """
    if flavor is None or CONF.scaleio.round_volume_capacity:
        return

    def value(key):
        try:
            return int(flavor[key] or 0)
        except (KeyError, TypeError, ValueError):
            return int(getattr(flavor, key, 0) or 0)

    sizes = (('disk', value('root_gb') * GiB),
             ('disk.local', value('ephemeral_gb') * GiB),
             ('disk.swap', value('swap') * MiB))
    for disk_name, size in sizes:
        if not size:
            continue
        if disk_names is not None and disk_name not in disk_names:
            continue
        checked_size(flavor, disk_name, size)


def check_resize(instance, flavor, booted_from_volume=False):
    """The ``migrate_disk_and_power_off`` check of a resize's new flavor.

    Run before the guest is powered off, so that a flavor whose disks
    break the 8 GiB rule fails the resize at once and Nova rolls it back
    (the guest keeps running on the source) instead of failing in
    ``finish_migration``.

    :param instance: the instance being resized (its current flavor).
    :param flavor: the new flavor.
    :param booted_from_volume: the root disk is a Cinder volume (its size
        is not checked).
    The disks' vTrees are checked too: a disk whose vTree cannot take
    the resize snapshot (see :func:`check_snapshot_room`) refuses the
    resize the same way.

    :raises InstanceFaultRollback: wrapping ``ResizeError`` with the
        reason, the exception Nova's compute manager rolls back on.
    """
    disks = ['disk.local', 'disk.swap']
    if not booted_from_volume:
        disks.append('disk')
    try:
        check_flavor_sizes(flavor, disk_names=disks)
        check_snapshot_room(instance, kind=RESIZE_SNAPSHOT)
    except (sio_exc.InvalidSize, sio_exc.VTreeLimitReached) as exc:
        from nova import exception as nova_exception
        LOG.warning('Refusing to resize instance %s: %s',
                    getattr(instance, 'uuid', '?'), exc)
        raise nova_exception.InstanceFaultRollback(
            nova_exception.ResizeError(reason=str(exc)))


# -- single volumes ----------------------------------------------------------


def create_volume(instance_uuid, disk_name, size_bytes, flavor,
                  thin=None, kind=''):
    """Create the volume of a disk; return its id.

    :param size_bytes: a multiple of 8 GiB (see :func:`checked_size`).
    :param flavor: the flavor whose extra specs pick domain, pool and
        provisioning.
    :param thin: force thin (True) or thick (False) provisioning.
    """
    client = get_client()
    domain, pool, flavor_thin = storage_for(flavor)
    name = volume_name(instance_uuid, disk_name, kind)
    pool_id = client.get_pool_id(domain, pool)
    try:
        volume_id = client.create_volume(
            name, naming.size_in_gb(size_bytes), pool_id,
            thin=flavor_thin if thin is None else thin)
        capacity_changed()
        return volume_id
    except sio_exc.NameInUse:
        # An earlier attempt whose answer was lost made it already.
        volume_id = client.get_volume_id(name)
        if volume_id is None:
            raise
        return volume_id


def rescan():
    """Ask this host's SDC to rescan; return whether it could.

    A failure is logged, not raised: the caller waits for the device (or
    its size) anyway and reports the timeout.
    """
    try:
        sio_host.rescan(CONF.scaleio.drv_cfg_path, execute=_root_execute)
    except Exception as exc:  # executors raise their own errors
        LOG.warning('Could not rescan the ScaleIO SDC of this host: %s', exc)
        return False
    return True


def _device_size(path):
    """Return the size a device shows here, reading it as root if needed."""
    try:
        return sio_host.device_size(path)
    except (IOError, OSError) as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM):
            raise
    if _privileged_device_size is not None:
        return _privileged_device_size(path)
    from nova import utils as nova_utils
    out = nova_utils.execute('blockdev', '--getsize64', path,
                             run_as_root=True)[0]
    return int(out.strip())


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
    path = device_path(volume_id)
    if not os.path.exists(path):
        return False
    if _device_size(path) >= size_bytes:
        return True
    LOG.info('Rescanning the SDC for the new size of ScaleIO volume %s',
             volume_id)
    rescan()
    sio_host.wait_for_size(path, size_bytes,
                           CONF.scaleio.device_wait_timeout,
                           read_size=_device_size)
    return True


def _map(volume_id, wait=True):
    """Map a volume here; return ``(device path, newly mapped)``.

    A volume that is mapped already but has no device on this host may
    be in use (a guest whose XML names the device), so it is never
    unmapped to repair the device: the SDC is rescanned and the device
    waited for. When the device of a volume this call mapped does not
    appear in time the volume is unmapped from this SDC before the error
    is raised, so that no mapping without a device is left behind; a
    mapping that was there before stays.
    """
    client = get_client()
    guid = sdc_guid()
    newly = client.map_volume(volume_id, guid=guid, allow_multiple=True)
    if newly:
        LOG.debug('Mapped ScaleIO volume %s', volume_id)
    path = device_path(volume_id)
    if not wait:
        return path, newly
    if not newly and not os.path.exists(path):
        LOG.warning('ScaleIO volume %s is mapped to this host but %s is '
                    'missing; rescanning the SDC', volume_id, path)
        rescan()
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

    :param wait: wait until the device node is there.
    :raises DeviceTimeout: the device did not appear; the volume is
        unmapped from this host again.
    """
    return _map(volume_id, wait=wait)[0]


def unmap_elsewhere(volume_id):
    """Unmap a volume from every SDC but this host's; return how many.

    For an instance that runs here (hard reboot): a mapping left on
    another host by a failed move would otherwise outlive it.
    """
    client = get_client()
    here = sdc_id()
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
    """Unmap a volume from this host's SDC (no error if it was not)."""
    client = get_client()
    try:
        unmapped = client.unmap_volume(volume_id, guid=sdc_guid())
    except sio_exc.VolumeNotFound:
        return False
    if unmapped and wait:
        sio_host.wait_for_removal(device_path(volume_id),
                                  CONF.scaleio.device_wait_timeout)
    return unmapped


def delete_volume(volume_id):
    """Unmap a volume everywhere and delete it; False if it was gone."""
    try:
        return get_client().delete_volume(volume_id, unmap=True)
    except sio_exc.VolumeNotFound:
        return False
    finally:
        capacity_changed()


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
    client = get_client()
    name = volume_name(instance.uuid, disk_name)
    old_id = client.get_volume_id(name)
    if old_id is None:
        raise sio_exc.VolumeNotFound(volume=name)
    domain, pool, thin = storage_for(flavor)
    pool_id = client.get_pool_id(domain, pool)
    info = client.get_volume(old_id)
    if info.get('storagePoolId') in (None, pool_id):
        return old_id
    size = int(info.get('sizeInKb') or 0) * 1024
    temp_name = volume_name(instance.uuid, disk_name, 'temporary')
    stale = client.get_volume_id(temp_name)
    if stale is not None:
        delete_volume(stale)
    LOG.info('Moving ScaleIO volume %s to pool %s/%s', name, domain, pool)
    new_id = client.create_volume(temp_name, naming.size_in_gb(size),
                                  pool_id, thin=thin)
    capacity_changed()
    try:
        copy(map_volume(old_id), map_volume(new_id))
    except Exception:
        delete_volume(new_id)
        raise
    delete_volume(old_id)
    client.rename_volume(new_id, name)
    return new_id


def volume_size(volume_id):
    """Return the size of a volume in bytes."""
    return int(get_client().get_volume(volume_id).get('sizeInKb') or 0) * 1024


# -- all volumes of an instance ----------------------------------------------


def _probe(client, instance_uuid, disk_name, kinds):
    found = []
    for kind in kinds:
        name = volume_name(instance_uuid, disk_name, kind)
        volume_id = client.get_volume_id(name)
        if volume_id is not None:
            found.append(Volume(name, disk_name, kind, volume_id))
    return found


def _probe_every_name(client, instance, kinds):
    """Look up every name an instance disk may have (state unknown)."""
    found = []
    for disk_name in FIXED_DISKS:
        found.extend(_probe(client, instance.uuid, disk_name, kinds))
    for index in range(MAX_EPHEMERALS):
        eph = _probe(client, instance.uuid, 'disk.eph%d' % index, KINDS)
        if not eph:
            break
        found.extend(v for v in eph if v.kind in kinds)
    return found


def _field(obj, name):
    """Read a field of a Nova object or dict; None when it is not set."""
    try:
        if hasattr(obj, 'obj_attr_is_set'):
            if not obj.obj_attr_is_set(name):
                return None
            return getattr(obj, name)
        if isinstance(obj, dict):
            return obj.get(name)
        return getattr(obj, name, None)
    except Exception:  # lazy loads outside a context, old objects
        return None


def _flavor_value(flavor, key):
    value = _field(flavor, key)
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


# Task states in which a disk may have a resize snapshot or a temporary
# volume (a pool move or an interrupted revert).
_RESIZE_TASKS = ('resize_prep', 'resize_migrating', 'resize_migrated',
                 'resize_finish', 'resize_reverting', 'resize_confirming')
_RESCUE_TASKS = ('rescuing', 'unrescuing')


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
    vm_state = _field(instance, 'vm_state')
    flavors = [f for f in (_field(instance, 'flavor'),
                           _field(instance, 'old_flavor'),
                           _field(instance, 'new_flavor')) if f is not None]
    if not vm_state or vm_state == 'error' or not flavors:
        return None
    task = _field(instance, 'task_state') or ''
    disks = ['disk']
    ephemeral = any(_flavor_value(f, 'ephemeral_gb') for f in flavors)
    if any(_flavor_value(f, 'swap') for f in flavors):
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


def _local_sdc_id():
    """Return this host's SDC id as its own ``drv_cfg`` tells it.

    No gateway call: the SDC knows its id in each system. Without drv_cfg
    the id is looked up by GUID (:func:`sdc_id`). The id only selects
    which mappings are listed; every unmap names this host's GUID.
    """
    client = get_client()
    with _LOCK:
        known = _STATE.get('local_sdc')
    if known:
        return known
    try:
        ids = sio_host.query_sdc_ids(CONF.scaleio.drv_cfg_path,
                                     execute=_root_execute)
    except Exception:  # no drv_cfg here: ask the gateway
        ids = {}
    found = ids.get(str(client.get_system_id()).lower()) or sdc_id()
    with _LOCK:
        _STATE['local_sdc'] = found
    return found


def mapped_here(instance, kinds=KINDS):
    """Return the volumes of an instance mapped to this host's SDC.

    One gateway call, whatever the size of the system: the list of the
    volumes mapped to this SDC.

    :param instance: the instance (only ``uuid`` is read).
    :param kinds: the kinds to return.
    """
    found = []
    for info in get_client().get_sdc_volumes(_local_sdc_id()):
        own = _parse_own(info.get('name'), instance.uuid)
        if own is None or own[1] not in kinds:
            continue
        found.append(Volume(info['name'], own[0], own[1], info['id']))
    return found


def instance_volumes(instance, kinds=KINDS, known=()):
    """Return the :class:`Volume` list of an instance.

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
    client = get_client()
    plan = disk_plan(instance)
    if plan is None:
        found = dict((v.name, v) for v in known if v.kind in kinds)
        for volume in _probe_every_name(client, instance, kinds):
            found.setdefault(volume.name, volume)
        return list(found.values())
    disks, may_exist, ephemeral = plan
    if '' in kinds:
        kinds = tuple(k for k in kinds if k in may_exist)
    found = dict((v.name, v) for v in known if v.kind in kinds)

    def probe(disk_name):
        hits = []
        for kind in kinds:
            name = volume_name(instance.uuid, disk_name, kind)
            volume = found.get(name)
            if volume is None:
                volume_id = client.get_volume_id(name)
                if volume_id is None:
                    continue
                volume = found[name] = Volume(name, disk_name, kind,
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


def map_volumes(instance):
    """Map every disk volume of an instance to this host (idempotent).

    Snapshots and temporary volumes are never mapped. When one volume
    cannot be mapped, the volumes this call mapped are unmapped again
    before the error is raised; mappings that were there stay. A stale
    mapping of the instance recorded here (see :func:`unmap_volumes`) is
    forgotten: the instance uses this host again.
    """
    forget_stale_mappings(instance.uuid)
    paths = []
    mapped = []
    try:
        for volume in instance_volumes(instance, kinds=('',)):
            path, newly = _map(volume.id)
            paths.append(path)
            if newly:
                mapped.append(volume.id)
    except Exception:
        for volume_id in mapped:
            try:
                unmap_volume(volume_id)
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
    under the instances directory; :func:`sweep_stale_mappings` unmaps it
    later. A device that lingers after the unmap is only logged.

    :returns: the number of volumes unmapped.
    """
    try:
        volumes = mapped_here(instance)
    except Exception as exc:  # never fail the operation for a clean-up
        LOG.warning('Could not list the ScaleIO volumes mapped to this '
                    'host for instance %s (%s); its mappings here are '
                    'left for a later clean-up', instance.uuid, exc)
        record_stale_mapping(instance.uuid, None)
        return 0
    count = 0
    for volume in volumes:
        if _unmap_or_record(instance.uuid, volume.id):
            count += 1
    if volumes:
        forget_stale_mappings(instance.uuid, only_instance_wide=True)
    LOG.debug('Unmapped %d ScaleIO volumes of instance %s', count,
              instance.uuid)
    return count


def _unmap_or_record(instance_uuid, volume_id):
    """Unmap a volume here; on failure record it; return whether unmapped.
    """
    try:
        return unmap_volume(volume_id)
    except sio_exc.DeviceTimeout as exc:
        LOG.warning('ScaleIO volume %s of instance %s is unmapped but its '
                    'device is still there: %s', volume_id, instance_uuid,
                    exc)
        return True
    except Exception as exc:  # never fail the operation for a clean-up
        LOG.warning('Could not unmap ScaleIO volume %s of instance %s '
                    'from this host (%s); it is left for a later clean-up',
                    volume_id, instance_uuid, exc)
        record_stale_mapping(instance_uuid, volume_id)
        return False


def destroy_volumes(instance):
    """Delete every volume of an instance, snapshots first (idempotent).

    The volumes mapped to this host come from one listing (they are
    unmapped everywhere, then deleted); the other disks the instance may
    have are looked up by name (:func:`instance_volumes`).
    """
    client = get_client()
    try:
        mapped = mapped_here(instance)
    except (sio_exc.SdcNotFound, sio_exc.SdcGuidUnavailable):
        mapped = []  # no usable SDC here: nothing can be mapped here
    mapped_ids = set(v.id for v in mapped)
    volumes = instance_volumes(instance, known=mapped)
    plan = disk_plan(instance)
    if plan is not None and RESIZE_SNAPSHOT not in plan[1] and \
            lookup(instance.uuid, 'disk', RESIZE_SNAPSHOT) is not None:
        # The root disk's resize snapshot is made first and removed last
        # (see snapshot_volumes): a resize left snapshots behind.
        LOG.warning('Instance %s has resize snapshots left; looking up '
                    'every volume name it may have', instance.uuid)
        names = set(v.name for v in volumes)
        volumes.extend(v for v in _probe_every_name(client, instance, KINDS)
                       if v.name not in names)
    volumes.sort(key=lambda v: v.kind == '')
    count = 0
    for volume in volumes:
        if volume.id in mapped_ids:
            try:
                client.unmap_volume(volume.id, all_sdcs=True)
            except sio_exc.VolumeNotFound:
                continue
        if delete_volume(volume.id):
            count += 1
    forget_stale_mappings(instance.uuid)
    if count:
        LOG.info('Deleted %d ScaleIO volumes of instance %s', count,
                 instance.uuid)
    return count


# -- stale mappings ----------------------------------------------------------
#
# A mapping that could not be removed after the instance left this host
# is recorded as an empty file ``<instance uuid>.<volume id>`` (``.all``
# when not even the list of mapped volumes could be read) under
# ``<instances_path>/_sio_stale_mappings``; :func:`sweep_stale_mappings`
# unmaps them at the next image cache manager pass.

STALE_DIR = '_sio_stale_mappings'
_ALL = 'all'


def _stale_dir():
    try:
        base = CONF.instances_path
    except (AttributeError, cfg.NoSuchOptError):
        return None
    return os.path.join(base, STALE_DIR) if base else None


def record_stale_mapping(instance_uuid, volume_id):
    """Record a mapping to remove later (None: all of the instance's).

    :param instance_uuid: the instance the volume belongs to.
    :param volume_id: the volume id, or None.
    """
    directory = _stale_dir()
    if directory is None:
        return
    path = os.path.join(directory, '%s.%s' % (instance_uuid,
                                              volume_id or _ALL))
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory)
        with open(path, 'a'):
            pass
    except (IOError, OSError) as exc:
        LOG.warning('Could not record the stale mapping %s: %s', path, exc)


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

    :param only_instance_wide: drop only the "all mappings" record.
    """
    for owner, volume_id in stale_mappings():
        if owner == str(instance_uuid) and \
                (volume_id is None or not only_instance_wide):
            _drop_stale(owner, volume_id)


class _Owner(object):
    """The part of an instance :func:`mapped_here` reads."""

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
        if _field(instance, 'host') == CONF.host or \
                _field(instance, 'task_state') == 'migrating':
            here[str(_field(instance, 'uuid'))] = instance
    count = 0
    for owner, volume_id in records:
        if owner in here:
            _drop_stale(owner, volume_id)
            continue
        try:
            if volume_id is None:
                ids = [v.id for v in mapped_here(_Owner(owner))]
            else:
                ids = [volume_id]
            for one in ids:
                try:
                    if unmap_volume(one):
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


def lives_here(instance):
    """Whether this host runs the instance and it is not moving away."""
    from nova.compute import task_states
    if instance.host != CONF.host:
        return False
    return instance.task_state not in (task_states.RESIZE_REVERTING,)


def cleanup_volumes(instance, destroy_disks):
    """The ``cleanup``/``_cleanup`` hook.

    :param destroy_disks: delete the volumes (instance deleted, rebuilt,
        shelve-offloaded, failed spawn); otherwise unmap them from this
        host unless the instance still lives here (evacuation source,
        live-migration rollback on the destination, resize revert on the
        destination). A hard reboot keeps its mappings.
    """
    if destroy_disks:
        return destroy_volumes(instance)
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
    """
    remove_snapshots(instance)
    if instance.host != CONF.host:
        unmap_volumes(instance)


def remove_rescue_volume(instance):
    """Delete the rescue disk volume(s) of an instance (unrescue)."""
    rescue = ('disk.rescue', 'disk.config.rescue')
    known = [v for v in mapped_here(instance) if v.disk_name in rescue]
    names = set(v.name for v in known)
    client = get_client()
    name = volume_name(instance.uuid, 'disk.rescue')
    if name not in names:
        volume_id = client.get_volume_id(name)
        if volume_id is not None:
            known.append(Volume(name, 'disk.rescue', '', volume_id))
    count = 0
    for volume in known:
        if delete_volume(volume.id):
            count += 1
    return count


# -- resize snapshots --------------------------------------------------------


def snapshot_volumes(instance):
    """Take the resize snapshot of every disk volume of an instance.

    A snapshot left by an earlier resize is replaced, so that a revert
    always returns to the state before this resize.
    """
    client = get_client()
    names = []
    volumes = instance_volumes(instance, kinds=('',))
    # The root disk first: see remove_snapshots.
    volumes.sort(key=lambda v: (v.disk_name != 'disk', v.disk_name))
    for volume in volumes:
        snap_name = volume_name(instance.uuid, volume.disk_name,
                                RESIZE_SNAPSHOT)
        stale = client.get_volume_id(snap_name)
        if stale is not None:
            LOG.warning('Replacing stale resize snapshot %s', snap_name)
            delete_volume(stale)
        client.snapshot_volume(volume.id, snap_name)
        capacity_changed()
        names.append(snap_name)
    return names


def remove_snapshots(instance):
    """Delete the resize snapshots of an instance (idempotent).

    The snapshot of the root disk goes last (and is made first): while
    any resize snapshot is left, the root disk's is, which is what
    :func:`destroy_volumes` looks for.
    """
    count = 0
    volumes = instance_volumes(instance, kinds=(RESIZE_SNAPSHOT,))
    volumes.sort(key=lambda v: (v.disk_name == 'disk', v.disk_name))
    for volume in volumes:
        if delete_volume(volume.id):
            count += 1
    return count


def rollback_pending(instance):
    """Whether a revert of the instance stopped half-way.

    True when a disk has no volume under its own name but a temporary
    volume and its resize snapshot (see :func:`rollback_snapshots`).
    """
    by_disk = {}
    for volume in instance_volumes(instance):
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

    :param map_here: map the restored volumes to this host.
    :returns: the number of disks restored in this call.
    """
    client = get_client()
    volumes = instance_volumes(instance)
    by_disk = {}
    for volume in volumes:
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
                delete_volume(kinds[''].id)
    restored = 0
    for disk_name in snapped:
        kinds = by_disk[disk_name]
        temp_name = volume_name(instance.uuid, disk_name, 'temporary')
        if '' in kinds:
            if 'temporary' in kinds:
                # Left by an earlier failure (e.g. a pool move).
                delete_volume(kinds['temporary'].id)
            client.rename_volume(kinds[''].id, temp_name)
            kinds['temporary'] = Volume(temp_name, disk_name, 'temporary',
                                        kinds.pop('').id)
        snap = kinds.pop(RESIZE_SNAPSHOT)
        client.rename_volume(snap.id, volume_name(instance.uuid, disk_name))
        kinds[''] = snap
        restored += 1
    for disk_name, kinds in sorted(by_disk.items()):
        temp = kinds.get('temporary')
        if temp is not None and '' in kinds and \
                (disk_name in snapped or disk_name in pending):
            delete_volume(temp.id)
    if map_here:
        for disk_name in sorted(set(snapped) | set(pending)):
            map_volume(by_disk[disk_name][''].id)
    LOG.info('Restored %d ScaleIO volumes of instance %s from their resize '
             'snapshots', restored, instance.uuid)
    return restored


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
    client = get_client()
    name = volume_name(instance_uuid, disk_name, 'temporary')
    stale = client.get_volume_id(name)
    if stale is not None:
        LOG.warning('Deleting stale temporary volume %s', name)
        delete_volume(stale)
    thaw = quiesce() if quiesce is not None else None
    try:
        snap_id = client.snapshot_volume(volume_id, name)
    finally:
        if thaw is not None:
            thaw()
    try:
        export(map_volume(snap_id))
    finally:
        try:
            unmap_volume(snap_id)
        finally:
            delete_volume(snap_id)
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


# Errors of Nova's ``quiesce`` that mean "no guest agent to ask".
_NO_QUIESCE = ('InstanceQuiesceNotSupported', 'QemuGuestAgentNotEnabled',
               'NotImplementedError')


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
        check_snapshot_room(instance, disk_names=[disk.disk_name],
                            kind=TEMPORARY_SNAPSHOT)
    disk.snapshot_extract(target, out_format,
                          quiesce=_quiescer(driver, context, instance,
                                            image_meta))


# -- zero-copy boot: base volumes --------------------------------------------
#
# With ``[scaleio] zero_copy_boot`` the image of a root disk is copied once
# per pool into a base volume, and every root disk is a ScaleIO snapshot
# of it. A vTree holds a limited number of snapshots
# (``[scaleio] vtree_snapshot_limit``), and the resize and live snapshots
# of the instances booted from a base volume belong to its vTree too, so
# boots stop at ``zero_copy_max_vtree_snapshots`` and fill a new base
# volume (the next *generation*). Generations are numbered from 0 without
# gaps: lookups probe 0, 1, ... up to the first miss.
#
# A base volume being filled has a ``#`` name. A fill is *stale* when its
# filler is gone: the ``#`` volume is mapped to this host's SDC but no
# fill of this process runs (nova-compute stopped mid-fill), or it is
# older than ``zero_copy_fill_timeout`` by the gateway's creation time.
# A stale fill is removed and filled again by the next boot; creating
# the ``#`` volume is the lock, so of two hosts taking over only one
# fills. The image cache pass removes stale fills too.

BASE_CODE = 'B'
MAX_GENERATIONS = 1000
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
    """Return ``[(generation, volume_id)]`` of an image's base volumes."""
    client = get_client()
    found = []
    for generation in range(MAX_GENERATIONS):
        volume_id = client.get_volume_id(
            base_volume_name(image_id, pool_id, generation))
        if volume_id is None:
            break
        found.append((generation, volume_id))
    return found


def _stale_fill(client, fill_id):
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
    if mapped and sdc_id() in mapped:
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


def _remove_stale_fill(client, name, fill_id, reason):
    """Delete a stale ``#`` volume; return whether this call deleted it."""
    LOG.warning('Removing the abandoned fill of ScaleIO base volume %s '
                '(%s): %s', name, fill_id, reason)
    return delete_volume(fill_id)


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
        reason = _stale_fill(client, fill_id)
        if reason is not None:
            _remove_stale_fill(client, filling, fill_id, reason)
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
    (see :func:`_stale_fill`). None is returned when no base volume could
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
        capacity_changed()
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
        delete_volume(volume_id)
        return published
    record_base_image(image_id)
    LOG.info('Filling ScaleIO base volume %s (generation %d) with image %s',
             filling, generation, image_id)
    _ACTIVE_FILLS.add(volume_id)
    try:
        fill(map_volume(volume_id))
        unmap_volume(volume_id)
        client.rename_volume(volume_id, final)
    except sio_exc.NameInUse:
        # Another host took the fill over and published it first.
        delete_volume(volume_id)
        return client.get_volume_id(final)
    except Exception:
        if not delete_volume(volume_id):
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


def _vtree_snapshots(client, volume_id):
    """Return how many snapshots the vTree of ``volume_id`` holds."""
    return max(_vtree_volume_count(client, volume_id) - 1, 0)


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
            count = _vtree_snapshots(client, volume_id)
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
        volume (run as root).
    :returns: ``(volume_id, size_bytes)`` of the snapshot, or None when
        the base volume could not be had (the caller copies instead).
    """
    client = get_client()
    domain, pool, _thin = storage_for(flavor)
    pool_id = client.get_pool_id(domain, pool)
    size = naming.check_size(name, image_size, round_up=True)
    full = set()
    for _attempt in range(_FILL_ATTEMPTS):
        generation, base_id = _pick_base(client, image_id, pool_id, full)
        if generation >= MAX_GENERATIONS:
            return None
        if base_id is None:
            LOG.info('Starting generation %d of the base volume of image '
                     '%s in pool %s', generation, image_id, pool_id)
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
        capacity_changed()
        record_base_image(image_id)
        return snap_id, volume_size(base_id)
    return None


def _vtree_volume_count(client, volume_id):
    """Return how many volumes share the vTree of ``volume_id``.

    The figure is ``numOfVolumes`` of the vTree's statistics, where
    Cinder's PowerFlex driver reads it too; the vTree object is read when
    the statistics lack it.

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


def check_snapshot_room(instance, disk_names=None, kind=RESIZE_SNAPSHOT):
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
    client = get_client()
    limit = CONF.scaleio.vtree_snapshot_limit
    for volume in instance_volumes(instance, kinds=('',)):
        if disk_names is not None and volume.disk_name not in disk_names:
            continue
        try:
            count = _vtree_snapshots(client, volume.id)
        except sio_exc.VolumeNotFound:
            continue
        except sio_exc.MalformedResponse as exc:
            LOG.warning('Cannot count the snapshots in the vTree of ScaleIO '
                        'volume %s: %s', volume.name, exc)
            continue
        if count < limit:
            continue
        stale = client.get_volume_id(volume_name(
            instance.uuid, volume.disk_name, kind))
        if stale is not None:
            continue
        LOG.warning('The vTree of ScaleIO volume %s holds %d snapshots, '
                    '[scaleio] vtree_snapshot_limit is %d', volume.name,
                    count, limit)
        raise sio_exc.VTreeLimitReached(volume=volume.name)


def remove_unused_base_volumes(image_ids, pools=None):
    """Delete the base volumes no root disk is a snapshot of.

    Meant for Nova's image cache manager: it passes the images it no
    longer needs on this node; a base volume is deleted only when its
    vTree holds no other volume, whichever host made them. The remaining
    generations are renamed down so that they stay numbered without gaps.

    :param image_ids: Glance image ids to look at.
    :param pools: ``(domain, pool)`` pairs; default :func:`served_pools`.
    :returns: the names of the deleted base volumes.
    """
    client = get_client()
    removed = []
    for pool_id in _existing_pool_ids(client, pools):
        for image_id in image_ids:
            kept = []
            for generation, volume_id in base_volumes(image_id, pool_id):
                name = base_volume_name(image_id, pool_id, generation)
                try:
                    in_use = _vtree_volume_count(client, volume_id) > 1
                except sio_exc.VolumeNotFound:
                    continue
                if in_use:
                    kept.append((generation, volume_id))
                elif delete_volume(volume_id):
                    LOG.info('Deleted unused ScaleIO base volume %s of '
                             'image %s', name, image_id)
                    removed.append(name)
            for wanted, (generation, volume_id) in enumerate(kept):
                if wanted != generation:
                    client.rename_volume(
                        volume_id, base_volume_name(image_id, pool_id,
                                                    wanted))
    return removed


def _existing_pool_ids(client, pools=None):
    """Yield the ids of the pools that exist, skipping unknown ones.

    :param client: the gateway client.
    :param pools: ``(domain, pool)`` pairs; default :func:`served_pools`.
    """
    for domain, pool in pools or served_pools():
        try:
            yield client.get_pool_id(domain, pool)
        except sio_exc.NotFound:
            continue


def _fills(client, image_id, pool_id):
    """Return ``[(name, volume id)]`` of the ``#`` volumes of an image.

    A fill is made at the generation after the last published one, or at
    a published generation's number when the numbering moved down; so
    the ``#`` names of generations 0 .. last + 1 are looked up.
    """
    found = []
    count = len(base_volumes(image_id, pool_id))
    for generation in range(min(count + 1, MAX_GENERATIONS)):
        name = base_volume_name(image_id, pool_id, generation, filling=True)
        volume_id = client.get_volume_id(name)
        if volume_id is not None:
            found.append((name, volume_id))
    return found


def remove_stale_fills(image_ids, pools=None):
    """Delete the stale ``#`` volumes of images (see :func:`_stale_fill`).

    :param image_ids: Glance image ids to look at.
    :param pools: ``(domain, pool)`` pairs; default :func:`served_pools`.
    :returns: the names of the deleted ``#`` volumes.
    """
    client = get_client()
    removed = []
    for pool_id in _existing_pool_ids(client, pools):
        for image_id in image_ids:
            for name, fill_id in _fills(client, image_id, pool_id):
                reason = _stale_fill(client, fill_id)
                if reason is not None and _remove_stale_fill(
                        client, name, fill_id, reason):
                    removed.append(name)
    return removed


# -- Nova's image cache manager ----------------------------------------------
#
# Base volumes are found by name, never by listing the system, so each
# compute host keeps a record of the images it booted by zero-copy: an
# empty file per image id under ``<instances_path>/_sio_base_volumes``,
# touched on every use. The image cache manager pass then looks only at
# the recorded images no instance of the node uses any more.

REGISTRY_DIR = '_sio_base_volumes'


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


def _registry():
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
    registry = _registry()
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
    registry = _registry()
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
    the image is tried again at the next pass.

    :param all_instances: the instances Nova's image cache manager sees.
    :returns: the names of the deleted base volumes and stale fills.
    """
    sweep_stale_mappings(all_instances)
    recorded = recorded_base_images()
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
            record_base_image(image_id)
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
            os.unlink(os.path.join(_registry(), image_id))
        except (IOError, OSError):
            pass
    return removed


def _remaining_base_volumes(image_id):
    client = get_client()
    count = 0
    for domain, pool in served_pools():
        try:
            pool_id = client.get_pool_id(domain, pool)
        except sio_exc.NotFound:
            continue
        count += len(base_volumes(image_id, pool_id))
        count += len(_fills(client, image_id, pool_id))
    return count


# -- capacity ----------------------------------------------------------------


def served_pools():
    """Return the ``(domain, pool)`` pairs this node creates volumes in.

    The default pool first, then ``[scaleio] additional_pools``.
    """
    pools = [(CONF.scaleio.protection_domain_name,
              CONF.scaleio.storage_pool_name)]
    for entry in CONF.scaleio.additional_pools or ():
        domain, _sep, pool = entry.partition(':')
        pair = (domain.strip(), pool.strip())
        if all(pair) and pair not in pools:
            pools.append(pair)
    return pools


def _pool_numbers(cap, provisioned):
    """Return ``(total, free)`` bytes of one pool.

    :param cap: :meth:`~.client.Client.pool_capacity` of the pool; its
        ``provisioned_bytes`` already counts one copy of every volume and
        snapshot (the gateway's figures count both mirror copies and the
        client halves them, as Cinder's PowerFlex driver does).
    :param provisioned: count thin volumes at their full size.
    """
    total = int(cap['total_bytes'])
    free = min(int(cap['free_bytes']), total)
    if provisioned:
        # Thin volumes count at their full size: a pool never looks
        # emptier than what its volumes may grow to.
        used = max(total - free, int(cap.get('provisioned_bytes') or 0))
        free = max(min(free, total - used), 0)
    return total, free


def capacity_changed():
    """Drop the cached pool capacity figures (see :func:`get_pool_info`).

    Called after this host created, extended, snapshotted or deleted a
    volume, so that the next capacity report reads the gateway.
    """
    _STATE.pop('capacity', None)


def get_pool_info():
    """Return the capacity this node reports, in bytes.

    ``{'total', 'free', 'used'}`` over :func:`served_pools`: ``total`` is
    the sum of the pools' net capacities; ``free`` is the smallest free
    capacity of any served pool, so that a disk the scheduler admits fits
    in whichever pool its flavor picks; ``used = total - free``. With
    ``[scaleio] capacity_mode = provisioned`` a pool's used capacity is
    at least the sum of its volumes' provisioned sizes (thin included).
    With the defaults (one pool, ``allocated``) these are the default
    pool's own figures.

    The figures are reused for ``[scaleio] capacity_cache_seconds``
    unless :func:`capacity_changed` dropped them.
    """
    client = get_client()
    provisioned = CONF.scaleio.capacity_mode == 'provisioned'
    pools = served_pools()
    key = (client, provisioned, tuple(pools))
    ttl = CONF.scaleio.capacity_cache_seconds
    now = time.time()
    cached = _STATE.get('capacity')
    if (ttl > 0 and cached is not None and cached[0] == key and
            0 <= now - cached[1] < ttl):
        return dict(cached[2])
    total = 0
    free = None
    for domain, pool in pools:
        cap = client.pool_capacity(client.get_pool_id(domain, pool))
        pool_total, pool_free = _pool_numbers(cap, provisioned)
        total += pool_total
        free = pool_free if free is None else min(free, pool_free)
    free = free or 0
    info = {'total': total, 'free': free, 'used': max(total - free, 0)}
    if ttl > 0:
        _STATE['capacity'] = (key, now, dict(info))
    return info


def get_local_gb_info():
    """Return :func:`get_pool_info` in whole GiB (free rounded down)."""
    info = get_pool_info()
    total = info['total'] // GiB
    free = info['free'] // GiB
    return {'total': total, 'free': free, 'used': total - free}
