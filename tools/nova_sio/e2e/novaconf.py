# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Configuration files of the control plane and the compute hosts.

Pure functions: each returns ``{section: {option: value}}`` for one
service, built from a :class:`Endpoints` (where everything listens and
the credentials), and :func:`write_ini` writes such a mapping. Nothing
here starts a process, so the unit tests read these files back with
``configparser`` and check the options that make the harness what it is
(``images_type = sio``, live migration over TCP without block migration,
one worker, the ``[scaleio]`` section of each host).
"""

import collections
import os

from nova_sio import errors

REGION = 'RegionOne'
DOMAIN = 'Default'
CELL = 'cell1'
# The privsep contexts Nova's compute service and the libraries it loads
# start (each reads ``helper_command`` from its own section).
PRIVSEP_SECTIONS = ('nova_sys_admin', 'privsep_osbrick', 'os_vif_privileged',
                    'vif_plug_linux_bridge_privileged',
                    'vif_plug_ovs_privileged')
# Ports of the services on the control address.
PORTS = {
    'mysql': 3306,
    'amqp': 5672,
    'epmd': 4369,
    'rabbit_dist': 25672,
    'keystone': 5000,
    'glance': 9292,
    'placement': 8778,
    'nova_api': 8774,
    'neutron': 9696,
}
DATABASES = ('keystone', 'glance', 'placement', 'nova_api', 'nova_cell0',
             'nova', 'neutron')
SERVICE_USERS = ('glance', 'placement', 'nova', 'neutron')


class ConfError(errors.NovaSioError):
    msg_fmt = 'Cannot write the configuration: %(reason)s'


class Endpoints(object):
    """Where the control plane listens, and its secrets.

    :param address: the control-plane IP address.
    :param password: the one password of every account (admin, service
        users, database users, the message queue user).
    :param ports: ``{name: port}`` overriding :data:`PORTS`.
    """

    def __init__(self, address, password, ports=None):
        self.address = address
        self.password = password
        self.ports = dict(PORTS, **(ports or {}))

    def url(self, service, path=''):
        """Return ``http://address:port<path>`` of ``service``.

        :param service: a key of :data:`PORTS`.
        :param path: a path to append.
        """
        return 'http://%s:%d%s' % (self.address, self.ports[service], path)

    @property
    def auth_url(self):
        return self.url('keystone', '/v3')

    def db(self, name, user=None):
        """Return the SQLAlchemy URL of database ``name``.

        :param name: database name.
        :param user: database user (default: the database name).
        """
        return 'mysql+pymysql://%s:%s@%s:%d/%s?charset=utf8' % (
            user or name, self.password, self.address, self.ports['mysql'],
            name)

    @property
    def transport_url(self):
        return 'rabbit://nova:%s@%s:%d/' % (
            self.password, self.address, self.ports['amqp'])

    def keystone_auth(self, user):
        """Return the password auth options of service user ``user``.

        :param user: a name of :data:`SERVICE_USERS`.
        """
        return collections.OrderedDict([
            ('auth_type', 'password'),
            ('auth_url', self.auth_url),
            ('www_authenticate_uri', self.auth_url),
            ('username', user),
            ('password', self.password),
            ('user_domain_name', DOMAIN),
            ('project_name', 'service'),
            ('project_domain_name', DOMAIN),
            ('region_name', REGION),
        ])

    def client_auth(self, user):
        """Return the auth options of a client section (no
        ``www_authenticate_uri``, which only ``keystone_authtoken`` reads).

        :param user: a name of :data:`SERVICE_USERS`.
        """
        opts = self.keystone_auth(user)
        del opts['www_authenticate_uri']
        return opts


#: ``[image_cache] manager_interval`` of the compute hosts (seconds).
IMAGE_CACHE_INTERVAL = 20


def write_ini(path, sections):
    """Write ``{section: {option: value}}`` as an INI file.

    Values that are lists or tuples are joined with commas; booleans are
    written ``True``/``False``.

    :param path: the file to write.
    :param sections: the mapping; section and option order is kept.
    :returns: ``path``.
    """
    lines = []
    for section, options in sections.items():
        lines.append('[%s]' % section)
        for key, value in options.items():
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                value = ','.join(str(v) for v in value)
            if '\n' in str(value):
                raise ConfError(reason='option %s.%s holds a newline' % (
                    section, key))
            lines.append('%s = %s' % (key, value))
        lines.append('')
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as handle:
        handle.write('\n'.join(lines))
    return path


def _common(ep, state_path, debug=False):
    return collections.OrderedDict([
        ('debug', debug),
        ('use_stderr', True),
        ('state_path', state_path),
    ])


def keystone_conf(ep, workdir):
    """Return Keystone's configuration.

    :param ep: the :class:`Endpoints`.
    :param workdir: directory for the fernet and credential keys.
    """
    return collections.OrderedDict([
        ('DEFAULT', collections.OrderedDict([('use_stderr', True)])),
        ('database', {'connection': ep.db('keystone')}),
        ('token', {'provider': 'fernet'}),
        ('fernet_tokens', {'key_repository':
                           os.path.join(workdir, 'fernet-keys')}),
        ('credential', {'key_repository':
                        os.path.join(workdir, 'credential-keys')}),
    ])


def glance_conf(ep, workdir):
    """Return glance-api's configuration (a file store).

    :param ep: the :class:`Endpoints`.
    :param workdir: directory holding the image store.
    """
    return collections.OrderedDict([
        ('DEFAULT', collections.OrderedDict([
            ('use_stderr', True),
            ('bind_host', ep.address),
            ('bind_port', ep.ports['glance']),
            ('workers', 1),
            ('enabled_backends', 'fs:file'),
            ('image_cache_dir', os.path.join(workdir, 'image-cache')),
        ])),
        ('database', {'connection': ep.db('glance')}),
        ('keystone_authtoken', ep.keystone_auth('glance')),
        ('paste_deploy', {'flavor': 'keystone'}),
        ('glance_store', {'default_backend': 'fs'}),
        ('fs', {'filesystem_store_datadir': os.path.join(workdir,
                                                         'images')}),
        ('os_glance_staging_store', {'filesystem_store_datadir':
                                     os.path.join(workdir, 'staging')}),
        ('os_glance_tasks_store', {'filesystem_store_datadir':
                                   os.path.join(workdir, 'tasks')}),
        ('oslo_concurrency', {'lock_path': os.path.join(workdir, 'lock')}),
    ])


def neutron_conf(ep, workdir, paste):
    """Return neutron-server's configuration: ML2 with no mechanism
    driver and no agent, no notification to Nova, and the L3 service
    plugin (``router``).

    Neutron always loads its default service plugins, among them
    ``auto_allocate``, whose extension requires the L3 one (``router``);
    without it the server logs ``Unable to process extensions
    (auto-allocated-topology)`` at start. ``router`` needs no agent
    until a router is made, and the harness makes none.

    :param ep: the :class:`Endpoints`.
    :param workdir: its state directory.
    :param paste: its ``api-paste.ini``.
    """
    return collections.OrderedDict([
        ('DEFAULT', collections.OrderedDict([
            ('use_stderr', True),
            ('state_path', workdir),
            ('core_plugin', 'ml2'),
            ('service_plugins', 'router'),
            ('auth_strategy', 'keystone'),
            ('transport_url', ep.transport_url),
            ('api_paste_config', paste),
            ('api_workers', 1),
            ('rpc_workers', 0),
            ('rpc_state_report_workers', 0),
            ('notify_nova_on_port_status_changes', False),
            ('notify_nova_on_port_data_changes', False),
        ])),
        ('database', {'connection': ep.db('neutron')}),
        ('keystone_authtoken', ep.keystone_auth('neutron')),
        ('oslo_concurrency', {'lock_path': os.path.join(workdir, 'lock')}),
        ('oslo_messaging_notifications', {'driver': 'noop'}),
    ])


def ml2_conf():
    """Return the ML2 plugin's configuration: no mechanism driver
    (nothing to bind, no agent to wait for), no flat network, and the
    VXLAN type driver with a small range of VNIs.

    The VXLAN driver is what makes neutron-server answer Nova's first
    port read. Neutron's ``get_ports`` names ``Port.port_forwardings``
    and ``Port.distributed_port_binding`` as its lazy-load fields before
    it queries; SQLAlchemy adds these two back-references to ``Port``
    only when it configures the mappers, at the first ORM query of the
    process. A segmentation type driver syncs its allocation table at
    start (an ORM query in the API worker itself, at each start of that
    worker); the flat driver queries nothing, so with flat alone the
    first request of a server booted with ``networks: none`` (``GET
    /v2.0/ports?fields=security_groups&fields=device_id&device_id=...``,
    the security groups of the API's view of the server) failed with
    ``AttributeError: type object 'Port' has no attribute
    'port_forwardings'`` (HTTP 500), as did every port read until some
    other request (a network list) ran a query. No project network type
    is set: no network is ever made.
    """
    return collections.OrderedDict([
        ('ml2', collections.OrderedDict([
            ('type_drivers', 'flat,vxlan'),
            ('tenant_network_types', ''),
            ('mechanism_drivers', ''),
            ('extension_drivers', ''),
        ])),
        ('ml2_type_flat', {'flat_networks': ''}),
        ('ml2_type_vxlan', {'vni_ranges': '1:16'}),
    ])


def placement_conf(ep):
    """Return Placement's configuration.

    :param ep: the :class:`Endpoints`.
    """
    return collections.OrderedDict([
        ('DEFAULT', {'use_stderr': True}),
        ('placement_database', {'connection': ep.db('placement')}),
        ('api', {'auth_strategy': 'keystone'}),
        ('keystone_authtoken', ep.keystone_auth('placement')),
    ])


def _nova_clients(ep, conf):
    conf['placement'] = ep.client_auth('placement')
    conf['glance'] = collections.OrderedDict([('region_name', REGION)])
    conf['neutron'] = ep.client_auth('neutron')
    conf['service_user'] = ep.client_auth('nova')
    conf['service_user']['send_service_user_token'] = True
    conf['keystone_authtoken'] = ep.keystone_auth('nova')
    conf['cinder'] = {'os_region_name': REGION}
    return conf


def nova_conf(ep, workdir, debug=False):
    """Return the configuration of nova-api, -conductor and -scheduler.

    One conductor serves the API and the cell (as devstack's single
    conductor layout), one worker per service, no periodic host
    discovery (the harness runs ``discover_hosts`` after starting each
    compute).

    :param ep: the :class:`Endpoints`.
    :param workdir: the control plane's Nova state directory.
    :param debug: DEBUG logging.
    """
    default = _common(ep, workdir, debug)
    default.update([
        ('my_ip', ep.address),
        ('host', 'ctl'),
        ('transport_url', ep.transport_url),
        ('osapi_compute_workers', 1),
        ('metadata_workers', 1),
        ('enabled_apis', 'osapi_compute'),
    ])
    conf = collections.OrderedDict([
        ('DEFAULT', default),
        ('api', {'auth_strategy': 'keystone'}),
        ('api_database', {'connection': ep.db('nova_api', 'nova')}),
        ('database', {'connection': ep.db('nova', 'nova')}),
        ('conductor', {'workers': 1}),
        ('scheduler', collections.OrderedDict([
            ('workers', 1),
            ('discover_hosts_in_cells_interval', -1),
        ])),
        ('oslo_concurrency', {'lock_path': os.path.join(workdir, 'lock')}),
        ('oslo_messaging_notifications', {'driver': 'noop'}),
    ])
    return _nova_clients(ep, conf)


def cell0_url(ep):
    """Return the cell0 database URL.

    :param ep: the :class:`Endpoints`.
    """
    return ep.db('nova_cell0', 'nova')


def compute_conf(ep, host, my_ip, scaleio_options, workdir, privsep_helper,
                 conf_path, connection_uri=None, debug=False):
    """Return the nova.conf of one compute host.

    Each host keeps its own instances directory (sio disks need no shared
    storage); live migration goes over libvirt's TCP transport to
    ``my_ip`` of the destination, never copying disks.

    :param ep: the :class:`Endpoints`.
    :param host: the compute host name.
    :param my_ip: the host's address.
    :param scaleio_options: ``{option: value}`` of its ``[scaleio]``.
    :param workdir: the host's Nova state directory.
    :param privsep_helper: the ``privsep-helper`` of Nova's venv.
    :param conf_path: where this file will be written (the privsep
        daemons read it too).
    :param connection_uri: libvirt URI (default: libvirt's own).
    :param debug: DEBUG logging.
    :raises ConfError: when ``scaleio_options`` is empty.
    """
    if not scaleio_options:
        raise ConfError(reason='no [scaleio] options for host %s' % host)
    default = _common(ep, workdir, debug)
    default.update([
        ('host', host),
        ('my_ip', my_ip),
        ('transport_url', ep.transport_url),
        ('compute_driver', 'libvirt.LibvirtDriver'),
        ('instances_path', os.path.join(workdir, 'instances')),
        ('heal_instance_info_cache_interval', -1),
        ('reserved_host_memory_mb', 512),
    ])
    conf = collections.OrderedDict([
        ('DEFAULT', default),
        ('libvirt', collections.OrderedDict([
            ('virt_type', 'qemu'),
            ('connection_uri', connection_uri),
            ('images_type', 'sio'),
            ('live_migration_scheme', 'tcp'),
            ('live_migration_inbound_addr', my_ip),
            ('live_migration_with_native_tls', False),
            ('live_migration_permit_post_copy', False),
        ])),
        ('vnc', {'enabled': False}),
        # A short image cache pass: it also deletes the volumes a failed
        # deletion left while the gateway was away.
        ('image_cache', {'manager_interval': IMAGE_CACHE_INTERVAL}),
        ('oslo_concurrency', {'lock_path': os.path.join(workdir, 'lock')}),
        ('oslo_messaging_notifications', {'driver': 'noop'}),
    ])
    # Run as root already: the helper needs no sudo or rootwrap.
    helper = '%s --config-file %s' % (privsep_helper, conf_path)
    for section in PRIVSEP_SECTIONS:
        conf[section] = {'helper_command': helper}
    _nova_clients(ep, conf)
    del conf['keystone_authtoken']
    conf['scaleio'] = collections.OrderedDict(sorted(
        scaleio_options.items()))
    return conf


def set_options(text, section, options):
    """Return INI ``text`` with ``options`` set in its ``section``.

    An option already in the section gets the new value in its place;
    the others are added right after the section's header. Used on the
    file :func:`compute_conf` wrote, to choose another image backend
    (``images_type``, ``images_volume_group``) or ``[scaleio]`` options.

    :param text: the INI text.
    :param section: a section name that must be in ``text``.
    :param options: ``{option: value}``; booleans are written
        ``True``/``False``.
    :raises ConfError: when the section is missing, or is in the text
        more than once.
    """
    lines = text.split('\n')
    headers = [i for i, ln in enumerate(lines)
               if ln.strip() == '[%s]' % section]
    if len(headers) != 1:
        raise ConfError(reason='section [%s] is in the file %d times' % (
            section, len(headers)))
    start = headers[0] + 1
    end = start
    while end < len(lines) and not lines[end].startswith('['):
        end += 1
    missing = []
    for key, value in options.items():
        if '\n' in str(value):
            raise ConfError(reason='option %s.%s holds a newline' % (
                section, key))
        line = '%s = %s' % (key, value)
        found = [i for i in range(start, end)
                 if lines[i].split('=', 1)[0].strip() == key]
        for i in found:
            lines[i] = line
        if not found:
            missing.append(line)
    lines[start:start] = missing
    return '\n'.join(lines)


def fake_compute_conf(ep, host, my_ip, workdir, debug=False):
    """Return the nova.conf of a compute host with Nova's fake driver.

    It proves host discovery and scheduling without libvirt.

    :param ep: the :class:`Endpoints`.
    :param host: the compute host name.
    :param my_ip: the host's address.
    :param workdir: its state directory.
    :param debug: DEBUG logging.
    """
    default = _common(ep, workdir, debug)
    default.update([
        ('host', host),
        ('my_ip', my_ip),
        ('transport_url', ep.transport_url),
        ('compute_driver', 'fake.FakeDriver'),
        ('instances_path', os.path.join(workdir, 'instances')),
        ('heal_instance_info_cache_interval', -1),
    ])
    conf = collections.OrderedDict([
        ('DEFAULT', default),
        ('oslo_concurrency', {'lock_path': os.path.join(workdir, 'lock')}),
        ('oslo_messaging_notifications', {'driver': 'noop'}),
    ])
    _nova_clients(ep, conf)
    del conf['keystone_authtoken']
    return conf


def rabbitmq_conf(ep):
    """Return ``rabbitmq.conf`` text (sysctl format, not INI).

    The ``nova`` user is created on the first boot and may connect from
    the compute hosts (not only from loopback, as ``guest`` may). The
    listener's address and port come from ``RABBITMQ_NODE_IP_ADDRESS``
    and ``RABBITMQ_NODE_PORT``.

    :param ep: the :class:`Endpoints`.
    """
    lines = [
        'loopback_users = none',
        'default_user = nova',
        'default_pass = %s' % ep.password,
        'default_vhost = /',
        'default_permissions.configure = .*',
        'default_permissions.read = .*',
        'default_permissions.write = .*',
        'log.console = true',
        'log.file = false',
    ]
    return '\n'.join(lines) + '\n'


def mariadb_argv(mariadbd, datadir, socket_path, ep, pid_file):
    """Return the argument list of a private MariaDB server.

    :param mariadbd: the server binary.
    :param datadir: its data directory.
    :param socket_path: its UNIX socket.
    :param ep: the :class:`Endpoints` (address and port).
    :param pid_file: its pid file.
    """
    return [mariadbd, '--no-defaults', '--user=root',
            '--datadir=%s' % datadir, '--socket=%s' % socket_path,
            '--pid-file=%s' % pid_file,
            '--bind-address=%s' % ep.address,
            '--port=%d' % ep.ports['mysql'], '--skip-name-resolve',
            '--innodb-buffer-pool-size=64M', '--max-connections=500',
            '--character-set-server=utf8mb4', '--skip-log-bin']
