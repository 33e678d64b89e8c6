# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The set-up shared by the driver tests of Nova 12.0.0 to 25.x.

``test_sio_e2e3_driver`` (12.0.0 to 14.x) and ``test_sio_e4e5_driver``
(15.0.0 to 25.x) test the driver hunks of their eras against a real
``LibvirtDriver`` whose ScaleIO system is the in-memory fake of
:mod:`fake_sio`. Both build the same driver, instance and volumes;
:class:`DriverTestBase` does it once, and each module only says how its
releases are recognised and which libvirt fake they take.
"""

from __future__ import absolute_import

import inspect

import fixtures

from nova.compute import power_state
from nova import context as nova_context
from nova import objects
from nova import test
from nova.tests.unit.virt.libvirt import fake_sio
from nova.tests.unit.virt.libvirt import test_sio_image
from nova.virt import fake
from nova.virt import images
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt.sio import connection as sio_connection
from nova.virt.libvirt.sio import disks as sio_disks
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import image as sio_image
from nova.virt.libvirt.sio import volumes as sio_volumes
from nova.virt.libvirt import utils as libvirt_utils

GiB = 1024 ** 3
POOL = 'b0b0000000000001'
DISKS = ('disk', 'disk.local', 'disk.swap')
GUID_A = fake_sio.SioFixture.GUID_A
GUID_B = fake_sio.SioFixture.GUID_B


class DriverTestBase(fake_sio.ImageCacheHookTests, test.NoDBTestCase):
    """A ``LibvirtDriver`` with ``images_type = sio`` on host ``host-a``.

    Subclasses set :attr:`ERA` and implement :meth:`in_era` and
    :meth:`use_libvirt`; the tests of a release outside the era skip.
    """

    #: The releases the subclass tests (named when they skip).
    ERA = None
    #: Driver methods every test replaces; the era's releases have them.
    STUBBED = ()
    #: Driver methods replaced only where the release has them.
    STUBBED_IF_PRESENT = ()
    #: Driver methods :meth:`snapshot_running_guest` replaces (if present).
    SNAPSHOT_STUBS = ()

    def in_era(self):
        """Whether the Nova under test is one of the subclass's releases.
        """
        raise NotImplementedError()

    def use_libvirt(self):
        """Install the fake libvirt the era's own driver tests use."""
        raise NotImplementedError()

    def setUp(self):
        super(DriverTestBase, self).setUp()
        # In setUp, not as a class decorator: older testtools turn a
        # decorated class into a function, which loses its tests.
        if not self.in_era():
            self.skipTest('driver hooks of %s' % self.ERA)
        self.use_libvirt()
        self.fx = self.useFixture(fake_sio.SioFixture(self))
        self.sio = self.fx.sio
        self.flags(images_type='sio', group='libvirt')
        self.flags(instances_path=self.useFixture(fixtures.TempDir()).path)
        self.context = nova_context.get_admin_context()
        self.drvr = libvirt_driver.LibvirtDriver(fake.FakeVirtAPI(), False)
        for name in self.STUBBED:
            fake_sio.patch_object(self, self.drvr, name, autospec=True)
        self.stub(*self.STUBBED_IF_PRESENT)
        self.delete_files = fake_sio.patch_object(
            self, self.drvr, 'delete_instance_files', return_value=True,
            autospec=True)
        self.instance = test_sio_image.make_instance()
        self.instance.system_metadata = {}
        fake_sio.patch_object(self, self.instance, 'save', autospec=True)

    # -- helpers -------------------------------------------------------------

    def stub(self, *names):
        """Replace the driver methods ``names`` the release has."""
        for name in names:
            if hasattr(self.drvr, name):
                fake_sio.patch_object(self, self.drvr, name, autospec=True)

    def make_volumes(self, map_to=(GUID_A,), snapshot=False, size_gb=8):
        """Create the volumes of :data:`DISKS`; return ``{disk: id}``.

        :param map_to: the SDC GUIDs to map them to.
        :param snapshot: give each one its resize snapshot.
        :param size_gb: their size.
        """
        ids = {}
        for disk_name in DISKS:
            name = sio_volumes.volume_name(self.instance.uuid, disk_name)
            ids[disk_name] = self.sio.create_volume(name, size_gb, POOL)
            for guid in map_to:
                self.sio.map_volume(ids[disk_name], guid=guid,
                                    allow_multiple=True)
            if snapshot:
                self.sio.snapshot_volume(
                    ids[disk_name], sio_volumes.volume_name(
                        self.instance.uuid, disk_name, 'snapshot'))
        return ids

    def mapped_on(self, guid, volume_ids):
        """Return the sorted ids of ``volume_ids`` mapped to SDC ``guid``.
        """
        sdc = self.sio.get_sdc_id(guid)
        return sorted(v for v in volume_ids if self.sio.is_mapped(v, sdc))

    def current_ids(self):
        """Return the sorted ids of the instance's disk volumes."""
        return sorted(v.id for v in sio_disks.instance_volumes(
            self.instance, kinds=('',)))

    def snapshots(self):
        """Return the instance's resize snapshots."""
        return sio_disks.instance_volumes(self.instance,
                                          kinds=('snapshot',))

    def found_disk(self, path):
        """What ``libvirt_utils.find_disk`` returns for the root disk.

        :param path: the root disk's device path.
        """
        return path, 'raw'

    def snapshot_running_guest(self, ids):
        """Run ``snapshot()`` of a running guest whose root disk is sio.

        Only libvirt (the guest), the image service and the PCI and port
        steps are replaced; the ScaleIO system is the fake one. The
        mocks of ``images.convert_image`` and of the driver's
        ``_create_snapshot_metadata`` are left in :attr:`convert` and
        :attr:`snapshot_metadata`.

        :param ids: :meth:`make_volumes` of the instance.
        :returns: ``(guest, uploaded bytes)``.
        """
        self.instance.image_ref = 'c0ffee00-0000-4000-8000-000000000001'
        self.fx.copy_to(sio_connection.device_path(ids['disk']),
                        b'root disk bytes')
        self.convert = fake_sio.patch_object(
            self, images, 'convert_image', autospec=True,
            side_effect=test_sio_image.fake_convert)
        path = '/dev/disk/by-id/emc-vol-%s-%s' % (fake_sio.SYSTEM_ID,
                                                  ids['disk'])
        self.flags(disable_libvirt_livesnapshot=False, group='workarounds')
        self.flags(snapshots_directory=self.useFixture(
            fixtures.TempDir()).path, group='libvirt')
        guest = fake_sio.patch_object(
            self, self.drvr._host, 'get_guest', autospec=True).return_value
        guest.get_power_state.return_value = power_state.RUNNING
        guest.has_persistent_configuration.return_value = True
        fake_sio.patch_object(
            self, self.drvr._host, 'has_min_version', return_value=True,
            autospec=True)
        fake_sio.patch_object(
            self, libvirt_utils, 'find_disk',
            return_value=self.found_disk(path), autospec=True)
        if hasattr(libvirt_driver.pci_manager, 'get_instance_pci_devs'):
            fake_sio.patch_object(
                self, libvirt_driver.pci_manager, 'get_instance_pci_devs',
                return_value=[], autospec=True)
        image_api = fake_sio.patch_object(self, self.drvr, '_image_api',
                                          autospec=True)
        image_api.get.return_value = {'name': 'snap'}
        self.snapshot_metadata = fake_sio.patch_object(
            self, self.drvr, '_create_snapshot_metadata',
            side_effect=lambda *args: {}, autospec=True)
        self.stub(*self.SNAPSHOT_STUBS)
        uploaded = []
        image_api.update.side_effect = (
            lambda ctxt, image_id, meta, data=None, **kw:
            uploaded.append(data.read() if data else None))
        self.drvr.snapshot(self.context, self.instance, 'image-1',
                           lambda **kwargs: None)
        return guest, uploaded[-1]

    def prepare_resize(self):
        """Set up what the era's ``migrate_disk_and_power_off`` reads
        before it reaches the backend (nothing by default).
        """

    def hook_inside_live_snapshot(self):
        """Whether the era's hunk calls ``hooks.live_snapshot`` from the
        driver's own ``_live_snapshot`` (Nova 12.x and 13.x) rather than
        in its place.
        """
        return 'sio_hooks.live_snapshot' in inspect.getsource(
            libvirt_driver.LibvirtDriver._live_snapshot)

    def suspended(self, guest):
        """Whether ``snapshot()`` stopped the guest for a cold copy.

        :param guest: the guest of :meth:`snapshot_running_guest`.
        """
        return self.drvr.suspend.called

    def check_live_snapshot(self, ids, live, quiesced):
        """Check a live snapshot through ScaleIO of the root disk.

        What every era's hunks must do: call ``hooks.live_snapshot`` once
        with the driver, the instance and the root disk's ``Sio`` image
        in ``raw``, freeze and thaw the guest around a temporary ScaleIO
        snapshot, delete that snapshot and keep the root volume mapped.

        :param ids: :meth:`make_volumes` of the instance.
        :param live: the mock wrapping ``hooks.live_snapshot``.
        :param quiesced: the mock wrapping the driver's ``_set_quiesced``.
        :returns: the image metadata ``live_snapshot`` was given.
        """
        self.assertEqual(1, live.call_count)
        args = live.call_args[0]
        self.assertIs(self.drvr, args[0])
        self.assertIs(self.instance, args[2])
        disk = args[4]
        self.assertIsInstance(disk, sio_image.Sio)
        self.assertEqual(ids['disk'],
                         sio_connection.volume_id_from_path(disk.path))
        self.assertEqual('raw', args[6])
        self.assertEqual([True, False],
                         [c[0][3] for c in quiesced.call_args_list])
        temp = sio_volumes.volume_name(self.instance.uuid, 'disk',
                                       'temporary')
        self.assertIn(('snapshot_volume', sio_volumes.volume_name(
            self.instance.uuid, 'disk'), temp), self.sio.calls)
        self.assertIsNone(self.sio.by_name(temp))
        self.assertEqual([ids['disk']],
                         self.mapped_on(GUID_A, [ids['disk']]))
        return args[3]

    # -- tests of every era --------------------------------------------------

    def test_local_gb_info_is_the_pool(self):
        info = libvirt_driver.LibvirtDriver._get_local_gb_info()
        self.assertEqual({'total': 800, 'free': 640, 'used': 160}, info)

    def test_cleanup_deletes_the_volumes_and_snapshots(self):
        ids = self.make_volumes(snapshot=True)
        self.drvr.cleanup(self.context, self.instance, [],
                          destroy_disks=True)
        for volume_id in ids.values():
            self.assertNotIn(volume_id, self.sio.volumes)
        self.assertEqual([], sio_disks.instance_volumes(self.instance))
        self.delete_files.assert_called_once_with(self.instance)

    def test_without_live_snapshot_the_guest_is_stopped_for_the_copy(self):
        ids = self.make_volumes()
        live = fake_sio.patch_object(self, sio_hooks, 'live_snapshot',
                                     autospec=True)
        libvirt_live = fake_sio.patch_object(
            self, self.drvr, '_live_snapshot', autospec=True)
        guest, uploaded = self.snapshot_running_guest(ids)

        self.assertEqual(b'root disk bytes', uploaded)
        self.assertTrue(self.suspended(guest))
        self.assertFalse(live.called)
        self.assertFalse(libvirt_live.called)
        self.assertEqual([], [c for c in self.sio.calls
                              if c[0] == 'snapshot_volume'])

    def test_resize_breaking_the_8_gib_rule_is_refused_running(self):
        self.make_volumes()
        before = sorted(self.sio.volumes)
        self.prepare_resize()
        flavor = objects.Flavor(root_gb=20, ephemeral_gb=8, swap=0)
        error = fake_sio.refused_resize(self, self.drvr, self.context,
                                        self.instance, flavor)
        self.assertIn('8 GiB', str(error))
        self.assertEqual(before, sorted(self.sio.volumes))

    def test_live_snapshot_exports_a_scaleio_snapshot_of_the_running_guest(
            self):
        self.flags(live_snapshot=True, group='scaleio')
        self.instance.system_metadata = {'image_hw_qemu_guest_agent': 'yes'}
        ids = self.make_volumes()
        live = fake_sio.patch_object(
            self, sio_hooks, 'live_snapshot', wraps=sio_hooks.live_snapshot)
        libvirt_live = None
        if not self.hook_inside_live_snapshot():
            libvirt_live = fake_sio.patch_object(
                self, self.drvr, '_live_snapshot', autospec=True)
        quiesced = fake_sio.patch_object(
            self, self.drvr, '_set_quiesced',
            wraps=self.drvr._set_quiesced)
        cow = fake_sio.patch_object(self, libvirt_utils, 'create_cow_image',
                                    autospec=True)
        guest, uploaded = self.snapshot_running_guest(ids)

        self.assertEqual(b'root disk bytes', uploaded)
        self.assertFalse(self.suspended(guest))
        # The libvirt live snapshot (undefine, rebase onto a copy) is
        # not used for a sio disk.
        if libvirt_live is not None:
            self.assertFalse(libvirt_live.called)
        self.assertFalse(guest.delete_configuration.called)
        self.assertFalse(guest.get_block_device.return_value.rebase.called)
        self.assertFalse(cow.called)
        meta = self.check_live_snapshot(ids, live, quiesced)
        # What the release's quiesce() takes: the image metadata dict
        # before Mitaka (no Instance.image_meta), ImageMeta from then on.
        if hasattr(self.instance, 'image_meta'):
            self.assertIsInstance(meta, objects.ImageMeta)
            self.assertTrue(meta.properties.hw_qemu_guest_agent)
        else:
            self.assertIsInstance(meta, dict)
            self.assertEqual('yes',
                             meta['properties']['hw_qemu_guest_agent'])
