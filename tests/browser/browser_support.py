"""Run JupyterLab / Notebook 7 on S3ContentsManager and drive them with headless Chromium.

Shared by the browser tests (``tests/browser``) and ``docs/make_screenshots.py``:

* :func:`find_chromium`: the system's Chromium (Debian's ``/usr/bin/chromium``), never a
  browser downloaded by Playwright; :func:`launch_chromium` starts it headless with a fresh
  profile and no background networking.
* :func:`start_jupyter`: ``python -m jupyterlab`` or ``python -m notebook`` on a free loopback
  port with a token, its contents in a bucket and prefix through ``S3ContentsManager``
  (credentials passed in the environment, never on the command line), every Jupyter folder in a
  temporary directory, news and update checks off; :meth:`JupyterApp.stop` ends it by PID.
* :class:`Steps`: a scenario's named steps, each leaving a screenshot ``NN-name.png``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.jupyter_procs import USER_SETTINGS, JupyterApp, start_jupyter

__all__ = [
    "USER_SETTINGS",
    "Bucket",
    "JupyterApp",
    "Steps",
    "find_chromium",
    "launch_chromium",
    "run_first_cell",
    "start_jupyter",
    "wait_for_kernel",
]

#: Where Debian (and most distributions) put Chromium; ``S3CONTENTS_CHROMIUM`` overrides it.
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def find_chromium() -> str | None:
    """Path of the system's Chromium, or None when there is none."""
    override = os.environ.get("S3CONTENTS_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


def launch_chromium(playwright: Any, executable: str) -> Any:
    """Headless Chromium through Playwright; each launch has a new temporary profile."""
    return playwright.chromium.launch(
        executable_path=executable, args=CHROMIUM_ARGS, headless=True, timeout=60_000
    )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:50]


class Steps:
    """Named steps of a scenario; each one ends with a screenshot ``NN-name.png`` in ``folder``
    (``NN-name-FAILED.png`` when it failed, and the step's name is added to the error)."""

    def __init__(self, page: Any, folder: Path, prefix: str = "") -> None:
        self.page = page
        self.folder = folder
        self.prefix = prefix
        self.count = 0
        self.timings: list[tuple[str, float]] = []
        folder.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self.count += 1
        stem = f"{self.prefix}{self.count:02d}-{_slug(name)}"
        began = time.monotonic()
        try:
            yield
        except BaseException as error:
            with contextlib.suppress(Exception):
                self.page.screenshot(path=str(self.folder / f"{stem}-FAILED.png"), timeout=10_000)
            if isinstance(error, Exception):
                raise AssertionError(
                    f"step {self.count} ({name}) failed, screenshot {stem}-FAILED.png in "
                    f"{self.folder}: {type(error).__name__}: {error}"
                ) from error
            raise
        self.timings.append((name, time.monotonic() - began))
        self.page.screenshot(path=str(self.folder / f"{stem}.png"), timeout=10_000)


# --------------------------------------------------------------------------- bucket checks


class Bucket:
    """What is really in the bucket under the app's prefix (boto3, not through Jupyter)."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix else ""

    def keys(self) -> set[str]:
        """Every key under the prefix, relative to it."""
        found: set[str] = set()
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                found.add(item["Key"][len(self.prefix) :])
        return found

    def get(self, path: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.bucket, Key=self.prefix + path)[
            "Body"
        ].read()
        return data

    def put(self, path: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + path, Body=body)

    def notebook(self, path: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.get(path))
        return loaded

    def wait_for(self, check: Any, what: str, timeout: float = 20.0) -> Any:
        """Poll ``check(keys)`` until it returns a true value; fail after ``timeout`` seconds.

        Returns that value, or the keys when it is ``True``.

        The browser shows a result when the server answered, so the bucket is normally
        already there; the poll only covers a listing that lags (none with SeaweedFS).
        """
        deadline = time.monotonic() + timeout
        while True:
            keys = self.keys()
            try:
                result = check(keys)
            except (KeyError, ValueError):
                result = None
            if result:
                return keys if result is True else result
            if time.monotonic() > deadline:
                raise AssertionError(f"bucket: {what}; keys under the prefix: {sorted(keys)}")
            time.sleep(0.2)


# --------------------------------------------------------------------------- page helpers

_KERNEL_READY = """() => {
    const panel = [...document.querySelectorAll(".jp-NotebookPanel")]
        .find((p) => p.checkVisibility());
    if (!panel) return false;
    const name = panel.querySelector('[data-jp-item-name="kernelName"]');
    const status = panel.querySelector(".jp-Notebook-ExecutionIndicator");
    return !!name && name.innerText.includes("ipykernel")
        && !!status && status.dataset.status === "idle";
}"""


def wait_for_kernel(page: Any, timeout: float = 90_000) -> None:
    """Wait until the visible notebook has its kernel, connected and idle.

    A cell run while the notebook still shows "No Kernel" is dropped (JupyterLab clears its
    execution), and the indicator reads "idle" before the kernel exists: both must agree.

    If the page asks which kernel to start, the default (Python 3) is chosen, as a user
    would. Notebook 7 asks when its tree's "New > Notebook" disposed of the session it had
    begun for the new notebook before starting it (a race of its own, seen with the local
    manager too, more often when more lab extensions load): the new tab finds no session and
    a notebook without a kernelspec.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    deadline = time.monotonic() + timeout / 1000
    select = page.locator(".jp-Dialog-content", has_text="Select Kernel")
    while True:
        left = deadline - time.monotonic()
        try:
            page.wait_for_function(_KERNEL_READY, timeout=max(1.0, min(left, 2.0)) * 1000)
            return
        except PlaywrightTimeout:
            if left <= 0:
                raise
        if select.count() and select.first.is_visible():
            select.first.locator("button.jp-mod-accept").click()


def run_first_cell(page: Any, code: str) -> str:
    """Type ``code`` in the visible notebook's first cell, run it, return its output's text."""
    notebook = page.locator(".jp-NotebookPanel:visible")
    wait_for_kernel(page)
    notebook.locator(".jp-Cell .cm-content").first.click()
    page.keyboard.type(code)
    page.keyboard.press("Shift+Enter")
    output = notebook.locator(".jp-Cell").first.locator(".jp-OutputArea-output").first
    output.wait_for(timeout=60_000)
    text: str = output.inner_text()
    return text.strip()
