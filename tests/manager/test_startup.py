"""A missing bucket or refused access never stops the server: one clear error, then 4xx/5xx."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError
from tornado.web import HTTPError
from traitlets.config import Config

from s3contents import S3ContentsManager
from tests.support.servers import S3Server


async def test_missing_bucket_answers_503_naming_it_and_logs_once(
    make_cm: Callable[..., S3ContentsManager], caplog: pytest.LogCaptureFixture, s3: Any
) -> None:
    cm = make_cm(bucket="no-such-bucket-s3c")
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            with pytest.raises(HTTPError) as raised:
                await cm.get("")
            assert raised.value.status_code == 503
            assert "'no-such-bucket-s3c' does not exist" in str(raised.value.log_message)
        with pytest.raises(HTTPError):
            await cm.save({"type": "file", "format": "text", "content": "x"}, "a.txt")
    errors = [r for r in caplog.records if "not ready" in r.getMessage()]
    assert len(errors) == 1
    # SeaweedFS creates a bucket on a first write; the check kept it from happening.
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "no-such-bucket-s3c" not in names


async def test_bucket_created_later_is_used_without_restart(
    make_cm: Callable[..., S3ContentsManager], seaweedfs: S3Server
) -> None:
    cm = make_cm(bucket="late-bucket-s3c")
    with pytest.raises(HTTPError):
        await cm.get("")
    seaweedfs.make_bucket("late-bucket-s3c")
    try:
        assert (await cm.get(""))["type"] == "directory"
    finally:
        seaweedfs.remove_bucket("late-bucket-s3c")


@pytest.fixture
def jp_server_config(s3_config: dict[str, str]) -> Config:
    """A server whose credentials are wrong: it must start and answer 403."""
    settings = {**s3_config, "secret_access_key": "wrong-" + "s" * 30}
    return Config(
        {
            "ServerApp": {
                "contents_manager_class": S3ContentsManager,
                "jpserver_extensions": {"jupyter_server_terminals": False},
            },
            "S3ContentsManager": settings,
        }
    )


async def test_wrong_credentials_start_and_answer_403(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch("api", "contents", "", method="GET")
    assert raised.value.code == 403
    assert raised.value.response is not None
    body = json.loads(raised.value.response.body)
    assert "rejected the credentials" in body["message"]
    status = await jp_fetch("api", "status", method="GET")
    assert status.code == 200
