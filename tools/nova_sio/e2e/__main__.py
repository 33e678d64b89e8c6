# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""``python -m nova_sio.e2e``: check the machine, sweep, build the guest,
run the real-cloud scenario."""

import argparse
import json
import sys

from nova_sio.e2e import backends
from nova_sio.e2e import cleanup
from nova_sio.e2e import machine
from nova_sio import errors


def _check(args):
    missing = machine.check(need_guest_kernel=not args.no_guest_kernel)
    for line in machine.notes():
        print('note: %s' % line)
    if not missing:
        print('ok: this machine can run the end-to-end harness')
        return 0
    print('missing:')
    for item in missing:
        print('  - %s' % item)
    return 2


def _sweep(args):
    report = cleanup.sweep(args.ledger)
    for record in report['released']:
        print('released %s' % json.dumps(record, sort_keys=True))
    for message in report['errors']:
        print('error: %s' % message)
    print('%d released, %d already gone, %d error(s), %d live run(s)' % (
        len(report['released']), len(report['gone']),
        len(report['errors']), len(report['live'])))
    return 1 if report['errors'] else 0


def _eras(args):
    from nova_sio.e2e import eras
    for line in eras.table(args.versions or eras.REPRESENTATIVES):
        print(line)
    return 0


def _build_guest(args):
    from nova_sio.e2e import guest
    built = guest.build(args.output)
    print(json.dumps(built.describe(), sort_keys=True, indent=2))
    return 0


def _progress(line):
    print(line, flush=True)


def _unfit(what, need_sdk=False):
    """Say what the machine lacks for ``what``; release what crashes left.

    :param what: the job, as in "This machine cannot run <what>".
    :param need_sdk: whether the job drives the cloud with openstacksdk
        from this Python.
    :returns: 2 when the machine cannot run the job, else None.
    """
    missing = [str(item) for item in machine.check(need_guest_kernel=True)]
    if need_sdk:
        try:
            import openstack  # noqa: F401
        except ImportError:
            missing.append('openstacksdk: not installed in this Python (pip '
                           'install openstacksdk, or use the tox py3 '
                           'environment)')
    if missing:
        print('This machine cannot run %s; missing:' % what)
        for item in missing:
            print('  - %s' % item)
        return 2
    swept = cleanup.sweep()
    if swept['released'] or swept['errors']:
        print('e2e: released %d resource(s) that earlier runs left' %
              len(swept['released']))
    for message in swept['errors']:
        print('error: %s' % message)
    return None


def _backend_unfit(images_type):
    """Say why this machine cannot give the hosts ``images_type``.

    :param images_type: the compute hosts' ``[libvirt] images_type``.
    :returns: 2 when it cannot, else None.
    """
    reason = None if images_type == 'sio' else backends.unavailable(
        images_type)
    if reason:
        print('This machine cannot run images_type %s: %s' % (
            images_type, reason))
        return 2
    return None


def _run(args):
    from nova_sio.e2e import cloud
    from nova_sio.e2e import scenario
    unfit = _unfit('the real-cloud scenario', need_sdk=True)
    if unfit:
        return unfit
    steps = scenario.SLICES[args.slice]
    if args.steps:
        steps = [s for s in args.steps.split(',') if s]
        unknown = sorted(set(steps) - set(scenario.FULL))
        if unknown:
            print('unknown step(s): %s (steps: %s)' % (
                ', '.join(unknown), ', '.join(scenario.FULL)))
            return 2

    try:
        backends.check(args.images_type, args.zero_copy)
    except errors.NovaSioError as exc:
        print('error: %s' % exc.message, file=sys.stderr)
        return 2
    unfit = _backend_unfit(args.images_type)
    if unfit:
        return unfit
    extra = {}
    if args.distro:
        from nova_sio.e2e import packaged
        if args.version or args.neutron == 'server':
            print('error: with --distro the release is the package\'s and '
                  'Neutron the stand-in (no --version, --neutron server)',
                  file=sys.stderr)
            return 2
        args.version, deb = packaged.release_of(args.distro)
        print('e2e: Nova %s of %s (%s %s)' % (
            args.version, packaged.DISTROS[args.distro]['name'],
            packaged.DISTROS[args.distro]['nova_package'], deb))
        extra['distro'] = args.distro
    if not args.version:
        from nova_sio.e2e import controlplane
        args.version = controlplane.DEFAULT_VERSION
    report = cloud.run_cloud(args.version, steps, progress=_progress,
                             keep_logs=args.keep_logs,
                             json_path=args.json,
                             slice_name=args.steps or args.slice,
                             neutron=args.neutron,
                             compute_path=args.compute_path,
                             images_type=args.images_type,
                             zero_copy=args.zero_copy, **extra)
    for name, lines in sorted(getattr(report, 'logs', {}).items()):
        if name.startswith('/'):
            print('== end of %s' % name)
        else:
            print('== nova-compute of %s (last errors and warnings)' % name)
        for line in lines:
            print('  %s' % line)
    if args.keep_logs:
        print('e2e: logs kept in %s' % args.keep_logs)
    for line in report.closing_lines():
        print(line)
    if report.interrupted is not None:
        print('e2e: interrupted')
        return 130
    return 0 if report.ok else 1


def _tempest(args):
    from nova_sio.e2e import tempest
    unfit = _unfit('Tempest on the real cloud')
    if unfit:
        return unfit
    if args.regex:
        passes = [('regex%d' % (i + 1) if len(args.regex) > 1 else 'regex',
                   r) for i, r in enumerate(args.regex)]
    else:
        passes = list(tempest.PASSES)
    if not args.version:
        from nova_sio.e2e import controlplane
        args.version = controlplane.DEFAULT_VERSION
    unfit = _backend_unfit(args.images_type)
    if unfit:
        return unfit
    run = tempest.run_tempest(args.version, passes, progress=_progress,
                              keep_logs=args.keep_logs, json_path=args.json,
                              images_type=args.images_type,
                              concurrency=args.concurrency,
                              timeout=args.timeout * 60)
    for line in run.closing_lines():
        print(line)
    if args.keep_logs:
        print('e2e: logs kept in %s' % args.keep_logs)
    return 0 if run.ok else 1


def _bench(args):
    from nova_sio.e2e import bench
    from nova_sio.e2e import controlplane
    unfit = _unfit('the benchmark')
    if unfit:
        return unfit
    wanted = [b for b in (args.backends or '').split(',') if b] or None
    doc = bench.run_bench(args.version or controlplane.DEFAULT_VERSION,
                          wanted, runs=args.runs, json_path=args.json,
                          progress=_progress, keep_logs=args.keep_logs,
                          large_extra=args.large_mib * 1024 * 1024)
    machine_doc = doc['machine']
    print('nova %s; %d cores, %.1f GiB, %s; libvirt %s; %s' % (
        doc['nova'], machine_doc['cores'],
        (machine_doc['memory_bytes'] or 0) / 1024 ** 3,
        machine_doc['cpu_model'], machine_doc['libvirt'], machine_doc['qemu']))
    print('load average before %s, after %s' % (
        ' '.join('%.2f' % x for x in machine_doc['load_average_before']),
        ' '.join('%.2f' % x for x in machine_doc['load_average_after'])))
    for line in bench.table(doc['summary'], doc['unavailable']):
        print(line)
    for goal in doc['goals']:
        print('goal: %s: %s (%s)' % (
            goal['goal'], {True: 'met', False: 'NOT met', None: 'unknown'}[
                goal['met']], goal['evidence']))
    failed = [s for s in doc['samples'] if s.get('error')]
    for problem in doc['tear_down_problems']:
        print('tear-down: %s' % problem)
    if args.json:
        print('e2e-bench: figures written to %s' % args.json)
    return 1 if failed or doc['tear_down_problems'] else 0


# -- the options run, bench and tempest share -------------------------------

def _version_option(parser, default='the newest'):
    """Add ``--version``, the Nova release under test.

    :param parser: the command's ``argparse`` parser.
    :param default: what the help names as the default.
    """
    parser.add_argument('--version', help='Nova release under test '
                        '(default: %s)' % default)


def _json_option(parser, what='the result'):
    """Add ``--json FILE``.

    :param parser: the command's ``argparse`` parser.
    :param what: what the file receives.
    """
    parser.add_argument('--json', metavar='FILE',
                        help='write %s as JSON' % what)


def _keep_logs_option(parser, what='every service log and console'):
    """Add ``--keep-logs DIR``.

    :param parser: the command's ``argparse`` parser.
    :param what: what is copied there.
    """
    parser.add_argument('--keep-logs', metavar='DIR',
                        help='copy %s here' % what)


def _images_type_option(parser, note):
    """Add ``--images-type`` (default ``sio``).

    :param parser: the command's ``argparse`` parser.
    :param note: what the help adds after the default.
    """
    parser.add_argument('--images-type', choices=backends.IMAGES_TYPES,
                        default='sio',
                        help='Nova\'s [libvirt] images_type of the compute '
                        'hosts (default: sio; %s)' % note)


# -- the commands ------------------------------------------------------------

def _add_run(sub):
    """Add the ``run`` command.

    :param sub: the ``add_subparsers()`` object.
    """
    p = sub.add_parser('run', help='build the two-host cloud and run the '
                       'scenario through Nova\'s API')
    _version_option(p, default='the newest, the control plane\'s '
                    'DEFAULT_VERSION')
    p.add_argument('--slice', choices=('short', 'full'), default='full',
                   help='short: boot, live migration, delete; full: every '
                   'step (default)')
    p.add_argument('--steps', help='comma-separated steps instead of a '
                   'slice')
    _keep_logs_option(p)
    _json_option(p)
    p.add_argument('--compute-path', metavar='DIR',
                   help='put DIR first on the Python path of nova-compute: '
                   'a modified copy of Nova\'s package, to see a check '
                   'fail when the backend misbehaves')
    p.add_argument('--neutron', choices=('server', 'stub'),
                   help='a real neutron-server or the stand-in (default: '
                   'the control plane\'s)')
    p.add_argument('--distro', choices=('bookworm',),
                   help='run the distribution\'s own packaged Nova, '
                   'Placement, Glance and Keystone (installed with apt-get, '
                   'patched with nova-sio install, reverted at the end) '
                   'instead of a venv of --version')
    _images_type_option(p, 'the local backends get a loop device of their '
                        'own on each host')
    p.add_argument('--zero-copy', action='store_true',
                   help='sio only: [scaleio] zero_copy_boot = True')
    p.set_defaults(func=_run)


def _add_bench(sub):
    """Add the ``bench`` command.

    :param sub: the ``add_subparsers()`` object.
    """
    p = sub.add_parser('bench', help='boot and live-migrate with every '
                       'image backend on one cloud; print a table')
    _version_option(p)
    p.add_argument('--runs', type=int, default=3,
                   help='warm boots and live migrations per backend, of '
                   'which the median is reported (default 3)')
    p.add_argument('--backends', help='comma-separated backends (default: '
                   'sio,sio-zero-copy,qcow2,raw,lvm)')
    p.add_argument('--large-mib', type=int, default=1024,
                   help='MiB of data the large image adds to the small '
                   'one (default 1024)')
    _json_option(p, 'every figure')
    _keep_logs_option(p)
    p.set_defaults(func=_bench)


def _add_tempest(sub):
    """Add the ``tempest`` command.

    :param sub: the ``add_subparsers()`` object.
    """
    p = sub.add_parser('tempest', help='build the two-host cloud and run '
                       'Tempest\'s compute API tests on it')
    _version_option(p)
    p.add_argument('--regex', action='append',
                   help='a Tempest test regex, one pass each (default: '
                   '^tempest\\.api\\.compute, then the live-migration '
                   'and migration tests)')
    _images_type_option(p, 'lvm is the reference of Nova\'s nova-lvm job')
    p.add_argument('--concurrency', type=int, choices=(1, 2), default=1,
                   help='Tempest workers (default: 1)')
    p.add_argument('--timeout', type=int, default=360, metavar='MINUTES',
                   help='stop a pass after this long; the tests that '
                   'finished are reported (default: 360)')
    _json_option(p)
    _keep_logs_option(p, 'every service log and Tempest\'s logs')
    p.set_defaults(func=_tempest)


def main(argv=None):
    """Entry point; returns the exit status.

    :param argv: arguments (default ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(prog='python -m nova_sio.e2e',
                                     description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('check', help='list what this machine lacks')
    p.add_argument('--no-guest-kernel', action='store_true',
                   help='do not require a kernel for the guest')
    p.set_defaults(func=_check)
    p = sub.add_parser('sweep', help='release what crashed runs left')
    p.add_argument('--ledger', help='ledger directory')
    p.set_defaults(func=_sweep)
    p = sub.add_parser('eras', help='print what the real cloud starts '
                       'for each era of Nova, and which eras it can run')
    p.add_argument('versions', nargs='*', metavar='VERSION',
                   help='Nova releases (default: one of each era)')
    p.set_defaults(func=_eras)
    p = sub.add_parser('build-guest', help='build the guest kernel, '
                       'initramfs and root disk image')
    p.add_argument('output', help='directory for the guest files')
    p.set_defaults(func=_build_guest)
    for add in (_add_run, _add_bench, _add_tempest):
        add(sub)
    args = parser.parse_args(argv)
    return errors.run_command(args.func, args, parser.prog)


if __name__ == '__main__':
    sys.exit(main())
