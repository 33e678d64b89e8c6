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

"""Result codes, results, the check runner and the table.

Modelled on oslo.upgradecheck (``Code``, ``Result``, a list of ``(name,
check)`` pairs rendered as a table), with two additions the doctor
needs: a *hint* (how to fix it) on every result, and ``SKIPPED`` for a
check whose prerequisite did not pass (it would only fail again).
"""

import shutil
import textwrap


class Code(object):
    """Result codes; a larger code is worse.

    ``SUCCESS``, ``WARNING`` and ``FAILURE`` have oslo.upgradecheck's
    values; ``SKIPPED`` ranks below success: nothing was learned.
    """

    SKIPPED = -1
    SUCCESS = 0
    WARNING = 1
    FAILURE = 2


#: The ``status`` of a result in ``--json`` output.
STATUS = {Code.SUCCESS: 'pass', Code.WARNING: 'warn',
          Code.FAILURE: 'fail', Code.SKIPPED: 'skip'}
#: The first column of the table.
LABEL = {Code.SUCCESS: 'OK', Code.WARNING: 'WARN', Code.FAILURE: 'FAIL',
         Code.SKIPPED: 'SKIP'}


class Result(object):
    """The outcome of one check.

    :param code: a :class:`Code` value.
    :param details: what was found.
    :param hint: how to fix it (shown for warnings and failures).
    """

    def __init__(self, code, details, hint=None):
        self.code = code
        self.details = details
        self.hint = hint

    def __repr__(self):
        return 'Result(%s, %r)' % (STATUS[self.code], self.details)


def success(details):
    """Return a ``SUCCESS`` result.

    :param details: what was found.
    """
    return Result(Code.SUCCESS, details)


def warning(details, hint):
    """Return a ``WARNING`` result.

    :param details: what was found.
    :param hint: how to fix it.
    """
    return Result(Code.WARNING, details, hint)


def failure(details, hint):
    """Return a ``FAILURE`` result.

    :param details: what was found.
    :param hint: how to fix it.
    """
    return Result(Code.FAILURE, details, hint)


def skipped(because):
    """Return a ``SKIPPED`` result.

    :param because: why the check could not run.
    """
    return Result(Code.SKIPPED, 'not checked: %s' % because)


class Check(object):
    """A named check and what it depends on.

    :param name: the name shown in the table and the JSON.
    :param func: ``func(ctx)`` returning a :class:`Result`, or None when
        the check does not apply (then no row is shown).
    :param needs: names of checks that must have passed (or warned);
        otherwise this one is skipped.
    :param blocked: why the checks that need this one are skipped when
        it did not pass (default: ``'<name> did not pass'``).
    :param fatal: stop every later check when this one fails.
    """

    def __init__(self, name, func, needs=(), blocked=None, fatal=False):
        self.name = name
        self.func = func
        self.needs = tuple(needs)
        self.blocked = blocked or '%s did not pass' % name
        self.fatal = fatal


def run_checks(checks, ctx):
    """Run ``checks`` in order; return ``[(name, Result)]``.

    A check whose ``needs`` did not all pass or warn is skipped with the
    ``blocked`` reason of the first one that did not (or, if that one was
    skipped, with its own reason: the root cause); a check that raises
    is reported as a failure, like oslo.upgradecheck does.

    :param checks: :class:`Check` objects, prerequisites first.
    :param ctx: the object handed to every check (the state they share).
    """
    results, codes, found = [], {}, {}
    by_name = dict((c.name, c) for c in checks)
    for check in checks:
        blocker = next((n for n in check.needs if codes.get(n) not in (
            Code.SUCCESS, Code.WARNING)), None)
        if codes.get(blocker) == Code.SKIPPED:
            result = Result(Code.SKIPPED, found[blocker].details)
        elif blocker is not None:
            result = skipped(by_name[blocker].blocked)
        else:
            try:
                result = check.func(ctx)
            except Exception as exc:  # reported, like oslo.upgradecheck
                result = failure('the check raised %s: %s' % (
                    exc.__class__.__name__, shorten(exc)),
                    'this is a bug of nova-sio doctor; please report it '
                    'with this output')
        if result is None:
            continue
        codes[check.name] = result.code
        found[check.name] = result
        results.append((check.name, result))
        if check.fatal and result.code == Code.FAILURE:
            break
    return results


def worst(results):
    """Return the worst code of ``[(name, Result)]`` (SKIPPED if none).

    :param results: what :func:`run_checks` returns.
    """
    return max([r.code for _n, r in results] + [Code.SKIPPED])


def as_dicts(results):
    """Return the results as the ``--json`` output lists them.

    Each is ``{'check', 'status', 'detail', 'hint', 'code'}``:
    ``status`` is ``pass``, ``warn``, ``fail`` or ``skip``; ``code`` is
    the :class:`Code` value.

    :param results: what :func:`run_checks` returns.
    """
    return [{'check': name, 'status': STATUS[r.code], 'detail': r.details,
             'hint': r.hint, 'code': r.code} for name, r in results]


def shorten(exc, limit=300):
    """Return the text of ``exc`` cut to ``limit`` characters.

    :param exc: an exception (or any object).
    :param limit: the longest text returned.
    """
    text = str(exc)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def render_table(results, width=None):
    """Format the results as a table, then a line of totals.

    :param results: what :func:`run_checks` returns.
    :param width: the table width (default: the terminal's, at least 72).
    """
    width = width or max(72, shutil.get_terminal_size((100, 24)).columns)
    label_w = max(len(v) for v in LABEL.values())
    name_w = max([len(n) for n, _r in results] + [len('Check')])
    detail_w = max(20, width - label_w - name_w - 10)
    rule = '+-%s-+-%s-+-%s-+' % ('-' * label_w, '-' * name_w,
                                 '-' * detail_w)

    def row(label, name, text):
        return '| %-*s | %-*s | %-*s |' % (label_w, label, name_w, name,
                                           detail_w, text)

    lines = [rule, row('Code', 'Check', 'Details'), rule]
    for name, result in results:
        texts = textwrap.wrap(result.details or '', detail_w) or ['']
        if result.hint and result.code in (Code.WARNING, Code.FAILURE):
            texts += textwrap.wrap('fix: %s' % result.hint, detail_w)
        for i, text in enumerate(texts):
            lines.append(row(LABEL[result.code] if i == 0 else '',
                             name if i == 0 else '', text))
    lines.append(rule)
    counts = dict((code, sum(1 for _n, r in results if r.code == code))
                  for code in LABEL)
    lines.append('%d passed, %d failed, %d warnings, %d skipped' % (
        counts[Code.SUCCESS], counts[Code.FAILURE], counts[Code.WARNING],
        counts[Code.SKIPPED]))
    return '\n'.join(lines)


class Context(object):
    """What the checks share: the command line, nova.conf and findings.

    Checks read and fill in these attributes; a later check uses what an
    earlier one found (the gateway client, the SDC GUID, the flavors).

    :param args: the parsed command line.
    :param progress: ``callable(message)`` for progress lines.
    """

    def __init__(self, args, progress=None):
        self.args = args
        self.progress = progress or (lambda msg: None)
        #: the parsed nova.conf (``oslo_config.cfg.ConfigOpts``).
        self.conf = None
        #: the runtime's gateway client once logged in.
        self.client = None
        #: the path of drv_cfg, or None.
        self.drv_cfg = None
        #: ``(guid, where it came from)``, or None.
        self.sdc_guid = None
        #: the flavor dicts of the compute API, or None.
        self.flavors = None
        #: the located Nova tree and the backend's state in it.
        self.tree = None
        self.backend_status = None

    def close(self):
        """Log out of the gateway (best effort) and forget the client."""
        if self.client is not None:
            try:
                self.client.close()
            except Exception:  # nothing to do about a failed logout
                pass
            self.client = None
