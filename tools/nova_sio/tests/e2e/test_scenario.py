# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The real-cloud scenario: its bookkeeping everywhere, the run itself
with ``NOVA_SIO_E2E=1``.

The report (step table, ``N passed, N failed``, JSON), the outside
checks of :class:`~nova_sio.e2e.scenario.Scenario` against a cloud
described by hand (a leaked volume, a stray mapping, a loop device or a
domain too many, a data marker that is not the one the guest wrote, each
fails the step), and the ``run`` command on a machine that cannot run
it. The live test builds the two-host cloud and runs the short slice.
"""

import io
import json
import os
import subprocess
import sys
import tempfile
import time
from unittest import mock

import fixtures
from oslotest import base

from nova_sio.e2e import __main__ as e2e_main
from nova_sio.e2e import cloud as cloud_mod
from nova_sio.e2e import guest as guest_mod
from nova_sio.e2e import machine
from nova_sio.e2e import report as report_mod
from nova_sio.e2e import scenario
from nova_sio.tests.e2e import base as e2e_base
from nova_sio.tests import sio_base

naming = sio_base.naming

UUID1 = '6f1c7a8e-36a4-4b53-9a3c-1f8f4f3c9a01'
UUID2 = '0d4b2f3a-5d6e-4f70-8a9b-0c1d2e3f4a5b'


class FakeClock(object):

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class ReportTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.clock = FakeClock()
        self.report = report_mod.Report('nova 34.0.0, full slice',
                                        clock=self.clock)

    def test_steps_are_timed_and_failures_keep_their_reason(self):
        with self.report.step('boot') as step:
            self.clock.now += 41.25
            step.note('booted on h1')
        with self.report.step('live-migration'):
            self.clock.now += 3
            raise report_mod.StepFailed(reason='h1 still maps volume 7')
        with self.report.step('resize'):
            raise KeyError('flavor')
        self.report.not_run('delete-all')
        boot, migration, resize, delete = self.report.steps
        self.assertEqual((report_mod.PASSED, 41.25, ''),
                         (boot.status, boot.seconds, boot.detail))
        self.assertEqual(['booted on h1'], boot.notes)
        self.assertEqual(report_mod.FAILED, migration.status)
        self.assertEqual('h1 still maps volume 7', migration.detail)
        self.assertIsNone(migration.traceback)   # an expected finding
        self.assertEqual("KeyError: 'flavor'", resize.detail)
        self.assertIn('Traceback', resize.traceback)
        self.assertEqual(report_mod.NOT_RUN, delete.status)
        self.assertEqual('after the failure of live-migration',
                         delete.detail)
        self.assertFalse(self.report.ok)
        # A step that was not run proved nothing: it counts as failed.
        self.assertEqual('1 passed, 3 failed', self.report.summary())

    def test_table_and_closing_lines(self):
        with self.report.step('boot'):
            self.clock.now += 12.34
        with self.report.step('delete-all'):
            raise report_mod.StepFailed(reason='volume X leaked\nvolume 1')
        self.report.timing('boot to console marker', 9.87)
        self.report.figure('peak memory', '1536 MiB')
        lines = self.report.closing_lines()
        self.assertEqual('== nova 34.0.0, full slice', lines[0])
        self.assertEqual(['step', 'result', 'seconds', 'detail'],
                         lines[1].split())
        self.assertEqual(['boot', 'passed', '12.3'], lines[2].split())
        self.assertEqual(['delete-all', 'FAILED', '0.0', 'volume', 'X',
                          'leaked'], lines[3].split())
        self.assertIn('timings: boot to console marker 9.9 s', lines)
        self.assertIn('figures: peak memory 1536 MiB', lines)
        self.assertIn('FAILED delete-all:', lines)
        self.assertIn('  volume 1', lines)
        self.assertEqual('1 passed, 1 failed', lines[-1])

    def test_json_result(self):
        with self.report.step('boot'):
            self.clock.now += 2
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'r.json')
        self.report.write_json(path)
        with open(path) as handle:
            data = json.load(handle)
        self.assertEqual('1 passed, 0 failed', data['summary'])
        self.assertEqual([{'name': 'boot', 'status': 'passed',
                           'seconds': 2.0, 'detail': '', 'notes': [],
                           'traceback': None}], data['steps'])
        self.assertTrue(self.report.ok)

    def test_interrupt_ends_the_run_and_is_recorded(self):
        def interrupted():
            with self.report.step('boot'):
                raise KeyboardInterrupt()
        self.assertRaises(KeyboardInterrupt, interrupted)
        self.assertEqual(report_mod.FAILED, self.report.steps[0].status)
        self.assertIn('interrupted', self.report.steps[0].detail)

    def test_no_steps_is_not_ok(self):
        self.assertFalse(self.report.ok)


class MemoryTest(base.BaseTestCase):

    def test_tree_rss_counts_children_once(self):
        child = subprocess.Popen([sys.executable, '-c',
                                  'import time; x = bytearray(64 << 20); '
                                  'print(1, flush=True); time.sleep(30)'],
                                 stdout=subprocess.PIPE)
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        child.stdout.readline()
        alone = report_mod.tree_rss([os.getpid()]) - report_mod.tree_rss(
            [child.pid])
        both = report_mod.tree_rss([os.getpid()])
        self.assertGreater(report_mod.tree_rss([child.pid]), 64 << 20)
        # This process's own RSS moves by a few pages between two reads;
        # counting the child twice would add its 64 MiB.
        self.assertLess(abs(both - report_mod.tree_rss([os.getpid(),
                                                        child.pid])),
                        8 << 20)
        self.assertGreater(both, alone)

    def test_sampler_keeps_the_peak(self):
        values = iter([[os.getpid()], [], [os.getpid()]])
        sampler = report_mod.MemorySampler(lambda: next(values))
        first = sampler.sample()
        self.assertEqual(0, sampler.sample())
        sampler.sample()
        self.assertGreater(first, 0)
        self.assertGreaterEqual(sampler.peak, first)
        self.assertEqual(3, sampler.samples)


class NamesAndConsoleTest(base.BaseTestCase):

    def test_volume_names_of_the_runtime_are_read_back(self):
        for disk in ('disk', 'disk.local', 'disk.swap', 'disk.rescue',
                     'disk.config', 'disk.config.rescue', 'disk.eph12'):
            for kind in ('', 'snapshot', 'temporary'):
                name = naming.volume_name(UUID1, disk, prefix='ab',
                                          kind=kind)
                self.assertEqual((UUID1, disk, kind),
                                 scenario.parse_volume_name(name))
        self.assertIsNone(scenario.parse_volume_name('base-volume'))
        self.assertIsNone(scenario.parse_volume_name(None))

    def test_ephemeral_disk_names(self):
        for disk in ('disk.local', 'disk.eph0', 'disk.eph12'):
            self.assertEqual('ephemeral', scenario.canonical(disk))
        for disk in ('disk', 'disk.swap', 'disk.rescue', 'disk.config'):
            self.assertEqual(disk, scenario.canonical(disk))

    def test_last_boot_only(self):
        text = '\n'.join([
            'NOVA-SIO-GUEST BOOTED boot_id=aaaa kernel=6.1',
            'NOVA-SIO-GUEST DISK vda role=root size=1 before=- '
            'wrote=NSIO-DATA:root:aaaa readback=ok',
            'NOVA-SIO-GUEST READY',
            'NOVA-SIO-GUEST COUNTER 0 boot_id=aaaa',
            '[    0.1] kernel noise',
            'NOVA-SIO-GUEST BOOTED boot_id=bbbb kernel=6.1',
            'NOVA-SIO-GUEST DISK vda role=root size=1 '
            'before=NSIO-DATA:root:aaaa wrote=NSIO-DATA:root:bbbb '
            'readback=ok'])
        parsed = scenario.last_boot(text)
        self.assertEqual('bbbb', parsed['booted']['boot_id'])
        self.assertEqual('NSIO-DATA:root:aaaa',
                         parsed['disks']['vda']['before'])
        self.assertFalse(parsed['ready'])
        self.assertEqual([], parsed['counters'])

    def test_domain_disks(self):
        xml = '''<domain type='qemu'><name>instance-00000001</name>
          <devices>
            <disk type='block' device='disk'>
              <source dev='/d/by-id/emc-vol-1a2b-0000000100000002'/>
              <target dev='vda' bus='virtio'/></disk>
            <disk type='file' device='cdrom'><target dev='hdc'/></disk>
            <disk type='file' device='disk'>
              <source file='/x/disk.config'/><target dev='vdz'/></disk>
          </devices></domain>'''
        disks = scenario.domain_disks(xml)
        self.assertEqual({'vda': '/d/by-id/emc-vol-1a2b-0000000100000002',
                          'vdz': '/x/disk.config'}, disks)
        self.assertEqual('0000000100000002',
                         scenario.volume_id_of(disks['vda']))
        self.assertIsNone(scenario.volume_id_of('/x/disk.config'))

    def test_device_marker_is_read_with_o_direct(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'disk')
        guest_mod.make_disk(path, 4 << 20, {
            guest_mod.MARKER_OFFSET: 'NSIO-DATA:root:abcd'})
        self.assertEqual('NSIO-DATA:root:abcd',
                         scenario.read_device_marker(path))
        self.assertIsNone(scenario.read_device_marker(path, 0))

    def test_emulator_audit_is_normalized(self):
        audit = {'leaked_volumes': [{'id': 'v1', 'name': 'n1',
                                     'sizeInKb': 8 << 20},
                                    {'id': 'v2', 'name': 'n2',
                                     'sizeInKb': 8 << 20}],
                 'stray_mappings': [{'volumeId': 'v1', 'sdcId': 's1',
                                     'host': 'h1'},
                                    {'volumeId': 'v1', 'sdcId': 's2',
                                     'host': 'h2'}],
                 'stray_devices': []}
        volumes, mappings, extra = cloud_mod.normalize_audit(audit)
        self.assertEqual({'v1', 'v2'}, set(volumes))
        self.assertEqual({'v1': {'h1', 'h2'}}, mappings)
        self.assertEqual({}, extra)
        audit['stray_devices'] = ['h1: emc-vol-x-v9']
        self.assertEqual({'stray_devices': ['h1: emc-vol-x-v9']},
                         cloud_mod.normalize_audit(audit)[2])
        contract = {'volumes': [{'id': 'v3', 'name': 'n3'}],
                    'mappings': {'v3': ['h2'], 'v4': []}}
        volumes, mappings, _e = cloud_mod.normalize_audit(contract)
        self.assertEqual({'v3': {'h2'}}, mappings)


class FakeServer(object):

    def __init__(self, server_id, host, status='ACTIVE'):
        self.id = server_id
        self.compute_host = host
        self.instance_name = 'instance-%s' % server_id[:4]
        self.status = status
        self.task_state = None
        self.fault = None


class FakeCompute(object):

    def __init__(self):
        self.servers = {}
        self.consoles = {}

    def get_server(self, server_id):
        return self.servers[server_id]

    def get_server_console_output(self, server_id):
        return {'output': self.consoles.get(server_id, '')}


class FakeHost(object):

    def __init__(self, xml=''):
        self.xml = xml

    def virsh(self, *args):
        return self.xml


class FakeCloud(object):
    """A cloud described by hand: what the gateway and libvirt show."""

    def __init__(self, tmp):
        self.conn = mock.Mock(compute=FakeCompute())
        self.hosts = {'h1': FakeHost(), 'h2': FakeHost()}
        self.guest = mock.Mock(info={'root_marker': 'NSIO-ROOT-IMAGE:g'})
        self.tmp = tmp
        self.volumes = {}
        self.mappings = {}
        self.loops = []
        self.domains = {'h1': {}, 'h2': {}}
        self.extra = {}
        self.devices = {}

    def observe(self):
        return scenario.Observation(dict(self.volumes), dict(
            (k, set(v)) for k, v in self.mappings.items()),
            list(self.loops), dict(self.domains), dict(self.extra))

    def device_path(self, host, vol_id):
        return self.devices.get((host, vol_id))

    def add_server(self, server_id, host, disks, marks):
        """A running server with its volumes mapped on ``host`` and the
        data markers on its devices.
        """
        server = FakeServer(server_id, host)
        self.conn.compute.servers[server_id] = server
        self.domains[host][server.instance_name] = 'running'
        for index, disk in enumerate(disks):
            vol_id = '%s%02d' % (server_id[:4], index)
            self.volumes[vol_id] = {'name': naming.volume_name(
                server_id, disk), 'size_kb': 8 << 20}
            self.mappings[vol_id] = {host}
            loop = '/dev/loop%d' % (len(self.loops) + 40)
            self.loops.append(loop)
            path = os.path.join(self.tmp, vol_id)
            guest_mod.make_disk(path, 4 << 20, {
                guest_mod.MARKER_OFFSET: marks.get(scenario.canonical(disk),
                                                   '')})
            self.devices[(host, vol_id)] = path
        return server


class ScenarioTestCase(base.BaseTestCase):
    """A scenario over a :class:`FakeCloud` in a temporary directory."""

    def setUp(self):
        super().setUp()
        self.cloud = FakeCloud(self.useFixture(fixtures.TempDir()).path)
        self.report = report_mod.Report('t')
        self.scenario = scenario.Scenario(self.cloud, self.report,
                                          progress=lambda line: None)


class ZeroCopyBaseVolumeTest(ScenarioTestCase):
    """A zero-copy cloud keeps the images' base volumes, unmapped."""

    BASE = 'ThG-nIhY5Whtk1FlN2Uz.B0'

    def setUp(self):
        super().setUp()
        self.cloud.volumes['b0'] = {'name': self.BASE, 'size_kb': 8 << 20}

    def test_names(self):
        self.assertTrue(scenario.is_base_volume(self.BASE))
        self.assertTrue(scenario.is_base_volume(
            'nsioThG-nIhY5Whtk1FlN2Uz.B12'))
        self.assertFalse(scenario.is_base_volume(self.BASE + '#'))
        self.assertFalse(scenario.is_base_volume('base-volume'))
        self.assertFalse(scenario.is_base_volume(naming.volume_name(
            UUID1, 'disk')))

    def test_base_volume_passes_only_with_zero_copy(self):
        step = self.check()
        self.assertEqual(report_mod.FAILED, step.status)
        self.assertIn('belongs to no instance', step.detail)
        self.cloud.zero_copy = True
        step = self.check()
        self.assertEqual(report_mod.PASSED, step.status, step.detail)

    def test_mapped_base_volume_fails(self):
        self.cloud.zero_copy = True
        self.cloud.mappings['b0'] = {'h2'}
        step = self.check()
        self.assertEqual(report_mod.FAILED, step.status)
        self.assertIn('base volume b0 (%s) is still mapped to h2' %
                      self.BASE, step.detail)

    def check(self):
        return CheckCloudTest.check(self)

    def delete_all(self):
        with self.report.step('delete-all') as step:
            self.scenario.current = step
            self.scenario.step_delete_all()
        return step

    def test_delete_all_keeps_only_base_volumes(self):
        step = self.delete_all()
        self.assertEqual(report_mod.FAILED, step.status)
        self.cloud.zero_copy = True
        step = self.delete_all()
        self.assertEqual(report_mod.PASSED, step.status, step.detail)
        self.assertIn('1 zero-copy base volume(s) kept for later boots',
                      step.notes)
        self.cloud.volumes['x1'] = {'name': 'left-over', 'size_kb': 8 << 20}
        step = self.delete_all()
        self.assertEqual(report_mod.FAILED, step.status)
        self.assertIn('left-over', step.detail)

    def test_a_fill_left_behind_fails(self):
        self.cloud.zero_copy = True
        self.cloud.volumes['b0']['name'] = self.BASE + '#'
        step = self.check()
        self.assertEqual(report_mod.FAILED, step.status)
        self.assertIn('belongs to no instance', step.detail)


class CheckCloudTest(ScenarioTestCase):
    """Each kind of leak or damage fails the step; a clean cloud passes."""

    DISKS = ('disk', 'disk.eph0', 'disk.swap')
    MARKS = {'disk': 'NSIO-DATA:root:b1', 'ephemeral':
             'NSIO-DATA:ephemeral:b1', 'disk.swap': 'NSIO-DATA:swap:b1'}

    def setUp(self):
        super().setUp()
        self.cloud.add_server(UUID1, 'h1', self.DISKS, self.MARKS)
        tracked = scenario.Tracked(UUID1, 'nsio-e2e-1', scenario.FLAVOR)
        tracked.marks = dict(self.MARKS)
        self.scenario.servers[UUID1] = tracked
        self.tracked = tracked

    def check(self):
        with self.report.step('check') as step:
            self.scenario.current = step
            self.scenario.check_cloud()
        return step

    def assert_fails(self, *fragments):
        step = self.check()
        self.assertEqual(report_mod.FAILED, step.status)
        for fragment in fragments:
            self.assertIn(fragment, step.detail)
        return step

    def test_clean_cloud_passes(self):
        step = self.check()
        self.assertEqual(report_mod.PASSED, step.status, step.detail)
        self.assertIn('cloud clean: 3 volume(s), 3 mapping(s), 3 loop '
                      'device(s)', step.notes[-1])

    def test_volume_of_a_deleted_server_leaks(self):
        self.cloud.volumes['zz'] = {'name': naming.volume_name(
            UUID2, 'disk.swap')}
        self.assert_fails('volume zz', 'disk.swap of %s) leaked' % UUID2)

    def test_volume_of_no_instance(self):
        self.cloud.volumes['zz'] = {'name': 'someone-else'}
        self.assert_fails('volume zz (someone-else) belongs to no instance')

    def test_resize_snapshot_left_behind(self):
        self.cloud.volumes['zz'] = {'name': naming.volume_name(
            UUID1, 'disk', kind='snapshot')}
        self.assert_fails('snapshot volume', 'left behind')

    def test_rescue_disk_left_after_unrescue(self):
        self.cloud.volumes['zz'] = {'name': naming.volume_name(
            UUID1, 'disk.rescue')}
        self.assert_fails('(disk.rescue) of nsio-e2e-1 is not a disk it '
                          'has now')

    def test_missing_volume(self):
        del self.cloud.volumes['6f1c01']
        del self.cloud.mappings['6f1c01']
        self.cloud.loops.pop()
        self.assert_fails('nsio-e2e-1 has no ephemeral volume')

    def test_mapping_left_on_the_source_host(self):
        self.cloud.mappings['6f1c00'].add('h2')
        self.cloud.loops.append('/dev/loop99')
        self.assert_fails('volume 6f1c00 (disk of nsio-e2e-1, ACTIVE) is '
                          'still mapped to h2')

    def test_source_mapping_allowed_while_a_resize_waits(self):
        self.cloud.mappings['6f1c00'].add('h2')
        self.cloud.loops.append('/dev/loop99')
        with self.report.step('check') as step:
            self.scenario.current = step
            self.scenario.check_cloud(transient=(UUID1,))
        self.assertEqual(report_mod.PASSED, step.status, step.detail)

    def test_a_resize_waiting_for_confirmation_is_transient(self):
        # The source still maps the volumes and keeps the guest defined.
        self.cloud.conn.compute.servers[UUID1].status = 'VERIFY_RESIZE'
        self.cloud.mappings['6f1c00'].add('h2')
        self.cloud.loops.append('/dev/loop99')
        self.cloud.domains['h2']['instance-6f1c'] = 'shut off'
        self.cloud.volumes['zz'] = {'name': naming.volume_name(
            UUID1, 'disk', kind='snapshot')}
        step = self.check()
        self.assertEqual(report_mod.PASSED, step.status, step.detail)
        # Confirmed: the same leftovers fail.
        self.cloud.conn.compute.servers[UUID1].status = 'ACTIVE'
        self.assert_fails('snapshot volume', 'still mapped to h2',
                          'host h2 has domain instance-6f1c (shut off)')

    def test_failed_build_without_volumes_and_its_mappings(self):
        self.scenario.servers[UUID2] = scenario.Tracked(
            UUID2, 'nsio-e2e-bad', scenario.FLAVOR)
        bad = FakeServer(UUID2, None, status='ERROR')
        self.cloud.conn.compute.servers[UUID2] = bad
        self.assertEqual(report_mod.PASSED, self.check().status)
        self.cloud.volumes['zz'] = {'name': naming.volume_name(UUID2,
                                                               'disk')}
        self.cloud.mappings['zz'] = {'h1'}
        self.cloud.loops.append('/dev/loop99')
        self.assert_fails('volume zz (disk of nsio-e2e-bad, ERROR) is '
                          'still mapped to h1')

    def test_loop_device_without_mapping(self):
        self.cloud.loops.append('/dev/loop99')
        self.assert_fails('4 loop device(s) for 3 mapping(s)')

    def test_domain_left_on_a_host(self):
        self.cloud.domains['h2']['instance-0009'] = 'shut off'
        self.assert_fails('host h2 has domain instance-0009 (shut off) of '
                          'no server there')

    def test_guest_not_running(self):
        self.cloud.domains['h1']['instance-6f1c'] = 'paused'
        self.assert_fails('domain instance-6f1c is paused')

    def test_data_marker_not_the_one_written(self):
        self.tracked.marks['ephemeral'] = 'NSIO-DATA:ephemeral:b2'
        self.assert_fails('ephemeral of nsio-e2e-1: the volume holds '
                          'NSIO-DATA:ephemeral:b1, the guest last wrote '
                          'NSIO-DATA:ephemeral:b2')

    def test_gateway_findings_fail(self):
        self.cloud.extra = {'unmapped_in_use': ['volume 6f1c00 on h1']}
        self.assert_fails('unmapped_in_use: volume 6f1c00 on h1')


class CheckBootTest(base.BaseTestCase):
    """The console of a boot against the expected markers and sizes."""

    def setUp(self):
        super().setUp()
        self.cloud = FakeCloud(self.useFixture(fixtures.TempDir()).path)
        self.scenario = scenario.Scenario(self.cloud, report_mod.Report('t'),
                                          progress=lambda line: None)
        self.scenario.current = report_mod.Step('boot')
        server = self.cloud.add_server(UUID1, 'h1', CheckCloudTest.DISKS,
                                       {})
        self.tracked = scenario.Tracked(UUID1, 'nsio-e2e-1',
                                        scenario.FLAVOR)
        self.scenario.servers[UUID1] = self.tracked
        self.scenario.server(self.tracked)
        disks = ''.join(
            "<disk type='block'><source dev='/by-id/emc-vol-s-%s'/>"
            "<target dev='%s'/></disk>" % ('6f1c%02d' % i, dev)
            for i, dev in enumerate(('vda', 'vdb', 'vdc')))
        self.cloud.hosts['h1'].xml = '<domain><devices>%s</devices>' \
            '</domain>' % disks
        self.server = server

    def console(self, boot_id, before, sizes=None, swap='ok',
                root='NSIO-ROOT-IMAGE:g'):
        sizes = sizes or {}
        lines = ['NOVA-SIO-GUEST BOOTED boot_id=%s kernel=6.1' % boot_id,
                 'NOVA-SIO-GUEST ROOT-IMAGE %s' % root]
        for dev, role in (('vda', 'root'), ('vdb', 'ephemeral'),
                          ('vdc', 'swap')):
            lines.append('NOVA-SIO-GUEST DISK %s role=%s size=%d before=%s '
                         'wrote=NSIO-DATA:%s:%s readback=ok' % (
                             dev, role, sizes.get(dev, 8 << 30),
                             before.get(dev, '-'), role, boot_id))
        lines.append('NOVA-SIO-GUEST SWAP vdc signature=%s swapon=ok' %
                     swap)
        lines.append('NOVA-SIO-GUEST READY')
        return scenario.last_boot('\n'.join(lines))

    def check(self, parsed):
        try:
            self.scenario.check_boot(self.tracked, parsed)
        except report_mod.StepFailed as exc:
            return exc.message
        return None

    def test_first_boot_then_reboot_keeps_data(self):
        self.assertIsNone(self.check(self.console('b1', {})))
        self.assertEqual({'disk': 'NSIO-DATA:root:b1',
                          'ephemeral': 'NSIO-DATA:ephemeral:b1',
                          'disk.swap': 'NSIO-DATA:swap:b1'},
                         self.tracked.marks)
        self.assertEqual('b1', self.tracked.boot_id)
        self.assertIsNone(self.check(self.console('b2', {
            'vda': 'NSIO-DATA:root:b1', 'vdb': 'NSIO-DATA:ephemeral:b1',
            'vdc': 'NSIO-DATA:swap:b1'})))

    def test_lost_data_fails(self):
        self.check(self.console('b1', {}))
        problem = self.check(self.console('b2', {
            'vda': 'NSIO-DATA:root:b1', 'vdb': '-',
            'vdc': 'NSIO-DATA:swap:b1'}))
        self.assertIn('vdb (ephemeral): data marker -, expected '
                      'NSIO-DATA:ephemeral:b1', problem)

    def test_fresh_disk_with_old_data_fails(self):
        problem = self.check(self.console('b1', {
            'vdb': 'NSIO-DATA:ephemeral:zz'}))
        self.assertIn('vdb (ephemeral) should be a fresh disk but holds '
                      'NSIO-DATA:ephemeral:zz', problem)

    def test_missing_disk_counts_only_when_the_domain_has_it(self):
        parsed = self.console('b1', {})
        parsed['errors'] = ['NOVA-SIO-GUEST DISK vdd role=swap missing']
        self.assertIsNone(self.check(parsed))
        parsed = self.console('b2', {
            'vda': 'NSIO-DATA:root:b1', 'vdb': 'NSIO-DATA:ephemeral:b1',
            'vdc': 'NSIO-DATA:swap:b1'})
        parsed['errors'] = ['NOVA-SIO-GUEST DISK vdc role=swap missing']
        self.assertIn('DISK vdc role=swap missing', self.check(parsed))

    def test_wrong_size_swap_and_image_fail(self):
        problem = self.check(self.console(
            'b1', {}, sizes={'vda': 16 << 30}, swap='missing',
            root='NSIO-ROOT-IMAGE:other'))
        self.assertIn("root image marker 'NSIO-ROOT-IMAGE:other'", problem)
        self.assertIn('vda (disk): size 17179869184, flavor says '
                      '8589934592', problem)
        self.assertIn('swap vdc: signature missing', problem)

    def test_a_disk_of_another_instance_fails(self):
        self.cloud.volumes['6f1c01']['name'] = naming.volume_name(
            UUID2, 'disk.eph0')
        problem = self.check(self.console('b1', {}))
        self.assertIn('disk vdb of nsio-e2e-1 is volume 6f1c01', problem)


class RunCommandTest(base.BaseTestCase):

    def test_unfit_machine_gets_the_list_and_status_2(self):
        missing = [machine.Missing('root', 'run it as root'),
                   machine.Missing('network namespaces', 'not allowed')]
        out = io.StringIO()
        with mock.patch.object(machine, 'check', return_value=missing), \
                mock.patch('sys.stdout', out):
            code = e2e_main.main(['run', '--slice', 'short'])
        self.assertEqual(2, code)
        text = out.getvalue()
        self.assertIn('cannot run the real-cloud scenario', text)
        self.assertIn('  - root: run it as root', text)
        self.assertIn('  - network namespaces: not allowed', text)
        self.assertNotIn('Traceback', text)

    def test_slices(self):
        self.assertEqual(('boot', 'live-migration', 'delete-all'),
                         scenario.SLICES['short'])
        self.assertTrue(set(scenario.SHORT) <= set(scenario.FULL))
        self.assertEqual('delete-all', scenario.FULL[-1])
        for name in scenario.FULL:
            self.assertTrue(callable(getattr(
                scenario.Scenario, 'step_' + name.replace('-', '_'))))


class LiveShortSliceTest(base.BaseTestCase):
    """Builds the two-host cloud and runs the short slice (root)."""

    def test_short_slice(self):
        e2e_base.require_e2e(self, need_guest_kernel=True)
        keep = tempfile.mkdtemp(prefix='nova-sio-e2e-logs-')
        lines = []
        started = time.monotonic()
        result = cloud_mod.run_cloud(
            os.environ.get('NOVA_SIO_E2E_VERSION', '34.0.0'),
            scenario.SHORT, progress=lines.append, keep_logs=keep,
            slice_name='short')
        sys.stderr.write('\n'.join(result.closing_lines()) + '\n(%.0f s, '
                         'logs in %s)\n' % (time.monotonic() - started,
                                            keep))
        self.assertTrue(result.ok, '\n'.join(result.closing_lines()))
