# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The pool capacity figures are reused for a few seconds.

Nova's resource tracker asks for the capacity of the node several times
close together (periodic task, moves); ``[scaleio] capacity_cache_seconds``
lets those reads cost one gateway call, while a volume this host creates,
extends, snapshots or deletes drops the figures at once.
"""

from __future__ import absolute_import

from nova import test
from nova.tests.unit.virt.libvirt import fake_sio
from nova.tests.unit.virt.libvirt import test_sio_image
from nova.tests.unit.virt.libvirt import test_sio_zerocopy as zerocopy
from nova.virt.libvirt.sio import capacity as sio_capacity
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import volumes as sio_volumes

GiB = 1024 ** 3


class CapacityCacheTestCase(test.NoDBTestCase):

    def setUp(self):
        super(CapacityCacheTestCase, self).setUp()
        self.fx = self.useFixture(fake_sio.SioFixture(self))
        self.sio = self.fx.sio
        self.flags(images_type='sio', group='libvirt')
        self.flags(capacity_cache_seconds=5, group='scaleio')
        self.clock = zerocopy.FakeClock(1.0e9)
        fake_sio.patch_object(self, sio_capacity, 'time', new=self.clock)
        self.reads = fake_sio.patch_object(
            self, self.sio, 'pool_capacity',
            side_effect=lambda pool_id: dict(self.sio.capacity))
        self.flavor = test_sio_image.make_instance().flavor

    def set_free(self, free_gb):
        """Change the pool as another host would."""
        self.sio.capacity['free_bytes'] = free_gb * GiB

    def free_gb(self):
        return sio_hooks.get_local_gb_info()['free']

    def test_reads_close_together_cost_one_call(self):
        first = sio_hooks.get_pool_info()
        self.set_free(600)
        self.clock.now += 4.9
        self.assertEqual(first, sio_hooks.get_pool_info())
        self.assertEqual(640, self.free_gb())
        self.assertEqual(1, self.reads.call_count)

    def test_figures_expire(self):
        self.assertEqual(640, self.free_gb())
        self.set_free(600)
        self.clock.now += 5
        self.assertEqual(600, self.free_gb())
        self.assertEqual(2, self.reads.call_count)

    def test_a_clock_set_back_reads_again(self):
        self.assertEqual(640, self.free_gb())
        self.set_free(600)
        self.clock.now -= 1
        self.assertEqual(600, self.free_gb())

    def test_zero_reads_every_time(self):
        self.flags(capacity_cache_seconds=0, group='scaleio')
        self.assertEqual(640, self.free_gb())
        self.set_free(600)
        self.assertEqual(600, self.free_gb())
        self.assertEqual(2, self.reads.call_count)

    def test_volume_changes_of_this_host_drop_the_figures(self):
        uuid = test_sio_image.UUID
        steps = (
            lambda: sio_volumes.create_volume(uuid, 'disk', 8 * GiB,
                                              self.flavor),
            lambda: sio_hooks.snapshot_volumes(
                test_sio_image.make_instance()),
            lambda: sio_volumes.delete_volume(self.sio.by_name(
                sio_volumes.volume_name(uuid, 'disk')).id),
        )
        free = 640
        for step in steps:
            self.assertEqual(free, self.free_gb())
            free -= 8
            self.set_free(free)
            step()
            self.assertEqual(free, self.free_gb())
        self.assertEqual(len(steps) + 1, self.reads.call_count)

    def test_extend_drops_the_figures(self):
        volume_id = sio_volumes.create_volume(
            test_sio_image.UUID, 'disk', 8 * GiB, self.flavor)
        image = test_sio_image.backend_image(
            test_sio_image.make_instance(), 'disk')
        self.assertEqual(640, self.free_gb())
        self.set_free(632)
        image.resize_image(16 * GiB)
        self.assertEqual(16, self.sio.volumes[volume_id].size_gb)
        self.assertEqual(632, self.free_gb())

    def test_other_pools_and_modes_are_not_mixed_up(self):
        self.assertEqual(640, self.free_gb())
        self.flags(capacity_mode='provisioned', group='scaleio')
        self.set_free(600)
        self.assertEqual(600, self.free_gb())
        self.assertEqual(2, self.reads.call_count)

    def test_reset_drops_the_figures(self):
        self.assertEqual(640, self.free_gb())
        self.set_free(600)
        sio_hooks.reset()
        self.assertEqual(600, self.free_gb())
