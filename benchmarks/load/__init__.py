"""Load test: concurrent simulated users of one Jupyter Server, then a check of every file.

``python -m benchmarks.load`` (see :mod:`.__main__`) starts SeaweedFS and the counting proxy
(:mod:`benchmarks.storage`, :mod:`tests.support.proxy`), then for each package (``new``, then
``old``) a Jupyter Server (:func:`benchmarks.servers.start_jupyter`) on a bucket of its own.
Modules: :mod:`.clients` (the seeded fixtures and the simulated users, who remember what every
file they own must hold), :mod:`.verify` (after the run: every file through the REST API and
straight in the bucket), :mod:`.report` (tables and the ``## Load`` section of
``docs/reliability.md``).
"""
