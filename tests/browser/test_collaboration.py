"""Real-time collaboration in JupyterLab on S3ContentsManager + SeaweedFS, two browsers.

JupyterLab runs with jupyter-collaboration (its server extensions ``jupyter_server_ydoc`` and
``jupyter_server_fileid``, on with their defaults; only the autosave delay is shortened). Two
browser contexts log in with the token, each as its own anonymous user, and open the same
notebook stored in the bucket. A types in the first cell and B sees it; B types in the second
and A sees it; the autosave writes both edits to the object in the bucket (read with boto3).
The notebook is then renamed through the REST API: both pages follow it, and B's next edit is
autosaved at the new key, with the earlier edits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.browser.browser_support import Bucket, Steps
from tests.support.servers import S3Server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

NOTEBOOK = "shared.ipynb"
RENAMED = "shared-renamed.ipynb"
FIRST, SECOND = "a = 1", "b = 2"
BY_A, BY_B, AFTER_RENAME = "  # typed by A", "  # typed by B", "  # after the rename"
#: Seconds between an edit and its autosave (jupyter-collaboration's default is 1).
SAVE_DELAY = 0.5


@pytest.fixture
def two_pages(browser: Any) -> Iterator[tuple[Any, Any, list[str]]]:
    """Two pages in two browser contexts (two sets of cookies: two users), and the uncaught
    errors of both."""
    errors: list[str] = []
    contexts = []
    pages = []
    for _ in range(2):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(30_000)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(f"{error}\n{error.stack}"))
        contexts.append(context)
        pages.append(page)
    try:
        yield pages[0], pages[1], errors
    finally:
        for context in contexts:
            context.close()


def cell_editor(page: Any, index: int) -> Any:
    return page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(index).locator(".cm-content")


def type_at_end(page: Any, index: int, text: str) -> None:
    editor = cell_editor(page, index)
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def sources(bucket: Bucket, path: str) -> list[str] | None:
    """The cells' sources of the notebook in the bucket, or None if it is not there."""
    keys = bucket.keys()
    if path not in keys:
        return None
    return ["".join(cell["source"]) for cell in bucket.notebook(path)["cells"]]


def wait_for_sources(bucket: Bucket, path: str, expected: list[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (found := sources(bucket, path)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} in the bucket: {found!r}, expected {expected!r}")
        time.sleep(0.2)


def test_two_users_edit_one_notebook_in_the_bucket(
    jupyter: Any,
    two_pages: tuple[Any, Any, list[str]],
    seaweedfs: S3Server,
    s3_place: tuple[str, str],
    artifacts: Path,
) -> None:
    page_a, page_b, errors = two_pages
    client = seaweedfs.client()
    try:
        bucket = Bucket(client, *s3_place)
        nb = new_notebook(cells=[new_code_cell(FIRST), new_code_cell(SECOND)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        bucket.put(NOTEBOOK, json.dumps(nb).encode())
        app = jupyter(
            "lab",
            collaborative=True,
            extra_args=[f"--YDocExtension.document_save_delay={SAVE_DELAY}"],
        )
        folder = artifacts / "collaboration"
        steps_a, steps_b = Steps(page_a, folder, "a-"), Steps(page_b, folder, "b-")

        with steps_a("A opens the notebook"):
            page_a.goto(f"{app.url}/lab/tree/{NOTEBOOK}?reset&token={app.token}")
            cell_editor(page_a, 0).get_by_text(FIRST).wait_for(timeout=90_000)
        with steps_b("B opens the same notebook"):
            page_b.goto(f"{app.url}/lab/tree/{NOTEBOOK}?reset&token={app.token}")
            cell_editor(page_b, 1).get_by_text(SECOND).wait_for(timeout=90_000)
            # The same token, two logins: two users (each browser has its own cookie).
            a, b = (p.request.get(f"{app.url}/api/me").json()["identity"] for p in (page_a, page_b))
            assert a["username"] != b["username"], (a, b)

        with steps_a("A types in the first cell"):
            type_at_end(page_a, 0, BY_A)
        with steps_b("B sees it"):
            cell_editor(page_b, 0).get_by_text(FIRST + BY_A).wait_for()

        with steps_b("B types in the second cell"):
            type_at_end(page_b, 1, BY_B)
        with steps_a("A sees it"):
            cell_editor(page_a, 1).get_by_text(SECOND + BY_B).wait_for()
            assert cell_editor(page_a, 0).inner_text() == FIRST + BY_A

        with steps_a("the autosaved object in the bucket holds both edits"):
            wait_for_sources(bucket, NOTEBOOK, [FIRST + BY_A, SECOND + BY_B])

        with steps_a("renamed through the REST API: both pages follow"):
            app.api(f"/api/contents/{NOTEBOOK}", "PATCH", {"path": RENAMED})
            for page in (page_a, page_b):
                tab = page.locator(".lm-DockPanel .lm-TabBar-tab.jp-mod-current")
                tab.get_by_text(RENAMED).wait_for()

        with steps_b("B's next edit is autosaved at the new key"):
            type_at_end(page_b, 1, AFTER_RENAME)
            cell_editor(page_a, 1).get_by_text(SECOND + BY_B + AFTER_RENAME).wait_for()
            wait_for_sources(bucket, RENAMED, [FIRST + BY_A, SECOND + BY_B + AFTER_RENAME])
            keys = bucket.keys()
            assert NOTEBOOK not in keys, keys

        assert errors == []
    finally:
        client.close()
