"""Folder dates: a subfolder's entry in its parent's listing equals ``get(sub, content=False)``.

A folder's date is the newest write among the objects of the first page of its recursive
listing, checkpoints and rename claims left out (``folders.Folders.dated_listing``). Each
test runs on SeaweedFS, moto and fake-gcs-server: with the adapter's page size as it is
(every tree here fits one page), at 3 keys a page (every folder but the smallest spans
pages, so the listing takes its longer way: a delimited listing and a first page per
subfolder), and with pages as they are but folders dated by their first 3 keys (as 1000 do
in a tree of more than 1000 objects).
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from s3contents import S3ContentsManager, folders
from s3contents.gcs import GCSContentsManager
from s3contents.manager import ObjectStoreContentsManager
from s3contents.models import UNKNOWN_TIME
from s3contents.paths import CHECKPOINT_DIR
from tests.support.fixture_helpers import manager_factory
from tests.support.servers import S3Server

Make = Callable[..., ObjectStoreContentsManager]

BACKENDS = ["seaweedfs", "moto", "gcs"]
#: The adapter's own pages ("pages"), 3 keys a page ("3-key pages"), folders dated by their
#: first 3 keys ("dated by 3 keys").
PAGES = ["pages", "3-key pages", "dated by 3 keys"]


@pytest.fixture
def moto_config(moto_s3: S3Server) -> Iterator[dict[str, str]]:
    bucket = moto_s3.make_bucket()
    yield {
        "bucket": bucket,
        "prefix": f"t/{secrets.token_hex(8)}",
        "endpoint_url": moto_s3.endpoint_url,
        "access_key_id": moto_s3.access_key_id,
        "secret_access_key": moto_s3.secret_access_key,
        "region_name": moto_s3.region_name,
    }
    moto_s3.remove_bucket(bucket)


@pytest.fixture(params=BACKENDS)
def make(
    request: pytest.FixtureRequest,
    jp_asyncio_loop: asyncio.AbstractEventLoop,
    jp_environ: None,
) -> Iterator[Make]:
    """Managers of the backend on the test's own prefix."""
    if request.param == "gcs":
        cls: type[ObjectStoreContentsManager] = GCSContentsManager
        config = request.getfixturevalue("gcs_config")
    else:
        cls = S3ContentsManager
        config = request.getfixturevalue(
            "s3_config" if request.param == "seaweedfs" else "moto_config"
        )
    yield from manager_factory(cls, config, jp_asyncio_loop)


@pytest.fixture
def dated_by_3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(folders, "DATE_KEYS", 3)


def _manager(make: Make, page: str, request: pytest.FixtureRequest) -> ObjectStoreContentsManager:
    cm = make()
    if page == "3-key pages":
        cm.storage.list_page_size = 3
    elif page == "dated by 3 keys":
        request.getfixturevalue("dated_by_3")
    return cm


async def _raw_put(cm: ObjectStoreContentsManager, api_path: str, data: bytes = b"x") -> None:
    """An object written by another tool (no write time in its metadata, no marker)."""
    await cm.storage.put(cm.keys.key(api_path), data)


async def _raw_marker(cm: ObjectStoreContentsManager, api_path: str) -> None:
    """A folder as s3contents 0.13 made it: its marker alone."""
    await cm.storage.put(cm.keys.marker_key(api_path), b"")


async def _expected_date(cm: ObjectStoreContentsManager, api_path: str) -> datetime:
    """The rule, computed straight from the store: the newest write among the first
    ``date_keys`` keys under the folder, checkpoints and claims left out."""
    prefix = cm.keys.dir_prefix(api_path)
    page: list[Any] = []
    async for o in cm.storage.list_all(prefix):
        if len(page) == cm.folders.date_keys:
            break
        page.append(o)
    dates = [
        o.last_modified
        for o in page
        if f"/{CHECKPOINT_DIR}/" not in "/" + o.key[len(prefix) :]
        and not o.key.endswith((".s3contents-rename", "/"))
    ]
    return max(dates, default=UNKNOWN_TIME)


async def _check_tree(cm: ObjectStoreContentsManager, path: str = "") -> int:
    """Every subfolder entry under ``path``, recursively, equals its own model without
    content and carries the rule's date; returns how many folders were checked."""
    listing = await cm.get(path)
    own = await cm.get(path, content=False)
    assert {k: v for k, v in listing.items() if k not in ("content", "format")} == {
        k: v for k, v in own.items() if k not in ("content", "format")
    }
    checked = 0
    for entry in listing["content"]:
        if entry["type"] != "directory":
            continue
        alone = await cm.get(entry["path"], content=False)
        assert entry == alone, entry["path"]
        expected = await _expected_date(cm, entry["path"])
        assert entry["last_modified"] == entry["created"] == expected, entry["path"]
        checked += 1 + await _check_tree(cm, entry["path"])
    return checked


async def _seed(cm: ObjectStoreContentsManager) -> None:
    """Folders of every kind: made by mkdir, by the old package (marker only), implicitly
    (objects under them, no marker), nested, empty, holding checkpoints."""
    await cm.new({"type": "directory"}, "made")
    await cm.save({"type": "file", "format": "text", "content": "one"}, "made/one.txt")
    await cm.new({"type": "directory"}, "made/inner")
    await cm.new({"type": "directory"}, "empty")
    await _raw_marker(cm, "old")
    await _raw_marker(cm, "old/nested")
    await _raw_put(cm, "old/nested/data.csv")
    await _raw_put(cm, "implicit/a/b/deep.txt")
    await _raw_put(cm, "implicit/top.txt")
    await _raw_put(cm, "implicit/z/last.txt")
    await cm.save({"type": "file", "format": "text", "content": "n"}, "root.txt")


@pytest.mark.parametrize("page", PAGES)
async def test_every_subfolder_entry_equals_its_own_model(
    make: Make, page: str, request: pytest.FixtureRequest
) -> None:
    cm = _manager(make, page, request)
    await _seed(cm)
    assert await _check_tree(cm) == 9  # made, made/inner, empty, old, old/nested, implicit...
    root = await cm.get("")
    dated = {e["name"]: e["last_modified"] for e in root["content"] if e["type"] == "directory"}
    assert set(dated) == {"made", "empty", "old", "implicit"}
    assert UNKNOWN_TIME not in dated.values()


@pytest.mark.parametrize("page", PAGES)
async def test_a_big_tree_past_one_page(
    make: Make, page: str, request: pytest.FixtureRequest
) -> None:
    """Subfolders before, across and after the end of the first page, some bigger than a
    page themselves, others not."""
    cm = _manager(make, page, request)
    await asyncio.gather(*(_raw_put(cm, f"a-{i}.txt") for i in range(4)))
    await asyncio.gather(*(_raw_put(cm, f"big/{i}/f.txt") for i in range(5)))
    await _raw_put(cm, "c/one.txt")
    await asyncio.gather(*(_raw_put(cm, f"d/x-{i}.txt") for i in range(4)))
    await _raw_marker(cm, "e")
    # A subfolder filling the first page of its parent ("deep"): dated from it, no request.
    await asyncio.gather(*(_raw_put(cm, f"deep/k/{i}.txt") for i in range(4)))
    await asyncio.sleep(1.1)  # S3 listings have whole seconds
    await _raw_put(cm, "d/x-9.txt")  # d's newest object, its 5th key
    assert await _check_tree(cm) == 11
    d = (await cm.get("d", content=False))["last_modified"]
    newest = (await cm.storage.head(cm.keys.key("d/x-9.txt"))).last_modified
    # Dated by its first 3 keys (in both small modes), d does not see its 5th; by 1000, it
    # does.
    assert (d == newest) if page == "pages" else (d < newest)
    names = [e["name"] for e in (await cm.get(""))["content"]]
    assert sorted(names) == [
        *("a-0.txt", "a-1.txt", "a-2.txt", "a-3.txt"),
        *("big", "c", "d", "deep", "e"),
    ]
    if page == "3-key pages":
        cm.storage.stats.clear()
        await cm.get("deep")
        assert +cm.storage.stats == Counter({"LIST": 2})  # the page, the delimited listing


async def test_checkpoints_do_not_date_a_folder(make: Make) -> None:
    cm = make()
    await cm.new({"type": "directory"}, "work")
    await cm.save({"type": "notebook", "content": _notebook()}, "work/n.ipynb")
    before = (await cm.get("work", content=False))["last_modified"]
    await asyncio.sleep(1.1)  # S3 listings have whole seconds
    await cm.create_checkpoint("work/n.ipynb")
    assert (await cm.get("work", content=False))["last_modified"] == before
    entry = next(e for e in (await cm.get(""))["content"] if e["name"] == "work")
    assert entry["last_modified"] == before
    # A user's write does date it.
    await cm.save({"type": "file", "format": "text", "content": "x"}, "work/later.txt")
    assert (await cm.get("work", content=False))["last_modified"] > before


def _notebook() -> dict[str, Any]:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}


@pytest.mark.parametrize("page", PAGES)
async def test_request_counts(make: Make, page: str, request: pytest.FixtureRequest) -> None:
    """A tree of one page: one LIST for the listing, one for a folder's own model. Past a
    page: that page, the delimited listing (its pages), one first page per subfolder the
    page did not hold whole."""
    cm = _manager(make, page, request)
    await asyncio.gather(*(_raw_put(cm, f"nb-{i}.ipynb") for i in range(3)))
    await asyncio.gather(*(_raw_marker(cm, f"f{i}") for i in range(3)))
    await _raw_put(cm, "f1/x.txt")
    await cm.get("f0", content=False)
    cm.storage.stats.clear()
    model = await cm.get("")
    assert len(model["content"]) == 6
    if page != "3-key pages":
        assert +cm.storage.stats == Counter({"LIST": 1})
    else:
        # 7 keys: f0/.s3keep, f1/.s3keep, f1/x.txt, f2/.s3keep, nb-0..2. The first page
        # (3 keys) ends inside f1: f0 is dated from it, f1 and f2 from a first page each;
        # the direct files and f2 come from the delimited listing (as many pages as the
        # server gives 6 entries in pages of 3).
        assert set(cm.storage.stats) == {"LIST"}
        lists = cm.storage.stats["LIST"]
        cm.storage.stats.clear()
        await cm.storage.list(cm.keys.dir_prefix(""), cm.keys.delimiter)
        assert lists == 1 + cm.storage.stats["LIST"] + 2
    cm.storage.stats.clear()
    await cm.get("f1", content=False)
    assert +cm.storage.stats == Counter({"LIST": 1})


async def test_pages_ending_on_files_are_followed(
    make: Make, request: pytest.FixtureRequest
) -> None:
    """A page that ends on a file of the folder itself is followed by the next page of the
    same recursive listing (a flat folder costs its pages, as a delimited listing would),
    and the subfolders those pages hold whole are dated from them."""
    cm = _manager(make, "3-key pages", request)
    names = ["f-0", "f-1", "f-2", "f-3", "n-0", "n-1"]
    await asyncio.gather(*(_raw_put(cm, f"{name}.txt") for name in names))
    await _raw_put(cm, "m/x.txt")
    await cm.exists("")  # the manager's one bucket check
    cm.storage.stats.clear()
    model = await cm.get("")
    # Pages of 3 keys: f-0 f-1 f-2 | f-3 m/x n-0 | n-1; no other request.
    assert +cm.storage.stats == Counter({"LIST": 3})
    assert len(model["content"]) == 7
    assert await _check_tree(cm) == 1
