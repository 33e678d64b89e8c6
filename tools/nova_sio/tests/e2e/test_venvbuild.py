# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The builder of the harness' cached virtualenvs.

Nothing is installed: ``util.run`` is replaced by :class:`FakeRun`, which
makes the venv directory, puts a wheel where ``pip download`` would and
keeps the constraints ``pip install`` is given.
"""

import io
import os
import tarfile
import zipfile

from unittest import mock

import fixtures
from oslotest import base

from nova_sio.e2e import controlplane
from nova_sio.e2e import tempest
from nova_sio.e2e import venvbuild
from nova_sio import errors
from nova_sio import testenv

CONSTRAINTS = ('oslo.config===9.0.0\n'
               'pbr===6.0.0\n'
               'requests===2.31.0\n'
               'tempest===40.0.0\n'
               'libvirt-python===8.0.0\n'
               'nova===34.0.0\n')
# The downloaded requirement needs a newer oslo.config than pinned.
METADATA = ('Metadata-Version: 2.1\nName: x\n'
            'Requires-Dist: oslo.config>=9.2.0\n'
            'Requires-Dist: pbr>=2.0\n'
            'Requires-Dist: requests>=9; extra == "test"\n\n'
            'Requires-Dist: body>=9\n')
WORDING = venvbuild.Wording(reuse='reusing it', install='installing it',
                            unpinned='unpinned: %s', built='built in %.0f s')
PIP_KW = {'isolated': False, 'env': venvbuild.PIP_ENV}


def write_wheel(directory, metadata=METADATA):
    """Write ``x-1.0-py3-none-any.whl`` with ``metadata``; return its path.

    :param directory: where.
    :param metadata: its ``METADATA`` text.
    """
    path = os.path.join(directory, 'x-1.0-py3-none-any.whl')
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr('x-1.0.dist-info/METADATA', metadata)
    return path


class FakeRun(object):
    """Stands for ``util.run``: records the command lines.

    :param fail_on: the pip sub-command that fails, or None.
    """

    def __init__(self, fail_on=None):
        self.fail_on = fail_on
        self.calls = []
        self.constraints = None

    def __call__(self, cmd, **kwargs):
        self.calls.append((cmd, kwargs))
        if self.fail_on in cmd:
            raise errors.CommandFailed(cmd=' '.join(cmd[:4]), code=1,
                                       output='no such release')
        if cmd[1:3] == ['-m', 'venv']:
            os.makedirs(os.path.join(cmd[3], 'bin'))
        elif 'download' in cmd:
            write_wheel(cmd[cmd.index('-d') + 1])
        elif 'install' in cmd:
            with open(cmd[cmd.index('-c') + 1]) as handle:
                self.constraints = handle.read()
        return mock.Mock(returncode=0, stdout=b'', stderr=b'')


class BuilderTestCase(base.BaseTestCase):
    """A cache in a temporary directory, the series' constraints
    :data:`CONSTRAINTS`, an interpreter that is never run.
    """

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable(
            'NOVA_SIO_CACHE', os.path.join(self.tmp, 'cache')))
        self.cons = os.path.join(self.tmp, 'series.txt')
        with open(self.cons, 'w') as handle:
            handle.write(CONSTRAINTS)
        self.useFixture(fixtures.MockPatchObject(
            testenv, 'constraints_file', return_value=self.cons))
        self.useFixture(fixtures.MockPatchObject(
            testenv, 'find_python', return_value='/py/bin/python3.12'))
        self.run = self.use_run(FakeRun())
        self.lines = []
        self.venv = os.path.join(self.tmp, 'cache', 'e2e', 'kind', 'v')

    def use_run(self, fake):
        """Make ``fake`` the ``util.run`` of the builder; return it.

        :param fake: a :class:`FakeRun`.
        """
        self.useFixture(fixtures.MockPatch('nova_sio.util.run', fake))
        return fake

    def builder(self, **kwargs):
        """Return a :class:`~venvbuild.CachedVenv` of ``x==1.0``.

        :param kwargs: the arguments to change.
        """
        args = dict(path=self.venv, series='hibiscus',
                    python_version='3.12', requirements=['x==1.0'],
                    stamp=('.ready', '1.0'), wording=WORDING,
                    progress=self.lines.append)
        args.update(kwargs)
        return venvbuild.CachedVenv(**args)

    def pip(self, *args):
        return [os.path.join(self.venv, 'bin', 'python'), '-m', 'pip'] + \
            list(args)


class TestCommands(BuilderTestCase):

    def test_venv_download_then_install_with_the_constraints(self):
        builder = self.builder(extras=['gunicorn'])
        self.assertEqual(self.venv, builder.build())
        work = self.venv + '.work'
        wheels = os.path.join(work, 'wheels')
        self.assertEqual([
            (['/py/bin/python3.12', '-m', 'venv', self.venv],
             {'isolated': False, 'timeout': 600}),
            (self.pip('download', '-q', '--no-deps', '-d', wheels,
                      'x==1.0'), dict(PIP_KW, timeout=1800)),
            (self.pip('install', '-q', '-c',
                      os.path.join(work, 'constraints.txt'),
                      '--find-links', wheels, 'x==1.0', 'gunicorn'),
             dict(PIP_KW, timeout=3600)),
        ], self.run.calls)

    def test_the_progress_lines_in_order(self):
        self.builder(notes=['note one', 'note two']).build()
        self.assertEqual(['e2e: installing it', 'e2e: unpinned: oslo.config',
                          'e2e: note one', 'e2e: note two'],
                         self.lines[:-1])
        self.assertRegex(self.lines[-1], r'^e2e: built in \d+ s$')


class TestConstraints(BuilderTestCase):

    def test_the_requirements_minimums_win_over_the_pins(self):
        self.builder().build()
        # oslo.config 9.0.0 is below x's minimum; nova is never pinned.
        self.assertEqual('pbr===6.0.0\nrequests===2.31.0\n'
                         'tempest===40.0.0\nlibvirt-python===8.0.0\n',
                         self.run.constraints)

    def test_more_pins_dropped(self):
        self.builder(drop=['tempest===', 'libvirt-python']).build()
        self.assertEqual('pbr===6.0.0\nrequests===2.31.0\n',
                         self.run.constraints)

    def test_nothing_stale_nothing_said(self):
        with open(self.cons, 'w') as handle:
            handle.write('oslo.config===9.3.0\n')
        self.builder().build()
        self.assertEqual('oslo.config===9.3.0\n', self.run.constraints)
        self.assertFalse([ln for ln in self.lines if 'unpinned' in ln])


class TestStamp(BuilderTestCase):

    def test_the_stamp_marks_the_venv_built(self):
        builder = self.builder()
        self.assertFalse(builder.ready())
        builder.build()
        with open(os.path.join(self.venv, '.ready')) as handle:
            self.assertEqual('1.0\n', handle.read())
        self.assertTrue(builder.ready())
        self.assertIsNotNone(builder.seconds)
        self.assertFalse(os.path.exists(self.venv + '.work'))

    def test_a_stamped_venv_is_reused(self):
        self.builder().build()
        del self.run.calls[:], self.lines[:]
        again = self.builder()
        self.assertEqual(self.venv, again.build())
        self.assertEqual([], self.run.calls)
        self.assertEqual(['e2e: reusing it'], self.lines)
        self.assertEqual(0.0, again.seconds)

    def test_an_unstamped_venv_is_built_again(self):
        os.makedirs(os.path.join(self.venv, 'lib'))
        os.makedirs(os.path.join(self.venv + '.work', 'wheels'))
        self.builder().build()
        self.assertEqual(3, len(self.run.calls))
        self.assertFalse(os.path.exists(os.path.join(self.venv, 'lib')))


class TestLock(BuilderTestCase):

    def lock(self, on_enter=None):
        """Replace the cache locks; return the mock of ``cache_lock``.

        :attr:`held` is true while the lock is held.

        :param on_enter: called when the lock is taken, or None.
        """
        self.held = []

        def enter():
            self.held.append(True)
            if on_enter:
                on_enter()

        def leave(*exc_info):
            self.held.pop()
            return False
        lock = mock.MagicMock()
        lock.__enter__.side_effect = enter
        lock.__exit__.side_effect = leave
        return self.useFixture(fixtures.MockPatch(
            'nova_sio.paths.cache_lock', return_value=lock)).mock

    def test_the_build_holds_the_named_lock(self):
        cache_lock = self.lock()
        seen = []
        real = self.run

        def run(cmd, **kwargs):
            seen.append(bool(self.held))
            return real(cmd, **kwargs)
        self.use_run(run)
        self.builder(lock='tempest-venv').build()
        cache_lock.assert_called_once_with('tempest-venv')
        self.assertEqual([True, True, True], seen)
        self.assertEqual([], self.held)

    def test_no_lock_without_a_name(self):
        cache_lock = self.lock()
        self.builder().build()
        cache_lock.assert_not_called()
        self.assertEqual(3, len(self.run.calls))

    def test_a_venv_built_while_waiting_is_kept(self):
        def built_meanwhile():
            os.makedirs(self.venv)
            open(os.path.join(self.venv, '.ready'), 'w').close()
        self.lock(on_enter=built_meanwhile)
        builder = self.builder(lock='tempest-venv')
        self.assertEqual(self.venv, builder.build())
        self.assertEqual([], self.run.calls)
        self.assertEqual([], self.lines)
        self.assertEqual(0.0, builder.seconds)

    def test_a_reused_venv_takes_no_lock(self):
        self.builder().build()
        cache_lock = self.lock()
        self.builder(lock='tempest-venv').build()
        cache_lock.assert_not_called()


class TestFailure(BuilderTestCase):

    def check_failure(self, fail_on):
        self.use_run(FakeRun(fail_on=fail_on))
        cache_lock = self.useFixture(fixtures.MockPatch(
            'nova_sio.paths.cache_lock')).mock
        builder = self.builder(lock='tempest-venv')
        self.assertRaises(errors.CommandFailed, builder.build)
        self.assertFalse(os.path.exists(self.venv))
        self.assertFalse(os.path.exists(self.venv + '.work'))
        self.assertFalse(builder.ready())
        self.assertEqual(1, cache_lock.return_value.__exit__.call_count)

    def test_a_failed_download_leaves_nothing(self):
        self.check_failure('download')

    def test_a_failed_install_leaves_nothing(self):
        self.check_failure('install')
        self.assertFalse([ln for ln in self.lines if 'built in' in ln])

    def test_a_failed_build_is_built_again(self):
        self.use_run(FakeRun(fail_on='install'))
        self.assertRaises(errors.CommandFailed, self.builder().build)
        run = self.use_run(FakeRun())
        self.assertEqual(self.venv, self.builder().build())
        self.assertEqual(3, len(run.calls))
        self.assertTrue(os.path.exists(os.path.join(self.venv, '.ready')))


class TestNames(BuilderTestCase):

    def test_the_key_follows_the_constraints_and_the_fields(self):
        key = venvbuild.cache_key('hibiscus', ['1.0', '3.12'])
        self.assertRegex(key, '^[0-9a-f]{12}$')
        self.assertEqual(key, venvbuild.cache_key('hibiscus',
                                                  ('1.0', '3.12')))
        self.assertNotEqual(key, venvbuild.cache_key('hibiscus',
                                                     ['1.0', '3.11']))
        with open(self.cons, 'a') as handle:
            handle.write('six===1.16.0\n')
        self.assertNotEqual(key, venvbuild.cache_key('hibiscus',
                                                     ['1.0', '3.12']))

    def test_the_path_in_the_cache(self):
        self.assertEqual(
            os.path.join(self.tmp, 'cache', 'e2e', 'tempest',
                         '47.0.0-py3.12-0123456789ab'),
            venvbuild.cache_path('tempest', '47.0.0', '3.12',
                                 '0123456789ab'))

    def test_requires_dist_of_an_sdist(self):
        path = os.path.join(self.tmp, 'x-1.0.tar.gz')
        data = METADATA.encode()
        with tarfile.open(path, 'w:gz') as tf:
            info = tarfile.TarInfo('x-1.0/PKG-INFO')
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        self.assertEqual(['oslo.config>=9.2.0', 'pbr>=2.0'],
                         venvbuild.requires_dist(path))
        self.assertEqual(venvbuild.requires_dist(path),
                         venvbuild.requires_dist(write_wheel(self.tmp)))


class TestUsers(BuilderTestCase):
    """Tempest's venv and the control plane's build with the builder."""

    def installed(self):
        """The requirements of the ``pip install`` that ran."""
        cmd = self.run.calls[-1][0]
        return cmd[cmd.index('--find-links') + 2:]

    def test_tempest(self):
        venv = tempest.TempestVenv('34.0.0', progress=self.lines.append)
        self.venv = venv.path
        self.assertEqual(venv.path, venv.build())
        self.assertEqual(['tempest==%s' % venv.release], self.installed())
        self.assertNotIn('tempest===', self.run.constraints)
        with open(os.path.join(venv.path, '.nova-sio-tempest-ready')) as f:
            self.assertEqual(venv.release + '\n', f.read())
        self.assertIn("e2e: unpinned for Tempest's own minimums: "
                      "oslo.config", self.lines)

    def test_the_control_plane_with_a_raised_binding(self):
        self.useFixture(fixtures.MockPatchObject(
            controlplane, 'host_libvirt_version', return_value='9.0.0'))
        cp = controlplane.ControlPlane('/w', '34.0.0',
                                       progress=self.lines.append)
        path = cp.build_venv()
        self.assertEqual(cp.venv_path(), path)
        extras = ['openstacksdk', 'python-openstackclient', 'gunicorn',
                  'libvirt-python==9.0.0', 'PyMySQL']
        self.assertEqual(cp._requirements() + extras, self.installed())
        self.assertNotIn('libvirt-python', self.run.constraints)
        self.assertIn("e2e: libvirt-python==9.0.0 instead of the series' "
                      "pin (the host's libvirt is newer)", self.lines)
        self.assertIsNotNone(cp.timings['venv_build_s'])
        self.assertTrue(os.path.exists(os.path.join(
            path, '.nova-sio-e2e-ready')))
        cp.build_venv()
        self.assertEqual(0.0, cp.timings['venv_build_s'])
