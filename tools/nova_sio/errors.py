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

"""Exceptions of the nova-sio tools: one root, message templates."""

import sys


class NovaSioError(Exception):
    """Root of every error the tools raise on purpose.

    Subclasses set ``msg_fmt``; keyword arguments fill it in.

    :param message: an explicit message that replaces the template.
    :param kwargs: values for the template placeholders.
    """

    msg_fmt = 'An unknown nova-sio error occurred.'
    exit_code = 1

    def __init__(self, message=None, **kwargs):
        self.kwargs = kwargs
        if message is None:
            try:
                message = self.msg_fmt % kwargs
            except (KeyError, TypeError, ValueError):
                message = '%s (%r)' % (self.msg_fmt, kwargs)
        self.message = message
        super().__init__(message)


class UnknownVersion(NovaSioError):
    msg_fmt = ('%(version)s is not a known final Nova release; run '
               '"nova-sio releases" to list them.')


class SourceUnavailable(NovaSioError):
    msg_fmt = ('No pristine source for Nova %(version)s could be obtained: '
               '%(reason)s')


class SourceMismatch(NovaSioError):
    msg_fmt = ('The pristine source of Nova %(version)s does not match the '
               'manifest: %(path)s has sha256 %(actual)s, expected '
               '%(expected)s.')


class SourceTampered(NovaSioError):
    msg_fmt = ('The cached source of Nova %(version)s is not the one the '
               'manifest records: %(reason)s')


class CommandFailed(NovaSioError):
    msg_fmt = ('Command %(cmd)s failed with exit code %(code)s: %(output)s')


class SeriesError(NovaSioError):
    msg_fmt = 'Patch series %(series)s is invalid: %(reason)s'


class SeriesConflict(NovaSioError):
    msg_fmt = ('Patch %(patch)s of series %(series)s does not apply to Nova '
               '%(version)s: %(reason)s')


class VerifyFailed(NovaSioError):
    msg_fmt = 'Diff for Nova %(version)s failed verification: %(reason)s'


class RebaseInProgress(NovaSioError):
    msg_fmt = ('A rebase is in progress in %(path)s; resolve it and run '
               '"nova-sio rebase --continue", or "nova-sio rebase --abort".')


class NoRebaseInProgress(NovaSioError):
    msg_fmt = 'No rebase is in progress.'


class InstallError(NovaSioError):
    msg_fmt = '%(reason)s'


def run_command(func, args, prog):
    """Run a command; report an error it raises on purpose as one line.

    A :class:`NovaSioError` becomes ``<prog>: error: <message>`` on stderr
    and its ``exit_code``; an interruption becomes ``<prog>:
    interrupted`` and 130. Anything else is a bug and keeps its
    traceback.

    :param func: ``callable(args)`` returning the exit status (None: 0).
    :param args: the parsed command line.
    :param prog: the command's name, e.g. ``nova-sio``.
    :returns: the exit status.
    """
    try:
        return func(args) or 0
    except NovaSioError as exc:
        sys.stderr.write('%s: error: %s\n' % (prog, exc.message))
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write('%s: interrupted\n' % prog)
        return 130
