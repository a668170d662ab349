"""Chunked uploads and the life of a real Jupyter server process, on SeaweedFS.

A chunked upload of 3 parts is started through the REST API (PUT /api/contents/<path>,
chunks of 5 MiB+ in base64, as JupyterLab sends them), then the server is stopped:

* SIGTERM or SIGINT (no terminal), to ``jupyter server`` and to ``jupyter lab``: the server
  extension ``s3contents`` (or, for a SIGINT, which ends the event loop without the server's
  cleanup, the exit hook) aborts the upload: nothing is left in ListMultipartUploads under the
  prefix;
* SIGKILL: the upload stays; the next server on the prefix sweeps it at start, once it has
  been silent for longer than ``upload_timeout``, and leaves other prefixes alone.

And through REST: a resent chunk replaces the previous one; a 64 MiB upload in 1 MiB chunks
with 8 MiB parts, with the server's RSS and its storage requests measured.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.jupyter_procs import JupyterApp, start_jupyter
from tests.support.servers import S3Server

MIB = 1024 * 1024
#: Chunks of 5 MiB and a bit: each is a part (the smallest S3 allows) once the next arrives.
CHUNK = 5 * MIB + 1024
PART = 5 * MIB
FIVE_MIB_PARTS = {"upload_part_size": PART}
#: Signals by name, for test ids.
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT}


def start_server(
    kind: str,
    server: S3Server,
    *,
    bucket: str,
    prefix: str,
    settings: dict[str, Any] | None = None,
) -> JupyterApp:
    """``jupyter server`` (kind ``"server"``) or ``jupyter lab`` (``"lab"``) on
    ``bucket``/``prefix`` of ``server`` (:func:`jupyter_procs.start_jupyter`); ``settings``:
    more ``S3ContentsManager`` settings."""
    return start_jupyter(
        kind,
        endpoint_url=server.endpoint_url,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        bucket=bucket,
        prefix=prefix,
        settings={"region_name": server.region_name, **(settings or {})},
    )


def chunked(data: bytes, size: int) -> Iterator[tuple[int, str]]:
    """(chunk number, base64 content) as JupyterLab sends them: 1, 2, ..., -1."""
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    for i, piece in enumerate(pieces, start=1):
        yield (-1 if i == len(pieces) else i), base64.b64encode(piece).decode("ascii")


def put_chunk(app: JupyterApp, api_path: str, chunk: int, content: str) -> tuple[int, Any]:
    """Save one chunk of an upload, as JupyterLab does (PUT /api/contents/<path>)."""
    model = {"type": "file", "format": "base64", "chunk": chunk, "content": content}
    return app.call(f"/api/contents/{quote(api_path)}", "PUT", model)


@pytest.fixture
def place(seaweedfs: S3Server) -> Iterator[tuple[S3Server, str, str]]:
    """(server, bucket, prefix) of the test's own, on SeaweedFS."""
    bucket = seaweedfs.make_bucket()
    yield seaweedfs, bucket, f"up/{secrets.token_hex(6)}"
    seaweedfs.remove_bucket(bucket)


def _uploads(server: S3Server, bucket: str, prefix: str = "") -> list[dict[str, Any]]:
    listed = server.admin.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
    return list(listed.get("Uploads", []))


def _parts(server: S3Server, bucket: str, upload: dict[str, Any]) -> list[int]:
    listed = server.admin.list_parts(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    return [int(p["Size"]) for p in listed.get("Parts", [])]


def _start_three_parts(app: JupyterApp, server: S3Server, bucket: str, prefix: str) -> None:
    """Chunks 1-4 of an upload of 6: 3 parts (5 MiB) are in the bucket, the rest held back."""
    chunks = list(chunked(os.urandom(6 * CHUNK), CHUNK))
    for number, content in chunks[:4]:
        status, body = put_chunk(app, "big.bin", number, content)
        assert status in (200, 201), body
    uploads = _uploads(server, bucket, prefix + "/")
    assert [u["Key"] for u in uploads] == [f"{prefix}/big.bin"]
    assert _parts(server, bucket, uploads[0]) == [PART] * 3


def _wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.25)


@pytest.mark.parametrize("kind", ["server", "lab"])
@pytest.mark.parametrize("signame", list(SIGNALS))
def test_stopping_the_server_aborts_uploads_in_progress(
    place: tuple[S3Server, str, str], kind: str, signame: str
) -> None:
    server, bucket, prefix = place
    app = start_server(kind, server, bucket=bucket, prefix=prefix, settings=FIVE_MIB_PARTS)
    try:
        _start_three_parts(app, server, bucket, prefix)
        app.send(SIGNALS[signame])
        app.wait(60)
        log = app.log()
        assert _uploads(server, bucket, prefix + "/") == [], log
        assert "Aborting upload to" in log and "shutting down" in log, log
    finally:
        app.stop()


def test_an_upload_left_by_a_killed_server_is_swept_at_the_next_start(
    place: tuple[S3Server, str, str],
) -> None:
    server, bucket, prefix = place
    app = start_server("server", server, bucket=bucket, prefix=prefix, settings=FIVE_MIB_PARTS)
    try:
        _start_three_parts(app, server, bucket, prefix)
        app.send(signal.SIGKILL)
        app.wait(30)
    finally:
        app.stop()
    # Left behind, parts and all; and an old upload of another prefix of the bucket.
    (orphan,) = _uploads(server, bucket, prefix + "/")
    assert _parts(server, bucket, orphan) == [PART] * 3
    other = server.admin.create_multipart_upload(Bucket=bucket, Key=f"{prefix}-other/x.bin")
    time.sleep(2.5)
    again = start_server(
        "server", server, bucket=bucket, prefix=prefix, settings={"upload_timeout": 2}
    )
    try:
        _wait_for(lambda: not _uploads(server, bucket, prefix + "/"), 30, "the orphan aborted")
        assert "Aborted an orphaned upload to" in again.log()
        assert [u["UploadId"] for u in _uploads(server, bucket)] == [other["UploadId"]]
        # The server still takes uploads (its own are never swept while they are alive).
        data = os.urandom(3 * MIB)
        for number, content in chunked(data, MIB):
            time.sleep(0.5)
            assert put_chunk(again, "new.bin", number, content)[0] in (200, 201)
        body = server.admin.get_object(Bucket=bucket, Key=f"{prefix}/new.bin")["Body"].read()
        assert body == data
    finally:
        again.stop()
        server.admin.abort_multipart_upload(
            Bucket=bucket, Key=f"{prefix}-other/x.bin", UploadId=other["UploadId"]
        )


def test_a_resent_chunk_through_rest(place: tuple[S3Server, str, str]) -> None:
    server, bucket, prefix = place
    app = start_server("server", server, bucket=bucket, prefix=prefix)
    try:
        data = os.urandom(3 * CHUNK + 5)
        chunks = list(chunked(data, CHUNK))
        statuses = []
        for number, content in chunks:
            if number == 2:
                # The first copy's answer is lost: sent again, the second replaces the first.
                wrong = chunked(os.urandom(CHUNK), CHUNK)
                statuses.append(put_chunk(app, "r.bin", 2, next(wrong)[1])[0])
            statuses.append(put_chunk(app, "r.bin", number, content)[0])
        # The last chunk again (its answer lost too): done, nothing written twice.
        status, model = put_chunk(app, "r.bin", *chunks[-1])
        assert status == 200 and model["size"] == len(data)
        assert statuses == [201] * 5  # a new file: 201 Created for every chunk
        got = server.admin.get_object(Bucket=bucket, Key=f"{prefix}/r.bin")["Body"].read()
        assert got == data
        # Out of order: 400, the upload aborted, the file as it was.
        assert put_chunk(app, "r.bin", 1, chunks[0][1])[0] == 200
        assert put_chunk(app, "r.bin", 3, chunks[2][1])[0] == 400
        assert _uploads(server, bucket, prefix + "/") == []
        got = server.admin.get_object(Bucket=bucket, Key=f"{prefix}/r.bin")["Body"].read()
        assert got == data
    finally:
        app.stop()


def test_a_64_mib_upload_memory_and_requests(place: tuple[S3Server, str, str]) -> None:
    """64 MiB in 1 MiB chunks (JupyterLab's), 8 MiB parts: the server's RSS and storage
    requests, measured and printed (``-s``), and bounded."""
    server, bucket, prefix = place
    app = start_server(
        "server", server, bucket=bucket, prefix=prefix, settings={"upload_part_size": 8 * MIB}
    )
    try:
        # The start's sweep (1 LIST) is done before counting.
        _wait_for(lambda: app.storage_requests()["LIST"] >= 1, 30, "the sweep at start")
        data = os.urandom(64 * MIB)
        chunks = list(chunked(data, MIB))
        put_chunk(app, "warm.bin", -1, chunks[0][1])  # not an upload: warms the server up
        before = app.storage_requests()
        baseline = app.rss()
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, app.rss())
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        try:
            for number, content in chunks:
                status, _ = put_chunk(app, "big64.bin", number, content)
                assert status in (200, 201)
        finally:
            done.set()
            sampler.join()
        seconds = time.monotonic() - started
        requests = app.storage_requests() - before
        got = server.admin.get_object(Bucket=bucket, Key=f"{prefix}/big64.bin")["Body"].read()
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
        growth = peak - baseline
        print(
            f"\n64 MiB in 64 chunks, 8 MiB parts: RSS {baseline / MIB:.0f} MiB before, peak "
            f"{peak / MIB:.0f} MiB (+{growth / MIB:.1f} MiB); {seconds:.1f} s; storage "
            f"requests {dict(sorted(requests.items()))}"
        )
        # file_exists before each chunk: 1 HEAD (chunk 1's, kept by the upload for the
        # others), 1 HEAD of the saved file; 1 create + 1 complete (POST), 8 parts (PUT).
        assert requests == Counter({"HEAD": 2, "POST": 2, "PUT": 8})
        # A part (8 MiB, sent from the buffer it was gathered in) and a few chunks in base64
        # and JSON, not the file: issue 14's bound, 2 parts + 8 MiB.
        assert growth <= 2 * 8 * MIB + 8 * MIB  # measured: 30-37 MiB before the BytesIO parts
    finally:
        app.stop()
