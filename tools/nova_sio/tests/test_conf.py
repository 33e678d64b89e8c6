# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The [scaleio] options: defaults, generator hook and validation."""

import os

import fixtures
from oslo_config import cfg
from oslo_config import fixture as config_fixture

from nova_sio.tests import sio_base

conf_mod = sio_base.conf_mod
client_mod = sio_base.client_mod
exception = sio_base.exception

VALID = dict(rest_server_ip='192.0.2.10', rest_server_username='admin',
             rest_server_password='s3cret', protection_domain_name='pd1',
             storage_pool_name='sp1', group='scaleio')


class ConfTest(sio_base.TestCase):

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()
        conf_mod.register_opts(self.conf)
        self.fixture = self.useFixture(config_fixture.Config(self.conf))
        self.conf([])

    def valid(self, **extra):
        values = dict(VALID)
        values.update(extra)
        self.fixture.config(**values)

    def test_defaults(self):
        group = self.conf.scaleio
        self.assertEqual(443, group.rest_server_port)
        self.assertEqual('https', group.rest_server_scheme)
        self.assertEqual('thick', group.provisioning_type)
        self.assertTrue(group.verify_server_certificate)
        self.assertFalse(group.round_volume_capacity)
        self.assertFalse(group.zero_copy_boot)
        self.assertFalse(group.allow_non_padded_volumes)
        self.assertEqual('/dev/disk/by-id', group.device_root)
        self.assertIsNone(group.default_sdcguid)

    def test_list_opts(self):
        [(group, opts)] = conf_mod.list_opts()
        self.assertEqual('scaleio', group.name)
        names = set(o.name for o in opts)
        for name in ('rest_server_ip', 'rest_server_port',
                     'rest_server_username', 'rest_server_password',
                     'protection_domain_name', 'storage_pool_name',
                     'default_sdcguid', 'provisioning_type',
                     'verify_server_certificate', 'server_certificate_path',
                     'connect_timeout', 'read_timeout', 'max_retries',
                     'round_volume_capacity', 'device_root',
                     'device_wait_timeout', 'drv_cfg_path',
                     'volume_name_prefix', 'zero_copy_boot',
                     'allow_non_padded_volumes'):
            self.assertIn(name, names)
        secret = [o.name for o in opts if o.secret]
        self.assertEqual(['rest_server_password'], secret)

    def test_provisioning_choices(self):
        self.assertRaises(ValueError, self.fixture.config,
                          provisioning_type='ThickProvisioned',
                          group='scaleio')

    def test_valid(self):
        self.valid()
        self.assertIsNone(conf_mod.validate(self.conf))

    def test_each_required_option_is_named(self):
        for name in conf_mod.REQUIRED:
            self.valid(**{name: None})
            exc = self.assertRaises(exception.InvalidConfig,
                                    conf_mod.validate, self.conf)
            self.assertIn('[scaleio] %s' % name, str(exc))
            self.assertIsInstance(exc, ValueError)
            self.conf.clear_override(name, group='scaleio')

    def test_bad_values_are_named(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        cases = [
            ('rest_server_port', 0),
            ('rest_server_port', 70000),
            ('read_timeout', 0),
            ('max_retries', -1),
            ('server_certificate_path', 'relative/ca.pem'),
            ('server_certificate_path', os.path.join(tmp, 'missing.pem')),
            ('default_sdcguid', 'xyz'),
            ('volume_name_prefix', 'toolong'),
            ('drv_cfg_path', 'bin/drv_cfg'),
            ('device_root', 'dev/disk'),
        ]
        for name, value in cases:
            self.valid(**{name: value})
            exc = self.assertRaises(exception.InvalidConfig,
                                    conf_mod.validate, self.conf)
            self.assertIn(name, str(exc))
            self.conf.clear_override(name, group='scaleio')

    def test_password_never_in_validation_errors(self):
        self.valid(rest_server_port=0)
        exc = self.assertRaises(exception.InvalidConfig, conf_mod.validate,
                                self.conf)
        self.assertNotIn('s3cret', str(exc))

    def test_client_from_conf(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        ca = os.path.join(tmp, 'ca.pem')
        open(ca, 'w').close()
        self.valid(server_certificate_path=ca, rest_server_port=8443,
                   read_timeout=7, max_retries=5)
        client = client_mod.Client.from_conf(self.conf)
        self.assertEqual('https://192.0.2.10:8443', client.url)
        self.assertEqual(ca, client.session.verify)
        self.assertEqual((10.0, 7.0), client.timeout)
        self.assertEqual(5, client.max_retries)
        self.assertNotIn('s3cret', repr(client))
        self.assertFalse(client.allow_non_padded_volumes)
        self.valid(verify_server_certificate=False,
                   server_certificate_path=ca, allow_non_padded_volumes=True)
        client = client_mod.Client.from_conf(self.conf)
        self.assertIs(False, client.session.verify)
        self.assertTrue(client.allow_non_padded_volumes)

    def test_from_conf_validates(self):
        self.valid(rest_server_ip=None)
        self.assertRaises(exception.InvalidConfig,
                          client_mod.Client.from_conf, self.conf)
