# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Shared base for the ScaleIO client and emulator tests."""

import os
import time

import fixtures
from oslotest import base

from nova_sio.emulator import fixture as emu_fixture
from nova_sio import runtime

client_mod = runtime.load('client')
exception = runtime.load('exception')
host_mod = runtime.load('host')
naming = runtime.load('naming')
conf_mod = runtime.load('conf')

GiB = 1024 ** 3


class TestCase(base.BaseTestCase):
    """oslotest base with a 60 s timeout per test."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.Timeout(60, gentle=True))


class EmulatorTestCase(TestCase):
    """Starts an emulator per test; ``self.client`` talks to it."""

    emulator_kwargs = {}

    def setUp(self):
        super().setUp()
        self.emu_fixture = self.useFixture(
            emu_fixture.EmulatorFixture(**self.emulator_kwargs))
        self.emu = self.emu_fixture.admin
        self.client = self.make_client()

    def make_client(self, **overrides):
        client = client_mod.Client(
            **self.emu_fixture.client_kwargs(**overrides))
        self.addCleanup(client.session.close)
        return client

    def log_entries(self, path_re=None, method=None):
        import re
        result = []
        for entry in self.emu.request_log():
            if method and entry['method'] != method:
                continue
            if path_re and not re.search(path_re, entry['path']):
                continue
            result.append(entry)
        return result

    def pool_id(self):
        return self.client.get_pool_id('pd1', 'sp1')

    def sdc_id(self, host='host-a'):
        return self.emu_fixture.host(host)['sdc_id']

    def device(self, volume_id, host='host-a'):
        return host_mod.device_path(
            self.emu_fixture.host(host)['device_root'],
            self.emu_fixture.info['system_id'], volume_id)


def wait_until(predicate, timeout=5.0, interval=0.01):
    """Poll ``predicate`` until true; return whether it became true."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def exists(path):
    return os.path.lexists(path)
