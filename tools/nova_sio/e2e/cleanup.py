# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""A ledger of the machine resources the harness makes, and their sweep.

Every loop device, mount, process, directory, network namespace and
network link the end-to-end harness
creates is written to a ledger file *before* the harness goes on, one
JSON line per event, in a file named after the owning process. The
owner releases them on exit (:meth:`Ledger.release_all`, also run from
``atexit`` and on SIGINT/SIGTERM when :meth:`Ledger.install_handlers` was
called). When the owner dies without releasing (``kill -9``, a crash),
the next :func:`sweep` finds its ledger file, sees that its process is
gone and releases what it left, newest first.

Each record names the resource precisely enough to avoid touching one
that was reused by someone else since: a loop device is only detached
while it is still backed by the recorded file, a mount only unmounted
while the recorded source is still mounted on the recorded target, a
process only killed while its start time is still the recorded one, a
link only deleted in the recorded namespace. A namespace is named by
its run (``nsio-<run>-<role>``, see ``netns.py``), so a name of a dead
run is not reused by a live one.

The ledger directory defaults to ``/run/nova-sio-e2e`` (a tmpfs: it is
empty after a reboot, like the kernel's loop devices and mounts), or
``$NOVA_SIO_E2E_LEDGER``.
"""

import atexit
import json
import os
import shutil
import signal
import subprocess
import threading
import time

from nova_sio import errors

DEFAULT_DIR = '/run/nova-sio-e2e'

#: Resource kinds. Inside one ledger they are released by age, newest
#: first, once every process inside the ledger's network namespaces has
#: ended (QEMU left by a libvirtd, the hosts' daemons): those would keep
#: loop devices and mounts busy. A namespace is recorded before the
#: links, processes and mounts made in it, so its name goes last.
KINDS = ('loop', 'mount', 'process', 'dir', 'netns', 'link', 'vg')


class CleanupError(errors.NovaSioError):
    msg_fmt = 'Cannot release %(kind)s %(name)s: %(reason)s'


def ledger_dir():
    """Return the ledger directory (``$NOVA_SIO_E2E_LEDGER`` or default)."""
    return os.environ.get('NOVA_SIO_E2E_LEDGER') or DEFAULT_DIR


def _run(argv):
    proc = subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT)
    return proc.returncode, proc.stdout.decode(errors='replace').strip()


def process_start_time(pid):
    """Return the start time of ``pid`` in clock ticks, or None if gone.

    A zombie (exited, not yet reaped by its parent) counts as gone.

    :param pid: a process id.
    """
    try:
        with open('/proc/%d/stat' % pid) as handle:
            text = handle.read()
    except (OSError, ValueError):
        return None
    # Field 3 is the state, field 22 the start time; the command name
    # (field 2) may hold spaces or ')'.
    fields = text.rsplit(')', 1)[1].split()
    if fields[0] == 'Z':
        return None
    return int(fields[19])


def loop_backing_file(device):
    """Return the file backing loop ``device`` (``/dev/loopN``) or None.

    :param device: the device path.
    """
    name = os.path.basename(device)
    try:
        with open('/sys/block/%s/loop/backing_file' % name) as handle:
            return handle.read().strip()
    except OSError:
        return None


def mounted(target, source=None):
    """Tell whether ``target`` is a mount point (of ``source`` if given).

    :param target: mount point path.
    :param source: device expected to be mounted there, or None.
    """
    target = os.path.realpath(target)
    try:
        with open('/proc/self/mounts') as handle:
            lines = handle.read().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        if len(fields) < 2:
            continue
        point = fields[1].replace('\\040', ' ')
        if point == target and (source is None or fields[0] == source):
            return True
    return False


def loops_backed_under(directory):
    """Return ``{device: backing file}`` of the loop devices whose
    backing file is inside ``directory``.

    :param directory: a path prefix.
    """
    prefix = os.path.realpath(directory).rstrip('/') + '/'
    found = {}
    try:
        names = sorted(os.listdir('/sys/block'))
    except OSError:
        return found
    for name in names:
        if not name.startswith('loop'):
            continue
        backing = loop_backing_file('/dev/' + name)
        if backing and backing.startswith(prefix):
            found['/dev/' + name] = backing
    return found


def _terminate(pid, start_time, wait=5.0):
    """SIGTERM ``pid`` if it still is the same process, then SIGKILL.

    :param pid: a process id.
    :param start_time: its recorded start time.
    :param wait: seconds between SIGTERM and SIGKILL.
    """
    if process_start_time(pid) != start_time:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
        for _attempt in range(int(wait * 10)):
            if process_start_time(pid) != start_time:
                return True
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        for _attempt in range(50):
            if process_start_time(pid) != start_time:
                break
            time.sleep(0.1)
    except ProcessLookupError:
        pass
    return True


def netns_pids(name):
    """Return the pids of the processes in network namespace ``name``.

    :param name: a namespace name under ``/run/netns``.
    """
    code, out = _run(['ip', 'netns', 'pids', name])
    if code:
        return []
    return [int(p) for p in out.split() if p.isdigit()]


def end_processes_in(names, wait=5.0):
    """End every process inside the named network namespaces.

    SIGTERM to all of them at once, SIGKILL to those still there after
    ``wait`` seconds; never this process.

    :param names: namespace names under ``/run/netns``.
    :param wait: seconds between SIGTERM and SIGKILL.
    :returns: the pids that were ended.
    """
    starts = {}
    for name in names:
        if os.path.exists(os.path.join('/run/netns', name)):
            for pid in netns_pids(name):
                if pid != os.getpid():
                    starts[pid] = process_start_time(pid)
    for pid, start in starts.items():
        if start is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(
            process_start_time(p) == s for p, s in starts.items()):
        time.sleep(0.1)
    for pid, start in starts.items():
        _terminate(pid, start, wait=0)
    return sorted(starts)


def _release_netns(record):
    name = record['name']
    path = os.path.join('/run/netns', name)
    if not os.path.exists(path):
        return False
    # What still runs inside keeps the namespace alive (and QEMU keeps
    # its loop devices busy): end it, but never this process.
    end_processes_in([name])
    code, out = _run(['ip', 'netns', 'delete', name])
    if code and os.path.exists(path):
        raise CleanupError(kind='netns', name=name, reason=out)
    return True


def _release_records(records):
    """Release ``records`` (oldest first) newest first; yield outcomes.

    Before anything else, the processes inside the records' network
    namespaces end: QEMU guests left by a libvirtd, daemons of the
    hosts. Otherwise the storage under them (loop devices, the scratch
    file system), released in age order, would still be busy.

    :param records: ledger records, oldest first.
    :returns: list of ``(record, released or None, error message)``.
    """
    names = [r['name'] for r in records if r['kind'] == 'netns']
    if names:
        end_processes_in(names)
    outcome = []
    for record in reversed(records):
        try:
            outcome.append((record, _release(record), None))
        except CleanupError as exc:
            outcome.append((record, None, exc.message))
    return outcome


def _release_vg(record):
    """Remove the device-mapper devices of a volume group's volumes.

    They are named ``<group>-<volume>`` (group names without a hyphen,
    see ``backends.volume_group_name``); their ``/dev/<group>`` links go
    with them. Without device-mapper there is nothing to remove.
    """
    name = record['name']
    if '-' in name or '/' in name or not name:
        raise CleanupError(kind='vg', name=name, reason='not a group name '
                           'this harness makes')
    if shutil.which('dmsetup') is None:
        return False
    code, out = _run(['dmsetup', 'ls'])
    devices = [ln.split()[0] for ln in out.splitlines()
               if not code and ln.startswith(name + '-')]
    for device in devices:
        code, out = _run(['dmsetup', 'remove', '--retry', device])
        if code:
            raise CleanupError(kind='vg', name=name, reason=out)
    links = os.path.join('/dev', name)
    if os.path.isdir(links):
        shutil.rmtree(links, ignore_errors=True)
    return bool(devices)


def _release_link(record):
    argv = ['ip']
    if record.get('netns'):
        if not os.path.exists(os.path.join('/run/netns', record['netns'])):
            return False
        argv += ['-n', record['netns']]
    if _run(argv + ['link', 'show', record['name']])[0]:
        return False
    code, out = _run(argv + ['link', 'delete', record['name']])
    if code and not _run(argv + ['link', 'show', record['name']])[0]:
        raise CleanupError(kind='link', name=record['name'], reason=out)
    return True


def _release(record):
    """Release one resource if it is still the recorded one.

    :param record: a ledger record.
    :returns: True when something was released, False when it was gone.
    :raises CleanupError: when releasing failed.
    """
    kind = record['kind']
    if kind == 'loop':
        device = record['device']
        if loop_backing_file(device) != record['backing']:
            return False
        code, out = _run(['losetup', '-d', device])
        if code and loop_backing_file(device) == record['backing']:
            raise CleanupError(kind=kind, name=device, reason=out)
        return True
    if kind == 'mount':
        target = record['target']
        if not mounted(target, record.get('source')):
            return False
        # Loop devices over files in it would keep it busy: once lazily
        # unmounted, their backing paths no longer name the mount point.
        for device in loops_backed_under(target):
            _run(['losetup', '-d', device])
        for _attempt in range(5):
            if _run(['umount', target])[0] == 0:
                return True
            time.sleep(0.2)
        code, out = _run(['umount', '-l', target])
        if code:
            raise CleanupError(kind=kind, name=target, reason=out)
        return True
    if kind == 'process':
        return _terminate(record['pid'], record['start_time'])
    if kind == 'netns':
        return _release_netns(record)
    if kind == 'link':
        return _release_link(record)
    if kind == 'vg':
        return _release_vg(record)
    if kind == 'dir':
        if not os.path.isdir(record['path']):
            return False
        shutil.rmtree(record['path'], ignore_errors=True)
        return True
    raise CleanupError(kind=kind, name='?', reason='unknown resource kind')


def _key(record):
    return (record['kind'], record.get('device') or record.get('target') or
            record.get('path') or record.get('pid'), record.get('name'),
            record.get('netns'))


class Ledger(object):
    """The resources one process holds, mirrored in its ledger file.

    :param directory: ledger directory (default :func:`ledger_dir`).
    """

    def __init__(self, directory=None):
        self.directory = directory or ledger_dir()
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self.pid = os.getpid()
        self.start_time = process_start_time(self.pid)
        self.path = os.path.join(self.directory, '%d.jsonl' % self.pid)
        self._lock = threading.RLock()
        self._held = []          # records, oldest first
        self._handlers = False
        self._write({'op': 'owner', 'pid': self.pid,
                     'start_time': self.start_time})

    def _write(self, entry):
        with open(self.path, 'a') as handle:
            handle.write(json.dumps(entry, sort_keys=True) + '\n')
            handle.flush()
            os.fsync(handle.fileno())

    def hold(self, kind, **fields):
        """Record a resource about to be (or just) created.

        :param kind: one of :data:`KINDS`.
        :param fields: ``device`` and ``backing`` (loop), ``target`` and
            ``source`` (mount), ``pid`` (process), ``path`` (dir),
            ``name`` (netns), ``name`` and ``netns`` (link; no ``netns``:
            the machine's own namespace), ``name`` (vg: a volume group
            whose logical volumes' device-mapper devices go).
        :returns: the record.
        """
        record = dict(fields, kind=kind)
        if kind == 'process' and 'start_time' not in record:
            record['start_time'] = process_start_time(record['pid'])
        with self._lock:
            self._write(dict(record, op='hold'))
            self._held.append(record)
        return record

    def forget(self, record):
        """Record that ``record``'s resource was released by its owner.

        :param record: a record returned by :meth:`hold`.
        """
        with self._lock:
            self._held = [r for r in self._held if _key(r) != _key(record)]
            self._write(dict(record, op='release'))

    def release(self, record):
        """Release one held resource now and forget it.

        :param record: a record returned by :meth:`hold`.
        """
        _release(record)
        self.forget(record)

    def held(self):
        """Return the records still held, oldest first."""
        with self._lock:
            return list(self._held)

    def release_all(self):
        """Release every held resource, newest first; drop the ledger.

        :returns: list of error messages (empty when all went well).
        """
        problems = []
        with self._lock:
            for record, _done, error in _release_records(list(self._held)):
                if error:
                    problems.append(error)
                    continue
                self.forget(record)
            if not self._held and os.getpid() == self.pid:
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass
        return problems

    def install_handlers(self):
        """Release everything at exit and on SIGINT/SIGTERM.

        Only the owning process releases (a forked child does not). The
        signal handlers release, then raise ``KeyboardInterrupt`` (SIGINT)
        or ``SystemExit(143)`` (SIGTERM). Call from the main thread.
        """
        if self._handlers:
            return
        self._handlers = True

        def at_exit():
            if os.getpid() == self.pid:
                self.release_all()
        atexit.register(at_exit)

        def on_signal(signum, frame):
            if os.getpid() == self.pid:
                self.release_all()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt()
            raise SystemExit(128 + signum)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, on_signal)


def _read(path):
    """Return ``(owner, held records oldest first)`` of a ledger file."""
    owner, held = None, []
    with open(path) as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash
            op = entry.pop('op', None)
            if op == 'owner':
                owner = entry
            elif op == 'hold':
                held.append(entry)
            elif op == 'release':
                held = [r for r in held if _key(r) != _key(entry)]
    return owner, held


def _sweep_once(directory, report):
    """One pass over the ledger files; return the live owners' pids."""
    live = []
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return live
    for name in names:
        if not name.endswith('.jsonl'):
            continue
        path = os.path.join(directory, name)
        try:
            owner, held = _read(path)
        except FileNotFoundError:
            continue                # its owner released it meanwhile
        if owner is not None and process_start_time(
                owner['pid']) == owner['start_time']:
            live.append(owner['pid'])
            continue
        failed = False
        for record, done, error in _release_records(held):
            if error:
                report['errors'].append(error)
                failed = True
            elif done:
                report['released'].append(record)
            else:
                report['gone'].append(record)
        if not failed:
            os.unlink(path)
    return live


def sweep(directory=None):
    """Release what dead owners left; return a report.

    A dead run's ledger may hold a process that keeps a ledger of its
    own (the gateway emulator and its loop devices): once that process
    was ended, another pass releases what it left.

    :param directory: ledger directory (default :func:`ledger_dir`).
    :returns: dict with ``released`` (records released), ``gone``
        (records whose resource no longer existed), ``errors``
        (messages) and ``live`` (pids of owners still running).
    """
    directory = directory or ledger_dir()
    report = {'released': [], 'gone': [], 'errors': [], 'live': []}
    for _attempt in range(3):
        released = len(report['released'])
        live = _sweep_once(directory, report)
        if not live or len(report['released']) == released:
            break
    report['live'] = live
    return report
