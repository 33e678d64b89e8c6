# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The era profiles of the real cloud and what the control plane takes
from them (no cloud is started)."""

import os

import fixtures
from oslotest import base

from nova_sio.e2e import controlplane
from nova_sio.e2e import eras


class TestProfiles(base.BaseTestCase):

    def test_every_release_of_a_profile_maps_to_it(self):
        self.assertEqual('2025.2-', eras.profile_for('34.0.0').name)
        self.assertEqual('2025.2-', eras.profile_for('33.0.0').name)
        self.assertEqual('stein-2025.1', eras.profile_for('32.1.0').name)
        self.assertEqual('stein-2025.1', eras.profile_for('25.3.0').name)
        self.assertEqual('stein-2025.1', eras.profile_for('19.0.0').name)
        self.assertEqual('ocata-rocky', eras.profile_for('18.3.0').name)
        self.assertEqual('kilo', eras.profile_for('2015.1.2').name)
        self.assertEqual(eras.KILO_MAJOR, eras.major_of('2015.1.4'))

    def test_releases_without_a_profile_are_named(self):
        exc = self.assertRaises(eras.EraError, eras.profile_for, '10.0.0')
        self.assertIn('major 10', exc.message)

    def test_every_release_of_the_era_map_has_a_profile(self):
        from nova_sio import releases as rel_mod
        for version in ('2015.1.0', '12.0.6', '13.1.4', '14.1.0',
                        '19.3.2', '28.3.1', '34.0.0'):
            self.assertIsNotNone(eras.profile_for(version), version)
        self.assertEqual('kilo', rel_mod.series_of('2015.1.2'))

    def test_summary_names_the_era(self):
        self.assertEqual('stein-2025.1 (yoga, Python 3.9, WSGI scripts)',
                         eras.summary('25.3.0'))

    def test_profiles_do_not_overlap(self):
        seen = {}
        for profile in eras.PROFILES:
            last = profile.last_major or 99
            for major in range(profile.first_major, last + 1):
                self.assertNotIn(major, seen, profile.name)
                seen[major] = profile.name

    def test_newest_era_keeps_the_wsgi_modules(self):
        profile = eras.profile_for(controlplane.DEFAULT_VERSION)
        self.assertEqual(controlplane.WSGI_APPS, dict(profile.wsgi))
        self.assertFalse(any(t.endswith('()')
                             for t in profile.wsgi.values()))

    def test_stein_to_2025_1_serves_pbr_wsgi_scripts(self):
        profile = eras.check_runnable('25.3.0', 'server')
        self.assertEqual(set(eras.WSGI_MODULES), set(profile.wsgi))
        self.assertEqual('script:nova-api-wsgi',
                         profile.wsgi_target('nova-api'))
        self.assertEqual('script:keystone-wsgi-public',
                         profile.wsgi_target('keystone'))
        self.assertRaises(eras.EraError, profile.wsgi_target, 'cinder')

    def test_eras_that_cannot_run_say_why(self):
        exc = self.assertRaises(eras.EraError, eras.check_runnable,
                                '2015.1.2')
        self.assertIn('2015.1.2', exc.message)
        self.assertIn('Keystone, Glance and Neutron 2015.1', exc.message)
        exc = self.assertRaises(eras.EraError, eras.check_runnable,
                                '18.3.0')
        self.assertIn('nova-placement-api', exc.message)

    def test_a_stub_only_era_refuses_the_neutron_server(self):
        profile = eras.EraProfile('x', 40, 41, eras.WSGI_MODULES,
                                  neutron='stub')
        self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.eras.PROFILES', (profile,)))
        exc = self.assertRaises(eras.EraError, eras.check_runnable,
                                '40.0.0', 'server')
        self.assertIn('--neutron stub', exc.message)
        self.assertIs(profile, eras.check_runnable('40.0.0', 'stub'))

    def test_a_malformed_wsgi_target_is_refused(self):
        profile = eras.EraProfile('x', 40, 41, {'nova-api': 'nova.wsgi'})
        self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.eras.PROFILES', (profile,)))
        exc = self.assertRaises(eras.EraError, eras.check_runnable,
                                '40.0.0')
        self.assertIn("'nova.wsgi'", exc.message)

    def test_table(self):
        lines = eras.table(['34.0.0', '25.3.0', '2015.1.2'])
        self.assertEqual(['version', 'series', 'python', 'era', 'wsgi',
                          'placement', 'cells_v2', 'neutron', 'runnable'],
                         lines[0].split())
        self.assertEqual(['25.3.0', 'yoga', '3.9', 'stein-2025.1',
                          'scripts', 'True', 'True', 'server', 'True'],
                         lines[2].split())
        self.assertEqual(['2015.1.2', 'kilo', '2.7', 'kilo', '-', 'False',
                          'False', 'stub', 'False'], lines[3].split())
        self.assertEqual(5, len(lines))
        self.assertTrue(lines[4].startswith('2015.1.2: '))

    def test_control_plane_takes_the_era_of_its_release(self):
        cp = controlplane.ControlPlane('/w', '25.3.0', '127.0.0.1')
        self.assertEqual('stein-2025.1', cp.era.name)
        kilo = controlplane.ControlPlane('/w', '2015.1.2', '127.0.0.1',
                                         neutron='stub')
        self.assertRaises(eras.EraError, kilo.install)


class TestWsgiScripts(base.BaseTestCase):
    """pbr's ``wsgi_scripts`` entries become gunicorn factory calls."""

    def setUp(self):
        super().setUp()
        self.site = self.useFixture(fixtures.TempDir()).path

    def dist(self, name, text):
        path = os.path.join(self.site, name, 'entry_points.txt')
        os.makedirs(os.path.dirname(path))
        with open(path, 'w') as handle:
            handle.write(text)

    def test_the_factory_of_the_declaring_distribution(self):
        self.dist('nova-25.3.0.dist-info', (
            '[console_scripts]\nnova-api = nova.cmd.api:main\n\n'
            '[wsgi_scripts]\n'
            'nova-api-wsgi = nova.api.openstack.compute.wsgi:'
            'init_application\n'))
        self.dist('neutron-20.5.0.dist-info', (
            '[wsgi_scripts]\nneutron-api = neutron.cmd.eventlet.server:'
            'main_api_eventlet\n'))
        self.assertEqual(
            'nova.api.openstack.compute.wsgi:init_application()',
            eras.wsgi_script_target(self.site, 'nova-api-wsgi'))
        self.assertEqual(
            'neutron.cmd.eventlet.server:main_api_eventlet()',
            eras.wsgi_script_target(self.site, 'neutron-api'))

    def test_an_undeclared_or_odd_script_is_named(self):
        self.dist('x-1.dist-info', '[wsgi_scripts]\nodd = not a target\n')
        exc = self.assertRaises(eras.WsgiScriptError,
                                eras.wsgi_script_target, self.site,
                                'nova-api-wsgi')
        self.assertIn('nova-api-wsgi', exc.message)
        exc = self.assertRaises(eras.WsgiScriptError,
                                eras.wsgi_script_target, self.site, 'odd')
        self.assertIn("'not a target'", exc.message)


class TestLibvirtBinding(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def cons(self, *lines):
        path = os.path.join(self.tmp, 'c.txt')
        with open(path, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        return path

    def test_an_older_pin_is_raised_to_the_host_libvirt(self):
        path = self.cons('gunicorn===20.1.0', 'libvirt-python===8.0.0')
        self.assertEqual('libvirt-python==9.0.0',
                         controlplane.libvirt_binding_pin(path, '9.0.0'))

    def test_any_older_marker_pin_counts(self):
        path = self.cons(
            "libvirt-python===5.10.0;python_version=='2.7'",
            "libvirt-python===9.2.0;python_version=='3.9'")
        self.assertEqual('libvirt-python==9.0.0',
                         controlplane.libvirt_binding_pin(path, '9.0.0'))

    def test_a_pin_as_new_as_the_host_is_kept(self):
        for pin in ('9.0.0', '9.2.0', '12.6.0'):
            path = self.cons('libvirt-python===%s' % pin)
            self.assertIsNone(controlplane.libvirt_binding_pin(path,
                                                               '9.0.0'))

    def test_no_pin_or_no_host_version_keeps_everything(self):
        self.assertIsNone(controlplane.libvirt_binding_pin(
            self.cons('gunicorn===20.1.0'), '9.0.0'))
        self.assertIsNone(controlplane.libvirt_binding_pin(
            self.cons('libvirt-python===8.0.0'), None))

    def test_the_venv_key_changes_only_with_a_raised_binding(self):
        self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.controlplane.host_libvirt_version',
            return_value='9.0.0'))
        newest = controlplane.ControlPlane('/w', '34.0.0', '127.0.0.1')
        self.assertIsNone(newest.libvirt_binding())
        yoga = controlplane.ControlPlane('/w', '25.3.0', '127.0.0.1')
        self.assertEqual('libvirt-python==9.0.0', yoga.libvirt_binding())
        key = yoga.venv_key()
        self.useFixture(fixtures.MockPatch(
            'nova_sio.e2e.controlplane.host_libvirt_version',
            return_value=None))
        again = controlplane.ControlPlane('/w', '25.3.0', '127.0.0.1')
        self.assertIsNone(again.libvirt_binding())
        self.assertNotEqual(key, again.venv_key())
        plain = controlplane.ControlPlane('/w', '34.0.0', '127.0.0.1')
        self.assertEqual(newest.venv_key(), plain.venv_key())
