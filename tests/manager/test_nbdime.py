"""nbdime's checkpoint diff on our manager: its server extension, loaded in a real Jupyter
server on S3ContentsManager (SeaweedFS), reads the checkpoint through our checkpoints'
``GenericCheckpointsMixin`` interface (``get_notebook_checkpoint``, given the first model
``list_checkpoints`` answers): on a versioned bucket the file's previous version, on an
unversioned one its explicit checkpoint."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterator
from typing import Any

import nbdime
import pytest
from nbdime.diff_utils import to_diffentry_dicts
from traitlets.config import Config

from s3contents import S3ContentsManager
from tests.manager.manager_helpers import sample_notebook
from tests.support.servers import S3Server
from tests.support.versions import delete_every_version


@pytest.fixture(params=["versioned", "unversioned"])
def bucket(request: pytest.FixtureRequest, seaweedfs: S3Server) -> Iterator[tuple[str, bool]]:
    versioned = request.param == "versioned"
    name = seaweedfs.make_bucket()
    s3 = seaweedfs.admin
    if versioned:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    yield name, versioned
    delete_every_version(s3, name)
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def jp_server_config(seaweedfs: S3Server, bucket: tuple[str, bool]) -> Config:
    return Config(
        {
            "ServerApp": {
                "contents_manager_class": S3ContentsManager,
                "jpserver_extensions": {"jupyter_server_terminals": False, "nbdime": True},
            },
            "S3ContentsManager": {
                "bucket": bucket[0],
                "prefix": f"t/{secrets.token_hex(4)}",
                "endpoint_url": seaweedfs.endpoint_url,
                "access_key_id": seaweedfs.access_key_id,
                "secret_access_key": seaweedfs.secret_access_key,
                "region_name": seaweedfs.region_name,
            },
        }
    )


def _body(text: str) -> str:
    return json.dumps({"type": "notebook", "content": sample_notebook(text, with_output=False)})


def _changed_sources(diff: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The diff entries of the cells' ``source`` fields, wherever nbdime puts them."""
    found: list[dict[str, Any]] = []

    def walk(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            if entry.get("key") == "source":
                found.append(entry)
            walk(entry.get("diff") or [])

    walk(diff)
    return found


async def test_nbdime_diffs_a_notebook_with_its_checkpoint(
    jp_fetch: Any, jp_serverapp: Any, bucket: tuple[str, bool]
) -> None:
    _, versioned = bucket
    await jp_fetch("api", "contents", "d.ipynb", method="PUT", body=_body("print('before')"))
    if not versioned:
        await jp_fetch("api", "contents", "d.ipynb", "checkpoints", method="POST", body="")
    await jp_fetch("api", "contents", "d.ipynb", method="PUT", body=_body("print('after')"))
    listed = json.loads((await jp_fetch("api", "contents", "d.ipynb", "checkpoints")).body)
    assert listed[0]["id"] != "checkpoint" if versioned else listed[0]["id"] == "checkpoint"

    stats: Counter[str] = jp_serverapp.contents_manager.storage.stats
    stats.clear()
    response = await jp_fetch(
        "nbdime", "api", "diff", method="POST", body=json.dumps({"base": "checkpoint:d.ipynb"})
    )
    assert response.code == 200
    answer = json.loads(response.body)
    base_sources = [cell["source"] for cell in answer["base"]["cells"]]
    assert base_sources == ["# Title", "print('before')"]
    assert _changed_sources(answer["diff"]), answer["diff"]  # the cell's source changed
    # The diff is the change: applied to the checkpoint, it gives the saved notebook.
    patched = nbdime.patch(answer["base"], to_diffentry_dicts(answer["diff"]))
    assert [cell["source"] for cell in patched["cells"]] == ["# Title", "print('after')"]
    # The file (HEAD + GET), its checkpoints (HEAD; versioned: + LIST), the checkpoint (GET).
    assert stats["GET"] == 2
    assert stats["LIST"] == (1 if versioned else 0)
