# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The gateway-call targets of the benchmark."""

from nova_sio.proof import bench
from nova_sio.tests import sio_base


def figures(delete, live, confirm, disks=None):
    entry = {'calls': {'delete': delete, 'live_migration': live,
                       'confirm': confirm, 'spawn': 99}}
    if disks is not None:
        entry['disks'] = disks
    return entry


class CallTargetsTest(sio_base.TestCase):

    def test_within_targets(self):
        table, missed = bench.check_call_targets(
            {10: figures(5, 5, 6), 10000: figures(5, 5, 6)})
        self.assertEqual([], missed)
        self.assertIn('live_migration', table)
        self.assertNotIn('spawn', table)

    def test_one_call_over_is_a_miss(self):
        _table, missed = bench.check_call_targets(
            {10: figures(5, 5, 6), 10000: figures(6, 5, 7)})
        self.assertEqual([('confirm', 10000), ('delete', 10000)], missed)

    def test_targets_grow_with_the_disks(self):
        _table, missed = bench.check_call_targets(
            {10: figures(7, 7, 9, disks=2)})
        self.assertEqual([], missed)
        _table, missed = bench.check_call_targets(
            {10: figures(8, 7, 10, disks=2)})
        self.assertEqual([('confirm', 10), ('delete', 10)], missed)

    def test_main_exits_non_zero_on_a_miss(self):
        import json
        import os
        import tempfile
        handle, path = tempfile.mkstemp()
        os.close(handle)
        self.addCleanup(os.unlink, path)
        with open(path, 'w') as out:
            for size, calls in ((10, 40), (10000, 40)):
                entry = figures(calls, 5, 6)
                entry.update(volumes=size, device_waits=[],
                             boot_bytes_copied=0, root_volume_bytes=0,
                             image_bytes=0)
                out.write(json.dumps(entry) + '\n')
        self.assertEqual(1, bench.main(['--figures', path, '--skip-engine']))
