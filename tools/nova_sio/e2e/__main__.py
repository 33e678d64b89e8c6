# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""``python -m nova_sio.e2e``: check the machine, sweep, build the guest."""

import argparse
import json
import sys

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


def _build_guest(args):
    from nova_sio.e2e import guest
    built = guest.build(args.output)
    print(json.dumps(built.describe(), sort_keys=True, indent=2))
    return 0


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
    p = sub.add_parser('build-guest', help='build the guest kernel, '
                       'initramfs and root disk image')
    p.add_argument('output', help='directory for the guest files')
    p.set_defaults(func=_build_guest)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except errors.NovaSioError as exc:
        print('error: %s' % exc.message, file=sys.stderr)
        return exc.exit_code


if __name__ == '__main__':
    sys.exit(main())
