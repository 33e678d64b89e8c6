# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""A resize to another cell is refused, the disks staying in their cell.

Volumes are named after the instance UUID, which a cross-cell resize
keeps: with one PowerFlex system behind both cells the instance of the
target cell would use the volumes of the source cell, and confirming or
reverting would delete them. The ``sio`` backend refuses the root disk
export that Nova runs at the source for such a resize.

The stack of ``test_sio_faults`` runs here with two cells, one libvirt
compute (fakelibvirt, emulator SDC) in each, and cross-cell resize
allowed by policy. A server with a ScaleIO root disk is booted in cell1
and resized: the only other host is in cell2. Nova powers the guest off,
the export is refused, and the conductor rolls the resize back: the
server stays in cell1, ACTIVE but shut down, its migration in error,
its fault recorded; its volumes are the same, with the same data, and
nothing was made on the storage for the target cell. A hard reboot runs
the guest again from the same disk.
"""

from nova.compute import power_state
from nova import context as nova_context
from nova import exception
from nova import objects
from nova.policies import base as base_policies
from nova.policies import servers as servers_policies
from nova.tests.functional.api import client
from nova.tests.functional.libvirt import test_sio_faults as harness

#: Host name: cell name.
CELLS = {'compute1': 'cell1', 'compute2': 'cell2'}
REFUSAL = 'cannot be resized or migrated to another cell'


class SioCrossCellResizeTest(harness.SioFunctionalBase):

    NUMBER_OF_CELLS = 2
    # RPC casts stay casts, as in a cloud: a failed resize must not come
    # back through the callers of a cast.
    CAST_AS_CALL = False
    # The computes are started here, each in its cell.
    computes_to_start = ()

    def setUp(self):
        super(SioCrossCellResizeTest, self).setUp()
        self.flags(allow_resize_to_same_host=False)
        self.policy.set_rules({
            servers_policies.CROSS_CELL_RESIZE:
                base_policies.RULE_ADMIN_API}, overwrite=False)
        for hostname in harness.COMPUTES:
            self.start_compute(hostname=hostname,
                               cell_name=CELLS[hostname])
            self.identity.adopt(hostname, self.computes[hostname].driver)

    def storage(self):
        """``{volume id: (name, KiB)}`` of every volume of the system."""
        return dict((v['id'], (v['name'], v['sizeInKb']))
                    for v in self.emu.volumes())

    def mapped_hosts(self, volume_id):
        by_sdc = dict((h['sdc_id'], name) for name, h in
                      self.emu_fx.info['hosts'].items())
        return set(by_sdc.get(sdc, sdc)
                   for sdc in self.admin.get_mapped_sdc_ids(volume_id))

    def faults(self, server_id, cell_name):
        """The fault messages of the instance in one cell's database."""
        ctxt = nova_context.get_admin_context()
        with nova_context.target_cell(
                ctxt, self.cell_mappings[cell_name]) as cctxt:
            faults = objects.InstanceFaultList.get_by_instance_uuids(
                cctxt, [server_id])
        return [f.message for f in faults]

    def test_resize_to_another_cell_is_refused(self):
        server = self.boot(host='compute1')
        sid = server['id']
        root = self.root_volume(sid)
        self.assertIsNotNone(root)
        self.assertEqual({'compute1'}, self.mapped_hosts(root))
        checksum = self.write_guest_data(sid)
        volumes = self.storage()
        self.assertEqual([root], list(volumes))
        self.assertEqual(self.volume_name(sid), volumes[root][0])
        images = set(self.glance.images)

        self.emu.clear_log()
        self.api.post_server_action(
            sid, {'resize': {'flavorRef': self.big_flavor_id}})
        server = self._wait_for_server_parameter(
            server, {'OS-EXT-STS:task_state': None})
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual('compute1', server['OS-EXT-SRV-ATTR:host'])
        # The conductor rolled the resize back after the refusal.
        self.notifier.wait_for_versioned_notifications(
            'compute_task.migrate_server.error')
        server = self.api.get_server(sid)
        migration = self._wait_for_migration_status(server, ['error'])

        # The conductor aimed at the host of the other cell; the source
        # refused the export and the resize was rolled back there.
        self.assertEqual('compute1', migration['source_compute'])
        self.assertEqual('compute2', migration['dest_compute'])
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual('compute1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual('sio.small', server['flavor']['original_name'])
        # Nova powered the guest off before it asked for the export.
        self.assertEqual(power_state.SHUTDOWN,
                         server['OS-EXT-STS:power_state'])
        faults = self.faults(sid, 'cell1')
        self.seen_faults.extend(faults)
        self.assertTrue(faults)
        for message in faults:
            self.assertIn(REFUSAL, message)
            self.assertIn(sid, message)
        events = self.api.api_get(
            '/servers/%s/os-instance-actions/%s' % (
                sid, self._resize_request(sid))).body['instanceAction'][
                    'events']
        self.assertEqual(
            'Error', dict((e['event'], e['result']) for e in events)[
                'compute_prep_snapshot_based_resize_at_source'])

        # The instance made in the target cell's database is gone.
        self.assertEqual([], self.faults(sid, 'cell2'))
        ctxt = nova_context.get_admin_context(read_deleted='yes')
        with nova_context.target_cell(
                ctxt, self.cell_mappings['cell2']) as cctxt:
            self.assertRaises(exception.InstanceNotFound,
                              objects.Instance.get_by_uuid, cctxt, sid)

        # Same volumes (ids, names, sizes), same data, nothing made for
        # the other cell, and the empty snapshot image of the resize
        # deleted.
        self.assertEqual(volumes, self.storage())
        self.assertEqual([], [e['path'] for e in self.emu.request_log()
                              if e['method'] == 'POST' and
                              (e['path'].rstrip('/').endswith(
                                  '/types/Volume/instances') or
                               'snapshotVolumes' in e['path'])])
        self.assertEqual(checksum, self.read_guest_data(sid))
        self.assertEqual(images, set(self.glance.images))

        # The guest is off but the server ACTIVE: a start is refused
        # until Nova's power state sync marks it stopped; a hard reboot
        # runs the guest again from the same disk.
        exc = self.assertRaises(
            client.OpenStackApiException, self.api.post_server_action,
            sid, {'os-start': None})
        self.assertEqual(409, exc.response.status_code)
        server = self._reboot_server(server, hard=True)
        self.assertEqual(power_state.RUNNING,
                         server['OS-EXT-STS:power_state'])
        self.assertEqual('compute1', server['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(volumes, self.storage())
        self.assertEqual({'compute1'}, self.mapped_hosts(root))
        self.assertEqual(checksum, self.read_guest_data(sid))

        self._delete_server(server)
        self.assertEqual({}, self.storage())
        self.assert_clean()

    def _resize_request(self, server_id):
        actions = self.api.api_get(
            '/servers/%s/os-instance-actions' % server_id).body[
                'instanceActions']
        return [a['request_id'] for a in actions
                if a['action'] == 'resize'][0]
