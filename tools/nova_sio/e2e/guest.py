# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""A small Linux guest built offline from Debian's packages.

:func:`build` makes three files:

* ``vmlinuz``: the kernel of a Debian ``linux-image-<abi>-amd64``
  package (downloaded into :func:`deb_cache` by ``tools/e2e-setup.sh``)
  or of an installed ``/boot/vmlinuz-*``;
* ``initrd.img``: a gzip'd cpio with a static busybox, the virtio
  modules that kernel builds as modules (``virtio_blk``, ``virtio_pci``
  and their dependencies, read from each module's ``.modinfo``) and an
  ``/init`` that does the checks below;
* ``root.img``: a small raw root disk with a marker, for Glance.

The guest's ``/init`` prints to the serial console (``ttyS0``):

* ``NOVA-SIO-GUEST BOOTED boot_id=<id> kernel=<release>``;
* ``NOVA-SIO-GUEST ROOT-IMAGE <marker>``: the root disk's image marker;
* for every disk, ``NOVA-SIO-GUEST DISK <dev> role=<role> size=<bytes>
  before=<marker> wrote=<marker> readback=<ok|BAD>``: the data marker
  found at :data:`MARKER_OFFSET` (what an earlier boot wrote, or ``-``),
  then a new one written and read back with the caches dropped;
* ``NOVA-SIO-GUEST SWAP <dev> signature=<ok|missing> swapon=<ok|failed>``;
* ``NOVA-SIO-GUEST READY``, then ``NOVA-SIO-GUEST COUNTER <n>
  boot_id=<id>`` every second: a live migration keeps the boot id and
  the counter going, a reboot does not.

Disk roles come from the kernel command line
(``nova_sio.disks=vda:root,vdb:ephemeral,vdc:swap``, the default).
"""

import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

from nova_sio.e2e import machine
from nova_sio import errors
from nova_sio import paths

MiB = 1024 * 1024

#: Offset of the data marker on every disk (the root image marker is at
#: 1 MiB; swap's header is in the first page).
MARKER_OFFSET = 2 * MiB
ROOT_MARKER_OFFSET = 1 * MiB
ROOT_IMAGE_SIZE = 64 * MiB
ROOT_MARKER = 'NSIO-ROOT-IMAGE'
DEFAULT_DISKS = 'vda:root,vdb:ephemeral,vdc:swap'

#: Modules the guest needs to see its virtio disks.
WANTED_MODULES = ('virtio_pci', 'virtio_blk')

_INIT = r'''#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The serial port even when the kernel's console is another one (Nova's
# rescue boots with "console=tty0 console=ttyS0 console=hvc0").
if [ -c /dev/ttyS0 ]; then exec >/dev/ttyS0 2>&1 </dev/null
else exec >/dev/console 2>&1 </dev/console; fi
say() { echo "NOVA-SIO-GUEST $*"; }
BOOT_ID=$(cut -c1-8 /proc/sys/kernel/random/boot_id)
say "BOOTED boot_id=$BOOT_ID kernel=$(uname -r)"
for m in $(cat /modules.order); do
    insmod "/lib/modules/$m.ko" || say "MODULE $m failed"
done
DISKS=%(disks)s
for arg in $(cat /proc/cmdline); do
    case "$arg" in nova_sio.disks=*) DISKS=${arg#nova_sio.disks=} ;; esac
done
first=${DISKS%%%%,*}; first=${first%%%%:*}
n=0
while [ ! -b "/dev/$first" ] && [ $n -lt 100 ]; do
    sleep 0.1; n=$((n+1))
done
sector() {  # print the marker in the 512-byte sector at $2 of $1
    dd if="$1" bs=512 skip="$2" count=1 2>/dev/null |
        tr -c 'A-Za-z0-9:._\n-' ' ' | head -n 1 | {
            read -r word rest; echo "${word:--}"; }
}
for entry in $(echo "$DISKS" | tr ',' ' '); do
    dev=${entry%%%%:*}; role=${entry#*:}
    if [ ! -b "/dev/$dev" ]; then
        say "DISK $dev role=$role missing"; continue
    fi
    size=$(( $(cat /sys/block/$dev/size) * 512 ))
    if [ "$role" = root ]; then
        say "ROOT-IMAGE $(sector /dev/$dev %(root_sector)d)"
    fi
    if [ "$role" = swap ]; then
        sig=missing
        magic=$(dd if=/dev/$dev bs=1 skip=4086 count=10 2>/dev/null)
        [ "$magic" = SWAPSPACE2 ] && sig=ok
        sw=failed
        swapon "/dev/$dev" 2>/dev/null &&
            grep -q "^/dev/$dev " /proc/swaps && sw=ok
        swapoff "/dev/$dev" 2>/dev/null
        say "SWAP $dev signature=$sig swapon=$sw"
    fi
    before=$(sector /dev/$dev %(data_sector)d)
    mark="NSIO-DATA:$role:$BOOT_ID"
    printf '%%-511s\n' "$mark" |
        dd of="/dev/$dev" bs=512 seek=%(data_sector)d count=1 \
            conv=notrunc,fsync 2>/dev/null
    sync; echo 3 > /proc/sys/vm/drop_caches
    back=$(sector /dev/$dev %(data_sector)d)
    ok=BAD; [ "$back" = "$mark" ] && ok=ok
    say "DISK $dev role=$role size=$size before=$before wrote=$mark" \
        "readback=$ok"
done
say READY
i=0
while true; do
    say "COUNTER $i boot_id=$BOOT_ID"
    i=$((i+1))
    sleep 1
done
'''


class GuestError(errors.NovaSioError):
    msg_fmt = 'Guest image: %(reason)s'


def cache_root():
    """Return the harness cache: ``e2e`` in the nova-sio cache."""
    return os.path.join(paths.cache_dir(), 'e2e')


def deb_cache():
    """Return the directory holding downloaded Debian packages."""
    return os.path.join(cache_root(), 'debs')


def _version_key(text):
    return [int(p) if p.isdigit() else p for p in re.split(r'(\d+)', text)]


def find_kernel_source():
    """Return ``('deb', path)`` or ``('installed', release)`` or None.

    A ``linux-image-*-amd64`` package in :func:`deb_cache` wins over an
    installed ``/boot/vmlinuz-<release>`` with ``/lib/modules/<release>``.
    """
    debs = sorted(glob.glob(os.path.join(deb_cache(),
                                         'linux-image-*-amd64_*.deb')),
                  key=_version_key)
    if debs:
        return 'deb', debs[-1]
    for path in sorted(glob.glob('/boot/vmlinuz-*'), key=_version_key,
                       reverse=True):
        release = path[len('/boot/vmlinuz-'):]
        if os.path.isdir('/lib/modules/%s/kernel' % release):
            return 'installed', release
    return None


def _run(reason, argv, **kwargs):
    proc = subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, **kwargs)
    if proc.returncode:
        raise GuestError(reason='%s: %s failed (%d): %s' % (
            reason, ' '.join(argv), proc.returncode,
            proc.stderr.decode(errors='replace').strip()))
    return proc.stdout


def kernel_tree(source=None):
    """Return ``(release, vmlinuz path, modules dir)`` of the guest kernel.

    A package is unpacked (kernel and virtio modules only) once into
    the cache.

    :param source: a :func:`find_kernel_source` result (default: found).
    """
    source = source or find_kernel_source()
    if source is None:
        raise GuestError(reason='no guest kernel: run tools/e2e-setup.sh')
    kind, value = source
    if kind == 'installed':
        return (value, '/boot/vmlinuz-%s' % value,
                '/lib/modules/%s/kernel' % value)
    name = os.path.basename(value)[:-len('.deb')]
    target = os.path.join(cache_root(), 'kernels', name)
    if not os.path.isdir(target):
        scratch = tempfile.mkdtemp(prefix='.unpack-',
                                   dir=os.path.dirname(target)
                                   if os.path.isdir(os.path.dirname(target))
                                   else _mkdirs(os.path.dirname(target)))
        try:
            tar = _run('unpacking %s' % value,
                       ['dpkg-deb', '--fsys-tarfile', value])
            _run('unpacking %s' % value,
                 ['tar', '-x', '--wildcards', '-C', scratch,
                  './boot/vmlinuz-*', './boot/config-*',
                  './lib/modules/*/kernel/drivers/virtio/*',
                  './lib/modules/*/kernel/drivers/block/virtio_blk.ko*'],
                 input=tar)
            os.rename(scratch, target)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    vmlinuz = glob.glob(os.path.join(target, 'boot', 'vmlinuz-*'))
    if not vmlinuz:
        raise GuestError(reason='%s holds no kernel' % value)
    release = os.path.basename(vmlinuz[0])[len('vmlinuz-'):]
    return (release, vmlinuz[0],
            os.path.join(target, 'lib', 'modules', release, 'kernel'))


def _mkdirs(path):
    os.makedirs(path, exist_ok=True)
    return path


def _modinfo(path):
    """Return ``(name, [dependencies])`` from a module's ``.modinfo``."""
    with open(path, 'rb') as handle:
        data = handle.read()
    fields = {}
    for key in (b'name', b'depends'):
        match = re.search(b'(?:^|\\x00)' + key + b'=([^\\x00]*)\\x00', data)
        if match:
            fields[key] = match.group(1).decode()
    name = fields.get(b'name') or os.path.basename(path).split('.ko')[0]
    deps = [d for d in fields.get(b'depends', '').split(',') if d]
    return name.replace('-', '_'), [d.replace('-', '_') for d in deps]


def module_order(modules_dir, wanted=WANTED_MODULES):
    """Return the module files to load, dependencies first.

    A module the kernel builds in (no ``.ko`` file, ``=y`` in its config)
    is simply absent from the result.

    :param modules_dir: the ``lib/modules/<release>/kernel`` directory.
    :param wanted: module names.
    """
    index = {}
    for path in glob.glob(os.path.join(modules_dir, '**', '*.ko'),
                          recursive=True):
        name, deps = _modinfo(path)
        index[name] = (path, deps)
    order, seen = [], set()

    def visit(name):
        if name in seen:
            return
        seen.add(name)
        if name not in index:
            return  # built in
        for dep in index[name][1]:
            visit(dep)
        order.append(index[name][0])
    for name in wanted:
        visit(name)
    return order


class Guest(object):
    """The files of a built guest.

    :param directory: where they are.
    :param info: the build description (``guest.json``).
    """

    def __init__(self, directory, info):
        self.directory = directory
        self.info = info
        self.kernel = os.path.join(directory, 'vmlinuz')
        self.initrd = os.path.join(directory, 'initrd.img')
        self.root_image = os.path.join(directory, 'root.img')

    def describe(self):
        return dict(self.info, directory=self.directory, kernel=self.kernel,
                    initrd=self.initrd, root_image=self.root_image)


def build(output, disks=DEFAULT_DISKS, image_id='nova-sio-guest'):
    """Build (or reuse) the guest in directory ``output``.

    :param output: directory for ``vmlinuz``, ``initrd.img``,
        ``root.img`` and ``guest.json``.
    :param disks: default disk roles, ``dev:role,...``.
    :param image_id: text of the root image marker.
    :returns: a :class:`Guest`.
    """
    busybox = machine.find_busybox()
    if busybox is None:
        raise GuestError(reason='no static busybox (Debian package '
                         'busybox-static): run tools/e2e-setup.sh')
    for tool in ('cpio', 'dpkg-deb', 'tar'):
        if shutil.which(tool) is None:
            raise GuestError(reason='%s is not installed' % tool)
    release, vmlinuz, modules_dir = kernel_tree()
    init = _INIT % {'disks': disks,
                    'root_sector': ROOT_MARKER_OFFSET // 512,
                    'data_sector': MARKER_OFFSET // 512}
    modules = module_order(modules_dir)
    digest = hashlib.sha256(init.encode() + release.encode()).hexdigest()
    info = {'release': release, 'modules': [
        os.path.basename(m)[:-3] for m in modules], 'digest': digest,
        'root_marker': '%s:%s' % (ROOT_MARKER, image_id),
        'disks': disks}
    os.makedirs(output, exist_ok=True)
    guest = Guest(output, info)
    stamp = os.path.join(output, 'guest.json')
    try:
        with open(stamp) as handle:
            if json.load(handle) == info and all(os.path.exists(p) for p in (
                    guest.kernel, guest.initrd, guest.root_image)):
                return guest
    except (OSError, ValueError):
        pass
    shutil.copyfile(vmlinuz, guest.kernel)
    _make_initrd(guest.initrd, busybox, init, modules)
    make_disk(guest.root_image, ROOT_IMAGE_SIZE,
              {ROOT_MARKER_OFFSET: info['root_marker']})
    with open(stamp, 'w') as handle:
        json.dump(info, handle, sort_keys=True, indent=1)
    return guest


def _make_initrd(path, busybox, init, modules):
    tree = tempfile.mkdtemp(prefix='.initrd-', dir=os.path.dirname(path))
    try:
        for sub in ('bin', 'dev', 'proc', 'sys', 'lib/modules'):
            os.makedirs(os.path.join(tree, sub))
        shutil.copy2(busybox, os.path.join(tree, 'bin', 'busybox'))
        with open(os.path.join(tree, 'init'), 'w') as handle:
            handle.write(init)
        os.chmod(os.path.join(tree, 'init'), 0o755)
        names = []
        for module in modules:
            name = os.path.basename(module)[:-3]
            shutil.copyfile(module, os.path.join(tree, 'lib', 'modules',
                                                 name + '.ko'))
            names.append(name)
        with open(os.path.join(tree, 'modules.order'), 'w') as handle:
            handle.write('\n'.join(names) + '\n')
        listing = subprocess.run(['find', '.'], cwd=tree, check=True,
                                 stdout=subprocess.PIPE).stdout
        archive = _run('packing the initramfs',
                       ['cpio', '--quiet', '-o', '-H', 'newc', '-R',
                        '0:0'], cwd=tree, input=listing)
        with gzip.open(path + '.tmp', 'wb', compresslevel=6) as handle:
            handle.write(archive)
        os.rename(path + '.tmp', path)
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def make_disk(path, size, markers=None):
    """Make a sparse raw disk of ``size`` bytes with text markers.

    :param path: file to create.
    :param size: size in bytes.
    :param markers: ``{offset: text}`` written as padded 512-byte sectors.
    """
    with open(path, 'wb') as handle:
        handle.truncate(size)
        for offset, text in sorted((markers or {}).items()):
            handle.seek(offset)
            handle.write(text.encode().ljust(511) + b'\n')


def read_marker(path, offset=MARKER_OFFSET):
    """Return the marker word in the sector at ``offset`` of ``path``.

    :param path: a disk image or block device.
    :param offset: byte offset.
    """
    with open(path, 'rb') as handle:
        handle.seek(offset)
        data = handle.read(512)
    text = re.sub(rb'[^A-Za-z0-9:._\n-]', b' ', data).decode()
    words = text.split('\n', 1)[0].split()
    return words[0] if words else None


_LINE = re.compile(r'NOVA-SIO-GUEST (\S+)(.*)$')


def parse_console(text):
    """Return what the guest reported on its console.

    :param text: the serial console log.
    :returns: dict with ``booted`` (dict or None), ``root_image``,
        ``disks`` (dev -> fields), ``swap`` (dev -> fields), ``ready``,
        ``counters`` (list of ``(n, boot_id)``), ``errors`` (lines
        about missing disks or modules).
    """
    result = {'booted': None, 'root_image': None, 'disks': {}, 'swap': {},
              'ready': False, 'counters': [], 'errors': []}
    for line in text.splitlines():
        match = _LINE.search(line.strip())
        if not match:
            continue
        kind, rest = match.group(1), match.group(2).split()
        fields = dict(p.split('=', 1) for p in rest if '=' in p)
        if kind == 'BOOTED':
            result['booted'] = fields
        elif kind == 'ROOT-IMAGE':
            result['root_image'] = rest[0] if rest else None
        elif kind == 'DISK':
            if 'missing' in rest or 'readback' not in fields:
                result['errors'].append(line.strip())
            result['disks'][rest[0]] = fields
        elif kind == 'SWAP':
            result['swap'][rest[0]] = fields
        elif kind == 'MODULE':
            result['errors'].append(line.strip())
        elif kind == 'READY':
            result['ready'] = True
        elif kind == 'COUNTER':
            result['counters'].append((int(rest[0]), fields.get('boot_id')))
    return result


def qemu_argv(guest, disks, serial_log, memory_mb=256, cmdline_extra=''):
    """Return the QEMU command line that boots ``guest`` under TCG.

    :param guest: a :class:`Guest`.
    :param disks: raw disk paths (files or block devices), in order.
    :param serial_log: file receiving the serial console.
    :param memory_mb: guest memory.
    :param cmdline_extra: more kernel arguments.
    """
    argv = ['qemu-system-x86_64', '-accel', 'tcg', '-m', str(memory_mb),
            '-nodefaults', '-display', 'none', '-no-reboot',
            '-kernel', guest.kernel, '-initrd', guest.initrd,
            '-append', ('console=ttyS0 panic=-1 loglevel=3 ' +
                        cmdline_extra).strip(),
            '-serial', 'file:%s' % serial_log]
    for index, disk in enumerate(disks):
        argv += ['-drive', 'file=%s,format=raw,if=virtio,cache=none,'
                 'aio=threads,index=%d' % (disk, index)]
    return argv


def wait_console(path, predicate, timeout, proc=None):
    """Poll a console log until ``predicate(parse_console(text))``.

    :param path: the serial log.
    :param predicate: callable on the parsed console.
    :param timeout: seconds.
    :param proc: the QEMU process; a death stops the wait.
    :returns: ``(parsed, text)`` of the last read.
    :raises GuestError: on timeout or when QEMU exited.
    """
    deadline = time.monotonic() + timeout
    text = ''
    while True:
        try:
            with open(path, errors='replace') as handle:
                text = handle.read()
        except FileNotFoundError:
            text = ''
        parsed = parse_console(text)
        if predicate(parsed):
            return parsed, text
        if proc is not None and proc.poll() is not None:
            raise GuestError(reason='QEMU exited with %s; console:\n%s' % (
                proc.returncode, text[-3000:]))
        if time.monotonic() > deadline:
            raise GuestError(reason='timed out after %ss; console:\n%s' % (
                timeout, text[-3000:]))
        time.sleep(0.2)
