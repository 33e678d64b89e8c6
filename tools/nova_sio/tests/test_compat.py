# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The runtime package under old Pythons, against the emulator over HTTP.

Set ``NOVA_SIO_COMPAT_PYTHONS`` to a ``;``-separated list of
``interpreter[=PYTHONPATH]`` entries whose Python has ``requests`` and
``oslo.config`` (e.g. a Kilo-era Python 2.7 with requests 2.7.0 and
oslo.config 1.13.0); each runs ``compat_smoke.py``. Without it the test
skips.
"""

import json
import os
import subprocess

from nova_sio.emulator import fixture as emu_fixture
from nova_sio import runtime
from nova_sio.tests import sio_base

SMOKE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                     'compat_smoke.py')


class CompatTest(sio_base.TestCase):

    def test_old_pythons(self):
        spec = os.environ.get('NOVA_SIO_COMPAT_PYTHONS', '')
        entries = [e for e in spec.split(';') if e.strip()]
        if not entries:
            self.skipTest('NOVA_SIO_COMPAT_PYTHONS is not set')
        for entry in entries:
            python, _, path = entry.partition('=')
            fix = self.useFixture(emu_fixture.EmulatorFixture())
            env = dict(os.environ)
            env.pop('PYTHONPATH', None)
            if path:
                env['PYTHONPATH'] = path
            proc = subprocess.run(
                [python, SMOKE, runtime.checkout_root(),
                 json.dumps(fix.info)], env=env, capture_output=True,
                text=True, timeout=120)
            self.assertEqual(0, proc.returncode, proc.stderr[-2000:])
            self.assertTrue(proc.stdout.startswith('OK '), proc.stdout)
            self.assertEqual([], fix.admin.audit()['leaked_volumes'])
