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

"""Operator commands: ``install``, ``revert``, ``reinstall``, ``guard``
and ``doctor``: their arguments and their output.

People get progress lines on stderr and a plain summary on stdout;
``--json`` prints one JSON document on stdout instead, for deployment
tools. The exit status is 0 on success, 1 when something was refused or
failed (the tree is then unchanged), 2 for usage errors.
"""

import json
import os
import sys

from nova_sio import errors
from nova_sio.operator.doctor import checklist
from nova_sio.operator import hooks as hooks_mod
from nova_sio.operator import install as install_mod
from nova_sio.operator import tree as tree_mod


def _progress(args):
    if getattr(args, 'json', False) or getattr(args, 'quiet', False):
        return lambda msg: None

    def say(msg):
        sys.stderr.write('nova-sio: %s\n' % msg)
        sys.stderr.flush()
    return say


def _emit_json(doc):
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + '\n')


def _refusal(args, command, exc):
    """Report a refusal; JSON callers get the details on stdout."""
    details = getattr(exc, 'details', {})
    if getattr(args, 'json', False):
        _emit_json({'command': command, 'ok': False, 'error': str(exc),
                    'details': details})
    else:
        for c in details.get('conflicts', ()):
            print('conflict in %s, installed %s (pristine %s%s):' % (
                c['file'], c['installed'], c['pristine'],
                ''.join(', ' + h for h in c.get('hunks', ()))))
            for line in c.get('installed_text', ()):
                print('  installed: %s' % line)
            for line in c.get('wanted_text', ()):
                print('  nova-sio:  %s' % line)
    raise exc


def cmd_install(args):
    say = _progress(args)
    try:
        tree = tree_mod.locate(args.nova_dir, args.python)
        plan = install_mod.make_plan(
            tree, args.version, force_version=args.force_version,
            progress=say, check_writable=not args.dry_run)
        if args.diff_out:
            with open(args.diff_out, 'wb') as f:
                f.write(plan.data)
            say('wrote the diff for this tree to %s' % args.diff_out)
        if args.dry_run:
            doc = {'command': 'install', 'ok': True, 'dry_run': True,
                   'plan': plan.as_dict()}
            if args.json:
                _emit_json(doc)
            else:
                print('Nova %s in %s: nova-sio can be installed (%s '
                      'diff); dry run, nothing changed.' % (
                          plan.version, tree.nova_dir, plan.mode))
                if plan.package:
                    print('  package:      %s' % (
                        tree_mod.describe_owner(plan.package)))
                print('  would change: %s' % ', '.join(plan.modified))
                print('  would add:    %d file(s) under %s' % (
                    len(plan.created), 'nova/virt/libvirt/sio'))
            return 0
        state = install_mod.install(plan, progress=say)
        hooks = []
        if not args.no_hooks:
            hooks = hooks_mod.install_hooks(tree, plan.package,
                                            progress=say)
    except errors.NovaSioError as exc:
        review = getattr(exc, 'review', None)
        if review and args.diff_out:
            with open(args.diff_out, 'wb') as f:
                f.write(review)
            exc.details['review_diff'] = os.path.abspath(args.diff_out)
            say('wrote the merge with its conflicts, for review, to %s'
                % args.diff_out)
        _refusal(args, 'install', exc)
    doc = {'command': 'install', 'ok': True, 'dry_run': False,
           'plan': plan.as_dict(), 'state': state, 'hooks': hooks}
    if args.json:
        _emit_json(doc)
    else:
        print('nova-sio for Nova %s installed into %s (%s diff; %d file(s) '
              'changed, %d added).' % (plan.version, tree.nova_dir,
                                       plan.mode, len(plan.modified),
                                       len(plan.created)))
        if plan.package:
            print('The tree belongs to the distribution package %s.'
                  % tree_mod.describe_owner(plan.package))
        for path in hooks:
            print('  upgrade hook: %s' % path)
        print('Next: set [libvirt] images_type = sio and the [scaleio] '
              'options, run "nova-sio doctor", then restart '
              'nova-compute. "nova-sio revert" takes it out again.')
    return 0


def cmd_revert(args):
    say = _progress(args)
    try:
        tree = tree_mod.locate(args.nova_dir, args.python)
        report = install_mod.revert(
            tree, force=args.force, dry_run=args.dry_run, progress=say,
            after_upgrade=args.after_upgrade)
        report['hooks_removed'] = []
        if not args.dry_run:
            report['hooks_removed'] = hooks_mod.remove_hooks(
                tree, tree_mod.package_owner(tree), progress=say)
    except errors.NovaSioError as exc:
        _refusal(args, 'revert', exc)
    if args.json:
        _emit_json({'command': 'revert', 'ok': True, 'report': report})
    elif args.dry_run:
        print('would restore %s and remove %d added file(s) in %s' % (
            ', '.join(report['restored']), len(report['removed']),
            tree.nova_dir))
    else:
        print('reverted nova-sio for Nova %s in %s: %d file(s) restored, '
              '%d removed.' % (report['version'], tree.nova_dir,
                               len(report['restored']),
                               len(report['removed'])))
        for rel in report.get('left_behind') or ():
            print('  kept %s: it holds files nova-sio did not add' % rel)
        for path in report['hooks_removed']:
            print('  removed the upgrade hook %s' % path)
        print('Restart nova-compute to run without the backend.')
    return 0


def cmd_reinstall(args):
    say = _progress(args)
    tree = tree_mod.locate(args.nova_dir, args.python)
    result = hooks_mod.reinstall(tree, progress=say)
    if args.json:
        _emit_json(dict(result, command='reinstall',
                        ok=result['action'] != 'blocked'))
    elif result['action'] == 'reinstalled':
        print('nova-sio: the Nova package changed; nova-sio for Nova %s '
              'installed again into %s (%s diff%s).' % (
                  result['version'], tree.nova_dir, result['mode'],
                  ', package %s' % result['package']
                  if result['package'] else ''))
    elif result['action'] == 'blocked':
        print('nova-sio: WARNING: %s. nova-compute will not start until '
              'this is settled ("nova-sio guard --nova-dir %s" says how).'
              % (result['detail'], tree.nova_dir))
    return 1 if result['action'] == 'blocked' else 0


def cmd_guard(args):
    tree = tree_mod.locate(args.nova_dir, args.python)
    ok, message = hooks_mod.guard(tree)
    if args.json:
        _emit_json({'command': 'guard', 'ok': ok, 'detail': message})
    elif not ok:
        sys.stderr.write('nova-sio: %s\n' % message)
    return 0 if ok else 1


def cmd_doctor(args):
    results = checklist.run(args, progress=_progress(args))
    failed = [r for r in results if r['status'] == 'fail']
    if args.json:
        _emit_json({'command': 'doctor', 'ok': not failed,
                    'checks': results})
    else:
        print(checklist.render(results))
    return 1 if failed else 0


def _tree_args(p, python_use=''):
    """Add the options naming the Nova tree and the output of a command.

    :param p: the command's ``argparse`` parser.
    :param python_use: what else the command does with ``--python``.
    """
    p.add_argument('--nova-dir', metavar='DIR',
                   help='the Nova package directory (holding '
                   'nova/__init__.py); default: where --python imports '
                   'nova from')
    p.add_argument('--python', metavar='PYTHON',
                   help='the interpreter Nova runs with (default: python3 '
                   'on PATH)' + python_use)
    p.add_argument('--json', action='store_true',
                   help='print one JSON document for deployment tools')
    p.add_argument('--quiet', '-q', action='store_true',
                   help='no progress lines')


def add_parser(subparsers):
    """Register ``install``, ``revert``, ``reinstall``, ``guard``, ``doctor``.

    :param subparsers: the ``add_subparsers()`` object of the CLI.
    """
    p = subparsers.add_parser(
        'install', help='add the sio backend to an installed Nova')
    _tree_args(p, python_use='; also used to byte-compile the result')
    p.add_argument('--version', metavar='V',
                   help='the Nova release (default: from the package '
                   'metadata or PBR_VERSION)')
    p.add_argument('--force-version', action='store_true',
                   help='accept --version even if the metadata says '
                   'otherwise')
    p.add_argument('--dry-run', action='store_true',
                   help='check and show the plan; change nothing')
    p.add_argument('--diff-out', metavar='FILE',
                   help='also write the diff that fits this tree to FILE '
                   '(on a conflict: the merge with its conflicts, for '
                   'review)')
    p.add_argument('--no-hooks', action='store_true',
                   help='for a distribution package, do not write the '
                   'package-upgrade hook and the nova-compute guard')
    p.set_defaults(func=cmd_install)

    p = subparsers.add_parser(
        'revert', help='restore the Nova tree as it was before install')
    _tree_args(p)
    p.add_argument('--force', action='store_true',
                   help='revert even files changed since the install')
    p.add_argument('--dry-run', action='store_true',
                   help='show what would be restored; change nothing')
    p.add_argument('--after-upgrade', action='store_true',
                   help='the Nova package was upgraded over nova-sio: '
                   'only remove the files nova-sio added, keep the '
                   'package\'s files')
    p.set_defaults(func=cmd_revert)

    p = subparsers.add_parser(
        'reinstall', help='after a package upgrade, install nova-sio '
        'again for the Nova now installed (run by the package hook)')
    _tree_args(p)
    p.set_defaults(func=cmd_reinstall)

    p = subparsers.add_parser(
        'guard', help='exit non-zero while the sio backend is missing '
        '(run before nova-compute starts)')
    _tree_args(p)
    p.set_defaults(func=cmd_guard)

    p = subparsers.add_parser(
        'doctor', help='check a compute host\'s configuration for sio')
    checklist.add_arguments(p)
    _tree_args(p)
    p.set_defaults(func=cmd_doctor)
