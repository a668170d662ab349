"""``serverhooks.freeze_loaded_objects``: what the server loaded leaves the collector's
full collections, now and once more later; the extension's start hook calls it."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from s3contents import serverext, serverhooks


@pytest.fixture(autouse=True)
def unfrozen() -> Any:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test process collects as usual


def test_objects_alive_are_frozen_now_and_again_later() -> None:
    async def run() -> tuple[int, int]:
        serverhooks.freeze_loaded_objects(again_after=0.05)
        first = gc.get_freeze_count()
        loaded_later = [[i] for i in range(10000)]  # what the first requests load
        await asyncio.sleep(0.3)
        assert loaded_later
        return first, gc.get_freeze_count()

    first, later = asyncio.run(run())
    assert first > 1000
    assert later >= first + 9000


def test_the_extension_freezes_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    called: list[bool] = []
    monkeypatch.setattr(serverext, "freeze_loaded_objects", lambda: called.append(True))
    monkeypatch.setattr(serverext, "managers_of", lambda app: [])
    monkeypatch.setattr(serverext, "stop_on_sigint", lambda app: False)
    ext: Any = object.__new__(serverext.S3ContentsExtension)
    asyncio.run(serverext.S3ContentsExtension._start_jupyter_server_extension(ext, object()))
    assert called == [True]
