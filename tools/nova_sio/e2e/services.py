# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Long-running services of the harness, started without systemd.

A :class:`Supervisor` starts each service as the leader of its own
process group, its stdout and stderr appended to
``<workdir>/logs/<name>.log``, and writes it to the :class:`Ledger
<nova_sio.e2e.cleanup.Ledger>` at once, so that a crashed run's services
are killed by the next sweep. It waits for a TCP port or an HTTP answer,
notices a service that died while being waited for (naming its log), and
stops services newest first: SIGTERM to the group, then SIGKILL.
"""

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from nova_sio import errors

TERM_GRACE = 10.0


class ServiceError(errors.NovaSioError):
    msg_fmt = 'Service %(name)s: %(reason)s'


def tail(path, lines=15):
    """Return the last lines of a log file ('' if it cannot be read).

    :param path: the log file.
    :param lines: how many lines.
    """
    try:
        with open(path, 'rb') as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 8192))
            text = handle.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    return '\n'.join(text.splitlines()[-lines:])


def group_pids(pgid):
    """Return the pids whose process group is ``pgid``.

    :param pgid: a process group id.
    """
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
        except (OSError, IndexError):
            continue
        # Fields after the command: state, ppid, pgrp.
        if int(fields[2]) == pgid:
            found.append(int(name))
    return found


def peak_rss_kib(pid):
    """Return the peak resident set size (VmHWM) of ``pid`` in KiB, or 0.

    :param pid: a process id.
    """
    try:
        with open('/proc/%d/status' % pid) as handle:
            for line in handle:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class Service(object):
    """One started service.

    :param name: service name (also the log file name).
    :param popen: its ``subprocess.Popen``.
    :param log_path: its log file.
    :param record: its ledger record.
    """

    def __init__(self, name, popen, log_path, record):
        self.name = name
        self.popen = popen
        self.log_path = log_path
        self.record = record
        self.started_at = time.monotonic()
        self.peak_kib = 0

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        """Tell whether the service's leader process still runs."""
        return self.popen.poll() is None

    def sample_rss(self):
        """Update and return the peak RSS (KiB) summed over its group."""
        if self.alive():
            total = sum(peak_rss_kib(p) for p in group_pids(self.pid))
            self.peak_kib = max(self.peak_kib, total)
        return self.peak_kib


class Supervisor(object):
    """Start, watch and stop the services of one run.

    :param workdir: the run's directory (logs go to ``<workdir>/logs``).
    :param ledger: the run's :class:`~nova_sio.e2e.cleanup.Ledger`.
    :param progress: a callable taking one progress line.
    """

    def __init__(self, workdir, ledger, progress=print):
        self.workdir = workdir
        self.ledger = ledger
        self.progress = progress
        self.log_dir = os.path.join(workdir, 'logs')
        os.makedirs(self.log_dir, exist_ok=True)
        self.services = {}
        self._order = []
        self.peaks = {}

    def log_path(self, name):
        """Return the log file of service ``name``.

        :param name: service name.
        """
        return os.path.join(self.log_dir, '%s.log' % name)

    def start(self, name, argv, env=None, cwd=None):
        """Start ``argv`` as service ``name``.

        :param name: service name, unique in this run.
        :param argv: argument list.
        :param env: the whole environment (default: this process's).
        :param cwd: working directory (default: the workdir).
        :returns: the :class:`Service`.
        :raises ServiceError: when it cannot be started.
        """
        if name in self.services and self.services[name].alive():
            raise ServiceError(name=name, reason='already running')
        path = self.log_path(name)
        log = open(path, 'ab')
        try:
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=env, cwd=cwd or self.workdir,
                start_new_session=True)
        except OSError as exc:
            raise ServiceError(name=name, reason='cannot start %s: %s' % (
                argv[0], exc))
        finally:
            log.close()
        record = self.ledger.hold('process', pid=popen.pid, service=name)
        service = Service(name, popen, path, record)
        self.services[name] = service
        if name in self._order:
            self._order.remove(name)
        self._order.append(name)
        return service

    def _check_alive(self, service):
        if not service.alive():
            raise ServiceError(
                name=service.name,
                reason='exited with status %s; last lines of %s:\n%s' % (
                    service.popen.returncode, service.log_path,
                    tail(service.log_path)))

    def wait_port(self, name, address, port, timeout=120.0):
        """Wait until ``address:port`` accepts TCP connections.

        :param name: the service expected to open it.
        :param address: IP address.
        :param port: TCP port.
        :param timeout: seconds.
        :raises ServiceError: when it died or did not listen in time.
        """
        service = self.services[name]
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(service)
            try:
                with socket.create_connection((address, port), timeout=2):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServiceError(
                    name=name, reason='nothing listens on %s:%d after %ds; '
                    'see %s' % (address, port, timeout, service.log_path))
            time.sleep(0.3)

    def wait_http(self, name, url, timeout=120.0):
        """Wait until ``url`` answers HTTP (any status below 500).

        :param name: the service expected to answer.
        :param url: the URL to GET.
        :param timeout: seconds.
        :raises ServiceError: when it died or did not answer in time.
        """
        service = self.services[name]
        deadline = time.monotonic() + timeout
        last = None
        while True:
            self._check_alive(service)
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    resp.read()
                    return resp.status
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    return exc.code
                last = 'HTTP %d' % exc.code
            except (OSError, ValueError) as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise ServiceError(
                    name=name, reason='%s did not answer after %ds (%s); '
                    'see %s' % (url, timeout, last, service.log_path))
            time.sleep(0.5)

    def sample(self):
        """Sample the peak RSS of every running service.

        :returns: ``{name: peak KiB}`` of every service seen so far.
        """
        for name, service in self.services.items():
            self.peaks[name] = service.sample_rss()
        return dict(self.peaks)

    def stop(self, name, grace=TERM_GRACE):
        """Stop service ``name``: SIGTERM to its group, then SIGKILL.

        :param name: service name.
        :param grace: seconds between SIGTERM and SIGKILL.
        :returns: the exit status of its leader.
        """
        service = self.services.get(name)
        if service is None:
            return None
        self.peaks[name] = service.sample_rss()
        pgid = service.pid
        if service.alive():
            self._signal(pgid, signal.SIGTERM)
            try:
                service.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # The leader gone, members of its group may linger.
        deadline = time.monotonic() + grace
        while group_pids(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        self._signal(pgid, signal.SIGKILL)
        try:
            service.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self.ledger.forget(service.record)
        return service.popen.returncode

    @staticmethod
    def _signal(pgid, signum):
        try:
            os.killpg(pgid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def stop_all(self):
        """Stop every service, newest first; return their exit codes."""
        codes = {}
        for name in reversed(self._order):
            if name in self.services and \
                    self.services[name].record in self.ledger.held():
                codes[name] = self.stop(name)
        return codes

    def running(self):
        """Return the names of the services whose leader still runs."""
        return [n for n in self._order if self.services[n].alive()]

    def leftover_pids(self):
        """Return pids still in any service's process group."""
        found = []
        for name in self._order:
            found.extend(group_pids(self.services[name].pid))
        return found
