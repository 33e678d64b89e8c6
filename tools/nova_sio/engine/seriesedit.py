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

"""Editing and rebasing patch series through git.

``checkout`` materialises a series as commits on top of an upstream
release in a worktree; developers commit there; ``save`` writes the
commits back as canonical patch files, rewriting a file only when its
meaningful content (not line numbers or blob ids) changed.  ``rebase``
carries a series onto a new release with ``git am --3way`` and rerere,
resumable with ``--continue`` and ``--abort``.
"""

import json
import os
import re
import shutil

from nova_sio.engine import series as series_mod
from nova_sio.engine import source
from nova_sio.engine import workrepo
from nova_sio import errors
from nova_sio import paths
from nova_sio import util

FORMAT_PATCH = ['format-patch', '--zero-commit', '--full-index',
                '--no-signature', '--no-numbered', '--no-stat',
                '--keep-subject', '--no-renames', '--no-binary',
                '--src-prefix=a/', '--dst-prefix=b/', '--unified=3']


def meaningful(data):
    """Reduce a patch mail to what it means.

    Blob ids, hunk positions and context lines change whenever upstream
    moves around a hunk; what the patch does is its subject and message,
    and per file the lines it removes and adds.

    :param data: a patch mail (bytes).
    :returns: a hashable summary.
    """
    head, _sep, body = data.partition(b'\ndiff --git ')
    head = re.sub(rb'(?m)^(From [0-9a-f]{40} .*|Date: .*)$', b'', head)
    changes = []
    for line in (b'diff --git ' + body).split(b'\n'):
        if line.startswith(b'diff --git '):
            changes.append(line)
        elif line.startswith((b'+', b'-')) and not line.startswith(
                (b'+++ ', b'--- ')):
            changes.append(line)
    return head.strip(), tuple(changes)


def _state_path():
    return os.path.join(paths.cache_dir(), 'rebase-state.json')


def checkout(name, base, path):
    """Create a worktree at ``path`` with the series as commits on ``base``.

    :param name: the series name.
    :param base: the upstream version to start from.
    :param path: where the worktree goes (must not exist).
    :returns: a list of ``(patch, result)``.
    """
    s = series_mod.Series(name)
    for b in set(s.bases()) | {base}:
        source.fetch(b)
        workrepo.upstream_commit(b)
    wt = workrepo.Worktree(workrepo.upstream_commit(base), keep=True,
                           path=os.path.abspath(path))
    wt.__enter__()
    results = []
    for filename, _b in s.entries:
        try:
            results.append((filename, workrepo.am(
                wt, s.patch_path(filename), name, base)))
        except errors.SeriesConflict:
            _save_state({'series': name, 'onto': base, 'path': wt.path,
                         'done': results, 'current': filename,
                         'todo': [e[0] for e in s.entries][
                             len(results) + 1:]})
            raise
    return results


def save(name, path, base):
    """Write the commits of the worktree at ``path`` back to the series.

    Each commit becomes one patch file named after its subject.  Existing
    files keep their name and bytes unless their meaningful content
    changed.

    :param name: the series name.
    :param path: a worktree made by :func:`checkout` or :func:`rebase`.
    :param base: the upstream version the commits sit on.
    :returns: a dict file -> ``'unchanged' | 'rewritten' | 'new' |
        'removed'``.
    """
    base_commit = workrepo.upstream_commit(base)
    sdir = os.path.join(series_mod.series_root(), name)
    os.makedirs(sdir, exist_ok=True)
    old_entries = []
    if os.path.exists(os.path.join(sdir, 'series')):
        old_entries = series_mod.Series(name).entries
    old_by_subject = {}
    for filename, b in old_entries:
        with open(os.path.join(sdir, filename), 'rb') as f:
            data = f.read()
        m = re.search(rb'^Subject: (.*)$', data, re.M)
        old_by_subject[m.group(1) if m else filename.encode()] = (
            filename, b, data)
    commits = workrepo.git(['rev-list', '--reverse', '%s..HEAD'
                            % base_commit], path).stdout.decode().split()
    entries = []
    report = {}
    for num, commit in enumerate(commits, 1):
        data = workrepo.git(FORMAT_PATCH + ['--stdout', '-1', commit],
                            path).stdout
        m = re.search(rb'^Subject: (.*)$', data, re.M)
        subject = m.group(1) if m else b'patch'
        old = old_by_subject.pop(subject, None)
        if old and meaningful(old[2]) == meaningful(data):
            entries.append((old[0], old[1]))
            report[old[0]] = 'unchanged'
            continue
        if old:
            # A patch shared from another series (``../e6/x.patch``) is
            # never rewritten in place: this series gets its own copy.
            filename = os.path.basename(old[0])
            report[filename] = 'rewritten'
        else:
            slug = re.sub(rb'[^a-z0-9]+', b'-', subject.lower()).strip(b'-')
            filename = '%04d-%s.patch' % (num, slug[:50].decode())
            report[filename] = 'new'
        util.write_atomic(os.path.join(sdir, filename), data)
        entries.append((filename, base))
    for filename, _b, _d in old_by_subject.values():
        if '/' not in filename:
            os.unlink(os.path.join(sdir, filename))
        report[filename] = 'removed'
    lines = ['# patch base-version (git format-patch mails, applied in '
             'order with git am --3way)']
    lines += ['%s %s' % e for e in entries]
    util.write_atomic(os.path.join(sdir, 'series'),
                      ('\n'.join(lines) + '\n').encode())
    return report


def _save_state(state):
    util.write_atomic(_state_path(), util.dump_json(state))


def _load_state():
    if not os.path.exists(_state_path()):
        return None
    with open(_state_path()) as f:
        return json.load(f)


def rebase(name, onto, workdir=None):
    """Carry series ``name`` onto release ``onto``.

    :returns: ``{'series', 'onto', 'results': [(patch, result)],
        'saved': {...}}``.
    :raises errors.RebaseInProgress: if a previous rebase is unfinished.
    :raises errors.SeriesConflict: on a conflict (state saved).
    """
    if _load_state():
        raise errors.RebaseInProgress(path=_load_state()['path'])
    path = workdir or os.path.join(paths.cache_dir(), 'rebase-wt')
    if os.path.exists(path):
        shutil.rmtree(path)
    results = checkout(name, onto, path)
    _save_state({'series': name, 'onto': onto, 'path': path,
                 'done': results, 'current': None, 'todo': []})
    return _finish()


def _finish():
    state = _load_state()
    saved = save(state['series'], state['path'], state['onto'])
    workrepo.Worktree(None, path=state['path']).remove()
    os.unlink(_state_path())
    return {'series': state['series'], 'onto': state['onto'],
            'results': state['done'], 'saved': saved}


def rebase_continue():
    """Continue after the user resolved a conflict in the worktree."""
    state = _load_state()
    if not state:
        raise errors.NoRebaseInProgress()
    wt = workrepo.Worktree(None, path=state['path'])
    if state.get('current'):
        proc = wt.git(['am', '--continue'], check=False)
        if proc.returncode != 0:
            raise errors.SeriesConflict(
                patch=state['current'], series=state['series'],
                version=state['onto'],
                reason='still unresolved: ' + (proc.stdout + proc.stderr)
                .decode('utf-8', 'replace')[-800:])
        state['done'].append((state['current'], 'resolved'))
        state['current'] = None
    s = series_mod.Series(state['series'])
    while state['todo']:
        filename = state['todo'].pop(0)
        try:
            state['done'].append((filename, workrepo.am(
                wt, s.patch_path(filename), s.name, state['onto'])))
        except errors.SeriesConflict:
            state['current'] = filename
            _save_state(state)
            raise
    _save_state(state)
    return _finish()


def rebase_abort():
    """Drop an unfinished rebase; the series files are untouched."""
    state = _load_state()
    if not state:
        raise errors.NoRebaseInProgress()
    wt = workrepo.Worktree(None, path=state['path'])
    wt.git(['am', '--abort'], check=False)
    wt.remove()
    os.unlink(_state_path())
    return state
