# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""The cells of a fault matrix: which exist, and did their fault fire.

Shared by the two fault matrices: the client matrix
(``nova_sio.tests.test_client_faults``, fault x volume step) and the
Nova-level matrix (``nova/tests/functional/libvirt/test_sio_faults.py``,
operation x fault, with its runner :mod:`nova_sio.proof.faults`):

* a matrix is its rows, its columns and ``not_applicable``, the cells
  whose fault cannot fire by design, with the reason; those are never
  generated nor selected (:func:`applicable`, :func:`add_cell_tests`);
* a cell proves something only if its fault fired: :func:`fault_hits`
  counts it in the emulator's request log and :func:`assert_fired`
  fails the cell otherwise.

Standard library only: the Nova-level matrix loads it into Nova's test
environment from ``$NOVA_SIO_ROOT/tools``, as it loads the emulator.
Its cells are generated when the module is imported, which must work
without ``NOVA_SIO_ROOT`` (its tests then skip): that matrix keeps its
own few lines of generation, and its ``NOT_APPLICABLE`` stays a literal
of the test module, which the runner reads without importing it.
"""

#: The path of the request that maps a volume to an SDC.
MAP_PATH = 'addMappedSdc'


def applicable(rows, columns, not_applicable):
    """Return the cells ``(row, column)`` in order, without the n/a ones.

    :param rows: the first coordinate of the cells, in order.
    :param columns: the second coordinate, in order.
    :param not_applicable: ``{(row, column): reason}`` of the cells whose
        fault cannot fire by design.
    """
    return [(row, column) for row in rows for column in columns
            if (row, column) not in not_applicable]


def add_cell_tests(cls, rows, columns, not_applicable, make_test):
    """Add one test method per applicable cell to ``cls``.

    :param cls: the test case class.
    :param rows: as for :func:`applicable`.
    :param columns: as for :func:`applicable`.
    :param not_applicable: as for :func:`applicable`.
    :param make_test: ``make_test(row, column)`` returning the test
        function, named by its ``__name__``.
    :returns: the names of the tests added.
    """
    names = []
    for row, column in applicable(rows, columns, not_applicable):
        test = make_test(row, column)
        if hasattr(cls, test.__name__):
            raise ValueError('two cells are named %s' % test.__name__)
        setattr(cls, test.__name__, test)
        names.append(test.__name__)
    return names


def fault_hits(log, device_fault=False):
    """Return how many times a fault fired, from the request log.

    :param log: the emulator's request log since the fault was armed
        (dicts with ``method``, ``path``, ``status`` and ``fault``).
    :param device_fault: the fault is a device that never appears (no
        request carries it): count the mappings the gateway made while
        the devices could not appear.
    """
    if device_fault:
        return len([e for e in log if e.get('method') == 'POST' and
                    e.get('path', '').endswith(MAP_PATH) and
                    e.get('status') == 200])
    return len([e for e in log if e.get('fault')])


def assert_fired(test, hits, fault, during):
    """Fail ``test`` if the fault never fired: the cell proves nothing.

    :param test: the ``TestCase``.
    :param hits: what :func:`fault_hits` returned.
    :param fault: the fault's name.
    :param during: the step or operation of the cell.
    """
    test.assertGreater(hits, 0, 'the %s fault never fired during %s'
                       % (fault, during))
