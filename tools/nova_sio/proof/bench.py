# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Benchmarks of the ``sio`` backend and of the release engine.

1. Gateway calls per lifecycle operation (spawn, snapshot, rescue,
   unrescue, resize, confirm, live migration, delete) through Nova's
   functional stack with the emulator holding 10 and 10,000 volumes;
   the target is the same count for both.
2. Device wait latency: how long the backend waited for each by-id
   device after mapping a volume (emulated SDC, 50 ms udev delay).
3. Bytes copied per boot: the data written into the root volume by the
   image conversion, against the image and the volume size.
4. Engine emit + verify time per release (``nova_sio.bench.engine_bench``).

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
    """Run the functional benchmark; return ``{volumes: figures}``."""
    handle, path = tempfile.mkstemp(prefix='sio-bench-', suffix='.jsonl')
    os.close(handle)
    os.environ['NOVA_SIO_BENCH_JSON'] = path
    try:
        returncode, output = faults.run_suite(version, NOVA_TESTS, 1,
                                              path + '.cells')
    finally:
        del os.environ['NOVA_SIO_BENCH_JSON']
    figures = load_figures(path)
    if returncode or len(figures) < 2:
        sys.stderr.write(output[-3000:])
    return figures


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


def render_waits(figures):
    lines = []
    for size in sorted(figures):
        every = figures[size]['device_waits']
        # A device already present (mapped before) is found at once.
        waits = sorted(w for w in every if w > 0.001)
        if not waits:
            continue
        mid = waits[len(waits) // 2]
        lines.append('device wait after a new mapping (%d volumes): %d '
                     'waits, median %.0f ms, max %.0f ms; %d devices '
                     'already present' % (
                         size, len(waits), mid * 1000, waits[-1] * 1000,
                         len(every) - len(waits)))
    return '\n'.join(lines)


def render_copy(figures):
    lines = []
    for size in sorted(figures):
        f = figures[size]
        lines.append('bytes copied per boot (%d volumes): %d into a %d GiB '
                     'root volume from a %d byte image' % (
                         size, f['boot_bytes_copied'],
                         f['root_volume_bytes'] // 1024 ** 3,
                         f['image_bytes']))
    return '\n'.join(lines)


def engine_figures(versions):
    """Run the engine benchmark; return its JSON report."""
    handle, path = tempfile.mkstemp(prefix='engine-bench-', suffix='.json')
    os.close(handle)
    cmd = [sys.executable, '-m', 'nova_sio.bench.engine_bench', '--json',
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
    per = [r['emit_s'] + r['verify_s'] for r in rows]
    return ('engine emit + verify: %d releases (%d ok) in %.1f s wall '
            '(%d jobs); per release median %.3f s, max %.3f s' % (
                len(rows), sum(1 for r in rows if r['ok']),
                report['total_seconds'], report['jobs'],
                sorted(per)[len(per) // 2], max(per)))


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
        if args.figures:
            figures = load_figures(args.figures)
        else:
            figures = nova_figures(args.version)
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
            status = 1 if differ else 0
        else:
            print('functional benchmark did not produce both sizes')
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
