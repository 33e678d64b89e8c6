# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Unmapping after a move, missing devices, grown volumes, call counts.

* clean-up after an instance left this host never fails; what it could
  not unmap is recorded and swept later;
* a mapped volume whose device is missing is never unmapped (a guest may
  use it): the SDC is rescanned;
* a grown volume mapped here is rescanned until its device shows the
  new size;
* the volumes of an instance are found with a number of gateway calls
  that depends on its disks, not on every name a disk may have.
"""

from __future__ import absolute_import

import os

from nova.compute import task_states
from nova import exception as nova_exception
from nova import test
from nova.tests.unit.virt.libvirt import fake_sio
from nova.tests.unit.virt.libvirt import test_sio_image
from nova.virt.libvirt.sio import connection as sio_connection
from nova.virt.libvirt.sio import disks as sio_disks
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import host as sio_host
from nova.virt.libvirt.sio import image as sio_image
from nova.virt.libvirt.sio import lifecycle as sio_lifecycle
from nova.virt.libvirt.sio import resize as sio_resize
from nova.virt.libvirt.sio import stale as sio_stale
from nova.virt.libvirt.sio import volumes as sio_volumes

GiB = 1024 ** 3
UUID = test_sio_image.UUID
POOL = 'b0b0000000000001'


def gateway_down():
    return sio_exc.GatewayUnreachable(url='https://gw', method='POST',
                                      path='/api', reason='503')


class CountingClient(object):
    """Count the calls made to the fake gateway, by method."""

    def __init__(self, sio):
        self.sio = sio
        self.counts = {}

    def __getattr__(self, name):
        target = getattr(self.sio, name)
        if not callable(target):
            return target

        def counted(*args, **kwargs):
            self.counts[name] = self.counts.get(name, 0) + 1
            return target(*args, **kwargs)
        return counted

    def total(self):
        """Calls besides the system and SDC ids (the client caches them).
        """
        return sum(n for name, n in self.counts.items()
                   if name not in ('get_system_id', 'get_sdc_id'))


class PfDefectsTestCase(test.NoDBTestCase):

    def setUp(self):
        super(PfDefectsTestCase, self).setUp()
        self.fx = self.useFixture(fake_sio.SioFixture(self))
        self.sio = self.fx.sio
        self.flags(images_type='sio', group='libvirt')
        self.instances_path = self.useFixture(
            test_sio_image.fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        self.instance = test_sio_image.make_instance(root_gb=16,
                                                     ephemeral_gb=0)
        self.instance.vm_state = 'active'

    def make(self, disk_name, kind='', map_to=(), data=b''):
        name = sio_volumes.volume_name(UUID, disk_name, kind)
        volume_id = self.sio.create_volume(name, 16, POOL)
        self.sio.volumes[volume_id].data = data
        for guid in map_to:
            self.sio.map_volume(volume_id, guid=guid)
        return volume_id

    def count(self):
        counter = CountingClient(self.sio)
        fake_sio.patch_object(self, sio_connection, 'get_client',
                              return_value=counter)
        return counter

    def unmaps(self):
        return [c for c in self.sio.calls if c[0] == 'unmap_volume']

    # -- 1. unmapping after the instance left never fails -----------------

    def test_unmap_failure_after_a_move_is_recorded_not_raised(self):
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,
                                              self.fx.GUID_B))
        self.instance.host = 'host-b'
        fake_sio.patch_object(
            self, self.sio, 'unmap_volume',
            side_effect=gateway_down())
        self.assertEqual(0, sio_hooks.unmap_volumes(self.instance))
        self.assertEqual([(UUID, volume_id)], sio_stale.stale_mappings())

    def test_listing_failure_after_a_move_is_recorded_not_raised(self):
        self.make('disk', map_to=(self.fx.GUID_A,))
        fake_sio.patch_object(
            self, self.sio, 'get_sdc_volumes',
            side_effect=gateway_down())
        self.assertEqual(0, sio_hooks.unmap_volumes(self.instance))
        self.assertEqual([(UUID, None)], sio_stale.stale_mappings())

    def test_sweep_removes_recorded_mappings(self):
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,
                                              self.fx.GUID_B))
        sio_stale.record_stale_mapping(UUID, volume_id)
        self.instance.host = 'host-b'
        self.assertEqual(1, sio_stale.sweep_stale_mappings([self.instance]))
        self.assertEqual([], sio_stale.stale_mappings())
        self.assertEqual([], os.listdir(self.fx.dev_a))
        self.assertEqual(1, len(os.listdir(self.fx.dev_b)))

    def test_sweep_by_listing_when_the_volumes_were_unknown(self):
        self.make('disk', map_to=(self.fx.GUID_A,))
        sio_stale.record_stale_mapping(UUID, None)
        self.assertEqual(1, sio_stale.sweep_stale_mappings([]))
        self.assertEqual([], os.listdir(self.fx.dev_a))

    def test_sweep_keeps_mappings_of_an_instance_that_came_back(self):
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,))
        sio_stale.record_stale_mapping(UUID, volume_id)
        self.assertEqual(0, sio_stale.sweep_stale_mappings([self.instance]))
        self.assertEqual([], sio_stale.stale_mappings())
        self.assertEqual(1, len(os.listdir(self.fx.dev_a)))

    def test_sweep_failure_keeps_the_record(self):
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,))
        sio_stale.record_stale_mapping(UUID, volume_id)
        fake_sio.patch_object(
            self, self.sio, 'unmap_volume',
            side_effect=gateway_down())
        self.assertEqual(0, sio_stale.sweep_stale_mappings([]))
        self.assertEqual([(UUID, volume_id)], sio_stale.stale_mappings())

    def test_map_volumes_forgets_the_records_of_the_instance(self):
        volume_id = self.make('disk')
        sio_stale.record_stale_mapping(UUID, volume_id)
        sio_hooks.map_volumes(self.instance)
        self.assertEqual([], sio_stale.stale_mappings())

    def test_image_cache_pass_sweeps(self):
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,))
        sio_stale.record_stale_mapping(UUID, volume_id)
        sio_hooks.manage_base_volumes([])
        self.assertEqual([], sio_stale.stale_mappings())
        self.assertEqual([], os.listdir(self.fx.dev_a))

    # -- 1b. volumes a failed deletion left are deleted later -------------

    def test_failed_destroy_is_recorded_and_raised(self):
        self.make('disk', map_to=(self.fx.GUID_A,))
        fake_sio.patch_object(
            self, self.sio, 'delete_volume', side_effect=gateway_down())
        self.assertRaises(sio_exc.GatewayUnreachable,
                          sio_hooks.cleanup_volumes, self.instance, True)
        self.assertEqual([UUID], sio_stale.stale_volume_owners())

    def test_image_cache_pass_deletes_volumes_of_a_gone_instance(self):
        self.make('disk', map_to=(self.fx.GUID_A,))
        self.make('disk.swap')
        sio_stale.record_stale_volumes(UUID)
        sio_hooks.manage_base_volumes([])
        self.assertEqual([], self.sio.names())
        self.assertEqual([], os.listdir(self.fx.dev_a))
        self.assertEqual([], sio_stale.stale_volume_owners())

    def test_sweep_keeps_volumes_of_an_instance_still_listed(self):
        self.make('disk', map_to=(self.fx.GUID_A,))
        sio_stale.record_stale_volumes(UUID)
        self.assertEqual(0, sio_stale.sweep_stale_volumes([self.instance]))
        self.assertEqual(1, len(self.sio.names()))
        self.assertEqual([UUID], sio_stale.stale_volume_owners())
        sio_hooks.cleanup_volumes(self.instance, True)
        self.assertEqual([], self.sio.names())
        self.assertEqual([], sio_stale.stale_volume_owners())

    def test_sweep_spares_volumes_mapped_to_another_host(self):
        self.make('disk', map_to=(self.fx.GUID_B,))
        sio_stale.record_stale_volumes(UUID)
        self.assertEqual(0, sio_stale.sweep_stale_volumes([]))
        self.assertEqual(1, len(self.sio.names()))
        self.assertEqual([], sio_stale.stale_volume_owners())

    def test_sweep_failure_keeps_the_volume_record(self):
        self.make('disk', map_to=(self.fx.GUID_A,))
        sio_stale.record_stale_volumes(UUID)
        fake_sio.patch_object(
            self, self.sio, 'delete_volume', side_effect=gateway_down())
        self.assertEqual(0, sio_stale.sweep_stale_volumes([]))
        self.assertEqual([UUID], sio_stale.stale_volume_owners())

    # -- 9. a missing device is rescanned, never unmapped -----------------

    def test_missing_device_is_rescanned_not_unmapped(self):
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,),
                              data=b'guest')
        path = self.sio.device(self.fx.GUID_A, volume_id)
        os.remove(path)
        del self.sio.calls[:]
        self.assertEqual(path, sio_volumes.map_volume(volume_id))
        self.assertEqual([], self.unmaps())
        self.assertIn(('rescan', self.sio.sdcs[self.fx.GUID_A.upper()][0]),
                      self.sio.calls)
        with open(path, 'rb') as handle:
            self.assertEqual(b'guest', handle.read())

    def test_map_volumes_never_unmaps_a_volume_mapped_before(self):
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,))
        os.remove(self.sio.device(self.fx.GUID_A, volume_id))
        self.sio.blind.add(self.fx.GUID_A.upper())
        del self.sio.calls[:]
        self.assertRaises(sio_exc.DeviceTimeout, sio_hooks.map_volumes,
                          self.instance)
        self.assertEqual([], self.unmaps())

    # -- 10. a grown volume is rescanned ----------------------------------

    def test_grown_mapped_volume_is_rescanned_until_it_shows(self):
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,))
        shown = {volume_id: 16 * GiB}

        def device_size(path):
            return shown[path.rsplit('-', 1)[1]]

        def rescan(*args, **kwargs):
            shown[volume_id] = self.sio.volumes[volume_id].size_gb * GiB
        # The fixture's mocks of the SDC, given this test's model.
        sio_host.device_size.side_effect = device_size
        sio_host.rescan.side_effect = rescan
        rescans = sio_host.rescan
        image = test_sio_image.backend_image(self.instance, 'disk')
        image.resize_image(32 * GiB)
        self.assertEqual(1, rescans.call_count)
        self.assertEqual(32 * GiB, shown[volume_id])

    def test_grown_volume_that_never_shows_times_out(self):
        volume_id = self.make('disk', map_to=(self.fx.GUID_A,))
        sio_host.device_size.side_effect = None
        sio_host.device_size.return_value = 16 * GiB
        self.flags(device_wait_timeout=0.2, group='scaleio')
        self.assertRaises(sio_exc.DeviceTimeout, sio_volumes.wait_for_growth,
                          volume_id, 32 * GiB)

    def test_grown_volume_not_mapped_here_needs_no_rescan(self):
        volume_id = self.make('disk', map_to=(self.fx.GUID_B,))
        rescans = sio_host.rescan
        self.assertFalse(sio_volumes.wait_for_growth(volume_id, 32 * GiB))
        self.assertEqual(0, rescans.call_count)

    # -- call counts ----------------------------------------------------------

    def test_lookups_follow_the_disks_of_the_flavor(self):
        self.make('disk')
        counter = self.count()
        found = sio_disks.instance_volumes(self.instance)
        self.assertEqual(['disk'], [v.disk_name for v in found])
        # Only the root disk's name: no swap, ephemeral, rescue, config,
        # snapshot or temporary names.
        self.assertEqual({'get_volume_id': 1}, counter.counts)

    def test_lookups_of_swap_ephemerals_and_rescue(self):
        self.instance = test_sio_image.make_instance(root_gb=16,
                                                     ephemeral_gb=16,
                                                     swap=8192)
        self.instance.vm_state = 'rescued'
        for disk_name in ('disk', 'disk.eph0', 'disk.eph1', 'disk.swap',
                          'disk.rescue'):
            self.make(disk_name)
        counter = self.count()
        found = sio_disks.instance_volumes(self.instance, kinds=('',))
        self.assertEqual(sorted(['disk', 'disk.eph0', 'disk.eph1',
                                 'disk.swap', 'disk.rescue']),
                         sorted(v.disk_name for v in found))
        # 5 disks; disk.local and disk.eph2 are the two misses.
        self.assertEqual({'get_volume_id': 7}, counter.counts)

    def test_resize_snapshots_looked_up_only_around_a_resize(self):
        self.make('disk')
        snap = self.make('disk', kind='snapshot')
        counter = self.count()
        self.assertEqual(1, len(sio_disks.instance_volumes(self.instance)))
        self.assertEqual(1, counter.total())
        self.instance.vm_state = 'resized'
        found = sio_disks.instance_volumes(self.instance)
        self.assertIn(snap, [v.id for v in found])

    def test_unknown_state_looks_up_every_name(self):
        self.instance.vm_state = 'error'
        self.make('disk.config')
        found = sio_disks.instance_volumes(self.instance)
        self.assertEqual(['disk.config'], [v.disk_name for v in found])

    def test_delete_of_a_mapped_instance(self):
        self.make('disk', map_to=(self.fx.GUID_A, self.fx.GUID_B))
        counter = self.count()
        self.assertEqual(1, sio_lifecycle.destroy_volumes(self.instance))
        self.assertEqual([], self.sio.names())
        # Listing, the root snapshot check, unmap everywhere, remove.
        self.assertLessEqual(counter.total(), 2 * 1 + 3)

    def test_delete_finds_leftover_snapshots(self):
        self.make('disk', map_to=(self.fx.GUID_A,))
        self.make('disk', kind='snapshot')
        self.make('disk.swap', kind='snapshot')
        self.assertEqual(3, sio_lifecycle.destroy_volumes(self.instance))
        self.assertEqual([], self.sio.names())

    def test_root_snapshot_is_removed_last(self):
        self.instance.vm_state = 'resized'
        self.instance.flavor.swap = 8192
        self.make('disk')
        self.make('disk.swap')
        sio_hooks.snapshot_volumes(self.instance)
        removed = []
        real = self.sio.delete_volume

        def delete_volume(volume_id, **kwargs):
            removed.append(self.sio.volumes[volume_id].name)
            return real(volume_id, **kwargs)
        fake_sio.patch_object(self, self.sio, 'delete_volume',
                              side_effect=delete_volume)
        sio_resize.remove_snapshots(self.instance)
        self.assertEqual(sio_volumes.volume_name(UUID, 'disk', 'snapshot'),
                         removed[-1])
        self.assertEqual(2, len(removed))

    def test_unmap_uses_one_listing(self):
        for disk_name in ('disk', 'disk.swap'):
            self.make(disk_name, map_to=(self.fx.GUID_A, self.fx.GUID_B))
        counter = self.count()
        self.assertEqual(2, sio_hooks.unmap_volumes(self.instance))
        self.assertEqual(1, counter.counts['get_sdc_volumes'])
        self.assertNotIn('get_volume_id', counter.counts)

    # -- 11. no resize across cells -------------------------------------------

    def test_cross_cell_resize_snapshot_is_refused(self):
        self.make('disk', map_to=(self.fx.GUID_A,))
        convert = fake_sio.patch_object(self, sio_image.images,
                                        'convert_image')
        self.instance.task_state = task_states.RESIZE_MIGRATING
        image = test_sio_image.backend_image(self.instance, 'disk')
        target = os.path.join(self.instances_path, 'upload')
        exc = self.assertRaises(sio_image.SioCrossCellResizeRefused,
                                image.snapshot_extract, target, 'raw')
        self.assertIn(UUID, str(exc))
        self.assertIn('within its cell', str(exc))
        self.assertEqual(0, convert.call_count)
        # An ordinary snapshot of the same disk is exported.
        self.instance.task_state = task_states.IMAGE_UPLOADING
        image.snapshot_extract(target, 'raw')
        self.assertEqual(1, convert.call_count)

    # -- 4. the 8 GiB rule before the guest is powered off -------------------

    def test_resize_to_a_flavor_breaking_the_rule_rolls_back(self):
        self.flags(round_volume_capacity=False, group='scaleio')
        bad = test_sio_image.make_instance(root_gb=12, ephemeral_gb=0).flavor
        exc = self.assertRaises(nova_exception.InstanceFaultRollback,
                                sio_hooks.check_resize, self.instance, bad)
        self.assertIsInstance(exc.inner_exception,
                              nova_exception.ResizeError)
        self.assertIn('8 GiB', str(exc.inner_exception))

    def test_resize_checks_only_the_disks_on_scaleio(self):
        self.flags(round_volume_capacity=False, group='scaleio')
        odd_root = test_sio_image.make_instance(root_gb=12,
                                                ephemeral_gb=16).flavor
        sio_hooks.check_resize(self.instance, odd_root,
                               booted_from_volume=True)
        odd_swap = test_sio_image.make_instance(root_gb=16, ephemeral_gb=0,
                                                swap=1000).flavor
        self.assertRaises(nova_exception.InstanceFaultRollback,
                          sio_hooks.check_resize, self.instance, odd_swap)
        # Rounding up makes every size valid.
        self.flags(round_volume_capacity=True, group='scaleio')
        sio_hooks.check_resize(self.instance, odd_swap)
