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

"""Checks of the Nova package nova-compute imports.

Is the backend installed where nova-compute imports Nova, and does a
tree that belongs to a distribution package carry the package-upgrade
hooks that reinstall it?
"""

from nova_sio import errors
from nova_sio.operator.doctor import base
from nova_sio.operator.doctor import scaleio


def nova_backend(ctx):
    """Is the backend installed in the Nova tree?"""
    # Imported here: the configuration checks must not depend on the
    # install machinery.
    from nova_sio.operator import hooks as hooks_mod
    from nova_sio.operator import tree as tree_mod
    try:
        configured = scaleio.value(ctx.conf, 'libvirt',
                                   'images_type') == 'sio'
    except ValueError:
        configured = False
    try:
        ctx.tree = tree_mod.locate(
            getattr(ctx.args, 'nova_dir', None),
            getattr(ctx.args, 'python', None))
    except errors.NovaSioError as exc:
        return base.skipped('no Nova package found (%s)' % exc)
    status, detail = hooks_mod.backend_state(ctx.tree)
    ctx.backend_status = status
    nova_dir = ctx.tree.nova_dir
    if status == 'intact':
        return base.success('%s in %s' % (detail, nova_dir))
    if status == 'absent' and not configured:
        return base.success('%s (images_type is not sio)' % detail)
    fix = hooks_mod.guard(ctx.tree)[1].split('To fix: ', 1)[-1]
    if configured:
        return base.failure('configured for sio but the backend is missing '
                            'from %s: %s' % (nova_dir, detail), fix)
    return base.warning('%s (images_type is not sio)' % detail, fix)


def upgrade_hook(ctx):
    """Would a package upgrade of the tree reinstall the backend?"""
    from nova_sio.operator import hooks as hooks_mod
    from nova_sio.operator import tree as tree_mod
    if ctx.tree is None:
        return base.skipped('no Nova package found')
    if ctx.backend_status == 'absent':
        return base.skipped('nova-sio is not installed')
    owner = tree_mod.package_owner(ctx.tree)
    if owner is None:
        return base.skipped('%s belongs to no distribution package'
                            % ctx.tree.nova_dir)
    hooks = hooks_mod.hook_state(ctx.tree, owner)
    missing = sorted(p for p, present in hooks.items() if not present)
    if missing:
        return base.warning('the tree belongs to %s but %s missing' % (
            tree_mod.describe_owner(owner), ', '.join(missing)),
            'a package upgrade would remove the backend unnoticed; run '
            '"nova-sio revert" and "nova-sio install" without --no-hooks')
    return base.success('%s: %s' % (tree_mod.describe_owner(owner),
                                    ', '.join(sorted(hooks))))
