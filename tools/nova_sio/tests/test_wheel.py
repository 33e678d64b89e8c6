# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""``pip install nova-sio``: the wheel works without a checkout.

The files git knows of are copied out of the checkout (so nothing
generated or cached in the checkout can slip in), a wheel is built from
that copy, installed into a new virtualenv outside the checkout, and its
``nova-sio`` installs into (and reverts from) Nova 34.0.0 installed from
its PyPI wheel, with no ``NOVA_SIO_ROOT`` and an empty cache.
"""

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile

import fixtures
import testtools

from nova_sio import paths
from nova_sio.tests.operator import test_distro as distro
from nova_sio.tests.operator import test_install as base

NOVA = '34.0.0'


def export_checkout(dest):
    """Copy the files git tracks (or would track) of the checkout."""
    root = paths.project_root()
    out = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others',
                          '--exclude-standard'], cwd=root, check=True,
                         stdout=subprocess.PIPE).stdout
    for rel in out.decode().split('\0'):
        src = os.path.join(root, rel)
        if not rel or not os.path.isfile(src):
            continue
        dst = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst)


class WheelTest(testtools.TestCase):

    def setUp(self):
        super(WheelTest, self).setUp()
        self.useFixture(fixtures.Timeout(300, gentle=True))
        self.base = self.useFixture(fixtures.TempDir()).path
        self.assertFalse(self.base.startswith(paths.project_root()))

    def run_tool(self, venv, *argv):
        """Run the installed ``nova-sio``, away from the checkout."""
        env = dict(os.environ, NOVA_SIO_CACHE=os.path.join(self.base,
                                                           'cache'),
                   HOME=self.base)
        for name in ('NOVA_SIO_ROOT', 'PYTHONPATH'):
            env.pop(name, None)
        proc = subprocess.run([os.path.join(venv, 'bin', 'nova-sio')] +
                              list(argv) + ['--json'], cwd=self.base,
                              env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        self.assertTrue(proc.stdout, proc.stderr)
        return proc.returncode, json.loads(proc.stdout.decode())

    def test_wheel_installs_into_nova_offline(self):
        src = os.path.join(self.base, 'src')
        export_checkout(src)
        dist = os.path.join(self.base, 'dist')
        # The copy has no git history: pbr takes the version of this
        # checkout's own installation.
        env = dict(os.environ, PBR_VERSION=importlib.metadata.version(
            'nova-sio'))
        subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--quiet',
                        '--no-deps', '--no-build-isolation', '-w', dist,
                        src], check=True, env=env, cwd=self.base)
        wheels = os.listdir(dist)
        self.assertEqual(1, len(wheels), wheels)
        wheel = os.path.join(dist, wheels[0])
        releases = paths.releases_dir()
        want = sorted(n for n in os.listdir(releases)
                      if n.endswith('.diff')) + ['manifest.json']
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
            shipped = dict(
                (n.rsplit('/', 1)[1], z.read(n)) for n in names
                if '/data/share/nova-sio/releases/' in n and
                n.count('/') == 5)
            meta = [z.read(n).decode() for n in names
                    if n.endswith('.dist-info/METADATA')][0]
        for name in want:
            with open(os.path.join(releases, name), 'rb') as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(),
                                 hashlib.sha256(shipped.get(name, b''))
                                 .hexdigest(), name)
        self.assertFalse([n for n in names if n.endswith('.pyc')])
        self.assertIn("cryptography>=3.4; extra == \"emulator\"", meta)

        venv = os.path.join(self.base, 'venv')
        subprocess.run([sys.executable, '-m', 'venv', venv], check=True)
        subprocess.run([os.path.join(venv, 'bin', 'pip'), 'install',
                        '--quiet', wheel], check=True, cwd=self.base)
        probe = subprocess.run(
            [os.path.join(venv, 'bin', 'python'), '-c',
             'import nova_sio.paths as p; print(p.project_root())'],
            cwd=self.base, stdout=subprocess.PIPE, check=True,
            env=dict((k, v) for k, v in os.environ.items()
                     if k != 'NOVA_SIO_ROOT'))
        self.assertEqual(os.path.join(venv, 'share', 'nova-sio'),
                         probe.stdout.decode().strip())

        site = os.path.join(self.base, 'site-packages')
        shutil.copytree(distro.pip_tree(NOVA), site, symlinks=True)
        nova = os.path.join(site, 'nova')
        before = base.snapshot(site)
        code, doc = self.run_tool(venv, 'install', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        self.assertEqual(('exact', NOVA), (doc['plan']['mode'],
                                           doc['plan']['version']))
        conf = os.path.join(self.base, 'nova.conf')
        with open(conf, 'w') as f:
            f.write('[libvirt]\nimages_type = sio\n')
        _code, doc = self.run_tool(venv, 'doctor', '--config-file', conf,
                                   '--nova-dir', nova)
        checks = dict((c['check'], c) for c in doc['checks'])
        self.assertEqual('pass', checks['nova backend']['status'],
                         checks['nova backend'])
        code, doc = self.run_tool(venv, 'revert', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        self.assertEqual(before, base.snapshot(site))
