# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""REST client for the ScaleIO / VxFlex OS / PowerFlex gateway.

Runs unchanged on Python 2.7 and 3.6+, needs only ``requests``,
``oslo.config`` (for :meth:`Client.from_conf`) and stdlib ``logging``.

Usage::

    client = Client.from_conf(CONF)          # or Client(host, user, pw)
    pool_id = client.get_pool_id('pd1', 'sp1')
    vol_id = client.create_volume(name, 16, pool_id, thin=False)
    client.map_volume(vol_id, sdc_id=client.get_sdc_id(guid))
    path = host.device_path(root, client.get_system_id(), vol_id)

API summary (sizes in GiB unless said otherwise; ids are 16-hex strings):

``Client(host, username, password, port=443, scheme='https',
verify=True, connect_timeout=10, read_timeout=60, max_retries=3,
retry_interval=0.5, max_retry_interval=8, token_refresh_interval=300,
auth_flow=None, allow_non_padded_volumes=False)``
    ``verify`` is True (system CA store), False (no verification; one
    warning is logged) or the path of a CA bundle.
``Client.from_conf(conf)``
    Build from the ``[scaleio]`` options (see ``conf.py``).
``get_api_version() -> '3.6'``
``get_system_id() -> id`` (cached)
``get_protection_domain_id(pd_name) -> id`` (cached)
``get_pool_id(pd_name, sp_name) -> id`` (cached)
``get_pool(pool_id) -> dict`` (StoragePool object)
``pool_properties(pool_id) -> {'zero_padding', 'fine_granularity'}``
(cached)
``pool_capacity(pool_id) -> {'total_bytes', 'free_bytes', 'used_bytes',
'provisioned_bytes'}``
``create_volume(name, size_gb, pool_id, thin=False,
protection_domain_id=None) -> volume_id``
    ``size_gb`` must be a positive multiple of 8 (use
    ``naming.check_size``). Never retried except on "insufficient
    resources" or a refused connection, so it cannot create a duplicate.
    A :class:`~.exception.NameInUse` after a lost answer means the volume
    exists: resolve it with ``get_volume_id(name)``. Refused with
    :class:`~.exception.UnsafePool` in a pool without zero padding unless
    ``allow_non_padded_volumes``; thick volumes become thin in a Fine
    Granularity pool (a warning is logged).
``get_volume(volume_id) -> dict`` (Volume object; ``mappedSdcInfo`` is
None when unmapped)
``get_volume_id(name) -> id or None``
``rename_volume(volume_id, new_name)``
``extend_volume(volume_id, new_size_gb)`` (new total size, multiple of 8;
extending to the current size is a no-op)
``delete_volume(volume_id, remove_mode='ONLY_ME', unmap=False) -> bool``
    False when the volume did not exist. When the removal is refused,
    whatever the answer's code, the volume's ``mappedSdcInfo`` is read:
    with ``unmap=True`` it is unmapped from every SDC listed there and
    removed again, otherwise :class:`~.exception.VolumeMapped` is
    raised; an unmapped volume's error is raised (after the usual
    retries when transient).
``map_volume(volume_id, sdc_id=None, guid=None, allow_multiple=True)
-> bool``
    False when it was already mapped to that SDC.
``unmap_volume(volume_id, sdc_id=None, guid=None, all_sdcs=False)
-> bool``
    False when it was not mapped.
``is_mapped(volume_id, sdc_id=None) -> bool`` (to that SDC, or to any)
``get_mapped_sdc_ids(volume_id) -> [sdc_id, ...]``
``snapshot_volume(volume_id, snapshot_name) -> snapshot_volume_id``
``get_sdc_id(guid, hint=None) -> id`` (GUID in any letter case; cached.
Without a ``hint`` id (``host.query_sdc_ids()``) this is the one lookup
that reads the SDC list, once per client.)
``get_sdc(sdc_id) -> dict``
``logout()``, ``close()``
``stats`` -> ``{'calls', 'bytes_sent', 'bytes_received', 'retries',
'logins'}`` counted over every HTTP request; ``reset_stats()``.

Errors are :mod:`.exception` classes rooted at ``SioError``.

Behaviour:

* one ``requests.Session`` with (connect, read) timeouts;
* lazy login, as PyPowerFlex (``PyPowerFlex/base_client.py``) and
  Cinder's PowerFlex ``rest_client`` do it: ``GET /api/login`` with the
  password, then ``GET /api/version`` with the token. 3.x keeps that
  token (HTTP Basic ``(user, token)``) and is never asked for
  ``/rest/*``; 4.x then logs in with ``POST /rest/auth/login`` and uses
  ``Authorization: Bearer`` (keeping the first token when the appliance
  endpoint is absent, else logging it out). The 4.x logout sends the
  session's ``refresh_token`` to ``/rest/auth/logout``;
* on 401 or 403 it logs in again once and replays the request once with
  the *new* token; a token idle longer than ``token_refresh_interval`` is
  refreshed first, and a failed refresh keeps the old token;
* idempotent calls are retried up to ``max_retries`` times with
  exponential backoff on transport errors and 5xx answers; "insufficient
  resources" is retried for every call; nothing else is retried for calls
  that create volumes;
* passwords and tokens are never logged; request bodies are not logged.
"""

from __future__ import absolute_import

import base64
import json
import logging
import re
import threading
import time
import warnings

import requests

from . import exception

try:
    from urllib.parse import quote
except ImportError:  # Python 2
    from urllib import quote

try:
    from requests.packages.urllib3.exceptions import InsecureRequestWarning
except ImportError:  # pragma: no cover - requests without the shim
    from urllib3.exceptions import InsecureRequestWarning

LOG = logging.getLogger(__name__)

GiB_IN_KiB = 1024 * 1024
SIZE_GRANULARITY_GB = 8
REMOVE_MODES = ('ONLY_ME', 'INCLUDING_DESCENDANTS', 'DESCENDANTS_ONLY',
                'WHOLE_VTREE')
_VERSION_RE = re.compile(r'^\d+(\.\d+)*$')


def _quiet_insecure_warnings(host):
    """Stop urllib3 repeating its warning on every request to ``host``.

    Newer urllib3 names the host in the message, so other unverified
    connections of the process keep their warnings; older releases do
    not, and there the (host-less) warning is silenced as a whole. The
    filter is (re)installed for every client: filterwarnings replaces an
    identical entry, and something may have reset the filters since.
    """
    warnings.filterwarnings(
        'ignore', category=InsecureRequestWarning,
        message=r"Unverified HTTPS request is being made"
                r"(?: to host '%s')?\." % re.escape(host))


def _basic(user, secret):
    raw = ('%s:%s' % (user, secret)).encode('utf-8')
    return 'Basic ' + base64.b64encode(raw).decode('ascii')


def _unquote_json_string(text):
    """Decode a JSON string body such as ``"abc"`` into ``abc``."""
    try:
        value = json.loads(text)
    except ValueError:
        value = text.strip().strip('"')
    if not isinstance(value, type(u'')) and not isinstance(value, str):
        raise ValueError('expected a JSON string, got %r' % (value,))
    return value


def _as_id(value):
    """Return ``value`` if it looks like an object id, else ValueError."""
    if isinstance(value, (type(u''), str)) and value:
        return value
    raise ValueError('not an id: %r' % (value,))


def _error_fields(body):
    """Return ``(errorCode, message, details)`` of an error body.

    Fields of the wrong type are dropped rather than trusted: the code
    becomes an int or None, the message a string or None, and details a
    list of dicts holding only ``rc`` (int) and string fields.
    """
    text_types = (type(u''), str)
    code = body.get('errorCode')
    if isinstance(code, bool):
        code = None
    elif isinstance(code, text_types) and code.strip().isdigit():
        code = int(code)
    elif not isinstance(code, int):
        code = None
    message = body.get('message')
    if not isinstance(message, text_types):
        message = None
    details = []
    raw = body.get('details')
    for item in raw if isinstance(raw, list) else ():
        if not isinstance(item, dict):
            continue
        clean = {}
        for key in ('error', 'errorMessage'):
            if isinstance(item.get(key), text_types):
                clean[key] = item[key]
        if isinstance(item.get('rc'), int) and not isinstance(
                item.get('rc'), bool):
            clean['rc'] = item['rc']
        details.append(clean)
    return code, message, details or None


def _check_size_gb(size_gb, volume):
    try:
        size = int(size_gb)
    except (TypeError, ValueError):
        size = None
    if size is None or size != size_gb or size <= 0:
        raise exception.InvalidSize(
            disk=volume, reason='size %r GiB is not a positive integer'
            % (size_gb,))
    if size % SIZE_GRANULARITY_GB:
        raise exception.InvalidSize(
            disk=volume, reason='%d GiB is not a multiple of %d GiB'
            % (size, SIZE_GRANULARITY_GB))
    return size


class Client(object):
    """ScaleIO gateway client; see the module docstring for the API.

    :param host: gateway address (name or IP).
    :param username: gateway user.
    :param password: gateway password (never logged).
    :param port: gateway port.
    :param scheme: ``https`` or ``http``.
    :param verify: True, False or a CA bundle path.
    :param connect_timeout: seconds to wait for a TCP/TLS connection.
    :param read_timeout: seconds to wait for an answer.
    :param max_retries: retries after the first attempt (idempotent calls).
    :param retry_interval: first backoff delay in seconds (doubles).
    :param max_retry_interval: upper bound of one backoff delay.
    :param token_refresh_interval: idle seconds after which the token is
        refreshed before use; 0 disables.
    :param auth_flow: None to detect, or ``legacy`` / ``bearer``
        (``bearer`` needs a 4.x gateway; 3.x always uses ``legacy``).
    :param allow_non_padded_volumes: create volumes in pools whose zero
        padding is off (they may expose earlier data).
    """

    def __init__(self, host, username, password, port=443, scheme='https',
                 verify=True, connect_timeout=10, read_timeout=60,
                 max_retries=3, retry_interval=0.5, max_retry_interval=8,
                 token_refresh_interval=300, auth_flow=None,
                 allow_non_padded_volumes=False):
        if scheme not in ('http', 'https'):
            raise exception.InvalidConfig(option='rest_server_scheme',
                                          reason='must be http or https')
        self.url = '%s://%s:%s' % (scheme, host, port)
        self.username = username
        self._password = password
        self.timeout = (connect_timeout, read_timeout)
        self.max_retries = max(0, int(max_retries))
        self.retry_interval = retry_interval
        self.max_retry_interval = max_retry_interval
        self.token_refresh_interval = token_refresh_interval
        self._flow = auth_flow
        self.allow_non_padded_volumes = bool(allow_non_padded_volumes)
        self._api_version = None
        self._token = None
        self._refresh_token = None
        self._token_used = 0.0
        self._lock = threading.RLock()
        self._cache = {}
        self.stats = {}
        self.reset_stats()
        self.session = requests.Session()
        # No ~/.netrc credentials or proxy settings from the environment.
        self.session.trust_env = False
        self.session.headers.update({'Accept': 'application/json',
                                     'Content-Type': 'application/json'})
        self.session.verify = verify
        if scheme == 'https' and verify is False:
            _quiet_insecure_warnings(host)
            LOG.warning('TLS certificate verification of the ScaleIO '
                        'gateway %s is disabled', self.url)

    @classmethod
    def from_conf(cls, conf, **overrides):
        """Build a client from the ``[scaleio]`` options of ``conf``.

        :param conf: an ``oslo_config.cfg.ConfigOpts`` with the options of
            ``conf.py`` registered.
        :param overrides: constructor arguments that win over the options.
        :raises InvalidConfig: for missing or bad options.
        """
        from . import conf as sio_conf
        sio_conf.validate(conf)
        group = conf.scaleio
        verify = bool(group.verify_server_certificate)
        if verify and group.server_certificate_path:
            verify = group.server_certificate_path
        kwargs = dict(host=group.rest_server_ip,
                      username=group.rest_server_username,
                      password=group.rest_server_password,
                      port=group.rest_server_port,
                      scheme=group.rest_server_scheme,
                      verify=verify,
                      connect_timeout=group.connect_timeout,
                      read_timeout=group.read_timeout,
                      max_retries=group.max_retries,
                      retry_interval=group.retry_interval,
                      allow_non_padded_volumes=(
                          group.allow_non_padded_volumes))
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self):
        return '<Client %s user=%s>' % (self.url, self.username)

    # -- statistics --------------------------------------------------------

    def reset_stats(self):
        """Zero the request counters in ``self.stats``."""
        self.stats.update(calls=0, bytes_sent=0, bytes_received=0,
                          retries=0, logins=0)

    def _count(self, key, value=1):
        with self._lock:
            self.stats[key] += value

    # -- transport ---------------------------------------------------------

    def _send(self, method, path, body=None, headers=None):
        """One HTTP exchange; transport errors become SioError."""
        data = None if body is None else json.dumps(body)
        url = self.url + path
        self._count('calls')
        self._count('bytes_sent', len(path) + len(data or ''))
        started = time.time()
        try:
            resp = self.session.request(method, url, data=data,
                                        headers=headers,
                                        timeout=self.timeout,
                                        allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            LOG.debug('%s %s: TLS error', method, path)
            raise exception.GatewayUnreachable(
                url=self.url, method=method, path=path,
                reason='TLS error: %s' % exc, retry_safe=False,
                tls=True)
        except requests.exceptions.ConnectTimeout:
            raise exception.GatewayTimeout(
                url=self.url, method=method, path=path,
                timeout=self.timeout[0], retry_safe=True)
        except requests.exceptions.ReadTimeout:
            raise exception.GatewayTimeout(
                url=self.url, method=method, path=path,
                timeout=self.timeout[1], retry_safe=False)
        except requests.exceptions.RequestException as exc:
            text = repr(exc)
            refused = ('NewConnectionError' in text or
                       'Connection refused' in text or
                       'Errno 111' in text)
            raise exception.GatewayUnreachable(
                url=self.url, method=method, path=path,
                reason=exc.__class__.__name__ + (
                    ' (connection refused)' if refused else ''),
                retry_safe=refused)
        self._count('bytes_received', len(resp.content or b''))
        LOG.debug('%s %s -> %s in %.3fs', method, path, resp.status_code,
                  time.time() - started)
        return resp

    def _auth_headers(self, token):
        if self._flow == 'bearer':
            return {'Authorization': 'Bearer %s' % token}
        return {'Authorization': _basic(self.username, token)}

    # -- authentication ----------------------------------------------------

    def _login_error(self, resp, path):
        if resp.status_code in (401, 403):
            return exception.AuthenticationFailed(
                url=self.url, user=self.username,
                http_status=resp.status_code)
        return self._error(resp, 'POST' if path.startswith('/rest')
                           else 'GET', path, {})

    def _legacy_login(self, allow_missing=False):
        """``GET /api/login``; None when absent and ``allow_missing``."""
        resp = self._send('GET', '/api/login', headers={
            'Authorization': _basic(self.username, self._password)})
        if allow_missing and resp.status_code in (404, 405, 501):
            return None
        if resp.status_code != 200:
            raise self._login_error(resp, '/api/login')
        try:
            token = _unquote_json_string(resp.text)
        except ValueError:
            raise exception.MalformedResponse(
                method='GET', path='/api/login',
                reason='the token is not a JSON string')
        return token

    def _bearer_login(self):
        """PowerFlex 4.x appliance login; None when not available.

        Keeps the session's refresh token for :meth:`logout`.
        """
        path = '/rest/auth/login'
        resp = self._send('POST', path, body={
            'username': self.username, 'password': self._password})
        if resp.status_code in (404, 405, 501):
            return None
        if resp.status_code != 200:
            raise self._login_error(resp, path)
        try:
            body = resp.json()
            token = body['access_token']
        except (ValueError, KeyError, TypeError):
            raise exception.MalformedResponse(
                method='POST', path=path, reason='no access_token')
        refresh = body.get('refresh_token')
        self._refresh_token = refresh if isinstance(
            refresh, (type(u''), str)) else None
        return token

    def _parse_version(self, resp):
        try:
            version = _unquote_json_string(resp.text)
        except ValueError:
            version = None
        if not version or not _VERSION_RE.match(version):
            raise exception.MalformedResponse(
                method='GET', path='/api/version',
                reason='bad version string %r' % (resp.text[:40],))
        return version

    def _major(self):
        return int(self._api_version.split('.')[0])

    def _login(self):
        """Log in (detecting the release on first use); return the token."""
        self._count('logins')
        if self._api_version is None:
            return self._detect_and_login()
        if self._flow == 'bearer':
            token = self._bearer_login()
            if token is not None:
                return token
            self._flow = 'legacy'
        return self._legacy_login()

    def _read_version(self, headers):
        resp = self._send('GET', '/api/version', headers=headers)
        if resp.status_code != 200:
            raise self._error(resp, 'GET', '/api/version', {})
        self._api_version = self._parse_version(resp)

    def _detect_and_login(self):
        # Like PyPowerFlex's base_client and Cinder's rest_client: log in
        # with GET /api/login, then read the version with the token. Only
        # 4.x has the appliance endpoints under /rest.
        token = self._legacy_login(allow_missing=True)
        if token is None:
            token = self._bearer_login()
            if token is None:
                raise exception.MalformedResponse(
                    method='GET', path='/api/login',
                    reason='neither /api/login nor /rest/auth/login exists')
            self._flow = 'bearer'
            self._read_version(self._auth_headers(token))
        else:
            self._read_version({'Authorization': _basic(self.username,
                                                        token)})
            if self._major() < 4:
                self._flow = 'legacy'
            elif self._flow in (None, 'bearer'):
                bearer = self._bearer_login()
                if bearer is None:
                    self._flow = 'legacy'
                else:
                    self._flow = 'bearer'
                    self._legacy_logout(token)
                    token = bearer
        LOG.info('ScaleIO gateway %s: API %s, %s authentication', self.url,
                 self._api_version, self._flow)
        return token

    def _get_token(self):
        with self._lock:
            now = time.time()
            if self._token is None:
                self._token = self._login_with_retries()
            elif (self.token_refresh_interval and
                  now - self._token_used > self.token_refresh_interval):
                old = (self._flow, self._token, self._refresh_token)
                try:
                    self._token = self._login()
                except exception.SioError as exc:
                    self._refresh_token = old[2]
                    LOG.warning('Refreshing the ScaleIO token failed (%s); '
                                'keeping the current one',
                                exc.__class__.__name__)
                else:
                    if old[0] == 'bearer' and old[2]:
                        # The old appliance session would stay open.
                        self._bearer_logout(old[1], old[2])
            self._token_used = now
            return self._token

    def _relogin(self, stale):
        """Replace ``stale`` unless another thread already did."""
        with self._lock:
            if self._token == stale:
                self._token = self._login_with_retries()
            self._token_used = time.time()
            return self._token

    def _login_with_retries(self):
        attempt = 0
        while True:
            try:
                return self._login()
            except (exception.GatewayUnreachable,
                    exception.GatewayError) as exc:
                if not self._may_retry(exc, True, attempt):
                    raise
            attempt += 1
            self._backoff(attempt)

    def get_api_version(self):
        """Return the gateway's API version string, e.g. ``'3.6'``."""
        self._get_token()
        return self._api_version

    def _legacy_logout(self, token):
        """``GET /api/logout`` for a ``/api/login`` token (best effort)."""
        try:
            self._send('GET', '/api/logout', headers={
                'Authorization': _basic(self.username, token)})
        except exception.SioError:
            LOG.debug('ScaleIO logout failed', exc_info=False)

    def _bearer_logout(self, token, refresh):
        """Close a 4.x appliance session (best effort).

        The body names the session's refresh token, as PyPowerFlex's
        ``_appliance_logout`` sends it; the gateway answers 204.
        """
        try:
            resp = self._send('POST', '/rest/auth/logout',
                              body={'refresh_token': refresh},
                              headers={'Authorization': 'Bearer %s' % token})
        except exception.SioError:
            LOG.debug('ScaleIO logout failed', exc_info=False)
            return
        if resp.status_code not in (200, 204):
            LOG.debug('ScaleIO logout answered HTTP %s', resp.status_code)

    def logout(self):
        """Drop the token (and tell the gateway, best effort)."""
        with self._lock:
            token, self._token = self._token, None
            refresh, self._refresh_token = self._refresh_token, None
        if token is None:
            return
        if self._flow == 'bearer':
            self._bearer_logout(token, refresh)
        else:
            self._legacy_logout(token)

    def close(self):
        """Log out and close the HTTP session."""
        self.logout()
        self.session.close()

    # -- requests ----------------------------------------------------------

    def _backoff(self, attempt):
        self._count('retries')
        delay = min(self.retry_interval * (2 ** (attempt - 1)),
                    self.max_retry_interval)
        if delay > 0:
            time.sleep(delay)

    def _may_retry(self, exc, idempotent, attempt):
        if attempt >= self.max_retries or exc.kwargs.get('login_failed'):
            return False
        if isinstance(exc, exception.InsufficientResources):
            return True
        if isinstance(exc, exception.GatewayUnreachable):
            if exc.kwargs.get('tls'):
                return False
            return idempotent or exc.kwargs.get('retry_safe', False)
        if type(exc) is exception.GatewayError:
            return idempotent and (exc.http_status or 0) >= 500
        return False

    def _error(self, resp, method, path, context, not_found=None):
        """Turn a non-200 answer into the matching SioError."""
        code = message = details = None
        ctype = resp.headers.get('Content-Type', '')
        if 'html' not in ctype.lower():
            try:
                body = resp.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                code, message, details = _error_fields(body)
        if message is None:
            message = '%s %s' % (resp.status_code, resp.reason or '')
        if details and message == 'Error with details':
            first = details[0]
            message = first.get('errorMessage') or first.get('error') or (
                message)
        ctx = dict(context)
        ctx.update(method=method, path=path, url=self.url,
                   user=self.username)
        return exception.from_gateway(resp.status_code, code, message,
                                      details, not_found=not_found, **ctx)

    def _request(self, method, path, body=None, idempotent=True,
                 context=None, not_found=None, expect=None):
        """Authenticated request; return the decoded JSON body.

        :param method: ``GET`` or ``POST``.
        :param path: path below the gateway URL, starting with ``/api``.
        :param body: JSON-able request body.
        :param idempotent: whether repeating the call is harmless.
        :param context: template values for errors (``volume``, ...).
        :param not_found: exception class for errorCode 3 "Not found".
        :param expect: JSON type(s) the answer must have (dict, list).
        :raises MalformedResponse: the answer is not of type ``expect``.
        """
        context = context or {}
        attempt = 0
        while True:
            try:
                result = self._request_once(method, path, body, context,
                                            not_found)
                if expect is not None and not isinstance(result, expect):
                    raise exception.MalformedResponse(
                        method=method, path=path,
                        reason='expected %s, got %s' % (
                            getattr(expect, '__name__', expect),
                            type(result).__name__))
                return result
            except exception.SioError as exc:
                if not self._may_retry(exc, idempotent, attempt):
                    raise
                LOG.debug('%s %s failed (%s), retrying', method, path,
                          exc.__class__.__name__)
            attempt += 1
            self._backoff(attempt)

    def _request_once(self, method, path, body, context, not_found):
        try:
            token = self._get_token()
        except exception.SioError as exc:
            exc.kwargs['login_failed'] = True  # retried there already
            raise
        resp = self._send(method, path, body, self._auth_headers(token))
        if resp.status_code in (401, 403):
            LOG.info('ScaleIO gateway answered %s to %s %s; logging in '
                     'again', resp.status_code, method, path)
            try:
                token = self._relogin(token)
            except exception.SioError as exc:
                exc.kwargs['login_failed'] = True
                raise
            resp = self._send(method, path, body, self._auth_headers(token))
            if resp.status_code == 401:
                raise exception.AuthenticationFailed(
                    url=self.url, user=self.username, http_status=401)
            if resp.status_code == 403:
                raise exception.Forbidden(method=method, path=path,
                                          user=self.username,
                                          http_status=403)
        if resp.status_code != 200:
            raise self._error(resp, method, path, context, not_found)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            raise exception.MalformedResponse(method=method, path=path,
                                              reason='body is not JSON')

    def _get_string(self, path, context, not_found):
        value = self._request('GET', path, context=context,
                              not_found=not_found)
        if not isinstance(value, (type(u''), str)) or not value:
            raise exception.MalformedResponse(method='GET', path=path,
                                              reason='expected an id')
        return value

    def _cached(self, key, func):
        try:
            return self._cache[key]
        except KeyError:
            value = func()
            self._cache[key] = value
            return value

    # -- system, domains, pools --------------------------------------------

    def get_system_id(self):
        """Return the id of the ScaleIO system (cached)."""
        def load():
            path = '/api/types/System/instances'
            systems = self._request('GET', path, expect=list)
            try:
                return _as_id(systems[0]['id'])
            except (TypeError, KeyError, IndexError, ValueError):
                raise exception.MalformedResponse(
                    method='GET', path=path, reason='no system')
        return self._cached(('system',), load)

    def get_protection_domain_id(self, pd_name):
        """Return the id of protection domain ``pd_name`` (cached).

        :raises ProtectionDomainNotFound: no such domain.
        """
        path = '/api/types/Domain/instances/getByName::%s' % quote(
            pd_name, '')
        return self._cached(('pd', pd_name), lambda: self._get_string(
            path, {'domain': pd_name}, exception.ProtectionDomainNotFound))

    def get_pool_id(self, pd_name, sp_name):
        """Return the id of pool ``sp_name`` in domain ``pd_name`` (cached).

        :raises ProtectionDomainNotFound: no such domain.
        :raises PoolNotFound: no such pool in the domain.
        """
        def load():
            pd_id = self.get_protection_domain_id(pd_name)
            path = '/api/types/Pool/instances/getByName::%s,%s' % (
                pd_id, quote(sp_name, ''))
            return self._get_string(path, {'domain': pd_name,
                                           'pool': sp_name},
                                    exception.PoolNotFound)
        return self._cached(('pool', pd_name, sp_name), load)

    def get_pool(self, pool_id):
        """Return the StoragePool object ``pool_id`` as a dict."""
        return self._request('GET', '/api/instances/StoragePool::%s'
                             % pool_id, context={'pool': pool_id},
                             not_found=exception.PoolNotFound, expect=dict)

    def pool_properties(self, pool_id):
        """Return what decides how volumes are made in a pool (cached).

        ``zero_padding`` is the pool's ``zeroPaddingEnabled``;
        ``fine_granularity`` is True for a ``FineGranularity`` data
        layout, which holds thin volumes only (Cinder's PowerFlex driver,
        ``_check_pool_support_thick_vols``). Neither can change while the
        pool holds volumes.

        :param pool_id: storage pool id.
        :raises MalformedResponse: the pool has no ``zeroPaddingEnabled``.
        """
        def load():
            pool = self.get_pool(pool_id)
            padded = pool.get('zeroPaddingEnabled')
            if not isinstance(padded, bool):
                raise exception.MalformedResponse(
                    method='GET',
                    path='/api/instances/StoragePool::%s' % pool_id,
                    reason='no zeroPaddingEnabled')
            return {'zero_padding': padded,
                    'fine_granularity':
                        pool.get('dataLayout') == 'FineGranularity'}
        return dict(self._cached(('pool-properties', pool_id), load))

    def pool_capacity(self, pool_id):
        """Return the capacity of a pool in bytes.

        ``total_bytes`` is the net (usable) capacity, ``free_bytes`` what
        can still be allocated to thick volumes (a multiple of 8 GiB),
        ``used_bytes`` the difference and ``provisioned_bytes`` the size
        of the thick and thin volumes and of the snapshots. The gateway
        counts these allocations for both mirror copies, so their sum is
        halved, as Cinder's PowerFlex driver does (``driver.py``,
        ``_compute_pool_stats``); from 3.5 on the snapshot figure is
        ``snapshotCapacityInKb``, before ``snapCapacityInUseInKb``.

        :param pool_id: storage pool id.
        """
        version = self._api_version_tuple()
        legacy = version < (3, 0)
        snap = ('snapshotCapacityInKb' if version >= (3, 5)
                else 'snapCapacityInUseInKb')
        if legacy:
            props = ['capacityLimitInKb', 'spareCapacityInKb',
                     'capacityAvailableForVolumeAllocationInKb',
                     'thickCapacityInUseInKb', 'thinCapacityAllocatedInKb',
                     snap]
        else:
            props = ['netCapacityInUseInKb', 'netUnusedCapacityInKb',
                     'capacityAvailableForVolumeAllocationInKb',
                     'thickCapacityInUseInKb', 'thinCapacityAllocatedInKb',
                     snap]
        path = '/api/types/StoragePool/instances/action/' \
            'querySelectedStatistics'
        result = self._request('POST', path,
                               {'ids': [pool_id], 'properties': props},
                               context={'pool': pool_id},
                               not_found=exception.PoolNotFound,
                               expect=dict)
        try:
            stats = result[pool_id]
            values = dict((p, int(stats.get(p) or 0)) for p in props)
        except (TypeError, KeyError, ValueError, AttributeError):
            raise exception.MalformedResponse(method='POST', path=path,
                                              reason='no statistics')
        gran = SIZE_GRANULARITY_GB * GiB_IN_KiB
        if legacy:
            total = (values['capacityLimitInKb'] -
                     values['spareCapacityInKb']) // 2
            total -= total % gran
        else:
            total = (values['netCapacityInUseInKb'] +
                     values['netUnusedCapacityInKb'])
        free = min(values['capacityAvailableForVolumeAllocationInKb'], total)
        provisioned = (values['thickCapacityInUseInKb'] +
                       values['thinCapacityAllocatedInKb'] +
                       values[snap]) // 2
        return {'total_bytes': total * 1024,
                'free_bytes': free * 1024,
                'used_bytes': max(total - free, 0) * 1024,
                'provisioned_bytes': provisioned * 1024}

    def _api_version_tuple(self):
        version = self.get_api_version()
        return tuple(int(x) for x in version.split('.')[:2])

    # -- volumes -----------------------------------------------------------

    def create_volume(self, name, size_gb, pool_id, thin=False,
                      protection_domain_id=None):
        """Create a volume and return its id.

        :param name: volume name (<= 31 characters, see ``naming``).
        :param size_gb: size in GiB, a positive multiple of 8.
        :param pool_id: storage pool id.
        :param thin: thin instead of thick provisioning.
        :param protection_domain_id: optional domain id of the pool.
        :raises NameInUse: a volume or snapshot already has this name.
        :raises CapacityExceeded: the pool cannot hold the volume.
        :raises UnsafePool: the pool's zero padding is off and
            ``allow_non_padded_volumes`` is not set (like Cinder's
            ``powerflex_allow_non_padded_volumes``): a new volume could
            show data of an earlier one, of another tenant.
        """
        size = _check_size_gb(size_gb, name)
        props = self.pool_properties(pool_id)
        if not props['zero_padding'] and not self.allow_non_padded_volumes:
            raise exception.UnsafePool(pool=pool_id, volume=name)
        if props['fine_granularity'] and not thin:
            LOG.warning('ScaleIO storage pool %s has the Fine Granularity '
                        'layout, which holds no thick volumes: creating '
                        '%s thin', pool_id, name)
            thin = True
        body = {'name': name,
                'volumeSizeInKb': str(size * GiB_IN_KiB),
                'storagePoolId': pool_id,
                'volumeType': ('ThinProvisioned' if thin
                               else 'ThickProvisioned')}
        if protection_domain_id:
            body['protectionDomainId'] = protection_domain_id
        result = self._request('POST', '/api/types/Volume/instances', body,
                               idempotent=False,
                               context={'volume': name, 'name': name,
                                        'pool': pool_id},
                               not_found=exception.PoolNotFound,
                               expect=dict)
        try:
            volume_id = _as_id(result['id'])
        except (TypeError, KeyError, ValueError):
            raise exception.MalformedResponse(
                method='POST', path='/api/types/Volume/instances',
                reason='no volume id')
        LOG.info('Created ScaleIO volume %s (%s, %d GiB, %s)', name,
                 volume_id, size, body['volumeType'])
        return volume_id

    def get_volume(self, volume_id):
        """Return the Volume object ``volume_id`` as a dict.

        :raises VolumeNotFound: no such volume.
        """
        return self._request('GET', '/api/instances/Volume::%s' % volume_id,
                             context={'volume': volume_id},
                             not_found=exception.VolumeNotFound,
                             expect=dict)

    def get_volume_id(self, name):
        """Return the id of the volume called ``name``, or None.

        "No such name" is recognised by the answer's status and code, not
        its text: ``errorCode`` 3 (the lookup's "Not found") or a volume
        not-found code (78, 79), or HTTP 404.
        """
        # Quoted twice like cinder and os-brick: base64 names hold '/'.
        path = '/api/types/Volume/instances/getByName::%s' % quote(
            quote(name, ''), '')
        try:
            return self._get_string(path, {'volume': name, 'name': name},
                                    exception.VolumeNotFound)
        except exception.NotFound:
            return None
        except exception.SioError as exc:
            if (exc.http_status == 404 or
                    exc.error_code in exception.LOOKUP_NOT_FOUND):
                return None
            raise

    def rename_volume(self, volume_id, new_name):
        """Rename volume ``volume_id`` to ``new_name``.

        :raises NameInUse: another volume has that name.
        """
        try:
            self._volume_action(volume_id, 'setVolumeName',
                                {'newName': new_name}, name=new_name)
        except exception.NameInUse:
            # A replay after a lost answer finds the name already set.
            if self.get_volume(volume_id).get('name') != new_name:
                raise

    def extend_volume(self, volume_id, new_size_gb):
        """Grow volume ``volume_id`` to ``new_size_gb`` GiB in total.

        :raises InvalidSize: not a multiple of 8, or smaller than now.
        """
        size = _check_size_gb(new_size_gb, volume_id)
        try:
            self._volume_action(volume_id, 'setVolumeSize',
                                {'sizeInGB': str(size)})
        except exception.InvalidSize:
            try:
                current = int(self.get_volume(volume_id).get('sizeInKb'))
            except (TypeError, ValueError):
                current = None
            if current != size * GiB_IN_KiB:
                raise

    def delete_volume(self, volume_id, remove_mode='ONLY_ME', unmap=False):
        """Remove a volume; return False when it did not exist.

        :param volume_id: volume id.
        :param remove_mode: one of ``REMOVE_MODES``.
        :param unmap: unmap it from every SDC first when it is mapped.
        :raises VolumeMapped: still mapped and ``unmap`` is False.
        """
        if remove_mode not in REMOVE_MODES:
            raise ValueError('remove_mode must be one of %s'
                             % (REMOVE_MODES,))
        body = {'removeMode': remove_mode}
        try:
            try:
                # One attempt, not retried: whatever a refusal says, the
                # volume's mappedSdcInfo decides what comes next.
                self._volume_action(volume_id, 'removeVolume', body,
                                    idempotent=False)
            except (exception.VolumeNotFound, exception.AuthenticationFailed,
                    exception.Forbidden):
                raise
            except exception.SioError as exc:
                self._remove_after_refusal(volume_id, body, unmap, exc)
        except exception.VolumeNotFound:
            return False
        LOG.info('Removed ScaleIO volume %s (%s)', volume_id, remove_mode)
        return True

    def _remove_after_refusal(self, volume_id, body, unmap, exc):
        """Unmap and remove again after a failed ``removeVolume``.

        4.x renumbered the "volume is mapped" answer (and os-brick knows
        only the mapping codes' new numbers), so the refusal is not
        trusted: like Cinder's PowerFlex ``rest_client.remove_volume``,
        the volume's ``mappedSdcInfo`` tells whether it is mapped. An
        unmapped volume is removed again only when ``exc`` is transient
        (retried as usual); otherwise ``exc`` is raised.

        :param volume_id: volume id.
        :param body: the ``removeVolume`` body.
        :param unmap: unmap it from every SDC when it is mapped.
        :param exc: the error of the first ``removeVolume``.
        :raises VolumeMapped: mapped, and ``unmap`` is False.
        """
        sdc_ids = self.get_mapped_sdc_ids(volume_id)
        if sdc_ids:
            if not unmap:
                raise exception.VolumeMapped(volume=volume_id)
            for sdc_id in sdc_ids:
                self.unmap_volume(volume_id, sdc_id=sdc_id)
        elif not self._may_retry(exc, True, 0):
            raise exc
        self._volume_action(volume_id, 'removeVolume', body)

    def _volume_action(self, volume_id, action, body, idempotent=True,
                       **context):
        context.setdefault('volume', volume_id)
        path = '/api/instances/Volume::%s/action/%s' % (volume_id, action)
        return self._request('POST', path, body, idempotent=idempotent,
                             context=context,
                             not_found=exception.VolumeNotFound)

    @staticmethod
    def _sdc_body(sdc_id, guid):
        if (sdc_id is None) == (guid is None):
            raise ValueError('give exactly one of sdc_id and guid')
        if sdc_id is not None:
            return {'sdcId': sdc_id}, sdc_id
        return {'guid': guid.upper()}, guid.upper()

    def map_volume(self, volume_id, sdc_id=None, guid=None,
                   allow_multiple=True):
        """Map a volume to an SDC; return False if it already was.

        :param volume_id: volume id.
        :param sdc_id: SDC id (or give ``guid``).
        :param guid: SDC GUID in any letter case (or give ``sdc_id``).
        :param allow_multiple: keep mappings to other SDCs (live
            migration, resize).
        :raises SdcNotFound: no such SDC.
        """
        body, sdc = self._sdc_body(sdc_id, guid)
        if allow_multiple:
            body['allowMultipleMappings'] = 'TRUE'
        try:
            self._volume_action(volume_id, 'addMappedSdc', body, sdc=sdc)
        except exception.AlreadyMapped:
            return False
        return True

    def unmap_volume(self, volume_id, sdc_id=None, guid=None,
                     all_sdcs=False):
        """Unmap a volume from an SDC; return False if it was not mapped.

        :param volume_id: volume id.
        :param sdc_id: SDC id (or give ``guid``).
        :param guid: SDC GUID in any letter case.
        :param all_sdcs: unmap from every SDC instead.
        """
        if all_sdcs:
            body, sdc = {'allSdcs': ''}, 'all'
        else:
            body, sdc = self._sdc_body(sdc_id, guid)
        try:
            self._volume_action(volume_id, 'removeMappedSdc', body, sdc=sdc)
        except exception.NotMapped:
            return False
        return True

    def get_mapped_sdc_ids(self, volume_id):
        """Return the ids of the SDCs ``volume_id`` is mapped to."""
        info = self.get_volume(volume_id).get('mappedSdcInfo') or []
        if not isinstance(info, list):
            raise exception.MalformedResponse(
                method='GET', path='/api/instances/Volume::%s' % volume_id,
                reason='mappedSdcInfo is not a list')
        return [m.get('sdcId') for m in info if isinstance(m, dict)]

    def is_mapped(self, volume_id, sdc_id=None):
        """Whether ``volume_id`` is mapped to ``sdc_id`` (or to any SDC)."""
        ids = self.get_mapped_sdc_ids(volume_id)
        if sdc_id is None:
            return bool(ids)
        return sdc_id in ids

    def snapshot_volume(self, volume_id, snapshot_name):
        """Snapshot a volume; return the snapshot's volume id.

        :raises VTreeLimitReached: the vTree is full.
        :raises NameInUse: ``snapshot_name`` is taken.
        """
        path = '/api/instances/System/action/snapshotVolumes'
        body = {'snapshotDefs': [{'volumeId': volume_id,
                                  'snapshotName': snapshot_name}]}
        result = self._request('POST', path, body, idempotent=False,
                               context={'volume': volume_id,
                                        'name': snapshot_name},
                               not_found=exception.VolumeNotFound,
                               expect=dict)
        try:
            ids = result['volumeIdList']
            if not isinstance(ids, list):
                raise TypeError(ids)
            return _as_id(ids[0])
        except (TypeError, KeyError, IndexError, ValueError):
            raise exception.MalformedResponse(method='POST', path=path,
                                              reason='no volumeIdList')

    # -- SDCs --------------------------------------------------------------

    def get_sdc_id(self, guid, hint=None):
        """Return the id of the SDC with ``guid`` (any letter case).

        The gateway has no verified lookup by GUID, so without a hint the
        SDC list is read once and the answer cached for the life of the
        client. With ``hint``, a likely SDC id (e.g. from
        ``host.query_sdc_ids()``, i.e. ``drv_cfg --query_mdms``), one
        ``GET Sdc::<hint>`` confirms the GUID instead.

        :param guid: SDC GUID.
        :param hint: candidate SDC id, checked before it is trusted.
        :raises SdcNotFound: no SDC has that GUID.
        """
        wanted = guid.strip().lower()

        def load():
            if hint:
                try:
                    sdc = self.get_sdc(hint)
                except exception.SdcNotFound:
                    sdc = {}
                if str(sdc.get('sdcGuid') or '').lower() == wanted:
                    return hint
                LOG.warning('SDC %s does not have GUID %s; searching the '
                            'SDC list', hint, guid)
            path = '/api/types/Sdc/instances'
            for sdc in self._request('GET', path, expect=list):
                if not isinstance(sdc, dict):
                    raise exception.MalformedResponse(
                        method='GET', path=path, reason='SDC not an object')
                if str(sdc.get('sdcGuid') or '').lower() == wanted:
                    try:
                        return _as_id(sdc['id'])
                    except (KeyError, ValueError):
                        raise exception.MalformedResponse(
                            method='GET', path=path, reason='SDC has no id')
            raise exception.SdcNotFound(sdc=guid)
        return self._cached(('sdc', wanted), load)

    def get_sdc(self, sdc_id):
        """Return the Sdc object ``sdc_id`` as a dict."""
        return self._request('GET', '/api/instances/Sdc::%s' % sdc_id,
                             context={'sdc': sdc_id},
                             not_found=exception.SdcNotFound, expect=dict)

    def get_sdc_volumes(self, sdc_id):
        """Return the Volume objects mapped to SDC ``sdc_id`` (dicts).

        :raises SdcNotFound: no such SDC.
        """
        path = '/api/instances/Sdc::%s/relationships/Volume' % sdc_id
        volumes = self._request('GET', path, context={'sdc': sdc_id},
                                not_found=exception.SdcNotFound, expect=list)
        if not all(isinstance(v, dict) and v.get('id') for v in volumes):
            raise exception.MalformedResponse(method='GET', path=path,
                                              reason='volume without id')
        return volumes
