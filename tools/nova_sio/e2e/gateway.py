# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The ScaleIO gateway of the two-host cloud: the emulator as a process.

:class:`Gateway` runs ``python -m nova_sio.emulator --sdc-mode block
--https --listen ADDRESS --hosts h1,h2`` with the volumes' backing files
on a scratch XFS with reflink (:class:`~nova_sio.emulator.blockdev.
ScratchXfs`), reads the JSON line the emulator prints once listening,
and gives each compute host its ``[scaleio]`` options
(:meth:`Gateway.scaleio_options`): the gateway over HTTPS with its CA
verified, the host's by-id directory, ``drv_cfg`` and SDC GUID. The
by-id directory is the path inside the host
(:data:`~nova_sio.e2e.hosts.DEVICE_ROOT`, the same on every host, bound
there by :meth:`~nova_sio.e2e.hosts.ComputeHost.attach_sdc`); from
outside, a host's links are in the emulator's host tree
(:meth:`Gateway.device_link`, ``info['hosts'][host]['device_root']``).

The gateway going away (:meth:`Gateway.kill`) keeps the emulator process
and its state (volumes, mappings, loop devices) and closes its door:

``refuse`` (default)
    a firewall rule in the gateway's network namespace answers every
    new connection to its port with a TCP reset, which is what a client
    sees of a gateway whose service is down (``Connection refused``).
``hang``
    the process is stopped (``SIGSTOP``): the kernel still accepts
    connections, nothing answers them, clients run into their timeouts,
    like a gateway whose host froze.

:meth:`Gateway.start` brings it back with the same state, port and
certificate. The emulator keeps its state in memory only, so a real
restart would lose every volume; this is why the process is kept.
"""

import json
import os
import select
import signal
import subprocess
import sys
import time

import requests

from nova_sio.e2e import cleanup
from nova_sio.e2e import hosts as hosts_mod
from nova_sio.e2e import services
from nova_sio.emulator import blockdev
from nova_sio import errors

GiB = 1024 ** 3
MODES = ('refuse', 'hang')


class GatewayError(errors.NovaSioError):
    msg_fmt = 'Gateway emulator: %(reason)s'


def _tools_dir():
    return os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))


class Gateway(object):
    """The emulated gateway and SDCs of the cloud.

    :param workdir: directory for its state, scratch XFS and log.
    :param ledger: the :class:`~nova_sio.e2e.cleanup.Ledger`.
    :param hosts: the compute host names (one emulated SDC each).
    :param address: the IP address it listens on.
    :param port: TCP port (0: any free port, kept across :meth:`kill`).
    :param netns: network namespace to run in (None: the caller's, e.g.
        after :meth:`~nova_sio.e2e.netns.CloudNetwork.enter_ctl`).
    :param storage_size: size of the scratch XFS in bytes (sparse).
    :param device_delay: seconds before a mapped device appears.
    :param domain: protection domain name.
    :param pool: storage pool name.
    :param capacity_gb: pool capacity.
    """

    def __init__(self, workdir, ledger, hosts=('h1', 'h2'),
                 address='10.251.0.1', port=0, netns=None,
                 storage_size=64 * GiB, device_delay=0.5, domain='pd1',
                 pool='sp1', capacity_gb=1024):
        self.workdir = os.path.abspath(workdir)
        self.ledger = ledger
        self.hosts = tuple(hosts)
        self.address = address
        self.port = port
        self.netns = netns
        self.storage_size = storage_size
        self.device_delay = device_delay
        self.domain = domain
        self.pool = pool
        self.capacity_gb = capacity_gb
        self.log_path = os.path.join(self.workdir, 'logs', 'gateway.log')
        self.info = None
        #: Hosts that see their SDC devices under ``hosts.DEVICE_ROOT``.
        self.attached = set()
        self.away = None            # None, 'refuse' or 'hang'
        self._proc = None
        self._record = None
        self._xfs = None
        self._storage = None

    # -- life cycle -----------------------------------------------------------

    def _nsenter(self):
        if self.netns:
            return ['nsenter', '--net=/run/netns/%s' % self.netns, '--']
        return []

    def start(self, timeout=60):
        """Start the emulator, or bring back a gateway that went away.

        :param timeout: seconds to wait for the emulator's JSON line.
        :returns: self.
        """
        if self._proc is not None:
            self._come_back()
            return self
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        os.chmod(self.workdir, 0o755)
        try:
            self._xfs = blockdev.ScratchXfs(self.ledger, self.storage_size,
                                            parent=self.workdir)
            self._storage = self._xfs.__enter__()
            self._launch(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, timeout):
        state_dir = os.path.join(self.workdir, 'state')
        os.makedirs(state_dir, exist_ok=True)
        os.chmod(state_dir, 0o755)
        argv = self._nsenter() + [
            sys.executable, '-m', 'nova_sio.emulator', '--sdc-mode',
            'block', '--https', '--listen', self.address, '--port',
            str(self.port), '--hosts', ','.join(self.hosts), '--state-dir',
            state_dir, '--storage-dir', self._storage, '--device-delay',
            str(self.device_delay), '--pool', '%s:%s:%d' % (
                self.domain, self.pool, self.capacity_gb)]
        env = dict(os.environ)
        env['PYTHONPATH'] = os.pathsep.join(
            [_tools_dir()] + [p for p in [env.get('PYTHONPATH')] if p])
        # Its own ledger of loop devices lives beside the harness's.
        env['NOVA_SIO_E2E_LEDGER'] = self.ledger.directory
        with open(self.log_path, 'ab') as log:
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                          stderr=log,
                                          stdin=subprocess.DEVNULL, env=env,
                                          start_new_session=True)
        self._record = self.ledger.hold('process', pid=self._proc.pid)
        line = self._read_line(timeout)
        self.info = self._describe(json.loads(line))
        self.port = self.info['port']

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        out = self._proc.stdout
        data = b''
        while not data.endswith(b'\n'):
            left = deadline - time.monotonic()
            ready = select.select([out], [], [], max(0, left))[0]
            if not ready:
                raise GatewayError(reason='no answer in %ds: %s' % (
                    timeout, services.tail(self.log_path)))
            chunk = os.read(out.fileno(), 65536)
            if not chunk:
                raise GatewayError(reason='exited with %s: %s' % (
                    self._proc.wait(), services.tail(self.log_path)))
            data += chunk
        return data.decode()

    def _describe(self, raw):
        hosts = {}
        for name in self.hosts:
            host = raw['hosts'][name]
            hosts[name] = {'device_root': host['device_root'],
                           'drv_cfg': host['drv_cfg'],
                           'sdc_guid': host['guid'],
                           'sdc_id': host['sdc_id']}
        return {'url': raw['url'], 'address': raw['host'],
                'port': raw['port'], 'ca_path': raw['ca_cert'],
                'username': raw['username'], 'password': raw['password'],
                'system_id': raw['system_id'], 'version': raw['version'],
                'storage_dir': raw['storage_dir'],
                'protection_domain': self.domain, 'storage_pool': self.pool,
                'hosts': hosts}

    def stop(self):
        """End the emulator and unmount the scratch XFS.

        The emulator detaches its loop devices as it exits.
        """
        problems = []
        if self._proc is not None:
            if self.away == 'hang':
                self._signal(signal.SIGCONT)
            self.away = None
            try:
                self.ledger.release(self._record)
            except cleanup.CleanupError as exc:
                problems.append(exc.message)
            self._proc.wait()
            self._proc.stdout.close()
            self._proc = None
        if self._xfs is not None:
            try:
                self._xfs.close()
            except cleanup.CleanupError as exc:
                problems.append(exc.message)
            self._xfs = None
        if problems:
            raise GatewayError(reason='; '.join(problems))

    # -- going away and coming back ------------------------------------------

    def _signal(self, signum):
        try:
            os.kill(self._proc.pid, signum)
        except ProcessLookupError:
            pass

    def _firewall(self, op):
        rule = ['INPUT', '-p', 'tcp', '-d', self.address, '--dport',
                str(self.port), '-j', 'REJECT', '--reject-with', 'tcp-reset']
        proc = subprocess.run(self._nsenter() + ['iptables', op] + rule,
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        if proc.returncode:
            raise GatewayError(reason='iptables %s: %s' % (
                op, proc.stdout.decode(errors='replace').strip()))

    def kill(self, mode='refuse'):
        """Take the gateway away, keeping its process and state.

        :param mode: ``refuse`` (new connections get a TCP reset) or
            ``hang`` (the process is stopped; nothing answers).
        """
        if mode not in MODES:
            raise GatewayError(reason='unknown way to go away %r (use %s)'
                               % (mode, ' or '.join(MODES)))
        if self._proc is None or self.away is not None:
            raise GatewayError(reason='not running' if self._proc is None
                               else 'already away (%s)' % self.away)
        if mode == 'refuse':
            self._firewall('-I')
        else:
            self._signal(signal.SIGSTOP)
        self.away = mode

    def _come_back(self):
        if self.away == 'refuse':
            self._firewall('-D')
        elif self.away == 'hang':
            self._signal(signal.SIGCONT)
        self.away = None

    # -- what Nova and the checks need ---------------------------------------

    def scaleio_options(self, host, device_root=hosts_mod.DEVICE_ROOT):
        """Return the ``[scaleio]`` options of compute host ``host``.

        :param host: a host name of :attr:`hosts`.
        :param device_root: where the host sees its SDC devices: by
            default the path :meth:`~nova_sio.e2e.hosts.ComputeHost.
            attach_sdc` binds them to inside the host (the same on every
            host, as Nova's live migration needs); None: the emulator's
            own directory of that host.
        :raises GatewayError: for the default ``device_root`` when the
            host did not attach its SDC devices yet.
        """
        info = self.info
        sdc = info['hosts'][host]
        if device_root and host not in self.attached:
            raise GatewayError(reason='host %s does not see its SDC '
                               'devices under %s: call its attach_sdc('
                               'gateway) first' % (host, device_root))
        return {'rest_server_ip': info['address'],
                'rest_server_port': info['port'],
                'rest_server_scheme': 'https',
                'rest_server_username': info['username'],
                'rest_server_password': info['password'],
                'verify_server_certificate': True,
                'server_certificate_path': info['ca_path'],
                'protection_domain_name': self.domain,
                'storage_pool_name': self.pool,
                'device_root': device_root or sdc['device_root'],
                'drv_cfg_path': sdc['drv_cfg'],
                'default_sdcguid': sdc['sdc_guid']}

    def device_link(self, host, volume_id):
        """Return the path of a volume's link of ``host`` as seen from
        outside the host (in the emulator's host tree).

        Inside the host the same link is under
        :data:`~nova_sio.e2e.hosts.DEVICE_ROOT` once
        :meth:`~nova_sio.e2e.hosts.ComputeHost.attach_sdc` was called.

        :param host: a host name of :attr:`hosts`.
        :param volume_id: the volume id.
        """
        return os.path.join(self.info['hosts'][host]['device_root'],
                            'emc-vol-%s-%s' % (self.info['system_id'],
                                               volume_id))

    def session(self):
        """Return a logged-in ``requests`` session and the API base URL.

        The gateway's certificate is verified against its CA.
        """
        info = self.info
        session = requests.Session()
        # Not from the environment (REQUESTS_CA_BUNDLE would win over a
        # session's ``verify``): only the gateway's CA.
        session.trust_env = False
        session.verify = info['ca_path']
        base = info['url'].rstrip('/') + '/api'
        resp = session.get(base + '/login', timeout=30,
                           auth=(info['username'], info['password']))
        if resp.status_code != 200:
            session.close()
            raise GatewayError(reason='login answered %d: %s' % (
                resp.status_code, resp.text[:300]))
        session.auth = (info['username'], resp.json())
        return session, base

    def audit(self):
        """Read the volumes and their mappings over REST.

        :returns: ``{'volumes': [{'id', 'name', 'size_kb'}...],
            'mappings': {volume id: [host names]}}`` (a mapping to an
            SDC that is no host of this cloud shows as its SDC id).
        """
        by_sdc = dict((h['sdc_id'], name)
                      for name, h in self.info['hosts'].items())
        session, base = self.session()
        try:
            resp = session.get(base + '/types/Volume/instances', timeout=30)
            if resp.status_code != 200:
                raise GatewayError(reason='listing volumes answered %d: %s'
                                   % (resp.status_code, resp.text[:300]))
            volumes, mappings = [], {}
            for vol in resp.json():
                volumes.append({'id': vol['id'], 'name': vol.get('name'),
                                'size_kb': vol.get('sizeInKb')})
                sdcs = [by_sdc.get(m['sdcId'], m['sdcId'])
                        for m in vol.get('mappedSdcInfo') or ()]
                if sdcs:
                    mappings[vol['id']] = sorted(sdcs)
        finally:
            session.close()
        return {'volumes': sorted(volumes, key=lambda v: v['id']),
                'mappings': mappings}

    def admin(self, method, path, body=None):
        """Call the emulator's admin API (``/__admin__/PATH``).

        :param method: HTTP method.
        :param path: e.g. ``storage`` or ``audit``.
        :param body: JSON body.
        :returns: its ``result``.
        """
        with requests.Session() as session:
            session.trust_env = False
            resp = session.request(
                method, '%s/__admin__/%s' % (self.info['url'], path),
                json=body, verify=self.info['ca_path'], timeout=30)
        if resp.status_code != 200:
            raise GatewayError(reason='admin %s answered %d: %s' % (
                path, resp.status_code, resp.text[:300]))
        return resp.json()['result']

    def loop_devices(self):
        """Return ``{'host/volume': '/dev/loopN'}`` the gateway holds."""
        return self.admin('GET', 'storage')['loop_devices']
