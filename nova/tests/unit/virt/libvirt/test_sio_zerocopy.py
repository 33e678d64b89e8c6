# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Zero-copy boot: abandoned fills and room in the vTrees.

* A fill of a base volume stopped by a restart of nova-compute leaves its
  ``#`` volume mapped to the host; a fill older than
  ``[scaleio] zero_copy_fill_timeout`` is abandoned too. The next boot
  removes such a fill and fills the base volume itself without waiting,
  and the image cache pass removes it; a fill that is running is waited
  for and never removed.
* Boots leave room in a base volume's vTree for the resize and live
  snapshots of the instances booted from it; ``check_snapshot_room``
  refuses a snapshot the vTree cannot take before anything is changed.

The clock of the hooks is a fake one: waiting advances it, so a test
sees how long a boot would have waited without sleeping.
"""

from __future__ import absolute_import

import os

import fixtures

from nova import test
from nova.tests.unit.virt.libvirt import fake_sio
from nova.tests.unit.virt.libvirt import test_sio_beyond as beyond
from nova.tests.unit.virt.libvirt import test_sio_image
from nova.virt import images
from nova.virt.libvirt.sio import conf as sio_conf
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import imagecache as sio_imagecache
from nova.virt.libvirt.sio import lifecycle as sio_lifecycle
from nova.virt.libvirt.sio import volumes as sio_volumes
from nova.virt.libvirt.sio import vtree as sio_vtree
from nova.virt.libvirt.sio import zerocopy as sio_zerocopy

GiB = 1024 ** 3
POOL_ID = beyond.POOL_ID
IMAGE_ID = beyond.IMAGE_ID
UUIDS = ['%08d-1111-4222-8333-444455556666' % n for n in range(1, 9)]


class Killed(BaseException):
    """Ends a fill the way stopping nova-compute does: no clean-up runs."""


class FakeClock(object):
    """``time`` for the hooks: ``sleep`` advances ``time``."""

    def __init__(self, start):
        self.now = start
        self.sleeps = []
        self.on_sleep = None

    def time(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep()


class ClockedScaleIO(beyond.VTreeScaleIO):
    """The fake ScaleIO with vTrees, telling each volume's creation time."""

    clock = None

    def create_volume(self, name, size_gb, pool_id, thin=False,
                      protection_domain_id=None):
        volume_id = super(ClockedScaleIO, self).create_volume(
            name, size_gb, pool_id, thin=thin,
            protection_domain_id=protection_domain_id)
        self.volumes[volume_id].created = int(self.clock.time())
        return volume_id

    def snapshot_volume(self, volume_id, snapshot_name):
        snap_id = super(ClockedScaleIO, self).snapshot_volume(
            volume_id, snapshot_name)
        self.volumes[snap_id].created = int(self.clock.time())
        return snap_id

    def get_volume(self, volume_id):
        info = super(ClockedScaleIO, self).get_volume(volume_id)
        info['creationTime'] = self.volumes[volume_id].created
        return info


class _Base(test.NoDBTestCase):

    def setUp(self):
        super(_Base, self).setUp()
        # Later than the real clock: the records of the image cache pass
        # are stamped by the real one.
        self.clock = FakeClock(4.0e9)
        ClockedScaleIO.clock = self.clock
        fake_sio.patch_object(self, fake_sio, 'FakeScaleIO',
                              new=ClockedScaleIO)
        self.fx = self.useFixture(fake_sio.SioFixture(self))
        self.sio = self.fx.sio
        for module in (sio_imagecache, sio_zerocopy):
            fake_sio.patch_object(self, module, 'time', new=self.clock)
        self.flags(images_type='sio', group='libvirt')
        self.instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        self.flags(zero_copy_boot=True, zero_copy_fill_timeout=30,
                   group='scaleio')
        self.convert = fake_sio.patch_object(
            self, images, 'convert_image',
            side_effect=test_sio_image.fake_convert)
        fake_sio.patch_object(self, images, 'qemu_img_info',
                              side_effect=test_sio_image.fake_qemu_img_info)
        self.base = os.path.join(self.instances_path, 'base-image')
        self.booted = 0
        self.downloads = 0
        group = 'image_cache' if hasattr(sio_hooks.CONF, 'image_cache') \
            else None
        self.flags(group=group,
                   remove_unused_original_minimum_age_seconds=0)

    def boot(self, uuid=None, root_gb=16):
        uuid = uuid or UUIDS[self.booted]
        self.booted += 1
        instance = test_sio_image.make_instance(uuid=uuid, root_gb=root_gb)
        image = test_sio_image.backend_image(instance, 'disk')

        def prepare(target, *args, **kwargs):
            self.downloads += 1
            self.fx.copy_to(target, b'glance image bytes')
        image.create_image(prepare, self.base, root_gb * GiB,
                           context='ctx', image_id=IMAGE_ID)
        return instance

    def root(self, instance):
        return self.sio.by_name(sio_volumes.volume_name(instance.uuid, 'disk'))

    def bases(self):
        return [(g, v) for g, v in sio_zerocopy.base_volumes(IMAGE_ID,
                                                             POOL_ID)]

    def filling(self, generation=0):
        return sio_zerocopy.base_volume_name(IMAGE_ID, POOL_ID, generation,
                                             filling=True)

    def fills(self):
        return sorted(v.id for v in self.sio.volumes.values()
                      if v.name.endswith('#'))


class AbandonedFillTestCase(_Base):
    """A ``#`` volume whose filler is gone is not waited for."""

    def crash_mid_fill(self):
        """Boot until the fill, then stop like a killed nova-compute."""
        self.convert.side_effect = Killed()
        self.assertRaises(Killed, self.boot)
        self.convert.side_effect = test_sio_image.fake_convert
        stale = self.sio.by_name(self.filling())
        self.assertIsNotNone(stale)
        return stale

    def other_host_fill(self, generation=0):
        """A fill another compute host is running (or was running)."""
        volume_id = self.sio.create_volume(self.filling(generation), 8,
                                           POOL_ID, thin=True)
        self.sio.map_volume(volume_id, guid=self.fx.GUID_B)
        return volume_id

    def test_fill_left_by_a_restart_is_taken_over_at_once(self):
        stale = self.crash_mid_fill()
        # The crashed process left the volume mapped to this host.
        self.assertEqual([self.sio.get_sdc_id(self.fx.GUID_A)],
                         stale.mapped)
        instance = self.boot()
        self.assertEqual([], self.clock.sleeps)
        self.assertNotIn(stale.id, self.sio.volumes)
        bases = self.bases()
        self.assertEqual(1, len(bases))
        self.assertEqual(bases[0][1], self.root(instance).ancestor)
        self.assertEqual(b'glance image bytes',
                         self.sio.volumes[bases[0][1]].data)
        self.assertEqual([], self.fills())

    def test_fill_older_than_the_timeout_is_taken_over(self):
        stale = self.other_host_fill()
        self.clock.now += 31
        instance = self.boot()
        self.assertEqual([], self.clock.sleeps)
        self.assertNotIn(stale, self.sio.volumes)
        self.assertEqual(self.bases()[0][1], self.root(instance).ancestor)
        self.assertEqual([], self.fills())

    def test_running_fill_of_another_host_is_waited_for(self):
        running = self.other_host_fill()
        self.sio.volumes[running].data = b'other host image'

        def publish():
            # The other host finishes after two polls.
            if len(self.clock.sleeps) == 2:
                self.sio.unmap_volume(running, guid=self.fx.GUID_B)
                self.sio.rename_volume(running, sio_zerocopy.base_volume_name(
                    IMAGE_ID, POOL_ID))
        self.clock.on_sleep = publish
        instance = self.boot()
        self.assertEqual(2, len(self.clock.sleeps))
        self.assertEqual(running, self.root(instance).ancestor)
        self.assertEqual(0, self.convert.call_count)

    def test_running_fill_after_the_wait_gives_a_copy(self):
        running = self.other_host_fill()
        # Created by the other host just now: it stays running for the
        # whole wait, so the boot copies the image and leaves the fill.
        self.sio.volumes[running].created = int(self.clock.now + 10)
        instance = self.boot()
        self.assertLessEqual(sum(self.clock.sleeps), 30 + 2)
        self.assertIsNone(self.root(instance).ancestor)
        self.assertIn(running, self.sio.volumes)

    def test_only_one_of_two_hosts_taking_over_fills(self):
        stale = self.other_host_fill()
        self.clock.now += 31
        real_delete = self.sio.delete_volume
        winner = []

        def delete_volume(volume_id, **kwargs):
            done = real_delete(volume_id, **kwargs)
            if volume_id == stale and not winner:
                # The other host removed it too and created the "#"
                # volume first.
                winner.append(self.other_host_fill())
            return done
        fake_sio.patch_object(self, self.sio, 'delete_volume',
                              side_effect=delete_volume)

        def publish():
            self.sio.volumes[winner[0]].data = b'filled by the winner'
            self.sio.unmap_volume(winner[0], guid=self.fx.GUID_B)
            self.sio.rename_volume(winner[0], sio_zerocopy.base_volume_name(
                IMAGE_ID, POOL_ID))
        self.clock.on_sleep = publish
        instance = self.boot()
        self.assertEqual(winner[0], self.root(instance).ancestor)
        self.assertEqual(0, self.convert.call_count)
        self.assertEqual([], self.fills())

    def test_fill_removed_by_another_host_falls_back_to_a_copy(self):
        def convert(source, dest, *args, **kwargs):
            test_sio_image.fake_convert(source, dest)
            fill = self.sio.by_name(self.filling())
            if fill is not None:
                # Another host found this fill stale and removed it.
                self.sio.delete_volume(fill.id, unmap=True)
        self.convert.side_effect = convert
        instance = self.boot()
        root = self.root(instance)
        self.assertIsNone(root.ancestor)
        self.sio.get_volume(root.id)  # reads the device back
        self.assertEqual(b'glance image bytes', root.data)
        self.assertEqual([], self.bases())
        self.assertEqual([], self.fills())

    def test_base_published_during_the_create_is_used(self):
        real_create = self.sio.create_volume

        def create_volume(name, *args, **kwargs):
            if name == self.filling() and not self.bases():
                other = real_create('published', 8, POOL_ID, thin=True)
                self.sio.rename_volume(other, sio_zerocopy.base_volume_name(
                    IMAGE_ID, POOL_ID))
            return real_create(name, *args, **kwargs)
        fake_sio.patch_object(self, self.sio, 'create_volume',
                              side_effect=create_volume)
        instance = self.boot()
        self.assertEqual(self.bases()[0][1], self.root(instance).ancestor)
        self.assertEqual([], self.fills())
        self.assertEqual(0, self.convert.call_count)

    def test_zero_timeout_takes_over_only_this_hosts_fills(self):
        self.flags(zero_copy_fill_timeout=0, group='scaleio')
        other = self.other_host_fill()
        self.clock.now += 3600
        instance = self.boot()
        self.assertIsNone(self.root(instance).ancestor)
        self.assertIn(other, self.sio.volumes)
        self.assertEqual([], self.clock.sleeps)


class StaleFillCachePassTestCase(_Base):
    """The image cache pass removes abandoned fills only."""

    crash_mid_fill = AbandonedFillTestCase.__dict__['crash_mid_fill']
    other_host_fill = AbandonedFillTestCase.__dict__['other_host_fill']

    def test_fill_left_by_a_restart_is_removed(self):
        stale = self.crash_mid_fill()
        self.assertEqual([IMAGE_ID], list(sio_zerocopy.recorded_base_images()))
        self.assertEqual([self.filling()],
                         sio_hooks.manage_base_volumes([]))
        self.assertNotIn(stale.id, self.sio.volumes)
        self.assertEqual([], self.sio.names())
        self.assertEqual({}, sio_zerocopy.recorded_base_images())

    def test_fill_of_another_host_removed_once_older_than_the_timeout(self):
        instance = self.boot()
        instance.image_ref = IMAGE_ID
        # The next generation is being filled by another host.
        fill = self.other_host_fill(generation=1)
        self.assertEqual([], sio_hooks.manage_base_volumes([instance]))
        self.assertIn(fill, self.sio.volumes)
        self.clock.now += 31
        self.assertEqual([self.filling(1)],
                         sio_hooks.manage_base_volumes([instance]))
        self.assertNotIn(fill, self.sio.volumes)
        self.assertEqual(1, len(self.bases()))

    def test_record_kept_while_a_fill_runs_elsewhere(self):
        instance = self.boot()
        sio_lifecycle.destroy_volumes(instance)
        fill = self.other_host_fill()
        self.sio.delete_volume(self.bases()[0][1])
        self.assertEqual([], sio_hooks.manage_base_volumes([]))
        self.assertEqual([IMAGE_ID], list(sio_zerocopy.recorded_base_images()))
        self.assertIn(fill, self.sio.volumes)

    def test_running_fill_of_this_process_is_kept(self):
        seen = []

        def convert(source, dest, *args, **kwargs):
            # The cache pass runs while this host fills.
            seen.append(sio_imagecache.remove_stale_fills([IMAGE_ID]))
            test_sio_image.fake_convert(source, dest)
        self.convert.side_effect = convert
        instance = self.boot()
        self.assertEqual([[]], seen)
        self.assertEqual(self.bases()[0][1], self.root(instance).ancestor)


class FilledBaseTestCase(_Base):
    """A host without the image in ``_base`` uses a filled base volume."""

    def other_host_base(self, size_gb):
        """A base volume another compute host filled."""
        return self.sio.create_volume(
            sio_zerocopy.base_volume_name(IMAGE_ID, POOL_ID, 0), size_gb,
            POOL_ID, thin=True)

    def test_first_boot_on_another_host_downloads_nothing(self):
        self.boot()
        self.assertEqual((1, 1), (self.downloads, self.convert.call_count))
        # The next host has no copy of the image in its _base.
        os.remove(self.base)
        second = self.boot()
        self.assertEqual((1, 1), (self.downloads, self.convert.call_count))
        self.assertFalse(os.path.exists(self.base))
        self.assertEqual([0], [g for g, v in self.bases()
                               if v == self.root(second).ancestor])
        self.assertEqual(16, self.root(second).size_gb)
        self.assertTrue(self.root(second).mapped)

    def test_filled_base_of_a_zero_disk_flavor_keeps_its_size(self):
        self.other_host_base(16)
        instance = self.boot(root_gb=0)
        self.assertEqual(0, self.downloads)
        self.assertEqual(16, self.root(instance).size_gb)

    def test_flavor_smaller_than_the_base_volume_downloads(self):
        base_id = self.other_host_base(24)
        instance = self.boot(root_gb=16)
        # The image itself is checked against the flavor, as without a
        # base volume; the snapshot taken first is deleted.
        self.assertEqual(1, self.downloads)
        self.assertEqual(base_id, self.root(instance).ancestor)
        self.assertEqual(1, len([v for v in self.sio.volumes.values()
                                 if v.ancestor == base_id]))

    def test_no_filled_base_downloads_and_fills(self):
        instance = self.boot()
        self.assertEqual(1, self.downloads)
        self.assertEqual([0], [g for g, v in self.bases()
                               if v == self.root(instance).ancestor])


class VTreeRoomTestCase(_Base):
    """Boots leave room for the snapshots of the instances."""

    def setUp(self):
        super(VTreeRoomTestCase, self).setUp()
        # A system allowing 4 snapshots per vTree (5 volumes).
        self.sio.max_vtree_volumes = 5
        self.flags(vtree_snapshot_limit=4, group='scaleio')

    def generations(self, instances):
        by_id = dict((v, g) for g, v in self.bases())
        return [by_id[self.root(i).ancestor] for i in instances]

    def test_boots_stop_at_half_the_limit(self):
        instances = [self.boot() for _n in range(5)]
        self.assertEqual([0, 0, 1, 1, 2], self.generations(instances))
        self.assertEqual(3, self.convert.call_count)
        # Every instance can take its resize snapshot at the same time.
        for instance in instances:
            sio_vtree.check_snapshot_room(instance)
            sio_hooks.snapshot_volumes(instance)
        for instance in instances:
            self.assertIsNotNone(self.sio.by_name(sio_volumes.volume_name(
                instance.uuid, 'disk', sio_volumes.RESIZE_SNAPSHOT)))

    def test_max_vtree_snapshots_option(self):
        self.flags(zero_copy_max_vtree_snapshots=3, group='scaleio')
        instances = [self.boot() for _n in range(4)]
        self.assertEqual([0, 0, 0, 1], self.generations(instances))

    def test_older_generation_with_room_is_used(self):
        instances = [self.boot() for _n in range(3)]
        self.assertEqual([0, 0, 1], self.generations(instances))
        sio_lifecycle.destroy_volumes(instances[0])
        # Generation 1 has room: it is the newest, so it is used first.
        self.assertEqual([1], self.generations([self.boot()]))
        # Generation 1 is at the mark now; generation 0 has room again.
        self.assertEqual([0], self.generations([self.boot()]))
        self.assertEqual(2, self.convert.call_count)

    def test_full_vtree_refuses_a_snapshot_before_any_change(self):
        self.flags(zero_copy_max_vtree_snapshots=4, group='scaleio')
        instances = [self.boot() for _n in range(4)]
        self.assertEqual([0, 0, 0, 0], self.generations(instances))
        names = self.sio.names()
        calls = len(self.sio.calls)
        exc = self.assertRaises(sio_exc.VTreeLimitReached,
                                sio_vtree.check_snapshot_room, instances[0])
        self.assertIn(self.root(instances[0]).name, str(exc))
        self.assertRaises(sio_exc.VTreeLimitReached,
                          sio_vtree.check_snapshot_room, instances[1],
                          disk_names=('disk',), kind='temporary')
        self.assertEqual(names, self.sio.names())
        self.assertEqual(calls, len(self.sio.calls))
        # Room again once an instance is gone.
        sio_lifecycle.destroy_volumes(instances[3])
        sio_vtree.check_snapshot_room(instances[0])

    def test_snapshot_to_be_replaced_leaves_room(self):
        self.flags(zero_copy_max_vtree_snapshots=3, group='scaleio')
        instances = [self.boot() for _n in range(3)]
        sio_hooks.snapshot_volumes(instances[0])
        # Full now, but the resize snapshot of instance 0 is replaced.
        sio_vtree.check_snapshot_room(instances[0])
        self.assertRaises(sio_exc.VTreeLimitReached,
                          sio_vtree.check_snapshot_room, instances[1])
        self.assertEqual(1, len(sio_hooks.snapshot_volumes(instances[0])))

    def test_vtree_count_read_from_the_statistics(self):
        first = self.boot()
        root_id = self.root(first).id
        self.assertEqual(2, sio_vtree.volume_count(self.sio, root_id))
        # A gateway without the figure: the system's limit still holds.
        fake_sio.patch_object(self, self.sio, '_request', return_value={})
        self.assertRaises(sio_exc.MalformedResponse,
                          sio_vtree.volume_count, self.sio, root_id)
        second = self.boot()
        self.assertEqual([0, 0], self.generations([first, second]))
        sio_vtree.check_snapshot_room(second)


class VTreeOptionsTestCase(test.NoDBTestCase):

    def conf(self, **values):
        values.update(rest_server_ip='192.0.2.1', rest_server_username='a',
                      rest_server_password='b', protection_domain_name='pd',
                      storage_pool_name='sp', device_root='/dev/disk/by-id')
        self.flags(group='scaleio', **values)
        return sio_hooks.CONF

    def test_defaults(self):
        conf = self.conf()
        sio_conf.validate(conf)
        self.assertEqual(126, conf.scaleio.vtree_snapshot_limit)
        self.assertEqual(0, conf.scaleio.zero_copy_max_vtree_snapshots)
        self.assertEqual(63, sio_zerocopy.boot_snapshot_mark())
        self.flags(zero_copy_max_vtree_snapshots=100, group='scaleio')
        self.assertEqual(100, sio_zerocopy.boot_snapshot_mark())
        self.flags(vtree_snapshot_limit=1, zero_copy_max_vtree_snapshots=0,
                   group='scaleio')
        self.assertEqual(1, sio_zerocopy.boot_snapshot_mark())

    def test_bad_values(self):
        for values, option in (
                ({'vtree_snapshot_limit': 0}, 'vtree_snapshot_limit'),
                ({'vtree_snapshot_limit': 126,
                  'zero_copy_max_vtree_snapshots': 127},
                 'zero_copy_max_vtree_snapshots'),
                ({'vtree_snapshot_limit': 31,
                  'zero_copy_max_vtree_snapshots': 32},
                 'zero_copy_max_vtree_snapshots'),
                ({'vtree_snapshot_limit': 126,
                  'zero_copy_max_vtree_snapshots': -1},
                 'zero_copy_max_vtree_snapshots')):
            exc = self.assertRaises(sio_exc.InvalidConfig, sio_conf.validate,
                                    self.conf(**values))
            self.assertIn(option, str(exc))
