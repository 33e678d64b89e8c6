# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Tests of the Nova-level fault matrix runner (``nova_sio.proof.faults``).

The runner itself needs a Nova test tree; here its verdicts, its reading
of the matrix from the test module, the fast slice and the output
parsing are checked on made-up cells.
"""

import configparser
import os
import re
import shlex

from nova_sio import paths
from nova_sio.proof import cells
from nova_sio.proof import faults
from nova_sio.tests import sio_base
from nova_sio.tests import test_client_faults


def _cell(op, fault, **extra):
    cell = {'operation': op, 'fault': fault, 'outcome': 'ok',
            'recovered': True, 'fault_hits': 1, 'leaked_volumes': 0,
            'stray_mappings': 0, 'stray_devices': 0}
    cell.update(extra)
    return cell


class SpecTest(sio_base.TestCase):

    def setUp(self):
        super().setUp()
        self.spec = faults.read_spec()

    def test_matrix_read_from_the_test_module(self):
        operations, fault_names, not_applicable = self.spec
        self.assertEqual(('spawn', 'delete', 'resize', 'revert',
                          'live_migration', 'evacuate', 'snapshot',
                          'rescue'), operations)
        self.assertEqual(('token_expiry', 'http_401', 'http_403',
                          'http_5xx', 'timeout', 'slow', 'reset',
                          'insufficient', 'capacity', 'name_collision',
                          'no_device'), fault_names)
        for (op, fault), reason in not_applicable.items():
            self.assertIn(op, operations)
            self.assertIn(fault, fault_names)
            self.assertTrue(reason.strip())

    def test_not_applicable_cells_are_never_selected(self):
        selected = faults.selected_cells('.', self.spec)
        operations, fault_names, not_applicable = self.spec
        self.assertEqual(len(operations) * len(fault_names) -
                         len(not_applicable), len(selected))
        self.assertEqual(set(), set(selected) & set(not_applicable))

    def test_selection_follows_the_regex(self):
        self.assertEqual(
            [('spawn', 'http_401'), ('delete', 'http_401')],
            faults.selected_cells(r'test_(spawn|delete)__http_401$',
                                  self.spec))
        self.assertEqual([], faults.selected_cells(
            'test_sio_concurrency', self.spec))

    def test_slice_covers_every_fault_with_applicable_cells(self):
        operations, fault_names, not_applicable = self.spec
        self.assertEqual(set(fault_names),
                         set(fault for _op, fault in faults.SLICE))
        self.assertEqual(set(), set(faults.SLICE) & set(not_applicable))
        self.assertEqual(sorted(faults.SLICE), sorted(
            faults.selected_cells(faults.slice_regex(), self.spec)))

    def test_nova_newest_runs_the_slice(self):
        ini = configparser.ConfigParser(interpolation=None)
        ini.read(os.path.join(paths.project_root(), 'tox.ini'))
        regexes = []
        for line in ini['testenv:nova-newest']['commands'].splitlines():
            argv = shlex.split(line)
            if '--tests' in argv:
                regexes.append(argv[argv.index('--tests') + 1])
        selected = set()
        for regex in regexes:
            selected.update(faults.selected_cells(regex, self.spec))
        self.assertEqual(set(faults.SLICE), selected)


class VerdictTest(sio_base.TestCase):

    def test_a_fault_that_never_fired_fails_the_cell(self):
        self.assertEqual('ok', faults.verdict(_cell('spawn', 'reset')))
        self.assertEqual('FAIL', faults.verdict(
            _cell('spawn', 'reset', fault_hits=0)))
        self.assertEqual('FAIL', faults.verdict(
            _cell('spawn', 'reset', fault_hits=None)))

    def test_checks_of_the_cell(self):
        self.assertEqual('clean', faults.verdict(
            _cell('resize', 'capacity', outcome='failed cleanly')))
        for bad in ({'leaked_volumes': 1}, {'stray_devices': 2},
                    {'recovered': False}, {'data_intact': False},
                    {'error': 'AssertionError: data lost'},
                    {'outcome': 'test error'}):
            self.assertEqual('FAIL', faults.verdict(
                _cell('resize', 'capacity', **bad)), bad)

    def test_a_selected_cell_without_result_did_not_run(self):
        self.assertEqual(faults.NOT_RUN, faults.verdict(None))
        self.assertEqual('-', faults.verdict(None, expected=False))

    def test_render_lists_unrun_and_failed_cells(self):
        spec = (('spawn', 'delete'), ('reset', 'no_device'),
                {('delete', 'no_device'): 'maps nothing'})
        selected = [('spawn', 'reset'), ('spawn', 'no_device'),
                    ('delete', 'reset')]
        cells = {('spawn', 'reset'): _cell('spawn', 'reset', fault_hits=3),
                 ('spawn', 'no_device'): _cell('spawn', 'no_device',
                                               fault_hits=0)}
        text, marks, failures = faults.render(cells, spec, selected)
        self.assertEqual({'spawn x reset': 'ok/3',
                          'spawn x no_device': 'FAIL/0',
                          'delete x reset': faults.NOT_RUN,
                          'delete x no_device': faults.NA}, marks)
        self.assertEqual(
            ['spawn x no_device: FAIL: the fault never fired',
             'delete x reset: NOT RUN: selected but no result: the cell '
             'did not run'], failures)
        self.assertIn('delete x no_device: maps nothing', text)

    def test_render_of_a_complete_run_has_no_failure(self):
        spec = (('spawn',), ('reset',), {})
        _text, marks, failures = faults.render(
            {('spawn', 'reset'): _cell('spawn', 'reset')}, spec,
            [('spawn', 'reset')])
        self.assertEqual({'spawn x reset': 'ok/1'}, marks)
        self.assertEqual([], failures)


class OutputTest(sio_base.TestCase):

    def test_statuses_from_subunit_trace(self):
        output = '\n'.join([
            '{0} %s [4.2s] ... ok' % faults.cell_id('spawn', 'reset'),
            '{1} %s [9.0s] ... FAILED' % faults.cell_id('delete', 'slow'),
            '{1} %s [0.0s] ... SKIPPED: no bench' % (
                faults.MODULE + '.SioBenchTest.test_small_system'),
            '{0} %s [61.5s] ... ok' % faults.CONCURRENCY_TEST,
        ])
        self.assertEqual({
            faults.cell_id('spawn', 'reset'): 'ok',
            faults.cell_id('delete', 'slow'): 'FAILED',
            faults.MODULE + '.SioBenchTest.test_small_system': 'SKIPPED',
            faults.CONCURRENCY_TEST: 'ok'}, faults.test_statuses(output))

    def test_run_seconds(self):
        self.assertEqual(296.1, faults.run_seconds(
            'x\nRan: 84 tests in 296.1343 sec.\n - Passed: 84\n'))
        self.assertIsNone(faults.run_seconds('no run'))

    def test_concurrency_line(self):
        entry = {'suite': 'concurrency', 'servers': 50, 'volumes': 50,
                 'spawn_seconds': 56.5, 'delete_seconds': 18.4}
        line, failed = faults.render_concurrency(entry, 'ok')
        self.assertFalse(failed)
        self.assertEqual('concurrency: 50 servers on one compute, spawned '
                         'in 56.5s, deleted in 18.4s, 50 volumes, audit '
                         'clean', line)
        self.assertTrue(faults.render_concurrency(entry, 'FAILED')[1])
        self.assertTrue(faults.render_concurrency(None, None)[1])

    def test_slice_regex_is_anchored(self):
        regex = faults.slice_regex()
        self.assertTrue(re.search(regex, faults.cell_id('spawn',
                                                        'http_401')))
        self.assertIsNone(re.search(regex, faults.cell_id(
            'spawn', 'http_401') + '_more'))


class CellsTest(sio_base.TestCase):
    """The cell bookkeeping both fault matrices share."""

    def test_applicable_cells_in_order_without_the_na_ones(self):
        self.assertEqual(
            [('spawn', 'reset'), ('spawn', 'nodev'), ('delete', 'reset')],
            cells.applicable(('spawn', 'delete'), ('reset', 'nodev'),
                             {('delete', 'nodev'): 'maps nothing'}))

    def test_add_cell_tests(self):
        class Matrix(object):
            pass

        def make(row, column):
            def test(self):
                return row, column
            test.__name__ = 'test_%s__%s' % (row, column)
            return test

        names = cells.add_cell_tests(Matrix, ('a', 'b'), ('x',),
                                     {('b', 'x'): 'n/a'}, make)
        self.assertEqual(['test_a__x'], names)
        self.assertEqual(('a', 'x'), Matrix().test_a__x())
        self.assertFalse(hasattr(Matrix, 'test_b__x'))
        self.assertRaises(ValueError, cells.add_cell_tests, Matrix,
                          ('a',), ('x',), {}, make)

    def test_client_matrix_has_every_applicable_cell_once(self):
        mod = test_client_faults
        generated = set(name for name in dir(mod.ClientFaultMatrixTest)
                        if name.startswith('test_'))
        self.assertEqual(
            set('test_%s__%s' % cell for cell in cells.applicable(
                mod.FAULTS, mod.STEPS, mod.NOT_APPLICABLE)), generated)
        self.assertEqual(len(mod.FAULTS) * len(mod.STEPS) -
                         len(mod.NOT_APPLICABLE), len(generated))

    def test_fault_hits_from_the_request_log(self):
        log = [
            {'method': 'GET', 'path': '/api/types/Volume/instances',
             'status': 200, 'fault': None},
            {'method': 'POST', 'path': '/api/instances/Volume::1/action/'
             'setVolumeSize', 'status': 500, 'fault': 'status'},
            {'method': 'POST', 'path': '/api/instances/Volume::1/action/'
             'addMappedSdc', 'status': 200, 'fault': None},
            {'method': 'POST', 'path': '/api/instances/Volume::2/action/'
             'addMappedSdc', 'status': 500, 'fault': 'status'},
            {'method': 'POST', 'path': '/api/instances/Volume::3/action/'
             'addMappedSdc', 'status': None, 'fault': None},
        ]
        self.assertEqual(2, cells.fault_hits(log))
        # A device that never appears: the mappings the gateway made.
        self.assertEqual(1, cells.fault_hits(log, device_fault=True))
        self.assertEqual(0, cells.fault_hits(log[:1]))

    def test_a_fault_that_never_fired_fails_the_test(self):
        cells.assert_fired(self, 1, 'reset', 'spawn')
        error = self.assertRaises(self.failureException, cells.assert_fired,
                                  self, 0, 'reset', 'spawn')
        self.assertIn('the reset fault never fired during spawn', str(error))
