# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Benchmarks of the ``sio`` backend and of the release engine.

1. Gateway calls per lifecycle operation (spawn, snapshot, rescue,
   unrescue, resize, confirm, live migration, delete) through Nova's
   functional stack with the emulator holding 10 and 10,000 volumes;
   the target is the same count for both.
   Calls are counted at the emulator's request log.
2. Device wait: how long the backend waited in ``wait_for_device`` for
   each by-id device after mapping a volume, next to the delay the
   emulated SDC is set to take before the device appears, and the part
   of the wait beyond that delay (the backend's polling).
3. Bytes written per boot: what the spawn wrote into the emulator's
   volumes, counted at the storage (growth of the allocated blocks of
   the volumes' backing files, ``nova_sio.emulator.usage``), against the
   image and the volume size.
4. Engine emit + verify time per release (``nova_sio.proof.engine_bench``).

Exit status 1 when the functional benchmark fails (a leak fails its
clean-up check), does not give both sizes, or an operation's call count
differs between them, or when the engine benchmark fails.

Figures 1-3 come from ``SioBenchTest`` in
``nova/tests/functional/libvirt/test_sio_faults.py`` run on a patched
release (``--version``, default 34.0.0); ``--skip-nova`` or
``--skip-engine`` leave a part out.

Usage: ``python -m nova_sio.proof.bench [--version V] [--json FILE]
[--skip-nova] [--skip-engine] [--engine-versions V ...]
[--figures FILE]``
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from nova_sio.proof import faults

NOVA_TESTS = r'nova\.tests\.functional\.libvirt\.test_sio_faults\.' \
    r'SioBenchTest'


ORDER = ('spawn', 'snapshot', 'rescue', 'unrescue', 'resize', 'confirm',
         'live_migration', 'delete')


def load_figures(path):
    """Read the JSON lines of ``SioBenchTest``: ``{volumes: figures}``."""
    figures = {}
    with open(path) as lines:
        for line in lines:
            if line.strip():
                entry = json.loads(line)
                figures[entry['volumes']] = entry
    return figures


def nova_figures(version):
    """Run the functional benchmark.

    :returns: ``({volumes: figures}, test run exit status)``.
    """
    handle, path = tempfile.mkstemp(prefix='sio-bench-', suffix='.jsonl')
    os.close(handle)
    os.environ['NOVA_SIO_BENCH_JSON'] = path
    try:
        returncode, output = faults.run_suite(version, NOVA_TESTS, 1,
                                              path + '.cells')
        figures = load_figures(path)
    finally:
        del os.environ['NOVA_SIO_BENCH_JSON']
        for scratch in (path, path + '.cells'):
            if os.path.exists(scratch):
                os.unlink(scratch)
    if returncode or len(figures) < 2:
        sys.stderr.write(output[-3000:])
    return figures, returncode


def render_calls(figures):
    """Return the calls-per-operation table and the operations that differ.
    """
    sizes = sorted(figures)
    head = '%-16s' % 'operation' + ''.join(
        ' %14s' % ('%d volumes' % s) for s in sizes) + '  same'
    lines = [head, '-' * len(head)]
    differ = []
    ops = [op for op in ORDER if op in figures[sizes[0]]['calls']]
    for op in ops:
        counts = [figures[s]['calls'].get(op) for s in sizes]
        same = len(set(counts)) == 1
        if not same:
            differ.append(op)
        lines.append('%-16s' % op + ''.join(' %14s' % c for c in counts) +
                     '  %s' % ('yes' if same else 'NO'))
    return '\n'.join(lines), differ


#: Gateway-call targets per operation: ``(calls per disk, constant)``.
CALL_TARGETS = {'delete': (2, 3), 'live_migration': (2, 3),
                'confirm': (3, 3)}


def check_call_targets(figures):
    """Compare the calls per operation with :data:`CALL_TARGETS`.

    The instance's disk count is ``disks`` in the figures (the benchmark
    flavor has a root disk only when it is absent).

    :param figures: ``{volumes: figures}`` of ``SioBenchTest``.
    :returns: ``(table text, [missed (operation, volumes)])``.
    """
    head = ('operation', 'volumes', 'calls', 'target', 'ok')
    lines = ['%-16s %9s %7s %7s  %s' % head]
    missed = []
    for size in sorted(figures):
        disks = int(figures[size].get('disks') or 1)
        for op in sorted(CALL_TARGETS):
            calls = figures[size]['calls'].get(op)
            if calls is None:
                continue
            per_disk, constant = CALL_TARGETS[op]
            target = per_disk * disks + constant
            ok = calls <= target
            if not ok:
                missed.append((op, size))
            lines.append('%-16s %9d %7d %7d  %s' % (op, size, calls, target,
                                                    'yes' if ok else 'NO'))
    return '\n'.join(lines), missed


def render_waits(figures):
    """Return the device wait lines: measured waits and configured delay."""
    lines = []
    for size in sorted(figures):
        f = figures[size]
        every = f['device_waits']
        delay = f.get('device_delay')
        # A device already present (mapped before) is found at once.
        waits = sorted(w for w in every if w > 0.001)
        if not waits:
            continue
        mid = waits[len(waits) // 2]
        line = ('device wait after a new mapping (%d volumes): %d waits, '
                'median %.0f ms, max %.0f ms; %d devices already present'
                % (size, len(waits), mid * 1000, waits[-1] * 1000,
                   len(every) - len(waits)))
        if delay is None:
            line += '; emulated SDC delay not recorded'
        else:
            beyond = sorted(w - delay for w in waits)
            line += ('; emulated SDC delay %.0f ms, waited beyond it: '
                     'median %.0f ms, max %.0f ms' % (
                         delay * 1000, beyond[len(beyond) // 2] * 1000,
                         beyond[-1] * 1000))
        lines.append(line)
    return '\n'.join(lines)


def render_copy(figures):
    """Return the bytes-per-boot lines (measured at the storage)."""
    lines = []
    for size in sorted(figures):
        f = figures[size]
        if 'boot_bytes_written' not in f:
            lines.append('bytes written per boot (%d volumes): not '
                         'measured' % size)
            continue
        lines.append('bytes written per boot (%d volumes): %d into a %d GiB '
                     'root volume from a %d byte image (%s)' % (
                         size, f['boot_bytes_written'],
                         f['root_volume_bytes'] // 1024 ** 3,
                         f['image_bytes'], f['bytes_method']))
    return '\n'.join(lines)


def engine_figures(versions):
    """Run the engine benchmark; return its JSON report."""
    handle, path = tempfile.mkstemp(prefix='engine-bench-', suffix='.json')
    os.close(handle)
    cmd = [sys.executable, '-m', 'nova_sio.proof.engine_bench', '--json',
           path] + list(versions)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
    try:
        with open(path) as handle:
            report = json.load(handle)
    except ValueError:
        report = {'error': proc.stderr.decode('utf-8', 'replace')[-2000:]}
    report['returncode'] = proc.returncode
    return report


def render_engine(report):
    rows = report.get('releases') or []
    if not rows:
        return 'engine benchmark failed: %s' % report.get('error', '?')
    lines = []
    for label, part in (('cold cache (source archives only)',
                         report.get('cold')), ('warm cache', report)):
        if not part:
            continue
        rows = part['releases']
        per = [r['emit_s'] + r['verify_s'] for r in rows]
        lines.append('engine emit + verify, %s: %d releases (%d ok) in '
                     '%.1f s wall (%d jobs); per release median %.3f s, '
                     'max %.3f s' % (
                         label, len(rows), sum(1 for r in rows if r['ok']),
                         part['total_seconds'], report['jobs'],
                         sorted(per)[len(per) // 2], max(per)))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--version', default='34.0.0')
    parser.add_argument('--json', help='write every figure here')
    parser.add_argument('--skip-nova', action='store_true')
    parser.add_argument('--skip-engine', action='store_true')
    parser.add_argument('--engine-versions', nargs='*', default=[])
    parser.add_argument('--figures', help='render these SioBenchTest JSON '
                        'lines instead of running the Nova part')
    args = parser.parse_args(argv)
    result = {'version': args.version}
    status = 0
    if not args.skip_nova:
        returncode = 0
        if args.figures:
            figures = load_figures(args.figures)
        else:
            figures, returncode = nova_figures(args.version)
        result['nova'] = dict((str(k), v) for k, v in figures.items())
        if len(figures) >= 2:
            table, differ = render_calls(figures)
            print('Gateway calls per lifecycle operation (nova %s)'
                  % args.version)
            print(table)
            print()
            print(render_waits(figures))
            print(render_copy(figures))
            result['calls_differ'] = differ
            targets, missed = check_call_targets(figures)
            print()
            print('Gateway calls against the targets (per disk + constant)')
            print(targets)
            result['calls_missed'] = ['%s@%d' % m for m in missed]
            status = 1 if differ or missed else 0
        else:
            print('functional benchmark did not produce both sizes')
            status = 1
        if returncode:
            print('functional benchmark failed (exit %d)' % returncode)
            status = 1
    if not args.skip_engine:
        report = engine_figures(args.engine_versions)
        result['engine'] = report
        print(render_engine(report))
        status = status or (1 if report.get('returncode') else 0)
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(result, handle, indent=2, sort_keys=True)
    return status


if __name__ == '__main__':
    sys.exit(main())
