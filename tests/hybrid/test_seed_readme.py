"""The README's "Local files beside the bucket" configuration, run as written.

The Python block of that section (the old package's hybridcontents example with its imports
brought up to date) is executed with its placeholders filled in: the bucket is the root and a
local folder is ``local_directory``. Only what an AWS bucket would not need is added (the
S3-compatible server's endpoint, and the test's own prefix).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.services.contents.handlers import validate_model
from jupyter_server.services.contents.largefilemanager import LargeFileManager
from traitlets.config import Config

from s3contents import S3ContentsManager
from s3contents.hybrid import HybridContentsManager

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_config() -> str:
    """The Python block of the README's "Local files beside the bucket" section."""
    section = README.read_text().split("\n## Local files beside the bucket\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def jp_server_config(s3_config: dict[str, str], local_root: Path) -> Config:
    code = readme_config()
    for placeholder, value in {
        "<AWS Access Key ID / IAM Access Key ID>": s3_config["access_key_id"],
        "<AWS Secret Access Key / IAM Secret Access Key>": s3_config["secret_access_key"],
        "<S3 bucket name>": s3_config["bucket"],
        "/Users/danielfrg/Downloads": str(local_root),
    }.items():
        assert placeholder in code
        code = code.replace(placeholder, value)
    config = Config()
    exec(compile(code, str(README), "exec"), {"get_config": lambda: config})
    root_kwargs = config.HybridContentsManager.manager_kwargs[""]
    for name in ("endpoint_url", "region_name", "prefix"):
        root_kwargs[name] = s3_config[name]
    config.ServerApp.jpserver_extensions = {"jupyter_server_terminals": False}
    return config


async def test_the_readme_configuration_serves_the_bucket_and_the_local_folder(
    jp_fetch: Any, jp_serverapp: Any, s3: Any, s3_config: dict[str, str], local_root: Path
) -> None:
    cm = jp_serverapp.contents_manager
    assert isinstance(cm, HybridContentsManager)
    assert isinstance(cm.managers[""], S3ContentsManager)
    assert isinstance(cm.managers["local_directory"], LargeFileManager)

    def key(name: str) -> str:
        return f"{s3_config['prefix']}/{name}"

    async def call(path: str, method: str = "GET", body: Any = None) -> Any:
        data = None if body is None else json.dumps(body)
        r = await jp_fetch("api", "contents", *path.split("/"), method=method, body=data)
        return json.loads(r.body) if r.body else None

    (local_root / "downloaded.csv").write_text("a,b\n1,2\n")
    s3.put_object(Bucket=s3_config["bucket"], Key=key("in-bucket.txt"), Body=b"remote\n")

    root = await call("")
    validate_model(root, expect_content=True)
    assert sorted((e["name"], e["type"]) for e in root["content"]) == [
        ("in-bucket.txt", "file"),
        ("local_directory", "directory"),
    ]
    local = await call("local_directory")
    assert [e["path"] for e in local["content"]] == ["local_directory/downloaded.csv"]

    await call(
        "local_directory/notes.txt", "PUT", {"type": "file", "format": "text", "content": "x"}
    )
    assert (local_root / "notes.txt").read_text() == "x"

    moved = await call("local_directory/downloaded.csv", "PATCH", {"path": "data.csv"})
    assert moved["path"] == "data.csv"
    body = s3.get_object(Bucket=s3_config["bucket"], Key=key("data.csv"))["Body"].read()
    assert body == b"a,b\n1,2\n"
    assert not (local_root / "downloaded.csv").exists()

    r = await jp_fetch("files", "local_directory", "notes.txt")
    assert r.body == b"x"
    r = await jp_fetch("files", "in-bucket.txt")
    assert r.body == b"remote\n"
