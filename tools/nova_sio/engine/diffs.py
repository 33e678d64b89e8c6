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

"""A strict parser for the unified diffs we emit, working on bytes.

Only the git flavour that :mod:`nova_sio.engine.emit` writes is accepted: one
``diff --git`` section per file, optional extended header lines, then
``---``/``+++`` and hunks.  Anything else is reported as a problem rather
than guessed at.
"""

import re

HUNK_RE = re.compile(rb'^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@')
NO_EOL = b'\\ No newline at end of file'
# Lines of context around every change, as emitted (``--unified=3``).
CONTEXT_LINES = 3


class DiffFormatError(ValueError):
    """The diff text is malformed."""


class Hunk(object):
    """One hunk: header numbers and ``(tag, text, has_newline)`` lines."""

    def __init__(self, old_start, old_len, new_start, new_len):
        self.old_start = old_start
        self.old_len = old_len
        self.new_start = new_start
        self.new_len = new_len
        self.lines = []

    def old_lines(self):
        return [(t, l, nl) for t, l, nl in self.lines if t in b' -']

    def new_lines(self):
        return [(t, l, nl) for t, l, nl in self.lines if t in b' +']


class FileDiff(object):
    """All hunks of one file.

    :param old_path: path after ``a/`` or ``None`` for a new file.
    :param new_path: path after ``b/`` or ``None`` for a deleted file.
    """

    def __init__(self, old_path, new_path):
        self.old_path = old_path
        self.new_path = new_path
        self.hunks = []
        self.header = []

    @property
    def path(self):
        return self.new_path or self.old_path

    @property
    def is_new(self):
        return self.old_path is None

    @property
    def is_deleted(self):
        return self.new_path is None


def split_preamble(data):
    """Split ``data`` into ``(preamble, body)`` at the first section."""
    idx = 0
    for line in data.splitlines(True):
        if line.startswith(b'diff --git ') or line.startswith(b'--- '):
            return data[:idx], data[idx:]
        idx += len(line)
    return data, b''


def _path(raw, prefix):
    raw = raw.split(b'\t')[0].rstrip(b'\r')
    if raw == b'/dev/null':
        return None
    if not raw.startswith(prefix):
        raise DiffFormatError('path %r lacks the %r prefix' % (raw, prefix))
    return raw[len(prefix):].decode('utf-8', 'surrogateescape')


def parse(data):
    """Parse a diff.

    :param data: the diff as bytes (a preamble is skipped).
    :returns: a list of :class:`FileDiff`.
    :raises DiffFormatError: when the text is not a well-formed diff.
    """
    _pre, body = split_preamble(data)
    lines = body.split(b'\n')
    if lines and lines[-1] == b'':
        lines.pop()
    else:
        if body:
            raise DiffFormatError('diff does not end with a newline')
    files = []
    cur = None
    hunk = None
    remaining_old = remaining_new = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        if hunk is not None and (remaining_old > 0 or remaining_new > 0):
            tag = line[:1]
            if tag == b' ':
                remaining_old -= 1
                remaining_new -= 1
            elif tag == b'-':
                remaining_old -= 1
            elif tag == b'+':
                remaining_new -= 1
            elif line == NO_EOL and hunk.lines:
                t, text, _nl = hunk.lines[-1]
                hunk.lines[-1] = (t, text, False)
                i += 1
                continue
            else:
                raise DiffFormatError('unexpected line %d in hunk: %r'
                                      % (i + 1, line[:60]))
            if remaining_old < 0 or remaining_new < 0:
                raise DiffFormatError('hunk at line %d is longer than its '
                                      'header says' % (i + 1))
            hunk.lines.append((tag, line[1:], True))
            i += 1
            continue
        if line == NO_EOL and hunk is not None and hunk.lines:
            t, text, _nl = hunk.lines[-1]
            hunk.lines[-1] = (t, text, False)
            i += 1
            continue
        if line.startswith(b'diff --git '):
            cur = FileDiff(None, None)
            cur.header.append(line)
            files.append(cur)
            hunk = None
            i += 1
            continue
        if line.startswith(b'--- ') and i + 1 < len(lines) and \
                lines[i + 1].startswith(b'+++ '):
            if cur is None or cur.hunks:
                cur = FileDiff(None, None)
                files.append(cur)
            cur.old_path = _path(line[4:], b'a/')
            cur.new_path = _path(lines[i + 1][4:], b'b/')
            hunk = None
            i += 2
            continue
        m = HUNK_RE.match(line)
        if m:
            if cur is None:
                raise DiffFormatError('hunk before any file header')
            old_len = int(m.group(2)) if m.group(2) is not None else 1
            new_len = int(m.group(4)) if m.group(4) is not None else 1
            hunk = Hunk(int(m.group(1)), old_len, int(m.group(3)), new_len)
            cur.hunks.append(hunk)
            remaining_old, remaining_new = old_len, new_len
            i += 1
            continue
        if cur is not None and not cur.hunks and (
                line.startswith((b'index ', b'new file mode ',
                                 b'deleted file mode ', b'old mode ',
                                 b'new mode ', b'similarity ',
                                 b'Binary files '))):
            cur.header.append(line)
            i += 1
            continue
        raise DiffFormatError('unexpected line %d: %r' % (i + 1, line[:60]))
    if hunk is not None and (remaining_old > 0 or remaining_new > 0):
        raise DiffFormatError('last hunk is truncated')
    for f in files:
        if f.old_path is None and f.new_path is None:
            raise DiffFormatError('section %r has no ---/+++ lines'
                                  % f.header[:1])
    return files


def split_lines(data):
    """Split file bytes into ``(lines, last_has_newline)``."""
    if not data:
        return [], True
    parts = data.split(b'\n')
    if parts[-1] == b'':
        parts.pop()
        return parts, True
    return parts, False


def check_positions(files, read_pristine):
    """Gate 2: every context and removed line sits at its stated line.

    :param files: parsed sections from :func:`parse`.
    :param read_pristine: ``callable(path) -> bytes or None``.
    :returns: a list of problem strings (empty when the diff is exact).
    """
    problems = []
    seen = set()
    for f in files:
        key = f.old_path or f.new_path
        if key in seen:
            problems.append('%s: appears in more than one section' % key)
        seen.add(key)
        original = read_pristine(f.old_path) if f.old_path else None
        if f.is_new:
            if read_pristine(f.new_path) is not None:
                problems.append('%s: marked new but exists upstream'
                                % f.new_path)
            continue
        if original is None:
            problems.append('%s: missing in the pristine tree' % f.old_path)
            continue
        lines, last_nl = split_lines(original)
        prev_end = 0
        for n, h in enumerate(f.hunks, 1):
            old = h.old_lines()
            if len(old) != h.old_len or len(h.new_lines()) != h.new_len:
                problems.append('%s: hunk #%d line counts do not match its '
                                'header' % (f.old_path, n))
                continue
            start = h.old_start - 1 if h.old_len else h.old_start
            if start < prev_end:
                problems.append('%s: hunk #%d overlaps the previous one'
                                % (f.old_path, n))
            for k, (tag, text, nl) in enumerate(old):
                idx = start + k
                if idx >= len(lines):
                    problems.append('%s: hunk #%d expects line %d beyond '
                                    'the end (%d lines)' % (
                                        f.old_path, n, idx + 1, len(lines)))
                    break
                if lines[idx] != text:
                    problems.append('%s: hunk #%d line %d differs from the '
                                    'pristine file' % (f.old_path, n,
                                                       idx + 1))
                    break
                is_last = idx == len(lines) - 1
                want_nl = last_nl or not is_last
                if nl != want_nl:
                    problems.append('%s: hunk #%d line %d end-of-line '
                                    'marker differs' % (f.old_path, n,
                                                        idx + 1))
                    break
            prev_end = start + len(old)
            problems += _check_context(f.old_path, n, h, start, len(lines))
    return problems


def _check_context(path, n, hunk, start, total):
    """Every hunk carries full context, except where the file ends.

    A hunk with less context (``diff -U0``) pins nothing around its
    change: patch applies it at any position whose removed lines match.

    :param path: the file's path, for the messages.
    :param n: the hunk's number.
    :param hunk: a :class:`Hunk`.
    :param start: its first old line (0-based).
    :param total: the number of lines of the pristine file.
    """
    tags = [tag for tag, _text, _nl in hunk.lines]
    lead = len(tags) - len(b''.join(tags).lstrip(b' '))
    trail = len(tags) - len(b''.join(tags).rstrip(b' '))
    problems = []
    if lead < CONTEXT_LINES and start != 0:
        problems.append('%s: hunk #%d has %d lines of leading context, '
                        'not %d' % (path, n, lead, CONTEXT_LINES))
    if trail < CONTEXT_LINES and start + hunk.old_len != total:
        problems.append('%s: hunk #%d has %d lines of trailing context, '
                        'not %d' % (path, n, trail, CONTEXT_LINES))
    return problems


ALLOWED_DRY_RUN = re.compile(rb'^checking file \S.*$')
ALLOWED_APPLY = re.compile(rb'^patching file \S.*$')


def check_patch_output(output, dry_run=True):
    """Gate 1 helper: every line of GNU patch output must be allowed.

    :param output: stdout+stderr bytes of ``patch``.
    :param dry_run: whether ``--dry-run`` was used.
    :returns: the offending lines (decoded), empty when clean.
    """
    pat = ALLOWED_DRY_RUN if dry_run else ALLOWED_APPLY
    bad = []
    for line in output.splitlines():
        if not line.strip():
            continue
        if not pat.match(line):
            bad.append(line.decode('utf-8', 'replace'))
    return bad
