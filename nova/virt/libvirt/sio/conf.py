# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The ``[scaleio]`` options of the ScaleIO ephemeral backend.

``register_opts(conf)`` registers them, ``list_opts()`` feeds
oslo-config-generator and ``validate(conf)`` checks them, raising
:class:`~.exception.InvalidConfig` that names the option at fault.

Only option features present in oslo.config 1.x are used (no ``min`` /
``max`` / ``PortOpt``), so the module loads on Kilo as well; ranges are
checked by :func:`validate`.
"""

from __future__ import absolute_import

import os
import re

from oslo_config import cfg

from . import exception

GROUP = 'scaleio'

scaleio_group = cfg.OptGroup(
    GROUP, title='ScaleIO / PowerFlex ephemeral storage options')

_GATEWAY_OPTS = [
    cfg.StrOpt('rest_server_ip',
               help='Address (IP or host name) of the ScaleIO / PowerFlex '
                    'REST gateway. Required.'),
    cfg.IntOpt('rest_server_port', default=443,
               help='TCP port of the REST gateway.'),
    cfg.StrOpt('rest_server_scheme', default='https',
               choices=('https', 'http'),
               help='Protocol of the REST gateway. Use http only for test '
                    'gateways.'),
    cfg.StrOpt('rest_server_username',
               help='User name for the REST gateway. Required.'),
    cfg.StrOpt('rest_server_password', secret=True,
               help='Password for the REST gateway. Required.'),
    cfg.BoolOpt('verify_server_certificate', default=True,
                help='Verify the TLS certificate of the REST gateway.'),
    cfg.StrOpt('server_certificate_path',
               help='Absolute path of the CA bundle that signed the '
                    'gateway certificate. When unset and verification is '
                    'on, the system CA store is used.'),
    cfg.FloatOpt('connect_timeout', default=10.0,
                 help='Seconds to wait for a connection to the gateway.'),
    cfg.FloatOpt('read_timeout', default=60.0,
                 help='Seconds to wait for an answer from the gateway.'),
    cfg.IntOpt('max_retries', default=3,
               help='How many times an idempotent gateway call is '
                    'repeated after a transient failure.'),
    cfg.FloatOpt('retry_interval', default=0.5,
                 help='First delay in seconds between retries; it doubles '
                      'with each retry.'),
]

_STORAGE_OPTS = [
    cfg.StrOpt('protection_domain_name',
               help='Protection domain of the storage pool. Required.'),
    cfg.StrOpt('storage_pool_name',
               help='Storage pool for instance disks. Required.'),
    cfg.StrOpt('provisioning_type', default='thick',
               choices=('thick', 'thin'),
               help='Provisioning of new volumes. A pool with the Fine '
                    'Granularity data layout holds thin volumes only: '
                    'there thick volumes are created thin, and a warning '
                    'is logged.'),
    cfg.BoolOpt('allow_non_padded_volumes', default=False,
                help='Create volumes in storage pools whose zero padding '
                     'is disabled. Such volumes may show data of volumes '
                     'deleted before, possibly of other tenants, so they '
                     'are refused by default (like Cinder\'s '
                     'powerflex_allow_non_padded_volumes).'),
    cfg.BoolOpt('round_volume_capacity', default=False,
                help='Round disk sizes up to the next multiple of 8 GiB '
                     'instead of refusing sizes that are not multiples.'),
    cfg.StrOpt('volume_name_prefix', default='',
               help='Up to 4 letters or digits put in front of every '
                    'volume name, so that several clouds can share one '
                    'ScaleIO system without name clashes.'),
    cfg.BoolOpt('zero_copy_boot', default=False,
                help='Boot from a ScaleIO snapshot of a cached image '
                     'volume instead of copying the image into every new '
                     'root disk.'),
    cfg.BoolOpt('live_snapshot', default=False,
                help='Snapshot instances without suspending them: the '
                     'guest file systems are frozen through the guest '
                     'agent (images with hw_qemu_guest_agent) only while '
                     'a ScaleIO snapshot of the disk is taken, and the '
                     'image is exported from that snapshot, which is '
                     'deleted afterwards.'),
    cfg.IntOpt('zero_copy_fill_timeout', default=600,
               help='Longest time in seconds the copy of an image into a '
                    'new base volume may take. A compute host that finds '
                    'another host filling the base volume of the same '
                    'image waits for it; a fill older than this (counted '
                    'from the creation time the gateway reports, so keep '
                    'the clocks in sync) or one left by an earlier run of '
                    'this host\'s nova-compute is abandoned: it is '
                    'removed and filled again. Set it above the time the '
                    'largest image takes to copy. 0: never wait, copy the '
                    'image into the root disk instead, and remove only '
                    'the fills this host left.'),
    cfg.IntOpt('vtree_snapshot_limit', default=126,
               help='Snapshots the ScaleIO system allows in one volume '
                    'tree (vTree): 126 on PowerFlex 3.5 and later. '
                    'Zero-copy boot leaves room below it (see '
                    'zero_copy_max_vtree_snapshots), and the snapshot room '
                    'check refuses a resize or live snapshot of a disk '
                    'whose vTree holds this many snapshots, before '
                    'anything is changed.'),
    cfg.IntOpt('zero_copy_max_vtree_snapshots', default=0,
               help='Root disks zero-copy boot makes from one base volume '
                    'before it fills the next generation, so that the '
                    'resize snapshots and live snapshots of those '
                    'instances, which belong to the same vTree, find '
                    'room. 0 (the default) takes half of '
                    'vtree_snapshot_limit: every instance booted from the '
                    'base volume can take its resize or live snapshot at '
                    'the same time. At most vtree_snapshot_limit.'),
    cfg.ListOpt('additional_pools', default=[],
                help='Pools besides the default one that flavors of this '
                     'node may pick with sio:pd_name / sio:sp_name, as '
                     '"<protection domain>:<storage pool>" entries. They '
                     'are counted in the capacity the node reports.'),
    cfg.StrOpt('capacity_mode', default='allocated',
               choices=('allocated', 'provisioned'),
               help='How used capacity is counted: "allocated" reports '
                    'what the pool can still allocate; "provisioned" also '
                    'counts thin volumes at their full size, so that the '
                    'scheduler never over-commits a thin pool.'),
    cfg.IntOpt('capacity_cache_seconds', default=5,
               help='Seconds the pool capacity figures read for the '
                    'resource tracker are reused, so that the capacity '
                    'reads of several updates close together cost one '
                    'gateway call. A volume created, extended, '
                    'snapshotted or deleted by this host drops them at '
                    'once; changes made by other hosts show after at most '
                    'this long. 0 (or less) reads the gateway every time.'),
]

_HOST_OPTS = [
    cfg.StrOpt('default_sdcguid',
               help='GUID of the local SDC, in any letter case. When '
                    'unset it is read with "drv_cfg --query_guid".'),
    cfg.StrOpt('drv_cfg_path',
               help='Path of the SDC drv_cfg tool. When unset, the known '
                    'install paths are tried.'),
    cfg.StrOpt('device_root', default='/dev/disk/by-id',
               help='Directory where the SDC block devices appear as '
                    'emc-vol-<systemId>-<volumeId>.'),
    cfg.FloatOpt('device_wait_timeout', default=30.0,
                 help='Seconds to wait for a mapped volume to appear or '
                      'an unmapped one to vanish under device_root.'),
]

ALL_OPTS = _GATEWAY_OPTS + _STORAGE_OPTS + _HOST_OPTS

REQUIRED = ('rest_server_ip', 'rest_server_username',
            'rest_server_password', 'protection_domain_name',
            'storage_pool_name')

_GUID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-'
                      r'[0-9a-f]{12}$')
_PREFIX_RE = re.compile(r'^[A-Za-z0-9]{0,4}$')


def register_opts(conf):
    """Register the ``[scaleio]`` group and options on ``conf``.

    :param conf: an ``oslo_config.cfg.ConfigOpts`` instance.
    """
    conf.register_group(scaleio_group)
    conf.register_opts(ALL_OPTS, group=scaleio_group)


def list_opts():
    """Return ``[('scaleio', [options])]`` for oslo-config-generator."""
    return [(scaleio_group, list(ALL_OPTS))]


def _bad(option, reason):
    return exception.InvalidConfig(option=option, reason=reason)


def validate(conf):
    """Check the ``[scaleio]`` options of ``conf``.

    :param conf: a ``ConfigOpts`` with the options registered.
    :raises InvalidConfig: naming the first option that is missing or bad.
    """
    group = conf[GROUP]
    for name in REQUIRED:
        if not group[name]:
            raise _bad(name, 'a value is required')
    port = group.rest_server_port
    if not 0 < port < 65536:
        raise _bad('rest_server_port', '%s is not a TCP port' % port)
    for name in ('connect_timeout', 'read_timeout', 'device_wait_timeout'):
        if group[name] <= 0:
            raise _bad(name, 'must be greater than 0')
    if group.max_retries < 0:
        raise _bad('max_retries', 'must not be negative')
    if group.retry_interval < 0:
        raise _bad('retry_interval', 'must not be negative')
    path = group.server_certificate_path
    if path:
        if not os.path.isabs(path):
            raise _bad('server_certificate_path', 'must be an absolute path')
        if not os.path.isfile(path):
            raise _bad('server_certificate_path', '%s does not exist' % path)
    guid = group.default_sdcguid
    if guid and not _GUID_RE.match(guid.strip().lower()):
        raise _bad('default_sdcguid', '%r is not a GUID' % guid)
    if not _PREFIX_RE.match(group.volume_name_prefix or ''):
        raise _bad('volume_name_prefix',
                   'use at most 4 letters or digits')
    for entry in group.additional_pools or ():
        if len([p for p in entry.split(':') if p.strip()]) != 2:
            raise _bad('additional_pools',
                       '%r is not "<domain>:<pool>"' % entry)
    if group.zero_copy_fill_timeout < 0:
        raise _bad('zero_copy_fill_timeout', 'must not be negative')
    if group.vtree_snapshot_limit < 1:
        raise _bad('vtree_snapshot_limit', 'must be greater than 0')
    if not 0 <= group.zero_copy_max_vtree_snapshots <= \
            group.vtree_snapshot_limit:
        raise _bad('zero_copy_max_vtree_snapshots',
                   'must be between 0 and vtree_snapshot_limit (%d)'
                   % group.vtree_snapshot_limit)
    if group.drv_cfg_path and not os.path.isabs(group.drv_cfg_path):
        raise _bad('drv_cfg_path', 'must be an absolute path')
    if not os.path.isabs(group.device_root or ''):
        raise _bad('device_root', 'must be an absolute path')
