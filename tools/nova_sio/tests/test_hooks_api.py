# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The ``hooks`` facade against the driver hunks of every era.

The patch series call ``sio_hooks.<name>``; ``hooks.py`` binds each such
name to the function of the runtime module that owns it. The runtime
imports Nova, so these checks read the sources instead of importing
them: every name a hunk calls is bound in ``hooks.py`` (and listed in
its ``__all__``) to a function of the same name, and the runtime modules
import each other without a cycle.
"""

import ast
import glob
import os
import re

from oslotest import base

from nova_sio import paths
from nova_sio import runtime

PACKAGE = 'nova.virt.libvirt.sio'
CALL = re.compile(r'\bsio_hooks\.([A-Za-z_][A-Za-z0-9_]*)')


def hunk_calls(series_root):
    """Return ``{name: [patch files]}`` of the ``sio_hooks`` calls added.

    :param series_root: the ``releases/series`` directory.
    """
    calls = {}
    for path in sorted(glob.glob(os.path.join(series_root, '*', '*.patch'))):
        with open(path) as f:
            for line in f:
                if not line.startswith('+') or line.startswith('+++'):
                    continue
                for name in CALL.findall(line):
                    calls.setdefault(name, []).append(path)
    return calls


def parse(module_dir, name):
    """Return the AST of runtime module ``name``."""
    with open(os.path.join(module_dir, name + '.py')) as f:
        return ast.parse(f.read(), name + '.py')


def sibling_imports(tree):
    """Return ``{alias: module}`` of the runtime modules a module imports.

    :param tree: the module's AST.
    """
    found = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and (
                node.module == PACKAGE or (node.level == 1 and
                                           node.module is None)):
            for alias in node.names:
                found[alias.asname or alias.name] = alias.name
    return found


def facade(tree):
    """Return ``({name: (module alias, attribute)}, __all__)`` of hooks.

    :param tree: the AST of ``hooks.py``.
    """
    bound = {}
    exported = []
    for node in tree.body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1 or \
                not isinstance(node.targets[0], ast.Name):
            continue
        target = node.targets[0].id
        value = node.value
        if target == '__all__':
            exported = [ast.literal_eval(e) for e in value.elts]
        elif isinstance(value, ast.Attribute) and \
                isinstance(value.value, ast.Name):
            bound[target] = (value.value.id, value.attr)
    return bound, exported


def functions(tree):
    """Return the names of the top-level functions of a module."""
    return set(node.name for node in tree.body
               if isinstance(node, ast.FunctionDef))


class HooksFacadeTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.module_dir = runtime.package_dir()
        self.hooks = parse(self.module_dir, 'hooks')
        self.calls = hunk_calls(os.path.join(paths.releases_dir(),
                                             'series'))

    def test_the_hunks_call_the_hooks(self):
        # The check below means nothing if no call is found.
        self.assertIn('map_volumes', self.calls)
        self.assertIn('is_sio_path', self.calls)

    def test_every_name_a_hunk_calls_is_bound_to_its_function(self):
        bound, exported = facade(self.hooks)
        imports = sibling_imports(self.hooks)
        for name, patches in sorted(self.calls.items()):
            where = ', '.join(sorted(set(os.path.basename(p)
                                         for p in patches)))
            self.assertIn(name, bound, 'hooks.%s (called by %s) is not '
                          'bound in hooks.py' % (name, where))
            self.assertIn(name, exported, 'hooks.%s is not in __all__'
                          % name)
            alias, attribute = bound[name]
            self.assertEqual(name, attribute,
                             'hooks.%s is bound to %s.%s' % (
                                 name, alias, attribute))
            self.assertIn(alias, imports,
                          'hooks.%s: %s is not a runtime module' % (
                              name, alias))
            owner = parse(self.module_dir, imports[alias])
            self.assertIn(attribute, functions(owner),
                          '%s.py defines no function %s' % (
                              imports[alias], attribute))

    def test_the_runtime_modules_import_each_other_without_a_cycle(self):
        graph = {}
        for path in glob.glob(os.path.join(self.module_dir, '*.py')):
            name = os.path.basename(path)[:-3]
            graph[name] = set(sibling_imports(
                parse(self.module_dir, name)).values())
        done = set()

        def visit(name, stack):
            self.assertNotIn(name, stack, 'import cycle: %s' % ' -> '.join(
                stack + [name]))
            if name in done:
                return
            for other in sorted(graph.get(name, ())):
                visit(other, stack + [name])
            done.add(name)

        for name in sorted(graph):
            visit(name, [])
        self.assertIn('lifecycle', graph['hooks'])
