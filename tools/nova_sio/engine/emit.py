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

"""Emit and verify ``releases/<version>.diff``.

Emit regenerates a release's diff from its exact pristine source; verify
passes it through three independent gates:

1. GNU ``patch -p 2 --dry-run`` into a pristine nova package directory,
   where every output line must be ``checking file ...``;
2. every context and removed line of every hunk matches the pristine file
   at exactly its stated line (our own parser, not patch's heuristics);
3. a real apply into a scratch git tree, re-diffed with the emit options,
   must be byte-identical to the diff body.

It also checks the source (``source`` gate: the cached archive re-hashed
against the origin hash recorded in the manifest, and the pristine files
against their recorded sha256) and that the committed file equals a fresh
emit (``fresh_emit`` gate).
"""

import fcntl
import json
import os
import shutil
import tempfile
import threading

from nova_sio.engine import diffs
from nova_sio.engine import series as series_mod
from nova_sio.engine import source
from nova_sio.engine import workrepo
from nova_sio import errors
from nova_sio import paths
from nova_sio import releases as rel_mod
from nova_sio import util

ENGINE_VERSION = '1'
PATCH_ARGS = ['--batch', '--forward', '--fuzz=0',
              '--no-backup-if-mismatch', '--reject-file=-']


def diff_path(version):
    return os.path.join(paths.releases_dir(), '%s.diff' % version)


def manifest_path():
    return os.path.join(paths.releases_dir(), 'manifest.json')


def load_manifest():
    """Return the committed manifest (``{'releases': {...}}``)."""
    path = manifest_path()
    if not os.path.exists(path):
        return {'releases': {}}
    with open(path) as f:
        return json.load(f)


def save_manifest(manifest, versions=None):
    """Write the manifest, merging with concurrent writers.

    :param manifest: the in-memory manifest.
    :param versions: only these entries are written back (``None``: all);
        other entries keep what the file holds now, so parallel runs on
        different releases do not lose each other's updates.
    """
    path = manifest_path()
    with open(path + '.lock', 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            current = load_manifest()
            if versions is None:
                current = manifest
            else:
                for v in versions:
                    if v in manifest['releases']:
                        current['releases'][v] = manifest['releases'][v]
            util.write_atomic(path, util.dump_json(current))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def series_for(version, eras=None):
    """Return ``(era, Series)`` serving ``version``.

    :raises errors.SeriesError: when no era covers the version.
    """
    era = rel_mod.era_of(version, eras)
    if era is None:
        raise errors.SeriesError(series='(none)', reason='no era in '
                                 'releases/eras.txt covers %s' % version)
    return era, series_mod.Series(era.series)


def _header(version, era, series, pristine, src):
    lines = [
        'nova-sio: ScaleIO/PowerFlex ephemeral backend (images_type = sio)',
        'for OpenStack Nova %s (%s series).' % (
            version, rel_mod.series_of(version)),
        '',
        'Apply from the directory that contains the nova package:',
        '  patch -p 2 --dry-run -i %s.diff -d <site-packages>/nova' %
        version,
        '  patch -p 2 -i %s.diff -d <site-packages>/nova' % version,
        'or run "nova-sio install", which checks and applies it atomically.',
        '',
        'Upstream: nova %s from %s' % (version, src),
        'Era: %s, series: %s sha256 %s' % (era.name, series.name,
                                           series.digest()),
        'Runtime files: sha256 %s' % series_mod.runtime_digest(),
        'Engine: nova-sio emit format %s' % ENGINE_VERSION,
        'Pristine files (sha256):',
    ]
    for rel in sorted(pristine):
        lines.append('  %s %s' % (util.sha256_bytes(pristine[rel]), rel))
    return ('\n'.join('# ' + ln if ln else '#' for ln in lines) +
            '\n\n').encode()


def _source_label(version, manifest):
    """Pick the source named in the header: the manifest's, if recorded."""
    entry = manifest['releases'].get(version, {})
    if entry.get('source'):
        return entry['source']
    info = source.origin(version) or {}
    kind = info.get('kind', 'unknown')
    if kind == 'sdist':
        return 'PyPI sdist %s' % info.get('archive')
    if kind == 'git':
        return 'git tag %s' % version
    return '%s %s' % (kind, info.get('archive'))


def render(version, manifest=None, eras=None):
    """Build the diff bytes of ``version`` without writing anything.

    :returns: ``(diff bytes, facts dict for the manifest)``.
    """
    manifest = manifest or load_manifest()
    era, series = series_for(version, eras)
    source.fetch(version)
    base, head, _results = workrepo.build_release(version, series)
    repo = workrepo.repo_path()
    body = workrepo.canonical_diff(repo, base, head)
    files = diffs.parse(body)
    touched = [f.old_path for f in files if f.old_path]
    pristine = workrepo.pristine_files(version)
    pristine = dict((k, pristine[k]) for k in touched)
    src = _source_label(version, manifest)
    data = _header(version, era, series, pristine, src) + body
    origin = source.origin_facts(version)
    recorded = manifest['releases'].get(version, {}).get('origin')
    if recorded and source.same_origin(recorded, origin):
        origin = recorded
    facts = {
        'origin': origin,
        'series': rel_mod.series_of(version),
        'era': era.name,
        'patch_series': series.name,
        'series_sha256': series.digest(),
        'runtime_sha256': series_mod.runtime_digest(),
        'source': src,
        'pristine_sha256': dict((k, util.sha256_bytes(v))
                                for k, v in pristine.items()),
        'diff_sha256': util.sha256_bytes(data),
    }
    return data, facts


def emit(version, manifest=None, eras=None):
    """Write ``releases/<version>.diff`` and update ``manifest``.

    :returns: ``True`` when the file changed.
    """
    data, facts = render(version, manifest, eras)
    if manifest is not None:
        _check_trusted(version, manifest['releases'].get(version, {}),
                       facts)
    path = diff_path(version)
    changed = True
    if os.path.exists(path):
        with open(path, 'rb') as f:
            changed = f.read() != data
    if changed:
        util.write_atomic(path, data)
    if manifest is not None:
        entry = manifest['releases'].setdefault(version, {})
        verified = entry.get('verified_diff_sha256')
        entry.update(facts)
        if verified and verified != facts['diff_sha256']:
            entry.pop('verified_diff_sha256', None)
    return changed


def _check_trusted(version, entry, facts):
    """Refuse to let the cache rewrite what the manifest records.

    :param version: the release being emitted.
    :param entry: its manifest entry (empty on a first emit).
    :param facts: the facts of a fresh :func:`render`.
    :raises errors.SourceTampered: when the cached archive is not the
        recorded origin.
    :raises errors.SourceMismatch: when a pristine file differs from its
        recorded sha256.
    """
    recorded = entry.get('origin')
    if recorded:
        if not source.same_origin(recorded, facts['origin']):
            raise errors.SourceTampered(version=version, reason=(
                'the cache holds %s, the manifest records %s; delete the '
                'release\'s "origin" from releases/manifest.json only to '
                'move it to another upstream source' % (
                    json.dumps(facts['origin'], sort_keys=True),
                    json.dumps(recorded, sort_keys=True))))
        problems = source.check_archive(version, recorded)
        if problems:
            raise errors.SourceTampered(version=version,
                                        reason='; '.join(problems))
    for rel, digest in sorted(facts['pristine_sha256'].items()):
        expected = (entry.get('pristine_sha256') or {}).get(rel)
        if expected and expected != digest:
            raise errors.SourceMismatch(version=version, path=rel,
                                        actual=digest, expected=expected)


def _read_from(root):
    def read(rel):
        if rel is None:
            return None
        full = os.path.join(root, rel)
        if not os.path.isfile(full):
            return None
        with open(full, 'rb') as f:
            return f.read()
    return read


def gate_dry_run(pristine_root, diff_file):
    """Gate 1: GNU patch dry run, strict on its output.

    :param pristine_root: source root holding the pristine ``nova/``.
    :param diff_file: path of the diff.
    :returns: a list of problems.
    """
    pkg = os.path.join(pristine_root, 'nova')
    os.makedirs(pkg, exist_ok=True)
    proc = util.run(['patch', '-p', '2', '--dry-run'] + PATCH_ARGS +
                    ['-d', pkg, '-i', diff_file], check=False)
    out = proc.stdout + proc.stderr
    problems = ['patch: %s' % ln for ln in diffs.check_patch_output(out)]
    if proc.returncode != 0 and not problems:
        problems.append('patch exited with %d' % proc.returncode)
    return problems


def gate_positions(pristine_root, data):
    """Gate 2: exact line positions of every hunk."""
    try:
        files = diffs.parse(data)
    except diffs.DiffFormatError as exc:
        return ['malformed diff: %s' % exc]
    if not files:
        return ['the diff has no file sections']
    return diffs.check_positions(files, _read_from(pristine_root))


def _roundtrip_repo(scratch):
    """A bare repository for round trips, for its object store.

    One in the cache is shared by every round trip; where the cache cannot
    be written (an operator running as another user) a private one is made
    in ``scratch``.
    """
    try:
        path = os.path.join(paths.cache_dir(), 'roundtrip.git')
        if not os.path.isdir(path):
            with paths.cache_lock('roundtrip'):
                if not os.path.isdir(path):
                    # Complete before it is visible to other processes.
                    tmp = '%s.tmp-%d-%d' % (path, os.getpid(),
                                            threading.get_ident())
                    shutil.rmtree(tmp, ignore_errors=True)
                    workrepo.git(['init', '--quiet', '--bare', tmp],
                                 paths.cache_dir())
                    os.rename(tmp, path)
        if os.access(os.path.join(path, 'objects'), os.W_OK):
            return path
    except (OSError, errors.CommandFailed):
        pass
    path = os.path.join(scratch, 'objects.git')
    workrepo.git(['init', '--quiet', '--bare', path], scratch)
    return path


def gate_roundtrip(pristine_root, data, diff_file):
    """Gate 3: apply for real, re-diff, compare bytes with the body."""
    problems = []
    try:
        files = diffs.parse(data)
    except diffs.DiffFormatError as exc:
        return ['malformed diff: %s' % exc]
    scratch = tempfile.mkdtemp(prefix='nova-sio-rt-')
    index = os.path.join(scratch, '.index')
    work = os.path.join(scratch, 'tree')
    env = {'GIT_DIR': _roundtrip_repo(scratch), 'GIT_WORK_TREE': work,
           'GIT_INDEX_FILE': index}

    def git(args):
        return util.run(['git'] + workrepo.DIFF_OPTS + args, cwd=work,
                        env=env)

    try:
        for f in files:
            if f.old_path:
                src = os.path.join(pristine_root, f.old_path)
                if os.path.isfile(src):
                    dst = os.path.join(work, f.old_path)
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copyfile(src, dst)
        os.makedirs(os.path.join(work, 'nova'), exist_ok=True)
        git(['add', '--all', '.'])
        tree = git(['write-tree']).stdout.decode().strip()
        proc = util.run(['patch', '-p', '2'] + PATCH_ARGS +
                        ['-d', os.path.join(work, 'nova'), '-i',
                         diff_file], check=False)
        bad = diffs.check_patch_output(proc.stdout + proc.stderr,
                                       dry_run=False)
        problems += ['apply: %s' % ln for ln in bad]
        if proc.returncode != 0:
            problems.append('real apply exited with %d' % proc.returncode)
            return problems
        git(['add', '--all', '.'])
        again = git(['diff'] + workrepo.DIFF_ARGS + ['--cached',
                                                     tree]).stdout
        _pre, body = diffs.split_preamble(data)
        if again != body:
            problems.append('re-diff after a real apply differs from the '
                            'emitted body (%d vs %d bytes)' % (
                                len(again), len(body)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return problems


def verify_tree(pristine_root, data):
    """Run the three gates of ``data`` against a pristine source root.

    :param pristine_root: the directory holding the pristine ``nova/``.
    :param data: the diff bytes.
    :returns: ``{'dry_run': [...], 'positions': [...], 'roundtrip':
        [...]}``, each a list of problems (all empty when it passes).
    """
    fd, diff_file = tempfile.mkstemp(prefix='nova-sio-', suffix='.diff')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        return {
            'dry_run': gate_dry_run(pristine_root, diff_file),
            'positions': gate_positions(pristine_root, data),
            'roundtrip': gate_roundtrip(pristine_root, data, diff_file),
        }
    finally:
        os.unlink(diff_file)


def verify(version, manifest=None, eras=None, check_fresh=True):
    """Verify ``releases/<version>.diff``.

    :returns: a report dict with ``ok`` and per-gate problems.
    """
    manifest = manifest if manifest is not None else load_manifest()
    report = {'version': version, 'ok': False, 'gates': {}}
    path = diff_path(version)
    if not os.path.exists(path):
        report['error'] = 'not emitted'
        return report
    with open(path, 'rb') as f:
        data = f.read()
    source.fetch(version)
    try:
        files = diffs.parse(data)
    except diffs.DiffFormatError as exc:
        report['error'] = 'malformed: %s' % exc
        return report
    touched = set(f.old_path for f in files if f.old_path)
    touched |= set(f.new_path for f in files if f.new_path)
    root = tempfile.mkdtemp(prefix='nova-sio-pristine-')
    try:
        tracked = set(series_mod.tracked_files())
        if touched <= tracked | set(series_mod.runtime_files(True)):
            for rel, blob in workrepo.pristine_files(version).items():
                if rel in touched:
                    full = os.path.join(root, rel)
                    os.makedirs(os.path.dirname(full), exist_ok=True)
                    with open(full, 'wb') as f:
                        f.write(blob)
            listing = workrepo.upstream_listing(version)
            extra = [p for p in touched if p in listing and p not in
                     tracked]
            if extra:
                source.extract(version, root, only=extra)
        else:
            source.extract(version, root, only=touched)
        gates = verify_tree(root, data)
        entry = manifest['releases'].get(version, {})
        # The archive is re-hashed against the origin's own hash, and the
        # pristine files against the committed hashes: neither comes from
        # the cache alone.
        src_problems = source.check_archive(version, entry.get('origin'))
        recorded = entry.get('pristine_sha256') or {}
        for rel in sorted(set(f.old_path for f in files if f.old_path) -
                          set(recorded)):
            src_problems.append('%s: no pristine sha256 recorded in the '
                                'manifest' % rel)
        for rel, digest in sorted(recorded.items()):
            full = os.path.join(root, rel)
            actual = util.sha256_file(full) if os.path.exists(full) else \
                'missing'
            if actual != digest:
                src_problems.append('%s: sha256 %s, manifest has %s' % (
                    rel, actual, digest))
        gates['source'] = src_problems
        if check_fresh:
            try:
                fresh, _facts = render(version, manifest, eras)
                gates['fresh_emit'] = [] if fresh == data else [
                    'committed diff differs from a fresh emit; run '
                    '"nova-sio emit %s"' % version]
            except errors.NovaSioError as exc:
                gates['fresh_emit'] = [str(exc)]
        report['gates'] = gates
        report['ok'] = not any(gates.values())
        if report['ok'] and version in manifest['releases']:
            manifest['releases'][version]['verified_diff_sha256'] = \
                util.sha256_bytes(data)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return report
