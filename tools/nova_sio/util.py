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

"""Small helpers: running commands, hashing, atomic writes."""

import hashlib
import json
import os
import subprocess
import tempfile

from nova_sio import errors

# An environment that makes git and patch output independent of the user.
_STABLE_ENV = {
    'LC_ALL': 'C',
    'LANG': 'C',
    'LANGUAGE': 'C',
    'TZ': 'UTC',
    'GIT_CONFIG_NOSYSTEM': '1',
    'GIT_AUTHOR_NAME': 'nova-sio',
    'GIT_AUTHOR_EMAIL': 'nova-sio@localhost',
    'GIT_COMMITTER_NAME': 'nova-sio',
    'GIT_COMMITTER_EMAIL': 'nova-sio@localhost',
    'GIT_AUTHOR_DATE': '2015-01-01T00:00:00Z',
    'GIT_COMMITTER_DATE': '2015-01-01T00:00:00Z',
    'GIT_TERMINAL_PROMPT': '0',
    'GIT_PAGER': 'cat',
    'PAGER': 'cat',
}


def stable_env(isolated=True):
    """Return an environment for deterministic git and patch runs.

    :param isolated: also hide the user's global git config (not for
        commands that reach remotes, which may rely on ``insteadOf``).
    """
    env = dict(os.environ)
    env.update(_STABLE_ENV)
    for key in ('GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE',
                'GIT_EXTERNAL_DIFF', 'GIT_DIFF_OPTS'):
        env.pop(key, None)
    if isolated:
        env['GIT_CONFIG_GLOBAL'] = os.devnull
        env['HOME'] = env.get('HOME', '/')
    return env


def run(cmd, cwd=None, input=None, check=True, isolated=True, env=None,
        timeout=None):
    """Run ``cmd`` (an argument list, never a shell string).

    :param cmd: the argument list.
    :param cwd: working directory.
    :param input: bytes for stdin.
    :param check: raise :class:`errors.CommandFailed` on a non-zero exit.
    :param isolated: see :func:`stable_env`.
    :param env: extra environment variables.
    :param timeout: seconds before the command is killed.
    :returns: a ``subprocess.CompletedProcess`` with bytes output.
    """
    full_env = stable_env(isolated)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(cmd, cwd=cwd, input=input,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=full_env,
                              timeout=timeout)
    except FileNotFoundError:
        raise errors.CommandFailed(cmd=cmd[0], code='n/a',
                                   output='%s is not installed' % cmd[0])
    except subprocess.TimeoutExpired:
        raise errors.CommandFailed(cmd=' '.join(cmd[:3]), code='timeout',
                                   output='no answer after %ss' % timeout)
    if check and proc.returncode != 0:
        out = (proc.stderr or proc.stdout or b'').decode('utf-8', 'replace')
        raise errors.CommandFailed(cmd=' '.join(cmd[:4]),
                                   code=proc.returncode,
                                   output=out.strip()[-2000:])
    return proc


def sha256_bytes(data):
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    """Return the hex sha256 of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def write_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` through a rename.

    :param path: the destination.
    :param data: bytes.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp-')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def dump_json(obj):
    """Serialise ``obj`` canonically (sorted keys, 2-space indent)."""
    return (json.dumps(obj, indent=2, sort_keys=True) + '\n').encode()


def read_table(path):
    """Yield ``(line number, fields)`` of a whitespace-separated table.

    ``#`` starts a comment; blank lines are skipped.

    :param path: the file to read.
    """
    with open(path) as f:
        for num, line in enumerate(f, 1):
            line = line.split('#', 1)[0].strip()
            if line:
                yield num, line.split()
