# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at http://www.apache.org/licenses/LICENSE-2.0
"""Proof suites: the fault matrix and the benchmark reports.

* ``python -m nova_sio.proof.faults``: runs the Nova-level fault matrix
  and concurrency tests on a patched release and prints the matrix;
* ``python -m nova_sio.proof.bench``: REST calls per lifecycle operation
  against small and large clusters, device wait latency, bytes copied
  per boot and the engine's emit + verify time per release;
* ``boot_bench``, ``client_bench``, ``engine_bench``: the benchmarks
  behind that report, each runnable alone (``tox -e bench`` runs the
  first two).
"""
