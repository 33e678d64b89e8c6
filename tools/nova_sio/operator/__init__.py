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

"""The operator commands: ``install``, ``revert``, ``reinstall``,
``guard`` and ``doctor``, run on a compute host.

* :mod:`~nova_sio.operator.commands`: the command lines and their
  output;
* :mod:`~nova_sio.operator.tree`: finding the installed Nova tree and the
  distribution package that owns it;
* :mod:`~nova_sio.operator.install`: installing and reverting a release
  diff in that tree, with :mod:`~nova_sio.operator.gates` (the strict
  gates against the installed files) and :mod:`~nova_sio.operator.merge`
  (the three-way merge for a tree with local changes);
* :mod:`~nova_sio.operator.hooks`: the package-upgrade hook and the
  nova-compute guard;
* :mod:`~nova_sio.operator.doctor`: the checks of ``nova-sio doctor``.
"""
