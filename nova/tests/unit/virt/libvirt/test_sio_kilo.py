# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The sio backend in Nova Kilo (2015.1): the driver hunks of the Kilo
series and the image backend, against the ScaleIO gateway emulator.

Kilo's seams differ from later releases: ``Backend.image/snapshot``, no
snapshot hooks in the image API (the resize snapshot is taken and rolled
back by driver hunks), ``Image.cache`` that skipped writes onto existing
devices, a boot-from-volume guess from the disk-info text, the config
drive refused on live migration without a shared instance path, and
``get_disk_type`` renamed ``get_disk_type_from_path`` in 2015.1.3.

The emulator runs in its own process; ``NOVA_SIO_EMULATOR`` holds the
JSON line it prints when it starts (or the path of a file holding it).
It must emulate the SDC hosts ``host-a`` and ``host-b``. Only the true
edges are replaced: libvirt (Nova's fakelibvirt), qemu-img (a byte copy),
VIF plugging and the firewall.
"""

from __future__ import absolute_import

import json
import os
import uuid

import fixtures
try:
    import mock  # noqa: H216 (Python 2.7 has no unittest.mock)
except ImportError:  # Zed and later test without the mock library
    from unittest import mock

from nova import test
from nova.tests.unit.virt.libvirt import sio_emulator
from nova.virt.libvirt import imagebackend

# Kilo is the only release whose Image API has neither get_model (Liberty)
# nor a path argument (Newton).
KILO = not hasattr(imagebackend.Image, 'get_model')
GiB = 1024 ** 3
IMAGE_DATA = b'image-bytes:' + b'k' * 4096


emulator_info = sio_emulator.emulator_info


fake_qemu_img_info = sio_emulator.fake_qemu_img_info
fake_convert_image = sio_emulator.fake_convert_image


def fake_fetch(target, *args, **kwargs):
    """Download an image into the cache."""
    with open(target, 'wb') as f:
        f.write(IMAGE_DATA)


read_head = sio_emulator.read_head


class KiloSioTestCase(test.NoDBTestCase):
    """A compute host named ``host-a`` with ``images_type = sio``."""

    REQUIRES_LOCKING = True

    def setUp(self):
        super(KiloSioTestCase, self).setUp()
        if not KILO:
            self.skipTest('tests of the Nova 2015.1 (Kilo) seams')
        self.emu = emulator_info()
        if self.emu is None:
            self.skipTest('NOVA_SIO_EMULATOR is not set')
        from nova.virt.libvirt.sio import hooks
        from nova.virt.libvirt.sio import lifecycle
        from nova.virt.libvirt.sio import naming
        self.hooks = hooks
        self.lifecycle = lifecycle
        self.naming = naming
        self.instances_path = self.useFixture(fixtures.TempDir()).path
        self.flags(instances_path=self.instances_path)
        self.flags(images_type='sio', group='libvirt')
        self.flags(snapshots_directory=self.instances_path, group='libvirt')
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.images.qemu_img_info', fake_qemu_img_info))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.images.convert_image', fake_convert_image))
        self.use_host('host-a')
        self.addCleanup(hooks.reset)

    # -- helpers -------------------------------------------------------------

    def use_host(self, name):
        """Make this process the compute host ``name`` of the emulator."""
        host = self.emu['hosts'][name]
        self.flags(host=name)
        self.flags(group='scaleio',
                   **sio_emulator.scaleio_flags(self.emu, name))
        self.hooks.reset()
        self.host = host

    def admin(self, what):
        return sio_emulator.admin(self.emu, what)

    def volumes_of(self, instance):
        """The emulator's volumes of an instance: {(disk, kind): volume}."""
        found = {}
        for volume in self.admin('volumes'):
            try:
                inst_uuid, disk, _prefix, kind = (
                    self.naming.parse_volume_name_full(volume['name']))
            except Exception:
                continue
            if inst_uuid == instance.uuid:
                found[(disk, kind)] = volume
        return found

    def mapped_hosts(self, volume):
        sdcs = set(m['sdcId'] for m in volume.get('mappedSdcInfo') or [])
        return sorted(name for name, host in self.emu['hosts'].items()
                      if host['sdc_id'] in sdcs)

    def device(self, volume, host='host-a'):
        return os.path.join(self.emu['hosts'][host]['device_root'],
                            'emc-vol-%s-%s' % (self.emu['system_id'],
                                               volume['id']))

    def make_instance(self, root_gb=8, ephemeral_gb=0, swap=0, **updates):
        from nova import objects
        flavor = objects.Flavor(memory_mb=512, swap=swap, vcpu_weight=None,
                                root_gb=root_gb, ephemeral_gb=ephemeral_gb,
                                id=42, name=u'sio.small', flavorid=u'42',
                                rxtx_factor=1.0, vcpus=1, extra_specs={})
        values = {
            'id': 1, 'uuid': str(uuid.uuid4()),
            'image_ref': '155d900f-4e14-4e4c-a73d-069cbf4541e6',
            'root_gb': root_gb, 'ephemeral_gb': ephemeral_gb,
            'flavor': flavor, 'host': 'host-a', 'project_id': 'fake',
            'user_id': 'fake', 'os_type': 'linux', 'kernel_id': None,
            'ramdisk_id': None, 'system_metadata': {}, 'config_drive': None,
            'task_state': None, 'ephemeral_key_uuid': None,
            'vm_state': 'active', 'power_state': 1,
        }
        values.update(updates)
        instance = objects.Instance(**values)
        self.addCleanup(self.destroy_quietly, instance)
        return instance

    def destroy_quietly(self, instance):
        try:
            self.lifecycle.destroy_volumes(instance)
        except Exception:
            pass

    def backend(self):
        return imagebackend.Backend(False)

    def spawn_root(self, instance, size=8 * GiB, filename=None):
        """Create the root disk as ``_create_image`` does."""
        image = self.backend().image(instance, 'disk')
        image.cache(fetch_func=fake_fetch,
                    filename=filename or 'image-%s' % uuid.uuid4(),
                    size=size, context=None, image_id='image',
                    user_id='fake', project_id='fake')
        return image

    def driver(self):
        from nova.tests.unit.virt.libvirt import fakelibvirt
        from nova.virt import fake
        from nova.virt.libvirt import driver as libvirt_driver
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.libvirt.driver.libvirt', fakelibvirt))
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.libvirt.host.libvirt', fakelibvirt))
        self.useFixture(fakelibvirt.FakeLibvirtFixture())
        drv = libvirt_driver.LibvirtDriver(fake.FakeVirtAPI(), False)
        # Networking and the firewall are outside this backend.
        for name in ('plug_vifs', 'unplug_vifs', '_unplug_vifs',
                     'unfilter_instance', '_undefine_domain'):
            self.useFixture(fixtures.MonkeyPatch(
                'nova.virt.libvirt.driver.LibvirtDriver.' + name,
                mock.Mock()))
        return drv


class BackendTestCase(KiloSioTestCase):
    """The image backend on Kilo's ``Image`` API."""

    def test_registered_under_sio(self):
        from nova.virt.libvirt.sio import image as sio_image
        backend = self.backend()
        self.assertIs(sio_image.Sio, backend.backend('sio'))
        image = backend.image(self.make_instance(), 'disk')
        self.assertIsInstance(image, sio_image.Sio)
        self.assertTrue(image.is_block_dev)
        self.assertTrue(image.is_shared_block_storage())
        self.assertFalse(image.check_image_exists())

    def test_root_disk_is_a_mapped_volume_with_the_image(self):
        instance = self.make_instance()
        image = self.spawn_root(instance)

        volumes = self.volumes_of(instance)
        self.assertEqual([('disk', '')], list(volumes))
        volume = volumes[('disk', '')]
        self.assertEqual(8 * GiB // 1024, volume['sizeInKb'])
        self.assertEqual(['host-a'], self.mapped_hosts(volume))
        self.assertEqual(self.device(volume), image.path)
        self.assertEqual(IMAGE_DATA, read_head(image.path, len(IMAGE_DATA)))
        self.assertTrue(image.check_image_exists())
        info = image.libvirt_info('virtio', 'vda', 'disk', 'none', {}, None)
        self.assertEqual('block', info.source_type)
        self.assertEqual(image.path, info.source_path)

    def test_existing_volume_is_reused(self):
        instance = self.make_instance()
        first = self.spawn_root(instance)
        self.spawn_root(instance)
        volumes = self.volumes_of(instance)
        self.assertEqual(1, len(volumes))
        self.assertEqual(first.path, self.device(volumes[('disk', '')]))

    def test_ephemeral_disk_is_formatted_on_the_device(self):
        # Kilo's Image.cache() skipped the format function whenever its
        # target existed: a device always does.
        instance = self.make_instance(ephemeral_gb=8)
        made = []

        def create_ephemeral(target, ephemeral_size, is_block_dev=False,
                             **kwargs):
            made.append((target, ephemeral_size))
            with open(target, 'r+b') as f:
                f.write(b'ext4-on-device')

        image = self.backend().image(instance, 'disk.local')
        image.cache(fetch_func=create_ephemeral, filename='ephemeral_8_ext4',
                    size=8 * GiB, ephemeral_size=8)

        volume = self.volumes_of(instance)[('disk.local', '')]
        self.assertEqual([(self.device(volume), 8)], made)
        self.assertEqual(b'ext4-on-device', read_head(image.path, 14))

    def test_size_that_breaks_the_8gib_rule_fails_before_any_volume(self):
        from nova import exception
        instance = self.make_instance(root_gb=10)
        error = self.assertRaises(exception.ImageUnacceptable,
                                  self.spawn_root, instance, 10 * GiB)
        self.assertIn('sio.small', str(error))
        self.assertEqual({}, self.volumes_of(instance))

    def test_resized_flavor_grows_the_existing_volume(self):
        # finish_migration reaches cache() with the cached image present:
        # the volume must still grow to the new flavor's size.
        instance = self.make_instance()
        filename = 'image-%s' % uuid.uuid4()
        self.spawn_root(instance, filename=filename)
        image = self.spawn_root(instance, 16 * GiB, filename=filename)
        volume = self.volumes_of(instance)[('disk', '')]
        self.assertEqual(16 * GiB // 1024, volume['sizeInKb'])
        self.assertEqual(IMAGE_DATA, read_head(image.path, len(IMAGE_DATA)))

    def test_snapshot_backend_extracts_the_volume(self):
        from nova.virt.libvirt import utils as libvirt_utils
        instance = self.make_instance()
        path = self.spawn_root(instance).path
        # 2015.1.3 renamed get_disk_type (OSSA-2016-001).
        disk_type = getattr(libvirt_utils, 'get_disk_type_from_path', None)
        if disk_type is None:
            disk_type = libvirt_utils.get_disk_type
        self.assertEqual('sio', disk_type(path))
        self.assertEqual('lvm', disk_type('/dev/vg0/instance_disk'))

        snap = self.backend().snapshot(instance, path,
                                       image_type=disk_type(path))
        target = os.path.join(self.instances_path, 'snapshot.raw')
        open(target, 'wb').close()
        snap.snapshot_extract(target, 'raw')
        self.assertEqual(IMAGE_DATA, read_head(target, len(IMAGE_DATA)))


class DriverTestCase(KiloSioTestCase):
    """The hunks of the Kilo series in ``LibvirtDriver``."""

    def test_local_gb_info_is_the_pool(self):
        from nova.virt.libvirt import driver as libvirt_driver
        pools = [p['storage_pool'] for p in self.emu.get('pools', [])]
        if 'sp-capacity' not in pools:
            self.skipTest('the emulator has no pool sp-capacity of its own '
                          'for this test (nova-sio test starts one)')
        # A pool no other test uses: parallel tests would move sp1.
        self.flags(storage_pool_name='sp-capacity', group='scaleio')
        self.hooks.reset()
        before = libvirt_driver.LibvirtDriver._get_local_gb_info()
        instance = self.make_instance()
        self.spawn_root(instance)
        after = libvirt_driver.LibvirtDriver._get_local_gb_info()
        self.assertEqual(before['total'], after['total'])
        self.assertGreaterEqual(after['used'] - before['used'], 8)
        self.assertGreaterEqual(before['free'] - after['free'], 8)

    def test_cleanup_deletes_the_volumes(self):
        drv = self.driver()
        instance = self.make_instance()
        self.spawn_root(instance)
        self.assertTrue(self.volumes_of(instance))
        with mock.patch.object(drv, 'delete_instance_files',
                               return_value=True, autospec=True), \
                mock.patch.object(instance, 'save', autospec=True):
            drv.cleanup(None, instance, [], destroy_disks=True)
        self.assertEqual({}, self.volumes_of(instance))

    def test_cleanup_on_evacuated_source_unmaps_only(self):
        drv = self.driver()
        instance = self.make_instance()
        self.spawn_root(instance)
        instance.host = 'host-b'  # rebuilt elsewhere while we were down
        drv.cleanup(None, instance, [], destroy_disks=False)
        volume = self.volumes_of(instance)[('disk', '')]
        self.assertEqual([], self.mapped_hosts(volume))
        self.assertFalse(os.path.lexists(self.device(volume)))

    def test_disk_info_leaves_out_sio_disks(self):
        drv = self.driver()
        instance = self.make_instance()
        path = self.spawn_root(instance).path
        config = os.path.join(self.instances_path, 'disk.config')
        with open(config, 'wb') as f:
            f.write(b'c' * 512)
        xml = ("<domain><devices>"
               "<disk type='block'><driver name='qemu' type='raw'/>"
               "<source dev='%s'/><target dev='vda' bus='virtio'/></disk>"
               "<disk type='file'><driver name='qemu' type='raw'/>"
               "<source file='%s'/><target dev='hdd' bus='ide'/></disk>"
               "</devices></domain>" % (path, config))
        info = json.loads(drv._get_instance_disk_info(instance.name, xml))
        self.assertEqual([config], [d['path'] for d in info])

    def test_resize_down_of_an_image_backed_root_is_refused(self):
        from nova import exception
        drv = self.driver()
        instance = self.make_instance(root_gb=16)
        flavor = {'root_gb': 8, 'ephemeral_gb': 0}
        # What get_instance_disk_info returns once sio disks are left out:
        # Kilo's substring test alone would call this boot-from-volume.
        with mock.patch.object(drv, 'get_instance_disk_info',
                               return_value='[]', autospec=True):
            self.assertRaises(exception.InstanceFaultRollback,
                              drv.migrate_disk_and_power_off, None,
                              instance, 'host-b', flavor, [])

    def test_resize_to_a_flavor_breaking_the_8_gib_rule_is_rolled_back(self):
        from nova import exception
        drv = self.driver()
        instance = self.make_instance()
        self.spawn_root(instance)
        before = sorted(v['id'] for v in self.volumes_of(instance).values())
        flavor = {'root_gb': 12, 'ephemeral_gb': 0, 'swap': 0}
        with mock.patch.object(drv, 'get_instance_disk_info',
                               return_value='[]', autospec=True), \
                mock.patch.object(drv, 'power_off',
                                  autospec=True) as power_off:
            exc = self.assertRaises(exception.InstanceFaultRollback,
                                    drv.migrate_disk_and_power_off, None,
                                    instance, 'host-b', flavor, [])
        self.assertIsInstance(exc.inner_exception, exception.ResizeError)
        self.assertIn('disk', str(exc.inner_exception))
        self.assertFalse(power_off.called)
        self.assertEqual(before, sorted(
            v['id'] for v in self.volumes_of(instance).values()))

    def test_live_migration_maps_on_destination_unmaps_on_source(self):
        drv = self.driver()
        instance = self.make_instance()
        self.spawn_root(instance)

        self.use_host('host-b')
        migrate_data = {'is_shared_block_storage': True,
                        'is_shared_instance_path': True,
                        'block_migration': False}
        drv.pre_live_migration(None, instance, None, [], '[]',
                               migrate_data=migrate_data)
        volume = self.volumes_of(instance)[('disk', '')]
        self.assertEqual(['host-a', 'host-b'], self.mapped_hosts(volume))
        self.assertTrue(os.path.exists(self.device(volume, 'host-b')))

        self.use_host('host-a')
        drv.post_live_migration_at_source(None, instance, [])
        volume = self.volumes_of(instance)[('disk', '')]
        self.assertEqual(['host-b'], self.mapped_hosts(volume))

    def test_config_drive_is_copied_for_live_migration(self):
        from nova.virt.libvirt import utils as libvirt_utils
        drv = self.driver()
        instance = self.make_instance(config_drive='True')
        self.spawn_root(instance)
        self.flags(config_drive_format='iso9660')
        migrate_data = {'is_shared_block_storage': True,
                        'is_shared_instance_path': False,
                        'block_migration': False}
        self.use_host('host-b')
        with mock.patch.object(libvirt_utils, 'copy_image',
                               autospec=True) as copy, \
                mock.patch.object(drv, '_fetch_instance_kernel_ramdisk',
                                  autospec=True):
            drv.pre_live_migration(None, instance, None, [], '[]',
                                   migrate_data=migrate_data)
        inst_dir = os.path.join(self.instances_path, instance.uuid)
        config = os.path.join(inst_dir, 'disk.config')
        copy.assert_called_once_with(config, config, host='host-a',
                                     receive=True)
        volume = self.volumes_of(instance)[('disk', '')]
        self.assertIn('host-b', self.mapped_hosts(volume))

    def test_unrescue_deletes_the_rescue_volume(self):
        from nova.virt.libvirt import utils as libvirt_utils
        drv = self.driver()
        instance = self.make_instance()
        self.spawn_root(instance)
        rescue = self.backend().image(instance, 'disk.rescue')
        rescue.cache(fetch_func=fake_fetch, filename='rescue-image',
                     size=None, context=None, image_id='rescue',
                     user_id='fake', project_id='fake')
        self.assertIn(('disk.rescue', ''), self.volumes_of(instance))
        with mock.patch.object(libvirt_utils, 'load_file', autospec=True), \
                mock.patch.object(drv._host, 'get_domain', autospec=True), \
                mock.patch.object(drv, '_destroy', autospec=True), \
                mock.patch.object(drv, '_create_domain', autospec=True), \
                mock.patch.object(libvirt_utils, 'file_delete', autospec=True):
            drv.unrescue(instance, [])
        self.assertEqual([('disk', '')], list(self.volumes_of(instance)))

    def _snapshot_running_guest(self, drv, instance, path):
        """Run ``snapshot()`` of a running guest whose root disk is sio.

        libvirt (the domain) and the image service are replaced; the
        ScaleIO system is the emulator.

        :returns: ``(domain, head of the uploaded image)``.
        """
        from nova.compute import power_state
        from nova.virt.libvirt import utils as libvirt_utils
        self.flags(disable_libvirt_livesnapshot=False, group='workarounds')
        domain = mock.Mock()
        # 2015.1.3 made find_disk return the format too.
        found = (path if not hasattr(libvirt_utils, 'get_disk_type_from_path')
                 else (path, 'raw'))
        image_api = mock.Mock()
        image_api.get.return_value = {
            'name': 'snap', 'properties': {'hw_qemu_guest_agent': 'yes'}}
        uploaded = []
        image_api.update.side_effect = (
            lambda ctxt, image_id, meta, data=None, **kw:
            uploaded.append(data.read(len(IMAGE_DATA))))
        drv._image_api = image_api
        with mock.patch.object(drv._host, 'get_domain',
                               return_value=domain, autospec=True), \
                mock.patch.object(drv._host, 'has_min_version',
                                  return_value=True, autospec=True), \
                mock.patch.object(drv, '_get_power_state',
                                  return_value=power_state.RUNNING,
                                  autospec=True), \
                mock.patch.object(libvirt_utils, 'find_disk',
                                  return_value=found, autospec=True), \
                mock.patch.object(drv, '_create_snapshot_metadata',
                                  return_value={}, autospec=True), \
                mock.patch('nova.pci.manager.get_instance_pci_devs',
                           return_value=[], autospec=True), \
                mock.patch.object(drv, '_detach_sriov_ports', autospec=True), \
                mock.patch.object(drv, '_attach_sriov_ports', autospec=True), \
                mock.patch.object(drv, '_create_domain', autospec=True):
            drv.snapshot(None, instance, 'image-1', lambda **kwargs: None)
        return domain, uploaded[-1]

    def test_live_snapshot_exports_a_scaleio_snapshot_of_the_running_guest(
            self):
        from nova.virt.libvirt.sio import image as sio_image
        self.flags(live_snapshot=True, group='scaleio')
        drv = self.driver()
        instance = self.make_instance()
        path = self.spawn_root(instance).path
        with mock.patch.object(self.hooks, 'live_snapshot',
                               wraps=self.hooks.live_snapshot) as live, \
                mock.patch.object(drv, '_live_snapshot',
                                  autospec=True) as libvirt_live, \
                mock.patch.object(drv, '_set_quiesced',
                                  wraps=drv._set_quiesced) as quiesced:
            domain, uploaded = self._snapshot_running_guest(
                drv, instance, path)

        self.assertEqual(IMAGE_DATA, uploaded)
        self.assertFalse(domain.managedSave.called)
        self.assertFalse(libvirt_live.called)
        self.assertEqual(1, live.call_count)
        args = live.call_args[0]
        self.assertIs(drv, args[0])
        self.assertIs(instance, args[2])
        # Kilo's quiesce() takes the image metadata dict.
        self.assertEqual('yes', args[3]['properties']['hw_qemu_guest_agent'])
        self.assertIsInstance(args[4], sio_image.Sio)
        self.assertEqual(path, args[4].path)
        self.assertEqual('raw', args[6])
        # The guest was frozen for the ScaleIO snapshot and thawed.
        self.assertEqual([True, False],
                         [c[0][3] for c in quiesced.call_args_list])
        self.assertEqual(1, domain.fsFreeze.call_count)
        self.assertEqual(1, domain.fsThaw.call_count)
        volumes = self.volumes_of(instance)
        self.assertEqual([('disk', '')], list(volumes))
        self.assertEqual(['host-a'], self.mapped_hosts(volumes[('disk', '')]))

    def test_without_live_snapshot_the_guest_is_stopped_for_the_copy(self):
        drv = self.driver()
        instance = self.make_instance()
        path = self.spawn_root(instance).path
        with mock.patch.object(self.hooks, 'live_snapshot',
                               autospec=True) as live, \
                mock.patch.object(drv, '_live_snapshot',
                                  autospec=True) as libvirt_live:
            domain, uploaded = self._snapshot_running_guest(
                drv, instance, path)

        self.assertEqual(IMAGE_DATA, uploaded)
        domain.managedSave.assert_called_once_with(0)
        self.assertFalse(live.called)
        self.assertFalse(libvirt_live.called)

    def test_image_cache_pass_removes_unused_base_volumes(self):
        drv = self.driver()
        with mock.patch.object(self.hooks, 'manage_base_volumes',
                               autospec=True) as manage:
            drv.manage_image_cache(None, [])
        manage.assert_called_once_with([])

    def test_image_cache_pass_of_other_image_types(self):
        drv = self.driver()
        self.flags(images_type='lvm', group='libvirt')
        with mock.patch.object(self.hooks, 'manage_base_volumes',
                               autospec=True) as manage:
            drv.manage_image_cache(None, [])
        self.assertFalse(manage.called)

    def _resize_to_16gib(self, drv, instance):
        """The destination half of a resize: map, snapshot, then grow."""
        from nova.compute import task_states
        instance.task_state = task_states.RESIZE_FINISH
        migration = mock.Mock(source_compute='host-a')
        with mock.patch('nova.virt.libvirt.blockinfo.get_disk_info',
                        return_value={'mapping': {}}, autospec=True), \
                mock.patch.object(drv, '_get_guest_xml', autospec=True), \
                mock.patch.object(drv, '_create_domain_and_network',
                                  autospec=True):
            drv.finish_migration(None, migration, instance, '[]', [], {},
                                 True, power_on=False)
        self.assertIn(('disk', 'snapshot'), self.volumes_of(instance))
        image = self.backend().image(instance, 'disk')
        image.cache(fetch_func=fake_fetch, filename='image-resized',
                    size=16 * GiB, context=None, image_id='image',
                    user_id='fake', project_id='fake')
        with open(image.path, 'r+b') as f:
            f.write(b'written after the resize')

    def test_resize_revert_restores_the_disks(self):
        from nova.compute import task_states
        drv = self.driver()
        instance = self.make_instance()
        self.spawn_root(instance)
        self._resize_to_16gib(drv, instance)
        volumes = self.volumes_of(instance)
        self.assertEqual(16 * GiB // 1024,
                         volumes[('disk', '')]['sizeInKb'])
        self.assertIn(('disk', 'snapshot'), volumes)

        instance.task_state = task_states.RESIZE_REVERTING
        with mock.patch('nova.compute.utils.get_image_metadata',
                        autospec=True), \
                mock.patch('nova.virt.libvirt.blockinfo.get_disk_info',
                           autospec=True), \
                mock.patch.object(drv, '_get_guest_xml', autospec=True), \
                mock.patch.object(drv, '_create_domain_and_network',
                                  autospec=True):
            drv.finish_revert_migration(None, instance, [], power_on=False)

        volumes = self.volumes_of(instance)
        self.assertEqual([('disk', '')], list(volumes))
        volume = volumes[('disk', '')]
        self.assertEqual(8 * GiB // 1024, volume['sizeInKb'])
        self.assertEqual(['host-a'], self.mapped_hosts(volume))
        self.assertEqual(IMAGE_DATA,
                         read_head(self.device(volume), len(IMAGE_DATA)))

    def test_resize_confirm_drops_the_snapshot_and_the_old_mapping(self):
        drv = self.driver()
        instance = self.make_instance()
        self.spawn_root(instance)
        self.use_host('host-b')
        self._resize_to_16gib(drv, instance)
        volume = self.volumes_of(instance)[('disk', '')]
        self.assertEqual(['host-a', 'host-b'], self.mapped_hosts(volume))
        instance.host = 'host-b'

        self.use_host('host-a')
        drv.confirm_migration(None, instance, [])
        volumes = self.volumes_of(instance)
        self.assertEqual([('disk', '')], list(volumes))
        self.assertEqual(['host-b'], self.mapped_hosts(volumes[('disk', '')]))
