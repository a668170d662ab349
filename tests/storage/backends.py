"""The storage servers the contract suite runs on, behind one small interface.

A :class:`Backend` builds adapters of the ``Storage`` port on its server (a fresh
``S3Storage`` or ``GCSStorage`` each time) and inspects and prepares buckets *directly*,
without the adapter under test (boto3 for S3, the JSON API over plain HTTP for GCS). The
contract tests are written once against it; what legitimately differs between adapters
(page sizes, deletions per request, folders kept by SeaweedFS) is a property of the backend,
named here.

* :class:`S3Backend`: ``S3Storage`` on SeaweedFS or moto (:class:`servers.S3Server`).
* :class:`GCSBackend`: ``GCSStorage`` on fake-gcs-server (:class:`gcs_server.GCSServer`).
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any, ClassVar

from s3contents.gcs import storage as gcs_module
from s3contents.gcs.storage import GCSStorage
from s3contents.s3 import multipart as s3_multipart
from s3contents.s3 import storage as s3_module
from s3contents.s3.storage import S3Storage
from s3contents.storage.base import Storage
from tests.support.gcs_server import GCSServer
from tests.support.servers import S3Server

__all__ = ["Backend", "GCSBackend", "S3Backend"]


class Backend:
    """One storage server, and how to make adapters on it and look into its buckets."""

    #: The server's name (``seaweedfs``, ``moto``, ``fake-gcs-server``), also the test id.
    name: str
    #: The running server.
    server: S3Server | GCSServer
    #: A bucket the session shares; tests keep apart by prefix.
    bucket: str
    #: The adapter module whose ``_PAGE`` is the number of entries asked for per LIST.
    page_module: ClassVar[ModuleType]
    #: The module whose ``_UPLOADS_PAGE`` sets the uploads listed a page (if it lists them).
    uploads_module: ClassVar[ModuleType]
    #: Keys one ``delete_many`` request deletes at most.
    delete_batch: ClassVar[int]
    #: A folder whose last object was deleted is still listed (SeaweedFS's directories).
    keeps_emptied_folders: bool = False
    #: A write to a missing bucket creates it (SeaweedFS, with admin credentials).
    creates_missing_bucket: bool = False
    #: Requests, by kind, of a one-part upload of a few bytes after ``multipart_begin``:
    #: S3 PUTs the part and POSTs the completion; a GCS resumable upload keeps a part
    #: smaller than 256 KiB back and sends it all with the completion.
    tiny_upload_requests: ClassVar[dict[str, int]]
    #: Uploads in progress can be listed (S3's ListMultipartUploads; GCS has no such request).
    lists_uploads: ClassVar[bool]

    def storage(
        self,
        bucket: str | None = None,
        *,
        credentials: str = "good",
        endpoint_url: str | None = None,
        retries: int | None = None,
        max_concurrency: int | None = None,
    ) -> Storage:
        """A new adapter on ``bucket`` (default: the shared one); close it after use.

        ``credentials``: ``"good"`` or ``"wrong"`` (refused by servers that check them).
        ``endpoint_url``: somewhere else (an unreachable port). ``retries``: attempts per
        request (the adapter's default otherwise).
        """
        raise NotImplementedError

    @property
    def secrets(self) -> list[str]:
        """Every credential the adapters of :meth:`storage` send; never to be logged."""
        raise NotImplementedError

    def make_bucket(self) -> str:
        """A new, empty bucket (``t-<hex>``)."""
        raise NotImplementedError

    def remove_bucket(self, name: str) -> None:
        """Delete a bucket and its objects; a missing bucket is fine."""
        raise NotImplementedError

    def bucket_exists(self, name: str) -> bool:
        raise NotImplementedError

    def keys(self, bucket: str, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted (recursive, straight from the server)."""
        raise NotImplementedError

    def write_many(self, bucket: str, keys: list[str]) -> None:
        """Write empty objects from threads (set-up, not the code under test)."""
        raise NotImplementedError

    def list_requests(self, objects: int, folders: int, page: int) -> int:
        """LIST requests the adapter sends for one delimited listing of ``objects`` objects
        and ``folders`` sub-folders at one level, asking ``page`` entries a page."""
        return -(-(objects + folders) // page)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class S3Backend(Backend):
    """``S3Storage`` on an S3 server started by ``servers.py``."""

    server: S3Server
    page_module: ClassVar[ModuleType] = s3_module
    uploads_module: ClassVar[ModuleType] = s3_multipart
    delete_batch = 1000
    tiny_upload_requests = {"PUT": 1, "POST": 1}
    lists_uploads = True

    def __init__(self, server: S3Server) -> None:
        self.server = server
        self.name = server.name
        self.keeps_emptied_folders = self.creates_missing_bucket = server.name == "seaweedfs"
        self.bucket = server.make_bucket(f"s3contents-storage-{secrets.token_hex(4)}")

    def storage(
        self,
        bucket: str | None = None,
        *,
        credentials: str = "good",
        endpoint_url: str | None = None,
        retries: int | None = None,
        max_concurrency: int | None = None,
    ) -> S3Storage:
        secret = self.server.secret_access_key
        client_kwargs = {
            "endpoint_url": endpoint_url or self.server.endpoint_url,
            "region_name": self.server.region_name,
            "aws_access_key_id": self.server.access_key_id,
            "aws_secret_access_key": secret if credentials == "good" else self._wrong_secret,
        }
        config: dict[str, Any] = {}
        if retries is not None:
            config["retries"] = {"mode": "standard", "max_attempts": retries}
        if endpoint_url is not None:
            config["connect_timeout"] = config["read_timeout"] = 1
        extra: dict[str, Any] = {}
        if max_concurrency is not None:
            extra["max_concurrency"] = max_concurrency
        return S3Storage(
            bucket or self.bucket, client_kwargs=client_kwargs, config_kwargs=config, **extra
        )

    @property
    def _wrong_secret(self) -> str:
        return "WRONG" + self.server.secret_access_key[5:]

    @property
    def secrets(self) -> list[str]:
        return [self.server.secret_access_key, self._wrong_secret]

    def make_bucket(self) -> str:
        return self.server.make_bucket()

    def remove_bucket(self, name: str) -> None:
        self.server.remove_bucket(name)

    def bucket_exists(self, name: str) -> bool:
        return name in {b["Name"] for b in self.server.admin.list_buckets()["Buckets"]}

    def keys(self, bucket: str, prefix: str) -> list[str]:
        pages = self.server.admin.get_paginator("list_objects_v2")
        found = [
            item["Key"]
            for page in pages.paginate(Bucket=bucket, Prefix=prefix)
            for item in page.get("Contents", ())
        ]
        return sorted(found)

    def write_many(self, bucket: str, keys: list[str]) -> None:
        client = self.server.client(max_pool_connections=16)
        try:
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b""), keys))
        finally:
            client.close()


class GCSBackend(Backend):
    """``GCSStorage`` on fake-gcs-server, authenticating with a bearer token.

    fake-gcs-server accepts any token (it does not authenticate), so "wrong" credentials
    are only another token; the adapters still send them on every request, which is what
    the tests of secrets in logs need.
    """

    server: GCSServer
    page_module: ClassVar[ModuleType] = gcs_module
    delete_batch = 100  # GCS's limit of calls per batch request
    tiny_upload_requests = {"PUT": 1}
    lists_uploads = False

    def __init__(self, server: GCSServer) -> None:
        self.server = server
        self.name = server.name
        self.bucket = server.make_bucket(f"s3contents-storage-{secrets.token_hex(4)}")
        self._tokens = {
            "good": f"ya29.good-{secrets.token_urlsafe(24)}",
            "wrong": f"ya29.wrong-{secrets.token_urlsafe(24)}",
        }

    def storage(
        self,
        bucket: str | None = None,
        *,
        credentials: str = "good",
        endpoint_url: str | None = None,
        retries: int | None = None,
        max_concurrency: int | None = None,
    ) -> GCSStorage:
        from google.oauth2.credentials import Credentials

        extra: dict[str, Any] = {}
        if retries is not None:
            extra["retries"] = retries
        if max_concurrency is not None:
            extra["max_concurrency"] = max_concurrency
        return GCSStorage(
            bucket or self.bucket,
            project=self.server.project,
            token=Credentials(self._tokens[credentials]),
            endpoint_url=endpoint_url or self.server.endpoint_url,
            **extra,
        )

    @property
    def secrets(self) -> list[str]:
        return list(self._tokens.values())

    def make_bucket(self) -> str:
        return self.server.make_bucket()

    def remove_bucket(self, name: str) -> None:
        quoted = urllib.parse.quote(name, safe="")
        try:
            for key in self.server.keys(name):
                self.server.request("DELETE", f"b/{quoted}/o/{urllib.parse.quote(key, safe='')}")
            self.server.request("DELETE", f"b/{quoted}")
        except urllib.error.HTTPError as err:
            if err.code != 404:
                raise

    def bucket_exists(self, name: str) -> bool:
        try:
            self.server.request("GET", f"b/{urllib.parse.quote(name, safe='')}")
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return False
            raise
        return True

    def keys(self, bucket: str, prefix: str) -> list[str]:
        return sorted(self.server.keys(bucket, prefix))

    def write_many(self, bucket: str, keys: list[str]) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda k: self.server.upload(bucket, k, b""), keys))

    def list_requests(self, objects: int, folders: int, page: int) -> int:
        # fake-gcs-server counts only objects against maxResults (GCS counts folders too),
        # and repeats the folders on every page (the adapter de-duplicates them).
        return max(1, -(-objects // page))
