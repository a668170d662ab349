"""The request budget of DESIGN.md, counted with ``cm.storage.stats`` on SeaweedFS.

Every storage request the manager sends passes the adapter's choke point, which counts it
by kind (LIST, GET, HEAD, PUT, COPY, DELETE, POST). Object stores answer in 10-100 ms per
request, so these counts are the latency of each operation: they are asserted exactly.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from s3contents import S3ContentsManager
from s3contents.storage.base import PutMode
from tests.manager.manager_helpers import keys_under, notebook_bytes, sample_notebook
from tests.support.servers import S3Server

N_NOTEBOOKS = 1000
N_FOLDERS = 50


@pytest.fixture(scope="module")
def big_folder(seaweedfs: S3Server) -> Iterator[dict[str, str]]:
    """A prefix holding 1000 notebooks and 50 folders (kept by their ``.s3keep``).

    The first folder, ``folder-00``, has no marker and holds exactly 1000 entries (one S3
    page).

    Seeded once per module with boto3, concurrently: 1050 sequential PUTs take too long.
    """
    bucket = seaweedfs.make_bucket()
    prefix = f"big/{secrets.token_hex(4)}"
    body = notebook_bytes()
    keys = [f"{prefix}/nb-{i:04d}.ipynb" for i in range(N_NOTEBOOKS)]
    keys += [f"{prefix}/folder-{i:02d}/.s3keep" for i in range(1, N_FOLDERS)]
    # folder-00 holds exactly 1000 entries, no marker: 990 notebooks and 10 folders.
    keys += [f"{prefix}/folder-00/nb-{i:04d}.ipynb" for i in range(990)]
    keys += [f"{prefix}/folder-00/sub-{i}/x.txt" for i in range(10)]
    client = seaweedfs.client(max_pool_connections=16)
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(
                pool.map(
                    lambda key: client.put_object(
                        Bucket=bucket, Key=key, Body=b"" if key.endswith(".s3keep") else body
                    ),
                    keys,
                )
            )
        assert len(keys_under(client, bucket, prefix + "/")) == len(keys)
    finally:
        client.close()
    yield {
        "bucket": bucket,
        "prefix": prefix,
        "endpoint_url": seaweedfs.endpoint_url,
        "access_key_id": seaweedfs.access_key_id,
        "secret_access_key": seaweedfs.secret_access_key,
        "region_name": seaweedfs.region_name,
    }
    seaweedfs.remove_bucket(bucket)


async def _fresh(cm: S3ContentsManager) -> None:
    """Pass the manager's one-time bucket check and store probe (s3contents.traits, asked
    at the first rename or folder deletion), then start counting from zero."""
    await cm.exists("")
    await cm.store_traits.get()
    cm.storage.stats.clear()


def _stats(cm: S3ContentsManager) -> Counter[str]:
    """The requests counted since the last reset, without zero entries."""
    return +cm.storage.stats


def _spy_put_modes(cm: S3ContentsManager) -> list[PutMode]:
    """Record the mode of every ``put`` the manager sends (the adapter itself still runs)."""
    modes: list[PutMode] = []
    real_put = cm.storage.put

    async def put(key: str, data: bytes, **kwargs: Any) -> Any:
        modes.append(kwargs.get("mode", PutMode.OVERWRITE))
        return await real_put(key, data, **kwargs)

    cm.storage.put = put  # type: ignore[method-assign]
    return modes


async def test_listing_a_big_folder_is_only_listing_pages(
    big_folder: dict[str, str], make_cm: Callable[..., S3ContentsManager]
) -> None:
    cm = make_cm(**big_folder)
    await _fresh(cm)
    model = await cm.get("")
    entries = model["content"]
    assert len(entries) == N_NOTEBOOKS + N_FOLDERS
    assert sum(e["type"] == "notebook" for e in entries) == N_NOTEBOOKS
    assert sum(e["type"] == "directory" for e in entries) == N_FOLDERS
    # One recursive LIST of the whole tree (2049 keys: the adapter asks for 10000 a page,
    # which SeaweedFS answers; AWS answers 1000) dates every subfolder, and no HEAD or GET
    # per entry.
    assert _stats(cm) == Counter({"LIST": 1})
    assert all(e["last_modified"].year > 1970 for e in entries)


async def test_listing_a_folder_of_1000_entries_is_one_list(
    big_folder: dict[str, str], make_cm: Callable[..., S3ContentsManager]
) -> None:
    cm = make_cm(**big_folder)
    await _fresh(cm)
    model = await cm.get("folder-00")
    entries = model["content"]
    assert sum(e["type"] == "notebook" for e in entries) == 990
    assert sorted(e["name"] for e in entries if e["type"] == "directory") == [
        f"sub-{i}" for i in range(10)
    ]
    assert _stats(cm) == Counter({"LIST": 1})


async def test_open_notebook_is_one_get(
    big_folder: dict[str, str], make_cm: Callable[..., S3ContentsManager]
) -> None:
    cm = make_cm(**big_folder)
    await _fresh(cm)
    model = await cm.get("nb-0500.ipynb")
    assert model["type"] == "notebook"
    assert model["content"]["cells"][1]["source"] == "print('hi')"
    assert _stats(cm) == Counter({"GET": 1})


async def test_open_file_is_one_get(cm: S3ContentsManager, s3: Any) -> None:
    s3.put_object(Bucket=cm.bucket, Key=f"{cm.prefix}/data.csv", Body=b"a,b\n1,2\n")
    await _fresh(cm)
    model = await cm.get("data.csv")
    assert model["content"] == "a,b\n1,2\n"
    assert _stats(cm) == Counter({"GET": 1})


@pytest.mark.parametrize("name", ["nb-0001.ipynb"])
async def test_metadata_only_is_one_head(
    big_folder: dict[str, str], make_cm: Callable[..., S3ContentsManager], name: str
) -> None:
    cm = make_cm(**big_folder)
    await _fresh(cm)
    model = await cm.get(name, content=False)
    assert model["content"] is None
    assert model["size"] == len(notebook_bytes())
    assert _stats(cm) == Counter({"HEAD": 1})


async def test_hash_without_content_is_one_get(
    big_folder: dict[str, str], make_cm: Callable[..., S3ContentsManager]
) -> None:
    cm = make_cm(**big_folder)
    await _fresh(cm)
    model = await cm.get("nb-0002.ipynb", content=False, require_hash=True)
    assert model["hash"]
    assert _stats(cm) == Counter({"GET": 1})


async def test_save_notebook_is_one_put(cm: S3ContentsManager) -> None:
    await cm.new(path="first.ipynb")  # the file exists: a save overwrites
    for path in ("first.ipynb", "brand-new.ipynb"):
        await _fresh(cm)
        saved = await cm.save(
            {"type": "notebook", "format": "json", "content": sample_notebook()}, path
        )
        assert saved["path"] == path
        # The model's time is the one the PUT keeps with the object: no HEAD after it.
        assert _stats(cm) == Counter({"PUT": 1}), path


async def test_save_file_in_subfolder_is_one_put(cm: S3ContentsManager) -> None:
    await cm.save({"type": "directory"}, "sub")
    await _fresh(cm)
    await cm.save({"type": "file", "format": "text", "content": "x"}, "sub/a.txt")
    assert _stats(cm) == Counter({"PUT": 1})


@pytest.mark.parametrize(
    ("folder", "type_", "ext", "expected_name"),
    [
        ("", "notebook", "", "Untitled.ipynb"),
        ("sub", "notebook", "", "Untitled.ipynb"),
        ("sub", "file", ".txt", "untitled.txt"),
    ],
)
async def test_new_untitled_is_one_list_and_a_create_only_put(
    cm: S3ContentsManager, folder: str, type_: str, ext: str, expected_name: str
) -> None:
    await cm.save({"type": "directory"}, "sub")
    await _fresh(cm)
    modes = _spy_put_modes(cm)
    model = await cm.new_untitled(path=folder, type=type_, ext=ext)
    assert model["name"] == expected_name
    assert modes == [PutMode.CREATE]
    # One LIST finds a free name (and proves the folder exists), one create-only PUT.
    assert _stats(cm) == Counter({"LIST": 1, "PUT": 1})


async def test_new_untitled_takes_the_next_free_name_with_one_list(cm: S3ContentsManager) -> None:
    for _ in range(3):
        await cm.new_untitled(type="notebook")
    await _fresh(cm)
    modes = _spy_put_modes(cm)
    model = await cm.new_untitled(type="notebook")
    assert model["name"] == "Untitled3.ipynb"
    assert modes == [PutMode.CREATE]
    assert _stats(cm)["LIST"] == 1
    assert _stats(cm)["PUT"] == 1


async def test_new_untitled_folder_uses_a_create_only_marker(cm: S3ContentsManager) -> None:
    await _fresh(cm)
    modes = _spy_put_modes(cm)
    model = await cm.new_untitled(type="directory")
    assert model["name"] == "Untitled Folder"
    assert modes == [PutMode.CREATE]
    stats = _stats(cm)
    assert stats["PUT"] == 1
    assert set(stats) <= {"LIST", "PUT", "HEAD"}
    assert stats["LIST"] <= 2


async def test_copy_file_is_a_create_only_server_side_copy(cm: S3ContentsManager) -> None:
    await cm.save({"type": "notebook", "content": sample_notebook()}, "a.ipynb")
    await _fresh(cm)
    model = await cm.copy("a.ipynb")
    assert model["name"] == "a-Copy1.ipynb"
    stats = _stats(cm)
    assert stats["COPY"] == 1
    assert stats["PUT"] == 0
    assert stats["GET"] == 0
    assert stats["LIST"] == 1


def _seed_tree(s3: Any, bucket: str, prefix: str, n: int) -> list[str]:
    rel = [f"proj/f{i:03d}.txt" for i in range(n - 2)] + ["proj/deep/x.txt", "proj/deep/y.ipynb"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda r: s3.put_object(Bucket=bucket, Key=f"{prefix}/{r}", Body=r.encode()), rel
            )
        )
    return rel


@pytest.mark.parametrize("n", [3, 40])
async def test_rename_folder_is_list_copies_and_one_delete_batch(
    cm: S3ContentsManager, s3: Any, n: int
) -> None:
    rel = _seed_tree(s3, cm.bucket, cm.prefix, n)
    await _fresh(cm)
    await cm.rename("proj", "moved")
    stats = _stats(cm)
    assert stats["COPY"] == n
    # The rename's two claims (s3contents.folders): the source's lock, the target's journal.
    assert stats["PUT"] == 2
    # The sources in one batch, then the folder entries with both claims in another.
    assert stats["DELETE"] == 2
    assert stats["GET"] == 0
    # A small constant of LIST/HEAD to check the source and the target, and one last LIST
    # of the source for files created in it meanwhile: never per object. The name has no
    # extension: listed first, no HEAD of it (docs/architecture.md, "A folder rename's floor").
    assert stats["HEAD"] == 1
    assert stats["LIST"] + stats["HEAD"] <= 5
    expected = sorted(f"{cm.prefix}/{r.replace('proj/', 'moved/', 1)}" for r in rel)
    assert keys_under(s3, cm.bucket, cm.prefix + "/") == expected


@pytest.mark.parametrize("n", [3, 40])
async def test_delete_folder_is_one_list_and_one_delete_batch(
    cm: S3ContentsManager, s3: Any, n: int
) -> None:
    _seed_tree(s3, cm.bucket, cm.prefix, n)
    s3.put_object(Bucket=cm.bucket, Key=f"{cm.prefix}/keep.txt", Body=b"k")
    await _fresh(cm)
    await cm.delete("proj")
    stats = _stats(cm)
    assert stats["DELETE"] == 1
    # The recursive listing, then one delimited LIST that checks no emptied subfolder
    # (which SeaweedFS keeps as a directory no key points to) keeps the folder listed.
    assert stats["LIST"] == 2
    assert stats["COPY"] == stats["GET"] == stats["PUT"] == 0
    assert stats["HEAD"] <= 1
    assert keys_under(s3, cm.bucket, cm.prefix + "/") == [f"{cm.prefix}/keep.txt"]


async def test_delete_and_rename_file_request_counts(cm: S3ContentsManager) -> None:
    await cm.save({"type": "file", "format": "text", "content": "x"}, "a.txt")
    await _fresh(cm)
    await cm.rename("a.txt", "b.txt")
    stats = _stats(cm)
    # HEAD (is it a file?), create-only COPY, DELETE, and one COPY that finds no checkpoint.
    assert stats["COPY"] <= 2
    assert stats["DELETE"] == 1
    assert stats["LIST"] == 0
    await _fresh(cm)
    await cm.delete("b.txt")
    stats = _stats(cm)
    assert stats["LIST"] == 0
    assert stats["DELETE"] <= 2  # the file and its checkpoint, no HEAD of the checkpoint
    assert stats["HEAD"] == 1


async def test_first_request_checks_the_bucket_once(cm: S3ContentsManager) -> None:
    # The one-time check is a HEAD of the bucket, on the first request only.
    cm.storage.stats.clear()
    await cm.exists("")
    await cm.exists("")
    assert _stats(cm) == Counter({"HEAD": 1})
