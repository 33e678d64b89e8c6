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

"""The checks of ``nova-sio doctor``, in the oslo.upgradecheck style.

Each check is a small function ``check(ctx)`` that returns a
:class:`~nova_sio.operator.doctor.base.Result` (a code, details and a
hint), as the checks of ``nova-status upgrade check`` do:

* :mod:`~nova_sio.operator.doctor.base`: codes, results, the runner and
  the table;
* :mod:`~nova_sio.operator.doctor.scaleio`: nova.conf, the gateway, the
  storage and the SDC of the host;
* :mod:`~nova_sio.operator.doctor.tree`: the backend in the Nova package;
* :mod:`~nova_sio.operator.doctor.flavors`: the flavors, read through
  keystoneauth1 and openstacksdk;
* :mod:`~nova_sio.operator.doctor.checklist`: orders them and wires them
  to the command.
"""
