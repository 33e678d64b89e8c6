# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The gateway client and the SDC of this host, shared by the process.

One :class:`~nova.virt.libvirt.sio.client.Client` serves the whole
nova-compute process; it is rebuilt when the ``[scaleio]`` gateway options
change (tests, reloads). The identity of this host's SDC (its GUID and its
id in the system) is read once and kept with it. ``drv_cfg`` and the size
of a device are read as root through privsep where Nova has it (Queens
on), else through ``nova.utils.execute``; the privileged entry points
accept nothing but the ``drv_cfg`` queries and ScaleIO device paths.

The other runtime modules keep their process-wide figures here too
(:func:`remember` / :func:`recall` / :func:`forget`), so that
:func:`reset` forgets everything at once.
"""

from __future__ import absolute_import

import errno
import logging
import os
import threading

from oslo_config import cfg

from nova.virt.libvirt.sio import client as sio_client
from nova.virt.libvirt.sio import conf as sio_conf
from nova.virt.libvirt.sio import exception as sio_exc
from nova.virt.libvirt.sio import host as sio_host

LOG = logging.getLogger(__name__)
CONF = cfg.CONF
sio_conf.register_opts(CONF)

_LOCK = threading.Lock()
_STATE = {}


def _conf_key():
    group = CONF.scaleio
    return tuple(group[name] for name in (
        'rest_server_ip', 'rest_server_port', 'rest_server_scheme',
        'rest_server_username', 'rest_server_password',
        'verify_server_certificate', 'server_certificate_path',
        'default_sdcguid', 'drv_cfg_path', 'allow_non_padded_volumes'))


def get_client():
    """Return the process-wide :class:`~.client.Client`.

    It is rebuilt when the gateway options change (tests, reloads); the
    figures kept with it are dropped then.
    """
    key = _conf_key()
    with _LOCK:
        if _STATE.get('key') != key:
            old = _STATE.get('client')
            _STATE.clear()
            if old is not None:
                try:
                    old.close()
                except Exception:  # a dead session must not block
                    pass
            _STATE['client'] = sio_client.Client.from_conf(CONF)
            _STATE['key'] = key
        return _STATE['client']


def reset():
    """Forget the cached client, SDC identity, system id and figures."""
    with _LOCK:
        _STATE.clear()


def recall(name):
    """Return a figure kept for the current client, or None.

    :param name: the figure's name.
    """
    return _STATE.get(name)


def remember(name, value):
    """Keep a figure until :func:`forget`, :func:`reset` or a new client.

    :param name: the figure's name.
    :param value: the figure.
    """
    _STATE[name] = value


def forget(name):
    """Drop a figure kept by :func:`remember` (no error when absent).

    :param name: the figure's name.
    """
    _STATE.pop(name, None)


# -- root rights -------------------------------------------------------------


def _root_execute(*argv):
    """Run ``drv_cfg`` with root rights, through privsep where it exists."""
    if _privileged_drv_cfg is not None:
        return _privileged_drv_cfg(*argv)
    from nova import utils as nova_utils
    return nova_utils.execute(*argv, run_as_root=True)


def _drv_cfg_paths():
    paths = list(sio_host.DRV_CFG_PATHS)
    if CONF.scaleio.drv_cfg_path:
        paths.append(CONF.scaleio.drv_cfg_path)
    return paths


try:
    import nova.privsep as _nova_privsep
    _PCTXT = _nova_privsep.sys_admin_pctxt
except (ImportError, AttributeError):  # before Queens
    _PCTXT = None

if _PCTXT is not None:
    @_PCTXT.entrypoint
    def _privileged_drv_cfg(path, flag):
        """Run ``<drv_cfg> --query_*`` as root; nothing else is allowed."""
        from oslo_concurrency import processutils
        if path not in _drv_cfg_paths() or flag not in (
                '--query_guid', '--query_mdms', '--query_vols',
                '--rescan'):
            raise ValueError('refusing to run %s %s' % (path, flag))
        return processutils.execute(path, flag)

    @_PCTXT.entrypoint
    def _privileged_device_size(path):
        """Return the size of a ScaleIO device; nothing else is read."""
        root = os.path.normpath(CONF.scaleio.device_root)
        if os.path.dirname(os.path.normpath(path)) != root or \
                not is_sio_path(path):
            raise ValueError('refusing to read the size of %s' % path)
        return sio_host.device_size(path)
else:
    _privileged_drv_cfg = None
    _privileged_device_size = None


# -- the SDC of this host ----------------------------------------------------


def sdc_guid():
    """Return the GUID of the local SDC (configured or from drv_cfg)."""
    get_client()
    with _LOCK:
        if 'guid' not in _STATE:
            _STATE['guid'] = sio_host.get_sdc_guid(
                CONF.scaleio.default_sdcguid, CONF.scaleio.drv_cfg_path,
                execute=_root_execute)
        return _STATE['guid']


def sdc_id():
    """Return the gateway id of the local SDC."""
    return get_client().get_sdc_id(sdc_guid())


def local_sdc_id():
    """Return this host's SDC id as its own ``drv_cfg`` tells it.

    No gateway call: the SDC knows its id in each system. Without drv_cfg
    the id is looked up by GUID (:func:`sdc_id`). The id only selects
    which mappings are listed; every unmap names this host's GUID.
    """
    client = get_client()
    with _LOCK:
        known = _STATE.get('local_sdc')
    if known:
        return known
    try:
        ids = sio_host.query_sdc_ids(CONF.scaleio.drv_cfg_path,
                                     execute=_root_execute)
    except Exception:  # no drv_cfg here: ask the gateway
        ids = {}
    found = ids.get(str(client.get_system_id()).lower()) or sdc_id()
    with _LOCK:
        _STATE['local_sdc'] = found
    return found


def rescan():
    """Ask this host's SDC to rescan; return whether it could.

    A failure is logged, not raised: the caller waits for the device (or
    its size) anyway and reports the timeout.
    """
    try:
        sio_host.rescan(CONF.scaleio.drv_cfg_path, execute=_root_execute)
    except Exception as exc:  # executors raise their own errors
        LOG.warning('Could not rescan the ScaleIO SDC of this host: %s', exc)
        return False
    return True


# -- devices -----------------------------------------------------------------


def device_path(volume_id):
    """Return the by-id device path of a volume on this host.

    :param volume_id: the ScaleIO volume id.
    """
    client = get_client()
    return sio_host.device_path(CONF.scaleio.device_root,
                                client.get_system_id(), volume_id)


def is_sio_path(path):
    """Whether ``path`` is the device of a ScaleIO volume.

    :param path: a libvirt disk source path (or None).
    """
    if not path or not isinstance(path, (type(u''), str)):
        return False
    return os.path.basename(path).startswith(sio_host.DEVICE_PREFIX + '-')


def volume_id_from_path(path):
    """Return the volume id at the end of an ``emc-vol-<sys>-<id>`` path.

    :param path: a ScaleIO device path.
    :raises InvalidName: ``path`` is not a ScaleIO device.
    """
    if not is_sio_path(path):
        raise sio_exc.InvalidName(name=path, reason='not a ScaleIO device')
    return os.path.basename(path).rsplit('-', 1)[1]


def device_size(path):
    """Return the size a device shows here, reading it as root if needed.

    :param path: the device path.
    """
    try:
        return sio_host.device_size(path)
    except (IOError, OSError) as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM):
            raise
    if _privileged_device_size is not None:
        return _privileged_device_size(path)
    from nova import utils as nova_utils
    out = nova_utils.execute('blockdev', '--getsize64', path,
                             run_as_root=True)[0]
    return int(out.strip())
