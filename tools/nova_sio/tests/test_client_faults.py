# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Fault matrix at the client level: every fault against every step.

The steps are the volume operations the backend strings together for an
instance (provision = create + map + wait for the device, extend,
snapshot, rename, unmap, delete). Each cell injects one fault on the
gateway call of its step, runs the step and accepts exactly two
outcomes: success, or a :class:`SioError` subclass. Then the fault is
lifted, the step is repeated the way a retried Nova operation repeats
it, everything is torn down, and the emulator audit must show no leaked
volume, no stray mapping and no stray device, while the data written
before the step reads back unchanged. Every cell checks that its fault
fired (the emulator's request log); cells where it cannot fire by
design are listed in ``NOT_APPLICABLE`` and not generated. The client
talks HTTPS and verifies the emulator's certificate.

This is the fast, project-side slice of the fault suite; the Nova-level
matrix is ``nova/tests/functional/libvirt/test_sio_faults.py``.
"""

import hashlib
import os

from nova_sio.proof import cells
from nova_sio.tests import sio_base

exception = sio_base.exception
host_mod = sio_base.host_mod

DATA = os.urandom(4096)
CHECKSUM = hashlib.sha256(DATA).hexdigest()

# name -> (fault kind or None, fault parameters, host options)
FAULTS = {
    'token_expiry': ('expire_token', {}, {}),
    'http_401': ('unauthorized', {}, {}),
    'http_403': ('forbidden', {'count': 2}, {}),
    'http_500': ('server_error', {}, {}),
    'http_503_html': ('unavailable', {'count': 2}, {}),
    'timeout': ('hang', {'seconds': 1.0}, {}),
    'slow': ('delay', {'seconds': 0.2}, {}),
    'reset': ('reset', {}, {}),
    'lost_answer': ('lost_response', {'mode': 'reset'}, {}),
    'insufficient': ('insufficient_resources', {'count': 5}, {}),
    'capacity': ('capacity', {'count': None}, {}),
    'name_collision': ('name_in_use', {'count': None}, {}),
    'no_device': (None, {}, {'never_appear': True}),
}

# step -> gateway path the fault is put on
STEPS = {
    'provision': r'/api/types/Volume/instances$',
    'extend': r'/action/setVolumeSize',
    'snapshot': r'/action/snapshotVolumes',
    'rename': r'/action/setVolumeName',
    'unmap': r'/action/removeMappedSdc',
    'delete': r'/action/removeVolume',
}


# Cells whose fault cannot fire by design: not generated.
NOT_APPLICABLE = dict(
    (('no_device', s), 'the step maps no volume') for s in STEPS
    if s != 'provision')


class ClientFaultMatrixTest(sio_base.EmulatorTestCase):
    """One test per (fault, step) cell; see the module docstring."""

    # The production default: HTTPS, verified against the emulator's CA.
    emulator_kwargs = {'https': True}

    def setUp(self):
        super().setUp()
        self.client = self.make_client(read_timeout=0.4, max_retries=1,
                                       retry_interval=0.01)
        self.pool = self.pool_id()
        self.sdc = self.sdc_id()
        self.vol = self.client.create_volume('base', 8, self.pool)
        self.client.map_volume(self.vol, sdc_id=self.sdc)
        path = host_mod.wait_for_device(self.device(self.vol), 5)
        with open(path, 'r+b') as handle:
            handle.write(DATA)

    def read_back(self, volume_id):
        """Map if needed and return the checksum of the first bytes."""
        self.client.map_volume(volume_id, sdc_id=self.sdc)
        path = host_mod.wait_for_device(self.device(volume_id), 5)
        with open(path, 'rb') as handle:
            return hashlib.sha256(handle.read(len(DATA))).hexdigest()

    def step(self, name):
        """Run step ``name`` as the backend would."""
        client = self.client
        if name == 'provision':
            try:
                vol = client.create_volume('new', 8, self.pool)
            except exception.NameInUse:
                vol = client.get_volume_id('new')
                if vol is None:
                    raise
            client.map_volume(vol, sdc_id=self.sdc)
            host_mod.wait_for_device(self.device(vol), 0.5)
        elif name == 'extend':
            client.extend_volume(self.vol, 16)
        elif name == 'snapshot':
            if client.get_volume_id('snap') is None:
                client.snapshot_volume(self.vol, 'snap')
        elif name == 'rename':
            client.rename_volume(self.vol, 'renamed')
        elif name == 'unmap':
            if client.unmap_volume(self.vol, sdc_id=self.sdc):
                host_mod.wait_for_removal(self.device(self.vol), 5)
        elif name == 'delete':
            snap = client.get_volume_id('snap')
            if snap:
                client.delete_volume(snap, unmap=True)
            client.delete_volume(self.vol, unmap=True)

    def expected(self, name):
        """Check the state the step must leave once it succeeded."""
        client = self.client
        if name == 'provision':
            self.assertIsNotNone(client.get_volume_id('new'))
        elif name == 'extend':
            self.assertEqual(16 * 1024 * 1024,
                             client.get_volume(self.vol)['sizeInKb'])
        elif name == 'snapshot':
            snap = client.get_volume_id('snap')
            self.assertIsNotNone(snap)
            self.assertEqual(CHECKSUM, self.read_back(snap))
        elif name == 'rename':
            self.assertEqual(self.vol, client.get_volume_id('renamed'))
        elif name == 'unmap':
            self.assertFalse(client.is_mapped(self.vol, self.sdc))
        elif name == 'delete':
            self.assertIsNone(client.get_volume_id('base'))

    def hits(self, fault):
        """Return how many times ``fault`` fired since the log was cleared.

        :param fault: a key of ``FAULTS``.
        """
        return cells.fault_hits(self.emu.request_log(),
                                device_fault=FAULTS[fault][2].get(
                                    'never_appear', False))

    def run_cell(self, fault, step):
        kind, params, host_opts = FAULTS[fault]
        self.emu.clear_log()
        if kind:
            spec = dict(params)
            spec.setdefault('count', 1)
            self.emu.add_fault(kind, path=STEPS[step], **spec)
        if host_opts:
            self.emu.set_host('host-a', **host_opts)
        try:
            self.step(step)
            first = 'ok'
        except exception.SioError as exc:
            first = exc.__class__.__name__
        cells.assert_fired(self, self.hits(fault), fault, step)
        # Lift the fault and repeat, as a retried operation does.
        self.emu.clear_faults()
        self.emu.set_host('host-a', never_appear=False)
        if host_opts.get('never_appear'):
            # The device of a volume mapped meanwhile never showed up:
            # the backend unmaps it on failure; do so before the retry.
            vol = self.client.get_volume_id('new')
            if vol:
                self.client.unmap_volume(vol, sdc_id=self.sdc)
        self.step(step)
        self.expected(step)
        if step != 'delete':
            self.assertEqual(CHECKSUM, self.read_back(self.vol))
        self.teardown_all()
        audit = self.emu.audit()
        self.assertEqual({'leaked_volumes': [], 'stray_mappings': [],
                          'stray_devices': []}, audit)
        return first

    def teardown_all(self):
        for name in ('snap', 'new', 'base', 'renamed'):
            vol = self.client.get_volume_id(name)
            if vol:
                self.client.delete_volume(vol, unmap=True)
        for entry in os.listdir(self.emu_fixture.host()['device_root']):
            host_mod.wait_for_removal(os.path.join(
                self.emu_fixture.host()['device_root'], entry), 5)


# Cells whose first attempt must fail (the fault outlasts the retries),
# which also proves that the fault really reached the step.
MUST_FAIL = dict(
    [(('http_403', s), 'Forbidden') for s in STEPS] +
    [(('capacity', s), 'CapacityExceeded') for s in STEPS] +
    [(('name_collision', 'provision'), 'NameInUse'),
     (('name_collision', 'rename'), 'NameInUse'),
     (('name_collision', 'snapshot'), 'NameInUse'),
     (('no_device', 'provision'), 'DeviceTimeout')])
# Cells that must be absorbed by the client's retry and re-login.
MUST_PASS = set([('token_expiry', s) for s in STEPS] +
                [('http_401', s) for s in STEPS] +
                [('slow', s) for s in STEPS])


def _cell(fault, step):
    def test(self):
        outcome = self.run_cell(fault, step)
        if (fault, step) in MUST_FAIL:
            self.assertEqual(MUST_FAIL[(fault, step)], outcome)
        elif (fault, step) in MUST_PASS:
            self.assertEqual('ok', outcome)
    test.__name__ = 'test_%s__%s' % (fault, step)
    return test


cells.add_cell_tests(ClientFaultMatrixTest, FAULTS, STEPS, NOT_APPLICABLE,
                     _cell)
