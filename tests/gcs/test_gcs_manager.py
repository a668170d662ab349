"""``GCSContentsManager`` on fake-gcs-server: behaviour and request budget.

Request counts come from ``cm.storage.stats`` (the adapter counts every request it sends)
and are asserted exactly: they are the latency of each operation on a real store.
"""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from typing import Any

import nbformat
import pytest
from jupyter_server.services.contents.handlers import validate_model
from tornado.web import HTTPError

from s3contents.gcs import GCSContentsManager
from tests.support.gcs_server import GCSServer


def _stats(cm: GCSContentsManager) -> Counter[str]:
    return +cm.storage.stats


async def _reset(cm: GCSContentsManager) -> None:
    """Zero the counts, after the manager's one-off start-up requests (a bucket check)."""
    await cm.dir_exists("")
    cm.storage.stats.clear()


def _notebook(source: str = "print(1)") -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return {"type": "notebook", "content": nb}


def _keys(server: GCSServer, config: dict[str, str]) -> list[str]:
    root = config["prefix"] + "/"
    return sorted(k[len(root) :] for k in server.keys(config["bucket"], root))


# --------------------------------------------------------------------------- budget


async def test_listing_is_one_list_and_hides_markers_and_checkpoints(
    gcs_cm: GCSContentsManager, gcs_server: GCSServer, gcs_config: dict[str, str]
):
    root = gcs_config["prefix"] + "/"
    for rel in (
        "a.ipynb",
        "b.txt",
        ".gcskeep",
        "empty/.gcskeep",
        "implicit/deep/x.txt",  # a folder with keys under it and no marker
        ".ipynb_checkpoints/a-checkpoint.ipynb",
    ):
        gcs_server.upload(gcs_config["bucket"], root + rel, b"{}" if rel.endswith("b") else b"x")
    await _reset(gcs_cm)
    model = await gcs_cm.get("", content=True)
    assert _stats(gcs_cm) == {"LIST": 1}
    validate_model(model, expect_content=True)
    names = {entry["name"]: entry["type"] for entry in model["content"]}
    assert names == {
        "a.ipynb": "notebook",
        "b.txt": "file",
        "empty": "directory",
        "implicit": "directory",
    }
    await _reset(gcs_cm)
    implicit = await gcs_cm.get("implicit", content=True)
    assert _stats(gcs_cm) == {"LIST": 1}
    assert [(e["name"], e["type"]) for e in implicit["content"]] == [("deep", "directory")]
    assert await gcs_cm.dir_exists("implicit/deep")
    with pytest.raises(HTTPError) as info:
        await gcs_cm.get("empty/.gcskeep")
    assert info.value.status_code == 404


async def test_open_is_one_get_and_metadata_one_head(gcs_cm: GCSContentsManager):
    await gcs_cm.save(_notebook(), "n.ipynb")
    await gcs_cm.save({"type": "file", "format": "text", "content": "hi"}, "f.txt")
    for path, kind in (("n.ipynb", "notebook"), ("f.txt", "file")):
        await _reset(gcs_cm)
        model = await gcs_cm.get(path)
        assert _stats(gcs_cm) == {"GET": 1}
        assert model["type"] == kind
        validate_model(model, expect_content=True)
        await _reset(gcs_cm)
        meta = await gcs_cm.get(path, content=False)
        assert _stats(gcs_cm) == {"HEAD": 1}
        assert meta["last_modified"] == model["last_modified"]
        assert meta["last_modified"].tzinfo is not None


async def test_save_is_one_put(
    gcs_cm: GCSContentsManager, gcs_server: GCSServer, gcs_config: dict[str, str]
):
    await _reset(gcs_cm)
    saved = await gcs_cm.save(_notebook("x = 1"), "n.ipynb")
    assert _stats(gcs_cm) == {"PUT": 1}
    validate_model(saved, expect_content=False)
    assert _keys(gcs_server, gcs_config) == ["n.ipynb"]
    model = await gcs_cm.get("n.ipynb")
    assert model["content"]["cells"][0]["source"] == "x = 1"
    assert model["last_modified"] == saved["last_modified"]


async def test_new_untitled_and_folders(
    gcs_cm: GCSContentsManager, gcs_server: GCSServer, gcs_config: dict[str, str]
):
    await _reset(gcs_cm)
    first = await gcs_cm.new_untitled(type="notebook")
    assert _stats(gcs_cm) == {"LIST": 1, "PUT": 1}
    second = await gcs_cm.new_untitled(type="notebook")
    assert (first["name"], second["name"]) == ("Untitled.ipynb", "Untitled1.ipynb")
    folder = await gcs_cm.new_untitled(type="directory")
    assert folder["name"] == "Untitled Folder"
    sub = await gcs_cm.new(path="Untitled Folder/sub", model={"type": "directory"})
    assert sub["type"] == "directory"
    assert _keys(gcs_server, gcs_config) == [
        "Untitled Folder/.gcskeep",
        "Untitled Folder/sub/.gcskeep",
        "Untitled.ipynb",
        "Untitled1.ipynb",
    ]
    listing = await gcs_cm.get("Untitled Folder")
    assert [e["name"] for e in listing["content"]] == ["sub"]


async def test_copy_file_is_one_server_side_copy(
    gcs_cm: GCSContentsManager, gcs_server: GCSServer, gcs_config: dict[str, str]
):
    await gcs_cm.save(_notebook(), "n.ipynb")
    await _reset(gcs_cm)
    copied = await gcs_cm.copy("n.ipynb")
    assert copied["name"] == "n-Copy1.ipynb"
    stats = _stats(gcs_cm)
    assert stats["COPY"] == 1 and stats["PUT"] == 0 and stats["GET"] == 0
    again = await gcs_cm.copy("n.ipynb")
    assert again["name"] == "n-Copy2.ipynb"
    assert _keys(gcs_server, gcs_config) == ["n-Copy1.ipynb", "n-Copy2.ipynb", "n.ipynb"]


async def test_rename_and_delete_file_and_folder(
    gcs_cm: GCSContentsManager, gcs_server: GCSServer, gcs_config: dict[str, str]
):
    await gcs_cm.save(_notebook(), "n.ipynb")
    await gcs_cm.save({"type": "directory"}, "d")
    for i in range(5):
        await gcs_cm.save({"type": "file", "format": "text", "content": str(i)}, f"d/s/f{i}.txt")
    await gcs_cm.rename("n.ipynb", "d/m.ipynb")
    await _reset(gcs_cm)
    await gcs_cm.rename("d", "e")
    stats = _stats(gcs_cm)
    assert stats["COPY"] == 7  # marker, 5 files, the notebook
    assert stats["DELETE"] == 2  # one batch, then the rename journal
    assert _keys(gcs_server, gcs_config) == sorted(
        ["e/.gcskeep", "e/m.ipynb", *(f"e/s/f{i}.txt" for i in range(5))]
    )
    assert (await gcs_cm.get("e/s/f3.txt"))["content"] == "3"
    await _reset(gcs_cm)
    await gcs_cm.delete("e")
    assert _stats(gcs_cm)["DELETE"] == 1
    assert _keys(gcs_server, gcs_config) == []
    assert not await gcs_cm.dir_exists("e")
    await gcs_cm.save(_notebook(), "x.ipynb")
    await gcs_cm.delete("x.ipynb")
    assert not await gcs_cm.file_exists("x.ipynb")
    with pytest.raises(HTTPError) as info:
        await gcs_cm.delete("x.ipynb")
    assert info.value.status_code == 404


async def test_rename_onto_existing_file_is_409(gcs_cm: GCSContentsManager):
    # fake-gcs-server ignores ifGenerationMatch=0 on rewriteTo; the manager's HEAD of the
    # destination answers 409 there too, and nothing is overwritten.
    await gcs_cm.save({"type": "file", "format": "text", "content": "a"}, "a.txt")
    await gcs_cm.save({"type": "file", "format": "text", "content": "b"}, "b.txt")
    try:
        with pytest.raises(HTTPError) as info:
            await gcs_cm.rename("a.txt", "b.txt")
        assert info.value.status_code == 409
    finally:
        assert (await gcs_cm.get("b.txt"))["content"] == "b"


async def test_new_untitled_race_is_create_only(gcs_cm: GCSContentsManager):
    await gcs_cm.save({"type": "file", "format": "text", "content": "mine"}, "f.txt")
    with pytest.raises(HTTPError) as info:
        await gcs_cm.new({"type": "file", "format": "text", "content": "theirs"}, "f.txt")
    assert info.value.status_code == 409
    assert (await gcs_cm.get("f.txt"))["content"] == "mine"


async def test_checkpoints_live_in_the_bucket(
    gcs_cm: GCSContentsManager, gcs_server: GCSServer, gcs_config: dict[str, str]
):
    await gcs_cm.save({"type": "directory"}, "d")
    await gcs_cm.save(_notebook("v1"), "d/n.ipynb")
    checkpoint = await gcs_cm.create_checkpoint("d/n.ipynb")
    assert checkpoint["id"] == "checkpoint"
    assert "d/.ipynb_checkpoints/n-checkpoint.ipynb" in _keys(gcs_server, gcs_config)
    assert [c["id"] for c in await gcs_cm.list_checkpoints("d/n.ipynb")] == ["checkpoint"]
    await gcs_cm.save(_notebook("v2"), "d/n.ipynb")
    await gcs_cm.restore_checkpoint("checkpoint", "d/n.ipynb")
    assert (await gcs_cm.get("d/n.ipynb"))["content"]["cells"][0]["source"] == "v1"
    assert [e["name"] for e in (await gcs_cm.get("d"))["content"]] == ["n.ipynb"]
    await gcs_cm.rename("d/n.ipynb", "d/m.ipynb")
    assert "d/.ipynb_checkpoints/m-checkpoint.ipynb" in _keys(gcs_server, gcs_config)
    await gcs_cm.delete("d/m.ipynb")
    assert _keys(gcs_server, gcs_config) == ["d/.gcskeep"]


async def test_chunked_upload_round_trip(
    make_gcs_cm: Any, gcs_server: GCSServer, gcs_config: dict[str, str]
):
    cm: GCSContentsManager = make_gcs_cm(upload_part_size=5 * 1024 * 1024)
    data = os.urandom(11 * 1024 * 1024 + 333)
    chunk = 1024 * 1024
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    await _reset(cm)
    for number, piece in enumerate(pieces, start=1):
        last = number == len(pieces)
        model = await cm.save(
            {
                "type": "file",
                "format": "base64",
                "chunk": -1 if last else number,
                "content": base64.b64encode(piece).decode(),
            },
            "big.bin",
        )
        assert cm.uploads.buffered_bytes <= 5 * 1024 * 1024 + chunk
    # 1 create (the resumable session) + one PUT per part, the last one with the
    # completion (it carries the total size; the adapter holds < 256 KiB back for it). No
    # HEAD: the answer to the final PUT is the object's resource, time and size.
    assert _stats(cm) == {"POST": 1, "PUT": 3}
    assert model["size"] == len(data)
    assert model == await cm.get("big.bin", content=False)
    got = await cm.get("big.bin", format="base64")
    assert base64.b64decode(got["content"]) == data
    assert _keys(gcs_server, gcs_config) == ["big.bin"]


async def test_separator_and_prefix_settings(
    make_gcs_cm: Any, gcs_server: GCSServer, gcs_config: dict[str, str]
):
    cm: GCSContentsManager = make_gcs_cm(prefix=gcs_config["prefix"] + "/deeper/")
    await cm.save({"type": "file", "format": "text", "content": "x"}, "f.txt")
    assert _keys(gcs_server, gcs_config) == ["deeper/f.txt"]
    assert cm.info_string().endswith(gcs_config["prefix"] + "/deeper")
    assert json.loads(json.dumps(await cm.get(""), default=str))["type"] == "directory"
