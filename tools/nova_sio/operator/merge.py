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

"""Adapt a release diff to a Nova tree with local changes.

Every file the release diff touches is merged three ways (installed,
pristine upstream, patched upstream) with ``git merge-file``. Whether
the tree is the release at all is judged from the regions of the
release diff's hunks (:class:`HunkRegion`): local changes outside them
are merged, changes inside them only when the merge sees no conflict.
:func:`merge_plan` fills an install plan with the diff built for the
tree, or refuses with the conflicting places and a diff for review.
"""

import os
import re
import shutil
import tempfile

from nova_sio.engine import diffs
from nova_sio.engine import emit
from nova_sio.engine import source
from nova_sio.engine import workrepo
from nova_sio import errors
from nova_sio.operator import gates
from nova_sio.operator import tree as tree_mod
from nova_sio import util

_RANGE_RE = re.compile(rb'^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@',
                       re.M)


def _ranges(old, new):
    """Return the ``(old_start, old_len, new_start, new_len)`` changes."""
    with tempfile.NamedTemporaryFile(prefix='nova-sio-a-') as a, \
            tempfile.NamedTemporaryFile(prefix='nova-sio-b-') as b:
        a.write(old)
        a.flush()
        b.write(new)
        b.flush()
        proc = util.run(['git', 'diff', '--no-index', '--no-color',
                         '--no-ext-diff', '-U0', a.name, b.name],
                        check=False)
    out = []
    for m in _RANGE_RE.finditer(proc.stdout):
        out.append((int(m.group(1)),
                    int(m.group(2)) if m.group(2) is not None else 1,
                    int(m.group(3)),
                    int(m.group(4)) if m.group(4) is not None else 1))
    return out


def _span(start, length):
    if length == 0:
        return 'after line %d' % start
    if length == 1:
        return 'line %d' % start
    return 'lines %d-%d' % (start, start + length - 1)


def _find_block(lines, block, start):
    """Return the index of ``block`` in ``lines`` at or after ``start``."""
    if not block:
        return None
    n = len(block)
    for i in range(start, len(lines) - n + 1):
        if lines[i:i + n] == block:
            return i
    for i in range(0, min(start, len(lines) - n + 1)):
        if lines[i:i + n] == block:
            return i
    return None


class HunkRegion(object):
    """Where one hunk of the release diff lies in pristine and installed.

    :param number: the hunk's 1-based number in its file section.
    :param hunk: the :class:`~nova_sio.engine.diffs.Hunk`.
    :param changes: the pristine -> installed changes of the file, as
        :func:`_ranges` returns them.
    """

    def __init__(self, number, hunk, changes):
        self.number = number
        self.header = '@@ -%d,%d +%d,%d @@' % (
            hunk.old_start, hunk.old_len, hunk.new_start, hunk.new_len)
        self.first = hunk.old_start
        self.last = hunk.old_start + max(hunk.old_len, 1) - 1
        self.inst_first = self.first + _shift_before(changes, self.first)
        self.inst_last = self.last + _shift_before(changes, self.last + 1)

    def touched_by(self, change):
        """Whether a pristine -> installed change lies inside the region.

        A change that only adds lines right before the first or right
        after the last line of the region leaves the region whole.
        """
        start, length = change[0], change[1]
        if length == 0:
            return self.first <= start < self.last
        return start <= self.last and start + length - 1 >= self.first

    def overlaps(self, side, start, length):
        """Whether lines ``start..start+length-1`` of a side overlap.

        :param side: ``pristine`` or ``installed``.
        """
        lo, hi = ((self.first, self.last) if side == 'pristine'
                  else (self.inst_first, self.inst_last))
        if length == 0:
            return lo <= start <= hi
        return start <= hi and start + length - 1 >= lo

    def name(self):
        return 'hunk %d %s' % (self.number, self.header)


def _shift_before(changes, line):
    """Return how far pristine line ``line`` moved in the installed file.

    :param changes: the pristine -> installed changes.
    :param line: a pristine line number.
    """
    shift = 0
    for old_start, old_len, _new_start, new_len in changes:
        end = old_start + old_len if old_len else old_start + 1
        if end <= line:
            shift += new_len - old_len
    return shift


def _conflict_places(merged, installed, pristine, regions=()):
    """Name the conflicts of a ``git merge-file --diff3`` result.

    :param regions: the :class:`HunkRegion` objects of the file, to name
        the hunk each conflict lies in.
    :returns: a list of dicts with installed and pristine line ranges.
    """
    inst_lines = installed.split(b'\n')
    base_lines = pristine.split(b'\n')
    places = []
    section = None
    ours, base, theirs = [], [], []
    inst_pos = base_pos = 0
    for line in merged.split(b'\n'):
        if line.startswith(b'<<<<<<< '):
            section, ours, base, theirs = 'ours', [], [], []
            continue
        if section and line.startswith(b'||||||| '):
            section = 'base'
            continue
        if section and line == b'=======':
            section = 'theirs'
            continue
        if section and line.startswith(b'>>>>>>> '):
            i = _find_block(inst_lines, ours, inst_pos)
            j = _find_block(base_lines, base, base_pos)
            place = {'installed': _span(i + 1, len(ours)) if i is not None
                     else 'lines removed locally',
                     'pristine': _span(j + 1, len(base)) if j is not None
                     else 'new lines',
                     'installed_text': [x.decode('utf-8', 'replace')
                                        for x in ours[:8]],
                     'wanted_text': [x.decode('utf-8', 'replace')
                                     for x in theirs[:8]]}
            hunks = []
            for r in regions:
                if (j is not None and r.overlaps('pristine', j + 1,
                                                 len(base))) or \
                        (i is not None and r.overlaps('installed', i + 1,
                                                      len(ours))):
                    hunks.append(r.name())
            place['hunks'] = hunks
            if i is not None:
                inst_pos = i + len(ours)
            if j is not None:
                base_pos = j + len(base)
            places.append(place)
            section = None
            continue
        if section == 'ours':
            ours.append(line)
        elif section == 'base':
            base.append(line)
        elif section == 'theirs':
            theirs.append(line)
    return places


def merge_file(installed, pristine, patched, regions=()):
    """Merge our change to one file into its installed version.

    :param installed: the installed bytes.
    :param pristine: the pristine upstream bytes.
    :param patched: the pristine bytes with the release diff applied.
    :param regions: the file's :class:`HunkRegion` objects.
    :returns: ``(merged bytes, conflict places)``; with conflicts the
        bytes hold the ``diff3`` conflict markers.
    """
    tmp = tempfile.mkdtemp(prefix='nova-sio-merge-')
    try:
        names = []
        for name, data in (('installed', installed),
                           ('pristine', pristine), ('nova-sio', patched)):
            path = os.path.join(tmp, name)
            with open(path, 'wb') as f:
                f.write(data)
            names.append(path)
        proc = util.run(['git', 'merge-file', '-p', '--diff3',
                         '-L', 'installed', '-L', 'pristine', '-L',
                         'nova-sio'] + names, check=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if proc.returncode == 0:
        return proc.stdout, []
    if proc.returncode < 0 or proc.returncode > 127:
        raise errors.InstallError(reason='git merge-file failed: %s' %
                                  proc.stderr.decode('utf-8', 'replace'))
    return proc.stdout, _conflict_places(proc.stdout, installed, pristine,
                                         regions)


def _tree_diff(tree, modified, merged, created):
    """Build the canonical diff from the installed files to ``merged``."""
    scratch = tempfile.mkdtemp(prefix='nova-sio-tree-')
    try:
        for rel in modified:
            dst = os.path.join(scratch, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(tree.path(rel), dst)
        workrepo.git(['init', '--quiet'], scratch)
        workrepo.git(['add', '--all'], scratch)
        workrepo.git(['commit', '--quiet', '--allow-empty', '-m',
                      'installed'], scratch)
        for rel, data in list(merged.items()) + list(created.items()):
            dst = os.path.join(scratch, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, 'wb') as f:
                f.write(data)
        workrepo.git(['add', '--all'], scratch)
        return workrepo.canonical_diff(scratch, 'HEAD', cached=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _pristine_and_patched(version, data, modified, gate_problems):
    """Return pristine ``{path: bytes}`` and the release diff applied.

    The patched side is the release diff itself applied to the pristine
    files, so a tree with local changes gets exactly the code a pristine
    tree gets.
    """
    try:
        source.fetch(version)
    except errors.SourceUnavailable as exc:
        raise gates.InstallRefused(
            'releases/%s.diff does not fit the installed files, and the '
            'pristine source needed to adapt it is unavailable: %s'
            % (version, exc.kwargs.get('reason', exc)),
            {'gates': gate_problems})
    # The engine keeps the tracked files of every release extracted.
    cached = workrepo.pristine_files(version)
    pristine = dict((rel, cached[rel]) for rel in modified if rel in cached)
    if len(pristine) != len(modified):
        pristine = source.read_files(version, modified)
    recorded = emit.load_manifest()['releases'].get(version, {}).get(
        'pristine_sha256') or {}
    for rel in modified:
        if rel not in pristine:
            raise errors.InstallError(
                reason='%s is not in pristine Nova %s' % (rel, version))
        want = recorded.get(rel)
        if want and util.sha256_bytes(pristine[rel]) != want:
            raise errors.SourceMismatch(
                version=version, path=rel, expected=want,
                actual=util.sha256_bytes(pristine[rel]))
    return pristine, gates.scratch_apply(pristine, data)


def _file_hunks(data):
    """Return ``{path: [Hunk]}`` of the files a diff modifies."""
    try:
        files = diffs.parse(data)
    except diffs.DiffFormatError as exc:
        raise errors.InstallError(reason='malformed diff: %s' % exc)
    return dict((f.old_path, f.hunks) for f in files
                if f.old_path and f.new_path)


def _describe_conflict(c):
    where = '%s %s (pristine %s' % (c['file'], c['installed'],
                                    c['pristine'])
    if c.get('hunks'):
        where += ', %s' % ' and '.join(c['hunks'])
    return where + ')'


def merge_plan(plan, release_data, gate_problems, progress, vouched):
    """Fill ``plan`` with a diff built for a tree with local changes.

    Whether the tree is the release is judged from the regions of the
    release diff's hunks: local changes outside them are merged, changes
    inside them are merged only when ``git merge-file`` sees no
    conflict.  When nothing vouches for the version (no metadata, or
    ``--force-version`` against it), the regions must speak for it: a
    tree whose local changes reach into any region is taken to be
    another release.

    :param plan: the :class:`~nova_sio.operator.install.Plan` to fill.
    :param release_data: the bytes of ``releases/<version>.diff``.
    :param gate_problems: what the gates found against the release diff,
        reported when the pristine source is unavailable.
    :param progress: ``callable(message)`` for progress lines.
    :param vouched: the package metadata names this version.
    :raises InstallRefused: on a conflict, a tree that looks like another
        release, or a merged diff that fails the gates.
    """
    tree, version = plan.tree, plan.version
    progress('the release diff does not fit the installed files exactly; '
             'merging it with the local changes, from pristine Nova %s'
             % version)
    modified, created = gates.sections(release_data)
    file_hunks = _file_hunks(release_data)
    pristine_files, patched_files = _pristine_and_patched(
        version, release_data, modified, gate_problems)
    merged, conflicts, touched = {}, [], []
    total_regions = sum(len(file_hunks.get(rel, ())) for rel in modified)
    review = {}
    for rel in modified:
        installed = tree.read(rel)
        pristine = pristine_files[rel]
        patched = patched_files[rel]
        if installed == pristine:
            merged[rel] = patched
            continue
        changes = _ranges(pristine, installed)
        regions = [HunkRegion(n, h, changes)
                   for n, h in enumerate(file_hunks.get(rel, ()), 1)]
        inside = [r for r in regions
                  if any(r.touched_by(c) for c in changes)]
        touched.extend('%s %s' % (rel, r.name()) for r in inside)
        changed = sum(max(o, n) for _os, o, _ns, n in changes)
        plan.differed.append({
            'file': rel, 'changed_lines': changed,
            'hunk_regions_changed': [r.name() for r in inside],
            'places': ['pristine %s -> installed %s' % (
                _span(a, b), _span(c, d)) for a, b, c, d in changes]})
        result, places = merge_file(installed, pristine, patched, regions)
        review[rel] = result
        if places:
            for p in places:
                p['file'] = rel
            conflicts.extend(places)
        else:
            merged[rel] = result
    if not vouched and touched:
        meta = tree_mod.metadata_version(tree)
        raise gates.InstallRefused(
            'the installed files do not look like Nova %s (local changes '
            'reach %d of the %d hunk regions of releases/%s.diff)%s; give '
            'the right --version' % (
                version, len(touched), total_regions, version,
                ', and the package metadata says %s' % meta
                if meta and meta != version else ''),
            {'wrong_version': True, 'hunk_regions_changed': touched,
             'hunk_regions': total_regions, 'differed': plan.differed})
    for rel in created:
        if tree.read(rel) is not None:
            conflicts.append({'file': rel, 'installed': 'already exists',
                              'pristine': 'absent', 'hunks': []})
    new_files = dict((rel, patched_files[rel]) for rel in created)
    if conflicts:
        body = _tree_diff(tree, modified, dict(merged, **review),
                          new_files)
        header = ('# nova-sio: REVIEW ONLY. releases/%s.diff merged with '
                  'the local changes of\n# the Nova in %s; it CONFLICTS '
                  'in these places, marked in the\n# patched files by '
                  '"<<<<<<< installed", "||||||| pristine", "=======" and\n'
                  '# ">>>>>>> nova-sio" lines to be resolved by hand '
                  'before use:\n%s\n\n' % (
                      version, tree.nova_dir, '\n'.join(
                          '#   ' + _describe_conflict(c)
                          for c in conflicts))).encode()
        raise gates.InstallRefused(
            'the installed Nova differs from pristine %s where nova-sio '
            'changes it, so the backend cannot be added automatically. '
            'Conflicting places: %s' % (version, '; '.join(
                _describe_conflict(c) for c in conflicts)),
            {'conflicts': conflicts, 'differed': plan.differed},
            review=header + body)
    if touched:
        plan.notes.append('local changes inside hunk regions merged '
                          'without conflict: %s' % ', '.join(touched))
    body = _tree_diff(tree, modified, merged, new_files)
    header = ('# nova-sio: diff for the Nova %s in %s, built from '
              'releases/%s.diff by\n# a three-way merge with the local '
              'changes of: %s\n\n' % (
                  version, tree.nova_dir, version,
                  ', '.join(d['file'] for d in plan.differed))).encode()
    data = header + body
    problems = gates.problems(tree, data)
    if problems:
        raise gates.InstallRefused(
            'the diff built for this tree merged cleanly but does not '
            'pass the strict checks: %s' % '; '.join(
                p for v in problems.values() for p in v),
            {'gates': problems, 'differed': plan.differed})
    plan.mode = 'merged'
    plan.data = data
    expected = dict(merged)
    expected.update(new_files)
    plan.expected = expected
