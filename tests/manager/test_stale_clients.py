"""JupyterLab's conflict check, replayed with two clients on two servers, against local disk.

Before a save JupyterLab asks for the file's model (``get(path, content=False)``) and, when
its ``last_modified`` is newer than the one it loaded or last saved by more than 500 ms,
shows "File Changed" instead of overwriting (``DocumentContext._maybeSave`` in JupyterLab 4).
With whole-second dates a save made by another client up to a second later could carry
the same date and be overwritten silently. Here client A saves, client B (through another
manager: another Jupyter server on the prefix) saves 0-1000 ms later, then A makes
JupyterLab's check. It must warn exactly when JupyterLab warns on local disk (Jupyter's
own manager, the reference): whenever B's save came more than the margin after A's.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

from s3contents.gcs import GCSContentsManager
from tests.support.fixture_helpers import manager_fixtures

make_gcs_cm, _gcs_cm = manager_fixtures(GCSContentsManager, "gcs_config", "make_gcs_cm", "gcs_cm")

#: JupyterLab's margin (ms) before a newer date on disk counts as a change.
MARGIN = 0.5
WAITS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def _text(content: str) -> dict[str, Any]:
    return {"type": "file", "format": "text", "content": content}


async def replay(a: Any, b: Any, path: str, wait: float) -> tuple[bool, tuple[float, float]]:
    """(JupyterLab would warn client A, (least, most) seconds between A's write and B's)."""
    begun = time.monotonic()
    known = (await a.save(_text("A"), path))["last_modified"]
    done = time.monotonic()
    await asyncio.sleep(wait)
    started = time.monotonic()
    await b.save(_text("B"), path)
    ended = time.monotonic()
    disk = (await a.get(path, content=False))["last_modified"]
    warn = (disk - known).total_seconds() > MARGIN
    return warn, (started - done, ended - begun)


def _check(results: list[tuple[float, bool, tuple[float, float]]]) -> None:
    for wait, warn, (least, most) in results:
        if least > MARGIN + 0.05:  # B surely saved after the margin: JupyterLab warns
            assert warn, (wait, least, most)
        if most < MARGIN - 0.05:  # surely within it: no warning, as on local disk
            assert not warn, (wait, least, most)


@pytest.fixture
def local_pair(tmp_path: Path) -> tuple[Any, Any]:
    return AsyncLargeFileManager(root_dir=str(tmp_path)), AsyncLargeFileManager(
        root_dir=str(tmp_path)
    )


async def _run(a: Any, b: Any) -> list[tuple[float, bool, tuple[float, float]]]:
    results = []
    for trial in range(2):
        for wait in WAITS:
            warn, span = await replay(a, b, f"f{trial}-{int(wait * 1000)}.txt", wait)
            results.append((wait, warn, span))
    return results


async def test_local_disk_reference(local_pair: tuple[Any, Any]) -> None:
    results = await _run(*local_pair)
    _check(results)
    assert [w for _, w, (least, _) in results if least > MARGIN + 0.05]  # some warned


async def test_s3_warns_as_local_disk_does(make_cm: Any) -> None:
    a = make_cm()
    b = make_cm(prefix=a.prefix)  # another server on the same prefix
    results = await _run(a, b)
    _check(results)
    assert sum(w for _, w, _ in results) >= 4


async def test_gcs_warns_as_local_disk_does(make_gcs_cm: Any) -> None:
    a = make_gcs_cm()
    b = make_gcs_cm(prefix=a.prefix)
    results = await _run(a, b)
    _check(results)
    assert sum(w for _, w, _ in results) >= 4
