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

"""Find an installed Nova: its package directory, version and Python.

An installed Nova is described by a :class:`NovaTree`: ``nova_dir`` is
the directory holding ``nova/__init__.py`` and ``root`` its parent (for
example ``site-packages``), which is the directory our diffs are relative
to once ``patch -p 2`` has stripped ``a/nova/``.
"""

import glob
import os
import re
import shutil
import sys

from nova_sio import errors
from nova_sio import util

# Runs under the tree's own interpreter (Python 2.7 or 3.x): print the
# directory of the nova package without importing it.
_FIND_NOVA = '\n'.join([
    'import sys',
    'try:',
    '    import importlib.util as u',
    '    s = u.find_spec("nova")',
    '    p = s and list(s.submodule_search_locations or [])',
    '    print(p[0] if p else "")',
    'except ImportError:',
    '    import imp',
    '    try:',
    '        print(imp.find_module("nova")[1])',
    '    except ImportError:',
    '        print("")',
])

# Compiles every file named on the command line without writing .pyc
# files into the tree (so a revert leaves nothing behind).
_COMPILE = '\n'.join([
    'import sys',
    'bad = 0',
    'for p in sys.argv[1:]:',
    '    f = open(p, "rb")',
    '    try:',
    '        src = f.read()',
    '    finally:',
    '        f.close()',
    '    try:',
    '        compile(src, p, "exec")',
    '    except SyntaxError as e:',
    '        bad += 1',
    '        sys.stdout.write("%s:%s: %s\\n" % (p, e.lineno, e.msg))',
    'sys.exit(1 if bad else 0)',
])

_VERSION_RE = re.compile(r'^Version:\s*(\S+)\s*$', re.M)
_NAME_RE = re.compile(r'^Name:\s*(\S+)\s*$', re.M)
_RELEASE_RE = re.compile(r'^(\d+(?:\.\d+)+)')


class NovaTree(object):
    """An installed (or extracted) Nova package.

    :param nova_dir: the directory holding ``nova/__init__.py``.
    :param python: the interpreter of the tree, or ``None``.
    """

    def __init__(self, nova_dir, python=None):
        self.nova_dir = os.path.abspath(nova_dir)
        self.root = os.path.dirname(self.nova_dir)
        self.python = python

    def path(self, rel):
        """Return the absolute path of a ``nova/...`` relative path."""
        if not rel.startswith('nova/'):
            raise ValueError('%s is not inside the nova package' % rel)
        return os.path.join(self.root, rel)

    def read(self, rel):
        """Return the bytes of ``rel`` or ``None`` when it is absent."""
        full = self.path(rel)
        if not os.path.isfile(full):
            return None
        with open(full, 'rb') as f:
            return f.read()

    def __repr__(self):
        return '<NovaTree %s>' % self.nova_dir


def _check_nova_dir(path):
    if not os.path.isfile(os.path.join(path, '__init__.py')):
        raise errors.InstallError(
            reason='%s is not a Nova package directory (it has no '
            '__init__.py); give the directory that holds nova/__init__.py, '
            'e.g. .../site-packages/nova' % path)
    if os.path.basename(os.path.normpath(path)) != 'nova':
        raise errors.InstallError(
            reason='%s is not named "nova"; give the nova package '
            'directory itself' % path)


def locate(nova_dir=None, python=None):
    """Return the :class:`NovaTree` to work on.

    :param nova_dir: an explicit package directory, or ``None`` to ask
        ``python`` where ``nova`` is importable from.
    :param python: the interpreter Nova runs with (default: ``python3``
        on ``PATH``, else this one).
    :raises errors.InstallError: when no Nova package can be found.
    """
    if nova_dir:
        nova_dir = os.path.abspath(nova_dir)
        _check_nova_dir(nova_dir)
        return NovaTree(nova_dir, python or guess_python(nova_dir))
    python = python or shutil.which('python3') or sys.executable
    try:
        out = util.run([python, '-c', _FIND_NOVA], timeout=60).stdout
    except errors.CommandFailed as exc:
        raise errors.InstallError(
            reason='cannot ask %s where nova is: %s' % (python, exc))
    found = out.decode('utf-8', 'replace').strip()
    if not found:
        raise errors.InstallError(
            reason='%s cannot import nova; give --nova-dir DIR (the '
            'directory holding nova/__init__.py) or --python with the '
            'interpreter Nova runs with' % python)
    _check_nova_dir(found)
    return NovaTree(found, python)


def guess_python(nova_dir):
    """Return the interpreter that owns ``nova_dir``, or ``None``.

    ``<prefix>/lib/pythonX.Y/site-packages/nova`` belongs to
    ``<prefix>/bin/pythonX.Y`` (a virtualenv or the system), else to
    ``pythonX.Y`` on ``PATH``.
    """
    parts = os.path.abspath(nova_dir).split(os.sep)
    for i, part in enumerate(parts):
        m = re.match(r'^python(\d+\.\d+)$', part)
        if m and i >= 2 and parts[i - 1] in ('lib', 'lib64'):
            prefix = os.sep.join(parts[:i - 1]) or os.sep
            name = 'python' + m.group(1)
            for cand in (os.path.join(prefix, 'bin', name),
                         os.path.join(prefix, 'bin', 'python3'),
                         shutil.which(name)):
                if cand and os.access(cand, os.X_OK):
                    return cand
    return None


def compile_python(tree):
    """Return the interpreter used to byte-compile files of ``tree``."""
    return tree.python or shutil.which('python3') or sys.executable


def byte_compile(tree, rels):
    """Byte-compile files of ``tree`` with its own interpreter.

    Nothing is written into the tree.

    :param tree: a :class:`NovaTree`.
    :param rels: ``nova/...`` paths of Python files.
    :returns: a list of problems (``file:line: message``).
    """
    files = [tree.path(r) for r in rels if r.endswith('.py')]
    if not files:
        return []
    python = compile_python(tree)
    proc = util.run([python, '-c', _COMPILE] + files, check=False,
                    timeout=300)
    if proc.returncode == 0:
        return []
    out = (proc.stdout + proc.stderr).decode('utf-8', 'replace').strip()
    return out.splitlines() or ['%s exited with %d' % (python,
                                                       proc.returncode)]


def _metadata_files(root):
    """Yield metadata files that may describe the nova distribution."""
    pats = ['nova-*.dist-info/METADATA', 'nova-*.egg-info/PKG-INFO',
            'nova-*.egg-info', 'nova.egg-info/PKG-INFO', 'PKG-INFO']
    for pat in pats:
        for path in sorted(glob.glob(os.path.join(root, pat))):
            if os.path.isfile(path):
                yield path


def _read_metadata(path):
    try:
        with open(path, 'rb') as f:
            text = f.read(65536).decode('utf-8', 'replace')
    except (IOError, OSError):
        return None
    name = _NAME_RE.search(text)
    version = _VERSION_RE.search(text)
    if not name or not version:
        return None
    if name.group(1).lower().replace('_', '-') != 'nova':
        return None
    return version.group(1)


def release_of(version):
    """Return the final release a version string names (``33.0.2``).

    Distribution suffixes such as ``+dfsg`` or ``.post1`` are dropped.
    """
    m = _RELEASE_RE.match(version or '')
    return m.group(1) if m else None


def detect_version(tree, given=None):
    """Return ``(version, how)`` of the Nova in ``tree``.

    :param tree: a :class:`NovaTree`.
    :param given: the version the user named, which wins.
    :returns: the release and a phrase saying where it came from.
    :raises errors.InstallError: when nothing names the version.
    """
    if given:
        return given, 'given on the command line'
    for path in _metadata_files(tree.root):
        raw = _read_metadata(path)
        if raw and release_of(raw):
            return release_of(raw), 'package metadata %s' % (
                os.path.relpath(path, tree.root))
    pbr = os.environ.get('PBR_VERSION')
    if pbr and release_of(pbr):
        return release_of(pbr), 'PBR_VERSION'
    raise errors.InstallError(
        reason='cannot tell which Nova release is in %s: no nova '
        'dist-info or egg-info metadata next to it; give --version'
        % tree.nova_dir)


def metadata_version(tree):
    """Return the release the package metadata names, or ``None``."""
    for path in _metadata_files(tree.root):
        raw = _read_metadata(path)
        if raw and release_of(raw):
            return release_of(raw)
    return None


def upstream_of(manager, version):
    """Return the Nova release of a distribution package version.

    ``2:26.2.2-1~deb12u5`` (dpkg: epoch, upstream, revision) and
    ``26.2.2-1.el9`` (rpm: version and release given apart, or joined)
    both name ``26.2.2``.

    :param manager: ``dpkg`` or ``rpm``.
    :param version: the package version as the manager prints it.
    """
    text = (version or '').strip()
    text = re.sub(r'^\d+:', '', text)
    if '-' in text:
        text = text.rsplit('-', 1)[0] if manager == 'dpkg' else \
            text.split('-', 1)[0]
    return release_of(text)


def _package_db_root(path):
    """Return ``(manager, root)`` of the package database above ``path``.

    A system keeps its database under ``/var/lib/dpkg`` or
    ``/var/lib/rpm``; a chroot (or a ``dpkg --root`` directory) keeps its
    own below its root, so the nearest one upwards wins.
    """
    cur = os.path.dirname(os.path.abspath(path))
    while True:
        if os.path.isfile(os.path.join(cur, 'var', 'lib', 'dpkg',
                                       'status')):
            return 'dpkg', cur
        for db in (('var', 'lib', 'rpm'), ('usr', 'lib', 'sysimage',
                                           'rpm')):
            if os.path.isdir(os.path.join(cur, *db)):
                return 'rpm', cur
        parent = os.path.dirname(cur)
        if parent == cur:
            return None, None
        cur = parent


def _query(cmd):
    try:
        proc = util.run(cmd, check=False, timeout=60)
    except errors.CommandFailed:
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode('utf-8', 'replace')


def package_owner(tree):
    """Return the distribution package that owns ``tree``, or ``None``.

    Asks ``dpkg-query -S`` (Debian, Ubuntu) or ``rpm -qf`` (RHEL,
    Fedora, SUSE) about ``nova/__init__.py``, in the package database of
    the system (or chroot) the tree lies in.

    :param tree: a :class:`NovaTree`.
    :returns: ``{'manager', 'package', 'version', 'release', 'root'}``
        where ``version`` is the package's own version and ``release``
        the Nova release it packages.
    """
    manager, root = _package_db_root(tree.nova_dir)
    if manager is None:
        return None
    target = os.path.join(tree.nova_dir, '__init__.py')
    inside = '/' + os.path.relpath(target, root)
    if manager == 'dpkg':
        out = _query(['dpkg-query', '--root=%s' % root, '-S', inside])
        if not out:
            return None
        first = out.splitlines()[0]
        if ': ' not in first or first.startswith('diversion '):
            return None
        package = first.split(': ', 1)[0].split(',')[0].strip()
        package = package.split(':', 1)[0]
        version = _query(['dpkg-query', '--root=%s' % root, '-W',
                          '-f=${Version}', package])
        if not version:
            return None
        version = version.strip()
    else:
        out = _query(['rpm', '--root', root, '-qf', '--queryformat',
                      '%{NAME} %{VERSION}-%{RELEASE}\\n', inside])
        if not out or len(out.split()) < 2:
            return None
        package, version = out.splitlines()[0].split()[:2]
    return {'manager': manager, 'package': package, 'version': version,
            'release': upstream_of(manager, version), 'root': root}


def describe_owner(owner):
    """Return ``python3-nova 2:26.2.2-1~deb12u5 (dpkg)`` or ``None``."""
    if not owner:
        return None
    return '%s %s (%s)' % (owner['package'], owner['version'],
                           owner['manager'])
