# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Host side of ScaleIO: the local SDC and its block devices.

* :func:`get_sdc_guid` returns the local SDC GUID (upper case), from the
  configuration or from ``drv_cfg --query_guid``;
* :func:`query_sdc_ids` and :func:`query_mapped_volumes` parse
  ``drv_cfg --query_mdms`` / ``--query_vols``;
* :func:`device_path` is ``<device_root>/emc-vol-<systemId>-<volumeId>``;
* :func:`wait_for_device` / :func:`wait_for_removal` poll for it with a
  short, growing interval and a deadline;
* :func:`rescan` asks the SDC to look for new volumes and sizes
  (``drv_cfg --rescan``); :func:`device_size` / :func:`wait_for_size`
  read the size a device shows on this host.

Commands run through an *executor*: a callable ``execute(*argv)`` that
returns ``(stdout, stderr)`` and raises on a non-zero exit, such as
``functools.partial(nova.utils.execute, run_as_root=True)``. Arguments
are always passed as a list, never through a shell.
"""

from __future__ import absolute_import

import logging
import os
import re
import stat
import subprocess
import time

from . import exception

LOG = logging.getLogger(__name__)

# ScaleIO 2.x and later, then the 1.x path that current hosts still have.
DRV_CFG_PATHS = ('/opt/emc/scaleio/sdc/bin/drv_cfg',
                 '/bin/emc/scaleio/drv_cfg')
DEVICE_PREFIX = 'emc-vol'

_GUID_RE = re.compile(r'\b([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-'
                      r'[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\b')
_VOL_RE = re.compile(r'^VOL-ID\s+([0-9a-fA-F]+)\s+MDM-ID\s+([0-9a-fA-F]+)')
_MDM_RE = re.compile(r'MDM-ID\s+([0-9a-fA-F]+)\s+SDC ID\s+([0-9a-fA-F]+)')


def default_execute(*argv):
    """Run ``argv`` without a shell; return ``(stdout, stderr)`` text.

    :raises CommandFailed: on a non-zero exit status.
    """
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = proc.communicate()
    out = out.decode('utf-8', 'replace')
    err = err.decode('utf-8', 'replace')
    if proc.returncode != 0:
        raise exception.CommandFailed(command=' '.join(argv),
                                      code=proc.returncode,
                                      stderr=err.strip()[:200])
    return out, err


def normalize_guid(guid):
    """Return ``guid`` stripped and upper-cased (as the gateway shows it).

    :raises InvalidConfig: when it is not a GUID.
    """
    text = (guid or '').strip()
    match = _GUID_RE.match(text)
    if not match or match.group(1) != text:
        raise exception.InvalidConfig(option='default_sdcguid',
                                      reason='%r is not a GUID' % (guid,))
    return text.upper()


def find_drv_cfg(override=None, candidates=DRV_CFG_PATHS):
    """Return the drv_cfg paths to try, the override alone if given."""
    if override:
        return [override]
    return [p for p in candidates if os.path.exists(p)]


def _run_drv_cfg(flag, drv_cfg_path, execute, candidates):
    execute = execute or default_execute
    paths = find_drv_cfg(drv_cfg_path, candidates)
    if not paths:
        raise exception.SdcGuidUnavailable(
            reason='drv_cfg not found at %s' % ', '.join(candidates))
    errors = []
    for path in paths:
        try:
            out = execute(path, flag)
        except Exception as exc:  # executors raise their own errors
            errors.append('%s: %s' % (path, exc))
            continue
        if isinstance(out, tuple):
            out = out[0]
        if isinstance(out, bytes):
            out = out.decode('utf-8', 'replace')
        return out
    raise exception.SdcGuidUnavailable(reason='; '.join(errors))


def get_sdc_guid(conf_guid=None, drv_cfg_path=None, execute=None,
                 candidates=DRV_CFG_PATHS):
    """Return the local SDC GUID in upper case.

    :param conf_guid: ``[scaleio] default_sdcguid``; wins when set.
    :param drv_cfg_path: ``[scaleio] drv_cfg_path`` override.
    :param execute: executor (see module docstring).
    :param candidates: drv_cfg paths probed when there is no override.
    :raises SdcGuidUnavailable: no GUID could be determined.
    """
    if conf_guid:
        return normalize_guid(conf_guid)
    out = _run_drv_cfg('--query_guid', drv_cfg_path, execute, candidates)
    match = _GUID_RE.search(out or '')
    if not match:
        raise exception.SdcGuidUnavailable(
            reason='drv_cfg --query_guid printed no GUID')
    return match.group(1).upper()


def query_sdc_ids(drv_cfg_path=None, execute=None,
                  candidates=DRV_CFG_PATHS):
    """Return ``{system_id: sdc_id}`` from ``drv_cfg --query_mdms``."""
    out = _run_drv_cfg('--query_mdms', drv_cfg_path, execute, candidates)
    return dict((s.lower(), c.lower()) for s, c in _MDM_RE.findall(out))


def query_mapped_volumes(drv_cfg_path=None, execute=None,
                         candidates=DRV_CFG_PATHS):
    """Return ``[(volume_id, system_id)]`` from ``drv_cfg --query_vols``."""
    out = _run_drv_cfg('--query_vols', drv_cfg_path, execute, candidates)
    result = []
    for line in out.splitlines():
        match = _VOL_RE.match(line.strip())
        if match:
            result.append((match.group(1).lower(), match.group(2).lower()))
    return result


def device_path(device_root, system_id, volume_id):
    """Return ``<device_root>/emc-vol-<system_id>-<volume_id>``."""
    return os.path.join(device_root, '%s-%s-%s' % (DEVICE_PREFIX,
                                                   system_id, volume_id))


def _poll(check, path, timeout, event, interval, max_interval, sleep,
          clock):
    deadline = clock() + timeout
    delay = interval
    while True:
        if check(path):
            return path
        remaining = deadline - clock()
        if remaining <= 0:
            raise exception.DeviceTimeout(path=path, event=event,
                                          timeout=timeout)
        sleep(min(delay, remaining))
        delay = min(delay * 1.5, max_interval)


def wait_for_device(path, timeout, interval=0.05, max_interval=0.5,
                    sleep=time.sleep, clock=time.time):
    """Wait until ``path`` exists (a link resolving to a device).

    :param path: the by-id path from :func:`device_path`.
    :param timeout: seconds before giving up.
    :param interval: first polling delay; grows by half up to
        ``max_interval``.
    :returns: ``path``.
    :raises DeviceTimeout: the device did not appear in time.
    """
    return _poll(os.path.exists, path, timeout, 'appear', interval,
                 max_interval, sleep, clock)


def wait_for_removal(path, timeout, interval=0.05, max_interval=0.5,
                     sleep=time.sleep, clock=time.time):
    """Wait until ``path`` is gone (not even a dangling link).

    :raises DeviceTimeout: the device did not vanish in time.
    """
    return _poll(lambda p: not os.path.lexists(p), path, timeout,
                 'disappear', interval, max_interval, sleep, clock)


def rescan(drv_cfg_path=None, execute=None, candidates=DRV_CFG_PATHS):
    """Make the SDC look again for mapped volumes and their sizes.

    ``drv_cfg --rescan``, as os-brick runs it: the SDC then creates the
    devices of mapped volumes it has no device for and shows the current
    size of grown volumes.

    :raises SdcGuidUnavailable: drv_cfg is missing or failed.
    """
    _run_drv_cfg('--rescan', drv_cfg_path, execute, candidates)


def device_size(path):
    """Return the size in bytes that the device at ``path`` shows here.

    :param path: a by-id path (a link to a block device, or to a file).
    :raises OSError: the device cannot be opened.
    """
    info = os.stat(path)
    if stat.S_ISREG(info.st_mode):
        return info.st_size
    with open(path, 'rb') as handle:
        handle.seek(0, os.SEEK_END)
        return handle.tell()


def wait_for_size(path, size, timeout, read_size=device_size,
                  interval=0.05, max_interval=0.5, sleep=time.sleep,
                  clock=time.time):
    """Wait until the device at ``path`` shows at least ``size`` bytes.

    :param read_size: ``read_size(path)`` returns the size shown now.
    :returns: ``path``.
    :raises DeviceTimeout: the device kept a smaller size.
    """
    return _poll(lambda p: read_size(p) >= size, path, timeout,
                 'grow to %d bytes' % size, interval, max_interval, sleep,
                 clock)
