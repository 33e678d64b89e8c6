# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Opt-in of the end-to-end tests and their leak checks.

Tests that need root, loop devices, QEMU or libvirt run only with
``NOVA_SIO_E2E=1`` in the environment (``tools/e2e-setup.sh`` prepares
the machine). Without it they are skipped, naming the variable; with it,
a machine that lacks something fails them with the list of what is
missing, never a traceback of a missing tool.

:class:`LiveTestCase` is the set-up the live tests share: the opt-in
check, a timeout, a directory QEMU's user can enter, a ledger in it and
the guest.
"""

import os
import shutil
import tempfile

import fixtures
from oslotest import base

from nova_sio.e2e import cleanup
from nova_sio.e2e import guest as guest_mod
from nova_sio.e2e import machine
from nova_sio import paths

OPT_IN = 'NOVA_SIO_E2E'

# The cache holding the guest kernel package, taken before a test case
# replaces HOME with a temporary directory.
CACHE = paths.cache_dir()
# The system temporary directory, before a test case replaces TMPDIR
# with a private one (that QEMU run by libvirt cannot enter).
SYSTEM_TMP = tempfile.gettempdir()


def shared_dir(test):
    """Return a new directory QEMU's user can enter; removed after.

    :param test: the running ``TestCase``.
    """
    path = tempfile.mkdtemp(prefix='nova-sio-e2e-', dir=SYSTEM_TMP)
    test.addCleanup(shutil.rmtree, path, ignore_errors=True)
    os.chmod(path, 0o755)
    return path


def require_e2e(test, need_guest_kernel=False):
    """Skip ``test`` unless opted in; fail it if the machine is unfit.

    :param test: the running ``TestCase``.
    :param need_guest_kernel: also require the guest kernel.
    """
    if os.environ.get(OPT_IN) != '1':
        test.skipTest('end-to-end test (root, loop devices, QEMU): set '
                      '%s=1 to run it, after tools/e2e-setup.sh' % OPT_IN)
    test.useFixture(fixtures.EnvironmentVariable('NOVA_SIO_CACHE', CACHE))
    missing = machine.check(need_guest_kernel=need_guest_kernel)
    if missing:
        lines = '\n'.join('  - %s' % m for m in missing)
        test.fail('%s=1 but this machine cannot run the end-to-end tests:'
                  '\n%s' % (OPT_IN, lines))


class LiveTestCase(base.BaseTestCase):
    """A live end-to-end test: skipped unless opted in (failed on an unfit
    machine), stopped after :attr:`TIMEOUT` seconds, with its files in
    ``self.dir`` (see :func:`shared_dir`), ``self.ledger`` there
    (:attr:`LEDGER`) and, with :attr:`GUEST`, the guest as
    ``self.guest``.
    """

    #: Seconds before the test is stopped.
    TIMEOUT = 300
    #: Require the guest kernel and build (or reuse) the guest.
    GUEST = False
    #: Keep a ledger in ``self.dir``, handled by :meth:`ledger_at_end`
    #: at the end.
    LEDGER = True

    def setUp(self):
        super().setUp()
        require_e2e(self, need_guest_kernel=self.GUEST)
        self.useFixture(fixtures.Timeout(self.TIMEOUT, gentle=True))
        # QEMU run by libvirt is not root: let it reach the files.
        self.dir = shared_dir(self)
        if self.LEDGER:
            self.ledger = cleanup.Ledger(os.path.join(self.dir, 'ledger'))
            self.addCleanup(self.ledger_at_end)
        if self.GUEST:
            self.guest = guest_mod.build(os.path.join(
                guest_mod.cache_root(), 'guest'))

    def ledger_at_end(self):
        """Release what the ledger still holds (after the test's own
        clean-ups, before its directory goes).
        """
        self.ledger.release_all()


def loops_backed_under(directory):
    """Return ``{device: backing file}`` of the loop devices whose
    backing file is inside ``directory`` (see ``cleanup``).

    :param directory: a path prefix.
    """
    return cleanup.loops_backed_under(directory)


def mounts_under(directory):
    """Return the mount points inside ``directory``.

    :param directory: a path prefix.
    """
    prefix = os.path.realpath(directory).rstrip('/') + '/'
    with open('/proc/self/mounts') as handle:
        points = [line.split()[1] for line in handle if line.strip()]
    return [p for p in points if p.startswith(prefix)]


#: The libvirt domain of the live tests' guest: the harness's kernel and
#: initramfs, virtio block disks (:data:`DISK`), a serial console file.
DOMAIN = '''<domain type='qemu'>
  <name>%(name)s</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%(kernel)s</kernel>
    <initrd>%(initrd)s</initrd>
    <cmdline>%(cmdline)s</cmdline>
  </os>
  <on_reboot>destroy</on_reboot>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
%(disks)s
    <serial type='file'>
      <source path='%(console)s'%(append)s/>
      <target port='0'/>
    </serial>
  </devices>
</domain>
'''

#: One virtio block disk of :data:`DOMAIN`.
DISK = '''    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='native'/>
      <source dev='%(dev)s'/>
      <target dev='%(target)s' bus='virtio'/>
    </disk>'''


def domain_xml(name, kernel, initrd, cmdline, disks, console, append=False):
    """Return the domain XML of a live test's guest.

    :param name: the domain name.
    :param kernel: the kernel path.
    :param initrd: the initramfs path.
    :param cmdline: the kernel command line.
    :param disks: ``[(device path, target)]`` of its block disks.
    :param console: the serial console's file.
    :param append: whether QEMU appends to the console file.
    """
    return DOMAIN % {
        'name': name, 'kernel': kernel, 'initrd': initrd,
        'cmdline': cmdline, 'console': console,
        'append': " append='on'" if append else '',
        'disks': '\n'.join(DISK % {'dev': dev, 'target': target}
                           for dev, target in disks)}
