# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The steps of the real-cloud scenario, each checked from outside.

Every step drives Nova through its public API (openstacksdk) and then
looks at the cloud from outside Nova:

* the guest's serial console (Nova's ``get_console_output``): the boot
  id, the root image marker, for every disk the data marker the previous
  boot left and the new one written and read back, the swap signature,
  a counter that keeps running;
* the gateway (the emulator's audit over REST): which volumes exist and
  to which host's SDC each one is mapped;
* the loop devices the gateway holds for the mappings;
* libvirt on each host: the domains it has, and which volume backs each
  disk of a domain (its ``emc-vol-<system>-<volume>`` source);
* the data marker on each disk, read from the mapped block device with
  ``O_DIRECT`` (what the guest wrote is on the volume, not in a cache).

After every step :meth:`Scenario.check_cloud` fails the step on any
leaked volume, mapping, loop device or domain, a missing one, or a data
marker that is not the one the guest last wrote. The expected markers
are kept per instance disk (:class:`Tracked`): a move keeps them, a
rebuild starts from fresh disks, a reverted resize restores those of
the boot before the resize.

Slices: :data:`SHORT` (boot, live migration, delete: the default test
command) and :data:`FULL` (every step).
"""

import copy
import mmap
import os
import re
import time
import xml.etree.ElementTree as ElementTree

from nova_sio.e2e import guest as guest_mod
from nova_sio.e2e import novaconf
from nova_sio.e2e.report import StepFailed

GiB = 1024 ** 3
MiB = 1024 ** 2

#: Flavors: root + ephemeral + swap in 8 GiB steps, a larger root for the
#: resizes, and one that breaks the 8 GiB rule.
FLAVOR = {'name': 'nsio-e2e-8', 'ram': 256, 'vcpus': 1, 'disk': 8,
          'ephemeral': 8, 'swap': 8192}
FLAVOR_BIG = {'name': 'nsio-e2e-16', 'ram': 256, 'vcpus': 1, 'disk': 16,
              'ephemeral': 8, 'swap': 8192}
FLAVOR_BAD = {'name': 'nsio-e2e-bad', 'ram': 256, 'vcpus': 1, 'disk': 5,
              'ephemeral': 0, 'swap': 0}

#: The message a flavor that breaks the 8 GiB rule must give.
SIZE_MESSAGE = 'is not a multiple of 8 GiB'

SHORT = ('boot', 'live-migration', 'delete-all')
FULL = ('boot', 'live-migration', 'cold-migration', 'resize-revert',
        'resize-confirm', 'hard-reboot', 'rebuild', 'snapshot', 'rescue',
        'shelve', 'evacuate', 'bad-flavor', 'gateway-away', 'delete-all')
SLICES = {'short': SHORT, 'full': FULL}

#: Steps that need the first server ACTIVE.
NEEDS_SERVER = frozenset(FULL) - {'boot', 'bad-flavor', 'gateway-away',
                                  'delete-all'}

#: Volume names (see ``doc/source/admin`` and the runtime's naming):
#: ``<prefix><uuid in 22 base64url characters>.<code><kind>``.
_NAME_RE = re.compile(r'^(?P<prefix>[A-Za-z0-9]{0,4})'
                      r'(?P<uuid>[A-Za-z0-9_-]{22})\.'
                      r'(?P<code>CX|R|L|S|C|X|E[0-9]{1,2})'
                      r'(?P<kind>[~#]?)$')
_CODES = {'R': 'disk', 'L': 'disk.local', 'S': 'disk.swap',
          'C': 'disk.config', 'X': 'disk.rescue', 'CX': 'disk.config.rescue'}
_KINDS = {'': '', '~': 'snapshot', '#': 'temporary'}
#: Zero-copy base volumes: ``<prefix><hash20>.B<generation>[#]`` (``#``
#: while the image is copied in).
_BASE_RE = re.compile(r'^[A-Za-z0-9]{0,4}[A-Za-z0-9_-]{20}\.B[0-9]+'
                      r'(?P<filling>#?)$')


def is_base_volume(name):
    """Return whether ``name`` is a zero-copy base volume's (filled).

    :param name: a volume name.
    """
    match = _BASE_RE.match(name or '')
    return bool(match) and not match.group('filling')


BOOT_TIMEOUT = 240
ACTION_TIMEOUT = 600
_FRESH = None        # expected marker of a disk that no guest wrote yet


def parse_volume_name(name):
    """Return ``(instance uuid, disk name, kind)`` of an instance volume
    name, or None for any other name.

    :param name: a volume name.
    """
    import base64
    import uuid
    match = _NAME_RE.match(name or '')
    if not match:
        return None
    code = match.group('code')
    disk = _CODES.get(code) or 'disk.eph' + code[1:]
    try:
        raw = base64.urlsafe_b64decode(match.group('uuid') + '==')
        owner = str(uuid.UUID(bytes=raw))
    except (ValueError, TypeError):
        return None
    return owner, disk, _KINDS[match.group('kind')]


def canonical(disk):
    """Return the disk's role name: ``ephemeral`` for the flavor's
    ephemeral disk (``disk.local``, or ``disk.eph0`` when Nova made a
    block device mapping for it), else the disk name itself.

    :param disk: a Nova disk name.
    """
    if disk == 'disk.local' or re.match(r'^disk\.eph[0-9]+$', disk or ''):
        return 'ephemeral'
    return disk


def last_boot(text):
    """Return :func:`guest.parse_console` of the last boot in ``text``.

    :param text: a console log that may hold several boots.
    """
    lines = text.splitlines()
    start = 0
    for index, line in enumerate(lines):
        if 'NOVA-SIO-GUEST BOOTED' in line:
            start = index
    return guest_mod.parse_console('\n'.join(lines[start:]))


def read_device_marker(device, offset=guest_mod.MARKER_OFFSET):
    """Read the marker word at ``offset`` of a block device with O_DIRECT.

    The guest writes through QEMU with ``cache='none'``: a buffered read
    here could return a stale page.

    :param device: block device (or a link to one).
    :param offset: byte offset, a multiple of 4096.
    """
    buf = mmap.mmap(-1, 4096)
    fd = os.open(device, os.O_RDONLY | getattr(os, 'O_DIRECT', 0))
    try:
        os.preadv(fd, [buf], offset)
    finally:
        os.close(fd)
    data = bytes(buf[:512])
    buf.close()
    text = re.sub(rb'[^A-Za-z0-9:._\n-]', b' ', data).decode()
    words = text.split('\n', 1)[0].split()
    return words[0] if words else None


def domain_disks(xml_text):
    """Return ``{target dev: source path}`` of a domain's block disks.

    :param xml_text: ``virsh dumpxml`` output.
    """
    root = ElementTree.fromstring(xml_text)
    found = {}
    for disk in root.findall('./devices/disk'):
        source = disk.find('source')
        target = disk.find('target')
        if source is None or target is None:
            continue
        path = source.get('dev') or source.get('file')
        if path:
            found[target.get('dev')] = path
    return found


def volume_id_of(path):
    """Return the volume id of an ``emc-vol-<system>-<volume>`` path.

    :param path: a device link path.
    """
    name = os.path.basename(path)
    if not name.startswith('emc-vol-'):
        return None
    return name.rsplit('-', 1)[1]


class Tracked(object):
    """What the scenario expects of one server.

    :param server_id: its id.
    :param name: its name.
    :param flavor: the flavor dict it has (sizes).
    """

    def __init__(self, server_id, name, flavor):
        self.id = server_id
        self.name = name
        self.flavor = flavor
        self.marks = {}          # disk name -> marker the guest last wrote
        self.boot_id = None
        self.counter = None      # last counter seen
        self.host = None
        self.instance_name = None
        self.status = None

    def expected_disks(self):
        disks = ['disk']
        if self.flavor.get('ephemeral'):
            disks.append('ephemeral')
        if self.flavor.get('swap'):
            disks.append('disk.swap')
        if self.status == 'RESCUE':
            disks.append('disk.rescue')
        return disks

    def sizes(self):
        return {'disk': self.flavor['disk'] * GiB,
                'ephemeral': self.flavor.get('ephemeral', 0) * GiB,
                'disk.swap': self.flavor.get('swap', 0) * MiB,
                'disk.rescue': None}


class Observation(object):
    """The cloud seen from outside Nova at one moment.

    :param volumes: ``{volume id: {'name', 'size'}}`` from the gateway.
    :param mappings: ``{volume id: set of host names}``.
    :param loops: loop devices the gateway holds.
    :param domains: ``{host: {domain name: state}}``.
    :param extra: other findings of the gateway audit (stray devices,
        volumes unmapped while in use), each a list of texts.
    """

    def __init__(self, volumes, mappings, loops, domains, extra=None):
        self.volumes = volumes
        self.mappings = mappings
        self.loops = loops
        self.domains = domains
        self.extra = extra or {}

    def owned(self):
        """Return ``{volume id: (owner uuid, disk, kind)}``."""
        result = {}
        for vol_id, info in self.volumes.items():
            result[vol_id] = parse_volume_name(info['name'])
        return result

    def describe(self):
        lines = []
        for vol_id, info in sorted(self.volumes.items()):
            lines.append('volume %s %s mapped to %s' % (
                vol_id, info['name'],
                ','.join(sorted(self.mappings.get(vol_id, ()))) or '-'))
        for host, doms in sorted(self.domains.items()):
            lines.append('host %s domains %s' % (host, ', '.join(
                '%s(%s)' % kv for kv in sorted(doms.items())) or '-'))
        lines.append('loop devices %s' % (' '.join(sorted(self.loops))
                                          or '-'))
        return lines


class Scenario(object):
    """Runs the steps of a slice against a cloud.

    :param cloud: a started :class:`~nova_sio.e2e.cloud.Cloud` (or
        anything with the same attributes: ``conn``, ``hosts``,
        ``gateway``, ``images``, ``guest``, ``observe()``,
        ``stop_compute(host)``, ``start_compute(host)``).
    :param report: the :class:`~nova_sio.e2e.report.Report`.
    :param progress: callable receiving progress lines.
    """

    def __init__(self, cloud, report, progress=print):
        self.cloud = cloud
        self.conn = cloud.conn
        self.report = report
        self.progress = progress
        self.servers = {}        # id -> Tracked (live servers)
        self.main = None         # the server the moves are made on
        self.flavors = {}
        self.images = []         # snapshot images to delete at the end
        self.allow_mapped = {}   # volume owner -> hosts allowed to map it
        self.allow_domains = {}  # host -> domain names allowed there

    # -- running -----------------------------------------------------------

    def run(self, steps):
        """Run ``steps`` (names from :data:`FULL`) in order.

        :param steps: the step names.
        """
        for name in steps:
            if name in NEEDS_SERVER and not self._main_active():
                self.report.not_run(name)
                continue
            self.progress('e2e: step %s' % name)
            with self.report.step(name) as step:
                self.current = step
                getattr(self, 'step_' + name.replace('-', '_'))()
            if step.status != 'passed':
                self.progress('e2e: step %s FAILED: %s' % (
                    name, step.detail.splitlines()[0] if step.detail
                    else ''))

    def _main_active(self):
        if self.main is None:
            return False
        try:
            server = self.conn.compute.get_server(self.main.id)
        except Exception:
            return False
        return server.status == 'ACTIVE'

    def note(self, text):
        self.current.note(text)

    # -- Nova --------------------------------------------------------------

    def flavor(self, spec):
        """Return the id of the flavor ``spec`` (created once)."""
        if spec['name'] not in self.flavors:
            found = self.conn.compute.find_flavor(spec['name'])
            if found is None:
                found = self.conn.compute.create_flavor(
                    name=spec['name'], ram=spec['ram'], vcpus=spec['vcpus'],
                    disk=spec['disk'], ephemeral=spec['ephemeral'],
                    swap=spec['swap'] or 0)
            self.flavors[spec['name']] = found.id
        return self.flavors[spec['name']]

    def server(self, tracked):
        """Return the server, and refresh what ``tracked`` knows of it."""
        server = self.conn.compute.get_server(tracked.id)
        tracked.host = server.compute_host
        tracked.instance_name = server.instance_name
        tracked.status = server.status
        return server

    def wait_status(self, tracked, status, timeout=ACTION_TIMEOUT,
                    host=None, since=None):
        """Wait until the server has ``status`` (and ``host``); fail on
        ERROR, on a failed move or on timeout, naming the fault.

        :param tracked: the :class:`Tracked` server.
        :param status: e.g. ``ACTIVE``, ``VERIFY_RESIZE``.
        :param timeout: seconds.
        :param host: the compute host it must be on, or None.
        :param since: for a move, :meth:`migration_mark` taken before it:
            a newer migration that failed ends the wait.
        """
        deadline = time.monotonic() + timeout
        settled = None
        while True:
            server = self.server(tracked)
            task = server.task_state
            if server.status == status and not task and (
                    host is None or server.compute_host == host):
                return server
            failed = None
            if since is not None and not task:
                failed = self.failed_migration(tracked, since)
            if failed or (host is not None and server.status == status and
                          not task):
                # Settled elsewhere: a move that failed and was rolled
                # back says so in its migration record.
                settled = settled or time.monotonic()
                if failed or time.monotonic() - settled > 60:
                    raise StepFailed(reason='server %s stayed on %s, not '
                                     '%s (migration %s): %s' % (
                                         tracked.name, server.compute_host,
                                         host, failed or 'not finished',
                                         self.fault_text(server)))
            else:
                settled = None
            if server.status == 'ERROR':
                raise StepFailed(reason='server %s went to ERROR (waiting '
                                 'for %s): %s' % (
                                     tracked.name, status,
                                     self.fault_text(server)))
            if time.monotonic() > deadline:
                raise StepFailed(reason='server %s is %s/%s on %s after '
                                 '%d s, not %s%s' % (
                                     tracked.name, server.status, task,
                                     server.compute_host, timeout, status,
                                     ' on %s' % host if host else ''))
            time.sleep(1)

    def migration_mark(self, tracked):
        """Return the id of the server's latest migration (0: none)."""
        return max([m.id or 0 for m in self.conn.compute.migrations(
            instance_uuid=tracked.id)] or [0])

    def failed_migration(self, tracked, since=0):
        """Return ``'<type> <status>'`` of the server's latest migration
        when it failed, else None.

        :param tracked: the server.
        :param since: only migrations with a greater id count.
        """
        latest = None
        for migration in self.conn.compute.migrations(
                instance_uuid=tracked.id):
            if (migration.id or 0) <= since:
                continue
            if latest is None or (migration.id or 0) > (latest.id or 0):
                latest = migration
        if latest is not None and latest.status in ('error', 'failed',
                                                    'cancelled'):
            return '%s %s' % (latest.migration_type, latest.status)
        return None

    def fault_text(self, server):
        """Return the fault message and the failed action events' details.

        :param server: a server resource.
        """
        texts = []
        fault = server.fault or {}
        if fault.get('message'):
            texts.append(fault['message'])
        try:
            for action in self.conn.compute.server_actions(server.id):
                full = self.conn.compute.get_server_action(
                    action.request_id, server.id)
                for event in full.events or ():
                    details = event.get('details') if isinstance(
                        event, dict) else getattr(event, 'details', None)
                    if details:
                        texts.append(details)
        except Exception as exc:  # the fault alone still says something
            texts.append('(server actions unreadable: %s)' % exc)
        return ' | '.join(texts) or 'no fault recorded'

    def console(self, tracked):
        """Return the server's console log through Nova's API."""
        out = self.conn.compute.get_server_console_output(tracked.id)
        return out.get('output') or '' if isinstance(out, dict) else out

    def console_diagnosis(self, tracked):
        """Return what the host shows of a guest's console: the serial
        device of its domain, and the end of its log file.

        :param tracked: the server (on its current host).
        """
        lines = []
        try:
            xml_text = self.cloud.hosts[tracked.host].virsh(
                'dumpxml', tracked.instance_name)
            root = ElementTree.fromstring(xml_text)
            for serial in root.findall('./devices/serial'):
                log = serial.find('log')
                path = log.get('file') if log is not None else None
                lines.append('serial type=%s log=%s' % (serial.get('type'),
                                                        path))
                if path:
                    try:
                        with open(path, errors='replace') as handle:
                            text = handle.read()
                        lines.append('log file: %d bytes, ends with: %s' % (
                            len(text), ' | '.join(text.splitlines()[-3:])))
                    except OSError as exc:
                        lines.append('log file unreadable: %s' % exc)
        except Exception as exc:  # diagnosis only
            lines.append('no domain details: %s' % exc)
        api = self.console(tracked).splitlines()
        lines.append('API console: %d lines, ends with: %s' % (
            len(api), ' | '.join(api[-3:])))
        return '\n'.join(lines)

    def other_host(self, host):
        names = sorted(self.cloud.hosts)
        return [h for h in names if h != host][0]

    # -- outside checks ----------------------------------------------------

    def observe(self):
        return self.cloud.observe()

    def wait_boot(self, tracked, previous_boot=None, timeout=BOOT_TIMEOUT):
        """Wait until the guest booted (a boot id other than
        ``previous_boot``) and is READY; check its disks.

        :param tracked: the server.
        :param previous_boot: boot id of the boot before.
        :param timeout: seconds.
        :returns: the parsed console of the new boot.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.console(tracked)
            parsed = last_boot(text)
            booted = parsed['booted'] or {}
            if parsed['ready'] and booted.get('boot_id') and \
                    booted['boot_id'] != previous_boot:
                break
            if time.monotonic() > deadline:
                raise StepFailed(reason='guest of %s did not boot within '
                                 '%d s; console tail:\n%s' % (
                                     tracked.name, timeout,
                                     '\n'.join(text.splitlines()[-15:])))
            time.sleep(1)
        self.check_boot(tracked, parsed)
        return parsed

    def disk_volumes(self, tracked):
        """Return ``{target dev: (volume id, disk name)}`` of the server's
        domain on its host, read from libvirt there.
        """
        host = self.cloud.hosts[tracked.host]
        xml_text = host.virsh('dumpxml', tracked.instance_name)
        names = dict((vid, info['name']) for vid, info in
                     self.observe().volumes.items())
        result = {}
        for dev, path in domain_disks(xml_text).items():
            vol_id = volume_id_of(path)
            if vol_id is None:
                raise StepFailed(reason='disk %s of %s is %s, not a '
                                 'ScaleIO device' % (dev, tracked.name,
                                                     path))
            parsed = parse_volume_name(names.get(vol_id, ''))
            if parsed is None or parsed[0] != tracked.id:
                raise StepFailed(reason='disk %s of %s is volume %s (%s), '
                                 'not one of its own' % (
                                     dev, tracked.name, vol_id,
                                     names.get(vol_id)))
            result[dev] = (vol_id, canonical(parsed[1]))
        return result

    def check_boot(self, tracked, parsed):
        """Check a fresh boot's console against the expected markers;
        remember what it wrote.

        :param tracked: the server (its ``marks`` are checked, updated).
        :param parsed: :func:`last_boot` of its console.
        """
        disks = self.disk_volumes(tracked)
        # A rescue guest has fewer disks than its default roles name.
        problems = [e for e in parsed['errors']
                    if not re.search(r' DISK (\S+) .*missing', e) or
                    re.search(r' DISK (\S+) ', e).group(1) in disks]
        expected_root = self.cloud.guest.info['root_marker']
        if parsed['root_image'] != expected_root:
            problems.append('root image marker %r, expected %r' % (
                parsed['root_image'], expected_root))
        sizes = tracked.sizes()
        wrote = {}
        for dev, fields in sorted(parsed['disks'].items()):
            if dev not in disks:
                if tracked.status != 'RESCUE':
                    problems.append('guest disk %s is not in the domain' %
                                    dev)
                continue
            disk = disks[dev][1]
            if fields.get('readback') != 'ok':
                problems.append('%s (%s): read back %s' % (
                    dev, disk, fields.get('readback')))
            want_size = sizes.get(disk)
            if want_size and int(fields.get('size', 0)) != want_size:
                problems.append('%s (%s): size %s, flavor says %d' % (
                    dev, disk, fields.get('size'), want_size))
            before = fields.get('before')
            expected = tracked.marks.get(disk, _FRESH)
            if expected is _FRESH:
                if (before or '').startswith('NSIO-DATA'):
                    problems.append('%s (%s) should be a fresh disk but '
                                    'holds %s' % (dev, disk, before))
                if disk in ('disk', 'disk.rescue') and before != '-':
                    problems.append('%s (%s) from the image holds %r at '
                                    'the data offset' % (dev, disk, before))
            elif before != expected:
                problems.append('%s (%s): data marker %s, expected %s' % (
                    dev, disk, before, expected))
            wrote[disk] = fields.get('wrote')
        for dev, fields in parsed['swap'].items():
            if fields.get('signature') != 'ok' or \
                    fields.get('swapon') != 'ok':
                problems.append('swap %s: signature %s, swapon %s' % (
                    dev, fields.get('signature'), fields.get('swapon')))
        seen = set(d for _v, d in disks.values())
        # A rescue guest boots from its rescue disk with its root disk
        # attached; its other disks stay out of the rescue domain.
        wanted = (('disk.rescue', 'disk') if tracked.status == 'RESCUE'
                  else tracked.expected_disks())
        for disk in wanted:
            if disk not in seen:
                problems.append('the domain has no %s disk' % disk)
        if problems:
            raise StepFailed(reason='guest of %s on %s: %s' % (
                tracked.name, tracked.host, '; '.join(problems)))
        tracked.marks.update(wrote)
        tracked.boot_id = parsed['booted']['boot_id']
        self.note('%s booted on %s, boot id %s, disks %s' % (
            tracked.name, tracked.host, tracked.boot_id, ', '.join(
                '%s=%s' % (dev, disks[dev][1]) for dev in sorted(disks))))

    def check_cloud(self, transient=()):
        """Fail the step on any leak or missing piece, seen from outside.

        :param transient: server ids in a state where both hosts may map
            its volumes and its resize snapshots exist (VERIFY_RESIZE).
        """
        obs = self.observe()
        problems = []
        live = {}
        transient = set(transient)
        for tracked in self.servers.values():
            self.server(tracked)
            live[tracked.id] = tracked
            if tracked.status == 'VERIFY_RESIZE':
                transient.add(tracked.id)
        owned = obs.owned()
        for vol_id, parsed in sorted(owned.items()):
            name = obs.volumes[vol_id]['name']
            if parsed is None:
                if (getattr(self.cloud, 'zero_copy', False) and
                        is_base_volume(name)):
                    # The image's base volume stays for later boots
                    # (the image cache removes it once unused), mapped
                    # nowhere.
                    if obs.mappings.get(vol_id):
                        problems.append('base volume %s (%s) is still '
                                        'mapped to %s' % (
                                            vol_id, name, ', '.join(sorted(
                                                obs.mappings[vol_id]))))
                    continue
                problems.append('volume %s (%s) belongs to no instance' % (
                    vol_id, name))
                continue
            owner, disk, kind = parsed
            disk = canonical(disk)
            tracked = live.get(owner)
            if tracked is None:
                problems.append('volume %s (%s, %s of %s) leaked: no such '
                                'server' % (vol_id, name, disk, owner))
            elif kind and tracked.id not in transient:
                problems.append('%s volume %s (%s of %s) left behind' % (
                    kind, name, disk, tracked.name))
            elif disk not in tracked.expected_disks():
                problems.append('volume %s (%s) of %s is not a disk it '
                                'has now' % (name, disk, tracked.name))
        for tracked in live.values():
            have = set(canonical(d) for o, d, k in filter(
                None, owned.values()) if o == tracked.id and not k)
            if tracked.status == 'SHELVED_OFFLOADED':
                want = {'disk'} & have  # the root may be kept or not
            elif tracked.status == 'ERROR':
                want = set()   # a failed build may have made some or none
            else:
                want = set(tracked.expected_disks())
            for disk in sorted(want - have):
                problems.append('%s has no %s volume' % (tracked.name, disk))
        mapped_pairs = 0
        for vol_id, hosts in sorted(obs.mappings.items()):
            mapped_pairs += len(hosts)
            parsed = owned.get(vol_id)
            tracked = live.get(parsed[0]) if parsed else None
            if tracked is None:
                continue  # reported above as a leaked volume
            allowed = set(self.allow_mapped.get(tracked.id, ()))
            if tracked.status in ('ACTIVE', 'RESCUE', 'VERIFY_RESIZE',
                                  'SHUTOFF'):
                allowed.add(tracked.host)
            if tracked.id in transient:
                allowed.update(self.cloud.hosts)
            for host in sorted(hosts - allowed):
                problems.append('volume %s (%s of %s, %s) is still mapped '
                                'to %s' % (vol_id, parsed[1], tracked.name,
                                           tracked.status, host))
        if len(obs.loops) != mapped_pairs:
            problems.append('%d loop device(s) for %d mapping(s): %s' % (
                len(obs.loops), mapped_pairs, ' '.join(sorted(obs.loops))))
        for host, doms in sorted(obs.domains.items()):
            want = set(self.allow_domains.get(host, ()))
            for tracked in live.values():
                if tracked.host == host and tracked.status in (
                        'ACTIVE', 'RESCUE', 'VERIFY_RESIZE', 'SHUTOFF'):
                    want.add(tracked.instance_name)
                if tracked.id in transient:
                    # The source keeps the guest defined (shut off) until
                    # the resize is confirmed or reverted.
                    want.add(tracked.instance_name)
            for name in sorted(set(doms) - want):
                problems.append('host %s has domain %s (%s) of no server '
                                'there' % (host, name, doms[name]))
            for tracked in live.values():
                if tracked.host == host and tracked.status in (
                        'ACTIVE', 'RESCUE', 'VERIFY_RESIZE') and \
                        doms.get(tracked.instance_name) != 'running':
                    problems.append('%s on %s: domain %s is %s' % (
                        tracked.name, host, tracked.instance_name,
                        doms.get(tracked.instance_name, 'missing')))
        for key, items in sorted(obs.extra.items()):
            for item in items:
                problems.append('%s: %s' % (key, item))
        if not problems:
            problems.extend(self.check_markers(obs))
        if problems:
            raise StepFailed(reason='after the step: %s\n%s' % (
                '; '.join(problems), '\n'.join(obs.describe())))
        self.note('cloud clean: %d volume(s), %d mapping(s), %d loop '
                  'device(s), domains %s' % (
                      len(obs.volumes), mapped_pairs, len(obs.loops),
                      dict((h, len(d)) for h, d in obs.domains.items())))

    def check_markers(self, obs):
        """Read each mapped disk's data marker from the block device.

        :param obs: the :class:`Observation` just made.
        :returns: problems found.
        """
        problems = []
        for tracked in self.servers.values():
            if tracked.status not in ('ACTIVE', 'VERIFY_RESIZE'):
                continue
            for vol_id, parsed in obs.owned().items():
                if not parsed or parsed[0] != tracked.id or parsed[2]:
                    continue
                disk = canonical(parsed[1])
                if disk not in tracked.marks:
                    continue
                device = self.cloud.device_path(tracked.host, vol_id)
                if device is None:
                    continue
                found = read_device_marker(device)
                if found != tracked.marks[disk]:
                    problems.append('%s of %s: the volume holds %s, the '
                                    'guest last wrote %s' % (
                                        disk, tracked.name, found,
                                        tracked.marks[disk]))
        return problems

    def counter_after(self, tracked, after, boot_id, timeout=60):
        """Wait for a counter above ``after`` of boot ``boot_id``.

        :returns: the counters seen on the console.
        """
        deadline = time.monotonic() + timeout
        while True:
            parsed = guest_mod.parse_console(self.console(tracked))
            counters = parsed['counters']
            others = [c for c in counters if c[1] != boot_id]
            if others:
                raise StepFailed(reason='%s: console shows boot id %s, the '
                                 'guest was %s: it was restarted' % (
                                     tracked.name, others[-1][1], boot_id))
            if any(n > after for n, _b in counters):
                return counters
            if time.monotonic() > deadline:
                raise StepFailed(reason='%s: no counter above %s of boot %s '
                                 'within %d s on %s\n%s' % (
                                     tracked.name, after, boot_id, timeout,
                                     tracked.host,
                                     self.console_diagnosis(tracked)))
            time.sleep(1)

    # -- steps -------------------------------------------------------------

    def boot(self, name, flavor, image=None, wait=True):
        """Boot a server with no network; return its :class:`Tracked`."""
        tracked_flavor = flavor
        server = self.conn.compute.create_server(
            name=name, image_id=image or self.cloud.images['root'],
            flavor_id=self.flavor(flavor), networks='none')
        tracked = Tracked(server.id, name, tracked_flavor)
        self.servers[server.id] = tracked
        if wait:
            self.wait_status(tracked, 'ACTIVE')
        return tracked

    def step_boot(self):
        started = time.monotonic()
        tracked = self.boot('nsio-e2e-1', FLAVOR)
        self.main = tracked
        self.wait_boot(tracked)
        self.report.timing('boot to console marker',
                           time.monotonic() - started)
        self.check_cloud()

    def step_live_migration(self):
        tracked = self.main
        self.server(tracked)
        source = tracked.host
        target = self.other_host(source)
        before = guest_mod.parse_console(self.console(tracked))['counters']
        last = before[-1][0] if before else -1
        boot_id = tracked.boot_id
        mark = self.migration_mark(tracked)
        started = time.monotonic()
        self.conn.compute.live_migrate_server(
            tracked.id, host=target, block_migration=False)
        self.wait_status(tracked, 'ACTIVE', host=target, since=mark)
        self.report.timing('live migration', time.monotonic() - started)
        counters = self.counter_after(tracked, last, boot_id)
        self.note('counter %d on %s, %d on %s, boot id %s kept' % (
            last, source, counters[-1][0], target, boot_id))
        self.check_cloud()

    def _move(self, action, flavor=None):
        """Cold-migrate or resize the main server to the other host; wait
        for VERIFY_RESIZE and check the moved guest.
        """
        tracked = self.main
        self.server(tracked)
        source = tracked.host
        target = self.other_host(source)
        previous = tracked.boot_id
        saved = copy.deepcopy(tracked.marks)
        mark = self.migration_mark(tracked)
        started = time.monotonic()
        if action == 'migrate':
            self.conn.compute.migrate_server(tracked.id, host=target)
        else:
            self.conn.compute.resize_server(tracked.id, self.flavor(flavor))
        self.wait_status(tracked, 'VERIFY_RESIZE', host=target, since=mark)
        old_flavor = tracked.flavor
        if flavor is not None:
            tracked.flavor = flavor
        self.wait_boot(tracked, previous)
        seconds = time.monotonic() - started
        self.check_cloud(transient=(tracked.id,))
        return source, target, saved, old_flavor, seconds

    def _confirm(self, source):
        tracked = self.main
        self.conn.compute.confirm_server_resize(tracked.id)
        self.wait_status(tracked, 'ACTIVE')
        self.check_cloud()
        self.note('confirmed: %s left no domain or mapping' % source)

    def step_cold_migration(self):
        source, _t, _s, _f, _sec = self._move('migrate')
        self._confirm(source)

    def step_resize_revert(self):
        source, target, saved, old_flavor, seconds = self._move(
            'resize', FLAVOR_BIG)
        self.report.timing('resize', seconds)
        tracked = self.main
        previous = tracked.boot_id
        self.conn.compute.revert_server_resize(tracked.id)
        self.wait_status(tracked, 'ACTIVE', host=source)
        tracked.flavor = old_flavor
        # The disks are those of before the resize: the markers of the
        # boot before it, not the ones the resized guest wrote.
        tracked.marks = saved
        self.wait_boot(tracked, previous)
        self.check_cloud()
        self.note('reverted to %s with the data of before the resize' %
                  source)

    def step_resize_confirm(self):
        source, _t, _s, _f, _sec = self._move('resize', FLAVOR_BIG)
        self._confirm(source)

    def step_hard_reboot(self):
        tracked = self.main
        previous = tracked.boot_id
        self.conn.compute.reboot_server(tracked.id, 'HARD')
        time.sleep(2)
        self.wait_status(tracked, 'ACTIVE')
        self.wait_boot(tracked, previous)
        self.check_cloud()

    def step_rebuild(self):
        tracked = self.main
        previous = tracked.boot_id
        self.conn.compute.rebuild_server(tracked.id,
                                         self.cloud.images['root'])
        time.sleep(2)
        self.wait_status(tracked, 'ACTIVE')
        # A rebuild starts from new disks.
        tracked.marks = {}
        self.wait_boot(tracked, previous)
        self.check_cloud()

    def step_snapshot(self):
        tracked = self.main
        image = self.conn.compute.create_server_image(
            tracked.id, 'nsio-e2e-snapshot', wait=True, timeout=600)
        self.images.append(image.id)
        self.wait_status(tracked, 'ACTIVE')
        self.note('snapshot image %s, %s bytes' % (image.id, image.size))
        second = self.boot('nsio-e2e-2', tracked.flavor, image=image.id)
        # The root disk holds what the first guest last wrote on its own.
        second.marks = {'disk': tracked.marks['disk']}
        self.wait_boot(second)
        self.check_cloud()
        self.delete(second)
        self.check_cloud()

    def step_rescue(self):
        tracked = self.main
        previous = tracked.boot_id
        self.conn.compute.rescue_server(tracked.id)
        self.wait_status(tracked, 'RESCUE')
        parsed = self.wait_boot(tracked, previous)
        self.check_cloud()
        previous = parsed['booted']['boot_id']
        self.conn.compute.unrescue_server(tracked.id)
        self.wait_status(tracked, 'ACTIVE')
        tracked.marks.pop('disk.rescue', None)
        self.wait_boot(tracked, previous)
        self.check_cloud()

    def step_shelve(self):
        tracked = self.main
        previous = tracked.boot_id
        self.conn.compute.shelve_server(tracked.id)
        deadline = time.monotonic() + ACTION_TIMEOUT
        while True:
            server = self.server(tracked)
            if server.status == 'SHELVED' and not server.task_state:
                self.conn.compute.shelve_offload_server(tracked.id)
            if server.status == 'SHELVED_OFFLOADED' and \
                    not server.task_state:
                break
            if server.status == 'ERROR' or time.monotonic() > deadline:
                raise StepFailed(reason='shelve: server is %s/%s: %s' % (
                    server.status, server.task_state,
                    self.fault_text(server)))
            time.sleep(2)
        self.check_cloud()
        self.note('offloaded: no domain, no mapping on any host')
        self.conn.compute.unshelve_server(tracked.id)
        self.wait_status(tracked, 'ACTIVE')
        # The root comes back from the shelve image; ephemeral and swap
        # disks are new.
        tracked.marks = {'disk': tracked.marks['disk']}
        self.wait_boot(tracked, previous)
        self.check_cloud()

    def step_evacuate(self):
        tracked = self.main
        self.server(tracked)
        failed = tracked.host
        target = self.other_host(failed)
        previous = tracked.boot_id
        # The host fails: its nova-compute dies and its guest with it
        # (the domain stays defined, as after a power loss).
        self.cloud.stop_compute(failed)
        self.cloud.hosts[failed].virsh('destroy', tracked.instance_name)
        self.conn.compute.update_service_forced_down(
            None, host=failed, binary='nova-compute', forced=True)
        self.allow_mapped[tracked.id] = {failed}
        self.allow_domains[failed] = {tracked.instance_name}
        mark = self.migration_mark(tracked)
        started = time.monotonic()
        try:
            self.conn.compute.evacuate_server(tracked.id)
            # From compute API 2.95 on, an evacuated server is left
            # stopped on its new host: start it there.
            deadline = time.monotonic() + ACTION_TIMEOUT
            while True:
                server = self.server(tracked)
                if server.compute_host == target and \
                        not server.task_state and \
                        server.status in ('ACTIVE', 'SHUTOFF'):
                    break
                if server.status == 'ERROR' or \
                        time.monotonic() > deadline:
                    raise StepFailed(reason='evacuation: server is %s/%s '
                                     'on %s: %s' % (
                                         server.status, server.task_state,
                                         server.compute_host,
                                         self.fault_text(server)))
                time.sleep(1)
            if server.status == 'SHUTOFF':
                self.note('evacuated server is SHUTOFF on %s; started' %
                          target)
                self.conn.compute.start_server(tracked.id)
            self.wait_status(tracked, 'ACTIVE', host=target, since=mark)
            self.report.timing('evacuate', time.monotonic() - started)
            # Shared storage: the evacuated guest has its disks and data.
            self.wait_boot(tracked, previous)
            self.check_cloud()
        finally:
            # The failed host comes back: its nova-compute removes what
            # the evacuated server left there (domain, mappings), never
            # the volumes the server uses now.
            self.cloud.start_compute(failed)
        self.allow_mapped.pop(tracked.id, None)
        stale = self.allow_domains.pop(failed, set())
        deadline = time.monotonic() + 180
        while True:
            doms = self.cloud.hosts[failed].domains()
            left = [d for d in stale if d in doms]
            if not left:
                break
            if time.monotonic() > deadline:
                raise StepFailed(reason='%s came back but kept the domain '
                                 '%s of the evacuated server' % (
                                     failed, ', '.join(left)))
            time.sleep(2)
        # Nova refuses to lift the forced-down state while the host's
        # evacuation records are not completed by its nova-compute.
        from openstack import exceptions
        deadline = time.monotonic() + 120
        while True:
            try:
                self.conn.compute.update_service_forced_down(
                    None, host=failed, binary='nova-compute', forced=False)
                break
            except exceptions.BadRequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(3)
        self.cloud.wait_compute_up(failed)
        self.check_cloud()
        self.note('%s back: evacuated server kept its volumes on %s' % (
            failed, target))

    def step_bad_flavor(self):
        tracked = self.boot('nsio-e2e-bad', FLAVOR_BAD, wait=False)
        deadline = time.monotonic() + ACTION_TIMEOUT
        while True:
            server = self.server(tracked)
            if server.status == 'ERROR':
                break
            if server.status == 'ACTIVE' or time.monotonic() > deadline:
                raise StepFailed(reason='a 5 GiB root disk gave a server '
                                 'in %s, not ERROR' % server.status)
            time.sleep(1)
        text = self.fault_text(server)
        if SIZE_MESSAGE not in text:
            raise StepFailed(reason='the error does not say why: %s' % text)
        self.note('refused: %s' % text[:300])
        made = [info['name'] for vid, info in self.observe().volumes.items()
                if (parse_volume_name(info['name']) or ('',))[0] ==
                tracked.id]
        if made:
            raise StepFailed(reason='the refused server has volumes: %s' %
                             ', '.join(sorted(made)))
        self.check_cloud()
        self.delete(tracked)
        self.check_cloud()

    def step_gateway_away(self):
        gateway = self.cloud.gateway
        tracked = self.boot('nsio-e2e-gw', FLAVOR, wait=False)
        deadline = time.monotonic() + ACTION_TIMEOUT
        killed = False
        try:
            while True:
                server = self.server(tracked)
                if not killed and server.task_state in (
                        'block_device_mapping', 'spawning'):
                    gateway.kill()
                    killed = True
                    self.note('gateway killed while the server was %s on '
                              '%s' % (server.task_state, tracked.host))
                if server.status == 'ERROR':
                    break
                if server.status == 'ACTIVE':
                    raise StepFailed(reason='the server became ACTIVE %s' %
                                     ('without the gateway' if killed else
                                      'before the gateway could be taken '
                                      'away'))
                if time.monotonic() > deadline:
                    raise StepFailed(reason='server is %s/%s after %d s' % (
                        server.status, server.task_state, ACTION_TIMEOUT))
                time.sleep(0.3)
        finally:
            if killed:
                gateway.start()
        self.note('ERROR: %s' % self.fault_text(server)[:300])
        if tracked.host:
            doms = self.cloud.hosts[tracked.host].domains()
            if tracked.instance_name in doms:
                raise StepFailed(reason='server in ERROR left domain %s on '
                                 '%s' % (tracked.instance_name,
                                         tracked.host))
        self.delete(tracked)
        # What the failed build could not delete while the gateway was away
        # is recorded by the backend and deleted at the next image cache
        # pass of that host (every IMAGE_CACHE_INTERVAL s here).
        deadline = time.monotonic() + 3 * novaconf.IMAGE_CACHE_INTERVAL + 30
        while True:
            try:
                self.check_cloud()
                return
            except StepFailed:
                if time.monotonic() > deadline:
                    raise
            time.sleep(5)

    def delete(self, tracked):
        """Delete a server and wait until it is gone."""
        from openstack import exceptions
        try:
            server = self.conn.compute.get_server(tracked.id)
        except exceptions.NotFoundException:
            server = None
        if server is not None:
            self.conn.compute.delete_server(server)
            self.conn.compute.wait_for_delete(server, wait=ACTION_TIMEOUT)
        self.servers.pop(tracked.id, None)
        if self.main is tracked:
            self.main = None

    def step_delete_all(self):
        for tracked in list(self.servers.values()):
            self.delete(tracked)
        for image_id in self.images:
            self.conn.image.delete_image(image_id, ignore_missing=True)
        self.images = []
        self.check_cloud()
        obs = self.observe()
        # check_cloud passed the zero-copy base volumes (unmapped): they
        # are the image cache's to remove, not the deletions'.
        kept = set(v for v, info in obs.volumes.items()
                   if getattr(self.cloud, 'zero_copy', False) and
                   is_base_volume(info['name']))
        if kept:
            self.note('%d zero-copy base volume(s) kept for later boots' %
                      len(kept))
        if set(obs.volumes) - kept or obs.mappings or obs.loops or any(
                obs.domains.values()):
            raise StepFailed(reason='after deleting every server: %s' %
                             '; '.join(obs.describe()))
