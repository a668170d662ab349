"""The storage contract: what every adapter of the ``Storage`` port must do, on real servers.

Each test runs once per S3 server of ``s3_server`` (SeaweedFS, then moto, the reference for
AWS semantics), on ``S3Storage`` built directly, in a prefix of its own inside a bucket the
session shares (``s3_server_config``), or in a bucket of its own where buckets are the point.

Where the servers differ in a way the manager must live with, a test pins each server's
behaviour down (listed below); where a server fails the contract,
the test is marked ``xfail(strict=True)`` for that server only, naming the server and why, so
a server that starts honouring the contract makes the suite say so.

How the servers differ where it matters to the manager:

* SeaweedFS keeps a folder whose last object was deleted as a ``folder/`` entry of
  delimited listings (its filer keeps the directory) until that folder itself is deleted,
  and a delimited listing of ``folder/`` itself may return an empty ``folder/`` object;
  AWS and moto forget a folder with its last key. ``exists_any`` follows the delimited
  listing (true for such a leftover); ``list_all`` sees no object on either server.
* SeaweedFS creates a missing bucket on the first PUT or multipart upload to it (with
  admin credentials); AWS and moto answer ``NoSuchBucket``.
* SeaweedFS and moto answer pages of up to 10000 keys when asked; AWS stops at 1000.
* moto ignores ``If-None-Match: *`` on CopyObject (AWS honours it): a create-only copy
  overwrites there.
* moto answers 500 instead of ``NoSuchUpload`` (404) for a part sent to an aborted upload.
* ``If-Match`` on a missing key: SeaweedFS answers 412, AWS and moto 404; the adapter
  makes both a ``Conflict``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from servers import S3Server, free_ports

from s3contents.errors import (
    AlreadyExists,
    Conflict,
    ContentsError,
    Forbidden,
    NotFound,
    Unavailable,
)
from s3contents.storage import s3 as s3_module
from s3contents.storage.base import Listing, ObjectInfo, PutMode, Storage
from s3contents.storage.s3 import S3Storage

pytestmark = pytest.mark.storage


MIB = 1024 * 1024


# --------------------------------------------------------------------------- helpers


def _storage(server: S3Server, bucket: str, **overrides: Any) -> S3Storage:
    client_kwargs = {
        "endpoint_url": server.endpoint_url,
        "region_name": server.region_name,
        "aws_access_key_id": server.access_key_id,
        "aws_secret_access_key": server.secret_access_key,
    }
    client_kwargs.update(overrides.pop("client_kwargs", {}))
    return S3Storage(bucket, client_kwargs=client_kwargs, **overrides)


@contextlib.asynccontextmanager
async def opened(server: S3Server, bucket: str, **overrides: Any) -> AsyncIterator[S3Storage]:
    """A storage of its own for one block of a test, always closed."""
    storage = _storage(server, bucket, **overrides)
    try:
        yield storage
    finally:
        await storage.close()


async def collect(items: AsyncIterator[Any]) -> list[Any]:
    async with contextlib.aclosing(items) as it:
        return [item async for item in it]


def _assert_utc(value: datetime) -> None:
    assert isinstance(value, datetime)
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)
    # The servers run on this machine: their clocks are ours.
    assert abs(datetime.now(timezone.utc) - value) < timedelta(minutes=5)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # S3's ETag of a single-part object


def _xfail_on(request: pytest.FixtureRequest, server: S3Server, name: str, reason: str) -> None:
    if server.name == name:
        request.applymarker(pytest.mark.xfail(reason=f"{name}: {reason}", strict=True))


@pytest.fixture
def bucket_name(s3_server_config: dict[str, str]) -> str:
    """The bucket the session shares on this server."""
    return s3_server_config["bucket"]


@pytest.fixture
def prefix(s3_server_config: dict[str, str]) -> str:
    """A key prefix of this test's own, ending with ``/``."""
    return s3_server_config["prefix"] + "/"


@pytest.fixture
def storage(
    s3_server: S3Server, bucket_name: str, jp_asyncio_loop: asyncio.AbstractEventLoop
) -> Iterator[S3Storage]:
    """``S3Storage`` on the shared bucket, closed after the test."""
    st = _storage(s3_server, bucket_name)
    yield st
    jp_asyncio_loop.run_until_complete(st.close())


@pytest.fixture
def own_bucket(s3_server: S3Server) -> Iterator[str]:
    """A new, empty bucket of the test's own; it and its objects go after the test."""
    name = s3_server.make_bucket()
    yield name
    s3_server.remove_bucket(name)


def _write_many(server: S3Server, bucket: str, keys: list[str]) -> None:
    """Write empty objects with boto3 from threads (set-up only, not the code under test)."""
    client = server.client(max_pool_connections=16)
    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=b""), keys))
    finally:
        client.close()


async def _put_many(storage: Storage, keys: list[str], concurrency: int = 32) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def put(key: str) -> None:
        async with gate:
            await storage.put(key, b"")

    await asyncio.gather(*(put(k) for k in keys))


#: Objects directly in the big folder, and sub-folders (one object each) next to them.
BIG_OBJECTS = 1050
BIG_FOLDERS = 60


@pytest.fixture(scope="module")
def big_folder(s3_server: S3Server) -> Iterator[tuple[str, str]]:
    """A bucket holding one folder of 1050 objects and 60 sub-folders: ``(bucket, prefix)``.

    Written once per server, read by the pagination tests (1110 entries at one level and
    1110 keys in all, both more than one page of 1000).
    """
    bucket = s3_server.make_bucket()
    prefix = "big/"
    keys = [f"{prefix}obj-{i:05d}" for i in range(BIG_OBJECTS)]
    keys += [f"{prefix}sub-{i:03d}/x" for i in range(BIG_FOLDERS)]
    _write_many(s3_server, bucket, keys)
    yield bucket, prefix
    s3_server.remove_bucket(bucket)


# --------------------------------------------------------------------------- head / get


async def test_head_get_of_absent_key_are_not_found(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}absent.txt"
    with pytest.raises(NotFound) as info:
        await storage.head(key)
    assert info.value.path == key
    with pytest.raises(NotFound):
        await storage.get(key)
    with pytest.raises(NotFound):
        await collect(storage.stream(key))


async def test_put_then_head_get_list_agree(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}dir/a file ü.txt"
    data = "Grüße\n".encode() * 100
    etag = await storage.put(key, data, content_type="text/plain")
    assert etag == _md5(data)

    head = await storage.head(key)
    got, info = await storage.get(key)
    listed = (await storage.list(f"{prefix}dir/")).objects
    everything = await collect(storage.list_all(prefix))

    assert got == data
    assert head == info == listed[0] == everything[0]
    assert head == ObjectInfo(key, len(data), head.last_modified, etag)
    _assert_utc(head.last_modified)
    # One precision for every request (whole seconds), so a file's time is the same
    # whichever request saw it.
    assert head.last_modified.microsecond == 0


async def test_empty_object(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}empty"
    await storage.put(key, b"")
    assert (await storage.head(key)).size == 0
    data, info = await storage.get(key)
    assert (data, info.size) == (b"", 0)
    assert b"".join(await collect(storage.stream(key))) == b""


async def test_overwrite_replaces_content(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}f.txt"
    await storage.put(key, b"one")
    etag = await storage.put(key, b"two, longer")
    data, info = await storage.get(key)
    assert data == b"two, longer"
    assert info.etag == etag == _md5(b"two, longer")


# --------------------------------------------------------------------------- write modes


async def test_put_create_new_key_succeeds(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}new.txt"
    etag = await storage.put(key, b"fresh", mode=PutMode.CREATE)
    assert etag == _md5(b"fresh")
    assert (await storage.get(key))[0] == b"fresh"


async def test_put_create_existing_key_is_already_exists(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}taken.txt"
    await storage.put(key, b"first")
    with pytest.raises(AlreadyExists) as info:
        await storage.put(key, b"second", mode=PutMode.CREATE)
    assert info.value.path == key
    assert (await storage.get(key))[0] == b"first"


async def test_racing_creates_have_one_winner(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}race.txt"
    results = await asyncio.gather(
        *(storage.put(key, f"writer {i}".encode(), mode=PutMode.CREATE) for i in range(6)),
        return_exceptions=True,
    )
    winners = [i for i, r in enumerate(results) if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1, results
    # AWS answers a racing conditional write with 412 or 409: both mean "someone else won".
    assert all(isinstance(e, AlreadyExists | Conflict) for e in losers), losers
    assert (await storage.get(key))[0] == f"writer {winners[0]}".encode()


async def test_put_if_match_current_etag_succeeds(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}m.txt"
    etag = await storage.put(key, b"v1")
    new_etag = await storage.put(key, b"v2", mode=PutMode.IF_MATCH, etag=etag)
    assert new_etag == _md5(b"v2")
    assert (await storage.get(key))[0] == b"v2"


async def test_put_if_match_stale_etag_is_conflict(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}m.txt"
    stale = await storage.put(key, b"v1")
    await storage.put(key, b"v2 by someone else")
    with pytest.raises(Conflict) as info:
        await storage.put(key, b"v3", mode=PutMode.IF_MATCH, etag=stale)
    assert info.value.path == key
    assert (await storage.get(key))[0] == b"v2 by someone else"


async def test_put_if_match_on_absent_key_is_conflict(storage: S3Storage, prefix: str) -> None:
    """The port: IF_MATCH raises Conflict unless the current ETag is ``etag``."""
    key = f"{prefix}gone.txt"
    with pytest.raises(Conflict):
        await storage.put(key, b"v1", mode=PutMode.IF_MATCH, etag=_md5(b"v0"))
    with pytest.raises(NotFound):
        await storage.head(key)


async def test_put_if_match_needs_an_etag(storage: S3Storage, prefix: str) -> None:
    with pytest.raises(ValueError, match="etag"):
        await storage.put(f"{prefix}x", b"", mode=PutMode.IF_MATCH)


# --------------------------------------------------------------------------- copy


async def test_copy_overwrite(storage: S3Storage, prefix: str) -> None:
    src, dst = f"{prefix}src.txt", f"{prefix}sub/dst.txt"
    await storage.put(src, b"source bytes")
    await storage.put(dst, b"old")
    modified = await storage.copy(src, dst)
    data, info = await storage.get(dst)
    assert data == b"source bytes"
    assert (await storage.get(src))[0] == b"source bytes"
    assert modified is not None
    _assert_utc(modified)
    assert modified == info.last_modified


async def test_copy_of_absent_source_is_not_found(storage: S3Storage, prefix: str) -> None:
    src = f"{prefix}no-such-source"
    with pytest.raises(NotFound) as info:
        await storage.copy(src, f"{prefix}dst")
    assert info.value.path == src
    assert src in str(info.value)
    with pytest.raises(NotFound):
        await storage.head(f"{prefix}dst")


async def test_copy_create_to_new_key(storage: S3Storage, prefix: str) -> None:
    await storage.put(f"{prefix}a", b"A")
    await storage.copy(f"{prefix}a", f"{prefix}b", mode=PutMode.CREATE)
    assert (await storage.get(f"{prefix}b"))[0] == b"A"


async def test_copy_create_onto_existing_key_is_already_exists(
    storage: S3Storage, prefix: str, s3_server: S3Server, request: pytest.FixtureRequest
) -> None:
    _xfail_on(
        request,
        s3_server,
        "moto",
        "moto ignores If-None-Match on CopyObject and overwrites the destination",
    )
    await storage.put(f"{prefix}a", b"A")
    await storage.put(f"{prefix}b", b"B")
    try:
        with pytest.raises(AlreadyExists):
            await storage.copy(f"{prefix}a", f"{prefix}b", mode=PutMode.CREATE)
    finally:
        assert (await storage.get(f"{prefix}b"))[0] == b"B"


# --------------------------------------------------------------------------- list


async def _tree(storage: Storage, prefix: str) -> None:
    for key in ["a.txt", "z.txt", "b/c.txt", "b/d/e.txt", "b/d/f.txt", "y/.s3keep"]:
        await storage.put(prefix + key, key.encode())


async def test_list_one_level(storage: S3Storage, prefix: str) -> None:
    await _tree(storage, prefix)
    top = await storage.list(prefix)
    assert [o.key for o in top.objects] == [f"{prefix}a.txt", f"{prefix}z.txt"]
    assert top.prefixes == [f"{prefix}b/", f"{prefix}y/"]
    assert [o.size for o in top.objects] == [5, 5]
    for obj in top.objects:
        _assert_utc(obj.last_modified)
        assert obj.etag == _md5(obj.key[len(prefix) :].encode())

    inner = await storage.list(f"{prefix}b/")
    assert [o.key for o in inner.objects] == [f"{prefix}b/c.txt"]
    assert inner.prefixes == [f"{prefix}b/d/"]

    leaf = await storage.list(f"{prefix}b/d/")
    assert [o.key for o in leaf.objects] == [f"{prefix}b/d/e.txt", f"{prefix}b/d/f.txt"]
    assert leaf.prefixes == []

    marker_only = await storage.list(f"{prefix}y/")
    assert [o.key for o in marker_only.objects] == [f"{prefix}y/.s3keep"]


async def test_list_of_absent_prefix_is_empty(storage: S3Storage, prefix: str) -> None:
    assert await storage.list(f"{prefix}nothing/") == Listing()
    assert await collect(storage.list_all(f"{prefix}nothing/")) == []
    assert await storage.exists_any(f"{prefix}nothing/") is False


async def test_list_all_is_recursive(storage: S3Storage, prefix: str) -> None:
    await _tree(storage, prefix)
    keys = [o.key for o in await collect(storage.list_all(prefix))]
    assert keys == [
        prefix + k for k in ["a.txt", "b/c.txt", "b/d/e.txt", "b/d/f.txt", "y/.s3keep", "z.txt"]
    ]
    assert [o.key for o in await collect(storage.list_all(f"{prefix}b/d/"))] == [
        f"{prefix}b/d/e.txt",
        f"{prefix}b/d/f.txt",
    ]


async def test_exists_any(storage: S3Storage, prefix: str) -> None:
    await _tree(storage, prefix)
    storage.stats.clear()
    assert await storage.exists_any(prefix) is True
    assert await storage.exists_any(f"{prefix}b/d/") is True
    assert await storage.exists_any(f"{prefix}y/") is True
    assert await storage.exists_any(f"{prefix}q/") is False
    assert storage.stats == {"LIST": 4}


async def test_list_paginates_past_1000_entries(
    s3_server: S3Server, big_folder: tuple[str, str]
) -> None:
    bucket, prefix = big_folder
    async with opened(s3_server, bucket) as storage:
        listing = await storage.list(prefix)
        assert len(listing.objects) == BIG_OBJECTS
        assert len({o.key for o in listing.objects}) == BIG_OBJECTS
        assert listing.objects[0].key == f"{prefix}obj-00000"
        assert listing.objects[-1].key == f"{prefix}obj-{BIG_OBJECTS - 1:05d}"
        assert listing.prefixes == [f"{prefix}sub-{i:03d}/" for i in range(BIG_FOLDERS)]
        # The adapter asks for pages of 10000: SeaweedFS and moto answer that many, so one
        # LIST; AWS stops at 1000 a page (objects and sub-folders alike), which
        # test_pagination_with_small_pages reproduces on every server.
        assert storage.stats["LIST"] == 1


async def test_list_all_paginates_past_1000_keys(
    s3_server: S3Server, big_folder: tuple[str, str]
) -> None:
    bucket, prefix = big_folder
    async with opened(s3_server, bucket) as storage:
        keys = [o.key for o in await collect(storage.list_all(prefix))]
        assert len(keys) == len(set(keys)) == BIG_OBJECTS + BIG_FOLDERS
        assert keys == sorted(keys)
        assert storage.stats["LIST"] == 1
        assert await storage.exists_any(prefix) is True


async def test_pagination_with_small_pages(
    s3_server: S3Server, big_folder: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Continuation tokens work on every server, mixing objects and sub-folders in a page."""
    monkeypatch.setattr(s3_module, "_PAGE", 100)
    bucket, prefix = big_folder
    async with opened(s3_server, bucket) as storage:
        listing = await storage.list(prefix)
        assert len(listing.objects) == BIG_OBJECTS
        assert len(listing.prefixes) == BIG_FOLDERS
        assert storage.stats["LIST"] == math.ceil((BIG_OBJECTS + BIG_FOLDERS) / 100)
        storage.stats.clear()
        keys = [o.key for o in await collect(storage.list_all(prefix))]
        assert len(set(keys)) == BIG_OBJECTS + BIG_FOLDERS
        assert storage.stats["LIST"] == math.ceil((BIG_OBJECTS + BIG_FOLDERS) / 100)


# --------------------------------------------------------------------------- delete


async def test_delete(storage: S3Storage, prefix: str) -> None:
    await storage.put(f"{prefix}x", b"1")
    await storage.delete(f"{prefix}x")
    with pytest.raises(NotFound):
        await storage.head(f"{prefix}x")
    await storage.delete(f"{prefix}x")  # absent: no error


async def test_delete_many_small(storage: S3Storage, prefix: str) -> None:
    await _tree(storage, prefix)
    storage.stats.clear()
    await storage.delete_many([f"{prefix}a.txt", f"{prefix}b/c.txt", f"{prefix}absent"])
    assert storage.stats == {"DELETE": 1}
    left = [o.key for o in await collect(storage.list_all(prefix))]
    assert left == [prefix + k for k in ["b/d/e.txt", "b/d/f.txt", "y/.s3keep", "z.txt"]]
    storage.stats.clear()
    await storage.delete_many([])
    assert storage.stats == {}


async def test_delete_many_past_1000_keys(
    storage: S3Storage, prefix: str, s3_server: S3Server
) -> None:
    keys = [f"{prefix}many/{i:05d}" for i in range(1100)]
    await _put_many(storage, keys)
    storage.stats.clear()
    await storage.delete_many(iter(keys))  # any iterable, consumed once
    assert storage.stats == {"DELETE": 2}
    assert await collect(storage.list_all(f"{prefix}many/")) == []
    # SeaweedFS lists the emptied folder's own ``many/`` entry (see the next test).
    leftover = [f"{prefix}many/"] if s3_server.name == "seaweedfs" else []
    assert [o.key for o in (await storage.list(f"{prefix}many/")).objects] == leftover


# --------------------------------------------------------------------------- server differences


async def test_emptied_folder_in_delimited_listing(
    storage: S3Storage, prefix: str, s3_server: S3Server
) -> None:
    """SeaweedFS keeps ``folder/`` listed once its last object is gone; AWS/moto do not."""
    await storage.put(f"{prefix}f/x", b"1")
    await storage.put(f"{prefix}g/h/y", b"1")
    await storage.put(f"{prefix}k/z", b"1")
    await storage.delete(f"{prefix}f/x")
    await storage.delete(f"{prefix}g/h/y")
    await storage.delete_many([f"{prefix}k/z"])

    top = await storage.list(prefix)
    inner = await storage.list(f"{prefix}g/")
    leaf = await storage.list(f"{prefix}g/h/")
    assert top.objects == []
    if s3_server.name == "seaweedfs":
        assert top.prefixes == [f"{prefix}f/", f"{prefix}g/", f"{prefix}k/"]
        assert inner.prefixes == [f"{prefix}g/h/"]
        # Listed by its own prefix, an emptied folder with no sub-folder left shows up as
        # an empty object named like the folder.
        assert inner.objects == []
        assert [(o.key, o.size) for o in leaf.objects] == [(f"{prefix}g/h/", 0)]
        f_listing = await storage.list(f"{prefix}f/")
        assert [(o.key, o.size) for o in f_listing.objects] == [(f"{prefix}f/", 0)]
    else:
        assert top.prefixes == inner.prefixes == leaf.prefixes == []
        assert inner.objects == leaf.objects == []
    # Recursive listings see no object on either server; ``exists_any`` agrees with the
    # delimited listing, so a folder the manager lists is also a folder that exists.
    leftover = s3_server.name == "seaweedfs"
    for folder in ("f/", "g/", "g/h/", "k/"):
        assert await storage.exists_any(prefix + folder) is leftover
    assert await collect(storage.list_all(prefix)) == []


async def test_emptied_folder_goes_when_deleted(
    storage: S3Storage, prefix: str, s3_server: S3Server
) -> None:
    """Deleting the folder key ``folder/`` itself removes SeaweedFS's leftover entry."""
    await storage.put(f"{prefix}f/x", b"1")
    await storage.delete(f"{prefix}f/x")
    await storage.delete(f"{prefix}f/")
    assert (await storage.list(prefix)).prefixes == []
    assert await storage.exists_any(f"{prefix}f/") is False


async def test_put_to_missing_bucket(s3_server: S3Server) -> None:
    """SeaweedFS creates a missing bucket on the first write; AWS/moto refuse it."""
    name = f"t-missing-{secrets.token_hex(6)}"
    try:
        async with opened(s3_server, name) as storage:
            if s3_server.name == "seaweedfs":
                await storage.put("x", b"1")
                await storage.check_bucket()
                assert (await storage.get("x"))[0] == b"1"
            else:
                with pytest.raises(Unavailable, match=name):
                    await storage.put("x", b"1")
                with pytest.raises(Unavailable, match=name):
                    await storage.multipart_begin("x")
    finally:
        s3_server.remove_bucket(name)


# --------------------------------------------------------------------------- multipart


async def test_multipart_produces_the_exact_bytes(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}big.bin"
    first = os.urandom(5 * MIB)
    second = os.urandom(1234)
    storage.stats.clear()
    upload_id = await storage.multipart_begin(key, content_type="application/octet-stream")
    part1 = await storage.multipart_part(key, upload_id, 1, first)
    part2 = await storage.multipart_part(key, upload_id, 2, second)
    assert (part1.number, part1.size) == (1, len(first))
    assert (part2.number, part2.size) == (2, len(second))
    assert part1.etag == _md5(first)
    # Nothing is visible before completion.
    with pytest.raises(NotFound):
        await storage.head(key)
    await storage.multipart_complete(key, upload_id, [part1, part2])
    assert storage.stats == {"POST": 2, "PUT": 2, "HEAD": 1}

    data, info = await storage.get(key)
    assert data == first + second
    assert info.size == len(first) + len(second)
    assert info.etag is not None and info.etag.endswith("-2")


async def test_multipart_single_small_part(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}small.bin"
    upload_id = await storage.multipart_begin(key)
    part = await storage.multipart_part(key, upload_id, 1, b"tiny")
    await storage.multipart_complete(key, upload_id, [part])
    assert (await storage.get(key))[0] == b"tiny"


async def test_multipart_replaces_only_on_complete(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}doc.txt"
    await storage.put(key, b"old version")
    upload_id = await storage.multipart_begin(key)
    part = await storage.multipart_part(key, upload_id, 1, b"new version")
    assert (await storage.get(key))[0] == b"old version"
    await storage.multipart_complete(key, upload_id, [part])
    assert (await storage.get(key))[0] == b"new version"


async def test_multipart_abort_leaves_no_object(storage: S3Storage, prefix: str) -> None:
    key = f"{prefix}aborted.bin"
    upload_id = await storage.multipart_begin(key)
    await storage.multipart_part(key, upload_id, 1, os.urandom(5 * MIB))
    await storage.multipart_abort(key, upload_id)
    with pytest.raises(NotFound):
        await storage.head(key)
    assert await collect(storage.list_all(prefix)) == []
    assert await storage.list(prefix) == Listing()
    await storage.multipart_abort(key, upload_id)  # already gone: no error


#: No retries: a server answering 500 (moto, below) would otherwise be asked 4 times.
NO_RETRIES = {"retries": {"mode": "standard", "max_attempts": 1}}


async def test_part_of_aborted_upload_is_not_found(
    s3_server: S3Server, bucket_name: str, prefix: str, request: pytest.FixtureRequest
) -> None:
    _xfail_on(
        request,
        s3_server,
        "moto",
        "moto answers 500 (so Unavailable) instead of NoSuchUpload for an aborted upload",
    )
    key = f"{prefix}aborted.bin"
    async with opened(s3_server, bucket_name, config_kwargs=NO_RETRIES) as storage:
        upload_id = await storage.multipart_begin(key)
        part = await storage.multipart_part(key, upload_id, 1, b"x")
        await storage.multipart_abort(key, upload_id)
        with pytest.raises(NotFound):
            await storage.multipart_part(key, upload_id, 2, b"y")
        with pytest.raises(NotFound):
            await storage.multipart_complete(key, upload_id, [part])


async def test_complete_of_aborted_upload_fails(
    s3_server: S3Server, bucket_name: str, prefix: str
) -> None:
    """Whatever code a server answers, completing an aborted upload creates nothing."""
    key = f"{prefix}aborted.bin"
    async with opened(s3_server, bucket_name, config_kwargs=NO_RETRIES) as storage:
        upload_id = await storage.multipart_begin(key)
        part = await storage.multipart_part(key, upload_id, 1, b"x")
        await storage.multipart_abort(key, upload_id)
        with pytest.raises(ContentsError):
            await storage.multipart_complete(key, upload_id, [part])
        with pytest.raises(NotFound):
            await storage.head(key)


# --------------------------------------------------------------------------- stream


@pytest.mark.parametrize("chunk_size", [1000, 64 * 1024, 1 << 20])
async def test_stream_yields_exact_bytes_in_bounded_pieces(
    storage: S3Storage, prefix: str, chunk_size: int
) -> None:
    key = f"{prefix}stream.bin"
    data = os.urandom(300_000)
    await storage.put(key, data)
    storage.stats.clear()
    pieces = await collect(storage.stream(key, chunk_size=chunk_size))
    assert b"".join(pieces) == data
    assert all(0 < len(p) <= chunk_size for p in pieces)
    assert len(pieces) >= math.ceil(len(data) / chunk_size)
    assert storage.stats == {"GET": 1}


async def test_stream_closed_early_releases_the_connection(
    s3_server: S3Server, bucket_name: str, prefix: str
) -> None:
    key = f"{prefix}stream.bin"
    async with opened(s3_server, bucket_name, max_concurrency=1) as storage:
        await storage.put(key, os.urandom(200_000))
        # max_pool_connections is at least 10: open more streams than that, each abandoned
        # after one piece; a leaked connection would make the last ones wait forever.
        for _ in range(12):
            async with contextlib.aclosing(storage.stream(key, chunk_size=1000)) as it:
                async for piece in it:
                    assert len(piece) <= 1000
                    break
        assert (await asyncio.wait_for(storage.head(key), 10)).size == 200_000


# --------------------------------------------------------------------------- stats


async def test_stats_count_one_request_per_call_by_kind(storage: S3Storage, prefix: str) -> None:
    a, b = f"{prefix}a", f"{prefix}b"
    expected: dict[str, int] = {}

    async def step(kind: str, coro: Any) -> None:
        before = dict(storage.stats)
        await coro
        expected[kind] = expected.get(kind, 0) + 1
        delta = {k: v - before.get(k, 0) for k, v in storage.stats.items() if v != before.get(k)}
        assert delta == {kind: 1}

    await step("PUT", storage.put(a, b"1"))
    await step("PUT", storage.put(a, b"1", mode=PutMode.OVERWRITE))
    await step("HEAD", storage.head(a))
    await step("GET", storage.get(a))
    await step("GET", collect(storage.stream(a)))
    await step("COPY", storage.copy(a, b))
    await step("LIST", storage.list(prefix))
    await step("LIST", collect(storage.list_all(prefix)))
    await step("LIST", storage.exists_any(prefix))
    await step("DELETE", storage.delete(b))
    await step("DELETE", storage.delete_many([a, b]))
    upload_ids: list[str] = []

    async def begin(key: str) -> None:
        upload_ids.append(await storage.multipart_begin(key))

    await step("POST", begin(a))
    part = await storage.multipart_part(a, upload_ids[0], 1, b"p")
    expected["PUT"] += 1
    await step("POST", storage.multipart_complete(a, upload_ids[0], [part]))
    await step("POST", begin(b))
    await step("DELETE", storage.multipart_abort(b, upload_ids[1]))
    await step("HEAD", storage.check_bucket())

    # Failed requests count too: they were round trips all the same.
    async def failing_head() -> None:
        with pytest.raises(NotFound):
            await storage.head(f"{prefix}absent")

    await step("HEAD", failing_head())
    assert dict(storage.stats) == expected


# --------------------------------------------------------------------------- error translation


def _wrong_secret(server: S3Server) -> str:
    return "WRONG" + server.secret_access_key[5:]


async def test_wrong_secret_is_forbidden(
    s3_server: S3Server, bucket_name: str, prefix: str
) -> None:
    wrong = {"aws_secret_access_key": _wrong_secret(s3_server)}
    async with opened(s3_server, bucket_name, client_kwargs=wrong) as storage:
        for call in (
            storage.head(f"{prefix}x"),
            storage.get(f"{prefix}x"),
            storage.put(f"{prefix}x", b"1"),
            storage.list(prefix),
            storage.check_bucket(),
        ):
            with pytest.raises(Forbidden) as info:
                await call
            assert "s3://" + bucket_name in str(info.value)
    async with opened(s3_server, bucket_name) as good:
        with pytest.raises(NotFound):
            await good.head(f"{prefix}x")  # the refused write wrote nothing


async def test_unknown_access_key_is_forbidden(s3_server: S3Server, bucket_name: str) -> None:
    unknown = {"aws_access_key_id": "AKIA" + secrets.token_hex(8).upper()}
    async with opened(s3_server, bucket_name, client_kwargs=unknown) as storage:
        with pytest.raises(Forbidden, match=r"InvalidAccessKeyId|403"):
            await storage.list("")
        with pytest.raises(Forbidden):
            await storage.get("x")


async def test_missing_bucket_is_unavailable_naming_it(s3_server: S3Server) -> None:
    name = f"t-missing-{secrets.token_hex(6)}"
    async with opened(s3_server, name) as storage:
        for call in (
            storage.check_bucket(),
            storage.get("x"),
            storage.list(""),
            collect(storage.list_all("")),
            storage.exists_any(""),
            collect(storage.stream("x")),
            storage.copy("a", "b"),
            storage.delete("x"),
            storage.delete_many(["x"]),
        ):
            with pytest.raises(Unavailable, match=repr(name)):
                await call
    assert name not in {b["Name"] for b in s3_server.admin.list_buckets()["Buckets"]}


async def test_head_in_missing_bucket_is_not_found(s3_server: S3Server) -> None:
    """A HEAD response has no body, so "no such bucket" reads as "no such key" (404).

    Callers that must tell them apart (``doctor``, start-up) use ``check_bucket``.
    """
    name = f"t-missing-{secrets.token_hex(6)}"
    async with opened(s3_server, name) as storage:
        with pytest.raises(NotFound):
            await storage.head("x")
        with pytest.raises(Unavailable, match=repr(name)):
            await storage.check_bucket()


async def test_unreachable_endpoint_is_unavailable_quickly() -> None:
    (port,) = free_ports(1)  # nothing listens there
    storage = S3Storage(
        "bucket",
        client_kwargs={
            "endpoint_url": f"http://127.0.0.1:{port}",
            "region_name": "us-east-1",
            "aws_access_key_id": "AKIAUNREACHABLE",
            "aws_secret_access_key": "unreachable-secret-value",
        },
        config_kwargs={
            "retries": {"mode": "standard", "max_attempts": 1},
            "connect_timeout": 1,
            "read_timeout": 1,
        },
    )
    try:
        for call in (storage.head("k"), storage.list(""), storage.put("k", b"1")):
            start = time.monotonic()
            with pytest.raises(Unavailable, match="unreachable") as info:
                await call
            assert time.monotonic() - start < 3
            assert "s3://bucket" in str(info.value)
            assert "unreachable-secret-value" not in str(info.value)
    finally:
        await storage.close()


async def test_no_secret_in_errors_or_logs(
    s3_server: S3Server,
    bucket_name: str,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    good_secret = s3_server.secret_access_key
    bad_secret = _wrong_secret(s3_server)
    (port,) = free_ports(1)
    raised: list[BaseException] = []

    async def attempt(coro: Any) -> None:
        try:
            await coro
        except ContentsError as err:
            raised.append(err)

    async with opened(s3_server, bucket_name) as good:
        await attempt(good.put(f"{prefix}x", b"data"))
        await attempt(good.get(f"{prefix}x"))
        await attempt(good.head(f"{prefix}absent"))
        await attempt(good.put(f"{prefix}x", b"d", mode=PutMode.CREATE))
    async with opened(
        s3_server, bucket_name, client_kwargs={"aws_secret_access_key": bad_secret}
    ) as bad:
        await attempt(bad.list(prefix))
        await attempt(bad.put(f"{prefix}y", b"1"))
    async with opened(s3_server, f"t-missing-{secrets.token_hex(6)}") as missing:
        await attempt(missing.list(""))
    async with opened(
        s3_server,
        bucket_name,
        client_kwargs={"endpoint_url": f"http://127.0.0.1:{port}"},
        config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 1},
    ) as unreachable:
        await attempt(unreachable.head("x"))

    assert len(raised) >= 5
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # DEBUG logs were captured
    for secret in (good_secret, bad_secret):
        assert secret not in caplog.text
        for err in raised:
            assert secret not in str(err)
            assert secret not in repr(err)
            assert secret not in repr(err.__dict__)
            # ``raise ... from None``: no provider exception (with its request) attached.
            assert err.__cause__ is None
