"""Benchmark of S3 requests and latency per contents operation, new package vs s3contents 0.13.

Run ``python -m benchmarks`` from the repository root with the repo's ``.venv`` interpreter; see
``docs/benchmarks.md`` for the method and the latest numbers.  Modules: :mod:`.storage`
(SeaweedFS), :mod:`.proxy` (the counting proxy), :mod:`.servers` (environments and Jupyter
Servers), :mod:`.workload` (fixtures and operations), :mod:`.report` (Markdown).
"""
