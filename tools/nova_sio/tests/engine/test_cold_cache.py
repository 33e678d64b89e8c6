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

"""The first run on a fresh machine: parallel emits on an empty cache.

Only the source archives are in the cache (as after ``nova-sio fetch``);
the work repository, its rerere cache, the round-trip repository and the
pristine extractions are all created by the racing emits themselves.
"""

import io
import os
import subprocess
import sys
import time
from unittest import mock

import testtools

from nova_sio import cli
from nova_sio.engine import source
from nova_sio.engine import workrepo
from nova_sio import errors
from nova_sio.tests import cachefix

# PyPI sdists of one era (they share its series and tracked files).
RELEASES = ['29.0.0', '30.0.0', '31.0.0', '32.0.0']

# Run in a child: wait for a common start time, then do what a first
# emit does to the work repository: create it, check out a worktree and
# commit in it (the commit is what makes git create rr-cache).
_FIRST_COMMIT = '''
import os, sys, time
from nova_sio.engine import workrepo
start = float(sys.argv[1])
time.sleep(max(0, start - time.time()))
repo = workrepo.repo_path()
tree = workrepo.git(['mktree'], repo, input=b'').stdout.decode().strip()
base = workrepo.git(['commit-tree', tree, '-m', 'base'],
                    repo).stdout.decode().strip()
with workrepo.Worktree(base) as wt:
    with open(os.path.join(wt.path, 'f'), 'w') as f:
        f.write(str(os.getpid()))
    wt.git(['add', 'f'])
    wt.git(['commit', '--quiet', '-m', 'first'])
print('ok')
'''


def _child_env():
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(cli.__file__)))] +
        [p for p in [env.get('PYTHONPATH')] if p])
    return env


class ColdCacheTest(testtools.TestCase):

    def setUp(self):
        super(ColdCacheTest, self).setUp()
        try:
            for v in RELEASES:
                source.fetch(v)
        except errors.SourceUnavailable as exc:
            self.skipTest(str(exc))
        self.useFixture(cachefix.ScratchProject())
        self.cache = self.useFixture(cachefix.SeededCache(RELEASES))
        self.assertEqual([], self.cache.built)

    def run_cli(self, *argv):
        out = io.StringIO()
        err = io.StringIO()
        with mock.patch('sys.stdout', out), mock.patch('sys.stderr', err):
            rc = cli.main(list(argv))
        return rc, out.getvalue() + err.getvalue()

    def test_new_work_repository_is_complete(self):
        repo = workrepo.repo_path()
        gitdir = os.path.join(repo, '.git')
        # git creates rr-cache lazily, and two first commits racing to
        # create it make one of them die.
        self.assertTrue(os.path.isdir(os.path.join(gitdir, 'rr-cache')))
        value = workrepo.git(['config', 'rerere.enabled'], repo).stdout
        self.assertEqual(b'true\n', value)
        self.assertEqual(['locks', 'pypi-nova.json', 'sources', 'work'],
                         sorted(os.listdir(self.cache.path)))

    def test_parallel_emits_in_threads(self):
        rc, out = self.run_cli('emit', '--verify', '--offline', '-j',
                               str(len(RELEASES)), *RELEASES)
        self.assertEqual(0, rc, out)
        self.assertIn('%d ok, 0 failed, 0 skipped' % len(RELEASES), out)

    def test_parallel_emits_in_two_processes(self):
        # Both emit the release in the middle, as well as their own.
        halves = [RELEASES[:3], RELEASES[1:]]
        cmd = [sys.executable, '-c',
               'import sys; from nova_sio import cli; sys.exit(cli.main())',
               'emit', '--verify', '--offline', '-j', '3']
        procs = [subprocess.Popen(cmd + half, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT,
                                  env=_child_env())
                 for half in halves]
        outs = [p.communicate(timeout=600)[0].decode() for p in procs]
        for proc, half, out in zip(procs, halves, outs):
            self.assertEqual(0, proc.returncode, out)
            self.assertIn('%d ok, 0 failed, 0 skipped' % len(half), out)

    def test_first_commits_in_racing_processes(self):
        start = time.time() + 2
        procs = [subprocess.Popen([sys.executable, '-c', _FIRST_COMMIT,
                                   repr(start)],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT,
                                  env=_child_env())
                 for _i in range(4)]
        outs = [p.communicate(timeout=120)[0].decode() for p in procs]
        self.assertEqual([0] * 4, [p.returncode for p in procs], outs)
        self.assertEqual(['ok'] * 4, [o.strip() for o in outs])
