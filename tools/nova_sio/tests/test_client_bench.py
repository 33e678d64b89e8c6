# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The client benchmark: per-operation cost does not grow with size."""

from nova_sio.bench import client_bench
from nova_sio.tests import sio_base


class ClientBenchTest(sio_base.TestCase):

    def test_cost_is_constant_except_the_cached_sdc_lookup(self):
        small = client_bench.measure(5, 2)
        large = client_bench.measure(2000, 300)
        self.assertEqual(list(small), list(large))
        for label in small:
            if label in client_bench.ONE_TIME:
                self.assertEqual(1, large[label][0])
                self.assertGreater(large[label][1], small[label][1])
                continue
            self.assertTrue(client_bench._constant(small[label],
                                                   large[label]),
                            (label, small[label], large[label]))
        self.assertEqual(0, large['get_sdc_id (cached)'][0])
        for label in ('create_volume', 'map_volume', 'delete_volume',
                      'get_volume_id (present)', 'extend_volume'):
            self.assertEqual(1, large[label][0], label)
        table = client_bench.render(small, large, 'small', 'large')
        self.assertIn('create_volume', table)
        self.assertNotIn(' NO', table)

    def test_main_exit_status(self):
        self.assertEqual(0, client_bench.main([
            '--volumes', '50', '--sdcs', '20', '--small-volumes', '1',
            '--small-sdcs', '1']))
