# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""Checks of nova.conf, the ScaleIO gateway, its storage and this host.

The real Nova configuration is read with oslo.config; the ``[scaleio]``
options come from the runtime package, so the doctor judges exactly what
nova-compute will see.

``pool layout`` reports, for the configured pool and ``[scaleio]
additional_pools``, whether zero padding is on (volumes in a pool without
it are refused unless ``allow_non_padded_volumes``, as Cinder's PowerFlex
driver does) and whether a Fine Granularity pool meets thick
provisioning (such volumes are created thin).
"""

import os
import socket
import warnings

from oslo_config import cfg
import requests

from nova_sio.operator.doctor import base
from nova_sio import runtime

DEFAULT_CONFIG = '/etc/nova/nova.conf'
GiB = 1024 ** 3

_HINTS = {
    'rest_server_ip': 'set [scaleio] rest_server_ip to the address of the '
                      'ScaleIO / PowerFlex REST gateway',
    'rest_server_username': 'set [scaleio] rest_server_username to a '
                            'gateway user allowed to create and map '
                            'volumes',
    'rest_server_password': 'set [scaleio] rest_server_password to the '
                            'password of that user',
    'protection_domain_name': 'set [scaleio] protection_domain_name (see '
                              '"scli --query_all" on the MDM)',
    'storage_pool_name': 'set [scaleio] storage_pool_name to a pool of '
                         'that protection domain',
}
_LAYOUT_HINT = ('enable zero padding on the pool (possible only while it '
                'has no devices) or, accepting that tenants may read old '
                'data, set [scaleio] allow_non_padded_volumes = True; for '
                'Fine Granularity pools use thin provisioning ([scaleio] '
                'provisioning_type or the flavor\'s sio:provisioning_type)')


def value(conf, group, name):
    """Return an option value, or raise ``ValueError`` if invalid.

    :param conf: the parsed configuration.
    :param group: the option's group.
    :param name: the option's name.
    """
    try:
        return conf[group][name]
    except (cfg.ConfigFileValueError, ValueError) as exc:
        raise ValueError(str(exc))


# -- nova.conf ----------------------------------------------------------

def config(ctx):
    """Read nova.conf (``--config-file``, ``--config-dir``)."""
    files = ctx.args.config_file or [DEFAULT_CONFIG]
    argv = []
    for path in files:
        argv += ['--config-file', path]
    for path in ctx.args.config_dir or ():
        argv += ['--config-dir', path]
    conf = cfg.ConfigOpts()
    conf.register_opt(cfg.StrOpt('images_type', default='default'),
                      group='libvirt')
    runtime.load('conf').register_opts(conf)
    try:
        conf(argv, project='nova', default_config_files=[])
    except cfg.ConfigFilesNotFoundError as exc:
        return base.failure('cannot read %s' % ', '.join(exc.config_files),
                            'give the Nova configuration with '
                            '--config-file')
    except (cfg.ConfigFileParseError, cfg.Error) as exc:
        return base.failure(str(exc), 'fix the syntax of the configuration '
                            'file')
    ctx.conf = conf
    return base.success('read %s' % ', '.join(
        list(files) + list(ctx.args.config_dir or ())))


def images_type(ctx):
    """Is ``[libvirt] images_type`` sio?"""
    try:
        found = value(ctx.conf, 'libvirt', 'images_type')
    except ValueError as exc:
        found = 'invalid (%s)' % exc
    if found == 'sio':
        return base.success('[libvirt] images_type = sio')
    return base.failure('[libvirt] images_type is %s, not sio' % found,
                        'set [libvirt] images_type = sio (after "nova-sio '
                        'install"), then restart nova-compute')


def required_option(name):
    """Return the check that ``[scaleio] <name>`` is set.

    :param name: a mandatory option of the runtime's ``[scaleio]``.
    """
    def check(ctx):
        try:
            found = value(ctx.conf, 'scaleio', name)
        except ValueError as exc:
            return base.failure(str(exc), _HINTS.get(name))
        if not found:
            return base.failure('[scaleio] %s is not set' % name,
                                _HINTS.get(name))
        shown = '***' if 'password' in name else found
        return base.success('[scaleio] %s = %s' % (name, shown))
    return check


def option_values(ctx):
    """Do the other ``[scaleio]`` options pass the runtime's validation?"""
    exception = runtime.load('exception')
    try:
        runtime.load('conf').validate(ctx.conf)
    except (exception.InvalidConfig, cfg.ConfigFileValueError,
            ValueError) as exc:
        return base.failure(str(exc), 'correct that option in the '
                            '[scaleio] section')
    return base.success('the other [scaleio] options are valid')


# -- the gateway --------------------------------------------------------

def gateway(ctx):
    """Does the gateway accept a TCP connection?"""
    group = ctx.conf.scaleio
    host, port = group.rest_server_ip, group.rest_server_port
    ctx.progress('connecting to the gateway %s:%s' % (host, port))
    try:
        sock = socket.create_connection((host, port),
                                        timeout=group.connect_timeout)
        sock.close()
    except (OSError, socket.error) as exc:
        return base.failure('cannot connect to %s port %s: %s'
                            % (host, port, exc),
                            'check [scaleio] rest_server_ip and '
                            'rest_server_port and that no firewall blocks '
                            'this host')
    return base.success('TCP connection to %s port %s' % (host, port))


def tls(ctx):
    """Does the gateway answer HTTP(S), with a verified certificate?"""
    group = ctx.conf.scaleio
    url = '%s://%s:%s/api/version' % (group.rest_server_scheme,
                                      group.rest_server_ip,
                                      group.rest_server_port)
    timeout = (group.connect_timeout, group.read_timeout)
    verify = False
    if group.verify_server_certificate:
        verify = group.server_certificate_path or True
    session = requests.Session()
    session.trust_env = False
    try:
        if group.rest_server_scheme == 'http':
            session.get(url, timeout=timeout)
            return base.warning('plain http: the gateway password crosses '
                                'the network unencrypted',
                                'use rest_server_scheme = https outside '
                                'test setups')
        if verify is False:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                session.get(url, verify=False, timeout=timeout)
            return base.warning('https, but certificate verification is '
                                'off', 'set verify_server_certificate = '
                                'True and server_certificate_path to the '
                                'gateway\'s CA')
        session.get(url, verify=verify, timeout=timeout)
    except requests.exceptions.SSLError as exc:
        return base.failure('TLS handshake failed: %s' % base.shorten(exc),
                            'set [scaleio] server_certificate_path to the '
                            'CA bundle that signed the gateway certificate '
                            '(or check that the gateway speaks https on '
                            'this port)')
    except requests.RequestException as exc:
        return base.failure('no HTTP answer: %s' % base.shorten(exc),
                            'check rest_server_scheme: the gateway may '
                            'need https')
    finally:
        session.close()
    return base.success('certificate verified with %s' % (
        verify if verify is not True else 'the system CA store'))


def credentials(ctx):
    """Does the gateway accept the configured user?"""
    exception = runtime.load('exception')
    group = ctx.conf.scaleio
    try:
        ctx.client = runtime.load('client').Client.from_conf(
            ctx.conf, max_retries=0)
        version = ctx.client.get_api_version()
    except (exception.AuthenticationFailed, exception.Forbidden):
        ctx.close()
        return base.failure('the gateway refused user %s'
                            % group.rest_server_username,
                            'check [scaleio] rest_server_username and '
                            'rest_server_password')
    except exception.SioError as exc:
        ctx.close()
        return base.failure('login failed: %s' % exc,
                            'check the gateway settings above')
    return base.success('logged in as %s (API %s)'
                        % (group.rest_server_username, version))


def protection_domain(ctx):
    """Does ``[scaleio] protection_domain_name`` exist?"""
    exception = runtime.load('exception')
    pd = ctx.conf.scaleio.protection_domain_name
    try:
        pd_id = ctx.client.get_protection_domain_id(pd)
    except exception.ProtectionDomainNotFound:
        return base.failure('no protection domain %r on the gateway' % pd,
                            'correct [scaleio] protection_domain_name '
                            '(names are case-sensitive)')
    except exception.SioError as exc:
        return base.failure(str(exc), 'check the gateway and its MDM')
    return base.success('%s (id %s)' % (pd, pd_id))


def storage_pool(ctx):
    """Does ``[scaleio] storage_pool_name`` exist; how full is it?"""
    exception = runtime.load('exception')
    group = ctx.conf.scaleio
    pd, sp = group.protection_domain_name, group.storage_pool_name
    try:
        pool_id = ctx.client.get_pool_id(pd, sp)
    except exception.PoolNotFound:
        return base.failure('no storage pool %r in protection domain %r'
                            % (sp, pd),
                            'correct [scaleio] storage_pool_name')
    except exception.SioError as exc:
        return base.failure(str(exc), 'check the gateway and its MDM')
    details = '%s (id %s)' % (sp, pool_id)
    try:
        cap = ctx.client.pool_capacity(pool_id)
        details += ', %d of %d GiB free' % (
            cap['free_bytes'] // GiB, cap['total_bytes'] // GiB)
    except (exception.SioError, KeyError, TypeError):
        pass
    return base.success(details)


def pool_layout(ctx):
    """Zero padding and granularity of the configured pools."""
    group = ctx.conf.scaleio
    pools = [(group.protection_domain_name, group.storage_pool_name, None)]
    for entry in group.additional_pools or ():
        domain, _sep, pool = entry.partition(':')
        pools.append((domain.strip(), pool.strip(), None))
    return layout_result(ctx, pools)


def layout_result(ctx, pools):
    """Report zero padding and Fine Granularity of ``pools``.

    :param ctx: the doctor's context (a logged-in ``client``).
    :param pools: ``(domain, pool, thin or None)`` tuples; None stands
        for ``[scaleio] provisioning_type``.
    """
    code, texts, seen = base.Code.SUCCESS, [], set()
    for entry in pools:
        if entry in seen:
            continue
        seen.add(entry)
        entry_code, text = _layout_findings(ctx, *entry)
        texts.append(text)
        code = max(code, entry_code)
    hint = _LAYOUT_HINT if code != base.Code.SUCCESS else None
    return base.Result(code, '; '.join(texts), hint)


def _layout_findings(ctx, pd, sp, thin):
    """Return ``(code, text)`` about one pool's layout.

    :param ctx: the doctor's context.
    :param pd: protection domain name.
    :param sp: storage pool name.
    :param thin: the provisioning that meets the pool; None for
        ``[scaleio] provisioning_type``.
    """
    exception = runtime.load('exception')
    group = ctx.conf.scaleio
    if thin is None:
        thin = group.provisioning_type == 'thin'
    name = '%s:%s' % (pd, sp)
    try:
        props = ctx.client.pool_properties(ctx.client.get_pool_id(pd, sp))
    except exception.SioError as exc:
        return base.Code.FAILURE, '%s: %s' % (name, base.shorten(exc))
    code, notes = base.Code.SUCCESS, []
    if props['zero_padding']:
        notes.append('zero padding on')
    elif group.allow_non_padded_volumes:
        code = base.Code.WARNING
        notes.append('zero padding off (allowed by [scaleio] '
                     'allow_non_padded_volumes: new volumes may show old '
                     'data)')
    else:
        code = base.Code.FAILURE
        notes.append('zero padding off: volumes are refused')
    if not props['fine_granularity']:
        notes.append('Medium Granularity')
    elif thin:
        notes.append('Fine Granularity')
    else:
        code = max(code, base.Code.WARNING)
        notes.append('Fine Granularity: thick volumes are created thin')
    return code, '%s %s' % (name, ', '.join(notes))


# -- this host ----------------------------------------------------------

def drv_cfg(ctx):
    """Is the SDC's drv_cfg installed?"""
    host = runtime.load('host')
    override = ctx.conf.scaleio.drv_cfg_path
    if override:
        ok = os.path.isfile(override) and os.access(override, os.X_OK)
        found = [override] if ok else []
    else:
        found = host.find_drv_cfg()
    if not found:
        return base.failure('no executable drv_cfg at %s' % (
            override or ', '.join(host.DRV_CFG_PATHS)),
            'install the ScaleIO / PowerFlex SDC package on this host, or '
            'set [scaleio] drv_cfg_path')
    ctx.drv_cfg = found[0]
    return base.success(found[0])


def sdc_guid(ctx):
    """Which SDC GUID will the backend use; is it this host's?"""
    host = runtime.load('host')
    exception = runtime.load('exception')
    group = ctx.conf.scaleio
    try:
        guid = host.get_sdc_guid(group.default_sdcguid, group.drv_cfg_path)
    except exception.SioError as exc:
        return base.failure('no SDC GUID: %s' % exc,
                            'set [scaleio] default_sdcguid, or make '
                            '"drv_cfg --query_guid" work')
    origin = 'default_sdcguid' if group.default_sdcguid else \
        'drv_cfg --query_guid'
    ctx.sdc_guid = (guid, origin)
    if group.default_sdcguid and ctx.drv_cfg:
        try:
            local = host.get_sdc_guid(None, group.drv_cfg_path)
        except exception.SioError:
            local = None
        if local and local.upper() != guid.upper():
            return base.warning('default_sdcguid %s differs from this '
                                'host\'s SDC %s' % (guid, local),
                                'remove default_sdcguid or set it to %s'
                                % local)
    return base.success('%s (from %s)' % (guid, origin))


def sdc_registered(ctx):
    """Does the gateway know the SDC of that GUID?"""
    exception = runtime.load('exception')
    guid, origin = ctx.sdc_guid
    try:
        sdc_id = ctx.client.get_sdc_id(guid)
    except exception.SdcNotFound:
        return base.failure('the gateway knows no SDC with GUID %s (from '
                            '%s)' % (guid, origin),
                            'check that the SDC of this host is connected '
                            'to the MDM ("drv_cfg --query_mdms") and that '
                            'default_sdcguid, if set, is this host\'s GUID')
    except exception.SioError as exc:
        return base.failure(str(exc), 'check the gateway and its MDM')
    return base.success('GUID %s (from %s) is SDC %s'
                        % (guid, origin, sdc_id))


def device_directory(ctx):
    """Does ``[scaleio] device_root`` exist?"""
    root = ctx.conf.scaleio.device_root
    if os.path.isdir(root):
        return base.success(root)
    return base.failure('%s does not exist' % root,
                        'the SDC driver (scini) creates the by-id links; '
                        'load it, or set [scaleio] device_root')
