# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Tests of zero-copy boot, visible round-up and the capacity rule.

They run against the in-memory ScaleIO of :mod:`fake_sio`, given vTrees
(snapshots share the vTree of their ancestor, a vTree holds a limited
number of volumes) the way the gateway has them.
"""

from __future__ import absolute_import

import logging
import os

import fixtures

from nova import test
from nova.tests.unit.virt.libvirt import fake_sio
from nova.tests.unit.virt.libvirt import test_sio_image
from nova.virt import images
from nova.virt.libvirt.sio import capacity as sio_capacity
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import flavors as sio_flavors
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import imagecache as sio_imagecache
from nova.virt.libvirt.sio import lifecycle as sio_lifecycle
from nova.virt.libvirt.sio import naming
from nova.virt.libvirt.sio import volumes as sio_volumes
from nova.virt.libvirt.sio import zerocopy as sio_zerocopy

GiB = 1024 ** 3
POOL_ID = 'b0b0000000000001'
FAST_ID = 'b0b0000000000002'
IMAGE_ID = '0e7a0d63-3f0c-4b8e-9d55-1c2b3a4d5e6f'
OTHER_UUID = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d'
THIRD_UUID = '1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e'


class VTreeScaleIO(fake_sio.FakeScaleIO):
    """The fake ScaleIO with vTrees and a vTree size limit."""

    max_vtree_volumes = 127

    def _root(self, volume):
        while volume.ancestor is not None and \
                volume.ancestor in self.volumes:
            volume = self.volumes[volume.ancestor]
        return volume.id

    def _tree(self, vtree_id):
        return [v for v in self.volumes.values()
                if self._root(v) == vtree_id]

    def get_volume(self, volume_id):
        info = super(VTreeScaleIO, self).get_volume(volume_id)
        info['vtreeId'] = self._root(self.volumes[volume_id])
        return info

    def snapshot_volume(self, volume_id, snapshot_name):
        volume = self._volume(volume_id)
        if len(self._tree(self._root(volume))) >= self.max_vtree_volumes:
            raise sio_exc.VTreeLimitReached(volume=volume_id)
        return super(VTreeScaleIO, self).snapshot_volume(volume_id,
                                                         snapshot_name)

    def delete_volume(self, volume_id, remove_mode='ONLY_ME', unmap=False):
        # A removed vTree root leaves its snapshots in a vTree of their own.
        return super(VTreeScaleIO, self).delete_volume(
            volume_id, remove_mode=remove_mode, unmap=unmap)

    def _request(self, method, path, body=None, **kwargs):
        assert method == 'GET' and path.startswith('/api/instances/VTree::')
        vtree_id, _sep, rest = path.split('::', 1)[1].partition('/')
        count = len(self._tree(vtree_id))
        if rest == 'relationships/Statistics':
            return {'numOfVolumes': count, 'numOfSnapshots': count - 1}
        assert not rest, path
        return {'id': vtree_id, 'baseVolumeId': vtree_id}


class _Base(test.NoDBTestCase):
    """The set-up of ``test_sio_image`` on a ScaleIO with vTrees."""

    def setUp(self):
        super(_Base, self).setUp()
        if not hasattr(fixtures.Fixture, '_setUp'):
            self.skipTest('fake_sio needs fixtures with _setUp')
        self.useFixture(fixtures.MonkeyPatch(
            'nova.tests.unit.virt.libvirt.fake_sio.FakeScaleIO',
            VTreeScaleIO))
        self.fx = self.useFixture(fake_sio.SioFixture(self))
        self.sio = self.fx.sio
        self.flags(images_type='sio', group='libvirt')
        self.instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        self.convert = self.useFixture(fixtures.MockPatchObject(
            images, 'convert_image', autospec=True,
            side_effect=test_sio_image.fake_convert)).mock
        self.useFixture(fixtures.MockPatchObject(
            images, 'qemu_img_info', autospec=True,
            side_effect=test_sio_image.fake_qemu_img_info))
        self.base = os.path.join(self.instances_path, 'base-image')
        self.instance = test_sio_image.make_instance()

    def image(self, disk_name='disk', instance=None):
        return test_sio_image.backend_image(instance or self.instance,
                                            disk_name)

    def fetch(self, data=b'glance image bytes'):
        def prepare(target, *args, **kwargs):
            self.fx.copy_to(target, data)
        return prepare, []

    def name(self, disk_name, kind=''):
        return sio_volumes.volume_name(test_sio_image.UUID, disk_name, kind)


class BeyondTestCase(_Base):
    """Zero-copy boot through the ``Sio`` image class."""

    def boot(self, uuid=test_sio_image.UUID, image_id=IMAGE_ID,
             data=b'glance image bytes', root_gb=16, extra_specs=None):
        instance = test_sio_image.make_instance(
            uuid=uuid, root_gb=root_gb, extra_specs=extra_specs)
        prepare, calls = self.fetch(data)
        image = self.image(instance=instance)
        image.create_image(prepare, self.base, root_gb * GiB,
                           context='ctx', image_id=image_id)
        return instance, image

    def bases(self, pool_id=POOL_ID):
        return [(g, self.sio.volumes[v].name)
                for g, v in sio_zerocopy.base_volumes(IMAGE_ID, pool_id)]

    def read(self, path):
        with open(path, 'rb') as handle:
            return handle.read()

    # -- names ---------------------------------------------------------------

    def test_base_volume_name(self):
        self.flags(volume_name_prefix='abcd', group='scaleio')
        name = sio_zerocopy.base_volume_name(IMAGE_ID, POOL_ID, 999,
                                             filling=True)
        self.assertLessEqual(len(name), naming.MAX_NAME_LENGTH)
        self.assertTrue(name.startswith('abcd'))
        self.assertTrue(name.endswith('.B999#'))
        self.assertNotEqual(sio_zerocopy.base_volume_name(IMAGE_ID, POOL_ID),
                            sio_zerocopy.base_volume_name(IMAGE_ID, FAST_ID))
        self.assertNotEqual(sio_zerocopy.base_volume_name(IMAGE_ID, POOL_ID),
                            sio_zerocopy.base_volume_name(OTHER_UUID, POOL_ID))
        for generation in (0, 7, 999):
            self.assertRaises(
                sio_exc.InvalidName, naming.parse_volume_name,
                sio_zerocopy.base_volume_name(IMAGE_ID, POOL_ID, generation))
        self.assertRaises(sio_exc.InvalidName, sio_zerocopy.base_volume_name,
                          IMAGE_ID, POOL_ID, 1000)

    # -- zero-copy boot ------------------------------------------------------

    def test_switch_off_keeps_the_full_copy(self):
        self.boot()
        self.boot(uuid=OTHER_UUID)
        self.assertEqual(2, self.convert.call_count)
        self.assertEqual([], self.bases())
        for volume in self.sio.volumes.values():
            self.assertIsNone(volume.ancestor)
            self.assertFalse(volume.thin)

    def test_first_boot_fills_the_base_volume_once(self):
        self.flags(zero_copy_boot=True, group='scaleio')
        instance, image = self.boot()
        bases = self.bases()
        self.assertEqual(1, len(bases))
        base = self.sio.by_name(bases[0][1])
        self.assertEqual([], base.mapped)
        self.assertEqual(8, base.size_gb)
        self.assertEqual(b'glance image bytes', base.data)
        root = self.sio.by_name(self.name('disk'))
        self.assertEqual(base.id, root.ancestor)
        self.assertEqual(16, root.size_gb)
        self.assertEqual(image.path, self.sio.device(self.fx.GUID_A,
                                                     root.id))
        self.assertEqual(b'glance image bytes', self.read(image.path))
        self.assertEqual(1, self.convert.call_count)
        self.assertIn(('extend_volume', self.name('disk'), 16),
                      self.sio.calls)
        # The base volume was made under its "filling" name.
        filling = sio_zerocopy.base_volume_name(IMAGE_ID, POOL_ID,
                                                filling=True)
        self.assertIn(('create_volume', filling, 8, POOL_ID, True),
                      self.sio.calls)

    def test_later_boots_copy_nothing(self):
        self.flags(zero_copy_boot=True, group='scaleio')
        self.boot()
        creates = len([c for c in self.sio.calls
                       if c[0] == 'create_volume'])
        _instance, image = self.boot(uuid=OTHER_UUID, root_gb=8)
        self.assertEqual(1, self.convert.call_count)
        self.assertEqual(creates, len([c for c in self.sio.calls
                                       if c[0] == 'create_volume']))
        root = self.sio.by_name(sio_volumes.volume_name(OTHER_UUID, 'disk'))
        self.assertEqual(8, root.size_gb)
        self.assertNotIn(('extend_volume', root.name, 8), self.sio.calls)
        self.assertEqual(b'glance image bytes', self.read(image.path))
        self.assertEqual(1, len(self.bases()))

    def test_one_base_volume_per_pool(self):
        self.flags(zero_copy_boot=True, group='scaleio')
        self.boot()
        self.boot(uuid=OTHER_UUID, extra_specs={'sio:sp_name': 'fast'})
        self.assertEqual(1, len(self.bases(POOL_ID)))
        self.assertEqual(1, len(self.bases(FAST_ID)))
        root = self.sio.by_name(sio_volumes.volume_name(OTHER_UUID, 'disk'))
        self.assertEqual(FAST_ID, root.pool_id)
        self.assertEqual(2, self.convert.call_count)

    def test_full_vtree_starts_a_new_generation(self):
        self.flags(zero_copy_boot=True, group='scaleio')
        self.sio.max_vtree_volumes = 3
        self.boot()
        self.boot(uuid=OTHER_UUID)
        self.boot(uuid=THIRD_UUID)
        bases = self.bases()
        self.assertEqual([0, 1], [g for g, _n in bases])
        third = self.sio.by_name(sio_volumes.volume_name(THIRD_UUID, 'disk'))
        self.assertEqual(self.sio.by_name(bases[1][1]).id, third.ancestor)
        self.assertEqual(2, self.convert.call_count)

    def test_other_host_filling_falls_back_to_a_copy(self):
        self.flags(zero_copy_boot=True, zero_copy_fill_timeout=0,
                   group='scaleio')
        self.sio.create_volume(sio_zerocopy.base_volume_name(
            IMAGE_ID, POOL_ID, filling=True), 8, POOL_ID, thin=True)
        _instance, image = self.boot()
        root = self.sio.by_name(self.name('disk'))
        self.assertIsNone(root.ancestor)
        self.assertEqual(b'glance image bytes', self.read(image.path))

    def test_failed_fill_leaves_nothing(self):
        self.flags(zero_copy_boot=True, group='scaleio')
        self.convert.side_effect = OSError('qemu-img failed')
        self.assertRaises(OSError, self.boot)
        self.assertEqual([], self.sio.names())

    def test_remove_unused_base_volumes(self):
        self.flags(zero_copy_boot=True, group='scaleio')
        self.sio.max_vtree_volumes = 2
        first, _image = self.boot()
        second, _image = self.boot(uuid=OTHER_UUID)
        self.assertEqual(2, len(self.bases()))
        # Both generations have a snapshot: nothing goes.
        self.assertEqual([], sio_imagecache.remove_unused_base_volumes(
            [IMAGE_ID]))
        sio_lifecycle.destroy_volumes(first)
        removed = sio_imagecache.remove_unused_base_volumes([IMAGE_ID])
        self.assertEqual([sio_zerocopy.base_volume_name(IMAGE_ID, POOL_ID)],
                         removed)
        # Generation 1 moved down to 0: numbering has no gap.
        bases = self.bases()
        self.assertEqual([0], [g for g, _n in bases])
        root = self.sio.by_name(sio_volumes.volume_name(OTHER_UUID, 'disk'))
        self.assertEqual(self.sio.by_name(bases[0][1]).id, root.ancestor)
        sio_lifecycle.destroy_volumes(second)
        self.assertEqual(1, len(sio_imagecache.remove_unused_base_volumes(
            [IMAGE_ID, OTHER_UUID])))
        self.assertEqual([], self.sio.names())

    def test_resize_snapshot_and_revert_of_a_snapshot_root(self):
        self.flags(zero_copy_boot=True, group='scaleio')
        instance, image = self.boot()
        sio_hooks.snapshot_volumes(instance)
        image.resize_image(24 * GiB)
        self.assertEqual(1, sio_hooks.rollback_snapshots(instance))
        root = self.sio.by_name(self.name('disk'))
        self.assertEqual(16, root.size_gb)
        self.assertEqual(b'glance image bytes', root.data)
        self.assertEqual(1, sio_lifecycle.destroy_volumes(instance))
        self.assertEqual(1, len(self.sio.names()))


class RoundUpTestCase(_Base):

    def test_rounding_is_logged(self):
        self.flags(round_volume_capacity=True, group='scaleio')
        log = self.useFixture(fixtures.FakeLogger(
            level=logging.INFO))
        instance = test_sio_image.make_instance(flavor_name='m1.odd',
                                                root_gb=20)
        prepare, _calls = self.fetch()
        image = self.image(instance=instance)
        image.create_image(prepare, self.base, 20 * GiB)
        self.assertEqual(24, self.sio.by_name(self.name('disk')).size_gb)
        self.assertIn('Rounding disk disk (%s) of flavor m1.odd up from '
                      '%d bytes (20.00 GiB) to %d bytes (24 GiB)'
                      % (self.name('disk'), 20 * GiB, 24 * GiB),
                      log.output)
        # Disk reporting gives the rounded size of the device.
        self.assertEqual(24 * GiB, image.get_disk_size(image.path))

    def test_exact_sizes_are_not_logged(self):
        log = self.useFixture(fixtures.FakeLogger(
            level=logging.INFO))
        self.assertEqual(16 * GiB, sio_flavors.checked_size(
            None, 'disk', 16 * GiB))
        self.assertNotIn('Rounding', log.output)


class CapacityTestCase(_Base):

    def set_capacity(self, pool_id, total, free, provisioned):
        caps = getattr(self, 'caps', {})
        caps[pool_id] = {'total_bytes': total * GiB,
                         'free_bytes': free * GiB,
                         'used_bytes': (total - free) * GiB,
                         'provisioned_bytes': provisioned * GiB}
        self.caps = caps
        self.sio.pool_capacity = lambda pool_id: dict(self.caps[pool_id])
        # Changed behind this host's back: drop the cached figures.
        sio_capacity.capacity_changed()

    def test_default_is_the_default_pool(self):
        self.set_capacity(POOL_ID, 800, 640, 1000)
        self.set_capacity(FAST_ID, 100, 10, 0)
        self.assertEqual({'total': 800, 'free': 640, 'used': 160},
                         sio_hooks.get_local_gb_info())

    def test_provisioned_mode_counts_thin_volumes(self):
        self.flags(capacity_mode='provisioned', group='scaleio')
        self.set_capacity(POOL_ID, 800, 640, 700)
        self.assertEqual({'total': 800, 'free': 100, 'used': 700},
                         sio_hooks.get_local_gb_info())
        self.set_capacity(POOL_ID, 800, 640, 900)
        self.assertEqual({'total': 800, 'free': 0, 'used': 800},
                         sio_hooks.get_local_gb_info())
        # Allocation figures win when they are the larger.
        self.set_capacity(POOL_ID, 800, 640, 8)
        self.assertEqual({'total': 800, 'free': 640, 'used': 160},
                         sio_hooks.get_local_gb_info())

    def test_additional_pools(self):
        self.flags(additional_pools=['pd1:fast', 'pd1:sp1'],
                   group='scaleio')
        self.set_capacity(POOL_ID, 800, 640, 0)
        self.set_capacity(FAST_ID, 200, 48, 0)
        self.assertEqual([('pd1', 'sp1'), ('pd1', 'fast')],
                         sio_capacity.served_pools())
        # Free is the smallest pool's: whatever pool a flavor picks, an
        # admitted disk fits.
        self.assertEqual({'total': 1000, 'free': 48, 'used': 952},
                         sio_hooks.get_local_gb_info())
        self.assertEqual({'total': 1000 * GiB, 'free': 48 * GiB,
                          'used': 952 * GiB}, sio_hooks.get_pool_info())


class LiveSnapshotTestCase(_Base):

    def boot(self):
        prepare, _calls = self.fetch(b'disk contents')
        image = self.image()
        image.create_image(prepare, self.base, 16 * GiB, image_id=IMAGE_ID)
        return image

    def extract(self, image):
        target = os.path.join(self.instances_path, 'snapshot.raw')
        image.snapshot_extract(target, 'raw')
        with open(target, 'rb') as handle:
            return handle.read()

    def test_exported_from_a_scaleio_snapshot(self):
        self.flags(live_snapshot=True, group='scaleio')
        image = self.boot()
        names = self.sio.names()
        self.assertEqual(b'disk contents', self.extract(image))
        temp = self.name('disk', 'temporary')
        self.assertIn(('snapshot_volume', self.name('disk'), temp),
                      self.sio.calls)
        self.assertIn(('delete_volume', temp), self.sio.calls)
        self.assertEqual(names, self.sio.names())
        # The disk itself stayed mapped for the running guest.
        disk = self.sio.by_name(self.name('disk'))
        self.assertEqual(1, len(disk.mapped))

    def test_snapshot_is_removed_when_the_export_fails(self):
        self.flags(live_snapshot=True, group='scaleio')
        image = self.boot()
        self.convert.side_effect = OSError('qemu-img failed')
        self.assertRaises(OSError, self.extract, image)
        self.assertIsNone(self.sio.by_name(self.name('disk', 'temporary')))

    def test_switch_off_reads_the_disk(self):
        image = self.boot()
        self.assertEqual(b'disk contents', self.extract(image))
        self.assertEqual([], [c for c in self.sio.calls
                              if c[0] == 'snapshot_volume'])


class _Driver(object):
    """The driver's ``quiesce``/``unquiesce``, logged into ``calls``."""

    def __init__(self, calls, error=None):
        self.calls = calls
        self.error = error

    def quiesce(self, context, instance, image_meta):
        self.calls.append(('quiesce', instance.uuid))
        if self.error is not None:
            raise self.error

    def unquiesce(self, context, instance, image_meta):
        self.calls.append(('unquiesce', instance.uuid))


class QemuGuestAgentNotEnabled(Exception):
    """Named like Nova's error for an image without the guest agent."""


class QuiescedLiveSnapshotTestCase(_Base):
    """``hooks.live_snapshot``: freeze only around the ScaleIO snapshot."""

    boot = LiveSnapshotTestCase.__dict__['boot']

    def setUp(self):
        super(QuiescedLiveSnapshotTestCase, self).setUp()
        self.flags(live_snapshot=True, group='scaleio')
        self.target = os.path.join(self.instances_path, 'live.raw')

    def live(self, image, properties, error=None):
        driver = _Driver(self.sio.calls, error)
        sio_hooks.live_snapshot(driver, 'ctx', self.instance,
                                {'properties': properties}, image,
                                self.target, 'raw')
        with open(self.target, 'rb') as handle:
            return handle.read()

    def sequence(self):
        return [c[0] for c in self.sio.calls
                if c[0] in ('quiesce', 'unquiesce', 'snapshot_volume',
                            'delete_volume')]

    def test_live_snapshot_allowed(self):
        self.assertTrue(sio_hooks.live_snapshot_allowed('sio'))
        self.flags(live_snapshot=False, group='scaleio')
        self.assertFalse(sio_hooks.live_snapshot_allowed('sio'))
        for other in ('rbd', 'qcow2', 'raw', None):
            self.assertTrue(sio_hooks.live_snapshot_allowed(other))

    def test_frozen_only_while_the_snapshot_is_taken(self):
        image = self.boot()
        del self.sio.calls[:]
        data = self.live(image, {'hw_qemu_guest_agent': 'yes'})
        self.assertEqual(b'disk contents', data)
        self.assertEqual(['quiesce', 'snapshot_volume', 'unquiesce',
                          'delete_volume'], self.sequence())
        self.assertIsNone(self.sio.by_name(self.name('disk', 'temporary')))

    def test_without_agent_no_quiesce(self):
        image = self.boot()
        del self.sio.calls[:]
        self.assertEqual(b'disk contents', self.live(image, {}))
        self.assertEqual(['snapshot_volume', 'delete_volume'],
                         self.sequence())

    def test_agent_failure_gives_a_crash_consistent_snapshot(self):
        image = self.boot()
        del self.sio.calls[:]
        data = self.live(image, {'hw_qemu_guest_agent': True},
                         error=RuntimeError('agent is not responding'))
        self.assertEqual(b'disk contents', data)
        self.assertEqual(['quiesce', 'snapshot_volume', 'delete_volume'],
                         self.sequence())

    def test_required_quiesce_failure_takes_no_snapshot(self):
        image = self.boot()
        names = self.sio.names()
        del self.sio.calls[:]
        self.assertRaises(QemuGuestAgentNotEnabled, self.live, image,
                          {'os_require_quiesce': 'true'},
                          error=QemuGuestAgentNotEnabled())
        self.assertEqual(['quiesce'], self.sequence())
        self.assertEqual(names, self.sio.names())

    def test_thawed_when_the_snapshot_fails(self):
        image = self.boot()
        names = self.sio.names()
        del self.sio.calls[:]
        self.useFixture(fixtures.MockPatchObject(
            self.sio, 'snapshot_volume',
            side_effect=sio_exc.CapacityExceeded(
                pool=POOL_ID, volume='snap', gateway_message='full')))
        self.assertRaises(sio_exc.CapacityExceeded, self.live, image,
                          {'hw_qemu_guest_agent': 'yes'})
        self.assertEqual(['quiesce', 'unquiesce'], self.sequence())
        self.assertEqual(names, self.sio.names())


class ImageCacheTestCase(_Base):
    """``hooks.manage_base_volumes``: the image cache manager's pass."""

    boot = BeyondTestCase.__dict__['boot']
    bases = BeyondTestCase.__dict__['bases']

    def setUp(self):
        super(ImageCacheTestCase, self).setUp()
        self.flags(zero_copy_boot=True, group='scaleio')
        self.cache_flags(remove_unused_original_minimum_age_seconds=0)

    def cache_flags(self, **kwargs):
        """Set image cache options where this Nova keeps them."""
        group = 'image_cache' if hasattr(sio_hooks.CONF, 'image_cache') \
            else None
        self.flags(group=group, **kwargs)

    def test_boot_records_the_image(self):
        self.assertEqual({}, sio_zerocopy.recorded_base_images())
        self.boot()
        self.assertEqual([IMAGE_ID], list(sio_zerocopy.recorded_base_images()))

    def test_unused_base_volume_removed(self):
        instance, _image = self.boot()
        instance.image_ref = IMAGE_ID
        self.assertEqual([], sio_hooks.manage_base_volumes([instance]))
        self.assertEqual(1, len(self.bases()))
        sio_lifecycle.destroy_volumes(instance)
        removed = sio_hooks.manage_base_volumes([])
        self.assertEqual([sio_zerocopy.base_volume_name(IMAGE_ID, POOL_ID)],
                         removed)
        self.assertEqual([], self.sio.names())
        self.assertEqual({}, sio_zerocopy.recorded_base_images())

    def test_young_records_are_kept(self):
        self.cache_flags(remove_unused_original_minimum_age_seconds=3600)
        instance, _image = self.boot()
        sio_lifecycle.destroy_volumes(instance)
        self.assertEqual([], sio_hooks.manage_base_volumes([]))
        self.assertEqual(1, len(self.bases()))
        # Older than the minimum age: removed.
        path = os.path.join(self.instances_path, sio_zerocopy.REGISTRY_DIR,
                            IMAGE_ID)
        os.utime(path, (1, 1))
        self.assertEqual(1, len(sio_hooks.manage_base_volumes([])))
        self.assertEqual([], self.bases())

    def test_removal_switched_off(self):
        self.cache_flags(remove_unused_base_images=False)
        instance, _image = self.boot()
        sio_lifecycle.destroy_volumes(instance)
        self.assertEqual([], sio_hooks.manage_base_volumes([]))
        self.assertEqual(1, len(self.bases()))
        self.assertEqual([IMAGE_ID], list(sio_zerocopy.recorded_base_images()))

    def test_used_on_another_host_is_kept(self):
        first, _image = self.boot()
        self.boot(uuid=OTHER_UUID)
        sio_lifecycle.destroy_volumes(first)
        # This host sees no instance; the other host's root disk is a
        # snapshot of the base volume, so it stays, and so does the record.
        self.assertEqual([], sio_hooks.manage_base_volumes([]))
        self.assertEqual(1, len(self.bases()))
        self.assertEqual([IMAGE_ID], list(sio_zerocopy.recorded_base_images()))

    def test_gateway_error_is_logged_and_retried(self):
        log = self.useFixture(fixtures.FakeLogger(
            name=sio_imagecache.LOG.name, level=logging.WARNING))
        instance, _image = self.boot()
        sio_lifecycle.destroy_volumes(instance)
        with fixtures.MockPatchObject(
                self.sio, 'get_pool_id',
                side_effect=sio_exc.GatewayUnreachable(
                    url='https://gw', method='GET', path='/api/types',
                    reason='down')):
            self.assertEqual([], sio_hooks.manage_base_volumes([]))
        self.assertIn('Could not remove the base volumes', log.output)
        self.assertEqual(1, len(self.bases()))
        self.assertEqual(1, len(sio_hooks.manage_base_volumes([])))
