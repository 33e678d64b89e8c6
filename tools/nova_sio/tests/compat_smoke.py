# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Smoke test of the runtime package under another Python (2.7, 3.6...).

Not a unittest module: ``test_compat`` runs it as a script with the
interpreter under test, which only needs ``requests`` and
``oslo.config``::

    python2.7 compat_smoke.py <checkout root> <emulator info JSON>

It drives a running emulator over HTTP and prints ``OK`` at the end.
"""

from __future__ import absolute_import
from __future__ import print_function

import json
import os
import sys
import time


def main(root, info_json):
    info = json.loads(info_json)
    sys.path.insert(0, os.path.join(root, 'nova', 'virt', 'libvirt'))
    from sio import client as client_mod
    from sio import conf as conf_mod
    from sio import exception
    from sio import host
    from sio import naming

    from oslo_config import cfg
    conf = cfg.ConfigOpts()
    conf_mod.register_opts(conf)
    conf([])
    for key, value in (('rest_server_ip', info['host']),
                       ('rest_server_port', info['port']),
                       ('rest_server_scheme', info['scheme']),
                       ('rest_server_username', info['username']),
                       ('rest_server_password', info['password']),
                       ('protection_domain_name', 'pd1'),
                       ('storage_pool_name', 'sp1'),
                       ('retry_interval', 0.01)):
        conf.set_override(key, value, group='scaleio')
    client = client_mod.Client.from_conf(conf)
    pool = client.get_pool_id('pd1', 'sp1')
    name = naming.volume_name('b0a27182-2220-491a-a1b5-7cd737348167',
                              'disk.eph0', 'py')
    size = naming.check_size('disk.eph0', 9 * 1024 ** 3, round_up=True)
    vol = client.create_volume(name, naming.size_in_gb(size), pool)
    assert client.get_volume_id(name) == vol
    try:
        client.create_volume(name, 8, pool)
        raise AssertionError('duplicate name accepted')
    except exception.NameInUse as exc:
        assert name in str(exc)
    hostinfo = info['hosts']['host-a']
    guid = host.get_sdc_guid(drv_cfg_path=hostinfo['drv_cfg'])
    assert guid == hostinfo['guid'], guid
    sdc = client.get_sdc_id(guid.lower())
    assert client.map_volume(vol, sdc_id=sdc)
    assert not client.map_volume(vol, sdc_id=sdc)
    path = host.device_path(hostinfo['device_root'], client.get_system_id(),
                            vol)
    host.wait_for_device(path, 10)
    client.extend_volume(vol, 24)
    snap = client.snapshot_volume(vol, name[:-2] + 'S~')
    cap = client.pool_capacity(pool)
    assert cap['free_bytes'] < cap['total_bytes']
    assert client.unmap_volume(vol, sdc_id=sdc)
    host.wait_for_removal(path, 10)
    assert client.delete_volume(vol)
    assert not client.delete_volume(vol)
    assert client.delete_volume(snap)
    try:
        client.get_volume(vol)
        raise AssertionError('deleted volume still found')
    except exception.VolumeNotFound:
        pass
    client.close()
    print('OK %s %d calls %.1fs' % (sys.version.split()[0],
                                    client.stats['calls'],
                                    time.time() - START))


START = time.time()

if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
