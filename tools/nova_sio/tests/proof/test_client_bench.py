# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The client benchmark: per-operation cost does not grow with size."""

import fixtures

from nova_sio.proof import client_bench
from nova_sio import runtime
from nova_sio.tests import sio_base

SMALL = ['--volumes', '50', '--sdcs', '20', '--small-volumes', '1',
         '--small-sdcs', '1']


class ClientBenchTest(sio_base.TestCase):

    def _main(self, argv):
        out = self.useFixture(fixtures.StringStream('stdout'))
        with fixtures.MonkeyPatch('sys.stdout', out.stream):
            status = client_bench.main(argv)
        out.stream.flush()
        return status, out.getDetails()['stdout'].as_text()

    def test_cost_is_constant_except_the_cached_sdc_lookup(self):
        small_run = client_bench.measure(5, 2)
        large_run = client_bench.measure(2000, 300)
        small, large = small_run['ops'], large_run['ops']
        self.assertEqual(list(small), list(large))
        for run in (small_run, large_run):
            self.assertEqual([], client_bench.problems(run))
        for label in small:
            if label in client_bench.ONE_TIME:
                self.assertEqual(1, large[label][0])
                self.assertGreater(large[label][1], small[label][1])
                continue
            self.assertTrue(client_bench._constant(small[label],
                                                   large[label]),
                            (label, small[label], large[label]))
        self.assertEqual(0, large['get_sdc_id (cached)'][0])
        for label in ('create_volume', 'map_volume',
                      'get_volume_id (present)', 'extend_volume'):
            self.assertEqual(1, large[label][0], label)
            # Counted at the gateway: a request and an answer.
            self.assertGreater(large[label][1], 0, label)
        table = client_bench.render(small, large, 'small', 'large')
        self.assertIn('create_volume', table)
        self.assertNotIn(' NO', table)

    def test_main_exit_status(self):
        status, out = self._main(SMALL)
        self.assertEqual(0, status, out)

    def test_a_leak_fails_the_run(self):
        # A client whose delete does nothing leaves the volumes behind.
        client_cls = runtime.load('client').Client
        self.useFixture(fixtures.MonkeyPatch(
            '%s.Client.delete_volume' % client_cls.__module__,
            lambda *args, **kwargs: True))
        status, out = self._main(SMALL)
        self.assertEqual(1, status, out)
        self.assertIn('left behind: leaked_volumes', out)

    def test_a_cost_that_grows_fails_the_run(self):
        # A lookup that lists every volume costs more on the large system.
        client_cls = runtime.load('client').Client
        real = client_cls.get_volume_id

        def listing(client, name, *args, **kwargs):
            client._request('GET', '/api/types/Volume/instances',
                            context={}, expect=list)
            return real(client, name, *args, **kwargs)
        self.useFixture(fixtures.MonkeyPatch(
            '%s.Client.get_volume_id' % client_cls.__module__, listing))
        status, out = self._main(SMALL)
        self.assertEqual(1, status, out)
        self.assertIn('not constant: get_volume_id (present)', out)
