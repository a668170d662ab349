"""History through Jupyter's REST API, as JupyterLab's "Revert to Checkpoint" uses it: the
ids of versions pass Jupyter's checkpoint routes, and the settings are Jupyter config."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from s3contents import S3ContentsManager
from tests.manager.manager_helpers import sample_notebook
from tests.support.servers import S3Server
from tests.support.versions import delete_every_version


@pytest.fixture
def versioned_bucket(seaweedfs: S3Server) -> Iterator[str]:
    bucket = seaweedfs.make_bucket()
    s3 = seaweedfs.admin
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    yield bucket
    delete_every_version(s3, bucket)
    s3.delete_bucket(Bucket=bucket)


@pytest.fixture
def jp_server_config(seaweedfs: S3Server, versioned_bucket: str) -> Config:
    return Config(
        {
            "ServerApp": {
                "contents_manager_class": S3ContentsManager,
                "jpserver_extensions": {"jupyter_server_terminals": False},
            },
            "S3ContentsManager": {
                "bucket": versioned_bucket,
                "prefix": f"t/{secrets.token_hex(4)}",
                "endpoint_url": seaweedfs.endpoint_url,
                "access_key_id": seaweedfs.access_key_id,
                "secret_access_key": seaweedfs.secret_access_key,
                "region_name": seaweedfs.region_name,
            },
            "ObjectStoreCheckpoints": {"max_versions": 2},
        }
    )


def _body(text: str) -> str:
    return json.dumps({"type": "notebook", "content": sample_notebook(text, with_output=False)})


async def test_revert_to_a_version_through_rest(jp_fetch: Any, jp_serverapp: Any) -> None:
    for i in range(4):
        await jp_fetch("api", "contents", "h.ipynb", method="PUT", body=_body(f"print({i})"))
    await jp_fetch("api", "contents", "h.ipynb", "checkpoints", method="POST", body="")
    stats: Counter[str] = jp_serverapp.contents_manager.storage.stats
    await jp_fetch("api", "contents", "h.ipynb", "checkpoints")
    stats.clear()
    listed = json.loads((await jp_fetch("api", "contents", "h.ipynb", "checkpoints")).body)
    assert +stats == {"LIST": 1, "HEAD": 1}
    assert listed[0]["id"] == "checkpoint"
    assert len(listed) == 3  # the checkpoint and max_versions = 2 versions
    oldest = listed[-1]["id"]

    stats.clear()
    response = await jp_fetch(
        "api", "contents", "h.ipynb", "checkpoints", oldest, method="POST", body=""
    )
    assert response.code == 204
    assert +stats == {"COPY": 1}
    model = json.loads((await jp_fetch("api", "contents", "h.ipynb")).body)
    assert model["content"]["cells"][1]["source"] == "print(1)"

    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("api", "contents", "h.ipynb", "checkpoints", oldest, method="DELETE")
    assert refused.value.code == 409
