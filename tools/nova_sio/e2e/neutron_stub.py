# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""A Neutron stand-in: the smallest networking API Nova's calls need.

The control plane runs a real ``neutron-server`` by default; this
stand-in is its lighter alternative (``ControlPlane(neutron='stub')``),
for a machine or release where neutron cannot be installed.

The network is not under test in the end-to-end harness: every server
boots with ``networks: none`` (compute API microversion 2.37 and later),
so Nova never creates, binds or deletes a port. It still asks Neutron
about the instance's networking on boot, migration, resize, evacuation,
shelve and delete (``nova/network/neutron.py``: ``list_extensions``,
``list_ports(device_id=...)`` to find the instance's ports, and the
lists of networks, subnets, floating IPs and security groups that follow
from them). This stand-in answers those reads with empty collections, an
empty extension list and the version document, ``404`` in Neutron's
error format for any single resource, and refuses every write with
``400`` naming itself: a real ``neutron-server`` (ML2 with no agents)
answers these reads alike for a cloud with no ports, only with its long
extension list. Each request is logged on stderr (the service log), so
a run can show what Nova asked.

Run: ``python neutron_stub.py --listen ADDRESS --port PORT``. It needs
only the standard library and does not check tokens.
"""

import argparse
from http import server
import json
import re
import sys
from urllib import parse

VERSION = 'v2.0'
# Single resources answered with Neutron's "<Kind>NotFound".
KINDS = {
    'ports': 'Port', 'networks': 'Network', 'subnets': 'Subnet',
    'floatingips': 'FloatingIP', 'security-groups': 'SecurityGroup',
    'security-group-rules': 'SecurityGroupRule', 'routers': 'Router',
    'qos/policies': 'QosPolicy', 'trunks': 'Trunk',
    'network-segment-ranges': 'NetworkSegmentRange', 'segments': 'Segment',
}
UNLIMITED_QUOTA = {'network': -1, 'subnet': -1, 'port': -1, 'router': -1,
                   'floatingip': -1, 'security_group': -1,
                   'security_group_rule': -1}


def collection_key(name):
    """Return the JSON key of collection ``name`` (``security-groups`` ->
    ``security_groups``, ``qos/policies`` -> ``policies``).

    :param name: the collection's URL path below ``/v2.0/``.
    """
    return name.rsplit('/', 1)[-1].replace('-', '_')


def route(method, path, base_url):
    """Return ``(status, body dict)`` for one request.

    :param method: HTTP method.
    :param path: the URL path (no query).
    :param base_url: ``http://address:port`` of this server.
    """
    path = re.sub(r'\.json$', '', path).rstrip('/')
    if method == 'GET' and path == '':
        return 200, {'versions': [{
            'id': VERSION, 'status': 'CURRENT',
            'links': [{'href': '%s/%s/' % (base_url, VERSION),
                       'rel': 'self'}]}]}
    if not (path == '/' + VERSION or path.startswith('/%s/' % VERSION)):
        return 404, _error('HTTPNotFound', 'no such path %s' % path)
    rest = path[len(VERSION) + 2:]
    if method != 'GET':
        return 400, _error('BadRequest', 'this Neutron stand-in of the '
                           'end-to-end harness refuses %s %s: servers boot '
                           'with no networks' % (method, path))
    if rest == '':
        return 200, {'resources': [
            {'name': collection_key(c)[:-1], 'collection': collection_key(c),
             'links': [{'href': '%s/%s/%s' % (base_url, VERSION, c),
                        'rel': 'self'}]} for c in sorted(KINDS)]}
    if rest == 'extensions':
        return 200, {'extensions': []}
    if rest.startswith('extensions/'):
        return 404, _error('ExtensionNotFound', 'Extension %s could not be '
                           'found.' % rest.split('/', 1)[1])
    if rest.startswith('quotas/'):
        return 200, {'quota': dict(UNLIMITED_QUOTA)}
    for name, kind in KINDS.items():
        if rest == name:
            return 200, {collection_key(name): []}
        if rest.startswith(name + '/'):
            ident = rest[len(name) + 1:]
            return 404, _error('%sNotFound' % kind, '%s %s could not be '
                               'found.' % (kind, ident))
    return 404, _error('HTTPNotFound', 'The resource could not be found.')


def _error(kind, message):
    return {'NeutronError': {'type': kind, 'message': message,
                             'detail': ''}}


class Handler(server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'nova-sio-neutron-stand-in'

    def _answer(self):
        length = int(self.headers.get('Content-Length') or 0)
        if length:
            self.rfile.read(length)
        url = parse.urlsplit(self.path)
        host, port = self.server.server_address[:2]
        status, body = route(self.command, url.path,
                             'http://%s:%d' % (host, port))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        request_id = self.headers.get('X-Openstack-Request-Id')
        if request_id:
            self.send_header('X-Openstack-Request-Id', request_id)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, fmt, *args):
        sys.stderr.write('%s %s\n' % (self.log_date_time_string(),
                                      fmt % args))
        sys.stderr.flush()


def main(argv=None):
    """Serve until killed.

    :param argv: arguments (default ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--listen', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=9696)
    args = parser.parse_args(argv)
    httpd = server.ThreadingHTTPServer((args.listen, args.port), Handler)
    sys.stderr.write('listening on %s:%d\n' % (args.listen, args.port))
    sys.stderr.flush()
    httpd.serve_forever()


if __name__ == '__main__':
    main()
