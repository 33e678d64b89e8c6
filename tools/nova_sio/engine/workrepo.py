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

"""The git work repository in the cache.

It holds, for every release, a parentless commit ``refs/upstream/<v>``
with the pristine tracked files, and a branch ``release/<v>`` on top of
it with one commit per series patch plus one commit adding the runtime
files.  Only git plumbing and ``git am --3way`` are used; the repository
never touches the user's git configuration.
"""

import os
import shutil
import tempfile
import threading

from nova_sio.engine import diffs
from nova_sio.engine import series as series_mod
from nova_sio.engine import source
from nova_sio import errors
from nova_sio import paths
from nova_sio import util

DIFF_OPTS = [
    '-c', 'core.quotePath=true', '-c', 'diff.noprefix=false',
    '-c', 'diff.mnemonicPrefix=false', '-c', 'diff.algorithm=myers',
    '-c', 'diff.renames=false', '-c', 'diff.suppressBlankEmpty=false',
    '-c', 'diff.interHunkContext=0', '-c', 'core.autocrlf=false',
]
DIFF_ARGS = ['--no-color', '--no-ext-diff', '--no-textconv', '--no-renames',
             '--full-index', '--unified=%d' % diffs.CONTEXT_LINES,
             '--src-prefix=a/',
             '--dst-prefix=b/']
# Orders every change to the work repository's refs, worktrees and
# configuration, across threads and processes.
_LOCK = paths.cache_lock('work')
_UPSTREAM_MEMO = {}


def git(args, cwd, **kwargs):
    """Run git isolated from user configuration.

    :param args: git arguments (after ``git``).
    :param cwd: repository or worktree path.
    """
    return util.run(['git'] + DIFF_OPTS + list(args), cwd=cwd, **kwargs)


def canonical_diff(cwd, old, new=None, cached=False):
    """Return the canonical diff bytes between two commits (or the index).

    :param cwd: repository path.
    :param old: the old commit.
    :param new: the new commit (``None`` with ``cached``).
    :param cached: diff ``old`` against the index.
    """
    args = ['diff'] + DIFF_ARGS
    if cached:
        args += ['--cached', old]
    else:
        args += [old, new]
    return git(args, cwd).stdout


def _repo_ready(path):
    return os.path.isdir(os.path.join(path, '.git', 'rr-cache'))


def _init_repo(path):
    """Create the work repository at ``path`` (under the repo lock).

    It is made complete in a private directory and renamed into place, so
    that no thread or process ever sees it half-configured.  ``rr-cache``
    is created here: git creates it lazily on the first commit and dies
    ("could not create directory") when two commits race to create it.
    """
    gitdir = os.path.join(path, '.git')
    if os.path.isdir(gitdir):
        target = path
    else:
        if os.path.lexists(path):
            # A leftover of an interrupted first run: never a repository.
            shutil.rmtree(path, ignore_errors=True)
        target = '%s.tmp-%d-%d' % (path, os.getpid(), threading.get_ident())
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        git(['init', '--quiet', '-b', 'main'], target)
    for key, value in (('rerere.enabled', 'true'),
                       ('rerere.autoUpdate', 'true'),
                       ('gc.auto', '0'),
                       ('core.autocrlf', 'false')):
        git(['config', key, value], target)
    os.makedirs(os.path.join(target, '.git', 'rr-cache'), exist_ok=True)
    if target != path:
        os.rename(target, path)


def repo_path():
    """Return the work repository, creating it on first use.

    Safe when threads and processes sharing the cache race to create it.
    """
    path = os.path.join(paths.cache_dir(), 'work')
    if not _repo_ready(path):
        with _LOCK:
            if not _repo_ready(path):
                _init_repo(path)
    return path


def _pristine_dir(version):
    return os.path.join(paths.cache_dir(), 'pristine', version)


def pristine_files(version, tracked=None):
    """Return ``{path: bytes}`` of the tracked files of ``version``.

    Extracted once from the fetched archive, then read from the cache.

    :param version: a fetched version.
    :param tracked: the paths to return (default: all tracked files).
    """
    tracked = sorted(tracked or series_mod.tracked_files())
    pdir = _pristine_dir(version)
    stamp = os.path.join(pdir, '.tracked')
    key = '\n'.join(tracked)
    result = {}
    # Several releases of an era share a base release: extract it once,
    # and never read it while another process replaces it.
    with paths.cache_lock('pristine-%s' % version):
        _extract_pristine(version, pdir, stamp, key, tracked)
        for rel in tracked:
            full = os.path.join(pdir, rel)
            if os.path.exists(full):
                with open(full, 'rb') as f:
                    result[rel] = f.read()
    return result


def _extract_pristine(version, pdir, stamp, key, tracked):
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == key:
                return
    tmp = '%s.tmp-%d-%d' % (pdir, os.getpid(), threading.get_ident())
    shutil.rmtree(tmp, ignore_errors=True)
    source.extract(version, tmp, only=tracked)
    names = sorted(source.listing(version))
    with open(os.path.join(tmp, '.listing'), 'w') as f:
        f.write('\n'.join(names) + '\n')
    with open(os.path.join(tmp, '.tracked'), 'w') as f:
        f.write(key)
    shutil.rmtree(pdir, ignore_errors=True)
    os.rename(tmp, pdir)


def upstream_listing(version):
    """Return the set of all file paths in the upstream release."""
    pristine_files(version)
    with paths.cache_lock('pristine-%s' % version):
        with open(os.path.join(_pristine_dir(version), '.listing')) as f:
            return set(line.strip() for line in f if line.strip())


def _write_tree(repo, files):
    """Write ``{path: bytes}`` as a tree, returning its id."""
    index = tempfile.NamedTemporaryFile(prefix='nova-sio-index-',
                                        delete=False)
    index.close()
    os.unlink(index.name)
    env = {'GIT_INDEX_FILE': index.name}
    try:
        entries = []
        for rel, data in sorted(files.items()):
            blob = git(['hash-object', '-w', '--stdin'], repo,
                       input=data).stdout.decode().strip()
            entries.append('100644 %s\t%s' % (blob, rel))
        git(['update-index', '--index-info'], repo,
            input=('\n'.join(entries) + '\n').encode(), env=env)
        return git(['write-tree'], repo, env=env).stdout.decode().strip()
    finally:
        if os.path.exists(index.name):
            os.unlink(index.name)


def _ref(repo, name):
    proc = git(['rev-parse', '--verify', '--quiet', name], repo, check=False)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def upstream_commit(version):
    """Return the commit of the pristine tracked files of ``version``.

    :param version: a fetched version.
    """
    repo = repo_path()
    files = pristine_files(version)
    key = util.sha256_bytes(b''.join(
        rel.encode() + b'\0' + util.sha256_bytes(data).encode()
        for rel, data in sorted(files.items())))
    memo = _UPSTREAM_MEMO.get((repo, version))
    if memo and memo[0] == key:
        return memo[1]
    with _LOCK:
        tree = _write_tree(repo, files)
        ref = 'refs/upstream/%s' % version
        existing = _ref(repo, ref)
        if existing and _ref(repo, existing + '^{tree}') == tree:
            _UPSTREAM_MEMO[(repo, version)] = (key, existing)
            return existing
        commit = git(['commit-tree', tree, '-m', 'upstream nova %s'
                      % version], repo).stdout.decode().strip()
        git(['update-ref', ref, commit], repo)
        _UPSTREAM_MEMO[(repo, version)] = (key, commit)
        return commit


class Worktree(object):
    """A temporary worktree of the work repository.

    :param commit: the commit to check out (detached).
    :param keep: do not delete the directory on exit.
    :param path: use this directory instead of a temporary one.
    """

    def __init__(self, commit, keep=False, path=None):
        self.repo = repo_path()
        self.commit = commit
        self.keep = keep
        self.path = path

    def __enter__(self):
        if self.path is None:
            self.path = tempfile.mkdtemp(prefix='nova-sio-wt-')
            os.rmdir(self.path)
        with _LOCK:
            git(['worktree', 'add', '--quiet', '--detach', self.path,
                 self.commit], self.repo)
        return self

    def __exit__(self, *exc):
        if not self.keep:
            self.remove()

    def remove(self):
        with _LOCK:
            git(['worktree', 'remove', '--force', self.path], self.repo,
                check=False)
            shutil.rmtree(self.path, ignore_errors=True)
            git(['worktree', 'prune'], self.repo, check=False)

    def git(self, args, **kwargs):
        return git(args, self.path, **kwargs)

    def head(self):
        return self.git(['rev-parse', 'HEAD']).stdout.decode().strip()


def am(wt, patch_file, series_name, version):
    """Apply one patch mail with ``git am --3way`` in ``wt``.

    :returns: ``'applied'`` or ``'empty'`` (already upstream).
    :raises errors.SeriesConflict: when it does not apply; the worktree
        is left mid-``am`` for the caller to abort or resolve.
    """
    proc = wt.git(['am', '--3way', '--keep-cr', '--quiet',
                   '--committer-date-is-author-date', patch_file],
                  check=False)
    if proc.returncode == 0:
        return 'applied'
    out = (proc.stdout + proc.stderr).decode('utf-8', 'replace')
    if 'No changes' in out or 'already applied' in out:
        wt.git(['am', '--skip'], check=False)
        return 'empty'
    raise errors.SeriesConflict(
        patch=os.path.basename(patch_file), series=series_name,
        version=version, reason=out.strip()[-1500:])


def build_release(version, series, with_tests=False):
    """Create ``release/<version>``: upstream + series + runtime files.

    :param version: a fetched version.
    :param series: a :class:`nova_sio.engine.series.Series`.
    :param with_tests: also add our test files (for test trees); the
        branch is then ``release-tests/<version>``.
    :returns: ``(upstream commit, patched commit, per-patch results)``.
    """
    base_commit = upstream_commit(version)
    repo = repo_path()
    runtime = series_mod.runtime_files(with_tests=with_tests)
    key = util.sha256_bytes('\0'.join(
        [base_commit, series.name, series.digest(), str(with_tests)] +
        ['%s:%s' % (k, util.sha256_bytes(v))
         for k, v in sorted(runtime.items())]).encode())
    branch = '%s/%s' % ('release-tests' if with_tests else 'release',
                        version)
    cached = _ref(repo, 'refs/cache/%s' % key)
    if cached:
        with _LOCK:
            git(['update-ref', 'refs/heads/' + branch, cached], repo)
        return base_commit, cached, [(f, 'cached') for f, _b in
                                     series.entries]
    for base in series.bases():
        if base != version:
            source.fetch(base)
            upstream_commit(base)
    results = []
    with Worktree(base_commit) as wt:
        for filename, _base in series.entries:
            try:
                results.append((filename, am(wt, series.patch_path(
                    filename), series.name, version)))
            except errors.SeriesConflict:
                wt.git(['am', '--abort'], check=False)
                raise
        listing = upstream_listing(version)
        for rel, data in sorted(runtime.items()):
            if rel in listing:
                raise errors.SeriesError(
                    series=series.name, reason='runtime file %s already '
                    'exists in upstream nova %s' % (rel, version))
            full = os.path.join(wt.path, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, 'wb') as f:
                f.write(data)
        wt.git(['add', '--all', '--', 'nova'])
        wt.git(['commit', '--quiet', '--allow-empty', '-m',
                'nova-sio runtime files'])
        head = wt.head()
    with _LOCK:
        git(['update-ref', 'refs/heads/' + branch, head], repo)
        git(['update-ref', 'refs/cache/%s' % key, head], repo)
    return base_commit, head, results
