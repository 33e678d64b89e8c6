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

"""Nova releases, their series, and the era map to patch series.

The committed ``releases/nova-releases.tsv`` lists the releases known when
it was written (from openstack/releases).  Newer final releases are
discovered from PyPI and from the tags of the git remote.  The era map
``releases/eras.txt`` assigns every version to one patch series.
"""

import os
import re

from nova_sio import errors
from nova_sio import paths
from nova_sio import util

FINAL_RE = re.compile(r'^\d+\.\d+\.\d+$')
FIRST = '2015.1.0'

# Nova's major version numbers per series (from 12 on, one per series).
SERIES_BY_MAJOR = {
    12: 'liberty', 13: 'mitaka', 14: 'newton', 15: 'ocata', 16: 'pike',
    17: 'queens', 18: 'rocky', 19: 'stein', 20: 'train', 21: 'ussuri',
    22: 'victoria', 23: 'wallaby', 24: 'xena', 25: 'yoga', 26: 'zed',
    27: 'antelope', 28: 'bobcat', 29: 'caracal', 30: 'dalmatian',
    31: 'epoxy', 32: 'flamingo', 33: 'gazpacho', 34: 'hibiscus',
}
# Release ids (as openstack/requirements names its branches).
RELEASE_ID = {
    'antelope': '2023.1', 'bobcat': '2023.2', 'caracal': '2024.1',
    'dalmatian': '2024.2', 'epoxy': '2025.1', 'flamingo': '2025.2',
    'gazpacho': '2026.1', 'hibiscus': '2026.2',
}


def vkey(version):
    """Sort key of a final version string.

    :param version: e.g. ``'2015.1.2'`` or ``'33.0.2'``.
    Date-based versions (Kilo and older) sort before 12.0.0: 2015.1.x
    becomes (11, 0, x).

    :returns: a tuple of ints.
    """
    parts = [int(p) for p in version.split('.')]
    if parts[0] >= 2010:
        parts = [(parts[0] - 2015) * 2 + parts[1] + 10, 0] + parts[2:]
    return tuple(parts)


def is_final(version):
    """Tell whether ``version`` is a final release in our range."""
    return bool(FINAL_RE.match(version)) and vkey(version) >= vkey(FIRST)


def series_of(version, known=None):
    """Return the series codename of ``version``.

    :param version: a final version.
    :param known: optional mapping version -> series from the TSV.
    """
    if known and version in known:
        return known[version]
    if version.startswith('2015.1.'):
        return 'kilo'
    return SERIES_BY_MAJOR.get(vkey(version)[0], 'unknown')


def release_id(series):
    """Return the release id (``2025.1``) or the codename for old series."""
    return RELEASE_ID.get(series, series)


class Release(object):
    """One final Nova release.

    :param version: the version string.
    :param series: its series codename.
    :param commit: the upstream commit, when known.
    :param origins: where the release was seen (tsv, pypi, git).
    """

    def __init__(self, version, series, commit=None, origins=()):
        self.version = version
        self.series = series
        self.commit = commit
        self.origins = set(origins)

    def __repr__(self):
        return 'Release(%s, %s)' % (self.version, self.series)


def load_known(path=None):
    """Read ``releases/nova-releases.tsv``.

    :returns: a dict version -> Release, final releases only.
    """
    path = path or os.path.join(paths.releases_dir(), 'nova-releases.tsv')
    result = {}
    with open(path) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            fields = line.rstrip('\n').split('\t')
            version, series = fields[0], fields[1]
            commit = fields[2] if len(fields) > 2 else None
            if is_final(version):
                result[version] = Release(version, series, commit, ['tsv'])
    return result


def all_releases(extra_versions=()):
    """Return every final release, oldest first.

    :param extra_versions: versions discovered elsewhere (PyPI, git tags).
    :returns: a list of :class:`Release`.
    """
    known = load_known()
    for version, origin in extra_versions:
        if not is_final(version):
            continue
        if version in known:
            known[version].origins.add(origin)
        else:
            series = series_of(version)
            known[version] = Release(version, series, None, [origin])
    return sorted(known.values(), key=lambda r: vkey(r.version))


class Era(object):
    """A version range served by one patch series.

    :param first: first version (inclusive).
    :param last: last version (inclusive), or ``None`` for open-ended.
    :param series: the name of the series directory under
        ``releases/series``.
    :param name: the era's name (E1 ... E6 with sub-variants).
    """

    def __init__(self, name, first, last, series):
        self.name = name
        self.first = first
        self.last = last
        self.series = series

    def contains(self, version):
        k = vkey(version)
        if k < vkey(self.first):
            return False
        return self.last is None or k <= vkey(self.last)

    def __repr__(self):
        return 'Era(%s %s..%s -> %s)' % (
            self.name, self.first, self.last or '', self.series)


def load_eras(path=None):
    """Read ``releases/eras.txt``: ``name first last series`` per line.

    ``last`` may be ``*`` for an open end.  Ranges must not overlap.

    :returns: a list of :class:`Era`, in file order.
    """
    path = path or os.path.join(paths.releases_dir(), 'eras.txt')
    eras = []
    for num, fields in util.read_table(path):
        if len(fields) != 4:
            raise errors.SeriesError(
                series=path, reason='line %d: expected "name first last '
                'series", got %r' % (num, ' '.join(fields)))
        name, first, last, series = fields
        eras.append(Era(name, first, None if last == '*' else last, series))
    ordered = sorted(eras, key=lambda e: vkey(e.first))
    for a, b in zip(ordered, ordered[1:]):
        if a.last is None or vkey(a.last) >= vkey(b.first):
            raise errors.SeriesError(
                series=path,
                reason='eras %s and %s overlap' % (a.name, b.name))
    return eras


def era_of(version, eras=None):
    """Return the :class:`Era` of ``version`` or ``None`` if uncovered."""
    for era in eras if eras is not None else load_eras():
        if era.contains(version):
            return era
    return None
