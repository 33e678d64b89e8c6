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

import os

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
