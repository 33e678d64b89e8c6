# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Fault injection rules for the emulated gateway.

A rule matches requests by ``method`` and a ``path`` regular expression
(searched in the path without query string), skips the first ``skip``
matches, then fires for the next ``count`` matches (None: forever), each
time with ``probability`` (1.0 by default). Kinds:

``delay`` (``seconds``)
    Answer normally after a pause (slow responses, read timeouts).
``hang`` (``seconds``)
    Accept the request, say nothing for ``seconds``, then drop the
    connection.
``reset``
    Drop the connection (TCP RST) without applying the request.
``lost_response`` (``mode``: ``reset`` or ``500``)
    Apply the request, then drop the connection or answer 500.
``status`` (``status``, ``error_code``, ``message``, ``details``,
``html``, ``body``)
    Answer with that error instead of applying the request; ``body``
    replaces the JSON error body verbatim (malformed answers).
``expire_token``
    Invalidate the token this request carries (so it gets a 401).

Shortcuts made of ``status``: ``unauthorized`` (401), ``forbidden``
(403), ``server_error`` (500/0), ``unavailable`` (503, HTML),
``insufficient_resources`` (500/67), ``name_in_use`` (500/99),
``capacity`` (500/300).
"""

import itertools
import random
import re
import threading

KINDS = ('delay', 'hang', 'reset', 'lost_response', 'status',
         'expire_token')

SHORTCUTS = {
    'unauthorized': {'status': 401, 'error_code': 0,
                     'message': 'Unauthorized'},
    'forbidden': {'status': 403, 'error_code': 0, 'message': 'Forbidden'},
    'server_error': {'status': 500, 'error_code': 0,
                     'message': 'Internal server error'},
    'unavailable': {'status': 503, 'html': True,
                    'message': 'Service Unavailable'},
    'insufficient_resources': {'status': 500, 'error_code': 67,
                               'message': 'Insufficient resources'},
    'name_in_use': {'status': 500, 'error_code': 99,
                    'message': 'Volume name already in use. Please use a '
                               'different name.'},
    'capacity': {'status': 500, 'error_code': 300,
                 'message': 'Requested volume size exceeds the volume '
                            'allocation limit'},
}


class Fault(object):
    """One rule; see the module docstring."""

    def __init__(self, fault_id, kind, method=None, path=None, count=1,
                 skip=0, probability=1.0, **params):
        if kind in SHORTCUTS:
            merged = dict(SHORTCUTS[kind])
            merged.update(params)
            params, kind = merged, 'status'
        if kind not in KINDS:
            raise ValueError('unknown fault kind %r' % (kind,))
        self.id = fault_id
        self.kind = kind
        self.method = method.upper() if method else None
        self.path = path
        self._path_re = re.compile(path) if path else None
        self.count = count
        self.skip = skip
        self.probability = probability
        self.params = params
        self.hits = 0

    def matches(self, method, path):
        if self.method and self.method != method:
            return False
        return not self._path_re or bool(self._path_re.search(path))

    def describe(self):
        return {'id': self.id, 'kind': self.kind, 'method': self.method,
                'path': self.path, 'count': self.count, 'skip': self.skip,
                'probability': self.probability, 'hits': self.hits,
                'params': self.params}


class FaultSet(object):
    """The active rules of one emulator."""

    def __init__(self, seed=None):
        self._faults = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._random = random.Random(seed)

    def add(self, kind, **spec):
        """Add a rule; return its id. See the module docstring."""
        with self._lock:
            fault = Fault(next(self._ids), kind, **spec)
            self._faults.append(fault)
            return fault.id

    def clear(self, fault_id=None):
        """Remove one rule, or all of them."""
        with self._lock:
            self._faults = [f for f in self._faults
                            if fault_id is not None and f.id != fault_id]

    def list(self):
        with self._lock:
            return [f.describe() for f in self._faults]

    def take(self, method, path):
        """Return the rules firing for this request, consuming them."""
        fired = []
        with self._lock:
            for fault in list(self._faults):
                if not fault.matches(method, path):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                if self._random.random() >= fault.probability:
                    continue
                fault.hits += 1
                fired.append(fault)
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
        return fired
