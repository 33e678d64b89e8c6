# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""A resize whose resize snapshot has no room is refused, the guest running.

On the functional stack of ``test_sio_zerocopy``: four servers booted
from one image with zero-copy boot fill the vTree of its base volume
(``[scaleio] vtree_snapshot_limit = 4``, the emulator allowing 5 volumes
per vTree). A resize of one of them is refused by the source host before
the guest is powered off; the server stays ACTIVE where it was, and
nothing is created on the storage.
"""

from nova.tests.functional.libvirt import test_sio_zerocopy as zerocopy


class SioFullVTreeResizeTest(zerocopy._ZeroCopyBase):

    # RPC casts stay casts: a refused resize_instance must not come back
    # into prep_resize on the destination, as it never does in a cloud.
    CAST_AS_CALL = False

    def setUp(self):
        super(SioFullVTreeResizeTest, self).setUp()
        self.emu.configure(max_vtree_volumes=5)
        self.flags(vtree_snapshot_limit=4, zero_copy_max_vtree_snapshots=4,
                   group='scaleio')

    def test_resize_with_a_full_vtree_rolls_back_running(self):
        image_id = self.image_with()
        servers = [self.boot_from(image_id, 'compute1', 'zc-%d' % n)
                   for n in range(4)]
        self.assertEqual([0], [g for g, _v in self.base_volumes(image_id)])
        server = servers[0]
        sid = server['id']
        root = self.root_volume(sid)
        powered_off = self.record_power_offs()
        flavor = self._create_flavor(name='sio.small.more', memory_mb=1024,
                                     vcpu=1, disk=8, ephemeral=0)
        self.emu.clear_log()
        self.api.post_server_action(sid, {'resize': {'flavorRef': flavor}})
        server = self._wait_for_server_parameter(
            server, {'status': 'ACTIVE', 'OS-EXT-STS:task_state': None})
        self.assert_running_where_it_was(server, 'compute1', powered_off)
        # Nothing was made on the storage: no volume, no snapshot.
        self.assertEqual([], [e['path'] for e in self.emu.request_log()
                              if e['method'] == 'POST' and
                              (e['path'].rstrip('/').endswith(
                                  '/types/Volume/instances') or
                               'snapshotVolumes' in e['path'])])
        self.assertIsNone(self.admin.get_volume_id(
            self.volume_name(sid, kind='snapshot')))
        self.assertEqual(root, self.root_volume(sid))
        servers[0] = server
        self.clean_up(servers, image_id)
