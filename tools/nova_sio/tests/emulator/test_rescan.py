# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The emulated SDC's ``drv_cfg --rescan``: new sizes and lost devices."""

import os
import subprocess
import time

from nova_sio.tests import sio_base

GiB = 1024 ** 3


class RescanTest(sio_base.EmulatorTestCase):

    emulator_kwargs = {'hosts': ('host-a', 'host-b')}

    def setUp(self):
        super(RescanTest, self).setUp()
        self.emu.set_host('host-a', device_delay=0)
        self.emu.set_host('host-b', device_delay=0)
        self.vol = self.client.create_volume('rescan', 8, self.pool_id())

    def rescan(self, host='host-a'):
        subprocess.check_call([self.emu_fixture.host(host)['drv_cfg'],
                               '--rescan'])

    def test_grown_volume_shows_old_size_until_rescan(self):
        self.client.map_volume(self.vol, sdc_id=self.sdc_id())
        link = self.device(self.vol)
        self.assertTrue(sio_base.wait_until(lambda: os.path.exists(link)))
        self.client.extend_volume(self.vol, 24)
        self.assertEqual(8 * GiB, os.path.getsize(link))
        self.rescan()
        self.assertEqual(24 * GiB, os.path.getsize(link))
        # The gateway always told the new size.
        self.assertEqual(24 * GiB // 1024, int(
            self.client.get_volume(self.vol)['sizeInKb']))

    def test_new_mapping_shows_the_current_size(self):
        self.client.map_volume(self.vol, sdc_id=self.sdc_id())
        self.client.extend_volume(self.vol, 16)
        self.client.map_volume(self.vol, sdc_id=self.sdc_id('host-b'))
        link = self.device(self.vol, 'host-b')
        self.assertTrue(sio_base.wait_until(lambda: os.path.exists(link)))
        self.assertEqual(16 * GiB, os.path.getsize(link))

    def test_unmapped_volume_grows_at_once(self):
        self.client.extend_volume(self.vol, 16)
        self.client.map_volume(self.vol, sdc_id=self.sdc_id())
        link = self.device(self.vol)
        self.assertTrue(sio_base.wait_until(lambda: os.path.exists(link)))
        self.assertEqual(16 * GiB, os.path.getsize(link))

    def test_rescan_recreates_a_lost_device(self):
        self.client.map_volume(self.vol, sdc_id=self.sdc_id())
        link = self.device(self.vol)
        self.assertTrue(sio_base.wait_until(lambda: os.path.exists(link)))
        os.unlink(link)   # udev lost it; the SDC still has the volume
        self.rescan()
        self.assertTrue(os.path.exists(link))

    def test_rescan_never_shows_unmapped_or_broken_devices(self):
        self.client.map_volume(self.vol, sdc_id=self.sdc_id())
        link = self.device(self.vol)
        self.assertTrue(sio_base.wait_until(lambda: os.path.exists(link)))
        self.client.unmap_volume(self.vol, sdc_id=self.sdc_id())
        self.assertTrue(sio_base.wait_until(
            lambda: not os.path.lexists(link)))
        self.rescan()
        self.assertFalse(os.path.lexists(link))
        self.emu.set_host('host-b', never_appear=True)
        self.client.map_volume(self.vol, sdc_id=self.sdc_id('host-b'))
        time.sleep(0.1)
        self.rescan('host-b')
        self.assertFalse(os.path.lexists(self.device(self.vol, 'host-b')))
