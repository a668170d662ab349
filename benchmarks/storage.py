"""Start a throw-away SeaweedFS (``weed mini``) on loopback ports for the benchmark.

:func:`start_storage` runs it with ``tests.servers.start_seaweedfs`` (run from the repository
root), which builds on ``s3contents.embedded``: tests, benchmarks and ``s3contents lab`` share
one way of running SeaweedFS.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import find_weed as find_weed
from tests.support.servers import free_ports as free_ports
from tests.support.servers import start_seaweedfs

ACCESS_KEY = "benchaccesskey"
SECRET_KEY = "benchsecretkey0123456789"


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
    """SeaweedFS with the benchmark's keys, started by the test suite's helper."""
    server = start_seaweedfs(
        access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, data_dir=data_dir
    )
    return Storage(
        server.endpoint_url, "tests/support/servers.py", server.stop, server.log_path, log_path
    )


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


class S3Direct:
    """Straight to SeaweedFS (not through the proxy): seeding and checks only.

    The same few calls as :class:`benchmarks.gcs.GCSDirect`, so the workload does not care
    which kind of storage it checks.
    """

    def __init__(self, endpoint: str) -> None:
        self.client = s3_client(endpoint)

    def create_bucket(self, bucket: str) -> None:
        self.client.create_bucket(Bucket=bucket)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda item: self.put(bucket, *item), objects.items()))

    def size(self, bucket: str, key: str) -> int:
        return self.client.head_object(Bucket=bucket, Key=key)["ContentLength"]

    def keys(self, bucket: str, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]
