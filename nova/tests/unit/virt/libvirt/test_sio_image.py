# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Tests of the ``sio`` image backend class against a fake ScaleIO.

They run on every Nova release: the few that depend on an image API of
a given release skip elsewhere.
"""

from __future__ import absolute_import

import inspect
import os
import shutil

import fixtures

from nova import exception
from nova import objects
from nova import test
from nova.tests.unit.virt.libvirt import fake_sio
from nova.virt import images
from nova.virt.libvirt import imagebackend
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import image as sio_image
from nova.virt.libvirt.sio import lifecycle as sio_lifecycle
from nova.virt.libvirt.sio import volumes as sio_volumes

GiB = 1024 ** 3
UUID = '4f5a6b7c-1d2e-4f3a-8b9c-0d1e2f3a4b5c'


def _init_args():
    getspec = getattr(inspect, 'getfullargspec', None) or getattr(
        inspect, 'getargspec')
    return getspec(imagebackend.Image.__init__).args


# Zed and later: libvirt_info() reads bus and device from the mapping.
HAS_DISK_INFO_MAPPING = 'disk_info_mapping' in _init_args()


def backend_image(instance, disk_name, **kwargs):
    """Build a backend object the way the driver of this release does."""
    backend = imagebackend.Backend(False)
    if hasattr(backend, 'by_name'):
        return backend.by_name(instance, disk_name, **kwargs)
    return backend.image(instance, disk_name)


def backend_from_path(instance, path):
    backend = imagebackend.Backend(False)
    if hasattr(backend, 'by_libvirt_path'):
        return backend.by_libvirt_path(instance, path, image_type='sio')
    return backend.snapshot(instance, path, image_type='sio')


class FakeImageInfo(object):

    def __init__(self, path):
        self.file_format = 'raw'
        self.virtual_size = os.path.getsize(path)


def fake_qemu_img_info(path, format=None):
    return FakeImageInfo(path)


# Nova's ``convert_image`` took the input format with OSSA-2016-001
# (2015.1.3, 12.0.1); earlier releases take the output format only. Read
# from Nova itself, not from the backend under test.
NOVA_CONVERT_TAKES_IN_FORMAT = 'in_format' in (
    getattr(inspect, 'getfullargspec', None) or
    getattr(inspect, 'getargspec'))(images.convert_image).args


def formats(in_format, out_format):
    """The format arguments of this release's ``convert_image``."""
    if NOVA_CONVERT_TAKES_IN_FORMAT:
        return (in_format, out_format)
    return (out_format,)


def fake_convert(source, dest, *args, **kwargs):
    """qemu-img convert of a raw file: copy the bytes."""
    shutil.copyfile(source, dest)


def make_instance(flavor_name='sio.small', root_gb=16, ephemeral_gb=8,
                  swap=0, extra_specs=None, host='host-a', uuid=UUID,
                  task_state=None):
    flavor = objects.Flavor(name=flavor_name, root_gb=root_gb,
                            ephemeral_gb=ephemeral_gb, swap=swap,
                            memory_mb=512, vcpus=1, flavorid='42',
                            extra_specs=extra_specs or {})
    return objects.Instance(uuid=uuid, flavor=flavor, host=host,
                            task_state=task_state)


class SioImageTestCase(test.NoDBTestCase):

    def setUp(self):
        super(SioImageTestCase, self).setUp()
        self.fx = self.useFixture(fake_sio.SioFixture(self))
        self.sio = self.fx.sio
        self.flags(images_type='sio', group='libvirt')
        self.instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        self.convert = fake_sio.patch_object(
            self, images, 'convert_image', autospec=True,
            side_effect=fake_convert)
        self.img_info = fake_sio.patch_object(
            self, images, 'qemu_img_info', autospec=True,
            side_effect=fake_qemu_img_info)
        self.base = os.path.join(self.instances_path, 'base-image')
        self.instance = make_instance()

    def image(self, disk_name='disk', instance=None):
        return backend_image(instance or self.instance, disk_name)

    def fetch(self, data=b'glance image bytes'):
        calls = []

        def prepare(target, *args, **kwargs):
            calls.append((target, kwargs))
            self.fx.copy_to(target, data)
        return prepare, calls

    def name(self, disk_name, kind=''):
        return sio_volumes.volume_name(UUID, disk_name, kind)

    # -- registration and identity -------------------------------------------

    def test_backend_registration(self):
        image = self.image()
        self.assertIsInstance(image, sio_image.Sio)
        self.assertTrue(image.is_shared_block_storage())
        self.assertFalse(image.is_file_in_instance_path())
        self.assertEqual('block', image.source_type)
        self.assertEqual('raw', image.driver_format)
        self.assertTrue(image.is_block_dev)

    def test_exists_is_truthful(self):
        image = self.image()
        self.assertFalse(image.exists())
        self.assertIsNone(image.path)
        self.sio.create_volume(self.name('disk'), 16, 'b0b0000000000001')
        self.assertTrue(image.exists())
        self.assertTrue(self.image().exists())
        sio_lifecycle.destroy_volumes(self.instance)
        self.assertFalse(image.exists())
        self.assertFalse(image.check_image_exists())

    # -- creation ------------------------------------------------------------

    def test_root_from_glance_image(self):
        prepare, calls = self.fetch()
        image = self.image()
        image.create_image(prepare, self.base, 16 * GiB,
                           context='ctx', image_id='img')
        self.assertEqual([(self.base, {'context': 'ctx',
                                       'image_id': 'img'})], calls)
        volume = self.sio.by_name(self.name('disk'))
        self.assertEqual(16, volume.size_gb)
        self.assertFalse(volume.thin)
        self.assertEqual('b0b0000000000001', volume.pool_id)
        path = self.sio.device(self.fx.GUID_A, volume.id)
        self.assertEqual(path, image.path)
        self.convert.assert_called_once_with(
            self.base, path, *formats('raw', 'raw'), run_as_root=True)
        with open(path, 'rb') as handle:
            self.assertEqual(b'glance image bytes', handle.read())
        self.assertTrue(image.exists())

    def test_cache_creates_through_base_class(self):
        prepare, calls = self.fetch()
        image = self.image()
        image.cache(prepare, 'base-image-file', size=16 * GiB,
                    context='ctx', image_id='img')
        self.assertEqual(1, len(calls))
        self.assertEqual(16, self.sio.by_name(self.name('disk')).size_gb)
        # A second cache() finds the volume and the base: nothing new.
        image.cache(prepare, 'base-image-file', size=16 * GiB,
                    context='ctx', image_id='img')
        self.assertEqual(1, len(calls))
        self.assertEqual(1, self.convert.call_count)

    def test_base_file_is_reused(self):
        self.fx.copy_to(self.base, b'cached')
        prepare, calls = self.fetch()
        self.image().create_image(prepare, self.base, 16 * GiB)
        self.assertEqual([], calls)
        self.assertEqual(1, self.convert.call_count)

    def test_size_not_multiple_of_8_fails_before_any_volume(self):
        instance = make_instance(flavor_name='m1.odd', root_gb=20)
        prepare, calls = self.fetch()
        exc = self.assertRaises(sio_image.SioDiskSizeInvalid,
                                self.image(instance=instance).create_image,
                                prepare, self.base, 20 * GiB)
        message = str(exc)
        self.assertIn('m1.odd', message)
        self.assertIn('disk', message)
        self.assertIn('20.00 GiB', message)
        self.assertIn('24 GiB', message)
        self.assertEqual([], self.sio.names())
        self.assertEqual([], calls)

    def test_bad_swap_in_flavor_fails_at_the_first_disk(self):
        instance = make_instance(flavor_name='m1.swap', swap=512)
        prepare, calls = self.fetch()
        exc = self.assertRaises(sio_image.SioDiskSizeInvalid,
                                self.image(instance=instance).create_image,
                                prepare, self.base, 16 * GiB)
        self.assertIn('m1.swap', str(exc))
        self.assertIn('disk.swap', str(exc))
        self.assertEqual([], self.sio.names())

    def test_round_volume_capacity(self):
        self.flags(round_volume_capacity=True, group='scaleio')
        instance = make_instance(root_gb=20, swap=512)
        prepare, calls = self.fetch()
        self.image(instance=instance).create_image(prepare, self.base,
                                                   20 * GiB)
        self.assertEqual(24, self.sio.by_name(self.name('disk')).size_gb)

    def test_image_larger_than_flavor(self):
        self.fx.copy_to(self.base, b'x' * 64)
        prepare, calls = self.fetch()
        image = self.image()
        # Kilo's verify_base_size raises FlavorDiskTooSmall.
        too_small = (getattr(exception, 'FlavorDiskSmallerThanImage', None)
                     or exception.FlavorDiskTooSmall)
        self.assertRaises(too_small, image.create_image, prepare,
                          self.base, 32)
        self.assertEqual([], self.sio.names())

    def test_ephemeral_is_formatted_on_the_device(self):
        targets = []

        def mkfs(target, ephemeral_size, **kwargs):
            targets.append(target)
            self.fx.copy_to(target, b'ext4')
        image = self.image('disk.local')
        image.create_image(mkfs, os.path.join(self.instances_path, 'eph'),
                           8 * GiB, ephemeral_size=8)
        volume = self.sio.by_name(self.name('disk.local'))
        self.assertEqual(8, volume.size_gb)
        self.assertEqual([image.path], targets)
        self.assertFalse(self.convert.called)

    def test_failed_format_leaves_no_volume(self):
        def mkfs(target, **kwargs):
            raise RuntimeError('mkfs failed')
        self.assertRaises(RuntimeError, self.image('disk.eph0').create_image,
                          mkfs, 'unused', 8 * GiB, ephemeral_size=8)
        self.assertEqual([], self.sio.names())
        self.assertEqual([], os.listdir(self.fx.dev_a))

    def test_failed_convert_leaves_no_volume(self):
        self.convert.side_effect = OSError('qemu-img failed')
        prepare, calls = self.fetch()
        self.assertRaises(OSError, self.image().create_image, prepare,
                          self.base, 16 * GiB)
        self.assertEqual([], self.sio.names())
        self.assertEqual([], os.listdir(self.fx.dev_a))

    def test_flavor_extra_specs_choose_pool_and_provisioning(self):
        instance = make_instance(extra_specs={
            'sio:pd_name': 'pd2', 'sio:sp_name': 'sp1',
            'sio:provisioning_type': 'ThinProvisioned'})
        prepare, calls = self.fetch()
        self.image(instance=instance).create_image(prepare, self.base,
                                                   16 * GiB)
        volume = self.sio.by_name(self.name('disk'))
        self.assertEqual('b0b0000000000003', volume.pool_id)
        self.assertTrue(volume.thin)

    def test_existing_volume_is_reused_and_grown(self):
        prepare, calls = self.fetch()
        self.image().create_image(prepare, self.base, 16 * GiB)
        # Evacuation: the other host finds the volume and maps it.
        self.fx.use_host('host-b')
        image = self.image()
        image.create_image(prepare, self.base, 32 * GiB)
        self.assertEqual(1, len(calls))
        self.assertEqual(1, self.convert.call_count)
        volume = self.sio.by_name(self.name('disk'))
        self.assertEqual(32, volume.size_gb)
        self.assertEqual(self.sio.device(self.fx.GUID_B, volume.id),
                         image.path)
        self.assertTrue(os.path.exists(image.path))
        with open(image.path, 'rb') as handle:
            self.assertEqual(b'glance image bytes', handle.read())

    def test_resize_image_never_shrinks(self):
        prepare, calls = self.fetch()
        image = self.image()
        image.create_image(prepare, self.base, 16 * GiB)
        image.resize_image(8 * GiB)
        self.assertEqual(16, self.sio.by_name(self.name('disk')).size_gb)
        image.resize_image(24 * GiB)
        self.assertEqual(24, self.sio.by_name(self.name('disk')).size_gb)

    def test_rescue_image_above_8_gib(self):
        self.fx.copy_to(self.base, b'rescue')
        big = FakeImageInfo(self.base)
        big.virtual_size = 9 * GiB
        self.img_info.side_effect = lambda path, format=None: big
        image = self.image('disk.rescue')
        image.create_image(self.fetch()[0], self.base, None)
        volume = self.sio.by_name(self.name('disk.rescue'))
        self.assertEqual(16, volume.size_gb)
        self.assertTrue(volume.thin)

    # -- use of existing volumes -------------------------------------------

    def test_libvirt_info_maps_lazily(self):
        if not HAS_DISK_INFO_MAPPING:
            self.skipTest('libvirt_info() of Zed and later')
        prepare, calls = self.fetch()
        self.image().create_image(prepare, self.base, 16 * GiB)
        sio_hooks.unmap_volumes(self.instance)
        self.assertEqual([], os.listdir(self.fx.dev_a))
        image = backend_image(
            self.instance, 'disk',
            disk_info_mapping={'bus': 'virtio', 'dev': 'vda',
                               'type': 'disk'})
        info = image.libvirt_info('none', {})
        self.assertEqual('block', info.source_type)
        self.assertEqual('raw', info.driver_format)
        self.assertEqual(image.path, info.source_path)
        self.assertTrue(os.path.exists(info.source_path))

    def test_by_libvirt_path_and_snapshot_extract(self):
        prepare, calls = self.fetch(b'root data')
        self.image().create_image(prepare, self.base, 16 * GiB)
        path = self.image().path
        image = backend_from_path(self.instance, path)
        self.assertEqual('disk', image.disk_name)
        target = os.path.join(self.instances_path, 'snap')
        image.snapshot_extract(target, 'qcow2')
        self.convert.assert_called_with(
            path, target, *formats('raw', 'qcow2'), run_as_root=True)
        with open(target, 'rb') as handle:
            self.assertEqual(b'root data', handle.read())

    def test_get_model_is_local_block_image(self):
        if not hasattr(imagebackend.Image, 'get_model'):
            self.skipTest('Image.get_model of Liberty (12.0.0) and later')
        prepare, calls = self.fetch()
        image = self.image()
        image.create_image(prepare, self.base, 16 * GiB)
        model = image.get_model(None)
        self.assertEqual(image.path, model.path)

    def test_resize_snapshots_and_rollback_of_every_disk(self):
        prepare, calls = self.fetch(b'old root')
        root = self.image()
        root.create_image(prepare, self.base, 16 * GiB)

        def mkfs(target, **kwargs):
            self.fx.copy_to(target, b'old eph')
        self.image('disk.local').create_image(mkfs, 'x', 8 * GiB,
                                              ephemeral_size=8)
        root.create_snap('nova-resize')
        self.assertIn(self.name('disk', 'snapshot'), self.sio.names())
        self.assertIn(self.name('disk.local', 'snapshot'), self.sio.names())
        # The resize grows both disks and adds a swap disk.
        self.image().resize_image(32 * GiB)
        self.image('disk.local').resize_image(16 * GiB)
        self.image('disk.swap').create_image(mkfs, 'y', 8 * GiB,
                                             ephemeral_size=8)
        with open(self.image().path, 'wb') as handle:
            handle.write(b'new root')

        self.image().rollback_to_snap('nova-resize')
        self.assertEqual(sorted([self.name('disk'), self.name('disk.local')]),
                         self.sio.names())
        self.assertEqual(16, self.sio.by_name(self.name('disk')).size_gb)
        self.assertEqual(8, self.sio.by_name(self.name('disk.local')).size_gb)
        with open(self.image().ensure_mapped(), 'rb') as handle:
            self.assertEqual(b'old root', handle.read())

    def test_remove_snap(self):
        prepare, calls = self.fetch()
        root = self.image()
        root.create_image(prepare, self.base, 16 * GiB)
        root.create_snap('nova-resize')
        root.create_snap('nova-resize')  # a stale one is replaced
        self.assertEqual(2, len(self.sio.names()))
        root.remove_snap('nova-resize')
        self.assertEqual([self.name('disk')], self.sio.names())
        root.remove_snap('nova-resize', ignore_errors=True)

    def test_rollback_without_snapshot_keeps_disks(self):
        prepare, calls = self.fetch()
        self.image().create_image(prepare, self.base, 16 * GiB)
        self.image().rollback_to_snap('nova-resize')
        self.assertEqual([self.name('disk')], self.sio.names())

    def test_resize_moves_disk_into_the_new_flavor_pool(self):
        prepare, calls = self.fetch(b'root before resize')
        self.image().create_image(prepare, self.base, 16 * GiB)
        self.image().create_snap('nova-resize')
        resized = make_instance(extra_specs={'sio:sp_name': 'fast'},
                                task_state='resize_finish')
        image = self.image(instance=resized)
        image.create_image(prepare, self.base, 16 * GiB)
        volume = self.sio.by_name(self.name('disk'))
        self.assertEqual('b0b0000000000002', volume.pool_id)
        with open(image.path, 'rb') as handle:
            self.assertEqual(b'root before resize', handle.read())
        snap = self.sio.by_name(self.name('disk', 'snapshot'))
        self.assertEqual('b0b0000000000001', snap.pool_id)
        self.assertIsNone(self.sio.by_name(self.name('disk', 'temporary')))
        # A revert returns to the old pool.
        image.rollback_to_snap('nova-resize')
        self.assertEqual('b0b0000000000001',
                         self.sio.by_name(self.name('disk')).pool_id)

    def test_respawn_on_existing_volume_never_moves_it(self):
        # Evacuation with a flavor naming another pool keeps the data
        # where it is (the 2016 patches copied every disk here).
        prepare, calls = self.fetch()
        self.image().create_image(prepare, self.base, 16 * GiB)
        moved = make_instance(extra_specs={'sio:sp_name': 'fast'})
        self.image(instance=moved).create_image(prepare, self.base,
                                                16 * GiB)
        self.assertEqual('b0b0000000000001',
                         self.sio.by_name(self.name('disk')).pool_id)
        self.assertEqual(1, self.convert.call_count)
