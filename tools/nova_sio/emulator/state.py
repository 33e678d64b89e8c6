# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""State and semantics of the emulated ScaleIO system (no HTTP here).

Objects, rules and error answers follow scaleio-api.md sections 2-4 and
the emulator spec in section 7 ("Mirroring" layout, 3.x and 4.x). Every
public method either returns JSON-able data or raises :class:`ApiError`,
which the server turns into the gateway's error body.

Facts marked [U] in the reference are choices of this emulator: renaming
a volume to its own name answers 99; setting the current size is a no-op;
``removeMappedSdc {"allSdcs": ""}`` succeeds on an unmapped volume.

Behaviour taken from public clients of the real gateway:

* pool statistics count both mirror copies: ``thickCapacityInUseInKb``,
  ``thinCapacityAllocatedInKb`` and the snapshot capacity are twice the
  volumes' sizes, which is why Cinder's PowerFlex driver
  (``cinder/volume/drivers/dell_emc/powerflex/driver.py``,
  ``_compute_pool_stats``) halves their sum. From 3.5 on the snapshot
  figure is ``snapshotCapacityInKb``; before it was
  ``snapCapacityInUseInKb`` (same file), and each version knows only its
  own name;
* a pool has ``zeroPaddingEnabled`` and ``dataLayout``
  (``MediumGranularity`` or ``FineGranularity``, PyPowerFlex
  ``objects/gen1/storage_pool.py``); a Fine Granularity pool holds no
  thick volumes (Cinder's driver, ``_check_pool_support_thick_vols``);
* 4.x renumbered the mapping errors: "already mapped" 81 -> 4037 and
  "not mapped" 84 -> 4039 (os-brick, ``os_brick/initiator/connectors/
  scaleio.py``). The 4.x answer to removing a mapped volume is not
  published; the emulator answers it with a code and text that no
  client's table holds ([U]), so that a client has to consult the
  volume's ``mappedSdcInfo`` (Cinder's ``rest_client.remove_volume``
  reads it before removing) instead of recognising the error.
"""

import itertools
import random
import re
import threading
import time

KiB_PER_GiB = 1024 * 1024
GRANULARITY_KB = 8 * KiB_PER_GiB
MAX_NAME = 31
REMOVE_MODES = ('ONLY_ME', 'INCLUDING_DESCENDANTS', 'DESCENDANTS_ONLY',
                'WHOLE_VTREE')
VOLUME_TYPES = ('ThickProvisioned', 'ThinProvisioned')
DATA_LAYOUTS = ('MediumGranularity', 'FineGranularity')
# [U] 4.x answer to removeVolume on a mapped volume: unpublished number.
MAPPED_ON_REMOVAL_4X = (4063, 'The volume cannot be removed while it has '
                        'SDC mappings')
ACCESS_MODES = ('ReadWrite', 'ReadOnly', 'NoAccess')
_HEX_RE = re.compile(r'^[0-9a-fA-F]{1,16}$')
_NAME_RE = re.compile(r'^[!-~]+$')  # printable ASCII, no space


class ApiError(Exception):
    """An error answer of the gateway.

    :param status: HTTP status.
    :param code: ``errorCode``.
    :param message: ``message``.
    :param details: optional ``details`` list.
    """

    def __init__(self, status, code, message, details=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def body(self):
        """Return the JSON error body (scaleio-api.md section 3.1)."""
        body = {'message': self.message, 'httpStatusCode': self.status,
                'errorCode': self.code}
        if self.details is not None:
            body['details'] = self.details
        return body


def not_found():
    return ApiError(500, 3, 'Not found')


def floor_gran(kb):
    return max(kb, 0) // GRANULARITY_KB * GRANULARITY_KB


def as_int(value, field):
    """Parse a number sent as a string or a native value."""
    if isinstance(value, bool):
        raise ApiError(400, 0, '%s must be a number' % field)
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise ApiError(400, 0, '%s must be a number' % field)


def as_bool(value):
    """Parse a boolean sent as TRUE/True/true/"1" or a native value."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ('true', '1', 'yes')


class Ids(object):
    """Unique 16-hex-digit ids with a per-run random high half."""

    def __init__(self, seed=None):
        rnd = random.Random(seed)
        self._high = rnd.getrandbits(32)
        self._counter = itertools.count(1)

    def next(self):
        return '%08x%08x' % (self._high, next(self._counter))


class Pool(object):
    def __init__(self, pool_id, name, pd_id, capacity_gb, overprovision):
        self.id = pool_id
        self.name = name
        self.pd_id = pd_id
        self.capacity_kb = floor_gran(capacity_gb * KiB_PER_GiB)
        self.overprovision = overprovision
        self.zero_padding = True
        self.data_layout = 'MediumGranularity'
        self.thick_kb = 0
        self.thin_kb = 0
        self.snap_kb = 0
        self.volume_ids = set()

    @property
    def available_kb(self):
        return floor_gran(self.capacity_kb - self.thick_kb)

    @property
    def allocation_limit_kb(self):
        return floor_gran(self.capacity_kb * self.overprovision)

    def statistics(self, version=(3, 6)):
        """Return the statistics a gateway of ``version`` knows.

        Allocation figures count both mirror copies (see the module
        docstring).

        :param version: ``(major, minor)`` of the emulated API.
        """
        spare = self.capacity_kb // 5
        stats = {
            'capacityLimitInKb': 2 * self.capacity_kb + spare,
            'spareCapacityInKb': spare,
            'capacityInUseInKb': 2 * self.thick_kb,
            'maxCapacityInKb': 2 * self.capacity_kb + spare,
            'capacityAvailableForVolumeAllocationInKb': self.available_kb,
            'volumeAllocationLimitInKb': self.allocation_limit_kb,
            'thickCapacityInUseInKb': 2 * self.thick_kb,
            'thinCapacityAllocatedInKb': 2 * self.thin_kb,
            'netCapacityInUseInKb': self.thick_kb,
            'netUnusedCapacityInKb': self.capacity_kb - self.thick_kb,
            'numOfVolumes': len(self.volume_ids),
        }
        if tuple(version) >= (3, 5):
            stats['snapshotCapacityInKb'] = 2 * self.snap_kb
        else:
            stats['snapCapacityInUseInKb'] = 2 * self.snap_kb
        return stats


class Volume(object):
    __slots__ = ('id', 'name', 'size_kb', 'type', 'pool_id', 'vtree_id',
                 'ancestor', 'created', 'mappings', 'baseline')

    def __init__(self, vol_id, name, size_kb, vtype, pool_id, vtree_id,
                 ancestor=None, baseline=False):
        self.id = vol_id
        self.name = name
        self.size_kb = size_kb
        self.type = vtype
        self.pool_id = pool_id
        self.vtree_id = vtree_id
        self.ancestor = ancestor
        self.created = int(time.time())
        self.mappings = {}
        self.baseline = baseline


class Sdc(object):
    __slots__ = ('id', 'guid', 'ip', 'name', 'connected', 'host',
                 'registered')

    def __init__(self, sdc_id, guid, ip, name, host=None):
        self.id = sdc_id
        self.guid = guid.upper()
        self.ip = ip
        self.name = name
        self.connected = True
        self.host = host
        # False: not registered / not approved (restricted SDC mode).
        self.registered = True


class NullListener(object):
    """Receives volume events; the SDC host simulation implements it."""

    def mapped(self, volume, sdc):
        pass

    def unmapped(self, volume, sdc):
        pass

    def resized(self, volume):
        pass

    def snapshotted(self, source, snapshot):
        pass

    def removed(self, volume):
        pass


class System(object):
    """The emulated ScaleIO system.

    :param version: API version string, e.g. ``'3.6'`` or ``'4.5'``.
    :param seed: seed for ids (tests may want stable ids).
    """

    def __init__(self, version='3.6', seed=None, listener=None):
        self.lock = threading.RLock()
        self.version = version
        self.ids = Ids(seed)
        self.id = self.ids.next()
        self.name = 'emulated-scaleio'
        self.listener = listener or NullListener()
        self.max_vtree_volumes = 127
        self.removal_window = 0.0
        self.domains = {}          # id -> name
        self.pools = {}            # id -> Pool
        self.volumes = {}          # id -> Volume
        self.by_name = {}          # name -> id
        self.vtrees = {}           # vtree id -> set of volume ids
        self.sdcs = {}             # id -> Sdc
        self.sdc_by_guid = {}      # lower guid -> id
        self.sdc_volumes = {}      # sdc id -> set of volume ids
        self.removing = {}         # volume id -> end of removal window

    @property
    def major(self):
        match = re.match(r'\d+', self.version)
        return int(match.group(0)) if match else 3

    @property
    def version_tuple(self):
        """``(major, minor)`` of the emulated API version."""
        numbers = re.findall(r'\d+', self.version)[:2]
        return tuple(int(n) for n in numbers + ['0'] * (2 - len(numbers)))

    # -- setup -------------------------------------------------------------

    def add_domain(self, name):
        with self.lock:
            for pd_id, pd_name in self.domains.items():
                if pd_name == name:
                    return pd_id
            pd_id = self.ids.next()
            self.domains[pd_id] = name
            return pd_id

    def add_pool(self, pd_name, name, capacity_gb=1024, overprovision=10):
        with self.lock:
            pd_id = self.add_domain(pd_name)
            for pool in self.pools.values():
                if pool.pd_id == pd_id and pool.name == name:
                    return pool.id
            pool = Pool(self.ids.next(), name, pd_id, capacity_gb,
                        overprovision)
            self.pools[pool.id] = pool
            return pool.id

    def set_pool(self, pool_id, capacity_gb=None, overprovision=None,
                 zero_padding=None, data_layout=None):
        """Change a pool; None keeps a value.

        :param pool_id: pool id.
        :param capacity_gb: net capacity.
        :param overprovision: thin allocation limit as a multiple of it.
        :param zero_padding: ``zeroPaddingEnabled``.
        :param data_layout: ``MediumGranularity`` or ``FineGranularity``.
        """
        with self.lock:
            pool = self.pools[pool_id]
            if data_layout is not None and data_layout not in DATA_LAYOUTS:
                raise ValueError('data_layout must be one of %s'
                                 % (DATA_LAYOUTS,))
            if capacity_gb is not None:
                pool.capacity_kb = floor_gran(capacity_gb * KiB_PER_GiB)
            if overprovision is not None:
                pool.overprovision = overprovision
            if zero_padding is not None:
                pool.zero_padding = bool(zero_padding)
            if data_layout is not None:
                pool.data_layout = data_layout

    def add_sdc(self, guid, ip, name, host=None):
        with self.lock:
            sdc = Sdc(self.ids.next(), guid, ip, name, host)
            self.sdcs[sdc.id] = sdc
            self.sdc_by_guid[sdc.guid.lower()] = sdc.id
            self.sdc_volumes[sdc.id] = set()
            return sdc

    def preload(self, pool_id, volumes=0, sdcs=0, prefix='pre'):
        """Add many baseline volumes and SDCs quickly (benchmarks)."""
        import uuid
        with self.lock:
            pool = self.pools[pool_id]
            for n in range(volumes):
                vol_id = self.ids.next()
                name = '%s%08d' % (prefix, len(self.volumes))
                vol = Volume(vol_id, name, GRANULARITY_KB, 'ThinProvisioned',
                             pool_id, self.ids.next(), baseline=True)
                self._insert(vol, pool)
            for n in range(sdcs):
                self.add_sdc(str(uuid.uuid4()),
                             '10.%d.%d.%d' % ((n >> 16) & 255,
                                              (n >> 8) & 255, n & 255),
                             'sdc-%s-%d' % (prefix, n))

    def mark_baseline(self):
        with self.lock:
            for vol in self.volumes.values():
                vol.baseline = True

    # -- helpers -----------------------------------------------------------

    def _insert(self, vol, pool):
        self.volumes[vol.id] = vol
        if vol.name:
            self.by_name[vol.name] = vol.id
        self.vtrees.setdefault(vol.vtree_id, set()).add(vol.id)
        pool.volume_ids.add(vol.id)
        self._account(pool, vol, vol.size_kb)

    @staticmethod
    def _account(pool, vol, delta_kb):
        if vol.type == 'ThickProvisioned':
            pool.thick_kb += delta_kb
        elif vol.type == 'ThinProvisioned':
            pool.thin_kb += delta_kb
        else:
            pool.snap_kb += delta_kb

    def _check_name(self, name, own_id=None):
        if not isinstance(name, str) or not name:
            raise ApiError(400, 0, 'The name must be a non-empty string')
        if len(name) > MAX_NAME:
            raise ApiError(500, 226, 'The given name exceeds the allowed '
                           'length of 31 characters.')
        if not _NAME_RE.match(name):
            raise ApiError(500, 227, 'The given name is invalid. Use '
                           'alphanumeric and punctuation characters only. '
                           'Spaces are not allowed.')
        if name in self.by_name:
            raise ApiError(500, 99, 'Volume name already in use. Please '
                           'use a different name.')

    def _capacity_check(self, pool, vtype, delta_kb, snapshot=False):
        if vtype == 'ThickProvisioned':
            ok = delta_kb <= pool.available_kb
        else:
            used = pool.thick_kb + pool.thin_kb + pool.snap_kb
            ok = used + delta_kb <= pool.allocation_limit_kb
        if ok:
            return
        if snapshot:
            raise _details_error(191, 'CAPACITY_TOO_LOW_FOR_SNAP',
                                 'Capacity is too low to create the '
                                 'snapshot')
        raise ApiError(500, 300, 'Requested volume size exceeds the volume '
                       'allocation limit')

    def volume(self, vol_id):
        """Return the Volume ``vol_id`` or raise the gateway's error."""
        if not _HEX_RE.match(vol_id or ''):
            raise ApiError(500, 0, 'Invalid volume id %s. The id must be '
                           'a hexadecimal number' % vol_id)
        vol = self.volumes.get(vol_id.lower())
        if vol is None:
            end = self.removing.get(vol_id.lower())
            if end is not None and time.time() < end:
                raise ApiError(500, 0, 'A volume removal operation is '
                               'currently in progress')
            raise ApiError(500, 79, 'Could not find the volume')
        return vol

    def _sdc_from(self, body):
        sdc_id = body.get('sdcId')
        guid = body.get('guid')
        if (sdc_id is None) == (guid is None):
            raise ApiError(400, 0, 'Exactly one of sdcId and guid must be '
                           'specified')
        if sdc_id is not None:
            sdc = self.sdcs.get(str(sdc_id).lower())
        else:
            sdc = self.sdcs.get(self.sdc_by_guid.get(str(guid).lower()))
        if sdc is None or not sdc.registered:
            raise ApiError(500, 80, 'Could not find the SDC')
        return sdc

    # -- rendering ---------------------------------------------------------

    def render_system(self):
        return {'id': self.id, 'name': self.name,
                'systemVersionName': 'DellEMC ScaleIO Version: R%s' %
                self.version.replace('.', '_'),
                'restrictedSdcModeEnabled': False,
                'restrictedSdcMode': 'None', 'tlsVersion': 'TLSv1.2',
                'links': _links('System', self.id)}

    def render_domain(self, pd_id):
        return {'id': pd_id, 'name': self.domains[pd_id],
                'systemId': self.id, 'protectionDomainState': 'Active',
                'links': _links('ProtectionDomain', pd_id)}

    def render_pool(self, pool):
        return {'id': pool.id, 'name': pool.name,
                'protectionDomainId': pool.pd_id,
                'zeroPaddingEnabled': pool.zero_padding,
                'dataLayout': pool.data_layout,
                'useRmcache': False, 'sparePercentage': 10,
                'links': _links('StoragePool', pool.id) + [
                    {'rel': '/api/StoragePool/relationship/Statistics',
                     'href': '/api/instances/StoragePool::%s/relationships'
                             '/Statistics' % pool.id}]}

    def render_sdc(self, sdc):
        return {'id': sdc.id, 'sdcGuid': sdc.guid, 'sdcIp': sdc.ip,
                'sdcIps': [sdc.ip], 'name': sdc.name,
                'mdmConnectionState': ('Connected' if sdc.connected
                                       else 'Disconnected'),
                'sdcApproved': True, 'systemId': self.id,
                'osType': 'Linux', 'perfProfile': 'HighPerformance',
                'links': _links('Sdc', sdc.id)}

    def render_volume(self, vol):
        mapped = None
        if vol.mappings:
            mapped = []
            for sdc_id, limits in sorted(vol.mappings.items()):
                sdc = self.sdcs[sdc_id]
                entry = {'sdcId': sdc_id, 'sdcIp': sdc.ip,
                         'sdcName': sdc.name,
                         'isDirectBufferMapping': False}
                entry.update(limits)
                mapped.append(entry)
        return {'id': vol.id, 'name': vol.name, 'sizeInKb': vol.size_kb,
                'volumeType': vol.type, 'storagePoolId': vol.pool_id,
                'vtreeId': vol.vtree_id, 'ancestorVolumeId': vol.ancestor,
                'creationTime': vol.created, 'mappedSdcInfo': mapped,
                'consistencyGroupId': None, 'useRmcache': False,
                'dataLayout': self.pools[vol.pool_id].data_layout,
                'compressionMethod': 'Invalid',
                'accessModeLimit': 'ReadWrite',
                'notGenuineSnapshot': False,
                'volumeReplicationState': 'UnmarkedForReplication',
                'links': _links('Volume', vol.id) + [
                    {'rel': '/api/parent/relationship/vtreeId',
                     'href': '/api/instances/VTree::%s' % vol.vtree_id},
                    {'rel': '/api/parent/relationship/storagePoolId',
                     'href': '/api/instances/StoragePool::%s'
                             % vol.pool_id}]}

    # -- lookups -----------------------------------------------------------

    def domain_id(self, name):
        with self.lock:
            for pd_id, pd_name in self.domains.items():
                if pd_name == name:
                    return pd_id
            raise not_found()

    def pool_id(self, pd_id, name):
        with self.lock:
            if pd_id not in self.domains:
                raise not_found()
            for pool in self.pools.values():
                if pool.pd_id == pd_id and pool.name == name:
                    return pool.id
            raise not_found()

    def pool(self, pool_id):
        pool = self.pools.get(pool_id)
        if pool is None:
            raise ApiError(500, 3, 'Not found')
        return pool

    def volume_id(self, name):
        with self.lock:
            vol_id = self.by_name.get(name)
            if vol_id is None:
                raise not_found()
            return vol_id

    def sdc(self, sdc_id):
        sdc = self.sdcs.get((sdc_id or '').lower())
        if sdc is None or not sdc.registered:
            raise ApiError(500, 80, 'Could not find the SDC')
        return sdc

    def pool_statistics(self, ids, properties):
        with self.lock:
            result = {}
            for pool_id in ids:
                stats = self.pool(pool_id).statistics(self.version_tuple)
                if properties:
                    unknown = [p for p in properties if p not in stats]
                    if unknown:
                        raise ApiError(400, 0, 'Unknown property %s'
                                       % unknown[0])
                    stats = dict((p, stats[p]) for p in properties)
                result[pool_id] = stats
            return result

    def vtree(self, vtree_id):
        members = self.vtrees.get(vtree_id)
        if not members:
            raise ApiError(500, 3, 'Not found')
        base = [v for v in members if self.volumes[v].ancestor is None]
        return {'id': vtree_id, 'baseVolumeId': base[0] if base else None,
                'numOfVolumes': len(members),
                'links': _links('VTree', vtree_id)}

    # -- volume operations -------------------------------------------------

    def create_volume(self, body):
        with self.lock:
            pool = self.pools.get(body.get('storagePoolId'))
            if pool is None:
                raise not_found()
            pd_id = body.get('protectionDomainId')
            if pd_id is not None and pd_id != pool.pd_id:
                raise not_found()
            vtype = body.get('volumeType', 'ThickProvisioned')
            if vtype not in VOLUME_TYPES:
                raise ApiError(400, 0, 'Invalid volumeType %s' % vtype)
            if (vtype == 'ThickProvisioned' and
                    pool.data_layout == 'FineGranularity'):
                # [U] code and text; the rule is Cinder's
                # _check_pool_support_thick_vols.
                raise ApiError(500, 0, 'Thick provisioning is not supported '
                               'in a Fine Granularity storage pool')
            if 'volumeSizeInKb' in body:
                size_kb = as_int(body['volumeSizeInKb'], 'volumeSizeInKb')
            elif 'volumeSizeInGb' in body:
                size_kb = as_int(body['volumeSizeInGb'],
                                 'volumeSizeInGb') * KiB_PER_GiB
            else:
                raise ApiError(400, 0, 'volumeSizeInKb is missing')
            if size_kb <= 0:
                raise ApiError(500, 225, 'Illegal volume size. Volume size '
                               'must be in 8 GB blocks')
            size_kb = -(-size_kb // GRANULARITY_KB) * GRANULARITY_KB
            name = body.get('name')
            if name is not None:
                self._check_name(name)
            self._capacity_check(pool, vtype, size_kb)
            vol = Volume(self.ids.next(), name, size_kb, vtype, pool.id,
                         self.ids.next())
            self._insert(vol, pool)
            return {'id': vol.id}

    def rename(self, vol_id, body):
        with self.lock:
            vol = self.volume(vol_id)
            name = body.get('newName')
            self._check_name(name, vol.id)
            if vol.name:
                del self.by_name[vol.name]
            vol.name = name
            self.by_name[name] = vol.id
            return {}

    def set_size(self, vol_id, body):
        with self.lock:
            vol = self.volume(vol_id)
            if 'sizeInGB' not in body:
                raise ApiError(400, 0, 'sizeInGB is missing')
            size_gb = as_int(body['sizeInGB'], 'sizeInGB')
            if size_gb <= 0 or size_gb % 8:
                raise ApiError(400, 225, 'Illegal volume size. Volume size '
                               'must be in 8 GB blocks')
            size_kb = size_gb * KiB_PER_GiB
            if size_kb < vol.size_kb:
                raise ApiError(400, 133, 'Volume capacity can only be '
                               'increased')
            if size_kb == vol.size_kb:
                return {}
            pool = self.pools[vol.pool_id]
            delta = size_kb - vol.size_kb
            self._capacity_check(pool, vol.type, delta)
            self._account(pool, vol, delta)
            vol.size_kb = size_kb
            self.listener.resized(vol)
            return {}

    def add_mapping(self, vol_id, body):
        with self.lock:
            vol = self.volume(vol_id)
            sdc = self._sdc_from(body)
            if sdc.id in vol.mappings:
                raise ApiError(500, 4037 if self.major >= 4 else 81,
                               'The volume is already mapped to this SDC')
            if vol.mappings and not as_bool(
                    body.get('allowMultipleMappings', False)):
                raise ApiError(500, 306, 'Only a single SDC may be mapped '
                               'to this volume at a time')
            mode = body.get('accessMode', 'ReadWrite')
            if mode not in ACCESS_MODES:
                raise ApiError(400, 0, 'Invalid accessMode %s' % mode)
            vol.mappings[sdc.id] = {'limitIops': 0, 'limitBwInMbps': 0,
                                    'accessMode': mode}
            self.sdc_volumes[sdc.id].add(vol.id)
            self.listener.mapped(vol, sdc)
            return {}

    def remove_mapping(self, vol_id, body):
        with self.lock:
            vol = self.volume(vol_id)
            if 'allSdcs' in body:
                targets = [self.sdcs[s] for s in sorted(vol.mappings)]
            else:
                sdc = self._sdc_from(body)
                if sdc.id not in vol.mappings:
                    raise ApiError(500, 4039 if self.major >= 4 else 84,
                                   'The volume is not mapped to SDC')
                targets = [sdc]
            for sdc in targets:
                del vol.mappings[sdc.id]
                self.sdc_volumes[sdc.id].discard(vol.id)
                self.listener.unmapped(vol, sdc)
            return {}

    def set_limits(self, vol_id, body):
        with self.lock:
            vol = self.volume(vol_id)
            sdc = self._sdc_from(body)
            if sdc.id not in vol.mappings:
                raise ApiError(500, 4039 if self.major >= 4 else 84,
                               'The volume is not mapped to SDC')
            limits = vol.mappings[sdc.id]
            if 'iopsLimit' in body:
                iops = as_int(body['iopsLimit'], 'iopsLimit')
                if iops != 0 and iops <= 10:
                    raise ApiError(400, 0, 'iopsLimit must be 0 or greater '
                                   'than 10')
                limits['limitIops'] = iops
            if 'bandwidthLimitInKbps' in body:
                bw = as_int(body['bandwidthLimitInKbps'],
                            'bandwidthLimitInKbps')
                if bw % 1024:
                    raise ApiError(400, 0, 'bandwidthLimitInKbps must be a '
                                   'multiple of 1024')
                limits['limitBwInMbps'] = bw // 1024
            return {}

    def _descendants(self, vol):
        children = {}
        for other_id in self.vtrees[vol.vtree_id]:
            parent = self.volumes[other_id].ancestor
            children.setdefault(parent, []).append(other_id)
        result, todo = [], list(children.get(vol.id, ()))
        while todo:
            current = todo.pop()
            result.append(current)
            todo.extend(children.get(current, ()))
        return result

    def remove_volume(self, vol_id, body):
        with self.lock:
            vol = self.volume(vol_id)
            mode = body.get('removeMode', 'ONLY_ME')
            if mode not in REMOVE_MODES:
                raise ApiError(400, 0, 'Invalid removeMode %s' % mode)
            if mode == 'ONLY_ME':
                victims = [vol.id]
            elif mode == 'INCLUDING_DESCENDANTS':
                victims = [vol.id] + self._descendants(vol)
            elif mode == 'DESCENDANTS_ONLY':
                victims = self._descendants(vol)
            else:
                victims = sorted(self.vtrees[vol.vtree_id])
            if any(self.volumes[v].mappings for v in victims):
                if self.major >= 4:
                    raise ApiError(500, *MAPPED_ON_REMOVAL_4X)
                raise ApiError(500, 104, 'Volume is mapped')
            for victim_id in victims:
                victim = self.volumes.pop(victim_id)
                pool = self.pools[victim.pool_id]
                pool.volume_ids.discard(victim_id)
                self._account(pool, victim, -victim.size_kb)
                if victim.name:
                    self.by_name.pop(victim.name, None)
                tree = self.vtrees[victim.vtree_id]
                tree.discard(victim_id)
                if not tree:
                    del self.vtrees[victim.vtree_id]
                if self.removal_window:
                    self.removing[victim_id] = (time.time() +
                                                self.removal_window)
                self.listener.removed(victim)
            return {}

    def snapshot(self, body):
        with self.lock:
            defs = body.get('snapshotDefs')
            if not isinstance(defs, list) or not defs:
                raise ApiError(400, 0, 'snapshotDefs is missing')
            sources, names = [], []
            for item in defs:
                try:
                    sources.append(self.volume(item.get('volumeId')))
                except ApiError:
                    raise _details_error(79, 'VOL_NOT_FOUND',
                                         'Could not find the volume')
                name = item.get('snapshotName')
                if name is not None:
                    self._check_name(name)
                    if name in names:
                        raise ApiError(500, 99, 'Volume name already in '
                                       'use. Please use a different name.')
                names.append(name)
            for src in sources:
                extra = sum(1 for s in sources if s.vtree_id == src.vtree_id)
                if (len(self.vtrees[src.vtree_id]) + extra >
                        self.max_vtree_volumes):
                    raise _details_error(182, 'TOO_MANY_SNAPS_IN_VTREE',
                                         'There are too many snapshots in '
                                         'the VTree')
                self._capacity_check(self.pools[src.pool_id], 'Snapshot',
                                     src.size_kb, snapshot=True)
            ids = []
            for src, name in zip(sources, names):
                snap = Volume(self.ids.next(), name, src.size_kb,
                              'Snapshot', src.pool_id, src.vtree_id,
                              ancestor=src.id)
                self._insert(snap, self.pools[src.pool_id])
                self.listener.snapshotted(src, snap)
                ids.append(snap.id)
            return {'volumeIdList': ids, 'snapshotGroupId': self.ids.next()}

    def system_limits(self):
        return {'systemLimitEntryList': [
            {'type': 'volumeSizeGb', 'description': 'Maximum volume size',
             'maxVal': '1048576'},
            {'type': 'volumePerVtree', 'description': 'Volumes per vTree',
             'maxVal': str(self.max_vtree_volumes)},
            {'type': 'volumesPerSdc', 'description': 'Volumes per SDC',
             'maxVal': '8192'}]}

    # -- audit -------------------------------------------------------------

    def audit(self, allow=()):
        """List leaked volumes and stray mappings.

        A volume leaks when it was not present at the baseline (preloaded
        or marked) and neither its id nor its name is in ``allow``; a
        mapping is stray when its volume is not allowed either.
        """
        allow = set(allow or ())
        with self.lock:
            leaked, stray = [], []
            for vol in self.volumes.values():
                if vol.baseline or vol.id in allow or vol.name in allow:
                    continue
                leaked.append({'id': vol.id, 'name': vol.name,
                               'volumeType': vol.type,
                               'sizeInKb': vol.size_kb})
                for sdc_id in sorted(vol.mappings):
                    stray.append({'volumeId': vol.id, 'name': vol.name,
                                  'sdcId': sdc_id,
                                  'host': self.sdcs[sdc_id].host})
            leaked.sort(key=lambda v: v['id'])
            return {'leaked_volumes': leaked, 'stray_mappings': stray}

    def dump(self):
        """Return every non-baseline volume rendered, for debugging."""
        with self.lock:
            return [self.render_volume(v) for v in self.volumes.values()
                    if not v.baseline]


def _details_error(rc, symbol, text):
    return ApiError(500, 0, 'Error with details',
                    [{'rc': rc, 'error': symbol, 'errorMessage': text}])


def _links(kind, obj_id):
    return [{'rel': 'self', 'href': '/api/instances/%s::%s' % (kind, obj_id)}]
