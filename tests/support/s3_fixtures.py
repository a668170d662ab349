"""S3 fixtures that more than one test folder uses (imported by their conftests).

* ``make_cm`` / ``cm``: ``S3ContentsManager`` instances on SeaweedFS, in the test's own prefix
  (``s3_config``), closed after the test.
* ``s3``: a boto3 client of the same server, for seeding buckets and checking what was really
  written.
* ``jp_server_config`` / ``jp_serverapp``: a live Jupyter Server whose contents manager is
  ``S3ContentsManager`` on the same prefix; its manager is closed after the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from traitlets.config import Config

from s3contents import S3ContentsManager
from tests.support.fixture_helpers import manager_fixtures
from tests.support.servers import S3Server

__all__ = ["cm", "extra_cm_config", "jp_server_config", "jp_serverapp", "make_cm", "s3"]

make_cm, cm = manager_fixtures(S3ContentsManager, "s3_config", "make_cm", "cm")


@pytest.fixture
def s3(seaweedfs: S3Server) -> Iterator[Any]:
    """A boto3 client of the SeaweedFS server."""
    client = seaweedfs.client()
    yield client
    client.close()


@pytest.fixture
def extra_cm_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """More ``S3ContentsManager`` settings for the live server: parametrize it indirectly,
    ``@pytest.mark.parametrize("extra_cm_config", [{...}], indirect=True)``."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def jp_server_config(s3_config: dict[str, str], extra_cm_config: dict[str, Any]) -> Config:
    """A Jupyter Server serving the test's prefix through ``S3ContentsManager``."""
    return Config(
        {
            "ServerApp": {
                "contents_manager_class": S3ContentsManager,
                "jpserver_extensions": {"jupyter_server_terminals": False},
            },
            "S3ContentsManager": {**s3_config, **extra_cm_config},
        }
    )


@pytest.fixture
def jp_serverapp(
    jp_server_config: Config,
    jp_argv: list[str],
    jp_configurable_serverapp: Any,
    jp_asyncio_loop: asyncio.AbstractEventLoop,
) -> Iterator[Any]:
    """pytest-jupyter's server, whose contents manager is closed after the test."""
    app = jp_configurable_serverapp(config=jp_server_config, argv=jp_argv)
    yield app
    jp_asyncio_loop.run_until_complete(app.contents_manager.close())
