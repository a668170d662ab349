"""Old-style ``NotebookApp`` configuration: Notebook 7 and nbclassic on S3ContentsManager.

The old s3contents README told Notebook Classic users to write ``NotebookApp`` instead of
``ServerApp`` in ``jupyter_notebook_config.py``. Both of today's notebook frontends still read
that file and pass ``NotebookApp`` settings that moved to Jupyter Server on to ``ServerApp``
(notebook_shim's ``NotebookConfigShimMixin``, which Notebook 7's, nbclassic's and JupyterLab's
apps use; it logs "'contents_manager_class' has moved from NotebookApp to ServerApp").

The frontend tests start ``python -m notebook`` (Notebook 7) or ``python -m nbclassic`` as a real
process whose only configuration of the contents manager is a ``jupyter_notebook_config.py``
with ``c.NotebookApp.*`` lines, on SeaweedFS in a bucket and prefix of the test's own, and
checks every outcome in the bucket with boto3:

* REST (no marker): the notebook seeded in the bucket is listed and opened
  (``GET /api/contents``), its frontend page renders from the bucket, an edit is saved
  (``PUT``), the notebook is renamed (``PATCH``).
* Browser (``browser``): the frontend's notebook page in headless Chromium; a cell is typed
  in, saved with Ctrl+S (the object and its checkpoint change), and renamed from the title.
* Which servers read ``NotebookApp`` lines from which file (``WHO_READS_NOTEBOOKAPP``, no
  marker): ``jupyter lab`` and ``jupyter server`` read ``jupyter_notebook_config.py`` only
  through Notebook 7's or nbclassic's extension; a bare Jupyter Server (JupyterLab, Notebook 7
  and nbclassic switched off) ignores ``NotebookApp`` and serves local files, while
  ``ServerApp`` works there.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from s3contents.embedded import LOOPBACK, free_ports
from tests.browser.browser_support import USER_SETTINGS, Bucket, JupyterApp, Steps
from tests.support.servers import S3Server, spawn

pytestmark = pytest.mark.timeout(120)

#: What the old README's ``jupyter_notebook_config.py`` looks like, with ``NotebookApp`` for
#: ``ServerApp`` as it said (root_dir "" was its "Fix JupyterLab dialog issues" line).
OLD_README_CONFIG = """\
from s3contents import S3ContentsManager

c = get_config()

c.NotebookApp.contents_manager_class = S3ContentsManager
c.NotebookApp.root_dir = ""
c.S3ContentsManager.bucket = {bucket!r}
c.S3ContentsManager.prefix = {prefix!r}
c.S3ContentsManager.endpoint_url = {endpoint_url!r}
c.S3ContentsManager.access_key_id = {access_key_id!r}
c.S3ContentsManager.secret_access_key = {secret_access_key!r}
"""

#: The same with the class named by a string, as most configurations do.
STRING_CONFIG = """\
c.NotebookApp.contents_manager_class = "s3contents.S3ContentsManager"
c.S3ContentsManager.bucket = {bucket!r}
c.S3ContentsManager.prefix = {prefix!r}
c.S3ContentsManager.endpoint_url = {endpoint_url!r}
c.S3ContentsManager.access_key_id = {access_key_id!r}
c.S3ContentsManager.secret_access_key = {secret_access_key!r}
"""

#: frontend -> (module run with ``python -m``, URL of a notebook's page without the path).
#: nbclassic serves its pages under /nbclassic when Notebook 7 is installed (as here).
FRONTENDS = {
    "notebook7": ("notebook", "/notebooks/"),
    "nbclassic": ("nbclassic", "/nbclassic/notebooks/"),
}

#: The server extensions whose apps translate ``NotebookApp`` settings (notebook_shim's
#: config shim).
SHIMMING_EXTENSIONS = ("jupyterlab", "notebook", "nbclassic")

#: The shim's warning, logged by the app that loaded the setting.
MOVED = "'contents_manager_class' has moved from NotebookApp to ServerApp"

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_NO_REDIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def notebook_json(source: str = "") -> bytes:
    """An nbformat 4 notebook with one code cell, for the ``python3`` kernel."""
    return json.dumps(
        {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": "cell-1",
                    "metadata": {},
                    "outputs": [],
                    "source": source,
                }
            ],
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    ).encode()


def source_of_first_cell(notebook: dict[str, Any]) -> str:
    return "".join(notebook["cells"][0]["source"])


# --------------------------------------------------------------------------- the servers


def start_with_config(
    module: str,
    files: dict[str, str],
    *,
    kind: str,
    bucket: str,
    prefix: str,
    timeout: float = 90.0,
) -> JupyterApp:
    """Start ``python -m <module>`` on a free loopback port with a token, configured by
    ``files`` (name -> text) in its own ``JUPYTER_CONFIG_DIR`` and nothing else: no contents
    manager option on the command line, no ``JPY_S3_*`` variable. Every Jupyter folder is in a
    temporary directory, removed by :meth:`JupyterApp.stop`.
    """
    home = Path(tempfile.mkdtemp(prefix=f"s3c-{kind}-"))
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("JPY_S3_", "JPYNB_S3_", "JUPYTER_", "JUPYTERLAB_"))
    }
    dirs = {
        "JUPYTER_CONFIG_DIR": home / "config",
        "JUPYTER_DATA_DIR": home / "data",
        "JUPYTER_RUNTIME_DIR": home / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": home / "settings",
        "JUPYTERLAB_WORKSPACES_DIR": home / "workspaces",
        "IPYTHONDIR": home / "ipython",
        "HOME": home / "home",
    }
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    for name, text in files.items():
        (dirs["JUPYTER_CONFIG_DIR"] / name).write_text(text)
    for name, values in USER_SETTINGS.items():  # no news or update checks (they reach out)
        path = dirs["JUPYTERLAB_SETTINGS_DIR"] / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    token = secrets.token_hex(16)
    (port,) = free_ports(1)
    args = [
        sys.executable,
        "-m",
        module,
        "--no-browser",
        f"--ServerApp.ip={LOOPBACK}",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    log_path = home / f"{kind}.log"
    app = JupyterApp(
        kind=kind,
        url=f"http://{LOOPBACK}:{port}",
        token=token,
        bucket=bucket,
        prefix=prefix,
        home=home,
        log_path=log_path,
        _log_file=log_path.open("ab"),
    )
    try:
        assert app._log_file is not None
        app.process = spawn(args, env, app._log_file, cwd=dirs["HOME"])
        deadline = time.monotonic() + timeout
        while True:
            if app.process.poll() is not None:
                raise RuntimeError(
                    f"{module} exited with code {app.process.returncode}:\n{app.log_tail()}"
                )
            with contextlib.suppress(OSError, urllib.error.URLError):
                if app.api("/api/status") is not None:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{module} not ready after {timeout:.0f}s:\n{app.log_tail()}")
            time.sleep(0.2)
    except BaseException:
        app.stop()
        raise
    return app


def fetch(app: JupyterApp, path: str) -> tuple[int, str, str]:
    """GET a page of the server with the token, redirects not followed: (status, Location
    or Content-Type, body)."""
    request = urllib.request.Request(
        f"{app.url}{path}", headers={"Authorization": f"token {app.token}"}
    )
    try:
        with _NO_REDIRECT.open(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Location", ""), error.read().decode()


def api_status(app: JupyterApp, path: str) -> int:
    try:
        app.api(path)
    except urllib.error.HTTPError as error:
        return error.code
    return 200


@pytest.fixture
def place(seaweedfs: S3Server, s3_place: tuple[str, str]) -> Iterator[Bucket]:
    """What is in the test's bucket and prefix (``s3_place``), read with boto3."""
    client = seaweedfs.client()
    bucket, prefix = s3_place
    yield Bucket(client, bucket, prefix)
    client.close()


@pytest.fixture
def start(
    seaweedfs: S3Server, place: Bucket, artifacts: Path
) -> Iterator[Callable[..., JupyterApp]]:
    """``start(frontend, template)``: the frontend configured by ``jupyter_notebook_config.py``
    = ``template`` filled in with the test's bucket, prefix and the server's credentials.
    Stopped after the test, its log kept in the artifacts folder as ``classic-<frontend>.log``.
    """
    started: list[JupyterApp] = []

    def run(frontend: str, template: str) -> JupyterApp:
        module, _ = FRONTENDS[frontend]
        config = template.format(
            bucket=place.bucket,
            prefix=place.prefix.rstrip("/"),
            endpoint_url=seaweedfs.endpoint_url,
            access_key_id=seaweedfs.access_key_id,
            secret_access_key=seaweedfs.secret_access_key,
        )
        app = start_with_config(
            module,
            {"jupyter_notebook_config.py": config},
            kind=f"classic-{frontend}",
            bucket=place.bucket,
            prefix=place.prefix,
        )
        started.append(app)
        return app

    yield run
    for app in started:
        app.stop(keep_log=artifacts / f"{app.kind}.log")


# --------------------------------------------------------------------------- REST


@pytest.mark.parametrize("frontend", list(FRONTENDS))
def test_notebookapp_config_rest(
    frontend: str, start: Callable[..., JupyterApp], place: Bucket
) -> None:
    """Open, edit and save, rename through the REST API of a frontend configured with the old
    README's ``NotebookApp`` lines; its notebook page is served from the bucket."""
    _, page_url = FRONTENDS[frontend]
    place.put("work/analysis.ipynb", notebook_json("print('from the bucket')"))
    app = start(frontend, OLD_README_CONFIG)
    assert MOVED in app.log_tail(200)

    # open: the listing and the notebook are the bucket's
    root = app.api("/api/contents")
    assert [(item["name"], item["type"]) for item in root["content"]] == [("work", "directory")]
    model = app.api("/api/contents/work/analysis.ipynb")
    assert model["type"] == "notebook"
    assert source_of_first_cell(model["content"]) == "print('from the bucket')"

    # the frontend's page for it
    status, content_type, body = fetch(app, f"{page_url}work/analysis.ipynb")
    assert (status, content_type.split(";")[0]) == (200, "text/html")
    assert "<html" in body.lower()
    if frontend == "nbclassic":
        # nbclassic renders the page from the manager's model: a path not in the bucket is 404
        assert 'data-notebook-path="work/analysis.ipynb"' in body
        assert fetch(app, f"{page_url}work/missing.ipynb")[0] == 404
    else:
        # Notebook 7 asks the manager whether the path is a folder: "work" is one in the bucket
        status, location, _ = fetch(app, f"{page_url}work")
        assert status == 302 and location.endswith("/tree/work")

    # edit and save
    content = model["content"]
    content["cells"][0]["source"] = f"print('saved through {frontend}')"
    saved = app.api(
        "/api/contents/work/analysis.ipynb",
        "PUT",
        {"type": "notebook", "format": "json", "content": content},
    )
    assert saved["path"] == "work/analysis.ipynb"
    stored = place.notebook("work/analysis.ipynb")
    assert source_of_first_cell(stored) == f"print('saved through {frontend}')"

    # rename
    renamed = app.api("/api/contents/work/analysis.ipynb", "PATCH", {"path": "work/renamed.ipynb"})
    assert renamed["path"] == "work/renamed.ipynb"
    assert place.keys() == {"work/renamed.ipynb"}
    assert source_of_first_cell(place.notebook("work/renamed.ipynb")) == (
        f"print('saved through {frontend}')"
    )
    assert api_status(app, "/api/contents/work/analysis.ipynb") == 404
    assert fetch(app, f"{page_url}work/renamed.ipynb")[0] == 200


NB_FILE, SERVER_FILE = "jupyter_notebook_config.py", "jupyter_server_config.py"

#: (app run, file holding the lines, their class, server extensions switched off as if not
#: installed) -> whether the server serves the bucket. jupyter_notebook_config.py is loaded by
#: Notebook 7's and nbclassic's extensions in any server they are enabled in; the shim of
#: JupyterLab's app translates NotebookApp lines of the files it sees too; a Jupyter Server
#: without these apps translates nothing and ignores NotebookApp.
WHO_READS_NOTEBOOKAPP = {
    ("jupyter_server", NB_FILE, "NotebookApp", ("notebook", "jupyterlab")): True,
    ("jupyterlab", NB_FILE, "NotebookApp", ("nbclassic",)): True,
    ("jupyterlab", NB_FILE, "NotebookApp", ("notebook", "nbclassic")): False,
    ("jupyterlab", SERVER_FILE, "NotebookApp", ("notebook", "nbclassic")): True,
    ("jupyter_server", SERVER_FILE, "NotebookApp", SHIMMING_EXTENSIONS): False,
    ("jupyter_server", SERVER_FILE, "ServerApp", SHIMMING_EXTENSIONS): True,
}


def test_who_reads_notebookapp(seaweedfs: S3Server, place: Bucket) -> None:
    """``WHO_READS_NOTEBOOKAPP``, each case a server of its own (all started at once); one
    serving its local working directory (empty) ignored the configuration."""
    place.put("in-the-bucket.ipynb", notebook_json())
    values = {
        "bucket": place.bucket,
        "prefix": place.prefix.rstrip("/"),
        "endpoint_url": seaweedfs.endpoint_url,
        "access_key_id": seaweedfs.access_key_id,
        "secret_access_key": seaweedfs.secret_access_key,
    }

    def serves_bucket(case: tuple[str, str, str, tuple[str, ...]]) -> bool:
        module, file, app_class, off = case
        files = {file: STRING_CONFIG.replace("c.NotebookApp.", f"c.{app_class}.").format(**values)}
        if off:
            switches = {"ServerApp": {"jpserver_extensions": dict.fromkeys(off, False)}}
            files["jupyter_server_config.json"] = json.dumps(switches)
        app = start_with_config(
            module, files, kind=module, bucket=place.bucket, prefix=place.prefix
        )
        try:
            log = app.log_tail(400)
            for extension in off:
                assert f"{extension} | extension was successfully linked" not in log, case
            names = [item["name"] for item in app.api("/api/contents")["content"]]
        finally:
            app.stop()
        assert names in ([], ["in-the-bucket.ipynb"]), (case, names)
        # A translated contents_manager_class is logged as moved; ServerApp needs no shim.
        assert (MOVED in log) == (names != [] and app_class == "NotebookApp"), case
        return names != []

    cases = list(WHO_READS_NOTEBOOKAPP)
    with ThreadPoolExecutor(len(cases)) as pool:
        seen = dict(zip(cases, pool.map(serves_bucket, cases), strict=True))
    assert seen == WHO_READS_NOTEBOOKAPP


# --------------------------------------------------------------------------- browser


def _saved(place: Bucket, text: str) -> Callable[[set[str]], bool]:
    """``draft.ipynb`` and its checkpoint (made by an explicit save) have ``text``."""

    paths = ("draft.ipynb", ".ipynb_checkpoints/draft-checkpoint.ipynb")

    def check(keys: set[str]) -> bool:
        return all(
            path in keys and source_of_first_cell(place.notebook(path)) == text for path in paths
        )

    return check


#: Uncaught errors of Notebook 7's own pages, seen with its default manager too (see
#: ``test_notebook7.UPSTREAM_PAGE_ERRORS``).
UPSTREAM_PAGE_ERRORS = ("Cannot read properties of undefined (reading 'schema')", "Disposed (on ")


@pytest.mark.browser
@pytest.mark.parametrize("frontend", list(FRONTENDS))
def test_notebookapp_config_browser(
    frontend: str,
    start: Callable[..., JupyterApp],
    place: Bucket,
    page: Any,
    artifacts: Path,
) -> None:
    """In Chromium: the notebook page of a frontend configured with ``c.NotebookApp.*`` opens
    the notebook from the bucket; a typed cell is saved with Ctrl+S (object and checkpoint);
    the notebook is renamed from its title."""
    _, page_url = FRONTENDS[frontend]
    place.put("draft.ipynb", notebook_json())
    app = start(frontend, STRING_CONFIG)
    steps = Steps(page, artifacts / f"classic-{frontend}")
    text = f"print('typed in {frontend}')"
    page.goto(f"{app.url}{page_url}draft.ipynb?token={app.token}")
    if frontend == "nbclassic":
        run_nbclassic(page, steps, place, text)
    else:
        run_notebook7(page, steps, place, text)
    assert place.keys() == {"renamed.ipynb", ".ipynb_checkpoints/renamed-checkpoint.ipynb"}
    assert source_of_first_cell(place.notebook("renamed.ipynb")) == text
    assert [e for e in page.s3c_errors if not e.startswith(UPSTREAM_PAGE_ERRORS)] == []


def run_nbclassic(page: Any, steps: Steps, place: Bucket, text: str) -> None:
    with steps("open"):
        page.wait_for_function(
            "() => window.Jupyter && Jupyter.notebook && Jupyter.notebook._fully_loaded",
            timeout=60_000,
        )
        assert page.locator("#notebook_name").inner_text() == "draft"
    with steps("type and save"):
        page.locator("#notebook-container .cell .CodeMirror").first.click()
        page.keyboard.type(text)
        page.keyboard.press("Control+s")
        place.wait_for(_saved(place, text), "saved with Ctrl+S")
    with steps("rename"):
        page.locator("#notebook_name").click()
        dialog = page.locator(".modal-dialog", has_text="Rename Notebook")
        dialog.locator("input").fill("renamed")
        dialog.get_by_role("button", name="Rename").click()
        dialog.wait_for(state="detached")
        # the page's address changes by the history API: no navigation to wait for
        page.wait_for_function("() => location.pathname.endsWith('/notebooks/renamed.ipynb')")
        place.wait_for(lambda keys: "renamed.ipynb" in keys and "draft.ipynb" not in keys, "rn")


def run_notebook7(page: Any, steps: Steps, place: Bucket, text: str) -> None:
    with steps("open"):
        page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first.wait_for(timeout=60_000)
        assert page.locator("#jp-title h1").inner_text() == "draft"
    with steps("type and save"):
        page.locator(".jp-NotebookPanel .jp-Cell .cm-content").first.click()
        page.keyboard.type(text)
        page.keyboard.press("Control+s")
        place.wait_for(_saved(place, text), "saved with Ctrl+S")
    with steps("rename"):
        page.locator("#jp-title h1").click()
        dialog = page.locator(".jp-Dialog-content", has_text="Rename File")
        dialog.locator("input").fill("renamed.ipynb")
        dialog.get_by_role("button", name="Rename").click()
        dialog.wait_for(state="detached")
        page.wait_for_url(re.compile(r"/notebooks/renamed\.ipynb"))
        place.wait_for(lambda keys: "renamed.ipynb" in keys and "draft.ipynb" not in keys, "rn")
