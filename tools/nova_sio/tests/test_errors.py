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

"""The one error wrapper of the command lines (``errors.run_command``)."""

import io

import fixtures
import testtools

from nova_sio import cli
from nova_sio.emulator import cli as emulator_cli
from nova_sio import errors


class Refused(errors.NovaSioError):
    msg_fmt = 'refused %(what)s'
    exit_code = 3


class RunCommandTest(testtools.TestCase):

    def setUp(self):
        super(RunCommandTest, self).setUp()
        self.stderr = io.StringIO()
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', self.stderr))

    def run_command(self, func):
        return errors.run_command(func, 'ARGS', 'tool')

    def test_status_of_the_command(self):
        self.assertEqual(0, self.run_command(lambda args: None))
        self.assertEqual(4, self.run_command(lambda args: 4))
        self.assertEqual('', self.stderr.getvalue())

    def test_error_is_one_line_with_its_exit_code(self):
        def fail(args):
            self.assertEqual('ARGS', args)
            raise Refused(what='the plan')
        self.assertEqual(3, self.run_command(fail))
        self.assertEqual('tool: error: refused the plan\n',
                         self.stderr.getvalue())

    def test_interrupted(self):
        def stop(args):
            raise KeyboardInterrupt()
        self.assertEqual(130, self.run_command(stop))
        self.assertEqual('tool: interrupted\n', self.stderr.getvalue())

    def test_a_bug_keeps_its_traceback(self):
        def bug(args):
            raise ValueError('bug')
        self.assertRaises(ValueError, self.run_command, bug)
        self.assertEqual('', self.stderr.getvalue())

    def test_both_command_lines_report_through_it(self):
        # An unknown release: the engine's error, with its exit status.
        self.assertEqual(1, cli.main(['emit', '0.0.1']))
        self.assertEqual(
            'nova-sio: error: %s\n' % errors.UnknownVersion(version='0.0.1'),
            self.stderr.getvalue())
        self.stderr.truncate(0)
        self.stderr.seek(0)
        # The emulator refuses block mode on a machine unfit for it.
        self.useFixture(fixtures.MonkeyPatch(
            'nova_sio.emulator.blockdev.unavailable', lambda: 'no loops'))
        self.assertEqual(1, emulator_cli.main(['--sdc-mode', 'block']))
        self.assertEqual('nova-sio emulator: error: --sdc-mode block '
                         'failed: no loops\n', self.stderr.getvalue())
