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

"""Benchmark: emit + verify throughput over every release, cold and warm.

Two timed passes over the same releases, in a private cache:

- cold: the cache holds only the downloaded source archives (as after
  ``nova-sio fetch`` on a fresh machine); the pass includes extracting
  the pristine files, creating the work repository, its rerere cache and
  the round-trip repository, the upstream commits, applying every series
  with ``git am``, and emitting and verifying every diff;
- warm: the same again on the cache the cold pass left.

Downloads are not timed: sources are fetched into the user's cache first
and hard-linked (or copied) into the private one.  Prints one line per
release and a summary per pass, writes a JSON report on request, and
exits non-zero when a release fails or a pass misses its target (on 2
cores: every release warm in under 30 s, cold in under 180 s).  Emitting
goes to a scratch copy of ``releases/`` so the checkout is not modified.

Usage: ``python -m nova_sio.proof.engine_bench [--jobs N] [--json FILE]
[--cold-target S] [--warm-target S] [versions...]``
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
from nova_sio.engine import emit
from nova_sio.engine import source
from nova_sio import errors
from nova_sio import paths
from nova_sio import releases as rel_mod

WARM_TARGET_S = 30.0
COLD_TARGET_S = 180.0


def _seed_cache(cache_from, cache_to, versions):
    """Put the fetched archives of ``versions`` into an empty cache."""
    for v in versions:
        src = os.path.join(cache_from, 'sources', v)
        dst = os.path.join(cache_to, 'sources', v)
        os.makedirs(dst)
        for name in os.listdir(src):
            try:
                os.link(os.path.join(src, name), os.path.join(dst, name))
            except OSError:
                shutil.copyfile(os.path.join(src, name),
                                os.path.join(dst, name))
    index = os.path.join(cache_from, 'pypi-nova.json')
    if os.path.exists(index):
        shutil.copyfile(index, os.path.join(cache_to, 'pypi-nova.json'))


def _one(v, manifest, eras):
    t0 = time.time()
    try:
        emit.emit(v, manifest, eras)
        t1 = time.time()
        rep = emit.verify(v, manifest, eras, check_fresh=False)
        ok = rep['ok']
        if not ok:
            print('%s: %s' % (v, rep.get('error') or rep['gates']),
                  file=sys.stderr)
    except errors.NovaSioError as exc:
        t1 = time.time()
        ok = False
        print('%s: %s' % (v, exc), file=sys.stderr)
    return v, ok, t1 - t0, time.time() - t1


def _timed_pass(name, versions, jobs, manifest, eras):
    """Emit and verify every release in ``jobs`` threads; time it.

    :returns: ``(wall seconds, rows)``.
    """
    print('== %s cache ==' % name)
    rows = []
    t_start = time.time()
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for v, ok, te, tv in pool.map(lambda v: _one(v, manifest, eras),
                                      versions):
            rows.append({'version': v, 'ok': ok, 'emit_s': round(te, 3),
                         'verify_s': round(tv, 3)})
            print('%-10s %-6s emit %6.3fs verify %6.3fs' % (
                v, 'ok' if ok else 'FAIL', te, tv))
    return time.time() - t_start, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--jobs', type=int, default=os.cpu_count() or 2)
    parser.add_argument('--json', metavar='FILE')
    parser.add_argument('--cold-target', type=float, default=COLD_TARGET_S,
                        help='seconds the cold pass may take')
    parser.add_argument('--warm-target', type=float, default=WARM_TARGET_S,
                        help='seconds the warm pass may take')
    parser.add_argument('versions', nargs='*')
    args = parser.parse_args(argv)

    versions = args.versions or [r.version for r in cli.discover(
        offline=True)]
    # Downloads are not timed.
    available = []
    for v in versions:
        try:
            source.fetch(v)
            available.append(v)
        except errors.SourceUnavailable as exc:
            print('skip %s: %s' % (v, exc))
    root = paths.project_root()
    user_cache = paths.cache_dir()
    scratch = tempfile.mkdtemp(prefix='nova-sio-bench-')
    saved = dict((k, os.environ.get(k)) for k in ('NOVA_SIO_ROOT',
                                                  'NOVA_SIO_CACHE'))
    results = {}
    try:
        for name in ('releases', 'nova'):
            shutil.copytree(os.path.join(root, name),
                            os.path.join(scratch, name))
        cache = os.path.join(scratch, 'cache')
        _seed_cache(user_cache, cache, available)
        os.environ['NOVA_SIO_ROOT'] = scratch
        os.environ['NOVA_SIO_CACHE'] = cache
        eras = rel_mod.load_eras()
        manifest = emit.load_manifest()
        for name, target in (('cold', args.cold_target),
                             ('warm', args.warm_target)):
            total, rows = _timed_pass(name, available, args.jobs, manifest,
                                      eras)
            results[name] = {'total_seconds': round(total, 2),
                             'target_seconds': target, 'releases': rows}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(scratch, ignore_errors=True)
    print('-' * 60)
    rc = 0
    labels = {'cold': 'cold cache (source archives only)',
              'warm': 'warm cache'}
    for name in ('cold', 'warm'):
        res = results[name]
        rows = res['releases']
        n_ok = sum(r['ok'] for r in rows)
        met = res['total_seconds'] <= res['target_seconds']
        print('%s: %d releases (%d ok) emitted and verified in %.1f s wall '
              'with %d jobs (%.3f s per release); target %.0f s %s' % (
                  labels[name], len(rows), n_ok, res['total_seconds'],
                  args.jobs, res['total_seconds'] / max(1, len(rows)),
                  res['target_seconds'], 'met' if met else 'MISSED'))
        if not met or n_ok != len(rows):
            rc = 1
    if args.json:
        # The warm figures also stay at the top level, where readers of
        # the single-pass report look for them.
        report = dict(results, jobs=args.jobs,
                      total_seconds=results['warm']['total_seconds'],
                      releases=results['warm']['releases'])
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2, sort_keys=True)
    return rc


if __name__ == '__main__':
    sys.exit(main())
