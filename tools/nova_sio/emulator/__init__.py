# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Loopback emulator of the ScaleIO / PowerFlex gateway and SDC hosts.

* :class:`~nova_sio.emulator.server.Emulator`: the gateway (HTTP or
  HTTPS, 3.x or 4.x) plus emulated SDC hosts, with fault injection, a
  request log and an audit of leaked volumes;
* :class:`~nova_sio.emulator.fixture.EmulatorFixture`: a
  ``fixtures.Fixture`` running it in a thread or in a subprocess;
* :class:`~nova_sio.emulator.fixture.AdminClient`: the same control API
  over HTTP, for another process;
* :func:`~nova_sio.emulator.cli.main`: ``nova-sio emulator``.
"""
