"""Fixtures for the GCS tests: fake-gcs-server on loopback, the adapter and the manager on it.

* ``gcs_server`` (session): a running :class:`gcs_server.GCSServer` (fake-gcs-server).
* ``gcs_bucket`` (session): a bucket the session shares; tests keep apart by prefix.
* ``gcs_config`` (function): ``GCSContentsManager`` keyword arguments: ``bucket``,
  ``prefix`` (``t/<hex>``, the test's own), ``endpoint_url`` of the emulator,
  ``token="anon"``, ``project="test"``.
* ``gcs_prefix`` (function): the test's key prefix, ending with ``/`` (adapter tests).
* ``gcs_storage`` (function): a ``GCSStorage`` on the shared bucket, closed after the test.
* ``make_gcs_cm`` / ``gcs_cm`` (function): managers on the test's prefix, closed after it.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
from fixture_helpers import manager_fixtures, run_server
from gcs_server import GCSServer, start_fake_gcs

from s3contents.gcs import GCSContentsManager
from s3contents.storage.gcs import GCSStorage


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    """fake-gcs-server on a free loopback port, objects in memory, stopped by PID."""
    yield from run_server(start_fake_gcs)


@pytest.fixture(scope="session")
def gcs_bucket(gcs_server: GCSServer) -> str:
    """A bucket shared by the session's GCS tests."""
    return gcs_server.make_bucket(f"s3contents-gcs-{secrets.token_hex(4)}")


@pytest.fixture
def gcs_config(gcs_server: GCSServer, gcs_bucket: str) -> dict[str, str]:
    """``GCSContentsManager`` keyword arguments for the emulator, in a prefix of the test's own."""
    return {
        "bucket": gcs_bucket,
        "prefix": f"t/{secrets.token_hex(8)}",
        "endpoint_url": gcs_server.endpoint_url,
        "token": "anon",
        "project": "test",
    }


@pytest.fixture
def gcs_prefix(gcs_config: dict[str, str]) -> str:
    """The test's own key prefix, ending with ``/``."""
    return gcs_config["prefix"] + "/"


@pytest.fixture
def gcs_storage(
    gcs_config: dict[str, str], jp_asyncio_loop: asyncio.AbstractEventLoop
) -> Iterator[GCSStorage]:
    """``GCSStorage`` on the shared bucket, closed after the test."""
    storage = GCSStorage(
        gcs_config["bucket"],
        project="test",
        token="anon",
        endpoint_url=gcs_config["endpoint_url"],
    )
    yield storage
    jp_asyncio_loop.run_until_complete(storage.close())


make_gcs_cm, gcs_cm = manager_fixtures(GCSContentsManager, "gcs_config", "make_gcs_cm", "gcs_cm")
