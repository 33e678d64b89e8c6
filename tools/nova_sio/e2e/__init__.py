# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""End-to-end harness: real block devices, a real guest, real QEMU.

* :mod:`~nova_sio.e2e.machine`: can this machine run it, what is missing;
* :mod:`~nova_sio.e2e.cleanup`: the ledger of loop devices, mounts,
  processes and network namespaces, and the sweep of what a crashed run
  left;
* :mod:`~nova_sio.e2e.netns`, :mod:`~nova_sio.e2e.hosts`,
  :mod:`~nova_sio.e2e.gateway`: the two-host cloud's network, its
  compute hosts (each with its own libvirtd) and the gateway emulator;
* :mod:`~nova_sio.e2e.guest`: a small Linux guest built offline from
  Debian's packages, and its serial-console checks.

``python -m nova_sio.e2e check|sweep|build-guest``.
"""
