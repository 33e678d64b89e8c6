# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Bad input: broken configurations and malformed gateway answers.

Broken configurations are written to a real ``nova.conf``-style file and
loaded the way a service loads it at start-up; each must fail with an
error that names the option at fault (or, for options that are valid
but point at the wrong thing, with the typed client error naming what
the gateway did not know).

Malformed gateway answers come from a stub HTTP server whose answers
hypothesis draws; every client call must return a well-typed value or
raise a :class:`SioError` subclass, never anything else.
``NOVA_SIO_HYPOTHESIS_EXAMPLES`` raises the number of examples (the
fault suite runs many more than the default test run).
"""

import http.server
import json
import os
import threading

import fixtures
import hypothesis
from hypothesis import strategies as st
from oslo_config import cfg
from oslotest import base

from nova_sio.tests import sio_base

client_mod = sio_base.client_mod
conf_mod = sio_base.conf_mod
exception = sio_base.exception

GUID = '0a0a0a0a-1111-4222-8333-444455556666'
EXAMPLES = int(os.environ.get('NOVA_SIO_HYPOTHESIS_EXAMPLES') or 60)

# (label, option named in the error, [scaleio] lines of the broken file)
BROKEN = [
    ('no gateway address', 'rest_server_ip',
     {'rest_server_ip': None}),
    ('no user', 'rest_server_username',
     {'rest_server_username': None}),
    ('no password', 'rest_server_password',
     {'rest_server_password': ''}),
    ('no protection domain', 'protection_domain_name',
     {'protection_domain_name': None}),
    ('no storage pool', 'storage_pool_name',
     {'storage_pool_name': None}),
    ('port 0', 'rest_server_port', {'rest_server_port': '0'}),
    ('port above 65535', 'rest_server_port',
     {'rest_server_port': '70000'}),
    ('port not a number', 'rest_server_port',
     {'rest_server_port': 'https'}),
    ('scheme ftp', 'rest_server_scheme', {'rest_server_scheme': 'ftp'}),
    ('verify not a boolean', 'verify_server_certificate',
     {'verify_server_certificate': 'maybe'}),
    ('relative CA path', 'server_certificate_path',
     {'server_certificate_path': 'certs/ca.pem'}),
    ('missing CA file', 'server_certificate_path',
     {'server_certificate_path': '/nonexistent/nova-sio/ca.pem'}),
    ('zero connect timeout', 'connect_timeout',
     {'connect_timeout': '0'}),
    ('negative read timeout', 'read_timeout', {'read_timeout': '-1'}),
    ('negative retries', 'max_retries', {'max_retries': '-2'}),
    ('negative retry interval', 'retry_interval',
     {'retry_interval': '-0.5'}),
    ('zero device wait', 'device_wait_timeout',
     {'device_wait_timeout': '0'}),
    ('GUID not a GUID', 'default_sdcguid',
     {'default_sdcguid': 'host-a'}),
    ('prefix too long', 'volume_name_prefix',
     {'volume_name_prefix': 'cloud1'}),
    ('prefix with a dash', 'volume_name_prefix',
     {'volume_name_prefix': 'c-1'}),
    ('relative drv_cfg', 'drv_cfg_path', {'drv_cfg_path': 'drv_cfg'}),
    ('relative device root', 'device_root',
     {'device_root': 'dev/disk/by-id'}),
    ('provisioning sparse', 'provisioning_type',
     {'provisioning_type': 'sparse'}),
]

GOOD = {'rest_server_ip': '192.0.2.10', 'rest_server_username': 'admin',
        'rest_server_password': 'Secr3t-pw', 'protection_domain_name': 'pd1',
        'storage_pool_name': 'sp1', 'rest_server_scheme': 'http'}


def write_conf(directory, values):
    """Write a ``[scaleio]`` section; None values are left out."""
    path = os.path.join(directory, 'nova.conf')
    with open(path, 'w') as handle:
        handle.write('[DEFAULT]\n\n[scaleio]\n')
        for key, value in sorted(values.items()):
            if value is not None:
                handle.write('%s = %s\n' % (key, value))
    return path


def start_up(path):
    """Load a config file and build the client, as a service start does.

    :returns: the client.
    :raises: whatever the configuration layer or the client raise.
    """
    conf = cfg.ConfigOpts()
    conf_mod.register_opts(conf)
    conf(['--config-file', path], project='nova', default_config_files=[])
    # Reading every option first is what oslo.config does for a service
    # that logs its options at start-up (log_opt_values).
    for opt in conf_mod.ALL_OPTS:
        getattr(conf.scaleio, opt.dest)
    return client_mod.Client.from_conf(conf)


class BrokenConfigTest(sio_base.TestCase):
    """Every broken configuration names its option at start-up."""

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path

    def test_at_least_ten_cases(self):
        self.assertGreaterEqual(len(BROKEN), 10)
        self.assertEqual(len(BROKEN), len(set(b[0] for b in BROKEN)))

    def test_good_configuration_starts(self):
        client = start_up(write_conf(self.dir, GOOD))
        self.assertEqual('http://192.0.2.10:443', client.url)

    def _check(self, label, option, change):
        values = dict(GOOD)
        values.update(change)
        path = write_conf(self.dir, values)
        try:
            start_up(path)
        except (exception.InvalidConfig, cfg.Error, ValueError) as exc:
            text = str(exc)
        else:
            self.fail('%s: the broken configuration was accepted' % label)
        self.assertIn(option, text, '%s: %s' % (label, text))
        # Never echo the password back, whatever else is wrong.
        self.assertNotIn(GOOD['rest_server_password'], text)
        return text


def _make_case(label, option, change):
    def test(self):
        text = self._check(label, option, change)
        if isinstance(change, dict) and option in REQUIRED_SET:
            self.assertIn('required', text)
    test.__name__ = 'test_' + label.replace(' ', '_').replace('-', '_')
    test.__doc__ = '%s -> error naming %s' % (label, option)
    return test


REQUIRED_SET = set(conf_mod.REQUIRED)
for _label, _option, _change in BROKEN:
    _test = _make_case(_label, _option, _change)
    setattr(BrokenConfigTest, _test.__name__, _test)
del _label, _option, _change, _test


class WrongTargetTest(sio_base.EmulatorTestCase):
    """Valid options pointing at the wrong thing: typed, named errors."""

    def conf_client(self, **change):
        info = self.emu_fixture.info
        values = {'rest_server_ip': info['host'],
                  'rest_server_port': str(info['port']),
                  'rest_server_scheme': info['scheme'],
                  'rest_server_username': info['username'],
                  'rest_server_password': info['password'],
                  'protection_domain_name': 'pd1',
                  'storage_pool_name': 'sp1', 'max_retries': '1',
                  'retry_interval': '0', 'connect_timeout': '2',
                  'read_timeout': '5'}
        values.update(change)
        directory = self.useFixture(fixtures.TempDir()).path
        client = start_up(write_conf(directory, values))
        self.addCleanup(client.session.close)
        return client

    def test_wrong_password(self):
        client = self.conf_client(rest_server_password='not-the-password')
        exc = self.assertRaises(exception.AuthenticationFailed,
                                client.get_system_id)
        self.assertIn(self.emu_fixture.info['username'], str(exc))
        self.assertNotIn('not-the-password', str(exc))

    def test_wrong_user(self):
        client = self.conf_client(rest_server_username='nobody')
        exc = self.assertRaises(exception.AuthenticationFailed,
                                client.get_system_id)
        self.assertIn('nobody', str(exc))

    def test_unknown_protection_domain(self):
        client = self.conf_client(protection_domain_name='pd-missing')
        exc = self.assertRaises(exception.ProtectionDomainNotFound,
                                client.get_pool_id, 'pd-missing', 'sp1')
        self.assertIn('pd-missing', str(exc))

    def test_unknown_pool(self):
        client = self.conf_client(storage_pool_name='sp-missing')
        exc = self.assertRaises(exception.PoolNotFound,
                                client.get_pool_id, 'pd1', 'sp-missing')
        self.assertIn('sp-missing', str(exc))

    def test_unregistered_sdc_guid(self):
        client = self.conf_client(default_sdcguid=GUID)
        exc = self.assertRaises(exception.SdcNotFound, client.get_sdc_id,
                                GUID)
        self.assertIn(GUID, str(exc))

    def test_nothing_listening(self):
        import socket
        sock = socket.socket()
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
        sock.close()
        client = self.conf_client(rest_server_port=str(port))
        exc = self.assertRaises(exception.GatewayUnreachable,
                                client.get_system_id)
        self.assertIn(':%d' % port, str(exc))

    def test_https_client_against_http_gateway(self):
        client = self.conf_client(rest_server_scheme='https',
                                  verify_server_certificate='false')
        exc = self.assertRaises(exception.GatewayUnreachable,
                                client.get_system_id)
        self.assertIn('https://', str(exc))


# -- malformed answers ----------------------------------------------------

_JSON_SCALARS = (st.none() | st.booleans() | st.integers(-2 ** 40, 2 ** 40) |
                 st.floats(allow_nan=False) | st.text(max_size=12))
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda inner: (st.lists(inner, max_size=3) |
                   st.dictionaries(st.sampled_from(
                       ['id', 'name', 'errorCode', 'message', 'details',
                        'sizeInKb', 'mappedSdcInfo', 'sdcId', 'sdcGuid',
                        'volumeIdList', 'access_token', 'rc',
                        'errorMessage', 'x']), inner, max_size=4)),
    max_leaves=8)

_BODY = st.one_of(
    _JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
    st.sampled_from([b'', b'{', b'"', b'[1,', b'\xff\xfe', b'null',
                     b'<html><body>502 Bad Gateway</body></html>',
                     b'{"message": "Error with details", "details": 7}',
                     b'{"message": "Error with details", "details": {}}',
                     b'{"message": "Error with details", "details": "x"}',
                     b'{"errorCode": "x", "details": [1]}',
                     b'{"errorCode": [], "message": {}}']))

_ANSWER = st.tuples(
    st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 409,
                     500, 502, 503]),
    st.sampled_from(['application/json', 'application/json;charset=UTF-8',
                     'text/html', 'text/plain', '']),
    _BODY)

# A well-formed login, so that the drawn answers also reach the calls.
_LOGIN = [(200, 'application/json', b'"3.6"'),
          (200, 'application/json', b'"dG9rZW4"')]

OPERATIONS = (
    ('get_api_version', lambda c: c.get_api_version()),
    ('get_system_id', lambda c: c.get_system_id()),
    ('get_pool_id', lambda c: c.get_pool_id('pd1', 'sp1')),
    ('pool_capacity', lambda c: c.pool_capacity('0123456789abcdef')),
    ('create_volume', lambda c: c.create_volume('v', 8, 'ab')),
    ('get_volume', lambda c: c.get_volume('0123456789abcdef')),
    ('get_volume_id', lambda c: c.get_volume_id('v')),
    ('rename_volume', lambda c: c.rename_volume('ab', 'w')),
    ('extend_volume', lambda c: c.extend_volume('ab', 16)),
    ('delete_volume', lambda c: c.delete_volume('ab', unmap=True)),
    ('map_volume', lambda c: c.map_volume('ab', sdc_id='cd')),
    ('unmap_volume', lambda c: c.unmap_volume('ab', sdc_id='cd')),
    ('get_mapped_sdc_ids', lambda c: c.get_mapped_sdc_ids('ab')),
    ('is_mapped', lambda c: c.is_mapped('ab', 'cd')),
    ('snapshot_volume', lambda c: c.snapshot_volume('ab', 's')),
    ('get_sdc_id', lambda c: c.get_sdc_id(GUID)),
    ('get_sdc', lambda c: c.get_sdc('cd')),
)

_STR = (type(u''), str)


def check_result(name, value):
    """Return None when ``value`` is well typed for ``name``, else why."""
    ids = ('get_system_id', 'get_pool_id', 'create_volume',
           'snapshot_volume', 'get_sdc_id')
    if name in ids and not (isinstance(value, _STR) and value):
        return '%s returned %r instead of an id' % (name, value)
    if name == 'get_volume_id' and not (
            value is None or (isinstance(value, _STR) and value)):
        return 'get_volume_id returned %r' % (value,)
    if name == 'get_mapped_sdc_ids' and not (
            isinstance(value, list) and
            all(isinstance(v, _STR) for v in value)):
        return 'get_mapped_sdc_ids returned %r' % (value,)
    if name in ('delete_volume', 'map_volume', 'unmap_volume',
                'is_mapped') and not isinstance(value, bool):
        return '%s returned %r instead of a bool' % (name, value)
    if name == 'pool_capacity' and not (
            isinstance(value, dict) and
            all(isinstance(v, int) for v in value.values())):
        return 'pool_capacity returned %r' % (value,)
    return None


class _Script(object):
    """The answers the stub gateway gives, in order."""

    def __init__(self):
        self.answers = []
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            if self.answers:
                return self.answers.pop(0)
        return (500, 'application/json',
                b'{"message": "script exhausted", "errorCode": 0}')


def _stub_handler(script):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, fmt, *args):
            pass

        def _answer(self):
            length = int(self.headers.get('Content-Length') or 0)
            if length:
                self.rfile.read(length)
            status, ctype, body = script.next()
            self.send_response(status)
            if ctype:
                self.send_header('Content-Type', ctype)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer
    return Handler


class MalformedAnswerTest(base.BaseTestCase):
    """Whatever the gateway sends: a typed value or a SioError."""

    def setUp(self):
        super().setUp()
        # One test method runs every example: give it time for them all.
        self.useFixture(fixtures.Timeout(60 + EXAMPLES, gentle=True))
        self.script = _Script()
        server = http.server.ThreadingHTTPServer(
            ('127.0.0.1', 0), _stub_handler(self.script))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever,
                                  kwargs={'poll_interval': 0.05},
                                  daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.port = server.server_address[1]

    def client(self):
        client = client_mod.Client('127.0.0.1', 'admin', 'pw', port=self.port,
                                   scheme='http', max_retries=1,
                                   retry_interval=0, connect_timeout=2,
                                   read_timeout=5, token_refresh_interval=0,
                                   auth_flow='legacy')
        return client

    def run_operation(self, op_index, answers):
        name, func = OPERATIONS[op_index]
        self.script.answers = list(answers)
        client = self.client()
        try:
            value = func(client)
        except exception.SioError:
            return None
        except Exception as exc:
            return '%s raised %s: %s' % (name, exc.__class__.__name__, exc)
        finally:
            client.session.close()
        return check_result(name, value)

    @hypothesis.settings(max_examples=EXAMPLES, deadline=None,
                         suppress_health_check=list(
                             hypothesis.HealthCheck),
                         database=None)
    @hypothesis.given(op=st.integers(0, len(OPERATIONS) - 1),
                      answers=st.lists(_ANSWER, min_size=1, max_size=5))
    def test_answers_after_login(self, op, answers):
        problem = self.run_operation(op, _LOGIN + answers)
        self.assertIsNone(problem)

    @hypothesis.settings(max_examples=max(10, EXAMPLES // 3), deadline=None,
                         suppress_health_check=list(
                             hypothesis.HealthCheck),
                         database=None)
    @hypothesis.given(op=st.integers(0, len(OPERATIONS) - 1),
                      answers=st.lists(_ANSWER, min_size=1, max_size=4))
    def test_answers_to_login(self, op, answers):
        problem = self.run_operation(op, answers)
        self.assertIsNone(problem)

    def test_every_operation_typed_on_garbage(self):
        """Deterministic slice: one garbage answer per operation."""
        problems = []
        for index, (name, _func) in enumerate(OPERATIONS):
            for body in (b'{', b'[]', b'{}', b'"x"', b'7', b'null'):
                problem = self.run_operation(
                    index, _LOGIN + [(200, 'application/json', body)])
                if problem:
                    problems.append(problem)
        self.assertEqual([], problems)
