"""A subset of jupytext's own contents-manager tests (its
``tests/functional/contents_manager``: rename, pairing, text notebooks, outdated text,
configuration files), written again here on the async manager jupytext derives from ours
on SeaweedFS. Each runs on local disk too (jupytext over ``AsyncLargeFileManager``, as
jupytext tests itself): the same expectations hold on both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupytext import build_async_jupytext_contents_manager_class
from jupytext.compare import compare_notebooks
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from tornado.web import HTTPError

from s3contents import S3ContentsManager

JupytextS3 = build_async_jupytext_contents_manager_class(S3ContentsManager)
JupytextLocal = build_async_jupytext_contents_manager_class(AsyncLargeFileManager)


@pytest.fixture(params=["local", "s3"])
def jcm(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    jp_environ: Any,
    jp_asyncio_loop: asyncio.AbstractEventLoop,
) -> Iterator[Any]:
    """jupytext's contents manager on local disk (the reference) or on our manager."""
    if request.param == "local":
        root = tmp_path / "root"
        root.mkdir()
        yield JupytextLocal(root_dir=str(root))
        return
    cm = JupytextS3(**request.getfixturevalue("s3_config"))
    yield cm
    jp_asyncio_loop.run_until_complete(cm.close())


def _python_notebook(with_output: bool = False) -> Any:
    code = new_code_cell("1 + 1")
    if with_output:
        code.outputs = [new_output("execute_result", data={"text/plain": "2"}, execution_count=1)]
        code.execution_count = 1
    return new_notebook(
        cells=[new_markdown_cell("A *short* notebook"), code],
        metadata={
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
    )


def _model(nb: Any) -> dict[str, Any]:
    return {"type": "notebook", "content": nb}


async def _there(cm: Any, *paths: str) -> list[bool]:
    return [bool(await cm.file_exists(p)) for p in paths]


async def test_rename_a_notebook_without_pair(jcm: Any) -> None:
    await jcm.save(_model(new_notebook()), "notebook.ipynb")
    await jcm.rename_file("notebook.ipynb", "new.ipynb")
    assert await _there(jcm, "new.ipynb", "notebook.ipynb") == [True, False]


async def test_rename_to_a_name_that_breaks_the_pairing_renames_the_file_alone(
    jcm: Any,
) -> None:
    # Older jupytext refused this rename; 1.19 drops the formats that do not match the new
    # name (a warning) and renames the file alone, on local disk as here.
    nb = new_notebook(metadata={"jupytext": {"formats": "_suffix.ipynb"}})
    await jcm.save(_model(nb), "notebook_suffix.ipynb")
    await jcm.get("notebook_suffix.ipynb")  # jupytext learns the pairing by reading
    await jcm.rename_file("notebook_suffix.ipynb", "new.ipynb")
    assert await _there(jcm, "notebook_suffix.ipynb", "new.ipynb") == [False, True]


async def test_pair_then_unpair_a_notebook(jcm: Any) -> None:
    nb = _python_notebook(with_output=True)
    await jcm.save(_model(nb), "notebook.ipynb")
    assert await _there(jcm, "notebook.md") == [False]
    nb.metadata["jupytext"] = {"formats": "ipynb,md"}
    await jcm.save(_model(nb), "notebook.ipynb")
    assert await _there(jcm, "notebook.md") == [True]
    # Opening the text side brings the outputs back from the .ipynb.
    from_md = (await jcm.get("notebook.md"))["content"]
    compare_notebooks(from_md, nb)
    assert from_md.cells[1].outputs
    # Unpaired and saved as Markdown alone: no outputs any more.
    del nb.metadata["jupytext"]
    await jcm.save(_model(nb), "notebook.md")
    alone = (await jcm.get("notebook.md"))["content"]
    compare_notebooks(alone, nb, compare_outputs=False)
    assert alone.cells[1].outputs == []


async def test_formats_setting_pairs_saves_and_renames(jcm: Any) -> None:
    jcm.formats = "ipynb,.nb.py"
    nb = _python_notebook()
    await jcm.save(_model(nb), "notebook.nb.py")
    assert await _there(jcm, "notebook.nb.py", "notebook.ipynb") == [True, True]
    compare_notebooks((await jcm.get("notebook.nb.py"))["content"], nb)
    compare_notebooks((await jcm.get("notebook.ipynb"))["content"], nb)
    await jcm.rename("notebook.nb.py", "new.nb.py")
    assert await _there(jcm, "new.nb.py", "new.ipynb", "notebook.nb.py", "notebook.ipynb") == [
        True,
        True,
        False,
        False,
    ]
    # Back, from the other side of the pair.
    await jcm.rename("new.ipynb", "notebook.ipynb")
    assert await _there(jcm, "notebook.nb.py", "notebook.ipynb", "new.ipynb") == [
        True,
        True,
        False,
    ]
    # A new name without the paired suffix: that file alone is renamed (jupytext 1.19).
    await jcm.rename_file("notebook.nb.py", "suffix_missing.py")
    assert await _there(jcm, "suffix_missing.py", "notebook.ipynb", "notebook.nb.py") == [
        True,
        True,
        False,
    ]


async def test_pair_and_rename_with_non_ascii_names(jcm: Any) -> None:
    jcm.formats = "ipynb,py:percent"
    await jcm.save(_model(_python_notebook()), "notebôk.ipynb")
    await jcm.rename("notebôk.ipynb", "nêw.ipynb")
    assert await _there(jcm, "nêw.ipynb", "nêw.py", "notebôk.ipynb", "notebôk.py") == [
        True,
        True,
        False,
        False,
    ]


async def test_a_text_notebook_has_the_model_of_a_notebook(jcm: Any) -> None:
    await jcm.save({"type": "file", "format": "text", "content": "# %%\n1 + 1\n"}, "text.py")
    stat = await jcm.get("text.py", content=False)
    assert stat["type"] == "notebook" and stat["content"] is None
    full = await jcm.get("text.py", content=True)
    assert full["type"] == "notebook" and "cells" in full["content"]
    await jcm.save(_model(new_notebook(cells=[new_markdown_cell("A cell")])), "nb.ipynb")
    ipynb = await jcm.get("nb.ipynb", content=True)
    for key in ("format", "mimetype", "type"):
        assert ipynb[key] == full[key], key


async def test_an_outdated_text_notebook_is_refused_until_the_margin_allows(jcm: Any) -> None:
    jcm.formats = "py,ipynb"
    jcm.outdated_text_notebook_margin = 0
    nb = _python_notebook()
    await jcm.save(_model(nb), "notebook.py")
    py = await jcm.get("notebook.py", load_alternative_format=False)
    ipynb = await jcm.get("notebook.ipynb", load_alternative_format=False)
    assert ipynb["last_modified"] <= py["last_modified"]
    time.sleep(0.5)
    # The .ipynb changed behind jupytext's back (the wrapped manager's own save).
    nb.cells.append(new_markdown_cell("New cell"))
    await jcm.super.save(_model(nb), "notebook.ipynb")
    with pytest.raises(HTTPError):
        await jcm.get("notebook.py")
    jcm.outdated_text_notebook_margin = float("inf")
    await jcm.get("notebook.py")


async def test_a_jupytext_toml_in_the_folder_pairs_new_notebooks(jcm: Any) -> None:
    await jcm.save({"type": "directory"}, "project")
    toml = 'formats = "ipynb,py:percent"\n'
    await jcm.save({"type": "file", "format": "text", "content": toml}, "project/jupytext.toml")
    await jcm.save(_model(_python_notebook()), "project/analysis.ipynb")
    assert await _there(jcm, "project/analysis.ipynb", "project/analysis.py") == [True, True]
    # Outside that folder nothing is paired.
    await jcm.save(_model(_python_notebook()), "loose.ipynb")
    assert await _there(jcm, "loose.py") == [False]
