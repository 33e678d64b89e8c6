# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The Nova-level benchmark's device wait and bytes figures."""

import json
import os

import fixtures

from nova_sio.proof import bench
from nova_sio.tests import sio_base

CALLS = {'spawn': 12, 'delete': 5, 'confirm': 6, 'live_migration': 5}


def figures(volumes, waits, delay=0.05, written=1040384):
    entry = {'volumes': volumes, 'calls': dict(CALLS),
             'device_waits': waits, 'boot_device_waits': waits[:1],
             'device_delay': delay, 'boot_bytes_written': written,
             'bytes_method': 'growth of the st_blocks of the backing files',
             'image_bytes': 1040000, 'root_volume_bytes': 8 * sio_base.GiB}
    return entry


class ProofBenchFiguresTest(sio_base.TestCase):

    def test_waits_next_to_the_emulated_delay(self):
        text = bench.render_waits({
            10: figures(10, [0.0503, 0.0, 0.0507]),
            10000: figures(10000, [0.0, 0.1255, 0.1253, 0.0502])})
        lines = text.splitlines()
        self.assertEqual(2, len(lines))
        self.assertIn('(10 volumes): 2 waits, median 51 ms, max 51 ms; '
                      '1 devices already present; emulated SDC delay 50 '
                      'ms, waited beyond it: median 1 ms, max 1 ms',
                      lines[0])
        self.assertIn('(10000 volumes): 3 waits, median 125 ms, max 126 '
                      'ms; 1 devices already present; emulated SDC delay '
                      '50 ms, waited beyond it: median 75 ms, max 76 ms',
                      lines[1])

    def test_bytes_are_the_measured_ones(self):
        text = bench.render_copy({10: figures(10, [0.05], written=4096)})
        self.assertIn('bytes written per boot (10 volumes): 4096 into a 8 '
                      'GiB root volume from a 1040000 byte image (growth '
                      'of the st_blocks', text)
        old = figures(10, [0.05])
        del old['boot_bytes_written']
        self.assertIn('(10 volumes): not measured',
                      bench.render_copy({10: old}))

    def _main(self, entries):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'figures.jsonl')
        with open(path, 'w') as out:
            for entry in entries:
                out.write(json.dumps(entry) + '\n')
        stream = self.useFixture(fixtures.StringStream('stdout')).stream
        with fixtures.MonkeyPatch('sys.stdout', stream):
            return bench.main(['--figures', path, '--skip-engine'])

    def test_exit_status(self):
        both = [figures(10, [0.05]), figures(10000, [0.05])]
        self.assertEqual(0, self._main(both))
        # One size missing (its test failed): the run fails.
        self.assertEqual(1, self._main(both[:1]))
        # A call count that grows with the system fails it too.
        both[1]['calls']['spawn'] += 1
        self.assertEqual(1, self._main(both))
