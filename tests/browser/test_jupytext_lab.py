"""jupytext in JupyterLab on S3ContentsManager + SeaweedFS, driven in headless Chromium.

jupytext's server extension wraps the manager (as it does wherever jupytext is installed)
and its lab extension is loaded. As a user would: a notebook made from the launcher runs a
cell; it is paired with a percent script from the command palette (jupytext's command
``jupytext:pair-nb-with-auto:percent``, "Pair with percent script") and saved, which writes
the ``.py`` beside the ``.ipynb``; a cell added to the ``.py`` in the bucket (boto3, behind
the server's back) shows when the notebook is opened again (jupytext reads the inputs from
the paired text); renaming the notebook in the file browser renames both files, and the
next save writes both under their new names; "New Text Notebook" (percent) from the palette
makes a ``.py`` notebook. Every step checks the page and the bucket and leaves a screenshot;
``/api/status`` is polled all along and must answer each time, quickly (jupytext calls the
manager's ``exists`` without ``await`` when it renames a pair and looks for a free name: a
server that froze on it would stop answering, see docs/jupytext.md).

jupytext keeps the pairing the command set, ``ipynb,auto:percent``, in the ``.ipynb``'s
metadata and writes the resolved ``ipynb,py:percent`` in the script's header: the same with
jupytext over jupyter_server's local ``AsyncLargeFileManager``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.browser_support import Bucket, JupyterApp, Steps, run_first_cell
from tests.browser.test_jupyterlab import current_notebook, listing_item, save
from tests.support.servers import S3Server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

NOTEBOOK = "Untitled.ipynb"
SCRIPT = "Untitled.py"
RENAMED = "paired.ipynb"
RENAMED_SCRIPT = "paired.py"
#: jupytext's pairing command (its lab extension 1.4.6) and its label in the palette.
PAIR_COMMAND = "jupytext:pair-nb-with-auto:percent"
PAIR_LABEL = "Pair with percent script"
#: jupytext's "New Text Notebook" in percent format, as the palette lists it for the Python
#: kernel (the command's id is made from the kernel's language).
NEW_TEXT_COMMAND = "jupytext:create-new-text-notebook-py:percent"
NEW_TEXT_LABEL = "New Python Text Notebook with Percent Format"
ADDED_CELL = 'print("added in the script")'
#: Longest an ``/api/status`` may take (a frozen server never answers; the machine is shared
#: and noisy: kernels start, Chromium renders).
STATUS_LIMIT = 5.0


class StatusPoller:
    """``/api/status`` asked every 0.2 s in a thread: each answer's status and time."""

    def __init__(self, app: JupyterApp) -> None:
        self.app = app
        self.answers: list[tuple[int | str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                status: int | str = self.app.call("/api/status", timeout=STATUS_LIMIT * 2)[0]
            except Exception as error:  # a timeout: the server did not answer
                status = f"{type(error).__name__}: {error}"
            self.answers.append((status, time.monotonic() - began))
            self._stop.wait(0.2)

    def __enter__(self) -> StatusPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(STATUS_LIMIT * 3)

    def check(self) -> None:
        """Every answer so far was a 200 within ``STATUS_LIMIT``."""
        bad = [(s, t) for s, t in self.answers if s != 200 or t > STATUS_LIMIT]
        assert self.answers and not bad, bad

    @property
    def slowest(self) -> float:
        return max((t for _, t in self.answers), default=0.0)


def sources(notebook: dict[str, Any]) -> list[str]:
    return ["".join(cell["source"]) for cell in notebook["cells"]]


def open_from_browser(page: Any, app: JupyterApp, name: str) -> None:
    page.goto(f"{app.url}/lab?reset&token={app.token}")
    listing_item(page, name).dblclick()
    current_notebook(page).locator(".jp-Cell .cm-content").first.wait_for(timeout=60_000)


def run_pair_scenario(
    page: Any, app: JupyterApp, bucket: Bucket, steps: Steps, status: StatusPoller
) -> None:
    with steps("new notebook, run a cell"):
        page.goto(f"{app.url}/lab?reset&token={app.token}")
        page.locator("#filebrowser .jp-DirListing-content").wait_for(timeout=90_000)
        page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
        current_notebook(page).locator(".jp-Cell .cm-content").first.wait_for()
        listing_item(page, NOTEBOOK).wait_for()
        assert run_first_cell(page, "print(6*7)") == "42"
        keys = bucket.wait_for(lambda keys: NOTEBOOK in keys, f"{NOTEBOOK} created")
        assert SCRIPT not in keys  # not paired yet
        status.check()

    with steps("pair with a percent script from the palette, save"):
        page.keyboard.press("Control+Shift+c")
        palette = page.locator("#command-palette")
        palette.locator("input").fill(PAIR_LABEL)
        palette.locator(f'.lm-CommandPalette-item[data-command="{PAIR_COMMAND}"]').click()
        # The command sets the notebook's metadata: the tab is dirty until saved.
        page.locator(".lm-DockPanel .lm-TabBar-tab.jp-mod-current.jp-mod-dirty").wait_for()
        save(page)
        keys = bucket.wait_for(lambda keys: SCRIPT in keys, f"{SCRIPT} written by the save")
        assert NOTEBOOK in keys
        script = bucket.get(SCRIPT).decode()
        assert "# %%\nprint(6*7)\n" in script, script
        assert "formats: ipynb,py:percent" in script, script
        saved = bucket.notebook(NOTEBOOK)
        # The pairing as the command set it: jupytext keeps "auto" in the .ipynb (the same
        # on local disk, AsyncLargeFileManager) and writes the resolved "py" in the script.
        assert saved["metadata"]["jupytext"]["formats"] == "ipynb,auto:percent", saved["metadata"]
        # Shift+Enter on the last cell added an empty one below it.
        before = sources(saved)
        assert before == ["print(6*7)", ""], before
        assert saved["cells"][0]["outputs"][0]["text"] in ("42\n", ["42\n"])
        # Both are notebooks in the listing, as on local disk.
        listing_item(page, SCRIPT).wait_for()
        types = {m["name"]: m["type"] for m in app.api("/api/contents")["content"]}
        assert types[NOTEBOOK] == types[SCRIPT] == "notebook", types
        status.check()

    with steps("a cell added to the script in the bucket shows on reopening"):
        bucket.put(SCRIPT, (script.rstrip("\n") + f"\n\n# %%\n{ADDED_CELL}\n").encode())
        open_from_browser(page, app, NOTEBOOK)
        cells = current_notebook(page).locator(".jp-Cell")
        cells.last.locator(".cm-content").get_by_text(ADDED_CELL).wait_for()
        shown = [text.strip() for text in cells.locator(".cm-content").all_inner_texts()]
        assert shown == [*before, ADDED_CELL], shown
        # The outputs still come from the .ipynb; opening wrote nothing.
        output = cells.first.locator(".jp-OutputArea-output").first
        assert output.inner_text().strip() == "42"
        assert sources(bucket.notebook(NOTEBOOK)) == before
        status.check()

    with steps("rename in the file browser renames both files"):
        listing_item(page, NOTEBOOK).click(button="right")
        page.locator('.lm-Menu-item[data-command="filebrowser:rename"]').click()
        editor = page.locator("#filebrowser input.jp-DirListing-editor")
        editor.fill(RENAMED)
        editor.press("Enter")
        listing_item(page, RENAMED).wait_for()
        listing_item(page, RENAMED_SCRIPT).wait_for()
        assert listing_item(page, NOTEBOOK).count() == 0
        assert listing_item(page, SCRIPT).count() == 0
        page.locator(".lm-DockPanel .lm-TabBar-tab.jp-mod-current").get_by_text(RENAMED).wait_for()
        keys = bucket.wait_for(
            lambda keys: {RENAMED, RENAMED_SCRIPT} <= keys and not {NOTEBOOK, SCRIPT} & keys,
            "both files renamed, old names gone",
        )
        assert bucket.get(RENAMED_SCRIPT).decode().count("# %%") == 3
        assert ADDED_CELL in bucket.get(RENAMED_SCRIPT).decode()
        assert sources(bucket.notebook(RENAMED)) == before
        assert not any(k.startswith(("Untitled", ".ipynb_checkpoints/Untitled")) for k in keys)
        status.check()

    with steps("the renamed pair saves both files"):
        current_notebook(page).locator(".jp-Cell .cm-content").first.click()
        page.keyboard.press("End")
        page.keyboard.type("  # edited")
        save(page)
        bucket.wait_for(
            lambda _keys: "print(6*7)  # edited" in bucket.get(RENAMED_SCRIPT).decode(),
            f"{RENAMED_SCRIPT} saved with the edit",
        )
        assert sources(bucket.notebook(RENAMED)) == ["print(6*7)  # edited", "", ADDED_CELL]
        assert not {NOTEBOOK, SCRIPT} & bucket.keys()
        status.check()

    with steps("new text notebook (percent) from the palette"):
        # jupytext looks for a free name with an un-awaited exists(), one per notebook
        # extension it knows (49): the request froze the whole server before s3contents
        # answered it (issue 16). The launcher's new notebook (step 1) goes through it too:
        # with exists() a bare coroutine again, this test fails there.
        creates: list[int] = []
        page.on(
            "response",
            lambda r: (
                creates.append(r.status)
                if r.request.method == "POST" and r.url.split("?")[0].endswith("/api/contents")
                else None
            ),
        )
        page.keyboard.press("Control+Shift+c")
        palette = page.locator("#command-palette")
        palette.locator("input").fill(NEW_TEXT_LABEL)
        palette.locator(f'.lm-CommandPalette-item[data-command="{NEW_TEXT_COMMAND}"]').click()
        page.locator(".lm-DockPanel .lm-TabBar-tab.jp-mod-current").get_by_text(SCRIPT).wait_for()
        current_notebook(page).locator(".jp-Cell").first.wait_for()
        listing_item(page, SCRIPT).wait_for()
        assert creates == [201], creates
        keys = bucket.wait_for(lambda keys: SCRIPT in keys, f"{SCRIPT} created")
        assert NOTEBOOK not in keys  # a text notebook alone, not paired
        assert "format_name: percent" in bucket.get(SCRIPT).decode()
        types = {m["name"]: m["type"] for m in app.api("/api/contents")["content"]}
        assert types[SCRIPT] == "notebook", types
        status.check()


def test_pair_a_notebook_with_jupytext(
    jupyter: Any, page: Any, seaweedfs: S3Server, artifacts: Path
) -> None:
    app = jupyter("lab", jupytext=True)
    client = seaweedfs.client()
    try:
        bucket = Bucket(client, app.bucket, app.prefix)
        steps = Steps(page, artifacts / "jupytext")
        with StatusPoller(app) as status:
            run_pair_scenario(page, app, bucket, steps, status)
        status.check()
        print(f"/api/status: {len(status.answers)} answers, slowest {status.slowest:.2f} s")
        print("steps:", [(name, round(took, 1)) for name, took in steps.timings])
        assert "was never awaited" not in app.log()
        assert page.s3c_errors == []
    finally:
        client.close()
