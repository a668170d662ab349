"""Jupyter servers as real processes, on S3ContentsManager, for tests that need one.

:func:`start_jupyter` runs ``python -m jupyterlab`` (or ``notebook``) on a free loopback port
with a token, its contents in a bucket and prefix through ``S3ContentsManager`` (credentials
passed in the environment, never on the command line), every Jupyter folder in a temporary
directory, news and update checks off. :class:`JupyterApp` calls its REST API, kills it (by
PID, any signal: the multi-writer tests SIGKILL it) and stops it. Used by the browser tests
(``tests/browser``, through ``browser_support``), the multi-writer tests
(``tests/multiwriter``) and ``docs/make_screenshots.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from servers import spawn

from s3contents.embedded import LOOPBACK, free_ports, stop_process

__all__ = ["USER_SETTINGS", "JupyterApp", "start_jupyter"]

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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

    def call(self, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
        """Like :meth:`api`, but an error answer is returned too: ``(status, decoded JSON)``."""
        try:
            return 200, self.api(path, method, body)
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw) if raw else None
            except ValueError:
                return err.code, raw.decode(errors="replace")

    def status_of(self, path: str, method: str = "GET", body: Any = None) -> int:
        """The HTTP status of one REST call (2xx as answered: 200, 201 or 204)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with _DIRECT.open(request, timeout=120) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as err:
            err.read()
            return int(err.code)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the server process (by PID); with SIGKILL, wait for it to die."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            if sig == signal.SIGKILL:
                self.process.wait(10)

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
