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

"""nova-sio: release engine and operator tools for the sio image backend."""

import pbr.version

version_info = pbr.version.VersionInfo('nova-sio')


def tool_version():
    """Return the version string of this tool, stable across checkouts.

    :returns: the pbr version, or ``0.0.0.dev0`` outside a package.
    """
    try:
        return version_info.version_string()
    except Exception:  # pragma: no cover - only outside an install
        return '0.0.0.dev0'
