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

The real Nova configuration is read with oslo.config; the ``[scaleio]``
options come from the runtime package, so the doctor judges exactly what
nova-compute will see. Every check yields a result dict::

    {'check': 'gateway', 'status': 'pass' | 'fail' | 'warn' | 'skip',
     'detail': 'what was found', 'hint': 'how to fix it'}

A check whose prerequisite failed is skipped rather than failed again.
Nova API credentials (``--os-*`` or ``--os-cloud``) are optional; with
them the flavors are checked against the 8 GiB rule, and the pools their
``sio:*`` extra specs pick are inspected like the configured ones.

``pool layout`` reports, for the configured pool and ``[scaleio]
additional_pools``, whether zero padding is on (volumes in a pool without
it are refused unless ``allow_non_padded_volumes``, as Cinder's PowerFlex
driver does) and whether a Fine Granularity pool meets thick
provisioning (such volumes are created thin).
"""

import os
import socket

from oslo_config import cfg
import requests
import yaml

from nova_sio import errors
from nova_sio import runtime

DEFAULT_CONFIG = '/etc/nova/nova.conf'
GiB = 1024 ** 3
GRANULARITY_GB = 8
CLOUDS_YAML = ('clouds.yaml', '~/.config/openstack/clouds.yaml',
               '/etc/openstack/clouds.yaml')
_LABEL = {'pass': ' OK ', 'fail': 'FAIL', 'warn': 'WARN', 'skip': 'SKIP'}

SPEC_DOMAIN = 'sio:pd_name'
SPEC_POOL = 'sio:sp_name'
SPEC_PROVISIONING = 'sio:provisioning_type'
# Nova returns the extra specs with the flavors from 2.61 on.
FLAVOR_MICROVERSION = '2.61'

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


def add_arguments(parser):
    """Add the doctor's options to ``parser``."""
    env = os.environ.get
    parser.add_argument('--config-file', action='append', metavar='FILE',
                        help='a Nova configuration file; repeat for more '
                        '(default: %s)' % DEFAULT_CONFIG)
    parser.add_argument('--config-dir', action='append', metavar='DIR',
                        help='a directory of *.conf files, like Nova\'s '
                        '--config-dir')
    parser.add_argument('--nova-dir', metavar='DIR',
                        help='the Nova package directory, to check that '
                        'the sio backend is installed in it (default: '
                        'where --python imports nova from)')
    parser.add_argument('--python', metavar='PYTHON',
                        help='the interpreter Nova runs with (default: '
                        'python3 on PATH)')
    parser.add_argument('--os-cloud', default=env('OS_CLOUD'),
                        help='a cloud of clouds.yaml for the flavor check')
    parser.add_argument('--os-auth-url', default=env('OS_AUTH_URL'))
    parser.add_argument('--os-username', default=env('OS_USERNAME'))
    parser.add_argument('--os-password', default=env('OS_PASSWORD'))
    parser.add_argument('--os-project-name',
                        default=env('OS_PROJECT_NAME'))
    parser.add_argument('--os-user-domain-name',
                        default=env('OS_USER_DOMAIN_NAME') or 'Default')
    parser.add_argument('--os-project-domain-name',
                        default=env('OS_PROJECT_DOMAIN_NAME') or 'Default')
    parser.add_argument('--os-region-name', default=env('OS_REGION_NAME'))
    parser.add_argument('--os-interface',
                        default=env('OS_INTERFACE') or 'public')
    parser.add_argument('--os-cacert', default=env('OS_CACERT'),
                        help='CA bundle for the OpenStack APIs')


class Doctor(object):
    """Runs the checks in order and collects their results.

    :param args: the parsed command line.
    :param progress: ``callable(message)`` for progress lines.
    """

    def __init__(self, args, progress=None):
        self.args = args
        self.progress = progress or (lambda msg: None)
        self.results = []
        self.conf = None
        self.client = None
        self.failed = set()

    def add(self, check, status, detail, hint=None):
        self.results.append({'check': check, 'status': status,
                             'detail': detail, 'hint': hint})
        if status == 'fail':
            self.failed.add(check)

    def skip(self, check, because):
        self.add(check, 'skip', 'not checked: %s' % because)

    # -- configuration ---------------------------------------------------

    def load_config(self):
        files = self.args.config_file or [DEFAULT_CONFIG]
        argv = []
        for path in files:
            argv += ['--config-file', path]
        for path in self.args.config_dir or ():
            argv += ['--config-dir', path]
        conf = cfg.ConfigOpts()
        conf.register_opt(cfg.StrOpt('images_type', default='default'),
                          group='libvirt')
        runtime.load('conf').register_opts(conf)
        try:
            conf(argv, project='nova', default_config_files=[])
        except cfg.ConfigFilesNotFoundError as exc:
            self.add('config', 'fail', 'cannot read %s'
                     % ', '.join(exc.config_files),
                     'give the Nova configuration with --config-file')
            return False
        except (cfg.ConfigFileParseError, cfg.Error) as exc:
            self.add('config', 'fail', str(exc),
                     'fix the syntax of the configuration file')
            return False
        self.conf = conf
        self.add('config', 'pass', 'read %s' % ', '.join(
            list(files) + list(self.args.config_dir or ())))
        return True

    def value(self, group, name):
        """Return an option value, or raise ``ValueError`` if invalid."""
        try:
            return self.conf[group][name]
        except (cfg.ConfigFileValueError, ValueError) as exc:
            raise ValueError(str(exc))

    def check_images_type(self):
        try:
            value = self.value('libvirt', 'images_type')
        except ValueError as exc:
            value = 'invalid (%s)' % exc
        if value == 'sio':
            self.add('images_type', 'pass', '[libvirt] images_type = sio')
        else:
            self.add('images_type', 'fail',
                     '[libvirt] images_type is %s, not sio' % value,
                     'set [libvirt] images_type = sio (after "nova-sio '
                     'install"), then restart nova-compute')

    def check_options(self):
        sio_conf = runtime.load('conf')
        missing = False
        for name in sio_conf.REQUIRED:
            check = 'option %s' % name
            try:
                value = self.value('scaleio', name)
            except ValueError as exc:
                self.add(check, 'fail', str(exc), _HINTS.get(name))
                missing = True
                continue
            if not value:
                self.add(check, 'fail', '[scaleio] %s is not set' % name,
                         _HINTS.get(name))
                missing = True
                continue
            shown = '***' if 'password' in name else value
            self.add(check, 'pass', '[scaleio] %s = %s' % (name, shown))
        if missing:
            self.skip('option values', 'mandatory options are missing')
            return False
        exception = runtime.load('exception')
        try:
            sio_conf.validate(self.conf)
        except exception.InvalidConfig as exc:
            self.add('option values', 'fail', str(exc),
                     'correct that option in the [scaleio] section')
            return False
        except (cfg.ConfigFileValueError, ValueError) as exc:
            self.add('option values', 'fail', str(exc),
                     'correct that option in the [scaleio] section')
            return False
        self.add('option values', 'pass', 'the other [scaleio] options '
                 'are valid')
        return True

    # -- gateway ---------------------------------------------------------

    def _verify(self):
        group = self.conf.scaleio
        if not group.verify_server_certificate:
            return False
        return group.server_certificate_path or True

    def check_gateway(self):
        group = self.conf.scaleio
        host, port = group.rest_server_ip, group.rest_server_port
        self.progress('connecting to the gateway %s:%s' % (host, port))
        try:
            sock = socket.create_connection((host, port),
                                            timeout=group.connect_timeout)
            sock.close()
        except (OSError, socket.error) as exc:
            self.add('gateway', 'fail', 'cannot connect to %s port %s: %s'
                     % (host, port, exc),
                     'check [scaleio] rest_server_ip and rest_server_port '
                     'and that no firewall blocks this host')
            return False
        self.add('gateway', 'pass', 'TCP connection to %s port %s'
                 % (host, port))
        return True

    def check_tls(self):
        group = self.conf.scaleio
        url = '%s://%s:%s/api/version' % (group.rest_server_scheme,
                                          group.rest_server_ip,
                                          group.rest_server_port)
        session = requests.Session()
        session.trust_env = False
        try:
            if group.rest_server_scheme == 'http':
                session.get(url, timeout=(group.connect_timeout,
                                          group.read_timeout))
                self.add('tls', 'warn', 'plain http: the gateway password '
                         'crosses the network unencrypted',
                         'use rest_server_scheme = https outside test '
                         'setups')
                return True
            verify = self._verify()
            if verify is False:
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore')
                    session.get(url, verify=False,
                                timeout=(group.connect_timeout,
                                         group.read_timeout))
                self.add('tls', 'warn', 'https, but certificate '
                         'verification is off',
                         'set verify_server_certificate = True and '
                         'server_certificate_path to the gateway\'s CA')
                return True
            session.get(url, verify=verify, timeout=(
                group.connect_timeout, group.read_timeout))
        except requests.exceptions.SSLError as exc:
            self.add('tls', 'fail', 'TLS handshake failed: %s' % _short(exc),
                     'set [scaleio] server_certificate_path to the CA '
                     'bundle that signed the gateway certificate (or check '
                     'that the gateway speaks https on this port)')
            return False
        except requests.RequestException as exc:
            self.add('tls', 'fail', 'no HTTP answer: %s' % _short(exc),
                     'check rest_server_scheme: the gateway may need '
                     'https')
            return False
        finally:
            session.close()
        self.add('tls', 'pass', 'certificate verified with %s' % (
            verify if verify is not True else 'the system CA store'))
        return True

    def check_login(self):
        client_mod = runtime.load('client')
        exception = runtime.load('exception')
        group = self.conf.scaleio
        try:
            self.client = client_mod.Client.from_conf(self.conf,
                                                      max_retries=0)
            version = self.client.get_api_version()
        except (exception.AuthenticationFailed, exception.Forbidden):
            self._drop_client()
            self.add('credentials', 'fail', 'the gateway refused user %s'
                     % group.rest_server_username,
                     'check [scaleio] rest_server_username and '
                     'rest_server_password')
            return False
        except exception.SioError as exc:
            self._drop_client()
            self.add('credentials', 'fail', 'login failed: %s' % exc,
                     'check the gateway settings above')
            return False
        self.add('credentials', 'pass', 'logged in as %s (API %s)'
                 % (group.rest_server_username, version))
        return True

    def check_storage(self):
        exception = runtime.load('exception')
        group = self.conf.scaleio
        pd, sp = group.protection_domain_name, group.storage_pool_name
        try:
            pd_id = self.client.get_protection_domain_id(pd)
        except exception.ProtectionDomainNotFound:
            self.add('protection domain', 'fail', 'no protection domain '
                     '%r on the gateway' % pd,
                     'correct [scaleio] protection_domain_name (names are '
                     'case-sensitive)')
            self.skip('storage pool', 'no protection domain')
            self.skip('pool layout', 'no protection domain')
            return
        except exception.SioError as exc:
            self.add('protection domain', 'fail', str(exc))
            self.skip('storage pool', 'no protection domain')
            self.skip('pool layout', 'no protection domain')
            return
        self.add('protection domain', 'pass', '%s (id %s)' % (pd, pd_id))
        try:
            pool_id = self.client.get_pool_id(pd, sp)
        except exception.PoolNotFound:
            self.add('storage pool', 'fail', 'no storage pool %r in '
                     'protection domain %r' % (sp, pd),
                     'correct [scaleio] storage_pool_name')
            self.skip('pool layout', 'no storage pool')
            return
        except exception.SioError as exc:
            self.add('storage pool', 'fail', str(exc))
            self.skip('pool layout', 'no storage pool')
            return
        detail = '%s (id %s)' % (sp, pool_id)
        try:
            cap = self.client.pool_capacity(pool_id)
            detail += ', %d of %d GiB free' % (
                cap['free_bytes'] // GiB, cap['total_bytes'] // GiB)
        except (exception.SioError, KeyError, TypeError):
            pass
        self.add('storage pool', 'pass', detail)
        pools = [(pd, sp, None)]
        for entry in group.additional_pools or ():
            domain, _sep, pool = entry.partition(':')
            pools.append((domain.strip(), pool.strip(), None))
        self.check_pool_layout('pool layout', pools)

    def _layout_findings(self, pd, sp, thin):
        """Return ``(status, text)`` about one pool's layout.

        :param pd: protection domain name.
        :param sp: storage pool name.
        :param thin: the provisioning that meets the pool; None for
            ``[scaleio] provisioning_type``.
        """
        exception = runtime.load('exception')
        group = self.conf.scaleio
        if thin is None:
            thin = group.provisioning_type == 'thin'
        name = '%s:%s' % (pd, sp)
        try:
            props = self.client.pool_properties(
                self.client.get_pool_id(pd, sp))
        except exception.SioError as exc:
            return 'fail', '%s: %s' % (name, _short(exc))
        status, notes = 'pass', []
        if not props['zero_padding']:
            if group.allow_non_padded_volumes:
                status = 'warn'
                notes.append('zero padding off (allowed by [scaleio] '
                             'allow_non_padded_volumes: new volumes may '
                             'show old data)')
            else:
                status = 'fail'
                notes.append('zero padding off: volumes are refused')
        else:
            notes.append('zero padding on')
        if props['fine_granularity']:
            if not thin:
                status = 'fail' if status == 'fail' else 'warn'
                notes.append('Fine Granularity: thick volumes are '
                             'created thin')
            else:
                notes.append('Fine Granularity')
        else:
            notes.append('Medium Granularity')
        return status, '%s %s' % (name, ', '.join(notes))

    def check_pool_layout(self, check, pools):
        """Report zero padding and Fine Granularity of ``pools``.

        :param check: name of the result.
        :param pools: ``(domain, pool, thin or None)`` tuples.
        """
        worst, texts, seen = 'pass', [], set()
        rank = {'pass': 0, 'warn': 1, 'fail': 2}
        for entry in pools:
            if entry in seen:
                continue
            seen.add(entry)
            status, text = self._layout_findings(*entry)
            texts.append(text)
            if rank[status] > rank[worst]:
                worst = status
        hint = None
        if worst != 'pass':
            hint = ('enable zero padding on the pool (possible only while '
                    'it has no devices) or, accepting that tenants may '
                    'read old data, set [scaleio] allow_non_padded_volumes '
                    '= True; for Fine Granularity pools use thin '
                    'provisioning ([scaleio] provisioning_type or the '
                    'flavor\'s sio:provisioning_type)')
        self.add(check, worst, '; '.join(texts), hint)

    # -- host ------------------------------------------------------------

    def check_drv_cfg(self):
        host = runtime.load('host')
        override = self.conf.scaleio.drv_cfg_path
        if override:
            ok = os.path.isfile(override) and os.access(override, os.X_OK)
            found = [override] if ok else []
        else:
            found = host.find_drv_cfg()
        if not found:
            where = override or ', '.join(host.DRV_CFG_PATHS)
            self.add('drv_cfg', 'fail', 'no executable drv_cfg at %s'
                     % where,
                     'install the ScaleIO / PowerFlex SDC package on this '
                     'host, or set [scaleio] drv_cfg_path')
            return None
        self.add('drv_cfg', 'pass', found[0])
        return found[0]

    def check_sdc(self, drv_cfg):
        host = runtime.load('host')
        exception = runtime.load('exception')
        group = self.conf.scaleio
        try:
            guid = host.get_sdc_guid(group.default_sdcguid,
                                     group.drv_cfg_path)
        except exception.SioError as exc:
            self.add('sdc guid', 'fail', 'no SDC GUID: %s' % exc,
                     'set [scaleio] default_sdcguid, or make "drv_cfg '
                     '--query_guid" work')
            self.skip('sdc registered', 'no SDC GUID')
            return
        origin = 'default_sdcguid' if group.default_sdcguid else \
            'drv_cfg --query_guid'
        if group.default_sdcguid and drv_cfg:
            try:
                local = host.get_sdc_guid(None, group.drv_cfg_path)
                if local.upper() != guid.upper():
                    self.add('sdc guid', 'warn', 'default_sdcguid %s '
                             'differs from this host\'s SDC %s'
                             % (guid, local),
                             'remove default_sdcguid or set it to %s'
                             % local)
            except exception.SioError:
                pass
        if self.client is None:
            self.skip('sdc registered', 'no gateway login')
            return
        try:
            sdc_id = self.client.get_sdc_id(guid)
        except exception.SdcNotFound:
            self.add('sdc registered', 'fail', 'the gateway knows no SDC '
                     'with GUID %s (from %s)' % (guid, origin),
                     'check that the SDC of this host is connected to '
                     'the MDM ("drv_cfg --query_mdms") and that '
                     'default_sdcguid, if set, is this host\'s GUID')
            return
        except exception.SioError as exc:
            self.add('sdc registered', 'fail', str(exc))
            return
        self.add('sdc registered', 'pass', 'GUID %s (from %s) is SDC %s'
                 % (guid, origin, sdc_id))

    def check_device_root(self):
        root = self.conf.scaleio.device_root
        if os.path.isdir(root):
            self.add('device directory', 'pass', root)
        else:
            self.add('device directory', 'fail', '%s does not exist'
                     % root,
                     'the SDC driver (scini) creates the by-id links; '
                     'load it, or set [scaleio] device_root')

    # -- flavors ---------------------------------------------------------

    def _credentials(self):
        a = self.args
        creds = {'auth_url': a.os_auth_url, 'username': a.os_username,
                 'password': a.os_password,
                 'project_name': a.os_project_name,
                 'user_domain_name': a.os_user_domain_name,
                 'project_domain_name': a.os_project_domain_name,
                 'region_name': a.os_region_name,
                 'interface': a.os_interface, 'cacert': a.os_cacert}
        if a.os_cloud:
            cloud = _cloud(a.os_cloud)
            auth = cloud.get('auth', {})
            for key in ('auth_url', 'username', 'password', 'project_name',
                        'user_domain_name', 'project_domain_name'):
                if auth.get(key):
                    creds[key] = auth[key]
            for key in ('region_name', 'interface', 'cacert'):
                if cloud.get(key):
                    creds[key] = cloud[key]
        return creds

    def check_flavors(self):
        try:
            creds = self._credentials()
        except ValueError as exc:
            self.add('flavors', 'fail', str(exc),
                     'check --os-cloud and clouds.yaml')
            return
        if not (creds['auth_url'] and creds['username'] and
                creds['password']):
            self.skip('flavors', 'no Nova API credentials; give --os-cloud '
                      'or --os-auth-url/--os-username/--os-password')
            return
        self.progress('reading flavors from the compute API')
        try:
            flavors = list_flavors(creds)
        except (requests.RequestException, ValueError, KeyError) as exc:
            self.add('flavors', 'fail', 'cannot list flavors: %s'
                     % _short(exc), 'check the --os-* credentials')
            return
        round_up = self.conf.scaleio.round_volume_capacity
        self._check_flavor_pools(flavors)
        bad = []
        for flavor in flavors:
            problems = flavor_problems(flavor)
            if problems:
                bad.append('%s (%s)' % (flavor.get('name'),
                                        ', '.join(problems)))
        if not bad:
            self.add('flavors', 'pass', 'all %d flavors use multiples of '
                     '8 GiB' % len(flavors))
        elif round_up:
            self.add('flavors', 'warn', 'disks of these flavors are '
                     'rounded up to 8 GiB multiples: %s' % '; '.join(bad),
                     'the extra space is allocated but unused; prefer '
                     'flavors with multiples of 8 GiB')
        else:
            self.add('flavors', 'fail', 'these flavors break the 8 GiB '
                     'rule and cannot boot on sio: %s' % '; '.join(bad),
                     'use disk, ephemeral and swap sizes that are '
                     'multiples of 8 GiB, or set [scaleio] '
                     'round_volume_capacity = True')

    def _check_flavor_pools(self, flavors):
        """Inspect the pools picked by the flavors' ``sio:*`` specs."""
        group = self.conf.scaleio
        pools = []
        for flavor in flavors:
            specs = flavor.get('extra_specs') or {}
            if not any(k in specs for k in (SPEC_DOMAIN, SPEC_POOL,
                                            SPEC_PROVISIONING)):
                continue
            wanted = (specs.get(SPEC_PROVISIONING) or '').strip().lower()
            thin = {'thin': True, 'thinprovisioned': True, 'thick': False,
                    'thickprovisioned': False}.get(wanted)
            pools.append((specs.get(SPEC_DOMAIN) or
                          group.protection_domain_name,
                          specs.get(SPEC_POOL) or group.storage_pool_name,
                          thin))
        if not pools:
            return
        if self.client is None:
            self.skip('flavor pools', 'no gateway login')
            return
        self.check_pool_layout('flavor pools', pools)

    # -- the Nova tree ---------------------------------------------------

    def check_backend(self):
        """Is the backend installed where nova-compute imports Nova?

        Also reports the package-upgrade hooks of a tree that belongs to
        a distribution package.
        """
        # Imported here: the doctor's configuration checks must not
        # depend on the install machinery.
        from nova_sio import operator_hooks
        from nova_sio import operator_tree
        try:
            configured = self.value('libvirt', 'images_type') == 'sio'
        except ValueError:
            configured = False
        try:
            tree = operator_tree.locate(getattr(self.args, 'nova_dir', None),
                                        getattr(self.args, 'python', None))
        except errors.NovaSioError as exc:
            self.skip('nova backend', 'no Nova package found (%s)' % exc)
            self.skip('upgrade hook', 'no Nova package found')
            return
        status, detail = operator_hooks.backend_state(tree)
        if status == 'intact':
            self.add('nova backend', 'pass',
                     '%s in %s' % (detail, tree.nova_dir))
        elif configured:
            message = operator_hooks.guard(tree)[1]
            self.add('nova backend', 'fail',
                     'configured for sio but the backend is missing from '
                     '%s: %s' % (tree.nova_dir, detail),
                     message.split('To fix: ', 1)[-1])
        else:
            self.add('nova backend', 'pass' if status == 'absent' else
                     'warn', '%s (images_type is not sio)' % detail)
        if status == 'absent':
            self.skip('upgrade hook', 'nova-sio is not installed')
            return
        owner = operator_tree.package_owner(tree)
        if owner is None:
            self.skip('upgrade hook', '%s belongs to no distribution '
                      'package' % tree.nova_dir)
            return
        hooks = operator_hooks.hook_state(tree, owner)
        missing = sorted(p for p, present in hooks.items() if not present)
        if missing:
            self.add('upgrade hook', 'warn',
                     'the tree belongs to %s but %s missing' % (
                         operator_tree.describe_owner(owner),
                         ', '.join(missing)),
                     'a package upgrade would remove the backend '
                     'unnoticed; run "nova-sio revert" and "nova-sio '
                     'install" without --no-hooks')
        else:
            self.add('upgrade hook', 'pass', '%s: %s' % (
                operator_tree.describe_owner(owner),
                ', '.join(sorted(hooks))))

    # -- driver ----------------------------------------------------------

    def run(self):
        if not self.load_config():
            return self.results
        self.check_images_type()
        self.check_backend()
        options_ok = self.check_options()
        if options_ok and self.check_gateway():
            if self.check_tls():
                if self.check_login():
                    self.check_storage()
                else:
                    self.skip('protection domain', 'no gateway login')
                    self.skip('storage pool', 'no gateway login')
                    self.skip('pool layout', 'no gateway login')
            else:
                for name in ('credentials', 'protection domain',
                             'storage pool', 'pool layout'):
                    self.skip(name, 'TLS failed')
        else:
            why = 'options are missing or invalid' if not options_ok else \
                'the gateway is unreachable'
            names = ['tls', 'credentials', 'protection domain',
                     'storage pool', 'pool layout']
            if not options_ok:
                names.insert(0, 'gateway')
            for name in names:
                self.skip(name, why)
        drv_cfg = self.check_drv_cfg()
        self.check_sdc(drv_cfg)
        self.check_device_root()
        self.check_flavors()
        self._drop_client()
        return self.results

    def _drop_client(self):
        """Log out (best effort) and forget the client."""
        if self.client is not None:
            try:
                self.client.close()
            except Exception:  # nothing to do about a failed logout
                pass
            self.client = None


def _short(exc):
    text = str(exc)
    return text if len(text) < 300 else text[:297] + '...'


def _cloud(name):
    """Return the entry ``name`` of the first clouds.yaml found."""
    for path in CLOUDS_YAML:
        path = os.path.expanduser(path)
        if os.path.isfile(path):
            with open(path) as f:
                data = yaml.safe_load(f) or {}
            clouds = data.get('clouds') or {}
            if name in clouds:
                return clouds[name]
    raise ValueError('cloud %r not found in %s' % (name,
                                                   ', '.join(CLOUDS_YAML)))


def list_flavors(creds, timeout=30):
    """Return every flavor visible to the credentials (Keystone v3).

    :param creds: dict with ``auth_url``, ``username``, ``password``,
        ``project_name``, domain names, ``region_name``, ``interface``,
        ``cacert``.
    :returns: the flavor dicts of ``GET /flavors/detail``.
    """
    verify = creds.get('cacert') or True
    session = requests.Session()
    session.trust_env = False
    try:
        url = creds['auth_url'].rstrip('/')
        if not url.endswith('/v3'):
            url += '/v3'
        body = {'auth': {
            'identity': {'methods': ['password'], 'password': {'user': {
                'name': creds['username'], 'password': creds['password'],
                'domain': {'name': creds['user_domain_name']}}}},
        }}
        if creds.get('project_name'):
            body['auth']['scope'] = {'project': {
                'name': creds['project_name'],
                'domain': {'name': creds['project_domain_name']}}}
        resp = session.post(url + '/auth/tokens', json=body,
                            verify=verify, timeout=timeout)
        resp.raise_for_status()
        token = resp.headers['X-Subject-Token']
        endpoint = None
        for service in resp.json()['token'].get('catalog', []):
            if service.get('type') != 'compute':
                continue
            for ep in service.get('endpoints', []):
                if ep.get('interface') != creds.get('interface', 'public'):
                    continue
                region = creds.get('region_name')
                if region and ep.get('region') != region and \
                        ep.get('region_id') != region:
                    continue
                endpoint = ep['url']
                break
        if not endpoint:
            raise ValueError('no compute endpoint in the service catalog')
        flavors = []
        next_url = endpoint.rstrip('/') + '/flavors/detail?is_public=None'
        headers = {'X-Auth-Token': token, 'Accept': 'application/json',
                   'OpenStack-API-Version': 'compute %s'
                   % FLAVOR_MICROVERSION,
                   'X-OpenStack-Nova-API-Version': FLAVOR_MICROVERSION}
        while next_url:
            resp = session.get(next_url, verify=verify, timeout=timeout,
                               headers=headers)
            if resp.status_code == 406 and 'X-OpenStack-Nova-API-' \
                    'Version' in headers:
                # Older than 2.61: no extra specs in the list.
                for key in ('OpenStack-API-Version',
                            'X-OpenStack-Nova-API-Version'):
                    headers.pop(key)
                continue
            resp.raise_for_status()
            data = resp.json()
            flavors.extend(data.get('flavors', []))
            next_url = None
            for link in data.get('flavors_links', []):
                if link.get('rel') == 'next':
                    next_url = link.get('href')
        return flavors
    finally:
        session.close()


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


def run(args, progress=None):
    """Run every check; return the list of result dicts."""
    return Doctor(args, progress).run()


def render(results):
    """Format results as lines for people."""
    lines = []
    width = max([len(r['check']) for r in results] + [10])
    for r in results:
        lines.append('[%s] %-*s %s' % (_LABEL[r['status']], width,
                                       r['check'], r['detail']))
        if r['hint'] and r['status'] in ('fail', 'warn'):
            lines.append('       %-*s fix: %s' % (width, '', r['hint']))
    counts = dict((s, sum(1 for r in results if r['status'] == s))
                  for s in _LABEL)
    lines.append('%d passed, %d failed, %d warnings, %d skipped' % (
        counts['pass'], counts['fail'], counts['warn'], counts['skip']))
    return '\n'.join(lines)
