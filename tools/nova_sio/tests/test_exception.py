# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Gateway error answers to typed exceptions; the runtime loader."""

import os
import sys

import fixtures

from nova_sio import runtime
from nova_sio.tests import sio_base

exception = sio_base.exception


class FromGatewayTest(sio_base.TestCase):

    def classify(self, status, code, message, details=None, **ctx):
        ctx.setdefault('volume', 'v1')
        return exception.from_gateway(status, code, message, details, **ctx)

    def test_codes_of_3x_and_4x(self):
        cases = [
            (79, 'Could not find the volume', exception.VolumeNotFound),
            (78, 'whatever 1.3x said', exception.VolumeNotFound),
            (80, 'Could not find the SDC', exception.SdcNotFound),
            (81, 'x', exception.AlreadyMapped),
            (4037, 'x', exception.AlreadyMapped),
            (84, 'x', exception.NotMapped),
            (4039, 'x', exception.NotMapped),
            (99, 'x', exception.NameInUse),
            (104, 'x', exception.VolumeMapped),
            (67, 'x', exception.InsufficientResources),
            (300, 'x', exception.CapacityExceeded),
            (133, 'x', exception.InvalidSize),
            (225, 'x', exception.InvalidSize),
            (226, 'x', exception.InvalidName),
            (306, 'x', exception.MultipleMappingsRefused),
            (12345, 'Something new', exception.GatewayError),
        ]
        for code, message, cls in cases:
            exc = self.classify(500, code, message, sdc='s1')
            self.assertIs(cls, type(exc), code)
            self.assertEqual(code, exc.error_code)
            self.assertEqual(500, exc.http_status)

    def test_unknown_4x_codes_match_on_text(self):
        cases = [
            ('The volume is already mapped to this SDC',
             exception.AlreadyMapped),
            ('The volume is not mapped to SDC', exception.NotMapped),
            ('Volume name already in use. Please use a different name.',
             exception.NameInUse),
            ('Insufficient resources', exception.InsufficientResources),
            ('Requested volume size exceeds the volume allocation limit',
             exception.CapacityExceeded),
            ('Volume capacity can only be increased', exception.InvalidSize),
            ('A volume removal operation is currently in progress',
             exception.VolumeRemovalInProgress),
        ]
        for message, cls in cases:
            self.assertIs(cls, type(self.classify(500, 9999, message)),
                          message)

    def test_error_with_details(self):
        exc = self.classify(500, 0, 'Error with details', [
            {'rc': 182, 'error': 'TOO_MANY_SNAPS_IN_VTREE',
             'errorMessage': 'There are too many snapshots in the VTree'}])
        self.assertIsInstance(exc, exception.VTreeLimitReached)
        self.assertIn('v1', str(exc))

    def test_not_found_uses_caller_class(self):
        exc = self.classify(500, 3, 'Not found',
                            not_found=exception.PoolNotFound, pool='sp9',
                            domain='pd9')
        self.assertIsInstance(exc, exception.PoolNotFound)
        self.assertIn('sp9', str(exc))
        self.assertIsInstance(exc, exception.NotFound)
        exc = exception.from_gateway(500, 3, 'Not found')
        self.assertIs(exception.NotFound, type(exc))

    def test_status_only(self):
        self.assertIsInstance(exception.from_gateway(401, None, '401'),
                              exception.AuthenticationFailed)
        self.assertIsInstance(exception.from_gateway(403, None, '403'),
                              exception.Forbidden)
        exc = exception.from_gateway(502, None, '502 Bad Gateway',
                                     method='GET', path='/api/x')
        self.assertIs(exception.GatewayError, type(exc))
        self.assertIn('502', str(exc))
        self.assertIn('/api/x', str(exc))

    def test_templates_never_raise(self):
        exc = exception.VolumeNotFound()
        self.assertIn('VolumeNotFound', repr(exc))
        self.assertIn('%(volume)s', str(exc))
        exc = exception.InvalidConfig(option='rest_server_ip', reason='x')
        self.assertEqual('Invalid value for option [scaleio] '
                         'rest_server_ip: x', str(exc))
        self.assertIsInstance(exc, ValueError)
        self.assertEqual('plain', str(exception.SioError('plain')))

    def test_unsafe_pool_names_pool_and_option(self):
        text = str(exception.UnsafePool(pool='0123456789abcdef',
                                        volume='vol1'))
        self.assertIn('0123456789abcdef', text)
        self.assertIn('zero padding disabled', text)
        self.assertIn('allow_non_padded_volumes', text)
        self.assertIsInstance(exception.UnsafePool(pool='p', volume='v'),
                              exception.SioError)

    def test_every_class_has_one_root(self):
        for name in dir(exception):
            obj = getattr(exception, name)
            if isinstance(obj, type) and issubclass(obj, Exception):
                self.assertTrue(issubclass(obj, exception.SioError), name)


class RuntimeLoaderTest(sio_base.TestCase):

    def test_modules_share_one_package(self):
        client = runtime.load('client')
        self.assertIs(sys.modules['nova_sio_runtime.client'], client)
        self.assertIs(client.exception, runtime.load('exception'))
        self.assertTrue(os.path.isfile(os.path.join(
            runtime.package_dir(), 'client.py')))

    def test_root_from_environment(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable('NOVA_SIO_ROOT', tmp))
        self.assertEqual(tmp, runtime.checkout_root())

    def test_runtime_imports_nothing_from_nova(self):
        for name in ('client', 'conf', 'exception', 'host', 'naming'):
            with open(os.path.join(runtime.package_dir(),
                                   name + '.py')) as handle:
                text = handle.read()
            self.assertNotIn('import nova', text)
            self.assertNotIn('from nova', text)
            self.assertNotIn('import six', text)
            self.assertIn('from __future__ import absolute_import', text)
