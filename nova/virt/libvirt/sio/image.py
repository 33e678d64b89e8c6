# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The ``sio`` image backend: instance disks on ScaleIO / PowerFlex volumes.

Every disk (``disk``, ``disk.local``, ``disk.eph<n>``, ``disk.swap``,
``disk.rescue``) is one ScaleIO volume, mapped to the compute hosts that
need it through their SDC and given to libvirt as the block device
``<device_root>/emc-vol-<systemId>-<volumeId>``. The backend is shared
block storage, like ``rbd``: evacuation reuses the volumes and live
migration maps them on the destination instead of copying them.

One class serves every Nova release from Kilo on. The differences
between releases are detected at run time:

* ``Image.__init__`` takes ``path`` (Newton+) and ``disk_info_mapping``
  (Zed+) or neither (Kilo-Mitaka, where the subclass sets ``self.path``);
* ``images.convert_image`` has an input format argument from the
  OSSA-2016-001 fix on;
* ``exists`` (Newton+) and ``check_image_exists`` (before) are both
  defined and both ask ScaleIO;
* ``create_image`` and ``cache`` name ``safe`` (2024.2+) explicitly.

Glance images are downloaded into the ``_base`` cache as usual and then
converted into the mapped volume with ``qemu-img`` as root, like the
``lvm`` backend does; ephemeral disks are formatted straight on the
device. With ``[scaleio] zero_copy_boot`` a root disk is instead a
ScaleIO snapshot of a per-image, per-pool base volume that is filled
once (see :func:`~.zerocopy.snapshot_from_base`); a host that finds it
filled needs no copy of the image in ``_base``. Volumes are mapped
lazily: ``libvirt_info`` maps an existing volume before its path goes
into the domain XML.
"""

from __future__ import absolute_import

import inspect
import logging
import os

from oslo_config import cfg

from nova.compute import task_states
from nova import exception as nova_exception
from nova.virt.disk import api as disk_api
from nova.virt import images
from nova.virt.libvirt import imagebackend
from nova.virt.libvirt.sio import capacity
from nova.virt.libvirt.sio import connection
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import flavors
from nova.virt.libvirt.sio import naming
from nova.virt.libvirt.sio import resize
from nova.virt.libvirt.sio import snapshots
from nova.virt.libvirt.sio import volumes
from nova.virt.libvirt.sio import zerocopy

try:
    from nova.virt.image import model as imgmodel
except ImportError:  # Kilo has no image model
    imgmodel = None

LOG = logging.getLogger(__name__)
CONF = cfg.CONF

SOURCE_TYPE = 'block'
DRIVER_FORMAT = 'raw'
# Disks that always get thin volumes: they are short-lived or tiny.
THIN_DISKS = ('disk.rescue', 'disk.config', 'disk.config.rescue')
# The disk that boots from a snapshot with [scaleio] zero_copy_boot.
ZERO_COPY_DISK = 'disk'
HARD_REBOOT_STATES = tuple(
    getattr(task_states, name) for name in (
        'REBOOTING_HARD', 'REBOOT_PENDING_HARD', 'REBOOT_STARTED_HARD')
    if hasattr(task_states, name))


class SioDiskSizeInvalid(nova_exception.InvalidInput,
                         nova_exception.ImageUnacceptable):
    """A flavor disk size that ScaleIO cannot hold.

    It derives from both exceptions that make the compute manager abort a
    build without rescheduling (InvalidInput from Queens, ImageUnacceptable
    in every release), so the user sees this message in the fault.
    """

    msg_fmt = '%(reason)s'


class SioCrossCellResizeRefused(nova_exception.NovaException):
    """A resize across cells of an instance with ScaleIO disks.

    Volumes are named after the instance UUID, which the instance keeps in
    the target cell: both cells would use the same volumes, and deleting
    the instance of one cell (confirm or revert) would delete the disks of
    the other.
    """

    msg_fmt = ('Instance %(instance)s has ScaleIO (images_type = sio) '
               'disks and cannot be resized or migrated to another cell: '
               'both cells would use the same volumes. Resize or migrate '
               'it within its cell.')


def _arg_names(func):
    getspec = getattr(inspect, 'getfullargspec', None)
    if getspec is None:  # Python 2
        getspec = inspect.getargspec
    try:
        return getspec(func).args
    except TypeError:
        return []


_INIT_ARGS = _arg_names(imagebackend.Image.__init__)
_CONVERT_ARGS = _arg_names(images.convert_image)


def _convert(source, dest, in_format, out_format):
    """``qemu-img convert`` as root, with or without the input format."""
    if 'in_format' in _CONVERT_ARGS:
        images.convert_image(source, dest, in_format, out_format,
                             run_as_root=True)
    else:  # before OSSA-2016-001
        images.convert_image(source, dest, out_format, run_as_root=True)


def _copy_device(source, target):
    """Copy one mapped volume onto another (pool moves)."""
    _convert(source, target, DRIVER_FORMAT, DRIVER_FORMAT)


def _file_format(path):
    """Return the format qemu-img sees in a local file (raw if unknown)."""
    try:
        return images.qemu_img_info(path).file_format or 'raw'
    except Exception:
        LOG.warning('Cannot read the format of %s; assuming raw', path)
        return 'raw'


def _size_error(exc):
    return SioDiskSizeInvalid(reason=str(exc), image_id='-')


class Sio(imagebackend.Image):
    """An instance disk stored on a ScaleIO / PowerFlex volume.

    :param instance: the instance owning the disk.
    :param disk_name: the Nova disk name (``disk``, ``disk.local`` ...).
    :param path: the libvirt device path, when the object is built from
        a domain (snapshot); the disk name is then read from the volume.
    :param disk_info_mapping: the block-info mapping of the disk (Zed+).
    """

    SUPPORTS_CLONE = False

    def __init__(self, instance=None, disk_name=None, path=None,
                 disk_info_mapping=None, **kwargs):
        self.instance = instance
        self._path = None
        self._volume_id = None
        if path:
            self._volume_id = connection.volume_id_from_path(path)
            if disk_name is None:
                volume = connection.get_client().get_volume(self._volume_id)
                disk_name = naming.parse_volume_name(volume['name'])[1]
        self.disk_name = disk_name
        self.instance_uuid = instance['uuid'] if instance else None
        self.volume_name = None
        if self.instance_uuid and disk_name:
            self.volume_name = volumes.volume_name(self.instance_uuid,
                                                   disk_name)
        init_kwargs = {'is_block_dev': True}
        if 'disk_info_mapping' in _INIT_ARGS:
            init_kwargs['disk_info_mapping'] = disk_info_mapping
        if 'path' in _INIT_ARGS:
            super(Sio, self).__init__(path, SOURCE_TYPE, DRIVER_FORMAT,
                                      **init_kwargs)
        else:
            super(Sio, self).__init__(SOURCE_TYPE, DRIVER_FORMAT,
                                      **init_kwargs)
            self.path = path

    # -- identity ----------------------------------------------------------

    @property
    def path(self):
        """The device path of the volume, None while it does not exist."""
        if self._path is None:
            volume_id = self._lookup()
            if volume_id is not None:
                self._path = connection.device_path(volume_id)
        return self._path

    @path.setter
    def path(self, value):
        self._path = value

    def _lookup(self):
        if self._volume_id is None and self.volume_name:
            self._volume_id = connection.get_client().get_volume_id(
                self.volume_name)
        return self._volume_id

    @property
    def volume_id(self):
        """The ScaleIO volume id, None while the volume does not exist."""
        return self._lookup()

    def _flavor(self):
        if self.instance is None:
            return None
        try:
            return self.instance.flavor
        except (AttributeError, KeyError, NotImplementedError):
            return None

    def _resizing(self):
        try:
            return self.instance.task_state == task_states.RESIZE_FINISH
        except (AttributeError, KeyError, NotImplementedError):
            return False

    def exists(self):
        """Whether the volume exists in ScaleIO (never a guess)."""
        self._volume_id = None
        self._path = None
        return self._lookup() is not None

    check_image_exists = exists

    @staticmethod
    def is_shared_block_storage():
        return True

    @staticmethod
    def is_file_in_instance_path():
        return False

    def _can_fallocate(self):
        return False

    def ensure_mapped(self):
        """Map the volume to this host if it exists; return the path."""
        volume_id = self._lookup()
        if volume_id is None:
            return None
        self._path = volumes.map_volume(volume_id)
        return self._path

    def _hard_rebooting(self):
        try:
            state = self.instance.task_state
        except (AttributeError, KeyError, NotImplementedError):
            return False
        return state is not None and state in HARD_REBOOT_STATES

    def libvirt_info(self, *args, **kwargs):
        """Map the volume, then describe it like any block disk.

        A revert that stopped half-way (the disk volume renamed away) is
        finished first. A hard reboot of an instance that lives here also
        unmaps its volume from other hosts (left there by a failed move).

        :raises VolumeNotFound: the disk has no volume; the domain XML
            would otherwise get no source path.
        """
        if self._lookup() is None and self.instance is not None and \
                resize.rollback_pending(self.instance):
            LOG.warning('Finishing the interrupted resize revert of '
                        'instance %s', self.instance_uuid)
            resize.rollback_snapshots(self.instance, map_here=False)
            self._volume_id = None
            self._path = None
        if self.ensure_mapped() is None:
            raise sio_exc.VolumeNotFound(volume=self.volume_name)
        if self._hard_rebooting() and \
                self.instance.host == CONF.host:
            volumes.unmap_elsewhere(self._volume_id)
        return super(Sio, self).libvirt_info(*args, **kwargs)

    # -- creation ------------------------------------------------------------

    def _checked(self, size, round_up=None):
        try:
            return flavors.checked_size(self._flavor(), self.disk_name,
                                        size, round_up=round_up,
                                        volume=self.volume_name)
        except sio_exc.InvalidSize as exc:
            raise _size_error(exc)

    def _check_flavor(self):
        try:
            flavors.check_flavor_sizes(self._flavor())
        except sio_exc.InvalidSize as exc:
            raise _size_error(exc)

    def _create_volume(self, size):
        thin = True if self.disk_name in THIN_DISKS else None
        self._volume_id = volumes.create_volume(
            self.instance_uuid, self.disk_name, size, self._flavor(),
            thin=thin)
        self._path = None
        try:
            return volumes.map_volume(self._volume_id)
        except Exception:
            self._discard()
            raise

    def _discard(self):
        """Delete the volume made by a failed create_image."""
        volume_id, self._volume_id, self._path = self._volume_id, None, None
        if volume_id is None:
            return
        try:
            volumes.delete_volume(volume_id)
        except Exception:
            LOG.exception('Could not delete ScaleIO volume %s of a failed '
                          'disk creation', volume_id)

    def create_image(self, prepare_template, base, size, safe=False,
                     *args, **kwargs):
        """Create the volume of this disk, or reuse the existing one.

        :param prepare_template: the fetch or format function; it gets
            ``target=``.
        :param base: the ``_base`` cache file of the template.
        :param size: the disk size in bytes, None for the image's size.
        :param safe: whether the template is a safe filesystem (unused,
            named so that it is never passed on to the template).
        """
        if self._lookup() is not None:
            self._follow_flavor_pool()
            self.ensure_mapped()
            if size:
                self.resize_image(size)
            return
        self._check_flavor()
        if 'ephemeral_size' in kwargs:
            # A generated disk: format it straight on the device.
            size = self._checked(size)
            target = self._create_volume(size)
            try:
                prepare_template(target=target, *args, **kwargs)
            except Exception:
                self._discard()
                raise
            return
        image_id = kwargs.get('image_id')
        zero_copy = bool(image_id and self.disk_name == ZERO_COPY_DISK and
                         CONF.scaleio.zero_copy_boot)
        if (zero_copy and not os.path.exists(base) and
                self._snapshot_filled_base(image_id, size)):
            return
        if not os.path.exists(base):
            prepare_template(target=base, *args, **kwargs)
        base_size = disk_api.get_disk_size(base)
        self.verify_base_size(base, size, base_size=base_size)
        if size:
            volume_size = self._checked(size)
        else:
            # Root of a 0 GB flavor or a rescue disk: the image's size,
            # rounded up to whole 8 GiB units.
            volume_size = self._checked(base_size, round_up=True)
        if zero_copy and self._create_from_base(image_id, base, base_size,
                                                volume_size):
            return
        target = self._create_volume(volume_size)
        try:
            _convert(base, target, _file_format(base), DRIVER_FORMAT)
        except Exception:
            self._discard()
            raise

    def _follow_flavor_pool(self):
        """During a resize, move the volume to the new flavor's pool."""
        if not self._resizing():
            return
        moved = resize.move_volume(self.instance, self.disk_name,
                                   self._flavor(), _copy_device)
        if moved != self._volume_id:
            self._volume_id = moved
            self._path = None

    def _create_from_base(self, image_id, base, base_size, volume_size):
        """Make the root disk a snapshot of the image's base volume.

        :returns: False when no base volume could be had, so that the
            caller copies the image instead.
        """
        in_format = _file_format(base)

        def fill(device):
            _convert(base, device, in_format, DRIVER_FORMAT)

        made = zerocopy.snapshot_from_base(image_id, self._flavor(),
                                           base_size, self.volume_name, fill)
        if made is None:
            LOG.warning('No base volume for image %s; copying it into %s',
                        image_id, self.volume_name)
            return False
        self._use_snapshot(made, volume_size, image_id)
        return True

    def _snapshot_filled_base(self, image_id, size):
        """Snapshot the image's base volume without a local copy of it.

        When another host has filled the base volume already, the first
        boot of the image here needs no download into ``_base``. The
        base volume holds the image's virtual size rounded up, so a
        flavor disk at least that large holds the image; a smaller one
        (or none filled yet) is left to the download, which checks the
        image's own size as Nova does.

        :param image_id: the Glance image id.
        :param size: the disk size in bytes, None for the image's size.
        :returns: whether the root disk is now a snapshot.
        """
        volume_size = self._checked(size) if size else None
        made = zerocopy.snapshot_from_base(image_id, self._flavor(), None,
                                           self.volume_name, None)
        if made is None:
            return False
        if size and size < made[1]:
            self._volume_id = made[0]
            self._discard()
            return False
        self._use_snapshot(made, volume_size or made[1], image_id)
        return True

    def _use_snapshot(self, made, volume_size, image_id):
        """Grow and map the snapshot that is now the root disk.

        :param made: ``(volume_id, size_bytes)`` of the snapshot.
        :param volume_size: the disk size in bytes.
        :param image_id: the Glance image id.
        """
        self._volume_id, snap_size = made
        self._path = None
        try:
            if volume_size > snap_size:
                connection.get_client().extend_volume(
                    self._volume_id, naming.size_in_gb(volume_size))
                capacity.capacity_changed()
            self._path = volumes.map_volume(self._volume_id)
        except Exception:
            self._discard()
            raise
        LOG.info('Root disk %s is a snapshot of the base volume of image '
                 '%s (%d GiB)', self.volume_name, image_id,
                 volume_size // volumes.GiB)

    def cache(self, fetch_func, filename, size=None, *args, **kwargs):
        """Create the disk, or map and grow the volume that exists.

        ``Image.cache`` before Mitaka never resizes an existing disk
        whose image is already cached, so after a resize to a larger
        flavor the volume is grown here first.

        A new generated disk (ephemeral) is made here too: before Ocata
        ``Image.cache`` skips the format function when its target exists,
        and the mapped device of a new volume always does.
        """
        exists = self.exists()
        if exists:
            self._follow_flavor_pool()
        if size and exists:
            self.ensure_mapped()
            self.resize_image(size)
        elif not exists and 'ephemeral_size' in kwargs:
            return self.create_image(fetch_func, None, size,
                                     *args, **kwargs)
        return super(Sio, self).cache(fetch_func, filename, size,
                                      *args, **kwargs)

    def resize_image(self, size):
        """Grow the volume to ``size`` bytes (never shrink it).

        When the volume is mapped here the SDC is rescanned and the device
        waited for until it shows the new size, so that what runs next
        (a file system resize, the guest) sees the whole volume.
        """
        volume_id = self._lookup()
        if volume_id is None or not size:
            return
        current = volumes.volume_size(volume_id)
        if current >= size:
            return
        wanted = self._checked(size)
        LOG.info('Extending ScaleIO volume %s from %d to %d GiB',
                 self.volume_name, current // volumes.GiB,
                 wanted // volumes.GiB)
        connection.get_client().extend_volume(volume_id,
                                              naming.size_in_gb(wanted))
        capacity.capacity_changed()
        volumes.wait_for_growth(volume_id, wanted)

    def get_disk_size(self, name):
        """Size of ``name``: the volume's for its device, else the file's."""
        if name and connection.is_sio_path(name):
            return volumes.volume_size(connection.volume_id_from_path(name))
        return super(Sio, self).get_disk_size(name)

    # -- other uses of the disk ----------------------------------------------

    def snapshot_extract(self, target, out_format, quiesce=None):
        """Copy the volume into a local file.

        With ``[scaleio] live_snapshot`` the copy is read from a ScaleIO
        snapshot of the volume taken first and deleted afterwards, so the
        guest need not be paused while the image is exported.

        :param target: the local file to write.
        :param out_format: the image format to write.
        :param quiesce: see :func:`~.snapshots.export_from_snapshot` (live
            snapshots only).
        """
        self._refuse_cross_cell_resize()
        if CONF.scaleio.live_snapshot:
            volume_id = self._lookup()
            if volume_id is None:
                raise sio_exc.VolumeNotFound(volume=self.volume_name)

            def export(device):
                _convert(device, target, DRIVER_FORMAT, out_format)
            snapshots.export_from_snapshot(volume_id, self.instance_uuid,
                                           self.disk_name, export,
                                           quiesce=quiesce)
            return
        source = self.ensure_mapped()
        if source is None:
            raise sio_exc.VolumeNotFound(volume=self.volume_name)
        _convert(source, target, DRIVER_FORMAT, out_format)

    def _refuse_cross_cell_resize(self):
        """Refuse the image upload of a snapshot-based (cross-cell) resize.

        Nova snapshots the root disk for a resize only when it moves the
        instance to another cell (``prep_snapshot_based_resize_at_source``,
        task state ``resize_migrating``); a resize within a cell never
        exports the disk.

        :raises SioCrossCellResizeRefused: during such a resize.
        """
        try:
            state = self.instance.task_state
        except (AttributeError, KeyError, NotImplementedError):
            return
        if state == task_states.RESIZE_MIGRATING:
            raise SioCrossCellResizeRefused(instance=self.instance_uuid)

    def get_model(self, connection):
        """The disk as a local block device (for file injection)."""
        return imgmodel.LocalBlockImage(self.ensure_mapped())

    def import_file(self, instance, local_file, remote_name):
        """Config drives stay local files; nothing to import."""

    def create_snap(self, name):
        """Snapshot every disk of the instance before a resize."""
        resize.snapshot_volumes(self.instance)

    def remove_snap(self, name, ignore_errors=False):
        """Delete the resize snapshots of the instance."""
        try:
            resize.remove_snapshots(self.instance)
        except sio_exc.SioError:
            if not ignore_errors:
                raise
            LOG.warning('Could not remove the resize snapshots of '
                        'instance %s', self.instance_uuid)

    def rollback_to_snap(self, name):
        """Return every disk of the instance to its resize snapshot."""
        resize.rollback_snapshots(self.instance)
        self._volume_id = None
        self._path = None
