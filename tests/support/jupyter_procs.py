"""Jupyter servers as real processes, on S3ContentsManager, for tests that need one.

:func:`start_jupyter` runs ``python -m jupyterlab``, ``python -m notebook`` or a bare
``python -m jupyter_server`` on a free loopback port with a token, its contents in a bucket
and prefix through ``S3ContentsManager`` (credentials passed in the environment, never on
the command line), every Jupyter folder in a temporary directory, standard input closed (no
terminal, as under a service manager), in a session of its own, news and update checks off.
:class:`JupyterApp` calls its REST API, sends the process signals by PID (the multi-writer
tests SIGKILL it; the upload tests stop it with SIGTERM or SIGINT and wait for its exit),
reads its RSS from ``/proc`` and its storage requests from its ``/metrics``, and stops it.
Used by the browser tests (``tests/browser``, through ``browser_support``), the multi-writer
tests (``tests/multiwriter``) and ``docs/make_screenshots.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from s3contents.embedded import LOOPBACK, free_ports, stop_process
from tests.support.servers import spawn

__all__ = ["USER_SETTINGS", "JupyterApp", "LoggedProcess", "start_jupyter"]

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_REQUESTS = re.compile(
    r"^s3contents_storage_requests_total\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9.e+]+)$", re.M
)
#: ``kind`` of :func:`start_jupyter` -> the module it runs.
MODULES = {"lab": "jupyterlab", "notebook": "notebook", "server": "jupyter_server"}


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


class LoggedProcess:
    """Reading the log file of a server process this process started (its dataclass holds
    ``log_path`` and the open ``_log_file``)."""

    log_path: Path | None
    _log_file: IO[bytes] | None

    def log(self) -> str:
        """The server's whole log so far."""
        if self._log_file is not None:
            self._log_file.flush()
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


@dataclass
class JupyterApp(LoggedProcess):
    """A JupyterLab, Notebook 7 or bare Jupyter Server that this process started."""

    kind: str
    url: str
    token: str
    bucket: str
    prefix: str
    home: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = field(default=None, repr=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def _request(self, path: str, method: str, body: Any) -> urllib.request.Request:
        data = None if body is None else json.dumps(body).encode()
        return urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )

    def api(self, path: str, method: str = "GET", body: Any = None, timeout: float = 30) -> Any:
        """Call the REST API with the token; returns the decoded JSON answer (or None)."""
        with _DIRECT.open(self._request(path, method, body), timeout=timeout) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def call(
        self, path: str, method: str = "GET", body: Any = None, timeout: float = 90
    ) -> tuple[int, Any]:
        """Like :meth:`api`, but error answers are returned too: ``(status, decoded JSON)``,
        the status as answered (200, 201, 204, 4xx...); a body that is not JSON as text."""
        try:
            with _DIRECT.open(self._request(path, method, body), timeout=timeout) as response:
                raw, status = response.read(), int(response.status)
        except urllib.error.HTTPError as err:
            raw, status = err.read(), int(err.code)
        try:
            return status, (json.loads(raw) if raw else None)
        except ValueError:
            return status, raw.decode(errors="replace")

    def status_of(self, path: str, method: str = "GET", body: Any = None) -> int:
        """The HTTP status of one REST call (2xx as answered: 200, 201 or 204)."""
        return self.call(path, method, body, timeout=120)[0]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def send(self, sig: int) -> None:
        """Send ``sig`` to the server process (by PID) if it still runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the server process to end; its exit code."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the server process (by PID); with SIGKILL, wait for it to die."""
        self.send(sig)
        if sig == signal.SIGKILL and self.process is not None:
            self.process.wait(10)

    def rss(self) -> int:
        """Resident memory of the server process now, in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise LookupError("VmRSS")

    def storage_requests(self) -> Counter[str]:
        """Storage requests sent so far, by kind (LIST, GET, HEAD, PUT...), from /metrics."""
        text = self.get_bytes("/metrics").decode()
        counts: Counter[str] = Counter()
        for match in _REQUESTS.finditer(text):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
            counts[labels.get("operation", "?")] += int(float(match["value"]))
        return counts

    def get_bytes(self, path: str) -> bytes:
        """GET a URL of the server (``/files/...``) with the token."""
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"token {self.token}"}
        )
        with _DIRECT.open(request, timeout=60) as response:
            data: bytes = response.read()
            return data

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
    settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    jupytext: bool = False,
) -> JupyterApp:
    """Start ``python -m jupyterlab`` (kind ``"lab"``), ``python -m notebook``
    (``"notebook"``) or a bare ``python -m jupyter_server`` (``"server"``).

    Its Jupyter config, data, runtime, settings and workspaces folders, and the kernels' working
    directory, are in a new temporary directory, removed by :meth:`JupyterApp.stop`.
    ``contents_manager``: the server's contents manager class (the ``S3ContentsManager``
    settings go on the command line either way); ``server_config``: the Python text of the
    app's ``jupyter_server_config.py``, if any; ``settings``: more ``S3ContentsManager``
    settings (``--S3ContentsManager.<name>=<value>``); ``env``: more environment variables
    (none of ours, ``JPY_S3_*``, ``S3CONTENTS_*``, ``JUPYTER_*``..., is inherited).

    ``collaborative``: real-time collaboration (jupyter-collaboration, installed with the test
    extra, is on by default wherever it is installed, bare Jupyter Server included). Off unless
    asked for, with its own switch ``YDocExtension.disable_rtc``, so documents open as without
    it: saved by the page, with "File Changed" on a change made behind its back.

    ``jupytext``: jupytext's server extension (installed with the test extra, on by default
    wherever it is installed) wraps the contents manager; off unless asked for.
    """
    module = MODULES[kind]
    home = Path(tempfile.mkdtemp(prefix=f"s3c-{kind}-"))
    full_env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("JPY_S3_", "JPYNB_S3_", "JUPYTER_", "JUPYTERLAB_", "S3CONTENTS_"))
    }
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
        full_env[name] = str(path)
    full_env["JUPYTER_PLATFORM_DIRS"] = "1"
    full_env["JPY_S3_ACCESS_KEY_ID"] = access_key_id
    full_env["JPY_S3_SECRET_ACCESS_KEY"] = secret_access_key
    full_env.update(env or {})
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
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.contents_manager_class={contents_manager}",
        f"--S3ContentsManager.bucket={bucket}",
        f"--S3ContentsManager.endpoint_url={endpoint_url}",
    ]
    if prefix:
        args.append(f"--S3ContentsManager.prefix={prefix}")
    args += [f"--S3ContentsManager.{name}={value}" for name, value in (settings or {}).items()]
    if not collaborative:
        args.append("--YDocExtension.disable_rtc=True")
    if not jupytext:
        args.append("--ServerApp.jpserver_extensions=jupyterlab_jupytext=False")
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
        # A session of its own, standard input closed, and SIGTERM should this process die
        # (servers.spawn).
        app.process = spawn(args, full_env, log_file, cwd=dirs["HOME"])
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
