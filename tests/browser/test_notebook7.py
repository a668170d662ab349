"""Notebook 7 on S3ContentsManager + SeaweedFS, driven in headless Chromium.

The tree opens; a notebook made from its "New" menu (in a new browser tab) runs
``print(6*7)``, is saved, renamed from its title, and reopened from the tree with source and
output intact. Every step checks the page and the bucket, and leaves a screenshot.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.browser_support import Bucket, JupyterApp, Steps, run_first_cell
from tests.support.servers import S3Server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

NOTEBOOK = "Untitled.ipynb"
RENAMED = "nb7-results.ipynb"

# A regression check: Notebook 7 sets its page config's preferredPath from
# ServerApp.preferred_dir (the working directory by default) taken relative to the contents
# manager's root_dir. With a root_dir of "/" the tree asked S3ContentsManager for
# /api/contents/<cwd without its leading slash> and showed "Directory not found"; the manager's
# root_dir now mirrors the server's, so the tree opens at "/".
DIRECTORY_NOT_FOUND = (
    'Notebook 7\'s tree shows "Directory not found" (preferredPath outside the bucket: '
    "see test_notebook7.py)"
)

#: Uncaught errors of Notebook 7's own pages, the same with its default FileContentsManager
#: (notebook 7.6): a settings plugin reading a schema that failed to load, and the tree's
#: "New > Notebook" disposing of a session context it had started for the new notebook.
UPSTREAM_PAGE_ERRORS = ("Cannot read properties of undefined (reading 'schema')", "Disposed (on ")


def listing_item(page: Any, name: str) -> Any:
    return page.locator("#filebrowser .jp-DirListing-item").filter(
        has=page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$"))
    )


def dismiss_directory_not_found(tree: Any) -> bool:
    """Close the "Directory not found" dialog if the tree shows it (``DIRECTORY_NOT_FOUND``).

    It comes once the tree's first requests are answered: wait until the network is quiet,
    then give the dialog a moment to render.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with contextlib.suppress(PlaywrightTimeout):
        tree.wait_for_load_state("networkidle", timeout=15_000)
    dialog = tree.locator(".jp-Dialog-content", has_text="Directory not found")
    try:
        dialog.wait_for(timeout=1_500)
    except PlaywrightTimeout:
        return False
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="detached")
    return True


def source_of_first_cell(saved: dict[str, Any]) -> str:
    return "".join(saved["cells"][0]["source"])


def run_notebook7_scenario(page: Any, app: JupyterApp, bucket: Bucket, steps: Steps) -> list[str]:
    """Returns the known problems seen on the way (see ``DIRECTORY_NOT_FOUND``)."""
    problems: list[str] = []
    tree = page
    context = page.context

    with steps("tree opens"):
        tree.goto(f"{app.url}/tree?token={app.token}")
        tree.locator("#filebrowser .jp-DirListing-content").wait_for(timeout=90_000)
        tree.locator('[data-jp-item-name="new-dropdown"]').wait_for()
        if dismiss_directory_not_found(tree):
            problems.append(DIRECTORY_NOT_FOUND)
        assert listing_item(tree, NOTEBOOK).count() == 0
        assert bucket.keys() == set()

    with steps("new notebook from the New menu"):
        tree.locator('[data-jp-item-name="new-dropdown"] .lm-MenuBar-item').click()
        with context.expect_page() as opened:
            tree.locator('.lm-Menu-item[data-command="notebook:create-new"]').first.click()
        page = opened.value
        steps.page = page
        page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first.wait_for(timeout=60_000)
        page.wait_for_url(re.compile(f"/notebooks/{re.escape(NOTEBOOK)}"))
        assert page.locator("#jp-title h1").inner_text() == NOTEBOOK[: -len(".ipynb")]
        bucket.wait_for(lambda keys: NOTEBOOK in keys, f"{NOTEBOOK} created")

    with steps("edit and run a cell"):
        assert run_first_cell(page, "print(6*7)") == "42"
        assert "print(6*7)" not in bucket.get(NOTEBOOK).decode()  # not saved yet

    with steps("save"):
        page.keyboard.press("Control+s")
        saved = bucket.wait_for(
            lambda keys: (
                bucket.notebook(NOTEBOOK)
                if source_of_first_cell(bucket.notebook(NOTEBOOK)) == "print(6*7)"
                else None
            ),
            "the saved notebook has the cell",
        )
        assert saved["cells"][0]["outputs"][0]["text"] in ("42\n", ["42\n"])
        page.locator(".jp-NotebookCheckpoint", has_text="Last Checkpoint").wait_for()

    with steps("rename from the title"):
        page.locator("#jp-title h1").click()
        dialog = page.locator(".jp-Dialog-content", has_text="Rename File")
        dialog.locator("input").fill(RENAMED)
        dialog.get_by_role("button", name="Rename").click()
        dialog.wait_for(state="detached")
        page.wait_for_url(re.compile(f"/notebooks/{re.escape(RENAMED)}"))
        page.locator("#jp-title h1", has_text=RENAMED[: -len(".ipynb")]).wait_for()
        keys = bucket.wait_for(lambda keys: RENAMED in keys and NOTEBOOK not in keys, "renamed")
        assert f".ipynb_checkpoints/{RENAMED[: -len('.ipynb')]}-checkpoint.ipynb" in keys
        assert source_of_first_cell(bucket.notebook(RENAMED)) == "print(6*7)"

    with steps("reopen from the tree"):
        page.close()
        steps.page = tree
        tree.bring_to_front()
        tree.reload()
        tree.locator("#filebrowser .jp-DirListing-content").wait_for(timeout=90_000)
        dismiss_directory_not_found(tree)
        item = listing_item(tree, RENAMED)
        item.wait_for(timeout=60_000)
        assert listing_item(tree, NOTEBOOK).count() == 0
        with context.expect_page() as opened:
            item.dblclick()
        page = opened.value
        steps.page = page
        page.wait_for_url(re.compile(f"/notebooks/{re.escape(RENAMED)}"))
        cell = page.locator(".jp-NotebookPanel .jp-Cell").first
        cell.locator(".cm-content").get_by_text("print(6*7)").wait_for(timeout=60_000)
        assert cell.locator(".jp-OutputArea-output").first.inner_text().strip() == "42"
        keys = bucket.keys()
        assert RENAMED in keys and NOTEBOOK not in keys
    return problems


def test_notebook7(jupyter: Any, page: Any, seaweedfs: S3Server, artifacts: Path) -> None:
    """The scenario passes without the "Directory not found" dialog (DIRECTORY_NOT_FOUND)."""
    app = jupyter("notebook")
    client = seaweedfs.client()
    try:
        bucket = Bucket(client, app.bucket, app.prefix)
        steps = Steps(page, artifacts / "notebook7")
        problems = run_notebook7_scenario(page, app, bucket, steps)
    finally:
        client.close()
    assert [e for e in page.s3c_errors if not e.startswith(UPSTREAM_PAGE_ERRORS)] == []
    assert problems == []
