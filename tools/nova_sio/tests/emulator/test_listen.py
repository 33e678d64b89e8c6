# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The emulator's listen address (``--listen``) and its certificate.

The two-host cloud reaches the gateway on an address of its own network
namespace; here addresses of the loopback range other than 127.0.0.1
stand in for it (Linux answers the whole of 127.0.0.0/8 on ``lo``).
"""

import os
import socket
import ssl
import subprocess
import sys

from cryptography import x509
from oslotest import base
import requests

from nova_sio.emulator import fixture as emu_fixture


def _san(info):
    path = os.path.join(os.path.dirname(info['ca_cert']), 'server.crt')
    with open(path, 'rb') as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    alt = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    return (sorted(str(a) for a in alt.get_values_for_type(x509.IPAddress)),
            sorted(alt.get_values_for_type(x509.DNSName)))


def _login(info, url=None):
    with requests.Session() as session:
        session.trust_env = False
        return session.get((url or info['url']) + '/api/login',
                           auth=(info['username'], info['password']),
                           verify=info['ca_cert'], timeout=10)


def _connects(address, port):
    sock = socket.socket()
    sock.settimeout(5)
    try:
        sock.connect((address, port))
        return True
    except OSError:
        return False
    finally:
        sock.close()


class ListenAddressTest(base.BaseTestCase):

    def test_default_listens_on_loopback_with_its_names(self):
        fix = self.useFixture(emu_fixture.EmulatorFixture(https=True))
        self.assertEqual('127.0.0.1', fix.info['host'])
        self.assertEqual('https://127.0.0.1:%d' % fix.info['port'],
                         fix.info['url'])
        self.assertEqual((['127.0.0.1'], ['localhost']), _san(fix.info))
        self.assertEqual(200, _login(fix.info).status_code)

    def test_listens_only_on_the_given_address(self):
        fix = self.useFixture(emu_fixture.EmulatorFixture(
            https=True, listen='127.0.0.2'))
        info = fix.info
        self.assertEqual('127.0.0.2', info['host'])
        self.assertEqual('https://127.0.0.2:%d' % info['port'], info['url'])
        # The certificate names that address, as an IP address.
        self.assertEqual((['127.0.0.2'], []), _san(info))
        resp = _login(info)
        self.assertEqual(200, resp.status_code, resp.text)
        self.assertFalse(_connects('127.0.0.1', info['port']))
        # The admin API answers a client on the listening address.
        self.assertEqual(info['system_id'],
                         fix.admin.info()['system_id'])

    def test_certificate_names_only_the_listen_address(self):
        fix = self.useFixture(emu_fixture.EmulatorFixture(
            https=True, listen='127.0.0.2'))
        context = ssl.create_default_context(cafile=fix.info['ca_cert'])

        def handshake(server_name):
            with socket.create_connection(('127.0.0.2', fix.info['port']),
                                          timeout=10) as sock:
                with context.wrap_socket(sock, server_hostname=server_name):
                    return True
        self.assertTrue(handshake('127.0.0.2'))
        for name in ('localhost', '127.0.0.1'):
            self.assertRaises(ssl.SSLCertVerificationError, handshake, name)

    def test_command_line_listen(self):
        fix = self.useFixture(emu_fixture.EmulatorFixture(
            mode='subprocess', https=True, listen='127.0.0.3'))
        self.assertEqual('https://127.0.0.3:%d' % fix.info['port'],
                         fix.info['url'])
        self.assertEqual((['127.0.0.3'], []), _san(fix.info))
        self.assertEqual(200, _login(fix.info).status_code)

    def test_command_line_refuses_a_name(self):
        proc = subprocess.run(
            [sys.executable, '-m', 'nova_sio.emulator', '--listen',
             'gateway.example'], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(2, proc.returncode)
        self.assertIn(b"'gateway.example' is not an IP address",
                      proc.stderr)

    def test_admin_refused_to_other_clients(self):
        from nova_sio.emulator import server

        class FakeHandler(server._Handler):
            def __init__(self, client, listen):
                self.client_address = (client, 1234)
                self.emulator = type('E', (), {'listen': listen})()

        for client, listen, allowed in (
                ('127.0.0.1', '10.251.0.1', True),
                ('10.251.0.1', '10.251.0.1', True),
                ('10.251.0.11', '10.251.0.1', False),
                ('::1', '127.0.0.1', True)):
            self.assertEqual(allowed, FakeHandler(
                client, listen)._admin_allowed(), (client, listen))
