"""The mounts of the hybrid manager (:mod:`s3contents.hybrid.mounts`) without a server or a
store: the kind chosen for each manager class, and local paths resolved as jupyter_server's
own file managers resolve them (same path, or 404 where theirs is 404)."""

from __future__ import annotations

import os
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
from jupyter_server.services.contents.manager import ContentsManager
from tornado.web import HTTPError

from s3contents import S3ContentsManager
from s3contents.errors import NotFound
from s3contents.hybrid.mounts import BucketMount, LocalMount, OtherMount, make_mount


class _Plain(ContentsManager):
    """A manager of no known kind."""


@pytest.mark.parametrize(
    ("cls", "kind", "chunks"),
    [
        (LargeFileManager, LocalMount, True),
        (AsyncLargeFileManager, LocalMount, True),
        (FileContentsManager, LocalMount, False),
        (AsyncFileContentsManager, LocalMount, False),
        (_Plain, OtherMount, False),
    ],
)
def test_each_local_or_other_manager_gets_its_kind_of_mount(
    cls: type, kind: type, chunks: bool, tmp_path: Path
) -> None:
    kwargs: dict[str, Any] = {"root_dir": str(tmp_path)}
    mount = make_mount("m", cls(**kwargs))
    assert type(mount) is kind
    assert mount.takes_chunks is chunks
    assert mount.name == "m"


def test_our_managers_are_bucket_mounts() -> None:
    mount = make_mount("s3", S3ContentsManager(bucket="b", endpoint_url="http://127.0.0.1:9"))
    assert type(mount) is BucketMount and mount.takes_chunks


@pytest.mark.parametrize(
    "rel",
    [
        "",
        "a.txt",
        "sub/a.txt",
        "sub//a.txt",
        "sub/../a.txt",
        "..",
        "../outside.txt",
        "sub/../../outside.txt",
        "a\0b",
        "/etc/passwd",
    ],
)
@pytest.mark.parametrize("root_name", ["local", "local/."])
def test_local_paths_resolve_as_jupyter_server_resolves_them(
    rel: str, root_name: str, tmp_path: Path
) -> None:
    (tmp_path / "local" / "sub").mkdir(parents=True)
    cm = LargeFileManager(root_dir=str(tmp_path / root_name))
    mount = LocalMount("", cm, takes_chunks=True)
    try:
        expected: str | None = cm._get_os_path(rel)
    except HTTPError as err:
        assert err.status_code == 404
        expected = None
    if expected is None:
        with pytest.raises(NotFound):
            mount.os_path(rel)
    else:
        assert mount.os_path(rel) == expected
        assert os.path.isabs(expected)


def test_a_sibling_folder_that_starts_like_the_root_is_outside(tmp_path: Path) -> None:
    (tmp_path / "local").mkdir()
    (tmp_path / "local2").mkdir()
    mount = LocalMount("", LargeFileManager(root_dir=str(tmp_path / "local")), takes_chunks=True)
    with pytest.raises(NotFound):
        mount.os_path("../local2/x.txt")
