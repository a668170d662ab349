"""Fixtures for the GCS tests: the adapter and the manager on fake-gcs-server.

``gcs_server``, ``gcs_bucket`` and ``gcs_config`` come from the root conftest (the storage
contract suite and the upstream tests run on fake-gcs-server too). Here:

* ``gcs_prefix`` (function): the test's key prefix, ending with ``/`` (adapter tests).
* ``gcs_storage`` (function): a ``GCSStorage`` on the shared bucket, closed after the test.
* ``make_gcs_cm`` / ``gcs_cm`` (function): managers on the test's prefix, closed after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from s3contents.gcs import GCSContentsManager
from s3contents.gcs.storage import GCSStorage
from tests.support.fixture_helpers import manager_fixtures


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
        project=gcs_config["project"],
        token="anon",
        endpoint_url=gcs_config["endpoint_url"],
    )
    yield storage
    jp_asyncio_loop.run_until_complete(storage.close())


make_gcs_cm, gcs_cm = manager_fixtures(GCSContentsManager, "gcs_config", "make_gcs_cm", "gcs_cm")
