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

"""The ``nova-sio`` command line."""

import argparse
import concurrent.futures
import json
import os
import sys
import time

from nova_sio.engine import emit
from nova_sio.engine import series as series_mod
from nova_sio.engine import seriesedit
from nova_sio.engine import source
from nova_sio.engine import workrepo
from nova_sio import errors
from nova_sio import releases as rel_mod
from nova_sio import util


class Progress(object):
    """A one-line-per-item progress display on stderr.

    :param total: number of items.
    :param quiet: print nothing.
    """

    def __init__(self, total, quiet=False):
        self.total = total
        self.done = 0
        self.quiet = quiet
        self.start = time.time()

    def step(self, label, status):
        self.done += 1
        if not self.quiet:
            sys.stderr.write('[%*d/%d %5.1fs] %-10s %s\n' % (
                len(str(self.total)), self.done, self.total,
                time.time() - self.start, label, status))
            sys.stderr.flush()


def discover(offline=False):
    """Return every final release, with PyPI and git discoveries."""
    extra = []
    if not offline:
        extra += [(v, 'pypi') for v in source.pypi_index()]
        extra += [(t, 'git') for t in source.git_tags()]
    else:
        extra += [(v, 'pypi') for v in source.pypi_index(offline=True)]
    return rel_mod.all_releases(extra)


def _versions(args, offline=False):
    """Resolve positional versions or ``--all`` to a version list."""
    known = discover(offline=offline or getattr(args, 'offline', False))
    names = [r.version for r in known]
    if getattr(args, 'all', False):
        return names
    if not args.versions:
        raise errors.NovaSioError('give one or more versions, or --all')
    for v in args.versions:
        if v not in names:
            raise errors.UnknownVersion(version=v)
    return list(args.versions)


def _table(rows, headers):
    widths = [max(len(str(x)) for x in col)
              for col in zip(headers, *rows)] if rows else \
        [len(h) for h in headers]
    fmt = '  '.join('%%-%ds' % w for w in widths)
    out = [fmt % tuple(headers), fmt % tuple('-' * w for w in widths)]
    out += [fmt % tuple(str(x) for x in row) for row in rows]
    return '\n'.join(out)


def _fetch_all(versions, progress, jobs=4):
    """Fetch sources; return ``{version: reason}`` for the skipped ones."""
    skipped = {}
    index = source.pypi_index()

    def one(v):
        try:
            info = source.fetch(v, index=index)
            return v, None, info
        except errors.SourceUnavailable as exc:
            return v, exc.kwargs.get('reason', str(exc)), None

    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for v, why, info in pool.map(one, versions):
            if why:
                skipped[v] = why
                progress.step(v, 'SKIPPED: %s' % why)
            else:
                progress.step(v, 'ok (%s)' % info['kind'])
    return skipped


def diff_verified(version, entry):
    """Tell whether the committed diff of ``version`` is the verified one.

    Computed from the file: its sha256 must equal the manifest's
    ``diff_sha256`` and the ``verified_diff_sha256`` that the last
    successful ``nova-sio verify`` recorded.  A missing or edited file is
    not verified.

    :param version: the release.
    :param entry: the release's manifest entry.
    """
    path = emit.diff_path(version)
    recorded = entry.get('diff_sha256')
    if not recorded or not os.path.isfile(path):
        return False
    return util.sha256_file(path) == recorded == \
        entry.get('verified_diff_sha256')


def cmd_releases(args):
    eras = rel_mod.load_eras()
    manifest = emit.load_manifest()['releases']
    rows = []
    data = []
    for r in discover(offline=args.offline):
        era = rel_mod.era_of(r.version, eras)
        info = source.origin(r.version)
        diff = os.path.exists(emit.diff_path(r.version))
        entry = manifest.get(r.version, {})
        verified = diff_verified(r.version, entry)
        avail = info['kind'] if info else (
            'pypi' if 'pypi' in r.origins else
            'git' if 'git' in r.origins else 'tsv-only')
        item = {'version': r.version, 'series': r.series,
                'era': era.name if era else None,
                'source': avail, 'cached': bool(info),
                'emitted': diff, 'verified': verified}
        data.append(item)
        rows.append((r.version, r.series, item['era'] or '-', avail,
                     'yes' if diff else 'no', 'yes' if verified else 'no'))
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(_table(rows, ['version', 'series', 'era', 'source',
                            'emitted', 'verified']))
    return 0


def cmd_fetch(args):
    versions = _versions(args)
    if args.local:
        if len(versions) != 1:
            raise errors.NovaSioError('--from takes exactly one version')
        info = source.fetch(versions[0], local=args.local)
        print('%s: %s %s' % (versions[0], info['kind'], info['source']))
        return 0
    progress = Progress(len(versions), args.quiet)
    skipped = _fetch_all(versions, progress, args.jobs)
    if skipped:
        print('skipped %d release(s):' % len(skipped))
        for v, why in sorted(skipped.items(),
                             key=lambda x: rel_mod.vkey(x[0])):
            print('  %s: %s' % (v, why))
    print('fetched %d of %d' % (len(versions) - len(skipped),
                                len(versions)))
    return _unavailable_status(skipped, args)


def _unavailable_status(skipped, args):
    """Return the exit status that releases without a source give.

    An unreachable source is a failure unless ``--skip-unavailable``
    allows it; either way every such release is named in the last lines.

    :param skipped: ``{version: reason}``.
    :param args: the parsed arguments.
    """
    if not skipped or getattr(args, 'skip_unavailable', False):
        return 0
    print('FAILED: %d release(s) without a reachable source (%s); pass '
          '--skip-unavailable to list them as skipped instead' % (
              len(skipped), ', '.join(sorted(skipped, key=rel_mod.vkey))))
    return 1


def cmd_apply(args):
    version = _versions(args)[0] if args.versions else None
    source.fetch(version)
    era, series = emit.series_for(version)
    _base, head, results = workrepo.build_release(
        version, series, with_tests=args.with_tests)
    for name, res in results:
        print('%s: %s' % (name, res))
    branch = ('release-tests/' if args.with_tests else 'release/') + version
    print('branch %s in %s (%s)' % (branch, workrepo.repo_path(), head[:12]))
    if args.into:
        if os.path.exists(args.into) and os.listdir(args.into):
            raise errors.NovaSioError('%s exists and is not empty'
                                      % args.into)
        source.extract(version, args.into)
        arch = workrepo.git(['archive', '--format=tar', head],
                            workrepo.repo_path()).stdout
        util.run(['tar', '-x', '-C', args.into], input=arch)
        print('patched tree of nova %s in %s' % (version, args.into))
    return 0


def _emit_verify(versions, do_emit, do_verify, args):
    manifest = emit.load_manifest()
    eras = rel_mod.load_eras()
    progress = Progress(len(versions), args.quiet)
    skipped = {}
    reports = []
    fetch_progress = Progress(len(versions), True)
    skipped.update(_fetch_all(versions, fetch_progress, args.jobs))
    todo = [v for v in versions if v not in skipped]
    for v in versions:
        if v in skipped:
            progress.step(v, 'SKIPPED: %s' % skipped[v])

    def one(v):
        t0 = time.time()
        rep = {'version': v}
        try:
            if do_emit:
                rep['changed'] = emit.emit(v, manifest, eras)
            if do_verify:
                rep.update(emit.verify(v, manifest, eras,
                                       check_fresh=not do_emit))
            else:
                rep['ok'] = True
        except errors.NovaSioError as exc:
            rep['ok'] = False
            rep['error'] = str(exc)
        rep['seconds'] = round(time.time() - t0, 2)
        return rep

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for rep in pool.map(one, todo):
            reports.append(rep)
            if rep['ok']:
                status = 'ok'
                if do_emit:
                    status += ' (changed)' if rep.get('changed') else \
                        ' (unchanged)'
            else:
                probs = [p for g in rep.get('gates', {}).values() for p in g]
                status = 'FAILED: %s' % (rep.get('error') or
                                         '; '.join(probs[:3]))
            progress.step(rep['version'], status)
    if do_emit or do_verify:
        emit.save_manifest(manifest, todo)
    summary = {
        'ok': sorted((r['version'] for r in reports if r['ok']),
                     key=rel_mod.vkey),
        'failed': dict((r['version'], r.get('error') or r.get('gates'))
                       for r in reports if not r['ok']),
        'skipped': skipped,
        'reports': sorted(reports, key=lambda r: rel_mod.vkey(
            r['version'])),
    }
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        rows = []
        for r in summary['reports']:
            gates = r.get('gates', {})
            rows.append((r['version'], 'ok' if r['ok'] else 'FAILED',
                         ' '.join('%s:%s' % (g, 'ok' if not p else 'FAIL')
                                  for g, p in sorted(gates.items())) or
                         r.get('error', '')[:60], r['seconds']))
        print(_table(rows, ['version', 'result', 'gates', 'seconds']))
        for v, why in sorted(skipped.items(),
                             key=lambda x: rel_mod.vkey(x[0])):
            print('SKIPPED %s: %s' % (v, why))
        print('%d ok, %d failed, %d skipped' % (
            len(summary['ok']), len(summary['failed']), len(skipped)))
    if args.report:
        util.write_atomic(args.report, util.dump_json(summary))
    if summary['failed']:
        return 1
    return _unavailable_status(skipped, args)


def cmd_emit(args):
    return _emit_verify(_versions(args), True, args.verify, args)


def cmd_verify(args):
    return _emit_verify(_versions(args), False, True, args)


def cmd_status(args):
    manifest = emit.load_manifest()['releases']
    tested_path = os.path.join(os.path.dirname(emit.manifest_path()),
                               'tested.json')
    tested = {}
    if os.path.exists(tested_path):
        with open(tested_path) as f:
            tested = json.load(f)
    rows = []
    data = []
    for r in discover(offline=args.offline):
        entry = manifest.get(r.version, {})
        emitted = os.path.exists(emit.diff_path(r.version))
        verified = diff_verified(r.version, entry)
        info = source.origin(r.version)
        t = tested.get(r.version)
        if t and 'result' not in t:
            t = None
        item = {'version': r.version, 'source': info['kind'] if info
                else 'not fetched', 'emitted': emitted,
                'verified': verified,
                'tested': t['result'] if t else None}
        data.append(item)
        rows.append((r.version, item['source'], 'yes' if emitted else '-',
                     'yes' if verified else '-',
                     ('%s (%s)' % (t['result'], t.get('summary', '')))
                     if t else '-'))
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(_table(rows, ['version', 'source', 'emitted', 'verified',
                            'tested']))
        print('%d releases, %d emitted, %d verified, %d tested' % (
            len(data), sum(d['emitted'] for d in data),
            sum(d['verified'] for d in data),
            sum(1 for d in data if d['tested'])))
    return 0


def cmd_rebase(args):
    if args.abort:
        state = seriesedit.rebase_abort()
        print('rebase of %s onto %s aborted; series files unchanged'
              % (state['series'], state['onto']))
        return 0
    if args.cont:
        result = seriesedit.rebase_continue()
    else:
        if not args.onto:
            raise errors.NovaSioError('--onto VERSION is required')
        name = args.series
        if not name:
            era, _s = emit.series_for(args.from_ or args.onto)
            name = era.series
        source.fetch(args.onto)
        result = seriesedit.rebase(name, args.onto)
    for patch, res in result['results']:
        print('%-60s %s' % (patch, res))
    for patch, res in sorted(result['saved'].items()):
        print('  %s: %s' % (patch, res))
    print('series %s is now based on %s' % (result['series'],
                                            result['onto']))
    return 0


def cmd_series(args):
    if args.action == 'checkout':
        source.fetch(args.base)
        res = seriesedit.checkout(args.name, args.base, args.dir)
        for p, r in res:
            print('%s: %s' % (p, r))
        print('worktree %s; commit your changes there, then run '
              '"nova-sio series save %s %s %s"' % (args.dir, args.name,
                                                   args.base, args.dir))
    elif args.action == 'save':
        res = seriesedit.save(args.name, args.dir, args.base)
        for p, r in sorted(res.items()):
            print('%s: %s' % (p, r))
    elif args.action == 'list':
        for name, s in series_mod.all_series().items():
            print('%s: %d patches, sha256 %s' % (name, len(s.entries),
                                                 s.digest()[:16]))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog='nova-sio', description='ScaleIO/PowerFlex ephemeral backend '
        'for Nova: release engine and operator tools.')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True

    p = sub.add_parser('releases', help='list every final Nova release')
    p.add_argument('--json', action='store_true')
    p.add_argument('--offline', action='store_true',
                   help='do not ask PyPI or git for new releases')
    p.set_defaults(func=cmd_releases)

    def versions_args(p, with_all=True):
        p.add_argument('versions', nargs='*', metavar='VERSION')
        if with_all:
            p.add_argument('--all', action='store_true',
                           help='every final release')
        p.add_argument('--jobs', '-j', type=int,
                       default=max(2, os.cpu_count() or 2))
        p.add_argument('--quiet', '-q', action='store_true')
        p.add_argument('--offline', action='store_true')
        p.add_argument('--skip-unavailable', action='store_true',
                       help='list a release whose source cannot be '
                       'fetched as skipped instead of failing')

    p = sub.add_parser('fetch', help='fetch pristine upstream sources')
    versions_args(p)
    p.add_argument('--from', dest='local', metavar='PATH',
                   help='use a local tarball or tree')
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser('apply', help='build the patched tree of a release')
    p.add_argument('versions', nargs=1, metavar='VERSION')
    p.add_argument('--into', metavar='DIR',
                   help='write the full patched source tree here')
    p.add_argument('--with-tests', action='store_true',
                   help='also add our tests (a test tree)')
    p.add_argument('--offline', action='store_true')
    p.set_defaults(func=cmd_apply)

    for name, func, helptext in (
            ('emit', cmd_emit, 'write releases/<version>.diff'),
            ('verify', cmd_verify, 'strictly verify releases/<v>.diff')):
        p = sub.add_parser(name, help=helptext)
        versions_args(p)
        p.add_argument('--json', action='store_true')
        p.add_argument('--report', metavar='FILE',
                       help='write the JSON report here')
        if name == 'emit':
            p.add_argument('--verify', action='store_true',
                           help='verify each diff after writing it')
        p.set_defaults(func=func)

    p = sub.add_parser('rebase', help='carry a series onto a new release')
    p.add_argument('--onto', metavar='VERSION')
    p.add_argument('--from', dest='from_', metavar='VERSION',
                   help='take the series of this release\'s era')
    p.add_argument('--series', help='series name (default: from --from)')
    p.add_argument('--continue', dest='cont', action='store_true')
    p.add_argument('--abort', action='store_true')
    p.set_defaults(func=cmd_rebase)

    p = sub.add_parser('status', help='release x source/emitted/verified/'
                       'tested matrix')
    p.add_argument('--json', action='store_true')
    p.add_argument('--offline', action='store_true')
    p.set_defaults(func=cmd_status)

    p = sub.add_parser('series', help='edit a patch series in a worktree')
    p.add_argument('action', choices=('checkout', 'save', 'list'))
    p.add_argument('name', nargs='?')
    p.add_argument('base', nargs='?', help='upstream version')
    p.add_argument('dir', nargs='?', help='worktree directory')
    p.set_defaults(func=cmd_series)

    for modname in ('testenv', 'emulator.cli', 'operator.commands'):
        try:
            mod = __import__('nova_sio.' + modname,
                             fromlist=['add_parser'])
        except ImportError:
            continue
        if hasattr(mod, 'add_parser'):
            mod.add_parser(sub)
    return parser


def main(argv=None):
    """Entry point of the ``nova-sio`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return errors.run_command(args.func, args, 'nova-sio')


if __name__ == '__main__':
    sys.exit(main())
