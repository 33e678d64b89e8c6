# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Failure paths of the ScaleIO hooks found by the fault matrix.

A device that never appears, a move that fails half-way and a revert
that stops between its renames must leave no mapping on a host that
does not run the instance, and never a disk without a volume.
"""

from __future__ import absolute_import

import inspect
import os

from nova.compute import task_states
from nova import test
from nova.tests.unit.virt.libvirt import fake_sio
from nova.tests.unit.virt.libvirt import test_sio_image
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import resize as sio_resize
from nova.virt.libvirt.sio import volumes as sio_volumes

UUID = test_sio_image.UUID
POOL = 'b0b0000000000001'
MAPPING = {'bus': 'virtio', 'dev': 'vda', 'type': 'disk'}


def call_libvirt_info(image):
    """Call ``libvirt_info`` with the signature of this release."""
    getspec = getattr(inspect, 'getfullargspec', None) or getattr(
        inspect, 'getargspec')
    args = getspec(type(image).__mro__[1].libvirt_info).args
    if 'disk_bus' in args:  # Kilo to Queens
        return image.libvirt_info('virtio', 'vda', 'disk', 'none', {}, None)
    if 'disk_info' in args:  # Rocky to Yoga
        return image.libvirt_info(dict(MAPPING), 'none', {}, None)
    return image.libvirt_info('none', {})  # Zed and later


class SioFaultFixTestCase(test.NoDBTestCase):

    def setUp(self):
        super(SioFaultFixTestCase, self).setUp()
        self.fx = self.useFixture(fake_sio.SioFixture(self))
        self.sio = self.fx.sio
        self.flags(images_type='sio', group='libvirt')
        self.use_host('host-a')
        self.instance = test_sio_image.make_instance()
        self.lost = set()   # hosts whose SDC never shows a device
        real_map = self.sio.map_volume

        def map_volume(volume_id, sdc_id=None, guid=None,
                       allow_multiple=True):
            done = real_map(volume_id, sdc_id=sdc_id, guid=guid,
                            allow_multiple=allow_multiple)
            for host in self.lost:
                dev = {'host-a': self.fx.GUID_A,
                       'host-b': self.fx.GUID_B}[host]
                path = self.sio.device(dev, volume_id)
                if (guid or '').upper() == dev.upper() and \
                        os.path.exists(path):
                    os.remove(path)
            return done
        fake_sio.patch_object(self, self.sio, 'map_volume',
                              side_effect=map_volume)
        real_unmap = self.sio.unmap_volume

        def unmap_volume(volume_id, **kwargs):
            # The fake removes the device file: give back a lost one.
            volume = self.sio.volumes[volume_id]
            for guid in (self.fx.GUID_A, self.fx.GUID_B):
                path = self.sio.device(guid, volume_id)
                if self.sdc(guid) in volume.mapped and \
                        not os.path.exists(path):
                    with open(path, 'wb') as handle:
                        handle.write(volume.data)
            return real_unmap(volume_id, **kwargs)
        fake_sio.patch_object(self, self.sio, 'unmap_volume',
                              side_effect=unmap_volume)
        self.renames = {}   # new name -> exception to raise
        real_rename = self.sio.rename_volume

        def rename_volume(volume_id, new_name):
            if new_name in self.renames:
                raise self.renames[new_name]
            return real_rename(volume_id, new_name)
        fake_sio.patch_object(self, self.sio, 'rename_volume',
                              side_effect=rename_volume)
        self.deletes = {}   # volume name suffix -> exception to raise
        real_delete = self.sio.delete_volume

        def delete_volume(volume_id, **kwargs):
            volume = self.sio.volumes.get(volume_id)
            for suffix, exc in self.deletes.items():
                if volume is not None and volume.name.endswith(suffix):
                    raise exc
            return real_delete(volume_id, **kwargs)
        fake_sio.patch_object(self, self.sio, 'delete_volume',
                              side_effect=delete_volume)

    def use_host(self, name):
        self.fx.use_host(name)
        self.flags(device_wait_timeout=0.3, group='scaleio')

    def image(self, instance):
        if test_sio_image.HAS_DISK_INFO_MAPPING:
            return test_sio_image.backend_image(
                instance, 'disk', disk_info_mapping=dict(MAPPING))
        return test_sio_image.backend_image(instance, 'disk')

    def make(self, disk_name, kind='', map_to=(), data=b''):
        name = sio_volumes.volume_name(UUID, disk_name, kind)
        volume_id = self.sio.create_volume(name, 8, POOL)
        self.sio.volumes[volume_id].data = data
        for guid in map_to:
            self.sio.map_volume(volume_id, guid=guid)
        return volume_id

    def sdc(self, guid):
        return self.sio.get_sdc_id(guid)

    def mapped(self, volume_id):
        return sorted(self.sio.get_mapped_sdc_ids(volume_id))

    # -- 1. a device that never appears --------------------------------------

    def test_device_timeout_unmaps_from_this_host(self):
        volume_id = self.make('disk')
        self.lost.add('host-a')
        self.assertRaises(sio_exc.DeviceTimeout, sio_volumes.map_volume,
                          volume_id)
        self.assertEqual([], self.mapped(volume_id))
        # Once the SDC behaves again, the next attempt works.
        self.lost.clear()
        path = sio_volumes.map_volume(volume_id)
        self.assertTrue(os.path.exists(path))
        self.assertEqual([self.sdc(self.fx.GUID_A)], self.mapped(volume_id))

    def test_mapped_without_device_is_mapped_again(self):
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,),
                              data=b'guest')
        path = self.sio.device(self.fx.GUID_A, volume_id)
        os.remove(path)   # the mapping is there, the device is not
        self.assertEqual(path, sio_volumes.map_volume(volume_id))
        with open(path, 'rb') as handle:
            self.assertEqual(b'guest', handle.read())
        self.assertEqual([self.sdc(self.fx.GUID_A)], self.mapped(volume_id))

    def test_mapped_without_device_that_stays_absent_stays_mapped(self):
        # The mapping was there before: a guest may use it; never unmap.
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,))
        os.remove(self.sio.device(self.fx.GUID_A, volume_id))
        self.lost.add('host-a')
        self.sio.blind.add(self.fx.GUID_A.upper())
        self.assertRaises(sio_exc.DeviceTimeout, sio_volumes.map_volume,
                          volume_id)
        self.assertEqual([self.sdc(self.fx.GUID_A)], self.mapped(volume_id))

    # -- 2. map_volumes undoes its own mappings ------------------------------

    def test_map_volumes_failure_unmaps_what_it_mapped(self):
        self.use_host('host-b')
        kept = self.make('disk', map_to=(self.fx.GUID_B,))
        local = self.make('disk.local')
        swap = self.make('disk.swap')
        real_map = self.sio.map_volume.side_effect

        def map_volume(volume_id, **kwargs):
            done = real_map(volume_id, **kwargs)
            if volume_id == swap:
                os.remove(self.sio.device(self.fx.GUID_B, volume_id))
            return done
        self.sio.map_volume.side_effect = map_volume
        self.assertRaises(sio_exc.DeviceTimeout, sio_hooks.map_volumes,
                          self.instance)
        # The volume mapped before the call keeps its mapping.
        self.assertEqual([self.sdc(self.fx.GUID_B)], self.mapped(kept))
        self.assertEqual([], self.mapped(local))
        self.assertEqual([], self.mapped(swap))

    def test_map_volumes_success_is_idempotent(self):
        root = self.make('disk', map_to=(self.fx.GUID_A,))
        local = self.make('disk.local')
        self.assertEqual(2, len(sio_hooks.map_volumes(self.instance)))
        self.assertEqual(2, len(sio_hooks.map_volumes(self.instance)))
        for volume_id in (root, local):
            self.assertEqual([self.sdc(self.fx.GUID_A)],
                             self.mapped(volume_id))

    # -- 3. the owner's hard reboot drops other hosts' mappings -------------

    def test_unmap_elsewhere_keeps_this_host(self):
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,
                                              self.fx.GUID_B))
        self.assertEqual(1, sio_volumes.unmap_elsewhere(volume_id))
        self.assertEqual([self.sdc(self.fx.GUID_A)], self.mapped(volume_id))
        self.assertEqual(0, sio_volumes.unmap_elsewhere(volume_id))

    def test_hard_reboot_unmaps_the_other_host(self):
        # A failed resize left the disk mapped on both hosts; the
        # operator resets the server and hard reboots it on host-b.
        self.use_host('host-b')
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,))
        instance = test_sio_image.make_instance(
            host='host-b', task_state=task_states.REBOOT_STARTED_HARD)
        image = self.image(instance)
        call_libvirt_info(image)
        self.assertEqual([self.sdc(self.fx.GUID_B)], self.mapped(volume_id))

    def test_libvirt_info_of_a_moving_instance_keeps_other_mappings(self):
        self.use_host('host-b')
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,))
        instance = test_sio_image.make_instance(
            host='host-a', task_state=task_states.RESIZE_FINISH)
        call_libvirt_info(self.image(instance))
        self.assertEqual(sorted([self.sdc(self.fx.GUID_A),
                                 self.sdc(self.fx.GUID_B)]),
                         self.mapped(volume_id))

    def test_libvirt_info_without_volume_raises(self):
        image = self.image(self.instance)
        self.assertRaises(sio_exc.VolumeNotFound, call_libvirt_info, image)

    # -- 4. crash-safe revert -------------------------------------------------

    def names(self):
        return sorted(self.sio.names())

    def name(self, disk_name, kind=''):
        return sio_volumes.volume_name(UUID, disk_name, kind)

    def resized(self):
        """The volumes of an instance in VERIFY_RESIZE."""
        self.make('disk', map_to=(self.fx.GUID_B,), data=b'new root')
        self.make('disk', kind='snapshot', data=b'old root')
        self.make('disk.local', map_to=(self.fx.GUID_B,), data=b'new eph')
        self.make('disk.local', kind='snapshot', data=b'old eph')
        self.make('disk.swap', map_to=(self.fx.GUID_B,))  # made by resize

    def assert_reverted(self):
        self.assertEqual(sorted([self.name('disk'), self.name('disk.local')]),
                         self.names())
        self.assertEqual(b'old root', self.sio.by_name(self.name('disk')).data)
        self.assertEqual(b'old eph',
                         self.sio.by_name(self.name('disk.local')).data)

    def test_rollback_restores_snapshots(self):
        self.resized()
        self.assertEqual(2, sio_hooks.rollback_snapshots(self.instance))
        self.assert_reverted()
        root = self.sio.by_name(self.name('disk'))
        self.assertEqual([self.sdc(self.fx.GUID_A)], root.mapped)

    def test_failed_rename_keeps_a_volume_under_every_disk_name(self):
        self.resized()
        self.renames[self.name('disk')] = sio_exc.CapacityExceeded(
            pool='sp1', volume='-', gateway_message='full')
        self.assertRaises(sio_exc.CapacityExceeded,
                          sio_hooks.rollback_snapshots, self.instance)
        # The old disk is kept under its temporary name, next to the
        # snapshot; nothing is lost.
        self.assertIsNotNone(self.sio.by_name(self.name('disk', 'temporary')))
        self.assertIsNotNone(self.sio.by_name(self.name('disk', 'snapshot')))
        self.assertTrue(sio_resize.rollback_pending(self.instance))
        # A retried revert finishes the job.
        self.renames.clear()
        sio_hooks.rollback_snapshots(self.instance)
        self.assert_reverted()
        self.assertFalse(sio_resize.rollback_pending(self.instance))

    def test_first_rename_failure_changes_nothing(self):
        self.resized()
        before = self.names()
        self.renames[self.name('disk', 'temporary')] = sio_exc.NameInUse(
            name='x')
        self.assertRaises(sio_exc.NameInUse, sio_hooks.rollback_snapshots,
                          self.instance)
        # Only the disk made by the resize is gone.
        before.remove(self.name('disk.swap'))
        self.assertEqual(before, self.names())

    def test_retry_after_renames_deletes_temporaries(self):
        self.resized()
        self.deletes['#'] = sio_exc.VolumeMapped(volume='-')
        self.assertRaises(sio_exc.VolumeMapped,
                          sio_hooks.rollback_snapshots, self.instance)
        self.deletes.clear()
        sio_hooks.rollback_snapshots(self.instance)
        self.assert_reverted()
        self.assertEqual(0, sio_hooks.rollback_snapshots(self.instance))

    def test_libvirt_info_finishes_an_interrupted_revert(self):
        self.resized()
        root_id = self.sio.get_volume_id(self.name('disk'))
        self.sio.rename_volume(root_id, self.name('disk', 'temporary'))
        image = self.image(self.instance)
        self.assertFalse(image.exists())
        call_libvirt_info(image)
        self.assertEqual(b'old root', self.sio.by_name(self.name('disk')).data)
        self.assertIsNone(self.sio.by_name(self.name('disk', 'temporary')))
        self.assertIsNone(self.sio.by_name(self.name('disk', 'snapshot')))
