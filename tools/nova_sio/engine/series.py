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

"""Patch series: the hooks into upstream files, one directory per era.

``releases/series/<name>/series`` lists the patches in order, one per
line as ``<file> <base-version>``: the patch was written against that
upstream release, whose blobs its ``index`` lines name, so git's 3-way
machinery can carry it onto any other release.  Patches are
``git format-patch`` mails written with canonical options.

The runtime files (our new modules under ``nova/``, tests excluded) are
not patches: they are added to every release as they are in the checkout.
"""

import hashlib
import os
import re

from nova_sio import errors
from nova_sio import paths
from nova_sio import util

DIFF_GIT_RE = re.compile(rb'^diff --git a/(\S+) b/(\S+)$', re.M)
NEW_FILE_RE = re.compile(rb'^new file mode ', re.M)
# Always tracked, whether or not a series touches them today.
BASE_TRACKED = (
    'nova/virt/libvirt/driver.py',
    'nova/virt/libvirt/imagebackend.py',
    'nova/virt/libvirt/utils.py',
    'nova/conf/libvirt.py',
)
TEST_PREFIX = 'nova/tests/'


class Series(object):
    """An ordered patch series.

    :param name: directory name under ``releases/series``.
    :param root: override of the ``releases/series`` directory.
    """

    def __init__(self, name, root=None):
        self.name = name
        self.dir = os.path.join(root or series_root(), name)
        self.entries = []
        path = os.path.join(self.dir, 'series')
        if not os.path.exists(path):
            raise errors.SeriesError(series=name,
                                     reason='%s is missing' % path)
        for num, fields in util.read_table(path):
            if len(fields) != 2:
                raise errors.SeriesError(
                    series=name, reason='series line %d: expected '
                    '"<patch> <base-version>"' % num)
            if not os.path.exists(os.path.join(self.dir, fields[0])):
                raise errors.SeriesError(
                    series=name, reason='%s is listed but missing'
                    % fields[0])
            self.entries.append((fields[0], fields[1]))
        names = [e[0] for e in self.entries]
        if len(set(names)) != len(names):
            raise errors.SeriesError(series=name,
                                     reason='a patch is listed twice')

    def patch_path(self, filename):
        return os.path.join(self.dir, filename)

    def bases(self):
        return sorted(set(b for _p, b in self.entries))

    def touched(self):
        """Return the upstream paths the patches modify (not create)."""
        result = set()
        for filename, _base in self.entries:
            with open(self.patch_path(filename), 'rb') as f:
                data = f.read()
            sections = re.split(rb'(?m)^(?=diff --git )', data)
            for sec in sections:
                m = DIFF_GIT_RE.match(sec)
                if m and not NEW_FILE_RE.search(sec.split(b'\n@@', 1)[0]):
                    result.add(m.group(1).decode())
        return result

    def digest(self):
        """Return a sha256 over the series file and every patch."""
        h = hashlib.sha256()
        with open(os.path.join(self.dir, 'series'), 'rb') as f:
            h.update(f.read())
        for filename, _base in self.entries:
            with open(self.patch_path(filename), 'rb') as f:
                h.update(filename.encode() + b'\0' + f.read() + b'\0')
        return h.hexdigest()


def series_root():
    return os.path.join(paths.releases_dir(), 'series')


def all_series():
    """Return every series in ``releases/series``, by name."""
    root = series_root()
    if not os.path.isdir(root):
        return {}
    result = {}
    for name in sorted(os.listdir(root)):
        if os.path.exists(os.path.join(root, name, 'series')):
            result[name] = Series(name)
    return result


def tracked_files():
    """Return the upstream files imported for every release."""
    result = set(BASE_TRACKED)
    for s in all_series().values():
        result |= s.touched()
    return sorted(result)


def runtime_files(with_tests=False):
    """Return ``{relative path: bytes}`` of our new files under ``nova/``.

    :param with_tests: include ``nova/tests/...`` (for test trees).
    """
    root = paths.project_root()
    base = os.path.join(root, 'nova')
    result = {}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != '__pycache__')
        for fn in sorted(filenames):
            if fn.endswith(('.pyc', '.pyo', '.orig', '.rej', '~')):
                continue
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, root).replace(os.sep, '/')
            if rel.startswith(TEST_PREFIX) and not with_tests:
                continue
            with open(full, 'rb') as f:
                result[rel] = f.read()
    return result


def runtime_digest():
    """Return a sha256 over the shipped runtime files."""
    h = hashlib.sha256()
    for rel, data in sorted(runtime_files().items()):
        h.update(rel.encode() + b'\0' + data + b'\0')
    return h.hexdigest()
