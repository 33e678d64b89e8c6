# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The life of a server on ``images_type = sio``, through the REST API.

Nova's functional stack (API, conductor, scheduler, two libvirt computes
on fakelibvirt) runs with the real ``Sio`` image backend and driver
hooks, which talk to the ScaleIO gateway + SDC emulator; the harness,
with one SDC identity per in-process compute, is the one of
``test_sio_faults``. The server is booted, snapshotted, rescued,
resized to the other host and reverted, evacuated, live migrated back,
hard rebooted, rebuilt, shelved and unshelved, and deleted. The data
written into its root disk must survive every step up to the rebuild;
the volumes must be mapped exactly where the server runs; and the
emulator's audit must find no volume, mapping or device left behind.

The images are written into the volumes by the real ``qemu-img``
(``convert`` as root, privsep in-process) through the emulator's device
links, and the bytes of the image are read back from the volume.
Besides the Glance download and mkfs of the harness, the only edge
replaced is SSH between the computes (their instance directories are one
shared directory).
"""

import hashlib
import os

import fixtures

import nova.conf
import nova.privsep.qemu
from nova.tests.functional.libvirt import base
from nova.tests.functional.libvirt import test_sio_faults as harness

CONF = nova.conf.CONF


class SioLifecycleTest(base.LibvirtMigrationMixin,
                       harness.SioFunctionalBase):

    real_qemu_img = True

    def setUp(self):
        super(SioLifecycleTest, self).setUp()
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.driver.LibvirtDriver._is_path_shared_with',
            autospec=True, return_value=True))
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.volume.remotefs.RemoteFilesystem.create_dir',
            autospec=True))
        # A spy: the real qemu-img runs, the calls are recorded.
        self.convert = self.useFixture(fixtures.MockPatchObject(
            nova.privsep.qemu, 'convert_image', autospec=True,
            side_effect=nova.privsep.qemu.convert_image)).mock

    def set_forced_down(self, host, forced_down):
        service = self.api.get_services(binary='nova-compute', host=host)[0]
        self.api.put_service(service['id'], {'forced_down': forced_down})

    def mappings(self, server_id):
        """``{volume name: set(host names)}`` of a server's volumes."""
        by_sdc = dict((h['sdc_id'], name) for name, h in
                      self.emu_fx.info['hosts'].items())
        prefix = self.volume_name(server_id)[:12]
        result = {}
        for volume in self.emu.volumes():
            if volume['name'].startswith(prefix):
                result[volume['name']] = set(
                    by_sdc.get(m['sdcId'], m['sdcId'])
                    for m in volume.get('mappedSdcInfo') or [])
        return result

    def hosts_of(self, server_id, disk='disk'):
        name = self.volume_name(server_id, disk)
        return self.mappings(server_id).get(name, set())

    def volumes_of(self, server_id):
        return sorted(self.mappings(server_id))

    def test_lifecycle(self):
        server = self.boot(host='compute1')
        sid = server['id']
        self.assertEqual({'compute1'}, self.hosts_of(sid))
        # qemu-img wrote the image into the root volume through its
        # device on compute1, from the image cache file (named by Nova
        # after the SHA-1 of the image id).
        base_file = os.path.join(
            CONF.instances_path, '_base',
            hashlib.sha1(server['image']['id'].encode()).hexdigest())
        self.assertEqual(
            [(base_file, self.device('compute1', self.root_volume(sid)),
              'raw', 'raw')],
            [c[0][:4] for c in self.convert.call_args_list])
        self.assertEqual(harness.IMAGE_BYTES, self.read_image_data(sid))
        checksum = self.write_guest_data(sid)

        # Snapshot to Glance (cold: the backend extracts the device).
        self._snapshot_server(server, 'sio-snapshot')
        self.notifier.wait_for_versioned_notifications(
            'instance.snapshot.end')
        server = self._wait_for_server_parameter(
            server, {'OS-EXT-STS:task_state': None})
        snaps = [i for i in self.glance.images.values()
                 if i['name'] == 'sio-snapshot']
        self.assertEqual(1, len(snaps))
        self.assertEqual('raw', snaps[0]['disk_format'])
        self.assertEqual('active', snaps[0]['status'])
        self.assertEqual(checksum, self.read_guest_data(sid))

        # Rescue and unrescue: the rescue disk is a volume of its own.
        server = self._rescue_server(server)
        self.assertIn(self.volume_name(sid, 'disk.rescue'),
                      self.volumes_of(sid))
        server = self._unrescue_server(server)
        self.assertEqual([self.volume_name(sid)], self.volumes_of(sid))

        # Resize to the other host with a bigger root, then revert.
        server = self._resize_server(server, self.big_flavor_id)
        self.assertEqual('compute2', server['OS-EXT-SRV-ATTR:host'])
        self.assertIn(self.volume_name(sid, kind='snapshot'),
                      self.volumes_of(sid))
        self.assertIn('compute2', self.hosts_of(sid))
        server = self._revert_resize(server)
        self.assertEqual('compute1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual([self.volume_name(sid)], self.volumes_of(sid))
        self.assertEqual({'compute1'}, self.hosts_of(sid))
        self.assertEqual(checksum, self.read_guest_data(sid))

        # Evacuation from a dead compute1: the volumes are reused.
        self.computes['compute1'].stop()
        self.set_forced_down('compute1', True)
        self.api.post_server_action(sid, {'evacuate': {}})
        self._wait_for_migration_status(server, ['done'])
        server = self.api.get_server(sid)
        self.assertEqual('compute2', server['OS-EXT-SRV-ATTR:host'])
        if server['status'] == 'SHUTOFF':
            server = self._start_server(server)
        self.assertEqual(checksum, self.read_guest_data(sid))
        self.assertIn('compute2', self.hosts_of(sid))
        # compute1 comes back and drops its mappings.
        self.restart_compute_service('compute1')
        self.identity.adopt('compute1', self.computes['compute1'].driver)
        self.set_forced_down('compute1', False)
        self.assertEqual({'compute2'}, self.hosts_of(sid))

        # Live migration back to compute1: map first, unmap after.
        self.server = server
        self.src, self.dest = (self.computes['compute2'],
                               self.computes['compute1'])
        server = self._live_migrate(server)
        self.assertEqual('compute1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual({'compute1'}, self.hosts_of(sid))
        self.assertEqual(checksum, self.read_guest_data(sid))

        # Hard reboot: same volumes, same mapping, same data.
        server = self._reboot_server(server, hard=True)
        self.assertEqual({'compute1'}, self.hosts_of(sid))
        self.assertEqual(checksum, self.read_guest_data(sid))

        # Rebuild: the disks are made again from the image.
        old_root = self.root_volume(sid)
        server = self._rebuild_server(server, server['image']['id'])
        self.assertNotEqual(old_root, self.root_volume(sid))
        self.assertEqual({'compute1'}, self.hosts_of(sid))
        self.assertEqual(harness.IMAGE_BYTES, self.read_image_data(sid))
        self.assertNotEqual(checksum, self.read_guest_data(sid))

        # Shelve offload deletes the volumes; unshelve makes new ones.
        self.flags(shelved_offload_time=0)
        self.api.post_server_action(sid, {'shelve': {}})
        server = self._wait_for_state_change(server, 'SHELVED_OFFLOADED')
        self.assertEqual([], self.volumes_of(sid))
        self.api.post_server_action(sid, {'unshelve': None})
        server = self._wait_for_state_change(server, 'ACTIVE')
        host = server['OS-EXT-SRV-ATTR:host']
        self.assertEqual({host}, self.hosts_of(sid))

        self._delete_server(server)
        self.assert_clean()
