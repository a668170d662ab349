"""Every operation goes through the public, overridable methods, as jupyter_server's own
managers do (issue 16): ``new`` saves through ``save``, ``new_untitled`` creates through
``new``, ``copy`` of a file reads through ``get`` and writes through ``save`` when a
subclass overrides them, ``rename`` through ``rename_file``, ``delete`` through
``delete_file``. A wrapper such as jupytext's contents manager then sees every write.

``exists`` answers an awaitable that also answers ``bool()`` truthfully (jupytext calls it
without ``await``), through a bounded request of its own, warned once in the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nbformat.v4 import new_code_cell, new_notebook
from tornado.web import HTTPError

from s3contents import S3ContentsManager
from s3contents.errors import Unavailable
from s3contents.syncprobe import Existence, SyncProbe


class Recording(S3ContentsManager):
    """Records each call of the public methods a wrapper overrides."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[tuple[str, ...]] = []

    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        self.calls.append(("save", path.strip("/")))
        return await super().save(model, path)

    async def get(self, path: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("get", path.strip("/")))
        return await super().get(path, *args, **kwargs)

    async def new(self, model: dict[str, Any] | None = None, path: str = "") -> dict[str, Any]:
        self.calls.append(("new", path.strip("/")))
        return await super().new(model, path)

    async def rename_file(self, old_path: str, new_path: str) -> None:
        self.calls.append(("rename_file", old_path, new_path))
        await super().rename_file(old_path, new_path)

    async def delete_file(self, path: str) -> None:
        self.calls.append(("delete_file", path))
        await super().delete_file(path)


@pytest.fixture
def make_recording(
    s3_config: dict[str, str], jp_environ: Any, jp_asyncio_loop: asyncio.AbstractEventLoop
) -> Iterator[Callable[..., Recording]]:
    made: list[Recording] = []

    def make(**kwargs: Any) -> Recording:
        cm = Recording(**{**s3_config, **kwargs})
        made.append(cm)
        return cm

    yield make
    for cm in made:
        jp_asyncio_loop.run_until_complete(cm.close())


def _notebook() -> dict[str, Any]:
    return {"type": "notebook", "content": new_notebook(cells=[new_code_cell("x = 1")])}


async def test_new_saves_through_save_and_stays_create_only(
    make_recording: Callable[..., Recording],
) -> None:
    cm = make_recording()
    await cm.exists("")  # the bucket check
    cm.storage.stats.clear()
    model = await cm.new(_notebook(), "a.ipynb")
    assert model["name"] == "a.ipynb" and model["type"] == "notebook"
    # The reply is the subclass's get(content=False), as on local disk, answered from
    # what the save knows: one PUT, no HEAD.
    assert cm.calls == [("new", "a.ipynb"), ("save", "a.ipynb"), ("get", "a.ipynb")]
    assert +cm.storage.stats == {"PUT": 1}
    with pytest.raises(HTTPError) as err:  # new never replaces a file, through save or not
        await cm.new(_notebook(), "a.ipynb")
    assert err.value.status_code == 409
    # An ordinary save of the same path overwrites, as before.
    cm.calls.clear()
    await cm.save(_notebook(), "a.ipynb")
    assert cm.calls == [("save", "a.ipynb"), ("get", "a.ipynb")]


async def test_new_untitled_creates_through_new_and_save(
    make_recording: Callable[..., Recording],
) -> None:
    cm = make_recording()
    first = await cm.new_untitled(type="notebook")
    second = await cm.new_untitled(type="file", ext=".txt")
    assert (first["name"], second["name"]) == ("Untitled.ipynb", "untitled.txt")
    assert cm.calls == [
        ("new", "Untitled.ipynb"),
        ("save", "Untitled.ipynb"),
        ("get", "Untitled.ipynb"),
        ("new", "untitled.txt"),
        ("save", "untitled.txt"),
        ("get", "untitled.txt"),
    ]


async def test_a_listing_makes_each_file_entry_through_get_without_a_request_more(
    make_recording: Callable[..., Recording],
) -> None:
    cm = make_recording()
    await cm.save({"type": "directory"}, "d")
    await cm.save(_notebook(), "d/a.ipynb")
    await cm.save({"type": "file", "format": "text", "content": "t"}, "d/b.txt")
    await cm.save({"type": "directory"}, "d/sub")
    cm.calls.clear()
    cm.storage.stats.clear()
    model = await cm.get("d")
    assert cm.calls == [("get", "d"), ("get", "d/a.ipynb"), ("get", "d/b.txt")]
    assert +cm.storage.stats == {"LIST": 1}
    types = {e["name"]: e["type"] for e in model["content"]}
    assert types == {"a.ipynb": "notebook", "b.txt": "file", "sub": "directory"}


async def test_copy_reads_through_get_and_writes_through_save(
    make_recording: Callable[..., Recording],
) -> None:
    cm = make_recording()
    await cm.save(_notebook(), "a.ipynb")
    cm.calls.clear()
    model = await cm.copy("a.ipynb")
    assert model["name"] == "a-Copy1.ipynb"
    assert ("get", "a.ipynb") in cm.calls and ("save", "a-Copy1.ipynb") in cm.calls
    copied = await cm.get("a-Copy1.ipynb")
    assert copied["content"]["cells"][0]["source"] == "x = 1"
    # To a named path: create-only there too.
    with pytest.raises(HTTPError) as err:
        await cm.copy("a.ipynb", "a-Copy1.ipynb")
    assert err.value.status_code == 409


async def test_copy_without_a_wrapper_is_one_server_side_copy(
    make_cm: Callable[..., S3ContentsManager],
) -> None:
    cm = make_cm()
    await cm.save(_notebook(), "a.ipynb")
    cm.storage.stats.clear()
    await cm.copy("a.ipynb")
    assert cm.storage.stats["COPY"] == 1 and cm.storage.stats["GET"] == 0


async def test_rename_and_delete_go_through_rename_file_and_delete_file(
    make_recording: Callable[..., Recording],
) -> None:
    cm = make_recording()
    await cm.save(_notebook(), "a.ipynb")
    await cm.create_checkpoint("a.ipynb")
    await cm.save({"type": "directory"}, "d")
    await cm.save({"type": "file", "format": "text", "content": "t"}, "d/f.txt")
    cm.calls.clear()
    await cm.rename("a.ipynb", "b.ipynb")
    await cm.rename("d", "e")
    assert cm.calls == [("rename_file", "a.ipynb", "b.ipynb"), ("rename_file", "d", "e")]
    # rename still moves the file's checkpoints, and knows a folder from a file.
    assert len(await cm.list_checkpoints("b.ipynb")) == 1
    assert await cm.file_exists("e/f.txt") and not await cm.dir_exists("d")
    cm.calls.clear()
    await cm.delete("b.ipynb")
    await cm.delete("e")
    assert cm.calls == [("delete_file", "b.ipynb"), ("delete_file", "e")]
    assert await cm.list_checkpoints("b.ipynb") == []
    assert not await cm.exists("b.ipynb") and not await cm.exists("e")


async def test_exists_is_awaitable_and_answers_bool_truthfully(
    make_cm: Callable[..., S3ContentsManager], caplog: pytest.LogCaptureFixture
) -> None:
    cm = make_cm()
    await cm.save(_notebook(), "a.ipynb")
    await cm.save({"type": "directory"}, "d")
    for path, there in [("a.ipynb", True), ("d", True), ("", True), ("nope.ipynb", False)]:
        assert await cm.exists(path) is there
    caplog.set_level(logging.WARNING)
    # On the event loop's own thread, un-awaited, as jupytext asks.
    answers = {p: bool(cm.exists(p)) for p in ["a.ipynb", "d", "", "nope.ipynb", "d/x.py"]}
    assert answers == {"a.ipynb": True, "d": True, "": True, "nope.ipynb": False, "d/x.py": False}
    warned = [r for r in caplog.records if "without await" in r.getMessage()]
    assert len(warned) == 1  # once per manager, not per call
    # The separate connection sees the same store: a file saved now is there at once.
    await cm.save({"type": "file", "format": "text", "content": ""}, "d/x.py")
    assert cm.exists("d/x.py")
    # A path out of bounds is the same error either way.
    with pytest.raises(HTTPError) as awaited:
        await cm.exists("../up")
    with pytest.raises(HTTPError) as asked:
        bool(cm.exists("../up"))
    assert asked.value.status_code == awaited.value.status_code >= 400


async def test_questions_asked_in_one_turn_share_one_listing(
    make_cm: Callable[..., S3ContentsManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    """jupytext's free-name search: ~50 un-awaited ``exists`` per candidate name, all in one
    turn of the event loop, cost one LIST (not a HEAD and a LIST each); a name that is a
    folder gets the exact check, and the next turn lists afresh."""
    cm = make_cm()
    await cm.save({"type": "directory"}, "sub")
    await cm.save(_notebook(), "sub/Untitled.ipynb")
    await cm.save({"type": "file", "format": "text", "content": ""}, "sub/Untitled1.py")
    await cm.save({"type": "directory"}, "sub/Untitled.md")
    await cm.save({"type": "file", "format": "text", "content": ""}, "sub/Untitledness.txt")
    probe = cm.sync_probe
    runs: list[str] = []
    real_run = probe.run

    def counted(func: Any) -> Any:
        runs.append("run")
        return real_run(func)

    monkeypatch.setattr(probe, "run", counted)
    extensions = [f".{n}" for n in ("ipynb", "py", "R", "jl", "md", "txt", *map(str, range(44)))]
    names = [f"sub/Untitled{i}{ext}" for i in ("", "1", "2") for ext in extensions]
    answers = {name: bool(cm.exists(name)) for name in names}
    there = {name for name, yes in answers.items() if yes}
    assert there == {"sub/Untitled.ipynb", "sub/Untitled1.py", "sub/Untitled.md"}
    assert len(runs) == 2  # one LIST for all 150; the folder "Untitled.md" checked exactly
    assert bool(cm.exists("sub/Untitledness.txt")) and len(runs) == 2
    # Another folder, then the next turn: listed again, and a file saved since is seen.
    assert not cm.exists("Untitled.ipynb") and len(runs) == 3
    await cm.save({"type": "file", "format": "text", "content": ""}, "sub/Untitled2.py")
    assert cm.exists("sub/Untitled2.py") and len(runs) == 4
    assert not cm.exists("sub/Untitled2.ipynb") and len(runs) == 4


async def test_the_blocking_variant_keeps_a_blocking_exists() -> None:
    from s3contents.blocking import blocking_variant

    variant = blocking_variant(S3ContentsManager)
    assert "exists" in variant._blocking_impls  # type: ignore[attr-defined]


class _SlowStorage:
    async def head(self, key: str) -> None:
        await asyncio.sleep(30)

    async def close(self) -> None:
        pass


def test_a_sync_answer_is_bounded_and_never_guessed() -> None:
    probe = SyncProbe(lambda: _SlowStorage(), timeout=0.3)  # type: ignore[arg-type,return-value]
    began = time.monotonic()
    with pytest.raises(Unavailable):
        probe.run(lambda storage: storage.head("k"))
    assert time.monotonic() - began < 5
    probe.close()


def test_existence_made_no_coroutine_when_only_asked_bool() -> None:
    made: list[str] = []

    async def check() -> bool:
        return True

    def factory() -> Any:
        made.append("coroutine")
        return check()

    answer = Existence(factory, lambda: False)
    assert not answer and not answer  # asked twice, answered once
    assert made == []


async def test_a_save_reply_through_get_is_the_new_file_after_a_put_handlers_question(
    make_recording: Callable[..., Recording],
) -> None:
    cm = make_recording()
    await cm.save({"type": "file", "format": "text", "content": "old"}, "a.txt")
    # jupyter_server's PUT handler asks file_exists first (its answer is handed over to the
    # save), then saves: the reply, made by get, is the file just written, not the old one.
    assert await cm.file_exists("a.txt")
    reply = await cm.save({"type": "file", "format": "text", "content": "newer"}, "a.txt")
    assert reply["size"] == len("newer")
    stat = await cm.get("a.txt", content=False)
    assert (reply["size"], reply["last_modified"]) == (stat["size"], stat["last_modified"])
