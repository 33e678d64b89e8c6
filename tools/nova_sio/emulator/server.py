# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The emulated ScaleIO gateway: HTTP(S) front end, auth and admin API.

:class:`Emulator` listens on ``127.0.0.1`` or the address given as
``listen`` (port 0 picks a free port),
serves the gateway endpoints of scaleio-api.md section 7.2 over HTTP or
HTTPS, and exposes its control surface twice: as Python methods and as
JSON endpoints under ``/__admin__/`` (no auth; answered only to clients
on loopback or on the listening address itself, 403 to others), so a test
in another process, e.g. an old-Python Nova venv, can drive it too.

Admin endpoints (all JSON):

===========================  ==========================================
``GET  /__admin__/info``     URL, credentials, system id, hosts, CA path
``POST /__admin__/faults``   add a fault rule (see ``faults.py``) -> id
``POST /__admin__/faults/clear``   ``{"id": n}`` or all
``GET  /__admin__/faults``   active rules
``POST /__admin__/expire_tokens``  invalidate every token
``GET  /__admin__/log``      request log; ``POST /__admin__/log/clear``
``POST /__admin__/audit``    ``{"allow": [...]}`` -> leaks and strays
``POST /__admin__/preload``  ``{"volumes": n, "sdcs": m}``
``POST /__admin__/baseline`` current volumes are not leaks
``POST /__admin__/hosts``    ``{"name": ...}`` add an SDC host
``POST /__admin__/hosts/<name>``   ``device_delay``, ``linger``,
                             ``never_appear``, ``connected``,
                             ``registered``
``POST /__admin__/pools/<name>``   ``capacity_gb``, ``overprovision``,
                             ``zero_padding``, ``data_layout``
``POST /__admin__/config``   ``max_vtree_volumes``, ``removal_window``,
                             ``token_idle_timeout``, ``token_lifetime``,
                             ``version``
``GET  /__admin__/volumes``  every non-baseline volume
===========================  ==========================================

Authentication follows the public clients of the real gateway: every
release logs in with ``GET /api/login`` (HTTP Basic user and password)
and then reads ``/api/version`` with the token, as PyPowerFlex
(``PyPowerFlex/base_client.py``) and Cinder's PowerFlex ``rest_client``
do; ``/api/version`` does not accept the password. A 3.x gateway has no
``/rest/*`` endpoints (404). A 4.x gateway adds the appliance login
``POST /rest/auth/login`` (``access_token`` and ``refresh_token``) and
``POST /rest/auth/logout``, which closes the session only when its body
names the session's ``refresh_token`` (PyPowerFlex's
``_appliance_logout``); otherwise it answers 400 and the session stays.
"""

import base64
import collections
import http.server
import ipaddress
import json
import os
import re
import secrets
import shutil
import socket
import ssl
import struct
import tempfile
import threading
import time
from urllib.parse import unquote
from urllib.parse import urlsplit

from nova_sio.emulator import faults as faults_mod
from nova_sio.emulator import sdc as sdc_mod
from nova_sio.emulator import state as state_mod
from nova_sio.emulator.state import ApiError

ADMIN = '/__admin__/'
NO_ROUTE = ApiError(400, 0, 'no route handled')
UNAUTHORIZED = ApiError(401, 0, 'Unauthorized')
_ESCAPE_RE = re.compile(r'%[0-9A-Fa-f]{2}')


def _decode_name(raw):
    """Decode a getByName path part quoted once or twice."""
    name = unquote(raw)
    if _ESCAPE_RE.search(name):
        name = unquote(name)
    return name


class Emulator(object):
    """An emulated gateway plus SDC hosts.

    :param state_dir: directory for host trees, backing files and
        certificates; a temporary one (removed on stop) when None.
    :param storage_dir: existing directory for the volumes' backing
        files (e.g. on a file system with reflink, so that snapshots are
        copy-on-write clones); its emulator subdirectory is removed on
        stop. Default: inside ``state_dir``.
    :param version: API version, e.g. ``'3.6'`` or ``'4.5'``.
    :param https: serve HTTPS with a generated CA (``ca_cert``).
    :param port: TCP port, 0 for any free port.
    :param username: gateway user.
    :param password: gateway password; random when None.
    :param hosts: names of the emulated SDC hosts.
    :param pools: ``(domain, pool, capacity_gb)`` tuples, optionally
        with a fourth item, a dict of :meth:`set_pool` options
        (``zero_padding``, ``data_layout``).
    :param seed: seed for ids and fault probabilities.
    :param listen: IP address to listen on (``127.0.0.1`` by default);
        the HTTPS certificate names it as an IP subject alternative name.
    :param simulator: class of the SDC host simulator, called like
        ``sdc.HostSimulator`` (default); e.g.
        ``blockdev.BlockDeviceSimulator`` for real loop devices.
    """

    def __init__(self, state_dir=None, version='3.6', https=False, port=0,
                 username='admin', password=None, hosts=('host-a',),
                 pools=(('pd1', 'sp1', 1024),), seed=None,
                 token_idle_timeout=600, token_lifetime=8 * 3600,
                 storage_dir=None, simulator=None, listen='127.0.0.1'):
        self.listen = listen
        self._own_dir = state_dir is None
        self.state_dir = state_dir or tempfile.mkdtemp(prefix='sio-emu-')
        os.makedirs(self.state_dir, exist_ok=True)
        self.username = username
        self.password = password or secrets.token_urlsafe(12)
        self.https = https
        self.port = port
        self.token_idle_timeout = token_idle_timeout
        self.token_lifetime = token_lifetime
        self.system = state_mod.System(version=version, seed=seed)
        self.sim = (simulator or sdc_mod.HostSimulator)(
            self.state_dir, self.system, storage_dir=storage_dir)
        self.system.listener = self.sim
        self.faults = faults_mod.FaultSet(seed)
        self.tokens = {}
        self.refresh_tokens = {}   # refresh token -> access token
        self._tokens_lock = threading.Lock()
        self.log = collections.deque(maxlen=200000)
        self._log_lock = threading.Lock()
        self._seq = 0
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self.ca_cert = None
        self.pool_ids = {}
        for entry in pools:
            pd_name, sp_name, capacity = entry[:3]
            pool_id = self.system.add_pool(pd_name, sp_name, capacity)
            self.pool_ids[(pd_name, sp_name)] = pool_id
            if len(entry) > 3 and entry[3]:
                self.system.set_pool(pool_id, **entry[3])
        for name in hosts:
            self.sim.add_host(name)

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self):
        scheme = 'https' if self.https else 'http'
        return '%s://%s:%d' % (scheme, self.listen, self.port)

    def start(self):
        """Start serving in a background thread; return self."""
        handler = type('Handler', (_Handler,), {'emulator': self})
        server = _Server((self.listen, self.port), handler)
        if self.https:
            server.socket = self._tls_context().wrap_socket(
                server.socket, server_side=True,
                do_handshake_on_connect=False)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever,
                                        kwargs={'poll_interval': 0.1},
                                        name='sio-emulator', daemon=True)
        self._thread.start()
        return self

    def _tls_context(self):
        from nova_sio.emulator import tls
        tls_dir = os.path.join(self.state_dir, 'tls')
        os.makedirs(tls_dir, exist_ok=True)
        ca_cert, ca_key = tls.make_ca(tls_dir, 'nova-sio emulator CA')
        names = (self.listen,)
        if self.listen in ('127.0.0.1', '::1'):
            names += ('localhost',)
        cert, key = tls.make_server_cert(tls_dir, ca_cert, ca_key, names)
        self.ca_cert = ca_cert
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cert, key)
        return ctx

    def stop(self):
        """Stop serving, drop open connections, remove temporary files."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
            self._server = None
        self.sim.stop()
        self.sim.release_storage()
        if self._own_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def info(self):
        """Return what a client needs: URL, credentials, ids, hosts."""
        pools = [{'protection_domain': pd, 'storage_pool': sp, 'id': pid}
                 for (pd, sp), pid in sorted(self.pool_ids.items())]
        return {'url': self.url, 'host': self.listen, 'port': self.port,
                'scheme': 'https' if self.https else 'http',
                'username': self.username, 'password': self.password,
                'version': self.system.version, 'system_id': self.system.id,
                'ca_cert': self.ca_cert, 'state_dir': self.state_dir,
                'storage_dir': self.sim.backing_dir,
                'clone_method': self.sim.clone_method, 'pools': pools,
                'hosts': dict((n, h.describe())
                              for n, h in self.sim.hosts.items())}

    # -- control API (mirrored by AdminClient) -----------------------------

    def add_fault(self, kind, **spec):
        """Add a fault rule (see ``faults.py``); return its id."""
        return self.faults.add(kind, **spec)

    def clear_faults(self, fault_id=None):
        self.faults.clear(fault_id)

    def list_faults(self):
        return self.faults.list()

    def expire_tokens(self):
        """Invalidate every token (as if they all timed out)."""
        with self._tokens_lock:
            self.tokens.clear()
            self.refresh_tokens.clear()

    def request_log(self):
        """Return the request log (no credentials in it)."""
        with self._log_lock:
            return list(self.log)

    def clear_log(self):
        with self._log_lock:
            self.log.clear()

    def audit(self, allow=()):
        """Return leaked volumes, stray mappings and stray devices."""
        result = self.system.audit(allow)
        result['stray_devices'] = self.sim.stray_devices()
        return result

    def storage_stats(self):
        """Return how the data plane made snapshots (see ``sdc.py``)."""
        return self.sim.stats()

    def preload(self, volumes=0, sdcs=0):
        """Add baseline volumes and SDCs quickly (benchmarks)."""
        pool_id = sorted(self.pool_ids.values())[0]
        self.system.preload(pool_id, volumes, sdcs)

    def baseline(self):
        self.system.mark_baseline()

    def add_host(self, name, guid=None):
        return self.sim.add_host(name, guid).describe()

    def set_host(self, name, **options):
        return self.sim.set_host(name, **options)

    def set_pool(self, name, capacity_gb=None, overprovision=None,
                 zero_padding=None, data_layout=None):
        """Change pool ``name`` (see ``System.set_pool``)."""
        for (pd_name, sp_name), pool_id in self.pool_ids.items():
            if sp_name == name:
                self.system.set_pool(pool_id, capacity_gb, overprovision,
                                     zero_padding, data_layout)
                return
        raise KeyError(name)

    def configure(self, **options):
        for key in ('max_vtree_volumes', 'removal_window', 'version'):
            if key in options:
                setattr(self.system, key, options.pop(key))
        for key in ('token_idle_timeout', 'token_lifetime'):
            if key in options:
                setattr(self, key, options.pop(key))
        if options:
            raise KeyError(', '.join(sorted(options)))

    def volumes(self):
        return self.system.dump()

    # -- tokens ------------------------------------------------------------

    def mint_token(self, user):
        stamp = int(time.time() * 1000)
        raw = '%s:%d:%s' % (user, stamp, secrets.token_hex(16))
        token = base64.b64encode(raw.encode()).decode().rstrip('=')
        now = time.time()
        with self._tokens_lock:
            self.tokens[token] = {'user': user, 'created': now,
                                  'used': now}
        return token

    def check_token(self, token):
        now = time.time()
        with self._tokens_lock:
            entry = self.tokens.get(token)
            if entry is None:
                return False
            if (now - entry['created'] > self.token_lifetime or
                    now - entry['used'] > self.token_idle_timeout):
                del self.tokens[token]
                return False
            entry['used'] = now
            return True

    def drop_token(self, token):
        with self._tokens_lock:
            self.tokens.pop(token, None)

    def open_session(self, user):
        """Appliance login: return ``(access_token, refresh_token)``."""
        access = self.mint_token(user)
        refresh = secrets.token_hex(16)
        with self._tokens_lock:
            self.refresh_tokens[refresh] = access
        return access, refresh

    def close_session(self, access, refresh):
        """Appliance logout; False when ``refresh`` is not ``access``'s."""
        with self._tokens_lock:
            if not refresh or self.refresh_tokens.get(refresh) != access:
                return False
            del self.refresh_tokens[refresh]
            self.tokens.pop(access, None)
            return True

    def record(self, entry):
        with self._log_lock:
            self._seq += 1
            entry['seq'] = self._seq
            self.log.append(entry)

    def wait(self, seconds):
        """Sleep, waking early when the emulator stops."""
        self._stopping.wait(seconds)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, *args, **kwargs):
        self._connections = set()
        self._conn_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self):
        with self._conn_lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        # TLS handshakes refused by clients and dropped connections are
        # part of the tests; keep stderr quiet.
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'ScaleIO-Gateway-Emulator'
    sys_version = ''
    emulator = None

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP,
                                       socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError):
                self.close_connection = True
                raise

    def do_GET(self):
        self._dispatch('GET')

    def do_POST(self):
        self._dispatch('POST')

    def do_DELETE(self):
        self._dispatch('DELETE')

    def do_PUT(self):
        self._dispatch('PUT')

    # -- plumbing ----------------------------------------------------------

    def _read_body(self):
        length = int(self.headers.get('Content-Length') or 0)
        raw = self.rfile.read(length) if length else b''
        return raw

    def _send(self, status, payload=None, html=False, raw=None, entry=None):
        """Answer with ``status`` and a JSON, HTML or raw body.

        :param entry: the request's log entry, or None; its
            ``bytes_out`` and ``duration`` are set before the answer
            leaves, so that a client reading the request log right after
            the answer finds the entry complete.
        :returns: the body's length.
        """
        if raw is not None:
            data = raw
            ctype = 'application/json'
        elif html:
            data = ('<html><head><title>%d</title></head><body><h1>%d %s'
                    '</h1></body></html>' % (
                        status, status,
                        (payload or {}).get('message', ''))).encode()
            ctype = 'text/html; charset=utf-8'
        elif payload is None:
            data = b''
            ctype = 'application/json'
        else:
            data = json.dumps(payload).encode()
            ctype = 'application/json;charset=UTF-8'
        if entry is not None:
            entry.update(bytes_out=len(data),
                         duration=time.time() - entry['time'])
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        return len(data)

    def _reset(self):
        """Drop the connection with a TCP RST and no answer."""
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack('ii', 1, 0))
        except OSError:
            pass
        self.close_connection = True
        self.connection.close()

    def _credentials(self):
        """Return ``(scheme, user, secret)`` from Authorization."""
        header = self.headers.get('Authorization') or ''
        if header.startswith('Bearer '):
            return 'bearer', None, header[7:].strip()
        if header.startswith('Basic '):
            try:
                raw = base64.b64decode(header[6:].strip()).decode()
                user, _, secret = raw.partition(':')
                return 'basic', user, secret
            except (ValueError, UnicodeDecodeError):
                return 'invalid', None, None
        return 'none', None, None

    def _dispatch(self, method):
        emu = self.emulator
        started = time.time()
        path = urlsplit(self.path).path
        body_raw = self._read_body()
        if path.startswith(ADMIN):
            if not self._admin_allowed():
                self._send(403, {'error': 'admin calls only from loopback '
                                          'or %s' % emu.listen})
                return
            self._admin(method, path[len(ADMIN):], body_raw)
            return
        entry = {'time': started, 'method': method, 'path': path,
                 'bytes_in': len(body_raw) + len(self.path),
                 'fault': None, 'status': None}
        emu.record(entry)  # in-flight requests show with status None
        fired = emu.faults.take(method, path)
        scheme, user, secret = self._credentials()
        entry['auth'] = scheme
        terminal = None
        for fault in fired:
            entry['fault'] = fault.kind
            if fault.kind == 'delay':
                emu.wait(fault.params.get('seconds', 1.0))
            elif fault.kind == 'expire_token' and secret:
                emu.drop_token(secret)
            elif terminal is None:
                terminal = fault
        status, payload, html, raw = 200, None, False, None
        if terminal is not None and terminal.kind in ('hang', 'reset'):
            if terminal.kind == 'hang':
                emu.wait(terminal.params.get('seconds', 30.0))
            entry.update(status=None, bytes_out=0,
                         duration=time.time() - started)
            self._reset()
            return
        if terminal is not None and terminal.kind == 'status':
            params = terminal.params
            status = params.get('status', 500)
            err = ApiError(status, params.get('error_code', 0),
                           params.get('message', 'Injected failure'),
                           params.get('details'))
            payload, html = err.body(), bool(params.get('html'))
            if 'body' in params:  # verbatim answer, e.g. a malformed one
                payload, raw = None, params['body'].encode()
            else:
                entry['error_code'] = err.code
        else:
            try:
                body = json.loads(body_raw) if body_raw.strip() else {}
                if not isinstance(body, dict):
                    raise ValueError('not an object')
            except ValueError:
                body = None
            try:
                if body is None:
                    raise ApiError(400, 0, 'Request body is not valid '
                                   'JSON')
                status, payload, raw = self._handle(method, path, body,
                                                    scheme, user, secret)
            except ApiError as err:
                status, payload = err.status, err.body()
                entry['error_code'] = err.code
            if terminal is not None and terminal.kind == 'lost_response':
                if terminal.params.get('mode', 'reset') == 'reset':
                    entry.update(status=None, bytes_out=0,
                                 duration=time.time() - started)
                    self._reset()
                    return
                err = ApiError(500, 0, 'Internal server error')
                status, payload, raw = 500, err.body(), None
        entry['status'] = status
        self._send(status, payload, html, raw, entry=entry)

    # -- gateway -----------------------------------------------------------

    def _handle(self, method, path, body, scheme, user, secret):
        """Authenticate and route; return ``(status, payload, raw)``."""
        emu = self.emulator
        system = emu.system
        v4 = system.major >= 4
        if path == '/api/login' and method == 'GET':
            if (scheme != 'basic' or user != emu.username or
                    secret != emu.password):
                raise UNAUTHORIZED
            token = emu.mint_token(user)
            return 200, token, None
        if path.startswith('/rest/'):
            if not v4:
                raise ApiError(404, 0, 'Not Found')
            if path == '/rest/auth/login' and method == 'POST':
                if (body.get('username') != emu.username or
                        body.get('password') != emu.password):
                    raise UNAUTHORIZED
                access, refresh = emu.open_session(emu.username)
                return 200, {'access_token': access,
                             'refresh_token': refresh}, None
            if path == '/rest/auth/logout' and method == 'POST':
                if scheme != 'bearer' or not emu.check_token(secret):
                    raise UNAUTHORIZED
                if not emu.close_session(secret, body.get('refresh_token')):
                    raise ApiError(400, 0, 'refresh_token is missing or '
                                   'does not belong to this session')
                return 204, None, b''
            raise ApiError(404, 0, 'Not Found')
        if not path.startswith('/api/'):
            raise NO_ROUTE
        token_ok = False
        if scheme == 'basic' or (scheme == 'bearer' and v4):
            token_ok = emu.check_token(secret)
        if path == '/api/version' and method == 'GET':
            if not token_ok:
                raise UNAUTHORIZED
            return 200, system.version, None
        if not token_ok:
            raise UNAUTHORIZED
        if path == '/api/logout' and method == 'GET':
            emu.drop_token(secret)
            return 200, {}, None
        for route_method, regex, func in ROUTES:
            if route_method != method:
                continue
            match = regex.match(path)
            if match:
                with system.lock:
                    return 200, func(system, match, body), None
        raise NO_ROUTE

    # -- admin -------------------------------------------------------------

    def _admin_allowed(self):
        client = ipaddress.ip_address(self.client_address[0])
        return client.is_loopback or client == ipaddress.ip_address(
            self.emulator.listen)

    def _admin(self, method, path, body_raw):
        emu = self.emulator
        try:
            body = json.loads(body_raw) if body_raw.strip() else {}
            parts = path.strip('/').split('/')
            result = _admin_call(emu, method, parts, body)
            self._send(200, {'result': result})
        except (KeyError, ValueError, TypeError) as exc:
            self._send(400, {'error': '%s: %s' % (exc.__class__.__name__,
                                                  exc)})


def _admin_call(emu, method, parts, body):
    head = parts[0]
    if head == 'info':
        return emu.info()
    if head == 'faults':
        if method == 'GET':
            return emu.list_faults()
        if len(parts) > 1 and parts[1] == 'clear':
            return emu.clear_faults(body.get('id'))
        spec = dict(body)
        return emu.add_fault(spec.pop('kind'), **spec)
    if head == 'expire_tokens':
        return emu.expire_tokens()
    if head == 'log':
        if len(parts) > 1 and parts[1] == 'clear':
            return emu.clear_log()
        return emu.request_log()
    if head == 'audit':
        return emu.audit(body.get('allow') or ())
    if head == 'storage':
        return emu.storage_stats()
    if head == 'preload':
        return emu.preload(int(body.get('volumes', 0)),
                           int(body.get('sdcs', 0)))
    if head == 'baseline':
        return emu.baseline()
    if head == 'hosts':
        if len(parts) > 1:
            return emu.set_host(parts[1], **body)
        return emu.add_host(body['name'], body.get('guid'))
    if head == 'pools':
        return emu.set_pool(parts[1], **body)
    if head == 'config':
        return emu.configure(**body)
    if head == 'volumes':
        return emu.volumes()
    raise KeyError('unknown admin call %s' % '/'.join(parts))


# -- routes ----------------------------------------------------------------

def _get_system(system, match, body):
    return [system.render_system()]


def _system_by_id(system, match, body):
    if match.group('id') != system.id:
        raise ApiError(500, 3, 'Not found')
    return system.render_system()


def _list_domains(system, match, body):
    return [system.render_domain(pd) for pd in sorted(system.domains)]


def _domain_by_name(system, match, body):
    return system.domain_id(_decode_name(match.group('name')))


def _domain_query(system, match, body):
    return system.domain_id(body.get('name'))


def _domain(system, match, body):
    pd_id = match.group('id')
    if pd_id not in system.domains:
        raise ApiError(500, 3, 'Not found')
    return system.render_domain(pd_id)


def _domain_pools(system, match, body):
    _domain(system, match, body)
    return [system.render_pool(p) for p in system.pools.values()
            if p.pd_id == match.group('id')]


def _pool_by_name(system, match, body):
    return system.pool_id(match.group('pd'),
                          _decode_name(match.group('name')))


def _pool_query(system, match, body):
    pd_id = body.get('protectionDomainId')
    if pd_id is None:
        pd_id = system.domain_id(body.get('protectionDomainName'))
    return system.pool_id(pd_id, body.get('name'))


def _list_pools(system, match, body):
    return [system.render_pool(p) for p in system.pools.values()]


def _pool(system, match, body):
    return system.render_pool(system.pool(match.group('id')))


def _pool_volumes(system, match, body):
    pool = system.pool(match.group('id'))
    return [system.render_volume(system.volumes[v])
            for v in sorted(pool.volume_ids)]


def _pool_statistics(system, match, body):
    pool_id = match.group('id')
    return system.pool_statistics([pool_id], None)[pool_id]


def _query_statistics(system, match, body):
    ids = body.get('ids')
    if not isinstance(ids, list):
        raise ApiError(400, 0, 'ids is missing')
    return system.pool_statistics(ids, body.get('properties'))


def _volume_by_name(system, match, body):
    return system.volume_id(_decode_name(match.group('name')))


def _volume_query(system, match, body):
    return system.volume_id(body.get('name'))


def _list_volumes(system, match, body):
    return [system.render_volume(v) for v in system.volumes.values()]


def _create_volume(system, match, body):
    return system.create_volume(body)


def _volume(system, match, body):
    return system.render_volume(system.volume(match.group('id')))


_ACTIONS = {
    'setVolumeName': 'rename',
    'setVolumeSize': 'set_size',
    'addMappedSdc': 'add_mapping',
    'removeMappedSdc': 'remove_mapping',
    'setMappedSdcLimits': 'set_limits',
    'removeVolume': 'remove_volume',
}


def _volume_action(system, match, body):
    name = _ACTIONS.get(match.group('action'))
    if name is None:
        raise NO_ROUTE
    return getattr(system, name)(match.group('id'), body)


def _snapshot(system, match, body):
    return system.snapshot(body)


def _limits(system, match, body):
    return system.system_limits()


def _list_sdcs(system, match, body):
    return [system.render_sdc(s) for s in system.sdcs.values()
            if s.registered]


def _sdc_query(system, match, body):
    for sdc in system.sdcs.values():
        if sdc.registered and sdc.ip == body.get('ip'):
            return sdc.id
    raise ApiError(500, 3, 'Not found')


def _sdc(system, match, body):
    return system.render_sdc(system.sdc(match.group('id')))


def _sdc_volumes(system, match, body):
    sdc = system.sdc(match.group('id'))
    return [system.render_volume(system.volumes[v])
            for v in sorted(system.sdc_volumes[sdc.id])]


def _vtree(system, match, body):
    return system.vtree(match.group('id'))


def _vtree_statistics(system, match, body):
    tree = system.vtree(match.group('id'))
    return {'numOfVolumes': tree['numOfVolumes'],
            'numOfSnapshots': tree['numOfVolumes'] - 1}


_ID = r'(?P<id>[^/]+)'
_SYS = r'/api/instances/System(?:::[0-9a-fA-F]+)?'
ROUTES = [(m, re.compile(p + '$'), f) for m, p, f in (
    ('GET', r'/api/types/System/instances/?', _get_system),
    ('GET', r'/api/instances/System::' + _ID, _system_by_id),
    ('GET', r'/api/instances/System::' + _ID + r'/relationships/Sdc',
     _list_sdcs),
    ('GET', r'/api/types/ProtectionDomain/instances/?', _list_domains),
    ('GET', r'/api/types/Domain/instances/getByName::(?P<name>[^/]+)',
     _domain_by_name),
    ('POST', r'/api/types/ProtectionDomain/instances/action/queryIdByKey',
     _domain_query),
    ('GET', r'/api/instances/ProtectionDomain::' + _ID, _domain),
    ('GET', r'/api/instances/ProtectionDomain::' + _ID +
     r'/relationships/StoragePool', _domain_pools),
    ('GET', r'/api/types/Pool/instances/getByName::(?P<pd>[^,/]+),'
     r'(?P<name>[^/]+)', _pool_by_name),
    ('POST', r'/api/types/StoragePool/instances/action/queryIdByKey',
     _pool_query),
    ('GET', r'/api/types/StoragePool/instances/?', _list_pools),
    ('GET', r'/api/instances/StoragePool::' + _ID, _pool),
    ('GET', r'/api/instances/StoragePool::' + _ID +
     r'/relationships/Volume', _pool_volumes),
    ('GET', r'/api/instances/StoragePool::' + _ID +
     r'/relationships/Statistics', _pool_statistics),
    ('POST', r'/api/types/StoragePool/instances/action/'
     r'querySelectedStatistics', _query_statistics),
    ('GET', r'/api/types/Volume/instances/getByName::(?P<name>[^/]+)',
     _volume_by_name),
    ('POST', r'/api/types/Volume/instances/action/queryIdByKey',
     _volume_query),
    ('GET', r'/api/types/Volume/instances/?', _list_volumes),
    ('POST', r'/api/types/Volume/instances/?', _create_volume),
    ('GET', r'/api/instances/Volume::' + _ID, _volume),
    ('POST', r'/api/instances/Volume::' + _ID +
     r'/action/(?P<action>\w+)', _volume_action),
    ('POST', _SYS + r'/action/snapshotVolumes', _snapshot),
    ('POST', _SYS + r'/action/querySystemLimits', _limits),
    ('GET', r'/api/types/Sdc/instances/?', _list_sdcs),
    ('POST', r'/api/types/Sdc/instances/action/queryIdByKey', _sdc_query),
    ('GET', r'/api/instances/Sdc::' + _ID, _sdc),
    ('GET', r'/api/instances/Sdc::' + _ID + r'/relationships/Volume',
     _sdc_volumes),
    ('GET', r'/api/instances/VTree::' + _ID, _vtree),
    ('GET', r'/api/instances/VTree::' + _ID + r'/relationships/Statistics',
     _vtree_statistics),
)]
