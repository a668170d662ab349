"""The storage contract: what every adapter of the ``Storage`` port must do, on real servers.

Each test runs once per server of the ``backend`` fixture: ``S3Storage`` on SeaweedFS and
on moto (the reference for AWS semantics), then ``GCSStorage`` on fake-gcs-server. It is
written once, against the port; the adapter is built directly by the backend, in a prefix of
the test's own inside a bucket the session shares, or in a bucket of its own where buckets
are the point. The backend also reads and writes the bucket without the adapter under test
(set-up and checks). What legitimately differs between adapters (entries per LIST page,
keys per delete request, requests of a resumable upload) is a property of the backend.
Checks of one adapter only live in ``test_s3_storage.py`` and ``tests/gcs/``.

Where a server deviates from the service it stands in for, the test calls ``gap(name)``:
``gaps.py`` asks the running server itself (without the adapter) and marks the test
``xfail(strict=True)`` only where the server lacks the behaviour, naming it and what it does
instead, so a server that is fixed turns the test on by itself. The gaps known today (moto
and fake-gcs-server as locked in ``requirements/lock.txt``), or the test pins the server's
behaviour down:

* moto ignores ``If-None-Match: *`` on CopyObject (AWS honours it): a create-only copy
  overwrites there;
* moto answers 500 instead of ``NoSuchUpload`` (404) for a part sent to an aborted upload;
* moto before 5.2.6 ignored the ``ETag`` condition of ``DeleteObjects`` entries;
* moto lists every multipart upload as initiated on 2010-11-10 (a fixed date), not when it
  began;
* SeaweedFS marks a page of ListMultipartUploads truncated without a ``NextKeyMarker``, so the
  next page cannot be asked for (moto ignores ``MaxUploads`` and answers every upload in one
  page, which is complete);
* fake-gcs-server ignores ``ifGenerationMatch`` on object deletes (GCS answers 412);
* fake-gcs-server ignores ``ifGenerationMatch=0`` on ``rewriteTo`` (GCS answers 412);
* fake-gcs-server answers requests for objects in a missing bucket with the bare 404 of a
  missing object (GCS says the bucket does not exist), and accepts any token (it does not
  authenticate);
* fake-gcs-server counts only objects against ``maxResults`` and repeats the folders on
  every page (GCS counts both, once);
* SeaweedFS keeps a folder whose last object was deleted as a ``folder/`` entry of
  delimited listings (its filer keeps the directory) until that folder itself is deleted,
  and a delimited listing of ``folder/`` itself may return an empty ``folder/`` object;
  AWS, moto and GCS forget a folder with its last key. ``exists_any`` follows the delimited
  listing (true for such a leftover); ``list_all`` sees no object on any server;
* SeaweedFS creates a missing bucket on the first PUT or multipart upload to it (with
  admin credentials); AWS, moto and GCS refuse.

And where servers answer differently but the adapter hides it: ``If-Match`` on a missing
key is 412 on SeaweedFS, 404 on AWS and moto (both a ``Conflict`` for a write; a conditional
delete of a missing key is no error); S3 pages hold up to
10000 keys on SeaweedFS and moto when asked, 1000 on AWS (``test_pagination_with_small_pages``
reproduces small pages everywhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from s3contents.errors import (
    AlreadyExists,
    Conflict,
    ContentsError,
    Forbidden,
    NotFound,
    Unavailable,
)
from s3contents.storage.base import Copied, Listing, ObjectInfo, PutMode, Storage, StoredParts
from tests.storage.backends import Backend
from tests.support.servers import free_ports

pytestmark = pytest.mark.storage

MIB = 1024 * 1024
Gap = Callable[[str], None]


# --------------------------------------------------------------------------- helpers


@contextlib.asynccontextmanager
async def opened(backend: Backend, bucket: str | None = None, **kwargs: Any) -> AsyncIterator[Any]:
    """An adapter of its own for one block of a test, always closed."""
    storage = backend.storage(bucket, **kwargs)
    try:
        yield storage
    finally:
        await storage.close()


async def collect(items: AsyncIterator[Any]) -> list[Any]:
    async with contextlib.aclosing(items) as it:  # type: ignore[type-var]
        return [item async for item in it]


def _assert_utc(value: datetime) -> None:
    assert isinstance(value, datetime)
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)
    # The servers run on this machine: their clocks are ours.
    assert abs(datetime.now(timezone.utc) - value) < timedelta(minutes=5)


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
def big_folder(backend: Backend) -> Iterator[tuple[str, str]]:
    """A bucket holding one folder of 1050 objects and 60 sub-folders: ``(bucket, prefix)``.

    Written once per server (directly, not through the adapter), read by the pagination
    tests (1110 entries at one level and 1110 keys in all, both more than a page of 1000).
    """
    bucket = backend.make_bucket()
    prefix = "big/"
    keys = [f"{prefix}obj-{i:05d}" for i in range(BIG_OBJECTS)]
    keys += [f"{prefix}sub-{i:03d}/x" for i in range(BIG_FOLDERS)]
    backend.write_many(bucket, keys)
    yield bucket, prefix
    backend.remove_bucket(bucket)


# --------------------------------------------------------------------------- head / get


async def test_head_get_of_absent_key_are_not_found(storage: Storage, prefix: str) -> None:
    key = f"{prefix}absent.txt"
    with pytest.raises(NotFound) as info:
        await storage.head(key)
    assert info.value.path == key
    with pytest.raises(NotFound):
        await storage.get(key)
    with pytest.raises(NotFound):
        await collect(storage.stream(key))


async def test_put_then_head_get_list_agree(
    storage: Storage, prefix: str, backend: Backend
) -> None:
    key = f"{prefix}dir/a file ü+é?.txt"  # a name that needs quoting in URLs
    data = "Grüße\n".encode() * 100
    etag = await storage.put(key, data, content_type="text/plain")
    assert etag

    head = await storage.head(key)
    got, info = await storage.get(key)
    listed = (await storage.list(f"{prefix}dir/")).objects
    everything = await collect(storage.list_all(prefix))

    assert got == data
    assert head == info == listed[0] == everything[0]
    assert head == ObjectInfo(key, len(data), head.last_modified, etag)
    assert backend.keys(backend.bucket, prefix) == [key]
    _assert_utc(head.last_modified)
    # One precision for every request (whole seconds), so a file's time is the same
    # whichever request saw it.
    assert head.last_modified.microsecond == 0


async def test_empty_object(storage: Storage, prefix: str) -> None:
    key = f"{prefix}empty"
    await storage.put(key, b"")
    assert (await storage.head(key)).size == 0
    data, info = await storage.get(key)
    assert (data, info.size) == (b"", 0)
    assert b"".join(await collect(storage.stream(key))) == b""


async def test_overwrite_replaces_content_and_etag(storage: Storage, prefix: str) -> None:
    key = f"{prefix}f.txt"
    first = await storage.put(key, b"one")
    etag = await storage.put(key, b"two, longer")
    data, info = await storage.get(key)
    assert data == b"two, longer"
    assert info.etag == etag != first


# --------------------------------------------------------------------------- write modes


async def test_put_create_new_key_succeeds(storage: Storage, prefix: str) -> None:
    key = f"{prefix}new.txt"
    etag = await storage.put(key, b"fresh", mode=PutMode.CREATE)
    assert etag and etag == (await storage.head(key)).etag
    assert (await storage.get(key))[0] == b"fresh"


async def test_put_create_existing_key_is_already_exists(storage: Storage, prefix: str) -> None:
    key = f"{prefix}taken.txt"
    await storage.put(key, b"first")
    with pytest.raises(AlreadyExists) as info:
        await storage.put(key, b"second", mode=PutMode.CREATE)
    assert info.value.path == key
    assert (await storage.get(key))[0] == b"first"


async def test_racing_creates_have_one_winner(storage: Storage, prefix: str) -> None:
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


async def test_put_if_match_current_etag_succeeds(storage: Storage, prefix: str) -> None:
    key = f"{prefix}m.txt"
    etag = await storage.put(key, b"v1")
    new_etag = await storage.put(key, b"v2", mode=PutMode.IF_MATCH, etag=etag)
    assert new_etag and new_etag != etag
    assert (await storage.get(key)) == (b"v2", await storage.head(key))


async def test_put_if_match_stale_etag_is_conflict(storage: Storage, prefix: str) -> None:
    key = f"{prefix}m.txt"
    stale = await storage.put(key, b"v1")
    await storage.put(key, b"v2 by someone else")
    with pytest.raises(Conflict) as info:
        await storage.put(key, b"v3", mode=PutMode.IF_MATCH, etag=stale)
    assert info.value.path == key
    assert (await storage.get(key))[0] == b"v2 by someone else"


async def test_put_if_match_on_absent_key_is_conflict(storage: Storage, prefix: str) -> None:
    """The port: IF_MATCH raises Conflict unless the current ETag is ``etag``."""
    key = f"{prefix}gone.txt"
    etag = await storage.put(f"{prefix}other.txt", b"v0")  # an ETag of the right form
    with pytest.raises(Conflict):
        await storage.put(key, b"v1", mode=PutMode.IF_MATCH, etag=etag)
    with pytest.raises(NotFound):
        await storage.head(key)


async def test_put_if_match_needs_an_etag(storage: Storage, prefix: str) -> None:
    with pytest.raises(ValueError, match="etag"):
        await storage.put(f"{prefix}x", b"", mode=PutMode.IF_MATCH)


# --------------------------------------------------------------------------- copy


async def test_copy_overwrite(storage: Storage, prefix: str) -> None:
    src, dst = f"{prefix}src.txt", f"{prefix}sub/dst.txt"
    await storage.put(src, b"source bytes", content_type="text/plain")
    await storage.put(dst, b"old")
    storage.stats.clear()
    copied = await storage.copy(src, dst)
    assert storage.stats == {"COPY": 1}  # server-side: the bytes never come here
    data, info = await storage.get(dst)
    assert data == b"source bytes"
    assert (await storage.get(src))[0] == b"source bytes"
    assert copied.last_modified is not None
    _assert_utc(copied.last_modified)
    assert copied.last_modified == info.last_modified
    assert copied.etag == info.etag


async def test_copy_of_absent_source_is_not_found(storage: Storage, prefix: str) -> None:
    src = f"{prefix}no-such-source"
    with pytest.raises(NotFound) as info:
        await storage.copy(src, f"{prefix}dst")
    assert info.value.path == src
    assert src in str(info.value)
    with pytest.raises(NotFound):
        await storage.head(f"{prefix}dst")


async def test_copy_create_to_new_key(storage: Storage, prefix: str) -> None:
    await storage.put(f"{prefix}a", b"A")
    await storage.copy(f"{prefix}a", f"{prefix}b", mode=PutMode.CREATE)
    assert (await storage.get(f"{prefix}b"))[0] == b"A"


async def test_copy_create_onto_existing_key_is_already_exists(
    storage: Storage, prefix: str, gap: Gap
) -> None:
    gap("copy_create_only")
    await storage.put(f"{prefix}a", b"A")
    await storage.put(f"{prefix}b", b"B")
    try:
        with pytest.raises(AlreadyExists):
            await storage.copy(f"{prefix}a", f"{prefix}b", mode=PutMode.CREATE)
    finally:
        assert (await storage.get(f"{prefix}b"))[0] == b"B"


async def test_copy_reports_the_new_version(storage: Storage, prefix: str) -> None:
    await storage.put(f"{prefix}a", b"A")
    copied = await storage.copy(f"{prefix}a", f"{prefix}b", mode=PutMode.CREATE)
    info = await storage.head(f"{prefix}b")
    assert copied == Copied(info.etag, info.last_modified)


async def test_copy_if_match_replaces_only_that_version(
    storage: Storage, prefix: str, gap: Gap
) -> None:
    """A copy that must not replace a newer save (a resumed folder rename)."""
    gap("copy_if_match")
    await storage.put(f"{prefix}src", b"S")
    first = await storage.put(f"{prefix}dst", b"1")
    second = await storage.put(f"{prefix}dst", b"2")
    assert first and second
    with pytest.raises(Conflict):
        await storage.copy(f"{prefix}src", f"{prefix}dst", mode=PutMode.IF_MATCH, etag=first)
    assert (await storage.get(f"{prefix}dst"))[0] == b"2"
    with pytest.raises(Conflict):
        await storage.copy(f"{prefix}src", f"{prefix}gone", mode=PutMode.IF_MATCH, etag=first)
    copied = await storage.copy(f"{prefix}src", f"{prefix}dst", mode=PutMode.IF_MATCH, etag=second)
    data, info = await storage.get(f"{prefix}dst")
    assert data == b"S" and copied.etag == info.etag


async def test_write_time_is_kept_with_the_object(storage: Storage, prefix: str) -> None:
    """``put(mtime=)`` keeps the time (microseconds) for HEAD and GET, a plain copy keeps it
    (a rename keeps the date), a copy given a new ``mtime`` has that one."""
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    await storage.put(f"{prefix}a", b"A", mtime=when, content_type="text/plain")
    assert (await storage.head(f"{prefix}a")).last_modified == when
    assert (await storage.get(f"{prefix}a"))[1].last_modified == when
    await storage.copy(f"{prefix}a", f"{prefix}b")
    assert (await storage.head(f"{prefix}b")).last_modified == when
    later = when + timedelta(seconds=1, microseconds=5)
    await storage.copy(f"{prefix}a", f"{prefix}c", mtime=later, content_type="text/plain")
    assert (await storage.head(f"{prefix}c")).last_modified == later
    assert (await storage.get(f"{prefix}c"))[0] == b"A"
    # Written without one (another tool): the store's own time, whole seconds.
    await storage.put(f"{prefix}d", b"D")
    _assert_utc((await storage.head(f"{prefix}d")).last_modified)


# --------------------------------------------------------------------------- list


async def _tree(storage: Storage, prefix: str) -> dict[str, str | None]:
    """Six objects in nested folders; their ETags by key."""
    etags = {}
    for key in ["a.txt", "z.txt", "b/c.txt", "b/d/e.txt", "b/d/f.txt", "y/.s3keep"]:
        etags[prefix + key] = await storage.put(prefix + key, key.encode())
    return etags


async def test_list_one_level(storage: Storage, prefix: str) -> None:
    etags = await _tree(storage, prefix)
    storage.stats.clear()
    top = await storage.list(prefix)
    assert storage.stats == {"LIST": 1}
    assert [o.key for o in top.objects] == [f"{prefix}a.txt", f"{prefix}z.txt"]
    assert top.prefixes == [f"{prefix}b/", f"{prefix}y/"]
    assert [o.size for o in top.objects] == [5, 5]
    for obj in top.objects:
        _assert_utc(obj.last_modified)
        assert obj.etag == etags[obj.key]

    inner = await storage.list(f"{prefix}b/")
    assert [o.key for o in inner.objects] == [f"{prefix}b/c.txt"]
    assert inner.prefixes == [f"{prefix}b/d/"]

    leaf = await storage.list(f"{prefix}b/d/")
    assert [o.key for o in leaf.objects] == [f"{prefix}b/d/e.txt", f"{prefix}b/d/f.txt"]
    assert leaf.prefixes == []

    marker_only = await storage.list(f"{prefix}y/")
    assert [o.key for o in marker_only.objects] == [f"{prefix}y/.s3keep"]


async def test_list_of_absent_prefix_is_empty(storage: Storage, prefix: str) -> None:
    assert await storage.list(f"{prefix}nothing/") == Listing()
    assert await collect(storage.list_all(f"{prefix}nothing/")) == []
    assert await storage.exists_any(f"{prefix}nothing/") is False


async def test_list_all_is_recursive(storage: Storage, prefix: str) -> None:
    await _tree(storage, prefix)
    keys = [o.key for o in await collect(storage.list_all(prefix))]
    assert keys == [
        prefix + k for k in ["a.txt", "b/c.txt", "b/d/e.txt", "b/d/f.txt", "y/.s3keep", "z.txt"]
    ]
    assert [o.key for o in await collect(storage.list_all(f"{prefix}b/d/"))] == [
        f"{prefix}b/d/e.txt",
        f"{prefix}b/d/f.txt",
    ]


async def test_exists_any_ignoring_one_key(storage: Storage, prefix: str) -> None:
    """A folder holding only its rename's lock does not exist for new files."""
    lock = f"{prefix}x/.s3contents-rename"
    await storage.put(lock, b"{}")
    storage.stats.clear()
    assert await storage.exists_any(f"{prefix}x/", ignore=lock) is False
    assert storage.stats == {"LIST": 1}
    assert await storage.exists_any(f"{prefix}x/") is True
    await storage.put(f"{prefix}x/sub/z", b"z")
    assert await storage.exists_any(f"{prefix}x/", ignore=lock) is True
    await storage.delete(f"{prefix}x/sub/z")
    await storage.put(f"{prefix}x/a", b"a")
    assert await storage.exists_any(f"{prefix}x/", ignore=lock) is True


async def test_exists_any(storage: Storage, prefix: str) -> None:
    await _tree(storage, prefix)
    storage.stats.clear()
    assert await storage.exists_any(prefix) is True
    assert await storage.exists_any(f"{prefix}b/d/") is True
    assert await storage.exists_any(f"{prefix}y/") is True
    assert await storage.exists_any(f"{prefix}q/") is False
    assert storage.stats == {"LIST": 4}


def _pages(backend: Backend, entries: int) -> int:
    return math.ceil(entries / backend.page_module._PAGE)


async def test_list_paginates_past_1000_entries(
    backend: Backend, big_folder: tuple[str, str]
) -> None:
    bucket, prefix = big_folder
    async with opened(backend, bucket) as storage:
        listing = await storage.list(prefix)
        assert len(listing.objects) == BIG_OBJECTS
        assert len({o.key for o in listing.objects}) == BIG_OBJECTS
        assert listing.objects[0].key == f"{prefix}obj-00000"
        assert listing.objects[-1].key == f"{prefix}obj-{BIG_OBJECTS - 1:05d}"
        assert listing.prefixes == [f"{prefix}sub-{i:03d}/" for i in range(BIG_FOLDERS)]
        # S3Storage asks for pages of 10000: SeaweedFS and moto answer that many, so one
        # LIST (AWS stops at 1000, which test_pagination_with_small_pages reproduces);
        # GCSStorage asks for 1000, GCS's limit.
        page = backend.page_module._PAGE
        assert storage.stats["LIST"] == backend.list_requests(BIG_OBJECTS, BIG_FOLDERS, page)


async def test_list_all_paginates_past_1000_keys(
    backend: Backend, big_folder: tuple[str, str]
) -> None:
    bucket, prefix = big_folder
    async with opened(backend, bucket) as storage:
        keys = [o.key for o in await collect(storage.list_all(prefix))]
        assert len(keys) == len(set(keys)) == BIG_OBJECTS + BIG_FOLDERS
        assert keys == sorted(keys)
        assert storage.stats["LIST"] == _pages(backend, BIG_OBJECTS + BIG_FOLDERS)
        assert await storage.exists_any(prefix) is True


async def test_pagination_with_small_pages(
    backend: Backend, big_folder: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Continuation tokens work on every server, mixing objects and sub-folders in a page."""
    monkeypatch.setattr(backend.page_module, "_PAGE", 100)
    bucket, prefix = big_folder
    async with opened(backend, bucket) as storage:
        listing = await storage.list(prefix)
        assert len(listing.objects) == len({o.key for o in listing.objects}) == BIG_OBJECTS
        assert listing.prefixes == [f"{prefix}sub-{i:03d}/" for i in range(BIG_FOLDERS)]
        assert storage.stats["LIST"] == backend.list_requests(BIG_OBJECTS, BIG_FOLDERS, 100)
        storage.stats.clear()
        keys = [o.key for o in await collect(storage.list_all(prefix))]
        assert len(set(keys)) == BIG_OBJECTS + BIG_FOLDERS
        assert storage.stats["LIST"] == _pages(backend, BIG_OBJECTS + BIG_FOLDERS)


# --------------------------------------------------------------------------- delete


async def test_delete(storage: Storage, prefix: str) -> None:
    await storage.put(f"{prefix}x", b"1")
    await storage.delete(f"{prefix}x")
    with pytest.raises(NotFound):
        await storage.head(f"{prefix}x")
    await storage.delete(f"{prefix}x")  # absent: no error


async def test_delete_many_small(storage: Storage, prefix: str, backend: Backend) -> None:
    await _tree(storage, prefix)
    storage.stats.clear()
    await storage.delete_many(
        [f"{prefix}a.txt", f"{prefix}b/c.txt", f"{prefix}absent", f"{prefix}folder/"]
    )
    assert storage.stats == {"DELETE": 1}
    left = [o.key for o in await collect(storage.list_all(prefix))]
    assert left == [prefix + k for k in ["b/d/e.txt", "b/d/f.txt", "y/.s3keep", "z.txt"]]
    assert backend.keys(backend.bucket, prefix) == left
    storage.stats.clear()
    await storage.delete_many([])
    assert storage.stats == {}


async def test_delete_many_past_1000_keys(storage: Storage, prefix: str, backend: Backend) -> None:
    keys = [f"{prefix}many/{i:05d}" for i in range(1100)]
    await _put_many(storage, keys)
    storage.stats.clear()
    await storage.delete_many(iter(keys))  # any iterable, consumed once
    assert storage.stats == {"DELETE": math.ceil(len(keys) / backend.delete_batch)}
    assert await collect(storage.list_all(f"{prefix}many/")) == []
    assert backend.keys(backend.bucket, prefix) == []
    # SeaweedFS lists the emptied folder's own ``many/`` entry (see the next test).
    leftover = [f"{prefix}many/"] if backend.keeps_emptied_folders else []
    assert [o.key for o in (await storage.list(f"{prefix}many/")).objects] == leftover


async def test_conditional_delete(storage: Storage, prefix: str, gap: Gap) -> None:
    """``delete(etag=...)`` deletes only that version: a save racing a rename survives."""
    gap("delete_if_match")
    first = await storage.put(f"{prefix}x", b"1")
    second = await storage.put(f"{prefix}x", b"2")
    assert first and second and first != second
    with pytest.raises(Conflict):
        await storage.delete(f"{prefix}x", etag=first)
    data, _ = await storage.get(f"{prefix}x")
    assert data == b"2"
    await storage.delete(f"{prefix}x", etag=second)
    with pytest.raises(NotFound):
        await storage.head(f"{prefix}x")
    await storage.delete(f"{prefix}x", etag=second)  # gone already: no error


async def test_delete_many_with_etags_keeps_changed_objects(
    storage: Storage, prefix: str, gap: Gap
) -> None:
    gap("delete_many_if_match")
    old = {k: await storage.put(f"{prefix}{k}", b"1") for k in ("a", "b", "c")}
    await storage.put(f"{prefix}b", b"2")  # saved again after the listing
    etags = {f"{prefix}{k}": str(e) for k, e in old.items()}
    changed = await storage.delete_many(
        [f"{prefix}a", f"{prefix}b", f"{prefix}c", f"{prefix}absent"], etags=etags
    )
    assert changed == [f"{prefix}b"]
    left = await collect(storage.list_all(prefix))
    assert [o.key for o in left] == [f"{prefix}b"]
    assert (await storage.get(f"{prefix}b"))[0] == b"2"
    assert await storage.delete_many([f"{prefix}b"], etags={f"{prefix}b": left[0].etag or ""}) == []


async def test_request_timeout_is_unavailable(backend: Backend, prefix: str) -> None:
    """A request that takes longer than ``request_timeout`` fails as 503, not later."""
    async with opened(backend) as storage:
        await storage.put(f"{prefix}x", b"1")
        storage.request_timeout = 1e-6
        began = time.monotonic()
        with pytest.raises(Unavailable, match="did not answer"):
            await storage.get(f"{prefix}x")
        with pytest.raises(Unavailable, match="did not answer"):
            await storage.list(prefix)
        assert time.monotonic() - began < 2
        storage.request_timeout = 30
        assert (await storage.get(f"{prefix}x"))[0] == b"1"


# --------------------------------------------------------------------------- server differences


async def test_emptied_folder_in_delimited_listing(
    storage: Storage, prefix: str, backend: Backend
) -> None:
    """SeaweedFS keeps ``folder/`` listed once its last object is gone; the others do not."""
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
    if backend.keeps_emptied_folders:
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
    # Recursive listings see no object on any server; ``exists_any`` agrees with the
    # delimited listing, so a folder the manager lists is also a folder that exists.
    for folder in ("f/", "g/", "g/h/", "k/"):
        assert await storage.exists_any(prefix + folder) is backend.keeps_emptied_folders
    assert await collect(storage.list_all(prefix)) == []


async def test_emptied_folder_goes_when_deleted(storage: Storage, prefix: str) -> None:
    """Deleting the folder key ``folder/`` itself removes SeaweedFS's leftover entry."""
    await storage.put(f"{prefix}f/x", b"1")
    await storage.delete(f"{prefix}f/x")
    await storage.delete(f"{prefix}f/")
    assert (await storage.list(prefix)).prefixes == []
    assert await storage.exists_any(f"{prefix}f/") is False


# --------------------------------------------------------------------------- missing bucket


async def test_missing_bucket_is_unavailable_naming_it(backend: Backend) -> None:
    name = f"t-missing-{secrets.token_hex(6)}"
    async with opened(backend, name) as storage:
        for call in (
            storage.check_bucket(),
            storage.list(""),
            collect(storage.list_all("")),
            storage.exists_any(""),
        ):
            with pytest.raises(Unavailable, match=repr(name)):
                await call
    assert not backend.bucket_exists(name)


OBJECT_CALLS: dict[str, Callable[[Storage], Any]] = {
    "get": lambda storage: storage.get("x"),
    "stream": lambda storage: collect(storage.stream("x")),
    "copy": lambda storage: storage.copy("a", "b"),
    "delete": lambda storage: storage.delete("x"),
    "delete_many": lambda storage: storage.delete_many(["x"]),
}


@pytest.mark.parametrize("call", list(OBJECT_CALLS))
async def test_object_request_in_missing_bucket_is_unavailable(
    backend: Backend, call: str, gap: Gap
) -> None:
    name = f"t-missing-{secrets.token_hex(6)}"
    async with opened(backend, name) as storage:
        if backend.name == "fake-gcs-server" and call in ("delete", "delete_many"):
            # Pinned: GCSStorage takes any 404 to a deletion for "already gone" (on GCS
            # too: it does not read the message that tells a missing bucket), and
            # fake-gcs-server's 404 would not tell anyway.
            await OBJECT_CALLS[call](storage)
            return
        gap("missing_bucket_error")
        with pytest.raises(Unavailable, match=repr(name)):
            await OBJECT_CALLS[call](storage)
    assert not backend.bucket_exists(name)


async def test_head_in_missing_bucket_is_not_found(backend: Backend) -> None:
    """A HEAD response has no body, so "no such bucket" reads as "no such key" (404).

    Callers that must tell them apart (``doctor``, start-up) use ``check_bucket``.
    """
    name = f"t-missing-{secrets.token_hex(6)}"
    async with opened(backend, name) as storage:
        with pytest.raises(NotFound):
            await storage.head("x")
        with pytest.raises(Unavailable, match=repr(name)):
            await storage.check_bucket()


async def test_write_to_missing_bucket(backend: Backend, gap: Gap) -> None:
    """SeaweedFS creates a missing bucket on the first write; the others refuse it."""
    name = f"t-missing-{secrets.token_hex(6)}"
    try:
        async with opened(backend, name) as storage:
            if backend.creates_missing_bucket:
                await storage.put("x", b"1")
                await storage.check_bucket()
                assert (await storage.get("x"))[0] == b"1"
                return
            gap("missing_bucket_error")
            with pytest.raises(Unavailable, match=name):
                await storage.put("x", b"1")
            with pytest.raises(Unavailable, match=name):
                await storage.multipart_begin("x")
    finally:
        backend.remove_bucket(name)


# --------------------------------------------------------------------------- multipart


async def test_multipart_produces_the_exact_bytes(storage: Storage, prefix: str) -> None:
    key = f"{prefix}big.bin"
    first = os.urandom(5 * MIB)  # S3's smallest part but the last
    second = os.urandom(1234)
    upload_id = await storage.multipart_begin(key, content_type="application/octet-stream")
    part1 = await storage.multipart_part(key, upload_id, 1, first)
    part2 = await storage.multipart_part(key, upload_id, 2, second)
    assert (part1.number, part1.size) == (1, len(first))
    assert (part2.number, part2.size) == (2, len(second))
    # Nothing is visible before completion.
    with pytest.raises(NotFound):
        await storage.head(key)
    await storage.multipart_complete(key, upload_id, [part1, part2])

    data, info = await storage.get(key)
    assert data == first + second
    assert info.size == len(first) + len(second)
    assert info == await storage.head(key)


async def test_multipart_single_small_part(storage: Storage, prefix: str) -> None:
    key = f"{prefix}small.bin"
    upload_id = await storage.multipart_begin(key)
    part = await storage.multipart_part(key, upload_id, 1, b"tiny")
    await storage.multipart_complete(key, upload_id, [part])
    assert (await storage.get(key))[0] == b"tiny"


async def test_multipart_replaces_only_on_complete(storage: Storage, prefix: str) -> None:
    key = f"{prefix}doc.txt"
    await storage.put(key, b"old version")
    upload_id = await storage.multipart_begin(key)
    part = await storage.multipart_part(key, upload_id, 1, os.urandom(MIB) + b"new version")
    assert (await storage.get(key))[0] == b"old version"
    await storage.multipart_complete(key, upload_id, [part])
    assert (await storage.get(key))[0].endswith(b"new version")


async def test_multipart_abort_leaves_no_object(
    storage: Storage, prefix: str, backend: Backend
) -> None:
    key = f"{prefix}aborted.bin"
    upload_id = await storage.multipart_begin(key)
    await storage.multipart_part(key, upload_id, 1, os.urandom(5 * MIB))
    await storage.multipart_abort(key, upload_id)
    with pytest.raises(NotFound):
        await storage.head(key)
    assert await collect(storage.list_all(prefix)) == []
    assert await storage.list(prefix) == Listing()
    assert backend.keys(backend.bucket, prefix) == []
    await storage.multipart_abort(key, upload_id)  # already gone: no error


async def test_part_of_aborted_upload_is_not_found(backend: Backend, prefix: str, gap: Gap) -> None:
    gap("part_of_aborted_upload")
    key = f"{prefix}aborted.bin"
    # No retries: a server answering 500 (moto) would otherwise be asked 4 times.
    async with opened(backend, retries=1) as storage:
        upload_id = await storage.multipart_begin(key)
        part = await storage.multipart_part(key, upload_id, 1, b"x")
        await storage.multipart_abort(key, upload_id)
        with pytest.raises(NotFound):
            await storage.multipart_part(key, upload_id, 2, b"y")
        with pytest.raises(NotFound):
            await storage.multipart_complete(key, upload_id, [part])


async def test_multipart_list_shows_uploads_in_progress_under_the_prefix(
    storage: Storage, prefix: str, backend: Backend
) -> None:
    inside = [f"{prefix}a.bin", f"{prefix}sub/b.bin"]
    outside = prefix.rstrip("/") + "-sibling/c.bin"  # same start, another prefix
    ids = {key: await storage.multipart_begin(key) for key in [*inside, outside]}
    await storage.multipart_part(inside[0], ids[inside[0]], 1, b"part")
    storage.stats.clear()
    try:
        listed = await storage.multipart_list(prefix)
        if not backend.lists_uploads:
            # GCS: resumable sessions cannot be listed; nothing is asked.
            assert listed == [] and +storage.stats == {}
            return
        assert storage.stats == {"LIST": 1}
        found = sorted((u.key, u.upload_id) for u in listed)
        assert found == sorted((k, ids[k]) for k in inside)
    finally:
        for key, upload_id in ids.items():
            await storage.multipart_abort(key, upload_id)
    assert await storage.multipart_list(prefix) == []


async def test_multipart_list_tells_when_each_upload_began(
    storage: Storage, prefix: str, backend: Backend, gap: Gap
) -> None:
    if backend.lists_uploads:
        gap("upload_initiated")
    began = datetime.now(timezone.utc)
    key = f"{prefix}when.bin"
    upload_id = await storage.multipart_begin(key)
    try:
        listed = await storage.multipart_list(prefix)
    finally:
        await storage.multipart_abort(key, upload_id)
    for upload in listed:
        assert began - timedelta(seconds=5) <= upload.initiated <= began + timedelta(seconds=5)
    assert len(listed) == (1 if backend.lists_uploads else 0)


async def test_multipart_list_pages(
    backend: Backend, prefix: str, gap: Gap, monkeypatch: pytest.MonkeyPatch
) -> None:
    if backend.lists_uploads:
        gap("uploads_pagination")
        monkeypatch.setattr(backend.uploads_module, "_UPLOADS_PAGE", 2)
    async with opened(backend) as storage:
        keys = [f"{prefix}u{i}.bin" for i in range(5)]
        ids = {await storage.multipart_begin(key): key for key in keys}
        try:
            listed = await storage.multipart_list(prefix)
            expected = sorted(ids) if backend.lists_uploads else []
            assert sorted(u.upload_id for u in listed) == expected
        finally:
            for upload_id, key in ids.items():
                await storage.multipart_abort(key, upload_id)


async def test_multipart_parts_of_an_upload_in_progress(
    storage: Storage, prefix: str, backend: Backend
) -> None:
    key = f"{prefix}parts.bin"
    if not backend.lists_uploads:
        # GCS: only this process's own sessions are known; other ids are not found.
        with pytest.raises(NotFound):
            await storage.multipart_parts(key, "not-an-upload")
        return
    upload_id = await storage.multipart_begin(key)
    assert await storage.multipart_parts(key, upload_id) == StoredParts()
    began = datetime.now(timezone.utc)
    await storage.multipart_part(key, upload_id, 1, os.urandom(5 * MIB))
    await storage.multipart_part(key, upload_id, 2, b"tail")
    storage.stats.clear()
    parts = await storage.multipart_parts(key, upload_id)
    assert storage.stats == {"LIST": 1}
    assert (parts.count, parts.size) == (2, 5 * MIB + 4)
    assert parts.newest is not None
    assert began - timedelta(seconds=5) <= parts.newest <= began + timedelta(seconds=5)
    await storage.multipart_abort(key, upload_id)
    with pytest.raises(NotFound):
        await storage.multipart_parts(key, upload_id)


async def test_complete_of_aborted_upload_fails(backend: Backend, prefix: str) -> None:
    """Whatever code a server answers, completing an aborted upload creates nothing."""
    key = f"{prefix}aborted.bin"
    async with opened(backend, retries=1) as storage:
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
    storage: Storage, prefix: str, chunk_size: int
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


async def test_stream_closed_early_releases_the_connection(backend: Backend, prefix: str) -> None:
    key = f"{prefix}stream.bin"
    async with opened(backend, max_concurrency=1) as storage:
        await storage.put(key, os.urandom(200_000))
        # S3Storage's connection pool holds at least 10: open more streams than that, each
        # abandoned after one piece; a leaked connection would make the last ones wait.
        for _ in range(12):
            async with contextlib.aclosing(storage.stream(key, chunk_size=1000)) as it:
                async for piece in it:
                    assert len(piece) <= 1000
                    break
        assert (await asyncio.wait_for(storage.head(key), 10)).size == 200_000


# --------------------------------------------------------------------------- stats


async def test_stats_count_one_request_per_call_by_kind(
    storage: Storage, prefix: str, backend: Backend
) -> None:
    a, b = f"{prefix}a", f"{prefix}b"
    expected: dict[str, int] = {}

    async def step(kinds: dict[str, int], coro: Any) -> None:
        before = dict(storage.stats)
        await coro
        for kind, count in kinds.items():
            expected[kind] = expected.get(kind, 0) + count
        delta = {k: v - before.get(k, 0) for k, v in storage.stats.items() if v != before.get(k)}
        assert delta == kinds

    await step({"PUT": 1}, storage.put(a, b"1"))
    await step({"PUT": 1}, storage.put(a, b"1", mode=PutMode.OVERWRITE))
    await step({"HEAD": 1}, storage.head(a))
    await step({"GET": 1}, storage.get(a))
    await step({"GET": 1}, collect(storage.stream(a)))
    await step({"COPY": 1}, storage.copy(a, b))
    await step({"LIST": 1}, storage.list(prefix))
    await step({"LIST": 1}, collect(storage.list_all(prefix)))
    await step({"LIST": 1}, storage.exists_any(prefix))
    await step({"DELETE": 1}, storage.delete(b))
    await step({"DELETE": 1}, storage.delete_many([a, b]))
    upload_ids: list[str] = []

    async def begin(key: str) -> None:
        upload_ids.append(await storage.multipart_begin(key))

    async def upload(key: str, upload_id: str) -> None:
        part = await storage.multipart_part(key, upload_id, 1, b"p")
        await storage.multipart_complete(key, upload_id, [part])

    await step({"POST": 1}, begin(a))
    await step(backend.tiny_upload_requests, upload(a, upload_ids[0]))
    await step({"POST": 1}, begin(b))
    await step({"DELETE": 1}, storage.multipart_abort(b, upload_ids[1]))
    await step({"HEAD": 1}, storage.check_bucket())

    # Failed requests count too: they were round trips all the same.
    async def failing_head() -> None:
        with pytest.raises(NotFound):
            await storage.head(f"{prefix}absent")

    await step({"HEAD": 1}, failing_head())
    assert dict(storage.stats) == expected


# --------------------------------------------------------------------------- error translation


async def test_wrong_credentials_are_forbidden(backend: Backend, prefix: str, gap: Gap) -> None:
    gap("authenticates")
    async with opened(backend, credentials="wrong") as storage:
        calls: list[Callable[[], Any]] = [
            lambda: storage.head(f"{prefix}x"),
            lambda: storage.get(f"{prefix}x"),
            lambda: storage.put(f"{prefix}x", b"1"),
            lambda: storage.list(prefix),
            storage.check_bucket,
        ]
        for call in calls:
            with pytest.raises(Forbidden) as info:
                await call()
            assert storage.url in str(info.value)
    async with opened(backend) as good:
        with pytest.raises(NotFound):
            await good.head(f"{prefix}x")  # the refused write wrote nothing


async def test_unreachable_endpoint_is_unavailable_quickly(backend: Backend) -> None:
    (port,) = free_ports(1)  # nothing listens there
    storage = backend.storage(endpoint_url=f"http://127.0.0.1:{port}", retries=1)
    try:
        for call in (storage.head("k"), storage.list(""), storage.put("k", b"1")):
            start = time.monotonic()
            with pytest.raises(Unavailable, match="unreachable") as info:
                await call
            assert time.monotonic() - start < 3
            assert storage.url in str(info.value)
            for secret in backend.secrets:
                assert secret not in str(info.value)
    finally:
        await storage.close()


async def test_no_secret_in_errors_or_logs(
    backend: Backend, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    (port,) = free_ports(1)
    raised: list[BaseException] = []

    async def attempt(coro: Any) -> None:
        try:
            await coro
        except ContentsError as err:
            raised.append(err)

    async with opened(backend) as good:
        await attempt(good.put(f"{prefix}x", b"data"))
        await attempt(good.get(f"{prefix}x"))
        await attempt(good.head(f"{prefix}absent"))
        await attempt(good.put(f"{prefix}x", b"d", mode=PutMode.CREATE))
    async with opened(backend, credentials="wrong") as bad:
        await attempt(bad.list(prefix))
        await attempt(bad.put(f"{prefix}y", b"1"))
    async with opened(backend, f"t-missing-{secrets.token_hex(6)}") as missing:
        await attempt(missing.list(""))
    async with opened(backend, endpoint_url=f"http://127.0.0.1:{port}", retries=1) as unreachable:
        await attempt(unreachable.head("x"))

    assert len(raised) >= 4
    # DEBUG logs were captured (botocore writes many; GCSStorage, none on these paths).
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    for secret in backend.secrets:
        assert secret not in caplog.text
        for err in raised:
            # The provider's exception stays chained (``raise ... from err``) for tracebacks:
            # no link of the chain, nor the traceback printed, may carry a secret.
            link: BaseException | None = err
            while link is not None:
                assert secret not in str(link)
                assert secret not in repr(link)
                assert secret not in repr(link.__dict__)
                link = link.__cause__ or link.__context__
            printed = "".join(traceback.format_exception(type(err), err, err.__traceback__))
            assert secret not in printed
