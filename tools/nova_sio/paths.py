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
import threading

_HERE = os.path.dirname(os.path.abspath(__file__))


def project_root():
    """Return the checkout root (the directory holding ``releases/``).

    ``NOVA_SIO_ROOT`` overrides the search, which walks up from this file.

    :returns: an absolute path.
    """
    env = os.environ.get('NOVA_SIO_ROOT')
    if env:
        return os.path.abspath(env)
    cur = _HERE
    while True:
        if os.path.isdir(os.path.join(cur, 'releases')) and \
                os.path.isdir(os.path.join(cur, 'nova')):
            return cur
        parent = os.path.dirname(cur)
        if parent == cur:
            raise RuntimeError('cannot find the nova-sio checkout; set '
                               'NOVA_SIO_ROOT')
        cur = parent


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
