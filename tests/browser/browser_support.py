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
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from servers import spawn

from s3contents.embedded import LOOPBACK, free_ports, stop_process

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


#: User settings: no news or update checks (they would reach out), no dialog asking for a
#: name on an untitled file's first save.
USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin": {"renameUntitledFileOnSave": False},
}


def _settings(settings_dir: Path) -> None:
    for name, values in USER_SETTINGS.items():
        path = settings_dir / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@dataclass
class JupyterApp:
    """A JupyterLab or Notebook 7 server that this process started."""

    kind: str
    url: str
    token: str
    bucket: str
    prefix: str
    home: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = field(default=None, repr=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        """Call the REST API with the token; returns the decoded JSON answer (or None)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with _DIRECT.open(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def get_bytes(self, path: str) -> bytes:
        """GET a URL of the server (``/files/...``) with the token."""
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"token {self.token}"}
        )
        with _DIRECT.open(request, timeout=60) as response:
            data: bytes = response.read()
            return data

    def log_tail(self, lines: int = 60) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, keep_log: Path | None = None) -> None:
        """Stop the server (by PID: SIGTERM, then SIGKILL; it shuts its kernels down) and
        remove its home, its log copied to ``keep_log`` first if given; idempotent."""
        if self.process is not None:
            process, self.process = self.process, None
            stop_process(process, 20.0)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if keep_log is not None and self.log_path is not None and self.log_path.exists():
            keep_log.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.log_path, keep_log)
        shutil.rmtree(self.home, ignore_errors=True)


def start_jupyter(
    kind: str,
    *,
    endpoint_url: str,
    access_key_id: str,
    secret_access_key: str,
    bucket: str,
    prefix: str = "",
    extra_args: Sequence[str] = (),
    timeout: float = 90.0,
    contents_manager: str = "s3contents.S3ContentsManager",
    server_config: str = "",
    collaborative: bool = False,
) -> JupyterApp:
    """Start ``python -m jupyterlab`` (kind ``"lab"``) or ``python -m notebook`` (``"notebook"``).

    Its Jupyter config, data, runtime, settings and workspaces folders, and the kernels' working
    directory, are in a new temporary directory, removed by :meth:`JupyterApp.stop`.
    ``contents_manager``: the server's contents manager class (the ``S3ContentsManager``
    settings go on the command line either way); ``server_config``: the Python text of the
    app's ``jupyter_server_config.py``, if any.

    ``collaborative``: real-time collaboration (jupyter-collaboration, installed with the test
    extra, is on by default wherever it is installed). Off unless asked for, with its own
    switch ``YDocExtension.disable_rtc``, so documents open as without it: saved by the page,
    with "File Changed" on a change made behind its back.
    """
    module = {"lab": "jupyterlab", "notebook": "notebook"}[kind]
    home = Path(tempfile.mkdtemp(prefix=f"s3c-{kind}-"))
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("JPY_S3_", "JPYNB_S3_", "JUPYTER_", "JUPYTERLAB_")):
            del env[name]
    dirs = {
        "JUPYTER_CONFIG_DIR": home / "config",
        "JUPYTER_DATA_DIR": home / "data",
        "JUPYTER_RUNTIME_DIR": home / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": home / "settings",
        "JUPYTERLAB_WORKSPACES_DIR": home / "workspaces",
        "IPYTHONDIR": home / "ipython",
        "HOME": home / "home",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["JPY_S3_ACCESS_KEY_ID"] = access_key_id
    env["JPY_S3_SECRET_ACCESS_KEY"] = secret_access_key
    _settings(dirs["JUPYTERLAB_SETTINGS_DIR"])
    if server_config:
        (dirs["JUPYTER_CONFIG_DIR"] / "jupyter_server_config.py").write_text(server_config)
    token = os.urandom(16).hex()
    (port,) = free_ports(1)
    args = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        f"--ServerApp.ip={LOOPBACK}",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.contents_manager_class={contents_manager}",
        f"--S3ContentsManager.bucket={bucket}",
        f"--S3ContentsManager.endpoint_url={endpoint_url}",
    ]
    if prefix:
        args.append(f"--S3ContentsManager.prefix={prefix}")
    if not collaborative:
        args.append("--YDocExtension.disable_rtc=True")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    args += extra_args
    log_path = home / f"{kind}.log"
    log_file = log_path.open("ab")
    app = JupyterApp(
        kind=kind,
        url=f"http://{LOOPBACK}:{port}",
        token=token,
        bucket=bucket,
        prefix=prefix,
        home=home,
        log_path=log_path,
        _log_file=log_file,
    )
    try:
        # A session of its own, and SIGTERM should this process die (servers.spawn).
        app.process = spawn(args, env, log_file, cwd=dirs["HOME"])
        deadline = time.monotonic() + timeout
        while True:
            if app.process.poll() is not None:
                raise RuntimeError(
                    f"{module} exited with code {app.process.returncode}:\n{app.log_tail()}"
                )
            with contextlib.suppress(OSError, urllib.error.URLError):
                if app.api("/api/status") is not None:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{module} not ready after {timeout:.0f}s:\n{app.log_tail()}")
            time.sleep(0.2)
    except BaseException:
        app.stop()
        raise
    return app


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
    """
    page.wait_for_function(_KERNEL_READY, timeout=timeout)


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
