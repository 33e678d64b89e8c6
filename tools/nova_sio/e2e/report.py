# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Steps, their results and timings, and the closing lines of a run.

A :class:`Report` records every step of the scenario in order: passed,
failed (with the reason) or not run (with the step whose failure stopped
it). :meth:`Report.step` is a context manager that times a step and
turns the exception that ends it into a failed result, so that a check
that fails stops its step, not the run. The report prints as a table,
ends with the plain line ``N passed, N failed`` and is written as JSON
for tools.

:class:`MemorySampler` samples the resident memory of a set of process
trees (the services and the guests) in a thread and keeps the peak.
"""

import json
import os
import threading
import time
import traceback

from nova_sio import errors

PASSED = 'passed'
FAILED = 'FAILED'
NOT_RUN = 'not run'


class StepFailed(errors.NovaSioError):
    """A check of a step found the cloud in a state it must not be in."""
    msg_fmt = '%(reason)s'


class Step(object):
    """The result of one step.

    :param name: step name, e.g. ``live-migration``.
    :param status: :data:`PASSED`, :data:`FAILED` or :data:`NOT_RUN`.
    :param seconds: wall time of the step (None when not run).
    :param detail: why it failed or was not run; empty when it passed.
    """

    def __init__(self, name, status=NOT_RUN, seconds=None, detail=''):
        self.name = name
        self.status = status
        self.seconds = seconds
        self.detail = detail
        self.notes = []
        self.traceback = None

    def note(self, text):
        """Record a fact the step observed (shown in the JSON result).

        :param text: one line.
        """
        self.notes.append(text)

    def as_dict(self):
        return {'name': self.name, 'status': self.status,
                'seconds': (None if self.seconds is None
                            else round(self.seconds, 1)),
                'detail': self.detail, 'notes': list(self.notes),
                'traceback': self.traceback}


class Report(object):
    """The steps of one run, in order, and its timings and figures.

    :param title: what ran, e.g. ``nova 34.0.0, slice full``.
    :param clock: monotonic clock (tests pass a fake one).
    """

    def __init__(self, title, clock=time.monotonic):
        self.title = title
        self.clock = clock
        self.steps = []
        self.timings = {}
        self.figures = {}
        self._failed_step = None

    def step(self, name):
        """Return a context manager running step ``name``.

        The step passes when the block ends normally. An exception other
        than ``KeyboardInterrupt``/``SystemExit`` fails it: its message
        becomes the step's detail (the traceback goes to the JSON result
        unless it is a :class:`StepFailed`) and is not raised further.

        :param name: step name.
        """
        return _StepContext(self, name)

    def not_run(self, name, reason=None):
        """Record that step ``name`` was not run.

        :param name: step name.
        :param reason: why (default: after the first failed step).
        """
        if reason is None:
            reason = ('after the failure of %s' % self._failed_step
                      if self._failed_step else 'not reached')
        step = Step(name, NOT_RUN, None, reason)
        self.steps.append(step)
        return step

    def _finish(self, step, exc):
        if exc is None:
            step.status = PASSED
        else:
            step.status = FAILED
            if isinstance(exc, errors.NovaSioError):
                step.detail = exc.message
            else:
                step.detail = '%s: %s' % (type(exc).__name__, exc)
            if not isinstance(exc, StepFailed):
                step.traceback = ''.join(traceback.format_exception(
                    type(exc), exc, exc.__traceback__))
            if self._failed_step is None:
                self._failed_step = step.name

    def timing(self, name, seconds):
        """Record a timing of the run (set-up, boot to console marker...).

        :param name: what was timed.
        :param seconds: how long it took.
        """
        self.timings[name] = seconds

    def figure(self, name, value):
        """Record a figure of the run (e.g. peak memory in MiB).

        :param name: what it is.
        :param value: a number or a short text.
        """
        self.figures[name] = value

    def count(self, status):
        """Return how many steps have ``status``.

        :param status: :data:`PASSED`, :data:`FAILED` or :data:`NOT_RUN`.
        """
        return sum(1 for s in self.steps if s.status == status)

    @property
    def ok(self):
        """True when at least one step ran and none failed or was left."""
        return bool(self.steps) and all(s.status == PASSED
                                        for s in self.steps)

    def failed_steps(self):
        """Return the steps that failed, in order."""
        return [s for s in self.steps if s.status == FAILED]

    def summary(self):
        """Return the closing line, ``N passed, N failed``.

        A step that was not run because an earlier one failed counts as
        failed: the run did not prove it.
        """
        return '%d passed, %d failed' % (
            self.count(PASSED), self.count(FAILED) + self.count(NOT_RUN))

    def table(self):
        """Return the step table as a list of lines."""
        width = max([len('step')] + [len(s.name) for s in self.steps])
        lines = ['%-*s  %-7s  %8s  %s' % (
            width, 'step', 'result', 'seconds', 'detail')]
        for step in self.steps:
            seconds = ('%8.1f' % step.seconds if step.seconds is not None
                       else '%8s' % '-')
            detail = step.detail.splitlines()[0] if step.detail else ''
            lines.append(('%-*s  %-7s  %s  %s' % (
                width, step.name, step.status, seconds, detail)).rstrip())
        return lines

    def closing_lines(self):
        """Return the lines printed at the end of a run: the table, the
        timings and figures, the full reason of each failure, and the
        summary line last.
        """
        lines = ['== %s' % self.title] + self.table()
        if self.timings:
            lines.append('timings: ' + ', '.join(
                '%s %.1f s' % (k, v) for k, v in self.timings.items()))
        if self.figures:
            lines.append('figures: ' + ', '.join(
                '%s %s' % (k, v) for k, v in self.figures.items()))
        for step in self.failed_steps():
            if '\n' in step.detail:
                lines.append('FAILED %s:' % step.name)
                lines.extend('  ' + ln for ln in step.detail.splitlines())
            else:
                lines.append('FAILED %s: %s' % (step.name, step.detail))
        lines.append(self.summary())
        return lines

    def as_dict(self):
        return {'title': self.title,
                'steps': [s.as_dict() for s in self.steps],
                'timings': dict((k, round(v, 1))
                                for k, v in self.timings.items()),
                'figures': dict(self.figures),
                'passed': self.count(PASSED),
                'failed': self.count(FAILED),
                'not_run': self.count(NOT_RUN),
                'summary': self.summary()}

    def write_json(self, path):
        """Write :meth:`as_dict` to ``path`` (atomically).

        :param path: file to write.
        """
        tmp = path + '.tmp'
        with open(tmp, 'w') as handle:
            json.dump(self.as_dict(), handle, indent=1, sort_keys=True)
            handle.write('\n')
        os.rename(tmp, path)


class _StepContext(object):

    def __init__(self, report, name):
        self.report = report
        self.step = Step(name)
        self.started = None

    def __enter__(self):
        self.started = self.report.clock()
        self.report.steps.append(self.step)
        return self.step

    def __exit__(self, exc_type, exc, tb):
        self.step.seconds = self.report.clock() - self.started
        if exc_type is not None and not issubclass(exc_type, Exception):
            # Ctrl-C or exit: record it, let it end the run.
            self.step.status = FAILED
            self.step.detail = 'interrupted (%s)' % exc_type.__name__
            return False
        self.report._finish(self.step, exc)
        return True


def _rss_kib(pid):
    try:
        with open('/proc/%d/status' % pid) as handle:
            for line in handle:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children():
    """Return ``{ppid: [pid, ...]}`` of every process."""
    tree = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name) as handle:
                text = handle.read()
        except OSError:
            continue
        ppid = int(text.rsplit(')', 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(name))
    return tree


def tree_rss(roots):
    """Return the summed resident memory (bytes) of process trees.

    Each process is counted once, even if it is in several trees.

    :param roots: pids whose processes and descendants are counted.
    """
    tree = _children()
    seen = set()
    stack = [p for p in roots if p]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        stack.extend(tree.get(pid, ()))
    return sum(_rss_kib(pid) for pid in seen) * 1024


class MemorySampler(object):
    """Samples :func:`tree_rss` of some roots in a thread; keeps the peak.

    :param roots: callable returning the pids of the roots now (the set
        changes while the cloud starts and stops).
    :param interval: seconds between samples.
    """

    def __init__(self, roots, interval=1.0):
        self.roots = roots
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = None

    def sample(self):
        """Take one sample now; return it (bytes)."""
        try:
            value = tree_rss(self.roots())
        except Exception:  # a process tree changing under the walk
            return 0
        self.samples += 1
        self.peak = max(self.peak, value)
        return value

    def start(self):
        """Start sampling in a daemon thread."""
        def loop():
            while not self._stop.wait(self.interval):
                self.sample()
        self._thread = threading.Thread(target=loop, name='rss-sampler',
                                        daemon=True)
        self._thread.start()

    def stop(self):
        """Stop sampling; return the peak in bytes."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.peak
