# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""``tempest.conf`` for one cloud of the real-cloud harness.

What the cloud is, as Tempest must know it:

* Keystone v3 with the admin of ``keystone-manage bootstrap``; Tempest
  makes a project and users per test class (dynamic credentials).
* Two compute hosts with libvirt/QEMU (TCG): live migration without
  block migration (the disks are shared ScaleIO volumes: Tempest's
  ``block_migration_for_live_migration`` is on only so that it runs its
  live migrations, which from microversion 2.25 let Nova choose), resize
  and cold migration, console output. Nova's ``nova-lvm`` job switches
  resize and cold migration off for ``images_type = lvm``
  (:data:`LVM_OFF`); so does this configuration for that backend.
* No Cinder, no Swift, no Horizon; no VNC, SPICE or serial console.
* Neutron is a real server, but with no L2 agent and no data plane: a
  port can never bind. Tempest keeps ``neutron = True`` (the compute API
  proxies to it, and it must exist for the live-migration classes, which
  ask for a default network), with no isolated network per project
  (``create_isolated_networks = False``) and no ``fixed_network_name``:
  Tempest then boots its servers without a network (microversion 2.1:
  the project has no network; from 2.37 on: ``networks: none``).
  Interface attachment and floating IPs are off; the network extensions
  are the ones the server loaded.
* No validation: Tempest never logs into a guest (``run_validation =
  False``); the guest is the harness's own (kernel, ramdisk, root image
  in Glance).
* Timeouts for QEMU without acceleration.
"""

import collections

#: Seconds Tempest waits for a server (or image) to reach a state.
BUILD_TIMEOUT = 900
#: Seconds Tempest waits for one API answer. Every API service runs one
#: worker: Glance answers nothing else while it receives a snapshot (an
#: 8 GiB raw image took 284 s on a loaded machine), and nova-api waits
#: for it when it proxies an image request (Tempest's default: 60).
HTTP_TIMEOUT = 600
BUILD_INTERVAL = 3
#: Options nova-lvm sets for ``images_type = lvm`` (bug 1831657).
LVM_OFF = ('resize', 'cold_migration')


def tempest_conf(auth, auth_url, images, flavors, compute_nodes=2,
                 network_extensions=(), images_type='sio', log_dir=None):
    """Return ``{section: {option: value}}`` of ``tempest.conf``.

    :param auth: the admin's ``openstack.connect`` keyword arguments
        (``ControlPlane.auth``).
    :param auth_url: Keystone's URL (without ``/v3``).
    :param images: ``(image_ref, image_ref_alt)`` Glance image ids.
    :param flavors: ``(flavor_ref, flavor_ref_alt)`` flavor ids;
        ``flavor_ref_alt`` must be the larger (resize tests).
    :param compute_nodes: how many compute hosts the cloud has.
    :param network_extensions: the aliases Neutron loaded.
    :param images_type: the compute hosts' ``[libvirt] images_type``.
    :param log_dir: directory of ``tempest.log`` (None: the working
        directory).
    """
    base = auth_url.rstrip('/')
    if base.endswith('/v3'):
        base = base[:-len('/v3')]
    features = collections.OrderedDict([
        ('live_migration', compute_nodes >= 2),
        # Tempest runs its live migrations of image-backed servers only
        # with this flag; at microversion 2.25 and later they ask for
        # block_migration "auto" and Nova chooses: no block migration
        # onto sio's shared block storage. Below 2.25 Tempest asks for a
        # block migration, which Nova refuses for shared block storage
        # (excluded, see tempest.SHARED_STORAGE).
        ('block_migration_for_live_migration', True),
        # Off as in Nova's jobs (Tempest means it for grenade jobs): a
        # guest paused on arrival and migrated back makes QEMU abort
        # ("bdrv_inactivate_recurse: Assertion `!(bs->open_flags &
        # BDRV_O_INACTIVE)' failed"), whatever the disks are.
        ('live_migrate_back_and_forth', False),
        ('resize', True),
        ('cold_migration', compute_nodes >= 2),
        ('console_output', True),
        ('change_password', False),
        ('interface_attach', False),
        ('vnc_console', False),
        ('spice_console', False),
        ('serial_console', False),
        ('rescue', True),
        ('snapshot', True),
        ('shelve', True),
        ('shelve_migrate', compute_nodes >= 2),
        ('pause', True),
        ('suspend', True),
        ('swap_volume', False),
        ('volume_multiattach', False),
        ('volume_backed_live_migration', False),
        ('attach_encrypted_volume', False),
        ('metadata_service', False),
        ('personality', False),
        ('vtpm_live_migration', False),
    ])
    if images_type == 'lvm':
        for name in LVM_OFF:
            features[name] = False
    return collections.OrderedDict([
        ('DEFAULT', collections.OrderedDict([
            ('log_dir', log_dir),
            ('log_file', 'tempest.log' if log_dir else None),
            ('use_stderr', False),
        ])),
        ('auth', collections.OrderedDict([
            ('use_dynamic_credentials', True),
            ('create_isolated_networks', False),
            ('admin_username', auth['username']),
            ('admin_password', auth['password']),
            ('admin_project_name', auth['project_name']),
            ('admin_domain_name', auth['user_domain_name']),
            ('default_credentials_domain_name', auth['user_domain_name']),
        ])),
        ('identity', collections.OrderedDict([
            ('uri_v3', base + '/v3'),
            ('auth_version', 'v3'),
            ('region', auth['region_name']),
            ('v3_endpoint_type', 'public'),
        ])),
        ('identity-feature-enabled', collections.OrderedDict([
            ('api_v2', False),
            ('api_v3', True),
        ])),
        ('compute', collections.OrderedDict([
            ('image_ref', images[0]),
            ('image_ref_alt', images[1]),
            ('flavor_ref', flavors[0]),
            ('flavor_ref_alt', flavors[1]),
            ('min_compute_nodes', compute_nodes),
            ('min_microversion', '2.1'),
            ('max_microversion', 'latest'),
            ('build_timeout', BUILD_TIMEOUT),
            ('build_interval', BUILD_INTERVAL),
            ('region', auth['region_name']),
            ('endpoint_type', 'publicURL'),
        ])),
        ('compute-feature-enabled', features),
        ('placement', collections.OrderedDict([
            ('region', auth['region_name']),
        ])),
        ('image', collections.OrderedDict([
            ('region', auth['region_name']),
            ('build_timeout', BUILD_TIMEOUT),
            ('build_interval', BUILD_INTERVAL),
            ('disk_formats', 'raw,qcow2,aki,ari,ami'),
            ('container_formats', 'bare,aki,ari,ami'),
        ])),
        ('image-feature-enabled', collections.OrderedDict([
            ('api_v2', True),
        ])),
        ('network', collections.OrderedDict([
            ('region', auth['region_name']),
            ('project_networks_reachable', False),
            ('build_timeout', BUILD_TIMEOUT),
        ])),
        ('network-feature-enabled', collections.OrderedDict([
            ('api_extensions', ','.join(network_extensions) or 'none'),
            ('floating_ips', False),
            ('ipv6', False),
        ])),
        ('service-clients', collections.OrderedDict([
            ('http_timeout', HTTP_TIMEOUT),
        ])),
        ('validation', collections.OrderedDict([
            ('run_validation', False),
        ])),
        ('service_available', collections.OrderedDict([
            ('nova', True),
            ('glance', True),
            ('neutron', True),
            ('cinder', False),
            ('swift', False),
            ('horizon', False),
        ])),
        ('volume-feature-enabled', collections.OrderedDict([
            ('backup', False),
        ])),
        ('oslo_concurrency', collections.OrderedDict([
            ('lock_path', log_dir),
        ])),
    ])
