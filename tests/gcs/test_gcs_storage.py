"""The storage contract on GCS: ``GCSStorage`` against fake-gcs-server.

The same behaviours the S3 contract suite checks (``tests/storage``), on the GCS adapter:
errors, create-only and if-match writes, server-side copies, delimited and recursive
listings with pagination, batch deletes, resumable uploads standing in for multipart, and
request counts.

Where fake-gcs-server does not do what GCS does, the test is marked
``xfail(strict=True)`` naming the emulator, so a fixed emulator makes the suite say so:

* it ignores ``ifGenerationMatch`` on ``rewriteTo`` (GCS honours it): a create-only copy
  overwrites there;
* it keeps accepting chunks for a resumable session that was cancelled (GCS answers 499
  to the cancel, then 404/410);
* it repeats the sub-prefixes of a delimited listing on every page and counts only objects
  against ``maxResults`` (the adapter de-duplicates);
* it answers a missing bucket with the same 404 as a missing object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from gcs_server import GCSServer

from s3contents.errors import AlreadyExists, BadRequest, Conflict, NotFound, Unavailable
from s3contents.storage import gcs as gcs_module
from s3contents.storage.base import PutMode
from s3contents.storage.gcs import RESUMABLE_BLOCK, GCSStorage

MIB = 1024 * 1024


async def collect(items: AsyncIterator[Any]) -> list[Any]:
    async with contextlib.aclosing(items) as it:  # type: ignore[type-var]
        return [item async for item in it]


def _assert_utc(value: datetime) -> None:
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - value) < timedelta(minutes=5)


def _xfail_emulator(request: pytest.FixtureRequest, reason: str) -> None:
    request.applymarker(pytest.mark.xfail(reason=f"fake-gcs-server: {reason}", strict=True))


@contextlib.asynccontextmanager
async def opened(gcs_server: GCSServer, bucket: str, **kwargs: Any) -> AsyncIterator[GCSStorage]:
    storage = GCSStorage(
        bucket, project="test", token="anon", endpoint_url=gcs_server.endpoint_url, **kwargs
    )
    try:
        yield storage
    finally:
        await storage.close()


# --------------------------------------------------------------------------- reads


async def test_head_get_of_absent_key_are_not_found(gcs_storage: GCSStorage, gcs_prefix: str):
    for call in (gcs_storage.head, gcs_storage.get):
        with pytest.raises(NotFound) as info:
            await call(gcs_prefix + "missing.txt")
        assert info.value.path == gcs_prefix + "missing.txt"
    with pytest.raises(NotFound):
        await collect(gcs_storage.stream(gcs_prefix + "missing.txt"))


async def test_put_then_head_get_list_agree(gcs_storage: GCSStorage, gcs_prefix: str):
    key = gcs_prefix + "a b/ü+é?.txt"  # names that need quoting in URLs
    generation = await gcs_storage.put(key, b"hello", content_type="text/plain")
    assert generation and generation.isdigit()
    head = await gcs_storage.head(key)
    data, info = await gcs_storage.get(key)
    listing = await gcs_storage.list(gcs_prefix + "a b/")
    assert data == b"hello"
    assert head.key == info.key == key
    assert head.size == info.size == 5
    assert head.etag == info.etag == generation
    assert [o.key for o in listing.objects] == [key]
    assert head.last_modified == info.last_modified == listing.objects[0].last_modified
    _assert_utc(head.last_modified)


async def test_empty_object(gcs_storage: GCSStorage, gcs_prefix: str):
    await gcs_storage.put(gcs_prefix + "empty", b"")
    assert await gcs_storage.get(gcs_prefix + "empty") == (
        b"",
        await gcs_storage.head(gcs_prefix + "empty"),
    )


async def test_stream_yields_exact_bytes_in_bounded_pieces(
    gcs_storage: GCSStorage, gcs_prefix: str
):
    data = os.urandom(3 * MIB + 17)
    await gcs_storage.put(gcs_prefix + "big", data)
    gcs_storage.stats.clear()
    pieces = await collect(gcs_storage.stream(gcs_prefix + "big", chunk_size=256 * 1024))
    assert b"".join(pieces) == data
    assert max(len(p) for p in pieces) <= 256 * 1024
    assert gcs_storage.stats == {"GET": 1}


async def test_stream_closed_early_releases_the_connection(
    gcs_storage: GCSStorage, gcs_prefix: str
):
    await gcs_storage.put(gcs_prefix + "big", os.urandom(2 * MIB))
    for _ in range(3):
        async with contextlib.aclosing(gcs_storage.stream(gcs_prefix + "big", 1024)) as it:
            async for _piece in it:
                break
    assert (await gcs_storage.get(gcs_prefix + "big"))[0][:1] is not None


# --------------------------------------------------------------------------- writes


async def test_overwrite_replaces_content_and_generation(gcs_storage: GCSStorage, gcs_prefix: str):
    first = await gcs_storage.put(gcs_prefix + "f", b"one")
    second = await gcs_storage.put(gcs_prefix + "f", b"two!")
    assert first != second
    data, info = await gcs_storage.get(gcs_prefix + "f")
    assert (data, info.etag) == (b"two!", second)


async def test_put_create_existing_key_is_already_exists(gcs_storage: GCSStorage, gcs_prefix: str):
    await gcs_storage.put(gcs_prefix + "c", b"first", mode=PutMode.CREATE)
    with pytest.raises(AlreadyExists):
        await gcs_storage.put(gcs_prefix + "c", b"second", mode=PutMode.CREATE)
    assert (await gcs_storage.get(gcs_prefix + "c"))[0] == b"first"


async def test_racing_creates_have_one_winner(gcs_storage: GCSStorage, gcs_prefix: str):
    results = await asyncio.gather(
        *(
            gcs_storage.put(gcs_prefix + "race", str(i).encode(), mode=PutMode.CREATE)
            for i in range(8)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, str)]
    assert len(winners) == 1
    assert all(isinstance(r, AlreadyExists) for r in results if not isinstance(r, str))


async def test_put_if_match(gcs_storage: GCSStorage, gcs_prefix: str):
    key = gcs_prefix + "m"
    generation = await gcs_storage.put(key, b"v1")
    newer = await gcs_storage.put(key, b"v2", mode=PutMode.IF_MATCH, etag=generation)
    assert newer != generation
    with pytest.raises(Conflict):
        await gcs_storage.put(key, b"v3", mode=PutMode.IF_MATCH, etag=generation)
    with pytest.raises(Conflict):
        await gcs_storage.put(gcs_prefix + "absent", b"x", mode=PutMode.IF_MATCH, etag="12345")
    with pytest.raises(ValueError):
        await gcs_storage.put(key, b"x", mode=PutMode.IF_MATCH)
    assert (await gcs_storage.get(key))[0] == b"v2"


async def test_copy_overwrite_and_absent_source(gcs_storage: GCSStorage, gcs_prefix: str):
    await gcs_storage.put(gcs_prefix + "src", b"source", content_type="text/plain")
    await gcs_storage.put(gcs_prefix + "dst", b"old")
    gcs_storage.stats.clear()
    modified = await gcs_storage.copy(gcs_prefix + "src", gcs_prefix + "dst")
    assert gcs_storage.stats == {"COPY": 1}
    assert modified is not None
    _assert_utc(modified)
    assert (await gcs_storage.get(gcs_prefix + "dst"))[0] == b"source"
    with pytest.raises(NotFound) as info:
        await gcs_storage.copy(gcs_prefix + "nope", gcs_prefix + "x")
    assert info.value.path == gcs_prefix + "nope"


async def test_copy_create_to_new_key(gcs_storage: GCSStorage, gcs_prefix: str):
    await gcs_storage.put(gcs_prefix + "src", b"source")
    await gcs_storage.copy(gcs_prefix + "src", gcs_prefix + "new", mode=PutMode.CREATE)
    assert (await gcs_storage.get(gcs_prefix + "new"))[0] == b"source"


async def test_copy_create_onto_existing_key_is_already_exists(
    gcs_storage: GCSStorage, gcs_prefix: str, request: pytest.FixtureRequest
):
    _xfail_emulator(request, "ignores ifGenerationMatch=0 on rewriteTo (GCS answers 412)")
    await gcs_storage.put(gcs_prefix + "src", b"source")
    await gcs_storage.put(gcs_prefix + "dst", b"keep me")
    try:
        with pytest.raises(AlreadyExists):
            await gcs_storage.copy(gcs_prefix + "src", gcs_prefix + "dst", mode=PutMode.CREATE)
    finally:
        assert (await gcs_storage.get(gcs_prefix + "dst"))[0] == b"keep me"


async def test_copy_sends_the_create_only_precondition(
    gcs_storage: GCSStorage, gcs_prefix: str, monkeypatch: pytest.MonkeyPatch
):
    """What the emulator ignores is sent: the request carries ``ifGenerationMatch=0``."""
    urls: list[str] = []
    real = GCSStorage._call

    async def spy(self: GCSStorage, kind: str, method: str, url: str, *a: Any, **kw: Any) -> Any:
        urls.append(url)
        return await real(self, kind, method, url, *a, **kw)

    monkeypatch.setattr(GCSStorage, "_call", spy)
    await gcs_storage.put(gcs_prefix + "src", b"x")
    await gcs_storage.copy(gcs_prefix + "src", gcs_prefix + "dst", mode=PutMode.CREATE)
    assert "/rewriteTo/" in urls[-1] and "ifGenerationMatch=0" in urls[-1]


# --------------------------------------------------------------------------- listings


async def test_list_one_level(gcs_storage: GCSStorage, gcs_prefix: str):
    for key in ("a.txt", "b.ipynb", "sub/c.txt", "sub/deeper/d.txt", "other/.gcskeep"):
        await gcs_storage.put(gcs_prefix + key, b"x")
    gcs_storage.stats.clear()
    listing = await gcs_storage.list(gcs_prefix)
    assert gcs_storage.stats == {"LIST": 1}
    assert sorted(o.key for o in listing.objects) == [gcs_prefix + "a.txt", gcs_prefix + "b.ipynb"]
    assert sorted(listing.prefixes) == [gcs_prefix + "other/", gcs_prefix + "sub/"]
    assert (await gcs_storage.list(gcs_prefix + "nothing/")).objects == []


async def test_list_all_is_recursive_and_exists_any(gcs_storage: GCSStorage, gcs_prefix: str):
    keys = [gcs_prefix + k for k in ("a", "s/b", "s/t/c")]
    for key in keys:
        await gcs_storage.put(key, b"")
    assert sorted(o.key for o in await collect(gcs_storage.list_all(gcs_prefix))) == keys
    gcs_storage.stats.clear()
    assert await gcs_storage.exists_any(gcs_prefix + "s/")
    assert not await gcs_storage.exists_any(gcs_prefix + "x/")
    assert gcs_storage.stats == {"LIST": 2}


async def test_pagination_with_small_pages(
    gcs_storage: GCSStorage, gcs_prefix: str, monkeypatch: pytest.MonkeyPatch
):
    files = [f"f{i:02d}" for i in range(7)]
    folders = [f"d{i}/x" for i in range(3)]
    await asyncio.gather(*(gcs_storage.put(gcs_prefix + k, b"") for k in files + folders))
    monkeypatch.setattr(gcs_module, "_PAGE", 3)
    gcs_storage.stats.clear()
    listing = await gcs_storage.list(gcs_prefix)
    assert sorted(o.key for o in listing.objects) == [gcs_prefix + f for f in files]
    assert sorted(listing.prefixes) == [gcs_prefix + f"d{i}/" for i in range(3)]
    assert gcs_storage.stats["LIST"] >= 3
    everything = await collect(gcs_storage.list_all(gcs_prefix))
    assert len(everything) == 10


async def test_list_paginates_past_1000_entries(
    gcs_storage: GCSStorage, gcs_prefix: str, gcs_server: GCSServer, gcs_bucket: str
):
    await asyncio.gather(
        *(
            asyncio.to_thread(gcs_server.upload, gcs_bucket, f"{gcs_prefix}k{i:04d}", b"")
            for i in range(1005)
        )
    )
    gcs_storage.stats.clear()
    listing = await gcs_storage.list(gcs_prefix)
    assert len(listing.objects) == 1005
    assert gcs_storage.stats == {"LIST": 2}
    gcs_storage.stats.clear()
    # 1005 keys: 11 batches of at most 100 deletions.
    await gcs_storage.delete_many(o.key for o in listing.objects)
    assert gcs_storage.stats == {"DELETE": 11}
    assert await collect(gcs_storage.list_all(gcs_prefix)) == []


# --------------------------------------------------------------------------- deletes


async def test_delete(gcs_storage: GCSStorage, gcs_prefix: str):
    await gcs_storage.put(gcs_prefix + "d", b"x")
    await gcs_storage.delete(gcs_prefix + "d")
    await gcs_storage.delete(gcs_prefix + "d")  # absent: no error
    with pytest.raises(NotFound):
        await gcs_storage.head(gcs_prefix + "d")


async def test_delete_many_is_one_batch_and_ignores_absent_keys(
    gcs_storage: GCSStorage, gcs_prefix: str
):
    keys = [gcs_prefix + f"k{i}" for i in range(5)]
    for key in keys:
        await gcs_storage.put(key, b"x")
    gcs_storage.stats.clear()
    await gcs_storage.delete_many([*keys, gcs_prefix + "absent", gcs_prefix + "folder/"])
    await gcs_storage.delete_many([])
    assert gcs_storage.stats == {"DELETE": 1}
    assert await collect(gcs_storage.list_all(gcs_prefix)) == []


async def test_delete_many_falls_back_without_a_batch_endpoint(
    gcs_storage: GCSStorage, gcs_prefix: str, monkeypatch: pytest.MonkeyPatch
):
    keys = [gcs_prefix + f"k{i}" for i in range(3)]
    for key in keys:
        await gcs_storage.put(key, b"x")
    real = GCSStorage._call

    async def no_batch(self: GCSStorage, kind: str, method: str, url: str, *a: Any, **kw: Any):
        if "/batch/" in url:
            self.stats[kind] += 1
            raise gcs_module._HTTPStatusError(404, "notFound", "Not Found")
        return await real(self, kind, method, url, *a, **kw)

    monkeypatch.setattr(GCSStorage, "_call", no_batch)
    gcs_storage.stats.clear()
    await gcs_storage.delete_many(keys)
    assert gcs_storage.stats == {"DELETE": 4}  # the refused batch, then one each
    assert await collect(gcs_storage.list_all(gcs_prefix)) == []


# --------------------------------------------------------------------------- resumable


async def test_multipart_produces_the_exact_bytes(gcs_storage: GCSStorage, gcs_prefix: str):
    key = gcs_prefix + "upload.bin"
    data = os.urandom(5 * MIB + 3 * RESUMABLE_BLOCK + 12345)
    sizes = [2 * MIB + 1, 3 * MIB - 7]  # not multiples of 256 KiB: the adapter buffers
    sizes.append(len(data) - sum(sizes))
    gcs_storage.stats.clear()
    upload_id = await gcs_storage.multipart_begin(key, "application/octet-stream")
    parts, offset = [], 0
    for number, size in enumerate(sizes, start=1):
        parts.append(
            await gcs_storage.multipart_part(key, upload_id, number, data[offset : offset + size])
        )
        offset += size
    with pytest.raises(NotFound):
        await gcs_storage.head(key)  # nothing visible before complete
    await gcs_storage.multipart_complete(key, upload_id, parts)
    assert (await gcs_storage.get(key))[0] == data
    assert gcs_storage.stats["POST"] == 1
    assert gcs_storage.stats["PUT"] == len(sizes) + 1


async def test_multipart_exact_block_multiple_and_tiny_uploads(
    gcs_storage: GCSStorage, gcs_prefix: str
):
    for name, data in (("blocks", os.urandom(4 * RESUMABLE_BLOCK)), ("tiny", b"x"), ("nil", b"")):
        key = gcs_prefix + name
        upload_id = await gcs_storage.multipart_begin(key)
        part = await gcs_storage.multipart_part(key, upload_id, 1, data)
        await gcs_storage.multipart_complete(key, upload_id, [part])
        assert (await gcs_storage.get(key))[0] == data


async def test_multipart_replaces_only_on_complete(gcs_storage: GCSStorage, gcs_prefix: str):
    key = gcs_prefix + "r"
    await gcs_storage.put(key, b"old")
    upload_id = await gcs_storage.multipart_begin(key)
    part = await gcs_storage.multipart_part(key, upload_id, 1, os.urandom(RESUMABLE_BLOCK * 2))
    assert (await gcs_storage.get(key))[0] == b"old"
    await gcs_storage.multipart_complete(key, upload_id, [part])
    assert (await gcs_storage.head(key)).size == RESUMABLE_BLOCK * 2


async def test_multipart_abort_leaves_no_object(gcs_storage: GCSStorage, gcs_prefix: str):
    key = gcs_prefix + "aborted"
    upload_id = await gcs_storage.multipart_begin(key)
    await gcs_storage.multipart_part(key, upload_id, 1, os.urandom(RESUMABLE_BLOCK + 10))
    gcs_storage.stats.clear()
    await gcs_storage.multipart_abort(key, upload_id)
    await gcs_storage.multipart_abort(key, upload_id)  # twice: no error, no request
    assert gcs_storage.stats == {"DELETE": 1}
    assert await collect(gcs_storage.list_all(gcs_prefix)) == []
    with pytest.raises(NotFound):
        await gcs_storage.multipart_part(key, upload_id, 2, b"more")
    with pytest.raises(NotFound):
        await gcs_storage.multipart_complete(key, upload_id, [])


async def test_cancelled_session_refuses_chunks(
    gcs_storage: GCSStorage, gcs_prefix: str, request: pytest.FixtureRequest
):
    _xfail_emulator(request, "accepts chunks for a cancelled resumable session")
    key = gcs_prefix + "cancelled"
    upload_id = await gcs_storage.multipart_begin(key)
    session = gcs_storage._uploads[upload_id]
    await gcs_storage.multipart_abort(key, upload_id)
    gcs_storage._uploads[upload_id] = session  # a client that kept the session URI
    with contextlib.suppress(NotFound, Unavailable, BadRequest):
        await gcs_storage.multipart_complete(key, upload_id, [])
    assert await collect(gcs_storage.list_all(key)) == []


async def test_multipart_part_out_of_order_is_bad_request(gcs_storage: GCSStorage, gcs_prefix: str):
    key = gcs_prefix + "order"
    upload_id = await gcs_storage.multipart_begin(key)
    with pytest.raises(BadRequest):
        await gcs_storage.multipart_part(key, upload_id, 2, b"x")
    await gcs_storage.multipart_abort(key, upload_id)


# --------------------------------------------------------------------------- stats, errors


async def test_stats_count_one_request_per_call_by_kind(gcs_storage: GCSStorage, gcs_prefix: str):
    k = gcs_prefix + "s"
    gcs_storage.stats.clear()
    await gcs_storage.put(k, b"x")
    await gcs_storage.head(k)
    await gcs_storage.get(k)
    await gcs_storage.list(gcs_prefix)
    await gcs_storage.copy(k, k + "2")
    await gcs_storage.delete(k + "2")
    await gcs_storage.delete_many([k])
    assert gcs_storage.stats == {
        "PUT": 1,
        "HEAD": 1,
        "GET": 1,
        "LIST": 1,
        "COPY": 1,
        "DELETE": 2,
    }


async def test_missing_bucket_is_unavailable_naming_it(gcs_server: GCSServer):
    async with opened(gcs_server, "no-such-bucket-here") as storage:
        with pytest.raises(Unavailable, match="no-such-bucket-here"):
            await storage.list("")
        with pytest.raises(Unavailable, match="no-such-bucket-here"):
            await storage.check_bucket()


async def test_unreachable_endpoint_is_unavailable_quickly(gcs_bucket: str):
    from servers import free_ports

    (port,) = free_ports(1)
    storage = GCSStorage(
        gcs_bucket, token="anon", endpoint_url=f"http://127.0.0.1:{port}", retries=2
    )
    try:
        began = asyncio.get_running_loop().time()
        with pytest.raises(Unavailable, match="unreachable"):
            await storage.head("k")
        assert asyncio.get_running_loop().time() - began < 5
        assert storage.stats == {"HEAD": 2}
    finally:
        await storage.close()


async def test_no_secret_in_errors_or_logs(gcs_server: GCSServer, caplog: pytest.LogCaptureFixture):
    from google.oauth2.credentials import Credentials

    secret = "ya29.s3contents-test-secret-token"
    caplog.set_level(logging.DEBUG)
    storage = GCSStorage(
        "no-such-bucket", token=Credentials(secret), endpoint_url=gcs_server.endpoint_url
    )
    try:
        for call in (storage.list(""), storage.head("k"), storage.put("k", b"x")):
            with pytest.raises((Unavailable, NotFound)) as info:
                await call
            assert secret not in str(info.value)
    finally:
        await storage.close()
    assert secret not in caplog.text


async def test_storage_survives_a_new_event_loop(gcs_server: GCSServer, gcs_bucket: str):
    """The aiohttp session is re-made for another loop (tests, hooks running their own)."""
    storage = GCSStorage(gcs_bucket, token="anon", endpoint_url=gcs_server.endpoint_url)
    try:
        await storage.list("")

        def other_loop() -> None:
            async def run() -> None:
                await storage.list("")
                await storage.close()

            asyncio.run(run())

        await asyncio.to_thread(other_loop)
        await storage.list("")
    finally:
        await storage.close()
