# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Zero-copy boot on Nova's functional stack: vTree room, abandoned fills.

The harness of ``test_sio_faults`` (two libvirt computes on fakelibvirt,
the real ``Sio`` backend and driver hooks, the ScaleIO emulator):

* the emulator is set to a small vTree (4 snapshots, like a real system
  with ``[scaleio] vtree_snapshot_limit = 4``): servers booted from one
  image fill a new base volume generation before the vTree is full, so
  that a server can still take the resize snapshot, which lives in the
  base volume's vTree;
* a fill stopped by a restart of nova-compute leaves its ``#`` volume
  mapped to the host: the next boot removes it and fills the base volume
  at once instead of waiting ``[scaleio] zero_copy_fill_timeout``; the
  ``#`` volume of a host that never came back is removed by the image
  cache pass once it is older than the timeout.

Every test ends with the emulator's audit: no volume, mapping or device
left behind.
"""

import time

from nova import context as nova_context
from nova.tests.functional.libvirt import test_sio_beyond as beyond
from nova.tests.functional.libvirt import test_sio_faults as harness
from nova.virt.libvirt.sio import imagecache as sio_imagecache
from nova.virt.libvirt.sio import zerocopy as sio_zerocopy


class _Clock(object):
    """``time`` for the hooks: records sleeps, may run ahead."""

    def __init__(self):
        self.sleeps = []
        self.ahead = 0

    def time(self):
        return time.time() + self.ahead

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        time.sleep(seconds)


class _ZeroCopyBase(beyond._ImagesMixin, harness.SioFunctionalBase):

    def setUp(self):
        super(_ZeroCopyBase, self).setUp()
        self.flags(zero_copy_boot=True, zero_copy_fill_timeout=30,
                   group='scaleio')
        self.flags(remove_unused_original_minimum_age_seconds=0,
                   group='image_cache')
        self.ctxt = nova_context.get_admin_context()
        self.stub_out('nova.privsep.path.utime', lambda path: None)
        self.clock = _Clock()
        for module in (sio_imagecache, sio_zerocopy):
            self.stub_out('%s.time' % module.__name__, self.clock)
        self.pool_id = self.admin.get_pool_id('pd1', 'sp1')

    def base_volumes(self, image_id):
        return sio_zerocopy.base_volumes(image_id, self.pool_id)

    def boot_from(self, image_id, host, name):
        return self._create_server(
            name=name, image_uuid=image_id, flavor_id=self.flavor_id,
            host=host, networks='none')

    def ancestor(self, server):
        info = self.admin.get_volume(self.root_volume(server['id']))
        return info['ancestorVolumeId']

    def cache_pass(self, host):
        self.computes[host].manager._run_image_cache_manager_pass(self.ctxt)

    def clean_up(self, servers, image_id):
        for server in servers:
            self._delete_server(server)
        self.cache_pass('compute1')
        self.cache_pass('compute2')
        self.assertEqual([], self.base_volumes(image_id))
        self.assert_clean()


class SioVTreeRoomTest(_ZeroCopyBase):

    def setUp(self):
        super(SioVTreeRoomTest, self).setUp()
        # 5 volumes per vTree: the base volume and 4 snapshots.
        self.emu.configure(max_vtree_volumes=5)
        self.flags(vtree_snapshot_limit=4, group='scaleio')

    def test_boots_leave_room_for_the_resize_snapshot(self):
        image_id = self.image_with()
        servers = [self.boot_from(image_id, host, 'zc-%d' % n)
                   for n, host in enumerate(('compute1', 'compute2',
                                             'compute1', 'compute2'))]
        bases = self.base_volumes(image_id)
        self.assertEqual([0, 1], [g for g, _v in bases])
        by_id = dict((v, g) for g, v in bases)
        self.assertEqual([0, 0, 1, 1],
                         [by_id[self.ancestor(s)] for s in servers])
        for server in servers:
            self.assertEqual(harness.IMAGE_BYTES,
                             self.read_image_data(server['id']))

        # The resize snapshot of a server of generation 0 goes into the
        # base volume's vTree, which has room for it.
        server = servers[1]
        sid = server['id']
        checksum = self.write_guest_data(sid)
        # A new flavor with the same disk: the resize snapshot is all the
        # resize does to the disk.
        flavor = self._create_flavor(name='sio.small.more', memory_mb=1024,
                                     vcpu=1, disk=8, ephemeral=0)
        server = self._resize_server(server, flavor)
        self.assertEqual('VERIFY_RESIZE', server['status'])
        snap = self.admin.get_volume_id(self.volume_name(sid, kind='snapshot'))
        self.assertEqual(self.root_volume(sid),
                         self.admin.get_volume(snap)['ancestorVolumeId'])
        server = self._confirm_resize(server)
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual(checksum, self.read_guest_data(sid))
        servers[1] = server
        self.clean_up(servers, image_id)


class SioAbandonedFillTest(_ZeroCopyBase):

    def abandoned_fill(self, image_id, host, generation=0):
        """The ``#`` volume a compute host left when it stopped mid-fill."""
        name = sio_zerocopy.base_volume_name(image_id, self.pool_id,
                                             generation, filling=True)
        volume_id = self.admin.create_volume(name, 8, self.pool_id,
                                             thin=True)
        self.admin.map_volume(
            volume_id, sdc_id=self.emu_fx.info['hosts'][host]['sdc_id'])
        return name, volume_id

    def test_fill_left_by_a_restart_is_taken_over_at_once(self):
        image_id = self.image_with()
        name, stale = self.abandoned_fill(image_id, 'compute1')
        server = self.boot_from(image_id, 'compute1', 'zc-restart')
        self.assertEqual([], self.clock.sleeps)
        self.assertNotIn(stale, [v['id'] for v in self.emu.volumes()])
        self.assertIsNone(self.admin.get_volume_id(name))
        bases = self.base_volumes(image_id)
        self.assertEqual(1, len(bases))
        self.assertEqual(bases[0][1], self.ancestor(server))
        self.assertEqual(harness.IMAGE_BYTES,
                         self.read_image_data(server['id']))
        self.clean_up([server], image_id)

    def test_cache_pass_removes_the_fill_of_a_vanished_host(self):
        image_id = self.image_with()
        server = self.boot_from(image_id, 'compute1', 'zc-cache')
        # compute2 stopped while it filled the next generation, and never
        # came back.
        name, stale = self.abandoned_fill(image_id, 'compute2', 1)
        self.cache_pass('compute1')
        self.assertEqual(stale, self.admin.get_volume_id(name))
        self.clock.ahead = 31
        self.cache_pass('compute1')
        self.assertIsNone(self.admin.get_volume_id(name))
        self.assertEqual(1, len(self.base_volumes(image_id)))
        self.assertEqual(self.base_volumes(image_id)[0][1],
                         self.ancestor(server))
        self.clean_up([server], image_id)
