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

"""``nova-sio install`` into distribution and pip-installed Nova trees.

Debian bookworm's ``python3-nova`` 2:26.2.2-1~deb12u4 and ~deb12u5 carry
backports in files our diff touches.  Each is unpacked by the real dpkg
into a directory of its own (``dpkg --root``), so ``dpkg-query -S``
answers for the tree and a later ``dpkg --unpack`` of the newer package
is the upgrade as dpkg does it.  The packages are fetched once with
``apt-get download`` into the nova-sio cache; the pip trees come from
Nova's wheels on PyPI, installed with ``pip install --target``.
"""

import atexit
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile

import fixtures
import testtools

from nova_sio import cli
from nova_sio.engine import diffs
from nova_sio.engine import emit
from nova_sio.operator import hooks as hooks_mod
from nova_sio import paths
from nova_sio.tests.operator import test_install as base

PACKAGE = 'python3-nova'
DEB_VERSION = '2:26.2.2-1~%s'
SITE = os.path.join('usr', 'lib', 'python3', 'dist-packages')
_PIP_TREES = {}


def deb_file(tag):
    """Return the cached ``python3-nova`` package ``~<tag>``.

    :param tag: ``deb12u4`` or ``deb12u5``.
    """
    directory = os.path.join(paths.cache_dir(), 'debs')
    os.makedirs(directory, exist_ok=True)
    version = DEB_VERSION % tag
    name = '%s_%s_all.deb' % (PACKAGE, version.replace(':', '%3a'))
    path = os.path.join(directory, name)
    with paths.cache_lock('debs'):
        if not os.path.exists(path):
            # No source is an error, not a skip: this suite proves it.
            subprocess.run(['apt-get', 'download', '%s=%s' % (PACKAGE,
                                                              version)],
                           cwd=directory, check=True,
                           stdout=subprocess.DEVNULL)
    return path


def dpkg_unpack(root, tag):
    """Unpack ``python3-nova ~<tag>`` with dpkg into the system ``root``.

    The package's maintainer scripts (py3compile, py3clean) would need a
    shell inside ``root``; dpkg is told the package has none, so it only
    does what matters here: replace the package's files and record them.
    """
    info = os.path.join(root, 'var', 'lib', 'dpkg', 'info')
    os.makedirs(info, exist_ok=True)
    os.makedirs(os.path.join(root, 'var', 'lib', 'dpkg', 'updates'),
                exist_ok=True)
    status = os.path.join(root, 'var', 'lib', 'dpkg', 'status')
    if not os.path.exists(status):
        open(status, 'w').close()
    for name in os.listdir(info):
        if name.startswith(PACKAGE + '.') and name.endswith(
                ('.prerm', '.postinst', '.preinst', '.postrm')):
            os.unlink(os.path.join(info, name))
    subprocess.run(['dpkg', '--root=%s' % root, '--force-depends',
                    '--force-not-root', '--unpack', deb_file(tag)],
                   check=True, stdout=subprocess.DEVNULL)
    return os.path.join(root, SITE, 'nova')


def pip_tree(version):
    """Return a Nova ``version`` installed from its PyPI wheel (cached)."""
    if version not in _PIP_TREES:
        wheels = os.path.join(paths.cache_dir(), 'wheels')
        os.makedirs(wheels, exist_ok=True)
        wheel = os.path.join(wheels, 'nova-%s-py3-none-any.whl' % version)
        with paths.cache_lock('wheels'):
            if not os.path.exists(wheel):
                subprocess.run([sys.executable, '-m', 'pip', 'download',
                                '--quiet', '--no-deps', '--only-binary',
                                ':all:', '-d', wheels,
                                'nova==%s' % version], check=True)
        target = tempfile.mkdtemp(prefix='nova-sio-pip-%s-' % version)
        atexit.register(shutil.rmtree, target, True)
        subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet',
                        '--no-deps', '--no-compile', '--target', target,
                        wheel], check=True)
        _PIP_TREES[version] = target
    return _PIP_TREES[version]


def patch_by_hand(nova_dir, diff_file):
    """Apply a diff as the README tells operators; return patch's output."""
    proc = subprocess.run(['patch', '-p', '2', '--batch', '--fuzz=0',
                           '-d', nova_dir, '-i', diff_file],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return proc.returncode, proc.stdout.decode()


def apt_hook_commands(path):
    """Return the ``DPkg::Post-Invoke`` commands APT reads from ``path``.

    APT reads this machine's ``/etc/apt`` first; an empty configuration
    keeps a hook installed there out of the answer.
    """
    with tempfile.TemporaryDirectory(prefix='nova-sio-apt-') as tmp:
        config = os.path.join(tmp, 'apt.conf')
        parts = os.path.join(tmp, 'apt.conf.d')
        os.mkdir(parts)
        with open(config, 'w') as f:
            f.write('Dir::Etc::main "%s";\nDir::Etc::parts "%s";\n'
                    % (config, parts))
        proc = subprocess.run(['apt-config', '-c', path, 'dump',
                               '--format', '%f\t%v%n', 'DPkg::Post-Invoke'],
                              stdout=subprocess.PIPE, check=True,
                              env=dict(os.environ, APT_CONFIG=config))
    out = []
    for line in proc.stdout.decode().splitlines():
        key, _tab, value = line.partition('\t')
        if key == 'DPkg::Post-Invoke::' and 'nova_sio' in value:
            out.append(value)
    return out


class DistroTestCase(testtools.TestCase):

    def setUp(self):
        super(DistroTestCase, self).setUp()
        self.useFixture(fixtures.Timeout(240, gentle=True))
        self.base = self.useFixture(fixtures.TempDir()).path

    def cli(self, *argv):
        """Run ``nova-sio`` in-process; return ``(code, JSON)``."""
        out, err = io.StringIO(), io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', err))
        code = cli.main(list(argv) + ['--json'])
        return code, json.loads(out.getvalue())

    def chroot(self, tag, name='root'):
        root = os.path.join(self.base, name)
        return root, dpkg_unpack(root, tag)

    def doctor(self, nova_dir):
        conf = os.path.join(self.base, 'nova.conf')
        with open(conf, 'w') as f:
            f.write('[libvirt]\nimages_type = sio\n')
        _code, doc = self.cli('doctor', '--config-file', conf,
                              '--nova-dir', nova_dir)
        return dict((r['check'], r) for r in doc['checks'])


class DebianPackageTest(DistroTestCase):

    def _install_and_revert(self, tag):
        root, nova = self.chroot(tag)
        before = base.snapshot(root)
        out = os.path.join(self.base, 'tree.diff')
        code, doc = self.cli('install', '--nova-dir', nova, '--diff-out',
                             out)
        self.assertEqual(0, code, doc)
        plan = doc['plan']
        self.assertEqual('26.2.2', plan['version'])
        # The backports lie outside our hunks' regions: a merged diff.
        self.assertEqual('merged', plan['mode'])
        self.assertIn('nova/virt/libvirt/utils.py',
                      [d['file'] for d in plan['differed']])
        self.assertEqual({'manager': 'dpkg', 'package': PACKAGE,
                          'version': DEB_VERSION % tag,
                          'release': '26.2.2', 'root': root},
                         plan['package'])
        self.assertEqual(sorted(hooks_mod.hook_files(plan['package'])),
                         doc['hooks'])
        installed = base.snapshot(os.path.join(root, SITE))
        # The diff written for this tree applies by hand, exactly.
        other, other_nova = self.chroot(tag, 'by-hand')
        code, text = patch_by_hand(other_nova, out)
        self.assertEqual(0, code, text)
        self.assertNotIn('offset', text)
        self.assertNotIn('fuzz', text)
        by_hand = base.snapshot(os.path.join(other, SITE))
        for rel in plan['modified'] + plan['created']:
            rel = os.path.relpath(rel, 'nova')
            self.assertEqual(installed[os.path.join('nova', rel)],
                             by_hand[os.path.join('nova', rel)], rel)
        code, doc = self.cli('revert', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        self.assertEqual(sorted(hooks_mod.hook_files(plan['package'])),
                         doc['report']['hooks_removed'])
        self.assertEqual(before, base.snapshot(root))

    def test_deb12u4_install_and_revert(self):
        self._install_and_revert('deb12u4')

    def test_deb12u5_install_and_revert(self):
        self._install_and_revert('deb12u5')

    def test_conflict_in_a_hunk_region_is_refused(self):
        root, nova = self.chroot('deb12u5')
        rel = 'nova/virt/libvirt/utils.py'
        data = open(emit.diff_path('26.2.2'), 'rb').read()
        section = [f for f in diffs.parse(data) if f.old_path == rel][0]
        # The last line the first hunk removes or keeps as context,
        # found in the installed file (the backports moved it).
        hunk = section.hunks[0]
        old_side = [text for tag, text, _nl in hunk.lines if tag != b'+']
        path = os.path.join(root, SITE, rel)
        with open(path, 'rb') as f:
            lines = f.read().split(b'\n')
        block = len(old_side)
        at = [i for i in range(len(lines) - block + 1)
              if lines[i:i + block] == old_side]
        self.assertEqual(1, len(at), 'hunk 1 of %s not found once' % rel)
        target = at[0] + block // 2
        lines[target] = lines[target] + b'  # local change'
        with open(path, 'wb') as f:
            f.write(b'\n'.join(lines))
        before = base.snapshot(root)
        review = os.path.join(self.base, 'review.diff')
        code, doc = self.cli('install', '--nova-dir', nova, '--diff-out',
                             review)
        self.assertEqual(1, code)
        self.assertEqual(before, base.snapshot(root))
        conflicts = doc['details']['conflicts']
        self.assertEqual([rel], sorted(set(c['file'] for c in conflicts)))
        name = 'hunk 1 @@ -%d,%d +%d,%d @@' % (
            hunk.old_start, hunk.old_len, hunk.new_start, hunk.new_len)
        self.assertIn(name, conflicts[0]['hunks'])
        first, _dash, last = conflicts[0]['installed'].replace(
            'lines ', '').replace('line ', '').partition('-')
        self.assertTrue(int(first) <= target + 1 <= int(last or first),
                        conflicts[0])
        self.assertIn('%s %s' % (rel, conflicts[0]['installed']),
                      doc['error'])
        self.assertIn(name, doc['error'])
        self.assertEqual(review, doc['details']['review_diff'])
        with open(review, 'rb') as f:
            text = f.read()
        self.assertIn(b'REVIEW ONLY', text)
        self.assertIn(b'+<<<<<<< installed', text)
        self.assertIn(b'+>>>>>>> nova-sio', text)


class PackageUpgradeTest(DistroTestCase):

    def test_upgrade_puts_the_backend_back(self):
        root, nova = self.chroot('deb12u4')
        code, doc = self.cli('install', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        apt_hook = os.path.join(root, hooks_mod.APT_HOOK)
        self.assertIn(apt_hook, doc['hooks'])
        self.assertEqual('pass', self.doctor(nova)['nova backend']['status'])
        # The security update, unpacked by dpkg over the patched tree.
        dpkg_unpack(root, 'deb12u5')
        checks = self.doctor(nova)
        self.assertEqual('fail', checks['nova backend']['status'])
        self.assertIn('configured for sio but the backend is missing',
                      checks['nova backend']['detail'])
        code, doc = self.cli('guard', '--nova-dir', nova)
        self.assertEqual(1, code)
        self.assertIn('nova-compute is held back', doc['detail'])
        # APT runs its Post-Invoke commands after dpkg.
        commands = apt_hook_commands(apt_hook)
        self.assertEqual(1, len(commands), commands)
        proc = subprocess.run(['sh', '-c', commands[0]],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        self.assertEqual(0, proc.returncode, proc.stdout)
        self.assertIn(b'installed again', proc.stdout)
        code, doc = self.cli('guard', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        checks = self.doctor(nova)
        self.assertEqual('pass', checks['nova backend']['status'],
                         checks['nova backend'])
        self.assertEqual('pass', checks['upgrade hook']['status'],
                         checks['upgrade hook'])
        self.assertIn(DEB_VERSION % 'deb12u5',
                      checks['upgrade hook']['detail'])
        # A second run (APT runs it after every dpkg call) does nothing.
        proc = subprocess.run(['sh', '-c', commands[0]],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        self.assertEqual((0, b''), (proc.returncode, proc.stdout))
        # Reverting gives deb12u5's own files back, byte for byte.
        code, doc = self.cli('revert', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        self.assertFalse(os.path.exists(apt_hook))
        fresh, _nova = self.chroot('deb12u5', 'fresh')
        self.assertEqual(base.snapshot(os.path.join(fresh, 'usr')),
                         base.snapshot(os.path.join(root, 'usr')))

    def _set_release(self, root, old, new, old_deb, new_deb):
        for path, was, now in (
                (os.path.join(root, SITE, 'nova-26.2.2.egg-info',
                              'PKG-INFO'),
                 'Version: ' + old, 'Version: ' + new),
                (os.path.join(root, 'var', 'lib', 'dpkg', 'status'),
                 'Version: ' + old_deb, 'Version: ' + new_deb)):
            with open(path) as f:
                text = f.read()
            self.assertIn(was, text)
            with open(path, 'w') as f:
                f.write(text.replace(was, now))

    def _blocked(self):
        """Upgrade to a package holding a release nova-sio has no diff for.

        :returns: ``(root, nova_dir)`` after the APT hook ran.
        """
        root, nova = self.chroot('deb12u4')
        self.assertEqual(0, self.cli('install', '--nova-dir', nova)[0])
        dpkg_unpack(root, 'deb12u5')
        self._set_release(root, '26.2.2', '99.0.0',
                          DEB_VERSION % 'deb12u5', '2:99.0.0-1')
        commands = apt_hook_commands(os.path.join(
            root, hooks_mod.APT_HOOK))
        proc = subprocess.run(['sh', '-c', commands[0]],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT)
        # APT is not failed by the hook, but the operator is told.
        self.assertEqual(0, proc.returncode, proc.stdout)
        self.assertIn(b'WARNING', proc.stdout)
        self.assertIn(b'no diff for Nova 99.0.0', proc.stdout)
        code, doc = self.cli('guard', '--nova-dir', nova)
        self.assertEqual(1, code)
        self.assertIn('held back', doc['detail'])
        self.assertIn('no diff for Nova 99.0.0', doc['detail'])
        self.assertFalse(os.path.exists(os.path.join(
            nova, 'virt', 'libvirt', 'sio')))
        checks = self.doctor(nova)
        self.assertEqual('fail', checks['nova backend']['status'])
        self.assertIn('configured for sio but the backend is missing',
                      checks['nova backend']['detail'])
        return root, nova

    def test_upgrade_that_cannot_be_followed_holds_nova_compute(self):
        root, nova = self._blocked()
        code, doc = self.cli('revert', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        self.assertEqual([], doc['report']['restored'])
        self.assertFalse(os.path.exists(os.path.join(
            root, hooks_mod.APT_HOOK)))
        self.assertFalse(os.path.exists(os.path.join(
            nova, '.nova-sio-backup')))

    def test_install_settles_a_blocked_upgrade(self):
        root, nova = self._blocked()
        # nova-sio learnt the release (played by naming 26.2.2 again).
        self._set_release(root, '99.0.0', '26.2.2', '2:99.0.0-1',
                          DEB_VERSION % 'deb12u5')
        code, doc = self.cli('install', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        self.assertEqual('installed', doc['state']['status'])
        self.assertEqual(0, self.cli('guard', '--nova-dir', nova)[0])
        self.assertEqual('pass',
                         self.doctor(nova)['nova backend']['status'])
        code, doc = self.cli('revert', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        fresh, _nova = self.chroot('deb12u5', 'fresh')
        self.assertEqual(base.snapshot(os.path.join(fresh, 'usr')),
                         base.snapshot(os.path.join(root, 'usr')))


class PipTreeTest(DistroTestCase):

    def _install_and_revert(self, version):
        site = os.path.join(self.base, 'site-packages')
        shutil.copytree(pip_tree(version), site, symlinks=True)
        nova = os.path.join(site, 'nova')
        before = base.snapshot(site)
        code, doc = self.cli('install', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        self.assertEqual(('exact', version, None, []), (
            doc['plan']['mode'], doc['plan']['version'],
            doc['plan']['package'], doc['hooks']))
        self.assertIn('nova-%s.dist-info' % version,
                      doc['plan']['version_source'])
        self.assertTrue(os.path.isdir(os.path.join(nova, 'virt', 'libvirt',
                                                   'sio')))
        code, doc = self.cli('revert', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        self.assertEqual(before, base.snapshot(site))

    def test_nova_26_2_2(self):
        self._install_and_revert('26.2.2')

    def test_nova_34_0_0(self):
        self._install_and_revert('34.0.0')


class RpmPackageTest(DistroTestCase):
    """A tree an RPM database owns (``rpm`` itself is played by a script).

    The script answers ``rpm --root ROOT -qf --queryformat FMT PATH`` like
    rpm does for a file of ``openstack-nova-common``, and fails for a
    path that is not inside ``ROOT``.
    """

    RPM = '\n'.join([
        '#!/bin/sh',
        '[ "$1" = --root ] && [ "$3" = -qf ] || exit 2',
        '[ -f "$2$6" ] || { echo "error: file $6: not owned"; exit 1; }',
        'echo "openstack-nova-common 26.2.2-1.el9"',
        ''])

    def test_dnf_action_and_guard(self):
        bindir = os.path.join(self.base, 'bin')
        os.makedirs(bindir)
        with open(os.path.join(bindir, 'rpm'), 'w') as f:
            f.write(self.RPM)
        os.chmod(os.path.join(bindir, 'rpm'), 0o755)
        self.useFixture(fixtures.EnvironmentVariable(
            'PATH', bindir + os.pathsep + os.environ['PATH']))
        root = os.path.join(self.base, 'root')
        os.makedirs(os.path.join(root, 'var', 'lib', 'rpm'))
        site = os.path.join(root, 'usr', 'lib', 'python%d.%d'
                            % sys.version_info[:2], 'site-packages')
        shutil.copytree(pip_tree('26.2.2'), site, symlinks=True)
        nova = os.path.join(site, 'nova')
        before = base.snapshot(root)
        code, doc = self.cli('install', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        self.assertEqual({'manager': 'rpm',
                          'package': 'openstack-nova-common',
                          'version': '26.2.2-1.el9', 'release': '26.2.2',
                          'root': root}, doc['plan']['package'])
        action = os.path.join(root, hooks_mod.DNF_HOOK)
        guard = os.path.join(root, hooks_mod.GUARD)
        self.assertEqual(sorted([action, guard]), doc['hooks'])
        with open(action) as f:
            lines = [line for line in f.read().splitlines()
                     if line and not line.startswith('#')]
        self.assertEqual(['openstack-nova-common:in:%s -m nova_sio.cli '
                          'reinstall --nova-dir %s' % (sys.executable,
                                                       nova)], lines)
        with open(guard) as f:
            self.assertIn('ExecStartPre=%s -m nova_sio.cli guard '
                          '--nova-dir %s' % (sys.executable, nova),
                          f.read())
        code, doc = self.cli('revert', '--nova-dir', nova)
        self.assertEqual(0, code, doc)
        self.assertEqual(sorted([action, guard]),
                         doc['report']['hooks_removed'])
        self.assertEqual(before, base.snapshot(root))
