# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Test fixture and remote control of the emulator.

:class:`EmulatorFixture` starts an emulator for one test, either in a
thread of the test process (``mode='thread'``, the default) or as a
separate ``python -m nova_sio.emulator`` process (``mode='subprocess'``).
In both modes ``fixture.admin`` offers the same control methods
(``add_fault``, ``audit``, ``request_log``, ...): the
:class:`~nova_sio.emulator.server.Emulator` itself, or an
:class:`AdminClient` talking to ``/__admin__/``.
"""

import json
import os
import ssl
import subprocess
import sys
import urllib.request

import fixtures

from nova_sio.emulator import cli
from nova_sio.emulator import server


class AdminClient(object):
    """Control an emulator over HTTP (same methods as ``Emulator``).

    :param url: emulator base URL.
    :param ca_cert: CA bundle for an HTTPS emulator.
    """

    def __init__(self, url, ca_cert=None, timeout=30):
        self.url = url.rstrip('/')
        self.timeout = timeout
        self._ctx = None
        if self.url.startswith('https'):
            self._ctx = ssl.create_default_context(cafile=ca_cert)

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + server.ADMIN + path, data=data, method=method,
            headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(request, timeout=self.timeout,
                                    context=self._ctx) as resp:
            return json.loads(resp.read())['result']

    def info(self):
        return self._call('GET', 'info')

    def add_fault(self, kind, **spec):
        spec['kind'] = kind
        return self._call('POST', 'faults', spec)

    def clear_faults(self, fault_id=None):
        return self._call('POST', 'faults/clear', {'id': fault_id})

    def list_faults(self):
        return self._call('GET', 'faults')

    def expire_tokens(self):
        return self._call('POST', 'expire_tokens', {})

    def request_log(self):
        return self._call('GET', 'log')

    def clear_log(self):
        return self._call('POST', 'log/clear', {})

    def audit(self, allow=()):
        return self._call('POST', 'audit', {'allow': list(allow)})

    def storage_stats(self):
        return self._call('GET', 'storage')

    def preload(self, volumes=0, sdcs=0):
        return self._call('POST', 'preload', {'volumes': volumes,
                                              'sdcs': sdcs})

    def baseline(self):
        return self._call('POST', 'baseline', {})

    def add_host(self, name, guid=None):
        return self._call('POST', 'hosts', {'name': name, 'guid': guid})

    def set_host(self, name, **options):
        return self._call('POST', 'hosts/%s' % name, options)

    def set_pool(self, name, capacity_gb=None, overprovision=None,
                 zero_padding=None, data_layout=None):
        return self._call('POST', 'pools/%s' % name,
                          {'capacity_gb': capacity_gb,
                           'overprovision': overprovision,
                           'zero_padding': zero_padding,
                           'data_layout': data_layout})

    def configure(self, **options):
        return self._call('POST', 'config', options)

    def volumes(self):
        return self._call('GET', 'volumes')


class EmulatorFixture(fixtures.Fixture):
    """Run an emulator for the duration of a test.

    :param mode: ``thread`` or ``subprocess``.
    :param kwargs: :class:`~nova_sio.emulator.server.Emulator` arguments
        (``version``, ``https``, ``hosts``, ``pools``, ``password``,
        ``storage_dir``, ...).

    After ``setUp``: ``url``, ``info`` (dict), ``admin`` and, in thread
    mode, ``emulator``.
    """

    def __init__(self, mode='thread', **kwargs):
        super().__init__()
        if mode not in ('thread', 'subprocess'):
            raise ValueError('mode must be thread or subprocess')
        self.mode = mode
        self.kwargs = kwargs
        self.emulator = None
        self.process = None

    def _setUp(self):
        if self.mode == 'thread':
            self.emulator = server.Emulator(**self.kwargs).start()
            self.addCleanup(self.emulator.stop)
            self.admin = self.emulator
            self.info = self.emulator.info()
        else:
            self._start_process()
        self.url = self.info['url']

    def _start_process(self):
        state_dir = self.useFixture(fixtures.TempDir()).path
        argv = [sys.executable, '-m', 'nova_sio.emulator',
                '--state-dir', state_dir]
        kw = dict(self.kwargs)
        if kw.pop('https', False):
            argv.append('--https')
        if 'version' in kw:
            argv += ['--api-version', kw.pop('version')]
        if 'hosts' in kw:
            argv += ['--hosts', ','.join(kw.pop('hosts'))]
        for entry in kw.pop('pools', ()):
            argv += ['--pool', cli.pool_argument(entry)]
        for key in ('password', 'username', 'port', 'seed', 'storage_dir',
                    'listen'):
            if key in kw:
                argv += ['--' + key.replace('_', '-'), str(kw.pop(key))]
        if kw:
            raise TypeError('not supported in subprocess mode: %s'
                            % ', '.join(sorted(kw)))
        env = dict(os.environ)
        tools = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        env['PYTHONPATH'] = os.pathsep.join(
            [tools] + [p for p in [env.get('PYTHONPATH')] if p])
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                        env=env)
        self.addCleanup(self._stop_process)
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError('the emulator process exited with %s'
                               % self.process.wait())
        self.info = json.loads(line)
        self.admin = AdminClient(self.info['url'], self.info['ca_cert'])

    def _stop_process(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()

    def client_kwargs(self, **overrides):
        """Arguments for the runtime ``Client`` talking to this emulator.

        TLS verification uses the emulator's CA for HTTPS.
        """
        info = self.info
        kwargs = {'host': info['host'], 'port': info['port'],
                  'scheme': info['scheme'], 'username': info['username'],
                  'password': info['password'],
                  'verify': info['ca_cert'] or True,
                  'connect_timeout': 5, 'read_timeout': 10,
                  'retry_interval': 0.01}
        kwargs.update(overrides)
        return kwargs

    def host(self, name='host-a'):
        """Return the description of emulated host ``name``."""
        return self.info['hosts'][name]
