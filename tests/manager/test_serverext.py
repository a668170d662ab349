"""The server extension ``s3contents``, enabled by the manager itself (in-process server).

Real processes stopped by signals are in ``tests/multiwriter/test_upload_lifecycle.py``.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from traitlets.config import Config

from s3contents import S3ContentsManager
from s3contents.serverhooks import EXTENSION, managers_of

MIB = 1024 * 1024


@pytest.fixture(params=[None, False], ids=["default", "turned-off"])
def setting(request: pytest.FixtureRequest) -> bool | None:
    """``ServerApp.jpserver_extensions["s3contents"]``: unset, or False."""
    return request.param


@pytest.fixture
def jp_server_config(s3_config: dict[str, str], setting: bool | None) -> Config:
    extensions: dict[str, bool] = {"jupyter_server_terminals": False}
    if setting is not None:
        extensions[EXTENSION] = setting
    return Config(
        {
            "ServerApp": {
                "contents_manager_class": S3ContentsManager,
                "jpserver_extensions": extensions,
            },
            "S3ContentsManager": {**s3_config, "upload_part_size": 5 * MIB},
        }
    )


def _uploads(s3: Any, cm: S3ContentsManager) -> list[str]:
    listed = s3.list_multipart_uploads(Bucket=cm.bucket, Prefix=cm.prefix + "/")
    return [u["Key"] for u in listed.get("Uploads", [])]


async def test_the_extension_aborts_uploads_when_the_server_stops(
    jp_serverapp: Any, s3: Any, setting: bool | None
) -> None:
    app = jp_serverapp
    cm = app.contents_manager
    enabled = setting is None
    assert bool(app.extension_manager.extension_apps.get(EXTENSION)) is enabled
    assert managers_of(app) == [cm]
    chunk = base64.b64encode(os.urandom(6 * MIB)).decode()
    for number in (1, 2):
        await cm.save({"type": "file", "format": "base64", "chunk": number, "content": chunk}, "u")
    assert _uploads(s3, cm) == [f"{cm.prefix}/u"]
    await app.extension_manager.stop_all_extensions()
    assert _uploads(s3, cm) == ([] if enabled else [f"{cm.prefix}/u"])
    # The manager still works after (a closed manager opens its connections again).
    await cm.save({"type": "file", "format": "text", "content": "after"}, "after.txt")
    assert (await cm.get("after.txt"))["content"] == "after"
    await cm.close()
    assert _uploads(s3, cm) == []


# --------------------------------------------------------------------------- kernels


async def test_kernels_are_told_where_their_notebook_is(
    jp_serverapp: Any, s3_config: dict[str, str], setting: bool | None
) -> None:
    """A kernel for ``sub dir/nb 1.ipynb`` gets the notebook's URL as ``JPY_SESSION_NAME``
    (IPython's ``__session__``), its folder's as ``S3CONTENTS_URL`` and the endpoint; the
    kernel itself says so. Without the extension, jupyter_server's local path that does not
    exist is left."""
    app = jp_serverapp
    cm = app.contents_manager
    await cm.save({"type": "directory"}, "sub dir")
    await cm.new(path="sub dir/nb 1.ipynb")
    place = f"s3://{s3_config['bucket']}/{s3_config['prefix']}/sub dir/"
    told = app.session_manager.get_kernel_env("sub dir/nb 1.ipynb", "nb 1.ipynb")
    if setting is None:
        assert told["JPY_SESSION_NAME"] == place + "nb 1.ipynb"
        assert told["S3CONTENTS_URL"] == place
        assert told["S3CONTENTS_ENDPOINT_URL"] == s3_config["endpoint_url"]
        assert s3_config["secret_access_key"] not in "".join(told.values())
        # Paths the manager refuses keep jupyter_server's environment.
        assert "S3CONTENTS_URL" not in app.session_manager.get_kernel_env("../x", "x")
    else:
        assert told["JPY_SESSION_NAME"] == os.path.join(app.root_dir, "nb 1.ipynb")
        assert "S3CONTENTS_URL" not in told
        return

    session = await app.session_manager.create_session(
        path="sub dir/nb 1.ipynb", name="nb 1.ipynb", type="notebook", kernel_name="python3"
    )
    kernel = app.kernel_manager.get_kernel(session["kernel"]["id"])
    client = kernel.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        printed: list[str] = []

        def output(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                printed.append(msg["content"]["text"])

        code = "import os; print(__session__); print(os.environ['S3CONTENTS_URL'])"
        reply = await client.execute_interactive(code, output_hook=output, timeout=60)
        assert reply["content"]["status"] == "ok"
        assert "".join(printed).splitlines() == [place + "nb 1.ipynb", place]
    finally:
        client.stop_channels()
        await app.session_manager.delete_session(session["id"])
