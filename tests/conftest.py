"""Shared pytest set-up: real S3 servers on loopback, their fixtures, and run-wide guards.

Fixtures (see each one's docstring):

* ``seaweedfs`` / ``moto_s3`` (session): a running :class:`tests.support.servers.S3Server`.
* ``s3_server`` (session, parametrized ``seaweedfs`` / ``moto``): each S3 server in turn.
* ``gcs_server`` (session): fake-gcs-server, a running :class:`tests.support.gcs_server.GCSServer`.
* ``gcs_bucket`` (session): a bucket on it that the session shares.
* ``bucket`` (function): a fresh bucket on SeaweedFS, removed after the test.
* ``s3_config`` (function): ``S3ContentsManager`` keyword arguments for SeaweedFS, with a
  prefix of the test's own in a bucket shared by the session.
* ``gcs_config`` (function): ``GCSContentsManager`` keyword arguments for fake-gcs-server,
  with a prefix of the test's own in ``gcs_bucket``.

The storage contract suite has its own session fixture over every server, S3 and GCS
(``tests/storage/conftest.py``).

Guards for the whole run:

* a run that collected no test fails (pytest would otherwise exit 5, which CI must not take
  for a pass);
* no test may connect to, or resolve, anything but the loopback interface (a test that tries
  fails with the address it tried), and boto3 is kept from reading ``~/.aws`` or asking the EC2
  metadata service for credentials;
* SIGTERM stops the run like Ctrl-C does, so the servers are still stopped and their data
  removed.

Async tests run through ``pytest-jupyter``'s plugin (``async def`` tests need no marker).
"""

from __future__ import annotations

import os
import secrets
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixture_helpers import STARTED, run_server
from tests.support.gcs_server import GCSServer, start_fake_gcs
from tests.support.netguard import (
    install_loopback_guard,
    loopback_violations,
    remove_loopback_guard,
)
from tests.support.servers import S3Server, start_moto, start_seaweedfs

pytest_plugins = ["jupyter_server.pytest_plugin"]

#: Server name (as in ``s3_server``'s ids) -> the session fixture that runs it.
SERVER_FIXTURES = {"seaweedfs": "seaweedfs", "moto": "moto_s3"}


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[S3Server]:
    """SeaweedFS (``weed mini``) on free loopback ports, enforcing its own random credentials."""
    yield from run_server(start_seaweedfs)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[S3Server]:
    """moto's standalone server on a free loopback port, with IAM authentication on."""
    yield from run_server(start_moto)


@pytest.fixture(scope="session", params=list(SERVER_FIXTURES), ids=list(SERVER_FIXTURES))
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    """Each S3 server in turn: SeaweedFS, then moto (the reference for AWS semantics)."""
    server: S3Server = request.getfixturevalue(SERVER_FIXTURES[request.param])
    return server


@pytest.fixture(scope="session")
def _session_buckets() -> dict[str, str]:
    """Server name -> the bucket that ``s3_config`` shares."""
    return {}


def _shared_bucket(server: S3Server, cache: dict[str, str]) -> str:
    if server.name not in cache:
        cache[server.name] = server.make_bucket(f"s3contents-tests-{secrets.token_hex(4)}")
    return cache[server.name]


def _config(server: S3Server, bucket: str) -> dict[str, str]:
    return {
        "bucket": bucket,
        "prefix": f"t/{secrets.token_hex(8)}",
        "endpoint_url": server.endpoint_url,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
        "region_name": server.region_name,
    }


@pytest.fixture
def bucket(seaweedfs: S3Server) -> Iterator[str]:
    """A new, empty bucket on SeaweedFS (``t-<hex>``); it and its objects go after the test."""
    name = seaweedfs.make_bucket()
    yield name
    seaweedfs.remove_bucket(name)


@pytest.fixture
def s3_config(seaweedfs: S3Server, _session_buckets: dict[str, str]) -> dict[str, str]:
    """Keyword arguments for ``S3ContentsManager`` on SeaweedFS.

    Keys: ``bucket``, ``prefix`` (``t/<hex>``, unique to the test), ``endpoint_url``,
    ``access_key_id``, ``secret_access_key``, ``region_name``.  The bucket is shared by the
    session (a new bucket costs SeaweedFS a volume and ~0.2 s on its first write); the prefix
    keeps tests apart.  Use the ``bucket`` fixture for a bucket of the test's own.
    """
    return _config(seaweedfs, _shared_bucket(seaweedfs, _session_buckets))


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    """fake-gcs-server on a free loopback port, objects in memory, stopped by PID."""
    yield from run_server(start_fake_gcs)


@pytest.fixture(scope="session")
def gcs_bucket(gcs_server: GCSServer) -> str:
    """A bucket on fake-gcs-server shared by the session; tests keep apart by prefix."""
    return gcs_server.make_bucket(f"s3contents-gcs-{secrets.token_hex(4)}")


@pytest.fixture
def gcs_config(gcs_server: GCSServer, gcs_bucket: str) -> dict[str, str]:
    """``GCSContentsManager`` keyword arguments for the emulator, in a prefix of the test's own.

    Keys: ``bucket``, ``prefix`` (``t/<hex>``), ``endpoint_url``, ``token`` (``"anon"``),
    ``project``.
    """
    return {
        "bucket": gcs_bucket,
        "prefix": f"t/{secrets.token_hex(8)}",
        "endpoint_url": gcs_server.endpoint_url,
        "token": "anon",
        "project": gcs_server.project,
    }


# --------------------------------------------------------------------------- loopback only


@pytest.fixture(autouse=True)
def _loopback_only() -> Iterator[None]:
    """Fail a test that tried to leave loopback, even if the code under test hid the error."""
    seen = len(loopback_violations)
    yield
    if len(loopback_violations) > seen:
        pytest.fail("\n".join(loopback_violations[seen:]), pytrace=False)


def _isolate_aws_environment() -> None:
    """Keep boto3/aiobotocore to the credentials the tests pass, and off any proxy."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name == "S3_BUCKET":
            del os.environ[name]
    empty = Path(tempfile.gettempdir()) / "s3contents-tests-no-aws-config"
    os.environ["AWS_CONFIG_FILE"] = str(empty)
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(empty)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    for name in ("NO_PROXY", "no_proxy"):
        hosts = [host for host in os.environ.get(name, "").split(",") if host]
        os.environ[name] = ",".join([*hosts, "127.0.0.1", "localhost"])


# --------------------------------------------------------------------------- run-wide hooks

_previous_sigterm: Any = None


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    # Once only: a second SIGTERM ends the run at once (the servers then die with it, as
    # they are told to when their parent goes).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    global _previous_sigterm
    _isolate_aws_environment()
    install_loopback_guard()
    if threading.current_thread() is threading.main_thread():
        _previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


def pytest_unconfigure(config: pytest.Config) -> None:
    remove_loopback_guard()
    if _previous_sigterm is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _previous_sigterm)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Turn "no tests collected" (exit 5) into a failure: a run that tested nothing failed."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "ERROR: no tests were collected; a run that tests nothing is a failure"
        if reporter is not None:
            reporter.write_line(message, red=True, bold=True)
        else:
            print(message)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How long each server took to start (S3 servers here, fake-gcs-server for tests/gcs),
    and, loudly, how many browser tests did not run (no Chromium): the suite was not whole."""
    for server, seconds in STARTED:
        terminalreporter.write_line(
            f"{server.name}: {server.endpoint_url}, started in {seconds:.1f}s"
        )
    skipped = [r for r in terminalreporter.stats.get("skipped", ()) if "tests/browser/" in r.nodeid]
    if skipped:
        terminalreporter.write_sep(
            "!",
            f"{len(skipped)} browser tests did not run: the suite is not whole",
            red=True,
            bold=True,
        )
        terminalreporter.write_line(
            "Install Chromium and run again: as root, apt-get install -y chromium "
            "(./dev test does it when run as root), or set S3CONTENTS_CHROMIUM to a "
            "Chromium binary.",
            red=True,
            bold=True,
        )
