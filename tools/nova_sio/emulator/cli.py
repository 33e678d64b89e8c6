# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""``nova-sio emulator``: run the gateway emulator as a process.

Once listening it prints one JSON line on stdout (URL, credentials,
system id, hosts with their device roots and ``drv_cfg`` paths, CA
path), then serves until SIGTERM or SIGINT. Other processes drive it
through the ``/__admin__/`` endpoints (see ``server.py``).
"""

import argparse
import ipaddress
import json
import signal
import sys
import threading

from nova_sio.emulator import server
from nova_sio import errors


_POOL_FLAGS = {'nopadding': ('zero_padding', False),
               'fine': ('data_layout', 'FineGranularity')}


def _pool(text):
    """Parse ``DOMAIN:POOL:CAPACITY_GB[:FLAG...]``.

    Flags: ``nopadding`` (zero padding off), ``fine`` (Fine Granularity
    layout).

    :param text: the ``--pool`` value.
    """
    parts = text.split(':')
    if len(parts) < 3:
        raise argparse.ArgumentTypeError(
            'use DOMAIN:POOL:CAPACITY_GB[:nopadding][:fine]')
    options = {}
    for flag in parts[3:]:
        if flag not in _POOL_FLAGS:
            raise argparse.ArgumentTypeError(
                'unknown pool flag %r (use nopadding or fine)' % flag)
        key, value = _POOL_FLAGS[flag]
        options[key] = value
    try:
        capacity = int(parts[2])
    except ValueError:
        raise argparse.ArgumentTypeError('capacity %r is not a number of '
                                         'GiB' % parts[2])
    return parts[0], parts[1], capacity, options


def _address(text):
    """Parse the ``--listen`` IP address.

    :param text: the ``--listen`` value.
    """
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError('%r is not an IP address' % text)


def pool_argument(entry):
    """Return the ``--pool`` value of an ``Emulator`` pools entry.

    :param entry: ``(domain, pool, capacity_gb[, options])``.
    """
    text = '%s:%s:%d' % tuple(entry[:3])
    options = entry[3] if len(entry) > 3 else {}
    for flag, (key, value) in sorted(_POOL_FLAGS.items()):
        if options.get(key) == value:
            text += ':' + flag
    return text


def configure_parser(parser):
    """Add the emulator options to ``parser``."""
    parser.add_argument('--port', type=int, default=0,
                        help='TCP port (0: any free port)')
    parser.add_argument('--listen', default='127.0.0.1', type=_address,
                        metavar='ADDRESS',
                        help='IP address to listen on (default 127.0.0.1); '
                             'the HTTPS certificate is made for it')
    parser.add_argument('--https', action='store_true',
                        help='serve HTTPS with a generated CA')
    parser.add_argument('--state-dir',
                        help='directory for host trees and backing files '
                             '(default: a temporary one)')
    parser.add_argument('--storage-dir',
                        help='existing directory for the volumes\' backing '
                             'files, e.g. on XFS with reflink or btrfs so '
                             'that snapshots are copy-on-write clones '
                             '(default: inside the state directory)')
    parser.add_argument('--hosts', default='host-a',
                        help='comma-separated emulated SDC host names')
    parser.add_argument('--api-version', default='3.6',
                        help='gateway API version, e.g. 3.6 or 4.5')
    parser.add_argument('--username', default='admin')
    parser.add_argument('--password',
                        help='gateway password (default: random)')
    parser.add_argument('--pool', action='append', type=_pool,
                        help='DOMAIN:POOL:CAPACITY_GB, optionally '
                             'followed by :nopadding (zero padding off) '
                             'and :fine (Fine Granularity layout) '
                             '(repeatable; default pd1:sp1:1024)')
    parser.add_argument('--sdc-mode', choices=('file', 'block'),
                        default='file',
                        help='file: by-id links to the backing files; '
                             'block: loop devices (root; what a crashed '
                             'run left is swept first, see '
                             'emulator/blockdev.py)')
    parser.add_argument('--device-delay', type=float, default=0.05,
                        help='seconds before a mapped device appears')
    parser.add_argument('--preload-volumes', type=int, default=0)
    parser.add_argument('--preload-sdcs', type=int, default=0)
    parser.add_argument('--seed', type=int)
    parser.set_defaults(func=run)
    return parser


def add_parser(subparsers):
    """Register ``emulator`` on an argparse ``subparsers`` object."""
    parser = subparsers.add_parser(
        'emulator', help='run the ScaleIO gateway + SDC emulator',
        description=__doc__.splitlines()[0])
    return configure_parser(parser)


def _block_simulator():
    """Sweep what dead runs left; return the loop-device simulator."""
    import atexit
    import functools

    from nova_sio.e2e import cleanup
    from nova_sio.emulator import blockdev
    reason = blockdev.unavailable()
    if reason:
        raise blockdev.BlockDevError(action='--sdc-mode block',
                                     reason=reason)
    cleanup.sweep()
    ledger = cleanup.Ledger()
    atexit.register(ledger.release_all)
    return functools.partial(blockdev.BlockDeviceSimulator, ledger=ledger)


def build(args):
    """Create (not start) an Emulator from parsed ``args``."""
    hosts = [h for h in (args.hosts or '').split(',') if h]
    simulator = None
    if getattr(args, 'sdc_mode', 'file') == 'block':
        simulator = _block_simulator()
    emu = server.Emulator(state_dir=args.state_dir,
                          version=args.api_version, https=args.https,
                          port=args.port, username=args.username,
                          password=args.password, hosts=hosts,
                          pools=args.pool or [('pd1', 'sp1', 1024)],
                          seed=args.seed, storage_dir=args.storage_dir,
                          simulator=simulator,
                          listen=getattr(args, 'listen', '127.0.0.1'))
    for name in hosts:
        emu.set_host(name, device_delay=args.device_delay)
    if args.preload_volumes or args.preload_sdcs:
        emu.preload(args.preload_volumes, args.preload_sdcs)
    return emu


def run(args, stdout=None, stop_event=None):
    """Run until signalled; return the exit status."""
    stdout = stdout or sys.stdout
    stop_event = stop_event or threading.Event()
    emu = build(args).start()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *a: stop_event.set())
    try:
        stdout.write(json.dumps(emu.info(), sort_keys=True) + '\n')
        stdout.flush()
        while not stop_event.wait(0.5):
            pass
    finally:
        emu.stop()
    return 0


def main(argv=None):
    """Entry point of ``python -m nova_sio.emulator``."""
    parser = configure_parser(argparse.ArgumentParser(
        prog='nova-sio emulator', description=__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    return errors.run_command(args.func, args, parser.prog)
