# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Bytes written into emulated volumes, counted at their backing files."""

import os
import subprocess

from nova_sio.emulator import usage
from nova_sio.tests import sio_base

MiB = 1024 * 1024


class StorageMeterTest(sio_base.EmulatorTestCase):

    def setUp(self):
        super().setUp()
        self.meter = usage.StorageMeter(self.emu)

    def _mapped_volume(self, name, size_gb=8):
        volume_id = self.client.create_volume(name, size_gb, self.pool_id())
        self.client.map_volume(volume_id, sdc_id=self.sdc_id())
        device = self.device(volume_id)
        self.assertTrue(sio_base.wait_until(
            lambda: os.path.exists(device)), device)
        self.addCleanup(self.client.delete_volume, volume_id, unmap=True)
        return volume_id, device

    def _write(self, device, offset, length, fill=b'\x5a'):
        with open(device, 'r+b') as handle:
            handle.seek(offset)
            handle.write(fill * length)
            handle.flush()
            os.fsync(handle.fileno())

    def test_counts_the_data_written_through_the_device(self):
        mark = self.meter.mark()
        volume_id, device = self._mapped_volume('meter-a')
        self.assertEqual(0, self.meter.since(mark)['bytes'])
        self._write(device, 0, 3 * MiB)
        self._write(device, 5 * 1024 * MiB, 1 * MiB, fill=b'\x01')
        result = self.meter.since(mark)
        self.assertEqual(4 * MiB, result['bytes'])
        self.assertEqual({volume_id: 4 * MiB}, result['volumes'])
        self.assertIn('st_blocks', result['method'])

    def test_a_snapshot_is_not_a_write(self):
        volume_id, device = self._mapped_volume('meter-b')
        self._write(device, 0, 2 * MiB)
        mark = self.meter.mark()
        snap_id = self.client.snapshot_volume(volume_id, 'meter-b-snap')
        self.addCleanup(self.client.delete_volume, snap_id, unmap=True)
        self.assertEqual(0, self.meter.since(mark)['bytes'])
        # Writing into the snapshot's holes is a write into it.
        self.client.map_volume(snap_id, sdc_id=self.sdc_id())
        snap_device = self.device(snap_id)
        self.assertTrue(sio_base.wait_until(
            lambda: os.path.exists(snap_device)))
        self._write(snap_device, 64 * MiB, MiB)
        self.assertEqual({snap_id: MiB}, self.meter.since(mark)['volumes'])

    def test_children_write_accounting(self):
        _volume_id, device = self._mapped_volume('meter-c')
        before = usage.child_write_bytes()
        subprocess.run(['dd', 'if=/dev/urandom', 'of=%s' % device,
                        'bs=1M', 'count=3', 'conv=notrunc,fsync',
                        'status=none'], check=True)
        written = usage.child_write_bytes() - before
        # The kernel counts every block the child wrote: the 3 MiB of
        # data, plus at times a block of the file's metadata that the
        # fsync flushed (its size or extents), never less than the data.
        self.assertGreaterEqual(written, 3 * MiB)
        self.assertLessEqual(written, 3 * MiB + 64 * 1024)
