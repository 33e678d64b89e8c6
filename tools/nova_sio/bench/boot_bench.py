# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Benchmark: bytes written to ScaleIO and time per boot, copy vs zero-copy.

Boots one image ``--boots`` times (default 10) on the emulator through
the backend's own hooks, the way ``Sio.create_image`` does:

* full copy: ``hooks.create_volume`` + ``map_volume`` + the image written
  onto the device;
* zero copy (``[scaleio] zero_copy_boot``): ``hooks.snapshot_from_base``
  (fills the base volume on the first boot) + extend + ``map_volume``.

The image is a sparse raw file (``--sizes``, default 1 and 10 GiB) whose
first ``--data-percent`` percent (default 5) holds data. It is written
onto devices like ``qemu-img convert`` writes raw images: data extents
only. "Bytes written" counts what the compute host wrote through its SDC
for the boot; the root volume is 16 GiB. The table gives the first and
the last boot of each path: bytes written, wall time of the boot-disk
preparation, the part of it spent inside the snapshot call, and how the
emulator made the snapshot's data (``reflink``: a copy-on-write clone,
no data copied, like a ScaleIO snapshot; ``sparse-copy``: the emulator
copied the volume's data, a cost a real system does not have).

Where the emulator keeps its volumes decides that: ``--storage-dir DIR``
puts them on DIR; ``--reflink-fs`` (root only) makes a scratch XFS file
system with reflink in a loop-mounted image file for the run and removes
it afterwards. Without either, they live in the temporary directory.

Usage: ``python -m nova_sio.bench.boot_bench [--sizes 1 10] [--boots 10]
[--data-percent 5] [--storage-dir DIR | --reflink-fs] [--json FILE]``
"""

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import types
import uuid

from nova_sio.emulator import loopfs
from nova_sio.emulator import sdc
from nova_sio.emulator import server
from nova_sio import runtime

GiB = 1024 ** 3
CHUNK = 1 << 20
ROOT_GB = 16


def load_hooks():
    """Import the runtime ``hooks`` module without the rest of Nova."""
    root = runtime.checkout_root()
    for name, rel in (('nova', 'nova'), ('nova.virt', 'nova/virt'),
                      ('nova.virt.libvirt', 'nova/virt/libvirt')):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [os.path.join(root, rel)]
            sys.modules[name] = module
    from nova.virt.libvirt.sio import hooks
    return hooks


def make_image(path, size, data_percent):
    """Write a sparse raw image with data in its first extent."""
    data = int(size * data_percent / 100)
    block = os.urandom(CHUNK)
    with open(path, 'wb') as handle:
        handle.truncate(size)
        written = 0
        while written < data:
            handle.write(block[:min(CHUNK, data - written)])
            written += CHUNK
    return data


def write_image(source, device):
    """Write the data extents of ``source`` onto ``device``; return bytes."""
    total = 0
    size = os.path.getsize(source)
    with open(source, 'rb') as fin, open(device, 'r+b') as fout:
        offset = 0
        while offset < size:
            try:
                start = os.lseek(fin.fileno(), offset, os.SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fin.fileno(), start, os.SEEK_HOLE)
            fin.seek(start)
            fout.seek(start)
            remaining = end - start
            while remaining:
                chunk = fin.read(min(remaining, CHUNK))
                if not chunk:
                    break
                fout.write(chunk)
                total += len(chunk)
                remaining -= len(chunk)
            offset = end
        fout.flush()
        os.fsync(fout.fileno())
    return total


def configure(hooks, info, host):
    conf = hooks.CONF
    conf([], project='nova-sio-bench')
    pool = info['pools'][0]
    for key, value in (
            ('rest_server_ip', info['host']),
            ('rest_server_port', info['port']),
            ('rest_server_scheme', info['scheme']),
            ('rest_server_username', info['username']),
            ('rest_server_password', info['password']),
            ('protection_domain_name', pool['protection_domain']),
            ('storage_pool_name', pool['storage_pool']),
            ('default_sdcguid', host['guid']),
            ('device_root', host['device_root']),
            ('verify_server_certificate', False)):
        conf.set_override(key, value, group='scaleio')
    hooks.reset()


def boot(hooks, image, image_size, zero_copy):
    """Make one root disk.

    :returns: (bytes written, seconds, seconds inside the snapshot call,
        volume id).
    """
    instance_uuid = str(uuid.uuid4())
    name = hooks.volume_name(instance_uuid, 'disk')
    written = [0]

    def fill(device):
        written[0] += write_image(image, device)

    client = hooks.get_client()
    real_snapshot = client.snapshot_volume
    in_snapshot = [0.0]

    def timed_snapshot(*args, **kwargs):
        began = time.time()
        try:
            return real_snapshot(*args, **kwargs)
        finally:
            in_snapshot[0] += time.time() - began

    start = time.time()
    made = None
    if zero_copy:
        client.snapshot_volume = timed_snapshot
        try:
            made = hooks.snapshot_from_base('bench-image', None, image_size,
                                            name, fill)
        finally:
            del client.snapshot_volume
    if made is not None:
        volume_id, size = made
        if ROOT_GB * GiB > size:
            hooks.get_client().extend_volume(volume_id, ROOT_GB)
        hooks.map_volume(volume_id)
    else:
        volume_id = hooks.create_volume(instance_uuid, 'disk',
                                        ROOT_GB * GiB, None)
        fill(hooks.map_volume(volume_id))
    return written[0], time.time() - start, in_snapshot[0], volume_id


def _method(counts):
    """Name the snapshot method(s) of a run from per-method counts."""
    used = sorted(name for name, count in counts.items() if count)
    if not used:
        return '-'
    return used[0] if len(used) == 1 else 'mixed'


def run(sizes, boots, data_percent, storage_dir=None):
    """Boot each image ``boots`` times on both paths; return the figures.

    :param sizes: image sizes in GiB.
    :param boots: boots per path and size.
    :param data_percent: share of each image holding data.
    :param storage_dir: where the emulator keeps its volumes (None: its
        temporary state directory).
    """
    hooks = load_hooks()
    results = []
    workdir = tempfile.mkdtemp(prefix='boot-bench-')
    try:
        for size_gb in sizes:
            image = os.path.join(workdir, 'image-%d.raw' % size_gb)
            data = make_image(image, size_gb * GiB, data_percent)
            for zero_copy in (False, True):
                results.append(_run_path(hooks, image, size_gb, data,
                                         zero_copy, boots, storage_dir))
            os.unlink(image)
    finally:
        for name in os.listdir(workdir):
            os.unlink(os.path.join(workdir, name))
        os.rmdir(workdir)
    return results


def _run_path(hooks, image, size_gb, data, zero_copy, boots, storage_dir):
    emulator = server.Emulator(pools=(('pd1', 'sp1', 4096),),
                               storage_dir=storage_dir).start()
    try:
        info = emulator.info()
        configure(hooks, info, info['hosts']['host-a'])
        hooks.CONF.set_override('zero_copy_boot', zero_copy,
                                group='scaleio')
        runs = []
        volumes = []
        for _index in range(boots):
            before = emulator.storage_stats()
            written, seconds, snap, volume_id = boot(
                hooks, image, size_gb * GiB, zero_copy)
            after = emulator.storage_stats()
            copied = (after['snapshot_bytes_copied'] -
                      before['snapshot_bytes_copied'])
            counts = dict((name, after['snapshots'][name] -
                           before['snapshots'][name])
                          for name in after['snapshots'])
            runs.append({'bytes': written, 'seconds': seconds,
                         'snapshot_call_seconds': snap,
                         'emulator_copied_bytes': copied,
                         'method': _method(counts)})
            volumes.append(volume_id)
        for volume_id in volumes:
            hooks.delete_volume(volume_id)
        if zero_copy:
            hooks.remove_unused_base_volumes(['bench-image'])
        leaks = emulator.audit()
        stats = emulator.storage_stats()
    finally:
        emulator.stop()
        hooks.reset()
    return {'image_gb': size_gb, 'image_data_bytes': data,
            'path': 'zero-copy' if zero_copy else 'full copy',
            'boots': boots, 'first': runs[0], 'last': runs[-1],
            'total_bytes': sum(r['bytes'] for r in runs),
            'storage_clone_method': stats['clone_method'],
            'snapshots': stats['snapshots'],
            'snapshot_bytes_copied': stats['snapshot_bytes_copied'],
            'audit': leaks}


def target(results):
    """Compare zero-copy boot N of the smallest and the largest image.

    Met when boot N wrote no byte on every zero-copy run and its time for
    the largest image is at most 1.5 times that of the smallest plus
    20 ms (noise). None with fewer than two image sizes.
    """
    zero = sorted((r for r in results if r['path'] == 'zero-copy'),
                  key=lambda r: r['image_gb'])
    if len(zero) < 2:
        return None
    small, large = zero[0], zero[-1]
    t_small = small['last']['seconds']
    t_large = large['last']['seconds']
    met = (all(r['last']['bytes'] == 0 for r in zero) and
           t_large <= 1.5 * t_small + 0.02)
    return ('target (zero-copy boot %d, %d GiB vs %d GiB): %.3f s vs '
            '%.3f s (x%.2f), in snapshot call %.3f s vs %.3f s, bytes '
            '%d vs %d: %s' % (
                large['boots'], small['image_gb'], large['image_gb'],
                t_small, t_large, t_large / t_small if t_small else 0.0,
                small['last']['snapshot_call_seconds'],
                large['last']['snapshot_call_seconds'],
                small['last']['bytes'], large['last']['bytes'],
                'met' if met else 'NOT met'))


def render(results):
    """Format ``run()`` results as a table."""
    head = '%-6s %-9s %-11s %12s %7s %7s %12s %7s %7s %11s %6s'
    row = '%-6s %-9s %-11s %12d %7.3f %7.3f %12d %7.3f %7.3f %11d %6s'
    lines = [head % ('image', 'path', 'snapshots', 'boot1 bytes',
                     'boot1 s', 'snap s', 'bootN bytes', 'bootN s',
                     'snap s', 'emu copy N', 'audit')]
    for r in results:
        clean = not any(r['audit'].values())
        first, last = r['first'], r['last']
        lines.append(row % (
            '%d GiB' % r['image_gb'], r['path'],
            _method(r['snapshots']), first['bytes'], first['seconds'],
            first['snapshot_call_seconds'], last['bytes'],
            last['seconds'], last['snapshot_call_seconds'],
            last['emulator_copied_bytes'], 'clean' if clean else 'LEAKS'))
    lines.append('bytes: written through the SDC; s: wall time of the '
                 'boot-disk preparation;')
    lines.append('snap s: part of it inside the snapshot call; emu copy '
                 'N: bytes the emulator')
    lines.append('copied to make boot N\'s snapshot (reflink: none, like '
                 'a ScaleIO snapshot).')
    line = target(results)
    if line:
        lines.append(line)
    return '\n'.join(lines)


def fs_size(sizes, boots, data_percent):
    """Size of a scratch file system holding one path's volumes."""
    data = int(max(sizes) * GiB * data_percent / 100)
    need = 2 * (boots + 2) * data + GiB
    return max(8 * GiB, -(-need // GiB) * GiB)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt('signal %d' % signum)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[1, 10])
    parser.add_argument('--boots', type=int, default=10)
    parser.add_argument('--data-percent', type=float, default=5.0)
    where = parser.add_mutually_exclusive_group()
    where.add_argument('--storage-dir',
                       help='existing directory for the emulator\'s '
                            'volumes (e.g. on XFS with reflink or btrfs)')
    where.add_argument('--reflink-fs', action='store_true',
                       help='run the emulator\'s volumes on a scratch XFS '
                            'file system with reflink (loop mount; root)')
    parser.add_argument('--json')
    args = parser.parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return _main(args)
    except KeyboardInterrupt:
        sys.stderr.write('interrupted; the emulator and any scratch file '
                         'system were removed\n')
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(args):
    mount = None
    storage_dir = args.storage_dir
    if args.reflink_fs:
        reason = loopfs.unavailable('xfs')
        if reason is None:
            mount = loopfs.LoopFilesystem(
                'xfs', fs_size(args.sizes, args.boots, args.data_percent))
            try:
                storage_dir = mount.__enter__()
            except loopfs.LoopFsError as exc:
                reason, mount = str(exc), None
        if reason:
            print('--reflink-fs: no scratch XFS file system (%s); running '
                  'on the default directory.' % reason)
    try:
        probe = storage_dir or tempfile.gettempdir()
        method = sdc.clone_support(probe)
        fstype = loopfs.fstype_of(probe) or 'unknown'
        results = run(args.sizes, args.boots, args.data_percent,
                      storage_dir)
    finally:
        if mount is not None:
            mount.close()
    print('N = %d boots per path; root volume %d GiB; image data %.0f%%'
          % (args.boots, ROOT_GB, args.data_percent))
    print('emulator storage: %s file system%s; snapshot method: %s' % (
        fstype, ' (scratch, loop-mounted)' if mount is not None else '',
        method))
    if method != sdc.REFLINK:
        print('NOTE: snapshots copy data on this file system; the '
              'snapshot times below include')
        print('that copy, which a ScaleIO snapshot (metadata only) '
              'does not make.')
    print(render(results))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'storage_fs': fstype,
                       'clone_method': method, 'results': results},
                      handle, indent=2, sort_keys=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
