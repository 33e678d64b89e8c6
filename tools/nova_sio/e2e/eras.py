# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""What the real cloud starts for each era of Nova, and how.

The harness was written against the newest release; older releases
differ in what exists (Placement as its own service from Stein on, cell
v2 from Ocata on, an API database from Liberty on), in how their
services are served (a WSGI module of each project from 2025.2 on; the
``wsgi_scripts`` factories that pbr generated before that), and in the
libvirt binding their constraints pin. Every such difference is one
field of an :class:`EraProfile`, and :data:`PROFILES` lists them, newest
first; the control plane asks :func:`profile_for` and never compares
version numbers itself.

:func:`table` returns the table the harness prints and keeps in its JSON
(``python -m nova_sio.e2e eras``).
"""

import collections
import configparser
import glob
import os
import re

from nova_sio import errors
from nova_sio import releases as rel_mod
from nova_sio import testenv

#: WSGI applications served by gunicorn as module-level objects
#: (``module:variable``): the ``<project>.wsgi`` modules.
WSGI_MODULES = collections.OrderedDict([
    ('keystone', 'keystone.wsgi.api:application'),
    ('glance', 'glance.wsgi.api:application'),
    ('placement', 'placement.wsgi.api:application'),
    ('nova-api', 'nova.wsgi.osapi_compute:application'),
    ('neutron', 'neutron.wsgi.api:application'),
])
#: The same applications from pbr's generated ``wsgi_scripts``: the
#: script names, whose factories (``module:function``, read from the
#: installed distributions' ``entry_points.txt``, see
#: :func:`wsgi_script_target`) gunicorn calls (``module:function()``,
#: gunicorn 20.1 and later). Each factory reads its configuration from
#: the same ``OS_<PROJECT>_CONFIG_*`` variables as the modules. (Yoga's
#: are ``keystone.server.wsgi:initialize_public_application``,
#: ``glance.common.wsgi_app:init_app``, ``placement.wsgi:
#: init_application``, ``nova.api.openstack.compute.wsgi:
#: init_application`` and ``neutron.cmd.eventlet.server:
#: main_api_eventlet``.)
WSGI_SCRIPTS = collections.OrderedDict([
    ('keystone', 'script:keystone-wsgi-public'),
    ('glance', 'script:glance-wsgi-api'),
    ('placement', 'script:placement-api'),
    ('nova-api', 'script:nova-api-wsgi'),
    ('neutron', 'script:neutron-api'),
])
SCRIPT = 'script:'

#: Kilo (2015.1.x) was Nova's eleventh release; Liberty is 12.0.0.
KILO_MAJOR = 11

_TARGET_RE = re.compile(r'^([A-Za-z_][\w.]*:[A-Za-z_]\w*|'
                        r'script:[\w.-]+)$')


class EraError(errors.NovaSioError):
    msg_fmt = 'Nova %(version)s on the real cloud: %(reason)s'


class WsgiScriptError(EraError):
    msg_fmt = 'WSGI script %(script)s: %(reason)s'


class EraProfile(object):
    """How the control plane of one range of Nova releases is run.

    :param name: a short name (the first and last series).
    :param first_major: the first Nova major version of the range.
    :param last_major: the last one (None: open end).
    :param wsgi: ``{service: gunicorn target}`` of the WSGI services.
    :param placement: Placement is its own service (else Nova serves it,
        or it does not exist).
    :param cells_v2: ``nova-manage cell_v2`` maps the cell and the hosts.
    :param neutron: the Neutron endpoint the era can run (``server`` or
        ``stub``); a ``server`` era also accepts the stand-in.
    :param runnable: None when the harness can run this era here, else
        why not (one sentence naming the component).
    :param notes: what else differs, for the table.
    """

    def __init__(self, name, first_major, last_major, wsgi, placement=True,
                 cells_v2=True, neutron='server', runnable=None, notes=''):
        self.name = name
        self.first_major = first_major
        self.last_major = last_major
        self.wsgi = collections.OrderedDict(wsgi)
        self.placement = placement
        self.cells_v2 = cells_v2
        self.neutron = neutron
        self.runnable = runnable
        self.notes = notes

    def covers(self, major):
        """Tell whether Nova major version ``major`` is in the range.

        :param major: an int (see :func:`major_of`).
        """
        return major >= self.first_major and (
            self.last_major is None or major <= self.last_major)

    def wsgi_target(self, service):
        """Return the gunicorn target of ``service``.

        :param service: a key of :data:`WSGI_MODULES`.
        :raises EraError: when the era serves it otherwise.
        """
        try:
            return self.wsgi[service]
        except KeyError:
            raise EraError(version=self.name, reason='%s is not served by '
                           'gunicorn in this era' % service)

    def as_dict(self):
        return collections.OrderedDict([
            ('era', self.name),
            ('nova', '%d-%s' % (self.first_major, self.last_major or '')),
            ('wsgi', ('scripts' if any(t.startswith(SCRIPT) for t in
                                       self.wsgi.values()) else
                      'modules') if self.wsgi else '-'),
            ('placement', self.placement),
            ('cells_v2', self.cells_v2),
            ('neutron', self.neutron),
            ('runnable', self.runnable is None),
            ('why_not', self.runnable),
            ('notes', self.notes),
        ])


#: The eras, newest first. Nova 33.0.0 removed its ``nova-api-wsgi``
#: script for the ``nova.wsgi`` module; the other projects moved to
#: ``<project>.wsgi`` modules in the same period.
PROFILES = (
    EraProfile('2025.2-', 33, None, WSGI_MODULES,
               notes='the harness\'s first era'),
    EraProfile('stein-2025.1', 19, 32, WSGI_SCRIPTS,
               notes='pbr wsgi_scripts factories; a libvirt binding '
               'older than the host\'s libvirt is raised to it'),
    EraProfile('ocata-rocky', 15, 18, {}, placement=False,
               runnable='Placement is served by Nova itself '
               '(nova-placement-api) before Stein; the control plane '
               'installs and starts it as its own service only'),
    EraProfile('liberty-newton', 12, 14, {}, placement=False,
               cells_v2=False,
               runnable='not attempted: Python 2.7 services without '
               'Placement (Kilo shows what such an era lacks here)'),
    EraProfile('kilo', KILO_MAJOR, KILO_MAJOR, {}, placement=False,
               cells_v2=False, neutron='stub',
               runnable='Keystone, Glance and Neutron 2015.1 are on neither '
               'PyPI nor a configured git mirror, and the scenario drives '
               'the cloud through Keystone with compute API 2.37 (servers '
               'without networks) while Kilo stops at 2.3; a Kilo Nova on '
               'this cloud was run by hand (see "Older eras" in the '
               'real-cloud admin page)'),
)


def wsgi_script_target(site_packages, script):
    """Return gunicorn's target for pbr's ``wsgi_scripts`` entry ``script``
    of the distributions installed in ``site_packages``.

    :param site_packages: a ``site-packages`` directory.
    :param script: the script name (``nova-api-wsgi``).
    :returns: ``module:function()``.
    :raises WsgiScriptError: when no distribution declares it.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    for path in sorted(glob.glob(os.path.join(
            site_packages, '*.dist-info', 'entry_points.txt')) + glob.glob(
            os.path.join(site_packages, '*.egg-info', 'entry_points.txt'))):
        parser.clear()
        try:
            parser.read(path)
        except configparser.Error:
            continue
        if parser.has_option('wsgi_scripts', script):
            target = parser.get('wsgi_scripts', script).strip()
            if not _TARGET_RE.match(target):
                raise WsgiScriptError(script=script, reason='%s declares '
                                      'it as %r' % (path, target))
            return target + '()'
    raise WsgiScriptError(script=script, reason='no distribution in %s '
                          'declares it' % site_packages)


#: One release of each profile, newest first: the releases the project
#: tests its eras with.
REPRESENTATIVES = ('34.0.0', '28.3.1', '25.3.0', '19.3.2', '18.3.0',
                   '14.1.0', '12.0.6', '2015.1.2')


def major_of(version):
    """Return the major version of a Nova release, :data:`KILO_MAJOR`
    for the date-numbered Kilo releases.

    :param version: ``25.3.0`` or ``2015.1.2``.
    """
    if version.startswith('2015.1.'):
        return KILO_MAJOR
    return int(version.split('.')[0])


def profile_for(version):
    """Return the :class:`EraProfile` of ``version``.

    :param version: a final Nova release.
    :raises EraError: when no profile covers it.
    """
    major = major_of(version)
    for profile in PROFILES:
        if profile.covers(major):
            return profile
    raise EraError(version=version, reason='no era profile covers Nova '
                   'major %d (profiles: %s)' % (major, ', '.join(
                       p.name for p in PROFILES)))


def check_runnable(version, neutron=None):
    """Return the profile of ``version`` if the harness can run it.

    :param version: a final Nova release.
    :param neutron: the Neutron endpoint asked for, or None.
    :raises EraError: naming why the era cannot run.
    """
    profile = profile_for(version)
    if profile.runnable is not None:
        raise EraError(version=version, reason=profile.runnable)
    if neutron == 'server' and profile.neutron == 'stub':
        raise EraError(version=version, reason='this era runs only the '
                       'Neutron stand-in (--neutron stub)')
    for service, target in profile.wsgi.items():
        if not _TARGET_RE.match(target):
            raise EraError(version=version, reason='bad WSGI target %r of '
                           '%s' % (target, service))
    return profile


def describe(version):
    """Return the table row of ``version``: its series, Python, era.

    :param version: a final Nova release.
    """
    series = rel_mod.series_of(version)
    row = collections.OrderedDict([
        ('version', version), ('series', series),
        ('python', testenv.PYTHON.get(series, '3.12'))])
    row.update(profile_for(version).as_dict())
    return row


def summary(version):
    """Return one line naming the era of ``version`` (for the report).

    :param version: a final Nova release.
    """
    row = describe(version)
    return '%s (%s, Python %s, WSGI %s)' % (
        row['era'], row['series'], row['python'], row['wsgi'])


def table(versions):
    """Return the lines of the era table of ``versions``.

    :param versions: Nova releases.
    """
    rows = [describe(v) for v in versions]
    cols = ('version', 'series', 'python', 'era', 'wsgi', 'placement',
            'cells_v2', 'neutron', 'runnable')
    cells = [[str(r[c]) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(x[i]) for x in cells])
              for i, c in enumerate(cols)]
    out = ['  '.join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    for line in cells:
        out.append('  '.join(c.ljust(w) for c, w in zip(line, widths))
                   .rstrip())
    for row in rows:
        if row['why_not']:
            out.append('%s: %s' % (row['version'], row['why_not']))
    return out
