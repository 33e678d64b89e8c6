# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Benchmark: bytes written to ScaleIO and time per boot, copy vs zero-copy.

Boots one image ``--boots`` times (default 10) per path on the emulator
through the backend's own code: for each boot a new instance's root disk
is made by ``Sio(instance, 'disk').cache(...)``, the call Nova's libvirt
driver makes at spawn, which runs ``Sio.create_image``, the ``hooks``
module and Nova's ``images.convert_image`` (the real ``qemu-img convert``,
writing through the volume's device link). Paths:

* full copy: a new 16 GiB volume, mapped, the image converted onto it;
* zero copy (``[scaleio] zero_copy_boot``): a snapshot of the image's
  base volume (filled by the first boot), extended and mapped.

This needs Nova: the measurement runs in a Python with Nova's
requirements (``--python``, where ``nova`` imports; default: the Nova
34.0.0 test virtualenv that ``nova-sio test`` builds, made when missing,
with Nova imported from its unpatched sources). The ``sio`` runtime
comes from this checkout. Nova's privsep-decorated calls run in that
process (it must be root, as ``qemu-img`` writes to devices as root).

The image is a sparse raw file (``--sizes``, default 1 and 10 GiB)
whose first ``--data-percent`` percent (default 5) holds random data; it
is in Nova's ``_base`` image cache already (downloaded). Figures per
boot:

* bytes: written into the emulator's volumes, counted at the storage
  (growth of the allocated blocks of their backing files; a snapshot's
  shared blocks are not a write; ``nova_sio.emulator.usage``);
* qemu-img io: what the backend's child processes wrote, from the
  kernel's write accounting (``ru_oublock`` of the reaped children);
* s: wall time of ``Sio.cache``; snap s: the part inside the gateway's
  snapshot call; device wait: time in ``host.wait_for_device`` after a
  mapping, next to the delay the emulated SDC is configured to take
  before the device appears (``--device-delay``).

After the boots every disk is deleted (``hooks.cleanup_volumes``, the
driver's destroy hook) and, for zero copy, the base volume
(``hooks.manage_base_volumes``, the image cache manager hook). Then
nothing may be left: no volume, mapping or device link in the emulator,
no backing file, no file in the instances directory but the cached
image and Nova's lock files, no file in the run's temporary directory.

Exit status 1 when a target is missed or something leaked:

* every zero-copy boot after the first writes at most
  ``--max-bootn-bytes`` (default 0);
* the median time of those boots for the largest image is at most
  ``--max-ratio`` (default 1.5) times that of the smallest plus
  ``--slack`` seconds (default 0.02) (needs two sizes);
* with ``--max-bootn-seconds``: that median is at most this.

Where the emulator keeps its volumes: ``--storage-dir DIR``, or
``--reflink-fs`` (root) for a scratch XFS with reflink in a loop-mounted
image file, removed afterwards; default the temporary directory.
``--results FILE`` checks and prints the ``--json`` output of an
earlier run instead of measuring.

Usage: ``python -m nova_sio.proof.boot_bench [--sizes 1 10] [--boots 10]
[--data-percent 5] [--device-delay S] [--storage-dir DIR | --reflink-fs]
[--python PY] [--max-bootn-bytes N] [--max-ratio R] [--slack S]
[--max-bootn-seconds S] [--json FILE] [--results FILE]``
"""

import argparse
import hashlib
import importlib.abc
import importlib.machinery
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

from nova_sio.emulator import loopfs
from nova_sio.emulator import sdc
from nova_sio.emulator import server
from nova_sio.emulator import usage
from nova_sio import runtime

GiB = 1024 ** 3
MiB = 1024 ** 2
ROOT_GB = 16
NOVA_VERSION = '34.0.0'
HOST = 'bench-host'
IMAGE_ID = '0b00b000-0000-4000-8000-0000000b0071'
RUNTIME_PACKAGE = 'nova.virt.libvirt.sio'
PATHS = ('full copy', 'zero-copy')


# -- inside the Nova Python -------------------------------------------------

class CheckoutRuntime(importlib.abc.MetaPathFinder):
    """Import ``nova.virt.libvirt.sio`` from this checkout.

    Whatever Nova tree is imported (unpatched, or patched with an older
    emitted diff), the benchmark measures the runtime of the checkout.

    :param root: the checkout root.
    """

    def __init__(self, root):
        self.parent = os.path.join(root, 'nova', 'virt', 'libvirt')

    def find_spec(self, name, path, target=None):
        if name == RUNTIME_PACKAGE:
            where = [self.parent]
        elif name.startswith(RUNTIME_PACKAGE + '.'):
            where = [os.path.join(self.parent, 'sio')]
        else:
            return None
        return importlib.machinery.PathFinder.find_spec(name, where)


class Backend(object):
    """Nova's pieces the benchmark drives, imported once.

    :param workdir: scratch directory (``instances_path`` goes there).
    """

    def __init__(self, workdir):
        sys.meta_path.insert(0, CheckoutRuntime(runtime.checkout_root()))
        import nova.conf
        from nova import objects
        import nova.privsep
        from nova.virt.libvirt.sio import hooks
        from nova.virt.libvirt.sio import host
        from nova.virt.libvirt.sio import image
        objects.register_all()
        # privsep-decorated calls (qemu-img convert) run in this process.
        nova.privsep.sys_admin_pctxt.set_client_mode(False)
        self.conf = nova.conf.CONF
        self.conf([], project='nova', default_config_files=[])
        self.objects = objects
        self.hooks = hooks
        self.host = host
        self.image = image
        self.instances = os.path.join(workdir, 'instances')
        self.conf.set_override('instances_path', self.instances)
        self.conf.set_override('host', HOST)
        self.conf.set_override('remove_unused_original_minimum_age_seconds',
                               0, group='image_cache')
        self.base_dir = os.path.join(
            self.instances, self.conf.image_cache.subdirectory_name)
        self.waits = []
        self.snapshot_seconds = [0.0]
        self._instrument()

    def _instrument(self):
        """Time the device waits and the gateway snapshot calls."""
        real_wait = self.host.wait_for_device
        waits = self.waits

        def timed_wait(*args, **kwargs):
            began = time.perf_counter()
            try:
                return real_wait(*args, **kwargs)
            finally:
                waits.append(time.perf_counter() - began)
        self.host.wait_for_device = timed_wait
        client_cls = self.hooks.sio_client.Client
        real_snapshot = client_cls.snapshot_volume
        spent = self.snapshot_seconds

        def timed_snapshot(client, *args, **kwargs):
            began = time.perf_counter()
            try:
                return real_snapshot(client, *args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - began
        client_cls.snapshot_volume = timed_snapshot

    def configure(self, info, zero_copy):
        """Point the ``[scaleio]`` options at an emulator."""
        pool = info['pools'][0]
        host = info['hosts'][HOST]
        for key, value in (
                ('rest_server_ip', info['host']),
                ('rest_server_port', info['port']),
                ('rest_server_scheme', info['scheme']),
                ('rest_server_username', info['username']),
                ('rest_server_password', info['password']),
                ('verify_server_certificate', True),
                ('server_certificate_path', info['ca_cert']),
                ('protection_domain_name', pool['protection_domain']),
                ('storage_pool_name', pool['storage_pool']),
                ('default_sdcguid', host['guid']),
                ('device_root', host['device_root']),
                ('zero_copy_boot', zero_copy)):
            self.conf.set_override(key, value, group='scaleio')
        self.hooks.reset()

    def instance(self):
        """A new instance of a 16 GiB root disk flavor."""
        objects = self.objects
        flavor = objects.Flavor(name='bench', flavorid='bench',
                                root_gb=ROOT_GB, ephemeral_gb=0, swap=0,
                                memory_mb=512, vcpus=1, extra_specs={})
        return objects.Instance(uuid=str(uuid.uuid4()), flavor=flavor,
                                task_state=None, host=HOST,
                                image_ref=IMAGE_ID)

    def boot(self, instance, filename):
        """Make the root disk of ``instance`` as the driver's spawn does."""

        def fetch(target, *args, **kwargs):
            raise AssertionError('the image is in the cache already; '
                                 'no download expected into %s' % target)
        disk = self.image.Sio(instance=instance, disk_name='disk')
        disk.cache(fetch_func=fetch, filename=filename,
                   size=ROOT_GB * GiB, image_id=IMAGE_ID)
        return disk

    def destroy(self, instance):
        return self.hooks.cleanup_volumes(instance, destroy_disks=True)

    def remove_base_volumes(self):
        return self.hooks.manage_base_volumes([])


def make_image(path, size, data_percent):
    """Write a sparse raw image whose first extent holds random data.

    :returns: the data bytes (whole MiB).
    """
    data = int(size * data_percent / 100) // MiB * MiB
    with open(path, 'wb') as handle:
        handle.truncate(size)
        for _ in range(data // MiB):
            handle.write(os.urandom(MiB))
    return data


def _method(counts):
    """Name the snapshot method(s) of a run from per-method counts."""
    used = sorted(name for name, count in counts.items() if count)
    if not used:
        return '-'
    return used[0] if len(used) == 1 else 'mixed'


def leftovers(emulator, instances, cached):
    """Everything a finished run left behind.

    :param emulator: the emulator of the run.
    :param instances: Nova's instances directory.
    :param cached: the cached image (expected to stay).
    :returns: dict of lists, all empty when nothing leaked.
    """
    found = emulator.audit()
    found['backing_files'] = sorted(
        usage.sample(emulator.info()['storage_dir']))
    files = []
    for top, _dirs, names in os.walk(instances):
        for name in names:
            path = os.path.join(top, name)
            if path == cached:
                continue
            if os.path.basename(top) == 'locks' and \
                    os.path.dirname(top) == instances:
                continue  # Nova's external lock files stay
            files.append(os.path.relpath(path, instances))
    found['instance_files'] = sorted(files)
    return found


def run_path(backend, image, size_gb, data, zero_copy, boots, storage_dir,
             device_delay):
    """Boot ``boots`` instances on one path; return the figures."""
    # HTTPS with the certificate verified, as in production.
    emulator = server.Emulator(pools=(('pd1', 'sp1', 4096),), https=True,
                               hosts=(HOST,), storage_dir=storage_dir)
    emulator.start()
    try:
        if device_delay is not None:
            emulator.set_host(HOST, device_delay=device_delay)
        info = emulator.info()
        delay = info['hosts'][HOST]['device_delay']
        backend.configure(info, zero_copy)
        meter = usage.StorageMeter(emulator)
        filename = hashlib.sha1(IMAGE_ID.encode()).hexdigest()
        os.makedirs(backend.base_dir, exist_ok=True)
        cached = os.path.join(backend.base_dir, filename)
        os.link(image, cached)
        runs, instances = [], []
        for _index in range(boots):
            instance = backend.instance()
            stats = emulator.storage_stats()
            mark = meter.mark()
            io_before = usage.child_write_bytes()
            del backend.waits[:]
            backend.snapshot_seconds[0] = 0.0
            began = time.perf_counter()
            backend.boot(instance, filename)
            seconds = time.perf_counter() - began
            written = meter.since(mark)
            io = usage.child_write_bytes() - io_before
            after = emulator.storage_stats()
            instances.append(instance)
            runs.append({
                'bytes': written['bytes'], 'qemu_img_io_bytes': io,
                'seconds': seconds,
                'snapshot_call_seconds': backend.snapshot_seconds[0],
                'device_waits': list(backend.waits),
                'emulator_copied_bytes': (after['snapshot_bytes_copied'] -
                                          stats['snapshot_bytes_copied']),
                'method': _method(dict(
                    (k, after['snapshots'][k] - stats['snapshots'][k])
                    for k in after['snapshots']))})
        for instance in instances:
            backend.destroy(instance)
        if zero_copy:
            backend.remove_base_volumes()
        found = leftovers(emulator, backend.instances, cached)
        final = emulator.storage_stats()
    finally:
        emulator.stop()
        backend.hooks.reset()
        shutil.rmtree(backend.instances, ignore_errors=True)
    # Temporary files of the run (Nova's, qemu-img's, the emulator's).
    found['temp_files'] = sorted(os.listdir(tempfile.gettempdir()))
    return {'image_gb': size_gb, 'image_data_bytes': data,
            'path': PATHS[1] if zero_copy else PATHS[0],
            'boots': boots, 'device_delay': delay,
            'runs': runs, 'first': runs[0], 'last': runs[-1],
            'total_bytes': sum(r['bytes'] for r in runs),
            'storage_clone_method': final['clone_method'],
            'snapshots': final['snapshots'],
            'snapshot_bytes_copied': final['snapshot_bytes_copied'],
            'leaks': found}


def measure(sizes, boots, data_percent, storage_dir=None,
            device_delay=None):
    """Boot each image ``boots`` times on both paths (needs Nova).

    :param sizes: image sizes in GiB.
    :param boots: boots per path and size.
    :param data_percent: share of each image holding data.
    :param storage_dir: where the emulator keeps its volumes (None: its
        temporary state directory).
    :param device_delay: seconds the emulated SDC takes to show a device
        (None: the emulator's default).
    """
    workdir = tempfile.mkdtemp(prefix='boot-bench-')
    previous = tempfile.tempdir, os.environ.get('TMPDIR')
    # A temporary directory of the run's own: what is left in it leaked.
    tmp = os.path.join(workdir, 'tmp')
    os.mkdir(tmp)
    tempfile.tempdir = os.environ['TMPDIR'] = tmp
    try:
        backend = Backend(workdir)
        results = []
        for size_gb in sizes:
            image = os.path.join(workdir, 'image-%d.raw' % size_gb)
            data = make_image(image, size_gb * GiB, data_percent)
            for zero_copy in (False, True):
                # The write-back of the path before must not slow this one.
                os.sync()
                results.append(run_path(backend, image, size_gb, data,
                                        zero_copy, boots, storage_dir,
                                        device_delay))
            os.unlink(image)
    finally:
        tempfile.tempdir = previous[0]
        if previous[1] is None:
            del os.environ['TMPDIR']
        else:
            os.environ['TMPDIR'] = previous[1]
        shutil.rmtree(workdir, ignore_errors=True)
    return results


# -- verdict and table (any Python) -----------------------------------------

def leaked(result):
    """Return ``{kind: items}`` of what one path left behind."""
    return dict((k, v) for k, v in sorted(result['leaks'].items()) if v)


def _later_boots(result):
    """The boots after the first (the first fills the base volume)."""
    return result['runs'][1:] or result['runs']


def _boots_label(result):
    return 'boots 2..%d' % result['boots'] if result['boots'] > 1 \
        else 'boot 1'


def targets(results, max_bootn_bytes=0, max_ratio=1.5, slack=0.02,
            max_bootn_seconds=None):
    """Check the targets on the zero-copy boots after the first.

    Every one of them writes at most ``max_bootn_bytes``; their median
    time (one slow boot on a busy host does not decide) is at most
    ``max_bootn_seconds``, and for the largest image at most
    ``max_ratio`` times that of the smallest plus ``slack``.

    :param results: :func:`measure` results.
    :param max_bootn_bytes: bytes a zero-copy boot N may write.
    :param max_ratio: zero-copy boot N time, largest over smallest image.
    :param slack: seconds of noise allowed on top of the ratio.
    :param max_bootn_seconds: seconds a zero-copy boot N may take.
    :returns: ``[(met, line)]``.
    """
    zero = sorted((r for r in results if r['path'] == PATHS[1]),
                  key=lambda r: r['image_gb'])
    checks = []
    for r in zero:
        written = max(run['bytes'] for run in _later_boots(r))
        checks.append((written <= max_bootn_bytes,
                       'zero-copy %s, %d GiB image: at most %d bytes '
                       'written (target <= %d)' % (
                           _boots_label(r), r['image_gb'], written,
                           max_bootn_bytes)))
        if max_bootn_seconds is not None:
            took = _median(run['seconds'] for run in _later_boots(r))
            checks.append((took <= max_bootn_seconds,
                           'zero-copy %s, %d GiB image: median %.3f s '
                           '(target <= %g s)' % (
                               _boots_label(r), r['image_gb'], took,
                               max_bootn_seconds)))
    if len(zero) >= 2:
        small, large = zero[0], zero[-1]
        t_small = _median(run['seconds'] for run in _later_boots(small))
        t_large = _median(run['seconds'] for run in _later_boots(large))
        checks.append((
            t_large <= max_ratio * t_small + slack,
            'zero-copy %s, %d GiB vs %d GiB image: median %.3f s vs '
            '%.3f s (x%.2f; target <= x%g + %g s)' % (
                _boots_label(large), small['image_gb'], large['image_gb'],
                t_small, t_large, t_large / t_small if t_small else 0.0,
                max_ratio, slack)))
    return checks


def _median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


def _ms(value):
    return '-' if value is None else '%.1f' % (value * 1000)


def render(results, checks):
    """Format :func:`measure` results and :func:`targets` checks."""
    head = ('%-6s %-9s %-11s %11s %11s %7s %11s %11s %7s %6s %11s %6s')
    row = ('%-6s %-9s %-11s %11d %11d %7.3f %11d %11d %7.3f %6.3f %11s %6s')
    lines = [head % ('image', 'path', 'snapshots', 'boot1 bytes',
                     'boot1 io', 'boot1 s', 'bootN bytes', 'bootN io',
                     'bootN s', 'snap s', 'dev wait', 'leaks')]
    for r in results:
        first, last = r['first'], r['last']
        waits = [w for run in r['runs'] for w in run['device_waits']]
        lines.append(row % (
            '%d GiB' % r['image_gb'], r['path'], _method(r['snapshots']),
            first['bytes'], first['qemu_img_io_bytes'], first['seconds'],
            last['bytes'], last['qemu_img_io_bytes'], last['seconds'],
            last['snapshot_call_seconds'],
            '%s/%s' % (_ms(_median(waits)), _ms(r['device_delay'])),
            'LEAKS' if leaked(r) else 'none'))
    lines.extend([
        'bytes: written into the volumes, counted at the storage: %s' %
        usage.METHOD,
        '  (a snapshot\'s own blocks are not a write); io: written by the '
        'backend\'s child processes',
        '  (qemu-img), kernel write accounting; s: wall time of Sio.cache; '
        'snap s: inside the',
        '  snapshot call; dev wait: median ms in wait_for_device / delay '
        'the emulated SDC is set to.'])
    if results:
        lines.append('image data (what boot 1 must write): %s' % ', '.join(
            '%d bytes (%d GiB image)' % (x['image_data_bytes'],
                                         x['image_gb'])
            for x in results if x['path'] == PATHS[0]))
    for r in results:
        for kind, items in leaked(r).items():
            lines.append('LEAK %d GiB %s: %s: %s' % (
                r['image_gb'], r['path'], kind, json.dumps(items)[:300]))
    for met, line in checks:
        lines.append('target %s: %s' % ('met' if met else 'NOT met', line))
    return '\n'.join(lines)


def status(results, checks):
    """0 when every target is met and nothing leaked, else 1."""
    if any(leaked(r) for r in results):
        return 1
    return 0 if all(met for met, _line in checks) else 1


# -- driver ------------------------------------------------------------------

def fs_size(sizes, boots, data_percent):
    """Size of a scratch file system holding one path's volumes."""
    data = int(max(sizes) * GiB * data_percent / 100)
    need = 2 * (boots + 2) * data + GiB
    return max(8 * GiB, -(-need // GiB) * GiB)


def nova_python(build=True):
    """Return ``(python, nova source root)`` for the measurement.

    The Python is that of a Nova test venv of the release's series that
    ``nova-sio test`` made; Nova itself is imported from the unpatched
    sources of the release, the ``sio`` runtime from this checkout, so
    neither the emitted diff nor the patched test tree matters.

    :param build: build the venv when there is none (else return
        ``(None, None)``).
    """
    import glob
    from nova_sio.engine import source
    from nova_sio import paths
    from nova_sio import releases
    from nova_sio import testenv
    ready = sorted(glob.glob(os.path.join(
        paths.cache_dir(), 'venvs', '%s-py*' % releases.series_of(
            NOVA_VERSION), '.nova-sio-ready')), key=os.path.getmtime)
    if ready:
        venv = os.path.dirname(ready[-1])
    elif not build:
        return None, None
    else:
        with testenv.tree_lock(NOVA_VERSION):
            venv = testenv.build_venv(
                NOVA_VERSION, testenv.build_tree(NOVA_VERSION))
    if build:
        source.fetch(NOVA_VERSION)
    return (os.path.join(venv, 'bin', 'python'),
            source.full_tree(NOVA_VERSION))


def measure_in(python, nova_tree, args, storage_dir):
    """Run :func:`measure` in ``python``; return its results.

    :param python: a Python with Nova's requirements.
    :param nova_tree: Nova's source root to import it from (None: the
        ``nova`` that ``python`` has).
    """
    # The measurement's temporary files all go into this directory, so
    # that they are removed even when it is killed.
    scratch = tempfile.mkdtemp(prefix='boot-bench-')
    raw = os.path.join(scratch, 'results.json')
    cmd = [python, '-m', 'nova_sio.proof.boot_bench', '--in-nova', raw,
           '--boots', str(args.boots), '--data-percent',
           str(args.data_percent), '--sizes'] + [str(s) for s in args.sizes]
    if storage_dir:
        cmd += ['--storage-dir', storage_dir]
    if args.device_delay is not None:
        cmd += ['--device-delay', str(args.device_delay)]
    root = runtime.checkout_root()
    path = [os.path.join(root, 'tools')]
    if nova_tree:
        path.insert(0, nova_tree)
    env = dict(os.environ, NOVA_SIO_ROOT=root, TMPDIR=scratch,
               PYTHONPATH=os.pathsep.join(path), PYTHONDONTWRITEBYTECODE='1')
    try:
        # Not from the checkout root: its nova/ would shadow Nova's.
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, cwd=scratch)
        if proc.returncode:
            sys.stderr.write(proc.stdout.decode('utf-8', 'replace')[-5000:])
            raise RuntimeError('the measurement failed (exit %d)'
                               % proc.returncode)
        with open(raw) as handle:
            return json.load(handle)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt('signal %d' % signum)


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--sizes', type=int, nargs='+', default=[1, 10])
    p.add_argument('--boots', type=int, default=10)
    p.add_argument('--data-percent', type=float, default=5.0)
    p.add_argument('--device-delay', type=float,
                   help='seconds the emulated SDC takes to show a device '
                        '(default: the emulator\'s)')
    where = p.add_mutually_exclusive_group()
    where.add_argument('--storage-dir',
                       help='existing directory for the emulator\'s '
                            'volumes (e.g. on XFS with reflink or btrfs)')
    where.add_argument('--reflink-fs', action='store_true',
                       help='run the emulator\'s volumes on a scratch XFS '
                            'file system with reflink (loop mount; root)')
    p.add_argument('--python', help='a Python where nova imports '
                   '(default: a Nova %s test venv with the unpatched '
                   'Nova sources)' % NOVA_VERSION)
    p.add_argument('--max-bootn-bytes', type=int, default=0)
    p.add_argument('--max-ratio', type=float, default=1.5)
    p.add_argument('--slack', type=float, default=0.02)
    p.add_argument('--max-bootn-seconds', type=float)
    p.add_argument('--json', help='write the figures here')
    p.add_argument('--results', help='check and print the --json output '
                   'of an earlier run instead of measuring')
    p.add_argument('--in-nova', metavar='FILE', help=argparse.SUPPRESS)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.in_nova:
        results = measure(args.sizes, args.boots, args.data_percent,
                          args.storage_dir, args.device_delay)
        with open(args.in_nova, 'w') as handle:
            json.dump(results, handle)
        return 0
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
    if args.results:
        with open(args.results) as handle:
            report = json.load(handle)
        results = report['results']
        header = report.get('header', [])
    else:
        header, results = _measure(args)
    checks = targets(results, args.max_bootn_bytes, args.max_ratio,
                     args.slack, args.max_bootn_seconds)
    for line in header:
        print(line)
    print(render(results, checks))
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'header': header, 'results': results,
                       'targets': [{'met': m, 'check': c}
                                   for m, c in checks]},
                      handle, indent=2, sort_keys=True)
    return status(results, checks)


def _measure(args):
    if args.python:
        python, nova_tree = args.python, None
    else:
        python, nova_tree = nova_python()
    mount = None
    storage_dir = args.storage_dir
    notes = []
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
            notes.append('--reflink-fs: no scratch XFS file system (%s); '
                         'running on the default directory.' % reason)
    try:
        probe = storage_dir or tempfile.gettempdir()
        method = sdc.clone_support(probe)
        fstype = loopfs.fstype_of(probe) or 'unknown'
        results = measure_in(python, nova_tree, args, storage_dir)
    finally:
        if mount is not None:
            mount.close()
    header = notes + [
        'N = %d boots per path; root volume %d GiB; image data %g%%; '
        'backend: Sio.cache of the checkout runtime in Nova %s'
        % (args.boots, ROOT_GB, args.data_percent, NOVA_VERSION),
        'emulator storage: %s file system%s; snapshot method: %s' % (
            fstype, ' (scratch, loop-mounted)' if mount is not None else '',
            method)]
    if method != sdc.REFLINK:
        header += ['NOTE: snapshots copy data on this file system; the '
                   'snapshot times below include',
                   'that copy, which a ScaleIO snapshot (metadata only) '
                   'does not make.']
    return header, results


if __name__ == '__main__':
    sys.exit(main())
