# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Calls to the cloud through openstacksdk, run by the services' venv.

The harness runs this file with the Python of the control plane's venv
(which holds openstacksdk at the series' pinned release), so it imports
nothing from nova-sio::

    python sdkcalls.py COMMAND < request.json  > answer.json

Commands: ``register`` (service project, users, roles, services and
endpoints in Keystone), ``compute-services`` (Nova's service list),
``smoke`` (a token, the catalog, an image upload, a flavor, Placement's
resource providers, the network API), ``boot`` (a server with no
networks, booted and deleted), ``cleanup-smoke`` (delete what
``smoke`` made), ``neutron-reads`` (the reads Nova makes of Neutron
for a server with no networks, sent as Nova's client sends them).
"""

import json
import sys
import time
from urllib import parse

import openstack

# The reads Nova's networking API (nova/network/neutron.py and
# security_group_api.py) makes for one server, in the order and with the
# query parameters python-neutronclient sends: (what, collection, query).
# The server-show read comes first: it is the first Neutron request of a
# boot with networks 'none' (the API's view of the new server).
NOVA_READS = (
    ('security groups of a server (show, list)', 'ports',
     [('fields', 'security_groups'), ('fields', 'device_id'),
      ('device_id', '{device}')]),
    ('ports of a server (build, delete)', 'ports',
     [('device_id', '{device}')]),
    ('ports bound to a host (migration set-up, tear-down)', 'ports',
     [('device_id', '{device}'), ('tenant_id', '{project}'),
      ('binding:host_id', '{host}')]),
    ('port ids (migration roll-back)', 'ports',
     [('device_id', '{device}'), ('tenant_id', '{project}'),
      ('fields', 'id')]),
    ('ports to re-bind (migration finish)', 'ports',
     [('device_id', '{device}'), ('tenant_id', '{project}')]),
    ('resource requests (migration, resize)', 'ports',
     [('device_id', '{device}'), ('fields', 'resource_request')]),
    ('project networks', 'networks',
     [('tenant_id', '{project}'), ('shared', 'False')]),
    ('shared networks', 'networks', [('shared', 'True')]),
    ('extensions', 'extensions', []),
)


def connect(auth):
    """Return an openstacksdk connection.

    :param auth: keyword arguments of ``openstack.connect``.
    """
    return openstack.connect(**auth)


def _one(found):
    return found[0] if found else None


def register(conn, request):
    """Create the service project, users, services and endpoints.

    Idempotent: what exists is kept.

    :param conn: an admin connection.
    :param request: ``{'password', 'region', 'users': [...], 'services':
        [{'name', 'type', 'url'}]}``.
    :returns: ``{'users': [...], 'endpoints': n}``.
    """
    ident = conn.identity
    domain = ident.find_domain('default')
    project = ident.find_project('service', domain_id=domain.id) or \
        ident.create_project(name='service', domain_id=domain.id,
                             description='Service users of the harness')
    roles = {}
    for name in ('admin', 'service'):
        roles[name] = ident.find_role(name) or ident.create_role(name=name)
    users = []
    for name in request['users']:
        user = ident.find_user(name, domain_id=domain.id) or \
            ident.create_user(name=name, password=request['password'],
                              domain_id=domain.id,
                              default_project_id=project.id)
        for role in roles.values():
            ident.assign_project_role_to_user(project, user, role)
        users.append(user.name)
    count = 0
    for svc in request['services']:
        service = _one(list(ident.services(type=svc['type']))) or \
            ident.create_service(name=svc['name'], type=svc['type'],
                                 is_enabled=True)
        have = {e.interface for e in ident.endpoints(service_id=service.id)}
        for interface in ('public', 'internal', 'admin'):
            if interface in have:
                continue
            ident.create_endpoint(service_id=service.id,
                                  interface=interface, url=svc['url'],
                                  region_id=request['region'])
            count += 1
    return {'users': users, 'endpoints': count}


def compute_services(conn, request):
    """Return Nova's service list.

    :param conn: an admin connection.
    :param request: unused.
    :returns: ``[{'binary', 'host', 'state', 'status'}]``.
    """
    return [{'binary': s.binary, 'host': s.host, 'state': s.state,
             'status': s.status} for s in conn.compute.services()]


def smoke(conn, request):
    """Ask every service one question; return what each answered.

    :param conn: an admin connection.
    :param request: ``{'image_file': path, 'name': prefix}``.
    """
    out = {}
    begin = time.monotonic()
    out['token'] = bool(conn.session.get_token())
    out['catalog'] = sorted(
        e['type'] for e in conn.session.auth.get_access(
            conn.session).service_catalog.catalog)
    name = request['name']
    with open(request['image_file'], 'rb') as handle:
        image = conn.image.create_image(
            name=name, data=handle, disk_format='raw',
            container_format='bare', allow_duplicates=True)
    image = conn.image.get_image(image.id)
    out['image'] = {'id': image.id, 'status': image.status,
                    'size': image.size, 'checksum': image.checksum}
    data = conn.image.download_image(image.id).content
    with open(request['image_file'], 'rb') as handle:
        out['image']['round_trip'] = data == handle.read()
    flavor = conn.compute.create_flavor(name=name, ram=256, vcpus=1,
                                        disk=8, ephemeral=0, swap=0)
    out['flavor'] = {'id': flavor.id, 'disk': flavor.disk}
    out['resource_providers'] = sorted(
        rp.name for rp in conn.placement.resource_providers())
    out['networks'] = [n.id for n in conn.network.networks()]
    out['extensions'] = [e.alias for e in conn.network.extensions()]
    out['compute_services'] = compute_services(conn, request)
    out['seconds'] = round(time.monotonic() - begin, 2)
    return out


def boot(conn, request):
    """Boot a server with no networks, wait for ACTIVE, delete it.

    :param conn: an admin connection.
    :param request: ``{'name', 'image', 'flavor', 'timeout'}`` (names or
        ids of the image and flavor).
    :returns: ``{'id', 'status', 'host', 'boot_s', 'delete_s',
        'fault'}``.
    """
    timeout = request.get('timeout', 300)
    image = conn.image.find_image(request['image'], ignore_missing=False)
    flavor = conn.compute.find_flavor(request['flavor'],
                                      ignore_missing=False)
    begin = time.monotonic()
    server = conn.compute.create_server(
        name=request['name'], image_id=image.id, flavor_id=flavor.id,
        networks='none')
    out = {'id': server.id}
    try:
        server = conn.compute.wait_for_server(server, status='ACTIVE',
                                              failures=['ERROR'],
                                              wait=timeout)
    except Exception as exc:
        server = conn.compute.get_server(server.id)
        out['fault'] = (server.fault or {}).get('message') or str(exc)
    out['status'] = server.status
    out['host'] = server.compute_host
    out['boot_s'] = round(time.monotonic() - begin, 2)
    begin = time.monotonic()
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=timeout)
    out['delete_s'] = round(time.monotonic() - begin, 2)
    return out


def cleanup_smoke(conn, request):
    """Delete the image and flavor ``smoke`` made.

    :param conn: an admin connection.
    :param request: ``{'name': prefix}``.
    """
    gone = []
    for image in conn.image.images(name=request['name']):
        conn.image.delete_image(image)
        gone.append('image %s' % image.id)
    flavor = conn.compute.find_flavor(request['name'])
    if flavor:
        conn.compute.delete_flavor(flavor)
        gone.append('flavor %s' % flavor.id)
    return gone


def neutron_reads(conn, request):
    """Send :data:`NOVA_READS` to the network endpoint, in order.

    :param conn: an admin connection.
    :param request: ``{'device_id', 'host'}`` (the project is the
        connection's).
    :returns: ``[{'what', 'path', 'status', 'items', 'error'}]``:
        ``items`` the length of the answered collection (``None`` when
        there is none), ``error`` the start of a non-200 body.
    """
    values = {'device': request['device_id'], 'host': request['host'],
              'project': conn.current_project_id}
    base = conn.network.get_endpoint().rstrip('/')
    if base.endswith('/v2.0'):
        base = base[:-len('/v2.0')]
    out = []
    for what, collection, query in NOVA_READS:
        path = '/v2.0/%s' % collection
        pairs = [(k, v.format(**values)) for k, v in query]
        if pairs:
            path += '?' + parse.urlencode(pairs)
        resp = conn.session.get(base + path, raise_exc=False)
        answer = {'what': what, 'path': path, 'status': resp.status_code,
                  'items': None, 'error': None}
        if resp.status_code == 200:
            answer['items'] = len(resp.json()[collection])
        else:
            answer['error'] = resp.text[:300]
        out.append(answer)
    return out


COMMANDS = {'register': register, 'compute-services': compute_services,
            'smoke': smoke, 'boot': boot, 'cleanup-smoke': cleanup_smoke,
            'neutron-reads': neutron_reads}


def main(argv=None):
    """Run one command; the request (JSON, with ``auth``) is on stdin.

    :param argv: ``[COMMAND]``.
    """
    argv = sys.argv[1:] if argv is None else argv
    request = json.load(sys.stdin)
    conn = connect(request.pop('auth'))
    json.dump(COMMANDS[argv[0]](conn, request), sys.stdout, sort_keys=True)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
