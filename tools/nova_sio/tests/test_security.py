# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Security: no secrets in logs, TLS verification, no shell commands.

* A session full of re-logins, expired tokens, failed logins and gateway
  errors is logged at DEBUG (every logger, urllib3 included); the log,
  every error text and the gateway's request log must not contain the
  password, any token minted during the session, or the HTTP Basic
  encoding of either.
* HTTPS with verification against the wrong CA (or the system store for
  a private CA) is refused before any request reaches the gateway, and
  never retried.
* An AST scan of the runtime package (and of the project's own tools)
  finds no ``shell=True``, no ``os.system``-like call and no command
  line built from strings.
"""

import ast
import base64
import glob
import logging
import os

import fixtures

from nova_sio.emulator import tls
from nova_sio import runtime
from nova_sio.tests import sio_base

client_mod = sio_base.client_mod
exception = sio_base.exception

PASSWORD = 'Pa55w0rd-never-logged'


def secret_forms(user, secret):
    """The ways ``secret`` could leak: itself and in HTTP Basic form."""
    raw = ('%s:%s' % (user, secret)).encode()
    return [secret, base64.b64encode(raw).decode().rstrip('=')]


class _SecretScanMixin(object):
    """Run a hostile session, then scan everything it wrote."""

    def record_tokens(self):
        minted = []
        original = self.emu.mint_token

        def mint(user):
            token = original(user)
            minted.append(token)
            return token
        self.emu.mint_token = mint
        return minted

    def hostile_session(self):
        emu = self.emu
        errors = []

        def attempt(func):
            try:
                func()
            except exception.SioError as exc:
                errors.append('%s %r %r' % (exc, exc, exc.kwargs))

        client = self.make_client(max_retries=2, token_refresh_interval=0)
        pool = client.get_pool_id('pd1', 'sp1')
        vol = client.create_volume('sec-1', 8, pool)
        sdc = self.sdc_id()
        client.map_volume(vol, sdc_id=sdc)
        emu.expire_tokens()
        client.get_volume(vol)
        emu.add_fault('unauthorized', path='Volume::', count=1)
        client.get_volume(vol)
        emu.add_fault('forbidden', path='Volume::', count=2)
        attempt(lambda: client.get_volume(vol))
        emu.add_fault('expire_token', path='Volume::', count=1)
        client.get_volume(vol)
        emu.add_fault('server_error', path='Volume::', count=1)
        client.get_volume(vol)
        emu.add_fault('reset', path='Volume::', count=1)
        client.get_volume(vol)
        emu.add_fault('unavailable', path='Volume::', count=5)
        attempt(lambda: client.get_volume(vol))
        attempt(lambda: client.create_volume('sec-1', 8, pool))
        attempt(lambda: client.get_volume('00000000deadbeef'))
        wrong = self.make_client(password='Wr0ng-' + PASSWORD)
        attempt(wrong.get_system_id)
        emu.add_fault('unauthorized', path='login', count=1)
        emu.expire_tokens()
        attempt(lambda: client.get_volume(vol))
        client.unmap_volume(vol, sdc_id=sdc)
        client.delete_volume(vol)
        client.close()
        return errors, ['Wr0ng-' + PASSWORD]

    def test_no_secret_anywhere(self):
        minted = self.record_tokens()
        logger = self.useFixture(fixtures.FakeLogger(
            level=logging.DEBUG, name=None,
            format='%(levelname)s %(name)s %(message)s'))
        errors, extra = self.hostile_session()
        user = self.emu_fixture.info['username']
        self.assertGreaterEqual(len(minted), 4)
        text = '\n'.join([logger.output] + errors)
        self.assertIn('Volume::', text)  # the scan looks at real output
        self.assertIn('AuthenticationFailed', text)
        log = repr(self.emu.request_log())
        leaks = []
        for secret in [PASSWORD] + extra + minted:
            for form in secret_forms(user, secret):
                if form in text:
                    leaks.append(('client log or errors', form[:6]))
                if form in log:
                    leaks.append(('gateway request log', form[:6]))
        self.assertEqual([], leaks)


class SecretsLegacyTest(_SecretScanMixin, sio_base.EmulatorTestCase):
    emulator_kwargs = {'password': PASSWORD, 'https': True,
                       'version': '3.6'}


class SecretsBearerTest(_SecretScanMixin, sio_base.EmulatorTestCase):
    emulator_kwargs = {'password': PASSWORD, 'https': True,
                       'version': '4.5'}


class TlsTest(sio_base.EmulatorTestCase):
    emulator_kwargs = {'https': True}

    def other_ca(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        return tls.make_ca(tmp, 'an unrelated CA')[0]

    def assert_refused(self, client):
        exc = self.assertRaises(exception.GatewayUnreachable,
                                client.get_system_id)
        self.assertIn('TLS', str(exc))
        self.assertEqual(0, client.stats['retries'])
        self.assertEqual(0, client.stats['logins'] - 1)
        self.assertEqual([], self.emu.request_log())

    def test_wrong_ca_from_configuration(self):
        from oslo_config import cfg
        conf = cfg.ConfigOpts()
        sio_base.conf_mod.register_opts(conf)
        conf([])
        info = self.emu_fixture.info
        for key, value in (('rest_server_ip', info['host']),
                           ('rest_server_port', info['port']),
                           ('rest_server_username', info['username']),
                           ('rest_server_password', info['password']),
                           ('protection_domain_name', 'pd1'),
                           ('storage_pool_name', 'sp1'),
                           ('server_certificate_path', self.other_ca()),
                           ('retry_interval', 0.0)):
            conf.set_override(key, value, 'scaleio')
        client = client_mod.Client.from_conf(conf)
        self.addCleanup(client.session.close)
        self.assertTrue(client.session.verify.endswith('.pem') or
                        os.path.isfile(client.session.verify))
        self.assert_refused(client)

    def test_wrong_ca_refused(self):
        self.assert_refused(self.make_client(verify=self.other_ca()))

    def test_private_ca_not_in_system_store(self):
        self.assert_refused(self.make_client(verify=True))

    def test_right_ca_accepted(self):
        client = self.make_client()
        self.assertTrue(client.get_system_id())
        self.assertNotEqual([], self.emu.request_log())


# -- static scan ----------------------------------------------------------

SHELL_CALLS = {('os', 'system'), ('os', 'popen'), ('subprocess', 'getoutput'),
               ('subprocess', 'getstatusoutput'), ('commands', 'getoutput'),
               ('commands', 'getstatusoutput'), ('os', 'execl'),
               ('os', 'execlp'), ('os', 'spawnl'), ('os', 'spawnlp'),
               ('pty', 'spawn')}
COMMAND_RUNNERS = ('Popen', 'call', 'run', 'check_call', 'check_output',
                   'execute', 'trycmd', 'ssh_execute')


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return tuple(reversed(parts))


def _is_list(node):
    if isinstance(node, (ast.List, ast.Tuple, ast.ListComp)):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_list(node.left) or _is_list(node.right)
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ('list', 'tuple', 'sorted'))


def _built_string(node):
    """Whether ``node`` builds a string at run time (format, +, join).

    ``[argv] + more`` concatenates argument lists and is fine.
    """
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return not _is_list(node)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ('format', 'join', 'replace')
    return False


def scan_source(text, filename='<string>'):
    """Return the shell risks in Python source ``text``.

    :returns: a list of ``'file:line: what'`` strings.
    """
    problems = []
    tree = ast.parse(text, filename)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        where = '%s:%d' % (filename, node.lineno)
        for kw in node.keywords:
            if kw.arg == 'shell' and not (
                    isinstance(kw.value, ast.Constant) and
                    kw.value.value is False):
                problems.append('%s: shell=%s' % (where,
                                                  ast.dump(kw.value)))
        name = _dotted(node.func)
        if name[-2:] in SHELL_CALLS:
            problems.append('%s: %s() runs a shell' % (where,
                                                       '.'.join(name)))
        if name and name[-1] in COMMAND_RUNNERS and node.args:
            first = node.args[0]
            if _built_string(first):
                problems.append('%s: %s() gets a command built from '
                                'strings' % (where, '.'.join(name)))
            if (isinstance(first, ast.Constant) and
                    isinstance(first.value, str) and ' ' in first.value
                    and len(node.args) == 1):
                problems.append('%s: %s() gets a whole command line'
                                % (where, '.'.join(name)))
    return problems


def _sources():
    root = runtime.checkout_root()
    runtime_files = sorted(glob.glob(os.path.join(
        root, 'nova', 'virt', 'libvirt', 'sio', '*.py')))
    tools_dir = os.path.join(root, 'tools', 'nova_sio')
    tool_files = [p for p in sorted(glob.glob(os.path.join(
        tools_dir, '**', '*.py'), recursive=True))
        if os.sep + 'tests' + os.sep not in p]
    return runtime_files, tool_files


class ShellScanTest(sio_base.TestCase):

    def test_scanner_catches_shell_risks(self):
        bad = '\n'.join([
            'import os, subprocess',
            'subprocess.call("drv_cfg --query_guid", shell=True)',
            'os.system("rm -rf %s" % path)',
            'subprocess.Popen("qemu-img info " + path)',
            'utils.execute("drv_cfg {}".format(flag))',
            'processutils.execute("drv_cfg --rescan")',
            'os.popen(cmd)',
        ])
        self.assertEqual(7, len(scan_source(bad)))

    def test_scanner_accepts_argument_lists(self):
        good = '\n'.join([
            'subprocess.Popen([path, flag], shell=False)',
            'processutils.execute(path, "--query_guid")',
            'utils.execute(*argv, run_as_root=True)',
        ])
        self.assertEqual([], scan_source(good))

    def test_runtime_package_builds_no_shell_command(self):
        runtime_files, _tools = _sources()
        self.assertIn('host.py', [os.path.basename(p)
                                  for p in runtime_files])
        problems = []
        for path in runtime_files:
            with open(path) as handle:
                problems += scan_source(handle.read(), path)
        self.assertEqual([], problems)

    def test_project_tools_build_no_shell_command(self):
        _runtime, tool_files = _sources()
        self.assertTrue(tool_files)
        problems = []
        for path in tool_files:
            with open(path) as handle:
                problems += scan_source(handle.read(), path)
        self.assertEqual([], problems)

    def test_drv_cfg_runs_without_a_shell(self):
        """A GUID with shell syntax stays one argument of drv_cfg."""
        host = sio_base.host_mod
        tmp = self.useFixture(fixtures.TempDir()).path
        marker = os.path.join(tmp, 'owned')
        script = os.path.join(tmp, 'drv_cfg')
        with open(script, 'w') as handle:
            handle.write('#!/bin/sh\necho "$#:$1"\n')
        os.chmod(script, 0o755)
        out, _err = host.default_execute(script, '; touch %s' % marker)
        self.assertEqual('1:; touch %s' % marker, out.strip())
        self.assertFalse(os.path.exists(marker))
