"""Fixtures of the browser tests: headless Chromium (Playwright) on JupyterLab / Notebook 7.

* ``chromium`` (session): path of the system's Chromium. Without it (or without Playwright)
  the tests fail when ``CI`` is set, and are skipped with the reason otherwise.
* ``browser`` (function): Playwright's Chromium, headless.
* ``artifacts`` (session): ``tests/.artifacts/browser/<run>/``, where the screenshots go
  (printed at the end of the run).
* ``s3_place`` (function): a fresh bucket on SeaweedFS and a prefix in it, removed after.
* ``jupyter`` (function): ``jupyter("lab")`` / ``jupyter("notebook")`` starts the app on
  ``s3_place``; stopped (by PID) after the test.
* ``page`` (function): a new page in a new browser context; uncaught errors of its pages
  (this one and those it opens) are collected in ``page.s3c_errors``.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.browser_support import JupyterApp, find_chromium, launch_chromium, start_jupyter
from tests.support.servers import S3Server

ARTIFACTS_ROOT = Path(__file__).resolve().parents[1] / ".artifacts" / "browser"
_run_folder: list[Path] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"browser tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"browser tests: {reason}")


@pytest.fixture(scope="session")
def chromium() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[test]')")
    path = find_chromium()
    override = os.environ.get("S3CONTENTS_CHROMIUM")
    if path is None and override:
        _unavailable(f"S3CONTENTS_CHROMIUM={override} is not an executable file")
    if path is None:
        _unavailable(
            "no Chromium at /usr/bin/chromium (as root: apt-get install -y chromium; "
            "or set S3CONTENTS_CHROMIUM to a Chromium binary)"
        )
    assert path is not None
    return path


@pytest.fixture
def browser(chromium: str) -> Iterator[Any]:
    """Headless Chromium, one per test.

    Playwright's sync API keeps an event loop running in this thread while it is active, so it
    must start after, and stop before, pytest-jupyter's own loop (``jp_asyncio_loop``, autouse
    for every test, and closed after the test): a session-wide browser would have that fixture
    take Playwright's loop for its own and close it.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = launch_chromium(playwright, chromium)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    folder = ARTIFACTS_ROOT / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    _run_folder.append(folder)
    return folder


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for folder in _run_folder:
        terminalreporter.write_line(f"browser tests: screenshots in {folder}")


@pytest.fixture
def s3_place(seaweedfs: S3Server) -> Iterator[tuple[str, str]]:
    """(bucket, prefix): a new bucket of the test's own, and a prefix inside it."""
    bucket = seaweedfs.make_bucket()
    yield bucket, f"browser/{secrets.token_hex(4)}"
    seaweedfs.remove_bucket(bucket)


@pytest.fixture
def jupyter(
    seaweedfs: S3Server, s3_place: tuple[str, str], artifacts: Path
) -> Iterator[Callable[..., JupyterApp]]:
    """``jupyter(kind)`` starts JupyterLab (``"lab"``) or Notebook 7 (``"notebook"``) on
    ``s3_place``; after the test it is stopped and its log kept as ``<kind>.log`` in the
    artifacts folder. Keyword arguments go to ``start_jupyter``."""
    started: list[JupyterApp] = []

    def start(kind: str, **options: Any) -> JupyterApp:
        bucket, prefix = s3_place
        app = start_jupyter(
            kind,
            endpoint_url=seaweedfs.endpoint_url,
            access_key_id=seaweedfs.access_key_id,
            secret_access_key=seaweedfs.secret_access_key,
            bucket=bucket,
            prefix=prefix,
            **options,
        )
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop(keep_log=artifacts / f"{app.kind}.log")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=False)
    context.set_default_timeout(30_000)
    errors: list[str] = []

    def watch(new: Any) -> None:
        new.on("pageerror", lambda error: errors.append(f"{error} (on {new.url})\n{error.stack}"))

    context.on("page", watch)
    page = context.new_page()
    page.s3c_errors = errors
    try:
        yield page
    finally:
        context.close()
