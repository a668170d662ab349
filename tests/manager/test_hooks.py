"""Save hooks and ``init_s3_hook``, as the old package's README documents them.

The two hook examples of the README are copied here verbatim and run through a live
Jupyter Server: hooks run in a worker thread, so a slow one never stalls the server, and
``contents_manager.fs`` hops back onto the event loop for its storage requests.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from configparser import ConfigParser
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import nbformat
import pytest
from aiobotocore.credentials import AioRefreshableCredentials
from aiobotocore.session import get_session
from tornado.web import HTTPError

from s3contents import S3ContentsManager
from s3contents.s3.storage import S3Storage
from tests.manager.manager_helpers import keys_under, sample_notebook

# --------------------------------------------------------------------------- README, verbatim


def scrub_output_pre_save(model, **kwargs):
    """
    Scrub output before saving notebooks
    """

    # only run on notebooks
    if model["type"] != "notebook":
        return

    # only run on nbformat v4
    if model["content"]["nbformat"] != 4:
        return

    for cell in model["content"]["cells"]:
        if cell["cell_type"] != "code":
            continue
        cell["outputs"] = []
        cell["execution_count"] = None


def make_html_post_save(model, s3_path, contents_manager, **kwargs):
    """
    Convert notebooks to HTML after saving via nbconvert
    """
    from nbconvert import HTMLExporter

    if model["type"] != "notebook":
        return

    content, _format = contents_manager.fs.read(s3_path, format="text")
    my_notebook = nbformat.reads(content, as_version=4)

    html_exporter = HTMLExporter()
    html_exporter.template_name = "classic"

    (body, resources) = html_exporter.from_notebook_node(my_notebook)  # noqa: RUF059

    base, ext = os.path.splitext(s3_path)  # noqa: RUF059
    contents_manager.fs.write(path=(base + ".html"), content=body, format=_format)


# --------------------------------------------------------------------------- save hooks


def _nb_body(text: str = "print('hi')") -> str:
    return json.dumps({"type": "notebook", "format": "json", "content": sample_notebook(text)})


def _stored(s3: Any, cm: S3ContentsManager, api_path: str) -> bytes:
    return bytes(s3.get_object(Bucket=cm.bucket, Key=f"{cm.prefix}/{api_path}")["Body"].read())


README_HOOKS = {"pre_save_hook": scrub_output_pre_save, "post_save_hook": make_html_post_save}


# jupyter_server's own validator warns "Overriding existing pre_save_hook" whenever the hook
# comes from configuration (traitlets validates it twice); FileContentsManager does the same.
@pytest.mark.filterwarnings("ignore:Overriding existing pre_save_hook:UserWarning")
@pytest.mark.parametrize("extra_cm_config", [README_HOOKS], indirect=True)
@pytest.mark.parametrize("folder", ["", "sub/dir/"])
async def test_readme_hooks_through_rest(
    jp_fetch: Any, jp_serverapp: Any, s3: Any, folder: str
) -> None:
    cm: S3ContentsManager = jp_serverapp.contents_manager
    assert cm.pre_save_hook is scrub_output_pre_save
    assert cm.post_save_hook is make_html_post_save
    if folder:
        await cm.save({"type": "directory"}, folder.rstrip("/"))
    r = await jp_fetch("api", "contents", f"{folder}report.ipynb", method="PUT", body=_nb_body())
    assert r.code == 201

    stored = nbformat.reads(_stored(s3, cm, f"{folder}report.ipynb").decode(), as_version=4)
    code = [c for c in stored.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert code[0].source == "print('hi')"

    html = _stored(s3, cm, f"{folder}report.html").decode()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "print" in html and "Title" in html
    listing = await cm.get(folder.rstrip("/"))
    assert sorted(e["name"] for e in listing["content"]) == ["report.html", "report.ipynb"]

    # A plain file is left alone by both hooks.
    body = '{"type": "file", "format": "text", "content": "x"}'
    await jp_fetch("api", "contents", f"{folder}notes.txt", method="PUT", body=body)
    assert f"{cm.prefix}/{folder}notes.html" not in keys_under(s3, cm.bucket, cm.prefix + "/")


async def test_fs_read_returns_content_and_format(
    make_cm: Callable[..., S3ContentsManager], s3: Any
) -> None:
    seen: list[Any] = []

    def hook(model: Any, s3_path: str, contents_manager: Any, **kwargs: Any) -> None:
        seen.append(contents_manager.fs.read(s3_path, format="text"))
        seen.append(contents_manager.fs.read(s3_path))
        seen.append(contents_manager.fs.read(s3_path, format="base64")[1])
        # Paths that still carry the prefix, as the old package's hooks used, work too.
        prefixed = f"{contents_manager.prefix}/{s3_path}"
        seen.append(contents_manager.fs.read(prefixed, format="text")[0])

    cm = make_cm(post_save_hook=hook)
    await cm.save({"type": "file", "format": "text", "content": "héllo"}, "a.txt")
    stored = _stored(s3, cm, "a.txt").decode()
    assert seen == [(stored, "text"), (stored, "text"), "base64", stored]


def _slow_hook(model: Any, **kwargs: Any) -> None:
    time.sleep(2)


@pytest.mark.parametrize("extra_cm_config", [{"post_save_hook": _slow_hook}], indirect=True)
async def test_server_stays_responsive_during_a_slow_post_save_hook(
    jp_fetch: Any, jp_serverapp: Any
) -> None:
    began = time.monotonic()
    save = asyncio.ensure_future(
        jp_fetch("api", "contents", "slow.ipynb", method="PUT", body=_nb_body())
    )
    await asyncio.sleep(0.3)
    assert not save.done()
    asked = time.monotonic()
    status = await jp_fetch("api", "status")
    answered = time.monotonic() - asked
    listing = await jp_fetch("api", "contents")
    assert status.code == listing.code == 200
    assert answered < 0.5, f"/api/status took {answered:.2f}s while the hook slept"
    assert not save.done()
    r = await save
    assert r.code == 201
    assert time.monotonic() - began >= 2


async def test_fs_on_the_event_loop_thread_raises(cm: S3ContentsManager) -> None:
    await cm.save({"type": "file", "format": "text", "content": "x"}, "a.txt")
    with pytest.raises(RuntimeError, match="event loop"):
        cm.fs.read("a.txt", format="text")
    with pytest.raises(RuntimeError, match="event loop"):
        cm.fs.write(path="b.txt", content="y", format="text")
    assert await cm.fs.aread("a.txt", format="text") == ("x", "text")
    assert await cm.file_exists("b.txt") is False


async def test_failing_post_save_hook_is_a_500_after_the_save(
    make_cm: Callable[..., S3ContentsManager], s3: Any
) -> None:
    def broken(model: Any, **kwargs: Any) -> None:
        raise ValueError("hook broke")

    cm = make_cm(post_save_hook=broken)
    with pytest.raises(HTTPError) as failed:
        await cm.save({"type": "file", "format": "text", "content": "x"}, "a.txt")
    assert failed.value.status_code == 500
    assert "hook broke" in str(failed.value.log_message)
    assert _stored(s3, cm, "a.txt") == b"x"


# --------------------------------------------------------------------------- init_s3_hook

# The README's key-refresh example, verbatim but for the credentials file's path (a global
# the test sets), and without its `c.S3ContentsManager...` configuration lines.
CREDENTIALS_FILE = "/home/jovyan/.aws/credentials"


def refresh_external_credentials():
    config = ConfigParser()
    config.read(CREDENTIALS_FILE)
    return {
        "access_key": config["default"]["aws_access_key_id"],
        "secret_key": config["default"]["aws_secret_access_key"],
        "token": config["default"]["aws_session_token"],
        "expiry_time": config["default"]["aws_expiration"],
    }


async def async_refresh_credentials():
    return refresh_external_credentials()


def make_key_refresh_boto3(this_s3contents_instance):
    session_credentials = AioRefreshableCredentials.create_from_metadata(
        metadata=refresh_external_credentials(),
        refresh_using=async_refresh_credentials,
        method="custom-refreshing-key-file-reader",
    )
    refresh_session = get_session()  # from aibotocore.session
    refresh_session._credentials = session_credentials
    this_s3contents_instance.boto3_session = refresh_session


def _write_credentials(path: Path, key_id: str, secret: str, expires_in: timedelta) -> None:
    expiry = (datetime.now(timezone.utc) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(
        "[default]\n"
        f"aws_access_key_id = {key_id}\n"
        f"aws_secret_access_key = {secret}\n"
        "aws_session_token = \n"
        f"aws_expiration = {expiry}\n"
    )


async def test_readme_init_s3_hook_with_refreshable_keys(
    make_cm: Callable[..., S3ContentsManager],
    s3_config: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credentials = tmp_path / "credentials"
    monkeypatch.setitem(globals(), "CREDENTIALS_FILE", str(credentials))
    key_id, secret = s3_config["access_key_id"], s3_config["secret_access_key"]
    # Expiring within botocore's mandatory-refresh window: every request re-reads the file.
    _write_credentials(credentials, key_id, secret, timedelta(minutes=5))
    # No keys in the configuration: the session the hook builds is what signs requests.
    cm = make_cm(access_key_id=None, secret_access_key=None, init_s3_hook=make_key_refresh_boto3)
    assert "aws_secret_access_key" not in cast(S3Storage, cm.storage)._client_kwargs
    assert cm.boto3_session is not None

    await cm.save({"type": "file", "format": "text", "content": "x"}, "a.txt")
    assert [e["name"] for e in (await cm.get(""))["content"]] == ["a.txt"]

    # Rotated to a key the server refuses: the next request uses it, and is refused.
    _write_credentials(credentials, key_id, "not-the-secret", timedelta(minutes=5))
    with pytest.raises(HTTPError) as refused:
        await cm.get("")
    assert refused.value.status_code == 403

    # Rotated back: works again, without a new manager.
    _write_credentials(credentials, key_id, secret, timedelta(minutes=5))
    assert (await cm.get("a.txt"))["content"] == "x"
