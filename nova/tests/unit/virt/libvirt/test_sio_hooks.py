# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Tests of the instance-level ScaleIO hooks against a fake ScaleIO."""

from __future__ import absolute_import

import os
import stat

import fixtures

from nova.compute import task_states
from nova import test
from nova.tests import fixtures as nova_fixtures
from nova.tests.unit.virt.libvirt import fake_sio
from nova.tests.unit.virt.libvirt import test_sio_image
from nova.virt.libvirt.sio import connection as sio_connection
from nova.virt.libvirt.sio import disks as sio_disks
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import flavors as sio_flavors
from nova.virt.libvirt.sio import hooks as sio_hooks
from nova.virt.libvirt.sio import lifecycle as sio_lifecycle
from nova.virt.libvirt.sio import volumes as sio_volumes

GiB = 1024 ** 3
UUID = test_sio_image.UUID
OTHER = '9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b'
POOL = 'b0b0000000000001'


class SioHooksTestCase(test.NoDBTestCase):

    def setUp(self):
        super(SioHooksTestCase, self).setUp()
        self.fx = self.useFixture(fake_sio.SioFixture(self))
        self.sio = self.fx.sio
        self.instance = test_sio_image.make_instance()

    def make(self, disk_name, uuid=UUID, kind='', size=8, map_to=()):
        name = sio_volumes.volume_name(uuid, disk_name, kind)
        volume_id = self.sio.create_volume(name, size, POOL)
        for guid in map_to:
            self.sio.map_volume(volume_id, guid=guid)
        return volume_id

    def make_all(self, map_to=()):
        for disk_name in ('disk', 'disk.local', 'disk.eph0', 'disk.eph1',
                          'disk.swap', 'disk.rescue'):
            self.make(disk_name, map_to=map_to)
        self.make('disk', kind='snapshot')
        self.make('disk', uuid=OTHER, map_to=map_to)

    def test_is_sio_path(self):
        self.assertTrue(sio_hooks.is_sio_path(
            '/dev/disk/by-id/emc-vol-1a2b3c4d5e6f7a8b-f00d000000000001'))
        self.assertFalse(sio_hooks.is_sio_path('/dev/vg/inst_disk'))
        self.assertFalse(sio_hooks.is_sio_path('rbd:pool/disk'))
        self.assertFalse(sio_hooks.is_sio_path(None))
        self.assertEqual(
            'f00d000000000001', sio_connection.volume_id_from_path(
                '/dev/disk/by-id/emc-vol-1a2b3c4d5e6f7a8b-f00d000000000001'))

    def test_instance_volumes_finds_every_disk(self):
        self.make_all()
        found = sio_disks.instance_volumes(self.instance)
        self.assertEqual(
            sorted(['disk', 'disk', 'disk.local', 'disk.eph0', 'disk.eph1',
                    'disk.swap', 'disk.rescue']),
            sorted(v.disk_name for v in found))

    def test_destroy_volumes_deletes_everything_mapped_anywhere(self):
        self.make_all(map_to=(self.fx.GUID_A, self.fx.GUID_B))
        self.assertEqual(7, sio_lifecycle.destroy_volumes(self.instance))
        self.assertEqual([sio_volumes.volume_name(OTHER, 'disk')],
                         self.sio.names())
        self.assertEqual(1, len(os.listdir(self.fx.dev_a)))
        self.assertEqual(1, len(os.listdir(self.fx.dev_b)))
        # Idempotent: a second delete finds nothing.
        self.assertEqual(0, sio_lifecycle.destroy_volumes(self.instance))

    def test_map_volumes_skips_snapshots(self):
        self.make('disk')
        self.make('disk.local')
        self.make('disk', kind='snapshot')
        paths = sio_hooks.map_volumes(self.instance)
        self.assertEqual(2, len(paths))
        self.assertEqual(sorted(os.path.basename(p) for p in paths),
                         sorted(os.listdir(self.fx.dev_a)))
        self.assertEqual(2, len(sio_hooks.map_volumes(self.instance)))

    def test_unmap_volumes_only_on_this_host(self):
        self.make('disk', map_to=(self.fx.GUID_A, self.fx.GUID_B))
        self.assertEqual(1, sio_hooks.unmap_volumes(self.instance))
        self.assertEqual([], os.listdir(self.fx.dev_a))
        self.assertEqual(1, len(os.listdir(self.fx.dev_b)))
        self.assertEqual(0, sio_hooks.unmap_volumes(self.instance))

    def test_cleanup_volumes_destroy(self):
        self.make('disk', map_to=(self.fx.GUID_A,))
        sio_hooks.cleanup_volumes(self.instance, True)
        self.assertEqual([], self.sio.names())

    def test_cleanup_volumes_keeps_mappings_of_a_local_instance(self):
        # A hard reboot destroys the domain without its disks.
        self.make('disk', map_to=(self.fx.GUID_A,))
        sio_hooks.cleanup_volumes(self.instance, False)
        self.assertEqual(1, len(os.listdir(self.fx.dev_a)))

    def test_cleanup_volumes_unmaps_after_evacuation(self):
        self.make('disk', map_to=(self.fx.GUID_A, self.fx.GUID_B))
        self.instance.host = 'host-b'
        sio_hooks.cleanup_volumes(self.instance, False)
        self.assertEqual([], os.listdir(self.fx.dev_a))
        self.assertEqual(1, len(self.sio.names()))

    def test_cleanup_volumes_unmaps_on_revert(self):
        self.make('disk', map_to=(self.fx.GUID_A,))
        self.instance.task_state = task_states.RESIZE_REVERTING
        sio_hooks.cleanup_volumes(self.instance, False)
        self.assertEqual([], os.listdir(self.fx.dev_a))

    def test_cleanup_resize_on_old_host(self):
        self.make('disk', map_to=(self.fx.GUID_A, self.fx.GUID_B))
        self.make('disk', kind='snapshot')
        self.instance.host = 'host-b'
        sio_hooks.cleanup_resize(self.instance)
        self.assertEqual([sio_volumes.volume_name(UUID, 'disk')],
                         self.sio.names())
        self.assertEqual([], os.listdir(self.fx.dev_a))
        self.assertEqual(1, len(os.listdir(self.fx.dev_b)))

    def test_cleanup_resize_same_host_keeps_mapping(self):
        self.make('disk', map_to=(self.fx.GUID_A,))
        self.make('disk.local', kind='snapshot')
        sio_hooks.cleanup_resize(self.instance)
        self.assertEqual([sio_volumes.volume_name(UUID, 'disk')],
                         self.sio.names())
        self.assertEqual(1, len(os.listdir(self.fx.dev_a)))

    def test_remove_rescue_volume(self):
        self.make('disk', map_to=(self.fx.GUID_A,))
        self.make('disk.rescue', map_to=(self.fx.GUID_A,))
        self.assertEqual(1, sio_hooks.remove_rescue_volume(self.instance))
        self.assertEqual([sio_volumes.volume_name(UUID, 'disk')],
                         self.sio.names())

    def test_pool_info(self):
        self.assertEqual({'total': 800 * GiB, 'free': 640 * GiB,
                          'used': 160 * GiB}, sio_hooks.get_pool_info())
        self.assertEqual({'total': 800, 'free': 640, 'used': 160},
                         sio_hooks.get_local_gb_info())

    def test_check_flavor_sizes(self):
        sio_flavors.check_flavor_sizes(self.instance.flavor)
        flavor = test_sio_image.make_instance(
            flavor_name='m1.eph', ephemeral_gb=10).flavor
        exc = self.assertRaises(sio_exc.InvalidSize,
                                sio_flavors.check_flavor_sizes, flavor)
        self.assertIn('m1.eph', str(exc))
        self.assertIn('disk.local', str(exc))
        self.assertIn('10.00 GiB', str(exc))
        sio_flavors.check_flavor_sizes(flavor, disk_names=('disk',))
        self.flags(round_volume_capacity=True, group='scaleio')
        sio_flavors.check_flavor_sizes(flavor)

    def test_storage_for_flavor(self):
        self.assertEqual(('pd1', 'sp1', False),
                         sio_flavors.storage_for(self.instance.flavor))
        self.flags(provisioning_type='thin', group='scaleio')
        self.assertEqual(('pd1', 'sp1', True), sio_flavors.storage_for(None))
        flavor = {'extra_specs': {'sio:sp_name': 'fast',
                                  'sio:provisioning_type': 'thick'}}
        self.assertEqual(('pd1', 'fast', False),
                         sio_flavors.storage_for(flavor))
        self.assertRaises(sio_exc.InvalidConfig, sio_flavors.storage_for,
                          {'extra_specs': {'sio:provisioning_type': 'x'}})

    def test_copy_config_drive(self):
        copies = []
        self.instance.host = 'host-b'
        sio_hooks.copy_config_drive(self.instance, '/inst/dir',
                                    lambda src, dst: copies.append(
                                        (src, dst)))
        self.assertEqual([('host-b:/inst/dir/disk.config', '/inst/dir')],
                         copies)

    def test_sdc_guid_from_drv_cfg(self):
        # drv_cfg runs through the privsep entrypoint, here in-process.
        if not hasattr(nova_fixtures, 'PrivsepFixture'):
            self.skipTest('Nova without privsep')
        self.useFixture(nova_fixtures.PrivsepFixture())
        tool = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'drv_cfg')
        with open(tool, 'w') as handle:
            handle.write('#!/bin/sh\necho "Retrieved SDC GUID: '
                         '%s"\n' % self.fx.GUID_B.lower())
        os.chmod(tool, stat.S_IRWXU)
        self.flags(default_sdcguid=None, drv_cfg_path=tool,
                   device_root=self.fx.dev_b, group='scaleio')
        sio_hooks.reset()
        self.assertEqual(self.fx.GUID_B.upper(), sio_connection.sdc_guid())
        self.make('disk')
        sio_hooks.map_volumes(self.instance)
        self.assertEqual(1, len(os.listdir(self.fx.dev_b)))

    def test_client_is_rebuilt_when_options_change(self):
        first = sio_connection.get_client()
        self.assertIs(first, sio_connection.get_client())
        self.flags(rest_server_ip='192.0.2.99', group='scaleio')
        sio_connection.get_client()
        self.assertTrue(first.closed)
