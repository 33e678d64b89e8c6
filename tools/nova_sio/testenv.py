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

"""``nova-sio test``: Nova's own unit tests on a patched release.

For one release it builds (and caches) a virtualenv with that series'
Python and pinned constraints from ``releases/constraints/``, builds the
test tree (pristine source + runtime diff + our tests), and runs Nova's
``nova.tests.unit.virt.libvirt`` test_imagebackend, test_driver and
test_utils together with our ``test_sio*`` modules.
"""

import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from nova_sio import engine
from nova_sio import errors
from nova_sio import paths
from nova_sio import releases as rel_mod
from nova_sio import source
from nova_sio import util
from nova_sio import workrepo

DEFAULT_TESTS = (r'nova\.tests\.unit\.virt\.libvirt\.'
                 r'(test_imagebackend|test_driver|test_utils|test_sio)')
# Python per series, newest supported by the series' own gate where this
# machine has it.
PYTHON = {
    'kilo': '2.7', 'liberty': '2.7', 'mitaka': '2.7', 'newton': '2.7',
    'ocata': '2.7', 'pike': '2.7', 'queens': '3.6', 'rocky': '3.6',
    'stein': '3.7', 'train': '3.7', 'ussuri': '3.8', 'victoria': '3.8',
    'wallaby': '3.8', 'xena': '3.8', 'yoga': '3.9', 'zed': '3.9',
    'antelope': '3.10', 'bobcat': '3.10', 'caracal': '3.11',
    'dalmatian': '3.11', 'epoxy': '3.12', 'flamingo': '3.12',
    'gazpacho': '3.12', 'hibiscus': '3.12',
}
# Requirement lines dropped per series (they only serve tests we do not
# run and no longer build on a current host).
DROP = {
    'kilo': ('MySQL-python',),
    'liberty': ('MySQL-python',),
    'mitaka': ('MySQL-python',),
}
FUNCTIONAL = 'nova.tests.functional'
RESULTS = 'tested.json'


class TestEnvError(errors.NovaSioError):
    msg_fmt = 'Cannot build the test environment of nova %(version)s: ' \
        '%(reason)s'


def find_python(want):
    """Find an interpreter ``want`` (``'3.12'``) on this host.

    Looks at ``NOVA_SIO_PYTHON_<X_Y>``, ``python<want>`` on PATH, then
    pyenv's versions directory.

    :returns: the path.
    :raises TestEnvError: when none exists.
    """
    env = os.environ.get('NOVA_SIO_PYTHON_%s' % want.replace('.', '_'))
    if env:
        return env
    root = os.environ.get('PYENV_ROOT') or os.path.expanduser('~/.pyenv')
    cands = sorted(glob.glob(os.path.join(root, 'versions', want + '.*',
                                          'bin', 'python')))
    found = shutil.which('python%s' % want)
    if found:
        cands.append(found)
    for cand in reversed(cands):
        proc = util.run([cand, '-c', 'import sys; print(sys.version)'],
                        check=False, isolated=False)
        if proc.returncode == 0:
            return cand
    raise TestEnvError(version='(any)', reason='Python %s is not installed '
                       '(set NOVA_SIO_PYTHON_%s)' % (
                           want, want.replace('.', '_')))


def constraints_file(series):
    """Return the committed constraints file of a series."""
    rid = rel_mod.release_id(series)
    for name in (rid, series):
        path = os.path.join(paths.releases_dir(), 'constraints',
                            name + '.txt')
        if os.path.exists(path):
            return path
    raise TestEnvError(version=series, reason='no releases/constraints/'
                       '%s.txt' % rid)


def _filtered(path, drop, out):
    with open(path) as f:
        lines = [ln for ln in f if not any(
            re.match(r'^\s*%s\b' % re.escape(d), ln, re.I) for d in drop)]
    # Never pin nova itself: the tree under test is nova.
    lines = [ln for ln in lines
             if not re.match(r'^\s*nova\s*[=<>!]', ln)]
    util.write_atomic(out, ''.join(lines).encode())
    return out


def stale_pins(cons, req_files):
    """Return constraint names whose pin a requirement line excludes.

    A release tagged after its series' constraints were frozen (or an X.0.0
    tag that still points at master) may require newer minimums; the
    release's own requirements win and the pin is dropped.

    :param cons: the constraints file.
    :param req_files: requirement files of the release.
    :returns: a set of project names as written in ``cons``.
    """
    from packaging import requirements as preq
    from packaging import utils as putils
    pins = {}
    with open(cons) as f:
        for line in f:
            m = re.match(r'^\s*([A-Za-z0-9_.\-]+)===([^;\s]+)', line)
            if m:
                pins[putils.canonicalize_name(m.group(1))] = (
                    m.group(1), m.group(2))
    stale = set()
    for path in req_files:
        with open(path) as f:
            for line in f:
                line = line.split('#', 1)[0].strip()
                if not line or line.startswith('-'):
                    continue
                try:
                    req = preq.Requirement(line)
                except Exception:
                    continue
                name = putils.canonicalize_name(req.name)
                if name in pins and req.specifier and \
                        not req.specifier.contains(pins[name][1],
                                                   prereleases=True):
                    stale.add(pins[name][0])
    return stale


def build_tree(version):
    """Write the test tree of ``version`` and return its path."""
    source.fetch(version)
    era, series = engine.series_for(version)
    _base, head, _r = workrepo.build_release(version, series,
                                             with_tests=True)
    dest = os.path.join(paths.cache_dir(), 'testtrees', version)
    stamp = os.path.join(dest, '.nova-sio-head')
    if os.path.exists(stamp) and open(stamp).read() == head:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    source.extract(version, dest)
    arch = workrepo.git(['archive', '--format=tar', head],
                        workrepo.repo_path()).stdout
    util.run(['tar', '-x', '-C', dest], input=arch)
    with open(stamp, 'w') as f:
        f.write(head)
    return dest


def build_venv(version, tree, python=None):
    """Create or reuse the virtualenv for ``version``.

    :returns: the venv path.
    """
    series = rel_mod.series_of(version)
    want = python or PYTHON.get(series, '3.12')
    interp = find_python(want)
    cons = constraints_file(series)
    reqs = []
    for name in ('requirements.txt', 'test-requirements.txt'):
        with open(os.path.join(tree, name), 'rb') as f:
            reqs.append(f.read())
    with open(cons, 'rb') as f:
        key = hashlib.sha256(b'\0'.join(reqs + [f.read(),
                                                want.encode()])).hexdigest()
    venv = os.path.join(paths.cache_dir(), 'venvs', '%s-py%s-%s' % (
        series, want, key[:12]))
    stamp = os.path.join(venv, '.nova-sio-ready')
    work = os.path.join(paths.cache_dir(), 'venvs', 'work-' + version)
    os.makedirs(work, exist_ok=True)
    drop = DROP.get(series, ())
    if not os.path.exists(stamp):
        shutil.rmtree(venv, ignore_errors=True)
        if want.startswith('2'):
            tools = os.path.join(paths.cache_dir(), 'venvs', 'tools-py3')
            if not os.path.exists(os.path.join(tools, 'bin',
                                               'virtualenv')):
                util.run([sys.executable, '-m', 'venv', tools],
                         isolated=False)
                util.run([os.path.join(tools, 'bin', 'pip'), 'install',
                          '-q', 'virtualenv==20.21.1'], isolated=False,
                         timeout=900)
            util.run([os.path.join(tools, 'bin', 'virtualenv'), '-q', '-p',
                      interp, venv], isolated=False, timeout=600)
        else:
            util.run([interp, '-m', 'venv', venv], isolated=False)
            if want == '3.6':
                # Python 3.6's bundled pip cannot skip releases that need
                # a newer Python when the index omits Requires-Python.
                util.run([os.path.join(venv, 'bin', 'python'), '-m', 'pip',
                          'install', '-q', 'pip<22'], isolated=False,
                         timeout=600)
        pip = os.path.join(venv, 'bin', 'pip')
        r = _filtered(os.path.join(tree, 'requirements.txt'), drop,
                      os.path.join(work, 'requirements.txt'))
        t = _filtered(os.path.join(tree, 'test-requirements.txt'), drop,
                      os.path.join(work, 'test-requirements.txt'))
        stale = stale_pins(cons, [r, t])
        c = _filtered(cons, ['%s===' % n for n in stale],
                      os.path.join(work, 'constraints.txt'))
        if stale:
            sys.stderr.write('nova %s needs newer releases than the series '
                             'constraints pin; unpinned: %s\n'
                             % (version, ', '.join(sorted(stale))))
        util.run([pip, 'install', '-q', '-c', c, '-r', r, '-r', t],
                 isolated=False, timeout=3600,
                 env={'PIP_DISABLE_PIP_VERSION_CHECK': '1'})
        with open(stamp, 'w') as f:
            f.write(version)
    pip = os.path.join(venv, 'bin', 'pip')
    util.run([pip, 'install', '-q', '--no-deps', '-e', tree],
             isolated=False, timeout=900,
             env={'PBR_VERSION': version,
                  'PIP_DISABLE_PIP_VERSION_CHECK': '1'})
    return venv


def _functional_deps(version, tree, venv):
    """Install what Nova's own functional env adds (placement)."""
    with open(os.path.join(tree, 'tox.ini')) as f:
        text = f.read()
    if 'openstack-placement' not in text:
        return
    stamp = os.path.join(venv, '.nova-sio-functional')
    if os.path.exists(stamp):
        return
    cons = constraints_file(rel_mod.series_of(version))
    work = os.path.join(paths.cache_dir(), 'venvs', 'work-' + version)
    os.makedirs(work, exist_ok=True)
    c = _filtered(cons, (), os.path.join(work, 'constraints-func.txt'))
    util.run([os.path.join(venv, 'bin', 'pip'), 'install', '-q', '-c', c,
              'openstack-placement'], isolated=False, timeout=1800,
             env={'PIP_DISABLE_PIP_VERSION_CHECK': '1'})
    with open(stamp, 'w') as f:
        f.write(version)


def _test_env(venv, tree):
    return {
        'PATH': os.path.join(venv, 'bin') + os.pathsep +
        os.environ.get('PATH', ''),
        'VIRTUAL_ENV': venv, 'LANGUAGE': 'en_US', 'LC_ALL': 'C.UTF-8',
        'OS_STDOUT_CAPTURE': '1', 'OS_STDERR_CAPTURE': '1',
        'OS_LOG_CAPTURE': '1', 'OS_TEST_TIMEOUT': '160',
        'PYTHONDONTWRITEBYTECODE': '1', 'PYTHONHASHSEED': '0',
        'OS_TEST_PATH': './nova/tests/unit',
        'NOVA_RAISE_ON_GREENLET_LEAK': 'True',
        'OS_NOVA_DISABLE_EVENTLET_PATCHING': 'False',
        'PYTHONWARNINGS': 'ignore',
        # Our Nova-side tests start the ScaleIO emulator from the checkout.
        'NOVA_SIO_ROOT': paths.project_root(),
        'NOVA_SIO_PYTHON': sys.executable,
    }


class Emulator(object):
    """The gateway + SDC emulator as a process of the tool's Python.

    Nova-side tests read its JSON description from ``NOVA_SIO_EMULATOR``
    (a file path); old-Python Nova venvs talk to it over HTTP.

    :param hosts: emulated SDC host names.
    """

    def __init__(self, hosts=('host-a', 'host-b')):
        self.hosts = hosts
        self.proc = None
        self.state = None
        self.info_file = None

    def __enter__(self):
        self.state = tempfile.mkdtemp(prefix='nova-sio-emu-')
        self.info_file = os.path.join(self.state, 'emulator.json')
        env = dict(os.environ, PYTHONPATH=os.path.join(
            paths.project_root(), 'tools'))
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'nova_sio.emulator', '--hosts',
             ','.join(self.hosts), '--state-dir',
             os.path.join(self.state, 'hosts'),
             # sp1 is shared by every test; sp-capacity is for tests that
             # measure a pool's figures, which parallel tests would move.
             '--pool', 'pd1:sp1:1024', '--pool', 'pd1:sp-capacity:1024'],
            stdout=subprocess.PIPE, env=env)
        line = self.proc.stdout.readline()
        if not line.strip():
            self.__exit__()
            raise TestEnvError(version='(emulator)',
                               reason='the emulator did not start')
        with open(self.info_file, 'wb') as f:
            f.write(line)
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.state:
            shutil.rmtree(self.state, ignore_errors=True)


def run_tests(version, tests=DEFAULT_TESTS, concurrency=None, python=None,
              record=True):
    """Build everything for ``version`` and run the tests.

    :returns: a result dict with counts, seconds and the runner output.
    """
    lock_path = os.path.join(paths.cache_dir(), 'testtrees',
                             '.%s.lock' % version)
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    with open(lock_path, 'a') as lock:
        # One run per test tree at a time: stestr keeps its repository in
        # the tree, and the tree is rebuilt when the series changes.
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return _run_tests(version, tests, concurrency, python, record)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run_tests(version, tests, concurrency, python, record):
    t0 = time.time()
    tree = build_tree(version)
    venv = build_venv(version, tree, python)
    if tests.replace('\\', '').startswith(FUNCTIONAL):
        _functional_deps(version, tree, venv)
    env = _test_env(venv, tree)
    conc = str(concurrency or max(2, os.cpu_count() or 2))
    if os.path.exists(os.path.join(tree, '.stestr.conf')):
        cmd = [os.path.join(venv, 'bin', 'stestr')]
        if tests.replace('\\', '').startswith(FUNCTIONAL):
            # Nova's own functional env points stestr at this directory.
            cmd += ['--test-path', './nova/tests/functional']
        cmd += ['run', '--concurrency', conc, tests]
    else:
        # testr era (Kilo to Pike): discover and filter by regex.
        if not os.path.isdir(os.path.join(tree, '.testrepository')):
            util.run([os.path.join(venv, 'bin', 'testr'), 'init'],
                     cwd=tree, isolated=False, env=env)
        cmd = [os.path.join(venv, 'bin', 'testr'), 'run', '--parallel',
               '--concurrency=%s' % conc, tests]
    t1 = time.time()
    with Emulator() as emu:
        env['NOVA_SIO_EMULATOR'] = emu.info_file
        proc = util.run(cmd, cwd=tree, check=False, isolated=False,
                        env=env, timeout=5400)
    out = (proc.stdout + proc.stderr).decode('utf-8', 'replace')
    result = parse_counts(out)
    result.update({
        'version': version, 'python': PYTHON.get(
            rel_mod.series_of(version)) if not python else python,
        'returncode': proc.returncode,
        'setup_seconds': round(t1 - t0, 1),
        'test_seconds': round(time.time() - t1, 1),
        'tests': tests,
    })
    ok = proc.returncode == 0 and result['failed'] == 0 and \
        result['passed'] > 0
    result['result'] = 'passed' if ok else 'failed'
    result['summary'] = '%d passed, %d failed, %d skipped' % (
        result['passed'], result['failed'], result['skipped'])
    result['output_tail'] = out[-4000:]
    if record:
        _record(version, result)
    return result


def parse_counts(out):
    """Read pass/fail/skip counts from stestr or testr output."""
    counts = {'passed': 0, 'failed': 0, 'skipped': 0}
    m = re.search(r'^ - Passed: (\d+)', out, re.M)
    if m:
        counts['passed'] = int(m.group(1))
        for key, label in (('failed', 'Failed'), ('skipped', 'Skipped')):
            m = re.search(r'^ - %s: (\d+)' % label, out, re.M)
            if m:
                counts[key] = int(m.group(1))
        return counts
    # testr prints "Ran 737 (+618) tests in ..." when its repository
    # already holds an earlier run.
    m = re.search(r'^Ran (\d+)(?: \([+-]\d+\))? tests? in', out, re.M)
    if m:
        total = int(m.group(1))
        fm = re.search(r'^FAILED \(.*?failures=(\d+)', out, re.M)
        sm = re.search(r'skips?=(\d+)', out)
        counts['failed'] = int(fm.group(1)) if fm else 0
        counts['skipped'] = int(sm.group(1)) if sm else 0
        counts['passed'] = total - counts['failed'] - counts['skipped']
    return counts


def _record(version, result):
    path = os.path.join(paths.releases_dir(), RESULTS)
    data = {}
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
    entry = dict((k, result[k]) for k in (
        'result', 'summary', 'passed', 'failed', 'skipped', 'python',
        'test_seconds', 'setup_seconds'))
    entry['series_sha256'] = engine.load_manifest()['releases'].get(
        version, {}).get('series_sha256')
    if result['tests'] == DEFAULT_TESTS:
        suites = data.get(version, {}).get('other_suites', {})
        if suites:
            entry['other_suites'] = suites
        data[version] = entry
    else:
        data.setdefault(version, {}).setdefault('other_suites', {})[
            result['tests']] = entry
    util.write_atomic(path, util.dump_json(data))


def cmd_test(args):
    versions = args.versions
    failures = 0
    rows = []
    for v in versions:
        try:
            res = run_tests(v, args.tests, args.concurrency, args.python,
                            record=not args.no_record)
        except errors.NovaSioError as exc:
            if args.skip_unavailable and isinstance(
                    exc, errors.SourceUnavailable):
                print('SKIPPED %s: %s' % (v, exc))
                rows.append({'version': v, 'result': 'skipped',
                             'reason': str(exc)})
                continue
            raise
        rows.append(res)
        if res['result'] != 'passed':
            failures += 1
            sys.stderr.write(res['output_tail'] + '\n')
        print('%s: %s (%s) setup %.0fs, tests %.0fs' % (
            v, res['result'], res['summary'], res['setup_seconds'],
            res['test_seconds']))
    if args.json:
        for r in rows:
            r.pop('output_tail', None)
        print(json.dumps(rows, indent=2, sort_keys=True))
    return 1 if failures else 0


def add_parser(sub):
    p = sub.add_parser('test', help="run Nova's own libvirt unit tests "
                       'and ours on a patched release')
    p.add_argument('versions', nargs='+', metavar='VERSION')
    p.add_argument('--tests', default=DEFAULT_TESTS,
                   help='test regex (default: %(default)s)')
    p.add_argument('--concurrency', type=int)
    p.add_argument('--python', help='override the Python version (3.12)')
    p.add_argument('--json', action='store_true')
    p.add_argument('--no-record', action='store_true',
                   help='do not write releases/tested.json')
    p.add_argument('--skip-unavailable', action='store_true',
                   help='report a release without source as skipped')
    p.set_defaults(func=cmd_test)
