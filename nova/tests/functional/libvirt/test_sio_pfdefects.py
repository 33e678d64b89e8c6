# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""A storage hiccup after a live migration must not fail it.

The guest runs on the destination when the source unmaps its volumes;
a gateway error there is logged and the stale mapping recorded, and the
image cache manager pass of the source removes it later.
"""

from __future__ import absolute_import

import json

from nova import context as nova_context
from nova import objects
from nova.tests.functional.libvirt import test_sio_faults as sio_faults

COMPUTES = sio_faults.COMPUTES
UNMAP = r'/action/removeMappedSdc$'


class SioLiveMigrationUnmapFaultTest(sio_faults.SioFaultMatrixBase):

    def test_unmap_error_after_live_migration_is_swept_later(self):
        server = self.boot(host=COMPUTES[0])
        self.server_id = server['id']
        self.migrating_from, self.migrating_to = COMPUTES
        self.emu.clear_log()
        self.emu.add_fault('server_error', method='POST', path=UNMAP,
                           count=50)
        self.api.post_server_action(server['id'], {'os-migrateLive': {
            'host': COMPUTES[1], 'block_migration': 'auto'}})
        server = self.settle(server['id'])
        log = self.emu.request_log()
        self.emu.clear_faults()
        self.addDetail('live-migration-calls', _text(json.dumps(
            [(e['method'], e['path'], e.get('status')) for e in log],
            indent=1)))
        self.assertTrue([e for e in log if e.get('fault')])
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(COMPUTES[1], self.host_of(server))
        # The source still has its mapping: the fault kept it there.
        self.assertEqual(set(COMPUTES), self.mapped_hosts(server['id']))
        # The next image cache manager pass of the source removes it.
        ctxt = nova_context.get_admin_context()
        instances = objects.InstanceList.get_by_filters(
            ctxt, {'deleted': False})
        self.computes[COMPUTES[0]].driver.manage_image_cache(ctxt,
                                                             instances)
        self.assertEqual({COMPUTES[1]}, self.mapped_hosts(server['id']))
        self._delete_server(server)
        self.assert_clean()


class SioResizeSizeRuleTest(sio_faults.SioFaultMatrixBase):

    # RPC casts stay casts: a failed resize_instance must not come back
    # into prep_resize on the destination, as it never does in a cloud.
    CAST_AS_CALL = False

    def test_resize_to_a_flavor_breaking_the_8_gib_rule_rolls_back(self):
        self.flags(round_volume_capacity=False, group='scaleio')
        odd = self._create_flavor(name='sio.odd', memory_mb=512, vcpu=1,
                                  disk=12, ephemeral=0)
        server = self.boot(host=COMPUTES[0])
        self.server_id = server['id']
        root = self.root_volume(server['id'])
        powered_off = self.record_power_offs()
        self.emu.clear_log()
        self.api.post_server_action(server['id'],
                                    {'resize': {'flavorRef': odd}})
        server = self.settle(server['id'])
        self.assert_running_where_it_was(server, COMPUTES[0], powered_off)
        # Nothing was made or changed on the storage.
        self.assertEqual([], [e['path'] for e in self.emu.request_log()
                              if e['method'] == 'POST' and
                              ('Volume' in e['path'] or
                               'snapshot' in e['path'])])
        self.assertEqual(root, self.root_volume(server['id']))
        self.assertEqual({COMPUTES[0]}, self.mapped_hosts(server['id']))
        self._delete_server(server)
        self.assert_clean()


def _text(value):
    from testtools import content
    return content.text_content(value)
