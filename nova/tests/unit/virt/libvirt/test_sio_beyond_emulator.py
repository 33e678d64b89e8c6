# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Zero-copy boot and live snapshot export against the gateway emulator.

Two compute hosts boot the same image with ``[scaleio] zero_copy_boot``:
the first fills the base volume, the second only snapshots it. A live
snapshot is exported from a ScaleIO snapshot. The test ends by checking
that none of its volumes and mappings is left on the emulator.

Needs ``NOVA_SIO_EMULATOR`` (see ``test_sio_lifecycle``); skipped
without it.
"""

from __future__ import absolute_import

import os

import fixtures
from oslo_utils import uuidutils

from nova import test
from nova.tests.unit.virt.libvirt import sio_emulator
from nova.tests.unit.virt.libvirt import test_sio_image
from nova.tests.unit.virt.libvirt import test_sio_lifecycle as lifecycle
from nova.virt.libvirt.sio import connection as sio_connection
from nova.virt.libvirt.sio import disks as sio_disks
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import imagecache as sio_imagecache
from nova.virt.libvirt.sio import lifecycle as sio_lifecycle
from nova.virt.libvirt.sio import volumes as sio_volumes
from nova.virt.libvirt.sio import zerocopy as sio_zerocopy

GiB = 1024 ** 3
IMAGE_DATA = b'zero-copy-image:' + b'z' * 4096


class ZeroCopyEmulatorTestCase(test.NoDBTestCase):

    def setUp(self):
        super(ZeroCopyEmulatorTestCase, self).setUp()
        self.emu = lifecycle.emulator_info()
        if self.emu is None:
            self.skipTest('NOVA_SIO_EMULATOR is not set')
        self.instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        self.flags(images_type='sio', group='libvirt')
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.images.qemu_img_info', lifecycle.fake_qemu_img_info))
        self.converts = []

        def convert(source, dest, *args, **kwargs):
            self.converts.append((source, dest))
            lifecycle.fake_convert_image(source, dest)
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.images.convert_image', convert))
        self.addCleanup(sio_hooks.reset)
        # A fresh image id per test: tests share the emulator.
        self.image_id = uuidutils.generate_uuid()
        self.base = os.path.join(self.instances_path, 'base')
        with open(self.base, 'wb') as handle:
            handle.write(IMAGE_DATA)

    def on(self, name):
        self.flags(host=name)
        self.flags(group='scaleio', **sio_emulator.scaleio_flags(
            self.emu, name, zero_copy_boot=True, zero_copy_fill_timeout=5,
            live_snapshot=True))
        sio_hooks.reset()

    def boot(self, host):
        self.on(host)
        instance = test_sio_image.make_instance(
            uuid=uuidutils.generate_uuid(), host=host)
        image = test_sio_image.backend_image(instance, 'disk')
        image.create_image(lambda target, **kw: None, self.base, 16 * GiB,
                           image_id=self.image_id)
        return instance, image

    def base_ids(self):
        client = sio_connection.get_client()
        pool_id = client.get_pool_id('pd1', 'sp1')
        return [v for _g, v in sio_zerocopy.base_volumes(self.image_id,
                                                         pool_id)]

    def test_two_hosts_share_one_base_volume(self):
        first, image_a = self.boot('host-a')
        second, image_b = self.boot('host-b')
        self.assertEqual(1, len(self.converts))
        bases = self.base_ids()
        self.assertEqual(1, len(bases))
        client = sio_connection.get_client()
        for image in (image_a, image_b):
            info = client.get_volume(image.volume_id)
            self.assertEqual(bases[0], info['ancestorVolumeId'])
            self.assertEqual(16 * GiB, int(info['sizeInKb']) * 1024)
        self.assertEqual([], client.get_mapped_sdc_ids(bases[0]))
        self.assertEqual(IMAGE_DATA,
                         lifecycle.read_head(image_b.path, len(IMAGE_DATA)))

        # Live snapshot export on host-b, from a snapshot of the disk.
        target = os.path.join(self.instances_path, 'snap.raw')
        open(target, 'wb').close()
        image_b.snapshot_extract(target, 'raw')
        self.assertEqual(IMAGE_DATA,
                         lifecycle.read_head(target, len(IMAGE_DATA)))
        self.assertIsNone(sio_volumes.lookup(second.uuid, 'disk',
                                             'temporary'))

        # In use: the base volume stays.
        self.assertEqual([], sio_imagecache.remove_unused_base_volumes(
            [self.image_id]))
        sio_lifecycle.destroy_volumes(second)
        self.on('host-a')
        sio_lifecycle.destroy_volumes(first)
        removed = sio_imagecache.remove_unused_base_volumes([self.image_id])
        self.assertEqual(1, len(removed))

        # Nothing of this test is left on the emulator.
        self.assertEqual([], self.base_ids())
        for instance in (first, second):
            self.assertEqual([], sio_disks.instance_volumes(instance))
        self.assertIsNone(client.get_volume_id(removed[0]))
