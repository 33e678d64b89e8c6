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

"""Where the project, its release data and the cache live."""

import fcntl
import os
import sys
import threading

_HERE = os.path.dirname(os.path.abspath(__file__))


# Where a wheel's data files land, below the installation scheme's data
# directory (the prefix of a virtualenv or of the system, or the user
# base): the release diffs and the runtime package.
DATA_DIR = os.path.join('share', 'nova-sio')
_MARKER = os.path.join('releases', 'manifest.json')


def _is_root(path):
    return os.path.isdir(os.path.join(path, 'releases')) and \
        os.path.isdir(os.path.join(path, 'nova'))


def installed_root():
    """Return the data directory of an installed nova-sio, or ``None``.

    The files of the distribution (its ``RECORD``) say where
    ``share/nova-sio/releases/manifest.json`` was installed, whichever
    scheme pip used; the data directory of this interpreter's prefix is
    the fallback.
    """
    try:
        from importlib import metadata
        dist = metadata.distribution('nova-sio')
    except Exception:  # not installed as a distribution
        dist = None
    suffix = os.path.join(DATA_DIR, _MARKER).replace(os.sep, '/')
    for f in (dist.files or ()) if dist is not None else ():
        if str(f).replace(os.sep, '/').endswith(suffix):
            found = os.path.abspath(str(dist.locate_file(f)))
            return os.path.dirname(os.path.dirname(found))
    for prefix in (sys.prefix, sys.base_prefix):
        cand = os.path.join(prefix, DATA_DIR)
        if os.path.isfile(os.path.join(cand, _MARKER)):
            return cand
    return None


def project_root():
    """Return the directory holding ``releases/`` and the runtime ``nova/``.

    That is ``NOVA_SIO_ROOT`` when set, else the checkout found by
    walking up from this file, else the data directory of an installed
    wheel (:func:`installed_root`).

    :returns: an absolute path.
    :raises RuntimeError: when none of them exists.
    """
    env = os.environ.get('NOVA_SIO_ROOT')
    if env:
        return os.path.abspath(env)
    cur = _HERE
    while True:
        if _is_root(cur):
            return cur
        parent = os.path.dirname(cur)
        if parent == cur:
            break
        cur = parent
    found = installed_root()
    if found and _is_root(found):
        return found
    raise RuntimeError('cannot find the release diffs of nova-sio: no '
                       'checkout above %s and no %s of an installed '
                       'nova-sio; reinstall nova-sio or set NOVA_SIO_ROOT'
                       % (_HERE, DATA_DIR))


def releases_dir():
    """Return the ``releases/`` directory of the checkout."""
    return os.path.join(project_root(), 'releases')


def runtime_dir():
    """Return the checkout's ``nova/`` tree of new files."""
    return os.path.join(project_root(), 'nova')


def cache_dir():
    """Return the cache directory, outside the repository.

    ``NOVA_SIO_CACHE`` overrides ``$XDG_CACHE_HOME/nova-sio``.
    """
    env = os.environ.get('NOVA_SIO_CACHE')
    if env:
        path = env
    else:
        base = os.environ.get('XDG_CACHE_HOME') or os.path.join(
            os.path.expanduser('~'), '.cache')
        path = os.path.join(base, 'nova-sio')
    os.makedirs(path, exist_ok=True)
    return os.path.abspath(path)


class CacheLock(object):
    """A lock held across the threads and processes sharing the cache.

    A thread lock orders the threads of this process; an exclusive
    ``flock`` on ``<cache>/locks/<name>.lock`` orders the processes.  The
    lock is re-entrant within a thread.

    :param name: the lock's name (a file name component).
    """

    def __init__(self, name):
        self.name = name
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._file = None

    def path(self):
        """Return the lock file of the current cache directory."""
        return os.path.join(cache_dir(), 'locks', '%s.lock' % self.name)

    def __enter__(self):
        self._thread_lock.acquire()
        if self._depth == 0:
            try:
                path = self.path()
                os.makedirs(os.path.dirname(path), exist_ok=True)
                handle = open(path, 'a')
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX)
                except BaseException:
                    handle.close()
                    raise
            except BaseException:
                self._thread_lock.release()
                raise
            self._file = handle
        self._depth += 1
        return self

    def __exit__(self, *exc):
        self._depth -= 1
        if self._depth == 0:
            handle, self._file = self._file, None
            try:
                fcntl.flock(handle, fcntl.LOCK_UN)
            finally:
                handle.close()
        self._thread_lock.release()


_LOCKS = {}
_LOCKS_GUARD = threading.Lock()


def cache_lock(name):
    """Return the :class:`CacheLock` called ``name`` (one per process).

    :param name: the lock's name, e.g. ``work`` or ``pristine-34.0.0``.
    """
    with _LOCKS_GUARD:
        lock = _LOCKS.get(name)
        if lock is None:
            lock = _LOCKS[name] = CacheLock(name)
        return lock
