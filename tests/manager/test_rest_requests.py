"""Storage requests of whole REST requests, as a client makes them (issue 14's floors).

jupyter_server's handlers make more than one manager call per request (a ``PUT`` asks
``file_exists`` before it saves or creates, a ``PATCH`` asks ``get`` after it renames):
these count every storage request the server's manager sends for one HTTP request, on
SeaweedFS, through ``storage.stats``.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from s3contents import S3ContentsManager


def _stats(app: Any) -> Counter[str]:
    cm: S3ContentsManager = app.contents_manager
    return cm.storage.stats


async def _counted(app: Any, request: Any) -> tuple[Any, Counter[str]]:
    stats = _stats(app)
    stats.clear()
    response = await request
    return response, +stats


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
    assert first == Counter({"HEAD": 1, "PUT": 2, "COPY": 3, "DELETE": 3, "LIST": 1})
    r, used = await _counted(
        jp_serverapp,
        jp_fetch("api", "contents", "a.txt", method="PATCH", body='{"path": "b.txt"}'),
    )
    model = json.loads(r.body)
    assert model["path"] == "b.txt" and model["size"] == 5
    # HEAD a.txt (its version), create-only COPY (SeaweedFS honours it: no HEAD of b.txt),
    # conditional DELETE, COPY of a checkpoint (none: 404); the answer's model comes from
    # what the rename knew, not from a HEAD.
    assert used == Counter({"HEAD": 1, "COPY": 2, "DELETE": 1})
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
