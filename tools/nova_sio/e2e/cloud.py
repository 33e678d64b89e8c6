# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The whole cloud of one run, assembled in order and torn down on exit.

:meth:`Cloud.build`:

1. installs the control plane (Debian packages, the venv of the Nova
   release under test patched with ``nova-sio install``) and builds the
   guest: both need the machine's network, so they come first;
2. makes the network namespaces (``ctl``, ``h1``, ``h2``) and moves this
   process into ``ctl``, so that every service it starts and every API
   call it makes uses the cloud's own addresses;
3. starts the gateway emulator (block devices, HTTPS; its scratch XFS
   must exist before the hosts' mount namespaces do), both compute
   hosts' libvirt (concurrently), the control-plane services, then a
   ``nova-compute`` inside each host's namespaces with that host's
   ``[scaleio]`` options, maps the hosts into the cell, waits until both
   computes are up, and uploads the guest to Glance (kernel, ramdisk and
   root image).

:meth:`Cloud.close` stops everything in the reverse order and releases
the ledger; it runs on any exit of :func:`run_cloud` (an exception,
Ctrl-C, SIGTERM), and the ledger lets ``python -m nova_sio.e2e sweep``
release what a killed run left.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

from nova_sio.e2e import backends
from nova_sio.e2e import cleanup
from nova_sio.e2e import guest as guest_mod
from nova_sio.e2e import novaconf
from nova_sio.e2e import report as report_mod
from nova_sio.e2e import scenario as scenario_mod
from nova_sio import errors

HOSTS = (('h1', '10.251.0.11'), ('h2', '10.251.0.12'))
CTL_ADDRESS = '10.251.0.1'
#: The guest's kernel command line: serial console, and which disk is
#: which (read by its /init).
COMMAND_LINE = ('console=ttyS0 panic=-1 loglevel=3 nova_sio.disks=%s' %
                guest_mod.DEFAULT_DISKS)
COMPUTE_TIMEOUT = 300
#: The instances directory of every host, inside its mount namespace (the
#: host's own ``/var/lib/libvirt`` is bound there): the same path on every
#: host, as in a real cloud. Nova keeps the source's console log path in
#: the domain it live-migrates, so with a per-host path the destination's
#: guest would write its console into the source's directory, which the
#: source removes once the migration is over.
INSTANCES_PATH = '/var/lib/libvirt/nova-instances'
#: Added to each host's nova.conf. Nova fetches the instance's kernel
#: without inspection when it boots a guest, but with its deep format
#: inspection on the destination of a live migration, which refuses a
#: Linux bzImage: its legacy boot sector ends in the 0x55AA signature
#: and is read as a master boot record with an invalid boot flag
#: ("Safety check mbr on gpt failed"). The guest is booted from a
#: kernel and a ramdisk, so the inspection is turned off on the hosts.
#: Nova's cold migration and resize reach the destination host with
#: ``ssh`` (make the instance directory) and copy the instance's files
#: (kernel, ramdisk, disk.info) with rsync over ``ssh``.
WORKAROUNDS = """
[workarounds]
disable_deep_image_inspection = True
"""
#: ``[libvirt]`` options of every compute host, whatever the backend.
LIBVIRT_OPTIONS = {'remote_filesystem_transport': 'rsync'}
#: The ``ssh`` of the compute hosts: operators let their compute hosts
#: reach each other over SSH; here each host runs the command inside the
#: other host's namespaces instead (no SSH server is started).
SSH_WRAPPER = """#!/bin/sh
# ssh [OPTIONS] HOST COMMAND between the compute hosts of the nova-sio
# end-to-end cloud: runs COMMAND inside HOST's namespaces.
while [ $# -gt 0 ]; do
    case "$1" in
        -[bcDEeFIiJLlmOopQRSWw]) shift 2 ;;
        -*) shift ;;
        *) break ;;
    esac
done
host=${1#*@}
shift
case "$host" in
%(cases)s
    *) echo "ssh: connect to host $host port 22: not a host of this cloud" >&2
       exit 255 ;;
esac
exec nsenter -t "$pid" -n -m -u -- sh -c "$*"
"""


class CloudError(errors.NovaSioError):
    msg_fmt = 'Building the cloud: %(reason)s'


def tail(path, lines=40, pattern=None):
    """Return the last ``lines`` lines of a log (matching ``pattern``).

    :param path: the log file.
    :param lines: how many.
    :param pattern: a callable selecting lines, or None for all.
    """
    try:
        with open(path, errors='replace') as handle:
            text = handle.read().splitlines()
    except OSError as exc:
        return ['(cannot read %s: %s)' % (path, exc)]
    if pattern is not None:
        text = [ln for ln in text if pattern(ln)]
    return text[-lines:]


class Cloud(object):
    """Network, gateway, hosts, control plane and computes of one run.

    :param version: the Nova release under test.
    :param workdir: the run's directory (made world-readable: QEMU run
        by libvirt reads the guest's kernel and ramdisk below it).
    :param ledger: the run's :class:`~nova_sio.e2e.cleanup.Ledger`.
    :param progress: callable receiving progress lines.
    :param run_id: short id in the namespace names (default: random).
    :param neutron: ``server`` (a real neutron-server) or ``stub`` (the
        stand-in); None: the control plane's default.
    :param compute_path: a directory put first on the Python path of
        every ``nova-compute`` (a modified copy of Nova's package, to
        prove that a check fails when the backend misbehaves), or None.
    :param images_type: Nova's ``[libvirt] images_type`` of the hosts
        (see :mod:`~nova_sio.e2e.backends`; default ``sio``).
    :param zero_copy: ``[scaleio] zero_copy_boot`` (sio only).
    :param local_disk: give the instances directory of every host a disk
        of its own also for sio (the local backends always have one).
    """

    def __init__(self, version, workdir, ledger, progress=print,
                 run_id=None, neutron=None, compute_path=None,
                 images_type='sio', zero_copy=False, local_disk=False):
        backends.check(images_type, zero_copy)
        self.images_type = images_type
        self.zero_copy = zero_copy
        self.local_disk = local_disk
        #: host -> :class:`~nova_sio.e2e.backends.LocalStorage`
        self.storage = {}
        self.version = version
        self.workdir = workdir
        self.ledger = ledger
        self.progress = progress
        self.run_id = run_id or uuid.uuid4().hex[:6]
        self.neutron = neutron
        self.compute_path = compute_path
        self.bin_dir = None
        self.network = None
        self.hosts = {}
        self.gateway = None
        self.controlplane = None
        self.guest = None
        self.conn = None
        self.images = {}
        self.computes = {}           # host -> (Popen, ledger record)
        self.compute_logs = {}
        self.compute_confs = {}
        self.timings = {}
        #: Called once this process is in the ctl namespace (threads may
        #: start from then on).
        self.on_ctl = None
        #: A distribution (``bookworm``) whose own OpenStack packages run
        #: the cloud (:mod:`~nova_sio.e2e.packaged`), or None for the
        #: venv of the release.
        self.distro = None

    def say(self, text):
        self.progress('e2e: %s' % text)

    # -- building ----------------------------------------------------------

    def build(self):
        """Build the cloud (see the module docstring); return self."""
        from nova_sio.e2e import controlplane
        from nova_sio.e2e import gateway as gateway_mod
        from nova_sio.e2e import hosts as hosts_mod
        from nova_sio.e2e import netns
        started = time.monotonic()
        kwargs = {'neutron': self.neutron} if self.neutron else {}
        if self.distro:
            from nova_sio.e2e import packaged
            self.controlplane = packaged.PackagedControlPlane(
                os.path.join(self.workdir, 'ctl'), self.version, CTL_ADDRESS,
                self.ledger, progress=self.progress, distro=self.distro,
                **kwargs)
        else:
            self.controlplane = controlplane.ControlPlane(
                os.path.join(self.workdir, 'ctl'), self.version,
                CTL_ADDRESS, self.ledger, progress=self.progress, **kwargs)
        self.say('installing the control plane of nova %s' % self.version)
        self.controlplane.install()
        self.timings['install'] = time.monotonic() - started
        self.say('building the guest')
        self.guest = guest_mod.build(os.path.join(guest_mod.cache_root(),
                                                  'guest'))
        mark = time.monotonic()
        self.say('making the network namespaces (run %s)' % self.run_id)
        self.network = netns.CloudNetwork(self.ledger, self.run_id,
                                          CTL_ADDRESS).create()
        for name, address in HOSTS:
            self.network.add_host(name, address)
        self.network.enter_ctl()
        if self.on_ctl is not None:
            self.on_ctl()
        # The gateway first: its scratch XFS must be mounted before the
        # hosts' mount namespaces are made (they do not receive later
        # mounts), since each host's drv_cfg --rescan resizes the loop
        # device over a volume's file there.
        self.say('starting the gateway emulator (block devices, HTTPS)')
        self.gateway = gateway_mod.Gateway(
            os.path.join(self.workdir, 'gateway'), self.ledger,
            hosts=tuple(n for n, _a in HOSTS), address=CTL_ADDRESS)
        self.gateway.start()
        self.say('starting libvirt on %s' % ', '.join(n for n, _a in HOSTS))
        hosts = [hosts_mod.ComputeHost(name, address,
                                       os.path.join(self.workdir, name),
                                       self.ledger, self.network)
                 for name, address in HOSTS]
        for host in hosts:
            self.hosts[host.name] = host
        hosts_mod.start_all(hosts)
        self.write_ssh()
        for host in hosts:
            # Every host sees its SDC's devices under the same path, as
            # Nova's live migration needs.
            host.attach_sdc(self.gateway)
        self.attach_storage()
        self.say('starting the control plane')
        self.controlplane.start()
        for host in hosts:
            self.write_compute_conf(host.name)
            self.start_compute(host.name)
        self.say('waiting for both nova-compute services')
        self.connect()
        for host in hosts:
            self.wait_compute_up(host.name)
        self.wait_hypervisors()
        self.say('uploading the guest to Glance')
        self.upload_guest()
        self.timings['start'] = time.monotonic() - mark
        return self

    def attach_storage(self):
        """Give every host the local disk its backend needs (see
        :class:`~nova_sio.e2e.backends.LocalStorage`), if any.
        """
        if self.images_type not in backends.LOCAL_BACKENDS and \
                not self.local_disk:
            return
        self.say('making the %s storage of %s' % (
            self.images_type, ', '.join(sorted(self.hosts))))
        for name, host in sorted(self.hosts.items()):
            storage = backends.LocalStorage(
                host, self.ledger, self.images_type, INSTANCES_PATH,
                volume_group=backends.volume_group_name(self.run_id, name))
            self.storage[name] = storage
            storage.start()

    def release_storage(self):
        """Release every host's local disk; return the problems met."""
        problems = []
        for name in sorted(self.storage):
            problems += self.storage.pop(name).stop()
        return problems

    def write_compute_conf(self, host):
        """Write the nova.conf of ``host`` for the cloud's backend;
        return its path.

        :param host: host name.
        """
        node = self.hosts[host]
        scaleio = dict(self.gateway.scaleio_options(host))
        scaleio.update(backends.scaleio_options(self.images_type,
                                                self.zero_copy))
        conf = self.controlplane.compute_conf(
            host, node.address, scaleio, os.path.join(node.workdir, 'nova'))
        with open(conf) as handle:
            text = handle.read()
        libvirt = dict(LIBVIRT_OPTIONS)
        libvirt.update(backends.libvirt_options(
            self.images_type, backends.volume_group_name(self.run_id, host)))
        text = novaconf.set_options(text, 'libvirt', libvirt)
        text, count = re.subn(r'^instances_path = .*$',
                              'instances_path = %s' % INSTANCES_PATH,
                              text, flags=re.M)
        if count != 1:
            raise CloudError(reason='%s sets instances_path %d times'
                             % (conf, count))
        with open(conf, 'w') as handle:
            handle.write(text + WORKAROUNDS)
        self.compute_confs[host] = conf
        made = node.run(['mkdir', '-p', INSTANCES_PATH])
        if made.returncode:
            raise CloudError(reason='%s: mkdir %s: %s' % (
                host, INSTANCES_PATH, made.stdout.strip()))
        return conf

    def write_ssh(self):
        """Write the hosts' ``ssh`` (:data:`SSH_WRAPPER`) into the run's
        ``bin`` directory; return that directory.
        """
        directory = os.path.join(self.workdir, 'bin')
        os.makedirs(directory, exist_ok=True)
        cases = '\n'.join('    %s|%s) pid=%d ;;' % (
            host.address, name, host.holder.pid)
            for name, host in sorted(self.hosts.items()))
        path = os.path.join(directory, 'ssh')
        with open(path, 'w') as handle:
            handle.write(SSH_WRAPPER % {'cases': cases})
        os.chmod(path, 0o755)
        os.chmod(directory, 0o755)
        self.bin_dir = directory
        return directory

    def connect(self):
        """Open the openstacksdk connection (admin)."""
        import openstack
        if self.conn is None:
            self.conn = openstack.connect(**self.controlplane.auth)
        return self.conn

    def start_compute(self, host):
        """Start (or restart) the ``nova-compute`` of ``host``.

        :param host: host name.
        """
        node = self.hosts[host]
        log = os.path.join(node.workdir, 'logs', 'nova-compute.log')
        os.makedirs(os.path.dirname(log), exist_ok=True)
        self.compute_logs[host] = log
        env = dict((k, v) for k, v in os.environ.items()
                   if k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV'))
        env['PATH'] = os.pathsep.join([
            self.bin_dir,
            os.path.dirname(self.controlplane.bin('nova-compute')),
            '/usr/sbin', '/usr/bin', '/sbin', '/bin'])
        if self.compute_path:
            env['PYTHONPATH'] = self.compute_path
        proc = node.popen(self.controlplane.nova_compute_argv(
            self.compute_confs[host]), log, env=env)
        record = self.ledger.hold('process', pid=proc.pid)
        self.computes[host] = (proc, record)
        return proc

    def stop_compute(self, host, sig=signal.SIGKILL, grace=10):
        """Kill the ``nova-compute`` of ``host`` (a crash by default).

        :param host: host name.
        :param sig: the signal.
        :param grace: seconds to wait before SIGKILL.
        """
        proc, record = self.computes.pop(host)
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.ledger.forget(record)

    def wait_compute_up(self, host, timeout=COMPUTE_TIMEOUT):
        """Wait until ``host``'s nova-compute reports up and enabled.

        :param host: host name.
        :param timeout: seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            proc = self.computes[host][0]
            if proc.poll() is not None:
                raise CloudError(reason='nova-compute of %s exited with %s:'
                                 '\n%s' % (host, proc.returncode, '\n'.join(
                                     tail(self.compute_logs[host], 20))))
            found = [s for s in self.conn.compute.services(
                binary='nova-compute', host=host)]
            if found and found[0].state == 'up' and \
                    found[0].status == 'enabled' and \
                    not getattr(found[0], 'is_forced_down', False):
                return found[0]
            if time.monotonic() > deadline:
                raise CloudError(reason='nova-compute of %s is not up after '
                                 '%d s:\n%s' % (host, timeout, '\n'.join(
                                     tail(self.compute_logs[host], 20))))
            time.sleep(2)

    def wait_hypervisors(self, timeout=COMPUTE_TIMEOUT):
        """Map the hosts into the cell once each has its resource
        provider in placement; wait until both are hypervisors.
        """
        deadline = time.monotonic() + timeout
        want = set(self.hosts)
        discovered = 0
        while True:
            providers = set(p.name.split('.')[0] for p in
                            self.conn.placement.resource_providers())
            if want <= providers and time.monotonic() > discovered + 10:
                # The compute nodes exist: map them (again if the last
                # pass ran before one of them was there).
                self.controlplane.discover_hosts()
                discovered = time.monotonic()
            found = set()
            for hyp in self.conn.compute.hypervisors(details=True):
                found.add((hyp.name or '').split('.')[0])
            if want <= found and want <= providers:
                return
            if time.monotonic() > deadline:
                raise CloudError(reason='hypervisors %s, resource providers '
                                 '%s after %d s; expected %s' % (
                                     sorted(found), sorted(providers),
                                     timeout, sorted(want)))
            time.sleep(2)

    def upload_guest(self):
        """Upload the guest's kernel (aki), ramdisk (ari) and root image
        (raw, booting that kernel with :data:`COMMAND_LINE`).
        """
        image = self.conn.image
        kernel = image.create_image(
            name='nsio-e2e-kernel', filename=self.guest.kernel,
            disk_format='aki', container_format='aki', visibility='public',
            wait=True)
        ramdisk = image.create_image(
            name='nsio-e2e-ramdisk', filename=self.guest.initrd,
            disk_format='ari', container_format='ari', visibility='public',
            wait=True)
        root = image.create_image(
            name='nsio-e2e-root', filename=self.guest.root_image,
            disk_format='raw', container_format='bare', visibility='public',
            kernel_id=kernel.id, ramdisk_id=ramdisk.id,
            os_command_line=COMMAND_LINE,
            # The busybox guest ignores ACPI power-off: destroy at once
            # instead of waiting for it.
            os_shutdown_timeout=0, wait=True)
        self.images = {'kernel': kernel.id, 'ramdisk': ramdisk.id,
                       'root': root.id}
        return self.images

    # -- looking from outside -----------------------------------------------

    def observe(self):
        """Return a :class:`~nova_sio.e2e.scenario.Observation`."""
        audit = dict(self.gateway.audit())
        storage = self.gateway.admin('GET', 'storage')
        audit['unmapped_in_use'] = storage.get('unmapped_in_use')
        audit['stray_devices'] = self.gateway.admin(
            'POST', 'audit', {}).get('stray_devices')
        volumes, mappings, extra = normalize_audit(audit)
        # The kernel's view: every loop device over a volume's file.
        loops = sorted(cleanup.loops_backed_under(
            self.gateway.info['storage_dir']))
        held = sorted((storage.get('loop_devices') or {}).values())
        if held != loops:
            extra['loop devices'] = [
                'the gateway holds %s, the kernel has %s over its volumes'
                % (' '.join(held) or '-', ' '.join(loops) or '-')]
        domains = dict((name, host.domains())
                       for name, host in self.hosts.items())
        return scenario_mod.Observation(volumes, mappings, loops, domains,
                                        extra)

    def device_path(self, host, volume_id):
        """Return the block device of ``volume_id`` mapped on ``host``, or
        None when its link is not there.

        :param host: host name.
        :param volume_id: the volume id.
        """
        link = self.gateway.device_link(host, volume_id)
        if not os.path.lexists(link):
            return None
        return os.path.realpath(link)

    def root_pids(self):
        """Return the pids whose process trees make up the cloud."""
        pids = set(r['pid'] for r in self.ledger.held()
                   if r['kind'] == 'process')
        for host in self.hosts.values():
            try:
                pids.update(host.pids())
            except Exception:  # a host being stopped
                pass
        return pids

    def failure_logs(self, lines=25):
        """Return ``{host: lines}``: the errors and warnings at the end of
        each host's nova-compute log.
        """
        wanted = (' ERROR ', ' WARNING ', 'Traceback', 'Error: ')
        noise = ('privsep log:', 'stevedore.extension')
        result = {}
        for host, path in sorted(self.compute_logs.items()):
            result[host] = tail(path, lines, lambda ln: any(
                w in ln for w in wanted) and not any(
                    n in ln for n in noise)) or tail(path, 10)
        return result

    def keep_logs(self, target):
        """Copy every log of the run to ``target``.

        :param target: directory (made when missing).
        """
        os.makedirs(target, exist_ok=True)
        for top, _dirs, files in os.walk(self.workdir):
            for name in files:
                if not (name.endswith('.log') or name == 'console.log'):
                    continue
                source = os.path.join(top, name)
                rel = os.path.relpath(source, self.workdir)
                dest = os.path.join(target, rel)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                try:
                    shutil.copyfile(source, dest)
                except OSError:
                    pass

    # -- tearing down -------------------------------------------------------

    def close(self):
        """Stop everything, newest first; return the problems met."""
        problems = []

        def attempt(what, func, *args):
            try:
                func(*args)
            except Exception as exc:
                problems.append('%s: %s' % (what, getattr(
                    exc, 'message', None) or exc))
        for host in list(self.computes):
            attempt('stopping nova-compute of %s' % host,
                    self.stop_compute, host, signal.SIGTERM)
        for name, host in sorted(self.hosts.items()):
            attempt('stopping host %s' % name, host.stop)
        # The hosts' mount namespaces (and their mounts) are gone now.
        problems += self.release_storage()
        if self.gateway is not None:
            attempt('stopping the gateway', self.gateway.stop)
        if self.controlplane is not None:
            left = []
            attempt('stopping the control plane',
                    lambda: left.extend(self.controlplane.stop() or ()))
            deadline = time.monotonic() + 10
            while left and time.monotonic() < deadline:
                # Processes being killed right now (a signal's release).
                time.sleep(0.5)
                left = [p for p in left if os.path.exists('/proc/%d' % p)]
            if left:
                problems.append('control-plane processes still alive: %s'
                                % ' '.join(map(str, left)))
            # A distribution's Nova goes back to its package's files.
            restore = getattr(self.controlplane, 'restore', None)
            if restore is not None:
                attempt('reverting nova-sio from the packaged Nova', restore)
        if self.network is not None:
            attempt('removing the network', self.network.destroy)
        return problems


def normalize_audit(audit):
    """Return ``(volumes, mappings, extra)`` from the gateway's audit.

    :param audit: what ``Gateway.audit()`` returned: either the contract's
        ``{'volumes': [...], 'mappings': {volume: [host...]}}`` or the
        emulator's own ``{'leaked_volumes', 'stray_mappings',
        'stray_devices'}`` (every volume is "leaked" for a gateway with
        no baseline).
    :returns: ``{id: {'name', 'size_kb'}}``, ``{id: set(hosts)}`` and
        ``{finding: [texts]}`` of what must not exist at all.
    """
    volumes, mappings, extra = {}, {}, {}
    for vol in audit.get('volumes', audit.get('leaked_volumes', ())):
        volumes[vol['id']] = {'name': vol.get('name'),
                              'size_kb': vol.get('sizeInKb',
                                                 vol.get('size_kb'))}
    raw = audit.get('mappings')
    if isinstance(raw, dict):
        for vol_id, hosts in raw.items():
            if hosts:
                mappings[vol_id] = set(hosts)
    for item in audit.get('stray_mappings', ()):
        mappings.setdefault(item['volumeId'], set()).add(
            item.get('host') or item.get('sdcId'))
    for key in ('stray_devices', 'unmapped_in_use'):
        if audit.get(key):
            extra[key] = [str(x) for x in audit[key]]
    return volumes, mappings, extra


def make_workdir(ledger, parent='/var/tmp'):
    """Make the run's directory (0755), recorded in the ledger.

    :param ledger: the run's ledger.
    :param parent: where to make it.
    """
    path = tempfile.mkdtemp(prefix='nova-sio-e2e-', dir=parent)
    os.chmod(path, 0o755)
    ledger.hold('dir', path=path)
    return path


def run_cloud(version, steps, progress=print, keep_logs=None, json_path=None,
              ledger=None, slice_name=None, neutron=None,
              compute_path=None, images_type='sio', zero_copy=False,
              distro=None):
    """Build the cloud, run ``steps``, tear it all down; return the report.

    :param version: the Nova release under test.
    :param steps: step names (see :mod:`~nova_sio.e2e.scenario`).
    :param progress: callable receiving progress lines.
    :param keep_logs: directory receiving every log, or None.
    :param json_path: file receiving the JSON result, or None.
    :param ledger: the ledger (default: a new one, with exit handlers).
    :param slice_name: the slice's name, for the title.
    :param neutron: ``server``, ``stub`` or None (see :class:`Cloud`).
    :param compute_path: see :class:`Cloud`.
    :param images_type: see :class:`Cloud`.
    :param zero_copy: see :class:`Cloud`.
    :param distro: run the OpenStack packages of this distribution
        (``bookworm``, see :mod:`~nova_sio.e2e.packaged`), or None.
    """
    backends.check(images_type, zero_copy)
    if ledger is None:
        ledger = cleanup.Ledger()
        ledger.install_handlers()
    backend = backends.label(images_type, zero_copy)
    report = report_mod.Report('nova %s, %s slice%s%s' % (
        version, slice_name or 'custom',
        ', images_type %s' % backend if backend != 'sio' else '',
        ', nova-compute from %s' % compute_path if compute_path else ''))
    if distro:
        # The distribution's packages, not an era's venv.
        from nova_sio.e2e import packaged
        report.title += ', %s packages' % distro
        report.figure('packages', packaged.describe(distro))
    else:
        from nova_sio.e2e import eras
        report.figure('era', eras.summary(version))
    workdir = make_workdir(ledger)
    cloud = Cloud(version, workdir, ledger, progress=progress,
                  neutron=neutron, compute_path=compute_path,
                  images_type=images_type, zero_copy=zero_copy)
    cloud.distro = distro
    sampler = report_mod.MemorySampler(cloud.root_pids)
    # Threads only once this process is in the ctl namespace.
    cloud.on_ctl = sampler.start
    report.interrupted = None
    try:
        try:
            with report.step('set-up') as step:
                cloud.build()
                step.note('timings: %s' % ', '.join(
                    '%s %.1f s' % kv for kv in cloud.timings.items()))
            report.timing('set-up', step.seconds)
            if step.status == report_mod.PASSED:
                scenario_mod.Scenario(cloud, report, progress).run(steps)
            else:
                for name in steps:
                    report.not_run(name, 'the cloud could not be built')
        except (KeyboardInterrupt, SystemExit) as exc:
            # Ctrl-C or SIGTERM: the ledger released what it held; tear
            # down the rest and report what ran.
            report.interrupted = exc
            done = set(s.name for s in report.steps)
            for name in steps:
                if name not in done:
                    report.not_run(name, 'interrupted')
    finally:
        sampler.sample()
        peak = sampler.stop()
        failed_hosts = {}
        if not report.ok:
            failed_hosts = cloud.failure_logs()
            for failed in report.failed_steps():
                for path in re.findall(r'(/\S+\.log)\b', failed.detail):
                    failed_hosts[path] = tail(path, 20)
        if keep_logs:
            cloud.keep_logs(keep_logs)
        progress('e2e: tearing the cloud down')
        with report.step('tear-down') as step:
            problems = cloud.close()
            problems += ledger.release_all()
            if problems:
                raise report_mod.StepFailed(reason='; '.join(problems))
        if peak:
            report.figure('peak memory', '%d MiB' % (peak // (1024 * 1024)))
            report.figure('memory samples', sampler.samples)
        report.logs = failed_hosts
        report.kept_logs = keep_logs
        if json_path:
            report.write_json(json_path)
    return report
