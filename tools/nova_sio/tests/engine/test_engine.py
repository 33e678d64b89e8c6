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

"""Release data, era map, and emit/verify/rebase on real Nova sources."""

import io
import json
import os
import shutil
import tarfile
from unittest import mock

import fixtures
import testtools

from nova_sio import cli
from nova_sio.engine import emit
from nova_sio.engine import series as series_mod
from nova_sio.engine import seriesedit
from nova_sio.engine import source
from nova_sio.engine import workrepo
from nova_sio import errors
from nova_sio import paths
from nova_sio import releases
from nova_sio.tests import cachefix
from nova_sio import util

NEWEST_E6 = '33.0.2'


class ReleasesTest(testtools.TestCase):

    def test_version_order_across_schemes(self):
        versions = ['33.0.2', '2015.1.4', '12.0.0', '2015.1.0', '9.0.0']
        self.assertEqual(['9.0.0', '2015.1.0', '2015.1.4', '12.0.0',
                          '33.0.2'], sorted(versions, key=releases.vkey))

    def test_final_only(self):
        self.assertTrue(releases.is_final('2015.1.0'))
        self.assertFalse(releases.is_final('2014.2.4'))
        self.assertFalse(releases.is_final('16.0.0.0rc1'))
        self.assertFalse(releases.is_final('newton-eol'))

    def test_known_releases_cover_range(self):
        known = releases.load_known()
        self.assertIn('2015.1.0', known)
        self.assertIn('33.0.2', known)
        self.assertEqual('kilo', known['2015.1.2'].series)
        self.assertNotIn('16.0.0.0b1', known)

    def test_new_release_discovered(self):
        all_ = releases.all_releases([('99.0.0', 'pypi'),
                                      ('99.0.0rc1', 'pypi')])
        self.assertEqual('99.0.0', all_[-1].version)
        self.assertEqual('unknown', all_[-1].series)
        self.assertEqual({'pypi'}, all_[-1].origins)

    def test_every_release_has_an_era(self):
        eras = releases.load_eras()
        missing = [r.version for r in releases.all_releases()
                   if releases.era_of(r.version, eras) is None]
        self.assertEqual([], missing)

    def test_overlapping_eras_rejected(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        path = os.path.join(tmp, 'eras.txt')
        with open(path, 'w') as f:
            f.write('A 12.0.0 14.0.0 a\nB 13.0.0 * b\n')
        exc = self.assertRaises(errors.SeriesError, releases.load_eras,
                                path)
        self.assertIn('overlap', str(exc))

    def test_every_era_series_exists(self):
        for era in releases.load_eras():
            s = series_mod.Series(era.series)
            self.assertTrue(s.entries, era.series)


class RealSourceTest(testtools.TestCase):
    """Integration on a real Nova sdist from PyPI (cached)."""

    def setUp(self):
        super(RealSourceTest, self).setUp()
        try:
            source.fetch(NEWEST_E6)
        except errors.SourceUnavailable as exc:
            self.skipTest(str(exc))

    def test_render_is_deterministic_and_verifies(self):
        one, facts = emit.render(NEWEST_E6)
        # A hostile user git config must not change a byte.
        self.useFixture(fixtures.EnvironmentVariable('NOVA_SIO_CACHE',
                                                     paths.cache_dir()))
        home = self.useFixture(fixtures.TempDir()).path
        with open(os.path.join(home, '.gitconfig'), 'w') as f:
            f.write('[diff]\n\tnoprefix = true\n\tmnemonicPrefix = true\n'
                    '\talgorithm = histogram\n\tcontext = 7\n'
                    '[core]\n\tabbrev = 7\n')
        self.useFixture(fixtures.EnvironmentVariable('HOME', home))
        two, _facts = emit.render(NEWEST_E6)
        self.assertEqual(one, two)
        self.assertEqual(facts['diff_sha256'],
                         emit.util.sha256_bytes(one))
        self.assertIn(b'\ndiff --git a/nova/virt/libvirt/imagebackend.py '
                      b'b/nova/virt/libvirt/imagebackend.py\n', one)
        self.assertNotIn(b'nova/tests/', one)
        root = self.useFixture(fixtures.TempDir()).path
        files = emit.diffs.parse(one)
        source.extract(NEWEST_E6, root,
                       only=[f.old_path for f in files if f.old_path])
        self.assertEqual({'dry_run': [], 'positions': [], 'roundtrip': []},
                         emit.verify_tree(root, one))

    def test_diff_for_other_release_rejected(self):
        data, _facts = emit.render(NEWEST_E6)
        try:
            source.fetch('26.0.0')
        except errors.SourceUnavailable as exc:
            self.skipTest(str(exc))
        root = self.useFixture(fixtures.TempDir()).path
        files = emit.diffs.parse(data)
        source.extract('26.0.0', root,
                       only=[f.old_path for f in files if f.old_path])
        report = emit.verify_tree(root, data)
        self.assertTrue(report['positions'])
        self.assertTrue(report['dry_run'])

    def test_committed_diff_verifies(self):
        if not os.path.exists(emit.diff_path(NEWEST_E6)):
            self.skipTest('not emitted')
        report = emit.verify(NEWEST_E6, check_fresh=True)
        self.assertTrue(report['ok'], report)

    def test_rebase_without_churn(self):
        scratch = self.useFixture(fixtures.TempDir()).path
        root = paths.project_root()
        for name in ('releases', 'nova'):
            shutil.copytree(os.path.join(root, name),
                            os.path.join(scratch, name))
        self.useFixture(fixtures.EnvironmentVariable('NOVA_SIO_ROOT',
                                                     scratch))
        cache = self.useFixture(fixtures.TempDir()).path
        real_cache = paths.cache_dir()
        # Share the fetched sources, not the rebase state.
        os.symlink(os.path.join(real_cache, 'sources'),
                   os.path.join(cache, 'sources'))
        self.useFixture(fixtures.EnvironmentVariable('NOVA_SIO_CACHE',
                                                     cache))
        era = releases.era_of(NEWEST_E6)
        before = {}
        sdir = os.path.join(scratch, 'releases', 'series', era.series)
        for fn in os.listdir(sdir):
            with open(os.path.join(sdir, fn), 'rb') as f:
                before[fn] = f.read()
        # The oldest release of the era whose source can be had (PyPI has
        # gaps; git may be unreachable).
        target = None
        for r in releases.all_releases():
            if era.contains(r.version) and r.version != NEWEST_E6:
                try:
                    source.fetch(r.version)
                except errors.SourceUnavailable:
                    continue
                target = r.version
                break
        if target is None:
            self.skipTest('no other release of era %s is available'
                          % era.name)
        result = seriesedit.rebase(era.series, target)
        self.assertTrue(result['results'])
        self.assertEqual({'applied'}, set(r for _p, r in
                                          result['results']))
        self.assertEqual({'unchanged'}, set(result['saved'].values()))
        after = {}
        for fn in os.listdir(sdir):
            with open(os.path.join(sdir, fn), 'rb') as f:
                after[fn] = f.read()
        self.assertEqual(before, after)
        self.assertRaises(errors.NoRebaseInProgress,
                          seriesedit.rebase_continue)


class RebaseConflictTest(testtools.TestCase):
    """A patch that cannot be carried stops the rebase; abort undoes it."""

    def setUp(self):
        super(RebaseConflictTest, self).setUp()
        try:
            source.fetch(NEWEST_E6)
        except errors.SourceUnavailable as exc:
            self.skipTest(str(exc))
        self.scratch = self.useFixture(fixtures.TempDir()).path
        root = paths.project_root()
        for name in ('releases', 'nova'):
            shutil.copytree(os.path.join(root, name),
                            os.path.join(self.scratch, name))
        real_cache = paths.cache_dir()
        cache = self.useFixture(fixtures.TempDir()).path
        os.symlink(os.path.join(real_cache, 'sources'),
                   os.path.join(cache, 'sources'))
        self.useFixture(fixtures.EnvironmentVariable('NOVA_SIO_ROOT',
                                                     self.scratch))
        self.useFixture(fixtures.EnvironmentVariable('NOVA_SIO_CACHE',
                                                     cache))
        self.era = releases.era_of(NEWEST_E6)
        self.sdir = os.path.join(self.scratch, 'releases', 'series',
                                 self.era.series)
        first = series_mod.Series(self.era.series).entries[0][0]
        path = os.path.join(self.sdir, first)
        with open(path, 'rb') as f:
            data = f.read()
        # A removed line that no release has: neither a direct nor a
        # 3-way application can succeed.
        lines = data.split(b'\n')
        for i, line in enumerate(lines):
            if line.startswith(b'-') and not line.startswith(b'---'):
                lines[i] = line + b'  # not upstream'
                break
        with open(path, 'wb') as f:
            f.write(b'\n'.join(lines))
        self.before = self.snapshot()

    def snapshot(self):
        result = {}
        for fn in sorted(os.listdir(self.sdir)):
            with open(os.path.join(self.sdir, fn), 'rb') as f:
                result[fn] = f.read()
        return result

    def test_conflict_stops_and_abort_restores(self):
        exc = self.assertRaises(errors.SeriesConflict, seriesedit.rebase,
                                self.era.series, NEWEST_E6)
        self.assertIn('does not apply to Nova %s' % NEWEST_E6, str(exc))
        self.assertRaises(errors.RebaseInProgress, seriesedit.rebase,
                          self.era.series, NEWEST_E6)
        state = seriesedit.rebase_abort()
        self.assertEqual(self.era.series, state['series'])
        self.assertFalse(os.path.exists(state['path']))
        self.assertEqual(self.before, self.snapshot())
        self.assertRaises(errors.NoRebaseInProgress,
                          seriesedit.rebase_abort)


def _repack(archive, rel, change):
    """Rewrite a tarball with one member's content changed.

    :param archive: the tar file (compressed as its name says).
    :param rel: the member path below the top directory.
    :param change: ``callable(bytes) -> bytes``.
    """
    mode = 'w:gz' if archive.endswith('.gz') else 'w'
    tmp = archive + '.new'
    with tarfile.open(archive) as src:
        dst = tarfile.open(tmp, mode, format=tarfile.PAX_FORMAT,
                           pax_headers=src.pax_headers)
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() \
                else None
            if member.isfile() and member.name.split('/', 1)[-1] == rel:
                data = change(data)
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None
                        else None)
        dst.close()
    os.replace(tmp, archive)


class SourceTrustTest(testtools.TestCase):
    """The cache cannot change what a release is verified against."""

    def setUp(self):
        super(SourceTrustTest, self).setUp()
        try:
            source.fetch(NEWEST_E6)
        except errors.SourceUnavailable as exc:
            self.skipTest(str(exc))
        self.useFixture(cachefix.ScratchProject())
        # A private copy of the archive: these tests alter it.
        self.cache = self.useFixture(cachefix.SeededCache([NEWEST_E6],
                                                          link=False))
        self.manifest = emit.load_manifest()
        self.entry = self.manifest['releases'][NEWEST_E6]
        self.assertEqual('sdist', self.entry['origin']['kind'])
        # The scratch runtime may be newer than the committed diff.
        emit.emit(NEWEST_E6, self.manifest)
        self.report = emit.verify(NEWEST_E6, self.manifest)
        self.assertTrue(self.report['ok'], self.report)
        info = source.origin(NEWEST_E6)
        self.archive = os.path.join(self.cache.path, 'sources', NEWEST_E6,
                                    info['archive'])
        with open(emit.diff_path(NEWEST_E6), 'rb') as f:
            self.diff = f.read()

    def tamper_archive(self):
        """Alter driver.py in the cached sdist, and make the cache lie."""
        _repack(self.archive, 'nova/virt/libvirt/driver.py',
                lambda data: data + b'\nEVIL = True\n')
        digest = util.sha256_file(self.archive)
        info = source.origin(NEWEST_E6)
        info['archive_sha256'] = info['pypi_sha256'] = digest
        util.write_atomic(os.path.join(os.path.dirname(self.archive),
                                       'origin.json'), util.dump_json(info))
        return digest

    def test_clean_cache_passes_the_source_gate(self):
        self.assertEqual([], self.report['gates']['source'])
        self.assertEqual([], self.report['gates']['fresh_emit'])

    def test_tampered_archive_fails_the_source_gate(self):
        recorded = self.entry['origin']['sha256']
        digest = self.tamper_archive()
        self.assertNotEqual(recorded, digest)
        report = emit.verify(NEWEST_E6, self.manifest)
        self.assertFalse(report['ok'])
        self.assertEqual(['%s: sha256 %s, manifest records %s (PyPI digest)'
                          % (self.archive, digest, recorded)],
                         report['gates']['source'])

    def test_tampered_archive_cannot_be_emitted(self):
        before = json.dumps(self.manifest, sort_keys=True)
        digest = self.tamper_archive()
        exc = self.assertRaises(errors.SourceTampered, emit.emit,
                                NEWEST_E6, self.manifest)
        self.assertIn(digest, str(exc))
        self.assertIn(self.entry['origin']['sha256'], str(exc))
        self.assertEqual(before, json.dumps(self.manifest, sort_keys=True))
        with open(emit.diff_path(NEWEST_E6), 'rb') as f:
            self.assertEqual(self.diff, f.read())

    def test_tampered_pristine_extraction(self):
        rel = 'nova/virt/libvirt/driver.py'
        recorded = self.entry['pristine_sha256'][rel]
        path = os.path.join(self.cache.path, 'pristine', NEWEST_E6, rel)
        with open(path, 'ab') as f:
            f.write(b'\nEVIL = True\n')
        digest = util.sha256_file(path)
        report = emit.verify(NEWEST_E6, self.manifest)
        self.assertIn('%s: sha256 %s, manifest has %s' % (
            rel, digest, recorded), report['gates']['source'])
        exc = self.assertRaises(errors.SourceMismatch, emit.emit,
                                NEWEST_E6, self.manifest)
        self.assertIn(digest, str(exc))
        self.assertEqual(recorded, self.entry['pristine_sha256'][rel])

    def test_manifest_without_origin_fails_the_source_gate(self):
        del self.entry['origin']
        report = emit.verify(NEWEST_E6, self.manifest)
        self.assertFalse(report['ok'])
        self.assertIn('the manifest records no origin hash for nova %s'
                      % NEWEST_E6, ' '.join(report['gates']['source']))

    def test_diff_unlike_a_fresh_emit_fails_the_fresh_emit_gate(self):
        edited = self.diff.replace(b'# Apply from the directory',
                                   b'# Apply it from the directory', 1)
        self.assertNotEqual(self.diff, edited)
        util.write_atomic(emit.diff_path(NEWEST_E6), edited)
        report = emit.verify(NEWEST_E6, self.manifest)
        self.assertFalse(report['ok'])
        gates = report['gates']
        self.assertEqual(['committed diff differs from a fresh emit; run '
                          '"nova-sio emit %s"' % NEWEST_E6],
                         gates['fresh_emit'])
        for gate in ('dry_run', 'positions', 'roundtrip', 'source'):
            self.assertEqual([], gates[gate], gate)


class GitArchiveTrustTest(testtools.TestCase):
    """A git tag's archive is checked by its tree id, not its bytes."""

    VERSION = '99.0.0'

    def setUp(self):
        super(GitArchiveTrustTest, self).setUp()
        cache = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable('NOVA_SIO_CACHE',
                                                     cache))
        repo = self.useFixture(fixtures.TempDir()).path
        workrepo.git(['init', '--quiet'], repo)
        files = {'nova/__init__.py': b'', 'nova/b/x.py': b'x = 1\n',
                 'nova/b-c.py': b'dash\n', 'nova/b.py': b'dot\n',
                 'tools/run.sh': b'#!/bin/sh\n', 'setup.cfg': b'[x]\n'}
        for rel, data in files.items():
            full = os.path.join(repo, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, 'wb') as f:
                f.write(data)
        os.chmod(os.path.join(repo, 'tools/run.sh'), 0o755)
        os.symlink('nova/b.py', os.path.join(repo, 'link'))
        workrepo.git(['add', '--all'], repo)
        workrepo.git(['commit', '--quiet', '-m', 'x'], repo)
        self.commit = workrepo.git(['rev-parse', 'HEAD'],
                                   repo).stdout.decode().strip()
        self.tree = workrepo.git(['rev-parse', 'HEAD^{tree}'],
                                 repo).stdout.decode().strip()
        dest = os.path.join(cache, 'sources', self.VERSION)
        os.makedirs(dest)
        self.archive = os.path.join(dest, 'nova-%s.git.tar' % self.VERSION)
        data = workrepo.git(['archive', '--format=tar', '--prefix=nova-%s/'
                             % self.VERSION, self.commit], repo).stdout
        with open(self.archive, 'wb') as f:
            f.write(data)
        util.write_atomic(os.path.join(dest, 'origin.json'), util.dump_json(
            {'version': self.VERSION, 'kind': 'git', 'archive':
             os.path.basename(self.archive), 'source': 'x@' + self.commit,
             'archive_sha256': util.sha256_bytes(data)}))
        self.recorded = source.origin_facts(self.VERSION)

    def test_tree_id_of_the_archive_is_git_s(self):
        self.assertEqual(self.tree, source.git_tree_id(self.archive))
        self.assertEqual({'kind': 'git', 'archive': os.path.basename(
            self.archive), 'commit': self.commit, 'tree': self.tree,
            'sha256': util.sha256_file(self.archive)}, self.recorded)
        self.assertEqual([], source.check_archive(self.VERSION,
                                                  self.recorded))

    def test_other_tar_bytes_of_the_same_tree_pass(self):
        # Another git may write other bytes; the content is what counts.
        _repack(self.archive, 'setup.cfg', lambda data: data)
        self.assertNotEqual(self.recorded['sha256'],
                            util.sha256_file(self.archive))
        self.assertEqual([], source.check_archive(self.VERSION,
                                                  self.recorded))

    def test_altered_git_archive_names_both_trees(self):
        _repack(self.archive, 'nova/b/x.py', lambda data: b'x = 2\n')
        tree = source.git_tree_id(self.archive)
        self.assertNotEqual(self.tree, tree)
        self.assertEqual(['%s: git tree %s, manifest records tree %s of '
                          'commit %s' % (self.archive, tree, self.tree,
                                         self.commit)],
                         source.check_archive(self.VERSION, self.recorded))


class CliTest(testtools.TestCase):

    def run_cli(self, *argv):
        out = io.StringIO()
        err = io.StringIO()
        with mock.patch('sys.stdout', out), mock.patch('sys.stderr', err):
            rc = cli.main(list(argv))
        return rc, out.getvalue(), err.getvalue()

    def test_unknown_version_is_a_clear_error(self):
        rc, _out, err = self.run_cli('emit', '--offline', '1.2.3')
        self.assertEqual(1, rc)
        self.assertIn('1.2.3 is not a known final Nova release', err)

    def test_releases_json_offline(self):
        rc, out, _err = self.run_cli('releases', '--offline', '--json')
        self.assertEqual(0, rc)
        data = emit.json.loads(out)
        versions = [d['version'] for d in data]
        self.assertEqual('2015.1.0', versions[0])
        self.assertIn('33.0.2', versions)
        self.assertTrue(all(d['era'] for d in data))

    def test_unreachable_source_is_a_listed_skip(self):
        self.useFixture(cachefix.NoSource())
        rc, out, err = self.run_cli('fetch', '--offline', '2015.1.1')
        self.assertEqual(1, rc)
        self.assertIn('--skip-unavailable', out)
        rc, out, err = self.run_cli('fetch', '--offline',
                                    '--skip-unavailable', '2015.1.1')
        self.assertEqual(0, rc)
        self.assertIn('skipped 1 release(s)', out)
        self.assertIn('2015.1.1: no sdist of nova 2015.1.1 on PyPI', out)
        self.assertIn('cannot clone file:///nonexistent/nova.git', out)
