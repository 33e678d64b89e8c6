# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The fault matrix on Nova's functional stack, as a table and JSON.

Builds the patched test tree and virtualenv of a release (as ``nova-sio
test`` does, with Nova's functional dependencies), runs
``nova.tests.functional.libvirt.test_sio_(faults|concurrency)`` with
``NOVA_SIO_FAULTS_JSON`` pointing at a scratch file, then reads one JSON
line per cell and prints operation x fault, each cell as its verdict
and the number of times its fault fired::

    operation       token     401       ...  nodev
    spawn           ok/1      ok/1      ...  clean/2
    delete          ok/1      ok/1      ...  n/a
    ...

``ok``: the operation succeeded; ``clean``: it failed and the server
was recovered with its data and no leak; ``n/a``: the fault cannot fire
during that operation by design (the reasons are listed under the
table); ``FAIL``: a check of the cell failed, or its fault never fired;
``NOT RUN``: the cell was selected but left no result. Both are
failures.

The cells, the faults and the not-applicable cells are read from the
test module itself (``OPERATIONS``, ``FAULTS``, ``NOT_APPLICABLE``).
The concurrency test reports its own line (servers, seconds).

Usage: ``python -m nova_sio.proof.faults [--version 34.0.0]
[--tests REGEX] [--concurrency N] [--json FILE] [--cells FILE]
[--record] [--slice-regex]``. With ``--cells`` an earlier run's JSON
lines are only rendered; ``--record`` writes the result, with the git
commit and the date, to ``releases/tested.json``; ``--slice-regex``
prints the regex of the fast slice (every fault at least once) that the
default test command runs.
"""

import argparse
import ast
import datetime
import json
import os
import re
import shutil
import sys
import tempfile
import time

from nova_sio.engine import emit
from nova_sio import errors
from nova_sio import paths
from nova_sio.proof import cells as cells_mod
from nova_sio import releases as rel_mod
from nova_sio import testenv
from nova_sio import util

MODULE = 'nova.tests.functional.libvirt.test_sio_faults'
MATRIX_CLASS = MODULE + '.SioFaultMatrixTest'
CONCURRENCY_TEST = ('nova.tests.functional.libvirt.test_sio_concurrency.'
                    'SioConcurrencyTest.test_spawn_and_delete_concurrently')
DEFAULT_TESTS = (r'nova\.tests\.functional\.libvirt\.'
                 r'test_sio_(faults\.SioFaultMatrixTest|concurrency)')
#: Short column labels of the faults.
LABELS = {'token_expiry': 'token', 'http_401': '401', 'http_403': '403',
          'http_5xx': '5xx', 'timeout': 'timeout', 'slow': 'slow',
          'reset': 'reset', 'insufficient': 'insuff', 'capacity': 'capac',
          'name_collision': 'name', 'no_device': 'nodev'}
SYMBOL = {'ok': 'ok', 'failed cleanly': 'clean'}
NOT_RUN = 'NOT RUN'
NA = 'n/a'
#: The fast slice the default test command runs: one cell per fault,
#: spread over the operations.
SLICE = (('spawn', 'http_401'), ('rescue', 'capacity'),
         ('live_migration', 'token_expiry'), ('delete', 'reset'),
         ('resize', 'http_403'), ('revert', 'http_5xx'),
         ('snapshot', 'timeout'), ('evacuate', 'slow'),
         ('spawn', 'insufficient'), ('resize', 'name_collision'),
         ('spawn', 'no_device'))


class MatrixError(errors.NovaSioError):
    msg_fmt = 'fault matrix: %(reason)s'


def module_path():
    """Return the path of the fault matrix test module in the checkout."""
    return os.path.join(paths.project_root(), *MODULE.split('.')) + '.py'


def read_spec(path=None):
    """Read the matrix from the test module without importing it.

    :param path: the test module (default: the one of the checkout).
    :returns: ``(operations, faults, not_applicable)``: the operations
        and fault names in their order, and ``{(operation, fault):
        reason}``.
    """
    with open(path or module_path()) as handle:
        tree = ast.parse(handle.read())
    found = {}
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        name = getattr(node.targets[0], 'id', None)
        if name == 'FAULTS':
            # The rule parameters use module constants: keys only.
            found[name] = tuple(ast.literal_eval(k) for k in node.value.keys)
        elif name in ('OPERATIONS', 'NOT_APPLICABLE'):
            found[name] = ast.literal_eval(node.value)
    missing = [n for n in ('OPERATIONS', 'FAULTS', 'NOT_APPLICABLE')
               if n not in found]
    if missing:
        raise MatrixError(reason='%s not found in %s' % (
            ', '.join(missing), path or module_path()))
    return found['OPERATIONS'], found['FAULTS'], found['NOT_APPLICABLE']


def cell_id(op, fault):
    """Return the test id of a cell."""
    return '%s.test_%s__%s' % (MATRIX_CLASS, op, fault)


def selected_cells(tests, spec):
    """Return the applicable cells whose test id matches ``tests``.

    :param tests: the test regex given to the runner (searched, as
        stestr does).
    :param spec: what :func:`read_spec` returns.
    """
    pattern = re.compile(tests)
    return [(op, fault) for op, fault in cells_mod.applicable(*spec)
            if pattern.search(cell_id(op, fault))]


def slice_regex():
    """Return the test regex of :data:`SLICE`."""
    return r'%s\.test_(%s)$' % (
        re.escape(MATRIX_CLASS),
        '|'.join('%s__%s' % cell for cell in SLICE))


def run_suite(version, tests, concurrency, cells_path):
    """Run the functional suites; return ``(returncode, output)``.

    :param version: the Nova release.
    :param tests: the test regex.
    :param concurrency: stestr workers.
    :param cells_path: the file the tests append their JSON lines to;
        the runner's output is written beside it (``<cells_path>.out``).
    """
    with testenv.tree_lock(version):
        tree = testenv.build_tree(version)
        venv = testenv.build_venv(version, tree)
        testenv._functional_deps(version, tree, venv)
        env = testenv._test_env(venv, tree)
        env['OS_TEST_TIMEOUT'] = '900'
        env['NOVA_SIO_FAULTS_JSON'] = cells_path
        for name in ('NOVA_SIO_BENCH_JSON', 'NOVA_SIO_CONCURRENCY'):
            if os.environ.get(name):
                env[name] = os.environ[name]
        # A fresh repository: no result of an earlier run is read.
        shutil.rmtree(os.path.join(tree, '.stestr'), ignore_errors=True)
        cmd = [os.path.join(venv, 'bin', 'stestr'), '--test-path',
               './nova/tests/functional', 'run', '--concurrency',
               str(concurrency), tests]
        proc = util.run(cmd, cwd=tree, check=False, isolated=False,
                        env=env, timeout=4 * 3600)
    out = (proc.stdout + proc.stderr).decode('utf-8', 'replace')
    with open(cells_path + '.out', 'w') as handle:
        handle.write(out)
    return proc.returncode, out


def test_statuses(output):
    """Return ``{test id: 'ok' | 'FAILED' | 'SKIPPED'}`` from the output.

    :param output: the stestr (subunit-trace) output.
    """
    statuses = {}
    for match in re.finditer(r'^\{\d+\} (\S+?)(?:\[[^\]]*\])? '
                             r'\[[\d.]+s\] \.\.\. (ok|FAILED|SKIPPED)',
                             output, re.M):
        statuses[match.group(1)] = match.group(2)
    return statuses


def run_seconds(output):
    """Return the seconds stestr reports for the run, or None.

    :param output: the stestr output (``Ran: N tests in S sec.``).
    """
    match = re.search(r'^Ran: \d+ tests? in ([\d.]+) sec', output, re.M)
    return round(float(match.group(1)), 1) if match else None


def load_cells(path):
    """Read the JSON lines the tests wrote.

    :returns: ``(cells, concurrency)``: ``{(operation, fault): cell}``
        (the last line per cell wins) and the concurrency test's line
        or None.
    """
    cells, concurrency = {}, None
    if not os.path.exists(path):
        return cells, concurrency
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            entry = json.loads(line)
            if 'operation' in entry:
                cells[(entry['operation'], entry['fault'])] = entry
            elif entry.get('suite') == 'concurrency':
                concurrency = entry
    return cells, concurrency


def verdict(cell, expected=True):
    """Return ``ok``, ``clean``, ``FAIL``, ``NOT RUN`` or ``-``.

    :param cell: the cell's JSON line, or None.
    :param expected: whether the run selected the cell.
    """
    if cell is None:
        return NOT_RUN if expected else '-'
    problems = [k for k in ('leaked_volumes', 'stray_mappings',
                            'stray_devices') if cell.get(k)]
    if (cell.get('error') or problems or cell.get('recovered') is not True
            or cell.get('data_intact') is False
            or not cell.get('fault_hits')):
        return 'FAIL'
    return SYMBOL.get(cell.get('outcome'), 'FAIL')


def _why(cell):
    if cell is None:
        return 'selected but no result: the cell did not run'
    if cell.get('error'):
        return cell['error']
    if not cell.get('fault_hits'):
        return 'the fault never fired'
    return json.dumps(dict((k, cell.get(k)) for k in (
        'status_after', 'recovered', 'data_intact', 'leaked_volumes',
        'stray_mappings', 'stray_devices')), sort_keys=True)


def render(cells, spec, selected):
    """Return the matrix as text, the marks and the failures.

    :param cells: ``{(operation, fault): cell}``.
    :param spec: what :func:`read_spec` returns.
    :param selected: the cells the run selected.
    :returns: ``(text, marks, failures)``; ``marks`` maps ``"op x
        fault"`` to ``verdict/hits`` or ``n/a``.
    """
    operations, faults, not_applicable = spec
    selected = set(selected)
    labels = [LABELS.get(f, f[:8]) for f in faults]
    head = '%-15s' % 'operation' + ''.join(' %-9s' % f for f in labels)
    lines = [head, '-' * len(head)]
    failures, marks, counts = [], {}, {}
    for op in operations:
        row = '%-15s' % op
        for fault in faults:
            cell = cells.get((op, fault))
            if (op, fault) in not_applicable:
                mark = NA
                text = NA
            else:
                mark = verdict(cell, (op, fault) in selected)
                text = mark
                if cell is not None and cell.get('fault_hits') is not None:
                    text = '%s/%s' % (mark, cell['fault_hits'])
            row += ' %-9s' % text
            counts[mark] = counts.get(mark, 0) + 1
            if mark != '-':
                marks['%s x %s' % (op, fault)] = text
            if mark in ('FAIL', NOT_RUN):
                failures.append('%s x %s: %s: %s' % (op, fault, mark,
                                                     _why(cell)[:300]))
        lines.append(row)
    lines.append('')
    lines.append('columns: %s' % ', '.join(
        '%s=%s' % (label, fault) for label, fault in zip(labels, faults)
        if label != fault))
    lines.append('cells (verdict/fault hits): %s' % ', '.join(
        '%s %d' % (k, counts[k]) for k in sorted(counts)))
    lines.append('')
    lines.append('not applicable by design:')
    for (op, fault), reason in sorted(not_applicable.items()):
        lines.append('  %s x %s: %s' % (op, fault, reason))
    if failures:
        lines.append('')
        lines.append('failed cells:')
        lines.extend('  ' + f for f in failures)
    return '\n'.join(lines), marks, failures


def render_concurrency(entry, status):
    """Return the concurrency test's line and whether it failed.

    :param entry: its JSON line, or None.
    :param status: its status in the runner output, or None.
    """
    if entry is None or status != 'ok':
        return ('concurrency: FAIL (status %s, %s)' % (
            status, 'no result line' if entry is None else
            entry.get('error', 'see the output'))), True
    return ('concurrency: %(servers)d servers on one compute, spawned in '
            '%(spawn_seconds).1fs, deleted in %(delete_seconds).1fs, '
            '%(volumes)d volumes, audit clean' % entry), False


def git_commit():
    """Return the commit of the checkout.

    ``-dirty`` is appended when tracked files of the runtime or of our
    tests have local changes (the diff tested is identified by its
    sha256).
    """
    root = paths.project_root()
    head = util.run(['git', 'rev-parse', 'HEAD'], cwd=root,
                    isolated=False).stdout.decode().strip()
    dirty = util.run(['git', 'status', '--porcelain',
                      '--untracked-files=no', '--', 'nova'],
                     cwd=root, isolated=False).stdout.strip()
    return head + ('-dirty' if dirty else '')


def record(version, tests, entry):
    """Store a run under ``releases/tested.json`` ``other_suites``.

    :param version: the Nova release.
    :param tests: the test regex (the key).
    :param entry: what to store.
    """
    path = os.path.join(paths.releases_dir(), testenv.RESULTS)
    data = {}
    if os.path.exists(path):
        with open(path) as handle:
            data = json.load(handle)
    data.setdefault(version, {}).setdefault('other_suites', {})[tests] = \
        entry
    util.write_atomic(path, util.dump_json(data))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--version', default='34.0.0')
    parser.add_argument('--tests', default=DEFAULT_TESTS)
    parser.add_argument('--concurrency', type=int, default=2)
    parser.add_argument('--json', help='write the matrix here')
    parser.add_argument('--cells', help='only render these JSON lines')
    parser.add_argument('--record', action='store_true',
                        help='write the result to releases/tested.json')
    parser.add_argument('--slice-regex', action='store_true',
                        help='print the regex of the fast slice and exit')
    args = parser.parse_args(argv)
    if args.slice_regex:
        print(slice_regex())
        return 0
    spec = read_spec()
    selected = selected_cells(args.tests, spec)
    want_concurrency = bool(re.search(args.tests, CONCURRENCY_TEST))
    started = time.time()
    returncode, output = 0, ''
    if args.cells:
        cells_path = args.cells
    else:
        handle, cells_path = tempfile.mkstemp(prefix='sio-cells-',
                                              suffix='.jsonl')
        os.close(handle)
        returncode, output = run_suite(args.version, args.tests,
                                       args.concurrency, cells_path)
    cells, concurrency = load_cells(cells_path)
    statuses = test_statuses(output)
    for op, fault in selected:
        # A cell can write its line and still fail afterwards.
        if statuses.get(cell_id(op, fault)) == 'FAILED' and \
                (op, fault) in cells:
            cells[(op, fault)].setdefault('error', 'the test failed')
    text, marks, failures = render(cells, spec, selected)
    print(text)
    failed = bool(failures)
    conc_line = None
    if want_concurrency:
        conc_line, conc_failed = render_concurrency(
            concurrency, statuses.get(CONCURRENCY_TEST) if output else 'ok')
        failed = failed or conc_failed
        print('\n' + conc_line)
    summary = testenv.parse_counts(output) if output else {}
    if summary:
        print('\ntests: %(passed)d passed, %(failed)d failed, '
              '%(skipped)d skipped' % summary)
    failed = failed or bool(returncode) or (
        bool(output) and not summary.get('passed'))
    result = {
        'result': 'failed' if failed else 'passed',
        'summary': '%d passed, %d failed, %d skipped' % (
            summary.get('passed', 0), summary.get('failed', 0),
            summary.get('skipped', 0)),
        'passed': summary.get('passed', 0),
        'failed': summary.get('failed', 0),
        'skipped': summary.get('skipped', 0),
        'test_seconds': run_seconds(output) if output else None,
        'wall_seconds': round(time.time() - started, 1),
        'python': testenv.PYTHON.get(rel_mod.series_of(args.version)),
        'fault_matrix': {'cells': marks, 'failures': failures,
                         'not_applicable': dict(
                             ('%s x %s' % k, v)
                             for k, v in sorted(spec[2].items()))},
        'concurrency': concurrency if want_concurrency else None,
    }
    if args.json:
        with open(args.json, 'w') as out:
            json.dump(dict(result, version=args.version, tests=args.tests,
                           cells=[cells[k] for k in sorted(cells)]),
                      out, indent=2, sort_keys=True)
    if args.record and not args.cells:
        result['commit'] = git_commit()
        result['date'] = datetime.datetime.now(
            datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        result['series_sha256'] = emit.load_manifest()['releases'].get(
            args.version, {}).get('series_sha256')
        result['diff_sha256'] = util.sha256_file(os.path.join(
            paths.releases_dir(), '%s.diff' % args.version))
        record(args.version, args.tests, result)
    if output:
        print('runner output: %s.out' % cells_path)
        if returncode and not cells:
            sys.stderr.write(output[-3000:])
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
