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

"""The three verify gates on small synthetic trees, with real patch/git."""

import os
import shutil
import tempfile

import testtools

from nova_sio.engine import diffs
from nova_sio.engine import emit
from nova_sio.engine import workrepo

BASE = b''.join(b'line %d\n' % i for i in range(1, 41))


def _write(root, rel, data):
    full = os.path.join(root, rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'wb') as f:
        f.write(data)


def make_diff(files_before, files_after):
    """Return the canonical diff between two ``{path: bytes}`` trees."""
    tmp = tempfile.mkdtemp()
    try:
        workrepo.git(['init', '--quiet'], tmp)
        for rel, data in files_before.items():
            _write(tmp, rel, data)
        workrepo.git(['add', '--all'], tmp)
        workrepo.git(['commit', '--quiet', '--allow-empty', '-m', 'a'], tmp)
        for rel in files_before:
            if rel not in files_after:
                os.unlink(os.path.join(tmp, rel))
        for rel, data in files_after.items():
            _write(tmp, rel, data)
        workrepo.git(['add', '--all'], tmp)
        return workrepo.canonical_diff(tmp, 'HEAD', cached=True)
    finally:
        shutil.rmtree(tmp)


def plain_git_diff(before, after, *options):
    """Return ``git diff <options>`` of one file, not canonical.

    :param before: the old bytes of ``nova/virt/driver.py``.
    :param after: the new bytes.
    :param options: extra ``git diff`` options, e.g. ``-U0``.
    """
    tmp = tempfile.mkdtemp()
    try:
        workrepo.git(['init', '--quiet'], tmp)
        _write(tmp, 'nova/virt/driver.py', before)
        workrepo.git(['add', '--all'], tmp)
        workrepo.git(['commit', '--quiet', '-m', 'a'], tmp)
        _write(tmp, 'nova/virt/driver.py', after)
        return workrepo.git(['diff', '--src-prefix=a/', '--dst-prefix=b/']
                            + list(options), tmp).stdout
    finally:
        shutil.rmtree(tmp)


class VerifyGatesTest(testtools.TestCase):

    def setUp(self):
        super(VerifyGatesTest, self).setUp()
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root)
        self.before = {'nova/virt/driver.py': BASE}
        after = BASE.replace(b'line 20\n', b'line 20\nadded\n')
        self.after = {'nova/virt/driver.py': after}
        self.diff = b'# header\n\n' + make_diff(self.before, self.after)

    def pristine(self, files):
        for rel, data in files.items():
            _write(self.root, rel, data)

    def verify(self, data=None):
        return emit.verify_tree(self.root, data or self.diff)

    def assertClean(self, report):
        self.assertEqual({'dry_run': [], 'positions': [], 'roundtrip': []},
                         report)

    def assertGateFails(self, report, gate, text):
        self.assertTrue(report[gate], 'gate %s passed: %r' % (gate, report))
        self.assertIn(text, ' '.join(report[gate]))

    def test_exact_diff_passes(self):
        self.pristine(self.before)
        self.assertClean(self.verify())

    def test_offset_rejected(self):
        self.pristine({'nova/virt/driver.py': b'extra\nextra\n' + BASE})
        report = self.verify()
        self.assertGateFails(report, 'dry_run', 'offset 2 lines')
        self.assertGateFails(report, 'positions', 'differs from the '
                             'pristine file')

    def test_fuzz_rejected(self):
        self.pristine({'nova/virt/driver.py': BASE.replace(
            b'line 18\n', b'line eighteen\n')})
        report = self.verify()
        self.assertTrue(report['dry_run'])
        self.assertGateFails(report, 'positions', 'line 18 differs')
        self.assertTrue(report['roundtrip'])

    def test_failed_hunk_rejected(self):
        self.pristine({'nova/virt/driver.py': BASE.replace(
            b'line 20\n', b'something else\n').replace(
            b'line 21\n', b'x\n').replace(b'line 19\n', b'y\n')})
        report = self.verify()
        self.assertGateFails(report, 'dry_run', 'FAILED')
        self.assertTrue(report['positions'])
        self.assertGateFails(report, 'roundtrip', 'real apply exited')

    def test_reversed_rejected(self):
        self.pristine(self.after)
        report = self.verify()
        self.assertGateFails(report, 'dry_run', 'Reversed')
        self.assertTrue(report['positions'])

    def test_missing_file_rejected(self):
        report = self.verify()
        self.assertGateFails(report, 'dry_run', "can't find file")
        self.assertGateFails(report, 'positions', 'missing in the pristine')

    def test_one_file_in_two_sections_rejected(self):
        self.pristine(self.before)
        second = make_diff(self.after, {'nova/virt/driver.py':
                                        self.after['nova/virt/driver.py']
                                        + b'tail\n'})
        report = self.verify(self.diff + second)
        self.assertGateFails(report, 'positions', 'more than one section')
        self.assertTrue(report['dry_run'] or report['roundtrip'])

    def test_new_and_deleted_files_pass(self):
        before = dict(self.before, **{'nova/old.py': b'old\ncontent\n'})
        after = dict(self.after, **{'nova/virt/new.py': b'brand new\n'})
        self.pristine(before)
        data = make_diff(before, after)
        self.assertIn(b'new file mode', data)
        self.assertIn(b'deleted file mode', data)
        self.assertClean(self.verify(data))

    def test_new_file_that_exists_upstream_rejected(self):
        after = dict(self.after, **{'nova/virt/new.py': b'brand new\n'})
        data = make_diff(self.before, after)
        self.pristine(after)
        report = self.verify(data)
        self.assertGateFails(report, 'positions', 'marked new but exists')

    def test_deleted_file_with_other_content_rejected(self):
        before = dict(self.before, **{'nova/old.py': b'old\ncontent\n'})
        data = make_diff(before, self.before)
        self.pristine(dict(self.before, **{'nova/old.py': b'old\nchanged\n'}))
        report = self.verify(data)
        self.assertGateFails(report, 'positions', 'line 2 differs')

    def test_no_trailing_newline(self):
        before = {'nova/a.py': b'one\ntwo\nthree'}
        after = {'nova/a.py': b'one\ntwo\nthree\nfour'}
        data = make_diff(before, after)
        self.assertIn(b'\\ No newline at end of file', data)
        self.pristine(before)
        self.assertClean(self.verify(data))

    def test_no_trailing_newline_mismatch_rejected(self):
        before = {'nova/a.py': b'one\ntwo\nthree'}
        after = {'nova/a.py': b'one\ntwo\nthree\nfour'}
        data = make_diff(before, after)
        self.pristine({'nova/a.py': b'one\ntwo\nthree\n'})
        report = self.verify(data)
        self.assertGateFails(report, 'positions', 'end-of-line marker')

    def test_non_utf8_bytes(self):
        before = {'nova/b.py': b'caf\xe9\nline\n' + BASE}
        after = {'nova/b.py': b'caf\xe9\nline\n\xff\xfe added\n' + BASE}
        data = make_diff(before, after)
        self.pristine(before)
        self.assertClean(self.verify(data))
        self.pristine({'nova/b.py': b'cafe\nline\n' + BASE})
        self.assertGateFails(self.verify(data), 'positions', 'line 1 differs')

    def test_garbage_rejected(self):
        self.pristine(self.before)
        report = self.verify(b'this is not a diff\n')
        self.assertGateFails(report, 'positions', 'no file sections')
        self.assertTrue(report['dry_run'] or report['roundtrip'])

    def test_truncated_hunk_rejected(self):
        self.pristine(self.before)
        data = self.diff.rsplit(b'\n', 3)[0] + b'\n'
        report = self.verify(data)
        self.assertGateFails(report, 'positions', 'malformed')

    def test_roundtrip_detects_noncanonical_body(self):
        # A valid diff that is not what emit would write (context 1).
        self.pristine(self.before)
        data = plain_git_diff(BASE, self.after['nova/virt/driver.py'],
                              '-U1')
        report = self.verify(data)
        self.assertEqual([], report['dry_run'])
        self.assertGateFails(report, 'positions', 'has 1 lines of leading '
                             'context, not 3')
        self.assertGateFails(report, 'roundtrip', 'differs from the emitted')

    def test_zero_context_hunk_rejected(self):
        self.pristine(self.before)
        data = plain_git_diff(BASE, self.after['nova/virt/driver.py'],
                              '-U0')
        self.assertIn(b'\n@@ -20,0 +21 @@ line 20\n+added\n', data)
        report = self.verify(data)
        self.assertGateFails(report, 'positions', 'hunk #1 has 0 lines of '
                             'leading context, not 3')
        self.assertGateFails(report, 'positions', 'hunk #1 has 0 lines of '
                             'trailing context, not 3')
        self.assertGateFails(report, 'roundtrip', 'differs from the emitted')

    def test_zero_context_hunk_into_another_file_rejected(self):
        # Without context GNU patch inserts at the stated line of any
        # file: the dry run is clean, so the positions gate must refuse.
        self.pristine({'nova/virt/driver.py': BASE.replace(b'line',
                                                           b'other')})
        data = plain_git_diff(BASE, self.after['nova/virt/driver.py'],
                              '-U0')
        report = self.verify(data)
        self.assertEqual([], report['dry_run'])
        self.assertGateFails(report, 'positions', '0 lines of leading '
                             'context')

    def test_zero_context_removal_rejected(self):
        self.pristine(self.before)
        data = plain_git_diff(BASE, BASE.replace(b'line 7\n', b''), '-U0')
        self.assertIn(b'\n@@ -7 +6,0 @@ line 6\n-line 7\n', data)
        report = self.verify(data)
        self.assertGateFails(report, 'positions', 'hunk #1 has 0 lines of '
                             'leading context, not 3')

    def test_short_context_at_file_edges_passes(self):
        before = {'nova/virt/driver.py': BASE}
        after = {'nova/virt/driver.py': b'first\n' + BASE.replace(
            b'line 40\n', b'last\n')}
        data = make_diff(before, after)
        self.assertIn(b'@@ -1,3 +1,4 @@', data)
        self.assertIn(b'@@ -37,4 +38,4 @@', data)
        self.pristine(before)
        self.assertClean(self.verify(data))


class ParserTest(testtools.TestCase):

    def test_check_positions_requires_context(self):
        data = (b'diff --git a/nova/x b/nova/x\n--- a/nova/x\n+++ b/nova/x\n'
                b'@@ -5 +5 @@\n-line 5\n+five\n')
        problems = diffs.check_positions(diffs.parse(data),
                                         lambda rel: BASE)
        self.assertEqual(['nova/x: hunk #1 has 0 lines of leading context, '
                          'not 3', 'nova/x: hunk #1 has 0 lines of trailing '
                          'context, not 3'], problems)

    def test_counts_checked(self):
        data = (b'diff --git a/nova/x b/nova/x\n--- a/nova/x\n+++ b/nova/x\n'
                b'@@ -1,3 +1,3 @@\n a\n-b\n+c\n')
        self.assertRaises(diffs.DiffFormatError, diffs.parse, data)

    def test_preamble_split(self):
        pre, body = diffs.split_preamble(b'# hi\n\ndiff --git a/x b/x\n')
        self.assertEqual(b'# hi\n\n', pre)
        self.assertEqual(b'diff --git a/x b/x\n', body)

    def test_patch_output_allow_list(self):
        self.assertEqual([], diffs.check_patch_output(
            b'checking file virt/libvirt/driver.py\n'))
        self.assertEqual(['Hunk #1 succeeded at 19 (offset 2 lines).'],
                         diffs.check_patch_output(
                             b'checking file a\nHunk #1 succeeded at 19 '
                             b'(offset 2 lines).\n'))
