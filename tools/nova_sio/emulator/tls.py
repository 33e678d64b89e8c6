# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Self-signed CA and server certificates for the HTTPS emulator.

:func:`make_ca` writes a CA certificate and key; :func:`make_server_cert`
writes a server certificate signed by that CA for the names given
(``127.0.0.1`` / ``localhost`` by default; the emulator passes the
address it listens on, as an IP subject alternative name). A client that
trusts the CA file verifies the emulator; one given another CA must
reject it.
"""

import datetime
import ipaddress
import os

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID


def _name(common_name):
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'nova-sio emulator'),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key, path):
    with open(path, 'wb') as handle:
        handle.write(key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    os.chmod(path, 0o600)


def _write_cert(cert, path):
    with open(path, 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))


def _validity(builder):
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)) \
        .not_valid_after(now + datetime.timedelta(days=7)) \
        .serial_number(x509.random_serial_number())


def make_ca(directory, name='nova-sio test CA'):
    """Create a CA; return ``(cert_path, key_path)`` in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _validity(x509.CertificateBuilder()
                        .subject_name(_name(name))
                        .issuer_name(_name(name))
                        .public_key(key.public_key()))
    builder = builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=0), critical=True)
    builder = builder.add_extension(
        x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                      crl_sign=True, content_commitment=False,
                      key_encipherment=False, data_encipherment=False,
                      key_agreement=False, encipher_only=False,
                      decipher_only=False), critical=True)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
        critical=False)
    cert = builder.sign(key, hashes.SHA256())
    slug = ''.join(c if c.isalnum() else '-' for c in name)
    cert_path = os.path.join(directory, '%s.crt' % slug)
    key_path = os.path.join(directory, '%s.key' % slug)
    _write_cert(cert, cert_path)
    _write_key(key, key_path)
    return cert_path, key_path


def make_server_cert(directory, ca_cert_path, ca_key_path,
                     hosts=('127.0.0.1', 'localhost')):
    """Create a server certificate signed by the CA.

    :param directory: where to write ``server.crt`` and ``server.key``.
    :param ca_cert_path: the CA certificate.
    :param ca_key_path: the CA key.
    :param hosts: names the certificate is valid for: IP addresses
        become IP subject alternative names, others DNS names; the first
        one is also the common name.
    :returns: ``(cert_path, key_path)``.
    """
    with open(ca_cert_path, 'rb') as handle:
        ca_cert = x509.load_pem_x509_certificate(handle.read())
    with open(ca_key_path, 'rb') as handle:
        ca_key = serialization.load_pem_private_key(handle.read(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    alt = []
    for host in hosts:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt.append(x509.DNSName(host))
    builder = _validity(x509.CertificateBuilder()
                        .subject_name(_name(hosts[0]))
                        .issuer_name(ca_cert.subject)
                        .public_key(key.public_key()))
    builder = builder.add_extension(x509.SubjectAlternativeName(alt),
                                    critical=False)
    builder = builder.add_extension(
        x509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
        critical=False)
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    cert_path = os.path.join(directory, 'server.crt')
    key_path = os.path.join(directory, 'server.key')
    _write_cert(cert, cert_path)
    _write_key(key, key_path)
    return cert_path, key_path
