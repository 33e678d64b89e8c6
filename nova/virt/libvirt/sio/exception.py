# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Exceptions of the ScaleIO / PowerFlex client.

Every exception derives from :class:`SioError`. A subclass only sets a
message template, ``msg_fmt``, which is filled from the keyword arguments
given to the constructor (like Nova's and os-brick's exceptions)::

    raise VolumeNotFound(volume='a1b2c3d400000001')

Exceptions built from a gateway answer also carry ``http_status``,
``error_code`` (the gateway's ``errorCode``) and ``gateway_message``.
:func:`from_gateway` turns such an answer into the most specific class,
matching the code *or* the message text, because PowerFlex 4.x renumbered
some codes (81 -> 4037, 84 -> 4039).
"""

from __future__ import absolute_import


class SioError(Exception):
    """Root of every error raised by the ScaleIO client.

    :param message: ready text; when omitted ``msg_fmt`` is filled from
        ``kwargs``.
    :param kwargs: values for the template; ``http_status``,
        ``error_code`` and ``gateway_message`` also become attributes.
    """

    msg_fmt = "An unknown ScaleIO error occurred."

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        self.http_status = kwargs.get('http_status')
        self.error_code = kwargs.get('error_code')
        self.gateway_message = kwargs.get('gateway_message')
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                # A missing template value must never hide the real error.
                message = '%s (%s)' % (
                    self.msg_fmt,
                    ', '.join('%s=%r' % kv for kv in sorted(kwargs.items())))
        self.msg = message
        super(SioError, self).__init__(message)

    def __str__(self):
        return self.msg


class GatewayUnreachable(SioError):
    msg_fmt = ("ScaleIO gateway %(url)s could not be reached for "
               "%(method)s %(path)s: %(reason)s")


class GatewayTimeout(GatewayUnreachable):
    msg_fmt = ("ScaleIO gateway %(url)s did not answer %(method)s %(path)s "
               "within %(timeout)s seconds")


class AuthenticationFailed(SioError):
    msg_fmt = ("ScaleIO gateway %(url)s rejected the credentials of user "
               "%(user)s (HTTP %(http_status)s)")


class Forbidden(SioError):
    msg_fmt = ("ScaleIO gateway refused %(method)s %(path)s for user "
               "%(user)s (HTTP 403)")


class NotFound(SioError):
    msg_fmt = "ScaleIO object %(name)s was not found: %(gateway_message)s"


class VolumeNotFound(NotFound):
    msg_fmt = "ScaleIO volume %(volume)s was not found"


class VolumeRemovalInProgress(VolumeNotFound):
    msg_fmt = "ScaleIO volume %(volume)s is being removed"


class PoolNotFound(NotFound):
    msg_fmt = ("ScaleIO storage pool %(pool)s was not found in protection "
               "domain %(domain)s")


class ProtectionDomainNotFound(NotFound):
    msg_fmt = "ScaleIO protection domain %(domain)s was not found"


class SdcNotFound(NotFound):
    msg_fmt = "ScaleIO SDC %(sdc)s was not found"


class SdcGuidUnavailable(SioError):
    msg_fmt = ("Cannot determine the local SDC GUID: %(reason)s. Set "
               "[scaleio] default_sdcguid or install the SDC")


class CommandFailed(SioError):
    msg_fmt = "Command %(command)s failed with exit code %(code)s: %(stderr)s"


class NameInUse(SioError):
    msg_fmt = "ScaleIO volume name %(name)s is already in use"


class InvalidName(SioError, ValueError):
    msg_fmt = "Invalid ScaleIO volume name %(name)s: %(reason)s"


class AlreadyMapped(SioError):
    msg_fmt = "ScaleIO volume %(volume)s is already mapped to SDC %(sdc)s"


class NotMapped(SioError):
    msg_fmt = "ScaleIO volume %(volume)s is not mapped to SDC %(sdc)s"


class VolumeMapped(SioError):
    msg_fmt = ("ScaleIO volume %(volume)s is still mapped and cannot be "
               "removed")


class UnsafePool(SioError):
    msg_fmt = ("ScaleIO storage pool %(pool)s has zero padding disabled, so "
               "volume %(volume)s could expose data of earlier volumes; "
               "enable zero padding on the pool or set [scaleio] "
               "allow_non_padded_volumes = True")


class MultipleMappingsRefused(SioError):
    msg_fmt = ("ScaleIO volume %(volume)s is mapped to another SDC and "
               "cannot be mapped to SDC %(sdc)s")


class InsufficientResources(SioError):
    msg_fmt = ("ScaleIO reported insufficient resources for %(method)s "
               "%(path)s: %(gateway_message)s")


class CapacityExceeded(SioError):
    msg_fmt = ("Not enough capacity in ScaleIO storage pool %(pool)s for "
               "%(volume)s: %(gateway_message)s")


class VTreeLimitReached(SioError):
    msg_fmt = ("Cannot snapshot ScaleIO volume %(volume)s: its vTree holds "
               "the maximum number of snapshots")


class InvalidSize(SioError, ValueError):
    msg_fmt = "Invalid size for %(disk)s: %(reason)s"


class DeviceTimeout(SioError):
    msg_fmt = ("Device %(path)s did not %(event)s within %(timeout)s "
               "seconds")


class InvalidConfig(SioError, ValueError):
    msg_fmt = "Invalid value for option [scaleio] %(option)s: %(reason)s"


class MalformedResponse(SioError):
    msg_fmt = ("ScaleIO gateway sent an unexpected answer to %(method)s "
               "%(path)s: %(reason)s")


class GatewayError(SioError):
    msg_fmt = ("ScaleIO gateway failed %(method)s %(path)s: HTTP "
               "%(http_status)s, errorCode %(error_code)s: "
               "%(gateway_message)s")


# errorCode values (scaleio-api.md section 3.2). 4.x renumbered some of
# them, so the message substrings below are matched as well.
NOT_FOUND = 3
INSUFFICIENT_RESOURCES = 67
OLD_VOLUME_NOT_FOUND = 78
VOLUME_NOT_FOUND = 79
SDC_NOT_FOUND = 80
ALREADY_MAPPED = (81, 4037)
NOT_MAPPED = (84, 4039)
NAME_IN_USE = 99
VOLUME_MAPPED = 104
CANNOT_SHRINK = 133
TOO_MANY_VOLS_IN_VTREE = 181
TOO_MANY_SNAPS_IN_VTREE = 182
VOL_SIZE_TOO_LARGE = 190
CAPACITY_TOO_LOW_FOR_SNAP = 191
VOL_SIZE_ILLEGAL = 225
LONG_NAME = 226
INVALID_NAME = 227
TOO_MUCH_THIN_CAPACITY = 300
SINGLE_MAPPING_ONLY = 306
CAPACITY_TOO_LOW_FOR_THIN = 337
# Codes that mean "no object by that name" on a lookup by name.
LOOKUP_NOT_FOUND = (NOT_FOUND, OLD_VOLUME_NOT_FOUND, VOLUME_NOT_FOUND)

_BY_CODE = (
    ((OLD_VOLUME_NOT_FOUND, VOLUME_NOT_FOUND), VolumeNotFound),
    ((SDC_NOT_FOUND,), SdcNotFound),
    (ALREADY_MAPPED, AlreadyMapped),
    (NOT_MAPPED, NotMapped),
    ((NAME_IN_USE,), NameInUse),
    ((VOLUME_MAPPED,), VolumeMapped),
    ((INSUFFICIENT_RESOURCES,), InsufficientResources),
    ((TOO_MANY_VOLS_IN_VTREE, TOO_MANY_SNAPS_IN_VTREE), VTreeLimitReached),
    ((TOO_MUCH_THIN_CAPACITY, CAPACITY_TOO_LOW_FOR_SNAP,
      CAPACITY_TOO_LOW_FOR_THIN), CapacityExceeded),
    ((CANNOT_SHRINK, VOL_SIZE_ILLEGAL, VOL_SIZE_TOO_LARGE), InvalidSize),
    ((LONG_NAME, INVALID_NAME), InvalidName),
    ((SINGLE_MAPPING_ONLY,), MultipleMappingsRefused),
)

_BY_TEXT = (
    ('removal operation is currently in progress', VolumeRemovalInProgress),
    ('could not find the volume', VolumeNotFound),
    ('could not find the sdc', SdcNotFound),
    ('already mapped', AlreadyMapped),
    ('not mapped', NotMapped),
    ('name already in use', NameInUse),
    ('volume is mapped', VolumeMapped),
    ('insufficient resources', InsufficientResources),
    ('too many snapshots', VTreeLimitReached),
    ('exceeds the volume allocation limit', CapacityExceeded),
    ('can only be increased', InvalidSize),
    ('8 gb', InvalidSize),
    ('exceeds the allowed length', InvalidName),
    ('spaces are not allowed', InvalidName),
    ('only a single sdc', MultipleMappingsRefused),
)


def _text(value):
    return value if isinstance(value, (type(u''), str)) else ''


def _classify(http_status, error_code, message, details):
    codes = [error_code]
    texts = [_text(message)]
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict):
            codes.append(detail.get('rc'))
            texts.append(_text(detail.get('errorMessage')))
            texts.append(_text(detail.get('error')))
    for code in codes:
        for known, cls in _BY_CODE:
            if code in known:
                return cls
    lowered = ' '.join(texts).lower()
    for text, cls in _BY_TEXT:
        if text in lowered:
            return cls
    if error_code == NOT_FOUND or lowered.strip() == 'not found':
        return NotFound
    if 'hexadecimal' in lowered:
        return NotFound
    if http_status == 401:
        return AuthenticationFailed
    if http_status == 403:
        return Forbidden
    return GatewayError


def from_gateway(http_status, error_code, message, details=None,
                 not_found=None, **context):
    """Build the exception matching a gateway error answer.

    :param http_status: HTTP status of the answer.
    :param error_code: ``errorCode`` of the JSON body, or None.
    :param message: ``message`` of the JSON body (or the status line).
    :param details: ``details`` list of the JSON body, if any.
    :param not_found: class to use for a generic "Not found" (errorCode
        3), which the gateway uses for every lookup by name.
    :param context: template values naming what the request was about,
        e.g. ``volume``, ``sdc``, ``pool``, ``domain``, ``name``,
        ``method``, ``path``, ``url``, ``user``.
    :returns: an instance of a :class:`SioError` subclass.
    """
    cls = _classify(http_status, error_code, message, details)
    if cls is NotFound and not_found is not None:
        cls = not_found
    if cls is VolumeNotFound and 'volume' not in context:
        cls = NotFound
    kwargs = dict(context)
    kwargs.setdefault('name', context.get('volume', '?'))
    kwargs.update(http_status=http_status, error_code=error_code,
                  gateway_message=message, details=details)
    for key in ('volume', 'sdc', 'pool', 'domain', 'disk', 'method',
                'path', 'url', 'user'):
        kwargs.setdefault(key, '?')
    if cls is InvalidSize:
        kwargs.setdefault('reason', message)
    elif cls is InvalidName:
        kwargs.setdefault('reason', message)
        kwargs['disk'] = kwargs['volume']
    if cls is InvalidSize and kwargs['disk'] == '?':
        kwargs['disk'] = kwargs['volume']
    return cls(**kwargs)
