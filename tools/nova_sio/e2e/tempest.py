# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Tempest, the OpenStack integration suite, on the real cloud.

:class:`TempestVenv` installs Tempest from PyPI into a virtualenv cached
under the nova-sio cache: the Tempest release that tags the series of
the Nova release under test (:data:`TEMPEST_RELEASES`), pinned by that
series' committed constraints, with the interpreter of the control
plane.

:func:`tempest_conf` writes ``tempest.conf`` for one cloud of the
harness (see :mod:`~nova_sio.e2e.tempest_conf`), :func:`exclusions`
lists what is excluded and why, :func:`run_pass` runs ``tempest run``
on one regex and reads its subunit stream back, and :func:`run_tempest`
builds the cloud, runs every pass and tears the cloud down.
"""

import collections
import io
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

from nova_sio.e2e import novaconf
from nova_sio.e2e.tempest_conf import tempest_conf  # noqa: F401
from nova_sio.e2e import venvbuild
from nova_sio import errors
from nova_sio import releases as rel_mod
from nova_sio import testenv

#: The Tempest release that starts the support of each series (Tempest
#: is branchless: its release notes name, for each tag, the OpenStack
#: releases it supports; ``tempest-<series>-release`` notes).
TEMPEST_RELEASES = {
    'stein': '20.0.0', 'train': '22.0.0', 'ussuri': '24.0.0',
    'victoria': '25.0.0', 'wallaby': '27.0.0', 'xena': '29.0.0',
    'yoga': '30.0.0', 'zed': '32.0.0', '2023.1': '34.0.0',
    '2023.2': '36.0.0', '2024.1': '38.0.0', '2024.2': '41.0.0',
    '2025.2': '45.0.0', '2026.1': '46.2.0', '2026.2': '47.0.0',
}

#: Nova's ``nova-lvm`` job: ``^tempest\.api\.compute``.
COMPUTE_REGEX = r'^tempest\.api\.compute'
#: Nova's ``nova-live-migration`` job, on two compute hosts.
MIGRATION_REGEX = (r'^tempest\.api\.compute\.admin\.'
                   r'(test_live_migration|test_migration)')
#: The passes of ``tools/bootstrap.sh tempest``: (name, regex).
PASSES = (('compute', COMPUTE_REGEX), ('migration', MIGRATION_REGEX))

RUN_TIMEOUT = 6 * 3600

Exclusion = collections.namedtuple('Exclusion', 'regex reason source')

#: The exclusions of Nova's ``nova-lvm`` job (its
#: ``tempest_exclude_regex``, one entry per alternative).
NOVA_LVM = (
    Exclusion(r'^tempest\.api\.compute\.volumes\.test_attach_volume\.'
              r'AttachVolumeTestJSON\.test_attach_detach_volume',
              'volume detach, Nova bug 1998148', 'nova-lvm'),
    Exclusion(r'^tempest\.api\.compute\.servers\.test_server_rescue\.'
              r'ServerStableDeviceRescueTest\.'
              r'test_stable_device_rescue_disk_virtio_with_volume_attached',
              'volume detach, Nova bug 1998148', 'nova-lvm'),
    Exclusion(r'^tempest\.api\.compute\.servers\.'
              r'test_server_rescue_negative\.ServerRescueNegativeTestJSON\.'
              r'test_rescued_vm_detach_volume',
              'volume detach, Nova bug 1998148', 'nova-lvm'),
    Exclusion(r'.*\[.*\bslow\b.*\]', 'tagged slow', 'nova-lvm'),
)

#: The exclusion of Nova's ``nova-live-migration`` job.
NOVA_LIVE_MIGRATION = (
    Exclusion(r'test_live_migration_with_trunk',
              'Neutron bug 1940425; needs trunk ports bound by an agent',
              'nova-live-migration'),
)

#: What this cloud cannot do, outside the backend: Neutron is a real
#: server without any L2 agent, so a port can never bind.
ABSENT = (
    Exclusion(r'^tempest\.api\.compute\.servers\.test_create_server_multi_nic'
              r'\.', 'boots servers on two networks: their ports cannot bind '
              '(Neutron without L2 agent)', 'absent service'),
    Exclusion(r'^tempest\.api\.compute\.admin\.test_auto_allocate_network\.'
              r'AutoAllocateNetworkTest\.test_server_multi_create_auto_'
              r'allocate\b', 'Neutron\'s auto-allocated topology needs a '
              'default external network and subnet pool (no data plane '
              'here): "Unable to automatically allocate a network"',
              'absent service'),
    Exclusion(r'^tempest\.api\.compute\.security_groups\.test_security_groups'
              r'\.SecurityGroupsTestJSON\.(test_server_security_groups|'
              r'test_list_security_groups_by_server)\b',
              'adds a security group to a server\'s ports; servers here '
              'have none: "could not be found as device id on any ports"',
              'absent service'),
    Exclusion(r'^tempest\.api\.compute\.servers\.test_server_actions\.'
              r'ServerActionsTestOtherA\.test_remove_server_all_security_'
              r'groups\b', 'reads the security groups of a server\'s '
              'ports; servers here have none (KeyError: '
              '\'security_groups\')', 'absent service'),
    Exclusion(r'^tempest\.api\.compute\.servers\.test_server_rescue\.'
              r'ServerRescueTestJSONUnderV235\.test_rescued_vm_add_remove_'
              r'security_group\b', 'adds a security group to a server\'s '
              'ports; servers here have none: "could not be found as device '
              'id on any ports"', 'absent service'),
    Exclusion(r'^tempest\.api\.compute\.servers\.test_server_addresses\.'
              r'ServerAddressesTestJSON\.test_list_server_addresses\b',
              'asserts that the server has an address; servers here have no '
              'port ("{} is not true")', 'absent service'),
    Exclusion(r'^tempest\.api\.compute\.test_tenant_networks\.'
              r'ComputeTenantNetworksTest\.test_list_show_tenant_networks\b',
              'lists the project\'s network; the test projects here have '
              'none (Tempest\'s network is None: "\'NoneType\' object is not '
              'subscriptable")', 'absent service'),
)


#: sio disks are shared block storage: Nova refuses the block migration
#: that Tempest's live-migration tests below microversion 2.25 ask for
#: ("InvalidLocalStorage: Block migration can not be used with shared
#: storage", as for RBD); from 2.25 on (``LiveAutoBlockMigrationV225Test``)
#: Tempest asks for "auto" and they run.
SHARED_STORAGE = (
    Exclusion(r'^tempest\.api\.compute\.admin\.test_live_migration\.'
              r'(LiveMigrationTest|LiveMigrationWithoutHostTest)\.'
              r'test_live_block_migration(_paused)?\b',
              'asks for block migration (microversion < 2.25), which Nova '
              'refuses for shared block storage', 'shared storage'),
)


class TempestError(errors.NovaSioError):
    msg_fmt = 'Tempest: %(reason)s'


def tempest_release(version):
    """Return the Tempest release for the Nova release ``version``.

    :param version: a Nova release (``34.0.0``).
    :raises TempestError: for a series without a known Tempest release.
    """
    series = rel_mod.release_id(rel_mod.series_of(version))
    for key in (series, rel_mod.series_of(version)):
        if key in TEMPEST_RELEASES:
            return TEMPEST_RELEASES[key]
    raise TempestError(reason='no Tempest release is known for the %s '
                       'series of Nova %s (known: %s)' % (
                           series, version,
                           ', '.join(sorted(TEMPEST_RELEASES))))


def exclusions(images_type='sio'):
    """Return the :class:`Exclusion` list of a run: Nova's ``nova-lvm``
    and ``nova-live-migration`` jobs' (for every backend: nova-lvm's
    are not about LVM), then what this cloud lacks, then for sio the
    block migrations Nova refuses on shared block storage.

    :param images_type: the compute hosts' ``images_type``.
    """
    out = list(NOVA_LVM) + list(NOVA_LIVE_MIGRATION) + list(ABSENT)
    if images_type == 'sio':
        out.extend(SHARED_STORAGE)
    return out


def exclude_list_text(items):
    """Return the text of a ``tempest run --exclude-list`` file.

    :param items: :class:`Exclusion` entries.
    """
    lines = []
    for item in items:
        lines.append('%s  # %s: %s' % (item.regex, item.source,
                                       item.reason))
    return '\n'.join(lines) + '\n'


def excluded_by(test_id, items):
    """Return the :class:`Exclusion` matching ``test_id``, or None.

    :param test_id: a Tempest test id (with its ``[tags]``).
    :param items: :class:`Exclusion` entries.
    """
    for item in items:
        if re.search(item.regex, test_id):
            return item
    return None


class TempestVenv(object):
    """A virtualenv holding Tempest, cached under the nova-sio cache.

    :param version: the Nova release under test.
    :param progress: callable receiving progress lines.
    """

    def __init__(self, version, progress=print):
        self.version = version
        self.progress = progress
        self.series = rel_mod.series_of(version)
        self.release = tempest_release(version)
        self.python_version = testenv.PYTHON.get(self.series, '3.12')

    def key(self):
        """Return the cache key: Tempest release, Python, constraints."""
        return venvbuild.cache_key(self.series, [self.release,
                                                 self.python_version])

    @property
    def path(self):
        return venvbuild.cache_path('tempest', self.release,
                                    self.python_version, self.key())

    def bin(self, name):
        """Return the path of ``name`` in the venv's ``bin``.

        :param name: a console script.
        """
        return os.path.join(self.path, 'bin', name)

    def build(self):
        """Build the venv unless it is cached; return its path."""
        venv = self.path
        wording = venvbuild.Wording(
            reuse='reusing the Tempest %s venv %s' % (
                self.release, os.path.basename(venv)),
            install='installing Tempest %s (Python %s, %s constraints) '
            'into %s ...' % (self.release, self.python_version, self.series,
                             venv),
            # Tempest may need newer libraries than the series pinned.
            unpinned='unpinned for Tempest\'s own minimums: %s',
            built='Tempest venv built in %.0f s')
        return venvbuild.CachedVenv(
            venv, self.series, self.python_version,
            ['tempest==%s' % self.release],
            ('.nova-sio-tempest-ready', self.release), wording,
            drop=['tempest==='], lock='tempest-venv',
            progress=self.progress).build()


# -- results -----------------------------------------------------------------

#: subunit statuses, as Tempest's summary counts them.
PASS_STATUSES = ('success', 'xfail')
FAIL_STATUSES = ('fail', 'uxsuccess')
SKIP_STATUSES = ('skip',)
TAGS = re.compile(r'\[[^\]]*\]$')


def _detail_text(details, *names):
    for name in names:
        content = details.get(name)
        if content is None:
            continue
        try:
            return ''.join(t.decode('utf-8', 'replace') if isinstance(
                t, bytes) else t for t in content.iter_text())
        except Exception:  # an undecodable attachment
            return b''.join(content.iter_bytes()).decode('utf-8', 'replace')
    return ''


def parse_subunit(data):
    """Read a subunit v2 stream; return one dict per test, in order.

    :param data: the stream (bytes).
    :returns: ``[{'id', 'status', 'seconds', 'reason'}]``; ``reason`` is
        the skip reason, or the last line of a failure's traceback.
    """
    import subunit
    import testtools
    tests = []

    def on_test(test):
        if test['status'] in ('exists', 'inprogress', None):
            return
        stamps = [t for t in test.get('timestamps', ()) if t is not None]
        seconds = None
        if len(stamps) == 2:
            seconds = (stamps[1] - stamps[0]).total_seconds()
        details = test.get('details') or {}
        reason = ''
        if test['status'] in SKIP_STATUSES:
            reason = _detail_text(details, 'reason').strip()
        elif test['status'] in FAIL_STATUSES:
            text = _detail_text(details, 'traceback').strip()
            reason = failure_reason(text)
        tests.append({'id': test['id'], 'status': test['status'],
                      'seconds': seconds, 'reason': reason})
    stream = subunit.ByteStreamToStreamResult(io.BytesIO(data),
                                              non_subunit_name='stdout')
    result = testtools.StreamToDict(on_test)
    result.startTestRun()
    try:
        stream.run(result)
    finally:
        result.stopTestRun()
    return tests


def failure_reason(traceback_text):
    """Return what failed: the exception line of a traceback and the
    ``Details:`` line Tempest's exceptions add after it.

    :param traceback_text: the ``traceback`` attachment.
    """
    lines = [ln.strip() for ln in traceback_text.splitlines() if ln.strip()]
    exc = re.compile(r'^([A-Za-z_]\w*\.)*[A-Z]\w*(Error|Exception|Failure|'
                     r'Timeout|Mismatch)\w*(:|$)')
    for index in range(len(lines) - 1, -1, -1):
        if not exc.match(lines[index]):
            continue
        line = re.sub(r'^([A-Za-z_]\w*\.)+', '', lines[index])
        details = ' '.join(lines[index + 1:])
        if details.startswith('Details:'):
            # Tempest's own exceptions: the details say what happened
            # (a server's fault, the request and its answer).
            return '%s: %s' % (line.split(':', 1)[0],
                               details[len('Details:'):].strip())
        return line
    return lines[-1] if lines else '(no traceback)'


RESULT_LINE = re.compile(r'^\{\d+\} (?P<id>.+?)(?: \[(?P<secs>[\d.]+)s\])? '
                         r'\.\.\. (?P<status>ok|FAILED|'
                         r'SKIPPED: (?P<reason>.*))$')


def parse_run_log(output):
    """Read the results of a ``tempest run`` from what it printed (when
    it was stopped before stestr stored its stream).

    :param output: its output.
    :returns: like :func:`parse_subunit`.
    """
    tests = []
    current = None
    block = []

    def close():
        if current is not None and current['status'] == 'fail':
            current['reason'] = failure_reason('\n'.join(block))
    for line in output.splitlines():
        found = RESULT_LINE.match(line)
        if found is None:
            if current is not None and current['status'] == 'fail':
                if line.startswith('Captured pythonlogging'):
                    close()
                    current = None
                else:
                    block.append(line)
            continue
        close()
        block = []
        status = found.group('status')
        current = {'id': found.group('id'),
                   'status': {'ok': 'success', 'FAILED': 'fail'}.get(
                       status, 'skip'),
                   'seconds': (float(found.group('secs'))
                               if found.group('secs') else None),
                   'reason': (found.group('reason') or '').strip()}
        tests.append(current)
    close()
    return tests


def summarize(tests):
    """Return ``{'passed', 'failed', 'skipped', 'total', 'seconds'}``.

    :param tests: what :func:`parse_subunit` returned.
    """
    out = {'passed': 0, 'failed': 0, 'skipped': 0}
    seconds = 0.0
    for test in tests:
        if test['status'] in PASS_STATUSES:
            out['passed'] += 1
        elif test['status'] in FAIL_STATUSES:
            out['failed'] += 1
        elif test['status'] in SKIP_STATUSES:
            out['skipped'] += 1
        seconds += test['seconds'] or 0.0
    out['total'] = out['passed'] + out['failed'] + out['skipped']
    out['seconds'] = round(seconds, 1)
    return out


def short_id(test_id):
    """Return ``test_id`` without Tempest's ``[id-...,tags]`` suffix and
    its ``tempest.api.compute.`` prefix.

    :param test_id: a test id.
    """
    text = TAGS.sub('', test_id)
    return re.sub(r'^(setUpClass \()?tempest\.api\.compute\.', r'\1', text)


def table(tests, width=160):
    """Return the lines of a table of every failure and skip.

    :param tests: what :func:`parse_subunit` returned.
    :param width: the width of the reason column.
    """
    rows = [t for t in tests if t['status'] in FAIL_STATUSES] + \
        [t for t in tests if t['status'] in SKIP_STATUSES]
    if not rows:
        return []
    names = [short_id(t['id']) for t in rows]
    name_w = max(len('test'), max(len(n) for n in names))
    lines = ['%-7s  %-*s  %s' % ('result', name_w, 'test', 'reason'),
             '%s  %s  %s' % ('-' * 7, '-' * name_w, '-' * 6)]
    for test, name in zip(rows, names):
        status = 'FAILED' if test['status'] in FAIL_STATUSES else 'skipped'
        reason = ' '.join(test['reason'].split())
        if len(reason) > width:
            reason = reason[:width - 3] + '...'
        lines.append('%-7s  %-*s  %s' % (status, name_w, name, reason))
    return lines


def tempest_summary(output):
    """Return Tempest's own closing summary (its ``Totals`` block) from
    its output.

    :param output: what ``tempest run`` printed.
    """
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if line.strip() != 'Totals':
            continue
        out = []
        for text in lines[index:]:
            if text.strip() == 'Worker Balance':
                break
            if text.strip():
                out.append(text)
        while out and set(out[-1].strip()) == {'='}:
            out.pop()
        return ['======'] + out
    return []


# -- running ------------------------------------------------------------------

class Pass(object):
    """One ``tempest run`` and what it found.

    :param name: the pass name (``compute``).
    :param regex: its test regex.
    """

    def __init__(self, name, regex):
        self.name = name
        self.regex = regex
        self.tests = []
        self.summary_lines = []
        self.returncode = None
        self.seconds = None
        self.workspace = None
        self.error = None

    @property
    def counts(self):
        return summarize(self.tests)

    @property
    def ok(self):
        return self.error is None and self.returncode == 0 and \
            self.counts['failed'] == 0

    def as_dict(self):
        return {'name': self.name, 'regex': self.regex,
                'returncode': self.returncode, 'seconds': self.seconds,
                'counts': self.counts, 'error': self.error,
                'summary': self.summary_lines,
                'tests': self.tests}


def run_pass(venv, conf_path, workspace, name, regex, exclude_path,
             concurrency=1, progress=print, timeout=RUN_TIMEOUT):
    """Run ``tempest run`` on ``regex``; return a :class:`Pass`.

    Its output goes to ``<workspace>/tempest-run.log`` (failures are
    echoed as progress lines); the subunit stream is read back with
    ``stestr last --subunit``.

    :param venv: the :class:`TempestVenv`.
    :param conf_path: the ``tempest.conf``.
    :param workspace: a new directory (``.stestr.conf``, the stestr
        repository, ``tempest.log``).
    :param name: the pass name.
    :param regex: the test regex.
    :param exclude_path: the exclude-list file.
    :param concurrency: Tempest workers (1 or 2).
    :param progress: callable receiving progress lines.
    :param timeout: seconds before the run is stopped.
    """
    result = Pass(name, regex)
    result.workspace = workspace
    os.makedirs(workspace, exist_ok=True)
    env = dict((k, v) for k, v in os.environ.items()
               if k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV'))
    env['PATH'] = os.pathsep.join([os.path.dirname(venv.bin('tempest')),
                                   env.get('PATH', '/usr/bin:/bin')])
    argv = [venv.bin('tempest'), 'run', '--config-file', conf_path,
            '--regex', regex, '--exclude-list', exclude_path,
            '--concurrency', str(concurrency)]
    if not os.path.isdir(os.path.join(workspace, '.stestr')):
        subprocess.run([venv.bin('stestr'), 'init'], cwd=workspace, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log_path = os.path.join(workspace, 'tempest-run.log')
    progress('e2e: tempest %s: %s' % (name, ' '.join(argv[1:])))
    begin = time.monotonic()
    output = []
    with open(log_path, 'w') as log:
        # Its own process group: stestr's workers go with it on a
        # timeout.
        proc = subprocess.Popen(argv, cwd=workspace, env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)
        timed_out = []

        def stop():
            timed_out.append(True)
            _kill_group(proc)
        timer = threading.Timer(timeout, stop)
        timer.start()
        done = 0
        try:
            for raw in proc.stdout:
                line = raw.decode('utf-8', 'replace')
                log.write(line)
                log.flush()
                output.append(line)
                if re.match(r'^\{\d+\} ', line):
                    done += 1
                    if '... FAILED' in line:
                        progress('e2e: tempest %s: %s' % (
                            name, line.strip()))
                    elif done % 25 == 0:
                        progress('e2e: tempest %s: %d tests done (%.0f '
                                 'min)' % (name, done, (
                                     time.monotonic() - begin) / 60))
            result.returncode = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                _kill_group(proc)
    result.seconds = round(time.monotonic() - begin, 1)
    result.summary_lines = tempest_summary(''.join(output))
    if timed_out:
        # stestr stores a run once it is over: what finished is read
        # from Tempest's output instead.
        result.error = 'stopped after %d s; the tests that finished are ' \
            'read from its output' % timeout
        result.tests = parse_run_log(''.join(output))
        return result
    stream = subprocess.run([venv.bin('stestr'), 'last', '--subunit'],
                            cwd=workspace, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    if stream.returncode != 0 and not stream.stdout:
        result.error = 'no subunit stream: %s' % stream.stderr.decode(
            'utf-8', 'replace').strip()[-500:]
        result.tests = parse_run_log(''.join(output))
        return result
    result.tests = parse_subunit(stream.stdout)
    with open(os.path.join(workspace, 'tempest.subunit'), 'wb') as handle:
        handle.write(stream.stdout)
    return result


def _kill_group(proc):
    """Kill the process group of ``proc`` and reap ``proc``."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


#: The flavors Tempest boots: root disks in the backend's 8 GiB steps.
FLAVORS = (
    {'name': 'nsio-tempest-8', 'ram': 256, 'vcpus': 1, 'disk': 8},
    {'name': 'nsio-tempest-16', 'ram': 256, 'vcpus': 1, 'disk': 16},
)


def make_flavors(conn):
    """Create :data:`FLAVORS` (public); return their ids in order.

    :param conn: an admin ``openstack.connection.Connection``.
    """
    ids = []
    for spec in FLAVORS:
        found = conn.compute.find_flavor(spec['name'])
        if found is None:
            found = conn.compute.create_flavor(is_public=True, **spec)
        ids.append(found.id)
    return ids


def network_extensions(conn):
    """Return the aliases of the extensions Neutron loaded.

    :param conn: an ``openstack.connection.Connection``.
    """
    return sorted(ext.alias for ext in conn.network.extensions())


#: ``[scaleio]`` options of the Tempest cloud's compute hosts: Tempest
#: boots flavors it makes itself, with 1 GiB swap or ephemeral disks and
#: root disks of 0 or 1 GiB, which the backend refuses by default
#: (ScaleIO allocates in 8 GiB units); an operator whose flavors are not
#: multiples of 8 GiB rounds them up instead, as Cinder's PowerFlex
#: driver does for volumes.
SCALEIO_OPTIONS = {'round_volume_capacity': True}

#: ``[libvirt]`` options of the Tempest cloud's compute hosts, whatever
#: the backend: snapshots are uploaded as qcow2. A raw snapshot of an
#: 8 GiB ScaleIO volume is an 8 GiB upload that Glance's file store
#: keeps fully allocated, and the suite takes dozens of snapshots; the
#: same setting on every backend keeps the runs comparable.
LIBVIRT_OPTIONS = {'snapshot_image_format': 'qcow2'}


def compute_options(text, images_type):
    """Return compute nova.conf ``text`` with the Tempest cloud's options.

    :param text: the compute host's nova.conf.
    :param images_type: the host's ``[libvirt] images_type``.
    :raises ConfError: when a section the options go in is missing.
    """
    text = novaconf.set_options(text, 'libvirt', LIBVIRT_OPTIONS)
    if images_type == 'sio':
        text = novaconf.set_options(text, 'scaleio', SCALEIO_OPTIONS)
    return text


def tempest_cloud(cloud_cls):
    """Return a subclass of ``cloud_cls`` whose compute hosts get
    :func:`compute_options`.

    :param cloud_cls: :class:`~nova_sio.e2e.cloud.Cloud`.
    """
    class TempestCloud(cloud_cls):
        def start_compute(self, host):
            path = self.compute_confs[host]
            with open(path) as handle:
                text = handle.read()
            with open(path, 'w') as handle:
                handle.write(compute_options(text, self.images_type_of()))
            return super(TempestCloud, self).start_compute(host)

        def images_type_of(self):
            return getattr(self, 'images_type', 'sio')
    return TempestCloud


class Run(object):
    """The passes of one Tempest run on one cloud.

    :param title: what ran.
    """

    def __init__(self, title):
        self.title = title
        self.passes = []
        self.error = None
        self.setup_seconds = None
        self.conf_path = None
        self.excluded = []

    @property
    def ok(self):
        return self.error is None and bool(self.passes) and all(
            p.ok for p in self.passes)

    def closing_lines(self):
        """Return the lines printed at the end: per pass Tempest's own
        summary, the failure and skip table, then the counts.
        """
        out = ['== Tempest on %s' % self.title]
        if self.error:
            out.append('error: %s' % self.error)
        for item in self.passes:
            counts = item.counts
            out.append('')
            out.append('== pass %s: %s (%s s)' % (item.name, item.regex,
                                                  item.seconds))
            if item.error:
                out.append('error: %s' % item.error)
            out.extend(item.summary_lines or ['(Tempest printed no '
                                              'summary; exit %s)' %
                                              item.returncode])
            out.append('')
            out.extend(table(item.tests))
            out.append('%s: %d passed, %d failed, %d skipped' % (
                item.name, counts['passed'], counts['failed'],
                counts['skipped']))
        return out

    def as_dict(self):
        return {'title': self.title, 'ok': self.ok, 'error': self.error,
                'setup_seconds': self.setup_seconds,
                'excluded': [dict(e._asdict()) for e in self.excluded],
                'passes': [p.as_dict() for p in self.passes]}


def run_tempest(version, passes=PASSES, progress=print, keep_logs=None,
                json_path=None, images_type=None, concurrency=1,
                ledger=None, timeout=RUN_TIMEOUT):
    """Build the cloud, run each Tempest pass, tear the cloud down.

    :param version: the Nova release under test.
    :param passes: ``(name, regex)`` pairs.
    :param progress: callable receiving progress lines.
    :param keep_logs: directory receiving every log, or None.
    :param json_path: file receiving the JSON result, or None.
    :param images_type: the cloud's ``images_type`` (None: sio).
    :param concurrency: Tempest workers.
    :param ledger: the run's ledger (default: a new one with handlers).
    :param timeout: seconds each pass may take.
    :returns: a :class:`Run`.
    """
    from nova_sio.e2e import cleanup
    from nova_sio.e2e import cloud as cloud_mod
    images_type = images_type or 'sio'
    venv = TempestVenv(version, progress)
    venv.build()
    run = Run('nova %s, images_type %s, Tempest %s' % (
        version, images_type, venv.release))
    if ledger is None:
        ledger = cleanup.Ledger()
        ledger.install_handlers()
    workdir = cloud_mod.make_workdir(ledger)
    kwargs = {}
    if images_type != 'sio':
        kwargs['images_type'] = images_type
    cloud = tempest_cloud(cloud_mod.Cloud)(version, workdir, ledger,
                                           progress=progress, **kwargs)
    begin = time.monotonic()
    try:
        try:
            cloud.build()
            run.setup_seconds = round(time.monotonic() - begin, 1)
            flavors = make_flavors(cloud.conn)
            conf = tempest_conf(
                cloud.controlplane.auth, cloud.controlplane.ep.auth_url,
                images=(cloud.images['root'], cloud.images['root']),
                flavors=flavors, compute_nodes=len(cloud.hosts),
                network_extensions=network_extensions(cloud.conn),
                images_type=images_type,
                log_dir=os.path.join(workdir, 'tempest'))
            run.conf_path = os.path.join(workdir, 'tempest', 'etc',
                                         'tempest.conf')
            from nova_sio.e2e import novaconf
            novaconf.write_ini(run.conf_path, conf)
            run.excluded = exclusions(images_type)
            exclude_path = os.path.join(workdir, 'tempest', 'exclude.txt')
            with open(exclude_path, 'w') as handle:
                handle.write(exclude_list_text(run.excluded))
            for name, regex in passes:
                run.passes.append(run_pass(
                    venv, run.conf_path,
                    os.path.join(workdir, 'tempest', name), name, regex,
                    exclude_path, concurrency=concurrency,
                    progress=progress, timeout=timeout))
        except errors.NovaSioError as exc:
            run.error = exc.message
        except Exception as exc:  # report, then tear down
            run.error = '%s: %s' % (type(exc).__name__, exc)
    finally:
        if keep_logs:
            cloud.keep_logs(keep_logs)
            _keep_tempest(workdir, keep_logs)
        progress('e2e: tearing the cloud down')
        problems = cloud.close() + ledger.release_all()
        if problems:
            run.error = (run.error + '; ' if run.error else '') + \
                'tear-down: ' + '; '.join(problems)
        if json_path:
            with open(json_path, 'w') as handle:
                json.dump(run.as_dict(), handle, indent=2, sort_keys=True)
    return run


def _keep_tempest(workdir, target):
    source = os.path.join(workdir, 'tempest')
    for top, _dirs, files in os.walk(source):
        for name in files:
            if name.endswith(('.log', '.conf', '.txt', '.subunit')):
                src = os.path.join(top, name)
                dest = os.path.join(target, 'tempest',
                                    os.path.relpath(src, source))
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copyfile(src, dest)
