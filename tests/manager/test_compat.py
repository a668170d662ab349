"""Buckets written by the old package (and by other tools) open unchanged.

Layout: key = prefix + "/" + API path; an empty folder is kept by ``folder/.s3keep``; a
folder may also exist only because keys lie under it, or as a zero-byte ``folder/`` object
(AWS console). SeaweedFS stores folders as real directories and keeps an emptied folder
listed as ``folder/`` until that key is deleted: deleting or renaming a folder must make it
disappear there too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tornado.web import HTTPError

from s3contents import S3ContentsManager
from tests.manager.manager_helpers import delimited, keys_under, notebook_bytes


def _seed(s3: Any, cm: S3ContentsManager, layout: dict[str, bytes]) -> None:
    for path, body in layout.items():
        s3.put_object(Bucket=cm.bucket, Key=f"{cm.prefix}/{path}", Body=body)


def _names(model: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((e["name"], e["type"]) for e in model["content"])


async def _visible(cm: S3ContentsManager, s3: Any, parent: str, name: str) -> dict[str, bool]:
    """Is ``name`` in ``parent``, for the manager and for a delimited boto3 listing?"""
    listing = await cm.get(parent)
    base = f"{cm.prefix}/{parent + '/' if parent else ''}"
    keys, prefixes = delimited(s3, cm.bucket, base)
    return {
        "jupyter": name in [e["name"] for e in listing["content"]],
        "bucket": f"{base}{name}/" in prefixes or f"{base}{name}" in keys,
    }


async def test_old_layout_with_markers(cm: S3ContentsManager, s3: Any) -> None:
    _seed(
        s3,
        cm,
        {
            ".s3keep": b"",
            "nb.ipynb": notebook_bytes(),
            "dir/.s3keep": b"",
            "dir/file.txt": b"text",
            "empty/.s3keep": b"",
        },
    )
    assert _names(await cm.get("")) == [
        ("dir", "directory"),
        ("empty", "directory"),
        ("nb.ipynb", "notebook"),
    ]
    assert _names(await cm.get("dir")) == [("file.txt", "file")]
    assert (await cm.get("empty"))["content"] == []
    assert (await cm.get("dir/file.txt"))["content"] == "text"
    assert (await cm.get("nb.ipynb"))["content"]["nbformat"] == 4
    for marker in (".s3keep", "dir/.s3keep"):
        with pytest.raises(HTTPError) as missing:
            await cm.get(marker)
        assert missing.value.status_code == 404


async def test_new_folders_get_the_old_marker(cm: S3ContentsManager, s3: Any) -> None:
    await cm.save({"type": "directory"}, "made")
    await cm.new_untitled(type="directory")
    assert keys_under(s3, cm.bucket, cm.prefix + "/") == [
        f"{cm.prefix}/Untitled Folder/.s3keep",
        f"{cm.prefix}/made/.s3keep",
    ]


async def test_folder_that_exists_only_through_its_keys(cm: S3ContentsManager, s3: Any) -> None:
    _seed(s3, cm, {"implicit/deep/x.txt": b"x"})
    assert _names(await cm.get("")) == [("implicit", "directory")]
    assert _names(await cm.get("implicit")) == [("deep", "directory")]
    assert await cm.dir_exists("implicit/deep") is True
    assert await cm.file_exists("implicit") is False
    await cm.save({"type": "file", "format": "text", "content": "y"}, "implicit/y.txt")
    assert _names(await cm.get("implicit")) == [("deep", "directory"), ("y.txt", "file")]


async def test_zero_byte_folder_objects_are_folders(cm: S3ContentsManager, s3: Any) -> None:
    _seed(s3, cm, {"console/": b"", "console/a.txt": b"a", "lonely/": b""})
    assert _names(await cm.get("")) == [("console", "directory"), ("lonely", "directory")]
    assert _names(await cm.get("console")) == [("a.txt", "file")]
    assert (await cm.get("lonely"))["content"] == []
    assert await cm.dir_exists("lonely") is True
    assert await cm.file_exists("lonely") is False
    await cm.delete("lonely")
    assert await _visible(cm, s3, "", "lonely") == {"jupyter": False, "bucket": False}
    await cm.rename("console", "renamed")
    assert await _visible(cm, s3, "", "console") == {"jupyter": False, "bucket": False}
    assert _names(await cm.get("renamed")) == [("a.txt", "file")]


LAYOUTS: dict[str, dict[str, bytes]] = {
    "marker-and-files": {"d/.s3keep": b"", "d/a.txt": b"a", "d/sub/b.txt": b"b"},
    "keys-only": {"d/a.txt": b"a", "d/sub/deeper/b.txt": b"b"},
    "marker-only": {"d/.s3keep": b""},
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("operation", ["delete", "rename"])
async def test_deleted_or_renamed_folder_disappears(
    cm: S3ContentsManager, s3: Any, layout: str, operation: str
) -> None:
    _seed(
        s3, cm, {"parent/keep.txt": b"k", **{f"parent/{k}": v for k, v in LAYOUTS[layout].items()}}
    )
    assert await _visible(cm, s3, "parent", "d") == {"jupyter": True, "bucket": True}
    if operation == "delete":
        await cm.delete("parent/d")
    else:
        await cm.rename("parent/d", "parent/moved")
        assert await _visible(cm, s3, "parent", "moved") == {"jupyter": True, "bucket": True}
    assert await _visible(cm, s3, "parent", "d") == {"jupyter": False, "bucket": False}
    assert await cm.dir_exists("parent/d") is False


@pytest.mark.parametrize("operation", ["delete", "rename"])
async def test_folder_whose_files_had_checkpoints_disappears(
    cm: S3ContentsManager, s3: Any, operation: str
) -> None:
    # Deleting or moving a file takes its checkpoint along: on SeaweedFS that empties
    # d/.ipynb_checkpoints/, which must not keep d alive once d itself is deleted.
    await cm.save({"type": "directory"}, "d")
    for name in ("a.txt", "b.txt"):
        await cm.save({"type": "file", "format": "text", "content": name}, f"d/{name}")
        await cm.create_checkpoint(f"d/{name}")
    await cm.delete("d/a.txt")
    await cm.rename("d/b.txt", "b.txt")
    assert (await cm.get("d"))["content"] == []
    if operation == "delete":
        await cm.delete("d")
    else:
        await cm.rename("d", "e")
    assert await _visible(cm, s3, "", "d") == {"jupyter": False, "bucket": False}
    assert keys_under(s3, cm.bucket, f"{cm.prefix}/d/") == []


@pytest.mark.parametrize("how", ["delete", "rename"])
async def test_folder_emptied_by_its_last_file_can_be_deleted(
    cm: S3ContentsManager, s3: Any, how: str
) -> None:
    # No marker: on AWS the folder goes with its last file; SeaweedFS keeps it as a
    # directory that only delimited listings show. Jupyter lists it only while its parent
    # holds no object either (the listing is recursive: "Folder dates" in
    # docs/architecture.md); whatever the bucket shows must be usable: writable, deletable.
    _seed(s3, cm, {"f/only.txt": b"x"})
    if how == "delete":
        await cm.delete("f/only.txt")
    else:
        await cm.rename("f/only.txt", "only.txt")
    listed = await _visible(cm, s3, "", "f")
    assert listed["jupyter"] == (listed["bucket"] and how == "delete")
    if listed["bucket"]:
        assert await cm.dir_exists("f") is True
        assert (await cm.get("f"))["content"] == []
        await cm.new(path="f/new.txt")
        await cm.delete("f/new.txt")
        await cm.delete("f")
    assert await _visible(cm, s3, "", "f") == {"jupyter": False, "bucket": False}


@pytest.mark.parametrize("operation", ["delete", "rename"])
async def test_folder_with_an_emptied_subfolder_disappears(
    cm: S3ContentsManager, s3: Any, operation: str
) -> None:
    # d/sub/ was emptied earlier (SeaweedFS keeps it as a directory no key points to);
    # deleting or moving d, which still has a file, must still make d disappear.
    _seed(s3, cm, {"d/keep.txt": b"k", "d/sub/x.txt": b"x", "d/sub/deeper/y.txt": b"y"})
    s3.delete_objects(
        Bucket=cm.bucket,
        Delete={
            "Objects": [
                {"Key": f"{cm.prefix}/d/sub/x.txt"},
                {"Key": f"{cm.prefix}/d/sub/deeper/y.txt"},
            ]
        },
    )
    if operation == "delete":
        await cm.delete("d")
    else:
        await cm.rename("d", "e")
        assert (await cm.get("e/keep.txt"))["content"] == "k"
    assert await _visible(cm, s3, "", "d") == {"jupyter": False, "bucket": False}
    assert await cm.dir_exists("d") is False


@pytest.mark.parametrize("style", ["/{p}/", "{p}/", "/{p}", "{p}//"])
async def test_prefix_with_slashes_is_the_same_prefix(
    make_cm: Callable[..., S3ContentsManager], s3_config: dict[str, str], s3: Any, style: str
) -> None:
    plain = s3_config["prefix"]
    cm = make_cm(prefix=style.format(p=plain))
    await cm.save({"type": "file", "format": "text", "content": "x"}, "dir/f.txt")
    assert keys_under(s3, s3_config["bucket"], plain + "/") == [f"{plain}/dir/f.txt"]
    s3.put_object(Bucket=s3_config["bucket"], Key=f"{plain}/seeded.txt", Body=b"s")
    assert _names(await cm.get("")) == [("dir", "directory"), ("seeded.txt", "file")]
    other = make_cm(prefix=plain)
    assert _names(await other.get("")) == _names(await cm.get(""))
    # Nothing escaped to a sibling of the prefix (e.g. a key with an empty segment).
    parent = plain.rsplit("/", 1)[0] + "/"
    assert delimited(s3, s3_config["bucket"], parent)[0] == []
