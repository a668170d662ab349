"""Faulty killed and restarted in the middle of an operation; slow storage.

A SeaweedFS of this module's own is SIGKILLed by the proxy in front of it just as a chosen
request arrives (the n-th copy of a folder rename, the PUT of a save, the first part of a
chunked upload...). Each operation, through Jupyter Server's REST API, must then either
complete or answer 503 with a clear message; afterwards every object is its old or its new
version (checked straight in the bucket, content included), the same Jupyter Server serves
again once SeaweedFS is back (no restart), and doing the operation again completes it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from s3contents import S3ContentsManager
from tests.support.proxy import StorageProxy
from tests.support.servers import RestartableSeaweedFS

MIB = 1024 * 1024
FOLDER_FILES = 200

#: Figures docs/reliability.md quotes: (what, value), printed after the module (pytest -s).
FIGURES: list[tuple[str, str]] = []


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Iterator[None]:
    yield
    for what, value in FIGURES:
        print(f"  {what}: {value}")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fault_server() -> Iterator[RestartableSeaweedFS]:
    server = RestartableSeaweedFS()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def proxy(fault_server: RestartableSeaweedFS) -> Iterator[StorageProxy]:
    assert fault_server.server is not None
    with StorageProxy(fault_server.server.endpoint_url) as p:
        yield p


@pytest.fixture(scope="module")
def fault_bucket(fault_server: RestartableSeaweedFS) -> str:
    assert fault_server.server is not None
    return fault_server.server.make_bucket()


@pytest.fixture
def storage(
    fault_server: RestartableSeaweedFS, proxy: StorageProxy, fault_bucket: str
) -> Iterator[Faulty]:
    """The test's view of the server: its own prefix, the server up, no rules left over."""
    if not fault_server.alive:
        proxy.retarget(fault_server.restart().endpoint_url)
    proxy.clear_rules()
    view = Faulty(fault_server, proxy, fault_bucket, f"faults/{secrets.token_hex(6)}")
    yield view
    proxy.clear_rules()


class Faulty:
    """Kill/restart the server and look straight into the bucket (not through the proxy)."""

    def __init__(
        self, server: RestartableSeaweedFS, proxy: StorageProxy, bucket: str, prefix: str
    ) -> None:
        self.server, self.proxy, self.bucket, self.prefix = server, proxy, bucket, prefix

    @property
    def admin(self) -> Any:
        assert self.server.server is not None, "SeaweedFS is down"
        return self.server.server.admin

    def kill(self) -> None:
        self.server.kill()

    def restart(self) -> None:
        self.proxy.retarget(self.server.restart().endpoint_url)

    def kill_and_restart(self) -> None:
        """Kill, then start again at once (the request in flight is lost with the old
        process; the client's retries reach the new one)."""
        self.kill()
        self.restart()

    def put(self, rel: str, body: bytes) -> None:
        self.admin.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{rel}", Body=body)

    def read(self, rel: str) -> bytes | None:
        try:
            r = self.admin.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{rel}")
        except self.admin.exceptions.NoSuchKey:
            return None
        return bytes(r["Body"].read())

    def keys(self, under: str = "") -> dict[str, bytes]:
        """Every object under ``prefix/under`` -> its content (relative keys)."""
        base = f"{self.prefix}/{under}"
        names = [
            item["Key"][len(self.prefix) + 1 :]
            for page in self.admin.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base
            )
            for item in page.get("Contents", [])
            if not item["Key"].endswith("/")
        ]
        with ThreadPoolExecutor(8) as pool:
            return dict(zip(names, pool.map(self.read, names), strict=True))


@pytest.fixture
def extra_cm_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(getattr(request, "param", {}))


@pytest.fixture
def jp_server_config(
    storage: Faulty, fault_server: RestartableSeaweedFS, extra_cm_config: dict[str, Any]
) -> Config:
    return Config(
        {
            "ServerApp": {
                "contents_manager_class": S3ContentsManager,
                "jpserver_extensions": {"jupyter_server_terminals": False},
            },
            "S3ContentsManager": {
                "bucket": storage.bucket,
                "prefix": storage.prefix,
                "endpoint_url": storage.proxy.url,
                "access_key_id": fault_server.access_key_id,
                "secret_access_key": fault_server.secret_access_key,
                "request_timeout": 30.0,
                **extra_cm_config,
            },
        }
    )


async def call(
    jp_fetch: Any, method: str, *path: str, body: Any = None, **params: str
) -> tuple[int, Any, float]:
    """One REST call: (status, JSON answer or None, seconds it took)."""
    began = time.monotonic()
    # The 503 of a killed storage comes after botocore's retries (up to ~15 s, more on a busy
    # machine): wait longer than the test client's default 20 s, so a 599 means a hang.
    kwargs: dict[str, Any] = {"method": method, "request_timeout": 90}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    elif method in ("POST", "PUT", "PATCH"):
        kwargs["body"] = "{}"
    if params:
        kwargs["params"] = params
    try:
        r = await jp_fetch(*path, **kwargs)
        code, text = r.code, r.body
    except HTTPClientError as err:
        code, text = err.code, (err.response.body if err.response is not None else b"")
    took = time.monotonic() - began
    try:
        answer = json.loads(text) if text else None
    except ValueError:
        answer = text
    return code, answer, took


def contents(*rel: str) -> tuple[str, ...]:
    return ("api", "contents", *(quote(r) for r in rel))


def text_model(content: str) -> dict[str, Any]:
    return {"type": "file", "format": "text", "content": content}


def assert_503(code: int, answer: Any, took: float, what: str) -> None:
    assert code == 503, f"{what}: {code} {answer}"
    message = answer.get("message", "") if isinstance(answer, dict) else str(answer)
    assert "unreachable" in message or "try again" in message, message
    FIGURES.append((f"{what}: 503 after", f"{took:.1f} s"))


def seed_folder(storage: Faulty, folder: str, n: int) -> dict[str, bytes]:
    files = {
        f"{folder}/{'deep/' if i % 10 == 0 else ''}f{i:03d}.txt": f"file {i} {os.urandom(8).hex()}"
        for i in range(n)
    }
    payload = {k: v.encode() for k, v in files.items()}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda kv: storage.put(*kv), payload.items()))
    return payload


# --------------------------------------------------------------------------- saves


async def test_save_killed_answers_503_keeps_old_version_and_retry_completes(
    jp_fetch: Any, storage: Faulty
) -> None:
    storage.put("doc.txt", b"version 1")
    storage.proxy.on(method="PUT", key_contains="doc.txt", action=storage.kill)
    code, answer, took = await call(jp_fetch, "PUT", *contents("doc.txt"), body=text_model("v2"))
    assert_503(code, answer, took, "save, storage killed")
    storage.restart()
    assert storage.read("doc.txt") == b"version 1"
    # The same Jupyter Server serves again, without a restart.
    code, answer, _ = await call(jp_fetch, "GET", *contents("doc.txt"))
    assert (code, answer["content"]) == (200, "version 1")
    code, _, _ = await call(jp_fetch, "PUT", *contents("doc.txt"), body=text_model("version 2"))
    assert code == 200
    assert storage.read("doc.txt") == b"version 2"


async def test_save_completes_when_storage_is_back_within_the_retries(
    jp_fetch: Any, storage: Faulty
) -> None:
    storage.put("doc.txt", b"version 1")
    storage.proxy.on(method="PUT", key_contains="doc.txt", action=storage.kill_and_restart)
    code, answer, took = await call(
        jp_fetch, "PUT", *contents("doc.txt"), body=text_model("version 2")
    )
    assert code == 200, answer
    assert storage.read("doc.txt") == b"version 2"
    FIGURES.append(("save, storage killed and restarted: 200 after", f"{took:.1f} s"))


# --------------------------------------------------------------------------- folder rename


async def test_folder_rename_killed_half_way_loses_nothing_and_retry_completes(
    jp_fetch: Any, storage: Faulty
) -> None:
    files = seed_folder(storage, "proj", FOLDER_FILES)
    # The 101st server-side copy finds the server gone.
    storage.proxy.on(
        method="PUT", key_contains="/moved/", skip=FOLDER_FILES // 2, action=storage.kill
    )
    code, answer, took = await call(jp_fetch, "PATCH", *contents("proj"), body={"path": "moved"})
    assert_503(code, answer, took, f"rename of a {FOLDER_FILES}-file folder, killed at copy 101")
    storage.restart()

    found = storage.keys()
    moved = {k for k in found if k.startswith("moved/") and not k.endswith("-rename")}
    for rel, body in files.items():
        new = "moved/" + rel.removeprefix("proj/")
        assert found.get(rel) == body or found.get(new) == body, f"{rel} lost"
        assert new not in found or found[new] == body, f"{new} corrupted"
    assert all(found.get(rel) == body for rel, body in files.items())  # the source is whole
    FIGURES.append(("folder rename killed half-way: files already copied", str(len(moved))))
    assert 0 < len(moved) < FOLDER_FILES

    # Renaming again resumes (the journal in moved/ says it is this rename) and completes.
    code, answer, _ = await call(jp_fetch, "PATCH", *contents("proj"), body={"path": "moved"})
    assert code == 200, answer
    after = storage.keys()
    assert after == {"moved/" + rel.removeprefix("proj/"): body for rel, body in files.items()}
    code, _, _ = await call(jp_fetch, "GET", *contents("proj"))
    assert code == 404
    code, listing, _ = await call(jp_fetch, "GET", *contents("moved"))
    assert code == 200 and len(listing["content"]) == FOLDER_FILES - FOLDER_FILES // 10 + 1


async def test_folder_rename_killed_at_the_deletion_is_completed_by_a_retry(
    jp_fetch: Any, storage: Faulty
) -> None:
    files = seed_folder(storage, "proj", FOLDER_FILES)
    storage.proxy.on(method="POST", query_has="delete", action=storage.kill)
    code, answer, took = await call(jp_fetch, "PATCH", *contents("proj"), body={"path": "moved"})
    assert_503(code, answer, took, "folder rename, killed at the batch delete")
    storage.restart()
    found = storage.keys()
    for rel, body in files.items():  # every file at both paths now: copied, not yet deleted
        assert found[rel] == body
        assert found["moved/" + rel.removeprefix("proj/")] == body
    # Someone else's folder of that name is still refused: only the journal's source resumes.
    storage.put("other/x.txt", b"x")
    code, answer, _ = await call(jp_fetch, "PATCH", *contents("other"), body={"path": "moved"})
    assert code == 409, answer
    code, answer, _ = await call(jp_fetch, "PATCH", *contents("proj"), body={"path": "moved"})
    assert code == 200, answer
    assert storage.keys("proj/") == {}
    assert storage.keys("moved/") == {
        "moved/" + rel.removeprefix("proj/"): body for rel, body in files.items()
    }


# --------------------------------------------------------------------------- folder delete


async def test_folder_delete_killed_answers_503_and_retry_completes(
    jp_fetch: Any, storage: Faulty
) -> None:
    files = seed_folder(storage, "proj", FOLDER_FILES)
    storage.put("keep.txt", b"keep")
    storage.proxy.on(method="POST", query_has="delete", action=storage.kill)
    code, answer, took = await call(jp_fetch, "DELETE", *contents("proj"))
    assert_503(code, answer, took, f"delete of a {FOLDER_FILES}-file folder, killed")
    storage.restart()
    found = storage.keys()
    # Each file is there whole or gone (its "new version"); nothing else changed.
    for rel, body in files.items():
        assert found.get(rel) in (body, None)
    assert found["keep.txt"] == b"keep"
    code, answer, _ = await call(jp_fetch, "DELETE", *contents("proj"))
    assert code == 204, answer
    assert storage.keys() == {"keep.txt": b"keep"}


# --------------------------------------------------------------------------- chunked upload


def _chunks(data: bytes) -> list[tuple[int, str]]:
    pieces = [data[i : i + MIB] for i in range(0, len(data), MIB)]
    numbers = [*range(1, len(pieces)), -1]
    return [(n, base64.b64encode(p).decode()) for n, p in zip(numbers, pieces, strict=True)]


async def upload(jp_fetch: Any, path: str, data: bytes, first: int = 0) -> list[int]:
    codes = []
    for number, content in _chunks(data)[first:]:
        model = {"type": "file", "format": "base64", "chunk": number, "content": content}
        code, _, _ = await call(jp_fetch, "PUT", *contents(path), body=model)
        codes.append(code)
        if code != 200:
            break
    return codes


@pytest.mark.parametrize("extra_cm_config", [{"upload_part_size": 5 * MIB}], indirect=True)
async def test_chunked_upload_killed_keeps_old_file_and_restarted_upload_completes(
    jp_fetch: Any, storage: Faulty
) -> None:
    storage.put("big.bin", b"old content")
    data = os.urandom(7 * MIB)
    # The first multipart part finds the server gone: 5 MiB, sent when chunk 6 arrives (the
    # latest chunk is held back until the next one, in case it is sent again).
    storage.proxy.on(method="PUT", query_has="partNumber", action=storage.kill)
    codes = await upload(jp_fetch, "big.bin", data)
    assert codes == [200, 200, 200, 200, 200, 503], codes
    storage.restart()
    assert storage.read("big.bin") == b"old content"
    # The remaining chunks of the broken upload are refused, and change nothing.
    code, answer, _ = await call(
        jp_fetch,
        "PUT",
        *contents("big.bin"),
        body={"type": "file", "format": "base64", "chunk": 6, "content": _chunks(data)[5][1]},
    )
    assert code == 400, answer
    assert storage.read("big.bin") == b"old content"
    # JupyterLab starts the upload again from chunk 1: it completes.
    assert await upload(jp_fetch, "big.bin", data) == [200] * 7
    assert hashlib.sha256(storage.read("big.bin") or b"").digest() == hashlib.sha256(data).digest()


# --------------------------------------------------------------------------- checkpoints


async def test_checkpoint_restore_killed_keeps_a_whole_version_and_retry_completes(
    jp_fetch: Any, storage: Faulty
) -> None:
    code, _, _ = await call(jp_fetch, "PUT", *contents("doc.txt"), body=text_model("checkpointed"))
    assert code == 201
    code, checkpoint, _ = await call(jp_fetch, "POST", *contents("doc.txt"), "checkpoints")
    assert code == 201
    code, _, _ = await call(jp_fetch, "PUT", *contents("doc.txt"), body=text_model("later"))
    assert code == 200
    restore = (*contents("doc.txt"), "checkpoints", checkpoint["id"])
    storage.proxy.on(method="PUT", key_contains="/doc.txt", action=storage.kill)
    code, answer, took = await call(jp_fetch, "POST", *restore)
    assert_503(code, answer, took, "checkpoint restore, killed")
    storage.restart()
    assert storage.read("doc.txt") in (b"later", b"checkpointed")
    code, answer, _ = await call(jp_fetch, "POST", *restore)
    assert code == 204, answer
    assert storage.read("doc.txt") == b"checkpointed"


# --------------------------------------------------------------------------- slow storage


async def _status_times(jp_fetch: Any, until: asyncio.Task[Any]) -> list[float]:
    times = []
    while not until.done():
        began = time.monotonic()
        r = await jp_fetch("api", "status")
        assert r.code == 200
        times.append(time.monotonic() - began)
        await asyncio.sleep(0.05)
    return times


@pytest.mark.parametrize("extra_cm_config", [{"request_timeout": 1.5}], indirect=True)
async def test_slow_storage_never_stalls_the_server_and_times_out_with_503(
    jp_fetch: Any, storage: Faulty
) -> None:
    storage.put("slow.txt", b"slow")
    storage.put("fine.txt", b"fine")
    # The first request makes the S3 client (botocore loads its models: a one-off ~0.5 s on
    # the event loop); this test is about slow storage, so that happens before it measures.
    code, _, _ = await call(jp_fetch, "GET", *contents(""))
    assert code == 200

    # Slower than usual but within the limit: answered, while /api/status stays fast.
    storage.proxy.on(method="GET", key_contains="fine.txt", delay=1.0)
    task = asyncio.ensure_future(call(jp_fetch, "GET", *contents("fine.txt")))
    times = await _status_times(jp_fetch, task)
    code, answer, took = await task
    assert (code, answer["content"]) == (200, "fine")
    assert took >= 1.0
    assert len(times) >= 5 and max(times) < 0.5, times

    # Slower than request_timeout (4 s against 1.5 s): 503 at the limit, not at 4 s.
    storage.proxy.on(method="GET", key_contains="slow.txt", delay=4.0)
    task = asyncio.ensure_future(call(jp_fetch, "GET", *contents("slow.txt")))
    times = await _status_times(jp_fetch, task)
    code, answer, took = await task
    assert code == 503, answer
    assert "did not answer" in answer["message"] and "1.5 s" in answer["message"]
    assert 1.4 < took < 3.5, took
    assert max(times) < 0.5, times
    FIGURES.append(("GET held 4 s, request_timeout 1.5 s: 503 after", f"{took:.1f} s"))
    FIGURES.append(
        ("/api/status meanwhile, slowest of", f"{len(times)}: {max(times) * 1000:.0f} ms")
    )
    # And it serves normally right after.
    code, answer, _ = await call(jp_fetch, "GET", *contents("fine.txt"))
    assert (code, answer["content"]) == (200, "fine")
