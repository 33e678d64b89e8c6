# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The capacity this compute node reports: its ScaleIO storage pools.

A node creates volumes in the default pool of ``[scaleio]`` and in the
``additional_pools`` its flavors may name (:func:`served_pools`). The
figures are read from the gateway and kept for
``[scaleio] capacity_cache_seconds``; every volume this host creates,
extends, snapshots or deletes drops them (:func:`capacity_changed`).
"""

from __future__ import absolute_import

import time

from oslo_config import cfg

from nova.virt.libvirt.sio import connection

CONF = cfg.CONF

GiB = 1024 ** 3
_CACHE = 'capacity'


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
    connection.forget(_CACHE)


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
    client = connection.get_client()
    provisioned = CONF.scaleio.capacity_mode == 'provisioned'
    pools = served_pools()
    key = (client, provisioned, tuple(pools))
    ttl = CONF.scaleio.capacity_cache_seconds
    now = time.time()
    cached = connection.recall(_CACHE)
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
        connection.remember(_CACHE, (key, now, dict(info)))
    return info


def get_local_gb_info():
    """Return :func:`get_pool_info` in whole GiB (free rounded down)."""
    info = get_pool_info()
    total = info['total'] // GiB
    free = info['free'] // GiB
    return {'total': total, 'free': free, 'used': total - free}
