# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The pieces of the two-host cloud together, without Nova.

A network of namespaces, two compute hosts each with its own libvirtd,
and the gateway emulator in block mode on the cloud's address: a volume
made over REST is mapped to both hosts, a TCG guest boots from it on h1
and live-migrates to h2 (the same boot, the counter still running), and
once everything is stopped nothing is left: no namespace, loop device,
mount or process. A second test kills a harness holding all of these
with SIGKILL and shows that the sweep removes what it left.

Runs only with ``NOVA_SIO_E2E=1`` as root (see ``e2e/base.py``); timings
go to stderr.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import fixtures
from oslotest import base
import requests

from nova_sio.e2e import cleanup
from nova_sio.e2e import gateway as gateway_mod
from nova_sio.e2e import guest as guest_mod
from nova_sio.e2e import hosts as hosts_mod
from nova_sio.e2e import machine
from nova_sio.e2e import netns
from nova_sio.tests.e2e import base as e2e_base
from nova_sio.tests import sio_base

client_mod = sio_base.client_mod
host_mod = sio_base.host_mod

ADDRESSES = {'h1': '10.251.0.11', 'h2': '10.251.0.12'}


def _run_id():
    """A run id of its own for each test (namespace names carry it)."""
    return 't' + os.urandom(3).hex()


def _our_namespaces(run_id):
    return [n for n in netns.namespaces()
            if n.startswith('%s%s-' % (netns.PREFIX, run_id))]


def _alive(pids):
    return [p for p in pids if cleanup.process_start_time(p) is not None]


class _Leaks(object):
    """What a test must find gone once everything is stopped."""

    def __init__(self, test, directory, run_id):
        self.test = test
        self.directory = directory
        self.run_id = run_id
        self.pids = set()

    def check(self, ledger=None):
        test = self.test
        test.assertEqual([], _our_namespaces(self.run_id))
        test.assertEqual({}, e2e_base.loops_backed_under(self.directory))
        test.assertEqual([], e2e_base.mounts_under(self.directory))
        test.assertEqual([], _alive(sorted(self.pids)))
        if ledger is not None:
            test.assertEqual([], ledger.held())


class HostsMachineCheckTest(base.BaseTestCase):
    """The capability check names what the two hosts need (no root)."""

    def test_host_tools_name_their_packages(self):
        empty = self.useFixture(fixtures.TempDir()).path
        text = '\n'.join(str(m) for m in machine.check(
            path=empty, need_guest_kernel=False))
        for tool, package in (('nsenter', 'util-linux'),
                              ('iptables', 'iptables'),
                              ('virtlogd', 'libvirt-daemon-system'),
                              ('libvirtd', 'libvirt-daemon-system'),
                              ('unshare', 'util-linux'),
                              ('ip', 'iproute2')):
            self.assertIn('%s: not installed (Debian package %s)' % (
                tool, package), text)

    def test_namespace_checks_pass_here_as_root(self):
        e2e_base.require_e2e(self)
        self.assertIsNone(machine._ip_netns_works())
        self.assertIsNone(machine._private_mounts_work())
        self.assertEqual([], [n for n in netns.namespaces()
                              if n.startswith('nsio-check')])


class CloudNetworkTest(e2e_base.LiveTestCase):
    """Namespaces, bridge and veth pairs alone (quick)."""

    TIMEOUT = 120

    def setUp(self):
        super().setUp()
        self.run_id = _run_id()

    def test_hosts_reach_ctl_and_destroy_leaves_nothing(self):
        network = netns.CloudNetwork(self.ledger, self.run_id).create()
        self.addCleanup(network.destroy)
        for name, address in sorted(ADDRESSES.items()):
            network.add_host(name, address)
        self.assertEqual(['%s%s-%s' % (netns.PREFIX, self.run_id, r)
                          for r in ('ctl', 'h1', 'h2')],
                         _our_namespaces(self.run_id))
        self.assertEqual({'netns': 3, 'link': 2}, dict(
            (k, sum(1 for r in self.ledger.held() if r['kind'] == k))
            for k in ('netns', 'link')))
        outside = os.readlink('/proc/self/ns/net')
        network.enter_ctl()
        try:
            self.assertNotEqual(outside, os.readlink('/proc/self/ns/net'))
            listener = socket.socket()
            self.addCleanup(listener.close)
            listener.bind((netns.CTL_ADDRESS, 0))
            listener.listen(4)
        finally:
            network.leave_ctl()
        self.assertEqual(outside, os.readlink('/proc/self/ns/net'))
        port = listener.getsockname()[1]
        sleepers = []
        for name, address in sorted(ADDRESSES.items()):
            probe = subprocess.run(
                ['nsenter', '--net=%s' % network.netns_path(name),
                 sys.executable, '-c',
                 'import socket, sys; s = socket.create_connection('
                 '(sys.argv[1], int(sys.argv[2])), 5); '
                 'print(s.getsockname()[0])', netns.CTL_ADDRESS, str(port)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=30)
            self.assertEqual(address, probe.stdout.decode().strip())
            sleepers.append(subprocess.Popen(
                ['nsenter', '--net=%s' % network.netns_path(name), 'sleep',
                 '1000'], start_new_session=True))
        for proc in sleepers:
            self.addCleanup(proc.wait)
        self.assertTrue(sio_base.wait_until(lambda: all(
            p.pid in cleanup.netns_pids(network.netns_name(n))
            for p, n in zip(sleepers, sorted(ADDRESSES))), timeout=10))
        # Destroying the network ends what still runs inside.
        network.destroy()
        self.assertEqual([], _our_namespaces(self.run_id))
        self.assertEqual([], self.ledger.held())
        for proc in sleepers:
            self.assertEqual(-15, proc.wait(timeout=10))

    def test_a_bad_run_id_is_refused(self):
        for run_id in ('', 'UPPER', 'far-too-long', 'a/b'):
            self.assertRaises(netns.NetworkError, netns.CloudNetwork,
                              self.ledger, run_id)


class TwoHostCloudTest(e2e_base.LiveTestCase):
    """Network, two libvirt hosts and the gateway, driven by hand."""

    TIMEOUT = 600
    GUEST = True

    def setUp(self):
        super().setUp()
        self.run_id = _run_id()
        self.leaks = _Leaks(self, self.dir, self.run_id)
        self.network = netns.CloudNetwork(self.ledger, self.run_id)
        self.network.create()
        self.addCleanup(self.network.destroy)
        self.hosts = {}
        for name, address in sorted(ADDRESSES.items()):
            self.hosts[name] = hosts_mod.ComputeHost(
                name, address, os.path.join(self.dir, name), self.ledger,
                self.network)
            self.addCleanup(self.hosts[name].stop)
        began = time.monotonic()
        hosts_mod.start_all(list(self.hosts.values()))
        self.timings = {'hosts_ready': time.monotonic() - began}
        for name, host in self.hosts.items():
            self.timings['libvirtd_%s' % name] = host.timings[
                'libvirtd_ready']
        self.gateway = gateway_mod.Gateway(
            os.path.join(self.dir, 'gateway'), self.ledger,
            hosts=sorted(self.hosts), netns=self.network.ctl,
            storage_size=16 * 1024 ** 3, device_delay=0.2)
        self.addCleanup(self.gateway.stop)
        self.gateway.start()
        # Nova's options name the path inside the host: refused until
        # the host sees its devices there.
        self.assertRaises(gateway_mod.GatewayError,
                          self.gateway.scaleio_options, 'h1')
        for host in self.hosts.values():
            host.attach_sdc(self.gateway)
        self.assertEqual(hosts_mod.DEVICE_ROOT, self.gateway.scaleio_options(
            'h2')['device_root'])
        # The test process moves into ctl to reach 10.251.0.1.
        self.network.enter_ctl()
        self.addCleanup(self.network.leave_ctl)

    def client(self):
        opts = self.gateway.scaleio_options('h1')
        client = client_mod.Client(
            host=opts['rest_server_ip'], port=opts['rest_server_port'],
            scheme=opts['rest_server_scheme'],
            username=opts['rest_server_username'],
            password=opts['rest_server_password'],
            verify=opts['server_certificate_path'], connect_timeout=5,
            read_timeout=30, retry_interval=0.05)
        self.addCleanup(client.session.close)
        return client

    def test_hosts_are_apart_and_see_each_other(self):
        h1, h2 = self.hosts['h1'], self.hosts['h2']
        self.assertEqual('h1\n', h1.run(['hostname']).stdout)
        self.assertEqual('h2\n', h2.run(['hostname']).stdout)
        # Each host has its own libvirt: distinct sockets, UUIDs, lists.
        uuids = [h.run(['virsh', '-c', h.libvirt_uri, 'capabilities'],
                       timeout=60).stdout for h in (h1, h2)]
        self.assertIn('<uuid>%s</uuid>' % h1.host_uuid, uuids[0])
        self.assertIn('<uuid>%s</uuid>' % h2.host_uuid, uuids[1])
        # h1 reaches h2's libvirtd over TCP, and the gateway.
        remote = h1.run(['virsh', '-c', h2.libvirt_uri, 'hostname'],
                        timeout=60)
        self.assertEqual(0, remote.returncode, remote.stdout)
        self.assertEqual('h2', remote.stdout.strip())
        # The admin API does not answer a compute host.
        script = textwrap.dedent('''
            import sys, requests
            s = requests.Session(); s.trust_env = False
            r = s.get(sys.argv[1] + '/__admin__/info', verify=sys.argv[2])
            print(r.status_code)
            ''')
        probe = h1.run([sys.executable, '-c', script,
                        self.gateway.info['url'],
                        self.gateway.info['ca_path']], timeout=60)
        self.assertEqual('403', probe.stdout.strip(), probe.stdout)
        self.assertEqual(
            self.gateway.info['system_id'],
            self.gateway.admin('GET', 'info')['system_id'])

    def test_gateway_goes_away_and_comes_back_with_its_state(self):
        client = self.client()
        info = self.gateway.info
        vol = client.create_volume('e2e-away', 8,
                                   client.get_pool_id('pd1', 'sp1'))
        client.map_volume(vol, sdc_id=info['hosts']['h1']['sdc_id'])
        link = self.gateway.device_link('h1', vol)
        self.assertTrue(sio_base.wait_until(
            lambda: os.path.exists(link), timeout=10))
        state = (self.gateway.audit(), self.gateway.loop_devices())
        url = info['url'] + '/api/login'
        for mode in ('refuse', 'hang'):
            self.gateway.kill(mode)
            began = time.monotonic()
            try:
                with requests.Session() as session:
                    session.trust_env = False
                    session.get(url, verify=info['ca_path'], timeout=3)
            except requests.exceptions.ConnectionError as exc:
                self.assertEqual('refuse', mode, exc)
                self.assertLess(time.monotonic() - began, 2)
            except requests.exceptions.Timeout:
                self.assertEqual('hang', mode)
            else:
                self.fail('the gateway answered while away (%s)' % mode)
            # The loop device stays while the gateway is away.
            self.assertTrue(os.path.exists(link))
            self.gateway.start()
            self.assertIsNone(self.gateway.away)
            self.assertEqual(state, (self.gateway.audit(),
                                     self.gateway.loop_devices()))
        self.assertEqual({vol: ['h1']}, self.gateway.audit()['mappings'])
        client.delete_volume(vol, unmap=True)
        self.assertEqual({'volumes': [], 'mappings': {}},
                         self.gateway.audit())

    def test_guest_on_a_volume_live_migrates_between_hosts(self):
        h1, h2 = self.hosts['h1'], self.hosts['h2']
        client = self.client()
        info = self.gateway.info
        pool = client.get_pool_id('pd1', 'sp1')
        vol = client.create_volume('e2e-hosts-root', 8, pool)
        for name in ('h1', 'h2'):
            client.map_volume(vol, sdc_id=info['hosts'][name]['sdc_id'])
        links = dict((name, self.gateway.device_link(name, vol))
                     for name in ('h1', 'h2'))
        for name, link in links.items():
            self.assertTrue(sio_base.wait_until(
                lambda: os.path.exists(link), timeout=10), link)
            device = os.path.realpath(link)
            self.assertRegex(device, r'^/dev/loop[0-9]+$')
            self.assertEqual(device, self.gateway.loop_devices()[
                '%s/%s' % (name, vol)])
        self.assertEqual({vol: ['h1', 'h2']},
                         self.gateway.audit()['mappings'])
        # Inside each host the same path names that host's own device.
        inside = host_mod.device_path(hosts_mod.DEVICE_ROOT,
                                      info['system_id'], vol)
        for name, host in self.hosts.items():
            self.assertEqual(os.path.realpath(links[name]), host.run(
                ['readlink', '-e', inside]).stdout.strip())
        self.assertNotEqual(os.path.realpath(links['h1']),
                            os.path.realpath(links['h2']))
        # The image on the volume, written through h1's device.
        with open(self.guest.root_image, 'rb') as src, \
                open(links['h1'], 'r+b') as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        name = 'nsio-hosts-%s' % self.run_id
        console = os.path.join(self.dir, 'console.log')
        xml = os.path.join(self.dir, 'domain.xml')
        with open(xml, 'w') as handle:
            handle.write(e2e_base.domain_xml(
                name, self.guest.kernel, self.guest.initrd,
                'console=ttyS0 panic=-1 loglevel=3 nova_sio.disks=vda:root',
                [(inside, 'vda')], console, append=True))
        h1.virsh('define', xml)
        began = time.monotonic()
        h1.virsh('start', name)
        parsed, _text = guest_mod.wait_console(
            console, lambda c: c['ready'] and len(c['counters']) >= 2, 180)
        self.timings['boot_to_ready'] = time.monotonic() - began
        self.assertEqual([], parsed['errors'])
        self.assertEqual(self.guest.info['root_marker'],
                         parsed['root_image'])
        boot_id = parsed['booted']['boot_id']
        qemu = [p for p in h1.pids()
                if name in _cmdline(p) and 'qemu' in _cmdline(p)]
        self.assertEqual(1, len(qemu), h1.pids())
        self.leaks.pids.update(qemu)
        self.leaks.pids.update(h1.pids() + h2.pids())
        self.assertEqual({name: 'running'}, h1.domains())
        self.assertEqual({}, h2.domains())

        before = len(parsed['counters'])
        began = time.monotonic()
        migrate = h1.run(
            ['virsh', '-c', 'qemu:///system', 'migrate', '--live', '--p2p',
             '--persistent', '--undefinesource', name, h2.libvirt_uri,
             '--migrateuri', 'tcp://%s' % h2.address], timeout=180)
        self.timings['live_migration'] = time.monotonic() - began
        self.assertEqual(0, migrate.returncode, migrate.stdout)
        self.assertEqual({}, h1.domains())
        self.assertEqual({name: 'running'}, h2.domains())
        self.assertEqual([], _alive(qemu))
        self.leaks.pids.update(h2.pids())
        # The same boot goes on counting on h2.
        parsed, text = guest_mod.wait_console(
            console, lambda c: len(c['counters']) >= before + 3, 60)
        self.assertEqual(1, text.count('NOVA-SIO-GUEST BOOTED'), text)
        self.assertEqual({boot_id}, set(b for _n, b in parsed['counters']))
        numbers = [n for n, _b in parsed['counters']]
        self.assertEqual(list(range(numbers[0], numbers[0] + len(numbers))),
                         numbers)

        # h1 lets go of the volume; h2 keeps running on its own device.
        client.unmap_volume(vol, sdc_id=info['hosts']['h1']['sdc_id'])
        self.assertTrue(sio_base.wait_until(
            lambda: not os.path.lexists(links['h1']), timeout=10))
        self.assertEqual(['%s/%s' % ('h2', vol)],
                         sorted(self.gateway.loop_devices()))
        self.assertEqual({vol: ['h2']}, self.gateway.audit()['mappings'])
        seen = len(parsed['counters'])
        parsed, _text = guest_mod.wait_console(
            console, lambda c: len(c['counters']) >= seen + 2, 30)
        self.assertEqual(
            [], self.gateway.admin('GET', 'storage')['unmapped_in_use'])

        h2.virsh('destroy', name)
        h2.virsh('undefine', name)
        self.assertEqual({}, h2.domains())
        client.unmap_volume(vol, sdc_id=info['hosts']['h2']['sdc_id'])
        client.delete_volume(vol)
        self.assertEqual({'volumes': [], 'mappings': {}},
                         self.gateway.audit())
        self.assertTrue(sio_base.wait_until(
            lambda: not self.gateway.loop_devices(), timeout=10))
        self.assertEqual(
            [], self.gateway.admin('GET', 'storage')['unmapped_in_use'])

        # Everything stopped, in the order the cleanups would: nothing
        # of the run is left on the machine.
        self.leaks.pids.add(self.gateway._proc.pid)
        began = time.monotonic()
        self.network.leave_ctl()
        self.gateway.stop()
        for host in self.hosts.values():
            host.stop()
        self.network.destroy()
        self.timings['stop'] = time.monotonic() - began
        self.leaks.check(self.ledger)
        sys.stderr.write('\ntwo-host timings: %s\n' % json.dumps(
            dict((k, round(v, 2)) for k, v in sorted(self.timings.items()))))


def _cmdline(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return handle.read().replace(b'\0', b' ').decode(
                errors='replace')
    except OSError:
        return ''


_CHILD = r'''
import json, os, sys, time
from nova_sio.e2e import cleanup, gateway, hosts, netns
from nova_sio import runtime
client_mod = runtime.load('client')
directory, run_id = sys.argv[1], sys.argv[2]
ledger = cleanup.Ledger(os.path.join(directory, 'ledger'))
network = netns.CloudNetwork(ledger, run_id).create()
host = hosts.ComputeHost('h1', '10.251.0.11', os.path.join(directory, 'h1'),
                         ledger, network).start()
gw = gateway.Gateway(os.path.join(directory, 'gateway'), ledger,
                     hosts=('h1',), netns=network.ctl,
                     storage_size=4 * 1024 ** 3, device_delay=0)
gw.start()
host.attach_sdc(gw)
network.enter_ctl()
opts = gw.scaleio_options('h1')
client = client_mod.Client(
    host=opts['rest_server_ip'], port=opts['rest_server_port'],
    username=opts['rest_server_username'],
    password=opts['rest_server_password'],
    verify=opts['server_certificate_path'])
vol = client.create_volume('sweep-me', 8, client.get_pool_id('pd1', 'sp1'))
client.map_volume(vol, sdc_id=gw.info['hosts']['h1']['sdc_id'])
deadline = time.time() + 10
while not gw.loop_devices() and time.time() < deadline:
    time.sleep(0.1)
sleeper = host.popen(['sleep', '1000'], os.path.join(directory, 'sleep.log'))
while sleeper.pid not in host.pids() and time.time() < deadline + 10:
    time.sleep(0.1)
print(json.dumps({'pids': host.pids() + [gw._proc.pid],
                  'loops': gw.loop_devices(),
                  'namespaces': netns.namespaces()}), flush=True)
time.sleep(1000)
'''


class SweepTest(e2e_base.LiveTestCase):
    """A harness killed with SIGKILL leaves nothing after the sweep."""

    TIMEOUT = 300
    # The test's own ledger is the killed harness'.
    LEDGER = False

    def test_sweep_removes_namespaces_daemons_and_devices(self):
        run_id = _run_id()
        ledger_dir = os.path.join(self.dir, 'ledger')
        env = dict(os.environ, NOVA_SIO_E2E_LEDGER=ledger_dir)
        child = subprocess.Popen(
            [sys.executable, '-c', _CHILD, self.dir, run_id],
            stdout=subprocess.PIPE, env=env)
        self.addCleanup(child.stdout.close)
        # Whatever happens, release it at the end (killed first).
        self.addCleanup(cleanup.sweep, ledger_dir)
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        line = child.stdout.readline()
        self.assertTrue(line, 'the harness child exited with %s'
                        % child.poll())
        made = json.loads(line)
        ours = _our_namespaces(run_id)
        self.assertEqual(sorted(['%s%s-ctl' % (netns.PREFIX, run_id),
                                 '%s%s-h1' % (netns.PREFIX, run_id)]),
                         ours)
        self.assertEqual(1, len(made['loops']))
        # The host's holder, virtlogd, libvirtd, the sleep started in
        # it, and the gateway.
        self.assertGreaterEqual(len(made['pids']), 5)
        self.assertEqual(made['pids'], _alive(made['pids']))
        self.assertNotEqual({}, e2e_base.loops_backed_under(self.dir))
        self.assertNotEqual([], e2e_base.mounts_under(self.dir))

        child.kill()
        child.wait()
        report = cleanup.sweep(ledger_dir)
        self.assertEqual([], report['errors'])
        self.assertEqual([], report['live'])
        # The processes inside the namespaces end first (so that none
        # keeps a device busy): their records then find them gone.
        self.assertEqual({'netns', 'link', 'loop', 'mount', 'dir'},
                         set(r['kind'] for r in report['released']))
        self.assertEqual({'process'},
                         set(r['kind'] for r in report['gone']))
        leaks = _Leaks(self, self.dir, run_id)
        leaks.pids.update(made['pids'])
        leaks.check()
        self.assertEqual([], [n for n in os.listdir(ledger_dir)
                              if n.endswith('.jsonl')])
