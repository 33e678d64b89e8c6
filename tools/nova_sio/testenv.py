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
test tree (pristine source + the committed ``releases/<version>.diff``,
applied with GNU patch once it verifies, + our tests), and runs Nova's
``nova.tests.unit.virt.libvirt`` test_imagebackend, test_driver and
test_utils together with our ``test_sio*`` modules.  Each era names the
modules of ours that must pass tests there; a run where one of them
passed none (skipped, failed, or never imported) fails.
"""

import csv
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

from nova_sio.engine import diffs
from nova_sio.engine import emit
from nova_sio.engine import series as series_mod
from nova_sio.engine import source
from nova_sio.engine import workrepo
from nova_sio import errors
from nova_sio import paths
from nova_sio import releases as rel_mod
from nova_sio import util

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
UNIT_PACKAGE = 'nova.tests.unit.virt.libvirt.'
FUNCTIONAL_PACKAGE = 'nova.tests.functional.libvirt.'
# The eras of releases/eras.txt.  In each, every test_sio* module of ours
# that a run selects must pass at least one test, except the modules
# written for some eras only (their era checks skip them elsewhere): a
# module that skips as a whole where it should run fails the run.
ERAS = ('E1', 'E2a', 'E2', 'E3', 'E3b', 'E4', 'E5', 'E6-zed', 'E6')
UNIT_ERAS = {
    'test_sio_kilo': ('E1',),
    # Needs fixtures with Fixture._setUp (Liberty's 1.4.0 on).
    'test_sio_beyond': ERAS[1:],
    'test_sio_e2e3_driver': ('E2a', 'E2', 'E3', 'E3b'),
    'test_sio_e4e5_driver': ('E4', 'E5'),
    'test_sio_driver': ('E6-zed', 'E6'),
    'test_sio_lifecycle': ('E6-zed', 'E6'),
}
# Our functional tests run on the newest era's functional base only.
FUNCTIONAL_ERAS = ('E6',)
# Test ids the unittest loaders give a module that failed to import.
IMPORT_FAILURE_RE = re.compile(
    r'^unittest\.loader\.(?:_FailedTest|ModuleImportFailure)\.(.+)$')
OK_STATUSES = ('success', 'xfail')
FAILED_STATUSES = ('failure', 'error', 'fail', 'uxsuccess')
MAX_FAILURE_CHARS = 30000


class TestEnvError(errors.NovaSioError):
    msg_fmt = 'Cannot build the test environment of nova %(version)s: ' \
        '%(reason)s'


class DiffNotVerified(TestEnvError):
    msg_fmt = ('Refusing to test nova %(version)s: the committed '
               'releases/%(version)s.diff does not verify (%(problems)s). '
               'Tests run only on the diff operators download; run '
               '"nova-sio emit %(version)s" (then "nova-sio verify '
               '%(version)s") to write the diff the series and runtime '
               'files produce now.')


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


def say(message):
    """Print a progress line on stderr at once.

    :param message: the line, without its newline.
    """
    sys.stderr.write(message + '\n')
    sys.stderr.flush()


def test_files():
    """Return ``{relative path: bytes}`` of our test files for Nova trees.

    These are the files under ``nova/tests/`` of the checkout: the runtime
    files reach the test tree through the committed diff, not from here.
    """
    runtime = series_mod.runtime_files()
    return dict((rel, data) for rel, data in
                series_mod.runtime_files(with_tests=True).items()
                if rel not in runtime)


def tree_key(diff_data, tests):
    """Return the cache key of a test tree.

    :param diff_data: the bytes of the committed diff.
    :param tests: ``{relative path: bytes}`` of our test files.
    :returns: a hex sha256 over the diff and every test file.
    """
    h = hashlib.sha256(b'diff\0' + diff_data)
    for rel, data in sorted(tests.items()):
        h.update(b'\0' + rel.encode() + b'\0' + util.sha256_bytes(
            data).encode())
    return h.hexdigest()


def check_committed_diff(version):
    """Verify ``releases/<version>.diff`` strictly; refuse when it fails.

    Every gate of :func:`nova_sio.engine.emit.verify` runs, the fresh emit
    included: the committed diff must be what the series and runtime
    files produce now.

    :param version: the release.
    :returns: the bytes of the committed diff.
    :raises DiffNotVerified: when the file is missing or a gate fails.
    """
    path = emit.diff_path(version)
    if not os.path.exists(path):
        raise DiffNotVerified(version=version, problems='the file does '
                              'not exist')
    with open(path, 'rb') as f:
        data = f.read()
    report = emit.verify(version, check_fresh=True)
    if not report.get('ok'):
        problems = []
        if report.get('error'):
            problems.append(report['error'])
        for gate, probs in sorted(report.get('gates', {}).items()):
            for prob in probs:
                problems.append('%s: %s' % (gate, prob))
        raise DiffNotVerified(version=version, problems='; '.join(
            problems[:8]) or 'verification failed')
    # Verify read the file once; the tree is built from what it checked.
    with open(path, 'rb') as f:
        if f.read() != data:
            raise DiffNotVerified(version=version, problems='the file '
                                  'changed while it was verified')
    return data


def apply_diff(tree, diff_data):
    """Apply a diff with GNU patch into ``<tree>/nova``, strictly.

    :param tree: the pristine source root.
    :param diff_data: the diff bytes.
    :raises TestEnvError: on any output but ``patching file`` lines.
    """
    fd, diff_file = tempfile.mkstemp(prefix='nova-sio-', suffix='.diff')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(diff_data)
        proc = util.run(['patch', '-p', '2'] + emit.PATCH_ARGS +
                        ['-d', os.path.join(tree, 'nova'), '-i',
                         diff_file], check=False)
    finally:
        os.unlink(diff_file)
    bad = diffs.check_patch_output(proc.stdout + proc.stderr,
                                   dry_run=False)
    if proc.returncode != 0 or bad:
        raise TestEnvError(version='(tree)', reason='patch -p 2 exited '
                           'with %d: %s' % (proc.returncode,
                                            '; '.join(bad[:5])))


def build_tree(version):
    """Write the test tree of ``version`` and return its path.

    The tree is the pristine source with the committed
    ``releases/<version>.diff`` applied by GNU patch (only after it
    verifies), plus our test files: what operators install, with tests.

    :param version: the release.
    :raises DiffNotVerified: when the committed diff does not verify.
    """
    source.fetch(version)
    say('nova %s: verifying releases/%s.diff...' % (version, version))
    data = check_committed_diff(version)
    tests = test_files()
    key = tree_key(data, tests)
    dest = os.path.join(paths.cache_dir(), 'testtrees', version)
    stamp = os.path.join(dest, '.nova-sio-tree')
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read() == key:
                return dest
    say('nova %s: building the test tree (pristine source + '
        'releases/%s.diff + our tests)...' % (version, version))
    tmp = dest + '.tmp%d' % os.getpid()
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        source.extract(version, tmp)
        apply_diff(tmp, data)
        listing = workrepo.upstream_listing(version)
        for rel, blob in sorted(tests.items()):
            if rel in listing:
                raise TestEnvError(version=version, reason='test file %s '
                                   'already exists upstream' % rel)
            full = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, 'wb') as f:
                f.write(blob)
        with open(os.path.join(tmp, '.nova-sio-tree'), 'w') as f:
            f.write(key)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
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
        say('nova %s: building the venv for the %s series (Python %s, %s) '
            'in %s; this takes minutes...' % (version, series, want, interp,
                                              venv))
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
        say('nova %s: pip install of requirements.txt and '
            'test-requirements.txt under %s...' % (
                version, os.path.basename(cons)))
        util.run([pip, 'install', '-q', '-c', c, '-r', r, '-r', t],
                 isolated=False, timeout=3600,
                 env={'PIP_DISABLE_PIP_VERSION_CHECK': '1'})
        with open(stamp, 'w') as f:
            f.write(version)
    pip = os.path.join(venv, 'bin', 'pip')
    say('nova %s: pip install -e of the test tree into %s...' % (
        version, os.path.basename(venv)))
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
    say('nova %s: pip install of openstack-placement for the functional '
        'tests...' % version)
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


class ScratchTmp(object):
    """A temporary directory for one run of Nova's tests, removed after.

    Sets ``TMPDIR`` in ``env``: what Nova's tests leave in the temporary
    directory goes with it (Kilo to Liberty's ``test_objectstore`` makes
    a ``test_oss-*`` directory in each process that imports it and never
    removes it).

    :param env: the environment of the test run (changed in place).
    """

    def __init__(self, env):
        self.env = env
        self.path = None

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix='nova-sio-tests-')
        self.env['TMPDIR'] = self.path
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False


class Emulator(object):
    """The gateway + SDC emulator as a process of the tool's Python.

    Nova-side tests read its JSON description from ``NOVA_SIO_EMULATOR``
    (a file path) and talk HTTPS to it, verified against its CA.

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
            [sys.executable, '-m', 'nova_sio.emulator', '--https', '--hosts',
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


def tree_lock(version):
    """Return the lock of the test tree of ``version``.

    One run per test tree at a time, across threads and processes:
    stestr keeps its repository in the tree, and the tree is rebuilt when
    the committed diff or our tests change.

    :param version: the Nova release.
    """
    return paths.cache_lock('testtree-%s' % version)


def run_tests(version, tests=DEFAULT_TESTS, concurrency=None, python=None,
              record=True):
    """Build everything for ``version`` and run the tests.

    :returns: a result dict with counts, seconds and the runner output.
    """
    with tree_lock(version):
        return _run_tests(version, tests, concurrency, python, record)


def _run_tests(version, tests, concurrency, python, record):
    t0 = time.time()
    era, _series = emit.series_for(version)
    required = required_modules(era.name)
    tree = build_tree(version)
    venv = build_venv(version, tree, python)
    functional = tests.replace('\\', '').startswith(FUNCTIONAL)
    if functional:
        _functional_deps(version, tree, venv)
    env = _test_env(venv, tree)
    conc = str(concurrency or max(2, os.cpu_count() or 2))
    # A fresh repository: the results read after the run are this run's,
    # never an earlier one's when this one fails before running a test.
    for name in ('.stestr', '.testrepository'):
        shutil.rmtree(os.path.join(tree, name), ignore_errors=True)
    if os.path.exists(os.path.join(tree, '.stestr.conf')):
        runner = 'stestr'
        cmd = [os.path.join(venv, 'bin', 'stestr')]
        if functional:
            # Nova's own functional env points stestr at this directory.
            cmd += ['--test-path', './nova/tests/functional']
        # Attachments of passing tests (their DEBUG logs) are not shown.
        cmd += ['run', '--suppress-attachments', '--concurrency', conc,
                tests]
    else:
        # testr era (Kilo to Pike): discover and filter by regex.
        runner = 'testr'
        util.run([os.path.join(venv, 'bin', 'testr'), 'init'], cwd=tree,
                 isolated=False, env=env)
        cmd = [os.path.join(venv, 'bin', 'testr'), 'run', '--parallel',
               '--concurrency=%s' % conc, tests]
    t1 = time.time()
    say('nova %s: running the tests matching %s (%s, concurrency %s)...'
        % (version, tests, runner, conc))
    with ScratchTmp(env), Emulator() as emu:
        env['NOVA_SIO_EMULATOR'] = emu.info_file
        proc = util.run(cmd, cwd=tree, check=False, isolated=False,
                        env=env, timeout=5400)
        out = (proc.stdout + proc.stderr).decode('utf-8', 'replace')
        log = os.path.join(tree, '.nova-sio-output.txt')
        with open(log, 'w') as f:
            f.write(out)
        results = read_results(venv, tree, runner, env)
    result = parse_counts(out)
    if results and not result['passed'] + result['failed']:
        result = counts_of(results)
    problems = check_modules(required, tests, results)
    result.update({
        'version': version, 'era': era.name, 'python': PYTHON.get(
            rel_mod.series_of(version)) if not python else python,
        'returncode': proc.returncode,
        'setup_seconds': round(t1 - t0, 1),
        'test_seconds': round(time.time() - t1, 1),
        'tests': tests,
        'module_problems': problems,
        'output_file': log,
    })
    ok = proc.returncode == 0 and result['failed'] == 0 and \
        result['passed'] > 0 and not problems
    result['result'] = 'passed' if ok else 'failed'
    result['summary'] = '%d passed, %d failed, %d skipped' % (
        result['passed'], result['failed'], result['skipped'])
    result['failures'] = '' if proc.returncode == 0 and \
        not result['failed'] else failure_report(out)
    if record:
        _record(version, result)
    return result


def our_modules(package):
    """Return the names of our ``test_sio*`` modules in a test package.

    :param package: ``UNIT_PACKAGE`` or ``FUNCTIONAL_PACKAGE``.
    :returns: sorted module names, without the package.
    """
    path = os.path.join(paths.project_root(), *package.split('.')[:-1])
    if not os.path.isdir(path):
        return []
    return sorted(fn[:-3] for fn in os.listdir(path)
                  if fn.startswith('test_sio') and fn.endswith('.py'))


def required_modules(era_name):
    """Return the full names of our modules that must pass in an era.

    :param era_name: an era of ``releases/eras.txt`` (``'E4'``).
    :raises TestEnvError: when the era is not in :data:`ERAS`.
    """
    if era_name not in ERAS:
        raise TestEnvError(version='(era %s)' % era_name, reason='no '
                           'required test modules are defined for this era '
                           '(nova_sio.testenv.ERAS)')
    result = [UNIT_PACKAGE + m for m in our_modules(UNIT_PACKAGE)
              if era_name in UNIT_ERAS.get(m, ERAS)]
    if era_name in FUNCTIONAL_ERAS:
        result += [FUNCTIONAL_PACKAGE + m
                   for m in our_modules(FUNCTIONAL_PACKAGE)]
    return result


def check_modules(required, tests, results):
    """Find the problems of a run's modules.

    A required module is selected when a test of it ran or when ``tests``
    matches the module's name; a selected module must pass at least one
    test.  Any module that failed to import is a problem too.

    :param required: full module names (:func:`required_modules`).
    :param tests: the test regex of the run.
    :param results: ``{test id: status}`` (:func:`read_results`).
    :returns: a list of problem strings, empty when all is well.
    """
    problems = []
    for tid in sorted(results):
        m = IMPORT_FAILURE_RE.match(tid)
        if m:
            problems.append('%s failed to import' % m.group(1))
    pattern = re.compile(tests)
    for mod in required:
        ran = [st for tid, st in results.items()
               if tid.startswith(mod + '.')]
        if not ran and not pattern.search(mod + '.'):
            continue
        if any(st in OK_STATUSES for st in ran):
            continue
        if not ran:
            problems.append('%s: selected, but none of its tests ran'
                            % mod)
            continue
        by_status = {}
        for st in ran:
            by_status[st] = by_status.get(st, 0) + 1
        problems.append('%s: no test passed (%s)' % (mod, ', '.join(
            '%d %s' % (n, st) for st, n in sorted(by_status.items()))))
    return problems


def parse_results_csv(data):
    """Parse ``subunit2csv`` output into ``{test id: status}``.

    :param data: the CSV bytes (header ``test,status,...``).
    """
    rows = csv.DictReader(data.decode('utf-8', 'replace').splitlines())
    results = {}
    for row in rows:
        if row.get('test') and row.get('status'):
            results[row['test']] = row['status']
    return results


def read_results(venv, tree, runner, env):
    """Return ``{test id: status}`` of the runner's last run.

    :param venv: the Nova venv (it has the runner and python-subunit).
    :param tree: the test tree holding the runner's repository.
    :param runner: ``'stestr'`` or ``'testr'``.
    :param env: the test environment.
    """
    proc = util.run([os.path.join(venv, 'bin', runner), 'last',
                     '--subunit'], cwd=tree, check=False, isolated=False,
                    env=env)
    if not proc.stdout:
        return {}
    conv = util.run([os.path.join(venv, 'bin', 'subunit2csv'),
                     '--no-passthrough'], input=proc.stdout, check=False,
                    isolated=False, env=env)
    return parse_results_csv(conv.stdout)


def counts_of(results):
    """Return pass/fail/skip counts of ``{test id: status}``."""
    return {
        'passed': sum(1 for s in results.values() if s in OK_STATUSES),
        'failed': sum(1 for s in results.values() if s in FAILED_STATUSES),
        'skipped': sum(1 for s in results.values() if s == 'skip'),
    }


def failure_report(out):
    """Return the failures part of a runner's output, with tracebacks.

    :param out: the runner's whole output.
    """
    m = re.search(r'^={10,}\nFailed \d+ tests? - output below:', out, re.M)
    if m:
        text = out[m.start():]
        end = re.search(r'^=+\nTotals', text, re.M)
        text = text[:end.start()] if end else text
    else:
        m = re.search(r'^={60,}\n(?:FAIL|ERROR):', out, re.M)
        text = out[m.start():] if m else out[-4000:]
    if len(text) > MAX_FAILURE_CHARS:
        text = text[:MAX_FAILURE_CHARS] + '\n... (%d more characters)' % (
            len(text) - MAX_FAILURE_CHARS)
    return text


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
    entry['series_sha256'] = emit.load_manifest()['releases'].get(
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
    rows = []
    for v in args.versions:
        try:
            res = run_tests(v, args.tests, args.concurrency, args.python,
                            record=not args.no_record)
        except errors.SourceUnavailable as exc:
            if args.skip_unavailable:
                say('SKIPPED %s: %s' % (v, exc))
                rows.append({'version': v, 'result': 'skipped',
                             'reason': str(exc)})
            else:
                say('FAILED %s: %s (--skip-unavailable lists such a '
                    'release as skipped)' % (v, exc))
                rows.append({'version': v, 'result': 'error',
                             'reason': str(exc)})
            continue
        except errors.NovaSioError as exc:
            say('FAILED %s: %s' % (v, exc))
            rows.append({'version': v, 'result': 'error',
                         'reason': str(exc)})
            continue
        rows.append(res)
        if res['result'] != 'passed':
            if res['failures']:
                sys.stderr.write(res['failures'].rstrip() + '\n')
            for prob in res['module_problems']:
                say('nova %s: %s' % (v, prob))
            say('nova %s: the whole output is in %s' % (
                v, res['output_file']))
        print('%s: %s (%s) setup %.0fs, tests %.0fs' % (
            v, res['result'], res['summary'], res['setup_seconds'],
            res['test_seconds']))
    if args.json:
        for r in rows:
            r.pop('failures', None)
        print(json.dumps(rows, indent=2, sort_keys=True))
    return print_summary(rows)


def print_summary(rows):
    """Print the closing lines of a test command; return its exit code.

    Every release that did not run is named on a line of its own.

    :param rows: per-release results of :func:`run_tests`, or dicts with
        ``version``, ``result`` (``'skipped'`` or ``'error'``) and
        ``reason``.
    :returns: 0 when nothing failed, else 1.
    """
    totals = dict.fromkeys(('passed', 'failed', 'skipped'), 0)
    bad = 0
    for r in rows:
        if r['result'] == 'skipped':
            print('SKIPPED %s: %s' % (r['version'], ' '.join(
                r['reason'].split())))
            continue
        if r['result'] == 'error':
            print('FAILED %s: %s' % (r['version'], ' '.join(
                r['reason'].split())))
            bad += 1
            continue
        for key in totals:
            totals[key] += r[key]
        if r['result'] != 'passed':
            bad += 1
            print('FAILED %s: %s%s' % (r['version'], r['summary'], ''.join(
                '; %s' % p for p in r.get('module_problems', []))))
    skipped = [r for r in rows if r['result'] == 'skipped']
    print('nova-sio test: %d passed, %d failed, %d skipped; releases: %d '
          'passed, %d failed, %d skipped' % (
              totals['passed'], totals['failed'], totals['skipped'],
              len(rows) - bad - len(skipped), bad, len(skipped)))
    return 1 if bad else 0


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
                   help='list a release whose source cannot be obtained '
                   'as skipped instead of failing')
    p.set_defaults(func=cmd_test)
