"""History in JupyterLab on a versioned SeaweedFS bucket, in headless Chromium.

A notebook is made through the REST API (its first version), then saved three times from
JupyterLab with different content; **File > Revert Notebook to Checkpoint…** offers the
explicit checkpoint and the earlier versions (the dialog's screenshot, ``revert-dialog.png``
in the artifacts, is copied to the README's ``docs/img/history-revert.png`` when
``S3CONTENTS_DOCS_IMG=1`` is set); choosing the oldest brings its content back, as a new
save. Then nbdime's lab extension (installed with nbdime, test extra) opens its checkpoint
diff of the notebook, which shows the change.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.browser.browser_support import Bucket, Steps
from tests.browser.test_jupyterlab import current_notebook, dialog, save
from tests.support.servers import S3Server
from tests.support.versions import delete_every_version

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

NOTEBOOK = "history.ipynb"
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "img" / "history-revert.png"


def _version_sources(s3: Any, bucket: str, key: str) -> list[str]:
    """The first cell of each version of ``key``, newest first (boto3)."""
    versions = [
        v
        for v in s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
        if v["Key"] == key
    ]
    versions.sort(key=lambda v: v["LastModified"], reverse=True)
    found = []
    for v in versions:
        body = s3.get_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])["Body"].read()
        found.append("".join(json.loads(body)["cells"][0]["source"]))
    return found


def _set_first_cell(page: Any, text: str) -> None:
    editor = current_notebook(page).locator(".jp-Cell .cm-content").first
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.type(text)
    page.locator(".lm-DockPanel .lm-TabBar-tab.jp-mod-current.jp-mod-dirty").wait_for()


def _first_source(bucket: Bucket) -> str:
    return "".join(bucket.notebook(NOTEBOOK)["cells"][0]["source"])


def test_revert_to_a_version_and_diff_it(
    jupyter: Any,
    page: Any,
    seaweedfs: S3Server,
    s3_place: tuple[str, str],
    artifacts: Path,
) -> None:
    name, prefix = s3_place
    seaweedfs.admin.put_bucket_versioning(
        Bucket=name, VersioningConfiguration={"Status": "Enabled"}
    )
    client = seaweedfs.client()
    try:
        bucket = Bucket(client, name, prefix)
        app = jupyter("lab")
        steps = Steps(page, artifacts / "history")
        nb = new_notebook(cells=[new_code_cell("x = 0")])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        app.api(f"/api/contents/{NOTEBOOK}", "PUT", {"type": "notebook", "content": nb})

        with steps("open the notebook"):
            page.goto(f"{app.url}/lab/tree/{NOTEBOOK}?reset&token={app.token}")
            cell = current_notebook(page).locator(".jp-Cell .cm-content").first
            cell.get_by_text("x = 0").wait_for(timeout=90_000)

        for i in (1, 2, 3):
            with steps(f"save {i}"):
                _set_first_cell(page, f"x = {i}")
                save(page)
                bucket.wait_for(
                    lambda _k, i=i: _first_source(bucket) == f"x = {i}",
                    f"save {i} stored",
                )

        listed = app.api(f"/api/contents/{NOTEBOOK}/checkpoints")
        # The checkpoint (made by each save from JupyterLab), then the earlier versions.
        assert listed[0]["id"] == "checkpoint"
        stored = _version_sources(client, name, f"{prefix}/{NOTEBOOK}")
        # Each save a version (a save sent twice, when a key press is sent again, is two).
        distinct = [text for i, text in enumerate(stored) if i == 0 or stored[i - 1] != text]
        assert distinct == ["x = 3", "x = 2", "x = 1", "x = 0"], stored
        assert len(listed) == len(stored), (listed, stored)

        with steps("File > Revert Notebook to Checkpoint lists the versions"):
            page.locator(".lm-MenuBar-itemLabel", has_text="File").click()
            page.locator('.lm-Menu-item[data-command="docmanager:restore-checkpoint"]').click()
            dialog(page).get_by_text("Choose a checkpoint").wait_for()
            choice = dialog(page).locator("select")
            options = choice.locator("option").all_inner_texts()
            assert len(options) == len(listed), options
            # JupyterLab shows the list it got reversed: the oldest version first.
            choice.click()
            page.screenshot(path=str(steps.folder / "revert-dialog.png"))
            choice.select_option(index=0)
            if os.environ.get("S3CONTENTS_DOCS_IMG") == "1":
                shutil.copyfile(steps.folder / "revert-dialog.png", DOCS_IMAGE)

        with steps("choose the oldest and revert"):
            dialog(page).get_by_role("button", name="OK").click()
            dialog(page).get_by_role("button", name="Revert").click()
            cell = current_notebook(page).locator(".jp-Cell .cm-content").first
            cell.get_by_text("x = 0").wait_for()
            assert _first_source(bucket) == "x = 0"
            # The revert was a new save: the content it replaced is a version now.
            again = app.api(f"/api/contents/{NOTEBOOK}/checkpoints")
            assert len(again) == len(listed) + 1, again

        with steps("nbdime's checkpoint diff shows the change"):
            diffs: list[int] = []
            page.on(
                "response",
                lambda r: diffs.append(r.status) if "/nbdime/api/diff" in r.url else None,
            )
            page.locator(".jp-NotebookPanel-toolbar .action-notebook-diff-checkpoint").click()
            view = page.locator(".lm-DockPanel .nbdime-Widget:visible")
            # The checkpoint's source beside the reverted notebook's.
            view.locator(".cm-content", has_text="x = 3").first.wait_for(timeout=60_000)
            view.locator(".cm-content", has_text="x = 0").first.wait_for()
            assert diffs == [200], diffs
        assert page.s3c_errors == []
    finally:
        delete_every_version(seaweedfs.admin, name)
        client.close()
        print(json.dumps({"artifacts": str(artifacts)}))
