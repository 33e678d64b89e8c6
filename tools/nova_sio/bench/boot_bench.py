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
the last boot of each path.

Usage: ``python -m nova_sio.bench.boot_bench [--sizes 1 10] [--boots 10]
[--data-percent 5] [--json FILE]``
"""

import argparse
import json
import os
import sys
import tempfile
import time
import types
import uuid

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


def run(sizes, boots, data_percent):
    hooks = load_hooks()
    results = []
    workdir = tempfile.mkdtemp(prefix='boot-bench-')
    for size_gb in sizes:
        image = os.path.join(workdir, 'image-%d.raw' % size_gb)
        data = make_image(image, size_gb * GiB, data_percent)
        for zero_copy in (False, True):
            emulator = server.Emulator(
                pools=(('pd1', 'sp1', 4096),)).start()
            try:
                info = emulator.info()
                configure(hooks, info, info['hosts']['host-a'])
                hooks.CONF.set_override('zero_copy_boot', zero_copy,
                                        group='scaleio')
                runs = []
                volumes = []
                for _index in range(boots):
                    written, seconds, snap, volume_id = boot(
                        hooks, image, size_gb * GiB, zero_copy)
                    runs.append((written, seconds, snap))
                    volumes.append(volume_id)
                for volume_id in volumes:
                    hooks.delete_volume(volume_id)
                if zero_copy:
                    hooks.remove_unused_base_volumes(['bench-image'])
                leaks = emulator.audit()
            finally:
                emulator.stop()
                hooks.reset()
            results.append({
                'image_gb': size_gb, 'image_data_bytes': data,
                'path': 'zero-copy' if zero_copy else 'full copy',
                'first_bytes': runs[0][0], 'first_seconds': runs[0][1],
                'last_bytes': runs[-1][0], 'last_seconds': runs[-1][1],
                'last_snapshot_call_seconds': runs[-1][2],
                'boots': boots, 'total_bytes': sum(r[0] for r in runs),
                'audit': leaks})
        os.unlink(image)
    os.rmdir(workdir)
    return results


def render(results):
    lines = ['%-6s %-10s %13s %8s %13s %8s %8s %14s %6s' % (
        'image', 'path', 'boot 1 bytes', 'boot 1 s', 'boot N bytes',
        'boot N s', 'snap s', 'bytes N boots', 'audit')]
    for r in results:
        clean = not any(r['audit'].values())
        lines.append('%-6s %-10s %13d %8.3f %13d %8.3f %8.3f %14d %6s' % (
            '%d GiB' % r['image_gb'], r['path'], r['first_bytes'],
            r['first_seconds'], r['last_bytes'], r['last_seconds'],
            r['last_snapshot_call_seconds'], r['total_bytes'],
            'clean' if clean else 'LEAKS'))
    lines.append('snap s: time of boot N inside the snapshot call; the '
                 'emulator copies the')
    lines.append('volume data there, a real ScaleIO snapshot is metadata '
                 'only.')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[1, 10])
    parser.add_argument('--boots', type=int, default=10)
    parser.add_argument('--data-percent', type=float, default=5.0)
    parser.add_argument('--json')
    args = parser.parse_args(argv)
    results = run(args.sizes, args.boots, args.data_percent)
    print('N = %d boots per path; root volume %d GiB; image data %.0f%%'
          % (args.boots, ROOT_GB, args.data_percent))
    print(render(results))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump(results, handle, indent=2, sort_keys=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
