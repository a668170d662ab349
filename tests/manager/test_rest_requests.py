"""Storage requests of whole REST requests, as a client makes them (issue 14's floors).

jupyter_server's handlers make more than one manager call per request (a ``PUT`` asks
``file_exists`` before it saves or creates, a ``PATCH`` asks ``get`` after it renames):
these count every storage request the server's manager sends for one HTTP request, on
SeaweedFS and on fake-gcs-server (the same floors: GCS's JSON API allows them), through
``storage.stats``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections import Counter
from typing import Any

import pytest
from traitlets.config import Config

from s3contents import S3ContentsManager

MIB = 1024 * 1024

#: Every test on SeaweedFS and on fake-gcs-server: the same floors where GCS's API allows.
pytestmark = pytest.mark.parametrize("jp_server_config", ["s3", "gcs"], indirect=True)


def _stats(app: Any) -> Counter[str]:
    cm: S3ContentsManager = app.contents_manager
    return cm.storage.stats


async def _counted(app: Any, request: Any) -> tuple[Any, Counter[str]]:
    stats = _stats(app)
    stats.clear()
    response = await request
    return response, +stats


@pytest.fixture
def jp_server_config(request: Any, extra_cm_config: dict[str, Any]) -> Config:
    """The server of ``s3_config`` (SeaweedFS), or of ``gcs_config`` (fake-gcs-server) for
    a test parametrized indirectly with ``"gcs"``."""
    backend = getattr(request, "param", "s3")
    if backend == "gcs":
        from s3contents.gcs import GCSContentsManager

        manager: type = GCSContentsManager
        config = request.getfixturevalue("gcs_config")
    else:
        manager, config = S3ContentsManager, request.getfixturevalue("s3_config")
    return Config(
        {
            "ServerApp": {
                "contents_manager_class": manager,
                "jpserver_extensions": {"jupyter_server_terminals": False},
            },
            manager.__name__: {**config, **extra_cm_config},
        }
    )


async def test_create_a_folder_is_the_handlers_head_and_one_put(
    jp_fetch: Any, jp_serverapp: Any
) -> None:
    await jp_fetch("api", "contents")  # the first request checks the bucket
    r, used = await _counted(
        jp_serverapp,
        jp_fetch("api", "contents", "new-folder", method="PUT", body='{"type": "directory"}'),
    )
    assert r.code == 201
    model = json.loads(r.body)
    assert model["type"] == "directory" and model["last_modified"]
    # The HEAD is the handler's file_exists; the folder's marker is the PUT. No second HEAD
    # (handed over), no LIST for the model (its date is the marker's write time).
    assert used == Counter({"HEAD": 1, "PUT": 1})
    listed = json.loads((await jp_fetch("api", "contents")).body)
    assert "new-folder" in {e["name"] for e in listed["content"]}


async def test_a_folder_over_a_file_is_refused_without_a_second_head(
    jp_fetch: Any, jp_serverapp: Any
) -> None:
    await jp_fetch(
        "api",
        "contents",
        "taken",
        method="PUT",
        body='{"type": "file", "format": "text", "content": "x"}',
    )
    r, used = await _counted(
        jp_serverapp,
        jp_fetch(
            "api",
            "contents",
            "taken",
            method="PUT",
            body='{"type": "directory"}',
            raise_error=False,
        ),
    )
    assert r.code == 400
    assert used == Counter({"HEAD": 1})


async def test_rename_answers_its_model_without_a_head(jp_fetch: Any, jp_serverapp: Any) -> None:
    body = '{"type": "file", "format": "text", "content": "hello"}'
    await jp_fetch("api", "contents", "a.txt", method="PUT", body=body)
    await jp_fetch("api", "contents", "w.txt", method="PUT", body=body)
    # The first rename of a process asks the store once whether it honours create-only
    # copies (s3contents.traits): 2 PUT, COPY, DELETE, LIST, and on SeaweedFS a DELETE.
    r, first = await _counted(
        jp_serverapp,
        jp_fetch("api", "contents", "w.txt", method="PATCH", body='{"path": "w2.txt"}'),
    )
    traits = await jp_serverapp.contents_manager.store_traits.get()
    head_new = 0 if traits.create_only_copy else 1  # fake-gcs-server ignores the condition
    entries = 1 if traits.keeps_emptied_folders else 0  # SeaweedFS's emptied folder
    assert first == Counter(
        {"HEAD": 1 + head_new, "PUT": 2, "COPY": 3, "DELETE": 2 + entries, "LIST": 1}
    )
    r, used = await _counted(
        jp_serverapp,
        jp_fetch("api", "contents", "a.txt", method="PATCH", body='{"path": "b.txt"}'),
    )
    model = json.loads(r.body)
    assert model["path"] == "b.txt" and model["size"] == 5
    # HEAD a.txt (its version), create-only COPY (SeaweedFS honours it: no HEAD of b.txt),
    # conditional DELETE, COPY of a checkpoint (none: 404); the answer's model comes from
    # what the rename knew, not from a HEAD.
    assert used == Counter({"HEAD": 1 + head_new, "COPY": 2, "DELETE": 1})
    again = json.loads((await jp_fetch("api", "contents", "b.txt", params={"content": "0"})).body)
    assert again["last_modified"] == model["last_modified"]


async def test_new_untitled_and_save(jp_fetch: Any, jp_serverapp: Any) -> None:
    await jp_fetch("api", "contents")
    r, used = await _counted(
        jp_serverapp, jp_fetch("api", "contents", method="POST", body='{"type": "notebook"}')
    )
    assert r.code == 201
    assert used == Counter({"LIST": 1, "PUT": 1})  # the free name, a create-only PUT
    model = json.loads(r.body)
    nb = json.loads((await jp_fetch("api", "contents", model["path"])).body)
    r, used = await _counted(
        jp_serverapp,
        jp_fetch("api", "contents", model["path"], method="PUT", body=json.dumps(nb)),
    )
    assert r.code == 200
    assert used == Counter({"HEAD": 1, "PUT": 1})  # the handler's file_exists, the save


@pytest.mark.parametrize("extra_cm_config", [{"upload_part_size": 5 * MIB}], indirect=True)
@pytest.mark.parametrize("size", [11 * MIB + 333, 10 * MIB], ids=["5+5+1", "5+5"])
async def test_a_chunked_upload_costs_its_parts_not_its_chunks(
    jp_fetch: Any, jp_serverapp: Any, size: int
) -> None:
    # JupyterLab's upload: 1 MiB chunks 1, 2, ..., -1, base64, one PUT each.
    await jp_fetch("api", "contents")  # the first request checks the bucket
    data = os.urandom(size)
    pieces = [data[i : i + MIB] for i in range(0, len(data), MIB)]
    stats = _stats(jp_serverapp)
    stats.clear()
    statuses = []
    for number, piece in enumerate(pieces, start=1):
        chunk = -1 if number == len(pieces) else number
        body = {"type": "file", "format": "base64", "chunk": chunk}
        body["content"] = base64.b64encode(piece).decode()
        r = await jp_fetch("api", "contents", "up.bin", method="PUT", body=json.dumps(body))
        statuses.append(r.code)
    used = +stats
    assert statuses == [201] * len(pieces)  # a new file: 201 Created for every chunk
    parts = -(-size // (5 * MIB))
    if jp_serverapp.contents_manager.storage.provider == "gcs":
        # The handler's file_exists at chunk 1 (201 or 200), the resumable session, one
        # PUT per part: the last carries the total size and answers the object (no HEAD).
        assert used == Counter({"HEAD": 1, "POST": 1, "PUT": parts})
    else:
        # The handler's HEAD at chunk 1, CreateMultipartUpload, the parts,
        # CompleteMultipartUpload, and a HEAD for the object's time (S3's answer to the
        # completion has none; the model must be what a later request reads).
        assert used == Counter({"HEAD": 2, "POST": 2, "PUT": parts})
    model = json.loads(r.body)
    got = json.loads((await jp_fetch("api", "contents", "up.bin", params={"content": "0"})).body)
    assert model == got and model["size"] == len(data)
    stored = await jp_fetch("files", "up.bin")
    assert hashlib.sha256(stored.body).digest() == hashlib.sha256(data).digest()
