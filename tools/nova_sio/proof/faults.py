# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The fault matrix on Nova's functional stack, as a table and JSON.

Builds the patched test tree and virtualenv of a release (as ``nova-sio
test`` does), adds ``openstack-placement`` (Nova's functional tests
need it, its unit tests do not), runs
``nova.tests.functional.libvirt.test_sio_(faults|concurrency)`` with
``NOVA_SIO_FAULTS_JSON`` pointing at a scratch file, then reads one JSON
line per cell and prints operation x fault::

    operation       token_expiry http_401 ... no_device
    spawn           ok           ok           clean
    ...

``ok``: the operation succeeded; ``clean``: it failed and the server
was recovered with its data and no leak; ``FAIL``: a check of the cell
failed (the reason is listed under the table).

Usage: ``python -m nova_sio.proof.faults [--version 34.0.0]
[--tests REGEX] [--concurrency N] [--json FILE] [--cells FILE]``.
With ``--cells`` an earlier run's JSON lines are only rendered.
"""

import argparse
import json
import os
import sys
import tempfile
import time

from nova_sio import paths
from nova_sio import releases as rel_mod
from nova_sio import testenv
from nova_sio import util

DEFAULT_TESTS = (r'nova\.tests\.functional\.libvirt\.'
                 r'test_sio_(faults|concurrency)')
OPERATIONS = ('spawn', 'delete', 'resize', 'revert', 'live_migration',
              'evacuate', 'snapshot', 'rescue')
FAULTS = ('token_expiry', 'http_401', 'http_403', 'http_5xx', 'timeout',
          'slow', 'reset', 'insufficient', 'capacity', 'name_collision',
          'no_device')
LABELS = ('token', '401', '403', '5xx', 'timeout', 'slow', 'reset',
          'insuff', 'capac', 'name', 'nodev')
SYMBOL = {'ok': 'ok', 'failed cleanly': 'clean'}


def placement_dir(version, venv):
    """Install openstack-placement beside the venv; return the path."""
    target = os.path.join(paths.cache_dir(), 'placement',
                          os.path.basename(venv))
    stamp = os.path.join(target, '.nova-sio-ready')
    if not os.path.exists(stamp):
        pip = os.path.join(venv, 'bin', 'pip')
        cons = testenv.constraints_file(rel_mod.series_of(version))
        util.run([pip, 'install', '-q', '--no-deps', '--target', target,
                  '-c', cons, 'openstack-placement'], isolated=False,
                 timeout=900, env={'PIP_DISABLE_PIP_VERSION_CHECK': '1'})
        with open(stamp, 'w') as handle:
            handle.write(version)
    return target


def run_suite(version, tests, concurrency, cells_path):
    """Run the functional suites; return ``(returncode, output)``."""
    tree = testenv.build_tree(version)
    venv = testenv.build_venv(version, tree)
    env = testenv._test_env(venv, tree)
    env['PYTHONPATH'] = placement_dir(version, venv)
    env['OS_TEST_TIMEOUT'] = '600'
    env['NOVA_SIO_FAULTS_JSON'] = cells_path
    py = os.path.join(venv, 'bin', 'python')
    cmd = [py, '-m', 'stestr', '--test-path', './nova/tests/functional',
           'run', '--concurrency', str(concurrency), tests]
    proc = util.run(cmd, cwd=tree, check=False, isolated=False, env=env,
                    timeout=4 * 3600)
    out = (proc.stdout + proc.stderr).decode('utf-8', 'replace')
    return proc.returncode, out


def load_cells(path):
    """Read the JSON lines the tests wrote; the last line per cell wins."""
    cells = {}
    if not os.path.exists(path):
        return cells
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line:
                cell = json.loads(line)
                cells[(cell['operation'], cell['fault'])] = cell
    return cells


def verdict(cell):
    """Return ``ok``, ``clean``, ``FAIL`` or ``-`` (not run)."""
    if cell is None:
        return '-'
    problems = [k for k in ('leaked_volumes', 'stray_mappings',
                            'stray_devices') if cell.get(k)]
    if (cell.get('error') or problems or cell.get('recovered') is False
            or cell.get('data_intact') is False):
        return 'FAIL'
    return SYMBOL.get(cell.get('outcome'), 'FAIL')


def render(cells):
    """Return the matrix and the list of failures as text."""
    head = '%-15s' % 'operation' + ''.join(' %-7s' % f for f in LABELS)
    lines = [head, '-' * len(head)]
    failures = []
    for op in OPERATIONS:
        row = '%-15s' % op
        for fault in FAULTS:
            cell = cells.get((op, fault))
            mark = verdict(cell)
            row += ' %-7s' % mark
            if mark == 'FAIL':
                failures.append('%s x %s: %s' % (
                    op, fault, (cell.get('error') or json.dumps(
                        dict((k, cell.get(k)) for k in (
                            'status_after', 'recovered', 'data_intact',
                            'leaked_volumes', 'stray_mappings',
                            'stray_devices')), sort_keys=True))[:300]))
        lines.append(row)
    counts = {}
    for op in OPERATIONS:
        for fault in FAULTS:
            mark = verdict(cells.get((op, fault)))
            counts[mark] = counts.get(mark, 0) + 1
    lines.append('')
    lines.append('columns: %s' % ', '.join(
        '%s=%s' % (label, fault) for label, fault in zip(LABELS, FAULTS)
        if label != fault))
    lines.append('cells: %s' % ', '.join('%s %d' % (k, counts[k])
                                         for k in sorted(counts)))
    if failures:
        lines.append('')
        lines.append('failed cells:')
        lines.extend('  ' + f for f in failures)
    return '\n'.join(lines), counts, failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--version', default='34.0.0')
    parser.add_argument('--tests', default=DEFAULT_TESTS)
    parser.add_argument('--concurrency', type=int,
                        default=max(2, os.cpu_count() or 2))
    parser.add_argument('--json', help='write the matrix here')
    parser.add_argument('--cells', help='only render these JSON lines')
    args = parser.parse_args(argv)
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
    cells = load_cells(cells_path)
    text, counts, failures = render(cells)
    print(text)
    summary = testenv.parse_counts(output) if output else {}
    if summary:
        print('\ntests: %(passed)d passed, %(failed)d failed, '
              '%(skipped)d skipped' % summary)
    if args.json:
        with open(args.json, 'w') as out:
            json.dump({'version': args.version, 'tests': args.tests,
                       'seconds': round(time.time() - started, 1),
                       'counts': counts, 'failures': failures,
                       'test_counts': summary,
                       'cells': [cells[k] for k in sorted(cells)]},
                      out, indent=2, sort_keys=True)
    if not args.cells and returncode and not cells:
        sys.stderr.write(output[-3000:])
    return 1 if (failures or returncode) else 0


if __name__ == '__main__':
    sys.exit(main())
