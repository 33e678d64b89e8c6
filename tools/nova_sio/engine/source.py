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

"""Pristine upstream Nova: PyPI sdist first, else a git tag, else local.

Everything is cached under :func:`nova_sio.paths.cache_dir`, never in the
repository.  Each fetched release is kept as its original archive (an
sdist, or a ``git archive`` tarball) plus an ``origin.json`` describing
where it came from; trees are extracted from the archive on demand.

The cache is not trusted: :func:`origin_facts` gives the origin's own
identity of a release (PyPI's sha256 digest of the sdist, or the tag's
commit and tree ids), which the manifest records, and
:func:`check_archive` re-hashes a cached archive against that record.
"""

import hashlib
import io
import json
import os
import shutil
import tarfile
import threading
import time
import urllib.parse

import requests

from nova_sio import errors
from nova_sio import paths
from nova_sio import util

DEFAULT_GIT_URL = 'https://opendev.org/openstack/nova'
PYPI_URL = 'https://pypi.org/pypi/nova'
_LOCK = threading.Lock()
_MIRROR_LOCK = paths.cache_lock('nova-git')
_MIRROR_FAILURES = {}


def git_url():
    """Return the upstream git URL (``NOVA_SIO_GIT_URL`` overrides)."""
    return os.environ.get('NOVA_SIO_GIT_URL') or DEFAULT_GIT_URL


def pypi_url():
    """Return the PyPI JSON API base (``NOVA_SIO_PYPI_URL`` overrides)."""
    return os.environ.get('NOVA_SIO_PYPI_URL') or PYPI_URL


def _src_dir(version):
    return os.path.join(paths.cache_dir(), 'sources', version)


def origin(version):
    """Return the recorded origin of a cached release, or ``None``."""
    path = os.path.join(_src_dir(version), 'origin.json')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def pypi_index(max_age=3600, offline=False):
    """Return ``{version: sdist info}`` from PyPI, cached for an hour.

    :param max_age: seconds a cached answer stays valid.
    :param offline: never ask PyPI; use what is cached.
    :returns: a dict, empty when PyPI is unreachable and nothing cached.
    """
    cache = os.path.join(paths.cache_dir(), 'pypi-nova.json')
    fresh = (os.path.exists(cache) and
             time.time() - os.path.getmtime(cache) < max_age)
    if not fresh and not offline:
        try:
            resp = requests.get(pypi_url() + '/json', timeout=(10, 60))
            resp.raise_for_status()
            base = resp.url
            data = resp.json()
            index = {}
            for version, files in data.get('releases', {}).items():
                for f in files:
                    if f.get('packagetype') == 'sdist':
                        index[version] = {
                            'url': urllib.parse.urljoin(base, f['url']),
                            'sha256': f.get('digests', {}).get('sha256'),
                            'filename': f['filename']}
            util.write_atomic(cache, util.dump_json(index))
        except (requests.RequestException, ValueError, KeyError):
            pass
    if os.path.exists(cache):
        with open(cache) as f:
            return json.load(f)
    return {}


def git_mirror(update=False):
    """Return the path of a bare mirror of the upstream git repository.

    :param update: fetch new tags into an existing mirror.
    :raises errors.SourceUnavailable: when it cannot be cloned.
    """
    path = os.path.join(paths.cache_dir(), 'nova.git')
    with _MIRROR_LOCK:
        with _LOCK:
            failed = _MIRROR_FAILURES.get(git_url())
        if failed and not os.path.isdir(path):
            raise errors.SourceUnavailable(version='(git)', reason=failed)
        if not os.path.isdir(path):
            tmp = '%s.tmp-%d-%d' % (path, os.getpid(), threading.get_ident())
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                util.run(['git', 'clone', '--quiet', '--bare', git_url(),
                          tmp], isolated=False, timeout=3600,
                         env={'GIT_HTTP_LOW_SPEED_LIMIT': '1000',
                              'GIT_HTTP_LOW_SPEED_TIME': '60'})
            except errors.CommandFailed as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                reason = 'cannot clone %s: %s' % (
                    git_url(), exc.kwargs.get('output', exc))
                # Asked once per run: every later release gets the same
                # answer instead of another slow attempt.
                with _LOCK:
                    _MIRROR_FAILURES[git_url()] = reason
                raise errors.SourceUnavailable(version='(git)',
                                               reason=reason)
            os.rename(tmp, path)
        elif update:
            util.run(['git', 'fetch', '--quiet', '--tags', git_url()],
                     cwd=path, isolated=False, check=False, timeout=3600)
    return path


def git_tags():
    """Return the tag names of the upstream git remote (``[]`` if none).

    Uses ``git ls-remote`` so that nothing is cloned just to list them.
    """
    try:
        proc = util.run(['git', 'ls-remote', '--tags', '--refs', git_url()],
                        isolated=False, timeout=120)
    except errors.CommandFailed:
        return []
    tags = []
    for line in proc.stdout.decode().splitlines():
        ref = line.split('\t')[-1]
        if ref.startswith('refs/tags/'):
            tags.append(ref[len('refs/tags/'):])
    return tags


def _record(version, kind, where, archive, sha256, **facts):
    info = {'version': version, 'kind': kind, 'source': where,
            'archive': os.path.basename(archive), 'archive_sha256': sha256}
    info.update(facts)
    util.write_atomic(os.path.join(_src_dir(version), 'origin.json'),
                      util.dump_json(info))
    return info


def _fetch_pypi(version, index):
    entry = index.get(version)
    if not entry:
        return None, 'no sdist of nova %s on PyPI' % version
    dest = os.path.join(_src_dir(version), entry['filename'])
    try:
        resp = requests.get(entry['url'], timeout=(10, 300))
        resp.raise_for_status()
    except requests.RequestException as exc:
        return None, 'PyPI download failed: %s' % exc
    data = resp.content
    digest = util.sha256_bytes(data)
    if entry.get('sha256') and digest != entry['sha256']:
        return None, ('PyPI sdist sha256 %s does not match the index %s'
                      % (digest, entry['sha256']))
    util.write_atomic(dest, data)
    return _record(version, 'sdist', entry['url'], dest, digest,
                   pypi_sha256=entry.get('sha256')), None


def _fetch_git(version):
    try:
        mirror = git_mirror()
    except errors.SourceUnavailable as exc:
        return None, exc.kwargs.get('reason', str(exc))
    ref = 'refs/tags/%s' % version
    proc = util.run(['git', 'rev-parse', '--verify', '--quiet',
                     ref + '^{commit}'], cwd=mirror, check=False)
    if proc.returncode != 0:
        git_mirror(update=True)
        proc = util.run(['git', 'rev-parse', '--verify', '--quiet',
                         ref + '^{commit}'], cwd=mirror, check=False)
        if proc.returncode != 0:
            return None, 'tag %s not found at %s' % (version, git_url())
    commit = proc.stdout.decode().strip()
    tree = util.run(['git', 'rev-parse', commit + '^{tree}'],
                    cwd=mirror).stdout.decode().strip()
    prefix = 'nova-%s/' % version
    arch = util.run(['git', 'archive', '--format=tar', '--prefix=' + prefix,
                     commit], cwd=mirror)
    dest = os.path.join(_src_dir(version), 'nova-%s.git.tar' % version)
    util.write_atomic(dest, arch.stdout)
    if git_tree_id(dest) != tree:
        return None, ('git archive of %s does not reproduce its tree %s'
                      % (version, tree))
    info = _record(version, 'git', '%s@%s' % (git_url(), commit), dest,
                   util.sha256_bytes(arch.stdout), commit=commit,
                   tree=tree)
    return info, None


def _fetch_local(version, path):
    dest_dir = _src_dir(version)
    os.makedirs(dest_dir, exist_ok=True)
    if os.path.isdir(path):
        buf = io.BytesIO()
        root = os.path.abspath(path)
        with tarfile.open(fileobj=buf, mode='w') as tar:
            tar.add(root, arcname='nova-%s' % version)
        data = buf.getvalue()
        dest = os.path.join(dest_dir, 'nova-%s.local.tar' % version)
    else:
        with open(path, 'rb') as f:
            data = f.read()
        dest = os.path.join(dest_dir, os.path.basename(path))
    util.write_atomic(dest, data)
    return _record(version, 'local', os.path.abspath(path), dest,
                   util.sha256_bytes(data))


def fetch(version, local=None, prefer=('sdist', 'git'), index=None):
    """Make the pristine source of ``version`` available in the cache.

    :param version: a final Nova version.
    :param local: a local tarball or tree to use instead.
    :param prefer: the order of remote sources to try.
    :param index: a PyPI index from :func:`pypi_index` (fetched if None).
    :returns: the origin dict.
    :raises errors.SourceUnavailable: with every reason tried.
    """
    with paths.cache_lock('source-%s' % version):
        return _fetch_locked(version, local, prefer, index)


def _fetch_locked(version, local, prefer, index):
    info = origin(version)
    if info and local is None and os.path.exists(
            os.path.join(_src_dir(version), info['archive'])):
        return info
    if local is not None:
        return _fetch_local(version, local)
    reasons = []
    for kind in prefer:
        if kind == 'sdist':
            if index is None:
                index = pypi_index()
            info, why = _fetch_pypi(version, index)
        else:
            info, why = _fetch_git(version)
        if info:
            return info
        reasons.append(why)
    raise errors.SourceUnavailable(version=version,
                                   reason='; '.join(reasons))


def _archive_path(version):
    info = origin(version)
    if info is None:
        raise errors.SourceUnavailable(
            version=version, reason='not fetched; run "nova-sio fetch %s"'
            % version)
    return os.path.join(_src_dir(version), info['archive'])


def _members(tar):
    """Map 'nova/...' relative paths to tar members, stripping the top."""
    result = {}
    for m in tar.getmembers():
        parts = m.name.split('/', 1)
        if len(parts) == 2 and parts[1]:
            result[parts[1]] = m
    return result


def listing(version):
    """Return the set of file paths (relative to the source root)."""
    with tarfile.open(_archive_path(version)) as tar:
        return set(p for p, m in _members(tar).items() if m.isfile())


def read_files(version, wanted):
    """Return ``{path: bytes}`` for the wanted paths present upstream.

    :param version: a fetched version.
    :param wanted: relative paths such as ``nova/virt/libvirt/driver.py``.
    """
    wanted = set(wanted)
    result = {}
    with tarfile.open(_archive_path(version)) as tar:
        for rel, member in _members(tar).items():
            if rel in wanted and member.isfile():
                result[rel] = tar.extractfile(member).read()
    return result


def extract(version, dest, only=None):
    """Extract the source tree (or only some files) into ``dest``.

    :param version: a fetched version.
    :param dest: a directory that becomes the source root.
    :param only: optional iterable of relative paths to extract.
    """
    only = set(only) if only is not None else None
    os.makedirs(dest, exist_ok=True)
    with tarfile.open(_archive_path(version)) as tar:
        for rel, member in _members(tar).items():
            if only is not None and rel not in only:
                continue
            if not (member.isfile() or member.isdir() or member.issym()):
                continue
            target = os.path.join(dest, rel)
            if not os.path.abspath(target).startswith(
                    os.path.abspath(dest) + os.sep):
                continue
            if member.isdir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if member.issym():
                if os.path.lexists(target):
                    os.unlink(target)
                os.symlink(member.linkname, target)
                continue
            with open(target, 'wb') as out:
                out.write(tar.extractfile(member).read())
            os.chmod(target, member.mode & 0o777 | 0o600)


def full_tree(version):
    """Return a cached full extraction of ``version`` (for tests).

    :returns: the source root path.
    """
    dest = os.path.join(paths.cache_dir(), 'trees', version)
    stamp = os.path.join(dest, '.nova-sio-extracted')
    with paths.cache_lock('tree-%s' % version):
        if not os.path.exists(stamp):
            shutil.rmtree(dest, ignore_errors=True)
            extract(version, dest)
            with open(stamp, 'w') as f:
                f.write(version)
    return dest


def _git_blob_id(data):
    return hashlib.sha1(b'blob %d\0' % len(data) + data).digest()


def _git_tree_object(node):
    """Return the binary id of the git tree of a nested dict."""
    entries = []
    for name, value in node.items():
        if isinstance(value, dict):
            # git orders a directory as if its name ended with '/'.
            entries.append((name + b'/', b'40000 ' + name + b'\0' +
                            _git_tree_object(value)))
        else:
            mode, blob = value
            entries.append((name, mode + b' ' + name + b'\0' + blob))
    body = b''.join(entry for _key, entry in sorted(entries))
    return hashlib.sha1(b'tree %d\0' % len(body) + body).digest()


def git_tree_id(archive):
    """Return the git tree id of the files in a tarball (top dir stripped).

    It equals the tree id of the commit a ``git archive`` tarball was made
    from, whatever git version wrote the tar bytes.

    :param archive: path of a tar file with one top-level directory.
    :raises errors.SourceTampered: on a member git cannot hold.
    """
    root = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split('/', 1)
            rel = parts[1].strip('/') if len(parts) == 2 else ''
            if not rel or member.isdir():
                continue
            if member.isfile():
                data = tar.extractfile(member).read()
                mode = b'100755' if member.mode & 0o100 else b'100644'
            elif member.issym():
                data = member.linkname.encode('utf-8', 'surrogateescape')
                mode = b'120000'
            else:
                raise errors.SourceTampered(
                    version=os.path.basename(archive),
                    reason='%s holds %s, which git cannot hold' % (
                        archive, member.name))
            names = [n.encode('utf-8', 'surrogateescape')
                     for n in rel.split('/')]
            node = root
            for name in names[:-1]:
                node = node.setdefault(name, {})
            node[names[-1]] = (mode, _git_blob_id(data))
    return _git_tree_object(root).hex()


def _archive_commit(archive):
    """Return the commit id ``git archive`` wrote in the pax header."""
    with tarfile.open(archive) as tar:
        return tar.pax_headers.get('comment')


def origin_facts(version):
    """Return the origin's identity of a fetched release, for the manifest.

    ``{'kind': 'sdist', 'archive': name, 'sha256': PyPI's digest}`` for a
    PyPI sdist, ``{'kind': 'git', 'archive': name, 'commit': id, 'tree':
    id, 'sha256': archive sha256}`` for a git tag (the tree id decides;
    the sha256 is a shortcut valid for the same git tar writer), and
    ``{'kind': 'local', 'archive': name, 'sha256': digest}`` otherwise.

    :param version: a fetched version.
    """
    info = origin(version)
    if info is None:
        raise errors.SourceUnavailable(
            version=version, reason='not fetched; run "nova-sio fetch %s"'
            % version)
    kind = info.get('kind')
    facts = {'kind': kind, 'archive': info['archive']}
    if kind == 'sdist':
        digest = info.get('pypi_sha256')
        if not digest:
            # Fetched before the digest was recorded: PyPI's index says.
            entry = pypi_index(offline=True).get(version) or {}
            if entry.get('filename') == info['archive']:
                digest = entry.get('sha256')
        facts['sha256'] = digest or info['archive_sha256']
    elif kind == 'git':
        commit = info.get('commit') or info['source'].rsplit('@', 1)[-1]
        tree = info.get('tree')
        if not tree:
            # Fetched before the ids were recorded: ask the mirror (or,
            # without one, the archive) once, and record the answer.
            mirror = os.path.join(paths.cache_dir(), 'nova.git')
            proc = util.run(['git', 'rev-parse', '--verify', '--quiet',
                             commit + '^{tree}'], check=False,
                            cwd=mirror) if os.path.isdir(mirror) else None
            tree = proc.stdout.decode().strip() if proc and \
                proc.returncode == 0 else git_tree_id(_archive_path(version))
            info.update(commit=commit, tree=tree)
            util.write_atomic(os.path.join(_src_dir(version), 'origin.json'),
                              util.dump_json(info))
        facts.update(commit=commit, tree=tree,
                     sha256=info['archive_sha256'])
    else:
        facts['sha256'] = info['archive_sha256']
    return facts


def same_origin(recorded, facts):
    """Whether two :func:`origin_facts` name the same upstream source.

    :param recorded: the facts the manifest holds.
    :param facts: the facts of the cache now.
    """
    keys = ('kind', 'commit', 'tree') if recorded.get('kind') == 'git' \
        else ('kind', 'sha256')
    return all(recorded.get(k) == facts.get(k) for k in keys)


def check_archive(version, recorded):
    """Re-hash the cached archive of ``version`` against the manifest.

    :param version: a fetched version.
    :param recorded: the ``origin`` facts the manifest holds (``None``
        when it holds none).
    :returns: a list of problems naming the file and both hashes (empty
        when the archive is the recorded one).
    """
    if not recorded:
        return ['the manifest records no origin hash for nova %s; emit it '
                'from a trusted fetch' % version]
    info = origin(version) or {}
    path = os.path.join(_src_dir(version), info.get('archive') or
                        recorded.get('archive', '?'))
    if not os.path.isfile(path):
        return ['%s: missing from the cache' % path]
    if info.get('kind') != recorded.get('kind'):
        return ['%s: a %s archive, the manifest records a %s origin' % (
            path, info.get('kind'), recorded.get('kind'))]
    actual = util.sha256_file(path)
    if actual == recorded.get('sha256'):
        return []
    if recorded.get('kind') != 'git':
        return ['%s: sha256 %s, manifest records %s (%s)' % (
            path, actual, recorded.get('sha256'),
            'PyPI digest' if recorded.get('kind') == 'sdist' else
            'origin')]
    # Another git may write other tar bytes for the same tree.
    try:
        tree = git_tree_id(path)
        commit = _archive_commit(path)
    except (tarfile.TarError, errors.SourceTampered) as exc:
        return ['%s: unreadable as a git archive: %s' % (path, exc)]
    problems = []
    if tree != recorded.get('tree'):
        problems.append('%s: git tree %s, manifest records tree %s of '
                        'commit %s' % (path, tree, recorded.get('tree'),
                                       recorded.get('commit')))
    if commit != recorded.get('commit'):
        problems.append('%s: made from commit %s, manifest records %s' % (
            path, commit, recorded.get('commit')))
    return problems
