# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Helpers for sio tests that run against the gateway emulator process.

``NOVA_SIO_EMULATOR`` holds the JSON line ``nova-sio emulator`` prints
when it starts, or the path of a file holding it (``nova-sio test`` sets
it).  Only true edges are replaced here: ``qemu-img`` is not installed on
test hosts, so its ``info`` and ``convert`` become small byte operations.
"""

from __future__ import absolute_import

import json
import os
import ssl

try:
    import mock  # noqa: H216 (Python 2.7 has no unittest.mock)
except ImportError:
    from unittest import mock
import requests


def align_urllib3_with_eventlet():
    """Let urllib3 make eventlet's SSL contexts when it was imported first.

    nova-compute patches the standard library with eventlet before it
    imports anything else, so urllib3 binds ``ssl.SSLContext`` once it is
    eventlet's class.  In the unit test process of some series
    (``nova.tests.unit`` imports ``nova.objects``, and with it urllib3,
    before ``nova.test`` patches), urllib3 keeps the original class,
    whose property setters then recurse for ever once ``ssl.SSLContext``
    names eventlet's class.  Re-binding urllib3's name restores the order
    nova-compute has; it changes nothing where the names already agree.
    """
    modules = []
    try:
        from urllib3.util import ssl_ as urllib3_ssl
        modules.append(urllib3_ssl)
    except ImportError:
        pass
    try:
        from requests.packages.urllib3.util import ssl_ as vendored_ssl
        modules.append(vendored_ssl)
    except ImportError:
        pass
    for module in modules:
        bound = getattr(module, 'SSLContext', None)
        if (isinstance(bound, type) and bound is not ssl.SSLContext and
                issubclass(ssl.SSLContext, bound)):
            module.SSLContext = ssl.SSLContext


def emulator_info():
    """Return the emulator description from the environment, or None."""
    raw = os.environ.get('NOVA_SIO_EMULATOR', '').strip()
    if not raw:
        return None
    if not raw.startswith('{'):
        with open(raw) as handle:
            raw = handle.read()
    return json.loads(raw)


#: The name the tests reach the emulator by, one of the DNS names of its
#: certificate: the ``ssl.match_hostname`` of Python 2.7 (used by the
#: requests of the Python 2.7 venvs, Kilo to Train) matches DNS names
#: only, never the IP addresses of a certificate's subjectAltName.
GATEWAY_HOST = 'localhost'


def gateway_url(emu):
    """Return the base URL of the emulator, by :data:`GATEWAY_HOST`."""
    return '%s://%s:%s' % (emu['scheme'], GATEWAY_HOST, emu['port'])


def scaleio_flags(emu, name, **extra):
    """Return the ``[scaleio]`` options of emulated compute host ``name``.

    :param emu: the description from :func:`emulator_info`.
    :param name: an emulated SDC host (``host-a``, ``host-b``).
    :param extra: more options, e.g. ``zero_copy_boot=True``.
    """
    host = emu['hosts'][name]
    align_urllib3_with_eventlet()
    # HTTPS with the certificate checked against the emulator's CA, as
    # the production defaults want it.
    flags = dict(rest_server_ip=GATEWAY_HOST, rest_server_port=emu['port'],
                 rest_server_scheme=emu['scheme'],
                 rest_server_username=emu['username'],
                 rest_server_password=emu['password'],
                 verify_server_certificate=True,
                 server_certificate_path=emu['ca_cert'],
                 protection_domain_name='pd1', storage_pool_name='sp1',
                 default_sdcguid=host['guid'], drv_cfg_path=host['drv_cfg'],
                 device_root=host['device_root'], device_wait_timeout=10.0,
                 retry_interval=0.01)
    flags.update(extra)
    return flags


def admin(emu, what, method='get', body=None):
    """Call the emulator's admin API and return its result.

    :param emu: the description from :func:`emulator_info`.
    :param what: the admin path, e.g. ``audit``.
    """
    align_urllib3_with_eventlet()
    resp = getattr(requests, method)(
        '%s/__admin__/%s' % (gateway_url(emu), what), json=body,
        verify=emu['ca_cert'] or True, timeout=30)
    resp.raise_for_status()
    return resp.json()['result']


def fake_qemu_img_info(path, *args, **kwargs):
    """``qemu-img info`` of a raw file."""
    size = os.path.getsize(path) if os.path.exists(path) else 0
    return mock.Mock(file_format='raw', virtual_size=size, disk_size=size,
                     backing_file=None)


def fake_convert_image(source, dest, *args, **kwargs):
    """``qemu-img convert`` of small raw data, into a device or a file.

    Copies the leading 64 KiB only: test images are smaller, and the
    volumes are sparse files that need not be read through.
    """
    with open(source, 'rb') as fin:
        data = fin.read(64 * 1024)
    mode = 'r+b' if os.path.exists(dest) else 'wb'
    with open(dest, mode) as fout:
        fout.write(data)


def read_head(path, length):
    """Return the first ``length`` bytes of ``path``."""
    with open(path, 'rb') as handle:
        return handle.read(length)
