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

"""Benchmark: emit + verify throughput over every release, warm cache.

Prints one line per release and the total, and writes a JSON report.
The target is every release in under 30 s on 2 cores.  Emitting goes to a
scratch copy of ``releases/`` so the checkout is not modified.

Usage: ``python -m nova_sio.bench.engine_bench [--jobs N] [--json FILE]``
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import sys
import tempfile
import time

from nova_sio import cli
from nova_sio import engine
from nova_sio import errors
from nova_sio import paths
from nova_sio import releases as rel_mod
from nova_sio import source


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--jobs', type=int, default=os.cpu_count() or 2)
    parser.add_argument('--json', metavar='FILE')
    parser.add_argument('versions', nargs='*')
    args = parser.parse_args(argv)

    versions = args.versions or [r.version for r in cli.discover(
        offline=True)]
    # Warm the cache (not timed): sources and pristine extraction.
    available = []
    for v in versions:
        try:
            source.fetch(v)
            available.append(v)
        except errors.SourceUnavailable as exc:
            print('skip %s: %s' % (v, exc))
    root = paths.project_root()
    scratch = tempfile.mkdtemp(prefix='nova-sio-bench-')
    shutil.copytree(os.path.join(root, 'releases'),
                    os.path.join(scratch, 'releases'))
    shutil.copytree(os.path.join(root, 'nova'), os.path.join(scratch,
                                                             'nova'))
    os.environ['NOVA_SIO_ROOT'] = scratch
    eras = rel_mod.load_eras()
    manifest = engine.load_manifest()
    for v in available:  # warm the pristine cache and work repo
        try:
            engine.render(v, manifest, eras)
        except errors.NovaSioError:
            pass

    def one(v):
        t0 = time.time()
        try:
            engine.emit(v, manifest, eras)
            t1 = time.time()
            rep = engine.verify(v, manifest, eras, check_fresh=False)
            ok = rep['ok']
        except errors.NovaSioError as exc:
            t1 = time.time()
            ok = False
            print('%s: %s' % (v, exc), file=sys.stderr)
        return v, ok, t1 - t0, time.time() - t1

    rows = []
    t_start = time.time()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for v, ok, te, tv in pool.map(one, available):
            rows.append({'version': v, 'ok': ok, 'emit_s': round(te, 3),
                         'verify_s': round(tv, 3)})
            print('%-10s %-6s emit %6.3fs verify %6.3fs' % (
                v, 'ok' if ok else 'FAIL', te, tv))
    total = time.time() - t_start
    shutil.rmtree(scratch, ignore_errors=True)
    print('-' * 44)
    print('%d releases (%d ok) emitted and verified in %.1f s wall with '
          '%d jobs (%.3f s per release)' % (
              len(rows), sum(r['ok'] for r in rows), total, args.jobs,
              total / max(1, len(rows))))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump({'total_seconds': round(total, 2), 'jobs': args.jobs,
                       'releases': rows}, f, indent=2, sort_keys=True)
    return 0 if all(r['ok'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
