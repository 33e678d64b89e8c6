# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Tempest on the real cloud: its configuration, exclusions and results
(no cloud), and one small Tempest test on a live cloud (opt-in)."""

import configparser
import datetime
import io
import json
import os
import re

import subunit
import testtools

from nova_sio.e2e import controlplane
from nova_sio.e2e import novaconf
from nova_sio.e2e import tempest
from nova_sio.e2e import tempest_conf
from nova_sio.tests.e2e import base as e2e_base

AUTH = {'auth_url': 'http://10.251.0.1:5000/v3', 'username': 'admin',
        'password': 'secret', 'project_name': 'admin',
        'user_domain_name': 'Default', 'project_domain_name': 'Default',
        'region_name': 'RegionOne', 'identity_api_version': '3'}


def written(test, **kwargs):
    """Write the configuration as the harness does; read it back."""
    args = dict(auth=AUTH, auth_url=AUTH['auth_url'],
                images=('img-1', 'img-2'), flavors=('fl-8', 'fl-16'),
                network_extensions=('router', 'security-group'))
    args.update(kwargs)
    path = os.path.join(test.useFixture(
        __import__('fixtures').TempDir()).path, 'tempest.conf')
    novaconf.write_ini(path, tempest_conf.tempest_conf(**args))
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)
    return parser


class TempestConfTest(testtools.TestCase):

    def test_cloud_facts(self):
        conf = written(self)
        self.assertEqual('http://10.251.0.1:5000/v3',
                         conf.get('identity', 'uri_v3'))
        self.assertEqual('v3', conf.get('identity', 'auth_version'))
        self.assertEqual('secret', conf.get('auth', 'admin_password'))
        self.assertEqual('True', conf.get('auth', 'use_dynamic_credentials'))
        self.assertEqual(('img-1', 'img-2', 'fl-8', 'fl-16', '2'), tuple(
            conf.get('compute', k) for k in (
                'image_ref', 'image_ref_alt', 'flavor_ref', 'flavor_ref_alt',
                'min_compute_nodes')))
        self.assertEqual('router,security-group', conf.get(
            'network-feature-enabled', 'api_extensions'))

    def test_two_hosts_migrate(self):
        feat = written(self)['compute-feature-enabled']
        self.assertEqual('True', feat['live_migration'])
        # Tempest's live migrations of image-backed servers run only with
        # it; sio's are refused below 2.25 (see SharedStorageTest).
        self.assertEqual('True', feat['block_migration_for_live_migration'])
        # QEMU cannot migrate a guest that arrived paused back out.
        self.assertEqual('False', feat['live_migrate_back_and_forth'])
        for name in ('resize', 'cold_migration', 'console_output'):
            self.assertEqual('True', feat[name], name)

    def test_one_host_cannot_migrate(self):
        conf = written(self, compute_nodes=1)
        feat = conf['compute-feature-enabled']
        self.assertEqual('1', conf.get('compute', 'min_compute_nodes'))
        self.assertEqual('False', feat['live_migration'])
        self.assertEqual('False', feat['cold_migration'])

    def test_lvm_turns_resize_and_cold_migration_off(self):
        feat = written(self, images_type='lvm')['compute-feature-enabled']
        self.assertEqual('False', feat['resize'])
        self.assertEqual('False', feat['cold_migration'])
        self.assertEqual('True', feat['live_migration'])

    def test_absent_services_and_no_ports(self):
        conf = written(self)
        avail = conf['service_available']
        self.assertEqual('True', avail['neutron'])
        for name in ('cinder', 'swift', 'horizon'):
            self.assertEqual('False', avail[name], name)
        self.assertEqual('False', conf.get('validation', 'run_validation'))
        self.assertGreater(int(conf.get('service-clients', 'http_timeout')),
                           60)
        self.assertEqual('False', conf.get('auth',
                                           'create_isolated_networks'))
        self.assertFalse(conf.has_option('compute', 'fixed_network_name'))
        self.assertEqual('False', conf.get('compute-feature-enabled',
                                           'interface_attach'))


class ComputeOptionsTest(testtools.TestCase):

    CONF = ('[DEFAULT]\nhost = h1\n\n[libvirt]\nimages_type = sio\n\n'
            '[scaleio]\nrest_server_ip = 10.0.0.1\n'
            'round_volume_capacity = False\n\n[workarounds]\nx = 1\n')

    def parse(self, text):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(text)   # raises on a duplicate option
        return parser

    def test_sio_rounds_and_snapshots_qcow2(self):
        text = tempest.compute_options(self.CONF, 'sio')
        conf = self.parse(text)
        self.assertEqual('True', conf.get('scaleio', 'round_volume_capacity'))
        self.assertEqual('10.0.0.1', conf.get('scaleio', 'rest_server_ip'))
        self.assertEqual('qcow2', conf.get('libvirt',
                                           'snapshot_image_format'))
        self.assertEqual('sio', conf.get('libvirt', 'images_type'))
        self.assertFalse(conf.has_option('workarounds',
                                         'round_volume_capacity'))
        self.assertEqual(text, tempest.compute_options(text, 'sio'))

    def test_other_backend_same_snapshot_format(self):
        conf = self.parse(tempest.compute_options(
            '[DEFAULT]\nhost = h1\n\n[libvirt]\nimages_type = qcow2\n',
            'qcow2'))
        self.assertEqual('qcow2', conf.get('libvirt',
                                           'snapshot_image_format'))
        self.assertFalse(conf.has_section('scaleio'))

    def test_no_scaleio_section(self):
        self.assertRaises(novaconf.ConfError, tempest.compute_options,
                          '[DEFAULT]\nhost = h1\n\n[libvirt]\n', 'sio')


class ExclusionTest(testtools.TestCase):

    LVM_JOB = (r'(^tempest\.(api\.compute\.(volumes\.test_attach_volume\.'
               r'AttachVolumeTestJSON\.test_attach_detach_volume|servers\.('
               r'test_server_rescue\.ServerStableDeviceRescueTest\.'
               r'test_stable_device_rescue_disk_virtio_with_volume_attached|'
               r'test_server_rescue_negative\.ServerRescueNegativeTestJSON\.'
               r'test_rescued_vm_detach_volume)))|.*\[.*\bslow\b.*\])')
    IDS = (
        'tempest.api.compute.volumes.test_attach_volume.AttachVolumeTestJSON'
        '.test_attach_detach_volume[id-7fa563fe-f0f7-43eb-9e22-a1ece036b513]',
        'tempest.api.compute.servers.test_server_rescue.'
        'ServerStableDeviceRescueTest.'
        'test_stable_device_rescue_disk_virtio_with_volume_attached[id-1]',
        'tempest.api.compute.servers.test_server_rescue_negative.'
        'ServerRescueNegativeTestJSON.test_rescued_vm_detach_volume[id-2]',
        'tempest.api.compute.servers.test_servers.ServersTestJSON.'
        'test_x[id-3,slow]',
        'tempest.api.compute.servers.test_create_server.ServersTestJSON.'
        'test_list_servers[id-4,smoke]',
        'tempest.api.compute.admin.test_live_migration.LiveMigrationTest.'
        'test_live_block_migration[id-5]',
    )

    def test_same_as_nova_lvm_job(self):
        # Every id nova-lvm's regex excludes, and only those, is matched
        # by one of the nova-lvm entries.
        lvm = [e for e in tempest.exclusions() if e.source == 'nova-lvm']
        for test_id in self.IDS:
            self.assertEqual(bool(re.search(self.LVM_JOB, test_id)),
                             tempest.excluded_by(test_id, lvm) is not None,
                             test_id)

    def test_every_exclusion_has_a_reason(self):
        items = tempest.exclusions()
        self.assertIn('nova-live-migration', [e.source for e in items])
        for item in items:
            re.compile(item.regex)
            self.assertTrue(item.reason.strip(), item.regex)

    def test_exclude_list_file(self):
        items = tempest.exclusions()
        lines = tempest.exclude_list_text(items).splitlines()
        self.assertEqual(len(items), len(lines))
        for item, line in zip(items, lines):
            # stestr reads the regex before '#', the rest is a comment.
            regex, comment = line.split('#', 1)
            self.assertEqual(item.regex, regex.strip())
            self.assertIn(item.reason, comment)

    def test_no_block_migration_onto_shared_storage(self):
        base = 'tempest.api.compute.admin.test_live_migration.'
        refused = [base + 'LiveMigrationTest.test_live_block_migration[id-1]',
                   base + 'LiveMigrationWithoutHostTest.'
                   'test_live_block_migration_paused[id-2]']
        auto = [base + 'LiveAutoBlockMigrationV225Test.'
                'test_live_block_migration[id-1]',
                base + 'LiveAutoBlockMigrationV225Test.'
                'test_live_block_migration_paused[id-2]',
                base + 'LiveMigrationTest.'
                'test_live_block_migration_with_attached_volume[id-3]']
        for test_id in refused:
            self.assertEqual('shared storage', tempest.excluded_by(
                test_id, tempest.exclusions('sio')).source)
            self.assertIsNone(tempest.excluded_by(
                test_id, tempest.exclusions('lvm')))
        for test_id in auto:
            self.assertIsNone(tempest.excluded_by(
                test_id, tempest.exclusions('sio')), test_id)

    def test_multi_nic_needs_bound_ports(self):
        found = tempest.excluded_by(
            'tempest.api.compute.servers.test_create_server_multi_nic.'
            'ServersTestMultiNic.test_verify_multiple_nics_order[id-6]',
            tempest.exclusions())
        self.assertEqual('absent service', found.source)
        self.assertEqual('absent service', tempest.excluded_by(
            'tempest.api.compute.admin.test_auto_allocate_network.'
            'AutoAllocateNetworkTest.test_server_multi_create_auto_allocate'
            '[id-7]', tempest.exclusions()).source)
        self.assertEqual('absent service', tempest.excluded_by(
            'tempest.api.compute.security_groups.test_security_groups.'
            'SecurityGroupsTestJSON.test_server_security_groups[id-9]',
            tempest.exclusions()).source)
        for test_id in ('tempest.api.compute.security_groups.'
                        'test_security_groups.SecurityGroupsTestJSON.'
                        'test_list_security_groups_by_server[id-11]',
                        'tempest.api.compute.servers.test_server_actions.'
                        'ServerActionsTestOtherA.'
                        'test_remove_server_all_security_groups[id-12]'):
            self.assertEqual('absent service', tempest.excluded_by(
                test_id, tempest.exclusions()).source, test_id)
        self.assertIsNone(tempest.excluded_by(
            'tempest.api.compute.security_groups.test_security_groups.'
            'SecurityGroupsTestJSON.test_security_group_create_get_delete'
            '[id-10]', tempest.exclusions()))
        # Booting with networks "none" needs no port: it runs.
        self.assertIsNone(tempest.excluded_by(
            'tempest.api.compute.admin.test_auto_allocate_network.'
            'AutoAllocateNetworkTest.test_server_create_no_allocate[id-8]',
            tempest.exclusions()))
        self.assertIsNone(tempest.excluded_by(
            'tempest.api.compute.servers.test_create_server.'
            'ServersTestJSON.test_list_servers[id-4,smoke]',
            tempest.exclusions()))

    def test_tempest_release_of_series(self):
        self.assertEqual('47.0.0', tempest.tempest_release('34.0.0'))
        self.assertEqual('46.2.0', tempest.tempest_release('33.0.0'))
        self.assertEqual('30.0.0', tempest.tempest_release('25.3.0'))
        self.assertRaises(tempest.TempestError, tempest.tempest_release,
                          '12.0.6')


def stream(*tests):
    """Return a subunit v2 stream of ``(id, status, attachments)``."""
    out = io.BytesIO()
    writer = subunit.StreamResultToBytes(out)
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    writer.startTestRun()
    for number, (test_id, status, files) in enumerate(tests):
        begin = start + datetime.timedelta(seconds=10 * number)
        writer.status(test_id=test_id, test_status='inprogress',
                      timestamp=begin)
        for name, text in sorted(files.items()):
            writer.status(test_id=test_id, file_name=name,
                          file_bytes=text.encode(), eof=True,
                          mime_type='text/plain; charset=utf8',
                          timestamp=begin)
        writer.status(test_id=test_id, test_status=status,
                      timestamp=begin + datetime.timedelta(seconds=2))
    writer.stopTestRun()
    return out.getvalue()


TRACEBACK = '''Traceback (most recent call last):
  File "tempest/common/waiters.py", line 136, in wait_for_server_status
    raise lib_exc.TimeoutException(message)
tempest.lib.exceptions.TimeoutException: Request timed out
Details: (ServersTest:test_resize) Server abc failed to reach ACTIVE status
'''


class ResultsTest(testtools.TestCase):

    def parsed(self):
        return tempest.parse_subunit(stream(
            ('tempest.api.compute.a.A.test_ok[id-1,smoke]', 'success', {}),
            ('tempest.api.compute.b.B.test_resize[id-2]', 'fail',
             {'traceback': TRACEBACK}),
            ('setUpClass (tempest.api.compute.c.C)', 'skip',
             {'reason': 'Cinder is not available'}),
            ('tempest.api.compute.d.D.test_y[id-3]', 'skip',
             {'reason': 'Interface attachment is not available.'}),
        ))

    def test_statuses_times_reasons(self):
        tests = self.parsed()
        self.assertEqual(['success', 'fail', 'skip', 'skip'],
                         [t['status'] for t in tests])
        self.assertEqual([2.0] * 4, [t['seconds'] for t in tests])
        self.assertEqual('Cinder is not available', tests[2]['reason'])
        self.assertEqual('TimeoutException: (ServersTest:test_resize) '
                         'Server abc failed to reach ACTIVE status',
                         tests[1]['reason'])
        self.assertEqual({'passed': 1, 'failed': 1, 'skipped': 2,
                          'total': 4, 'seconds': 8.0},
                         tempest.summarize(tests))

    def test_reason_without_details(self):
        text = ('Traceback (most recent call last):\n  File "x.py", line 1'
                '\n    self.assertEqual(1, 2)\ntesttools.matchers._impl.'
                'MismatchError: 1 != 2\n')
        self.assertEqual('MismatchError: 1 != 2',
                         tempest.failure_reason(text))
        self.assertEqual('(no traceback)', tempest.failure_reason(''))

    def test_results_from_output_of_a_stopped_run(self):
        output = '\n'.join([
            '{0} tempest.api.compute.a.A.test_ok [0.14s] ... ok',
            '{0} setUpClass (tempest.api.compute.c.C) ... SKIPPED: Serial '
            'console not supported.',
            '{1} tempest.api.compute.b.B.test_resize [6.6s] ... FAILED',
            '', 'Captured traceback:', '~~~~~~~~~~~~~~~~~~~',
            TRACEBACK, 'Captured pythonlogging:', '~~~~~~~', 'INFO x',
            '{0} tempest.api.compute.d.D.test_y [1.5s] ... ok',
            '{0} tempest.api.compute.e.E.test_z ...'])
        tests = tempest.parse_run_log(output)
        self.assertEqual([
            ('tempest.api.compute.a.A.test_ok', 'success', 0.14, ''),
            ('setUpClass (tempest.api.compute.c.C)', 'skip', None,
             'Serial console not supported.'),
            ('tempest.api.compute.b.B.test_resize', 'fail', 6.6,
             'TimeoutException: (ServersTest:test_resize) Server abc '
             'failed to reach ACTIVE status'),
            ('tempest.api.compute.d.D.test_y', 'success', 1.5, '')],
            [(t['id'], t['status'], t['seconds'], t['reason'])
             for t in tests])

    def test_table_lists_failures_then_skips(self):
        lines = tempest.table(self.parsed())
        self.assertEqual(['result', 'test', 'reason'], lines[0].split())
        body = [ln.split(None, 1) for ln in lines[2:]]
        self.assertEqual(['FAILED', 'skipped', 'skipped'],
                         [b[0] for b in body])
        self.assertTrue(body[0][1].startswith('b.B.test_resize '))
        self.assertIn('TimeoutException', body[0][1])
        self.assertTrue(body[1][1].startswith(
            'setUpClass (c.C) '), body[1][1])
        self.assertNotIn('test_ok', '\n'.join(lines))

    def test_no_table_when_all_passed(self):
        tests = tempest.parse_subunit(stream(
            ('tempest.api.compute.a.A.test_ok[id-1]', 'success', {})))
        self.assertEqual([], tempest.table(tests))

    def test_tempest_summary(self):
        output = ('{0} tempest.api.compute.a.A.test_ok [1.0s] ... ok\n\n'
                  '======\nTotals\n======\nRan: 1 tests in 3.0 sec.\n'
                  ' - Passed: 1\n - Skipped: 0\n - Failed: 0\n'
                  'Sum of execute time for each test: 1.0 sec.\n\n'
                  '==============\nWorker Balance\n==============\n'
                  ' - Worker 0 (1 tests) => 0:00:03.0\n')
        self.assertEqual(['======', 'Totals', '======',
                          'Ran: 1 tests in 3.0 sec.', ' - Passed: 1',
                          ' - Skipped: 0', ' - Failed: 0',
                          'Sum of execute time for each test: 1.0 sec.'],
                         tempest.tempest_summary(output))
        self.assertEqual([], tempest.tempest_summary('no summary\n'))

    def test_run_fails_on_any_failure(self):
        run = tempest.Run('t')
        item = tempest.Pass('compute', 'r')
        item.returncode = 0
        item.tests = [t for t in self.parsed() if t['status'] != 'fail']
        run.passes.append(item)
        self.assertTrue(run.ok)
        item.tests = self.parsed()
        self.assertFalse(run.ok)
        closing = run.closing_lines()
        self.assertEqual('compute: 1 passed, 1 failed, 2 skipped',
                         closing[-1])
        self.assertEqual(json.loads(json.dumps(run.as_dict()))['passes'][0][
            'counts']['failed'], 1)


class LiveTempestTest(testtools.TestCase):
    """One small Tempest test on the two-host sio cloud."""

    def test_create_server(self):
        e2e_base.require_e2e(self, need_guest_kernel=True)
        regex = (r'^tempest\.api\.compute\.servers\.test_create_server\.'
                 r'ServersTestJSON\.test_list_servers\b')
        run = tempest.run_tempest(controlplane.DEFAULT_VERSION,
                                  [('one', regex)],
                                  progress=lambda line: None)
        self.assertIsNone(run.error, run.error)
        counts = run.passes[0].counts
        self.assertEqual((1, 0), (counts['passed'], counts['failed']),
                         '\n'.join(run.closing_lines()))
