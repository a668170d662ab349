"""jupytext on our manager, as users run it (issue 16), with jupytext over jupyter_server's
local ``AsyncLargeFileManager`` as the reference in the same test.

jupytext wraps any contents manager (its server extension derives a class with
``build_async_jupytext_contents_manager_class``): text notebooks are created, a pair is
written on the first save, renamed and copied together, and ``.py`` notebooks are typed
as on local disk. jupytext 1.19 calls ``exists()`` without ``await``
(``increment_notebook_filename``, ``rename_file``): that must give true answers, never a
hang (docs/jupytext.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupytext import build_async_jupytext_contents_manager_class
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from traitlets.config import Config

from s3contents import S3ContentsManager

JupytextS3 = build_async_jupytext_contents_manager_class(S3ContentsManager)
JupytextLocal = build_async_jupytext_contents_manager_class(AsyncLargeFileManager)

PAIRED = {"jupytext": {"formats": "ipynb,py:percent"}}


@pytest.fixture(params=["s3", "gcs"])
def managers(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    jp_environ: Any,
    jp_asyncio_loop: asyncio.AbstractEventLoop,
) -> Iterator[dict[str, Any]]:
    """jupytext over our manager on the test's prefix (S3 on SeaweedFS, or GCS on
    fake-gcs-server), and over local disk (the reference)."""
    root = tmp_path / "local"
    root.mkdir()
    if request.param == "gcs":
        from s3contents.gcs import GCSContentsManager

        cls = build_async_jupytext_contents_manager_class(GCSContentsManager)
        ours = cls(**request.getfixturevalue("gcs_config"))
    else:
        ours = JupytextS3(**request.getfixturevalue("s3_config"))
    local = JupytextLocal(root_dir=str(root))
    yield {"ours": ours, "local": local}
    jp_asyncio_loop.run_until_complete(ours.close())


def _notebook(metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    nb = new_notebook(
        cells=[new_markdown_cell("# Title"), new_code_cell("x = 1\nprint(x)")],
        metadata=metadata or {},
    )
    return {"type": "notebook", "content": nb}


async def _types(cm: Any, path: str = "") -> dict[str, str]:
    """Name -> type of the entries of a folder, as the file browser lists them."""
    model = await cm.get(path, content=True)
    return {e["name"]: e["type"] for e in model["content"]}


async def _scenario(cm: Any) -> dict[str, Any]:
    """What a user does with jupytext, and what each step shows."""
    seen: dict[str, Any] = {}
    await cm.save({"type": "directory"}, "work")
    # "New Text Notebook" (File Browser): jupytext's new_untitled with an ext:format.
    first = await cm.new_untitled(path="work", type="notebook", ext=".py:percent")
    second = await cm.new_untitled(path="work", type="notebook", ext=".py:percent")
    seen["untitled"] = (first["name"], first["type"], second["name"])
    text = await cm.get("work/Untitled.py", content=True)
    seen["untitled content"] = (text["type"], text["format"])
    # A new notebook paired with a script: both files at the first save.
    created = await cm.new(_notebook(PAIRED), "work/paired.ipynb")
    seen["new paired"] = (created["name"], created["type"])
    seen["after new"] = await _types(cm, "work")
    # The .py side opens as a notebook, with the cells.
    script = await cm.get("work/paired.py", content=True)
    seen["script"] = (script["type"], [c["source"] for c in script["content"]["cells"]])
    # Renaming the notebook renames its pair.
    await cm.rename("work/paired.ipynb", "work/moved.ipynb")
    seen["after rename"] = await _types(cm, "work")
    # Copying it copies the pair.
    copied = await cm.copy("work/moved.ipynb")
    seen["copy"] = (copied["name"], copied["type"])
    seen["after copy"] = await _types(cm, "work")
    # Saving through the .py updates the .ipynb as well.
    nb = (await cm.get("work/moved.py", content=True))["content"]
    nb["cells"].append(new_code_cell("y = 2"))
    reply = await cm.save({"type": "notebook", "content": nb}, "work/moved.py")
    seen["save reply"] = (reply["name"], reply["type"])
    ipynb = await cm.get("work/moved.ipynb", content=True)
    seen["ipynb after py save"] = [c["source"] for c in ipynb["content"]["cells"]]
    # Without content (the file browser's stat of one file), and deletion of one side.
    seen["stat"] = (await cm.get("work/moved.py", content=False))["type"]
    await cm.delete("work/moved-Copy1.py")
    seen["after delete"] = await _types(cm, "work")
    return seen


async def test_jupytext_on_the_bucket_behaves_as_on_local_disk(managers: dict[str, Any]) -> None:
    local = await _scenario(managers["local"])
    ours = await _scenario(managers["ours"])
    assert ours == local
    # And what that is, so that the reference cannot drift unseen.
    assert ours["untitled"] == ("Untitled.py", "notebook", "Untitled1.py")
    assert ours["new paired"] == ("paired.ipynb", "notebook")
    assert ours["after new"] == {
        "Untitled.py": "notebook",
        "Untitled1.py": "notebook",
        "paired.ipynb": "notebook",
        "paired.py": "notebook",
    }
    assert ours["script"] == ("notebook", ["# Title", "x = 1\nprint(x)"])
    assert {"moved.ipynb", "moved.py"} <= set(ours["after rename"])
    assert not {"paired.ipynb", "paired.py"} & set(ours["after rename"])
    assert ours["copy"] == ("moved-Copy1.ipynb", "notebook")
    assert {"moved-Copy1.ipynb", "moved-Copy1.py"} <= set(ours["after copy"])
    assert ours["save reply"] == ("moved.py", "notebook")
    assert ours["ipynb after py save"][-1] == "y = 2"
    assert ours["stat"] == "notebook"


async def test_both_files_of_a_pair_are_in_the_bucket_after_the_first_save(
    s3: Any, s3_config: dict[str, str], jp_environ: Any
) -> None:
    cm = JupytextS3(**s3_config)
    try:
        await cm.new(_notebook(PAIRED), "nb.ipynb")
        listed = s3.list_objects_v2(Bucket=s3_config["bucket"], Prefix=s3_config["prefix"] + "/")
        names = {o["Key"].rsplit("/", 1)[-1] for o in listed.get("Contents", [])}
        assert {"nb.ipynb", "nb.py"} <= names
        body = s3.get_object(Bucket=s3_config["bucket"], Key=s3_config["prefix"] + "/nb.py")
        text = body["Body"].read().decode()
        assert "# %%" in text and "x = 1" in text
    finally:
        await cm.close()


@pytest.fixture
def jp_server_config(s3_config: dict[str, str]) -> Config:
    """A live server on our manager with jupytext's own server extension, as installed."""
    return Config(
        {
            "ServerApp": {
                "contents_manager_class": S3ContentsManager,
                "jpserver_extensions": {
                    "jupyter_server_terminals": False,
                    "jupyterlab_jupytext": True,
                },
            },
            "S3ContentsManager": s3_config,
        }
    )


@pytest.mark.timeout(60)
# jupytext 1.19's extension still names its entry point load_jupyter_server_extension.
@pytest.mark.filterwarnings(
    "ignore:A .?_load_jupyter_server_extension.? function was not found:DeprecationWarning"
)
async def test_new_text_notebook_over_rest_answers_and_the_server_stays_up(
    jp_fetch: Callable[..., Any], jp_serverapp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    assert hasattr(jp_serverapp.contents_manager, "paired_notebooks")  # jupytext wraps it
    body = json.dumps({"type": "notebook", "ext": ".py:percent"})
    r = await jp_fetch("api", "contents", method="POST", body=body)
    assert r.code == 201
    model = json.loads(r.body)
    assert (model["name"], model["type"]) == ("Untitled.py", "notebook")
    r = await jp_fetch("api", "contents", method="POST", body=body)
    assert json.loads(r.body)["name"] == "Untitled1.py"
    status = await jp_fetch("api", "status")
    assert status.code == 200
    listed = json.loads((await jp_fetch("api", "contents")).body)
    assert {e["name"]: e["type"] for e in listed["content"]} == {
        "Untitled.py": "notebook",
        "Untitled1.py": "notebook",
    }
    assert not [r for r in caplog.records if "never awaited" in r.getMessage()]
