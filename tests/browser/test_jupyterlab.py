"""JupyterLab on S3ContentsManager + SeaweedFS, driven in headless Chromium.

One scenario, step by step; every step checks the page and the bucket (boto3), and leaves a
screenshot in the run's artifacts folder: the file browser loads; a notebook made from the
launcher runs ``print(6*7)``; it is saved, reopened after a reload with source and output;
renamed; moved into a new folder by drag and drop; a small and a 20 MB file (a chunked upload)
are uploaded and downloaded back through ``/files/``; a change made behind the browser's back
raises "File Changed" on save; a file and a non-empty folder are deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.browser_support import Bucket, JupyterApp, Steps, run_first_cell
from tests.support.servers import S3Server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

NOTEBOOK = "Untitled.ipynb"
RENAMED = "results.ipynb"
FOLDER = "analysis"
SMALL = "notes.txt"
LARGE = "large.bin"
LARGE_SIZE = 20 * 1024 * 1024
#: Object storage has no trash: the dialog says "Delete" (delete_to_trash is False).
DELETE_BUTTON = re.compile("^Delete$")


# --------------------------------------------------------------------------- page helpers


def listing_item(page: Any, name: str) -> Any:
    """The file browser's row for ``name`` in the folder it shows."""
    return page.locator("#filebrowser .jp-DirListing-item").filter(
        has=page.locator(".jp-DirListing-itemText", has_text=re.compile(f"^{re.escape(name)}$"))
    )


def open_folder(page: Any, name: str) -> None:
    listing_item(page, name).dblclick()
    page.locator("#filebrowser .jp-BreadCrumbs").get_by_text(name).wait_for()


def go_home(page: Any, expect: str) -> None:
    """Show the root folder in the file browser, and wait for its item ``expect``."""
    page.locator("#filebrowser .jp-BreadCrumbs-home").click()
    listing_item(page, expect).wait_for()


def context_command(page: Any, name: str, command: str) -> None:
    """Right-click ``name`` in the file browser and choose the menu item running ``command``."""
    listing_item(page, name).click(button="right")
    page.locator(f'.lm-Menu-item[data-command="{command}"]').click()


def current_notebook(page: Any) -> Any:
    return page.locator(".jp-NotebookPanel:visible")


def wait_saved(page: Any) -> None:
    """The current tab is no longer marked dirty."""
    page.locator(".lm-DockPanel .lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)").wait_for()


def save(page: Any) -> None:
    """Ctrl+S, then wait until the tab is clean. A key press the page had no focus for
    (seen once in CI: no request, no dialog, the tab still dirty) is sent again, at most
    twice; a save that fails or hangs still fails the test."""
    clean = page.locator(".lm-DockPanel .lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)")
    for attempt in range(3):
        page.keyboard.press("Control+s")
        try:
            clean.wait_for(timeout=10_000 * (attempt + 1))
            return
        except Exception:  # playwright's TimeoutError
            if attempt == 2:
                raise
            print(f"Ctrl+S again (attempt {attempt + 2}): the tab is still dirty")


def dialog(page: Any) -> Any:
    return page.locator(".jp-Dialog-content")


# --------------------------------------------------------------------------- the scenario


def run_lab_scenario(page: Any, app: JupyterApp, bucket: Bucket, steps: Steps, tmp: Path) -> None:
    with steps("file browser loads"):
        page.goto(f"{app.url}/lab?reset&token={app.token}")
        page.locator("#filebrowser .jp-DirListing-content").wait_for(timeout=90_000)
        page.locator(".jp-LauncherCard").first.wait_for(timeout=60_000)
        assert listing_item(page, NOTEBOOK).count() == 0
        assert bucket.keys() == set()

    with steps("new notebook from the launcher"):
        page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
        current_notebook(page).locator(".jp-Cell .cm-content").first.wait_for()
        listing_item(page, NOTEBOOK).wait_for()
        bucket.wait_for(lambda keys: NOTEBOOK in keys, f"{NOTEBOOK} created")

    with steps("type and run a cell"):
        assert run_first_cell(page, "print(6*7)") == "42"
        # Not saved yet: the bucket still has the notebook as created.
        assert "print(6*7)" not in bucket.get(NOTEBOOK).decode()

    with steps("save"):
        save(page)
        saved = bucket.notebook(NOTEBOOK)
        assert "".join(saved["cells"][0]["source"]) == "print(6*7)"
        assert saved["cells"][0]["outputs"][0]["text"] in ("42\n", ["42\n"])
        bucket.wait_for(
            lambda keys: f".ipynb_checkpoints/{NOTEBOOK[:-6]}-checkpoint.ipynb" in keys,
            "checkpoint made on the first save",
        )

    with steps("reload and reopen"):
        stored = bucket.get(NOTEBOOK)
        page.goto(f"{app.url}/lab?reset")
        listing_item(page, NOTEBOOK).dblclick()
        cell = current_notebook(page).locator(".jp-Cell").first
        cell.locator(".cm-content").get_by_text("print(6*7)").wait_for()
        output = current_notebook(page).locator(".jp-OutputArea-output").first
        assert output.inner_text().strip() == "42"
        assert bucket.get(NOTEBOOK) == stored  # opening wrote nothing

    with steps("rename in the file browser"):
        context_command(page, NOTEBOOK, "filebrowser:rename")
        editor = page.locator("#filebrowser input.jp-DirListing-editor")
        editor.fill(RENAMED)
        editor.press("Enter")
        listing_item(page, RENAMED).wait_for()
        assert listing_item(page, NOTEBOOK).count() == 0
        page.locator(".lm-DockPanel .lm-TabBar-tab.jp-mod-current").get_by_text(RENAMED).wait_for()
        keys = bucket.wait_for(lambda keys: RENAMED in keys and NOTEBOOK not in keys, "renamed")
        assert f".ipynb_checkpoints/{RENAMED[:-6]}-checkpoint.ipynb" in keys
        assert "".join(bucket.notebook(RENAMED)["cells"][0]["source"]) == "print(6*7)"

    with steps("new folder"):
        page.locator('#filebrowser [data-command="filebrowser:create-new-directory"]').click()
        editor = page.locator("#filebrowser input.jp-DirListing-editor")
        editor.fill(FOLDER)
        editor.press("Enter")
        listing_item(page, FOLDER).wait_for()
        bucket.wait_for(lambda keys: f"{FOLDER}/.s3keep" in keys, "folder marker written")

    with steps("drag the notebook into the folder"):
        source = listing_item(page, RENAMED).locator(".jp-DirListing-itemText")
        target = listing_item(page, FOLDER).locator(".jp-DirListing-itemText")
        source.hover()
        page.mouse.down()
        box = target.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=12)
        page.mouse.up()
        listing_item(page, RENAMED).wait_for(state="detached")
        moved = f"{FOLDER}/{RENAMED}"
        bucket.wait_for(lambda keys: moved in keys and RENAMED not in keys, "notebook moved")
        open_folder(page, FOLDER)
        listing_item(page, RENAMED).wait_for()

    small = tmp / SMALL
    small.write_text("A small file uploaded through JupyterLab.\n")
    large = tmp / LARGE
    large.write_bytes(os.urandom(LARGE_SIZE))

    with steps("upload a small and a 20 MB file"):
        with page.expect_file_chooser() as chooser:
            page.locator("#filebrowser .jp-id-upload").click()
        puts: list[str] = []
        page.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
        chooser.value.set_files([str(small), str(large)])
        # JupyterLab asks before uploading a file over 15 MB, then sends it in 1 MB chunks.
        dialog(page).get_by_text("Large file size warning").wait_for()
        dialog(page).get_by_role("button", name="Upload").click()
        listing_item(page, SMALL).wait_for()
        listing_item(page, LARGE).wait_for(timeout=90_000)
        chunks = [url for url in puts if url.split("?")[0].endswith(f"/{FOLDER}/{LARGE}")]
        assert len(chunks) >= 20, chunks
        bucket.wait_for(lambda keys: {f"{FOLDER}/{SMALL}", f"{FOLDER}/{LARGE}"} <= keys, "uploads")
        assert bucket.get(f"{FOLDER}/{SMALL}") == small.read_bytes()
        stored = bucket.get(f"{FOLDER}/{LARGE}")
        assert len(stored) == LARGE_SIZE
        assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(large.read_bytes()).hexdigest()

    with steps("download through /files/"):
        digest = page.evaluate(
            """async (url) => {
                const response = await fetch(url);
                if (!response.ok) return `HTTP ${response.status}`;
                const body = await response.arrayBuffer();
                const hash = await crypto.subtle.digest("SHA-256", body);
                return Array.from(new Uint8Array(hash))
                    .map((b) => b.toString(16).padStart(2, "0")).join("");
            }""",
            f"{app.url}/files/{FOLDER}/{LARGE}",
        )
        assert digest == hashlib.sha256(bucket.get(f"{FOLDER}/{LARGE}")).hexdigest()
        assert digest == hashlib.sha256(large.read_bytes()).hexdigest()
        assert app.get_bytes(f"/files/{FOLDER}/{SMALL}") == small.read_bytes()

    with steps("File Changed dialog on a change behind the browser's back"):
        path = f"{FOLDER}/{RENAMED}"
        behind = bucket.notebook(path)
        behind["cells"].append(
            {"cell_type": "markdown", "id": "behind", "metadata": {}, "source": "changed by boto3"}
        )
        bucket.put(path, json.dumps(behind).encode())
        cell = current_notebook(page).locator(".jp-Cell .cm-content").first
        cell.click()
        page.keyboard.press("End")
        page.keyboard.type("  # edited")
        page.keyboard.press("Control+s")
        dialog(page).locator(".jp-Dialog-header").get_by_text("File Changed").wait_for()
        page.screenshot(path=str(steps.folder / f"{steps.count:02d}-file-changed-dialog.png"))
        dialog(page).get_by_role("button", name="Overwrite").click()
        dialog(page).wait_for(state="detached")
        wait_saved(page)
        saved = bucket.notebook(path)
        assert "".join(saved["cells"][0]["source"]) == "print(6*7)  # edited"
        assert all(c.get("id") != "behind" for c in saved["cells"])

    with steps("delete a file"):
        context_command(page, SMALL, "filebrowser:delete")
        asked = dialog(page).inner_text()
        assert "permanently delete" in asked and "trash" not in asked.lower(), asked
        dialog(page).get_by_role("button", name=DELETE_BUTTON).click()
        listing_item(page, SMALL).wait_for(state="detached")
        bucket.wait_for(lambda keys: f"{FOLDER}/{SMALL}" not in keys, "file deleted")

    with steps("delete a non-empty folder"):
        go_home(page, FOLDER)
        context_command(page, FOLDER, "filebrowser:delete")
        dialog(page).get_by_role("button", name=DELETE_BUTTON).click()
        listing_item(page, FOLDER).wait_for(state="detached")
        bucket.wait_for(
            lambda keys: not any(k.startswith(f"{FOLDER}/") for k in keys), "folder deleted"
        )


def test_jupyterlab(
    jupyter: Any, page: Any, seaweedfs: S3Server, artifacts: Path, tmp_path: Path
) -> None:
    app = jupyter("lab")
    client = seaweedfs.client()
    try:
        bucket = Bucket(client, app.bucket, app.prefix)
        steps = Steps(page, artifacts / "jupyterlab")
        run_lab_scenario(page, app, bucket, steps, tmp_path)
        assert page.s3c_errors == []
    finally:
        client.close()
