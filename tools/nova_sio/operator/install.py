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

"""Install nova-sio into an installed Nova, and take it out again.

:func:`make_plan` decides what to apply without changing anything:

* the release diff ``releases/<version>.diff`` when it passes the strict
  gates of :mod:`nova_sio.engine.emit` against the installed files (the
  tree is pristine where it matters; :mod:`nova_sio.operator.gates`);
* otherwise a diff built for this very tree
  (:mod:`nova_sio.operator.merge`): every file the diff touches is
  merged three ways (installed, pristine upstream, patched upstream)
  with ``git merge-file``; it is used only when no file conflicts and
  the new diff passes the same strict gates against the installed
  files.  Whether the tree is the release at all is judged
  from the package metadata (dist-info, egg-info, and the owning
  distribution package) and from the regions of the release diff's
  hunks, never from how much of a file differs elsewhere: distribution
  backports outside those regions are simply merged.

:func:`install` applies a plan atomically: the touched files are backed
up under ``<nova>/.nova-sio-backup/``, GNU patch applies the diff, the
result is compared with the expected bytes and byte-compiled with the
tree's own Python, and anything that goes wrong restores the backup.
:func:`revert` restores the backup byte for byte.
"""

import datetime
import json
import os
import re
import shutil

from nova_sio.engine import diffs
from nova_sio.engine import emit
from nova_sio import errors
from nova_sio.operator import gates
from nova_sio.operator import merge
from nova_sio.operator import tree as tree_mod
from nova_sio import paths
from nova_sio import releases as rel_mod
from nova_sio import util

STATE_DIR = '.nova-sio-backup'
STATE_FILE = 'state.json'
RUNTIME_DIR = 'virt/libvirt/sio'
STATE_FORMAT = 1
_HOOK_RE = re.compile(rb'\bnova\.virt\.libvirt\.sio\b|\bsio_image\b|'
                      rb'\bsio_hooks\b')


class Plan(object):
    """What :func:`install` will do to a tree.

    :param tree: the :class:`~nova_sio.operator.tree.NovaTree`.
    :param version: the Nova release.
    :param how: where the version came from.
    """

    def __init__(self, tree, version, how):
        self.tree = tree
        self.version = version
        self.version_source = how
        self.mode = None
        self.data = None
        self.modified = []
        self.created = []
        self.expected = {}
        self.differed = []
        self.notes = []
        self.package = None

    def as_dict(self):
        return {
            'nova_dir': self.tree.nova_dir,
            'version': self.version,
            'version_source': self.version_source,
            'mode': self.mode,
            'diff_sha256': util.sha256_bytes(self.data) if self.data
            else None,
            'modified': list(self.modified),
            'created': list(self.created),
            'differed': list(self.differed),
            'notes': list(self.notes),
            'package': self.package,
        }


def _state_dir(tree):
    return os.path.join(tree.nova_dir, STATE_DIR)


def load_state(tree):
    """Return the install record of ``tree``, or ``None``."""
    path = os.path.join(_state_dir(tree), STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _write_state(tree, state):
    util.write_atomic(os.path.join(_state_dir(tree), STATE_FILE),
                      util.dump_json(state))


def mark_blocked(tree, previous, reason):
    """Record that the backend is missing and could not be put back.

    An install record with its backups is kept as it is (the guard
    reports its files as replaced); otherwise a ``blocked`` record holds
    the reason for ``nova-sio guard`` and ``doctor``.

    :param tree: a :class:`~nova_sio.operator.tree.NovaTree`.
    :param previous: the release nova-sio was installed for.
    :param reason: why it could not be installed again.
    """
    state = load_state(tree)
    if state is not None and state.get('status') != 'blocked':
        return
    os.makedirs(_state_dir(tree), exist_ok=True)
    _write_state(tree, {'format': STATE_FORMAT, 'tool': 'nova-sio',
                        'status': 'blocked', 'nova_dir': tree.nova_dir,
                        'previous_version': previous, 'reason': reason,
                        'since': _now(), 'modified': {}, 'created': {}})


def clear_blocked(tree):
    """Remove a ``blocked`` record (and nothing else)."""
    state = load_state(tree)
    if state is not None and state.get('status') == 'blocked':
        shutil.rmtree(_state_dir(tree))


def check_not_patched(tree):
    """Refuse a tree that already carries nova-sio.

    :raises InstallRefused: with what was found and what to do.
    """
    state = load_state(tree)
    if state is not None and state.get('status') == 'blocked':
        # A reinstall after a package upgrade failed; installing again
        # is how the operator settles it.
        state = None
    elif state is not None:
        if state.get('status') == 'installed':
            raise gates.InstallRefused(
                'nova-sio for Nova %s is already installed in %s (since '
                '%s). Run "nova-sio revert --nova-dir %s" first to take it '
                'out.' % (state.get('version'), tree.nova_dir,
                          state.get('installed_at'), tree.nova_dir),
                {'already_installed': state.get('version')})
        raise gates.InstallRefused(
            'an earlier install into %s did not finish; run "nova-sio '
            'revert --nova-dir %s" to restore the tree first.'
            % (tree.nova_dir, tree.nova_dir), {'interrupted': True})
    elif os.path.exists(os.path.join(tree.nova_dir, STATE_DIR)) and \
            load_state(tree) is None:
        raise gates.InstallRefused(
            '%s exists but holds no install record; remove it if no '
            'install is running, then retry.' % _state_dir(tree))
    runtime = os.path.join(tree.nova_dir, RUNTIME_DIR)
    if os.path.exists(runtime):
        raise gates.InstallRefused(
            '%s already exists: this Nova is already patched, but not by '
            '"nova-sio install", so it cannot be reverted automatically. '
            'Reinstall the Nova package from your distribution (or '
            'reverse the diff with "patch -R -p 2"), then run install '
            'again.' % runtime, {'already_patched': True})


def _available_diffs():
    out = []
    for name in os.listdir(paths.releases_dir()):
        if name.endswith('.diff'):
            out.append(name[:-len('.diff')])
    return sorted(out, key=rel_mod.vkey)


def _release_diff(version):
    path = emit.diff_path(version)
    if not os.path.exists(path):
        have = _available_diffs()
        raise gates.InstallRefused(
            'there is no diff for Nova %s (releases/%s.diff). Diffs exist '
            'for: %s. If %s is a real release, emit it with "nova-sio '
            'emit %s"; if the version is wrong, give --version.' % (
                version, version, ', '.join(have) or 'none', version,
                version), {'available': have})
    try:
        with open(path, 'rb') as f:
            return f.read()
    except (IOError, OSError) as exc:
        raise gates.InstallRefused('cannot read %s: %s' % (path, exc.strerror))


def _hooked(tree, modified):
    """Return the touched files that already carry our hooks."""
    found = []
    for rel in modified:
        data = tree.read(rel)
        if data and _HOOK_RE.search(data):
            found.append(rel)
    return found


def _manifest_match(tree, modified):
    """Return the releases whose pristine files equal the installed ones.

    Uses the sha256 sums recorded in ``releases/manifest.json``.
    """
    sums = {}
    for rel in modified:
        full = tree.path(rel)
        sums[rel] = util.sha256_file(full) if os.path.isfile(full) else None
    matches = []
    for version, entry in emit.load_manifest()['releases'].items():
        recorded = entry.get('pristine_sha256') or {}
        if recorded and all(sums.get(rel) == digest
                            for rel, digest in recorded.items()):
            matches.append(version)
    return sorted(matches, key=rel_mod.vkey)


def make_plan(tree, version=None, force_version=False, progress=None,
              check_writable=True):
    """Decide how to install nova-sio into ``tree``; change nothing.

    :param tree: a :class:`~nova_sio.operator.tree.NovaTree`.
    :param version: the release, or ``None`` to detect it.
    :param force_version: accept a ``version`` the metadata contradicts.
    :param progress: ``callable(message)`` for progress lines.
    :param check_writable: refuse early when the tree is not writable.
    :returns: a :class:`Plan`.
    :raises InstallRefused: when it cannot be installed, naming why.
    """
    progress = progress or (lambda msg: None)
    check_not_patched(tree)
    owner = tree_mod.package_owner(tree)
    meta = tree_mod.metadata_version(tree)
    packaged = owner and owner['release']
    if not version and not meta and packaged:
        version, how = packaged, 'package %s' % (
            tree_mod.describe_owner(owner))
    else:
        version, how = tree_mod.detect_version(tree, version)
    claims = [(meta, 'the package metadata of %s' % tree.nova_dir)]
    if packaged:
        claims.append((packaged, 'the distribution package %s' % (
            tree_mod.describe_owner(owner))))
    given = how == 'given on the command line'
    for claim, who in claims:
        if claim and claim != version and not force_version:
            raise gates.InstallRefused(
                '%s says Nova %s, but %s %s. %s' % (
                    who, claim, version,
                    'was asked for' if given else 'is named by ' + how,
                    'Drop --version, or add --force-version if the '
                    'metadata is wrong.' if given else 'Give the right '
                    '--version with --force-version.'),
                {'wrong_version': True, 'metadata': claim,
                 'package': owner})
    vouched = any(claim == version for claim, _who in claims)
    if check_writable and not os.access(tree.nova_dir, os.W_OK):
        raise gates.InstallRefused(
            'cannot write to %s; run as the owner of the Nova package '
            '(e.g. with sudo) or make it writable. Nothing was changed.'
            % tree.nova_dir, {'read_only': [tree.nova_dir]})
    plan = Plan(tree, version, how)
    plan.package = owner
    progress('Nova %s in %s (version from %s)' % (version, tree.nova_dir,
                                                  how))
    if owner:
        progress('the tree belongs to the distribution package %s'
                 % tree_mod.describe_owner(owner))
    data = _release_diff(version)
    modified, created = gates.sections(data)
    missing = [rel for rel in modified if tree.read(rel) is None]
    if missing:
        raise gates.InstallRefused(
            'the installed Nova lacks files nova-sio changes: %s; is this '
            'Nova %s?' % (', '.join(missing), version),
            {'wrong_version': True, 'missing': missing})
    hooked = _hooked(tree, modified)
    if hooked:
        raise gates.InstallRefused(
            'already patched: %s already refer to nova.virt.libvirt.sio. '
            'Reinstall the Nova package from your distribution, then run '
            'install again.' % ', '.join(hooked), {'already_patched': True})
    progress('checking releases/%s.diff strictly against the installed '
             'files' % version)
    problems = gates.problems(tree, data)
    if not problems:
        plan.mode = 'exact'
        plan.data = data
        plan.expected = gates.scratch_apply(
            dict((rel, tree.read(rel)) for rel in modified), data)
    else:
        others = [v for v in _manifest_match(tree, modified)
                  if v != version]
        if others:
            raise gates.InstallRefused(
                'the installed files are those of pristine Nova %s, not '
                '%s; give --version %s'
                % (' or '.join(others), version, others[-1]),
                {'wrong_version': True, 'matches': others})
        merge.merge_plan(plan, data, problems, progress, vouched)
        progress('differences from pristine Nova %s merged cleanly:'
                 % version)
        for d in plan.differed:
            progress('  %s: %s' % (d['file'], ', '.join(d['places'])))
    plan.modified, plan.created = gates.sections(plan.data)
    return plan


def _writable_problems(tree, plan):
    problems = []

    def check(path):
        if not os.access(path, os.W_OK):
            problems.append(path)

    check(tree.nova_dir)
    for rel in plan.modified:
        check(tree.path(rel))
        check(os.path.dirname(tree.path(rel)))
    for rel in plan.created:
        parent = os.path.dirname(tree.path(rel))
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        check(parent)
    return sorted(set(problems))


def _new_dirs(tree, created):
    dirs = set()
    for rel in created:
        parent = os.path.dirname(rel)
        while parent and parent != 'nova' and \
                not os.path.isdir(tree.path(parent)):
            dirs.add(parent)
            parent = os.path.dirname(parent)
    return sorted(dirs)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


def install(plan, progress=None):
    """Apply ``plan`` atomically; on any failure restore the tree.

    :param plan: a :class:`Plan` from :func:`make_plan`.
    :param progress: ``callable(message)`` for progress lines.
    :returns: the install record (also kept in the tree).
    :raises errors.InstallError: when it failed (the tree is restored).
    """
    progress = progress or (lambda msg: None)
    tree = plan.tree
    bad = _writable_problems(tree, plan)
    if bad:
        raise gates.InstallRefused(
            'cannot write to %s; run as the owner of the Nova package '
            '(e.g. with sudo) or make it writable. Nothing was changed.'
            % ', '.join(bad), {'read_only': bad})
    state_dir = _state_dir(tree)
    blocked = load_state(tree)
    if blocked is not None and blocked.get('status') == 'blocked':
        progress('clearing the record of a failed reinstall: %s'
                 % blocked.get('reason'))
        clear_blocked(tree)
    try:
        os.mkdir(state_dir, 0o755)
    except OSError as exc:
        raise gates.InstallRefused(
            'cannot create %s: %s. Nothing was changed.'
            % (state_dir, exc.strerror))
    state = {
        'format': STATE_FORMAT, 'tool': 'nova-sio', 'status': 'applying',
        'version': plan.version, 'mode': plan.mode,
        'nova_dir': tree.nova_dir, 'installed_at': _now(),
        'diff_sha256': util.sha256_bytes(plan.data),
        'modified': {}, 'created': {},
        'created_dirs': _new_dirs(tree, plan.created),
    }
    try:
        progress('backing up %d file(s) to %s' % (len(plan.modified),
                                                  state_dir))
        for rel in plan.modified:
            full = tree.path(rel)
            st = os.stat(full)
            dst = os.path.join(state_dir, 'orig', rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(full, dst)
            state['modified'][rel] = {
                'sha256_before': util.sha256_file(full),
                'sha256_after': util.sha256_bytes(plan.expected[rel]),
                'mode': st.st_mode & 0o7777,
                'mtime_ns': st.st_mtime_ns}
        for rel in plan.created:
            state['created'][rel] = util.sha256_bytes(plan.expected[rel])
        with open(os.path.join(state_dir, 'applied.diff'), 'wb') as f:
            f.write(plan.data)
        _write_state(tree, state)
        progress('applying the %s diff with patch -p 2' % plan.mode)
        proc = util.run(['patch', '-p', '2'] + emit.PATCH_ARGS +
                        ['-d', tree.nova_dir], input=plan.data,
                        check=False)
        bad = diffs.check_patch_output(proc.stdout + proc.stderr,
                                       dry_run=False)
        if proc.returncode != 0 or bad:
            raise errors.InstallError(
                reason='patch failed (exit %d): %s' % (
                    proc.returncode, '; '.join(bad)[-1000:]))
        wrong = []
        for rel, data in sorted(plan.expected.items()):
            full = tree.path(rel)
            actual = util.sha256_file(full) if os.path.isfile(full) else \
                'missing'
            if actual != util.sha256_bytes(data):
                wrong.append(rel)
        if wrong:
            raise errors.InstallError(
                reason='after patching, these files are not as expected: '
                '%s' % ', '.join(wrong))
        progress('byte-compiling %d file(s) with %s' % (
            len(plan.expected), tree_mod.compile_python(tree)))
        problems = tree_mod.byte_compile(tree, sorted(plan.expected))
        if problems:
            raise errors.InstallError(
                reason='the patched files do not compile with %s: %s' % (
                    tree_mod.compile_python(tree),
                    '; '.join(problems[:5])))
        state['status'] = 'installed'
        _write_state(tree, state)
    except BaseException as exc:
        progress('failed; restoring the tree')
        try:
            _restore(tree, state)
        except Exception as rexc:
            raise errors.InstallError(
                reason='install failed (%s) AND restoring the backup '
                'failed (%s); the originals are in %s' % (exc, rexc,
                                                          state_dir))
        if isinstance(exc, errors.NovaSioError):
            raise errors.InstallError(
                reason='%s. The tree was restored unchanged.' % exc)
        if isinstance(exc, OSError):
            raise errors.InstallError(
                reason='%s. The tree was restored unchanged.' % exc)
        raise
    return state


def _remove_bytecode(path):
    """Remove the cached bytecode Python may have made for ``path``."""
    base = os.path.splitext(os.path.basename(path))[0]
    directory = os.path.dirname(path)
    for cand in (path + 'c', path + 'o'):
        if os.path.exists(cand):
            os.unlink(cand)
    cache = os.path.join(directory, '__pycache__')
    if os.path.isdir(cache):
        for name in os.listdir(cache):
            if name.startswith(base + '.') and name.endswith(
                    ('.pyc', '.pyo')):
                os.unlink(os.path.join(cache, name))


def _restore(tree, state):
    """Put back the state before install; remove the record.

    :raises errors.InstallError: when a file could not be restored.
    """
    state_dir = _state_dir(tree)
    for rel in sorted(state.get('created', {}), reverse=True):
        full = tree.path(rel)
        if os.path.lexists(full):
            os.unlink(full)
        _remove_bytecode(full)
    for rel, info in sorted(state.get('modified', {}).items()):
        full = tree.path(rel)
        backup = os.path.join(state_dir, 'orig', rel)
        with open(backup, 'rb') as f:
            data = f.read()
        if not (os.path.isfile(full) and
                util.sha256_file(full) == info['sha256_before']):
            # Rewrite in place: owner, group and links stay as they were.
            with open(full, 'wb') as f:
                f.write(data)
        os.chmod(full, info['mode'])
        os.utime(full, ns=(info['mtime_ns'], info['mtime_ns']))
    leftovers = []
    for rel in sorted(state.get('created_dirs', []),
                      key=lambda d: d.count('/'), reverse=True):
        full = tree.path(rel)
        if not os.path.isdir(full):
            continue
        cache = os.path.join(full, '__pycache__')
        if os.path.isdir(cache) and all(
                n.endswith(('.pyc', '.pyo')) for n in os.listdir(cache)):
            shutil.rmtree(cache)
        try:
            os.rmdir(full)
        except OSError:
            leftovers.append(rel)
    wrong = []
    for rel, info in sorted(state.get('modified', {}).items()):
        if util.sha256_file(tree.path(rel)) != info['sha256_before']:
            wrong.append(rel)
    if wrong:
        raise errors.InstallError(
            reason='could not restore %s; the originals are kept in %s'
            % (', '.join(wrong), state_dir))
    shutil.rmtree(state_dir)
    return leftovers


def revert(tree, force=False, dry_run=False, progress=None,
           after_upgrade=False):
    """Restore the tree as it was before :func:`install`.

    :param tree: a :class:`~nova_sio.operator.tree.NovaTree`.
    :param force: also revert files changed since the install.
    :param dry_run: only report what would be done.
    :param after_upgrade: the Nova package was upgraded over nova-sio:
        only remove the files nova-sio added and its record, and keep
        the (new) package files.
    :param progress: ``callable(message)`` for progress lines.
    :returns: a report dict.
    :raises InstallRefused: when there is nothing to revert, or files
        changed since the install and ``force`` is not set.
    """
    progress = progress or (lambda msg: None)
    state = load_state(tree)
    if state is None:
        hint = ''
        if os.path.exists(os.path.join(tree.nova_dir, RUNTIME_DIR)):
            hint = (' The tree does carry nova-sio, applied by other '
                    'means; reinstall the Nova package to remove it.')
        raise gates.InstallRefused(
            'nova-sio install has no record in %s: nothing to revert.%s'
            % (tree.nova_dir, hint), {'not_installed': True})
    if after_upgrade:
        hooked = _hooked(tree, sorted(state.get('modified', {})))
        if hooked:
            raise gates.InstallRefused(
                '%s still refer to nova.virt.libvirt.sio, so the package '
                'was not upgraded over them; use a plain revert.'
                % ', '.join(hooked), {'hooked': hooked})
        state = dict(state, modified={})
    changed = []
    if state.get('status') == 'installed':
        for rel, info in sorted(state['modified'].items()):
            full = tree.path(rel)
            actual = util.sha256_file(full) if os.path.isfile(full) else \
                None
            if actual != info['sha256_after']:
                changed.append(rel)
        for rel, digest in sorted(state['created'].items()):
            full = tree.path(rel)
            actual = util.sha256_file(full) if os.path.isfile(full) else \
                None
            if actual != digest:
                changed.append(rel)
    if changed and not force:
        hint = ''
        upgraded = [rel for rel in changed if rel in state['modified']]
        if upgraded and not _hooked(tree, upgraded):
            hint = (' They no longer carry the nova-sio hooks: if the Nova '
                    'package was upgraded, run "nova-sio revert '
                    '--after-upgrade" instead, which only removes what '
                    'nova-sio added.')
        raise gates.InstallRefused(
            'these files changed since nova-sio was installed: %s. A '
            'revert would discard those changes; rerun with --force to '
            'revert anyway.%s' % (', '.join(changed), hint),
            {'changed': changed})
    report = {'nova_dir': tree.nova_dir, 'version': state.get('version'),
              'restored': sorted(state.get('modified', {})),
              'removed': sorted(state.get('created', {})),
              'changed_since_install': changed, 'dry_run': dry_run}
    if dry_run:
        return report
    paths_to_write = [tree.nova_dir] + [
        os.path.dirname(tree.path(r)) for r in state.get('modified', {})]
    bad = sorted(set(p for p in paths_to_write
                     if not os.access(p, os.W_OK)))
    if bad:
        raise gates.InstallRefused(
            'cannot write to %s; run as the owner of the Nova package. '
            'Nothing was changed.' % ', '.join(bad), {'read_only': bad})
    progress('restoring %d file(s) and removing %d' % (
        len(report['restored']), len(report['removed'])))
    report['left_behind'] = _restore(tree, state)
    return report
