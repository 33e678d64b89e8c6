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

"""The Nova test trees, what a run must prove, and ``status``.

A test tree is the pristine source plus the committed diff, applied with
GNU patch after it verifies; a tampered diff is refused before anything
runs.  A run fails when an era's required module of ours passed no test.
"""

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from unittest import mock

import fixtures
import testtools

from nova_sio import cli
from nova_sio.engine import diffs
from nova_sio.engine import emit
from nova_sio.engine import source
from nova_sio import errors
from nova_sio import paths
from nova_sio import releases
from nova_sio import testenv
from nova_sio.tests import cachefix

VERSION = '34.0.0'


def run_cli(*argv):
    """Run ``nova-sio`` in-process; return ``(code, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with mock.patch('sys.stdout', out), mock.patch('sys.stderr', err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


class ScratchCheckout(fixtures.Fixture):
    """A copy of ``releases/`` and ``nova/`` as the project root.

    :param cache: also use an empty cache that shares only the fetched
        sources with the real one.
    """

    def __init__(self, cache=True):
        super(ScratchCheckout, self).__init__()
        self.cache = cache

    def _setUp(self):
        real_root = paths.project_root()
        real_cache = paths.cache_dir()
        self.root = self.useFixture(fixtures.TempDir()).path
        for name in ('releases', 'nova'):
            shutil.copytree(os.path.join(real_root, name),
                            os.path.join(self.root, name),
                            ignore=shutil.ignore_patterns('__pycache__',
                                                          '*.lock'))
        self.useFixture(fixtures.EnvironmentVariable('NOVA_SIO_ROOT',
                                                     self.root))
        if self.cache:
            self.cache_dir = self.useFixture(fixtures.TempDir()).path
            os.symlink(os.path.join(real_cache, 'sources'),
                       os.path.join(self.cache_dir, 'sources'))
            for name in ('pypi-nova.json', 'nova.git'):
                if os.path.exists(os.path.join(real_cache, name)):
                    os.symlink(os.path.join(real_cache, name),
                               os.path.join(self.cache_dir, name))
            self.useFixture(fixtures.EnvironmentVariable(
                'NOVA_SIO_CACHE', self.cache_dir))

    def diff_path(self, version):
        return os.path.join(self.root, 'releases', '%s.diff' % version)

    def edit_diff(self, version, pick, change):
        """Change one line of a hunk of ``releases/<version>.diff``.

        :param pick: ``pick(file section, line)`` selects the line.
        :param change: ``change(line)`` returns the new line.
        :returns: ``(path of the touched file, old line, new line)``.
        """
        path = self.diff_path(version)
        with open(path, 'rb') as f:
            data = f.read()
        lines = data.split(b'\n')
        current = None
        in_hunk = False
        for i, line in enumerate(lines):
            if line.startswith(b'diff --git '):
                current = line.split(b' b/', 1)[1].decode()
                in_hunk = False
            elif line.startswith(b'@@ '):
                in_hunk = True
            elif in_hunk and current and pick(current, line):
                lines[i] = change(line)
                assert lines[i] != line
                with open(path, 'wb') as f:
                    f.write(b'\n'.join(lines))
                return current, line, lines[i]
        raise AssertionError('no line to change in %s' % path)


class TamperedDiffTest(testtools.TestCase):
    """A test tree is only ever built from a committed diff that verifies.
    """

    def setUp(self):
        super(TamperedDiffTest, self).setUp()
        self.useFixture(fixtures.Timeout(600, gentle=True))
        source.fetch(VERSION)
        self.co = self.useFixture(ScratchCheckout())
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', io.StringIO()))

    def assertRefusedBeforeRunning(self):
        venv = mock.Mock(side_effect=AssertionError('venv built'))
        with mock.patch.object(testenv, 'build_venv', venv):
            exc = self.assertRaises(testenv.DiffNotVerified,
                                    testenv.run_tests, VERSION,
                                    record=False)
        self.assertFalse(os.path.exists(os.path.join(
            self.co.cache_dir, 'testtrees', VERSION)))
        self.assertIn('Refusing to test nova %s: the committed '
                      'releases/%s.diff does not verify' % (VERSION,
                                                            VERSION),
                      str(exc))
        self.assertIn('run "nova-sio emit %s"' % VERSION, str(exc))
        return str(exc)

    def test_changed_context_line_of_an_upstream_file(self):
        path, _old, _new = self.co.edit_diff(
            VERSION, lambda f, ln: f == 'nova/virt/libvirt/driver.py' and
            ln.startswith(b' ') and ln.strip(),
            lambda ln: ln + b'  # edited')
        self.assertEqual('nova/virt/libvirt/driver.py', path)
        msg = self.assertRefusedBeforeRunning()
        # patch itself finds the hunk no longer matches upstream.
        self.assertIn('dry_run: patch:', msg)
        self.assertIn('positions:', msg)

    def test_changed_line_of_a_new_file(self):
        path, _old, _new = self.co.edit_diff(
            VERSION, lambda f, ln: f.startswith('nova/virt/libvirt/sio/')
            and ln.startswith(b'+') and b'"""' in ln,
            lambda ln: ln.replace(b'"""', b'""" edited', 1))
        self.assertTrue(path.startswith('nova/virt/libvirt/sio/'))
        msg = self.assertRefusedBeforeRunning()
        # The diff still applies cleanly: only the fresh emit tells.
        self.assertIn('fresh_emit: committed diff differs from a fresh '
                      'emit', msg)
        self.assertNotIn('dry_run:', msg)
        self.assertNotIn('positions:', msg)

    def test_missing_diff(self):
        os.unlink(self.co.diff_path(VERSION))
        exc = self.assertRaises(testenv.DiffNotVerified,
                                testenv.build_tree, VERSION)
        self.assertIn('the file does not exist', str(exc))

    def test_cli_names_the_refusal_and_fails(self):
        self.co.edit_diff(
            VERSION, lambda f, ln: f == 'nova/virt/libvirt/driver.py' and
            ln.startswith(b' ') and ln.strip(),
            lambda ln: ln + b'  # edited')
        code, out, err = run_cli('test', '--no-record', VERSION)
        self.assertEqual(1, code)
        last = out.strip().splitlines()[-2:]
        self.assertTrue(last[0].startswith('FAILED %s: Refusing to test'
                                           % VERSION), last)
        self.assertEqual('nova-sio test: 0 passed, 0 failed, 0 skipped; '
                         'releases: 0 passed, 1 failed, 0 skipped', last[1])


class TestTreeTest(testtools.TestCase):
    """The tree is pristine source + the committed diff + our tests."""

    def setUp(self):
        super(TestTreeTest, self).setUp()
        self.useFixture(fixtures.Timeout(600, gentle=True))
        source.fetch(VERSION)
        self.co = self.useFixture(ScratchCheckout())
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', io.StringIO()))

    def test_tree_is_the_committed_diff_applied(self):
        tree = testenv.build_tree(VERSION)
        with open(self.co.diff_path(VERSION), 'rb') as f:
            files = diffs.parse(f.read())
        pristine = self.useFixture(fixtures.TempDir()).path
        source.extract(VERSION, pristine,
                       only=[f.old_path for f in files if f.old_path])
        # Applying the committed diff to the pristine files once more gives
        # the tree's files byte for byte.
        testenv.apply_diff(pristine, open(self.co.diff_path(VERSION),
                                          'rb').read())
        for f in files:
            with open(os.path.join(tree, f.new_path), 'rb') as a, \
                    open(os.path.join(pristine, f.new_path), 'rb') as b:
                self.assertEqual(b.read(), a.read(), f.new_path)
        tests = testenv.test_files()
        self.assertIn('nova/tests/unit/virt/libvirt/test_sio_hooks.py',
                      tests)
        self.assertFalse([rel for rel in tests
                          if not rel.startswith('nova/tests/')])
        for rel, data in tests.items():
            with open(os.path.join(tree, rel), 'rb') as f:
                self.assertEqual(data, f.read(), rel)
        # Cached by the diff and the tests: a changed test file rebuilds.
        stamp = os.path.join(tree, '.nova-sio-tree')
        with open(stamp) as f:
            key = f.read()
        self.assertEqual(tree, testenv.build_tree(VERSION))
        with open(stamp) as f:
            self.assertEqual(key, f.read())
        rel = 'nova/tests/unit/virt/libvirt/test_sio_hooks.py'
        with open(os.path.join(self.co.root, rel), 'ab') as f:
            f.write(b'\n# changed\n')
        testenv.build_tree(VERSION)
        with open(stamp) as f:
            self.assertNotEqual(key, f.read())
        with open(os.path.join(tree, rel), 'rb') as f:
            self.assertTrue(f.read().endswith(b'\n# changed\n'))

    def test_patch_output_other_than_patching_is_refused(self):
        with open(self.co.diff_path(VERSION), 'rb') as f:
            data = f.read()
        files = diffs.parse(data)
        tree = self.useFixture(fixtures.TempDir()).path
        source.extract(VERSION, tree,
                       only=[f.old_path for f in files if f.old_path])
        # One blank line more above the first modified file: an offset.
        first = [f.old_path for f in files if f.old_path][0]
        full = os.path.join(tree, first)
        with open(full, 'rb') as f:
            body = f.read()
        with open(full, 'wb') as f:
            f.write(b'\n' + body)
        exc = self.assertRaises(testenv.TestEnvError, testenv.apply_diff,
                                tree, data)
        self.assertIn('offset', str(exc))


class RequiredModulesTest(testtools.TestCase):
    """Each era names the modules of ours that must pass tests there."""

    UNIT = testenv.UNIT_PACKAGE

    def test_every_era_has_its_modules(self):
        eras = [e.name for e in releases.load_eras()]
        self.assertEqual(sorted(eras), sorted(testenv.ERAS))
        self.assertLessEqual(set(testenv.FUNCTIONAL_ERAS), set(eras))
        ours = testenv.our_modules(testenv.UNIT_PACKAGE)
        for mod, mod_eras in testenv.UNIT_ERAS.items():
            self.assertIn(mod, ours)
            self.assertLessEqual(set(mod_eras), set(eras), mod)

    def short(self, era):
        return set(m[len(self.UNIT):] for m in
                   testenv.required_modules(era)
                   if m.startswith(self.UNIT))

    def test_era_modules(self):
        self.assertIn('test_sio_kilo', self.short('E1'))
        self.assertNotIn('test_sio_beyond', self.short('E1'))
        self.assertNotIn('test_sio_driver', self.short('E1'))
        self.assertIn('test_sio_e2e3_driver', self.short('E3b'))
        self.assertNotIn('test_sio_e4e5_driver', self.short('E3b'))
        self.assertIn('test_sio_e4e5_driver', self.short('E5'))
        self.assertLessEqual({'test_sio_driver', 'test_sio_lifecycle',
                              'test_sio_beyond'}, self.short('E6-zed'))
        self.assertNotIn('test_sio_kilo', self.short('E6'))
        func = [m for m in testenv.required_modules('E6')
                if m.startswith(testenv.FUNCTIONAL_PACKAGE)]
        self.assertIn(testenv.FUNCTIONAL_PACKAGE + 'test_sio', func)
        self.assertFalse([m for m in testenv.required_modules('E5')
                          if m.startswith(testenv.FUNCTIONAL_PACKAGE)])

    def test_a_new_module_is_required_in_every_era(self):
        co = self.useFixture(ScratchCheckout(cache=False))
        new = os.path.join(co.root, 'nova', 'tests', 'unit', 'virt',
                           'libvirt', 'test_sio_brand_new.py')
        for era in testenv.ERAS:
            self.assertNotIn('test_sio_brand_new', self.short(era))
        with open(new, 'w') as f:
            f.write('')
        for era in testenv.ERAS:
            self.assertIn('test_sio_brand_new', self.short(era))

    def test_unknown_era_is_an_error(self):
        exc = self.assertRaises(testenv.TestEnvError,
                                testenv.required_modules, 'E99')
        self.assertIn('no required test modules are defined', str(exc))

    def results(self, **modules):
        """Build ``{test id: status}``: ``module=[status, ...]``."""
        out = {}
        for mod, statuses in modules.items():
            for i, st in enumerate(statuses):
                out['%s%s.T.test_%d' % (self.UNIT, mod, i)] = st
        return out

    def test_all_required_pass(self):
        req = testenv.required_modules('E4')
        res = self.results(**dict((m[len(self.UNIT):], ['success', 'skip'])
                                  for m in req))
        self.assertEqual([], testenv.check_modules(
            req, testenv.DEFAULT_TESTS, res))

    def test_module_that_skipped_as_a_whole_fails(self):
        req = testenv.required_modules('E4')
        mods = dict((m[len(self.UNIT):], ['success']) for m in req)
        mods['test_sio_e4e5_driver'] = ['skip', 'skip']
        probs = testenv.check_modules(req, testenv.DEFAULT_TESTS,
                                      self.results(**mods))
        self.assertEqual(['%stest_sio_e4e5_driver: no test passed '
                          '(2 skip)' % self.UNIT], probs)

    def test_module_that_never_ran_fails(self):
        req = testenv.required_modules('E1')
        mods = dict((m[len(self.UNIT):], ['success']) for m in req)
        del mods['test_sio_kilo']
        probs = testenv.check_modules(req, testenv.DEFAULT_TESTS,
                                      self.results(**mods))
        self.assertEqual(['%stest_sio_kilo: selected, but none of its '
                          'tests ran' % self.UNIT], probs)

    def test_import_failure_fails(self):
        req = testenv.required_modules('E6')
        mods = dict((m[len(self.UNIT):], ['success']) for m in req)
        res = self.results(**mods)
        res['unittest.loader._FailedTest.%stest_sio_extra' % self.UNIT] = \
            'fail'
        probs = testenv.check_modules(req, testenv.DEFAULT_TESTS, res)
        self.assertEqual(['%stest_sio_extra failed to import' % self.UNIT],
                         probs)

    def test_modules_a_regex_does_not_select_are_not_required(self):
        req = testenv.required_modules('E6')
        regex = self.UNIT + 'test_sio_hooks'
        res = self.results(test_sio_hooks=['success'])
        self.assertEqual([], testenv.check_modules(req, regex, res))
        res = self.results(test_sio_hooks=['skip'])
        self.assertEqual(1, len(testenv.check_modules(req, regex, res)))

    def test_functional_modules_a_run_selects(self):
        req = testenv.required_modules('E6')
        func = testenv.FUNCTIONAL_PACKAGE
        regex = (r'nova.tests.functional.libvirt.(test_sio.SioLifecycleTest|'
                 r'test_sio_beyond.)')
        res = {func + 'test_sio.SioLifecycleTest.test_a': 'success'}
        probs = testenv.check_modules(req, regex, res)
        self.assertEqual(['%stest_sio_beyond: selected, but none of its '
                          'tests ran' % func], probs)


class ResultsTest(testtools.TestCase):
    """Per-test results come from the runner's own repository."""

    def test_stestr_results(self):
        tree = self.useFixture(fixtures.TempDir()).path
        os.makedirs(os.path.join(tree, 'pkg'))
        with open(os.path.join(tree, 'pkg', '__init__.py'), 'w'):
            pass
        with open(os.path.join(tree, 'pkg', 'test_x.py'), 'w') as f:
            f.write(textwrap.dedent('''\
                import unittest


                class T(unittest.TestCase):
                    def test_ok(self):
                        pass

                    def test_skip(self):
                        self.skipTest('no')

                    def test_fail(self):
                        self.fail('boom')
                '''))
        with open(os.path.join(tree, '.stestr.conf'), 'w') as f:
            f.write('[DEFAULT]\ntest_path=./pkg\ntop_dir=./\n')
        venv = sys.prefix
        env = {'PATH': os.path.join(venv, 'bin') + os.pathsep +
               os.environ.get('PATH', '')}
        stestr = os.path.join(venv, 'bin', 'stestr')

        def run():
            shutil.rmtree(os.path.join(tree, '.stestr'), ignore_errors=True)
            return subprocess.run(
                [stestr, 'run', 'pkg.test_x'], cwd=tree,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=dict(os.environ, **env)).returncode

        # A module that cannot be imported stops the whole run: nothing
        # of the selected module ran, which the module check reports.
        broken = os.path.join(tree, 'pkg', 'test_broken.py')
        with open(broken, 'w') as f:
            f.write('import no_such_module_anywhere\n')
        self.assertNotEqual(0, run())
        res = testenv.read_results(venv, tree, 'stestr', env)
        self.assertEqual({}, res)
        self.assertEqual(['pkg.test_x: selected, but none of its tests '
                          'ran'], testenv.check_modules(['pkg.test_x'],
                                                        'pkg.test_x', res))
        os.unlink(broken)
        self.assertNotEqual(0, run())
        res = testenv.read_results(venv, tree, 'stestr', env)
        self.assertEqual({'pkg.test_x.T.test_ok': 'success',
                          'pkg.test_x.T.test_skip': 'skip',
                          'pkg.test_x.T.test_fail': 'failure'}, res)
        self.assertEqual({'passed': 1, 'failed': 1, 'skipped': 1},
                         testenv.counts_of(res))
        self.assertEqual(
            ['pkg.test_x: no test passed (1 failure, 1 skip)'],
            testenv.check_modules(['pkg.test_x'], 'pkg', dict(
                (k, v) for k, v in res.items() if 'test_ok' not in k)))

    def test_failure_report_keeps_the_traceback(self):
        out = ('{0} a.b.test_ok [0.1s] ... ok\n'
               '==============================\n'
               'Failed 1 tests - output below:\n'
               '==============================\n\n'
               'a.b.test_bad\n------------\n\n'
               'Traceback (most recent call last):\n  boom\n\n'
               '======\nTotals\n======\n - Passed: 1\n')
        report = testenv.failure_report(out)
        self.assertIn('Failed 1 tests - output below:', report)
        self.assertIn('Traceback (most recent call last):\n  boom', report)
        self.assertNotIn('test_ok', report)
        self.assertNotIn('Totals', report)


class SummaryTest(testtools.TestCase):
    """The closing lines name every release that did not run."""

    def setUp(self):
        super(SummaryTest, self).setUp()
        self.out = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', self.out))

    def test_skips_and_totals(self):
        rows = [
            {'version': '34.0.0', 'result': 'passed', 'passed': 10,
             'failed': 0, 'skipped': 2, 'summary': '10 passed'},
            {'version': '2015.1.2', 'result': 'skipped',
             'reason': 'no source'},
        ]
        self.assertEqual(0, testenv.print_summary(rows))
        self.assertEqual(['SKIPPED 2015.1.2: no source',
                          'nova-sio test: 10 passed, 0 failed, 2 skipped; '
                          'releases: 1 passed, 0 failed, 1 skipped'],
                         self.out.getvalue().splitlines())

    def test_module_problem_fails(self):
        rows = [{'version': '19.3.2', 'result': 'failed', 'passed': 5,
                 'failed': 0, 'skipped': 9, 'summary': '5 passed',
                 'module_problems': ['m: no test passed (9 skip)']}]
        self.assertEqual(1, testenv.print_summary(rows))
        self.assertIn('FAILED 19.3.2: 5 passed; m: no test passed (9 skip)',
                      self.out.getvalue())


class UnreachableSourceTest(testtools.TestCase):
    """No source is a failure unless ``--skip-unavailable`` lists it."""

    def setUp(self):
        super(UnreachableSourceTest, self).setUp()
        self.useFixture(cachefix.NoSource())

    def test_fails_without_the_flag(self):
        code, out, err = run_cli('test', '--no-record', '2015.1.1')
        self.assertEqual(1, code)
        self.assertIn('FAILED 2015.1.1: No pristine source', err)
        self.assertIn('--skip-unavailable', err)
        self.assertEqual('nova-sio test: 0 passed, 0 failed, 0 skipped; '
                         'releases: 0 passed, 1 failed, 0 skipped',
                         out.strip().splitlines()[-1])

    def test_flag_lists_the_skip_in_the_summary(self):
        code, out, _err = run_cli('test', '--no-record',
                                  '--skip-unavailable', '2015.1.1')
        self.assertEqual(0, code)
        last = out.strip().splitlines()[-2:]
        self.assertTrue(last[0].startswith(
            'SKIPPED 2015.1.1: No pristine source'), last)
        self.assertEqual('nova-sio test: 0 passed, 0 failed, 0 skipped; '
                         'releases: 0 passed, 0 failed, 1 skipped', last[1])

    def test_verify_fails_without_the_flag(self):
        code, out, _err = run_cli('verify', '2015.1.1')
        self.assertEqual(1, code)
        self.assertIn('\nSKIPPED 2015.1.1: no sdist of nova 2015.1.1 on '
                      'PyPI', out)
        self.assertEqual('FAILED: 1 release(s) without a reachable source '
                         '(2015.1.1); pass --skip-unavailable to list them '
                         'as skipped instead', out.strip().splitlines()[-1])

    def test_verify_flag_lists_the_skip(self):
        code, out, _err = run_cli('verify', '--skip-unavailable',
                                  '2015.1.1')
        self.assertEqual(0, code)
        self.assertIn('\nSKIPPED 2015.1.1: no sdist of nova 2015.1.1 on '
                      'PyPI', out)
        self.assertEqual('0 ok, 0 failed, 1 skipped',
                         out.strip().splitlines()[-1])

    def test_fetch_fails_without_the_flag(self):
        code, out, _err = run_cli('fetch', '-q', '2015.1.1')
        self.assertEqual(1, code)
        self.assertIn('FAILED: 1 release(s) without a reachable source',
                      out)
        code, out, _err = run_cli('fetch', '-q', '--skip-unavailable',
                                  '2015.1.1')
        self.assertEqual(0, code)
        self.assertIn('fetched 0 of 1', out)


class StatusTest(testtools.TestCase):
    """``status`` computes "verified" from the committed files."""

    def test_tampered_diff_is_not_verified(self):
        co = self.useFixture(ScratchCheckout(cache=False))
        code, out, _err = run_cli('status', '--offline', '--json')
        self.assertEqual(0, code)
        before = dict((d['version'], d['verified'])
                      for d in json.loads(out))
        verified = [v for v in sorted(before, key=releases.vkey)
                    if before[v]]
        self.assertGreaterEqual(len(verified), 2)
        edited, removed = verified[-1], verified[0]
        with open(co.diff_path(edited), 'ab') as f:
            f.write(b' ')
        os.unlink(co.diff_path(removed))
        code, out, _err = run_cli('status', '--offline', '--json')
        after = dict((d['version'], d['verified'])
                     for d in json.loads(out))
        changed = set(v for v in before if before[v] != after[v])
        self.assertEqual({edited, removed}, changed)
        self.assertFalse(after[edited])
        # The manifest still says it was verified: only the file tells.
        entry = emit.load_manifest()['releases'][edited]
        self.assertEqual(entry['diff_sha256'],
                         entry['verified_diff_sha256'])

    def test_verified_needs_a_recorded_verification(self):
        co = self.useFixture(ScratchCheckout(cache=False))
        entry = dict(emit.load_manifest()['releases'][VERSION])
        entry['diff_sha256'] = entry['verified_diff_sha256'] = \
            emit.util.sha256_file(co.diff_path(VERSION))
        self.assertTrue(cli.diff_verified(VERSION, entry))
        entry.pop('verified_diff_sha256')
        self.assertFalse(cli.diff_verified(VERSION, entry))


class ErrorRootTest(testtools.TestCase):

    def test_refusals_share_the_root(self):
        self.assertTrue(issubclass(testenv.DiffNotVerified,
                                   errors.NovaSioError))


class ScratchTmpTest(testtools.TestCase):

    def test_tmpdir_is_set_and_removed_with_what_was_left(self):
        env = {'PATH': '/bin'}
        with testenv.ScratchTmp(env) as path:
            self.assertEqual(path, env['TMPDIR'])
            self.assertTrue(os.path.isdir(path))
            # What Kilo's test_objectstore leaves behind at import.
            os.makedirs(os.path.join(path, 'test_oss-x', 'buckets'))
        self.assertFalse(os.path.exists(path))

    def test_removed_on_failure(self):
        env = {}
        try:
            with testenv.ScratchTmp(env) as path:
                raise RuntimeError('boom')
        except RuntimeError:
            pass
        self.assertFalse(os.path.exists(path))
