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

"""A release diff against the files of an installed Nova.

What :mod:`~nova_sio.operator.install` and
:mod:`~nova_sio.operator.merge` both need: the files a diff touches, the
strict gates of :mod:`nova_sio.engine.emit` run against copies of the
installed files, and a scratch apply of a diff.
"""

import os
import shutil
import tempfile

from nova_sio.engine import diffs
from nova_sio.engine import emit
from nova_sio import errors
from nova_sio import util


class InstallRefused(errors.InstallError):
    """Install or revert stopped before changing anything.

    :param reason: what is wrong, in plain language.
    :param details: a JSON-able dict for ``--json`` (conflicts, gates).
    """

    def __init__(self, reason, details=None, review=None):
        super(InstallRefused, self).__init__(reason=reason)
        self.details = details or {}
        # A diff for people to review (the merge with its conflicts).
        self.review = review


def sections(data):
    """Return the files a diff modifies and the files it creates.

    :param data: the diff bytes.
    :returns: ``(modified, created)``, sorted package-relative paths.
    """
    try:
        files = diffs.parse(data)
    except diffs.DiffFormatError as exc:
        raise errors.InstallError(reason='malformed diff: %s' % exc)
    modified = sorted(f.old_path for f in files
                      if f.old_path and f.new_path)
    created = sorted(f.new_path for f in files if f.is_new)
    return modified, created


def problems(tree, data):
    """Run the strict gates of ``data`` against the installed files.

    The gates read copies of the files, so that a read-only tree (or
    one owned by another user) is judged on its content alone.

    :param tree: the :class:`~nova_sio.operator.tree.NovaTree`.
    :param data: the diff bytes.
    :returns: ``{gate: [problem]}`` of the gates that found problems.
    """
    modified, created = sections(data)
    scratch = tempfile.mkdtemp(prefix='nova-sio-gates-')
    try:
        for rel in modified + created:
            content = tree.read(rel)
            if content is None:
                continue
            dst = os.path.join(scratch, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, 'wb') as f:
                f.write(content)
        gates = emit.verify_tree(scratch, data)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dict((k, v) for k, v in gates.items() if v)


def scratch_apply(files, data):
    """Apply ``data`` to copies of ``files``; return what it writes.

    :param files: ``{path: bytes}`` of the files the diff modifies.
    :param data: the diff bytes.
    :returns: ``{path: bytes}`` of every file the diff writes.
    """
    scratch = tempfile.mkdtemp(prefix='nova-sio-plan-')
    try:
        for rel, content in files.items():
            dst = os.path.join(scratch, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, 'wb') as f:
                f.write(content)
        pkg = os.path.join(scratch, 'nova')
        os.makedirs(pkg, exist_ok=True)
        proc = util.run(['patch', '-p', '2'] + emit.PATCH_ARGS +
                        ['-d', pkg], input=data, check=False)
        if proc.returncode != 0:
            raise errors.InstallError(
                reason='the diff does not apply: %s' % (
                    proc.stdout + proc.stderr).decode(
                    'utf-8', 'replace').strip()[-1000:])
        modified, created = sections(data)
        result = {}
        for rel in modified + created:
            with open(os.path.join(scratch, rel), 'rb') as f:
                result[rel] = f.read()
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
