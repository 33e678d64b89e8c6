# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Import the runtime package ``nova/virt/libvirt/sio`` without Nova.

The runtime modules ship inside Nova and import each other relatively, so
they can be loaded as a standalone package. :func:`load` registers the
directory of this checkout as package ``nova_sio_runtime``::

    client = runtime.load('client')
    naming = runtime.load('naming')

The checkout root is ``$NOVA_SIO_ROOT`` when set, else the nearest
directory above this file that holds ``nova/virt/libvirt/sio``.
"""

import importlib
import importlib.util
import os
import sys

PACKAGE = 'nova_sio_runtime'
RELATIVE_DIR = os.path.join('nova', 'virt', 'libvirt', 'sio')


def checkout_root():
    """Return the checkout root holding the runtime package."""
    env = os.environ.get('NOVA_SIO_ROOT')
    if env:
        return os.path.abspath(env)
    here = os.path.dirname(os.path.abspath(__file__))
    while True:
        if os.path.isdir(os.path.join(here, RELATIVE_DIR)):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            # An installed wheel keeps the runtime with the diffs.
            from nova_sio import paths
            found = paths.installed_root()
            if found and os.path.isdir(os.path.join(found, RELATIVE_DIR)):
                return found
            raise ImportError('cannot find %s above %s; set NOVA_SIO_ROOT'
                              % (RELATIVE_DIR, __file__))
        here = parent


def package_dir():
    """Return the directory of the runtime package."""
    return os.path.join(checkout_root(), RELATIVE_DIR)


def package():
    """Import (once) and return the runtime package itself."""
    module = sys.modules.get(PACKAGE)
    if module is not None:
        return module
    directory = package_dir()
    spec = importlib.util.spec_from_file_location(
        PACKAGE, os.path.join(directory, '__init__.py'),
        submodule_search_locations=[directory])
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[PACKAGE]
        raise
    return module


def load(name):
    """Return runtime module ``name`` (``client``, ``naming``, ...).

    :param name: module name inside ``nova/virt/libvirt/sio``.
    """
    package()
    return importlib.import_module('%s.%s' % (PACKAGE, name))
