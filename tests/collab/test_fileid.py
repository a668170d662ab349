"""File ids through renames, on a live JupyterLab with real-time collaboration (issue 12).

One JupyterLab process (``jupyter_procs.start_jupyter("lab", collaborative=True)``) serves a
SeaweedFS bucket through ``S3ContentsManager``, with jupyter-collaboration's extensions and
jupyter_server_fileid's default ``ArbitraryFileIdManager`` (ids in a SQLite table, one per
path, moved by the contents manager's ``rename`` events). Documents are opened as
JupyterLab opens them: a GET of the file, then ``PUT /api/collaboration/session/<path>``,
which answers the file id the document's room is named after.

The collaboration client asks for a session again with the path it first opened the
document at (``reconnect()`` of its provider), and the session handler indexes any path,
file or not: after a rename the old path can get an id of its own. Renaming something back
onto that path made ``ArbitraryFileIdManager.move`` fail with ``UNIQUE constraint failed:
Files.path`` (logged as a failed event listener; the whole move undone, the moved files'
ids left at paths that no longer exist). Folder names with ``[``, ``*`` or ``?`` were taken
for ``GLOB`` patterns: a folder's ids stayed behind and the next folder of that name
inherited them. A copy onto paths with such ids failed the same way.

Every test works in a folder of its own and checks, besides its own assertions, that the
server's log has no ``UNIQUE constraint failed``, no failed event listener and no traceback
from the test's start on. An id "resolves" when ``GET /api/fileid/path?id=`` answers the
file's current path; opening the file there again answers the same id.

The last tests run ``s3contents.collab``'s bookkeeping on an ``ArbitraryFileIdManager`` in
memory, then the event as the extension handles it: the ids in the way of a move are
dropped and no others (the same rename answered twice drops nothing), folder names are no
patterns, a copy's destination is cleared, other id managers get a renamed folder indexed.
"""

from __future__ import annotations

import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
from jupyter_server_fileid.manager import ArbitraryFileIdManager

from s3contents.collab import drop_stale_file_ids, move_file_ids
from tests.support.jupyter_procs import JupyterApp, start_jupyter
from tests.support.servers import S3Server

NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
#: What the server log must not hold.
ERRORS = ("UNIQUE constraint failed", "Event listener", "Traceback")


@pytest.fixture(scope="module")
def lab(seaweedfs: S3Server) -> Iterator[JupyterApp]:
    bucket = seaweedfs.make_bucket()
    app = start_jupyter(
        "lab",
        endpoint_url=seaweedfs.endpoint_url,
        access_key_id=seaweedfs.access_key_id,
        secret_access_key=seaweedfs.secret_access_key,
        bucket=bucket,
        prefix="fileid",
        collaborative=True,
        extra_args=[f"--S3ContentsManager.region_name={seaweedfs.region_name}"],
    )
    try:
        yield app
    finally:
        app.stop()
        seaweedfs.remove_bucket(bucket)


class Lab:
    """REST calls of one test, in its own folder ``base``; paths are relative to it."""

    def __init__(self, app: JupyterApp) -> None:
        self.app = app
        self.base = f"t-{secrets.token_hex(4)}"
        self._log_start = len(app.log())
        self.mkdir("")

    def _url(self, path: str) -> str:
        full = f"{self.base}/{path}".rstrip("/")
        return urllib.parse.quote(full)

    def _ok(self, path: str, method: str = "GET", body: Any = None) -> Any:
        status, answer = self.app.call(path, method, body)
        assert 200 <= status < 300, (method, path, body, status, answer)
        return answer

    def mkdir(self, path: str) -> None:
        self._ok(f"/api/contents/{self._url(path)}", "PUT", {"type": "directory"})

    def notebook(self, path: str) -> None:
        body = {"type": "notebook", "content": NOTEBOOK}
        self._ok(f"/api/contents/{self._url(path)}", "PUT", body)

    def rename(self, old: str, new: str) -> None:
        self._ok(f"/api/contents/{self._url(old)}", "PATCH", {"path": f"{self.base}/{new}"})

    def delete(self, path: str) -> None:
        self._ok(f"/api/contents/{self._url(path)}", "DELETE")

    def copy(self, path: str, into: str) -> str:
        """Copy ``path`` into the folder ``into`` (a new name, as JupyterLab's copy does)."""
        model = self._ok(
            f"/api/contents/{self._url(into)}", "POST", {"copy_from": f"{self.base}/{path}"}
        )
        return str(model["path"])[len(self.base) + 1 :]

    def session(self, path: str) -> str:
        """``PUT /api/collaboration/session/<path>`` as the collaboration client sends it
        (for a path where there may be no file): the file id of the document's room."""
        answer = self._ok(
            f"/api/collaboration/session/{self._url(path)}",
            "PUT",
            {"format": "json", "type": "notebook"},
        )
        return str(answer["fileId"])

    def open(self, path: str) -> str:
        """Open the notebook as JupyterLab does: GET it, then its session; its file id."""
        self._ok(f"/api/contents/{self._url(path)}?content=1")
        return self.session(path)

    def path_of(self, file_id: str) -> str | None:
        """Where the file id manager says ``file_id`` is now (relative to ``base``), or None."""
        status, answer = self.app.call(f"/api/fileid/path?id={file_id}")
        if status == 404:
            return None
        assert status == 200, (status, answer)
        path = str(answer["path"])
        prefix = self.base + "/"
        return path[len(prefix) :] if path.startswith(prefix) else "/" + path

    def id_at(self, path: str) -> str | None:
        status, answer = self.app.call(f"/api/fileid/id?path={self._url(path)}")
        return str(answer["id"]) if status == 200 else None

    def resolves(self, file_id: str, path: str) -> None:
        """``file_id`` leads to ``path`` (the rename's event may still be on its way), and
        opening the file there answers the same id."""
        deadline = time.monotonic() + 10
        while (found := self.path_of(file_id)) != path and time.monotonic() < deadline:
            time.sleep(0.1)
        assert found == path, f"file id {file_id}: {found!r}, expected {path!r}"
        assert self.open(path) == file_id, path

    def check_log(self) -> None:
        time.sleep(0.3)  # the last events' listeners
        text = self.app.log()[self._log_start :]
        bad = [line for line in text.splitlines() if any(e in line for e in ERRORS)]
        assert not bad, "\n".join(bad[:20]) + "\n---\n" + text[-4000:]


@pytest.fixture
def lab_api(lab: JupyterApp) -> Iterator[Lab]:
    api = Lab(lab)
    yield api
    api.check_log()


def test_folder_renamed_back_and_forth(lab_api: Lab) -> None:
    api = lab_api
    api.mkdir("A")
    api.notebook("A/x.ipynb")
    api.notebook("A/y.ipynb")
    x = api.open("A/x.ipynb")
    api.rename("A", "B")
    api.resolves(x, "B/x.ipynb")
    y = api.open("B/y.ipynb")
    for old, new in (("B", "A"), ("A", "B"), ("B", "A")):
        api.rename(old, new)
        api.resolves(x, f"{new}/x.ipynb")
        api.resolves(y, f"{new}/y.ipynb")
        assert api.id_at(f"{old}/x.ipynb") is None


def test_sessions_at_old_paths_then_renamed_back(lab_api: Lab) -> None:
    """A client asks for a session at the path it opened the document at, after the
    rename: the old path gets an id of its own; then the file comes back to that path."""
    api = lab_api
    api.mkdir("A")
    api.notebook("A/x.ipynb")
    api.notebook("f.ipynb")
    x, f = api.open("A/x.ipynb"), api.open("f.ipynb")

    api.rename("A", "B")
    api.rename("f.ipynb", "g.ipynb")
    stale_x, stale_f = api.session("A/x.ipynb"), api.session("f.ipynb")
    assert {stale_x, stale_f}.isdisjoint({x, f})
    api.rename("B", "A")
    api.rename("g.ipynb", "f.ipynb")
    api.resolves(x, "A/x.ipynb")
    api.resolves(f, "f.ipynb")
    assert api.path_of(stale_x) is None
    assert api.path_of(stale_f) is None

    # Again, the folder renamed into another one and out again.
    api.mkdir("P")
    api.rename("A", "P/A")
    api.session("A/x.ipynb")
    api.rename("P/A", "A")
    api.resolves(x, "A/x.ipynb")


def test_folder_onto_a_name_that_existed_before(lab_api: Lab) -> None:
    api = lab_api
    api.mkdir("A")
    api.notebook("A/x.ipynb")
    first = api.open("A/x.ipynb")
    api.rename("A", "B")
    # A new A with a file of the same name: a new file, a new id.
    api.mkdir("A")
    api.notebook("A/x.ipynb")
    second = api.open("A/x.ipynb")
    assert second != first
    api.rename("A", "C")
    api.rename("B", "A")
    api.resolves(first, "A/x.ipynb")
    api.resolves(second, "C/x.ipynb")

    # A folder deleted, then another one renamed onto its name.
    api.mkdir("D")
    api.notebook("D/x.ipynb")
    gone = api.open("D/x.ipynb")
    api.delete("D/x.ipynb")
    api.delete("D")
    assert api.path_of(gone) is None
    api.rename("C", "D")
    api.resolves(second, "D/x.ipynb")


def test_into_and_out_of_nested_folders_and_a_file_then_its_folder(lab_api: Lab) -> None:
    api = lab_api
    api.mkdir("P")
    api.mkdir("P/Q")
    api.mkdir("R")
    api.notebook("P/Q/n.ipynb")
    api.notebook("P/top.ipynb")
    n, top = api.open("P/Q/n.ipynb"), api.open("P/top.ipynb")
    for old, new, n_at, top_at in (
        ("P/Q", "Q", "Q/n.ipynb", "P/top.ipynb"),
        ("Q", "P/Q2", "P/Q2/n.ipynb", "P/top.ipynb"),
        ("P", "R/P", "R/P/Q2/n.ipynb", "R/P/top.ipynb"),
        ("R/P/Q2/n.ipynb", "R/P/Q2/m.ipynb", "R/P/Q2/m.ipynb", "R/P/top.ipynb"),
        ("R/P/Q2", "R/P/Q3", "R/P/Q3/m.ipynb", "R/P/top.ipynb"),
        ("R/P", "P", "P/Q3/m.ipynb", "P/top.ipynb"),
        ("P/top.ipynb", "P/Q3/top.ipynb", "P/Q3/m.ipynb", "P/Q3/top.ipynb"),
        ("P/Q3", "Q", "Q/m.ipynb", "Q/top.ipynb"),
    ):
        api.rename(old, new)
        api.resolves(n, n_at)
        api.resolves(top, top_at)


@pytest.mark.parametrize("name", ["d[1]", "d*", "d?"])
def test_folder_names_with_glob_characters(lab_api: Lab, name: str) -> None:
    api = lab_api
    for folder in (name, "d1", "dx"):
        api.mkdir(folder)
        api.notebook(f"{folder}/f.ipynb")
    f = api.open(f"{name}/f.ipynb")
    others = {folder: api.open(f"{folder}/f.ipynb") for folder in ("d1", "dx")}
    api.rename(name, "e")
    api.resolves(f, "e/f.ipynb")
    for folder, file_id in others.items():
        api.resolves(file_id, f"{folder}/f.ipynb")
    # A new folder of that name: its file is a new file.
    api.mkdir(name)
    api.notebook(f"{name}/f.ipynb")
    new = api.open(f"{name}/f.ipynb")
    assert new != f
    api.rename(name, "h")
    api.rename("e", name)
    api.resolves(f, f"{name}/f.ipynb")
    api.resolves(new, "h/f.ipynb")
    for folder, file_id in others.items():
        api.resolves(file_id, f"{folder}/f.ipynb")


def test_copy_onto_paths_with_old_ids(lab_api: Lab) -> None:
    api = lab_api
    api.mkdir("A")
    api.mkdir("T")
    api.notebook("A/x.ipynb")
    x = api.open("A/x.ipynb")
    # The copy will be T/A: a client opened a document there before (nothing was there).
    stale = api.session("T/A/x.ipynb")
    copied = api.copy("A", "T")
    assert copied == "T/A", copied
    api.resolves(x, "A/x.ipynb")
    assert api.path_of(stale) is None
    assert api.open("T/A/x.ipynb") not in (x, stale)


def test_renames_while_clients_open_old_and_new_paths(lab_api: Lab) -> None:
    """One user renames a folder back and forth while two clients keep asking for sessions
    at both names (the files are at one of them, or half-way during a rename)."""
    api = lab_api
    api.mkdir("A")
    for name in ("f0", "f1", "f2"):
        api.notebook(f"A/{name}.ipynb")
    ids = {name: api.open(f"A/{name}.ipynb") for name in ("f0", "f1")}
    done = threading.Event()

    def flip() -> None:
        try:
            for i in range(10):
                old, new = ("A", "B") if i % 2 == 0 else ("B", "A")
                api.rename(old, new)
        finally:
            done.set()

    def clients() -> None:
        while not done.is_set():
            for path in ("A/f0.ipynb", "B/f0.ipynb", "A/f2.ipynb", "B/f1.ipynb"):
                api.session(path)

    with ThreadPoolExecutor(3) as pool:
        for future in [pool.submit(flip), pool.submit(clients), pool.submit(clients)]:
            future.result()
    for name, file_id in ids.items():
        api.resolves(file_id, f"A/{name}.ipynb")


# --------------------------------------------------------------------------- the manager's side
# s3contents.collab's bookkeeping on an ArbitraryFileIdManager in memory, then the event as
# the extension handles it.


def _server(file_id_manager: Any) -> Any:
    return SimpleNamespace(web_app=SimpleNamespace(settings={"file_id_manager": file_id_manager}))


@pytest.fixture
def file_ids() -> Iterator[ArbitraryFileIdManager]:
    manager = ArbitraryFileIdManager(root_dir="/srv/root", db_path=":memory:")
    yield manager
    manager.con.close()


def _renamed(file_ids: ArbitraryFileIdManager, old: str, new: str, *, folder: bool) -> None:
    """What ``S3ContentsManager.rename`` does once the objects are moved: our bookkeeping,
    then the event, handled by the extension's own handler."""
    move_file_ids(_server(file_ids), old, new, folder=folder)
    handler = file_ids.get_handlers_by_action()["rename"]
    assert handler is not None
    handler({"action": "rename", "path": new, "source_path": old})


def test_ids_in_the_way_are_dropped_and_only_those(file_ids: ArbitraryFileIdManager) -> None:
    x, y = file_ids.index("A/x.ipynb"), file_ids.index("A/y.ipynb")
    sub = file_ids.index("A/s/z.ipynb")
    in_the_way, beside = file_ids.index("B/x.ipynb"), file_ids.index("B/other.ipynb")
    _renamed(file_ids, "A", "B", folder=True)
    assert (file_ids.get_path(x), file_ids.get_path(y)) == ("B/x.ipynb", "B/y.ipynb")
    assert file_ids.get_path(sub) == "B/s/z.ipynb"
    assert file_ids.get_path(in_the_way) is None
    assert file_ids.get_path(beside) == "B/other.ipynb"
    assert file_ids.get_id("A/x.ipynb") is None
    # The same rename answered twice: nothing left to move, nothing dropped.
    _renamed(file_ids, "A", "B", folder=True)
    assert file_ids.get_path(x) == "B/x.ipynb"
    # A file onto a path with an id.
    stale = file_ids.index("C.ipynb")
    _renamed(file_ids, "B/x.ipynb", "C.ipynb", folder=False)
    assert file_ids.get_path(x) == "C.ipynb"
    assert file_ids.get_path(stale) is None


def test_folder_names_are_no_patterns(file_ids: ArbitraryFileIdManager) -> None:
    paths = ("d[1]/f", "d1/f", "d*/f", "dx/f", "d?/f", "dy/f")
    files = {path: file_ids.index(path) for path in paths}
    for name, to in (("d[1]", "e1"), ("d*", "e2"), ("d?", "e3")):
        _renamed(file_ids, name, to, folder=True)
    assert {path: file_ids.get_path(i) for path, i in files.items()} == {
        "d[1]/f": "e1/f",
        "d1/f": "d1/f",
        "d*/f": "e2/f",
        "dx/f": "dx/f",
        "d?/f": "e3/f",
        "dy/f": "dy/f",
    }


def test_a_copy_gets_new_ids_where_old_ones_were(file_ids: ArbitraryFileIdManager) -> None:
    x, stale = file_ids.index("A/x"), file_ids.index("T/A/x")
    drop_stale_file_ids(_server(file_ids), "T/A")
    handler = file_ids.get_handlers_by_action()["copy"]
    assert handler is not None
    handler({"action": "copy", "path": "T/A", "source_path": "A"})
    assert file_ids.get_path(stale) is None
    assert file_ids.get_id("T/A/x") not in (None, x, stale)
    assert file_ids.get_path(x) == "A/x"


def test_other_id_managers_and_none(file_ids: ArbitraryFileIdManager) -> None:
    class Other:
        def __init__(self) -> None:
            self.indexed: list[str] = []

        def index(self, path: str) -> str:
            self.indexed.append(path)
            return "id"

    other = Other()
    move_file_ids(_server(other), "A", "B", folder=True)
    move_file_ids(_server(other), "a.ipynb", "b.ipynb", folder=False)
    drop_stale_file_ids(_server(other), "C")
    assert other.indexed == ["A"]
    # No extension, or not the server's own contents manager (a hybrid mount's parent).
    for server in (SimpleNamespace(), SimpleNamespace(web_app=SimpleNamespace(settings={}))):
        move_file_ids(server, "A", "B", folder=True)
        drop_stale_file_ids(server, "B")
