"""HybridContentsManager through a live Jupyter Server's REST API.

The layout (``conftest.py``): the root is a ``LargeFileManager`` on a local folder, ``s3`` and
``me`` are two prefixes of one bucket and ``team`` the root of another bucket, each an
``S3ContentsManager`` on SeaweedFS. Every check reads the stores themselves (the local
folder, the objects through boto3): listings, CRUD, checkpoints, copies and renames within
and between mounts (files, notebooks, folders, a 20 MiB file with the process's memory
measured), refusals on mount points, hidden files, hashes, events and ``/files/``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import threading
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_server.services.contents.handlers import validate_model
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from tornado.httpclient import HTTPClientError

from s3contents.hybrid import HybridContentsManager
from tests.hybrid.hybrid_support import Stores

#: Mounts that the parametrized tests run in: the local root, a bucket prefix, a bucket root.
MOUNTS = ["", "s3", "team"]
#: (source, target) of the copies and moves between mounts.
PAIRS = [("", "s3"), ("s3", ""), ("s3", "team"), ("team", "me")]
PAIR_IDS = ["local-to-bucket", "bucket-to-local", "bucket-to-bucket", "bucket-root-to-prefix"]
BINARY = bytes(range(256)) * 64
MiB = 1024 * 1024


def at(mount: str, rel: str) -> str:
    return "/".join(p for p in (mount, rel) if p)


def text(content: str) -> dict[str, Any]:
    return {"type": "file", "format": "text", "content": content}


def binary(data: bytes) -> dict[str, Any]:
    return {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}


def notebook(source: str = "print(6*7)") -> dict[str, Any]:
    nb = new_notebook(cells=[new_markdown_cell("# Title"), new_code_cell(source)])
    return {"type": "notebook", "format": "json", "content": nb}


def sources(data: bytes | None) -> list[str]:
    """The cell sources of a stored notebook."""
    assert data is not None
    return [c.source for c in nbformat.reads(data.decode(), as_version=4).cells]


class Api:
    """The REST API of the test's server, returning decoded JSON and status codes."""

    def __init__(self, jp_fetch: Any) -> None:
        self.fetch = jp_fetch

    async def call(
        self, path: str, method: str = "GET", body: Any = None, **params: str
    ) -> tuple[int, Any]:
        parts = ["api", "contents", *[p for p in path.split("/") if p]]
        data = None if body is None else json.dumps(body)
        if method in ("POST", "PUT", "PATCH") and data is None:
            data = ""
        r = await self.fetch(*parts, method=method, body=data, params=params or None)
        return r.code, json.loads(r.body) if r.body else None

    async def get(self, path: str, **params: str) -> Any:
        code, model = await self.call(path, **params)
        assert code == 200
        return model

    async def put(self, path: str, model: dict[str, Any]) -> Any:
        code, saved = await self.call(path, "PUT", model)
        assert code in (200, 201)
        return saved

    async def copy(self, src: str, dst: str) -> Any:
        code, copied = await self.call(dst, "POST", {"copy_from": src})
        assert code == 201
        validate_model(copied)
        return copied

    async def rename(self, src: str, dst: str) -> Any:
        code, renamed = await self.call(src, "PATCH", {"path": dst})
        assert code == 200
        return renamed

    async def status(self, path: str, method: str = "GET", body: Any = None, **params: str) -> int:
        try:
            code, _ = await self.call(path, method, body, **params)
        except HTTPClientError as err:
            return int(err.code)
        return code

    async def files(self, path: str) -> tuple[int, bytes, str]:
        parts = ["files", *[p for p in path.split("/") if p]]
        try:
            r = await self.fetch(*parts)
        except HTTPClientError as err:
            return int(err.code), b"", ""
        return r.code, bytes(r.body), r.headers.get("Content-Type", "")


@pytest.fixture
def api(jp_fetch: Any) -> Api:
    return Api(jp_fetch)


@pytest.fixture
def cm(jp_serverapp: Any) -> HybridContentsManager:
    manager: HybridContentsManager = jp_serverapp.contents_manager
    return manager


def names(listing: dict[str, Any]) -> list[str]:
    return sorted(e["name"] for e in listing["content"])


# --------------------------------------------------------------------------- the tree


async def test_root_lists_the_local_root_and_the_mounts(
    api: Api, where: Stores, local_root: Path
) -> None:
    where.write("notes.txt", b"local notes\n")
    (local_root / "s3").mkdir()  # a local folder named like a mount: hidden by it
    (local_root / "s3" / "shadowed.txt").write_bytes(b"local")

    root = await api.get("")
    validate_model(root, expect_content=True)
    assert names(root) == ["me", "notes.txt", "s3", "team"]
    mounts = {e["name"]: e for e in root["content"] if e["type"] == "directory"}
    assert {e["path"] for e in mounts.values()} == {"me", "s3", "team"}

    s3 = await api.get("s3")
    validate_model(s3, expect_content=True)
    assert (s3["name"], s3["path"], s3["content"]) == ("s3", "s3", [])
    assert await api.status("s3/shadowed.txt") == 404

    await api.put("s3/folder", {"type": "directory"})
    await api.put("s3/folder/a.txt", text("in the bucket"))
    folder = await api.get("s3/folder")
    validate_model(folder, expect_content=True)
    assert folder["path"] == "s3/folder"
    assert [e["path"] for e in folder["content"]] == ["s3/folder/a.txt"]
    meta = await api.get("s3", content="0")
    assert (meta["path"], meta["content"]) == ("s3", None)
    assert where.names("s3") == {"folder/.s3keep", "folder/a.txt"}
    assert where.names("me") == set()  # a sibling prefix of the same bucket
    assert where.names("team") == set()


@pytest.mark.parametrize("mount", MOUNTS, ids=["local", "bucket-prefix", "bucket-root"])
async def test_crud_in_each_mount(api: Api, where: Stores, mount: str) -> None:
    work = at(mount, "work")
    assert (await api.call(work, "PUT", {"type": "directory"}))[0] == 201
    code, saved = await api.call(f"{work}/nb.ipynb", "PUT", notebook())
    assert code == 201
    validate_model(saved)
    assert saved["path"] == f"{work}/nb.ipynb"
    assert (await api.call(f"{work}/nb.ipynb", "PUT", notebook("print(1)")))[0] == 200
    assert sources(where.read(f"{work}/nb.ipynb")) == ["# Title", "print(1)"]
    opened = await api.get(f"{work}/nb.ipynb")
    validate_model(opened, expect_content=True)
    assert opened["content"]["cells"][1]["source"] == "print(1)"

    code, untitled = await api.call(work, "POST", {"type": "notebook"})
    assert (code, untitled["path"]) == (201, f"{work}/Untitled.ipynb")
    assert where.read(f"{work}/Untitled.ipynb") is not None

    await api.put(f"{work}/a.txt", text("héllo\n"))
    got = await api.get(f"{work}/a.txt", format="text")
    assert (got["content"], got["format"], got["path"]) == ("héllo\n", "text", f"{work}/a.txt")
    await api.put(f"{work}/b.bin", binary(BINARY))
    assert where.read(f"{work}/b.bin") == BINARY

    renamed = await api.rename(f"{work}/a.txt", f"{work}/c.txt")
    assert renamed["path"] == f"{work}/c.txt"
    assert where.read(f"{work}/a.txt") is None
    assert where.read(f"{work}/c.txt") == "héllo\n".encode()

    listing = await api.get(work)
    assert names(listing) == ["Untitled.ipynb", "b.bin", "c.txt", "nb.ipynb"]
    assert all(e["path"] == f"{work}/{e['name']}" for e in listing["content"])

    assert await api.status(f"{work}/c.txt", "DELETE") == 204
    assert await api.status(f"{work}/c.txt") == 404
    assert await api.status(f"{work}/c.txt", "DELETE") == 404
    assert await api.status(work, "DELETE") == 204
    assert await api.status(work) == 404
    for other in ("", "s3", "me", "team"):
        assert not any(n.startswith("work/") for n in where.names(other)), other


@pytest.mark.parametrize("mount", MOUNTS, ids=["local", "bucket-prefix", "bucket-root"])
async def test_checkpoints_in_each_mount(api: Api, where: Stores, mount: str) -> None:
    path = at(mount, "a.txt")
    await api.put(path, text("v1"))
    code, checkpoint = await api.call(f"{path}/checkpoints", "POST")
    assert (code, checkpoint["id"]) == (201, "checkpoint")
    # Where the mount's own manager keeps it: on disk next to the file, or in the bucket.
    assert where.read(at(mount, ".ipynb_checkpoints/a-checkpoint.txt")) == b"v1"

    await api.put(path, text("v2"))
    _, listed = await api.call(f"{path}/checkpoints")
    assert [c["id"] for c in listed] == ["checkpoint"]
    assert await api.status(f"{path}/checkpoints/checkpoint", "POST") == 204
    assert where.read(path) == b"v1"
    assert await api.status(f"{path}/checkpoints/checkpoint", "DELETE") == 204
    assert (await api.call(f"{path}/checkpoints"))[1] == []
    assert where.read(at(mount, ".ipynb_checkpoints/a-checkpoint.txt")) is None

    # The same file name in another mount has checkpoints of its own.
    other = at("me", "a.txt")
    await api.put(other, text("elsewhere"))
    assert (await api.call(f"{other}/checkpoints"))[1] == []
    if mount:
        assert await api.status(f"{mount}/checkpoints", "POST") == 404  # a mount point


async def test_copy_and_rename_within_a_mount_are_the_mounts_own(
    api: Api, where: Stores, cm: HybridContentsManager
) -> None:
    await api.put("s3/a.txt", text("abc"))
    await api.call("s3/a.txt/checkpoints", "POST")
    storage = cm.managers["s3"].storage
    storage.stats.clear()
    copied = await api.copy("s3/a.txt", "s3")
    assert copied["path"] == "s3/a-Copy1.txt"
    assert storage.stats["COPY"] == 1 and storage.stats["GET"] == 0  # server-side copy
    assert storage.stats["PUT"] == 0 and storage.stats["POST"] == 0

    await api.rename("s3/a.txt", "s3/b.txt")
    assert where.read("s3/b.txt") == b"abc"
    assert where.read("s3/.ipynb_checkpoints/b-checkpoint.txt") == b"abc"  # moved with it
    assert where.read("s3/.ipynb_checkpoints/a-checkpoint.txt") is None

    await api.put("x.txt", text("local"))
    assert (await api.copy("x.txt", ""))["path"] == "x-Copy1.txt"
    await api.put("dir", {"type": "directory"})
    assert (await api.rename("x.txt", "dir/y.txt"))["path"] == "dir/y.txt"
    assert where.read("dir/y.txt") == b"local" and where.read("x.txt") is None


# --------------------------------------------------------------------------- between mounts


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=PAIR_IDS)
async def test_copy_between_mounts(
    api: Api, where: Stores, cm: HybridContentsManager, src: str, dst: str
) -> None:
    await api.put(at(src, "a.txt"), text("some text\n"))
    await api.put(at(src, "img.bin"), binary(BINARY))
    await api.put(at(src, "nb.ipynb"), notebook())

    for name in ("a.txt", "img.bin", "nb.ipynb"):
        copied = await api.copy(at(src, name), dst)
        assert copied["path"] == at(dst, name)
        assert copied["type"] == ("notebook" if name.endswith(".ipynb") else "file")
    assert where.read(at(dst, "a.txt")) == b"some text\n"
    assert where.read(at(dst, "img.bin")) == BINARY
    assert sources(where.read(at(dst, "nb.ipynb"))) == ["# Title", "print(6*7)"]

    # Again: a free name, as Jupyter's copy picks it; nothing is replaced.
    assert (await api.copy(at(src, "a.txt"), dst))["path"] == at(dst, "a-Copy1.txt")
    assert (await api.copy(at(src, "nb.ipynb"), dst))["path"] == at(dst, "nb-Copy1.ipynb")
    await api.put(at(dst, "into"), {"type": "directory"})
    assert (await api.copy(at(src, "img.bin"), at(dst, "into")))["path"] == at(dst, "into/img.bin")
    assert where.read(at(dst, "into/img.bin")) == BINARY
    # To a new name (what POST to a missing path means), and to a missing folder.
    assert (await api.copy(at(src, "a.txt"), at(dst, "named.txt")))["path"] == at(dst, "named.txt")
    assert where.read(at(dst, "named.txt")) == b"some text\n"
    missing = {"copy_from": at(src, "a.txt")}
    assert await api.status(at(dst, "nowhere/x.txt"), "POST", missing) == 404
    # The manager's copy onto an existing file (the REST API refuses a POST to a file).
    with pytest.raises(Exception) as raised:
        await cm.copy(at(src, "a.txt"), at(dst, "named.txt"))
    assert getattr(raised.value, "status_code", None) == 409
    assert where.read(at(src, "a.txt")) == b"some text\n"  # the source stays


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=PAIR_IDS)
async def test_rename_between_mounts(api: Api, where: Stores, src: str, dst: str) -> None:
    await api.put(at(src, "a.txt"), text("moving\n"))
    await api.put(at(src, "nb.ipynb"), notebook())
    await api.call(at(src, "nb.ipynb/checkpoints"), "POST")
    await api.put(at(dst, "taken.txt"), text("already here"))

    renamed = await api.rename(at(src, "a.txt"), at(dst, "b.txt"))
    validate_model(renamed)
    assert renamed["path"] == at(dst, "b.txt")
    assert where.read(at(src, "a.txt")) is None
    assert where.read(at(dst, "b.txt")) == b"moving\n"

    await api.rename(at(src, "nb.ipynb"), at(dst, "nb.ipynb"))
    assert sources(where.read(at(dst, "nb.ipynb"))) == ["# Title", "print(6*7)"]
    assert where.read(at(src, "nb.ipynb")) is None
    # The source's checkpoint went with it; checkpoints do not cross mounts. The target
    # does what it does for any new notebook (the local manager checkpoints it at once).
    assert where.read(at(src, ".ipynb_checkpoints/nb-checkpoint.ipynb")) is None
    checkpoints = (await api.call(at(dst, "nb.ipynb/checkpoints")))[1]
    assert [c["id"] for c in checkpoints] == ([] if dst else ["checkpoint"])
    if not dst:
        checkpoint = where.read(at(dst, ".ipynb_checkpoints/nb-checkpoint.ipynb"))
        assert sources(checkpoint) == ["# Title", "print(6*7)"]

    await api.put(at(src, "c.txt"), text("stays"))
    assert await api.status(at(src, "c.txt"), "PATCH", {"path": at(dst, "taken.txt")}) == 409
    assert await api.status(at(src, "c.txt"), "PATCH", {"path": at(dst, "no/c.txt")}) == 404
    assert await api.status(at(src, "gone.txt"), "PATCH", {"path": at(dst, "g.txt")}) == 404
    assert where.read(at(src, "c.txt")) == b"stays"
    assert where.read(at(dst, "taken.txt")) == b"already here"


async def _make_project(api: Api, base: str) -> None:
    await api.put(base, {"type": "directory"})
    await api.put(f"{base}/a.txt", text("top\n"))
    await api.put(f"{base}/nb.ipynb", notebook())
    await api.put(f"{base}/data", {"type": "directory"})
    await api.put(f"{base}/data/b.bin", binary(BINARY))
    await api.put(f"{base}/data/deeper", {"type": "directory"})
    await api.put(f"{base}/data/deeper/c.txt", text("deep\n"))
    await api.put(f"{base}/empty", {"type": "directory"})


async def _check_project(api: Api, where: Stores, base: str) -> None:
    assert where.read(f"{base}/a.txt") == b"top\n"
    assert sources(where.read(f"{base}/nb.ipynb")) == ["# Title", "print(6*7)"]
    assert where.read(f"{base}/data/b.bin") == BINARY
    assert where.read(f"{base}/data/deeper/c.txt") == b"deep\n"
    assert names(await api.get(base)) == ["a.txt", "data", "empty", "nb.ipynb"]
    assert names(await api.get(f"{base}/empty")) == []


async def test_folders_are_copied_and_moved_between_mounts(
    api: Api, where: Stores, local_root: Path
) -> None:
    await _make_project(api, "s3/proj")

    copied = await api.copy("s3/proj", "")  # bucket -> local
    assert (copied["path"], copied["type"]) == ("proj", "directory")
    await _check_project(api, where, "proj")
    await _check_project(api, where, "s3/proj")

    moved = await api.rename("proj", "team/proj2")  # local -> bucket root
    assert moved["path"] == "team/proj2"
    await _check_project(api, where, "team/proj2")
    assert not (local_root / "proj").exists()
    assert "proj2/empty/.s3keep" in where.names("team")

    await api.rename("team/proj2", "me/proj3")  # bucket -> bucket
    await _check_project(api, where, "me/proj3")
    assert where.names("team") == set()

    assert await api.status("me/proj3", "PATCH", {"path": "s3/proj"}) == 409
    await _check_project(api, where, "me/proj3")


async def test_a_folder_with_files_its_listing_hides_is_not_moved(
    api: Api, where: Stores, local_root: Path
) -> None:
    where.write("keep/x.txt", b"visible")
    where.write("keep/.env", b"SECRET=1")
    where.write("keep/sub/mod.pyc", b"bytecode")  # hide_globs
    assert await api.status("keep", "PATCH", {"path": "s3/keep"}) == 400
    assert (local_root / "keep/.env").read_bytes() == b"SECRET=1"
    assert (local_root / "keep/x.txt").is_file()
    assert where.names("s3") == set()

    where.write("s3/hid/y.txt", b"visible")
    where.write("s3/hid/.secret", b"hidden object")
    assert await api.status("s3/hid", "PATCH", {"path": "hid"}) == 400
    assert where.read("s3/hid/.secret") == b"hidden object"
    assert not (local_root / "hid").exists()

    # A copy takes what the listing shows (folders made as new folders, with their
    # marker) and leaves the source as it is.
    await api.copy("keep", "team")
    assert where.names("team") == {"keep/.s3keep", "keep/x.txt", "keep/sub/.s3keep"}
    assert (local_root / "keep/.env").is_file()

    # Checkpoints are no obstacle: they stay behind, deleted with the source.
    where.write("ck/nb.ipynb", json.dumps(notebook()["content"]).encode())
    await api.call("ck/nb.ipynb/checkpoints", "POST")
    await api.rename("ck", "s3/ck")
    assert where.names("s3") >= {"ck/nb.ipynb"}
    assert not (local_root / "ck").exists()


class PeakMemory:
    """Peak memory of this process (the server runs in it) above its level at the start:
    resident memory sampled every millisecond from /proc, and the peak of Python's own
    allocations (tracemalloc), which the C allocator's caching does not blur."""

    def __init__(self) -> None:
        self.rss = self.python = 0
        self._stop = threading.Event()

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self, baseline: int) -> None:
        while not self._stop.is_set():
            self.rss = max(self.rss, self._rss() - baseline)
            time.sleep(0.001)

    @contextmanager
    def watch(self) -> Iterator[PeakMemory]:
        self.rss = self.python = 0
        self._stop.clear()
        thread = threading.Thread(target=self._sample, args=(self._rss(),), daemon=True)
        tracemalloc.start()
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            self.python = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()


def _digest_of_object(where: Stores, path: str) -> str:
    _, sub, rel = where.cm.mount_of(path)
    key = f"{sub.prefix}/{rel}" if sub.prefix else rel
    body = where.s3.get_object(Bucket=sub.bucket, Key=key)["Body"]
    digest = hashlib.sha256()
    for piece in iter(lambda: body.read(MiB), b""):
        digest.update(piece)
    return digest.hexdigest()


async def test_a_20_mib_file_crosses_mounts_in_bounded_memory(
    api: Api, where: Stores, cm: HybridContentsManager, local_root: Path
) -> None:
    size = 20 * MiB
    digest = hashlib.sha256()
    with (local_root / "big.bin").open("wb") as file:
        for _ in range(size // MiB):
            piece = os.urandom(MiB)
            digest.update(piece)
            file.write(piece)
    expected = digest.hexdigest()
    s3, team = cm.managers["s3"].storage, cm.managers["team"].storage
    for mount in ("s3", "team"):
        # S3's smallest part size: the upload's own buffer is the largest piece of memory.
        cm.managers[mount].upload_part_size = 5 * MiB
        await api.get(mount)  # the client made (botocore's models loaded) beforehand
    memory = PeakMemory()
    peaks: dict[str, tuple[int, int]] = {}

    s3.stats.clear()
    with memory.watch():
        await api.copy("big.bin", "s3")
    peaks["local-to-bucket"] = (memory.rss, memory.python)
    assert _digest_of_object(where, "s3/big.bin") == expected
    # 1 MiB pieces, sent as chunks into one multipart upload of 5 MiB parts.
    assert s3.stats["POST"] == 2 and s3.stats["PUT"] == 4, s3.stats
    assert s3.stats["GET"] == 0, s3.stats

    s3.stats.clear()
    team.stats.clear()
    with memory.watch():
        await api.copy("s3/big.bin", "team")
    peaks["bucket-to-bucket"] = (memory.rss, memory.python)
    assert _digest_of_object(where, "team/big.bin") == expected
    assert s3.stats["GET"] == 1, s3.stats  # one streamed GET of the source
    assert team.stats["POST"] == 2 and team.stats["PUT"] == 4, team.stats

    (local_root / "big.bin").unlink()
    with memory.watch():
        await api.rename("team/big.bin", "big.bin")
    peaks["bucket-to-local (move)"] = (memory.rss, memory.python)
    digest = hashlib.sha256()
    with (local_root / "big.bin").open("rb") as file:
        for piece in iter(lambda: file.read(MiB), b""):
            digest.update(piece)
    assert digest.hexdigest() == expected
    assert where.read("team/big.bin") is None

    shown = {
        how: f"RSS +{r / MiB:.1f} MiB, Python {p / MiB:.1f} MiB" for how, (r, p) in peaks.items()
    }
    print(f"peak memory per 20 MiB copy: {shown}")
    for how, (rss, python) in peaks.items():
        # Less than the file itself at any time (a copy through one get and one save
        # holds it two or three times over), whatever the allocator keeps cached.
        assert python < size, f"{how}: Python allocations peaked at {python / MiB:.1f} MiB"
        assert rss < 40 * MiB, f"{how}: resident memory grew by {rss / MiB:.1f} MiB"


async def test_small_file_copies_between_mounts_cost_few_requests(
    api: Api, cm: HybridContentsManager
) -> None:
    await api.put("a.txt", text("x"))
    await api.put("s3/b.txt", text("y"))
    s3, team = cm.managers["s3"].storage, cm.managers["team"].storage
    counts: dict[str, dict[str, int]] = {}

    s3.stats.clear()
    await api.copy("a.txt", "s3")
    counts["local-to-bucket"] = dict(s3.stats)
    s3.stats.clear()
    await api.copy("s3/b.txt", "")
    counts["bucket-to-local"] = dict(s3.stats)
    s3.stats.clear()
    team.stats.clear()
    await api.copy("s3/b.txt", "team")
    counts["bucket-to-bucket (source)"] = dict(s3.stats)
    counts["bucket-to-bucket (target)"] = dict(team.stats)
    print(f"requests per small cross-mount copy: {counts}")

    assert counts["local-to-bucket"].get("PUT") == 1  # one create-only PUT
    assert sum(counts["local-to-bucket"].values()) <= 6
    assert counts["bucket-to-local"].get("GET") == 1
    assert sum(counts["bucket-to-local"].values()) <= 2
    assert counts["bucket-to-bucket (target)"].get("PUT") == 1
    assert (
        sum(counts["bucket-to-bucket (source)"].values())
        + sum(counts["bucket-to-bucket (target)"].values())
        <= 8
    )


# --------------------------------------------------------------------------- refusals, codes


async def test_mount_points_cannot_be_renamed_deleted_or_overwritten(
    api: Api, where: Stores
) -> None:
    await api.put("a.txt", text("x"))
    await api.put("s3/b.txt", text("y"))
    assert await api.status("s3", "PATCH", {"path": "elsewhere"}) == 400
    assert await api.status("s3", "PATCH", {"path": "team/s3"}) == 400
    assert await api.status("a.txt", "PATCH", {"path": "s3"}) == 400
    assert await api.status("s3/b.txt", "PATCH", {"path": "team"}) == 400
    assert await api.status("s3", "DELETE") == 400
    assert await api.status("", "DELETE") in (400, 405)
    assert await api.status("s3", "PUT", text("not a folder")) == 400
    assert await api.status("s3", "PUT", {"type": "directory"}) in (200, 201)
    assert await api.status("s3", "POST", {"copy_from": "s3"}) == 400
    assert where.read("s3/b.txt") == b"y" and where.read("a.txt") == b"x"
    assert names(await api.get("")) == ["a.txt", "me", "s3", "team"]


async def test_status_codes_follow_the_local_manager(api: Api) -> None:
    for mount in MOUNTS:
        assert await api.status(at(mount, "missing.txt")) == 404
        assert await api.status(at(mount, "missing.txt"), "DELETE") == 404
        await api.put(at(mount, "f.txt"), text("x"))
        assert await api.status(at(mount, "f.txt"), "POST", {"type": "file"}) == 400
        assert await api.status(at(mount, "f.txt"), type="directory") == 400
    assert await api.status("s3/../a.txt") == 404
    # The hardened /api/contents handler serves the hybrid manager too.
    assert await api.status("s3/x.txt", "PUT", ["not", "a", "model"]) == 400
    assert await api.status("", type="file") == 400
    # Within a mount its manager answers, between mounts the hybrid manager: the same codes.
    assert await api.status("s3/f.txt", "PATCH", {"path": "s3/missing/f.txt"}) == 404
    assert await api.status("f.txt", "PATCH", {"path": "s3/f.txt"}) == 409
    assert await api.status("s3/f.txt", "PATCH", {"path": "f.txt"}) == 409
    assert await api.status("s3/f.txt", "PATCH", {"path": "team/f.txt"}) == 409


# --------------------------------------------------------------------------- hidden, hash


async def test_hidden_files_follow_the_hybrid_managers_settings(
    api: Api, where: Stores, cm: HybridContentsManager
) -> None:
    for mount in MOUNTS:
        where.write(at(mount, ".hidden"), b"h")
        where.write(at(mount, "x.pyc"), b"c")
        where.write(at(mount, "seen.txt"), b"s")
        assert await api.status(at(mount, ".new"), "PUT", text("x")) == 400
        assert await api.status(at(mount, ".hidden")) == 404
        assert await api.status(at(mount, ".hidden"), "DELETE") == 400
        assert "seen.txt" in names(await api.get(mount))
        assert not {".hidden", "x.pyc"} & set(names(await api.get(mount)))
        assert (await api.files(at(mount, ".hidden")))[0] == 404

    cm.allow_hidden = True  # passed on to every mount
    assert all(sub.allow_hidden for sub in cm.managers.values())
    for mount in MOUNTS:
        assert (await api.get(at(mount, ".hidden"), format="text"))["content"] == "h"
        assert ".hidden" in names(await api.get(mount))
        assert "x.pyc" not in names(await api.get(mount))  # hide_globs still apply
        await api.put(at(mount, ".new"), text("allowed"))
        assert where.read(at(mount, ".new")) == b"allowed"


@pytest.mark.parametrize("mount", MOUNTS, ids=["local", "bucket-prefix", "bucket-root"])
async def test_require_hash(api: Api, where: Stores, mount: str) -> None:
    await api.put(at(mount, "a.bin"), binary(BINARY))
    await api.put(at(mount, "nb.ipynb"), notebook())
    for name in ("a.bin", "nb.ipynb"):
        model = await api.get(at(mount, name), hash="1")
        validate_model(model, expect_content=True, expect_hash=True)
        stored = where.read(at(mount, name))
        assert stored is not None
        assert model["hash_algorithm"] == "sha256"
        assert model["hash"] == hashlib.sha256(stored).hexdigest()
        meta = await api.get(at(mount, name), hash="1", content="0")
        assert meta["hash"] == model["hash"] and meta["content"] is None
    plain = await api.get(at(mount, "a.bin"))
    assert plain["hash"] is None


# --------------------------------------------------------------------------- events


async def test_one_event_per_operation_with_full_paths(
    api: Api, jp_serverapp: Any, cm: HybridContentsManager
) -> None:
    events: list[dict[str, Any]] = []

    async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        events.append(dict(data))

    jp_serverapp.event_logger.add_listener(schema_id=cm.event_schema_id, listener=listener)

    async def settle() -> None:
        for _ in range(10):  # listeners run as tasks
            await asyncio.sleep(0)

    async def after(operation: Any) -> list[tuple[str, str, str | None]]:
        await settle()
        events.clear()
        await operation
        await settle()
        return [(e["action"], e["path"], e.get("source_path")) for e in events]

    assert await after(cm.save(text("x"), "s3/a.txt")) == [("save", "s3/a.txt", None)]
    # FileContentsManager's save emits the get it makes of the file saved, too.
    assert await after(cm.save(text("x"), "l.txt")) == [
        ("get", "l.txt", None),
        ("save", "l.txt", None),
    ]
    assert await after(cm.get("s3/a.txt")) == [("get", "s3/a.txt", None)]
    assert await after(cm.rename("s3/a.txt", "s3/b.txt")) == [("rename", "s3/b.txt", "s3/a.txt")]
    assert await after(cm.copy("s3/b.txt", "s3")) == [("copy", "s3/b-Copy1.txt", "s3/b.txt")]
    assert await after(cm.delete("s3/b-Copy1.txt")) == [("delete", "s3/b-Copy1.txt", None)]
    # Between mounts: the one event of the operation, none of the saves, gets and deletes
    # it is made of.
    assert await after(cm.copy("s3/b.txt", "team")) == [("copy", "team/b.txt", "s3/b.txt")]
    assert await after(cm.copy("l.txt", "team")) == [("copy", "team/l.txt", "l.txt")]
    assert await after(cm.rename("team/l.txt", "l2.txt")) == [("rename", "l2.txt", "team/l.txt")]
    assert await after(cm.rename("l2.txt", "me/l3.txt")) == [("rename", "me/l3.txt", "l2.txt")]
    assert await after(cm.delete("l.txt")) == [("delete", "l.txt", None)]
    await cm.save({"type": "directory"}, "me/d")
    await cm.save(text("1"), "me/d/1.txt")
    assert await after(cm.rename("me/d", "d")) == [("rename", "d", "me/d")]
    # Through the REST API: a rename is the rename and the get of the renamed file.
    assert await after(api.rename("d/1.txt", "s3/1.txt")) == [
        ("rename", "s3/1.txt", "d/1.txt"),
        ("get", "s3/1.txt", None),
    ]


# --------------------------------------------------------------------------- /files/


async def test_files_are_served_by_their_mount(api: Api, where: Stores) -> None:
    where.write("local.txt", b"from disk\n")
    where.write("s3/folder/remote.bin", BINARY)
    where.write("team/nb.ipynb", json.dumps(notebook()["content"]).encode())

    assert await api.files("local.txt") == (200, b"from disk\n", "text/plain; charset=UTF-8")
    code, body, kind = await api.files("s3/folder/remote.bin")
    assert (code, body, kind) == (200, BINARY, "application/octet-stream")
    code, body, kind = await api.files("team/nb.ipynb")
    assert code == 200 and kind == "application/x-ipynb+json"
    assert body == where.read("team/nb.ipynb")
    for missing in ("missing.txt", "s3/missing.txt", "s3", "s3/folder", ""):
        assert (await api.files(missing))[0] == 404, missing
