"""Benchmark of storage requests, latency and memory per contents operation, new package vs
s3contents 0.13, on S3 and on GCS.

Run ``python -m benchmarks`` from the repository root with the repo's ``.venv`` interpreter; see
``docs/benchmarks.md`` for the method and the latest numbers.  Modules: :mod:`.storage`
(SeaweedFS), :mod:`.gcs` (fake-gcs-server), :mod:`.proxy` (the counting proxy),
:mod:`.servers` (environments and Jupyter Servers), :mod:`.workload` (fixtures and operations),
:mod:`.large` (large-file upload and download, with the server's memory), :mod:`.report`
(Markdown).
"""
