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

"""``nova-sio doctor``: check a compute host's configuration for sio.

The checks live in :mod:`nova_sio.operator.doctor`; each is a small function
returning a result with a code, details and a hint, in the style of
oslo.upgradecheck (``nova-status upgrade check``). This module orders
them, runs them and renders their results as a table, or with
``--json`` as one document::

    {'command': 'doctor', 'ok': true | false, 'checks': [
        {'check': 'gateway', 'status': 'pass' | 'fail' | 'warn' | 'skip',
         'detail': 'what was found', 'hint': 'how to fix it',
         'code': 0}, ...]}

(``code`` is the oslo.upgradecheck-style code: 0 success, 1 warning,
2 failure, -1 skipped). A check whose prerequisite did not pass is
skipped rather than failed again. The exit status is 1 when a check
failed, 0 otherwise (warnings included).

The flavor check reads the flavors with the credentials nova.conf holds
for Nova's own calls, or a cloud of ``clouds.yaml`` (see
:mod:`nova_sio.operator.doctor.flavors`).
"""

from nova_sio.operator.doctor import base
from nova_sio.operator.doctor import flavors
from nova_sio.operator.doctor import scaleio
from nova_sio.operator.doctor import tree
from nova_sio import runtime

DEFAULT_CONFIG = scaleio.DEFAULT_CONFIG
# Kept here: callers and tests use them from the command's module.
flavor_problems = flavors.flavor_problems


def add_arguments(parser):
    """Add the doctor's own options to ``parser`` (the command adds the
    Nova tree and output options of every operator command).

    :param parser: an ``argparse`` parser.
    """
    parser.add_argument('--config-file', action='append', metavar='FILE',
                        help='a Nova configuration file; repeat for more '
                        '(default: %s)' % DEFAULT_CONFIG)
    parser.add_argument('--config-dir', action='append', metavar='DIR',
                        help='a directory of *.conf files, like Nova\'s '
                        '--config-dir')
    flavors.add_arguments(parser)


def checks():
    """Return the checks in the order they run (prerequisites first)."""
    check = base.Check
    options = ['option %s' % name
               for name in runtime.load('conf').REQUIRED]
    return (
        [check('config', scaleio.config, fatal=True),
         check('images_type', scaleio.images_type),
         check('nova backend', tree.nova_backend),
         check('upgrade hook', tree.upgrade_hook)] +
        [check(name, scaleio.required_option(name.split(' ', 1)[1]),
               blocked='mandatory options are missing')
         for name in options] +
        [check('option values', scaleio.option_values, needs=options,
               blocked='options are missing or invalid'),
         check('gateway', scaleio.gateway, needs=['option values'],
               blocked='the gateway is unreachable'),
         check('tls', scaleio.tls, needs=['gateway'], blocked='TLS failed'),
         check('credentials', scaleio.credentials, needs=['tls'],
               blocked='no gateway login'),
         check('protection domain', scaleio.protection_domain,
               needs=['credentials'], blocked='no protection domain'),
         check('storage pool', scaleio.storage_pool,
               needs=['protection domain'], blocked='no storage pool'),
         check('pool layout', scaleio.pool_layout, needs=['storage pool']),
         check('drv_cfg', scaleio.drv_cfg),
         check('sdc guid', scaleio.sdc_guid, blocked='no SDC GUID'),
         check('sdc registered', scaleio.sdc_registered,
               needs=['credentials', 'sdc guid']),
         check('device directory', scaleio.device_directory),
         check('flavors', flavors.flavors),
         check('flavor pools', flavors.flavor_pools)])


def run(args, progress=None):
    """Run every check; return the result dicts (see the module doc).

    :param args: the parsed command line.
    :param progress: ``callable(message)`` for progress lines.
    """
    ctx = base.Context(args, progress)
    try:
        return base.as_dicts(base.run_checks(checks(), ctx))
    finally:
        ctx.close()


def render(results):
    """Format result dicts as a table for people.

    :param results: what :func:`run` returns.
    """
    return base.render_table([
        (r['check'], base.Result(r['code'], r['detail'], r['hint']))
        for r in results])
