"""PyPI's ``hybridcontents`` 0.4.0 with this package's managers, as the old README set it up.

hybridcontents is a synchronous ``ContentsManager`` that makes its managers with
``parent=self`` and calls them synchronously; our managers then serve it with blocking calls
(:mod:`s3contents.blocking`). The old README's configuration is run as written (placeholders
filled, plus what a local S3-compatible server needs) in a live Jupyter Server on SeaweedFS,
through its REST API; other tests drive hybridcontents directly: every method returns a plain
result, errors are tornado's, one warning per parent, a bounded wait, a GCS root, and a
clean exit.

hybridcontents pins an old notebook: install it with ``pip install --no-deps
hybridcontents==0.4.0`` (it imports ``six``). Without it these tests are skipped, and fail
when ``CI`` is set.
"""

from __future__ import annotations

import base64
import gc
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_server.services.contents.largefilemanager import LargeFileManager
from nbformat.v4 import new_code_cell, new_notebook
from tornado.httpclient import HTTPClientError
from tornado.web import HTTPError
from traitlets.config import Config

from s3contents import S3ContentsManager
from s3contents.blocking import ASYNC_WAY
from tests.support.servers import S3Server

try:
    from hybridcontents import HybridContentsManager as PyPIHybrid
except ImportError as err:  # pragma: no cover - depends on the environment
    _MISSING = (
        f"hybridcontents is not importable ({err}); install it with "
        "'pip install --no-deps hybridcontents==0.4.0' (it also imports six)"
    )
    if os.environ.get("CI"):
        pytest.fail(_MISSING, pytrace=False)
    pytest.skip(_MISSING, allow_module_level=True)

# Two DeprecationWarnings that hybridcontents causes stay warnings (as outside pytest):
# jupyter_server's, because the server's contents manager is sync, and jupyter_client's, about
# the naive datetime hybridcontents gives its mount folders. Everything else stays an error.
pytestmark = [
    pytest.mark.filterwarnings(
        "ignore:The synchronous ContentsManager classes are deprecated:DeprecationWarning"
    ),
    pytest.mark.filterwarnings("ignore:Interpreting naive datetime as local:DeprecationWarning"),
]

#: The old s3contents README's hybridcontents example. One line differs: it imported
#: LargeFileManager from notebook.services.contents.largefilemanager, which Notebook 7 no
#: longer has; jupyter_server's LargeFileManager is the working equivalent.
OLD_README_CONFIG = """
from s3contents import S3ContentsManager
from hybridcontents import HybridContentsManager
from jupyter_server.services.contents.largefilemanager import LargeFileManager

c = get_config()
c.ServerApp.contents_manager_class = HybridContentsManager
c.HybridContentsManager.manager_classes = {
    "": S3ContentsManager,
    "local_directory": LargeFileManager,
}
c.HybridContentsManager.manager_kwargs = {
    "": {
        "access_key_id": "<AWS Access Key ID / IAM Access Key ID>",
        "secret_access_key": "<AWS Secret Access Key / IAM Secret Access Key>",
        "bucket": "<S3 bucket name>",
    },
    "local_directory": {
        "root_dir": "/Users/danielfrg/Downloads",
    },
}
"""

NEVER_AWAITED = ".*was never awaited"


def _notebook(source: str) -> bytes:
    return nbformat.writes(new_notebook(cells=[new_code_cell(source)])).encode()


def _close_mounts(cm: Any) -> None:
    for mgr in cm.managers.values():
        close = getattr(mgr, "close", None)
        if close is not None:
            close()  # blocking: the mount serves a sync parent


@pytest.fixture
def files_handler_params(request: pytest.FixtureRequest) -> dict[str, str] | None:
    """``HybridContentsManager.files_handler_params`` to add to the old configuration
    (parametrize indirectly); None: nothing added."""
    return getattr(request, "param", None)


@pytest.fixture
def jp_server_config(
    s3_config: dict[str, str], local_root: Path, files_handler_params: dict[str, str] | None
) -> Config:
    code = OLD_README_CONFIG
    for placeholder, value in {
        "<AWS Access Key ID / IAM Access Key ID>": s3_config["access_key_id"],
        "<AWS Secret Access Key / IAM Secret Access Key>": s3_config["secret_access_key"],
        "<S3 bucket name>": s3_config["bucket"],
        "/Users/danielfrg/Downloads": str(local_root),
    }.items():
        assert placeholder in code
        code = code.replace(placeholder, value)
    config = Config()
    exec(compile(code, "old-s3contents-README", "exec"), {"get_config": lambda: config})
    # What a local S3-compatible server needs, and the test's own prefix.
    root_kwargs = config.HybridContentsManager.manager_kwargs[""]
    for name in ("endpoint_url", "region_name", "prefix"):
        root_kwargs[name] = s3_config[name]
    config.ServerApp.jpserver_extensions = {"jupyter_server_terminals": False}
    if files_handler_params is not None:
        config.HybridContentsManager.files_handler_params = files_handler_params
    return config


@pytest.fixture
def jp_serverapp(
    jp_server_config: Config, jp_argv: list[str], jp_configurable_serverapp: Any
) -> Iterator[Any]:
    """pytest-jupyter's server on hybridcontents; its S3 mount is closed after the test."""
    app = jp_configurable_serverapp(config=jp_server_config, argv=jp_argv)
    yield app
    _close_mounts(app.contents_manager)


@pytest.fixture
def make_pypi_hybrid() -> Iterator[Any]:
    """``make(classes, kwargs, **settings)``: a hybridcontents manager without a server; its
    mounts are made at once and closed after the test."""
    made: list[Any] = []

    def make(classes: dict[str, Any], kwargs: dict[str, Any], **settings: Any) -> Any:
        cm = PyPIHybrid(manager_classes=classes, manager_kwargs=kwargs, **settings)
        cm.managers  # noqa: B018 - hybridcontents makes its managers on first use
        made.append(cm)
        return cm

    yield make
    for cm in made:
        _close_mounts(cm)


# --------------------------------------------------------------------------- the server


async def test_the_old_readme_configuration_serves_bucket_and_local_folder(
    jp_fetch: Any, jp_serverapp: Any, s3: Any, s3_config: dict[str, str], local_root: Path
) -> None:
    cm = jp_serverapp.contents_manager
    assert isinstance(cm, PyPIHybrid)
    root_mgr = cm.managers[""]
    assert isinstance(root_mgr, S3ContentsManager)
    assert isinstance(cm.managers["local_directory"], LargeFileManager)
    bucket, prefix = s3_config["bucket"], s3_config["prefix"]

    def key(name: str) -> str:
        return f"{prefix}/{name}"

    def stored(name: str) -> bytes:
        return bytes(s3.get_object(Bucket=bucket, Key=key(name))["Body"].read())

    def keys() -> set[str]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])
        return {o["Key"][len(prefix) + 1 :] for o in listed}

    async def call(path: str, method: str = "GET", body: Any = None, **params: Any) -> Any:
        data = json.dumps(body) if body is not None else ("" if method == "POST" else None)
        parts = path.split("/") if path else []
        r = await jp_fetch("api", "contents", *parts, method=method, body=data, params=params)
        return json.loads(r.body) if r.body else None

    events: list[tuple[str, str]] = []

    async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        events.append((data["action"], threading.current_thread().name))

    cm.event_logger.add_listener(schema_id=cm.event_schema_id, listener=listener)

    s3.put_object(Bucket=bucket, Key=key("in-bucket.txt"), Body=b"remote\n")
    s3.put_object(Bucket=bucket, Key=key("nb.ipynb"), Body=_notebook("print('bucket')"))
    (local_root / "local.ipynb").write_bytes(_notebook("print('local')"))
    (local_root / "data.csv").write_text("a,b\n1,2\n")

    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", message=NEVER_AWAITED, category=RuntimeWarning)

        root = await call("")
        assert sorted((e["name"], e["type"]) for e in root["content"]) == [
            ("in-bucket.txt", "file"),
            ("local_directory", "directory"),
            ("nb.ipynb", "notebook"),
        ]
        local = await call("local_directory")
        assert sorted(e["path"] for e in local["content"]) == [
            "local_directory/data.csv",
            "local_directory/local.ipynb",
        ]

        # Open and save a bucket notebook and a local one.
        remote_nb = await call("nb.ipynb")
        assert remote_nb["content"]["cells"][0]["source"] == "print('bucket')"
        local_nb = await call("local_directory/local.ipynb")
        assert local_nb["path"] == "local_directory/local.ipynb"
        assert local_nb["content"]["cells"][0]["source"] == "print('local')"
        for path, model in (("nb.ipynb", remote_nb), ("local_directory/local.ipynb", local_nb)):
            model["content"]["cells"][0]["source"] = f"print('saved {path}')"
            saved = await call(path, "PUT", {"type": "notebook", "content": model["content"]})
            assert saved["path"] == path
        saved_nb = nbformat.reads(stored("nb.ipynb").decode(), as_version=4)
        assert saved_nb.cells[0].source == "print('saved nb.ipynb')"
        saved_local = nbformat.reads((local_root / "local.ipynb").read_text(), as_version=4)
        assert saved_local.cells[0].source == "print('saved local_directory/local.ipynb')"

        # Rename a bucket file, then checkpoint it (kept in the bucket), change it, restore.
        moved = await call("nb.ipynb", "PATCH", {"path": "renamed.ipynb"})
        assert moved["path"] == "renamed.ipynb"
        assert {"renamed.ipynb", "in-bucket.txt"} <= keys()
        assert "nb.ipynb" not in keys()
        checkpoint = await call("renamed.ipynb/checkpoints", "POST")
        assert checkpoint["id"] == "checkpoint"
        assert stored(".ipynb_checkpoints/renamed-checkpoint.ipynb") == stored("renamed.ipynb")
        assert [c["id"] for c in await call("renamed.ipynb/checkpoints")] == ["checkpoint"]
        await call("renamed.ipynb", "PUT", {"type": "file", "format": "text", "content": "{}"})
        await call("renamed.ipynb/checkpoints/checkpoint", "POST")
        restored = nbformat.reads(stored("renamed.ipynb").decode(), as_version=4)
        assert restored.cells[0].source == "print('saved nb.ipynb')"

        # New untitled notebooks, copies and deletes, in the bucket (the parent's own
        # implementations, calling exists/dir_exists/save of the mount).
        created = await call("", "POST", {"type": "notebook"})
        assert created["path"] == "Untitled.ipynb"
        again = await call("", "POST", {"type": "notebook"})
        assert again["path"] == "Untitled1.ipynb"
        copied = await call("", "POST", {"copy_from": "in-bucket.txt"})
        assert copied["path"] == "in-bucket-Copy1.txt"
        assert stored("in-bucket-Copy1.txt") == b"remote\n"
        await call("Untitled1.ipynb", "DELETE")
        assert {"Untitled.ipynb", "in-bucket-Copy1.txt"} <= keys()
        assert "Untitled1.ipynb" not in keys()

        # Errors are the mount's own status codes.
        with pytest.raises(HTTPClientError) as missing:
            await call("nothing-here.ipynb")
        assert missing.value.code == 404
        with pytest.raises(HTTPClientError) as taken:
            await call("in-bucket.txt", "PATCH", {"path": "renamed.ipynb"})
        assert taken.value.code == 409

        # The session manager's call for a notebook in the bucket.
        assert cm.get_kernel_path(path="renamed.ipynb") == ""

        gc.collect()
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]

    # The mount's events reached the server's listeners, on the server's thread.
    assert ("save", threading.current_thread().name) in events
    assert {thread for _, thread in events} == {threading.current_thread().name}


@pytest.mark.parametrize("files_handler_params", [{"path": ""}], indirect=True)
async def test_files_downloads_through_hybridcontents(
    jp_fetch: Any, jp_serverapp: Any, s3: Any, s3_config: dict[str, str], local_root: Path
) -> None:
    """/files/ works through hybridcontents once it has files_handler_params: jupyter_server's
    FilesHandler is a StaticFileHandler that needs a ``path`` argument (and does not use it),
    which a ContentsManager that is not a FileContentsManager does not give it."""
    bucket, prefix = s3_config["bucket"], s3_config["prefix"]
    s3.put_object(Bucket=bucket, Key=f"{prefix}/in-bucket.txt", Body=b"remote\n")
    s3.put_object(Bucket=bucket, Key=f"{prefix}/dir/image.png", Body=b"\x89PNG...")
    (local_root / "data.csv").write_text("a,b\n1,2\n")

    r = await jp_fetch("files", "in-bucket.txt")
    assert r.body == b"remote\n"
    assert r.headers["Content-Type"].startswith("text/plain")
    r = await jp_fetch("files", "dir", "image.png", params={"download": "1"})
    assert r.body == b"\x89PNG..."
    assert "attachment" in r.headers["Content-Disposition"]
    r = await jp_fetch("files", "local_directory", "data.csv")
    assert r.body == b"a,b\n1,2\n"
    with pytest.raises(HTTPClientError) as missing:
        await jp_fetch("files", "missing.txt")
    assert missing.value.code == 404


# --------------------------------------------------------------------------- direct calls


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_blocking_warning_is_logged_once_per_parent(
    make_pypi_hybrid: Any, s3_config: dict[str, str], local_root: Path
) -> None:
    log = logging.getLogger("test_pypi_hybridcontents.warning")
    handler = _Records()
    log.addHandler(handler)
    try:
        layout = {
            "": S3ContentsManager,
            "local": LargeFileManager,
            "me": S3ContentsManager,
        }
        kwargs = {
            "": dict(s3_config),
            "local": {"root_dir": str(local_root)},
            "me": {**s3_config, "prefix": s3_config["prefix"] + "-me"},
        }
        cm = make_pypi_hybrid(layout, kwargs, log=log)
        cm.save({"type": "file", "format": "text", "content": "x"}, "a.txt")
        cm.save({"type": "file", "format": "text", "content": "y"}, "me/b.txt")
        assert {e["name"] for e in cm.get("")["content"]} == {"a.txt", "local", "me"}

        def warnings_logged() -> list[str]:
            return [
                r.getMessage()
                for r in handler.records
                if r.levelno == logging.WARNING and ASYNC_WAY in r.getMessage()
            ]

        assert len(warnings_logged()) == 1
        message = warnings_logged()[0]
        assert "hybridcontents.hybridmanager.HybridContentsManager" in message
        assert "blocks the server's event loop" in message
        make_pypi_hybrid({"": S3ContentsManager}, {"": dict(s3_config)}, log=log)
        assert len(warnings_logged()) == 2  # another parent, warned once too
    finally:
        log.removeHandler(handler)


def test_every_method_returns_plain_results(
    make_pypi_hybrid: Any, s3: Any, s3_config: dict[str, str], local_root: Path
) -> None:
    cm = make_pypi_hybrid(
        {"": S3ContentsManager, "local": LargeFileManager},
        {"": dict(s3_config), "local": {"root_dir": str(local_root)}},
    )
    mgr = cm.managers[""]
    bucket, prefix = s3_config["bucket"], s3_config["prefix"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("always", message=NEVER_AWAITED, category=RuntimeWarning)

        folder = cm.new_untitled(path="", type="directory")
        assert folder["path"] == "Untitled Folder"
        assert cm.dir_exists("Untitled Folder") is True
        assert mgr.dir_exists("nope") is False
        nb = cm.new_untitled(path="Untitled Folder", type="notebook")
        assert nb["path"] == "Untitled Folder/Untitled.ipynb"
        assert cm.file_exists("Untitled Folder/Untitled.ipynb") is True
        assert cm.exists("Untitled Folder/Untitled.ipynb") is True
        assert cm.is_hidden(".secret") is True
        assert cm.is_hidden("Untitled Folder") is False
        model = cm.get("Untitled Folder/Untitled.ipynb")
        assert model["type"] == "notebook"
        model["content"]["cells"] = [new_code_cell("1 + 1")]
        assert cm.save(model, "Untitled Folder/Untitled.ipynb")["type"] == "notebook"
        assert mgr.new(path="made.txt")["path"] == "made.txt"
        assert mgr.copy("made.txt", "Untitled Folder")["path"] == "Untitled Folder/made.txt"
        assert mgr.increment_filename("made.txt") == "made1.txt"
        cm.trust_notebook("Untitled Folder/Untitled.ipynb")
        assert mgr.resolve_path("made.txt") is None

        # Checkpoints through the parent, and through the mount's own checkpoints object.
        assert cm.create_checkpoint("made.txt")["id"] == "checkpoint"
        assert [c["id"] for c in cm.list_checkpoints("made.txt")] == ["checkpoint"]
        assert [c["id"] for c in mgr.checkpoints.list_checkpoints("made.txt")] == ["checkpoint"]
        cm.save({"type": "file", "format": "text", "content": "changed"}, "made.txt")
        cm.restore_checkpoint("checkpoint", "made.txt")
        assert cm.get("made.txt")["content"] == ""
        cm.delete_checkpoint("checkpoint", "made.txt")
        assert mgr.checkpoints.list_checkpoints("made.txt") == []

        # Renames and deletes, within the bucket and from the local folder into it.
        updated = mgr.update({"path": "renamed.txt"}, "made.txt")
        assert updated["path"] == "renamed.txt"
        mgr.rename_file("renamed.txt", "again.txt")
        (local_root / "moved.bin").write_bytes(b"\x00\x01")
        assert cm.rename("local/moved.bin", "moved.bin") is None
        assert not (local_root / "moved.bin").exists()
        body = s3.get_object(Bucket=bucket, Key=f"{prefix}/moved.bin")["Body"].read()
        assert body == b"\x00\x01"
        moved = cm.get("moved.bin", type="file", format="base64")
        assert base64.b64decode(moved["content"]) == b"\x00\x01"
        mgr.delete_file("again.txt")
        cm.delete("Untitled Folder")
        assert cm.exists("Untitled Folder") is False
        assert {e["name"] for e in cm.get("")["content"]} == {"moved.bin", "local"}
        assert mgr.get_kernel_path("moved.bin") == ""

        # Errors are raised as they are.
        with pytest.raises(HTTPError) as missing:
            cm.get("missing.txt")
        assert missing.value.status_code == 404
        with pytest.raises(HTTPError) as reserved:
            cm.save({"type": "file", "format": "text", "content": ""}, "a/.s3keep")
        assert reserved.value.status_code == 400
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_a_stalled_call_gives_up_with_503(make_pypi_hybrid: Any, s3_config: dict[str, str]) -> None:
    """No storage request for 2 x request_timeout: the caller gets a 503, not a hang."""
    release = threading.Event()

    def stuck(**kwargs: Any) -> None:
        release.wait(30)

    cm = make_pypi_hybrid({"": S3ContentsManager}, {"": {**s3_config, "request_timeout": 1}})
    cm.managers[""].pre_save_hook = stuck
    assert cm.exists("") is True
    started = time.monotonic()
    try:
        with pytest.raises(HTTPError) as stalled:
            cm.save({"type": "file", "format": "text", "content": "x"}, "x.txt")
    finally:
        release.set()
    waited = time.monotonic() - started
    assert stalled.value.status_code == 503
    assert "for 2 s" in str(stalled.value)
    assert 1.5 < waited < 10
    assert cm.file_exists("x.txt") is False  # cancelled before it wrote anything
    assert cm.save({"type": "file", "format": "text", "content": "x"}, "x.txt")["size"] == 1


def test_a_gcs_root(make_pypi_hybrid: Any, gcs_config: dict[str, str], local_root: Path) -> None:
    from s3contents.gcs import GCSContentsManager

    cm = make_pypi_hybrid(
        {"": GCSContentsManager, "local": LargeFileManager},
        {"": dict(gcs_config), "local": {"root_dir": str(local_root)}},
    )
    assert isinstance(cm.managers[""], GCSContentsManager)
    nb = cm.new_untitled(path="", type="notebook")
    assert nb["path"] == "Untitled.ipynb"
    cm.rename("Untitled.ipynb", "kept.ipynb")
    assert cm.create_checkpoint("kept.ipynb")["id"] == "checkpoint"
    assert [c["id"] for c in cm.list_checkpoints("kept.ipynb")] == ["checkpoint"]
    assert cm.get("kept.ipynb")["type"] == "notebook"
    assert {e["name"] for e in cm.get("")["content"]} == {"kept.ipynb", "local"}


def test_the_loop_thread_stops_at_exit(seaweedfs: S3Server, s3_config: dict[str, str]) -> None:
    """A process that used a mount exits at once: at exit the mount is closed (no unclosed
    connection) and the loop thread is gone."""
    script = textwrap.dedent(
        """
        import atexit, json, sys, threading

        def report():
            names = [t.name for t in threading.enumerate()]
            print("threads at exit:", names, flush=True)

        # Registered before s3contents.blocking registers its own: runs after it.
        atexit.register(report)

        from hybridcontents import HybridContentsManager
        from s3contents import S3ContentsManager

        cm = HybridContentsManager(
            manager_classes={"": S3ContentsManager},
            manager_kwargs={"": json.loads(sys.argv[1])},
        )
        cm.save({"type": "file", "format": "text", "content": "x"}, "exit.txt")
        assert cm.get("exit.txt")["content"] == "x"
        assert "s3contents-blocking" in [t.name for t in threading.enumerate()]
        """
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", script, json.dumps(s3_config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "threads at exit: ['MainThread']" in done.stdout, done.stdout + done.stderr
    assert "nclosed" not in done.stderr, done.stderr
    assert time.monotonic() - started < 30
