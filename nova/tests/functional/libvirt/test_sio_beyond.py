# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Live snapshots and zero-copy base volumes on Nova's functional stack.

The harness of ``test_sio_faults`` (two libvirt computes on fakelibvirt,
the real ``Sio`` backend and driver hooks, the ScaleIO emulator):

* live snapshot (``[scaleio] live_snapshot``): the guest keeps running,
  its file systems are frozen through the guest agent only while the
  ScaleIO snapshot is taken, the image uploaded to Glance holds the
  disk's data, and the temporary snapshot is gone afterwards; without an
  agent the snapshot is crash-consistent, and an image that requires
  quiescing fails cleanly when it cannot be quiesced;
* zero-copy boot (``[scaleio] zero_copy_boot``): servers on both computes
  are snapshots of one base volume, and Nova's image cache manager pass
  removes the base volume once no server uses the image any more.

Every test ends with the emulator's audit: no volume, mapping or device
left behind.
"""

import hashlib
import os

from oslo_utils import uuidutils

from nova import context as nova_context
from nova.tests.fixtures import libvirt as fakelibvirt
from nova.tests.functional.libvirt import test_sio_faults as harness
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import zerocopy as sio_zerocopy
from nova.virt.libvirt import utils as libvirt_utils

_REAL_FILE_OPEN = libvirt_utils.file_open


class _Recorder(object):
    """Events in order: freeze, thaw, ScaleIO snapshots, suspends."""

    def __init__(self):
        self.events = []


class _ImagesMixin(object):

    def image_with(self, **properties):
        image_id = uuidutils.generate_uuid()
        self.glance.create(None, {
            'id': image_id, 'name': 'sio-%s' % image_id[:8],
            'status': 'active', 'container_format': 'bare',
            'disk_format': 'raw', 'min_disk': 0,
            'size': len(harness.IMAGE_BYTES), 'properties': properties})
        return image_id


class SioLiveSnapshotTest(_ImagesMixin, harness.SioFunctionalBase):

    def setUp(self):
        super(SioLiveSnapshotTest, self).setUp()
        self.flags(live_snapshot=True, group='scaleio')
        self.rec = _Recorder()
        fake = 'nova.tests.fixtures.libvirt.Domain'
        for method in ('fsFreeze', 'fsThaw', 'managedSave', 'suspend'):
            self._record(fake, method)
        self.freeze_error = None
        real_snapshot = sio_hooks.sio_client.Client.snapshot_volume

        def snapshot_volume(client, volume_id, name):
            self.rec.events.append(('snapshot', name))
            return real_snapshot(client, volume_id, name)
        self.stub_out('nova.virt.libvirt.sio.client.Client.snapshot_volume',
                      snapshot_volume)
        self.uploads = {}
        real_update = self.glance.update

        def update(context, image_id, metadata, data=None,
                   purge_props=False):
            if data is not None:
                head = data.read(len(harness.IMAGE_BYTES))
                data.seek(harness.GUEST_OFFSET)
                guest = hashlib.sha256(
                    data.read(harness.GUEST_BYTES)).hexdigest()
                self.uploads[image_id] = (head, guest)
            return real_update(context, image_id, metadata, data=data,
                               purge_props=purge_props)
        self.glance.update = update
        # The functional base hands Glance an empty buffer instead of the
        # extracted file; read the real file.
        self.stub_out('nova.virt.libvirt.driver.libvirt_utils.file_open',
                      _REAL_FILE_OPEN)

    def _record(self, cls_path, method):
        module, _sep, cls_name = cls_path.rpartition('.')
        cls = getattr(__import__(module, fromlist=[cls_name]), cls_name)
        real = getattr(cls, method)
        test = self

        def wrapper(domain, *args, **kwargs):
            test.rec.events.append((method, domain.name()))
            if method == 'fsFreeze' and test.freeze_error is not None:
                raise test.freeze_error
            return real(domain, *args, **kwargs)
        self.stub_out('%s.%s' % (cls_path, method), wrapper)

    def boot_from(self, image_id):
        return self._create_server(
            name='sio-live', image_uuid=image_id, flavor_id=self.flavor_id,
            host='compute1', networks='none')

    def snapshot(self, server, name):
        self._snapshot_server(server, name)
        self.notifier.wait_for_versioned_notifications(
            'instance.snapshot.end')
        server = self._wait_for_server_parameter(
            server, {'OS-EXT-STS:task_state': None})
        images = [i for i in self.glance.images.values()
                  if i['name'] == name]
        return server, images

    def names(self, kind):
        return [e for e in self.rec.events if e[0] == kind]

    def test_quiesced_live_snapshot(self):
        server = self.boot_from(self.image_with(hw_qemu_guest_agent='yes'))
        sid = server['id']
        checksum = self.write_guest_data(sid)
        del self.rec.events[:]

        server, images = self.snapshot(server, 'live-quiesced')

        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(1, len(images))
        self.assertEqual('active', images[0]['status'])
        temporary = self.volume_name(sid, kind='temporary')
        kinds = [e[0] for e in self.rec.events]
        # Frozen exactly around the ScaleIO snapshot; never suspended.
        self.assertEqual(['fsFreeze', 'snapshot', 'fsThaw'], kinds)
        self.assertEqual(('snapshot', temporary), self.rec.events[1])
        head, guest = self.uploads[images[0]['id']]
        self.assertEqual(harness.IMAGE_BYTES, head)
        self.assertEqual(checksum, guest)
        self.assertEqual(checksum, self.read_guest_data(sid))
        self.assertIsNone(self.admin.get_volume_id(temporary))
        self.assertEqual([self.volume_name(sid)],
                         sorted(self.mappings(sid)))
        self._delete_server(server)
        self.assert_clean()

    def test_crash_consistent_without_an_agent(self):
        server = self.boot_from(self.image_with())
        checksum = self.write_guest_data(server['id'])
        del self.rec.events[:]
        server, images = self.snapshot(server, 'live-plain')
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(['snapshot'], [e[0] for e in self.rec.events])
        self.assertEqual(checksum, self.uploads[images[0]['id']][1])
        self._delete_server(server)
        self.assert_clean()

    def test_agent_not_answering_gives_a_crash_consistent_snapshot(self):
        server = self.boot_from(self.image_with(hw_qemu_guest_agent='yes'))
        self.freeze_error = fakelibvirt.make_libvirtError(
            fakelibvirt.libvirtError, 'Guest agent is not responding',
            error_code=fakelibvirt.VIR_ERR_AGENT_UNRESPONSIVE)
        del self.rec.events[:]
        server, images = self.snapshot(server, 'live-no-answer')
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual('active', images[0]['status'])
        self.assertEqual(['fsFreeze', 'snapshot'],
                         [e[0] for e in self.rec.events])
        self.assertIn('crash-consistent live snapshot',
                      self.stdlog.logger.output)
        self._delete_server(server)
        self.assert_clean()

    def test_required_quiesce_without_agent_fails_cleanly(self):
        server = self.boot_from(self.image_with(os_require_quiesce='yes'))
        sid = server['id']
        del self.rec.events[:]
        self._snapshot_server(server, 'live-required')
        server = self._wait_for_server_parameter(
            server, {'OS-EXT-STS:task_state': None})
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual([], self.names('snapshot'))
        self.assertEqual([], self.names('managedSave'))
        self.assertEqual([], [i for i in self.glance.images.values()
                              if i['name'] == 'live-required'])
        self.assertEqual([self.volume_name(sid)],
                         sorted(self.mappings(sid)))
        self._delete_server(server)
        self.assert_clean()

    def test_switch_off_keeps_the_cold_snapshot(self):
        self.flags(live_snapshot=False, group='scaleio')
        server = self.boot_from(self.image_with(hw_qemu_guest_agent='yes'))
        del self.rec.events[:]
        server, images = self.snapshot(server, 'cold')
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(['managedSave'], [e[0] for e in self.rec.events])
        self._delete_server(server)
        self.assert_clean()

    def mappings(self, server_id):
        prefix = self.volume_name(server_id)[:12]
        return dict((v['name'], v.get('mappedSdcInfo') or [])
                    for v in self.emu.volumes()
                    if v['name'].startswith(prefix))


class SioBaseVolumeCacheTest(_ImagesMixin, harness.SioFunctionalBase):

    def setUp(self):
        super(SioBaseVolumeCacheTest, self).setUp()
        self.flags(zero_copy_boot=True, zero_copy_fill_timeout=5,
                   group='scaleio')
        self.flags(remove_unused_original_minimum_age_seconds=0,
                   group='image_cache')
        self.ctxt = nova_context.get_admin_context()
        # Nova's cache manager touches cached files through privsep.
        self.stub_out('nova.privsep.path.utime',
                      lambda path: os.utime(path, None))

    def base_volumes(self, image_id):
        pool_id = self.admin.get_pool_id('pd1', 'sp1')
        return sio_zerocopy.base_volumes(image_id, pool_id)

    def cache_pass(self, host):
        self.computes[host].manager._run_image_cache_manager_pass(self.ctxt)

    def test_base_volume_shared_then_removed_by_the_cache_manager(self):
        image_id = self.image_with()
        first = self._create_server(
            name='zc-1', image_uuid=image_id, flavor_id=self.flavor_id,
            host='compute1', networks='none')
        second = self._create_server(
            name='zc-2', image_uuid=image_id, flavor_id=self.big_flavor_id,
            host='compute2', networks='none')
        bases = self.base_volumes(image_id)
        self.assertEqual(1, len(bases))
        base_id = bases[0][1]
        for server, gib in ((first, 8), (second, 16)):
            volume_id = self.root_volume(server['id'])
            info = self.admin.get_volume(volume_id)
            self.assertEqual(base_id, info['ancestorVolumeId'])
            self.assertEqual(gib * 1024 * 1024, int(info['sizeInKb']))
            head = self._through_auditor(
                volume_id, lambda h: h.read(len(harness.IMAGE_BYTES)))
            self.assertEqual(harness.IMAGE_BYTES, head)
        self.assertEqual([], self.admin.get_mapped_sdc_ids(base_id))

        # In use on both hosts: the pass keeps it.
        self.cache_pass('compute1')
        self.assertEqual(bases, self.base_volumes(image_id))

        # The first server gone: the second one still boots from it.
        self._delete_server(first)
        self.cache_pass('compute1')
        self.assertEqual(bases, self.base_volumes(image_id))

        # The last one gone: the next pass removes it.
        self._delete_server(second)
        self.cache_pass('compute2')
        self.assertEqual([], self.base_volumes(image_id))
        self.assertEqual({}, sio_zerocopy.recorded_base_images())
        self.assert_clean()

    def test_kept_when_the_cache_manager_may_not_remove(self):
        self.flags(remove_unused_base_images=False, group='image_cache')
        image_id = self.image_with()
        server = self._create_server(
            name='zc', image_uuid=image_id, flavor_id=self.flavor_id,
            host='compute1', networks='none')
        self._delete_server(server)
        self.cache_pass('compute1')
        bases = self.base_volumes(image_id)
        self.assertEqual(1, len(bases))
        # An operator switching removal back on gets it cleaned.
        self.flags(remove_unused_base_images=True, group='image_cache')
        self.cache_pass('compute1')
        self.assertEqual([], self.base_volumes(image_id))
        self.assert_clean()


class SioFlavorStorageTest(harness.SioFunctionalBase):
    """Pools and provisioning per flavor, capacity, 8 GiB round-up."""

    emulator_pools = (('pd1', 'sp1', 64 * 1024), ('pd2', 'fast', 2048))

    def setUp(self):
        super(SioFlavorStorageTest, self).setUp()
        self.flags(additional_pools=['pd2:fast'], provisioning_type='thick',
                   group='scaleio')
        self.ctxt = nova_context.get_admin_context()

    def volume(self, server_id, kind=''):
        name = self.volume_name(server_id, kind=kind)
        found = [v for v in self.emu.volumes() if v['name'] == name]
        return found[0] if found else None

    def pool_id(self, domain, pool):
        return self.admin.get_pool_id(domain, pool)

    def test_pool_and_provisioning_follow_the_flavor_across_resizes(self):
        thin_default = self._create_flavor(
            name='sio.thin', memory_mb=512, vcpu=1, disk=8, ephemeral=0,
            extra_spec={'sio:provisioning_type': 'thin'})
        fast_thick = self._create_flavor(
            name='sio.fast', memory_mb=512, vcpu=1, disk=16, ephemeral=0,
            extra_spec={'sio:pd_name': 'pd2', 'sio:sp_name': 'fast',
                        'sio:provisioning_type': 'thick'})
        sp1, fast = self.pool_id('pd1', 'sp1'), self.pool_id('pd2', 'fast')
        server = self.boot(flavor_id=thin_default)
        sid = server['id']
        root = self.volume(sid)
        self.assertEqual((sp1, 'ThinProvisioned', 8 * 1024 * 1024),
                         (root['storagePoolId'], root['volumeType'],
                          int(root['sizeInKb'])))
        checksum = self.write_guest_data(sid)

        # Resize into the other pool: the data moves, the old pool keeps
        # the resize snapshot for a revert.
        server = self._resize_server(server, fast_thick)
        root = self.volume(sid)
        self.assertEqual((fast, 'ThickProvisioned', 16 * 1024 * 1024),
                         (root['storagePoolId'], root['volumeType'],
                          int(root['sizeInKb'])))
        self.assertEqual(sp1, self.volume(sid, 'snapshot')['storagePoolId'])
        self.assertEqual(checksum, self.read_guest_data(sid))

        # The revert makes the resize snapshot the disk again (no copy).
        server = self._revert_resize(server)
        root = self.volume(sid)
        self.assertEqual((sp1, 'Snapshot', 8 * 1024 * 1024),
                         (root['storagePoolId'], root['volumeType'],
                          int(root['sizeInKb'])))
        self.assertIsNone(self.volume(sid, 'snapshot'))
        self.assertEqual(checksum, self.read_guest_data(sid))

        # Resize again and confirm: only the new pool's volume is left.
        server = self._resize_server(server, fast_thick)
        server = self._confirm_resize(server)
        self.assertEqual(fast, self.volume(sid)['storagePoolId'])
        self.assertIsNone(self.volume(sid, 'snapshot'))
        self.assertEqual(checksum, self.read_guest_data(sid))
        self._delete_server(server)
        self.assert_clean()

    def disk_inventory(self, host):
        rp_uuid = self._get_provider_uuid_by_host(host)
        return self._get_provider_inventory(rp_uuid)['DISK_GB']

    def update_resources(self, host):
        self.computes[host].manager.update_available_resource(self.ctxt)

    def test_capacity_covers_the_served_pools(self):
        GiB = 1024 ** 3
        caps = [self.admin.pool_capacity(self.pool_id(*pair))
                for pair in (('pd1', 'sp1'), ('pd2', 'fast'))]
        self.update_resources('compute1')
        total = sum(int(c['total_bytes']) for c in caps) // GiB
        self.assertEqual(total, self.disk_inventory('compute1')['total'])
        self.assertEqual(min(int(c['free_bytes']) for c in caps) // GiB,
                         sio_hooks.get_local_gb_info()['free'])

        # A thin disk allocates next to nothing; counted as provisioned
        # it takes its whole size from the free capacity.
        thin = self._create_flavor(
            name='sio.thinfast', memory_mb=512, vcpu=1, disk=64,
            ephemeral=0, extra_spec={'sio:pd_name': 'pd2',
                                     'sio:sp_name': 'fast',
                                     'sio:provisioning_type': 'thin'})
        server = self.boot(flavor_id=thin)
        allocated_free = sio_hooks.get_local_gb_info()['free']
        self.flags(capacity_mode='provisioned', group='scaleio')
        provisioned_free = sio_hooks.get_local_gb_info()['free']
        self.assertLessEqual(provisioned_free, allocated_free - 64 + 8)
        fast_cap = self.admin.pool_capacity(self.pool_id('pd2', 'fast'))
        self.assertLessEqual(
            provisioned_free,
            (int(fast_cap['total_bytes']) - 64 * GiB) // GiB)
        self.update_resources('compute1')
        self.assertEqual(total, self.disk_inventory('compute1')['total'])
        self._delete_server(server)
        self.assert_clean()

    def test_sizes_off_the_8_gib_grid(self):
        odd = self._create_flavor(name='sio.odd', memory_mb=512, vcpu=1,
                                  disk=10, ephemeral=0)
        # Refused by default: the server fails, nothing is left behind.
        server = self.boot(flavor_id=odd, expected='ERROR')
        fault = self.api.get_server(server['id'])['fault']['message']
        self.assertIn('sio.odd', fault)
        self.assertIsNone(self.volume(server['id']))
        self._delete_server(server)

        # With round_volume_capacity the volume is 16 GiB, and it is said.
        self.flags(round_volume_capacity=True, group='scaleio')
        server = self.boot(flavor_id=odd)
        root = self.volume(server['id'])
        self.assertEqual(16 * 1024 * 1024, int(root['sizeInKb']))
        log = self.stdlog.logger.output
        self.assertIn(self.volume_name(server['id']), log)
        self.assertIn('sio.odd', log)
        self._delete_server(server)
        self.assert_clean()
