# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""One instance's whole life on ScaleIO, against the gateway emulator.

Two compute hosts, ``host-a`` and ``host-b``, take turns (the process
switches its ``[scaleio]`` identity between the emulated SDC hosts) and
run the libvirt driver code of each step of the lifecycle: boot, cold
snapshot, rescue and unrescue, resize to the other host with revert,
live migration, evacuation, hard-reboot cleanup and delete. The test
ends with the emulator's audit: no volume and no mapping may be left.

The emulator runs in its own process; ``NOVA_SIO_EMULATOR`` holds the
JSON line it prints when it starts (or the path of a file holding it),
and it must emulate the hosts ``host-a`` and ``host-b``::

    nova-sio emulator --hosts host-a,host-b > emulator.json &
    NOVA_SIO_EMULATOR=emulator.json stestr run test_sio_lifecycle

Only true edges are replaced: libvirt (Nova's fake libvirt), Glance
downloads, ``qemu-img`` (not installed on test hosts; a byte copy) and
VIF plugging. Ephemeral disks are formatted by the real ``mkfs`` through
privsep, on the emulator's sparse volume files.
"""

from __future__ import absolute_import

import os

import fixtures
from oslo_utils import uuidutils
try:
    from unittest import mock
except ImportError:  # Python 2.7
    import mock  # noqa: H216

from nova.compute import task_states
from nova import context
from nova import objects
from nova import test
from nova.tests import fixtures as nova_fixtures
from nova.tests.unit.virt.libvirt import sio_emulator
from nova.tests.unit.virt.libvirt import test_sio_image
from nova.virt import fake
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import lifecycle as sio_lifecycle
from nova.virt.libvirt.sio import naming
from nova.virt.libvirt import utils as libvirt_utils

GiB = 1024 ** 3
IMAGE_ID = '155d900f-4e14-4e4c-a73d-069cbf4541e6'
RESCUE_ID = '76fa36fc-c930-4bf3-8c8a-ea2a2420deb6'
IMAGE_DATA = b'glance-image:' + b'g' * 4096
RESCUE_DATA = b'rescue-image:' + b'r' * 4096
MAPPING = {'disk': {'bus': 'virtio', 'dev': 'vda', 'type': 'disk'},
           'disk.local': {'bus': 'virtio', 'dev': 'vdb', 'type': 'disk'},
           'disk.swap': {'bus': 'virtio', 'dev': 'vdc', 'type': 'disk'},
           'disk.rescue': {'bus': 'virtio', 'dev': 'vda', 'type': 'disk'},
           'root': {'bus': 'virtio', 'dev': 'vda', 'type': 'disk'}}


emulator_info = sio_emulator.emulator_info
fake_qemu_img_info = sio_emulator.fake_qemu_img_info
fake_convert_image = sio_emulator.fake_convert_image
read_head = sio_emulator.read_head


def fake_create_image(path, disk_format, disk_size, *args, **kwargs):
    """``qemu-img create`` of a raw file: a sparse file of that size."""
    units = {'M': 1024 ** 2, 'G': 1024 ** 3}
    text = str(disk_size)
    size = int(text[:-1]) * units[text[-1]] if text[-1] in units else int(
        text)
    with open(path, 'wb') as handle:
        handle.truncate(size)


class SioLifecycleTestCase(test.NoDBTestCase):

    REQUIRES_LOCKING = True

    def setUp(self):
        super(SioLifecycleTestCase, self).setUp()
        if not test_sio_image.HAS_DISK_INFO_MAPPING:
            self.skipTest('driver hunks of Zed and later')
        self.emu = emulator_info()
        if self.emu is None:
            self.skipTest('NOVA_SIO_EMULATOR is not set')
        self.useFixture(nova_fixtures.LibvirtFixture())
        self.useFixture(nova_fixtures.PrivsepFixture())
        self.instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        self.flags(images_type='sio', group='libvirt')
        self.flags(snapshots_directory=self.instances_path, group='libvirt')
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.images.qemu_img_info', fake_qemu_img_info))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.images.convert_image', fake_convert_image))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.libvirt.utils.create_image', fake_create_image))
        self.fetches = []
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.libvirt.utils.fetch_image', self.fake_fetch))
        self.addCleanup(sio_hooks.reset)
        self.context = context.get_admin_context()
        self.drivers = {}
        self.admin('baseline', method='post')

    def fake_fetch(self, context, target, image_id, trusted_certs=None):
        self.fetches.append(image_id)
        with open(target, 'wb') as handle:
            handle.write(RESCUE_DATA if image_id == RESCUE_ID
                         else IMAGE_DATA)

    # -- helpers -------------------------------------------------------------

    def admin(self, what, method='get', body=None):
        return sio_emulator.admin(self.emu, what, method, body)

    def on(self, name):
        """Become compute host ``name``; return its driver."""
        self.flags(host=name)
        self.flags(group='scaleio',
                   **sio_emulator.scaleio_flags(self.emu, name))
        sio_hooks.reset()
        if name not in self.drivers:
            self.drivers[name] = libvirt_driver.LibvirtDriver(
                fake.FakeVirtAPI(), False)
        return self.drivers[name]

    def volumes(self):
        """{(disk, kind): volume} of the instance, from the emulator."""
        found = {}
        for volume in self.admin('volumes'):
            try:
                uuid, disk, _prefix, kind = naming.parse_volume_name_full(
                    volume['name'])
            except Exception:
                continue
            if uuid == self.instance.uuid:
                found[(disk, kind)] = volume
        return found

    def mapped(self, disk='disk'):
        """The hosts the volume of ``disk`` is mapped to."""
        volume = self.volumes()[(disk, '')]
        sdcs = set(m['sdcId'] for m in volume.get('mappedSdcInfo') or [])
        return sorted(name for name, host in self.emu['hosts'].items()
                      if host['sdc_id'] in sdcs)

    def size_gb(self, disk='disk'):
        return int(self.volumes()[(disk, '')]['sizeInKb']) // (1024 * 1024)

    def device(self, drvr, disk='disk'):
        image = drvr.image_backend.by_name(self.instance, disk,
                                           disk_info_mapping=MAPPING[disk])
        return image.libvirt_info('none', {}).source_path

    def make_instance(self):
        flavor = objects.Flavor(name='sio.small', flavorid='sio1',
                                memory_mb=512, vcpus=1, root_gb=8,
                                ephemeral_gb=8, swap=8192, extra_specs={})
        instance = objects.Instance(
            uuid=uuidutils.generate_uuid(), id=7,
            host='host-a', flavor=flavor, image_ref=IMAGE_ID,
            kernel_id=None, ramdisk_id=None, os_type='linux',
            vm_state='active', task_state=None, system_metadata={},
            ephemeral_key_uuid=None, cleaned=False, config_drive='',
            trusted_certs=None, migration_context=None, resources=None,
            numa_topology=None, pci_devices=None, old_flavor=None,
            new_flavor=None, vm_mode=None, project_id='p', user_id='u')
        return instance

    def create_disks(self, drvr, **kwargs):
        mapping = dict((k, v) for k, v in MAPPING.items()
                       if k not in ('disk.rescue',))
        with mock.patch.object(objects.Instance, 'save', autospec=True):
            drvr._create_image(self.context, self.instance, mapping,
                               **kwargs)

    # -- the life of one instance ------------------------------------------

    def _remove_leftovers(self):
        # A failing run must not leave volumes in a shared emulator.
        self.on('host-a')
        sio_lifecycle.destroy_volumes(self.instance)

    def test_lifecycle(self):
        self.instance = self.make_instance()
        self.addCleanup(self._remove_leftovers)
        drvr_a = self.on('host-a')

        # Boot: root from Glance, ephemeral formatted, swap made.
        before = drvr_a._get_local_gb_info()
        self.create_disks(drvr_a)
        self.assertEqual([IMAGE_ID], self.fetches)
        self.assertEqual(sorted([('disk', ''), ('disk.local', ''),
                                 ('disk.swap', '')]),
                         sorted(self.volumes()))
        root = self.device(drvr_a)
        self.assertEqual(IMAGE_DATA, read_head(root, len(IMAGE_DATA)))
        self.assertEqual('sio', libvirt_utils.get_disk_type_from_path(root))
        eph = self.device(drvr_a, 'disk.local')
        # ext4 superblock magic at 1080, written by the real mkfs.
        self.assertEqual(b'\x53\xef', read_head(eph, 1082)[1080:])
        after = drvr_a._get_local_gb_info()
        self.assertEqual(before['total'], after['total'])
        self.assertEqual(24, after['used'] - before['used'])
        self.assertEqual(24, before['free'] - after['free'])

        # Cold snapshot to a local file.
        snap = drvr_a.image_backend.by_libvirt_path(self.instance, root)
        target = os.path.join(self.instances_path, 'snapshot')
        snap.snapshot_extract(target, 'raw')
        self.assertEqual(IMAGE_DATA, read_head(target, len(IMAGE_DATA)))

        # Rescue with a rescue image, then unrescue.
        rescue = drvr_a.image_backend.by_name(
            self.instance, 'disk.rescue',
            disk_info_mapping=MAPPING['disk.rescue'])
        rescue.cache(fetch_func=libvirt_utils.fetch_image,
                     context=self.context, filename='rescue-image',
                     image_id=RESCUE_ID, size=None)
        self.assertIn(('disk.rescue', ''), self.volumes())
        inst_dir = libvirt_utils.get_instance_path(self.instance)
        with open(os.path.join(inst_dir, 'unrescue.xml'), 'w') as handle:
            handle.write('<domain/>')
        with mock.patch.object(drvr_a, '_destroy', autospec=True), \
                mock.patch.object(drvr_a, '_create_guest', autospec=True):
            drvr_a.unrescue(self.context, self.instance)
        self.assertNotIn(('disk.rescue', ''), self.volumes())

        # Resize to host-b (root 8 -> 16 GiB), then revert.
        self.instance.old_flavor = self.instance.flavor
        self.instance.new_flavor = self.instance.flavor.obj_clone()
        self.instance.new_flavor.root_gb = 16
        self.instance.flavor = self.instance.new_flavor
        self.instance.task_state = task_states.RESIZE_FINISH
        drvr_b = self.on('host-b')
        sio_hooks.map_volumes(self.instance)
        self.create_disks(drvr_b)
        self.assertEqual(16, self.size_gb())
        self.assertIn(('disk', 'snapshot'), self.volumes())
        self.assertIn(('disk.local', 'snapshot'), self.volumes())
        self.assertEqual(['host-a', 'host-b'], self.mapped())
        with open(self.device(drvr_b), 'r+b') as handle:
            handle.write(b'written-during-resize')

        self.instance.task_state = task_states.RESIZE_REVERTING
        with mock.patch.object(drvr_b, '_undefine_domain', autospec=True):
            drvr_b.cleanup(self.context, self.instance, [],
                           destroy_disks=False, destroy_vifs=False)
        self.assertEqual(['host-a'], self.mapped())
        self.on('host-a')
        self.instance.flavor = self.instance.old_flavor
        root_disk = drvr_a.image_backend.by_name(self.instance, 'disk')
        self.assertTrue(root_disk.exists())
        root_disk.rollback_to_snap(libvirt_utils.RESIZE_SNAPSHOT_NAME)
        root_disk.remove_snap(libvirt_utils.RESIZE_SNAPSHOT_NAME)
        sio_hooks.map_volumes(self.instance)
        self.instance.task_state = None
        self.assertEqual(8, self.size_gb())
        self.assertEqual(sorted([('disk', ''), ('disk.local', ''),
                                 ('disk.swap', '')]),
                         sorted(self.volumes()))
        self.assertEqual(IMAGE_DATA,
                         read_head(self.device(drvr_a), len(IMAGE_DATA)))
        self.assertEqual(['host-a'], self.mapped('disk.local'))

        # Live migration to host-b.
        drvr_b = self.on('host-b')
        migrate_data = objects.LibvirtLiveMigrateData(
            is_shared_block_storage=True, is_shared_instance_path=True,
            block_migration=False, serial_listen_addr=None)
        with mock.patch.object(drvr_b, '_pre_live_migration_plug_vifs',
                               autospec=True):
            drvr_b.pre_live_migration(self.context, self.instance, None,
                                      [], None, migrate_data)
        self.assertEqual(['host-a', 'host-b'], self.mapped())
        self.on('host-a')
        with mock.patch.object(drvr_a, 'unplug_vifs', autospec=True):
            drvr_a.post_live_migration_at_source(self.context,
                                                 self.instance, [])
        self.assertEqual(['host-b'], self.mapped())
        self.assertEqual(['host-b'], self.mapped('disk.swap'))
        self.instance.host = 'host-b'

        # Evacuation back to host-a: the volumes are reused, not copied.
        self.on('host-a')
        self.instance.host = 'host-a'
        self.create_disks(drvr_a)
        self.assertEqual([IMAGE_ID, RESCUE_ID], self.fetches)
        self.assertEqual(IMAGE_DATA,
                         read_head(self.device(drvr_a), len(IMAGE_DATA)))
        self.on('host-b')
        with mock.patch.object(drvr_b, '_undefine_domain', autospec=True):
            drvr_b.cleanup(self.context, self.instance, [],
                           destroy_disks=False, destroy_vifs=False)
        self.assertEqual(['host-a'], self.mapped())

        # A hard reboot keeps the mappings of the local instance.
        self.on('host-a')
        with mock.patch.object(drvr_a, '_undefine_domain', autospec=True):
            drvr_a.cleanup(self.context, self.instance, [],
                           destroy_disks=False, destroy_vifs=False)
        self.assertEqual(['host-a'], self.mapped())

        # Delete.
        with mock.patch.object(drvr_a, '_undefine_domain', autospec=True), \
                mock.patch.object(objects.Instance, 'save', autospec=True):
            drvr_a.cleanup(self.context, self.instance, [],
                           destroy_disks=True, destroy_vifs=False)
        self.assertEqual({}, self.volumes())
        audit = self.admin('audit', method='post', body={'allow': []})
        self.assertEqual([], audit['leaked_volumes'])
        self.assertEqual([], audit['stray_mappings'])
        self.assertEqual([], audit['stray_devices'])
