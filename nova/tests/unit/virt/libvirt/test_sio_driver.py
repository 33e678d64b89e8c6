# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Tests of the libvirt driver's sio hooks against a fake ScaleIO.

The driver runs on Nova's fake libvirt; only ScaleIO (the fake system
with per-host device directories) and host-side commands are faked.
These are the hunks of Zed (26.0.0) and later; the module skips on older
releases, whose hunks have their own tests.
"""

from __future__ import absolute_import

import os

import fixtures
try:
    from unittest import mock
except ImportError:  # Python 2.7
    import mock  # noqa: H216

from nova import context
from nova import objects
from nova import test
from nova.tests import fixtures as nova_fixtures
from nova.tests.unit.virt.libvirt import fake_sio
from nova.tests.unit.virt.libvirt import test_sio_image
from nova.virt import fake
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt.sio import volumes as sio_volumes
from nova.virt.libvirt import utils as libvirt_utils

GiB = 1024 ** 3
UUID = test_sio_image.UUID
POOL = 'b0b0000000000001'


class SioDriverTestCase(test.NoDBTestCase):

    def setUp(self):
        super(SioDriverTestCase, self).setUp()
        if not test_sio_image.HAS_DISK_INFO_MAPPING:
            self.skipTest('driver hunks of Zed and later')
        self.useFixture(nova_fixtures.LibvirtFixture())
        self.fx = self.useFixture(fake_sio.SioFixture(self))
        self.sio = self.fx.sio
        self.flags(images_type='sio', group='libvirt')
        self.instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        self.context = context.get_admin_context()
        self.drvr = libvirt_driver.LibvirtDriver(fake.FakeVirtAPI(), False)
        self.instance = test_sio_image.make_instance()
        self.instance.id = 1
        self.instance.system_metadata = {}
        self.instance.vm_state = 'active'
        self.instance.task_state = None
        for field in ('resources', 'migration_context', 'numa_topology',
                      'ephemeral_key_uuid', 'pci_devices', 'old_flavor',
                      'new_flavor', 'kernel_id', 'ramdisk_id'):
            setattr(self.instance, field, None)
        self.instance.cleaned = False
        self.instance.image_ref = ''

    def make(self, disk_name, kind='', map_to=(fake_sio.SioFixture.GUID_A,)):
        name = sio_volumes.volume_name(UUID, disk_name, kind)
        volume_id = self.sio.create_volume(name, 8, POOL)
        for guid in map_to:
            self.sio.map_volume(volume_id, guid=guid)
        return volume_id

    def test_backend_is_shared_block_storage(self):
        backend = self.drvr.image_backend.backend()
        self.assertTrue(backend.is_shared_block_storage())
        self.assertIsNone(self.drvr.check_instance_shared_storage_local(
            self.context, self.instance))
        self.assertTrue(self.drvr.instance_on_disk(self.instance))

    def test_local_gb_info_reports_the_pool(self):
        self.assertEqual({'total': 800, 'free': 640, 'used': 160},
                         self.drvr._get_local_gb_info())

    def test_disk_type_from_path(self):
        path = self.sio.device(self.fx.GUID_A, self.make('disk'))
        self.assertEqual('sio', libvirt_utils.get_disk_type_from_path(path))
        self.assertEqual('lvm', libvirt_utils.get_disk_type_from_path(
            '/dev/vg/lv'))

    @mock.patch.object(objects.Instance, 'save', autospec=True)
    @mock.patch.object(libvirt_driver.LibvirtDriver, '_undefine_domain',
                       autospec=True)
    def test_cleanup_destroy_disks_deletes_every_volume(self, mock_undef,
                                                        mock_save):
        self.make('disk', map_to=(self.fx.GUID_A, self.fx.GUID_B))
        self.make('disk.local')
        self.make('disk', kind='snapshot', map_to=())
        self.drvr.cleanup(self.context, self.instance, [],
                          destroy_disks=True, destroy_vifs=False)
        self.assertEqual([], self.sio.names())
        self.assertEqual([], os.listdir(self.fx.dev_a))
        self.assertEqual([], os.listdir(self.fx.dev_b))

    @mock.patch.object(libvirt_driver.LibvirtDriver, '_undefine_domain',
                       autospec=True)
    def test_cleanup_after_evacuation_unmaps_only(self, mock_undef):
        self.make('disk', map_to=(self.fx.GUID_A, self.fx.GUID_B))
        self.instance.host = 'host-b'
        self.drvr.cleanup(self.context, self.instance, [],
                          destroy_disks=False, destroy_vifs=False)
        self.assertEqual(1, len(self.sio.names()))
        self.assertEqual([], os.listdir(self.fx.dev_a))
        self.assertEqual(1, len(os.listdir(self.fx.dev_b)))

    @mock.patch.object(libvirt_driver.LibvirtDriver, 'unplug_vifs',
                       autospec=True)
    def test_post_live_migration_at_source_unmaps(self, mock_unplug):
        self.make('disk', map_to=(self.fx.GUID_A, self.fx.GUID_B))
        self.drvr.post_live_migration_at_source(self.context, self.instance,
                                                [])
        self.assertEqual([], os.listdir(self.fx.dev_a))
        self.assertEqual(1, len(os.listdir(self.fx.dev_b)))

    @mock.patch.object(libvirt_driver.LibvirtDriver, 'unplug_vifs',
                       autospec=True)
    @mock.patch.object(libvirt_driver.LibvirtDriver, '_undefine_domain',
                       autospec=True)
    def test_confirm_resize_on_old_host(self, mock_undef, mock_unplug):
        self.make('disk', map_to=(self.fx.GUID_A, self.fx.GUID_B))
        self.make('disk', kind='snapshot', map_to=())
        self.instance.host = 'host-b'
        self.instance.old_flavor = self.instance.flavor
        self.instance.new_flavor = self.instance.flavor
        self.drvr._cleanup_resize(self.context, self.instance, [])
        self.assertEqual([sio_volumes.volume_name(UUID, 'disk')],
                         self.sio.names())
        self.assertEqual([], os.listdir(self.fx.dev_a))

    def test_unrescue_deletes_the_rescue_volume(self):
        self.make('disk')
        self.make('disk.rescue')
        inst_dir = os.path.join(self.instances_path, UUID)
        os.makedirs(inst_dir)
        with open(os.path.join(inst_dir, 'unrescue.xml'), 'w') as handle:
            handle.write('<domain/>')
        with mock.patch.object(self.drvr, '_destroy', autospec=True), \
                mock.patch.object(self.drvr, '_create_guest', autospec=True):
            self.drvr.unrescue(self.context, self.instance)
        self.assertEqual([sio_volumes.volume_name(UUID, 'disk')],
                         self.sio.names())

    def test_disk_info_skips_sio_disks(self):
        path = self.sio.device(self.fx.GUID_A, self.make('disk'))
        config_drive = os.path.join(self.instances_path, 'disk.config')
        with open(config_drive, 'wb') as handle:
            handle.write(b'iso')
        guest = vconfig.LibvirtConfigGuest()
        for source_type, source, dev in (('block', path, 'vda'),
                                         ('file', config_drive, 'vdz')):
            disk = vconfig.LibvirtConfigGuestDisk()
            disk.source_type = source_type
            disk.source_path = source
            disk.target_dev = dev
            disk.driver_format = 'raw'
            guest.add_device(disk)
        info = self.drvr._get_instance_disk_info_from_config(guest, None)
        self.assertEqual([config_drive], [d['path'] for d in info])

    def _migrate_data(self, shared_path):
        return objects.LibvirtLiveMigrateData(
            is_shared_block_storage=True,
            is_shared_instance_path=shared_path, block_migration=False,
            instance_relative_path=UUID, serial_listen_addr=None)

    @mock.patch.object(libvirt_driver.LibvirtDriver,
                       '_pre_live_migration_plug_vifs', autospec=True)
    @mock.patch.object(libvirt_driver.LibvirtDriver,
                       '_fetch_instance_kernel_ramdisk', autospec=True)
    def test_pre_live_migration_maps_and_fetches_config_drive(
            self, mock_fetch, mock_plug):
        self.make('disk', map_to=(self.fx.GUID_A,))
        self.make('disk.local', map_to=(self.fx.GUID_A,))
        self.fx.use_host('host-b')
        self.instance.config_drive = 'True'
        copies = []
        with mock.patch.object(self.drvr._remotefs, 'copy_file',
                               autospec=True,
                               side_effect=lambda s, d, **kw:
                               copies.append(s)):
            self.drvr.pre_live_migration(
                self.context, self.instance, None, [], None,
                self._migrate_data(False))
        self.assertEqual(2, len(os.listdir(self.fx.dev_b)))
        self.assertEqual(2, len(os.listdir(self.fx.dev_a)))
        self.assertEqual(['host-a:%s' % os.path.join(
            self.instances_path, UUID, 'disk.config')], copies)
