"""JupyterLab on HybridContentsManager: a local folder at the root and the bucket at ``s3/``.

The configuration is the README's "Local files beside the bucket" shape (a ``LargeFileManager``
and an ``S3ContentsManager`` side by side). In headless Chromium: the file browser shows the
local file and the bucket's mount point; the bucket's notebook opens from the mount, is edited
and saved; the bucket gets the edit (and its checkpoint), the local folder stays as it was;
the local file dragged onto the mount moves into the bucket (a rename between mounts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.browser.browser_support import Bucket, Steps
from tests.browser.test_jupyterlab import current_notebook, go_home, listing_item, open_folder, save
from tests.support.servers import S3Server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

LOCAL_FILE = "local-notes.txt"
NOTEBOOK = "analysis.ipynb"
EDIT = "  # edited in the browser"


def hybrid_config(local_root: Path, bucket: str, prefix: str) -> str:
    """``jupyter_server_config.py`` of the app: the local folder at the root, the bucket
    (endpoint and credentials from the command line and environment) at ``s3/``."""
    layout = {"": {"root_dir": str(local_root)}, "s3": {"bucket": bucket, "prefix": prefix}}
    return (
        "from jupyter_server.services.contents.largefilemanager import LargeFileManager\n"
        "from s3contents import S3ContentsManager\n\n"
        "c.HybridContentsManager.manager_classes = "
        '{"": LargeFileManager, "s3": S3ContentsManager}\n'
        f"c.HybridContentsManager.manager_kwargs = {layout!r}\n"
    )


def test_jupyterlab_on_a_local_folder_and_a_bucket(
    jupyter: Any,
    page: Any,
    seaweedfs: S3Server,
    s3_place: tuple[str, str],
    artifacts: Path,
    tmp_path: Path,
) -> None:
    local_root = tmp_path / "local"
    local_root.mkdir()
    (local_root / LOCAL_FILE).write_text("on the server's disk\n")
    client = seaweedfs.client()
    try:
        bucket = Bucket(client, *s3_place)
        nb = new_notebook(cells=[new_code_cell("print(6*7)")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        bucket.put(NOTEBOOK, json.dumps(nb).encode())
        app = jupyter(
            "lab",
            contents_manager="s3contents.hybrid.HybridContentsManager",
            server_config=hybrid_config(local_root, *s3_place),
        )
        steps = Steps(page, artifacts / "jupyterlab-hybrid")

        with steps("the file browser shows the local file and the bucket's mount"):
            page.goto(f"{app.url}/lab?reset&token={app.token}")
            listing_item(page, LOCAL_FILE).wait_for(timeout=90_000)
            mount = listing_item(page, "s3")
            mount.wait_for()
            assert mount.get_attribute("data-isdir") == "true"
            assert listing_item(page, NOTEBOOK).count() == 0  # it is in the bucket

        with steps("open the bucket's folder"):
            open_folder(page, "s3")
            listing_item(page, NOTEBOOK).wait_for()
            assert listing_item(page, LOCAL_FILE).count() == 0

        with steps("open the notebook from the bucket"):
            listing_item(page, NOTEBOOK).dblclick()
            cell = current_notebook(page).locator(".jp-Cell").first
            cell.locator(".cm-content").get_by_text("print(6*7)").wait_for()

        with steps("edit and save it"):
            cell.locator(".cm-content").click()
            page.keyboard.press("End")
            page.keyboard.type(EDIT)
            save(page)
            saved = bucket.notebook(NOTEBOOK)
            assert "".join(saved["cells"][0]["source"]) == f"print(6*7){EDIT}"
            bucket.wait_for(
                lambda keys: ".ipynb_checkpoints/analysis-checkpoint.ipynb" in keys,
                "checkpoint made in the bucket on the first save",
            )

        with steps("the local folder is as it was"):
            go_home(page, LOCAL_FILE)
            listing_item(page, "s3").wait_for()
            assert sorted(p.name for p in local_root.iterdir()) == [LOCAL_FILE]

        with steps("drag the local file onto the bucket's folder"):
            source = listing_item(page, LOCAL_FILE).locator(".jp-DirListing-itemText")
            target = listing_item(page, "s3").locator(".jp-DirListing-itemText")
            source.hover()
            page.mouse.down()
            box = target.bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=12)
            page.mouse.up()
            listing_item(page, LOCAL_FILE).wait_for(state="detached")
            bucket.wait_for(lambda keys: LOCAL_FILE in keys, "the file moved into the bucket")
            assert bucket.get(LOCAL_FILE) == b"on the server's disk\n"
            assert not (local_root / LOCAL_FILE).exists()
            open_folder(page, "s3")
            listing_item(page, LOCAL_FILE).wait_for()
        assert page.s3c_errors == []
    finally:
        client.close()
