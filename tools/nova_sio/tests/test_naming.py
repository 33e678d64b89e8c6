# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Volume names and size helpers of the runtime package."""

from urllib.parse import quote
import uuid

from hypothesis import given
from hypothesis import strategies as st

from nova_sio.tests import sio_base

naming = sio_base.naming
exception = sio_base.exception
GiB = sio_base.GiB

DISKS = ['disk', 'disk.local', 'disk.swap', 'disk.config', 'disk.rescue',
         'disk.config.rescue', 'disk.eph0', 'disk.eph9', 'disk.eph10',
         'disk.eph99']
UUID = 'b0a27182-2220-491a-a1b5-7cd737348167'


class VolumeNameTest(sio_base.TestCase):

    def test_round_trip_every_disk_prefix_and_kind(self):
        seen = set()
        for disk in DISKS:
            for prefix in ('', 'c1', 'ABCD'):
                for kind in ('', 'snapshot', 'temporary'):
                    name = naming.volume_name(UUID, disk, prefix, kind)
                    self.assertLessEqual(len(name), 31)
                    self.assertEqual(
                        (UUID, disk, prefix, kind),
                        naming.parse_volume_name_full(name))
                    self.assertEqual((UUID, disk),
                                     naming.parse_volume_name(name))
                    seen.add(name)
        self.assertEqual(len(DISKS) * 3 * 3, len(seen))

    def test_longest_name_is_exactly_31(self):
        name = naming.volume_name(UUID, 'disk.eph99', 'ABCD', 'snapshot')
        self.assertEqual(31, len(name))

    def test_names_need_no_url_quoting(self):
        # An all-ones UUID gives '/' and '+' in cinder's standard base64.
        name = naming.volume_name('ffffffff-ffff-ffff-ffff-ffffffffffff',
                                  'disk', 'zz')
        self.assertEqual(name, quote(name, ''))
        self.assertNotIn(' ', name)

    def test_uuid_spelling_does_not_matter(self):
        plain = naming.volume_name(UUID, 'disk')
        self.assertEqual(plain, naming.volume_name(UUID.upper(), 'disk'))
        self.assertEqual(plain, naming.volume_name(UUID.replace('-', ''),
                                                   'disk'))

    def test_prefix_separates_clouds(self):
        self.assertNotEqual(naming.volume_name(UUID, 'disk', 'a'),
                            naming.volume_name(UUID, 'disk', 'b'))
        self.assertNotEqual(naming.volume_name(UUID, 'disk', ''),
                            naming.volume_name(UUID, 'disk', 'a'))

    def test_kinds_of_one_disk_differ(self):
        names = set(naming.volume_name(UUID, 'disk', kind=k)
                    for k in ('', 'snapshot', 'temporary'))
        self.assertEqual(3, len(names))

    def test_bad_inputs(self):
        for disk in ('disk.eph100', 'disk.foo', 'root', '', None):
            self.assertRaises(exception.InvalidName, naming.volume_name,
                              UUID, disk)
        for prefix in ('ABCDE', 'a-b', 'a b'):
            exc = self.assertRaises(exception.InvalidName,
                                    naming.volume_name, UUID, 'disk', prefix)
            self.assertIn(prefix, str(exc))
        self.assertRaises(exception.InvalidName, naming.volume_name,
                          'not-a-uuid', 'disk')
        self.assertRaises(exception.InvalidName, naming.volume_name,
                          UUID, 'disk', kind='backup')

    def test_parse_rejects_foreign_names(self):
        for name in ('sKJxgiIgSRqhtXzXNzSBZw==', 'vol1', '', None,
                     naming.volume_name(UUID, 'disk') + 'x',
                     'ABCDE' + naming.volume_name(UUID, 'disk')):
            self.assertRaises(exception.InvalidName,
                              naming.parse_volume_name, name)

    @given(st.uuids(), st.sampled_from(DISKS),
           st.from_regex(r'\A[A-Za-z0-9]{0,4}\Z'),
           st.sampled_from(['', 'snapshot', 'temporary']))
    def test_round_trip_property(self, instance, disk, prefix, kind):
        name = naming.volume_name(str(instance), disk, prefix, kind)
        self.assertLessEqual(len(name), 31)
        self.assertEqual((str(instance), disk, prefix, kind),
                         naming.parse_volume_name_full(name))

    def test_distinct_instances_distinct_names(self):
        names = set(naming.volume_name(str(uuid.uuid4()), 'disk')
                    for _ in range(500))
        self.assertEqual(500, len(names))


class SizeTest(sio_base.TestCase):

    def test_multiples_pass_unchanged(self):
        for gib in (8, 16, 80, 1024):
            self.assertEqual(gib * GiB, naming.check_size('disk', gib * GiB))

    def test_non_multiple_names_disk_and_sizes(self):
        exc = self.assertRaises(exception.InvalidSize, naming.check_size,
                                'disk.eph0', 10 * GiB)
        text = str(exc)
        self.assertIn('disk.eph0', text)
        self.assertIn(str(10 * GiB), text)
        self.assertIn(str(16 * GiB), text)
        self.assertIn('round_volume_capacity', text)
        self.assertIsInstance(exc, ValueError)

    def test_round_up(self):
        self.assertEqual(8 * GiB, naming.check_size('disk', 1, True))
        self.assertEqual(16 * GiB,
                         naming.check_size('disk', 8 * GiB + 1, True))
        self.assertEqual(16 * GiB, naming.check_size('disk', 16 * GiB, True))

    def test_non_positive_sizes(self):
        for size in (0, -8 * GiB, None, 'x'):
            for round_up in (False, True):
                exc = self.assertRaises(exception.InvalidSize,
                                        naming.check_size, 'disk.swap',
                                        size, round_up)
                self.assertIn('disk.swap', str(exc))

    def test_size_in_gb(self):
        self.assertEqual(24, naming.size_in_gb(24 * GiB))
