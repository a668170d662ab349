"""The contents contract: what jupyter_server's FileContentsManager does, on S3.

Status codes (404 missing, 409 exists, 400 bad input, hidden files), complete models that
pass ``validate_model``, hashes and times taken from the stored object itself, notebook
trust, checkpoints kept in the bucket, and ``/files/`` downloads. The manager is tested
directly and through a live Jupyter Server's REST API.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.services.contents.handlers import validate_model
from nbformat.v4 import new_code_cell, new_notebook, new_output
from tornado.httpclient import HTTPClientError
from tornado.web import HTTPError

from s3contents import S3ContentsManager
from tests.manager.manager_helpers import delimited, keys_under, notebook_bytes, sample_notebook

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
BINARY = bytes(range(256)) * 4


def _key(cm: S3ContentsManager, api_path: str) -> str:
    return f"{cm.prefix}/{api_path}"


def _put(s3: Any, cm: S3ContentsManager, api_path: str, body: bytes) -> None:
    s3.put_object(Bucket=cm.bucket, Key=_key(cm, api_path), Body=body)


def _body(s3: Any, cm: S3ContentsManager, api_path: str) -> bytes:
    return bytes(s3.get_object(Bucket=cm.bucket, Key=_key(cm, api_path))["Body"].read())


async def _status(awaitable: Any) -> int:
    """The HTTP status an awaitable of the manager fails with."""
    with pytest.raises(HTTPError) as raised:
        await awaitable
    return int(raised.value.status_code)


async def _rest_status(awaitable: Any) -> int:
    with pytest.raises(HTTPClientError) as raised:
        await awaitable
    return int(raised.value.code)


def _text(content: str) -> dict[str, Any]:
    return {"type": "file", "format": "text", "content": content}


def _nb_model(nb: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"type": "notebook", "format": "json", "content": nb or sample_notebook()}


# --------------------------------------------------------------------------- models


async def test_models_of_each_kind_pass_validate_model(cm: S3ContentsManager, s3: Any) -> None:
    saved = [
        await cm.save(_nb_model(), "nb.ipynb"),
        await cm.save(_text("héllo\n"), "t.txt"),
        await cm.save({"type": "file", "format": "base64", "content": _b64(PNG)}, "i.png"),
        await cm.save({"type": "directory"}, "folder"),
    ]
    for model in saved:
        validate_model(model, expect_content=False)
        assert model["content"] is None
        assert model["last_modified"].tzinfo is not None

    nb = await cm.get("nb.ipynb")
    validate_model(nb, expect_content=True)
    assert (nb["type"], nb["format"], nb["mimetype"]) == ("notebook", "json", None)
    assert nb["content"]["cells"][1]["outputs"][0]["text"] == "hi\n"

    text = await cm.get("t.txt")
    validate_model(text, expect_content=True)
    assert (text["content"], text["format"], text["mimetype"]) == ("héllo\n", "text", "text/plain")
    assert text["size"] == len("héllo\n".encode())

    image = await cm.get("i.png")
    validate_model(image, expect_content=True)
    assert image["format"] == "base64"
    assert image["mimetype"] == "image/png"
    assert base64.b64decode(image["content"]) == PNG == _body(s3, cm, "i.png")

    root = await cm.get("")
    validate_model(root, expect_content=True)
    assert sorted((e["name"], e["type"]) for e in root["content"]) == [
        ("folder", "directory"),
        ("i.png", "file"),
        ("nb.ipynb", "notebook"),
        ("t.txt", "file"),
    ]
    for entry in root["content"]:
        validate_model(entry, expect_content=False)

    for path in ("nb.ipynb", "t.txt", "i.png", "folder"):
        meta = await cm.get(path, content=False)
        validate_model(meta, expect_content=False)
        assert meta["content"] is None and meta["format"] is None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def test_text_and_base64_formats(cm: S3ContentsManager, s3: Any) -> None:
    _put(s3, cm, "bin.dat", BINARY)
    model = await cm.get("bin.dat")
    assert model["format"] == "base64"
    assert model["mimetype"] == "application/octet-stream"
    assert base64.b64decode(model["content"]) == BINARY
    assert await _status(cm.get("bin.dat", format="text")) == 400

    _put(s3, cm, "notes.md", b"# hi\n")
    as_b64 = await cm.get("notes.md", format="base64")
    assert base64.b64decode(as_b64["content"]) == b"# hi\n"
    assert as_b64["format"] == "base64"
    # A notebook asked for as a file is its JSON text.
    await cm.save(_nb_model(), "n.ipynb")
    raw = await cm.get("n.ipynb", type="file", format="text")
    assert raw["type"] == "file"
    assert json.loads(raw["content"])["nbformat"] == 4


@pytest.mark.parametrize(
    ("path", "body"),
    [("t.txt", b"some text\n"), ("bin.dat", BINARY), ("n.ipynb", notebook_bytes())],
)
async def test_require_hash_is_the_sha256_of_the_stored_bytes(
    cm: S3ContentsManager, s3: Any, path: str, body: bytes
) -> None:
    _put(s3, cm, path, body)
    expected = hashlib.sha256(_body(s3, cm, path)).hexdigest()
    for content in (True, False):
        model = await cm.get(path, content=content, require_hash=True)
        validate_model(model, expect_content=content, expect_hash=True)
        assert model["hash"] == expected
        assert model["hash_algorithm"] == "sha256"
    assert (await cm.get(path))["hash"] is None


async def test_hash_of_a_saved_notebook_matches_its_object(cm: S3ContentsManager, s3: Any) -> None:
    await cm.save(_nb_model(), "saved.ipynb")
    model = await cm.get("saved.ipynb", require_hash=True)
    assert model["hash"] == hashlib.sha256(_body(s3, cm, "saved.ipynb")).hexdigest()


async def test_last_modified_is_the_write_time_kept_with_the_object(
    cm: S3ContentsManager, s3: Any, make_cm: Any
) -> None:
    """A save's time goes into the object's metadata (to the microsecond): the save's
    answer, get, get without content, and any other server report it alike. S3 listings
    carry no metadata: the server that saved lists the time it wrote (it remembers it by
    ETag), another the store's LastModified (whole seconds, same second)."""
    await cm.save({"type": "directory"}, "dir")
    saved = await cm.save(_text("x"), "dir/a.txt")
    head = s3.head_object(Bucket=cm.bucket, Key=_key(cm, "dir/a.txt"))
    kept = datetime.fromisoformat(head["Metadata"]["s3contents-mtime"])
    assert kept.tzinfo is not None
    assert saved["last_modified"] == kept
    assert (await cm.get("dir/a.txt"))["last_modified"] == kept
    assert (await cm.get("dir/a.txt", content=False))["last_modified"] == kept
    other = make_cm(prefix=cm.prefix)  # another server on the prefix
    assert (await other.get("dir/a.txt", content=False))["last_modified"] == kept
    listed = {e["name"]: e for e in (await cm.get("dir"))["content"]}
    assert listed["a.txt"]["last_modified"] == kept
    listed = {e["name"]: e for e in (await other.get("dir"))["content"]}
    assert abs(listed["a.txt"]["last_modified"] - kept) < timedelta(seconds=1)
    assert listed["a.txt"]["last_modified"] == head["LastModified"]
    # A notebook saved through the manager too.
    nb = await cm.save(_nb_model(), "n.ipynb")
    nb_head = s3.head_object(Bucket=cm.bucket, Key=_key(cm, "n.ipynb"))
    assert nb["last_modified"] == datetime.fromisoformat(nb_head["Metadata"]["s3contents-mtime"])
    # An object written by another tool has the store's own time.
    s3.put_object(Bucket=cm.bucket, Key=_key(cm, "dir/b.txt"), Body=b"b")
    stored = s3.head_object(Bucket=cm.bucket, Key=_key(cm, "dir/b.txt"))["LastModified"]
    assert (await cm.get("dir/b.txt", content=False))["last_modified"] == stored


async def test_saves_in_one_second_have_distinct_times(cm: S3ContentsManager) -> None:
    """JupyterLab tells a file changed on disk by its time: saves 100 ms apart differ."""
    times = []
    for i in range(10):
        times.append((await cm.save(_text(f"v{i}"), "often.txt"))["last_modified"])
        assert (await cm.get("often.txt", content=False))["last_modified"] == times[-1]
        await asyncio.sleep(0.1)
    assert len(set(times)) == 10
    assert times == sorted(times)


async def test_a_rename_keeps_the_time_on_every_server(cm: S3ContentsManager, make_cm: Any) -> None:
    saved = await cm.save(_text("x"), "before.txt")
    await asyncio.sleep(1.1)  # the copy is made in another second than the save
    await cm.rename("before.txt", "after.txt")
    restarted = make_cm(prefix=cm.prefix)  # another server, or this one restarted
    for manager in (cm, restarted):
        model = await manager.get("after.txt", content=False)
        assert model["last_modified"] == saved["last_modified"]
    await cm.save({"type": "directory"}, "d")
    inner = await cm.save(_text("y"), "d/in.txt")
    await cm.rename("d", "e")
    model = await restarted.get("e/in.txt", content=False)
    assert model["last_modified"] == inner["last_modified"]


# --------------------------------------------------------------------------- status codes


@pytest.mark.parametrize("path", ["missing.txt", "missing.ipynb", "missing", "no/such/file.txt"])
async def test_missing_is_404(cm: S3ContentsManager, path: str) -> None:
    assert await _status(cm.get(path)) == 404
    assert await _status(cm.get(path, content=False)) == 404
    assert await _status(cm.delete(path)) == 404
    assert await _status(cm.rename(path, "elsewhere.txt")) == 404
    assert await _status(cm.copy(path)) == 404
    assert await cm.list_checkpoints(path) == []
    assert await cm.file_exists(path) is False
    assert await cm.dir_exists(path) is False


async def test_wrong_type_and_format_are_400(cm: S3ContentsManager) -> None:
    await cm.save(_text("x"), "a.txt")
    await cm.save({"type": "directory"}, "d")
    assert await _status(cm.get("a.txt", type="directory")) == 400
    assert await _status(cm.get("d", type="file")) == 400
    assert await _status(cm.get("d", type="notebook")) == 400
    assert await _status(cm.get("a.txt", type="bogus")) == 400
    assert await _status(cm.get("a.txt", format="bogus")) == 400
    assert await _status(cm.save({"type": "file", "content": "x"}, "b.txt")) == 400
    assert await _status(cm.save({"type": "bogus", "content": "x"}, "b.txt")) == 400
    assert await _status(cm.save({"content": "x", "format": "text"}, "b.txt")) == 400
    assert await _status(cm.save({"type": "file", "format": "text"}, "b.txt")) == 400
    assert await cm.file_exists("b.txt") is False


async def test_new_and_new_untitled(cm: S3ContentsManager) -> None:
    created = await cm.new(path="fresh.ipynb")
    validate_model(created)
    assert created["type"] == "notebook"
    assert (await cm.get("fresh.ipynb"))["content"]["cells"] == []
    assert await _status(cm.new(path="fresh.ipynb")) == 409
    assert await _status(cm.new(path="nowhere/x.txt")) == 404
    plain = await cm.new(path="empty.txt")
    assert (await cm.get(plain["path"]))["content"] == ""

    names = [(await cm.new_untitled(type="notebook"))["name"] for _ in range(3)]
    assert names == ["Untitled.ipynb", "Untitled1.ipynb", "Untitled2.ipynb"]
    files = [(await cm.new_untitled(ext=".py"))["name"] for _ in range(2)]
    assert files == ["untitled.py", "untitled1.py"]
    folders = [(await cm.new_untitled(type="directory"))["name"] for _ in range(2)]
    assert folders == ["Untitled Folder", "Untitled Folder 1"]
    inner = await cm.new_untitled(path="Untitled Folder", type="notebook")
    assert inner["path"] == "Untitled Folder/Untitled.ipynb"
    assert await _status(cm.new_untitled(path="nope", type="notebook")) == 404
    assert await _status(cm.new_untitled(type="bogus")) == 400


async def test_copy(cm: S3ContentsManager, s3: Any) -> None:
    await cm.save(_nb_model(), "a.ipynb")
    await cm.save({"type": "directory"}, "d")
    first = await cm.copy("a.ipynb")
    second = await cm.copy("a.ipynb")
    assert (first["name"], second["name"]) == ("a-Copy1.ipynb", "a-Copy2.ipynb")
    validate_model(first)
    into = await cm.copy("a.ipynb", "d")
    assert into["path"] == "d/a.ipynb"
    named = await cm.copy("a.ipynb", "d/named.ipynb")
    assert named["path"] == "d/named.ipynb"
    assert _body(s3, cm, "d/named.ipynb") == _body(s3, cm, "a.ipynb")
    assert await _status(cm.copy("a.ipynb", "d/named.ipynb")) == 409
    assert await _status(cm.copy("a.ipynb", "missing/x.ipynb")) == 404
    assert await _status(cm.copy("nope.ipynb")) == 404


async def test_rename_files_and_folders(cm: S3ContentsManager, s3: Any) -> None:
    await cm.save({"type": "directory"}, "d")
    await cm.save(_text("one"), "d/one.txt")
    await cm.save(_text("two"), "two.txt")
    await cm.rename("two.txt", "d/moved.txt")
    assert _body(s3, cm, "d/moved.txt") == b"two"
    assert await cm.file_exists("two.txt") is False

    assert await _status(cm.rename("d/moved.txt", "d/one.txt")) == 409  # onto a file
    assert await _status(cm.rename("d/one.txt", "d")) == 409  # onto its own folder
    await cm.save({"type": "directory"}, "e")
    assert await _status(cm.rename("e", "d")) == 409  # folder onto folder
    assert await _status(cm.rename("d/one.txt", "e")) == 409  # file onto folder
    assert await _status(cm.rename("d/one.txt", "nowhere/one.txt")) == 404
    assert await _status(cm.rename("d", "d/inside")) == 400
    assert _body(s3, cm, "d/one.txt") == b"one"

    await cm.rename("d", "renamed")
    assert await cm.dir_exists("d") is False
    assert (await cm.get("renamed/one.txt"))["content"] == "one"

    # update() is rename by model, as the REST PATCH uses it
    model = await cm.update({"path": "renamed/uno.txt"}, "renamed/one.txt")
    validate_model(model)
    assert model["path"] == "renamed/uno.txt"


async def test_delete(make_cm: Callable[..., S3ContentsManager], s3: Any) -> None:
    cm = make_cm()
    await cm.save({"type": "directory"}, "d")
    await cm.save(_text("x"), "d/x.txt")
    await cm.save(_text("y"), "y.txt")
    await cm.delete("y.txt")
    assert await cm.file_exists("y.txt") is False
    assert await _status(cm.delete("y.txt")) == 404
    assert await _status(cm.delete("")) == 400

    strict = make_cm(prefix=cm.prefix, always_delete_dir=False)
    assert await _status(strict.delete("d")) == 400  # not empty, as FileContentsManager
    await strict.delete("d/x.txt")
    await strict.delete("d")  # empty now (only its marker)
    assert await cm.dir_exists("d") is False
    assert keys_under(s3, cm.bucket, cm.prefix + "/") == []


# --------------------------------------------------------------------------- hidden files


async def test_hidden_files_are_refused_and_unlisted(cm: S3ContentsManager, s3: Any) -> None:
    _put(s3, cm, ".secret", b"s")
    _put(s3, cm, ".hidden_dir/inside.txt", b"i")
    _put(s3, cm, "visible.txt", b"v")
    assert [e["name"] for e in (await cm.get(""))["content"]] == ["visible.txt"]
    assert await _status(cm.get(".secret")) == 404
    assert await _status(cm.get(".hidden_dir/inside.txt")) == 404
    assert await _status(cm.get(".hidden_dir")) == 404
    before = keys_under(s3, cm.bucket, cm.prefix + "/")
    assert await _status(cm.save(_text("x"), ".new")) == 400
    assert await _status(cm.save(_text("x"), "sub/.new/x.txt")) == 400
    assert await _status(cm.new(path=".new.ipynb")) == 400
    assert await _status(cm.rename("visible.txt", ".visible.txt")) == 400
    assert await _status(cm.rename(".secret", "unhidden")) == 400
    assert await _status(cm.delete(".secret")) == 400
    assert await _status(cm.copy("visible.txt", ".copy.txt")) == 400
    assert keys_under(s3, cm.bucket, cm.prefix + "/") == before


async def test_allow_hidden_true(make_cm: Callable[..., S3ContentsManager], s3: Any) -> None:
    cm = make_cm(allow_hidden=True)
    _put(s3, cm, ".secret", b"s")
    await cm.save(_text("new"), ".dot/.new.txt")
    names = sorted(e["name"] for e in (await cm.get(""))["content"])
    assert names == [".dot", ".secret"]
    assert (await cm.get(".secret"))["content"] == "s"
    assert (await cm.get(".dot/.new.txt"))["content"] == "new"
    await cm.rename(".secret", ".renamed")
    await cm.delete(".renamed")
    assert await cm.file_exists(".renamed") is False
    # The package's own names stay reserved even then.
    assert await _status(cm.save(_text("x"), "d/.s3keep")) == 400
    assert await _status(cm.save(_text("x"), ".ipynb_checkpoints/x.txt")) == 400


async def test_hide_globs(make_cm: Callable[..., S3ContentsManager], s3: Any) -> None:
    cm = make_cm()
    for path in ("mod.py", "mod.pyc", "__pycache__/mod.cpython-311.pyc", "backup~", "keep.log"):
        _put(s3, cm, path, b"x")
    assert sorted(e["name"] for e in (await cm.get(""))["content"]) == ["keep.log", "mod.py"]
    custom = make_cm(prefix=cm.prefix, hide_globs=["*.log"])
    assert sorted(e["name"] for e in (await custom.get(""))["content"]) == [
        "__pycache__",
        "backup~",
        "mod.py",
        "mod.pyc",
    ]


# --------------------------------------------------------------------------- trust


def _untrusted_notebook() -> dict[str, Any]:
    html = new_output(
        "execute_result",
        data={"text/html": "<script>alert(1)</script>", "text/plain": "x"},
        execution_count=1,
    )
    return dict(new_notebook(cells=[new_code_cell("x", execution_count=1, outputs=[html])]))


async def test_trust_notebook(jp_serverapp: Any, s3: Any) -> None:
    cm: S3ContentsManager = jp_serverapp.contents_manager
    nb = _untrusted_notebook()
    nb["cells"][0]["metadata"]["trusted"] = False
    await cm.save(_nb_model(nb), "t.ipynb")
    stored = json.loads(_body(s3, cm, "t.ipynb"))
    assert "signature" not in stored["metadata"]
    assert (await cm.get("t.ipynb"))["content"]["cells"][0]["metadata"]["trusted"] is False

    await cm.trust_notebook("t.ipynb")
    reloaded = await cm.get("t.ipynb")
    assert reloaded["content"]["cells"][0]["metadata"]["trusted"] is True
    # Trusted by signature in the server's notary database, not by anything in the object.
    assert "trusted" not in json.loads(_body(s3, cm, "t.ipynb"))["cells"][0]["metadata"]


# --------------------------------------------------------------------------- checkpoints


async def test_checkpoints_live_in_the_bucket(
    cm: S3ContentsManager, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    await cm.save({"type": "directory"}, "folder")
    first = sample_notebook("first")
    await cm.save(_nb_model(first), "folder/nb.ipynb")
    ckpt_key = _key(cm, "folder/.ipynb_checkpoints/nb-checkpoint.ipynb")

    assert await cm.list_checkpoints("folder/nb.ipynb") == []
    made = await cm.create_checkpoint("folder/nb.ipynb")
    assert made["id"] == "checkpoint"
    head = s3.head_object(Bucket=cm.bucket, Key=ckpt_key)
    kept = datetime.fromisoformat(head["Metadata"]["s3contents-mtime"])
    assert made["last_modified"] == kept  # the checkpoint's own time, not the file's
    assert _body(s3, cm, "folder/.ipynb_checkpoints/nb-checkpoint.ipynb") == _body(
        s3, cm, "folder/nb.ipynb"
    )
    listed = await cm.list_checkpoints("folder/nb.ipynb")
    assert listed == [{"id": "checkpoint", "last_modified": kept}]
    # Checkpoint folders never show in listings.
    assert [e["name"] for e in (await cm.get("folder"))["content"]] == ["nb.ipynb"]

    await cm.save(_nb_model(sample_notebook("second")), "folder/nb.ipynb")
    await cm.restore_checkpoint("checkpoint", "folder/nb.ipynb")
    restored = await cm.get("folder/nb.ipynb")
    assert restored["content"]["cells"][1]["source"] == "first"

    await cm.delete_checkpoint("checkpoint", "folder/nb.ipynb")
    assert await cm.list_checkpoints("folder/nb.ipynb") == []
    assert ckpt_key not in keys_under(s3, cm.bucket, cm.prefix + "/")
    assert await _status(cm.delete_checkpoint("checkpoint", "folder/nb.ipynb")) == 404
    assert await _status(cm.restore_checkpoint("checkpoint", "folder/nb.ipynb")) == 404
    assert await _status(cm.create_checkpoint("folder/missing.ipynb")) == 404

    # Nothing was written to local disk.
    assert list(workdir.rglob("*")) == []
    assert list(tmp_path.rglob(".ipynb_checkpoints")) == []


async def test_checkpoints_move_and_go_with_their_file(cm: S3ContentsManager, s3: Any) -> None:
    await cm.save(_text("v1"), "a.txt")
    await cm.create_checkpoint("a.txt")
    await cm.save({"type": "directory"}, "d")
    await cm.rename("a.txt", "d/b.txt")
    prefix = cm.prefix + "/"
    assert keys_under(s3, cm.bucket, prefix) == [
        f"{prefix}d/.ipynb_checkpoints/b-checkpoint.txt",
        f"{prefix}d/.s3keep",
        f"{prefix}d/b.txt",
    ]
    assert len(await cm.list_checkpoints("d/b.txt")) == 1
    await cm.save(_text("v2"), "d/b.txt")
    await cm.restore_checkpoint("checkpoint", "d/b.txt")
    assert (await cm.get("d/b.txt"))["content"] == "v1"

    # Renaming the folder takes the checkpoints along.
    await cm.rename("d", "e")
    assert keys_under(s3, cm.bucket, prefix) == [
        f"{prefix}e/.ipynb_checkpoints/b-checkpoint.txt",
        f"{prefix}e/.s3keep",
        f"{prefix}e/b.txt",
    ]
    await cm.delete("e/b.txt")
    assert keys_under(s3, cm.bucket, prefix) == [f"{prefix}e/.s3keep"]
    await cm.save(_text("z"), "e/z.txt")
    await cm.create_checkpoint("e/z.txt")
    await cm.delete("e")
    assert keys_under(s3, cm.bucket, prefix) == []
    # No emptied .ipynb_checkpoints/ or e/ entry is left behind (SeaweedFS lists the emptied
    # prefix folder itself as its one key).
    keys, folders = delimited(s3, cm.bucket, prefix)
    assert (set(keys) - {prefix}, folders) == (set(), [])


# --------------------------------------------------------------------------- REST


async def test_rest_contract(jp_fetch: Any, jp_serverapp: Any, s3: Any) -> None:
    cm: S3ContentsManager = jp_serverapp.contents_manager
    assert isinstance(cm, S3ContentsManager)
    assert await _rest_status(jp_fetch("api", "contents", "missing.ipynb")) == 404

    body = json.dumps(_nb_model())
    r = await jp_fetch("api", "contents", "nb.ipynb", method="PUT", body=body)
    assert r.code == 201
    validate_model(json.loads(r.body))
    r = await jp_fetch("api", "contents", "nb.ipynb", method="PUT", body=body)
    assert r.code == 200

    r = await jp_fetch("api", "contents", "nb.ipynb", params={"hash": "1"})
    model = json.loads(r.body)
    validate_model(model, expect_content=True, expect_hash=True)
    assert model["hash"] == hashlib.sha256(_body(s3, cm, "nb.ipynb")).hexdigest()
    stored = s3.head_object(Bucket=cm.bucket, Key=_key(cm, "nb.ipynb"))["Metadata"]
    kept = datetime.fromisoformat(stored["s3contents-mtime"])
    assert datetime.fromisoformat(model["last_modified"].replace("Z", "+00:00")) == kept

    r = await jp_fetch("api", "contents", method="POST", body=json.dumps({"type": "notebook"}))
    assert r.code == 201
    assert json.loads(r.body)["name"] == "Untitled.ipynb"
    rename = json.dumps({"path": "Untitled.ipynb"})
    assert (
        await _rest_status(jp_fetch("api", "contents", "nb.ipynb", method="PATCH", body=rename))
        == 409
    )
    r = await jp_fetch(
        "api", "contents", "nb.ipynb", method="PATCH", body=json.dumps({"path": "b.ipynb"})
    )
    assert json.loads(r.body)["path"] == "b.ipynb"

    text = json.dumps(_text("x"))
    assert await _rest_status(jp_fetch("api", "contents", ".h", method="PUT", body=text)) == 400
    _put(s3, cm, ".h", b"hidden")
    assert await _rest_status(jp_fetch("api", "contents", ".h")) == 404
    assert await _rest_status(jp_fetch("api", "contents", ".h", method="DELETE")) == 400

    r = await jp_fetch("api", "contents", "b.ipynb", method="DELETE")
    assert r.code == 204
    assert await _rest_status(jp_fetch("api", "contents", "b.ipynb", method="DELETE")) == 404
    r = await jp_fetch("api", "contents")
    listing = json.loads(r.body)
    validate_model(listing, expect_content=True)
    assert [e["name"] for e in listing["content"]] == ["Untitled.ipynb"]


async def test_rest_checkpoints(
    jp_fetch: Any, jp_serverapp: Any, s3: Any, jp_root_dir: Path
) -> None:
    cm: S3ContentsManager = jp_serverapp.contents_manager
    await cm.save(_text("v1"), "a.txt")
    r = await jp_fetch("api", "contents", "a.txt", "checkpoints", method="POST", body="")
    assert r.code == 201
    assert json.loads(r.body)["id"] == "checkpoint"
    assert _body(s3, cm, ".ipynb_checkpoints/a-checkpoint.txt") == b"v1"
    await cm.save(_text("v2"), "a.txt")
    r = await jp_fetch(
        "api", "contents", "a.txt", "checkpoints", "checkpoint", method="POST", body=""
    )
    assert r.code == 204
    assert _body(s3, cm, "a.txt") == b"v1"
    r = await jp_fetch("api", "contents", "a.txt", "checkpoints")
    assert [c["id"] for c in json.loads(r.body)] == ["checkpoint"]
    r = await jp_fetch("api", "contents", "a.txt", "checkpoints", "checkpoint", method="DELETE")
    assert r.code == 204
    assert keys_under(s3, cm.bucket, cm.prefix + "/") == [_key(cm, "a.txt")]
    assert list(jp_root_dir.rglob("*")) == []  # nothing on the server's disk


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("pic.png", PNG, "image/png"),
        ("notes.txt", "naïve\n".encode(), "text/plain; charset=UTF-8"),
        ("blob.bin", BINARY, "application/octet-stream"),
        ("sub dir/nb.ipynb", notebook_bytes(), "application/x-ipynb+json"),
    ],
)
async def test_files_endpoint_serves_exact_bytes(
    jp_fetch: Any, jp_serverapp: Any, s3: Any, path: str, body: bytes, content_type: str
) -> None:
    cm: S3ContentsManager = jp_serverapp.contents_manager
    _put(s3, cm, path, body)
    r = await jp_fetch("files", path)
    assert r.code == 200
    assert r.body == body
    assert r.headers["Content-Type"] == content_type
    assert "Content-Disposition" not in r.headers
    r = await jp_fetch("files", path, params={"download": "1"})
    assert r.body == body
    disposition = r.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert path.rsplit("/", 1)[-1].replace(" ", "%20") in disposition


async def test_files_endpoint_refuses_missing_and_hidden(
    jp_fetch: Any, jp_serverapp: Any, s3: Any
) -> None:
    cm: S3ContentsManager = jp_serverapp.contents_manager
    _put(s3, cm, ".hidden", b"h")
    _put(s3, cm, "d/.s3keep", b"")
    for path in ("missing.txt", ".hidden", "d/.s3keep", "d"):
        assert await _rest_status(jp_fetch("files", path)) == 404, path
