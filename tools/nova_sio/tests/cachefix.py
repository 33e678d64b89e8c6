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

"""Fixtures: a scratch checkout and an empty cache seeded with sources."""

import os
import shutil
import time

import fixtures

from nova_sio.engine import source
from nova_sio import paths

# Nothing listens there: PyPI and git lookups fail at once and the
# seeded cache is all there is.
DEAD_PYPI = 'http://127.0.0.1:9/pypi/nova'
DEAD_GIT = 'file:///nonexistent/nova.git'


def copy_sources(cache_from, cache_to, version, link=True):
    """Copy ``sources/<version>`` of one cache into another.

    :param cache_from: the cache holding the fetched release.
    :param cache_to: the cache to seed.
    :param version: the release.
    :param link: hard-link the archive (fast) instead of copying it; a
        test that alters the archive must copy.
    """
    src = os.path.join(cache_from, 'sources', version)
    dst = os.path.join(cache_to, 'sources', version)
    os.makedirs(dst)
    for name in os.listdir(src):
        if link:
            try:
                os.link(os.path.join(src, name), os.path.join(dst, name))
                continue
            except OSError:
                pass
        shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))


class ScratchProject(fixtures.Fixture):
    """A copy of ``releases/`` and ``nova/`` used as ``NOVA_SIO_ROOT``."""

    def _setUp(self):
        root = paths.project_root()
        self.path = self.useFixture(fixtures.TempDir()).path
        for name in ('releases', 'nova'):
            shutil.copytree(os.path.join(root, name),
                            os.path.join(self.path, name))
        self.useFixture(fixtures.EnvironmentVariable('NOVA_SIO_ROOT',
                                                     self.path))


class SeededCache(fixtures.Fixture):
    """An empty ``NOVA_SIO_CACHE`` holding only fetched source archives.

    No work repository, rerere cache, round-trip repository or pristine
    extraction: everything else is built on first use, as on a fresh
    machine after ``nova-sio fetch``.

    :param versions: releases whose sources are copied in; they are
        fetched into the current cache first.
    :param link: see :func:`copy_sources`.
    """

    def __init__(self, versions, link=True):
        super(SeededCache, self).__init__()
        self.versions = list(versions)
        self.link = link

    def _setUp(self):
        for v in self.versions:
            source.fetch(v)
        real = paths.cache_dir()
        self.path = self.useFixture(fixtures.TempDir()).path
        for v in self.versions:
            copy_sources(real, self.path, v, link=self.link)
        index = os.path.join(real, 'pypi-nova.json')
        if os.path.exists(index):
            dst = os.path.join(self.path, 'pypi-nova.json')
            shutil.copyfile(index, dst)
            now = time.time()
            os.utime(dst, (now, now))
        for key, value in (('NOVA_SIO_CACHE', self.path),
                           ('NOVA_SIO_PYPI_URL', DEAD_PYPI),
                           ('NOVA_SIO_GIT_URL', DEAD_GIT)):
            self.useFixture(fixtures.EnvironmentVariable(key, value))
        self.built = sorted(n for n in os.listdir(self.path)
                            if n not in ('sources', 'pypi-nova.json'))


class NoSource(fixtures.Fixture):
    """An empty cache and upstream sources that cannot be reached.

    PyPI is a closed port on loopback and git a missing local path, so
    every fetch fails at once with the reason.
    """

    def _setUp(self):
        self.cache = self.useFixture(fixtures.TempDir()).path
        for name, value in (
                ('NOVA_SIO_CACHE', self.cache),
                ('NOVA_SIO_GIT_URL', 'file:///nonexistent/nova.git'),
                ('NOVA_SIO_PYPI_URL', 'http://127.0.0.1:9/pypi/nova')):
            self.useFixture(fixtures.EnvironmentVariable(name, value))
