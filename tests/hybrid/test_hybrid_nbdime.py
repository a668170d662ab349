"""nbdime's checkpoint diff on the hybrid manager, in each kind of mount: the bucket's
checkpoints (ours) and a local folder's (jupyter_server's FileCheckpoints, a local file),
through ``HybridCheckpoints.get_notebook_checkpoint``."""

from __future__ import annotations

import json
from typing import Any

import nbdime
import pytest
from nbdime.diff_utils import to_diffentry_dicts
from traitlets.config import Config

from tests.hybrid.hybrid_support import Layout, hybrid_config
from tests.manager.manager_helpers import sample_notebook


@pytest.fixture
def jp_server_config(mounts: Layout) -> Config:
    config = hybrid_config(mounts)
    config.ServerApp.jpserver_extensions = {"jupyter_server_terminals": False, "nbdime": True}
    return config


def _body(text: str) -> str:
    return json.dumps({"type": "notebook", "content": sample_notebook(text, with_output=False)})


@pytest.mark.parametrize("folder", ["", "s3"], ids=["local", "bucket"])
async def test_nbdime_diff_in_a_mount(jp_fetch: Any, jp_serverapp: Any, folder: str) -> None:
    path = f"{folder}/d.ipynb" if folder else "d.ipynb"
    parts = path.split("/")
    await jp_fetch("api", "contents", *parts, method="PUT", body=_body("print('before')"))
    await jp_fetch("api", "contents", *parts, "checkpoints", method="POST", body="")
    await jp_fetch("api", "contents", *parts, method="PUT", body=_body("print('after')"))
    response = await jp_fetch(
        "nbdime", "api", "diff", method="POST", body=json.dumps({"base": f"checkpoint:{path}"})
    )
    assert response.code == 200
    answer = json.loads(response.body)
    assert [c["source"] for c in answer["base"]["cells"]] == ["# Title", "print('before')"]
    patched = nbdime.patch(answer["base"], to_diffentry_dicts(answer["diff"]))
    assert [c["source"] for c in patched["cells"]] == ["# Title", "print('after')"]
