"""Two JupyterLab tabs on one notebook, without real-time collaboration: the stale one is told.

JupyterLab on S3ContentsManager + SeaweedFS, collaboration off (each page saves the whole
notebook itself). Two browser contexts (two users) open the same notebook; every save is
Ctrl+S, every check of the stored notebook reads the bucket (boto3).

Before it saves, JupyterLab 4 asks the server about the file (``content=0&hash=1``) and shows
its "File Changed" dialog (Cancel / Revert / Overwrite) when the file on disk is not the one
the tab last loaded or saved. It compares hashes when both the tab's model and the answer
have one, else ``last_modified``, with a margin of 500 ms. A tab's model has no hash after
"Overwrite" in that dialog (the save's answer has none), so from then on that tab only has
the dates: before s3contents kept each write's time to the microsecond, a date had whole
seconds, and a newer save by the other tab in the same second as the stale tab's own went
unseen; the stale tab then silently overwrote it. (JupyterLab before 4.1, or a server
without hashes, only ever compares the dates.)

1. Tab 1 saves; tab 2, stale, saves: "File Changed" (by hash); Cancel leaves tab 1's save.
2. Tab 2 overwrites (its model has no hash any more); tab 1 overwrites that about 0.6 s
   later, in the same wall-clock second (the start of tab 2's save is timed to follow a
   second's boundary; up to ``ATTEMPTS`` tries); tab 2 edits and saves: "File Changed" (by
   date: the browser's console says which check it was); Cancel leaves tab 1's save. The
   object's ``s3contents-mtime`` is the time the save answered. With the manager as it was
   before (whole-second dates) this step fails: tab 2 saves without the dialog.
3. The control: tab 2 reloads the notebook from disk, edits and saves: no dialog, the bucket
   has tab 1's text with tab 2's edit.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tests.browser.browser_support import Bucket, JupyterApp, Steps
from tests.support.servers import S3Server

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

NOTEBOOK = "stale.ipynb"
ORIGINAL = "x = 0"
#: Tries at two saves in the same wall-clock second, more than 500 ms apart.
ATTEMPTS = 6
#: Tab 1's overwrite is clicked this long after tab 2's write (JupyterLab's margin is 0.5 s).
GAP = 0.6
FILE_CHANGED_BODY = f'"{NOTEBOOK}" has changed on disk since the last time it was opened or saved.'
#: JupyterLab's console warnings, one per check, when it raises "File Changed".
BY_HASH = f"Different hash found for {NOTEBOOK}"
BY_DATE = "Last saving performed"
CURRENT_TAB = ".lm-DockPanel .lm-TabBar-tab.jp-mod-current"
#: The document manager's user settings: no autosave (a tab must save only when told).
DOCMANAGER_SETTINGS = {"autosave": False, "renameUntitledFileOnSave": False}


class Tab:
    """One browser page (its own context: its own user) with the notebook open."""

    def __init__(self, browser: Any, name: str) -> None:
        self.name = name
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.context.set_default_timeout(30_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(f"{error}\n{error.stack}"))
        self.page.on(
            "console",
            lambda message: (
                self.warnings.append(message.text) if message.type == "warning" else None
            ),
        )

    # ----------------------------------------------------------------------- the page

    def open(self, app: JupyterApp) -> None:
        self.page.goto(f"{app.url}/lab/tree/{NOTEBOOK}?reset&token={app.token}")
        self.editor().get_by_text(ORIGINAL).wait_for(timeout=90_000)

    def editor(self) -> Any:
        return self.page.locator(".jp-NotebookPanel:visible .jp-Cell").first.locator(".cm-content")

    def source(self) -> str:
        text: str = self.editor().inner_text()
        return text

    def replace_source(self, text: str) -> None:
        self.editor().click()
        self.page.keyboard.press("Control+a")
        self.page.keyboard.type(text)
        self.wait_source(text)

    def append(self, text: str) -> str:
        """Type ``text`` at the end of the cell; the cell's new source."""
        expected = self.source() + text
        self.editor().click()
        self.page.keyboard.press("Control+End")
        self.page.keyboard.type(text)
        self.wait_source(expected)
        return expected

    def wait_source(self, text: str) -> None:
        self.page.wait_for_function(
            """(text) => {
                const panel = [...document.querySelectorAll(".jp-NotebookPanel")]
                    .find((p) => p.checkVisibility());
                const cell = panel && panel.querySelector(".jp-Cell .cm-content");
                return !!cell && cell.innerText === text;
            }""",
            arg=text,
        )

    def save(self, focus: bool = True) -> None:
        """Ctrl+S, the focus put in the notebook's cell first unless ``focus`` is False."""
        if focus:
            self.editor().click()
        self.page.keyboard.press("Control+s")

    def saved_tab(self) -> Any:
        """The notebook's tab, once it is no longer marked dirty."""
        return self.page.locator(f"{CURRENT_TAB}:not(.jp-mod-dirty)")

    def wait_saved(self) -> None:
        self.saved_tab().wait_for()

    def is_dirty(self) -> bool:
        return self.page.locator(f"{CURRENT_TAB}.jp-mod-dirty").count() > 0

    def dialog(self) -> Any:
        return self.page.locator(".jp-Dialog-content")

    def file_changed(self, check: bool = True) -> Any:
        """JupyterLab's "File Changed" dialog, once it shows after a save of this (dirty) tab;
        checks its text and buttons (unless ``check`` is False). Fails at once if the tab
        saved without it."""
        dialog = self.dialog()
        header = dialog.locator(".jp-Dialog-header").get_by_text("File Changed")
        header.or_(self.saved_tab()).first.wait_for()
        if not header.is_visible():
            raise AssertionError(
                f"{self.name} saved without a File Changed dialog: over the newer save"
            )
        if not check:
            return dialog
        body = dialog.locator(".jp-Dialog-body").inner_text()
        assert FILE_CHANGED_BODY in body, body
        buttons = [b.strip() for b in dialog.locator(".jp-Dialog-footer button").all_inner_texts()]
        assert buttons == ["Cancel", "Revert", "Overwrite"], buttons
        return dialog

    def button(self, name: str) -> Any:
        return self.dialog().get_by_role("button", name=name, exact=True)

    def cancel(self) -> None:
        self.button("Cancel").click()
        self.dialog().wait_for(state="detached")

    def overwrite(self) -> datetime:
        """Click "Overwrite" in the open dialog; the time of the write, as the server answered
        (the time the tab now holds as its last save)."""
        with self.page.expect_response(is_notebook_put, timeout=60_000) as answer:
            self.button("Overwrite").click()
        return written_at(answer.value)

    def close(self) -> None:
        self.context.close()


def is_notebook_put(response: Any) -> bool:
    return response.request.method == "PUT" and f"/api/contents/{NOTEBOOK}" in response.url


def written_at(response: Any) -> datetime:
    assert response.ok, f"{response.status} {response.text()}"
    return datetime.fromisoformat(response.json()["last_modified"].replace("Z", "+00:00"))


def sleep_until(when: float) -> None:
    """Sleep until the wall clock (``time.time()``, the server's clock too) reads ``when``."""
    left = when - time.time()
    if left > 0:
        time.sleep(left)


def stored_source(bucket: Bucket) -> str:
    return "".join(bucket.notebook(NOTEBOOK)["cells"][0]["source"])


def wait_stored(bucket: Bucket, text: str) -> bytes:
    """Wait until the notebook in the bucket has ``text`` in its cell; its bytes."""
    bucket.wait_for(lambda keys: stored_source(bucket) == text, f"{NOTEBOOK} holds {text!r}")
    return bucket.get(NOTEBOOK)


def stored_mtime(bucket: Bucket) -> str:
    head = bucket.client.head_object(Bucket=bucket.bucket, Key=bucket.prefix + NOTEBOOK)
    value: str = head["Metadata"].get("s3contents-mtime", "")
    return value


@pytest.fixture
def tabs(browser: Any) -> Iterator[tuple[Tab, Tab]]:
    one, two = Tab(browser, "tab 1"), Tab(browser, "tab 2")
    try:
        yield one, two
    finally:
        one.close()
        two.close()


def test_stale_tab_gets_file_changed(
    jupyter: Any,
    tabs: tuple[Tab, Tab],
    seaweedfs: S3Server,
    s3_place: tuple[str, str],
    artifacts: Path,
) -> None:
    tab1, tab2 = tabs
    client = seaweedfs.client()
    try:
        bucket = Bucket(client, *s3_place)
        nb = new_notebook(cells=[new_code_cell(ORIGINAL)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        bucket.put(NOTEBOOK, json.dumps(nb).encode())
        app = jupyter("lab")
        app.api(
            "/lab/api/settings/@jupyterlab/docmanager-extension:plugin",
            "PUT",
            {"raw": json.dumps(DOCMANAGER_SETTINGS)},
        )
        folder = artifacts / "stale_tabs"
        steps1, steps2 = Steps(tab1.page, folder, "tab1-"), Steps(tab2.page, folder, "tab2-")

        with steps1("tab 1 opens the notebook"):
            tab1.open(app)
        with steps2("tab 2 opens the same notebook"):
            tab2.open(app)
            a, b = (t.page.request.get(f"{app.url}/api/me").json()["identity"] for t in tabs)
            assert a["username"] != b["username"], (a, b)

        # ------------------------------------------------------------ 1. by hash
        first = "x = 1  # tab 1"
        with steps1("tab 1 edits and saves"):
            tab1.replace_source(first)
            tab1.save()
            tab1.wait_saved()
            saved = wait_stored(bucket, first)

        with steps2("tab 2, stale, edits and saves: File Changed"):
            assert tab2.source() == ORIGINAL
            tab2.replace_source("x = 2  # tab 2")
            tab2.save()
            text = tab2.file_changed().locator(".jp-Dialog-body").inner_text()
            print(f"File Changed dialog: {text!r}")
            assert any(BY_HASH in w for w in tab2.warnings), tab2.warnings
        with steps2("Cancel: the bucket keeps tab 1's save"):
            tab2.cancel()
            assert tab2.is_dirty()
            assert bucket.get(NOTEBOOK) == saved

        # ------------------------------------------------------------ 2. by date
        same_second: list[int] = []
        tried: list[str] = []
        for attempt in range(1, ATTEMPTS + 1):
            with steps2(f"attempt {attempt}: tab 2 saves, File Changed"):
                tab2.save()
                tab2.file_changed()
            mine = f"x = 1  # tab 1, attempt {attempt}"
            with steps1(f"attempt {attempt}: tab 1 edits"):
                tab1.replace_source(mine)
            with steps1(f"attempt {attempt}: tab 2 overwrites, tab 1 overwrites {GAP} s later"):
                # Tab 2's write starts just after a second's boundary, tab 1's GAP after it:
                # with whole-second dates they would often read the same.
                tab2.button("Overwrite").wait_for()
                sleep_until(math.floor(time.time()) + 1.01)
                theirs = tab2.overwrite()
                # Tab 1's focus is still in its cell: as few round trips as can be.
                tab1.save(focus=False)
                tab1.file_changed(check=False)
                sleep_until(theirs.timestamp() + GAP)
                ours = tab1.overwrite()
                tab1.wait_saved()
                saved = wait_stored(bucket, mine)
                assert stored_mtime(bucket) == ours.isoformat(timespec="microseconds")
                gap = (ours - theirs).total_seconds()
                tried.append(f"{theirs.time()} -> {ours.time()} ({gap:.3f} s)")
                assert gap > 0.5, tried
                if math.floor(theirs.timestamp()) == math.floor(ours.timestamp()):
                    same_second.append(attempt)
            with steps2(f"attempt {attempt}: tab 2, stale, edits and saves: File Changed"):
                tab2.wait_saved()
                warned = len(tab2.warnings)
                tab2.append(f"  # stale edit {attempt}")
                tab2.save()
                tab2.file_changed()
                assert any(BY_DATE in w for w in tab2.warnings[warned:]), tab2.warnings
            with steps2(f"attempt {attempt}: Cancel: the bucket keeps tab 1's save"):
                tab2.cancel()
                assert bucket.get(NOTEBOOK) == saved
            if same_second:
                break
        print(f"saves (tab 2 -> tab 1): {tried}; in the same second: attempt {same_second}")
        assert same_second, f"never two saves in the same second: {tried}"

        # ------------------------------------------------------------ 3. the control
        with steps2("control: tab 2 reloads from disk"):
            tab2.page.locator(".lm-MenuBar-item", has_text="File").click()
            tab2.page.locator('.lm-Menu-item[data-command="docmanager:reload"]').click()
            tab2.dialog().locator(".jp-Dialog-header").get_by_text(
                "Reload Notebook from Disk"
            ).wait_for()
            tab2.button("Reload").click()
            tab2.dialog().wait_for(state="detached")
            tab2.wait_source(mine)
            tab2.wait_saved()
        with steps2("control: tab 2 edits and saves, no dialog"):
            both = tab2.append("  # tab 2 after reloading")
            tab2.save()
            tab2.wait_saved()
            wait_stored(bucket, both)
            assert tab2.dialog().count() == 0

        assert tab1.errors == [] and tab2.errors == [], (tab1.errors, tab2.errors)
    finally:
        client.close()
