# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Side-by-side benchmark of the image backends on the real cloud.

``python -m nova_sio.e2e bench`` (``tools/bootstrap.sh e2e-bench``)
builds the two-host cloud once and runs, for every backend of
:data:`BACKENDS` in turn (``sio`` with a full copy of the image into each
root disk, ``sio`` with ``zero_copy_boot``, ``qcow2``, ``raw``, ``lvm``),
restarting both ``nova-compute`` services with the backend's
configuration and a fresh local disk (see
:class:`~nova_sio.e2e.backends.LocalStorage`) rather than rebuilding the
cloud: no instance is left when the backend changes, so Nova has nothing
to carry over.

For a small image (the harness's guest root disk, 64 MiB) and a large one
(that disk followed by :data:`LARGE_EXTRA` bytes of non-zero,
deterministic data; the guest boots and prints its markers the same),
it boots servers on ``h1`` one at a time and measures:

* the time from the create call to ``ACTIVE`` (the API polled every
  :data:`POLL` seconds), and to the guest's ``NOVA-SIO-GUEST READY``
  line in the console log (read from the host's instances directory);
* the bytes written to storage per boot, counted by the kernel on the
  devices under each backend's storage, after a ``sync`` before and
  after the boot: ``local``, the loop device under ``h1``'s instances
  directory (the ``_base`` image cache and, for the local backends, the
  instance disks; for sio too), and ``pool``, the loop device under the
  gateway emulator's storage pool (the reflink XFS that holds every
  ScaleIO volume's file: a full copy writes the image there, a zero-copy
  snapshot is a clone);
* the first boot of each image (no ``_base`` file, no sio base volume:
  a cold image cache) apart from the next ``runs`` boots (warm), whose
  median is reported;
* then the first boot of each image on ``h2`` (phase ``other-host``):
  its image cache is cold, but for zero-copy the base volume ``h1``
  filled is there, so it needs no download; every other backend
  downloads the image into ``h2``'s ``_base`` first. This is the boot of
  each image on each further host of a cloud;
* the live migration of a server booted from the large image, back and
  forth between the hosts ``runs`` times (sio: shared block storage;
  the local backends: block migration), from the API call to the server
  being ``ACTIVE`` on the other host, with the bytes written to the
  destination's local disk and to the pool; ``h2``'s image cache is
  emptied first, so the first migration goes to a host without the
  image (reported apart as ``first s``).

The machine's figures (cores, memory, CPU model, kernel, libvirt and
QEMU versions, load average before and after) go into the JSON next to
every sample.
"""

import collections
import datetime
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import time

from nova_sio.e2e import backends
from nova_sio.e2e import cleanup
from nova_sio.e2e import cloud as cloud_mod
from nova_sio.e2e import guest as guest_mod
from nova_sio import errors

MiB = 1024 ** 2
GiB = 1024 ** 3

#: ``(label, images_type, zero_copy)`` in the order they run. The two sio
#: backends go first: the zero-copy one then finds no base volume.
BACKENDS = (('sio', 'sio', False), ('sio-zero-copy', 'sio', True),
            ('qcow2', 'qcow2', False), ('raw', 'raw', False),
            ('lvm', 'lvm', False))
IMAGES = ('small', 'large')
#: Boot phases: ``cold`` and ``warm`` on ``h1``, then ``other-host``:
#: the first boot on ``h2``.
PHASES = ('cold', 'warm', 'other-host')
OTHER_HOST = 'h2'
LARGE_EXTRA = GiB
DEFAULT_RUNS = 3
POLL = 0.5
#: Seconds to wait after a restarted nova-compute reported (Nova's
#: ``report_interval``).
SETTLE = 10
BOOT_TIMEOUT = 900
MIGRATION_TIMEOUT = 900
READY = 'NOVA-SIO-GUEST READY'
#: Root disk only (sio sizes are multiples of 8 GiB).
FLAVOR = {'name': 'nsio-bench-8', 'ram': 256, 'vcpus': 1, 'disk': 8}
COMMAND_LINE = 'console=ttyS0 panic=-1 loglevel=3 nova_sio.disks=vda:root'
#: Seed of the large image's data.
SEED = 16


class BenchError(errors.NovaSioError):
    msg_fmt = 'Benchmark: %(reason)s'


# -- figures ------------------------------------------------------------------


def median(values):
    """Return the median of the values that are not None, or None.

    :param values: numbers or None.
    """
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def delta(before, after):
    """Return ``after - before`` for every counter of both.

    :param before: ``{device role: {counter: value}}``.
    :param after: the same, read later.
    :raises BenchError: when a counter went down (another device).
    """
    result = {}
    for role in sorted(set(before) & set(after)):
        result[role] = {}
        for key in sorted(set(before[role]) & set(after[role])):
            value = after[role][key] - before[role][key]
            if value < 0:
                raise BenchError(reason='counter %s of %s went down (%d -> '
                                 '%d)' % (key, role, before[role][key],
                                          after[role][key]))
            result[role][key] = value
    return result


def written(sample):
    """Return the bytes a sample wrote on all its devices together.

    :param sample: a sample dict with ``bytes`` (see :func:`delta`).
    """
    return sum(c.get('write_bytes', 0) for c in sample['bytes'].values())


def summarize(samples):
    """Return the figures of each backend and image.

    :param samples: dicts with ``backend``, ``kind`` (``boot`` or
        ``migration``), ``image``, ``phase`` (``cold``/``warm``),
        ``active_s``, ``console_s``/``seconds`` and ``bytes``.
    :returns: ``{backend: {'boot': {image: {phase: {'runs', 'active_s',
        'console_s', 'write_bytes', 'write_by_device'}}}, 'migration':
        {...}}}`` with medians over the runs.
    """
    groups = collections.OrderedDict()
    for sample in samples:
        key = (sample['backend'], sample['kind'], sample.get('image'),
               sample.get('phase'))
        groups.setdefault(key, []).append(sample)
    result = collections.OrderedDict()
    for (backend, kind, image, phase), group in groups.items():
        ok = [s for s in group if not s.get('error')]
        devices = sorted(set(d for s in ok for d in s['bytes']))
        figures = {
            'runs': len(ok),
            'errors': [s['error'] for s in group if s.get('error')],
            'write_bytes': median([written(s) for s in ok]),
            'write_by_device': dict(
                (d, median([s['bytes'].get(d, {}).get('write_bytes')
                            for s in ok])) for d in devices),
        }
        if kind == 'boot':
            figures['active_s'] = median([s['active_s'] for s in ok])
            figures['console_s'] = median([s['console_s'] for s in ok])
            figures['spawn_s'] = median([s.get('spawn_s') for s in ok])
            result.setdefault(backend, {}).setdefault('boot', {}).setdefault(
                image, {})[phase] = figures
        else:
            figures['seconds'] = median([s['seconds'] for s in ok])
            figures['first_s'] = ok[0]['seconds'] if ok else None
            result.setdefault(backend, {})['migration'] = figures
    return result


def _s(value):
    return '-' if value is None else '%.1f' % value


def _mib(value):
    return '-' if value is None else '%.0f' % (value / MiB)


def table(summary, unavailable=None):
    """Return the printed table of :func:`summarize`'s result.

    :param summary: what :func:`summarize` returned.
    :param unavailable: ``{backend: reason}`` of backends not measured.
    """
    header = ('backend', 'image', 'cold ACTIVE s', 'cold console s',
              'cold MiB', 'warm ACTIVE s', 'warm console s', 'warm spawn s',
              'warm MiB', 'runs')
    rows = [header]
    for backend, figures in summary.items():
        for image in IMAGES:
            phases = figures.get('boot', {}).get(image) or {}
            if not (phases.get('cold') or phases.get('warm')):
                continue
            cold = phases.get('cold', {})
            warm = phases.get('warm', {})
            rows.append((backend, image, _s(cold.get('active_s')),
                         _s(cold.get('console_s')),
                         _mib(cold.get('write_bytes')),
                         _s(warm.get('active_s')),
                         _s(warm.get('console_s')),
                         _s(warm.get('spawn_s')),
                         _mib(warm.get('write_bytes')),
                         str(warm.get('runs', 0))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ['  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
             for r in rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    mig = [('backend', 'live migration', 'median s', 'first s', 'MiB',
            'runs')]
    for backend, figures in summary.items():
        m = figures.get('migration')
        if m:
            mig.append((backend, m.get('mode') or '-', _s(m.get('seconds')),
                        _s(m.get('first_s')), _mib(m.get('write_bytes')),
                        str(m['runs'])))
    if len(mig) > 1:
        widths = [max(len(r[i]) for r in mig) for i in range(len(mig[0]))]
        lines.append('')
        lines += ['  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                  for r in mig]
        lines.insert(len(lines) - len(mig) + 1,
                     '  '.join('-' * w for w in widths))
    other = [('backend', 'image', 'first boot on %s: ACTIVE s' % OTHER_HOST,
              'console s', 'MiB')]
    for backend, figures in summary.items():
        for image in IMAGES:
            first = ((figures.get('boot') or {}).get(image) or {}).get(
                'other-host')
            if first:
                other.append((backend, image, _s(first.get('active_s')),
                              _s(first.get('console_s')),
                              _mib(first.get('write_bytes'))))
    if len(other) > 1:
        widths = [max(len(r[i]) for r in other)
                  for i in range(len(other[0]))]
        lines.append('')
        lines += ['  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
                  for r in other]
        lines.insert(len(lines) - len(other) + 1,
                     '  '.join('-' * w for w in widths))
    for backend, reason in sorted((unavailable or {}).items()):
        lines.append('%s: n/a: %s' % (backend, reason))
    for backend, figures in summary.items():
        groups = [('live migration', figures.get('migration') or {})]
        groups += [('%s %s boot' % (image, phase), f)
                   for image, phases in figures.get('boot', {}).items()
                   for phase, f in phases.items()]
        for what, group in groups:
            for error in group.get('errors', []):
                lines.append('%s %s failed: %s' % (backend, what,
                                                   one_line(error)))
    return lines


def one_line(text, limit=300):
    """Return ``text`` on one line, its middle cut beyond ``limit``.

    :param text: a message, maybe with a traceback's lines.
    :param limit: the longest result.
    """
    text = ' | '.join(ln.strip() for ln in str(text).splitlines()
                      if ln.strip())
    if len(text) > limit:
        half = (limit - 5) // 2
        text = text[:half] + ' ... ' + text[-half:]
    return text


def goals(summary):
    """Return the issue's goals as ``(goal, met or None, evidence)``.

    Boot times are the warm medians to ``ACTIVE``: the part of a boot
    where the backend makes the disk (the guest's own boot after it
    reads no more of a larger image); the evidence names the console
    figures too. None: the figures needed are missing.

    :param summary: what :func:`summarize` returned.
    """
    def phase_figure(backend, image, phase, key='active_s'):
        return (((summary.get(backend) or {}).get('boot') or {}).get(
            image) or {}).get(phase, {}).get(key)

    def warm(backend, image, key='active_s'):
        return phase_figure(backend, image, 'warm', key)

    def fastest_local(phase):
        """Return ``(backend, seconds)`` of the fastest local backend
        booting the large image in ``phase``, or None.
        """
        found = [(b, phase_figure(b, 'large', phase))
                 for b in ('qcow2', 'raw', 'lvm')]
        found = [(b, v) for b, v in found if v is not None]
        return min(found, key=lambda bv: bv[1]) if found else None
    out = []
    goal = 'sio zero-copy boot time independent of image size'
    zs, zl = warm('sio-zero-copy', 'small'), warm('sio-zero-copy', 'large')
    if zs is None or zl is None:
        out.append((goal, None, 'no zero-copy figures'))
    else:
        # Independent: the large image costs at most two polling steps
        # or 10 % more than the small one.
        margin = max(2 * POLL, 0.1 * zs)
        out.append((goal, zl - zs <= margin, 'to ACTIVE: large %.1f s, '
                    'small %.1f s (margin %.1f s); to the console marker: '
                    'large %s s, small %s s' % (
                        zl, zs, margin,
                        _s(warm('sio-zero-copy', 'large', 'console_s')),
                        _s(warm('sio-zero-copy', 'small', 'console_s')))))
    goal = 'sio zero-copy ahead of every local backend (large image)'
    best = fastest_local('warm')
    if zl is None or best is None:
        out.append((goal, None, 'figures missing'))
    else:
        out.append((goal, zl < best[1], 'to ACTIVE: zero-copy %.1f s, '
                    'fastest local %s %.1f s; to the console marker: '
                    'zero-copy %s s, %s %s s' % (
                        zl, best[0], best[1],
                        _s(warm('sio-zero-copy', 'large', 'console_s')),
                        best[0], _s(warm(best[0], 'large', 'console_s')))))
    goal = ('sio zero-copy first boot on a further host ahead of every '
            'local backend (large image)')
    zo = phase_figure('sio-zero-copy', 'large', 'other-host')
    best = fastest_local('other-host')
    if zo is None or best is None:
        out.append((goal, None, 'figures missing'))
    else:
        out.append((goal, zo < best[1], 'to ACTIVE on %s: zero-copy %.1f '
                    's, fastest local %s %.1f s' % (
                        OTHER_HOST, zo, best[0], best[1])))
    goal = ('live migration to a host without the image faster than qcow2 '
            'block migration by the image-copy time')
    sio_first = ((summary.get('sio') or {}).get('migration') or {}).get(
        'first_s')
    q_first = ((summary.get('qcow2') or {}).get('migration') or {}).get(
        'first_s')
    full = warm('sio', 'large')
    zero = warm('sio-zero-copy', 'large')
    if None in (sio_first, q_first, full, zero):
        out.append((goal, None, 'figures missing'))
    else:
        copy = full - zero
        out.append((goal, q_first - sio_first >= copy,
                    'first migration: sio %.1f s, qcow2 %.1f s, image copy '
                    '%.1f s' % (sio_first, q_first, copy)))
    goal = ('live migration faster than qcow2 block migration by the '
            'image-copy time')
    sio_m = (summary.get('sio') or {}).get('migration') or {}
    q_m = (summary.get('qcow2') or {}).get('migration') or {}
    if None in (sio_m.get('seconds'), q_m.get('seconds'), full, zero):
        out.append((goal, None, 'figures missing'))
    else:
        copy = full - zero
        out.append((goal, q_m['seconds'] - sio_m['seconds'] >= copy,
                    'sio %.1f s, qcow2 %.1f s, image copy %.1f s (warm '
                    'create to ACTIVE, sio full copy minus zero-copy)' % (
                        sio_m['seconds'], q_m['seconds'], copy)))
    return out


_SPAWN = re.compile(r'\[instance: ([0-9a-f-]+)\] Took ([0-9.]+) seconds to '
                    r'spawn the instance on the hypervisor')


def spawn_seconds(log_text, server_id):
    """Return what nova-compute logged as the spawn time of
    ``server_id`` (``Took N seconds to spawn the instance on the
    hypervisor``: from the start of the disks' creation to the running
    domain), or None.

    :param log_text: the nova-compute log.
    :param server_id: the server's id.
    """
    found = [float(m.group(2)) for m in _SPAWN.finditer(log_text)
             if m.group(1) == server_id]
    return found[-1] if found else None


def _read(path, default=''):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return default


def _first_line(argv):
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.strip().splitlines()
    return lines[0].strip() if lines and proc.returncode == 0 else None


def machine_figures(proc='/proc'):
    """Return the machine's figures: cores, memory, CPU model, kernel,
    load average, libvirt and QEMU versions.

    :param proc: the proc file system.
    """
    cpuinfo = _read(os.path.join(proc, 'cpuinfo'))
    model = re.search(r'^model name\s*:\s*(.+)$', cpuinfo, re.M)
    meminfo = _read(os.path.join(proc, 'meminfo'))
    total = re.search(r'^MemTotal:\s*([0-9]+) kB', meminfo, re.M)
    return {
        'cores': os.cpu_count(),
        'memory_bytes': int(total.group(1)) * 1024 if total else None,
        'cpu_model': model.group(1).strip() if model else None,
        'kernel': platform.release(),
        'load_average': load_average(proc),
        'libvirt': _first_line(['libvirtd', '--version']),
        'qemu': _first_line(['qemu-system-x86_64', '--version']),
    }


def load_average(proc='/proc'):
    """Return the 1, 5 and 15 minute load averages.

    :param proc: the proc file system.
    """
    fields = _read(os.path.join(proc, 'loadavg'), '0 0 0').split()
    return [float(f) for f in fields[:3]]


# -- images -------------------------------------------------------------------


def make_large_image(small, path, extra=LARGE_EXTRA, seed=SEED):
    """Write ``small`` followed by ``extra`` bytes of non-zero,
    deterministic data to ``path`` (kept when already made); return its
    size.

    Every MiB of the tail is one pseudo-random block (no zero byte) that
    starts with its own index, so no two MiB are alike and none reads as
    zeros; the guest reads its markers in the first MiBs, which stay
    those of ``small``.

    :param small: the small root image.
    :param path: the image to make.
    :param extra: bytes to append (a multiple of 1 MiB).
    :param seed: the seed of the data.
    """
    if extra % MiB:
        raise BenchError(reason='the large image grows by whole MiB')
    want = os.path.getsize(small) + extra
    stamp = path + '.made'
    if os.path.exists(path) and os.path.getsize(path) == want and \
            _read(stamp).strip() == '%d %d' % (seed, extra):
        return want
    block = bytes(b or 1 for b in random.Random(seed).randbytes(MiB))
    tmp = path + '.tmp'
    with open(small, 'rb') as source, open(tmp, 'wb') as out:
        while True:
            chunk = source.read(MiB)
            if not chunk:
                break
            out.write(chunk)
        for index in range(extra // MiB):
            head = ('NSIO-BENCH-%08d' % index).encode()
            out.write(head + block[len(head):])
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)
    with open(stamp, 'w') as handle:
        handle.write('%d %d\n' % (seed, extra))
    return want


# -- the live benchmark -------------------------------------------------------


class Bench(object):
    """The benchmark on one cloud.

    :param cloud: a :class:`~nova_sio.e2e.cloud.Cloud`, not built yet
        (``local_disk`` set, images_type the first backend's).
    :param backends_wanted: labels of :data:`BACKENDS` to run.
    :param runs: warm boots and live migrations per backend.
    :param progress: callable receiving progress lines.
    """

    def __init__(self, cloud, backends_wanted, runs=DEFAULT_RUNS,
                 progress=print):
        self.cloud = cloud
        self.wanted = [b for b in BACKENDS if b[0] in backends_wanted]
        self.runs = runs
        self.progress = progress
        self.samples = []
        self.unavailable = {}
        self.images = {}
        self.flavor_id = None
        self.conn = None
        self.current = None

    def say(self, text):
        self.progress('e2e-bench: %s' % text)

    # -- devices ------------------------------------------------------------

    def pool_device(self):
        """Return the loop device under the gateway's storage pool."""
        device = backends.mount_source(self.cloud.gateway.info[
            'storage_dir'])
        if not device or not device.startswith('/dev/loop'):
            raise BenchError(reason='the storage pool %s is not on a loop '
                             'device (%s)' % (
                                 self.cloud.gateway.info['storage_dir'],
                                 device))
        return device

    def counters(self):
        """Return the counters of every device after a ``sync``."""
        backends.sync()
        result = {'pool': backends.device_counters(self.pool_device())}
        for host, storage in sorted(self.cloud.storage.items()):
            result['local-%s' % host] = storage.counters()
        return result

    # -- set-up -------------------------------------------------------------

    def prepare(self, large_path):
        """Create the flavor and upload the two images.

        :param large_path: the large root image (:func:`make_large_image`).
        """
        self.conn = self.cloud.connect()
        found = self.conn.compute.find_flavor(FLAVOR['name'])
        if found is None:
            found = self.conn.compute.create_flavor(
                name=FLAVOR['name'], ram=FLAVOR['ram'],
                vcpus=FLAVOR['vcpus'], disk=FLAVOR['disk'])
        self.flavor_id = found.id
        for name, path in (('small', self.cloud.guest.root_image),
                           ('large', large_path)):
            self.say('uploading the %s image (%d MiB)' % (
                name, os.path.getsize(path) // MiB))
            image = self.conn.image.create_image(
                name='nsio-bench-%s' % name, filename=path,
                disk_format='raw', container_format='bare',
                visibility='public',
                kernel_id=self.cloud.images['kernel'],
                ramdisk_id=self.cloud.images['ramdisk'],
                os_command_line=COMMAND_LINE, os_shutdown_timeout=0,
                wait=True)
            self.images[name] = image.id

    def switch(self, images_type, zero_copy):
        """Restart both computes with another backend and fresh disks.

        :param images_type: Nova's ``images_type``.
        :param zero_copy: sio's ``zero_copy_boot``.
        """
        cloud = self.cloud
        for host in list(cloud.computes):
            cloud.stop_compute(host, signal.SIGTERM, grace=30)
        problems = cloud.release_storage()
        if problems:
            raise BenchError(reason='releasing the storage: %s' %
                             '; '.join(problems))
        cloud.images_type = images_type
        cloud.zero_copy = zero_copy
        cloud.attach_storage()
        since = datetime.datetime.utcnow()
        for host in sorted(cloud.hosts):
            cloud.write_compute_conf(host)
            cloud.start_compute(host)
        for host in sorted(cloud.hosts):
            self.wait_restarted(host, since)
        # Its first report may come before it consumes its queue: one
        # more report interval, so that no boot waits for a start.
        time.sleep(SETTLE)

    def wait_restarted(self, host, since, timeout=cloud_mod.COMPUTE_TIMEOUT):
        """Wait until ``host``'s new nova-compute reported its state (it
        does so once its resources are in placement and it listens).

        :param host: host name.
        :param since: UTC time of the restart.
        :param timeout: seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            proc = self.cloud.computes[host][0]
            if proc.poll() is not None:
                raise BenchError(reason='nova-compute of %s exited with %s: '
                                 '%s' % (host, proc.returncode, ' | '.join(
                                     cloud_mod.tail(
                                         self.cloud.compute_logs[host],
                                         10))))
            found = list(self.conn.compute.services(binary='nova-compute',
                                                    host=host))
            updated = found and found[0].updated_at
            if updated:
                stamp = datetime.datetime.strptime(
                    updated.split('.')[0].rstrip('Z'), '%Y-%m-%dT%H:%M:%S')
                if stamp > since and found[0].state == 'up':
                    return
            if time.monotonic() > deadline:
                raise BenchError(reason='nova-compute of %s did not report '
                                 'after its restart in %d s' % (host, timeout))
            time.sleep(1)

    # -- one boot -------------------------------------------------------------

    def console_path(self, host, server_id):
        """Return the console log of ``server_id`` on ``host``, seen from
        this process (through the host's mount namespace).

        :param host: host name.
        :param server_id: the server's id.
        """
        holder = self.cloud.hosts[host].holder
        return '/proc/%d/root%s/%s/console.log' % (
            holder.pid, cloud_mod.INSTANCES_PATH, server_id)

    def fault(self, server):
        fault = getattr(server, 'fault', None) or {}
        return fault.get('message') or server.status

    def boot(self, image, host='h1'):
        """Boot one server; return ``(server id, active_s, console_s)``.

        :param image: ``small`` or ``large``.
        :param host: the compute host to boot on.
        """
        started = time.monotonic()
        server = self.conn.compute.create_server(
            name='nsio-bench-%s' % image, image_id=self.images[image],
            flavor_id=self.flavor_id, networks='none',
            availability_zone='nova:%s' % host)
        active = ready = None
        path = self.console_path(host, server.id)
        next_poll = started
        while active is None or ready is None:
            now = time.monotonic()
            if ready is None and READY in _read(path):
                ready = now - started
            if active is None and now >= next_poll:
                next_poll = now + POLL
                current = self.conn.compute.get_server(server.id)
                if current.status == 'ACTIVE' and not current.task_state:
                    active = time.monotonic() - started
                elif current.status == 'ERROR':
                    raise BenchError(reason='server %s went to ERROR: %s' % (
                        server.id, self.fault(current)))
            if now - started > BOOT_TIMEOUT:
                raise BenchError(reason='server %s: ACTIVE after %s s, '
                                 'console marker after %s s, waited %d s'
                                 % (server.id, active, ready, BOOT_TIMEOUT))
            time.sleep(0.1)
        return server.id, active, ready

    def delete(self, server_id):
        """Delete a server and wait until it is gone.

        :param server_id: its id.
        """
        self.conn.compute.delete_server(server_id, ignore_missing=True)
        server = self.conn.compute.find_server(server_id)
        if server is not None:
            self.conn.compute.wait_for_delete(server, wait=300)

    def measure_boot(self, label, image, phase, host='h1'):
        """Boot, measure, delete; record the sample.

        :param label: the backend's label.
        :param image: ``small`` or ``large``.
        :param phase: a value of :data:`PHASES`.
        :param host: the compute host to boot on.
        """
        sample = {'backend': label, 'kind': 'boot', 'image': image,
                  'phase': phase, 'host': host,
                  'load_before': load_average()}
        before = self.counters()
        server_id = None
        try:
            server_id, sample['active_s'], sample['console_s'] = \
                self.boot(image, host)
            sample['bytes'] = delta(before, self.counters())
            sample['server_id'] = server_id
            sample['spawn_s'] = spawn_seconds(
                _read(self.cloud.compute_logs.get(host, '')), server_id)
        except BenchError as exc:
            sample['error'] = exc.message
            sample['bytes'] = {}
        finally:
            if server_id is not None:
                self.delete(server_id)
        self.samples.append(sample)
        written_mib = _mib(written(sample)) if sample['bytes'] else '-'
        failure = (' (%s)' % one_line(sample['error'])
                   if 'error' in sample else '')
        self.say('%s %s %s boot on %s: ACTIVE %s s, console %s s, wrote %s '
                 'MiB%s' % (label, image, phase, host,
                            _s(sample.get('active_s')),
                            _s(sample.get('console_s')), written_mib,
                            failure))
        return sample

    def drop_image_cache(self, host):
        """Remove the files of ``host``'s ``_base`` image cache (no
        instance is on the host then), so that the next use of an image
        there fetches it again.

        :param host: host name.
        :raises BenchError: when the files cannot be removed.
        """
        base = os.path.join(cloud_mod.INSTANCES_PATH, '_base')
        done = self.cloud.hosts[host].run(
            ['find', base, '-mindepth', '1', '-maxdepth', '1', '-type', 'f',
             '-delete'], timeout=120)
        if done.returncode:
            raise BenchError(reason='%s: emptying %s: %s' % (
                host, base, one_line(done.stdout)))
        self.say('emptied the image cache of %s' % host)

    def migrate(self, server_id, source, target, block):
        """Live-migrate; return the seconds to ACTIVE on ``target``.

        :param server_id: the server.
        :param source: its host.
        :param target: the other host.
        :param block: block migration (the local backends).
        """
        started = time.monotonic()
        self.conn.compute.live_migrate_server(
            server_id, host=target, block_migration=block)
        settled = None
        while True:
            server = self.conn.compute.get_server(server_id)
            now = time.monotonic()
            if server.status == 'ACTIVE' and not server.task_state:
                if server.compute_host == target:
                    return now - started
                settled = settled or now
                if now - settled > 30:
                    raise BenchError(reason='live migration %s -> %s did '
                                     'not happen: %s' % (
                                         source, target,
                                         self.migration_error(server_id)))
            if server.status == 'ERROR':
                raise BenchError(reason='server went to ERROR during the '
                                 'live migration: %s' % self.fault(server))
            if now - started > MIGRATION_TIMEOUT:
                raise BenchError(reason='live migration not over after %d '
                                 's' % MIGRATION_TIMEOUT)
            time.sleep(POLL)

    def migration_error(self, server_id):
        """Return the newest migration's status and the newest error
        message of ``server_id``'s instance actions.
        """
        text = []
        try:
            events = []
            for action in self.conn.compute.server_actions(server_id):
                if action.action == 'live-migration':
                    detail = self.conn.compute.get_server_action(
                        action.request_id, server_id)
                    events += [e.get('traceback') or e.get('result')
                               for e in (detail.events or [])]
            text += [e.strip().splitlines()[-1] for e in events if e]
        except Exception as exc:        # the API's view is best-effort
            text.append('(actions unreadable: %s)' % exc)
        log = cloud_mod.tail(self.cloud.compute_logs.get('h1', ''), 3,
                             lambda ln: ' ERROR ' in ln)
        return '; '.join(text + log) or 'no error recorded'

    def measure_migrations(self, label, block):
        """Boot a server from the large image on h1 and live-migrate it
        back and forth ``runs`` times.

        :param label: the backend's label.
        :param block: block migration.
        """
        server_id = None
        try:
            server_id, _a, _c = self.boot('large')
            host, other = 'h1', 'h2'
            for run in range(self.runs):
                sample = {'backend': label, 'kind': 'migration',
                          'image': 'large', 'mode': 'block' if block
                          else 'shared', 'source': host, 'target': other,
                          'load_before': load_average()}
                before = self.counters()
                try:
                    sample['seconds'] = self.migrate(server_id, host, other,
                                                     block)
                    sample['bytes'] = delta(before, self.counters())
                except BenchError as exc:
                    sample['error'] = exc.message
                    sample['bytes'] = {}
                self.samples.append(sample)
                self.say('%s live migration %s -> %s: %s s, wrote %s MiB%s'
                         % (label, host, other, _s(sample.get('seconds')),
                            _mib(written(sample)) if sample['bytes']
                            else '-', ' (%s)' % one_line(sample['error'])
                            if 'error' in sample else ''))
                if 'error' in sample:
                    break
                host, other = other, host
        except BenchError as exc:
            self.samples.append({'backend': label, 'kind': 'migration',
                                 'image': 'large', 'error': exc.message,
                                 'bytes': {}})
        finally:
            if server_id is not None:
                self.delete(server_id)

    def run_backend(self, label, images_type, zero_copy):
        """Measure one backend.

        :param label: its label.
        :param images_type: Nova's ``images_type``.
        :param zero_copy: sio's ``zero_copy_boot``.
        """
        reason = None if images_type == 'sio' else backends.unavailable(
            images_type)
        if reason:
            self.unavailable[label] = reason
            self.say('%s: n/a: %s' % (label, reason))
            return
        if self.current != (images_type, zero_copy):
            self.say('restarting the computes with images_type %s' % label)
            self.switch(images_type, zero_copy)
            self.current = (images_type, zero_copy)
        for image in IMAGES:
            self.measure_boot(label, image, 'cold')
            for _run in range(self.runs):
                self.measure_boot(label, image, 'warm')
        for image in IMAGES:
            self.measure_boot(label, image, 'other-host', OTHER_HOST)
        # The first migration goes to a host without the image, as the
        # first one of an image to a host does.
        self.drop_image_cache(OTHER_HOST)
        self.measure_migrations(label, backends.block_migration(images_type))

    def run(self):
        """Measure every wanted backend; return the samples."""
        self.current = (self.cloud.images_type, self.cloud.zero_copy)
        for label, images_type, zero_copy in self.wanted:
            self.run_backend(label, images_type, zero_copy)
        return self.samples


def result(samples, unavailable, machine_before, load_after, runs, version):
    """Return the JSON document of a benchmark.

    :param samples: every sample.
    :param unavailable: ``{backend: reason}``.
    :param machine_before: :func:`machine_figures` before the run.
    :param load_after: :func:`load_average` after it.
    :param runs: the runs asked for.
    :param version: the Nova release.
    """
    summary = summarize(samples)
    for backend, figures in summary.items():
        mig = figures.get('migration')
        if mig is not None:
            modes = [s.get('mode') for s in samples
                     if s['backend'] == backend and s['kind'] == 'migration'
                     and s.get('mode')]
            mig['mode'] = modes[0] if modes else None
    machine = dict(machine_before)
    machine['load_average_before'] = machine.pop('load_average')
    machine['load_average_after'] = load_after
    return {
        'nova': version,
        'runs': runs,
        'machine': machine,
        'counted': {
            'pool': 'sectors written to the loop device under the gateway '
                    'emulator\'s storage pool (its reflink XFS), x 512',
            'local-<host>': 'sectors written to the loop device under '
                            'the host\'s instances directory, x 512',
            'when': 'after a sync before the create call and after the '
                    'console marker (boots), around the live migration',
        },
        'summary': summary,
        'unavailable': unavailable,
        'goals': [{'goal': g, 'met': m, 'evidence': e}
                  for g, m, e in goals(summary)],
        'samples': samples,
    }


def run_bench(version, backends_wanted=None, runs=DEFAULT_RUNS,
              json_path=None, progress=print, keep_logs=None,
              large_extra=LARGE_EXTRA):
    """Build one cloud, measure every backend, tear it down.

    :param version: the Nova release under test.
    :param backends_wanted: labels of :data:`BACKENDS` (default: all).
    :param runs: warm boots and live migrations per backend (N).
    :param json_path: file receiving the JSON document, or None.
    :param progress: callable receiving progress lines.
    :param keep_logs: directory receiving every log, or None.
    :param large_extra: bytes the large image adds to the small one.
    :returns: the JSON document (a dict).
    """
    wanted = list(backends_wanted or [b[0] for b in BACKENDS])
    unknown = sorted(set(wanted) - set(b[0] for b in BACKENDS))
    if unknown:
        raise BenchError(reason='unknown backend(s) %s (backends: %s)' % (
            ', '.join(unknown), ', '.join(b[0] for b in BACKENDS)))
    if runs < 1:
        raise BenchError(reason='runs must be at least 1')
    before = machine_figures()
    first = [b for b in BACKENDS if b[0] in wanted][0]
    ledger = cleanup.Ledger()
    ledger.install_handlers()
    workdir = cloud_mod.make_workdir(ledger)
    cloud = cloud_mod.Cloud(version, workdir, ledger, progress=progress,
                            images_type=first[1], zero_copy=first[2],
                            local_disk=True)
    bench = Bench(cloud, wanted, runs, progress)
    problems = []
    try:
        bench.say('building the large image')
        guest = guest_mod.build(os.path.join(guest_mod.cache_root(),
                                             'guest'))
        large = os.path.join(guest_mod.cache_root(), 'bench-large.img')
        make_large_image(guest.root_image, large, large_extra)
        if first[1] != 'sio' and backends.unavailable(first[1]):
            cloud.images_type, cloud.zero_copy = 'sio', False
        cloud.build()
        bench.prepare(large)
        bench.run()
    finally:
        if keep_logs:
            cloud.keep_logs(keep_logs)
        progress('e2e-bench: tearing the cloud down')
        problems += cloud.close()
        problems += ledger.release_all()
    doc = result(bench.samples, bench.unavailable, before, load_average(),
                 runs, version)
    doc['tear_down_problems'] = problems
    if json_path:
        with open(json_path, 'w') as handle:
            json.dump(doc, handle, indent=2, sort_keys=True)
    return doc
