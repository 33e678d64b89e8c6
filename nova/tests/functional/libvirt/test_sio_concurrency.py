# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Many instances at once on one compute with the ``sio`` backend.

Servers are created by one multi-create request (the compute builds them
in parallel) and deleted by concurrent API callers, against one
libvirt compute whose image backend is the real ``Sio`` class talking to
the ScaleIO emulator (see ``test_sio_faults``). Afterwards:

* every server got its own volumes, named after its own UUID, with no
  name used twice;
* every volume is mapped to that one compute only;
* every libvirt domain uses only the devices of its own volumes;
* once all are deleted the emulator audit finds no leaked volume, no
  stray mapping and no stray device.

``NOVA_SIO_CONCURRENCY`` sets the number of servers (default 50). When
``NOVA_SIO_FAULTS_JSON`` names a file, the test appends one JSON line
with its figures, for ``python -m nova_sio.proof.faults``.
"""

import json
import os
import threading
import time

from lxml import etree

from nova.tests.fixtures import libvirt as fakelibvirt
from nova.tests.functional.libvirt import test_sio_faults as sio_faults
from nova.virt.libvirt.sio import disks as sio_disks

COUNT = int(os.environ.get('NOVA_SIO_CONCURRENCY') or 50)
HOST = sio_faults.COMPUTES[0]


def run_all(funcs):
    """Run callables in parallel threads; return their exceptions."""
    errors = []

    def call(func):
        try:
            func()
        except Exception as exc:  # collected and asserted on
            errors.append(exc)
    threads = [threading.Thread(target=call, args=(f,)) for f in funcs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


class SioConcurrencyTest(sio_faults.SioFunctionalBase):

    computes_to_start = (HOST,)

    def setUp(self):
        super(SioConcurrencyTest, self).setUp()
        self.flags(rpc_response_timeout=900)
        self.flags(instances=COUNT * 2, cores=COUNT * 4, ram=COUNT * 4096,
                   group='quota')
        self.small = self._create_flavor(name='sio.tiny', memory_mb=64,
                                         vcpu=1, disk=8, ephemeral=0)

    def wait_all(self, ids, wanted, timeout=300):
        deadline = time.time() + timeout
        pending = set(ids)
        while pending and time.time() < deadline:
            for sid in list(pending):
                try:
                    server = self.api.get_server(sid)
                except Exception:
                    if wanted == 'DELETED':
                        pending.discard(sid)
                    continue
                if server['status'] == wanted:
                    pending.discard(sid)
                elif server['status'] == 'ERROR':
                    self.fail('server %s went to ERROR: %s' % (
                        sid, server.get('fault')))
            time.sleep(0.2)
        self.assertEqual(set(), pending, 'not %s in time' % wanted)

    def domain_devices(self):
        """``{instance uuid: set(device paths)}`` from libvirt's XML."""
        conn = self.computes[HOST].driver._host.get_connection()
        result = {}
        for dom in conn.listAllDomains(
                fakelibvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
            tree = etree.fromstring(dom.XMLDesc(0))
            uuid = tree.find('./uuid').text
            result[uuid] = set(
                src.get('dev') for src in tree.findall(
                    './devices/disk/source') if src.get('dev'))
        return result

    def test_spawn_and_delete_concurrently(self):
        # One multi-create request: the compute builds them in parallel
        # (up to max_concurrent_builds at a time), as in a deployment.
        body = self._build_server(name='conc', flavor_id=self.small,
                                  networks='none')
        body['min_count'] = body['max_count'] = COUNT
        started = time.time()
        self.api.post_server({'server': body})
        ids = [s['id'] for s in self.api.get_servers(detail=False)
               if s['name'].startswith('conc')]
        self.assertEqual(COUNT, len(ids))
        self.wait_all(ids, 'ACTIVE')
        spawn_seconds = time.time() - started

        sdc_a = self.emu_fx.info['hosts'][HOST]['sdc_id']
        names = []
        devices = self.domain_devices()
        for sid in ids:
            volumes = sio_disks.instance_volumes(sio_faults._Volumes(sid))
            self.assertEqual(['disk'], [v.disk_name for v in volumes])
            for volume in volumes:
                names.append(volume.name)
                self.assertEqual(
                    [sdc_a], self.admin.get_mapped_sdc_ids(volume.id))
            own = set(self.device(HOST, v.id) for v in volumes)
            self.assertEqual(own, devices[sid])
        self.assertEqual(len(names), len(set(names)), 'duplicate names')
        every = self.emu.volumes()
        self.assertEqual(COUNT, len(every))
        self.assertEqual(sorted(names), sorted(v['name'] for v in every))

        started = time.time()
        errors = run_all([lambda s=s: self.api.delete_server(s)
                          for s in ids])
        self.assertEqual([], errors)
        self.wait_all(ids, 'DELETED')
        delete_seconds = time.time() - started
        self.assert_clean()
        self.addDetail('timing', _text('%d servers: spawn %.1fs, delete '
                                       '%.1fs' % (COUNT, spawn_seconds,
                                                  delete_seconds)))
        path = os.environ.get(sio_faults.RESULTS_ENV)
        if path:
            with open(path, 'a') as handle:
                handle.write(json.dumps({
                    'suite': 'concurrency', 'servers': COUNT,
                    'volumes': len(names),
                    'spawn_seconds': round(spawn_seconds, 1),
                    'delete_seconds': round(delete_seconds, 1)},
                    sort_keys=True) + '\n')


def _text(value):
    from testtools import content
    return content.text_content(value)
