"""Benchmark of storage requests, latency, event-loop stall, CPU and memory per contents
operation, new package vs s3contents 0.13 (and Jupyter's own local-disk manager), on S3 and
on GCS.

Run ``python -m benchmarks`` from the repository root with the repo's ``.venv`` interpreter; see
``docs/benchmarks.md`` for the method and the latest numbers.  Modules: :mod:`.storage`
(SeaweedFS), :mod:`.gcs` (fake-gcs-server), :mod:`tests.support.proxy` (the counting proxy),
:mod:`.servers` (environments and Jupyter Servers), :mod:`.workload` (fixtures and operations),
:mod:`.large` (large-file upload and download, with the server's memory), :mod:`.report`
(Markdown), :mod:`.local` (the ``local`` reference target), :mod:`.probe` (the event-loop
stall), :mod:`.pages` (``--aws-pages``), :mod:`.chart` (the PNG of ``--curves``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence


def target_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse ``type`` for ``--only a,b``: the named targets of ``choices``, in their
    order; an unknown or empty list is a usage error."""

    def parse(text: str) -> list[str]:
        names = [t.strip() for t in text.split(",") if t.strip()]
        unknown = [t for t in names if t not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown target(s) {', '.join(unknown) or text!r}: "
                f"choose from {', '.join(choices)}"
            )
        return [t for t in choices if t in names]

    return parse
