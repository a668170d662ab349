"""Access: read-only credentials, wrong credentials, an endpoint nobody answers.

A SeaweedFS of this module's own enforces two identities: its admin (which seeds the bucket
and checks it afterwards) and a read-only one (``Read`` and ``List`` only).  A live Jupyter
Server runs ``S3ContentsManager`` on:

* the read-only key: every read answers 200, every write 403 with a message that says the
  write was denied, which operation and which key; the bucket is left exactly as it was;
* a wrong secret or an unknown key id: the server starts, logs one error naming the bucket
  and the endpoint (never the secret), and every endpoint answers 403 saying the credentials
  were rejected, never 500;
* an endpoint where nothing listens: every endpoint answers 503 within the retry policy, and
  the server keeps answering.

``s3contents doctor`` on the read-only key says reads work and writes are denied.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from s3contents import S3ContentsManager
from tests.support.servers import S3Server, free_ports, start_seaweedfs

PREFIX = "ro"
READ_KEY = f"ro{secrets.token_hex(8)}"
READ_SECRET = secrets.token_urlsafe(30)
WRONG_SECRET = "wrong-" + secrets.token_hex(16)

NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "c1",
            "metadata": {},
            "outputs": [],
            "source": "print('hi')",
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}

#: What the admin seeds under PREFIX: key (relative) -> bytes.
SEED = {
    "notes.txt": b"read me\n",
    "nb.ipynb": json.dumps(NOTEBOOK).encode(),
    "sub/inner.txt": b"inside\n",
    ".ipynb_checkpoints/nb-checkpoint.ipynb": json.dumps(NOTEBOOK).encode(),
}


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def access_server() -> Iterator[S3Server]:
    """SeaweedFS with its admin identity and a read-only one (``READ_KEY``: Read, List)."""
    identities = {
        "identities": [
            {
                "name": "read-only",
                "credentials": [{"accessKey": READ_KEY, "secretKey": READ_SECRET}],
                "actions": ["Read", "List"],
            }
        ]
    }
    with start_seaweedfs(s3_config=identities) as server:
        yield server


@pytest.fixture(scope="module")
def access_bucket(access_server: S3Server) -> str:
    """A bucket seeded by the admin with SEED under PREFIX."""
    bucket = access_server.make_bucket()
    for name, data in SEED.items():
        access_server.admin.put_object(Bucket=bucket, Key=f"{PREFIX}/{name}", Body=data)
    return bucket


def snapshot(server: S3Server, bucket: str) -> dict[str, Any]:
    """Every key of the bucket with its ETag, and the multipart uploads in progress."""
    listed = server.admin.list_objects_v2(Bucket=bucket)
    uploads = server.admin.list_multipart_uploads(Bucket=bucket)
    return {
        "objects": {o["Key"]: o["ETag"] for o in listed.get("Contents", ())},
        "uploads": [u["Key"] for u in uploads.get("Uploads", ())],
    }


@pytest.fixture
def access(request: pytest.FixtureRequest) -> str:
    """Which credentials the live server uses: parametrize indirectly with one of
    ``read-only`` (default), ``wrong-secret``, ``unknown-key``, ``unreachable``."""
    return str(getattr(request, "param", "read-only"))


@pytest.fixture
def cm_settings(access: str, access_server: S3Server, access_bucket: str) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "bucket": access_bucket,
        "prefix": PREFIX,
        "endpoint_url": access_server.endpoint_url,
        "region_name": access_server.region_name,
        "access_key_id": READ_KEY,
        "secret_access_key": READ_SECRET,
    }
    if access == "wrong-secret":
        settings["secret_access_key"] = WRONG_SECRET
    elif access == "unknown-key":
        settings["access_key_id"] = "nobody" + secrets.token_hex(6)
        settings["secret_access_key"] = WRONG_SECRET
    elif access == "unreachable":
        (port,) = free_ports(1)  # nothing listens there
        settings["endpoint_url"] = f"http://127.0.0.1:{port}"
    else:
        assert access == "read-only", access
    return settings


@pytest.fixture
def jp_server_config(cm_settings: dict[str, Any]) -> Config:
    return Config(
        {
            "ServerApp": {
                "contents_manager_class": S3ContentsManager,
                "jpserver_extensions": {"jupyter_server_terminals": False},
            },
            "S3ContentsManager": cm_settings,
        }
    )


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def server_log(jp_serverapp: Any) -> Iterator[_Records]:
    """What the contents manager logs (the server's own logger) during the test."""
    handler = _Records()
    log = jp_serverapp.contents_manager.log
    log.addHandler(handler)
    yield handler
    log.removeHandler(handler)


async def _status(fetch: Any) -> tuple[int, str]:
    """(HTTP status, JSON ``message`` or body) of one request."""
    try:
        r = await fetch
    except HTTPClientError as err:
        assert err.response is not None
        body = err.response.body.decode()
        try:
            return err.code, str(json.loads(body).get("message", body))
        except ValueError:
            return err.code, body
    return r.code, r.body.decode()


def _body(model: dict[str, Any]) -> str:
    return json.dumps(model)


# --------------------------------------------------------------------------- the server itself


def test_seaweedfs_refuses_writes_to_the_read_only_key(
    access_server: S3Server, access_bucket: str
) -> None:
    """What every test below relies on: SeaweedFS itself lets the key read, not write."""
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=access_server.endpoint_url,
        aws_access_key_id=READ_KEY,
        aws_secret_access_key=READ_SECRET,
        region_name=access_server.region_name,
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    try:
        listed = client.list_objects_v2(Bucket=access_bucket, Prefix=f"{PREFIX}/")
        assert listed["KeyCount"] == len(SEED)
        got = client.get_object(Bucket=access_bucket, Key=f"{PREFIX}/notes.txt")
        assert got["Body"].read() == SEED["notes.txt"]
        for call in (
            lambda: client.put_object(Bucket=access_bucket, Key=f"{PREFIX}/x", Body=b"x"),
            lambda: client.delete_object(Bucket=access_bucket, Key=f"{PREFIX}/notes.txt"),
            lambda: client.create_multipart_upload(Bucket=access_bucket, Key=f"{PREFIX}/m"),
        ):
            with pytest.raises(ClientError) as raised:
                call()
            assert raised.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        client.close()
    assert sorted(snapshot(access_server, access_bucket)["objects"]) == sorted(
        f"{PREFIX}/{name}" for name in SEED
    )


# --------------------------------------------------------------------------- read-only key


async def test_read_only_key_reads_everything(jp_fetch: Any) -> None:
    listing = json.loads((await jp_fetch("api", "contents", "", method="GET")).body)
    assert sorted(entry["name"] for entry in listing["content"]) == ["nb.ipynb", "notes.txt", "sub"]
    text = json.loads((await jp_fetch("api", "contents", "notes.txt", method="GET")).body)
    assert text["content"] == "read me\n"
    nb = json.loads((await jp_fetch("api", "contents", "nb.ipynb", method="GET")).body)
    assert nb["content"]["cells"][0]["source"] == "print('hi')"
    sub = json.loads((await jp_fetch("api", "contents", "sub", method="GET")).body)
    assert [entry["name"] for entry in sub["content"]] == ["inner.txt"]
    download = await jp_fetch("files", "notes.txt", method="GET")
    assert download.code == 200
    assert download.body == SEED["notes.txt"]
    checkpoints = await jp_fetch("api", "contents", "nb.ipynb", "checkpoints", method="GET")
    assert checkpoints.code == 200
    assert [c["id"] for c in json.loads(checkpoints.body)] == ["checkpoint"]


def _chunk(number: int) -> str:
    return _body({"type": "file", "format": "base64", "content": "AAAA", "chunk": number})


#: Every write of the REST API on the read-only key, in order: (what, jp_fetch arguments,
#: status, the S3 operation refused and its key as the message names them). Each one reads first
#: where the manager does (the handler's HEAD of the target, the LIST that picks a free
#: name, the HEADs of a rename...): those reads are allowed, so the write itself is tried and
#: refused, and the answer is 403, never the 404/409 of a check that failed before it.
WRITES: list[tuple[str, tuple[str, ...], dict[str, Any], int, str]] = [
    (
        "save file",
        ("api", "contents", "notes.txt"),
        {"method": "PUT", "body": _body({"type": "file", "format": "text", "content": "new"})},
        403,
        f"PutObject {PREFIX}/notes.txt",
    ),
    (
        "save notebook",
        ("api", "contents", "nb.ipynb"),
        {"method": "PUT", "body": _body({"type": "notebook", "content": NOTEBOOK})},
        403,
        f"PutObject {PREFIX}/nb.ipynb",
    ),
    (
        "upload a new file (PUT to a free name)",
        ("api", "contents", "new.txt"),
        {"method": "PUT", "body": _body({"type": "file", "format": "text", "content": "x"})},
        403,
        f"PutObject {PREFIX}/new.txt",
    ),
    (
        "new untitled file",
        ("api", "contents", ""),
        {"method": "POST", "body": "{}"},
        403,
        f"PutObject {PREFIX}/untitled",
    ),
    (
        "new untitled notebook",
        ("api", "contents", ""),
        {"method": "POST", "body": _body({"type": "notebook"})},
        403,
        f"PutObject {PREFIX}/Untitled.ipynb",
    ),
    (
        "new folder",
        ("api", "contents", "sub"),
        {"method": "POST", "body": _body({"type": "directory"})},
        403,
        f"PutObject {PREFIX}/sub/Untitled Folder/.s3keep",
    ),
    (
        "copy",
        ("api", "contents", ""),
        {"method": "POST", "body": _body({"copy_from": "notes.txt"})},
        403,
        f"CopyObject {PREFIX}/notes-Copy1.txt",
    ),
    (
        "rename file",
        ("api", "contents", "notes.txt"),
        {"method": "PATCH", "body": _body({"path": "renamed.txt"})},
        403,
        f"CopyObject {PREFIX}/renamed.txt",
    ),
    (
        "rename folder",
        ("api", "contents", "sub"),
        {"method": "PATCH", "body": _body({"path": "sub2"})},
        403,
        f"PutObject {PREFIX}/sub/.s3contents-rename",  # the lock of the source, claimed first
    ),
    (
        "delete file",
        ("api", "contents", "notes.txt"),
        {"method": "DELETE"},
        403,
        f"DeleteObject {PREFIX}/notes.txt",
    ),
    (
        "delete folder",
        ("api", "contents", "sub"),
        {"method": "DELETE"},
        403,
        f"DeleteObjects of 2 object(s) (first {PREFIX}/sub/inner.txt)",  # its file and its entry
    ),
    (
        "create checkpoint",
        ("api", "contents", "nb.ipynb", "checkpoints"),
        {"method": "POST", "body": ""},
        403,
        f"CopyObject {PREFIX}/.ipynb_checkpoints/nb-checkpoint.ipynb",
    ),
    (
        "restore checkpoint",
        ("api", "contents", "nb.ipynb", "checkpoints", "checkpoint"),
        {"method": "POST", "body": ""},
        403,
        f"CopyObject {PREFIX}/nb.ipynb",
    ),
    (
        "delete checkpoint",
        ("api", "contents", "nb.ipynb", "checkpoints", "checkpoint"),
        {"method": "DELETE"},
        403,
        f"DeleteObjects of 2 object(s) (first {PREFIX}/.ipynb_checkpoints/nb-checkpoint.ipynb)",
    ),
    (
        "chunked upload, chunk 1",
        ("api", "contents", "big.bin"),
        {"method": "PUT", "body": _chunk(1)},
        403,
        f"CreateMultipartUpload {PREFIX}/big.bin",
    ),
    # Chunk 1 was refused, so no upload is in progress: the last chunk is a chunk without its
    # upload (400, as for any client that skipped chunk 1) and nothing reaches the storage.
    (
        "chunked upload, last chunk",
        ("api", "contents", "big.bin"),
        {"method": "PUT", "body": _chunk(-1)},
        400,
        "",
    ),
]


async def test_read_only_key_every_write_answers_403_and_changes_nothing(
    jp_fetch: Any, jp_serverapp: Any, access_server: S3Server, access_bucket: str
) -> None:
    before = snapshot(access_server, access_bucket)
    for what, args, kwargs, expected, refused in WRITES:
        code, message = await _status(jp_fetch(*args, allow_nonstandard_methods=True, **kwargs))
        assert code == expected, (what, code, message)
        assert READ_SECRET not in message
        if expected == 400:
            assert message == "No upload in progress for chunk -1 (uploads start with chunk 1)"
            continue
        assert message == (
            f"Write access denied by object storage (AccessDenied) for {refused} in "
            f"s3://{access_bucket}: these credentials are not allowed to write there "
            "(read-only?)"
        ), what
    assert snapshot(access_server, access_bucket) == before
    assert jp_serverapp.contents_manager.uploads.sessions == {}
    # Still serving reads.
    text = json.loads((await jp_fetch("api", "contents", "notes.txt", method="GET")).body)
    assert text["content"] == "read me\n"


def test_doctor_reports_reads_ok_and_writes_denied(
    access_server: S3Server, access_bucket: str
) -> None:
    before = snapshot(access_server, access_bucket)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_S3_", "AWS_"))}
    env.update(
        JPY_S3_ACCESS_KEY_ID=READ_KEY,
        JPY_S3_SECRET_ACCESS_KEY=READ_SECRET,
        JUPYTER_CONFIG_DIR="/nonexistent",  # no user configuration
    )
    run = subprocess.run(
        [
            *(sys.executable, "-m", "s3contents.cli", "doctor"),
            *("--endpoint-url", access_server.endpoint_url),
            *("--bucket", access_bucket, "--prefix", PREFIX),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1, run.stdout + run.stderr  # writes denied: not a working set-up
    rows = {}
    for line in run.stdout.splitlines():
        if line.startswith("["):
            status, rest = line[1:].split("]", 1)
            rows[rest.split()[0]] = status.strip()
    assert rows == {
        "configuration": "ok",
        "credentials": "ok",
        "endpoint": "ok",
        "bucket": "ok",
        "list": "ok",
        "write": "FAIL",
        "read": "ok",
        "access": "warn",
        "uploads": "ok",  # listing incomplete uploads is a read
        "lifecycle": "warn",  # the bucket has no rule aborting them
        "history": "ok",  # versioning off
    }, run.stdout
    assert "Write access denied by object storage (AccessDenied) for PutObject" in run.stdout
    assert f"fix: allow s3:PutObject on arn:aws:s3:::{access_bucket}/{PREFIX}/*" in run.stdout
    assert "read-only: Jupyter can list and open files, but every save" in run.stdout
    assert READ_SECRET not in run.stdout + run.stderr
    assert snapshot(access_server, access_bucket) == before


# --------------------------------------------------------------------------- cannot reach

#: One request per endpoint, for the servers that cannot use the bucket at all.
ENDPOINTS: list[tuple[str, tuple[str, ...], dict[str, Any]]] = [
    ("list", ("api", "contents", ""), {"method": "GET"}),
    ("get file", ("api", "contents", "notes.txt"), {"method": "GET"}),
    ("get notebook", ("api", "contents", "nb.ipynb"), {"method": "GET"}),
    (
        "save",
        ("api", "contents", "notes.txt"),
        {"method": "PUT", "body": _body({"type": "file", "format": "text", "content": "x"})},
    ),
    ("new", ("api", "contents", ""), {"method": "POST", "body": "{}"}),
    (
        "rename",
        ("api", "contents", "notes.txt"),
        {"method": "PATCH", "body": _body({"path": "renamed.txt"})},
    ),
    ("delete", ("api", "contents", "notes.txt"), {"method": "DELETE"}),
    ("list checkpoints", ("api", "contents", "nb.ipynb", "checkpoints"), {"method": "GET"}),
    (
        "create checkpoint",
        ("api", "contents", "nb.ipynb", "checkpoints"),
        {"method": "POST", "body": ""},
    ),
    ("download", ("files", "notes.txt"), {"method": "GET"}),
]


async def _every_endpoint(jp_fetch: Any) -> list[tuple[str, int, str, float]]:
    """All of ENDPOINTS at once: (what, status, message, seconds) for each."""

    async def one(what: str, args: tuple[str, ...], kwargs: dict[str, Any]) -> Any:
        began = time.monotonic()
        code, message = await _status(jp_fetch(*args, request_timeout=90, **kwargs))
        return what, code, message, time.monotonic() - began

    return list(await asyncio.gather(*(one(*endpoint) for endpoint in ENDPOINTS)))


def _not_ready_errors(log: _Records) -> list[str]:
    return [
        r.getMessage()
        for r in log.records
        if r.levelno >= logging.ERROR and "Object storage not ready" in r.getMessage()
    ]


@pytest.mark.parametrize(
    ("access", "code"),
    [("wrong-secret", "SignatureDoesNotMatch"), ("unknown-key", "InvalidAccessKeyId")],
    indirect=["access"],
)
async def test_wrong_credentials_start_log_once_and_answer_403_everywhere(
    jp_fetch: Any, server_log: _Records, access_server: S3Server, access_bucket: str, code: str
) -> None:
    before = snapshot(access_server, access_bucket)
    results = await _every_endpoint(jp_fetch)
    results += await _every_endpoint(jp_fetch)  # and again: still 403, not logged again
    expected = (
        f"Access denied: object storage at {access_server.endpoint_url} rejected the "
        f"credentials ({code}) for HeadBucket in s3://{access_bucket}"
    )
    for what, status, message, seconds in results:
        assert status == 403, (what, status, message)
        if what == "download":
            # /files/ answers with Jupyter's HTML error page; it passes the manager's
            # start-up check too (its download method), so the message is the same.
            assert expected in message
        else:
            # The start-up check fails first, the same way on every endpoint.
            assert message == expected, what
        assert seconds < 5, (what, seconds)  # a refusal is not retried
    timings = sorted(seconds for *_, seconds in results)
    print(f"wrong credentials: 403 after {timings[0]:.3f}-{timings[-1]:.3f} s per request")
    assert _not_ready_errors(server_log) == [f"Object storage not ready: {expected}"]
    logged = "\n".join(r.getMessage() for r in server_log.records)
    for text in [logged] + [message for _, _, message, _ in results]:
        assert WRONG_SECRET not in text
        assert READ_SECRET not in text
    status = await jp_fetch("api", "status", method="GET")
    assert status.code == 200
    assert snapshot(access_server, access_bucket) == before


#: Longest wait of botocore's standard retry mode as S3Storage sets it up
#: (``max_attempts: 4``: four retries after the first attempt, each waiting up to 2**n s,
#: n = 0..3): a refused connection fails at once, so one request takes at most about this.
RETRY_BUDGET = 1 + 2 + 4 + 8


@pytest.mark.parametrize("access", ["unreachable"], indirect=True)
async def test_unreachable_endpoint_answers_503_within_the_retry_policy(
    jp_fetch: Any, server_log: _Records, cm_settings: dict[str, Any]
) -> None:
    results = await _every_endpoint(jp_fetch)
    for what, status, message, seconds in results:
        assert status == 503, (what, status, message)
        assert f"Object storage s3://{cm_settings['bucket']} is unreachable" in message, what
        assert "EndpointConnectionError" in message
        assert seconds < RETRY_BUDGET + 3, (what, seconds)
    timings = sorted(seconds for *_, seconds in results)
    print(f"unreachable endpoint: 503 after {timings[0]:.1f}-{timings[-1]:.1f} s per request")
    assert len(_not_ready_errors(server_log)) == 1
    status = await jp_fetch("api", "status", method="GET")
    assert status.code == 200
