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

"""Tests of the libvirt driver hooks of Nova 15.0.0 (Ocata) to 25.x (Yoga).

These releases look the backend up with ``Backend.by_name`` and build
images without a ``disk_info_mapping``; older and newer releases carry
other driver hunks and have their own tests, so this module skips there.

The ScaleIO system is the in-memory fake of :mod:`fake_sio`; only the
driver's own non-storage steps (VIF unplugging, libvirt undefine, file
removal) are replaced.
"""

from __future__ import absolute_import

import inspect

from nova.network import model as network_model
from nova import objects
from nova.tests.unit.virt.libvirt import fake_sio
from nova.tests.unit.virt.libvirt import sio_driver_base as harness
from nova.virt.libvirt import config as vconfig
from nova.virt.libvirt import driver as libvirt_driver
from nova.virt.libvirt import imagebackend
from nova.virt.libvirt.sio import connection as sio_connection
from nova.virt.libvirt.sio import disks as sio_disks
from nova.virt.libvirt.sio import volumes as sio_volumes
from nova.virt.libvirt import utils as libvirt_utils

try:  # Xena and later
    from nova.tests import fixtures as nova_fixtures
    LIBVIRT_FIXTURE = nova_fixtures.LibvirtFixture
except AttributeError:
    from nova.tests.unit.virt.libvirt import fakelibvirt
    LIBVIRT_FIXTURE = fakelibvirt.FakeLibvirtFixture

GiB = harness.GiB
POOL = harness.POOL
GUID_A = harness.GUID_A
GUID_B = harness.GUID_B


def _init_args(func):
    getspec = getattr(inspect, 'getfullargspec', None) or inspect.getargspec
    return getspec(func).args


IN_ERA = (hasattr(imagebackend.Backend, 'by_name') and
          'disk_info_mapping' not in _init_args(imagebackend.Image.__init__))


class SioDriverHooksTestCase(harness.DriverTestBase):

    ERA = 'Nova 15.0.0 to 25.x'
    STUBBED_IF_PRESENT = ('_unplug_vifs', 'unplug_vifs', 'unfilter_instance',
                          '_undefine_domain', '_cleanup_resize_vtpm')
    SNAPSHOT_STUBS = ('_attach_pci_devices',
                      '_attach_direct_passthrough_ports',
                      '_attach_sriov_ports', '_create_domain', 'suspend')

    def in_era(self):
        return IN_ERA

    def use_libvirt(self):
        self.useFixture(LIBVIRT_FIXTURE())

    def setUp(self):
        super(SioDriverHooksTestCase, self).setUp()
        if hasattr(self.drvr, '_get_vpmems'):
            fake_sio.patch_object(
                self, self.drvr, '_get_vpmems', return_value=[], autospec=True)

    def call(self, method, **kwargs):
        """Call a driver method with the arguments its release takes.

        ``context``, ``instance`` and ``network_info`` are passed when
        the method has them (their order changed between releases).
        """
        func = getattr(self.drvr, method)
        known = {'context': self.context, 'instance': self.instance,
                 'network_info': []}
        for name in _init_args(func):
            if name in known:
                kwargs.setdefault(name, known[name])
        return func(**kwargs)

    def test_cleanup_after_evacuation_unmaps_only(self):
        ids = self.make_volumes(map_to=(GUID_A, GUID_B))
        self.instance.host = 'host-b'
        self.drvr.cleanup(self.context, self.instance, [],
                          destroy_disks=False)
        self.assertEqual([], self.mapped_on(GUID_A, ids.values()))
        for volume_id in ids.values():
            self.assertTrue(self.sio.is_mapped(volume_id))

    def test_cleanup_of_a_hard_reboot_keeps_the_mappings(self):
        ids = self.make_volumes()
        self.drvr.cleanup(self.context, self.instance, [],
                          destroy_disks=False)
        self.assertEqual(sorted(ids.values()),
                         sorted(self.mapped_on(GUID_A, ids.values())))

    def test_cleanup_resize_on_the_old_host(self):
        ids = self.make_volumes(map_to=(GUID_A, GUID_B),
                                snapshot=True)
        self.instance.host = 'host-b'
        self.call('_cleanup_resize')
        self.assertEqual([], sio_disks.instance_volumes(
            self.instance, kinds=('snapshot',)))
        self.assertEqual([], self.mapped_on(GUID_A, ids.values()))
        self.assertEqual(sorted(ids.values()), sorted(
            v.id for v in sio_disks.instance_volumes(self.instance)))

    def test_post_live_migration_at_source_unmaps(self):
        ids = self.make_volumes(map_to=(GUID_A, GUID_B))
        self.instance.host = 'host-b'
        self.drvr.post_live_migration_at_source(self.context, self.instance,
                                                [])
        self.assertEqual([], self.mapped_on(GUID_A, ids.values()))

    def test_finish_revert_migration_maps_on_the_source(self):
        ids = self.make_volumes(map_to=())
        for name in ('_get_guest_xml', '_create_domain_and_network',
                     '_create_guest_with_network',
                     '_finish_revert_migration_vtpm',
                     '_get_all_assigned_mediated_devices'):
            if hasattr(self.drvr, name):
                fake_sio.patch_object(self, self.drvr, name, autospec=True)
        fake_sio.patch_object(
            self, libvirt_driver.blockinfo, 'get_disk_info', autospec=True)
        self.instance.image_ref = ''
        # Some point releases of Stein and Train look the migration up.
        self.instance.migration_context = objects.MigrationContext(
            migration_id=1)
        if hasattr(objects.Migration, 'get_by_id_and_instance'):
            fake_sio.patch_object(
                self, objects.Migration, 'get_by_id_and_instance',
                return_value=objects.Migration(), autospec=True)
        kwargs = {'power_on': False}
        if 'migration' in _init_args(self.drvr.finish_revert_migration):
            kwargs['migration'] = objects.Migration()
        self.drvr.finish_revert_migration(self.context, self.instance,
                                          network_model.NetworkInfo(),
                                          **kwargs)
        self.assertEqual(sorted(ids.values()),
                         sorted(self.mapped_on(GUID_A, ids.values())))

    def test_disk_type_from_path(self):
        ids = self.make_volumes()
        path = sio_connection.device_path(ids['disk'])
        self.assertEqual('sio', libvirt_utils.get_disk_type_from_path(path))
        self.assertEqual('lvm', libvirt_utils.get_disk_type_from_path(
            '/dev/nova-vg/%s_disk' % self.instance.uuid))

    def test_instance_disk_info_leaves_sio_disks_out(self):
        ids = self.make_volumes()
        xml = ('<domain type="kvm"><name>instance-1</name>'
               '<uuid>%s</uuid><memory>524288</memory><vcpu>1</vcpu>'
               '<os><type>hvm</type></os><devices>'
               '<disk type="block" device="disk">'
               '<driver name="qemu" type="raw"/><source dev="%s"/>'
               '<target dev="vda" bus="virtio"/></disk>'
               '</devices></domain>'
               % (self.instance.uuid, sio_connection.device_path(ids['disk'])))
        if hasattr(self.drvr, '_get_instance_disk_info_from_config'):
            config = vconfig.LibvirtConfigGuest()
            config.parse_str(xml)
            info = self.drvr._get_instance_disk_info_from_config(config, {})
        else:  # Ocata parses the XML itself
            info = self.drvr._get_instance_disk_info('instance-1', xml, {})
        self.assertEqual([], info)

    def test_unrescue_deletes_the_rescue_volume(self):
        fake_sio.patch_object(self, self.drvr, '_destroy', autospec=True)
        self.make_volumes()
        name = sio_volumes.volume_name(self.instance.uuid, 'disk.rescue')
        rescue_id = self.sio.create_volume(name, 8, POOL)
        self.sio.map_volume(rescue_id, guid=GUID_A)
        self.assertIsNotNone(self.sio.by_name(name))
        fake_sio.patch_object(
            self, libvirt_utils, 'load_file', return_value='<domain/>',
            create=True)
        for name_ in ('_create_guest', '_create_domain'):
            if hasattr(self.drvr, name_):
                fake_sio.patch_object(self, self.drvr, name_, autospec=True)
        fake_sio.patch_object(
            self, self.drvr._host, 'get_guest', autospec=True)
        fake_sio.patch_object(self, libvirt_driver.os, 'unlink', autospec=True)
        fake_sio.patch_object(self, libvirt_utils, 'file_delete',
                              create=True)
        fake_sio.patch_object(
            self, libvirt_driver.lvm, 'remove_volumes', autospec=True)
        self.call('unrescue')
        self.assertIsNone(self.sio.by_name(name))
        self.assertIsNotNone(self.sio.by_name(
            sio_volumes.volume_name(self.instance.uuid, 'disk')))
