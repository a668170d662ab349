"""Fixtures of the JupyterHub tests: a real hub, its proxy, and two users' JupyterLab servers.

* ``hub_proxy`` (session): the configurable-http-proxy command. Without it (or without
  Node.js) the tests fail when ``CI`` is set, and are skipped with the reason otherwise (as
  the browser tests do without Chromium); ``./dev`` installs it.
* ``hub_bucket`` (module): a bucket of the module's own on SeaweedFS, removed after.
* ``hub`` (module): JupyterHub (:func:`tests.hub.hub_support.start_hub`) with ``hub_support.USERS``
  allowed, stopped by PID after the module.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.hub.hub_support import USERS, Hub, HubUnavailable, find_proxy, start_hub
from tests.support.servers import S3Server


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def hub_proxy() -> str:
    try:
        return find_proxy()
    except HubUnavailable as err:
        if _in_ci():
            pytest.fail(f"JupyterHub tests cannot run in CI: {err}", pytrace=False)
        pytest.skip(f"JupyterHub tests: {err}")


@pytest.fixture(scope="module")
def hub_bucket(seaweedfs: S3Server) -> Iterator[str]:
    bucket = seaweedfs.make_bucket()
    yield bucket
    seaweedfs.remove_bucket(bucket)


@pytest.fixture(scope="module")
def hub(
    hub_proxy: str,
    seaweedfs: S3Server,
    hub_bucket: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Hub]:
    started = start_hub(
        tmp_path_factory.mktemp("hub"),
        s3=seaweedfs,
        bucket=hub_bucket,
        users=USERS,
        proxy=hub_proxy,
    )
    try:
        yield started
    finally:
        started.stop()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly when the hub tests did not run (no proxy): the suite was not whole."""
    skipped = [r for r in terminalreporter.stats.get("skipped", ()) if "tests/hub/" in r.nodeid]
    if skipped:
        terminalreporter.write_sep(
            "!", f"{len(skipped)} JupyterHub tests did not run: the suite is not whole", red=True
        )
