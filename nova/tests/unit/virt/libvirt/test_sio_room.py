# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""A full vTree refuses a resize or a live snapshot before any change.

With ``[scaleio] zero_copy_boot`` the root disks of the instances booted
from one base volume share its vTree. When that vTree holds
``[scaleio] vtree_snapshot_limit`` snapshots, a resize (whose snapshots
are taken on the destination) is refused in ``migrate_disk_and_power_off``
before the guest is powered off, and a live snapshot before the guest's
file systems are frozen.
"""

from __future__ import absolute_import

try:
    import mock  # noqa: H216 (Python 2.7 has no unittest.mock)
except ImportError:
    from unittest import mock

from nova import exception as nova_exception
from nova.tests.unit.virt.libvirt import test_sio_image
from nova.tests.unit.virt.libvirt import test_sio_zerocopy as zerocopy
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import lifecycle as sio_lifecycle


class RoomBeforeChangesTestCase(zerocopy._Base):

    def setUp(self):
        super(RoomBeforeChangesTestCase, self).setUp()
        # A system allowing 4 snapshots per vTree (5 volumes), and boots
        # that fill one vTree to its limit.
        self.sio.max_vtree_volumes = 5
        self.flags(vtree_snapshot_limit=4, zero_copy_max_vtree_snapshots=4,
                   group='scaleio')
        self.instances = [self.boot() for _n in range(4)]
        self.flavor = test_sio_image.make_instance(root_gb=24).flavor

    def disk(self, instance):
        return test_sio_image.backend_image(instance, 'disk')

    def test_resize_with_a_full_vtree_is_rolled_back(self):
        names = self.sio.names()
        exc = self.assertRaises(nova_exception.InstanceFaultRollback,
                                sio_hooks.check_resize, self.instances[0],
                                self.flavor)
        self.assertIsInstance(exc.inner_exception, nova_exception.ResizeError)
        self.assertIn(self.root(self.instances[0]).name,
                      str(exc.inner_exception))
        self.assertIn('maximum number of snapshots', str(exc.inner_exception))
        self.assertEqual(names, self.sio.names())

    def test_resize_with_room_passes(self):
        sio_lifecycle.destroy_volumes(self.instances[3])
        sio_hooks.check_resize(self.instances[0], self.flavor)
        # A resize snapshot left by an earlier resize is replaced: room.
        sio_hooks.snapshot_volumes(self.instances[0])
        sio_hooks.check_resize(self.instances[0], self.flavor)

    def test_live_snapshot_with_a_full_vtree_is_refused_unfrozen(self):
        self.flags(live_snapshot=True, group='scaleio')
        driver = mock.Mock(spec=['quiesce', 'unquiesce'])
        image_meta = {'properties': {'hw_qemu_guest_agent': 'yes'}}
        names = self.sio.names()
        target = self.instances_path + '/snapshot.raw'
        self.assertRaises(sio_exc.VTreeLimitReached, sio_hooks.live_snapshot,
                          driver, 'ctx', self.instances[0], image_meta,
                          self.disk(self.instances[0]), target, 'raw')
        self.assertFalse(driver.quiesce.called)
        self.assertEqual(names, self.sio.names())

    def test_live_snapshot_with_room_freezes_and_exports(self):
        self.flags(live_snapshot=True, group='scaleio')
        sio_lifecycle.destroy_volumes(self.instances[3])
        driver = mock.Mock(spec=['quiesce', 'unquiesce'])
        image_meta = {'properties': {'hw_qemu_guest_agent': 'yes'}}
        names = self.sio.names()
        target = self.instances_path + '/snapshot.raw'
        sio_hooks.live_snapshot(driver, 'ctx', self.instances[0], image_meta,
                                self.disk(self.instances[0]), target, 'raw')
        driver.quiesce.assert_called_once_with('ctx', self.instances[0],
                                               image_meta)
        self.assertTrue(driver.unquiesce.called)
        # The temporary snapshot is gone again.
        self.assertEqual(names, self.sio.names())
