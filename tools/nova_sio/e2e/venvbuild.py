# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The cached virtualenvs of the harness, built one way.

The control plane's venv (Nova and the services of its series) and
Tempest's are built from PyPI by :class:`CachedVenv`: the requirements
are downloaded without their dependencies, their own ``Requires-Dist``
lines (:func:`requires_dist`) are checked against the series' committed
constraints, the pins they exclude are dropped (a release tagged after
its series' constraints were frozen needs newer minimums: its own
minimums win), and everything is installed with what is left of the
constraints. A stamp file marks a complete venv; the build holds a
cache lock when it is given one.

:func:`cache_key` and :func:`cache_path` name the venv in the nova-sio
cache: ``e2e/<kind>/<name>-py<X.Y>-<key>``.
"""

import collections
import contextlib
import glob
import hashlib
import json
import os
import shutil
import tarfile
import time
import zipfile

from nova_sio import paths
from nova_sio import testenv
from nova_sio import util

#: The environment of every pip command.
PIP_ENV = {'PIP_DISABLE_PIP_VERSION_CHECK': '1'}
#: Seconds each step may take.
VENV_TIMEOUT = 600
DOWNLOAD_TIMEOUT = 1800
INSTALL_TIMEOUT = 3600

#: The progress lines of a build, without their ``e2e:`` prefix:
#: ``reuse`` (the venv is cached), ``install`` (a build begins),
#: ``unpinned`` (``%s``: the pins dropped for the requirements' own
#: minimums) and ``built`` (``%.0f``: the seconds the build took).
Wording = collections.namedtuple('Wording', 'reuse install unpinned built')


def cache_key(series, fields):
    """Return the cache key of a venv: its series' constraints and
    ``fields``.

    :param series: the series whose constraints file pins the venv.
    :param fields: what else names the venv (releases, Python version,
        requirements), JSON serializable.
    :returns: 12 hex digits.
    """
    digest = hashlib.sha256()
    with open(testenv.constraints_file(series), 'rb') as handle:
        digest.update(handle.read())
    digest.update(json.dumps(list(fields)).encode())
    return digest.hexdigest()[:12]


def cache_path(kind, name, python_version, key):
    """Return where a venv is cached.

    :param kind: its directory under ``<cache>/e2e`` (``venvs``).
    :param name: what it holds (a release, ``34.0.0``).
    :param python_version: its Python (``3.12``).
    :param key: its :func:`cache_key`.
    """
    return os.path.join(paths.cache_dir(), 'e2e', kind, '%s-py%s-%s' % (
        name, python_version, key))


def _metadata(path):
    """Return the metadata text of a wheel or sdist (empty if none).

    :param path: a ``.whl`` or ``.tar.gz`` file.
    """
    if path.endswith('.whl'):
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                if name.endswith('.dist-info/METADATA'):
                    return zf.read(name).decode('utf-8', 'replace')
        return ''
    with tarfile.open(path) as tf:
        for member in tf.getmembers():
            if member.name.count('/') == 1 and \
                    member.name.endswith('/PKG-INFO'):
                return tf.extractfile(member).read().decode(
                    'utf-8', 'replace')
    return ''


def requires_dist(path):
    """Return the ``Requires-Dist`` lines of a wheel or sdist, without
    the ones only an extra needs.

    :param path: a ``.whl`` or ``.tar.gz`` file.
    """
    out = []
    for line in _metadata(path).splitlines():
        if not line.strip():
            break   # the headers end at the first empty line
        if line.startswith('Requires-Dist:'):
            req = line.split(':', 1)[1].strip()
            if 'extra ==' not in req:
                out.append(req)
    return out


class CachedVenv(object):
    """A virtualenv built once from PyPI and kept in the nova-sio cache.

    :param path: its directory (see :func:`cache_path`).
    :param series: the series whose constraints pin it.
    :param python_version: the Python it runs (``3.12``).
    :param requirements: what is downloaded (without its dependencies)
        and installed; its own minimums win over the series' pins.
    :param stamp: ``(file name, text)`` of the file marking it complete.
    :param wording: its progress lines, a :class:`Wording`.
    :param extras: also installed, pinned by the constraints as they are.
    :param drop: more constraint lines to drop, by their start
        (``tempest===``).
    :param lock: the name of the cache lock a build holds, or None.
    :param notes: progress lines said just before ``pip install``.
    :param progress: callable receiving progress lines.
    """

    def __init__(self, path, series, python_version, requirements, stamp,
                 wording, extras=(), drop=(), lock=None, notes=(),
                 progress=print):
        self.path = path
        self.series = series
        self.python_version = python_version
        self.requirements = list(requirements)
        self.stamp_name, self.stamp_text = stamp
        self.wording = wording
        self.extras = list(extras)
        self.drop = list(drop)
        self.lock = lock
        self.notes = list(notes)
        self.progress = progress
        #: Seconds the last :meth:`build` took (0.0 for a cached venv).
        self.seconds = None

    @property
    def work(self):
        """The scratch directory of a build (wheels, constraints)."""
        return self.path + '.work'

    def _say(self, message):
        self.progress('e2e: %s' % message)

    def ready(self):
        """Tell whether the venv is complete (its stamp exists)."""
        return os.path.exists(os.path.join(self.path, self.stamp_name))

    def build(self):
        """Build the venv unless it is cached; return its path."""
        if self.ready():
            self._say(self.wording.reuse)
            self.seconds = 0.0
            return self.path
        with self._locked():
            if self.ready():
                # Another process built it meanwhile.
                self.seconds = 0.0
                return self.path
            self._build_cleaning_up()
        return self.path

    def _locked(self):
        if self.lock is None:
            return contextlib.nullcontext()
        return paths.cache_lock(self.lock)

    def _build_cleaning_up(self):
        """Build; on any failure remove the incomplete venv and its
        scratch directory, then re-raise.
        """
        try:
            self._build()
        except BaseException:
            self._remove()
            raise

    def _remove(self):
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(self.path, ignore_errors=True)

    def _build(self):
        begin = time.monotonic()
        interp = testenv.find_python(self.python_version)
        self._say(self.wording.install)
        self._remove()
        wheels = os.path.join(self.work, 'wheels')
        os.makedirs(wheels)
        util.run([interp, '-m', 'venv', self.path], isolated=False,
                 timeout=VENV_TIMEOUT)
        self._pip(['download', '-q', '--no-deps', '-d', wheels] +
                  self.requirements, DOWNLOAD_TIMEOUT)
        cons = self._constraints(wheels)
        for line in self.notes:
            self._say(line)
        self._pip(['install', '-q', '-c', cons, '--find-links', wheels] +
                  self.requirements + self.extras, INSTALL_TIMEOUT)
        shutil.rmtree(self.work, ignore_errors=True)
        with open(os.path.join(self.path, self.stamp_name), 'w') as handle:
            handle.write(self.stamp_text + '\n')
        self.seconds = round(time.monotonic() - begin, 1)
        self._say(self.wording.built % self.seconds)

    def _pip(self, args, timeout):
        """Run the venv's pip.

        :param args: pip's arguments.
        :param timeout: seconds.
        """
        util.run([os.path.join(self.path, 'bin', 'python'), '-m', 'pip'] +
                 args, isolated=False, timeout=timeout, env=PIP_ENV)

    def _constraints(self, wheels):
        """Write the constraints of the install; return their path.

        The series' constraints without the pins the downloaded
        requirements exclude, and without :attr:`drop`.

        :param wheels: the directory of the downloaded requirements.
        """
        req_file = os.path.join(self.work, 'requirements.txt')
        lines = []
        for path in sorted(glob.glob(os.path.join(wheels, '*'))):
            lines.extend(requires_dist(path))
        with open(req_file, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        cons = testenv.constraints_file(self.series)
        stale = testenv.stale_pins(cons, [req_file])
        out = testenv._filtered(cons, ['%s===' % n for n in stale] +
                                self.drop,
                                os.path.join(self.work, 'constraints.txt'))
        if stale:
            self._say(self.wording.unpinned % ', '.join(sorted(stale)))
        return out
