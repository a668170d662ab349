"""Fixtures of the storage contract suite: every adapter, each on its server.

* ``backend`` (session, parametrized ``seaweedfs`` / ``moto`` / ``fake-gcs-server``): a
  :class:`~storage.backends.Backend`: ``S3Storage`` on SeaweedFS, on moto (the reference for
  AWS semantics), then ``GCSStorage`` on fake-gcs-server.
* ``storage`` (function): an adapter on the backend's shared bucket, closed after the test.
* ``prefix`` (function): a key prefix of the test's own (``t/<hex>/``).
* ``own_bucket`` (function): a new, empty bucket, removed with its objects after the test.
* ``s3_bucket`` (function): a new bucket on each S3 server (``s3_server``), for the tests of
  ``S3Storage`` alone.
* ``gap`` (function): ``gap(name)`` marks the test ``xfail(strict=True)`` when the server it
  runs on has the gap ``name``, as probed by :mod:`storage.gaps` (never assumed by name).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from s3contents.storage.base import Storage
from tests.storage.backends import Backend, GCSBackend, S3Backend
from tests.storage.gaps import GAPS, probe
from tests.support.servers import S3Server

#: Backend id -> (session fixture of its server, Backend class).
BACKENDS: dict[str, tuple[str, Callable[[Any], Backend]]] = {
    "seaweedfs": ("seaweedfs", S3Backend),
    "moto": ("moto_s3", S3Backend),
    "fake-gcs-server": ("gcs_server", GCSBackend),
}


@pytest.fixture(scope="session", params=list(BACKENDS), ids=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each storage server in turn, with a bucket of the session's (removed at the end)."""
    fixture, cls = BACKENDS[request.param]
    made = cls(request.getfixturevalue(fixture))
    yield made
    made.remove_bucket(made.bucket)


@pytest.fixture
def storage(backend: Backend, jp_asyncio_loop: asyncio.AbstractEventLoop) -> Iterator[Storage]:
    """An adapter on the backend's shared bucket, closed after the test."""
    made = backend.storage()
    yield made
    jp_asyncio_loop.run_until_complete(made.close())


@pytest.fixture
def prefix() -> str:
    """A key prefix of the test's own, ending with ``/``."""
    return f"t/{secrets.token_hex(8)}/"


@pytest.fixture
def own_bucket(backend: Backend) -> Iterator[str]:
    """A new, empty bucket of the test's own; it and its objects go after the test."""
    name = backend.make_bucket()
    yield name
    backend.remove_bucket(name)


@pytest.fixture
def gap(backend: Backend, request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``gap(name)``: a strict xfail where the server is probed to lack what the test needs."""

    def mark(name: str) -> None:
        assert name in GAPS, name
        found = probe(backend.server, backend.bucket, name)
        if found is not None:
            reason = f"{backend.name} (probed): {found}"
            request.applymarker(pytest.mark.xfail(reason=reason, strict=True))

    return mark


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> Iterator[str]:
    """A new bucket on each S3 server in turn (``s3_server``), removed after the test."""
    name = s3_server.make_bucket()
    yield name
    s3_server.remove_bucket(name)
