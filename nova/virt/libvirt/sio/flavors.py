# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Where a flavor's disks go, and the 8 GiB rule for their sizes.

The ``sio:pd_name``, ``sio:sp_name`` and ``sio:provisioning_type`` extra
specs of a flavor pick the protection domain, the storage pool and the
provisioning of its volumes (:func:`storage_for`); ``[scaleio]`` gives the
defaults. ScaleIO allocates in 8 GiB units: a disk size that is not a
multiple of 8 GiB fails with a message naming the flavor, or is rounded
up with ``[scaleio] round_volume_capacity`` (:func:`checked_size`).

Flavors and instances come as Nova objects or as dicts, depending on the
release and the caller; :func:`field` reads either without lazy-loading.
"""

from __future__ import absolute_import

import logging

from oslo_config import cfg

from nova.virt.libvirt.sio import conf as sio_conf
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import naming

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
sio_conf.register_opts(CONF)

GiB = 1024 ** 3
MiB = 1024 ** 2

# Flavor extra specs honoured since the 2016 patches.
SPEC_DOMAIN = 'sio:pd_name'
SPEC_POOL = 'sio:sp_name'
SPEC_PROVISIONING = 'sio:provisioning_type'
_PROVISIONING = {'thin': True, 'thinprovisioned': True,
                 'thick': False, 'thickprovisioned': False}


def field(obj, name):
    """Read a field of a Nova object or dict; None when it is not set.

    :param obj: a Nova object, a dict or any object.
    :param name: the field name.
    """
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


def flavor_value(flavor, key):
    """Return an integer field of a flavor, 0 when unset or not a number.

    :param flavor: a Flavor object or a dict.
    :param key: ``root_gb``, ``ephemeral_gb``, ``swap``...
    """
    value = field(flavor, key)
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


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
    :raises InvalidConfig: the provisioning is neither thin nor thick.
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
    return field(flavor, 'name')


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
