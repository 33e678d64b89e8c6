# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""A ledger of the machine resources the harness makes, and their sweep.

Every loop device, mount, process and directory the end-to-end harness
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
process only killed while its start time is still the recorded one.

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

#: Resource kinds, released in this order inside one ledger only by age.
KINDS = ('loop', 'mount', 'process', 'dir')


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

    :param pid: a process id.
    """
    try:
        with open('/proc/%d/stat' % pid) as handle:
            text = handle.read()
    except (OSError, ValueError):
        return None
    # Field 22; the command name (field 2) may hold spaces or ')'.
    return int(text.rsplit(')', 1)[1].split()[19])


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
        pid = record['pid']
        if process_start_time(pid) != record['start_time']:
            return False
        try:
            os.kill(pid, signal.SIGTERM)
            for _attempt in range(50):
                if process_start_time(pid) != record['start_time']:
                    return True
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return True
    if kind == 'dir':
        if not os.path.isdir(record['path']):
            return False
        shutil.rmtree(record['path'], ignore_errors=True)
        return True
    raise CleanupError(kind=kind, name='?', reason='unknown resource kind')


def _key(record):
    return (record['kind'], record.get('device') or record.get('target') or
            record.get('path') or record.get('pid'))


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
            ``source`` (mount), ``pid`` (process), ``path`` (dir).
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
            for record in reversed(list(self._held)):
                try:
                    _release(record)
                except CleanupError as exc:
                    problems.append(exc.message)
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


def sweep(directory=None):
    """Release what dead owners left; return a report.

    :param directory: ledger directory (default :func:`ledger_dir`).
    :returns: dict with ``released`` (records released), ``gone``
        (records whose resource no longer existed), ``errors``
        (messages) and ``live`` (pids of owners still running).
    """
    directory = directory or ledger_dir()
    report = {'released': [], 'gone': [], 'errors': [], 'live': []}
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return report
    for name in names:
        if not name.endswith('.jsonl'):
            continue
        path = os.path.join(directory, name)
        owner, held = _read(path)
        if owner is not None and process_start_time(
                owner['pid']) == owner['start_time']:
            report['live'].append(owner['pid'])
            continue
        failed = False
        for record in reversed(held):
            try:
                if _release(record):
                    report['released'].append(record)
                else:
                    report['gone'].append(record)
            except CleanupError as exc:
                report['errors'].append(exc.message)
                failed = True
        if not failed:
            os.unlink(path)
    return report
