"""Where a test server does not do what the service it stands in for does: probed, not assumed.

A gap is asked of the running server itself, once per server and session, with a request made
*without* the adapter under test (boto3 for S3, plain HTTP for fake-gcs-server's JSON API).
A test that needs the behaviour calls ``gap(name)`` (the ``gap`` fixture): where the probe
finds the server lacking, the test is marked ``xfail(strict=True)`` naming the server and what
it does instead; where the server does what AWS or GCS do, the test runs and must pass. So a
server that is fixed (moto 5.2.6 began to honour the ETag of DeleteObjects entries) turns the
test on by itself, and a broken adapter still fails on a server that has no gap: the probe
never goes through the adapter.

Each probe returns ``None`` when the server behaves like the real service, else the text of
the gap. Probes write only under ``gaps/<hex>/`` in the backend's shared bucket.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.gcs_server import GCSServer
from tests.support.servers import S3Server

__all__ = ["GAPS", "probe"]

Probe = Callable[[Any, str, str], "str | None"]


# --------------------------------------------------------------------------- S3 (boto3)


def _s3_copy_onto_existing(server: S3Server, bucket: str, prefix: str, **condition: str) -> bool:
    """Whether a CopyObject onto an existing key with ``condition`` was refused."""
    s3 = server.admin
    s3.put_object(Bucket=bucket, Key=f"{prefix}src", Body=b"A")
    s3.put_object(Bucket=bucket, Key=f"{prefix}dst", Body=b"B")
    try:
        s3.copy_object(
            Bucket=bucket,
            Key=f"{prefix}dst",
            CopySource={"Bucket": bucket, "Key": f"{prefix}src"},
            **condition,
        )
    except ClientError:
        return True
    return False


def _s3_copy_create_only(server: S3Server, bucket: str, prefix: str) -> str | None:
    if _s3_copy_onto_existing(server, bucket, prefix, IfNoneMatch="*"):
        return None
    return "ignores If-None-Match on CopyObject and overwrites the destination"


def _s3_copy_if_match(server: S3Server, bucket: str, prefix: str) -> str | None:
    if _s3_copy_onto_existing(server, bucket, prefix, IfMatch='"0123456789abcdef0123456789abcdef"'):
        return None
    return "ignores If-Match on CopyObject and overwrites the destination"


def _s3_delete_many_if_match(server: S3Server, bucket: str, prefix: str) -> str | None:
    s3 = server.admin
    key = f"{prefix}x"
    old = s3.put_object(Bucket=bucket, Key=key, Body=b"1")["ETag"]
    s3.put_object(Bucket=bucket, Key=key, Body=b"2")
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key, "ETag": old}]})
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return "ignores the ETag condition of DeleteObjects entries and deletes anyway"
    return None


def _s3_delete_if_match(server: S3Server, bucket: str, prefix: str) -> str | None:
    s3 = server.admin
    key = f"{prefix}x"
    old = s3.put_object(Bucket=bucket, Key=key, Body=b"1")["ETag"]
    s3.put_object(Bucket=bucket, Key=key, Body=b"2")
    try:
        s3.delete_object(Bucket=bucket, Key=key, IfMatch=old)
    except ClientError:
        return None
    return "ignores If-Match on DeleteObject and deletes anyway"


def _s3_delete_atomic(server: S3Server, bucket: str, prefix: str) -> str | None:
    """A conditional delete racing a PUT of the same key: linearizable where the delete's
    check and removal are one step (AWS), so an acknowledged PUT is never lost to a delete
    conditioned on the version it replaced. Up to 300 tight races (a few seconds); the
    first PUT found deleted is the gap."""
    s3 = server.client(max_pool_connections=4)
    try:
        with ThreadPoolExecutor(2) as pool:
            for i in range(300):
                key = f"{prefix}race{i}"
                old = s3.put_object(Bucket=bucket, Key=key, Body=b"1" * 64)["ETag"]
                start = threading.Barrier(2)

                def put(key: str = key, start: threading.Barrier = start) -> None:
                    start.wait()
                    s3.put_object(Bucket=bucket, Key=key, Body=b"2" * 65)

                def delete(
                    key: str = key, old: str = old, start: threading.Barrier = start
                ) -> bool:
                    start.wait()
                    entry = {"Key": key, "ETag": old}
                    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [entry]})
                    return not answer.get("Errors")

                putting, deleting = pool.submit(put), pool.submit(delete)
                putting.result()
                deleted = deleting.result()
                try:
                    s3.head_object(Bucket=bucket, Key=key)
                except ClientError:
                    if deleted:  # both acknowledged, and the newer object is gone
                        return (
                            "a DeleteObjects entry conditioned on an ETag can delete the "
                            "object a concurrent PUT just wrote (its check and removal are "
                            f"not one step: seen after {i + 1} races)"
                        )
    finally:
        s3.close()
    return None


def _s3_part_of_aborted_upload(server: S3Server, bucket: str, prefix: str) -> str | None:
    s3 = server.client()  # no retries: moto answers 500
    key = f"{prefix}aborted"
    try:
        upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        try:
            s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=2, Body=b"y")
        except ClientError as err:
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                return None
            return f"answers {status} instead of NoSuchUpload (404) for a part of an aborted upload"
        return "accepts a part of an aborted upload"
    finally:
        s3.close()


def _s3_upload_initiated(server: S3Server, bucket: str, prefix: str) -> str | None:
    s3 = server.admin
    key = f"{prefix}initiated"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    try:
        listed = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
        now = parsedate_to_datetime(listed["ResponseMetadata"]["HTTPHeaders"]["date"])
        initiated = [u["Initiated"] for u in listed.get("Uploads", []) if u["Key"] == key]
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    if initiated and abs((now - initiated[0]).total_seconds()) < 60:
        return None
    return f"lists an upload begun a moment ago as initiated at {initiated}, not when it began"


def _s3_uploads_pagination(server: S3Server, bucket: str, prefix: str) -> str | None:
    s3 = server.admin
    keys = [f"{prefix}page-{i}" for i in range(3)]
    ids = [s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"] for k in keys]
    try:
        page = s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix, MaxUploads=2)
    finally:
        for key, upload_id in zip(keys, ids, strict=True):
            s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    if not page.get("IsTruncated") or page.get("NextKeyMarker"):
        return None  # one whole page (MaxUploads ignored) or a page that says where to go on
    return "marks a page of ListMultipartUploads truncated without a NextKeyMarker to go on from"


def _s3_authenticates(server: S3Server, bucket: str, prefix: str) -> str | None:
    wrong = boto3.session.Session().client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key="WRONG" + server.secret_access_key[5:],
        region_name=server.region_name,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    try:
        wrong.head_bucket(Bucket=bucket)
    except ClientError:
        return None
    finally:
        wrong.close()
    return "accepts any credentials (it does not authenticate)"


# --------------------------------------------------------------------------- GCS (JSON API)


def _gcs(server: GCSServer, method: str, url: str, **headers: str) -> tuple[int, bytes]:
    """One raw request to fake-gcs-server: (status, body), errors included."""
    req = urllib.request.Request(
        url, method=method, headers=headers, data=b"" if method in ("POST", "PUT") else None
    )
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            req, timeout=10
        ) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _gcs_object(server: GCSServer, bucket: str, key: str) -> str:
    return f"{server.endpoint_url}/storage/v1/b/{bucket}/o/{urllib.parse.quote(key, safe='')}"


def _gcs_generation(server: GCSServer, bucket: str, key: str, data: bytes) -> str:
    server.upload(bucket, key, data)
    status, body = _gcs(server, "GET", _gcs_object(server, bucket, key))
    assert status == 200, (status, body)
    return str(json.loads(body)["generation"])


def _gcs_copy_create_only(server: GCSServer, bucket: str, prefix: str) -> str | None:
    _gcs_generation(server, bucket, f"{prefix}src", b"A")
    _gcs_generation(server, bucket, f"{prefix}dst", b"B")
    src = _gcs_object(server, bucket, f"{prefix}src")
    dst = f"b/{bucket}/o/{urllib.parse.quote(prefix + 'dst', safe='')}"
    status, _ = _gcs(server, "POST", f"{src}/rewriteTo/{dst}?ifGenerationMatch=0")
    return None if status == 412 else "ignores ifGenerationMatch=0 on rewriteTo (GCS answers 412)"


def _gcs_copy_if_match(server: GCSServer, bucket: str, prefix: str) -> str | None:
    _gcs_generation(server, bucket, f"{prefix}src", b"A")
    old = _gcs_generation(server, bucket, f"{prefix}dst", b"B")
    _gcs_generation(server, bucket, f"{prefix}dst", b"C")
    src = _gcs_object(server, bucket, f"{prefix}src")
    dst = f"b/{bucket}/o/{urllib.parse.quote(prefix + 'dst', safe='')}"
    status, _ = _gcs(server, "POST", f"{src}/rewriteTo/{dst}?ifGenerationMatch={old}")
    return None if status == 412 else "ignores ifGenerationMatch on rewriteTo (GCS answers 412)"


def _gcs_delete_if_match(server: GCSServer, bucket: str, prefix: str) -> str | None:
    key = f"{prefix}x"
    old = _gcs_generation(server, bucket, key, b"1")
    _gcs_generation(server, bucket, key, b"2")
    status, _ = _gcs(
        server, "DELETE", f"{_gcs_object(server, bucket, key)}?ifGenerationMatch={old}"
    )
    return (
        None if status == 412 else "ignores ifGenerationMatch on object deletes (GCS answers 412)"
    )


def _gcs_missing_bucket(server: GCSServer, bucket: str, prefix: str) -> str | None:
    missing = f"t-missing-{secrets.token_hex(6)}"
    status, body = _gcs(server, "GET", _gcs_object(server, missing, "x"))
    if status == 404 and b"bucket" in body.lower():
        return None
    return (
        "answers with the bare 404 of a missing object, so a missing bucket looks like a "
        "missing key (GCS's JSON errors say the bucket does not exist)"
    )


def _gcs_authenticates(server: GCSServer, bucket: str, prefix: str) -> str | None:
    status, _ = _gcs(
        server,
        "GET",
        f"{server.endpoint_url}/storage/v1/b/{bucket}/o",
        Authorization="Bearer ya29.wrong",
    )
    return None if status in (401, 403) else "accepts any token (it does not authenticate)"


def _gcs_cancelled_session(server: GCSServer, bucket: str, prefix: str) -> str | None:
    query = urllib.parse.urlencode({"uploadType": "resumable", "name": f"{prefix}cancelled"})
    req = urllib.request.Request(
        f"{server.endpoint_url}/upload/storage/v1/b/{bucket}/o?{query}",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as response:
        session = response.headers["Location"]
    _gcs(server, "DELETE", session)
    chunk = urllib.request.Request(
        session, data=b"x", method="PUT", headers={"Content-Range": "bytes 0-0/1"}
    )
    try:
        with opener.open(chunk, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as err:
        if err.code in (404, 410, 499):
            return None
    return "accepts chunks for a cancelled resumable session"


#: gap name -> {server kind ("s3" | "gcs"): probe}. A kind without the gap's probe cannot
#: have it (the request does not exist there).
GAPS: dict[str, dict[str, Probe]] = {
    "copy_create_only": {"s3": _s3_copy_create_only, "gcs": _gcs_copy_create_only},
    "copy_if_match": {"s3": _s3_copy_if_match, "gcs": _gcs_copy_if_match},
    "delete_if_match": {"s3": _s3_delete_if_match, "gcs": _gcs_delete_if_match},
    "delete_many_if_match": {"s3": _s3_delete_many_if_match, "gcs": _gcs_delete_if_match},
    "delete_atomic": {"s3": _s3_delete_atomic},
    "part_of_aborted_upload": {"s3": _s3_part_of_aborted_upload},
    "upload_initiated": {"s3": _s3_upload_initiated},
    "uploads_pagination": {"s3": _s3_uploads_pagination},
    "missing_bucket_error": {"gcs": _gcs_missing_bucket},
    "authenticates": {"s3": _s3_authenticates, "gcs": _gcs_authenticates},
    "cancelled_session": {"gcs": _gcs_cancelled_session},
}

_found: dict[tuple[int, str], str | None] = {}


def probe(server: S3Server | GCSServer, bucket: str, name: str) -> str | None:
    """The gap ``name`` of ``server`` (asked once per server and session), or ``None``."""
    kind = "gcs" if isinstance(server, GCSServer) else "s3"
    check = GAPS[name].get(kind)
    if check is None:
        return None
    cache = (id(server), name)
    if cache not in _found:
        _found[cache] = check(server, bucket, f"gaps/{secrets.token_hex(6)}/")
    return _found[cache]
