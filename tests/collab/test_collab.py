"""Real-time collaboration (jupyter-collaboration) on S3ContentsManager, without a browser.

A Jupyter server in this process runs ``S3ContentsManager`` on the test's prefix of a
SeaweedFS bucket with the two server extensions of jupyter-collaboration:
``jupyter_server_ydoc`` (shared documents, their rooms and the file loader that polls the
contents manager and autosaves) and ``jupyter_server_fileid`` (file ids, kept up to date
from the contents manager's events). Nothing of theirs is configured for S3 beyond the
timings: the file id manager is their default, ``ArbitraryFileIdManager``.

* A file id survives renames done through the REST API (of the file, into a folder, and of
  that folder): ``/api/fileid/path`` answers the new path, the old path has no id.
* A client (pycrdt, the Y protocol over the room's websocket, as JupyterLab speaks it)
  opens a notebook: while it is idle the file loader's polls cost exactly one HEAD each and
  never a GET (counted by the storage adapter, per poll as the contents manager's ``get``
  events count them); an edit is autosaved to the bucket without downloading the notebook
  again; after a rename through the REST API, the open document follows the file: the next
  edit is saved at the new key, with both edits, and nothing is left at the old one.

And the manager itself: the hash asked for after a save is one HEAD (the bytes just written
are remembered by ETag; a change made behind the manager's back is a GET again), and a
rename (a copy in object storage, a new object with a new date) keeps the file's date while
its bytes are unchanged, in a folder rename too.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Provider
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect
from traitlets.config import Config

from s3contents import S3ContentsManager
from tests.support.servers import S3Server

#: Seconds between two polls of an open document (JupyterLab's default is 1).
POLL = 0.25
#: Seconds between an edit and its autosave (default 1): polls come between.
SAVE_DELAY = 1.0
#: The contents manager's events (jupyter_server's schema).
CONTENTS_EVENTS = "https://events.jupyter.org/jupyter_server/contents_service/v1"

NOTEBOOK: dict[str, Any] = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "first",
            "metadata": {},
            "outputs": [],
            "source": "x = 1",
        },
        {
            "cell_type": "markdown",
            "id": "second",
            "metadata": {},
            "source": "notes",
        },
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture
def jp_server_config(s3_config: dict[str, str], tmp_path: Path) -> Config:
    return Config(
        {
            "ServerApp": {
                "contents_manager_class": S3ContentsManager,
                "jpserver_extensions": {
                    "jupyter_server_terminals": False,
                    "jupyter_server_ydoc": True,
                    "jupyter_server_fileid": True,
                },
            },
            "S3ContentsManager": s3_config,
            "YDocExtension": {
                "file_poll_interval": POLL,
                "document_save_delay": SAVE_DELAY,
                "session_store_path": str(tmp_path / "collaboration_sessions.json"),
            },
            # Local state of the extensions, in the test's own folder.
            "SQLiteYStore": {"db_path": str(tmp_path / "ystore.db")},
            "BaseFileIdManager": {"db_path": str(tmp_path / "file_id_manager.db")},
        }
    )


Fetch = Callable[..., Awaitable[Any]]


async def _json(fetch: Fetch, *parts: str, **kwargs: Any) -> Any:
    response = await fetch(*parts, **kwargs)
    return json.loads(response.body.decode()) if response.body else None


async def _put_notebook(fetch: Fetch, path: str) -> None:
    await fetch(
        "api",
        "contents",
        path,
        method="PUT",
        body=json.dumps({"type": "notebook", "content": NOTEBOOK}),
    )


async def _rename(fetch: Fetch, old: str, new: str) -> None:
    await fetch("api", "contents", old, method="PATCH", body=json.dumps({"path": new}))


async def _path_of(fetch: Fetch, file_id: str) -> str | None:
    try:
        answer = await _json(fetch, "api", "fileid", "path", params={"id": file_id})
    except HTTPClientError as err:
        if err.code == 404:
            return None
        raise
    return str(answer["path"])


async def _wait_for(check: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """Call ``check()`` (awaiting its result if it is awaitable) until it returns a true
    value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {result!r})")
        await asyncio.sleep(0.05)


class _Channel:
    """The room's websocket as a pycrdt ``Channel`` (what ``Provider`` reads and writes)."""

    def __init__(self, ws: WebSocketClientConnection, path: str) -> None:
        self._ws = ws
        self._path = path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self) -> _Channel:
        return self

    async def __anext__(self) -> bytes:
        message = await self._ws.read_message()
        if message is None:
            raise StopAsyncIteration
        return message if isinstance(message, bytes) else message.encode()

    async def send(self, message: bytes) -> None:
        await self._ws.write_message(message, binary=True)

    async def recv(self) -> bytes:
        return await self.__anext__()


class _Session:
    """A collaborative client of one notebook: its shared model, kept in sync."""

    def __init__(self, file_id: str, notebook: YNotebook) -> None:
        self.file_id = file_id
        self.notebook = notebook

    def source(self, index: int) -> str:
        return str(self.notebook.ycells[index]["source"])

    def type_in(self, index: int, text: str) -> None:
        source = self.notebook.ycells[index]["source"]
        source.insert(len(source), text)


@pytest.fixture
def open_notebook(
    jp_fetch: Fetch, jp_http_port: int, jp_base_url: str, jp_auth_header: dict[str, str]
) -> Callable[[str], Any]:
    """``async with open_notebook(path) as session``: joins the notebook's room as JupyterLab
    does (a session, then the room's websocket) and waits for the first sync."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def open_(path: str) -> AsyncIterator[_Session]:
        session = await _json(
            jp_fetch,
            "api",
            "collaboration",
            "session",
            path,
            method="PUT",
            body=json.dumps({"format": "json", "type": "notebook"}),
        )
        room = f"json:notebook:{session['fileId']}"
        # The room name goes unescaped, as JupyterLab sends it (``:`` escaped would name
        # another room).
        url = (
            f"ws://127.0.0.1:{jp_http_port}{jp_base_url}api/collaboration/room/{room}"
            f"?sessionId={session['sessionId']}"
        )
        ws = await websocket_connect(HTTPRequest(url, headers=jp_auth_header))
        notebook = YNotebook()
        try:
            async with Provider(notebook.ydoc, _Channel(ws, room)) as provider:
                await asyncio.wait_for(provider.synced.wait(), 20)
                await _wait_for(
                    lambda: notebook.cell_number == len(NOTEBOOK["cells"]),
                    "the notebook's cells in the shared model",
                )
                yield _Session(session["fileId"], notebook)
        finally:
            ws.close()

    return open_


@pytest.fixture
def contents_events(jp_serverapp: Any) -> list[dict[str, Any]]:
    """Every event the contents manager emits from now on (``get``, ``save``, ``rename``...)."""
    seen: list[dict[str, Any]] = []

    async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        seen.append(dict(data))

    jp_serverapp.event_logger.add_listener(schema_id=CONTENTS_EVENTS, listener=listener)
    return seen


# --------------------------------------------------------------------------- file ids


async def test_file_id_survives_renames_through_the_rest_api(jp_fetch: Fetch) -> None:
    await _put_notebook(jp_fetch, "a.ipynb")
    await jp_fetch("api", "contents", "sub", method="PUT", body=json.dumps({"type": "directory"}))
    # Opening a document indexes it: its room is named after the id.
    session = await _json(
        jp_fetch,
        "api",
        "collaboration",
        "session",
        "a.ipynb",
        method="PUT",
        body=json.dumps({"format": "json", "type": "notebook"}),
    )
    file_id = session["fileId"]
    assert (await _json(jp_fetch, "api", "fileid", "id", params={"path": "a.ipynb"}))[
        "id"
    ] == file_id

    for old, new, expected in (
        ("a.ipynb", "b.ipynb", "b.ipynb"),
        ("b.ipynb", "sub/c.ipynb", "sub/c.ipynb"),
        ("sub", "moved", "moved/c.ipynb"),
    ):
        await _rename(jp_fetch, old, new)

        async def follows(expected: str = expected) -> bool:
            return await _path_of(jp_fetch, file_id) == expected

        # The id manager hears of the rename from the contents manager's event.
        await _wait_for(follows, f"file id {file_id} -> {expected}", timeout=10)
        with pytest.raises(HTTPClientError) as missing:
            await jp_fetch("api", "fileid", "id", params={"path": old})
        assert missing.value.code == 404
    moved = await _json(jp_fetch, "api", "contents", "moved/c.ipynb")
    assert moved["content"]["cells"][0]["source"] == "x = 1"


# --------------------------------------------------------------------------- polling, autosave


async def test_polling_costs_one_head_and_autosave_follows_a_rename(
    jp_fetch: Fetch,
    jp_serverapp: Any,
    open_notebook: Callable[[str], Any],
    contents_events: list[dict[str, Any]],
    s3_config: dict[str, str],
    seaweedfs: S3Server,
) -> None:
    cm = jp_serverapp.contents_manager
    stats: Counter[str] = cm.storage.stats
    bucket, prefix = s3_config["bucket"], s3_config["prefix"]

    def stored(path: str) -> list[str] | None:
        """The sources of the notebook's cells as the bucket holds them (boto3)."""
        try:
            body = seaweedfs.admin.get_object(Bucket=bucket, Key=f"{prefix}/{path}")["Body"]
        except seaweedfs.admin.exceptions.NoSuchKey:
            return None
        return ["".join(cell["source"]) for cell in json.loads(body.read())["cells"]]

    await _put_notebook(jp_fetch, "shared.ipynb")
    async with open_notebook("shared.ipynb") as session:
        assert session.source(0) == "x = 1"

        def gets_since(index: int) -> int:
            return sum(e["action"] == "get" for e in contents_events[index:])

        async def quiet() -> tuple[Counter[str], int]:
            """Wait for the next poll to be done; the next request is then a poll interval
            away: (requests so far, events so far) taken then leave no request half counted
            (a request is counted when sent, its ``get`` event emitted when it is done)."""
            seen = len(contents_events)
            await _wait_for(lambda: gets_since(seen), "a poll")
            return Counter(stats), len(contents_events)

        # Idle: every request is a poll's, one HEAD each.
        before, start = await quiet()
        await asyncio.sleep(10 * POLL)
        after, end = await quiet()
        polls = gets_since(start) - gets_since(end)
        assert {e["path"] for e in contents_events[start:end]} == {"shared.ipynb"}
        assert polls >= 5, f"expected about 10 polls in {10 * POLL} s, saw {polls}"
        assert after - before == Counter({"HEAD": polls}), (after - before, polls)
        print(f"\nidle: {polls} polls, requests {dict(after - before)}")

        # An edit is autosaved: a HEAD (is the file still the version loaded?), the PUT
        # (the model's time is the one it keeps with the object), and a HEAD for the hash
        # of what was written; no GET.
        before, start = await quiet()
        session.type_in(0, " + 41")
        await _wait_for(
            lambda: stored("shared.ipynb") == ["x = 1 + 41", "notes"],
            "the edit autosaved in the bucket",
        )

        def saves() -> list[int]:
            events = enumerate(contents_events[start:], start)
            return [i for i, e in events if e["action"] == "save"]

        await _wait_for(saves, "the save's event")
        # The save's last request (the hash) is its next get; polls wait for the save.
        await _wait_for(lambda: gets_since(saves()[0]), "the hash of the saved notebook")
        after, end = await quiet()
        gets = gets_since(start) - gets_since(end)  # the save's two, and polls
        print(f"autosave: requests {dict(after - before)} ({gets - 2} polls among them)")
        assert len(saves()) == 1, contents_events[start:]
        assert after - before == Counter({"HEAD": gets, "PUT": 1}), (after - before, gets)

        # Renamed through the REST API while open, with an edit not saved yet: the document
        # follows the file, and its polls see no change (a rename is a copy, a new object;
        # taken for a change made outside Jupyter, it would reload the notebook from the
        # bucket and drop the edit). The edit is saved at the new key.
        before, start = await quiet()
        session.type_in(1, " and more")
        await _rename(jp_fetch, "shared.ipynb", "renamed.ipynb")
        assert await _path_of(jp_fetch, session.file_id) == "renamed.ipynb"
        await _wait_for(
            lambda: stored("renamed.ipynb") == ["x = 1 + 41", "notes and more"],
            "both edits autosaved at the new key",
        )
        assert stored("shared.ipynb") is None
        # The object is in the bucket a moment before the save's event is emitted.
        await _wait_for(
            lambda: any(e["action"] == "save" for e in contents_events[start:]),
            "the autosave's event",
        )
        # The polls of the renamed file before the autosave: each one saw no change.
        events = contents_events[start:]
        saved_at = next(i for i, e in enumerate(events) if e["action"] == "save")
        new_polls = [
            e for e in events[:saved_at] if e == {"action": "get", "path": "renamed.ipynb"}
        ]
        assert len(new_polls) >= 1, events
        after = Counter(stats)
        assert after["GET"] == before["GET"] == 1, after  # the load, when the room opened


# --------------------------------------------------------------------------- the manager alone


def _body(s3: Any, config: dict[str, str], path: str) -> bytes:
    data: bytes = s3.get_object(Bucket=config["bucket"], Key=f"{config['prefix']}/{path}")[
        "Body"
    ].read()
    return data


async def test_hash_after_a_save_is_one_head(cm: Any, s3: Any, s3_config: dict[str, str]) -> None:
    """What jupyter-collaboration asks for after each autosave costs no download."""
    stats = cm.storage.stats
    await cm.save({"type": "notebook", "content": NOTEBOOK}, "n.ipynb")
    before = Counter(stats)
    model = await cm.get("n.ipynb", content=False, require_hash=True)
    assert Counter(stats) - before == Counter({"HEAD": 1})
    assert model["hash_algorithm"] == "sha256"
    assert model["hash"] == hashlib.sha256(_body(s3, s3_config, "n.ipynb")).hexdigest()
    assert model["content"] is None and model["size"] == len(_body(s3, s3_config, "n.ipynb"))

    # Changed behind the manager's back: the remembered hash is not used.
    other = json.dumps({**NOTEBOOK, "cells": []}).encode()
    s3.put_object(Bucket=s3_config["bucket"], Key=f"{s3_config['prefix']}/n.ipynb", Body=other)
    before = Counter(stats)
    model = await cm.get("n.ipynb", content=False, require_hash=True)
    assert Counter(stats) - before == Counter({"HEAD": 1, "GET": 1})
    assert model["hash"] == hashlib.sha256(other).hexdigest()
    # ... and what that GET hashed is remembered in turn.
    before = Counter(stats)
    assert (await cm.get("n.ipynb", content=False, require_hash=True))["hash"] == model["hash"]
    assert Counter(stats) - before == Counter({"HEAD": 1})


async def test_a_rename_keeps_the_date(cm: Any, s3: Any, s3_config: dict[str, str]) -> None:
    """A renamed file keeps its date (as on a file system) while its bytes are the same."""

    def head(path: str) -> Any:
        return s3.head_object(Bucket=s3_config["bucket"], Key=f"{s3_config['prefix']}/{path}")

    def stored_date(path: str) -> Any:
        """The write time kept with the object, else (written by another tool) its own."""
        found = head(path)
        kept = found["Metadata"].get("s3contents-mtime")
        return datetime.fromisoformat(kept) if kept else found["LastModified"]

    saved = await cm.save({"type": "notebook", "content": NOTEBOOK}, "a.ipynb")
    date = saved["last_modified"]
    await asyncio.sleep(1.1)  # LastModified has whole seconds: the copy is a second newer
    await cm.rename("a.ipynb", "b.ipynb")
    assert head("b.ipynb")["LastModified"] > date  # the copy's own date, in the store
    assert stored_date("b.ipynb") == date  # the write time went with the copy
    assert (await cm.get("b.ipynb", content=False))["last_modified"] == date
    assert (await cm.get("b.ipynb"))["last_modified"] == date
    listed = {e["name"]: e for e in (await cm.get(""))["content"]}
    assert listed["b.ipynb"]["last_modified"] == date

    # Renamed again, into a folder, then the folder: still the first date.
    await cm.save({"type": "directory"}, "d")
    await cm.rename("b.ipynb", "d/c.ipynb")
    await cm.rename("d", "e")
    assert (await cm.get("e/c.ipynb", content=False))["last_modified"] == date

    # Written again (by the manager, or behind its back): the object's own date.
    resaved = await cm.save({"type": "notebook", "content": NOTEBOOK}, "e/c.ipynb")
    assert resaved["last_modified"] == stored_date("e/c.ipynb") > date
    assert (await cm.get("e/c.ipynb", content=False))["last_modified"] == stored_date("e/c.ipynb")
    await asyncio.sleep(1.1)
    await cm.rename("e/c.ipynb", "f.ipynb")
    assert (await cm.get("f.ipynb", content=False))["last_modified"] == resaved["last_modified"]
    other = json.dumps({**NOTEBOOK, "cells": []}).encode()
    s3.put_object(Bucket=s3_config["bucket"], Key=f"{s3_config['prefix']}/f.ipynb", Body=other)
    assert (await cm.get("f.ipynb", content=False))["last_modified"] == stored_date("f.ipynb")
    assert stored_date("f.ipynb") > resaved["last_modified"]
