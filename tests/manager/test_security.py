"""Paths never leave the prefix; bad models write nothing; secrets never leak.

Every hostile path goes through each manager method and each REST endpoint and must be
answered 400 or 404, while a boto3 snapshot of the bucket proves nothing was written
outside the test's prefix (a sibling prefix holds a canary that must stay as it is).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from tornado.httpclient import HTTPClientError
from tornado.web import HTTPError

from s3contents import S3ContentsManager
from tests.manager.manager_helpers import keys_under, sample_notebook

HOSTILE = [
    "..",
    "../x.txt",
    "a/../../x.txt",
    "a/..",
    "./x.txt",
    "a/./b.txt",
    "%2e%2e/x.txt",
    "%2E%2E/%2e%2e/x.txt",
    "..%2fx.txt",
    " ../x.txt",
    "C:/x.txt",
    "c:x.txt",
    "a\x00b.txt",
    "a\nb.txt",
    "a\rb.txt",
    "a\x1bb.txt",
    "a\x7fb.txt",
    "a\u2028b.txt",
    "..\\x.txt",
    "a\\b.txt",
    "a//b.txt",
    "x" * 300,
    "/".join(["d" * 250] * 5) + "/x.txt",
]
#: Absolute-looking paths are relative to the root, as in Jupyter: they may exist inside it.
INSIDE = ["/etc/passwd", "//etc/passwd"]


def _snapshot(s3: Any, bucket: str) -> dict[str, str]:
    """Every key of the bucket with its ETag."""
    found: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["ETag"]
    return found


@pytest.fixture
def canary(s3: Any, s3_config: dict[str, str]) -> str:
    """A sibling of the test's prefix holding one object; returns its key."""
    key = f"{s3_config['prefix']}-canary/secret.txt"
    s3.put_object(Bucket=s3_config["bucket"], Key=key, Body=b"canary")
    return key


async def _refused(awaitable: Any) -> int:
    with pytest.raises(HTTPError) as raised:
        await awaitable
    return int(raised.value.status_code)


def _operations(cm: S3ContentsManager, path: str) -> dict[str, Any]:
    text = {"type": "file", "format": "text", "content": "pwned"}
    return {
        "get": lambda: cm.get(path),
        "get-meta": lambda: cm.get(path, content=False),
        "get-dir": lambda: cm.get(path, type="directory"),
        "save": lambda: cm.save(dict(text), path),
        "save-dir": lambda: cm.save({"type": "directory"}, path),
        "new": lambda: cm.new(dict(text), path),
        "new_untitled": lambda: cm.new_untitled(path=path, type="notebook"),
        "delete": lambda: cm.delete(path),
        "rename-from": lambda: cm.rename(path, "renamed.txt"),
        "rename-to": lambda: cm.rename("ok.txt", path),
        "copy-from": lambda: cm.copy(path),
        "copy-to": lambda: cm.copy("ok.txt", path),
        "update": lambda: cm.update({"path": path}, "ok.txt"),
        "create_checkpoint": lambda: cm.create_checkpoint(path),
        "restore_checkpoint": lambda: cm.restore_checkpoint("checkpoint", path),
        "list_checkpoints": lambda: cm.list_checkpoints(path),
        "delete_checkpoint": lambda: cm.delete_checkpoint("checkpoint", path),
        "file_exists": lambda: cm.file_exists(path),
        "dir_exists": lambda: cm.dir_exists(path),
    }


async def test_hostile_paths_through_the_manager(
    cm: S3ContentsManager, s3: Any, canary: str
) -> None:
    await cm.save({"type": "file", "format": "text", "content": "ok"}, "ok.txt")
    before = _snapshot(s3, cm.bucket)
    for path in HOSTILE:
        for name, call in _operations(cm, path).items():
            status = await _refused(call())
            assert status in (400, 404), (path, name, status)
    assert _snapshot(s3, cm.bucket) == before
    assert s3.get_object(Bucket=cm.bucket, Key=canary)["Body"].read() == b"canary"
    assert [e["name"] for e in (await cm.get(""))["content"]] == ["ok.txt"]


@pytest.mark.parametrize("path", INSIDE)
async def test_absolute_looking_paths_stay_inside_the_prefix(
    cm: S3ContentsManager, s3: Any, canary: str, path: str
) -> None:
    outside = {k: v for k, v in _snapshot(s3, cm.bucket).items() if not k.startswith(cm.prefix)}
    assert await _refused(cm.get(path)) == 404
    assert await _refused(cm.new(path=path)) == 404  # no folder "etc" in the root
    await cm.save({"type": "file", "format": "text", "content": "x"}, path)
    assert keys_under(s3, cm.bucket, cm.prefix + "/") == [f"{cm.prefix}/etc/passwd"]
    after = {k: v for k, v in _snapshot(s3, cm.bucket).items() if not k.startswith(cm.prefix)}
    assert after == outside


def _rest_url(*parts: str) -> str:
    # Percent-encode as a browser would, but keep "/" and "." so ".." segments reach the
    # server literally.
    return "/".join(quote(p, safe="/.") for p in parts)


async def test_hostile_paths_through_rest(
    jp_serverapp: Any,
    http_server_client: Any,
    jp_auth_header: Any,
    jp_base_url: str,
    s3: Any,
    canary: str,
) -> None:
    cm: S3ContentsManager = jp_serverapp.contents_manager
    await cm.save({"type": "file", "format": "text", "content": "ok"}, "ok.txt")
    before = _snapshot(s3, cm.bucket)
    base = jp_base_url.rstrip("/")
    text = json.dumps({"type": "file", "format": "text", "content": "pwned"})

    async def fetch(url: str, method: str = "GET", body: str | None = None) -> int:
        try:
            r = await http_server_client.fetch(
                base + url,
                method=method,
                body=body,
                headers=dict(jp_auth_header),
                raise_error=False,
                allow_nonstandard_methods=True,
            )
        except ValueError:  # the client itself refuses a URL it cannot send
            return 400
        return int(r.code)

    # (as sent in the URL, as written in a JSON body)
    cases = [(_rest_url(p), p) for p in HOSTILE] + [
        ("%00", "\x00"),
        ("%2e%2e/x.txt", "../x.txt"),
        ("a/%2E%2E/%2e%2e/x.txt", "a/../../x.txt"),
        ("..%2fx.txt", "../x.txt"),
        ("a%5cb.txt", "a\\b.txt"),
        ("a%0a.txt", "a\n.txt"),
    ]
    for encoded, path in cases:
        requests = {
            "GET": (f"/api/contents/{encoded}", "GET", None),
            "PUT": (f"/api/contents/{encoded}", "PUT", text),
            "POST": (f"/api/contents/{encoded}", "POST", "{}"),
            "DELETE": (f"/api/contents/{encoded}", "DELETE", None),
            "PATCH-to": ("/api/contents/ok.txt", "PATCH", json.dumps({"path": path})),
            "PATCH-from": (f"/api/contents/{encoded}", "PATCH", json.dumps({"path": "r.txt"})),
            "copy": ("/api/contents", "POST", json.dumps({"copy_from": path})),
            "checkpoint": (f"/api/contents/{encoded}/checkpoints", "POST", ""),
            "files": (f"/files/{encoded}", "GET", None),
        }
        for name, (url, method, body) in requests.items():
            status = await fetch(url, method, body)
            assert status in (400, 404), (path, name, status)
    assert _snapshot(s3, cm.bucket) == before
    r = await fetch("/api/contents/ok.txt")
    assert r == 200


# --------------------------------------------------------------------------- bad models

BAD_MODELS: dict[str, tuple[dict[str, Any], str]] = {
    "missing type": ({"format": "text", "content": "x"}, "type"),
    "missing content": ({"type": "file", "format": "text"}, "content"),
    "missing format": ({"type": "file", "content": "x"}, "format"),
    "wrong format": ({"type": "file", "format": "json", "content": "x"}, "format"),
    "bad base64": ({"type": "file", "format": "base64", "content": "abc"}, "saving"),
    "non-string file content": ({"type": "file", "format": "text", "content": {"a": 1}}, "str"),
    "notebook as a string": ({"type": "notebook", "format": "json", "content": "{}"}, "object"),
    "notebook as a list": ({"type": "notebook", "format": "json", "content": []}, "object"),
    "notebook without nbformat": (
        {"type": "notebook", "format": "json", "content": {"cells": []}},
        "nbformat",
    ),
    "notebook cells not a list": (
        {"type": "notebook", "format": "json", "content": {"nbformat": 4, "cells": "x"}},
        "cells",
    ),
    "unknown type": ({"type": "symlink", "format": "text", "content": "x"}, "symlink"),
    "bad chunk": ({"type": "file", "format": "text", "content": "x", "chunk": 0}, "chunk"),
}


@pytest.mark.parametrize("name", list(BAD_MODELS))
async def test_bad_models_are_400_and_write_nothing(
    cm: S3ContentsManager, s3: Any, name: str
) -> None:
    model, word = BAD_MODELS[name]
    path = "bad.ipynb" if model.get("type") == "notebook" else "bad.txt"
    # new() fills in a missing type or content (an empty file), as Jupyter's does.
    calls = [cm.save] if "type" not in model or "content" not in model else [cm.save, cm.new]
    for call in calls:
        with pytest.raises(HTTPError) as raised:
            await call(json.loads(json.dumps(model)), path)
        assert raised.value.status_code == 400
        assert word.lower() in str(raised.value.log_message).lower()
    with pytest.raises(HTTPError) as raised:
        await cm.save("not a dict", path)  # type: ignore[arg-type]
    assert raised.value.status_code == 400
    assert keys_under(s3, cm.bucket, cm.prefix + "/") == []


async def test_bad_models_through_rest(jp_fetch: Any, jp_serverapp: Any, s3: Any) -> None:
    cm: S3ContentsManager = jp_serverapp.contents_manager
    await cm.save({"type": "file", "format": "text", "content": "keep"}, "exists.txt")
    for name, (model, word) in BAD_MODELS.items():
        if name == "unknown type":
            continue  # jupyter_server's handler turns an unknown type into "file"
        # A PUT to a new name is new(), which fills in a missing type or content.
        paths = (
            ["exists.txt"]
            if name.startswith("missing t") or name == "missing content"
            else [
                "new.txt",
                "exists.txt",
            ]
        )
        for path in paths:
            with pytest.raises(HTTPClientError) as raised:
                await jp_fetch("api", "contents", path, method="PUT", body=json.dumps(model))
            assert raised.value.code == 400, (name, path)
            assert raised.value.response is not None
            message = json.loads(raised.value.response.body)["message"]
            assert word.lower() in message.lower(), (name, message)
    assert keys_under(s3, cm.bucket, cm.prefix + "/") == [f"{cm.prefix}/exists.txt"]
    assert (await cm.get("exists.txt"))["content"] == "keep"
    valid = {"type": "notebook", "format": "json", "content": sample_notebook()}
    r = await jp_fetch("api", "contents", "fine.ipynb", method="PUT", body=json.dumps(valid))
    assert r.code == 201


# --------------------------------------------------------------------------- secrets


async def test_secret_key_never_logged_or_returned(
    make_cm: Callable[..., S3ContentsManager],
    s3_config: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    real = s3_config["secret_access_key"]
    wrong = "WrongSecret" + secrets.token_hex(12)
    messages: list[str] = []

    good = make_cm()
    await good.save({"type": "file", "format": "text", "content": "x"}, "a.txt")
    await good.save({"type": "notebook", "content": sample_notebook()}, "n.ipynb")
    await good.get("")
    await good.get("n.ipynb")
    await good.create_checkpoint("a.txt")
    await good.rename("a.txt", "b.txt")
    await good.copy("b.txt")
    await good.delete("b.txt")
    for failing in (good.get("missing.txt"), good.rename("n.ipynb", "n.ipynb/x")):
        with pytest.raises(HTTPError) as raised:
            await failing
        messages.append(str(raised.value))

    bad = make_cm(secret_access_key=wrong)
    for failing in (
        bad.get(""),
        bad.get("n.ipynb"),
        bad.save({"type": "file", "format": "text", "content": "x"}, "c.txt"),
        bad.delete("n.ipynb"),
        bad.new_untitled(type="notebook"),
    ):
        with pytest.raises(HTTPError) as raised:
            await failing
        assert raised.value.status_code == 403
        messages.append(str(raised.value))
        messages.append(repr(raised.value.__cause__) + repr(raised.value.__context__))

    records = caplog.records
    assert records, "expected DEBUG logs from the SDK and the manager"
    logged = [caplog.text] + [r.getMessage() for r in records] + [str(r.args) for r in records]
    for text in logged + messages:
        assert real not in text
        assert wrong not in text


@pytest.mark.parametrize(
    "extra_cm_config",
    [{"secret_access_key": "WrongSecretForTheServer0123456789abcdef"}],
    indirect=True,
)
async def test_secret_key_never_in_http_responses(
    jp_fetch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "WrongSecretForTheServer0123456789abcdef"
    bodies: list[str] = []
    for args, kwargs in (
        (("api", "contents"), {}),
        (("api", "contents", "a.txt"), {}),
        (
            ("api", "contents", "a.txt"),
            {"method": "PUT", "body": '{"type": "file", "format": "text", "content": "x"}'},
        ),
        (("files", "a.txt"), {}),
    ):
        with pytest.raises(HTTPClientError) as raised:
            await jp_fetch(*args, **kwargs)
        assert raised.value.code == 403, args
        assert raised.value.response is not None
        bodies.append(raised.value.response.body.decode())
        bodies.append(str(raised.value.response.headers))
    assert any("denied" in b.lower() for b in bodies)
    for text in [*bodies, caplog.text]:
        assert wrong not in text
