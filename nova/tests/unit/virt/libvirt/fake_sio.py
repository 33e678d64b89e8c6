# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""An in-memory ScaleIO system for the sio backend tests.

:class:`FakeScaleIO` answers the calls of
:class:`nova.virt.libvirt.sio.client.Client` the way the gateway does
(8 GiB sizes, unique names, mapped volumes refusing removal, snapshots),
and keeps one device directory per emulated host: mapping a volume to a
host's SDC creates ``emc-vol-<system>-<volume>`` there as a file holding
the volume's data, unmapping removes it. Data written through one host
is visible on the others, as with a real shared volume.

:class:`SioFixture` installs it in place of the REST client, configures
``[scaleio]`` for host ``host-a`` and yields the system as ``.sio``.
"""

from __future__ import absolute_import

import errno
import os
import shutil

import fixtures
try:
    from unittest import mock
except ImportError:  # Python 2.7
    import mock  # noqa: H216

from nova.virt.libvirt.sio import client as sio_client
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import host as sio_host

GiB = 1024 ** 3
SYSTEM_ID = '1a2b3c4d5e6f7a8b'
DOMAIN = 'pd1'
POOL = 'sp1'


class FakeVolume(object):

    def __init__(self, volume_id, name, size_gb, pool_id, thin,
                 ancestor=None):
        self.id = volume_id
        self.name = name
        self.size_gb = size_gb
        self.pool_id = pool_id
        self.thin = thin
        self.ancestor = ancestor
        self.mapped = []
        self.data = b''

    def as_dict(self):
        return {'id': self.id, 'name': self.name,
                'sizeInKb': self.size_gb * 1024 * 1024,
                'storagePoolId': self.pool_id,
                'volumeType': ('ThinProvisioned' if self.thin
                               else 'ThickProvisioned'),
                'ancestorVolumeId': self.ancestor,
                'mappedSdcInfo': [{'sdcId': s} for s in self.mapped] or None}


class FakeScaleIO(object):
    """The gateway plus SDC hosts, in memory.

    :param root: directory for the hosts' device directories.
    """

    def __init__(self, root):
        self.root = root
        self.volumes = {}
        self.sdcs = {}        # guid -> (sdc id, device dir)
        self.pools = {(DOMAIN, POOL): 'b0b0000000000001',
                      (DOMAIN, 'fast'): 'b0b0000000000002',
                      ('pd2', POOL): 'b0b0000000000003'}
        self.capacity = {'total_bytes': 800 * GiB, 'free_bytes': 640 * GiB,
                         'used_bytes': 160 * GiB, 'provisioned_bytes': 0}
        self.calls = []
        self.blind = set()    # SDC GUIDs whose rescan shows no device
        self._next = 1
        self.closed = False

    # -- test helpers --------------------------------------------------------

    def add_host(self, name, guid):
        """Add an SDC host; return its device directory."""
        path = os.path.join(self.root, name, 'by-id')
        os.makedirs(path)
        self.sdcs[guid.upper()] = ('5dc%013d' % (len(self.sdcs) + 1), path)
        return path

    def by_name(self, name):
        for volume in self.volumes.values():
            if volume.name == name:
                return volume
        return None

    def names(self):
        return sorted(v.name for v in self.volumes.values())

    def device(self, guid, volume_id):
        return os.path.join(self.sdcs[guid.upper()][1], 'emc-vol-%s-%s'
                            % (SYSTEM_ID, volume_id))

    def _sync(self, volume):
        """Read back what was written through any host's device."""
        for sdc_id in volume.mapped:
            for sid, root in self.sdcs.values():
                path = os.path.join(root, 'emc-vol-%s-%s'
                                    % (SYSTEM_ID, volume.id))
                if sid == sdc_id and os.path.exists(path):
                    with open(path, 'rb') as handle:
                        data = handle.read()
                    if data != volume.data:
                        volume.data = data
                        self._publish(volume)
                        return

    def _publish(self, volume):
        for sid, root in self.sdcs.values():
            if sid in volume.mapped:
                path = os.path.join(root, 'emc-vol-%s-%s'
                                    % (SYSTEM_ID, volume.id))
                with open(path, 'wb') as handle:
                    handle.write(volume.data)

    def _volume(self, volume_id):
        try:
            return self.volumes[volume_id]
        except KeyError:
            raise sio_exc.VolumeNotFound(volume=volume_id)

    def _sdc(self, sdc_id=None, guid=None):
        if guid is not None:
            try:
                return self.sdcs[guid.upper()]
            except KeyError:
                raise sio_exc.SdcNotFound(sdc=guid)
        for sid, root in self.sdcs.values():
            if sid == sdc_id:
                return sid, root
        raise sio_exc.SdcNotFound(sdc=sdc_id)

    # -- Client API ----------------------------------------------------------

    def close(self):
        self.closed = True

    def get_system_id(self):
        return SYSTEM_ID

    def get_pool_id(self, pd_name, sp_name):
        self.calls.append(('get_pool_id', pd_name, sp_name))
        try:
            return self.pools[(pd_name, sp_name)]
        except KeyError:
            raise sio_exc.PoolNotFound(pool=sp_name, domain=pd_name)

    def pool_capacity(self, pool_id):
        return dict(self.capacity)

    def create_volume(self, name, size_gb, pool_id, thin=False,
                      protection_domain_id=None):
        if size_gb <= 0 or size_gb % 8:
            raise sio_exc.InvalidSize(disk=name, reason='not 8 GiB units')
        if len(name) > 31:
            raise sio_exc.InvalidName(name=name, reason='too long')
        if self.by_name(name) is not None:
            raise sio_exc.NameInUse(name=name)
        volume_id = 'f00d%012x' % self._next
        self._next += 1
        self.volumes[volume_id] = FakeVolume(volume_id, name, size_gb,
                                             pool_id, thin)
        self.calls.append(('create_volume', name, size_gb, pool_id, thin))
        return volume_id

    def get_volume(self, volume_id):
        volume = self._volume(volume_id)
        self._sync(volume)
        return volume.as_dict()

    def get_volume_id(self, name):
        volume = self.by_name(name)
        return volume.id if volume else None

    def rename_volume(self, volume_id, new_name):
        volume = self._volume(volume_id)
        other = self.by_name(new_name)
        if other is not None and other is not volume:
            raise sio_exc.NameInUse(name=new_name)
        volume.name = new_name

    def extend_volume(self, volume_id, new_size_gb):
        volume = self._volume(volume_id)
        if new_size_gb % 8 or new_size_gb < volume.size_gb:
            raise sio_exc.InvalidSize(disk=volume_id, reason='bad size')
        self.calls.append(('extend_volume', volume.name, new_size_gb))
        volume.size_gb = new_size_gb

    def delete_volume(self, volume_id, remove_mode='ONLY_ME', unmap=False):
        volume = self.volumes.get(volume_id)
        if volume is None:
            return False
        if volume.mapped:
            if not unmap:
                raise sio_exc.VolumeMapped(volume=volume_id)
            for sdc_id in list(volume.mapped):
                self.unmap_volume(volume_id, sdc_id=sdc_id)
        for other in self.volumes.values():
            if other.ancestor == volume_id:
                other.ancestor = None
        del self.volumes[volume_id]
        self.calls.append(('delete_volume', volume.name))
        return True

    def map_volume(self, volume_id, sdc_id=None, guid=None,
                   allow_multiple=True):
        volume = self._volume(volume_id)
        sid, root = self._sdc(sdc_id, guid)
        if sid in volume.mapped:
            return False
        if volume.mapped and not allow_multiple:
            raise sio_exc.MultipleMappingsRefused(volume=volume_id, sdc=sid)
        self._sync(volume)
        volume.mapped.append(sid)
        with open(os.path.join(root, 'emc-vol-%s-%s'
                               % (SYSTEM_ID, volume_id)), 'wb') as handle:
            handle.write(volume.data)
        self.calls.append(('map_volume', volume.name, sid))
        return True

    def unmap_volume(self, volume_id, sdc_id=None, guid=None,
                     all_sdcs=False):
        volume = self._volume(volume_id)
        self._sync(volume)
        if all_sdcs:
            targets = list(volume.mapped)
        else:
            targets = [self._sdc(sdc_id, guid)[0]]
        done = False
        for sid in targets:
            if sid not in volume.mapped:
                continue
            volume.mapped.remove(sid)
            root = self._sdc(sdc_id=sid)[1]
            device = os.path.join(root, 'emc-vol-%s-%s'
                                  % (SYSTEM_ID, volume_id))
            # The gateway unmaps whether or not the SDC shows the device.
            if os.path.exists(device):
                os.remove(device)
            self.calls.append(('unmap_volume', volume.name, sid))
            done = True
        return done

    def get_mapped_sdc_ids(self, volume_id):
        return list(self._volume(volume_id).mapped)

    def is_mapped(self, volume_id, sdc_id=None):
        mapped = self._volume(volume_id).mapped
        return bool(mapped) if sdc_id is None else sdc_id in mapped

    def snapshot_volume(self, volume_id, snapshot_name):
        volume = self._volume(volume_id)
        self._sync(volume)
        if self.by_name(snapshot_name) is not None:
            raise sio_exc.NameInUse(name=snapshot_name)
        snap_id = 'f00d%012x' % self._next
        self._next += 1
        snap = FakeVolume(snap_id, snapshot_name, volume.size_gb,
                          volume.pool_id, True, ancestor=volume_id)
        snap.data = volume.data
        self.volumes[snap_id] = snap
        self.calls.append(('snapshot_volume', volume.name, snapshot_name))
        return snap_id

    def get_sdc_id(self, guid):
        return self._sdc(guid=guid)[0]

    def rescan(self, guid):
        """The SDC ``guid`` looks again: devices for its mapped volumes.

        SDCs in ``blind`` (upper-case GUIDs) never show a device.
        """
        sid, root = self._sdc(guid=guid)
        self.calls.append(('rescan', sid))
        if guid.upper() in self.blind:
            return
        for volume in self.volumes.values():
            path = os.path.join(root, 'emc-vol-%s-%s' % (SYSTEM_ID,
                                                         volume.id))
            if sid in volume.mapped and not os.path.exists(path):
                with open(path, 'wb') as handle:
                    handle.write(volume.data)

    def device_size(self, path):
        """The size a fake device shows: its volume's, at once."""
        if not os.path.exists(path):
            raise OSError(errno.ENOENT, 'no such device', path)
        return self._volume(path.rsplit('-', 1)[1]).size_gb * GiB

    def get_sdc_volumes(self, sdc_id):
        self._sdc(sdc_id=sdc_id)
        return [v.as_dict() for v in sorted(self.volumes.values(),
                                            key=lambda v: v.id)
                if sdc_id in v.mapped]


def refused_resize(test, drvr, context, instance, flavor):
    """Resize ``instance`` to ``flavor`` and expect a refusal while running.

    The driver's ``migrate_disk_and_power_off`` must raise Nova's
    ``InstanceFaultRollback`` around a ``ResizeError`` before it powers
    the guest off.

    :param test: the test case.
    :param drvr: the libvirt driver.
    :param context: the request context.
    :param instance: the instance to resize.
    :param flavor: the new flavor.
    :returns: the ``ResizeError``.
    """
    from nova import exception

    power_off = patch_object(test, drvr, 'power_off', autospec=True)
    exc = test.assertRaises(exception.InstanceFaultRollback,
                            drvr.migrate_disk_and_power_off, context,
                            instance, 'host-b', flavor, [],
                            block_device_info={'block_device_mapping': []})
    test.assertIsInstance(exc.inner_exception, exception.ResizeError)
    test.assertFalse(power_off.called)
    return exc.inner_exception


def patch_object(owner, target, attribute, **kwargs):
    """Patch ``target.attribute`` with a mock until ``owner`` cleans up.

    ``mock.patch.object`` plus ``addCleanup`` works with every fixtures
    and testtools release, unlike ``fixtures.MockPatchObject`` (absent
    from fixtures 1.2, which Kilo pins).

    :param owner: a test case or fixture (anything with ``addCleanup``).
    :param target: the object holding the attribute.
    :param attribute: the attribute's name.
    :param kwargs: passed to ``mock.patch.object``.
    :returns: the mock.
    """
    patcher = mock.patch.object(target, attribute, **kwargs)
    patched = patcher.start()
    owner.addCleanup(patcher.stop)
    return patched


class SioFixture(fixtures.Fixture):
    """Configure ``[scaleio]`` and put a :class:`FakeScaleIO` behind it.

    :param test: the test case (for ``flags``).
    """

    GUID_A = '0a0a0a0a-1111-4222-8333-444455556666'
    GUID_B = '0b0b0b0b-1111-4222-8333-444455556666'

    def __init__(self, test):
        super(SioFixture, self).__init__()
        self.test = test

    def setUp(self):
        # setUp, not _setUp: fixtures 1.2 (Kilo) never calls _setUp.
        super(SioFixture, self).setUp()
        self.root = self.useFixture(fixtures.TempDir()).path
        self.sio = FakeScaleIO(self.root)
        self.dev_a = self.sio.add_host('host-a', self.GUID_A)
        self.dev_b = self.sio.add_host('host-b', self.GUID_B)
        self.use_host('host-a')
        patch_object(self, sio_client.Client, 'from_conf',
                     return_value=self.sio)
        patch_object(self, sio_host, 'rescan', side_effect=lambda *a, **k:
                     self.sio.rescan(sio_hooks.CONF.scaleio.default_sdcguid))
        patch_object(self, sio_host, 'device_size',
                     side_effect=self.sio.device_size)
        sio_hooks.reset()
        self.addCleanup(sio_hooks.reset)

    def use_host(self, name):
        """Make this process behave as compute host ``name``."""
        guid, root = {'host-a': (self.GUID_A, self.dev_a),
                      'host-b': (self.GUID_B, self.dev_b)}[name]
        self.test.flags(host=name)
        self.test.flags(group='scaleio', rest_server_ip='192.0.2.10',
                        rest_server_username='admin',
                        rest_server_password='secret',
                        protection_domain_name=DOMAIN,
                        storage_pool_name=POOL, default_sdcguid=guid,
                        device_root=root, device_wait_timeout=2.0)
        sio_hooks.reset()

    def copy_to(self, path, data):
        """Write ``data`` into a local file (a template)."""
        with open(path, 'wb') as handle:
            handle.write(data)

    def cleanup_dirs(self):
        shutil.rmtree(self.root, ignore_errors=True)


class ImageCacheHookTests(object):
    """Driver tests of the ``manage_image_cache`` hook, for every era.

    Mixed into a test case with ``self.drvr`` (a LibvirtDriver with
    ``images_type = sio``) and ``self.context``.
    """

    def test_image_cache_pass_removes_unused_base_volumes(self):
        manage = patch_object(self, sio_hooks, 'manage_base_volumes')
        self.drvr.manage_image_cache(self.context, [])
        manage.assert_called_once_with([])

    def test_image_cache_pass_of_other_image_types(self):
        manage = patch_object(self, sio_hooks, 'manage_base_volumes')
        self.flags(images_type='lvm', group='libvirt')
        self.drvr.manage_image_cache(self.context, [])
        self.assertFalse(manage.called)
