# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Tests of the libvirt driver hooks of Nova 12.0.0 (Liberty) to 14.x.

These releases look the backend up with ``Backend.image`` and
``Backend.snapshot``, read the disk information from the domain XML and,
up to 14.0.3, tell a boot from volume by looking for ``disk`` in that
information. Older and newer releases carry other driver hunks and have
their own tests, so this module skips there.

The ScaleIO system is the in-memory fake of :mod:`fake_sio`; only the
driver's own non-storage steps (VIF plugging, libvirt domains, file
copies) are replaced.
"""

from __future__ import absolute_import

import os

import fixtures
from oslo_serialization import jsonutils

from nova.compute import task_states
from nova import objects
from nova import test
from nova.tests.unit.virt.libvirt import fake_sio
from nova.tests.unit.virt.libvirt import sio_driver_base as harness
from nova.tests.unit.virt.libvirt import test_sio_image
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt import imagebackend
from nova.virt.libvirt.sio import connection as sio_connection
from nova.virt.libvirt.sio import volumes as sio_volumes
from nova.virt.libvirt import utils as libvirt_utils

try:  # moved to nova.tests.fixtures.libvirt in Xena
    from nova.tests.unit.virt.libvirt import fakelibvirt
except ImportError:
    fakelibvirt = None

GiB = harness.GiB
POOL = harness.POOL
DISKS = harness.DISKS
GUID_A = harness.GUID_A
GUID_B = harness.GUID_B

IN_ERA = (fakelibvirt is not None and
          hasattr(imagebackend.Image, 'get_model') and
          not hasattr(imagebackend.Backend, 'by_name'))


def disk_type_from_path(path):
    """``get_disk_type_from_path``, called ``get_disk_type`` in 12.0.0."""
    func = getattr(libvirt_utils, 'get_disk_type_from_path', None)
    return (func or libvirt_utils.get_disk_type)(path)


class SioDriverHooksTestCase(harness.DriverTestBase):

    ERA = 'Nova 12.0.0 to 14.x'
    STUBBED = ('_unplug_vifs', 'unplug_vifs', 'plug_vifs',
               'unfilter_instance', '_undefine_domain')
    SNAPSHOT_STUBS = ('_detach_pci_devices', '_detach_sriov_ports',
                      '_attach_pci_devices', '_attach_sriov_ports',
                      '_create_domain', 'suspend')

    def in_era(self):
        return IN_ERA

    def use_libvirt(self):
        # These releases' own driver tests swap the binding for the fake
        # at import time; do it here so that this module runs alone too.
        for module in ('driver', 'host', 'guest'):
            self.useFixture(fixtures.MonkeyPatch(
                'nova.virt.libvirt.%s.libvirt' % module, fakelibvirt))
        self.useFixture(fakelibvirt.FakeLibvirtFixture())

    def setUp(self):
        super(SioDriverHooksTestCase, self).setUp()
        self.instance.image_ref = 'c0ffee00-0000-4000-8000-000000000001'
        # Liberty and Mitaka read the sizes from the instance itself.
        self.instance.root_gb = 16
        self.instance.id = 1
        self.instance.ephemeral_gb = 8

    def found_disk(self, path):
        # 12.0.0 returns the path only; later releases add the format.
        if not hasattr(libvirt_utils, 'get_disk_type_from_path'):
            return path
        return path, 'raw'

    # -- helpers -------------------------------------------------------------

    def domain_xml(self, *paths):
        disks = ''.join(
            '<disk type="block" device="disk">'
            '<driver name="qemu" type="raw"/><source dev="%s"/>'
            '<target dev="vd%s" bus="virtio"/></disk>' % (path, chr(97 + i))
            for i, path in enumerate(paths))
        return ('<domain type="kvm"><name>instance-1</name>'
                '<devices>%s</devices></domain>' % disks)

    # -- destroy -------------------------------------------------------------

    def test_cleanup_on_the_evacuation_source_unmaps_only(self):
        ids = self.make_volumes(map_to=(GUID_A, GUID_B))
        self.instance.host = 'host-b'
        self.drvr.cleanup(self.context, self.instance, [],
                          destroy_disks=False)
        self.assertEqual([], self.mapped_on(GUID_A, ids.values()))
        self.assertEqual(sorted(ids.values()),
                         self.mapped_on(GUID_B, ids.values()))

    def test_cleanup_of_a_revert_on_the_destination_unmaps(self):
        ids = self.make_volumes(map_to=(GUID_A, GUID_B))
        self.instance.task_state = task_states.RESIZE_REVERTING
        self.drvr.cleanup(self.context, self.instance, [],
                          destroy_disks=False)
        self.assertEqual([], self.mapped_on(GUID_A, ids.values()))
        self.assertEqual(sorted(ids.values()), self.current_ids())

    # -- resize --------------------------------------------------------------

    def prepare_resize(self):
        # The ScaleIO disks are not in the disk info, so the driver must
        # not take the instance for one booted from a volume.
        fake_sio.patch_object(
            self, self.drvr, 'get_instance_disk_info', return_value='[]',
            autospec=True)
        fake_sio.patch_object(
            self, self.drvr, '_is_storage_shared_with', return_value=True,
            autospec=True)

    def test_resize_down_is_refused(self):
        self.make_volumes()
        self.prepare_resize()
        flavor = objects.Flavor(root_gb=8, ephemeral_gb=8, swap=0)
        error = fake_sio.refused_resize(self, self.drvr, self.context,
                                        self.instance, flavor)
        self.assertIn('resize disk down', str(error))

    def test_resize_copies_no_sio_disk(self):
        ids = self.make_volumes()
        self.prepare_resize()
        self.stub('power_off')
        copy = fake_sio.patch_object(
            self, libvirt_utils, 'copy_image', autospec=True)
        inst_base = libvirt_utils.get_instance_path(self.instance)
        os.makedirs(inst_base)
        flavor = objects.Flavor(root_gb=24, ephemeral_gb=8, swap=0)
        out = self.drvr.migrate_disk_and_power_off(
            self.context, self.instance, 'host-b', flavor, [],
            block_device_info={'block_device_mapping': []})
        self.assertEqual([], jsonutils.loads(out))
        self.assertFalse(copy.called)
        self.assertTrue(os.path.isdir(inst_base + '_resize'))
        self.assertEqual(sorted(ids.values()), self.current_ids())

    def test_finish_migration_maps_on_the_destination(self):
        ids = self.make_volumes(map_to=(GUID_B,))
        seen = []
        create = fake_sio.patch_object(
            self, self.drvr, '_create_image',
            side_effect=lambda *a, **k: seen.append(
                self.mapped_on(GUID_A, ids.values())), autospec=True)
        self.stub('_get_guest_xml', '_create_domain_and_network',
                  '_ensure_console_log_for_instance')
        fake_sio.patch_object(
            self, libvirt_driver.blockinfo, 'get_disk_info',
            return_value={'mapping': {}}, autospec=True)
        migration = objects.Migration(source_compute='host-b')
        self.drvr.finish_migration(self.context, migration, self.instance,
                                   '[]', [], {}, True, power_on=False)
        self.assertTrue(create.called)
        # Mapped here before the image backend looks at the disks.
        self.assertEqual([sorted(ids.values())], seen)
        self.assertEqual(sorted(ids.values()),
                         self.mapped_on(GUID_B, ids.values()))

    def test_finish_revert_migration_restores_and_maps_on_the_source(self):
        old = self.make_volumes(map_to=(GUID_B,), snapshot=True)
        snap_ids = sorted(v.id for v in self.snapshots())
        # The resize grew the disks on the destination.
        for volume_id in old.values():
            self.sio.extend_volume(volume_id, 16)
        self.stub('_get_guest_xml', '_create_domain_and_network')
        fake_sio.patch_object(
            self, libvirt_driver.blockinfo, 'get_disk_info', autospec=True)
        self.drvr.finish_revert_migration(self.context, self.instance, [],
                                          power_on=False)
        self.assertEqual([], self.snapshots())
        self.assertEqual(snap_ids, self.current_ids())
        for volume_id in self.current_ids():
            self.assertEqual(8, self.sio.volumes[volume_id].size_gb)
        self.assertEqual(snap_ids, self.mapped_on(GUID_A, snap_ids))
        for volume_id in old.values():
            self.assertNotIn(volume_id, self.sio.volumes)

    def test_finishing_a_resize_snapshots_and_grows_the_disks(self):
        # 12.0.2 and later call create_snap from the driver, the patch of
        # 12.0.0 and 12.0.1 takes the snapshots itself.
        ids = self.make_volumes()
        self.instance.task_state = task_states.RESIZE_FINISH
        for attr in ('kernel_id', 'ramdisk_id', 'os_type', 'config_drive'):
            setattr(self.instance, attr, None)
        self.instance.user_id = 'user'
        self.instance.project_id = 'project'
        self.drvr._create_image(self.context, self.instance, {'disk': {}},
                                inject_files=False)
        snaps = dict((v.disk_name, v.id) for v in self.snapshots())
        self.assertEqual(sorted(DISKS), sorted(snaps))
        for disk_name in DISKS:
            self.assertEqual(8, self.sio.volumes[snaps[disk_name]].size_gb)
        self.assertEqual(16, self.sio.volumes[ids['disk']].size_gb)
        self.assertEqual(sorted(ids.values()), self.current_ids())

    def test_confirm_resize_on_the_old_host(self):
        ids = self.make_volumes(map_to=(GUID_A, GUID_B), snapshot=True)
        self.instance.host = 'host-b'
        self.drvr._cleanup_resize(self.instance, [])
        self.assertEqual([], self.snapshots())
        self.assertEqual([], self.mapped_on(GUID_A, ids.values()))
        self.assertEqual(sorted(ids.values()),
                         self.mapped_on(GUID_B, ids.values()))

    def test_confirm_resize_on_the_same_host_keeps_the_mappings(self):
        ids = self.make_volumes(snapshot=True)
        self.drvr._cleanup_resize(self.instance, [])
        self.assertEqual([], self.snapshots())
        self.assertEqual(sorted(ids.values()),
                         self.mapped_on(GUID_A, ids.values()))

    # -- live migration ------------------------------------------------------

    def test_pre_live_migration_maps_and_copies_the_config_drive(self):
        ids = self.make_volumes(map_to=(GUID_B,))
        self.instance.host = 'host-b'
        self.instance.config_drive = 'True'
        self.stub('_fetch_instance_kernel_ramdisk',
                  '_ensure_console_log_for_instance')
        copy = fake_sio.patch_object(
            self, self.drvr._remotefs, 'copy_file', autospec=True)
        migrate_data = {'is_shared_block_storage': True,
                        'is_shared_instance_path': False,
                        'block_migration': False,
                        'instance_relative_path': self.instance.uuid}
        if hasattr(objects, 'LibvirtLiveMigrateData'):  # Mitaka and later
            migrate_data = objects.LibvirtLiveMigrateData(**migrate_data)
        self.drvr.pre_live_migration(self.context, self.instance, None, [],
                                     None, migrate_data)
        self.assertEqual(sorted(ids.values()),
                         self.mapped_on(GUID_A, ids.values()))
        inst_dir = libvirt_utils.get_instance_path(self.instance)
        copy.assert_called_once_with(
            'host-b:%s' % os.path.join(inst_dir, 'disk.config'), inst_dir)

    def test_post_live_migration_at_source_unmaps(self):
        ids = self.make_volumes(map_to=(GUID_A, GUID_B))
        self.instance.host = 'host-b'
        self.drvr.post_live_migration_at_source(self.context, self.instance,
                                                [])
        self.assertEqual([], self.mapped_on(GUID_A, ids.values()))
        self.assertEqual(sorted(ids.values()),
                         self.mapped_on(GUID_B, ids.values()))

    # -- resources, snapshots, rescue ----------------------------------------

    def test_disk_type_from_path(self):
        path = '/dev/disk/by-id/emc-vol-%s-%s' % (fake_sio.SYSTEM_ID,
                                                  'f00d000000000001')
        self.assertEqual('sio', disk_type_from_path(path))
        self.assertEqual('lvm', disk_type_from_path(
            '/dev/nova-vg/%s_disk' % self.instance.uuid))

    def test_snapshot_backend_of_a_sio_path(self):
        ids = self.make_volumes()
        path = sio_connection.device_path(ids['disk'])
        backend = self.drvr.image_backend.snapshot(
            self.instance, path, image_type='sio')
        self.assertTrue(backend.is_shared_block_storage())
        self.assertEqual(path, backend.path)

    def test_snapshot_is_a_cold_raw_copy_of_the_volume(self):
        ids = self.make_volumes()
        live = fake_sio.patch_object(
            self, self.drvr, '_live_snapshot', autospec=True)
        self.stub('_prepare_domain_for_snapshot', '_snapshot_domain')
        guest, uploaded = self.snapshot_running_guest(ids)
        self.assertFalse(live.called)
        self.assertEqual('raw', self.snapshot_metadata.call_args[0][2])
        self.assertEqual(sio_connection.device_path(ids['disk']),
                         self.convert.call_args[0][0])
        self.assertEqual(b'root disk bytes', uploaded)

    def suspended(self, guest):
        """Whether snapshot() saved the guest's memory and stopped it."""
        return guest.save_memory_state.called or self.drvr.suspend.called

    def test_instance_disk_info_leaves_sio_disks_out(self):
        ids = self.make_volumes()
        lv = '/dev/nova-vg/%s_disk.local' % self.instance.uuid
        fake_sio.patch_object(
            self, libvirt_driver.lvm, 'get_volume_size', return_value=GiB,
            autospec=True)
        xml = self.domain_xml(sio_connection.device_path(ids['disk']), lv)
        info = self.drvr._get_instance_disk_info(
            'instance-1', xml, {'block_device_mapping': []})
        self.assertEqual([lv], [disk['path'] for disk in info])

    def test_unrescue_deletes_the_rescue_volume(self):
        ids = self.make_volumes()
        name = sio_volumes.volume_name(self.instance.uuid, 'disk.rescue')
        rescue_id = self.sio.create_volume(name, 8, POOL)
        self.sio.map_volume(rescue_id, guid=GUID_A)
        inst_dir = libvirt_utils.get_instance_path(self.instance)
        os.makedirs(inst_dir)
        with open(os.path.join(inst_dir, 'unrescue.xml'), 'w') as f:
            f.write('<domain/>')
        self.stub('_destroy', '_create_domain')
        fake_sio.patch_object(
            self, self.drvr._host, 'get_guest', autospec=True)
        fake_sio.patch_object(
            self, libvirt_driver.lvm, 'remove_volumes', autospec=True)
        self.drvr.unrescue(self.instance, [])
        self.assertIsNone(self.sio.by_name(name))
        self.assertEqual(sorted(ids.values()), self.current_ids())


class SioImageCacheTestCase(test.NoDBTestCase):
    """``Image.cache`` of these releases, which skips a format function
    whose target exists: a mapped device always does.
    """

    def setUp(self):
        super(SioImageCacheTestCase, self).setUp()
        # In setUp, not as a class decorator: older testtools turn a
        # decorated class into a function, which loses its tests.
        if not IN_ERA:
            self.skipTest('image cache of Nova 12.0.0 to 14.x')
        self.fx = self.useFixture(fake_sio.SioFixture(self))
        self.sio = self.fx.sio
        self.flags(images_type='sio', group='libvirt')
        self.flags(instances_path=self.useFixture(fixtures.TempDir()).path)
        self.instance = test_sio_image.make_instance()
        self.backend = imagebackend.Backend(False)

    def test_new_ephemeral_disk_is_formatted(self):
        formatted = []

        def mkfs(target, ephemeral_size, **kwargs):
            formatted.append((target, ephemeral_size))
            self.fx.copy_to(target, b'ext4')
        image = self.backend.image(self.instance, 'disk.local')
        image.cache(fetch_func=mkfs, context=None,
                    filename='ephemeral_8_default', size=8 * GiB,
                    ephemeral_size=8)
        volume = self.sio.by_name(
            sio_volumes.volume_name(self.instance.uuid, 'disk.local'))
        self.assertEqual(8, volume.size_gb)
        self.assertEqual([(image.path, 8)], formatted)

    def test_existing_ephemeral_disk_is_kept(self):
        name = sio_volumes.volume_name(self.instance.uuid, 'disk.local')
        volume_id = self.sio.create_volume(name, 8, POOL)
        formatted = []
        image = self.backend.image(self.instance, 'disk.local')
        image.cache(fetch_func=lambda **kw: formatted.append(kw),
                    context=None, filename='ephemeral_8_default',
                    size=8 * GiB, ephemeral_size=8)
        self.assertEqual([], formatted)
        self.assertEqual([volume_id], self.mapped_here())

    def mapped_here(self):
        sdc = self.sio.get_sdc_id(GUID_A)
        return [v for v in self.sio.volumes if self.sio.is_mapped(v, sdc)]
