# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Volume names and sizes of instance disks.

A volume name is ``<prefix><uuid22>.<code>[<kind>]``:

* ``prefix``: 0-4 letters or digits from ``[scaleio] volume_name_prefix``,
  so several clouds can share a ScaleIO system;
* ``uuid22``: the 16 bytes of the instance UUID in unpadded URL-safe
  base64 (22 characters of ``A-Z a-z 0-9 - _``);
* ``code``: the disk: ``R`` root (``disk``), ``L`` (``disk.local``),
  ``S`` (``disk.swap``), ``C`` (``disk.config``), ``X`` (``disk.rescue``),
  ``CX`` (``disk.config.rescue``), ``E<n>`` (``disk.eph<n>``, n < 100);
* ``kind``: empty for the disk itself, ``~`` for its resize snapshot and
  ``#`` for a temporary volume.

The longest name is 4 + 22 + 1 + 3 + 1 = 31 characters, the ScaleIO limit.
Names need no URL quoting. :func:`parse_volume_name` reverses
:func:`volume_name`.

Sizes: ScaleIO (up to 4.x) allocates in 8 GiB units.
:func:`check_size` validates a disk size or rounds it up.
"""

from __future__ import absolute_import

import base64
import re
import uuid

from . import exception

MAX_NAME_LENGTH = 31
GRANULARITY = 8 * 1024 ** 3
KINDS = {'': '', 'snapshot': '~', 'temporary': '#'}

_FIXED = {'disk': 'R', 'disk.local': 'L', 'disk.swap': 'S',
          'disk.config': 'C', 'disk.rescue': 'X',
          'disk.config.rescue': 'CX'}
_FIXED_BY_CODE = dict((v, k) for k, v in _FIXED.items())
_EPH_RE = re.compile(r'^disk\.eph([0-9]|[1-9][0-9])$')
_PREFIX_RE = re.compile(r'^[A-Za-z0-9]{0,4}$')
_NAME_RE = re.compile(r'^(?P<prefix>[A-Za-z0-9]{0,4})'
                      r'(?P<uuid>[A-Za-z0-9_-]{22})\.'
                      r'(?P<code>R|L|S|C|X|CX|E(?:[0-9]|[1-9][0-9]))'
                      r'(?P<kind>[~#]?)$')


def disk_code(disk_name):
    """Return the short code of a Nova disk name (``disk.eph0`` -> E0).

    :raises InvalidName: for a disk name without a code.
    """
    if disk_name in _FIXED:
        return _FIXED[disk_name]
    match = _EPH_RE.match(disk_name or '')
    if match:
        return 'E' + match.group(1)
    raise exception.InvalidName(name=disk_name,
                                reason='unknown instance disk name')


def encode_uuid(instance_uuid):
    """Return the 22-character URL-safe base64 form of a UUID."""
    try:
        raw = uuid.UUID(str(instance_uuid)).bytes
    except ValueError:
        raise exception.InvalidName(name=instance_uuid,
                                    reason='not a UUID')
    return base64.urlsafe_b64encode(raw).decode('ascii').rstrip('=')


def decode_uuid(text):
    """Reverse :func:`encode_uuid`."""
    raw = base64.urlsafe_b64decode((text + '==').encode('ascii'))
    return str(uuid.UUID(bytes=raw))


def volume_name(instance_uuid, disk_name, prefix='', kind=''):
    """Return the ScaleIO volume name of an instance disk.

    :param instance_uuid: the instance UUID (any UUID spelling).
    :param disk_name: Nova disk name, e.g. ``disk`` or ``disk.eph0``.
    :param prefix: cloud prefix, 0-4 letters or digits.
    :param kind: ``''``, ``'snapshot'`` or ``'temporary'``.
    :raises InvalidName: for a bad prefix, UUID, disk name or kind.
    """
    prefix = prefix or ''
    if not _PREFIX_RE.match(prefix):
        raise exception.InvalidName(
            name=prefix, reason='the prefix must be 0-4 letters or digits')
    if kind not in KINDS:
        raise exception.InvalidName(name=kind, reason='unknown kind')
    name = '%s%s.%s%s' % (prefix, encode_uuid(instance_uuid),
                          disk_code(disk_name), KINDS[kind])
    return name


def parse_volume_name(name):
    """Return ``(instance_uuid, disk_name)`` of a volume name.

    :raises InvalidName: for names not made by :func:`volume_name`.
    """
    return parse_volume_name_full(name)[:2]


def parse_volume_name_full(name):
    """Return ``(instance_uuid, disk_name, prefix, kind)`` of a name.

    :raises InvalidName: for names not made by :func:`volume_name`.
    """
    match = _NAME_RE.match(name or '')
    if not match:
        raise exception.InvalidName(name=name,
                                    reason='not an instance disk name')
    code = match.group('code')
    disk = _FIXED_BY_CODE.get(code) or 'disk.eph' + code[1:]
    kind = dict((v, k) for k, v in KINDS.items())[match.group('kind')]
    try:
        instance_uuid = decode_uuid(match.group('uuid'))
    except (ValueError, TypeError):
        raise exception.InvalidName(name=name, reason='bad UUID part')
    return instance_uuid, disk, match.group('prefix'), kind


def check_size(disk_name, size_bytes, round_up=False):
    """Validate the size of a disk; return the size to allocate in bytes.

    :param disk_name: disk (or volume) name, used in error messages.
    :param size_bytes: requested size in bytes.
    :param round_up: round up to a multiple of 8 GiB instead of failing.
    :raises InvalidSize: size not positive, or not a multiple of 8 GiB
        while ``round_up`` is False.
    """
    try:
        size = int(size_bytes)
    except (TypeError, ValueError):
        size = None
    if size is None or size <= 0:
        raise exception.InvalidSize(
            disk=disk_name,
            reason='%r bytes is not a positive size' % (size_bytes,))
    rounded = -(-size // GRANULARITY) * GRANULARITY
    if rounded != size and not round_up:
        raise exception.InvalidSize(
            disk=disk_name,
            reason='%d bytes (%.2f GiB) is not a multiple of 8 GiB; the '
                   'next valid size is %d bytes (%d GiB). Choose a flavor '
                   'with 8 GiB multiples or set [scaleio] '
                   'round_volume_capacity = True'
                   % (size, size / float(1024 ** 3), rounded,
                      rounded // 1024 ** 3))
    return rounded


def size_in_gb(size_bytes):
    """Return a multiple-of-8-GiB byte size in GiB (for the client)."""
    return int(size_bytes) // 1024 ** 3
