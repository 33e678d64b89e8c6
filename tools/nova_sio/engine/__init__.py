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

"""The release engine: from patch series to verified release diffs.

* :mod:`~nova_sio.engine.source`: the pristine Nova sources, fetched
  once, hashed and cached;
* :mod:`~nova_sio.engine.series`: the per-era patch series and the era
  map;
* :mod:`~nova_sio.engine.workrepo`: the git work repository where each
  series is applied onto its release;
* :mod:`~nova_sio.engine.seriesedit`: editing a series in a worktree,
  carrying it onto a new release;
* :mod:`~nova_sio.engine.diffs`: the unified-diff parser and renderer;
* :mod:`~nova_sio.engine.emit`: emitting ``releases/<version>.diff`` and
  verifying it through independent gates.
"""
