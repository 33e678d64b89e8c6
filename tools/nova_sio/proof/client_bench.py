# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Benchmark: REST calls and bytes per client operation vs cluster size.

Runs every operation of the runtime ScaleIO client against the emulator
holding a small cluster and a large one (by default 10 volumes / 10 SDCs
against 10,000 volumes / 1,000 SDCs) and prints, per operation, the HTTP
calls and bytes (request path + body + response body) it took, counted
at the emulator's request log; the client's own call count must agree.
Every per-instance operation must cost the same on both; the only lookup
that reads a list is the SDC id by GUID, done once per client and cached.

Exit status 1 when an operation's cost differs between the sizes, when
the client and the gateway disagree on the calls, or when the run left a
volume, mapping or device behind.

Usage: ``python -m nova_sio.proof.client_bench [--volumes N] [--sdcs M]
[--https] [--api-version 3.6] [--json FILE]``
"""

import argparse
import json
import sys
import time

from nova_sio.emulator import server
from nova_sio import runtime

ONE_TIME = ('get_sdc_id (first call, cached after)',)


def client_fresh(client):
    """Forget cached lookups (first-call figures), keep the token."""
    for key in [k for k in client._cache if k[0] == 'sdc']:
        del client._cache[key]
    return client


def _operations(client, emu, host):
    """Yield ``(label, callable)`` in a realistic order."""
    state = {}
    guid = host['guid'].lower()
    yield 'login + version probe', client.get_api_version
    yield 'get_system_id (first call)', client.get_system_id
    yield 'get_pool_id (first call)', lambda: state.update(
        pool=client.get_pool_id('pd1', 'sp1'))
    yield ONE_TIME[0], lambda: state.update(sdc=client.get_sdc_id(guid))
    yield 'get_sdc_id (cached)', lambda: client.get_sdc_id(guid)
    yield 'get_sdc_id (first call, drv_cfg hint)', lambda: client_fresh(
        client).get_sdc_id(guid, hint=host['sdc_id'])
    yield 'pool_properties (first call)', lambda: client.pool_properties(
        state['pool'])
    yield 'create_volume', lambda: state.update(
        vol=client.create_volume('bench-vol', 16, state['pool']))
    yield 'get_volume_id (present)', lambda: client.get_volume_id(
        'bench-vol')
    yield 'get_volume_id (absent)', lambda: client.get_volume_id('absent')
    yield 'get_volume', lambda: client.get_volume(state['vol'])
    yield 'map_volume', lambda: client.map_volume(state['vol'],
                                                  sdc_id=state['sdc'])
    yield 'map_volume (already mapped)', lambda: client.map_volume(
        state['vol'], sdc_id=state['sdc'])
    yield 'is_mapped', lambda: client.is_mapped(state['vol'], state['sdc'])
    yield 'extend_volume', lambda: client.extend_volume(state['vol'], 24)
    yield 'rename_volume', lambda: client.rename_volume(state['vol'],
                                                        'bench-vol2')
    yield 'snapshot_volume', lambda: state.update(
        snap=client.snapshot_volume(state['vol'], 'bench-snap'))
    yield 'pool_capacity', lambda: client.pool_capacity(state['pool'])
    yield 'unmap_volume', lambda: client.unmap_volume(state['vol'],
                                                      sdc_id=state['sdc'])
    yield 'delete_volume', lambda: client.delete_volume(state['vol'])
    yield 'delete_volume (absent)', lambda: client.delete_volume(
        state['vol'])
    yield 'delete_volume (snapshot)', lambda: client.delete_volume(
        state['snap'])


def gateway_cost(emu, timeout=5.0):
    """Return ``(calls, bytes)`` in the emulator's request log.

    A request counts once answered; the log entry of the last one may
    still be completing when the client has its answer.

    :param emu: the emulator.
    :param timeout: seconds to wait for entries to complete.
    """
    deadline = time.time() + timeout
    while True:
        entries = emu.request_log()
        if all('duration' in e for e in entries) or time.time() > deadline:
            break
        time.sleep(0.001)
    return (len(entries),
            sum(e['bytes_in'] + e.get('bytes_out', 0) for e in entries))


def measure(volumes, sdcs, https=False, version='3.6'):
    """Run every operation on one cluster size.

    :returns: dict with ``ops`` (``{label: (calls, bytes, seconds)}``,
        calls and bytes counted at the gateway), ``client_calls``
        (``{label: calls}`` the client counted) and ``leaks`` (the
        emulator's audit: what the run left behind, by kind).
    """
    client_mod = runtime.load('client')
    # 1 PiB pool: 10,000 preloaded thin volumes must not fill it.
    emu = server.Emulator(https=https, version=version,
                          pools=(('pd1', 'sp1', 1024 * 1024),))
    emu.preload(volumes=volumes, sdcs=sdcs)
    emu.start()
    try:
        info = emu.info()
        client = client_mod.Client(
            info['host'], info['username'], info['password'],
            port=info['port'], scheme=info['scheme'],
            verify=info['ca_cert'] or True)
        ops, client_calls = {}, {}
        try:
            for label, func in _operations(client, emu,
                                           info['hosts']['host-a']):
                client.reset_stats()
                emu.clear_log()
                started = time.perf_counter()
                func()
                elapsed = time.perf_counter() - started
                calls, nbytes = gateway_cost(emu)
                ops[label] = (calls, nbytes, elapsed)
                client_calls[label] = client.stats['calls']
        finally:
            client.close()
        leaks = dict((k, v) for k, v in emu.audit().items() if v)
        return {'ops': ops, 'client_calls': client_calls, 'leaks': leaks}
    finally:
        emu.stop()


def problems(run):
    """Return what is wrong with one :func:`measure` run (text lines)."""
    lines = []
    for label, (calls, _bytes, _s) in run['ops'].items():
        if run['client_calls'][label] != calls:
            lines.append('%s: the client counted %d calls, the gateway %d'
                         % (label, run['client_calls'][label], calls))
    for kind, items in sorted(run['leaks'].items()):
        lines.append('left behind: %s: %s' % (kind, items))
    return lines


def _constant(small, large, slack=16):
    """Same calls, and bytes equal up to a few digits of numbers."""
    return small[0] == large[0] and abs(small[1] - large[1]) <= slack


def render(small, large, small_label, large_label):
    """Return the comparison table as text."""
    width = max(len(k) for k in small) + 2
    head = '%-*s %18s %18s  %s' % (
        width, 'operation', small_label, large_label, 'constant')
    units = '%-*s %18s %18s' % (width, '', 'calls / bytes', 'calls / bytes')
    lines = [head, units, '-' * len(head)]
    for label in small:
        s_calls, s_bytes, _ = small[label]
        l_calls, l_bytes, _ = large[label]
        if _constant(small[label], large[label]):
            verdict = 'yes'
            if s_bytes != l_bytes:
                verdict += ' (%+d B: longer numbers in the answer)' % (
                    l_bytes - s_bytes)
        elif label in ONE_TIME:
            verdict = 'no (one-time per client, cached)'
        else:
            verdict = 'NO'
        lines.append('%-*s %8d / %7d %8d / %7d  %s' % (
            width, label, s_calls, s_bytes, l_calls, l_bytes, verdict))
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--volumes', type=int, default=10000)
    parser.add_argument('--sdcs', type=int, default=1000)
    parser.add_argument('--small-volumes', type=int, default=10)
    parser.add_argument('--small-sdcs', type=int, default=10)
    parser.add_argument('--https', action='store_true')
    parser.add_argument('--api-version', default='3.6')
    parser.add_argument('--json', help='also write the figures here')
    args = parser.parse_args(argv)
    small_run = measure(args.small_volumes, args.small_sdcs, args.https,
                        args.api_version)
    large_run = measure(args.volumes, args.sdcs, args.https,
                        args.api_version)
    small, large = small_run['ops'], large_run['ops']
    small_label = '%d vol/%d SDC' % (args.small_volumes, args.small_sdcs)
    large_label = '%d vol/%d SDC' % (args.volumes, args.sdcs)
    print(render(small, large, small_label, large_label))
    print('calls and bytes counted at the emulator\'s request log '
          '(request path + body + response body)')
    bad = [k for k in small if k not in ONE_TIME and
           not _constant(small[k], large[k])]
    wrong = ['%s: %s' % (small_label, p) for p in problems(small_run)] + \
        ['%s: %s' % (large_label, p) for p in problems(large_run)]
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'small': small_run, 'large': large_run,
                       'small_label': small_label,
                       'large_label': large_label,
                       'not_constant': bad, 'problems': wrong}, handle,
                      indent=2)
    if bad:
        print('not constant: %s' % ', '.join(bad))
    for line in wrong:
        print(line)
    return 1 if bad or wrong else 0


if __name__ == '__main__':
    sys.exit(main())
