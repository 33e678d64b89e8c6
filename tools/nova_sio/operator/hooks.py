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

"""Survive package upgrades of a distribution's Nova.

A package upgrade puts the package's own files over the ones
``nova-sio install`` patched and leaves the files nova-sio added; the
backend is then gone.  For a tree that belongs to a distribution package,
``nova-sio install`` therefore writes, below the root of the system whose
package database owns the tree (``/`` on a host, the directory of a
chroot or of ``dpkg --root``):

``etc/apt/apt.conf.d/80nova-sio`` (dpkg systems)
    a ``DPkg::Post-Invoke`` command: after every dpkg run of APT,
    ``nova-sio reinstall`` checks the tree; when the package replaced the
    patched files it installs nova-sio again for the Nova release now
    installed.
``etc/dnf/plugins/post-transaction-actions.d/nova-sio.action`` (rpm)
    the same command for dnf's ``post-transaction-actions`` plugin, run
    after every transaction that installs the owning package.
``etc/systemd/system/nova-compute.service.d/50-nova-sio.conf``
    an ``ExecStartPre=`` guard: ``nova-sio guard`` exits non-zero, with
    the reason in the journal, while the backend is not intact, so
    nova-compute does not start without it.

When ``reinstall`` cannot put the backend back (no diff for the new
release, a conflict with the package's changes), it leaves a ``blocked``
install record that says why; the guard then keeps nova-compute from
starting until ``nova-sio install`` (after updating nova-sio) or
``nova-sio revert`` settles it.  ``nova-sio revert`` removes the files
above.
"""

import os
import re
import shlex
import sys

from nova_sio import errors
from nova_sio.operator import gates
from nova_sio.operator import install as install_mod
from nova_sio.operator import tree as tree_mod
from nova_sio import util

APT_HOOK = os.path.join('etc', 'apt', 'apt.conf.d', '80nova-sio')
DNF_HOOK = os.path.join('etc', 'dnf', 'plugins',
                        'post-transaction-actions.d', 'nova-sio.action')
GUARD = os.path.join('etc', 'systemd', 'system',
                     'nova-compute.service.d', '50-nova-sio.conf')
MARK = 'nova-sio'
# Each hook file names the directories that were made for it, so that
# removing it leaves the system as it was.
_MADE = 'nova-sio made: '
_MADE_RE = re.compile(r'^(?://|#) ' + re.escape(_MADE) + r'(.*)$', re.M)


class HookError(errors.InstallError):
    """A hook file could not be written or removed."""


def command(action, tree):
    """Return the argument list that runs ``nova-sio <action>`` for ``tree``.

    The interpreter running this command is the one that has nova-sio,
    so the hook keeps working whatever ``PATH`` APT or systemd use.

    :param action: ``reinstall`` or ``guard``.
    :param tree: a :class:`~nova_sio.operator.tree.NovaTree`.
    """
    return [sys.executable, '-m', 'nova_sio.cli', action, '--nova-dir',
            tree.nova_dir]


def _shell(argv):
    return ' '.join(shlex.quote(a) for a in argv)


def _check_quotable(tree):
    for path in (sys.executable, tree.nova_dir):
        if '"' in path or "'" in path or '\n' in path:
            raise HookError(reason='cannot write a package hook for %s: '
                            'quotes in a path' % path)


def hook_files(owner):
    """Return ``{absolute path: kind}`` of the hooks for a package owner.

    :param owner: what :func:`tree_mod.package_owner` returned.
    """
    if not owner:
        return {}
    root = owner['root']
    files = {os.path.join(root, GUARD): 'guard'}
    if owner['manager'] == 'dpkg':
        files[os.path.join(root, APT_HOOK)] = 'apt'
    elif owner['manager'] == 'rpm':
        files[os.path.join(root, DNF_HOOK)] = 'dnf'
    return files


def _content(kind, tree, owner, made):
    mark = '%s %s%s\n' % ('//' if kind == 'apt' else '#', _MADE,
                          ' '.join(made)) if made else ''
    return _body(kind, tree, owner) + mark


def _body(kind, tree, owner):
    reinstall = _shell(command('reinstall', tree))
    if kind == 'apt':
        # apt.conf strings cannot hold a double quote; _check_quotable
        # made sure there is none.
        script = 'if [ -x %s ]; then %s || true; fi' % (
            shlex.quote(sys.executable), reinstall)
        return ('// Written by "nova-sio install" for the Nova in %s.\n'
                '// After dpkg ran, put the sio backend back if a package '
                'upgrade\n// replaced the patched files. "nova-sio revert" '
                'removes this file.\n'
                'DPkg::Post-Invoke { "%s"; };\n' % (tree.nova_dir, script))
    if kind == 'dnf':
        return ('# Written by "nova-sio install" for the Nova in %s.\n'
                '# dnf post-transaction-actions: put the sio backend back '
                'after\n# %s was upgraded. "nova-sio revert" removes this '
                'file.\n%s:in:%s\n' % (tree.nova_dir, owner['package'],
                                       owner['package'], reinstall))
    return ('# Written by "nova-sio install" for the Nova in %s.\n'
            '# nova-compute does not start while the sio backend is '
            'missing.\n# "nova-sio revert" removes this file.\n'
            '[Service]\nExecStartPre=%s\n'
            % (tree.nova_dir, _shell(command('guard', tree))))


def _ours(path, tree):
    try:
        with open(path) as f:
            text = f.read()
    except (IOError, OSError):
        return False
    return MARK in text and tree.nova_dir in text


def _reload_systemd(owner, progress):
    if owner['root'] != os.sep or not os.path.isdir('/run/systemd/system'):
        return
    proc = util.run(['systemctl', 'daemon-reload'], check=False)
    if proc.returncode != 0:
        progress('systemctl daemon-reload failed; run it before the next '
                 'restart of nova-compute')


def install_hooks(tree, owner, progress=None):
    """Write the upgrade hook and the guard for a package-owned tree.

    :param tree: a :class:`~nova_sio.operator.tree.NovaTree`.
    :param owner: the owning package, or ``None`` (then nothing is done).
    :param progress: ``callable(message)`` for progress lines.
    :returns: the sorted list of files written.
    :raises HookError: when a file cannot be written.
    """
    progress = progress or (lambda msg: None)
    files = hook_files(owner)
    if not files:
        return []
    _check_quotable(tree)
    written = []
    for path, kind in sorted(files.items()):
        if kind == 'dnf' and not os.path.isdir(os.path.dirname(path)):
            progress('dnf\'s post-transaction-actions plugin is not '
                     'installed (no %s); install it for the upgrade hook'
                     % os.path.dirname(path))
        made = []
        parent = os.path.dirname(path)
        while not os.path.isdir(parent):
            made.append(os.path.relpath(parent, owner['root']))
            parent = os.path.dirname(parent)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            util.write_atomic(path, _content(kind, tree, owner,
                                             made).encode())
        except (IOError, OSError) as exc:
            raise HookError(reason='cannot write %s: %s' % (path, exc))
        written.append(path)
        progress('wrote the %s hook %s' % (kind, path))
    _reload_systemd(owner, progress)
    return written


def remove_hooks(tree, owner, progress=None):
    """Remove the hooks :func:`install_hooks` wrote for ``tree``.

    Files that name another Nova tree are left alone.

    :returns: the sorted list of files removed.
    """
    progress = progress or (lambda msg: None)
    removed, made = [], set()
    for path in sorted(hook_files(owner)):
        if os.path.isfile(path) and _ours(path, tree):
            with open(path) as f:
                m = _MADE_RE.search(f.read())
            made.update(m.group(1).split() if m else ())
            os.unlink(path)
            removed.append(path)
            progress('removed %s' % path)
    for rel in sorted(made, key=lambda d: d.count(os.sep), reverse=True):
        full = os.path.join(owner['root'], rel)
        if os.path.isdir(full) and not os.listdir(full):
            os.rmdir(full)
    if removed:
        _reload_systemd(owner, progress)
    return removed


def hook_state(tree, owner):
    """Return ``{path: present}`` of the hooks ``tree`` should have."""
    return dict((path, os.path.isfile(path) and _ours(path, tree))
                for path in hook_files(owner))


def backend_state(tree):
    """Tell whether the sio backend installed into ``tree`` is intact.

    :param tree: a :class:`~nova_sio.operator.tree.NovaTree`.
    :returns: ``(status, detail)`` where status is ``intact``,
        ``missing`` (the patched files were replaced), ``blocked`` (a
        reinstall failed), ``interrupted`` or ``absent`` (no record).
    """
    state = install_mod.load_state(tree)
    if state is None:
        return 'absent', 'nova-sio install has no record in %s' % (
            tree.nova_dir)
    status = state.get('status')
    if status == 'blocked':
        return 'blocked', state.get('reason') or 'a reinstall failed'
    if status != 'installed':
        return 'interrupted', ('an install into %s did not finish; run '
                               '"nova-sio revert --nova-dir %s"'
                               % (tree.nova_dir, tree.nova_dir))
    wrong = []
    for rel, info in sorted(state.get('modified', {}).items()):
        full = tree.path(rel)
        if not os.path.isfile(full) or \
                util.sha256_file(full) != info['sha256_after']:
            wrong.append(rel)
    for rel, digest in sorted(state.get('created', {}).items()):
        full = tree.path(rel)
        if not os.path.isfile(full) or util.sha256_file(full) != digest:
            wrong.append(rel)
    if wrong:
        return 'missing', ('%s no longer hold what nova-sio %s installed '
                           '(a package upgrade replaces them)'
                           % (', '.join(wrong), state.get('version')))
    return 'intact', 'nova-sio for Nova %s installed (%s diff)' % (
        state.get('version'), state.get('mode'))


def reinstall(tree, progress=None):
    """Put the backend back after a package upgrade replaced files.

    Nothing is done when the backend is intact or was never installed.
    Otherwise what nova-sio added is removed, and nova-sio is installed
    for the Nova release the package metadata now names.  When that
    fails the install record says ``blocked`` with the reason, which the
    guard reports.

    :param tree: a :class:`~nova_sio.operator.tree.NovaTree`.
    :param progress: ``callable(message)`` for progress lines.
    :returns: ``{'action': 'none' | 'reinstalled' | 'blocked', ...}``.
    """
    progress = progress or (lambda msg: None)
    status, detail = backend_state(tree)
    if status in ('intact', 'absent'):
        return {'action': 'none', 'status': status, 'detail': detail}
    state = install_mod.load_state(tree)
    previous = state.get('version')
    try:
        if status == 'interrupted':
            raise gates.InstallRefused(detail)
        if status == 'missing':
            progress('the Nova files nova-sio %s patched were replaced: '
                     '%s' % (previous, detail))
            install_mod.revert(tree, force=True, after_upgrade=True,
                               progress=progress)
        else:
            previous = state.get('previous_version') or previous
            install_mod.clear_blocked(tree)
        plan = install_mod.make_plan(tree, progress=progress)
        new_state = install_mod.install(plan, progress=progress)
    except errors.NovaSioError as exc:
        reason = ('nova-sio could not be installed again after the Nova '
                  'package changed (it was installed for Nova %s): %s'
                  % (previous, exc))
        if status != 'interrupted':
            install_mod.mark_blocked(tree, previous, reason)
        return {'action': 'blocked', 'status': status, 'detail': reason}
    return {'action': 'reinstalled', 'status': status,
            'previous_version': previous, 'version': new_state['version'],
            'mode': new_state['mode'],
            'package': tree_mod.describe_owner(plan.package)}


def guard(tree):
    """Return ``(ok, message)``: may nova-compute start with ``tree``?

    :param tree: a :class:`~nova_sio.operator.tree.NovaTree`.
    """
    status, detail = backend_state(tree)
    if status == 'intact':
        return True, detail
    hint = {
        'missing': 'run "nova-sio reinstall --nova-dir %s"' % tree.nova_dir,
        'blocked': 'update nova-sio and run "nova-sio install --nova-dir '
                   '%s", or "nova-sio revert --nova-dir %s" and set '
                   '[libvirt] images_type to another backend'
                   % (tree.nova_dir, tree.nova_dir),
        'interrupted': 'run "nova-sio revert --nova-dir %s"'
                       % tree.nova_dir,
        'absent': 'run "nova-sio install --nova-dir %s" (or remove %s if '
                  'this host no longer uses sio)' % (tree.nova_dir, GUARD),
    }[status]
    return False, ('nova-compute is held back: the sio backend is missing '
                   'from %s: %s. To fix: %s.' % (tree.nova_dir, detail,
                                                 hint))
