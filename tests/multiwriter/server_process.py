"""A Jupyter server as a real process on S3ContentsManager, to signal, kill and measure.

:func:`start_server` runs ``python -m jupyter_server`` (kind ``"server"``) or ``python -m
jupyterlab`` (kind ``"lab"``) on a free loopback port with a token, its contents in a bucket
and prefix of an :class:`~servers.S3Server` (credentials in the environment, never on the
command line), every Jupyter folder in a temporary directory, standard input closed (no
terminal, as under a service manager), in a session of its own. :class:`ServerProcess`
sends it signals by PID, reads its RSS from ``/proc`` and its storage requests from its
``/metrics``.

Smaller than ``tests/browser/browser_support.py``'s launcher: no browser settings, and
``jupyter server`` as well as ``jupyter lab``.
"""

from __future__ import annotations

import base64
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from servers import S3Server, spawn

from s3contents.embedded import LOOPBACK, free_ports, stop_process

__all__ = ["ServerProcess", "chunked", "start_server"]

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_REQUESTS = re.compile(
    r"^s3contents_storage_requests_total\{(?P<labels>[^}]*)\}\s+(?P<value>[0-9.e+]+)$", re.M
)


def chunked(data: bytes, size: int) -> Iterator[tuple[int, str]]:
    """(chunk number, base64 content) as JupyterLab sends them: 1, 2, ..., -1."""
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    for i, piece in enumerate(pieces, start=1):
        yield (-1 if i == len(pieces) else i), base64.b64encode(piece).decode("ascii")


@dataclass
class ServerProcess:
    """A Jupyter server that this process started."""

    kind: str
    url: str
    token: str
    home: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = field(default=None, repr=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def call(self, path: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
        """One REST call with the token: (status, decoded JSON or None), errors included."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with _DIRECT.open(request, timeout=90) as response:
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        try:
            return status, (json.loads(raw) if raw else None)
        except ValueError:
            return status, raw.decode(errors="replace")

    def put_chunk(self, api_path: str, chunk: int, content: str) -> tuple[int, Any]:
        """Save one chunk of an upload, as JupyterLab does (PUT /api/contents/<path>)."""
        model = {"type": "file", "format": "base64", "chunk": chunk, "content": content}
        return self.call(f"/api/contents/{quote(api_path)}", "PUT", model)

    def storage_requests(self) -> Counter[str]:
        """Storage requests sent so far, by kind (LIST, GET, HEAD, PUT...), from /metrics."""
        request = urllib.request.Request(
            f"{self.url}/metrics", headers={"Authorization": f"token {self.token}"}
        )
        with _DIRECT.open(request, timeout=30) as response:
            text = response.read().decode()
        counts: Counter[str] = Counter()
        for match in _REQUESTS.finditer(text):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
            counts[labels.get("operation", "?")] += int(float(match["value"]))
        return counts

    def rss(self) -> int:
        """Resident memory of the server process now, in bytes."""
        return _status_kib(self.pid, "VmRSS") * 1024

    def send(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for the process to end; its exit code."""
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def log(self) -> str:
        if self._log_file is not None:
            self._log_file.flush()
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL) if still running, and remove its home; idempotent."""
        if self.process is not None:
            process, self.process = self.process, None
            stop_process(process, 20.0)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        shutil.rmtree(self.home, ignore_errors=True)


def _status_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise LookupError(field_name)


def start_server(
    kind: str,
    server: S3Server,
    *,
    bucket: str,
    prefix: str,
    settings: dict[str, Any] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 90.0,
) -> ServerProcess:
    """Start ``jupyter server`` (kind ``"server"``) or ``jupyter lab`` (``"lab"``) with
    ``S3ContentsManager`` on ``bucket``/``prefix`` of ``server``; ``settings``: more
    ``S3ContentsManager`` settings (``--S3ContentsManager.<name>=<value>``)."""
    module = {"server": "jupyter_server", "lab": "jupyterlab"}[kind]
    home = Path(tempfile.mkdtemp(prefix=f"s3c-{kind}-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JPY_S3_", "JPYNB_S3_", "JUPYTER_", "JUPYTERLAB_", "S3CONTENTS_"))
    }
    for name in ("config", "data", "runtime", "settings", "workspaces", "home"):
        (home / name).mkdir()
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "HOME": str(home / "home"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "JPY_S3_ACCESS_KEY_ID": server.access_key_id,
            "JPY_S3_SECRET_ACCESS_KEY": server.secret_access_key,
        }
    )
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
        "--ServerApp.contents_manager_class=s3contents.S3ContentsManager",
        f"--S3ContentsManager.bucket={bucket}",
        f"--S3ContentsManager.prefix={prefix}",
        f"--S3ContentsManager.endpoint_url={server.endpoint_url}",
        f"--S3ContentsManager.region_name={server.region_name}",
    ]
    args += [f"--S3ContentsManager.{name}={value}" for name, value in (settings or {}).items()]
    if kind == "lab":
        args.append("--YDocExtension.disable_rtc=True")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    args += list(extra_args)
    log_path = home / f"{kind}.log"
    log_file = log_path.open("ab")
    app = ServerProcess(
        kind=kind,
        url=f"http://{LOOPBACK}:{port}",
        token=token,
        home=home,
        log_path=log_path,
        _log_file=log_file,
    )
    try:
        app.process = spawn(args, env, log_file, cwd=home / "home")
        deadline = time.monotonic() + timeout
        while True:
            if app.process.poll() is not None:
                raise RuntimeError(f"{module} exited ({app.process.returncode}):\n{app.log()}")
            with contextlib.suppress(OSError):
                if app.call("/api/status")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{module} not ready after {timeout:.0f}s:\n{app.log()}")
            time.sleep(0.2)
    except BaseException:
        app.stop()
        raise
    return app


#: Signals by name, for test ids.
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}
