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

"""Checks of the flavors against the 8 GiB rule and their pools.

The flavors are read from the compute API with the credentials nova.conf
already holds for Nova's own calls (the first of ``[placement]``,
``[keystone_authtoken]`` and ``[service_user]`` that sets ``auth_type``,
or ``--auth-section``), loaded by keystoneauth1 exactly as Nova loads
them. ``--os-cloud``, ``OS_CLOUD``, the ``--os-*`` options or the
``OS_*`` variables choose a cloud of ``clouds.yaml`` (with
``secure.yaml``) or explicit credentials instead, read by openstacksdk as
the ``openstack`` client reads them. openstacksdk lists the flavors: it
follows the pagination and negotiates the microversion (2.61 returns the
extra specs with the list).
"""

import os

from oslo_config import cfg

from nova_sio.operator.doctor import base
from nova_sio.operator.doctor import scaleio

GRANULARITY_GB = 8
#: nova.conf sections whose credentials are tried, in this order.
AUTH_SECTIONS = ('placement', 'keystone_authtoken', 'service_user')
#: The compute endpoints tried with nova.conf credentials (a compute
#: host usually reaches the internal one).
NOVA_CONF_INTERFACES = ('internal', 'public')
SPEC_DOMAIN = 'sio:pd_name'
SPEC_POOL = 'sio:sp_name'
SPEC_PROVISIONING = 'sio:provisioning_type'
#: ``--os-*`` options passed to openstacksdk (as ``auth_url``, ...).
OS_OPTIONS = ('auth_url', 'username', 'password', 'project_name',
              'user_domain_name', 'project_domain_name', 'region_name',
              'interface', 'cacert')
_DOMAIN_VARS = ('OS_USER_DOMAIN_NAME', 'OS_USER_DOMAIN_ID',
                'OS_PROJECT_DOMAIN_NAME', 'OS_PROJECT_DOMAIN_ID',
                'OS_DOMAIN_NAME', 'OS_DOMAIN_ID')


def add_arguments(parser):
    """Add the options choosing the flavor check's credentials.

    :param parser: an ``argparse`` parser.
    """
    parser.add_argument('--auth-section', metavar='SECTION',
                        help='the nova.conf section whose credentials read '
                        'the flavors (default: the first of %s that sets '
                        'auth_type)' % ', '.join(AUTH_SECTIONS))
    parser.add_argument('--os-cloud', default=os.environ.get('OS_CLOUD'),
                        help='a cloud of clouds.yaml (and secure.yaml) '
                        'for the flavor check instead of nova.conf')
    for name in OS_OPTIONS:
        parser.add_argument('--os-' + name.replace('_', '-'),
                            help='as for the openstack client (OS_%s)'
                            % name.upper())


#: ``--os-*`` options that also apply to nova.conf credentials.
ENDPOINT_OPTIONS = ('region_name', 'interface')


def _cloud_wanted(args):
    """Did the command line or the environment name a cloud?"""
    return bool(args.os_cloud or os.environ.get('OS_AUTH_URL') or any(
        getattr(args, 'os_' + name) for name in OS_OPTIONS
        if name not in ENDPOINT_OPTIONS))


def cloud_session(args):
    """Open a connection as the ``openstack`` client would.

    :param args: the command line (``--os-cloud``, ``--os-*``).
    :returns: ``(connection, description)``.
    """
    from openstack import config as os_config
    from openstack import connection
    overrides = dict((name, getattr(args, 'os_' + name))
                     for name in OS_OPTIONS if getattr(args, 'os_' + name))
    if not args.os_cloud and not any(os.environ.get(v)
                                     for v in _DOMAIN_VARS):
        # Keystone v3 needs domains; the default one, as before.
        overrides.setdefault('user_domain_name', 'Default')
        overrides.setdefault('project_domain_name', 'Default')
    region = os_config.OpenStackConfig().get_one(cloud=args.os_cloud,
                                                 **overrides)
    what = 'cloud %s' % args.os_cloud if args.os_cloud else \
        'the --os-* credentials'
    return connection.Connection(config=region), what


def nova_conf_section(conf, wanted=None):
    """Return the nova.conf section holding credentials, or None.

    :param conf: the parsed nova.conf.
    :param wanted: a section to use; otherwise the first of
        :data:`AUTH_SECTIONS` that sets ``auth_type``.
    """
    from keystoneauth1 import loading
    for section in [wanted] if wanted else AUTH_SECTIONS:
        loading.register_auth_conf_options(conf, section)
        if wanted or conf[section].auth_type:
            return section
    return None


def nova_conf_session(conf, section, interface=None, region_name=None):
    """Open a connection with the credentials of a nova.conf section.

    :param conf: the parsed nova.conf.
    :param section: a section that :func:`nova_conf_section` returned.
    :param interface: the compute endpoint's interface (default:
        :data:`NOVA_CONF_INTERFACES`).
    :param region_name: the compute endpoint's region (default: the
        section's ``region_name``).
    :returns: ``(connection, description)``.
    """
    from keystoneauth1 import loading
    from openstack import connection
    loading.register_session_conf_options(conf, section)
    try:
        conf.register_opt(cfg.StrOpt('region_name'), group=section)
    except cfg.DuplicateOptError:
        pass  # registered by the caller with other attributes
    auth = loading.load_auth_from_conf_options(conf, section)
    session = loading.load_session_from_conf_options(conf, section,
                                                     auth=auth)
    conn = connection.Connection(
        session=session,
        region_name=region_name or conf[section].region_name,
        interface=interface or list(NOVA_CONF_INTERFACES))
    return conn, 'nova.conf [%s]' % section


def list_flavors(conn):
    """Return every flavor the connection sees, as compute API dicts.

    :param conn: an ``openstack.connection.Connection``.
    :returns: dicts with ``name``, ``disk``, ``swap``,
        ``OS-FLV-EXT-DATA:ephemeral`` and ``extra_specs`` (empty before
        microversion 2.61).
    """
    # openstacksdk asks for is_public=None: private flavors too (for an
    # admin).
    return [{'name': f.name, 'disk': f.disk, 'swap': f.swap,
             'OS-FLV-EXT-DATA:ephemeral': f.ephemeral,
             'extra_specs': dict(f.extra_specs or {})}
            for f in conn.compute.flavors(details=True)]


def flavor_problems(flavor):
    """Return why a flavor's disks break the 8 GiB rule (may be empty).

    :param flavor: a flavor dict of the compute API.
    """
    problems = []
    disk = int(flavor.get('disk') or 0)
    eph = int(flavor.get('OS-FLV-EXT-DATA:ephemeral') or 0)
    swap = int(flavor.get('swap') or 0)
    if disk % GRANULARITY_GB:
        problems.append('root disk %d GiB' % disk)
    if eph % GRANULARITY_GB:
        problems.append('ephemeral %d GiB' % eph)
    if swap % (GRANULARITY_GB * 1024):
        problems.append('swap %d MiB' % swap)
    return problems


def _open(ctx):
    """Return ``(connection, description)``, or None without credentials.

    :param ctx: the doctor's context.
    """
    args = ctx.args
    if _cloud_wanted(args):
        return cloud_session(args)
    section = nova_conf_section(ctx.conf, getattr(args, 'auth_section',
                                                  None))
    if section is None:
        return None
    return nova_conf_session(ctx.conf, section, args.os_interface,
                             args.os_region_name)


def flavors(ctx):
    """Do the flavors' disks fit the 8 GiB rule?"""
    from keystoneauth1 import exceptions as ks_exc
    from openstack import exceptions as sdk_exc
    conn = None
    try:
        opened = _open(ctx)
        if opened is None:
            return base.skipped(
                'no Nova API credentials: nova.conf sets no auth_type in '
                '%s; give --os-cloud or --os-auth-url, --os-username, '
                '--os-password' % ', '.join('[%s]' % s
                                            for s in AUTH_SECTIONS))
        conn, source = opened
        ctx.progress('reading flavors from the compute API (%s)' % source)
        found = list_flavors(conn)
    except (ks_exc.ClientException, sdk_exc.SDKException,
            cfg.Error, ValueError) as exc:
        return base.failure('cannot list flavors: %s' % base.shorten(exc),
                            'check the credentials (--os-cloud, --os-*, '
                            'or nova.conf [%s])' % (
                                getattr(ctx.args, 'auth_section', None) or
                                AUTH_SECTIONS[0]))
    finally:
        if conn is not None:
            conn.close()
    ctx.flavors = found
    bad = ['%s (%s)' % (f['name'], ', '.join(flavor_problems(f)))
           for f in found if flavor_problems(f)]
    read = ' (read with %s)' % source
    if not bad:
        return base.success('all %d flavors use multiples of 8 GiB%s'
                            % (len(found), read))
    if ctx.conf.scaleio.round_volume_capacity:
        return base.warning('disks of these flavors are rounded up to 8 '
                            'GiB multiples: %s%s' % ('; '.join(bad), read),
                            'the extra space is allocated but unused; '
                            'prefer flavors with multiples of 8 GiB')
    return base.failure('these flavors break the 8 GiB rule and cannot '
                        'boot on sio: %s%s' % ('; '.join(bad), read),
                        'use disk, ephemeral and swap sizes that are '
                        'multiples of 8 GiB, or set [scaleio] '
                        'round_volume_capacity = True')


def flavor_pools(ctx):
    """Inspect the pools the flavors' ``sio:*`` extra specs pick.

    No row when no flavor has such specs (or none were read).
    """
    group = ctx.conf.scaleio
    pools = []
    for flavor in ctx.flavors or ():
        specs = flavor.get('extra_specs') or {}
        if not any(k in specs for k in (SPEC_DOMAIN, SPEC_POOL,
                                        SPEC_PROVISIONING)):
            continue
        wanted = (specs.get(SPEC_PROVISIONING) or '').strip().lower()
        thin = {'thin': True, 'thinprovisioned': True, 'thick': False,
                'thickprovisioned': False}.get(wanted)
        pools.append((specs.get(SPEC_DOMAIN) or group.protection_domain_name,
                      specs.get(SPEC_POOL) or group.storage_pool_name, thin))
    if not pools:
        return None
    if ctx.client is None:
        return base.skipped('no gateway login')
    return scaleio.layout_result(ctx, pools)
