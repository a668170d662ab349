"""HybridContentsManager made directly: its settings, every kind of local manager as a
mount (sync and async, with and without chunked saves), no root manager, a GCS mount, the
kernels' folder and ``preferred_dir``."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.services.contents.filemanager import (
    AsyncFileContentsManager,
    FileContentsManager,
)
from jupyter_server.services.contents.largefilemanager import (
    AsyncLargeFileManager,
    LargeFileManager,
)
from nbformat.v4 import new_code_cell, new_notebook
from tornado.web import HTTPError
from traitlets import TraitError

from s3contents import S3ContentsManager
from s3contents.gcs import GCSContentsManager
from s3contents.hybrid import HybridContentsManager

Make = Callable[..., HybridContentsManager]


def _file(data: bytes) -> dict[str, Any]:
    return {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}


async def _bytes(cm: HybridContentsManager, path: str) -> bytes:
    model = await cm.get(path, content=True, type="file", format="base64")
    return base64.b64decode(model["content"])


async def _status(awaitable: Any) -> int:
    with pytest.raises(HTTPError) as raised:
        await awaitable
    return int(raised.value.status_code)


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("classes", "kwargs", "message"),
    [
        ({}, {}, "manager_classes is empty"),
        ({"a/b": S3ContentsManager}, {}, "nested mounts are not supported"),
        ({"..": S3ContentsManager}, {}, "Invalid mount name"),
        ({"x": dict}, {}, "is not a ContentsManager class"),
        ({"x": S3ContentsManager, "/x/": S3ContentsManager}, {}, "given twice"),
        ({"x": S3ContentsManager}, {"y": {}}, "mounts that manager_classes lacks"),
        ({"x": S3ContentsManager}, {"x": "bucket"}, "must be a dict"),
    ],
    ids=["empty", "nested", "dots", "not-a-manager", "twice", "unknown-kwargs", "kwargs-type"],
)
def test_bad_layouts_fail_at_start(
    classes: dict[str, Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(TraitError, match=message):
        HybridContentsManager(manager_classes=classes, manager_kwargs=kwargs)


async def test_import_strings_slashes_and_pass_through(make_hybrid: Make, tmp_path: Path) -> None:
    cm = make_hybrid(
        {
            "": ("jupyter_server.services.contents.largefilemanager.LargeFileManager", {}),
            "/shared/": ("s3contents.S3ContentsManager", {"bucket": "b", "allow_hidden": False}),
        },
        allow_hidden=True,
        hide_globs=["*.tmp"],
        root_dir=str(tmp_path),
        preferred_dir="/shared/work/",
    )
    assert set(cm.managers) == {"", "shared"}
    root, shared = cm.managers[""], cm.managers["shared"]
    assert isinstance(root, LargeFileManager) and isinstance(shared, S3ContentsManager)
    assert root.root_dir == str(tmp_path)  # a local mount without root_dir: the server's
    assert (root.allow_hidden, shared.allow_hidden) == (True, False)  # kwargs win
    assert root.hide_globs == shared.hide_globs == ["*.tmp"]
    assert root.parent is cm and shared.parent is cm
    assert cm.preferred_dir == "shared/work"  # normalised, no request made
    cm.hide_globs = ["*.bak"]
    assert root.hide_globs == shared.hide_globs == ["*.bak"]


# --------------------------------------------------------------------------- local managers


@pytest.mark.parametrize(
    "local_class",
    [FileContentsManager, LargeFileManager, AsyncFileContentsManager, AsyncLargeFileManager],
)
async def test_every_kind_of_local_manager_as_a_mount(
    make_hybrid: Make, s3_config: dict[str, str], tmp_path: Path, local_class: type
) -> None:
    local_root = tmp_path / "local"
    local_root.mkdir()
    cm = make_hybrid(
        {"": (local_class, {"root_dir": str(local_root)}), "s3": (S3ContentsManager, s3_config)},
        cross_mount_chunk_size=64 * 1024,
    )
    local = cm.managers[""]
    chunks: list[Any] = []
    save = local.save

    def spy(model: dict[str, Any], path: str = "") -> Any:
        chunks.append(model.get("chunk"))
        return save(model, path)

    local.save = spy
    data = os.urandom(300 * 1024)
    (local_root / "big.bin").write_bytes(data)
    await cm.save({"type": "directory"}, "s3/in")
    copied = await cm.copy("big.bin", "s3/in")
    assert copied["path"] == "s3/in/big.bin"
    assert await _bytes(cm, "s3/in/big.bin") == data

    chunks.clear()
    await cm.rename("s3/in", "moved")  # a folder from the bucket to local disk
    assert (local_root / "moved" / "big.bin").read_bytes() == data
    assert await _status(cm.get("s3/in")) == 404
    # The folder (a save without chunk), then its file.
    if local_class in (LargeFileManager, AsyncLargeFileManager):
        assert chunks == [None, 1, 2, 3, 4, -1]  # 300 KiB in 64 KiB pieces
    else:
        assert chunks == [None, None]  # no chunked protocol: one save

    nb = new_notebook(cells=[new_code_cell("1 + 1")])
    await cm.save({"type": "notebook", "format": "json", "content": nb}, "nb.ipynb")
    await cm.create_checkpoint("nb.ipynb")
    assert [c["id"] for c in await cm.list_checkpoints("nb.ipynb")] == ["checkpoint"]
    await cm.copy("nb.ipynb", "s3")
    assert (await cm.get("s3/nb.ipynb"))["content"]["cells"][0]["source"] == "1 + 1"
    assert await cm.list_checkpoints("s3/nb.ipynb") == []
    names = sorted(e["name"] for e in (await cm.get(""))["content"])
    assert names == ["big.bin", "moved", "nb.ipynb", "s3"]


# --------------------------------------------------------------------------- layouts


async def test_without_a_root_manager_only_the_mounts_exist(
    make_hybrid: Make, s3_config: dict[str, str]
) -> None:
    other = {**s3_config, "prefix": s3_config["prefix"] + "-b"}
    cm = make_hybrid({"a": (S3ContentsManager, s3_config), "b": (S3ContentsManager, other)})
    root = await cm.get("")
    assert [(e["name"], e["type"]) for e in root["content"]] == [
        ("a", "directory"),
        ("b", "directory"),
    ]
    assert (await cm.get("", content=False))["content"] is None
    assert await _status(cm.get("x.txt")) == 404
    assert await _status(cm.save(_file(b"x"), "x.txt")) == 404
    assert await _status(cm.new_untitled("")) == 404
    assert await _status(cm.get("", type="file")) == 400
    assert not await cm.file_exists("x.txt") and not await cm.dir_exists("x")
    assert await cm.dir_exists("a") and await cm.dir_exists("")
    await cm.save(_file(b"abc"), "a/f.bin")
    assert (await cm.copy("a/f.bin", "b"))["path"] == "b/f.bin"
    assert await _bytes(cm, "b/f.bin") == b"abc"


async def test_a_gcs_mount_beside_an_s3_one(
    make_hybrid: Make, s3_config: dict[str, str], gcs_config: dict[str, str]
) -> None:
    cm = make_hybrid({"": (S3ContentsManager, s3_config), "gcs": (GCSContentsManager, gcs_config)})
    data = os.urandom(3 * 1024 * 1024 + 5)  # chunked: 4 pieces of 1 MiB
    await cm.save({"type": "directory"}, "proj")
    await cm.save(_file(data), "proj/data.bin")
    await cm.save({"type": "directory"}, "proj/sub")
    await cm.save(_file(b"small"), "proj/sub/s.txt")

    await cm.rename("proj", "gcs/proj")
    assert await _bytes(cm, "gcs/proj/data.bin") == data
    assert await _bytes(cm, "gcs/proj/sub/s.txt") == b"small"
    assert await _status(cm.get("proj")) == 404
    copied = await cm.copy("gcs/proj/data.bin", "")
    assert copied["path"] == "data.bin"
    assert await _bytes(cm, "data.bin") == data


async def test_kernels_start_in_the_local_folder_of_the_notebook(
    make_hybrid: Make, s3_config: dict[str, str], tmp_path: Path
) -> None:
    local = tmp_path / "local"
    local.mkdir()
    cm = make_hybrid(
        {"": (LargeFileManager, {"root_dir": str(local)}), "s3": (S3ContentsManager, s3_config)},
        root_dir=str(tmp_path),
    )
    await cm.save({"type": "directory"}, "work")
    assert await cm.get_kernel_path("work/nb.ipynb") == "local/work"
    assert await cm.get_kernel_path("nb.ipynb") == "local"
    assert await cm.get_kernel_path("s3/work/nb.ipynb") == ""
    outside = make_hybrid(
        {"": (LargeFileManager, {"root_dir": str(local)})}, root_dir=str(tmp_path / "elsewhere")
    )
    assert await outside.get_kernel_path("work/nb.ipynb") == ""
    # A kernel is told where a notebook of a bucket mount is; a local one keeps its path.
    place = f"s3://{s3_config['bucket']}/{s3_config['prefix']}/work/"
    assert cm.kernel_env("s3/work/nb.ipynb")["JPY_SESSION_NAME"] == place + "nb.ipynb"
    assert cm.kernel_env("s3/work/nb.ipynb")["S3CONTENTS_URL"] == place
    assert cm.kernel_env("work/nb.ipynb") == {}
    assert cm.kernel_env("s3") == {}


async def test_a_failed_cross_mount_copy_or_move_leaves_nothing_behind(
    make_hybrid: Make, s3_config: dict[str, str], tmp_path: Path
) -> None:
    local_root = tmp_path / "local"
    (local_root / "proj").mkdir(parents=True)
    data = os.urandom(300 * 1024)
    (local_root / "big.bin").write_bytes(data)
    (local_root / "proj" / "a.txt").write_text("a")
    (local_root / "proj" / "big.bin").write_bytes(data)
    cm = make_hybrid(
        {
            "": (LargeFileManager, {"root_dir": str(local_root), "delete_to_trash": False}),
            "s3": (S3ContentsManager, s3_config),
        },
        cross_mount_chunk_size=64 * 1024,
    )
    bucket = cm.managers["s3"]
    save = bucket.save

    async def failing(model: dict[str, Any], path: str = "") -> Any:
        if model.get("chunk") == 3:
            raise HTTPError(503, "storage went away")
        return await save(model, path)

    bucket.save = failing
    assert await _status(cm.copy("big.bin", "s3")) == 503
    assert not await bucket.file_exists("big.bin")
    assert bucket.uploads.sessions == {}  # the multipart upload was aborted
    assert await _status(cm.rename("proj", "s3/proj")) == 503
    assert not await bucket.dir_exists("proj")
    bucket.save = save

    # The source's manager refuses to delete it (a folder that is not empty, with
    # delete_to_trash off): the copy is removed again and the source is untouched.
    assert await _status(cm.rename("proj", "s3/proj")) == 400
    assert not await bucket.dir_exists("proj")
    assert sorted(p.name for p in (local_root / "proj").iterdir()) == ["a.txt", "big.bin"]
    assert (local_root / "proj" / "big.bin").read_bytes() == data
    assert (local_root / "big.bin").read_bytes() == data
