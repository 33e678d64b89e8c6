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

"""``nova-sio install`` / ``revert`` on real Nova trees.

Each tree is a subset of a real pristine Nova release (the files the
release diff touches, the package ``__init__`` and the metadata),
extracted once per release and copied for every test. Every refusal must
leave the tree byte-identical, and a revert must restore it exactly.
"""

import atexit
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import fixtures
import testtools

from nova_sio import cli
from nova_sio.engine import diffs
from nova_sio.engine import emit
from nova_sio.engine import source
from nova_sio.operator import install as install_mod
from nova_sio.operator import tree as tree_mod
from nova_sio import paths

VERSION = '33.0.2'
OTHER_VERSION = '26.0.0'
META = ('PKG-INFO', 'nova.egg-info/PKG-INFO', 'nova/__init__.py')
_GOLDEN = {}
NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']


def release_diff(version):
    with open(emit.diff_path(version), 'rb') as f:
        return f.read()


def golden_tree(version):
    """Return a cached subset extraction of pristine ``version``."""
    if version not in _GOLDEN:
        source.fetch(version)
        files = diffs.parse(release_diff(version))
        wanted = set(META) | set(f.old_path for f in files if f.old_path)
        root = tempfile.mkdtemp(prefix='nova-sio-golden-')
        atexit.register(shutil.rmtree, root, True)
        source.extract(version, root, only=wanted)
        _GOLDEN[version] = root
    return _GOLDEN[version]


def snapshot(root):
    """Return ``{relative path: sha256}`` of every file and directory."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            rel = os.path.relpath(os.path.join(dirpath, d), root)
            result[rel + '/'] = 'dir'
        for fn in filenames:
            full = os.path.join(dirpath, fn)
            with open(full, 'rb') as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            result[os.path.relpath(full, root)] = digest
    return result


def first_hunk(version):
    """Return ``(path, hunk)`` of the first modified file's first hunk."""
    for f in diffs.parse(release_diff(version)):
        if f.old_path and f.new_path and f.hunks:
            return f.old_path, f.hunks[0]
    raise AssertionError('no modified file in the %s diff' % version)


class OperatorTestCase(testtools.TestCase):

    version = VERSION

    def setUp(self):
        super(OperatorTestCase, self).setUp()
        self.useFixture(fixtures.Timeout(120, gentle=True))
        # No source is an error, not a skip: this suite proves install.
        golden = golden_tree(self.version)
        self.base = self.useFixture(fixtures.TempDir()).path
        self.root = os.path.join(self.base, 'site-packages')
        shutil.copytree(golden, self.root, symlinks=True)
        self.nova = os.path.join(self.root, 'nova')

    def cli(self, *argv):
        """Run ``nova-sio`` in-process; return ``(code, JSON or text)``."""
        out, err = io.StringIO(), io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', err))
        code = cli.main(list(argv))
        text = out.getvalue()
        if '--json' in argv:
            return code, json.loads(text)
        return code, text + err.getvalue()

    def install(self, *extra):
        return self.cli('install', '--nova-dir', self.nova, '--json',
                        *extra)

    def revert(self, *extra):
        return self.cli('revert', '--nova-dir', self.nova, '--json',
                        *extra)

    def edit(self, rel, func):
        path = os.path.join(self.root, rel)
        with open(path, 'rb') as f:
            lines = f.read().split(b'\n')
        func(lines)
        with open(path, 'wb') as f:
            f.write(b'\n'.join(lines))

    def assertRefused(self, before, *extra):
        code, doc = self.install(*extra)
        self.assertEqual(1, code)
        self.assertFalse(doc['ok'])
        self.assertEqual(before, snapshot(self.root))
        return doc


class InstallPristineTest(OperatorTestCase):

    def test_install_then_revert_is_byte_identical(self):
        before = snapshot(self.root)
        code, doc = self.install()
        self.assertEqual(0, code, doc)
        self.assertEqual('exact', doc['plan']['mode'])
        self.assertEqual(VERSION, doc['plan']['version'])
        self.assertIn('metadata', doc['plan']['version_source'])
        self.assertTrue(os.path.isdir(os.path.join(
            self.nova, 'virt', 'libvirt', 'sio')))
        # The tree now equals the release diff applied to pristine files.
        files = diffs.parse(release_diff(VERSION))
        for f in files:
            with open(os.path.join(self.root, f.path), 'rb') as fh:
                data = fh.read()
            if f.is_new:
                self.assertEqual(doc['state']['created'][f.path],
                                 hashlib.sha256(data).hexdigest())
            else:
                self.assertEqual(
                    doc['state']['modified'][f.path]['sha256_after'],
                    hashlib.sha256(data).hexdigest())
                self.assertNotEqual(before[f.path],
                                    hashlib.sha256(data).hexdigest())
        code, doc = self.revert()
        self.assertEqual(0, code, doc)
        self.assertEqual(before, snapshot(self.root))

    def test_install_removes_bytecode_on_revert(self):
        before = snapshot(self.root)
        self.assertEqual(0, self.install()[0])
        # Nova ran and Python cached the bytecode of our new modules.
        sio = os.path.join(self.nova, 'virt', 'libvirt', 'sio')
        subprocess.check_call([sys.executable, '-m', 'compileall', '-q',
                               sio])
        self.assertTrue(os.path.isdir(os.path.join(sio, '__pycache__')))
        self.assertEqual(0, self.revert()[0])
        self.assertEqual(before, snapshot(self.root))

    def test_dry_run_changes_nothing(self):
        before = snapshot(self.root)
        code, doc = self.install('--dry-run')
        self.assertEqual(0, code)
        self.assertTrue(doc['dry_run'])
        self.assertEqual('exact', doc['plan']['mode'])
        self.assertEqual(before, snapshot(self.root))

    def test_already_installed_is_refused(self):
        self.assertEqual(0, self.install()[0])
        after = snapshot(self.root)
        doc = self.assertRefused(after)
        self.assertIn('already installed', doc['error'])
        self.assertIn('nova-sio revert', doc['error'])

    def test_patched_by_hand_is_refused(self):
        subprocess.run(['patch', '-p', '2', '--batch', '-d', self.nova,
                        '-i', emit.diff_path(VERSION)], check=True,
                       stdout=subprocess.DEVNULL)
        before = snapshot(self.root)
        doc = self.assertRefused(before)
        self.assertIn('already patched', doc['error'])
        self.assertEqual(1, self.revert()[0])
        self.assertEqual(before, snapshot(self.root))

    def test_failed_verification_rolls_back(self):
        # An interpreter that rejects everything: byte-compiling fails
        # after patch has already changed the tree.
        fake = os.path.join(self.base, 'python-broken')
        with open(fake, 'w') as f:
            f.write('#!/bin/sh\necho "SyntaxError: broken" >&2\nexit 1\n')
        os.chmod(fake, 0o755)
        before = snapshot(self.root)
        doc = self.assertRefused(before, '--python', fake)
        self.assertIn('do not compile', doc['error'])
        self.assertIn('restored unchanged', doc['error'])

    def test_revert_refuses_files_changed_since_install(self):
        before = snapshot(self.root)
        self.assertEqual(0, self.install()[0])
        rel, _hunk = first_hunk(VERSION)
        self.edit(rel, lambda lines: lines.append(b'# operator edit'))
        edited = snapshot(self.root)
        code, doc = self.revert()
        self.assertEqual(1, code)
        self.assertEqual([rel], doc['details']['changed'])
        self.assertEqual(edited, snapshot(self.root))
        code, doc = self.revert('--force')
        self.assertEqual(0, code)
        self.assertEqual(before, snapshot(self.root))

    def test_revert_after_a_package_upgrade(self):
        before = snapshot(self.root)
        self.assertEqual(0, self.install()[0])
        # The package manager puts new (here: the old) pristine files
        # over the patched ones and leaves our added files alone.
        golden = golden_tree(VERSION)
        for rel in install_mod.load_state(
                tree_mod.NovaTree(self.nova))['modified']:
            shutil.copyfile(os.path.join(golden, rel),
                            os.path.join(self.root, rel))
        code, doc = self.revert()
        self.assertEqual(1, code)
        self.assertIn('--after-upgrade', doc['error'])
        code, doc = self.revert('--after-upgrade')
        self.assertEqual(0, code, doc)
        self.assertEqual(before, snapshot(self.root))

    def test_after_upgrade_refused_while_hooks_remain(self):
        self.assertEqual(0, self.install()[0])
        after = snapshot(self.root)
        code, doc = self.revert('--after-upgrade')
        self.assertEqual(1, code)
        self.assertIn('plain revert', doc['error'])
        self.assertEqual(after, snapshot(self.root))

    def test_revert_without_install_is_refused(self):
        before = snapshot(self.root)
        code, doc = self.revert()
        self.assertEqual(1, code)
        self.assertIn('nothing to revert', doc['error'])
        self.assertEqual(before, snapshot(self.root))

    def test_no_diff_for_the_version(self):
        before = snapshot(self.root)
        doc = self.assertRefused(before, '--version', '1.0.0',
                                 '--force-version')
        self.assertIn('no diff for Nova 1.0.0', doc['error'])
        self.assertIn(VERSION, doc['details']['available'])


class InstallLocalChangesTest(OperatorTestCase):

    def test_unrelated_changes_near_hunks_merge(self):
        rel, hunk = first_hunk(VERSION)
        at = max(1, hunk.old_start - 4)
        backport = [b'# distribution backport, line %d' % i
                    for i in range(3)]

        def add(lines):
            lines[at - 1:at - 1] = backport
        self.edit(rel, add)
        before = snapshot(self.root)
        code, doc = self.install()
        self.assertEqual(0, code, doc)
        self.assertEqual('merged', doc['plan']['mode'])
        self.assertEqual([rel], [d['file'] for d in doc['plan']['differed']])
        with open(os.path.join(self.root, rel), 'rb') as f:
            merged = f.read()
        for line in backport:
            self.assertIn(line, merged)
        added = [text for _t, text, _nl in hunk.lines if _t == b'+']
        for line in added:
            self.assertIn(line, merged)
        code, doc = self.revert()
        self.assertEqual(0, code, doc)
        self.assertEqual(before, snapshot(self.root))

    def test_every_file_shifted(self):
        files = [f.old_path for f in diffs.parse(release_diff(VERSION))
                 if f.old_path and f.new_path]
        for rel in files:
            self.edit(rel, lambda lines: lines.insert(
                1, b'# vendor: carried patch marker'))
        before = snapshot(self.root)
        code, doc = self.install('--diff-out',
                                 os.path.join(self.base, 'tree.diff'))
        self.assertEqual(0, code, doc)
        self.assertEqual('merged', doc['plan']['mode'])
        self.assertEqual(sorted(files), sorted(
            d['file'] for d in doc['plan']['differed']))
        with open(os.path.join(self.base, 'tree.diff'), 'rb') as f:
            tree_diff = f.read()
        # Every hunk moved down by exactly the one added line.
        old = [(f.path, [h.old_start for h in f.hunks])
               for f in diffs.parse(release_diff(VERSION)) if not f.is_new]
        new = [(f.path, [h.old_start - 1 for h in f.hunks])
               for f in diffs.parse(tree_diff) if not f.is_new]
        self.assertEqual(old, new)
        self.assertEqual(0, self.revert()[0])
        self.assertEqual(before, snapshot(self.root))

    def test_changes_inside_hunks_are_refused(self):
        files = diffs.parse(release_diff(VERSION))
        target = None
        for f in files:
            for h in f.hunks if not f.is_new else ():
                pos = h.old_start
                for tag, text, _nl in h.lines:
                    if tag == b'-':
                        target = (f.old_path, pos, text)
                        break
                    if tag == b' ':
                        pos += 1
                if target:
                    break
            if target:
                break
        self.assertIsNotNone(target, 'the diff removes no line')
        rel, lineno, text = target

        def change(lines):
            self.assertEqual(text, lines[lineno - 1])
            lines[lineno - 1] = text + b'  # local'
        self.edit(rel, change)
        before = snapshot(self.root)
        doc = self.assertRefused(before)
        conflicts = doc['details']['conflicts']
        self.assertEqual([rel], [c['file'] for c in conflicts])
        self.assertEqual('line %d' % lineno, conflicts[0]['installed'])
        self.assertIn('%s line %d' % (rel, lineno), doc['error'])
        self.assertEqual(1, len(conflicts[0]['hunks']), conflicts[0])
        self.assertIn(conflicts[0]['hunks'][0], doc['error'])

    def test_context_line_changed_merges_and_is_reported(self):
        # The first line of a hunk is context three lines away from our
        # change: git merge-file keeps both, and the plan says so.
        rel, hunk = first_hunk(VERSION)
        self.assertEqual(b' ', hunk.lines[0][0])
        name = 'hunk 1 @@ -%d,%d +%d,%d @@' % (
            hunk.old_start, hunk.old_len, hunk.new_start, hunk.new_len)

        def change(lines):
            lines[hunk.old_start - 1] += b'  # vendor'
        self.edit(rel, change)
        before = snapshot(self.root)
        code, doc = self.install()
        self.assertEqual(0, code, doc)
        self.assertEqual('merged', doc['plan']['mode'])
        self.assertEqual([[name]], [d['hunk_regions_changed']
                                    for d in doc['plan']['differed']])
        self.assertIn('%s %s' % (rel, name), ' '.join(doc['plan']['notes']))
        self.assertEqual(0, self.revert()[0])
        self.assertEqual(before, snapshot(self.root))

    def test_without_metadata_changes_outside_regions_merge(self):
        # Nothing vouches for the version, but every hunk region is
        # intact: the regions speak for the release.
        os.unlink(os.path.join(self.root, 'PKG-INFO'))
        shutil.rmtree(os.path.join(self.root, 'nova.egg-info'))
        rel, _hunk = first_hunk(VERSION)
        self.edit(rel, lambda lines: lines.insert(1, b'# vendor'))
        code, doc = self.install('--version', VERSION)
        self.assertEqual(0, code, doc)
        self.assertEqual('merged', doc['plan']['mode'])
        self.assertIsNone(doc['plan']['package'])

    def test_without_metadata_a_changed_region_is_another_release(self):
        os.unlink(os.path.join(self.root, 'PKG-INFO'))
        shutil.rmtree(os.path.join(self.root, 'nova.egg-info'))
        rel, hunk = first_hunk(VERSION)

        def change(lines):
            lines[hunk.old_start - 1] += b'  # vendor'
        self.edit(rel, change)
        before = snapshot(self.root)
        doc = self.assertRefused(before, '--version', VERSION)
        self.assertIn('do not look like Nova %s' % VERSION, doc['error'])
        self.assertEqual(1, len(doc['details']['hunk_regions_changed']))


class InstallWrongVersionTest(OperatorTestCase):

    version = OTHER_VERSION

    def test_metadata_contradicts_version(self):
        before = snapshot(self.root)
        doc = self.assertRefused(before, '--version', VERSION)
        self.assertIn('says Nova %s' % OTHER_VERSION, doc['error'])

    def test_files_of_another_release(self):
        before = snapshot(self.root)
        doc = self.assertRefused(before, '--version', VERSION,
                                 '--force-version')
        self.assertTrue(doc['details']['wrong_version'])
        self.assertIn(OTHER_VERSION, doc['error'])

    def test_modified_tree_of_another_release(self):
        # Not byte-equal to any release we know: the drift from the
        # named release gives it away.
        rel, _hunk = first_hunk(OTHER_VERSION)
        self.edit(rel, lambda lines: lines.insert(0, b'# local'))
        before = snapshot(self.root)
        doc = self.assertRefused(before, '--version', VERSION,
                                 '--force-version')
        self.assertIn('do not look like Nova %s' % VERSION, doc['error'])
        self.assertIn('metadata says %s' % OTHER_VERSION, doc['error'])

    def test_no_metadata_and_wrong_version(self):
        os.unlink(os.path.join(self.root, 'PKG-INFO'))
        shutil.rmtree(os.path.join(self.root, 'nova.egg-info'))
        before = snapshot(self.root)
        doc = self.assertRefused(before, '--version', VERSION)
        self.assertIn('not %s' % VERSION, doc['error'])
        code, doc = self.install()
        self.assertEqual(1, code)
        self.assertIn('give --version', doc['error'])


class ReadOnlyTreeTest(OperatorTestCase):

    def setUp(self):
        super(ReadOnlyTreeTest, self).setUp()
        if os.geteuid() != 0:
            self.skipTest('needs root (chattr, setpriv)')
        # Readable by everyone, like a system site-packages.
        subprocess.check_call(['chmod', '-R', 'a+rX', self.base])

    def test_immutable_tree_is_refused(self):
        # Root ignores permission bits, so the package directory is made
        # immutable: nothing can be created in it, even by root.
        proc = subprocess.run(['chattr', '+i', self.nova],
                              stderr=subprocess.PIPE)
        if proc.returncode != 0:
            self.skipTest('chattr +i unsupported: %s' % proc.stderr)
        self.addCleanup(subprocess.call, ['chattr', '-i', self.nova])
        before = snapshot(self.root)
        doc = self.assertRefused(before)
        self.assertIn('cannot write to %s' % self.nova, doc['error'])

    def _as_nobody(self, *argv):
        """Run ``nova-sio`` as user ``nobody``; return its JSON answer."""
        python, env = self._nobody_python()
        cmd = NOBODY + [python, '-m', 'nova_sio.cli']
        proc = subprocess.run(cmd + list(argv) + ['--json'], env=env,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        self.assertTrue(proc.stdout, proc.stderr)
        return proc.returncode, json.loads(proc.stdout.decode())

    def _nobody_python(self):
        """Find an interpreter that ``nobody`` can run the tools with.

        This interpreter may live in a private home directory; a system
        interpreter of the same version gets its package directories.
        """
        tools = os.path.dirname(os.path.dirname(os.path.abspath(
            cli.__file__)))
        site = [p for p in sys.path if p.endswith('site-packages')]
        # A project root of its own, readable by nobody: the release
        # files of a checkout may be private to its owner.
        project = os.path.join(self.base, 'project')
        os.makedirs(os.path.join(project, 'releases'), exist_ok=True)
        os.makedirs(os.path.join(project, 'nova'), exist_ok=True)
        for name in ('%s.diff' % VERSION, 'manifest.json'):
            shutil.copyfile(os.path.join(paths.releases_dir(), name),
                            os.path.join(project, 'releases', name))
        subprocess.check_call(['chmod', '-R', 'a+rX', project])
        env = dict(os.environ, HOME=self.base, NOVA_SIO_ROOT=project,
                   NOVA_SIO_CACHE=os.path.join(self.base, 'cache'))
        version = 'python%d.%d' % sys.version_info[:2]
        for cand in (sys.executable, shutil.which(version)):
            if not cand:
                continue
            env['PYTHONPATH'] = os.pathsep.join(
                [tools] + ([] if cand == sys.executable else site))
            probe = subprocess.run(
                NOBODY + [cand, '-c', 'import nova_sio.cli'], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if probe.returncode == 0:
                return cand, env
        self.skipTest('no Python that user nobody can run the tools with')

    def test_tree_owned_by_another_user(self):
        before = snapshot(self.root)
        code, doc = self._as_nobody('install', '--nova-dir', self.nova)
        self.assertEqual(1, code)
        self.assertIn('cannot write', doc['error'])
        self.assertEqual(before, snapshot(self.root))

    def test_dry_run_needs_no_write_access(self):
        before = snapshot(self.root)
        code, doc = self._as_nobody('install', '--nova-dir', self.nova,
                                    '--dry-run')
        self.assertEqual(0, code, doc)
        self.assertEqual('exact', doc['plan']['mode'])
        self.assertEqual(before, snapshot(self.root))

    def test_user_owned_copy_installs_and_reverts(self):
        subprocess.check_call(['chown', '-R', '65534:65534', self.root])
        before = snapshot(self.root)
        code, doc = self._as_nobody('install', '--nova-dir', self.nova)
        self.assertEqual(0, code, doc)
        self.assertEqual(65534, os.stat(os.path.join(
            self.nova, 'virt', 'libvirt', 'sio')).st_uid)
        code, doc = self._as_nobody('revert', '--nova-dir', self.nova)
        self.assertEqual(0, code, doc)
        self.assertEqual(before, snapshot(self.root))


class LocateTest(testtools.TestCase):

    def setUp(self):
        super(LocateTest, self).setUp()
        self.base = self.useFixture(fixtures.TempDir()).path

    def _site(self, meta_dir, meta_name, text):
        site = os.path.join(self.base, 'lib', 'python3.12', 'site-packages')
        os.makedirs(os.path.join(site, 'nova'))
        open(os.path.join(site, 'nova', '__init__.py'), 'w').close()
        os.makedirs(os.path.join(site, meta_dir))
        with open(os.path.join(site, meta_dir, meta_name), 'w') as f:
            f.write(text)
        return site

    def test_dist_info_version(self):
        site = self._site('nova-33.0.2.dist-info', 'METADATA',
                          'Metadata-Version: 2.1\nName: nova\n'
                          'Version: 33.0.2\n')
        tree = tree_mod.locate(os.path.join(site, 'nova'))
        self.assertEqual(('33.0.2', 'package metadata '
                          'nova-33.0.2.dist-info/METADATA'),
                         tree_mod.detect_version(tree))

    def test_distribution_suffix_is_dropped(self):
        site = self._site('nova-33.0.2+dfsg.egg-info', 'PKG-INFO',
                          'Name: nova\nVersion: 33.0.2+dfsg\n')
        tree = tree_mod.locate(os.path.join(site, 'nova'))
        self.assertEqual('33.0.2', tree_mod.detect_version(tree)[0])

    def test_other_distribution_is_ignored(self):
        site = self._site('nova_sio-1.0.dist-info', 'METADATA',
                          'Name: nova-sio\nVersion: 1.0\n')
        tree = tree_mod.locate(os.path.join(site, 'nova'))
        self.useFixture(fixtures.EnvironmentVariable('PBR_VERSION'))
        self.assertRaises(install_mod.errors.InstallError,
                          tree_mod.detect_version, tree)
        self.useFixture(fixtures.EnvironmentVariable('PBR_VERSION',
                                                     '34.0.0'))
        self.assertEqual(('34.0.0', 'PBR_VERSION'),
                         tree_mod.detect_version(tree))

    def test_python_of_a_virtualenv(self):
        site = self._site('x', 'y', '')
        bindir = os.path.join(self.base, 'bin')
        os.makedirs(bindir)
        py = os.path.join(bindir, 'python3.12')
        os.symlink(sys.executable, py)
        self.assertEqual(py, tree_mod.guess_python(
            os.path.join(site, 'nova')))

    def test_not_a_nova_package(self):
        self.assertRaises(install_mod.errors.InstallError,
                          tree_mod.locate, self.base)

    def test_found_through_python(self):
        site = self._site('x', 'y', '')
        wrapper = os.path.join(self.base, 'py')
        with open(wrapper, 'w') as f:
            f.write('#!/bin/sh\nPYTHONPATH=%s exec %s "$@"\n'
                    % (site, sys.executable))
        os.chmod(wrapper, 0o755)
        tree = tree_mod.locate(python=wrapper)
        self.assertEqual(os.path.join(site, 'nova'), tree.nova_dir)
        self.assertEqual(wrapper, tree.python)
