"""Fixtures of the multi-writer tests: Jupyter servers as real processes on one bucket.

* ``writers`` (module, per S3 server: SeaweedFS, then moto for AWS's semantics): a
  :class:`Writers` - one bucket and prefix, two Jupyter servers on it, each reaching the
  store through a :class:`~tests.support.proxy.StorageProxy` of its own (to slow it down,
  or to SIGKILL the Jupyter server just as a chosen request arrives), and boto3 to look into
  the bucket.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.multiwriter.multiwriter_support import Writers
from tests.support.servers import S3Server

SERVERS = {"seaweedfs": "seaweedfs", "moto": "moto_s3"}


def _writers(server: S3Server) -> Iterator[Writers]:
    """Two Jupyter servers on a new bucket of ``server``; all gone afterwards."""
    bucket = server.make_bucket()
    made = Writers(server, bucket, f"mw/{secrets.token_hex(6)}")
    try:
        made.start(2)
        yield made
    finally:
        made.stop()
        server.remove_bucket(bucket)


@pytest.fixture(scope="module", params=list(SERVERS), ids=list(SERVERS))
def writers(request: pytest.FixtureRequest) -> Iterator[Writers]:
    yield from _writers(request.getfixturevalue(SERVERS[request.param]))


@pytest.fixture
def seaweed_writers(seaweedfs: S3Server) -> Iterator[Writers]:
    """Like ``writers``, on SeaweedFS only and for one test (it kills its servers)."""
    yield from _writers(seaweedfs)
