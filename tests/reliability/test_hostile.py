"""Hostile input through the REST API: paths and models meant to escape or break the server.

A live Jupyter Server runs ``S3ContentsManager`` on the test's prefix of a SeaweedFS bucket,
through a recording HTTP proxy (``tests/support/proxy.py``): every request that reaches the
S3 server is recorded with its bucket, key, listing ``prefix=``, copy source and the keys of
a batch delete. Next to the prefix lie two canaries (a sibling prefix ``<prefix>-canary/``,
the bucket's root), outside it.

* **Bad paths**: a corpus of more than 100 paths, built by category (traversal, encoded and
  double-encoded traversal, dot segments, NUL and control characters, very long names and
  very deep paths, names of only dots and spaces, reserved and hidden names, absolute,
  drive, URL and other-bucket forms) goes through every endpoint that takes a path: the
  contents model (GET, PUT of a file, folder, notebook and chunk, PATCH as the source and as
  the target, POST new and copy, as the target folder and as ``copy_from``, DELETE), the
  checkpoints (list, create, restore, delete), trust, and ``/files/``. Each answers 4xx
  (never 2xx, never 5xx). Hostile checkpoint ids and extensions go through the REST routes
  and the manager itself.
* **Odd paths**: names that look hostile but are plain characters (Unicode lookalikes of the
  dot and the slash, trailing dots and spaces, triple-encoded dots, the configured prefix and
  bucket as folder names, ARNs, ``~``) are allowed: each is created, read, downloaded and
  deleted, and its key is exactly ``<prefix>/<path>``.
* **Bad models** through PUT, POST and PATCH (wrong types, invalid JSON, UTF-8 and base64,
  wrong nbformat, missing cells or metadata, bad chunk numbers, a body over the server's
  ``max_body_size``): each answers 4xx, and not one write request reaches the S3 server.

After each test, every key, listing prefix, copy source and deleted key the proxy saw lies
inside ``<prefix>/`` with no ``.``, ``..`` or empty segment, and the bucket outside the
prefix (the canaries included) is exactly as it was.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import pytest
from tornado.httpclient import HTTPResponse
from traitlets.config import Config

from s3contents import S3ContentsManager
from tests.support.proxy import Seen, StorageProxy
from tests.support.servers import S3Server

#: The live server's request body limit (jupyter_server's ``max_body_size``; 512 MiB by
#: default), small here so that a body over it is cheap to send.
MAX_BODY = 1024 * 1024
CONCURRENCY = 8

NOTEBOOK: dict[str, Any] = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "c1",
            "metadata": {},
            "outputs": [],
            "source": "1",
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}
TEXT = {"type": "file", "format": "text", "content": "pwned"}


# --------------------------------------------------------------------------- the corpus


@dataclass(frozen=True)
class Case:
    """One hostile path: ``url`` as written in request URLs after ``/api/contents/`` (sent
    verbatim), ``body`` as written in JSON bodies (the path the server gets from the URL)."""

    category: str
    url: str
    body: str


def _raw(category: str, path: str) -> Case:
    """A path sent as a browser would: percent-encoded, keeping "/" and "." as they are."""
    return Case(category, quote(path, safe="/."), path)


def _encoded(category: str, url: str) -> Case:
    """A path whose URL form is given already encoded (the server decodes it once)."""
    return Case(category, url, unquote(url))


def _traversal_variants(path: str) -> list[Case]:
    """``path`` (with ".." segments) written every way that could slip a ".." through."""
    dots = path.split("/")

    def each_dotdot(new: str) -> str:
        return "/".join(new if seg == ".." else seg for seg in dots)

    cases = [
        _raw("traversal", path),
        _raw("traversal", each_dotdot(" .. ")),
        _raw("traversal", path.replace("/", "\\")),
        _encoded("encoded traversal", each_dotdot("%2e%2e")),
        _encoded("encoded traversal", each_dotdot("%2E%2E")),
        _encoded("encoded traversal", each_dotdot(".%2e")),
        _encoded("encoded traversal", each_dotdot("%2e.")),
        _encoded("double-encoded traversal", each_dotdot("%252e%252e")),
        _encoded("double-encoded traversal", each_dotdot("%252E%252e")),
        # Overlong UTF-8 for ".": a lenient decoder would read "..", so that is the body form.
        Case("encoded traversal", each_dotdot("%c0%ae%c0%ae"), path),
    ]
    if "/" in path:
        cases += [
            _encoded("encoded traversal", path.replace("/", "%2f")),
            _encoded("encoded traversal", path.replace("/", "%2F")),
            _encoded("double-encoded traversal", path.replace("/", "%252f")),
            _encoded("encoded traversal", path.replace("/", "%5c")),
        ]
    return cases


def bad_paths(prefix: str, bucket: str) -> list[Case]:
    """Paths every endpoint must refuse (4xx), by category."""
    own = prefix.rsplit("/", 1)[-1]
    cases: list[Case] = []
    for path in [
        "..",
        "../x.txt",
        "../../x.txt",
        "a/../x.txt",
        "a/../../x.txt",
        "a/b/../../../x.txt",
        "a/..",
        f"../{own}-canary/secret.txt",  # the sibling canary, as a relative path
        f"../../{bucket}/x.txt",
        f"{own}/../../../x.txt",
    ]:
        cases += _traversal_variants(path)
    for path in [".", "./x.txt", "a/./x.txt", "a/."]:
        cases.append(_raw("dot segment", path))
        cases.append(_encoded("dot segment", path.replace(".", "%2e", 1)))
        cases.append(_encoded("dot segment", path.replace(".", "%252e", 1)))
    for ch in "\x00\x01\x07\x08\t\n\r\x1b\x1f\x7f\x85\x9b\u2028\u2029\ufeff":
        cases.append(_raw("control character", f"a{ch}b.txt"))
    cases += [
        _raw("control character", "\x00"),
        _raw("control character", "ok.txt\x00.ipynb"),  # NUL truncation
        _raw("control character", "..\x00/x.txt"),
        _raw("control character", "\x1b[31mred.txt"),
    ]
    cases += [
        _raw("long", "x" * 256),
        _raw("long", "x" * 1000 + ".txt"),
        _raw("long", "é" * 128),  # 256 bytes
        _raw("long", "🙂" * 64 + "x"),  # 257 bytes
        _raw("long", "/".join(["y" * 200] * 6)),  # each name fits, the key does not
        _raw("deep", "/".join(["ddd"] * 300)),  # 300 levels, key over 1024 bytes
        _raw("deep", "/".join(["d"] * 300) + "/../../x.txt"),
        _raw("deep", "/".join([".."] * 300) + "/x.txt"),
    ]
    for path in [" ", "  ", "...", "....", ". .", " . ", "a/ /b.txt", "a/.../b.txt"]:
        cases.append(_raw("only dots and spaces", path))
    for path in ["\u00a0", "\u3000", "\u2003\u2003", ". ./x.txt"]:
        cases.append(_raw("only dots and spaces", path))
    for path in [
        ".s3keep",
        "okdir/.s3keep",
        ".ipynb_checkpoints",
        ".ipynb_checkpoints/ok-checkpoint.txt",
        ".hidden.txt",
        ".git/config",
    ]:
        cases.append(_raw("reserved or hidden", path))
    for path in [
        "C:/x.txt",
        "c:x.txt",
        "C:\\x.txt",
        "\\\\server\\share\\x.txt",
        f"s3://{bucket}/{prefix}-canary/secret.txt",
        "file:///etc/passwd",
        f"http://127.0.0.1:1/{bucket}/x.txt",
        f"{bucket}//{prefix}-canary/secret.txt",
        f"{prefix}/../../{own}-canary/secret.txt",
    ]:
        cases.append(_raw("absolute or other bucket", path))
    unique = {c.url: c for c in cases}  # a variant may coincide with another one
    return list(unique.values())


def odd_paths(prefix: str, bucket: str) -> list[str]:
    """API paths that look hostile but are plain names: allowed, and stored as such."""
    return [
        # Unicode lookalikes of "." and "/": characters, not separators or dot segments
        "\u2024\u2024/x.txt",  # one dot leader, twice
        "\u2025/x.txt",  # two dot leader
        "\uff0e\uff0e/x.txt",  # fullwidth full stop
        "\ufe52\ufe52/x.txt",  # small full stop
        "\u2024\u2024\u2215x.txt",  # ... and division slash
        "\uff0e\uff0e\u2044x.txt",  # ... and fraction slash
        "\uff0e\uff0e\uff0fx.txt",  # ... and fullwidth solidus
        "\uff3c\uff0e\uff0e\uff3cx.txt",  # ... and fullwidth reverse solidus
        "a\u200bb.txt",  # zero-width space
        "\u202etxt.exe",  # right-to-left override
        # trailing and inner dots and spaces
        "x.txt.",
        "x.txt ",
        " x.txt",
        "x..",
        "x. .txt",
        "dir./y.txt",
        "dir /y.txt",
        # percent signs: decoded once by the server, once more by the path check, no more
        "%252e%252e/x.txt",
        "%2541.txt",
        # the prefix, the bucket, other buckets and homes, as names inside the root
        prefix,
        f"{prefix}/x.txt",
        f"{bucket}/{prefix}-canary/secret.txt",
        f"s3:/{bucket}/x.txt",
        "arn:aws:s3:::other-bucket/x.txt",
        "other-bucket:x.txt",
        "~/x.txt",
        "etc/passwd",
        # 300 levels deep (the key is 600 bytes: under S3's 1024)
        "/".join(["d"] * 300) + "/x.txt",
    ]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def proxy(seaweedfs: S3Server) -> Iterator[StorageProxy]:
    with StorageProxy(seaweedfs.endpoint_url) as recording:
        yield recording


@pytest.fixture
def jp_server_config(s3_config: dict[str, str], proxy: StorageProxy) -> Config:
    """The live server talks to SeaweedFS through the proxy; its body limit is small."""
    return Config(
        {
            "ServerApp": {
                "contents_manager_class": S3ContentsManager,
                "jpserver_extensions": {"jupyter_server_terminals": False},
                "max_body_size": MAX_BODY,
            },
            "S3ContentsManager": {**s3_config, "endpoint_url": proxy.url},
        }
    )


@pytest.fixture
def canaries(s3: Any, s3_config: dict[str, str]) -> Iterator[dict[str, bytes]]:
    """Two objects outside the prefix: in a sibling prefix and at the bucket's root."""
    found = {
        f"{s3_config['prefix']}-canary/secret.txt": b"sibling canary",
        f"canary-{secrets.token_hex(6)}.txt": b"root canary",
    }
    for key, body in found.items():
        s3.put_object(Bucket=s3_config["bucket"], Key=key, Body=body)
    yield found
    for key in found:
        s3.delete_object(Bucket=s3_config["bucket"], Key=key)


class Client:
    """Raw REST requests to the live server (URLs verbatim), counting every answer."""

    def __init__(self, http_client: Any, base: str, headers: dict[str, str]) -> None:
        self.http_client = http_client
        self.base = base
        self.headers = headers
        self.statuses: Counter[int] = Counter()

    async def fetch(self, method: str, url: str, body: Any = None) -> HTTPResponse:
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = ""
        response: HTTPResponse = await self.http_client.fetch(
            self.base + url,
            method=method,
            body=body,
            headers=self.headers,
            raise_error=False,
            allow_nonstandard_methods=True,
            request_timeout=60,
        )
        self.statuses[response.code] += 1
        return response


@pytest.fixture
def client(
    jp_serverapp: Any, http_server_client: Any, jp_auth_header: Any, jp_base_url: str
) -> Client:
    return Client(http_server_client, jp_base_url.rstrip("/"), dict(jp_auth_header))


# --------------------------------------------------------------------------- checks


def snapshot(s3: Any, bucket: str) -> dict[str, str]:
    """Every key of the bucket with its ETag."""
    found: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["ETag"]
    return found


def outside(found: dict[str, str], prefix: str) -> dict[str, str]:
    return {k: v for k, v in found.items() if not k.startswith(prefix + "/")}


def escapes(requests: list[Seen], bucket: str, prefix: str) -> list[str]:
    """Every request that touched anything outside ``<prefix>/`` (or used a dot segment)."""
    root = prefix + "/"
    bad = []
    for seen in requests:
        if seen.bucket != bucket:
            bad.append(f"{seen.method} {seen.target}: bucket {seen.bucket!r}")
            continue
        # The bucket itself may be asked about (HEAD: does it exist; GET ?versioning: does
        # it keep history, read once for list_checkpoints), never written or listed.
        if not seen.key and (
            seen.method == "HEAD"
            or (
                seen.method == "GET"
                and seen.target.partition("?")[2] in ("versioning", "versioning=")
            )
        ):
            continue
        touched = seen.touched()
        if seen.copy_source is not None:
            source_bucket, _, source_key = seen.copy_source.partition("/")
            if source_bucket != bucket:
                bad.append(f"{seen.method} {seen.target}: copies from {seen.copy_source!r}")
            touched = [t if t != seen.copy_source else source_key for t in touched]
        if not touched:
            bad.append(f"{seen.method} {seen.target}: touches the bucket itself")
        for key in touched:
            segments = key[len(root) :].split("/")
            dots = any(s in ("", ".", "..") for s in segments[:-1]) or segments[-1] in (".", "..")
            if not key.startswith(root) or dots:
                bad.append(f"{seen.method} {seen.target}: {key!r}")
    return bad


def assert_contained(
    proxy: StorageProxy,
    s3: Any,
    bucket: str,
    prefix: str,
    outside_before: dict[str, str],
    canary_bodies: dict[str, bytes],
) -> list[Seen]:
    requests = proxy.requests()
    bad = escapes(requests, bucket, prefix)
    assert not bad, f"{len(bad)} requests outside {prefix}/:\n" + "\n".join(bad[:20])
    assert outside(snapshot(s3, bucket), prefix) == outside_before
    for key, body in canary_bodies.items():
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == body
    return requests


def _report(failures: list[str], what: str) -> None:
    assert not failures, f"{len(failures)} {what}:\n" + "\n".join(failures[:40])


async def _gather(calls: list[Any]) -> list[Any]:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(call: Any) -> Any:
        async with sem:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


# --------------------------------------------------------------------------- bad paths


def endpoints(case: Case) -> list[tuple[str, str, str, Any]]:
    """(name, method, URL, body) of every request that puts ``case`` somewhere in a path."""
    u, b = case.url, case.body
    api = f"/api/contents/{u}"
    return [
        ("GET", "GET", api, None),
        ("GET folder", "GET", api + "?type=directory", None),
        ("GET no content", "GET", api + "?content=0", None),
        ("PUT file", "PUT", api, TEXT),
        ("PUT folder", "PUT", api, {"type": "directory"}),
        ("PUT notebook", "PUT", api, {"type": "notebook", "format": "json", "content": NOTEBOOK}),
        ("PUT chunk", "PUT", api, {**TEXT, "chunk": 1}),
        ("PATCH from", "PATCH", api, {"path": "renamed.txt"}),
        ("PATCH to", "PATCH", "/api/contents/ok.txt", {"path": b}),
        ("PATCH folder to", "PATCH", "/api/contents/okdir", {"path": b}),
        ("POST new in", "POST", api, {}),
        ("POST folder in", "POST", api, {"type": "directory"}),
        ("POST copy into", "POST", api, {"copy_from": "ok.txt"}),
        ("POST copy from", "POST", "/api/contents", {"copy_from": b}),
        ("POST copy from into", "POST", "/api/contents/okdir", {"copy_from": b}),
        ("DELETE", "DELETE", api, None),
        ("checkpoints", "GET", api + "/checkpoints", None),
        ("create checkpoint", "POST", api + "/checkpoints", None),
        ("restore checkpoint", "POST", api + "/checkpoints/checkpoint", None),
        ("delete checkpoint", "DELETE", api + "/checkpoints/checkpoint", None),
        ("trust", "POST", api + "/trust", None),
        ("files", "GET", f"/files/{u}", None),
        ("files HEAD", "HEAD", f"/files/{u}", None),
    ]


#: Checkpoint ids through /api/contents/ok.txt/checkpoints/<id> (URL form, verbatim).
HOSTILE_CHECKPOINT_IDS = [
    "..",
    "%2e%2e",
    "..%2f..%2fx",
    "a%2fb",
    "%00",
    "x" * 1100,
    "%E2%80%A4%E2%80%A4",  # U+2024 twice: a word character to the route
    "check%20point",
    "-",
]
#: Checkpoint ids and extensions given to the manager itself (no route in between).
DIRECT_CHECKPOINT_IDS = ["../../x", "a/b", "", "..", "\x00", "x" * 1100, "a\\b"]
DIRECT_EXTENSIONS = ["/../../../x", "/x", "\x00", "\n.txt", "/.."]


async def _setup_tree(cm: S3ContentsManager, s3: Any) -> None:
    """ok.txt (with a checkpoint), okdir/in.txt, and hidden files only boto3 can write."""
    await cm.save({"type": "file", "format": "text", "content": "ok"}, "ok.txt")
    await cm.save({"type": "directory"}, "okdir")
    await cm.save({"type": "file", "format": "text", "content": "in"}, "okdir/in.txt")
    await cm.create_checkpoint("ok.txt")
    for name in (".hidden.txt", ".git/config"):
        s3.put_object(Bucket=cm.bucket, Key=f"{cm.prefix}/{name}", Body=b"hidden")


async def test_bad_paths_answer_4xx_and_nothing_outside_the_prefix_is_touched(
    jp_serverapp: Any,
    client: Client,
    proxy: StorageProxy,
    s3: Any,
    s3_config: dict[str, str],
    canaries: dict[str, bytes],
    make_cm: Any,
) -> None:
    bucket, prefix = s3_config["bucket"], s3_config["prefix"]
    cm: S3ContentsManager = jp_serverapp.contents_manager
    await _setup_tree(cm, s3)
    before = snapshot(s3, bucket)
    corpus = bad_paths(prefix, bucket)
    by_category = Counter(c.category for c in corpus)
    assert len(corpus) >= 100, by_category
    assert len(by_category) >= 10, by_category

    requests = [(case, *ep) for case in corpus for ep in endpoints(case)]
    responses = await _gather(
        [client.fetch(method, url, body) for _, _, method, url, body in requests]
    )
    failures = [
        f"{case.category} {case.url!r} {name}: {r.code} {r.body[:120]!r}"
        for (case, name, *_), r in zip(requests, responses, strict=True)
        if not 400 <= r.code < 500
    ]
    _report(failures, f"of {len(requests)} requests with a bad path did not answer 4xx")

    ids: list[tuple[str | None, str, str]] = [
        (None, "POST", "/api/contents/ok.txt/trust"),
        (None, "POST", "/api/contents/okdir/trust"),
    ]
    for cid in HOSTILE_CHECKPOINT_IDS:
        for method in ("POST", "DELETE"):
            ids.append((cid, method, f"/api/contents/ok.txt/checkpoints/{cid}"))
    responses = await _gather([client.fetch(method, url) for _, method, url in ids])
    failures = [
        f"checkpoint id {cid!r} {method}: {r.code} {r.body[:120]!r}"
        for (cid, method, _), r in zip(ids, responses, strict=True)
        if not 400 <= r.code < 500
    ]
    _report(failures, "hostile checkpoint ids (or trusts of no notebook) did not answer 4xx")

    # The manager itself, where no route narrows what a checkpoint id or extension can be
    # (allow_hidden too, which lets names starting with "." through).
    hidden_ok = make_cm(endpoint_url=proxy.url, allow_hidden=True)
    for manager in (cm, hidden_ok):
        for cid in DIRECT_CHECKPOINT_IDS:
            for call in (manager.restore_checkpoint, manager.delete_checkpoint):
                with pytest.raises(Exception) as raised:
                    await call(cid, "ok.txt")
                assert 400 <= getattr(raised.value, "status_code", 0) < 500, (cid, raised.value)
        for ext in DIRECT_EXTENSIONS:
            for type_ in ("directory", "file", "notebook"):
                if type_ == "notebook":
                    continue  # a notebook's extension is always .ipynb
                with pytest.raises(Exception) as raised:
                    await manager.new_untitled(path="okdir", type=type_, ext=ext)
                assert 400 <= getattr(raised.value, "status_code", 0) < 500, (ext, raised.value)

    seen = assert_contained(proxy, s3, bucket, prefix, outside(before, prefix), canaries)
    assert snapshot(s3, bucket) == before  # inside the prefix too: nothing changed
    assert (await cm.get("ok.txt"))["content"] == "ok"
    assert (await client.fetch("GET", "/api/contents/okdir")).code == 200
    # The figures of docs/reliability.md.
    print(
        f"\n{len(corpus)} bad paths {dict(by_category)}; {len(requests)} path requests, "
        f"{len(ids)} checkpoint-id requests: {dict(client.statuses)}; "
        f"{len(seen)} S3 requests recorded, all inside {prefix}/"
    )


# --------------------------------------------------------------------------- odd paths


async def test_odd_but_plain_names_are_stored_inside_the_prefix_as_given(
    jp_serverapp: Any,
    client: Client,
    proxy: StorageProxy,
    s3: Any,
    s3_config: dict[str, str],
    canaries: dict[str, bytes],
) -> None:
    bucket, prefix = s3_config["bucket"], s3_config["prefix"]
    before = outside(snapshot(s3, bucket), prefix)
    paths = odd_paths(prefix, bucket)
    failures: list[str] = []
    for path in paths:
        url = "/api/contents/" + quote(path, safe="/")
        content = f"odd {path!r}"
        folders = path.split("/")[:-1]
        if len(folders) > 3:  # a deep parent is seeded directly: 300 PUTs would be slow
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{'/'.join(folders)}/.s3keep", Body=b"")
            folders = []
        steps = [
            ("GET before", "GET", url, None, {404}),
            *[
                (
                    "PUT folder",
                    "PUT",
                    "/api/contents/" + quote("/".join(folders[: i + 1]), safe="/"),
                    {"type": "directory"},
                    {200, 201},
                )
                for i in range(len(folders))
            ],
            ("PUT", "PUT", url, {**TEXT, "content": content}, {201}),
            ("GET", "GET", url, None, {200}),
            ("files", "GET", "/files/" + quote(path, safe="/"), None, {200}),
        ]
        for name, method, step_url, body, expected in steps:
            r = await client.fetch(method, step_url, body)
            if r.code not in expected:
                failures.append(f"{path!r} {name}: {r.code} {r.body[:120]!r}")
            elif name == "GET" and json.loads(r.body)["content"] != content:
                failures.append(f"{path!r}: read back {json.loads(r.body)['content']!r}")
            elif name == "files" and r.body != content.encode():
                failures.append(f"{path!r}: downloaded {r.body[:60]!r}")
        key = f"{prefix}/{path}"
        try:
            stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            stored = None
        if stored != content.encode():
            failures.append(f"{path!r}: key {key!r} holds {stored!r}")
        r = await client.fetch("DELETE", url)
        if r.code != 204:
            failures.append(f"{path!r} DELETE: {r.code}")
    _report(failures, f"of {len(paths)} odd paths misbehaved")
    seen = assert_contained(proxy, s3, bucket, prefix, before, canaries)
    written = {s.key for s in seen if s.method == "PUT" and s.copy_source is None}
    assert {f"{prefix}/{p}" for p in paths} <= written
    assert all(400 <= code < 500 or code < 300 for code in client.statuses)


# --------------------------------------------------------------------------- bad models

NB = {"type": "notebook", "format": "json"}


def _nb(**changes: Any) -> dict[str, Any]:
    content = {k: v for k, v in {**NOTEBOOK, **changes}.items() if v is not ...}
    return {**NB, "content": content}


#: Bodies of PUT to a file path (new and existing): name -> raw body (str or bytes) or model.
BAD_FILE_BODIES: dict[str, Any] = {
    "content an int": {**TEXT, "content": 123},
    "content a list": {**TEXT, "content": ["a"]},
    "content an object": {**TEXT, "content": {"a": 1}},
    "content a boolean": {**TEXT, "content": True},
    "content null": {**TEXT, "content": None},
    "format json on a file": {**TEXT, "format": "json"},
    "format unknown": {**TEXT, "format": "xml"},
    "format an int": {**TEXT, "format": 5},
    "format missing": {"type": "file", "content": "x"},
    "base64 invalid padding": {**TEXT, "format": "base64", "content": "abc"},
    "base64 invalid characters": {**TEXT, "format": "base64", "content": "!!!!"},
    "base64 not ASCII": {**TEXT, "format": "base64", "content": "é"},
    "unknown type with bad content": {**TEXT, "type": "symlink", "content": {"a": 1}},
    "type an int": {**TEXT, "type": 5},
    "type a list": {**TEXT, "type": ["file"]},
    "type an object": {**TEXT, "type": {"a": 1}},
    "chunk a string": {**TEXT, "chunk": "1"},
    "chunk a float": {**TEXT, "chunk": 1.5},
    "chunk a boolean": {**TEXT, "chunk": True},
    "chunk zero": {**TEXT, "chunk": 0},
    "chunk negative": {**TEXT, "chunk": -2},
    "chunk huge": {**TEXT, "chunk": 10**30},
    "chunk -1 without an upload": {**TEXT, "chunk": -1},
    "chunk 2 without an upload": {**TEXT, "chunk": 2},
    "chunk 1 with bad base64": {**TEXT, "format": "base64", "content": "!", "chunk": 1},
    "path field a traversal": {**TEXT, "path": "../x.txt"},
    "path field an int": {**TEXT, "path": 5},
    "copy_from in a PUT": {**TEXT, "copy_from": "ok.txt"},
    "body a list": "[1]",
    "body an empty list": "[]",
    "body a string": '"x"',
    "body a number": "1",
    "body true": "true",
    "body NaN": "NaN",
    "JSON truncated": '{"type": "file"',
    "JSON single quotes": "{'type': 'file'}",
    "JSON trailing comma": '{"type": "file",}',
    "body not UTF-8": b'{"type": "file", "format": "text", "content": "\xff"}',
    "body over max_body_size": {**TEXT, "content": "x" * (MAX_BODY + 1)},
}
#: Bodies of PUT to a notebook path (new and existing).
BAD_NOTEBOOK_BODIES: dict[str, Any] = {
    "notebook content a string": {**NB, "content": "{}"},
    "notebook content a list": {**NB, "content": []},
    "notebook content null": {**NB, "content": None},
    "notebook content an int": {**NB, "content": 4},
    "nbformat 3": _nb(nbformat=3),
    "nbformat 5": _nb(nbformat=5),
    "nbformat a string": _nb(nbformat="x"),
    "nbformat 4.0": _nb(nbformat=4.0),
    "nbformat true": _nb(nbformat=True),
    "nbformat missing": _nb(nbformat=...),
    "cells missing": _nb(cells=...),
    "cells a string": _nb(cells="x"),
    "cells of ints": _nb(cells=[1]),
    "cell without a type": _nb(cells=[{"id": "a", "metadata": {}, "source": ""}]),
    "code cell without outputs": _nb(
        cells=[{"cell_type": "code", "id": "a", "metadata": {}, "source": ""}]
    ),
    "metadata missing": _nb(metadata=...),
    "metadata a list": _nb(metadata=[]),
}
#: Bodies of POST to the root folder.
BAD_POST_BODIES: dict[str, Any] = {
    "copy_from an int": {"copy_from": 123},
    "copy_from a list": {"copy_from": ["ok.txt"]},
    "copy_from a traversal": {"copy_from": "../ok.txt"},
    "type a list": {"type": ["file"]},
    "ext an int": {"ext": 5},
    "ext a traversal": {"ext": "/../../x"},
    "ext a folder": {"type": "directory", "ext": "/../../../x"},
    "ext a NUL": {"ext": "\x00"},
    "body a list": "[1]",
    "JSON truncated": "{",
    "body not UTF-8": b"\xff\xfe",
}
#: Bodies of PATCH of an existing file.
BAD_PATCH_BODIES: dict[str, Any] = {
    "path an int": {"path": 5},
    "path null": {"path": None},
    "path a list": {"path": ["x.txt"]},
    "path a traversal": {"path": "../x.txt"},
    "body a list": "[1]",
    "body a string": '"x.txt"',
    "JSON truncated": "{",
    "body not UTF-8": b'{"path": "\xff"}',
    "body empty": "",
}


async def test_bad_models_answer_4xx_and_write_nothing(
    jp_serverapp: Any,
    http_server: Any,
    client: Client,
    proxy: StorageProxy,
    s3: Any,
    s3_config: dict[str, str],
    canaries: dict[str, bytes],
) -> None:
    # pytest-jupyter builds the HTTP server itself: give it the limit the server would set.
    http_server.conn_params.max_body_size = jp_serverapp.max_body_size
    bucket, prefix = s3_config["bucket"], s3_config["prefix"]
    cm: S3ContentsManager = jp_serverapp.contents_manager
    await _setup_tree(cm, s3)
    await cm.save({**NB, "content": NOTEBOOK}, "exists.ipynb")
    before = snapshot(s3, bucket)
    proxy.reset()

    requests: list[tuple[str, str, str, Any]] = []
    for name, body in BAD_FILE_BODIES.items():
        requests += [(name, "PUT", "/api/contents/new.txt", body)]
        requests += [(name, "PUT", "/api/contents/ok.txt", body)]
    for name, body in BAD_NOTEBOOK_BODIES.items():
        requests += [(name, "PUT", "/api/contents/new.ipynb", body)]
        requests += [(name, "PUT", "/api/contents/exists.ipynb", body)]
    for name, body in BAD_POST_BODIES.items():
        requests += [
            (name, "POST", "/api/contents", body),
            (name, "POST", "/api/contents/okdir", body),
        ]
    for name, body in BAD_PATCH_BODIES.items():
        requests += [(name, "PATCH", "/api/contents/ok.txt", body)]
    failures = []
    for name, method, url, body in requests:  # in order: a chunk could start an upload
        r = await client.fetch(method, url, body)
        if not 400 <= r.code < 500:
            failures.append(f"{name}: {method} {url}: {r.code} {r.body[:160]!r}")
    _report(failures, f"of {len(requests)} bad models did not answer 4xx")

    writes = [s for s in proxy.requests() if s.method not in ("GET", "HEAD")]
    assert not writes, [f"{s.method} {s.target}" for s in writes]
    assert_contained(proxy, s3, bucket, prefix, outside(before, prefix), canaries)
    assert snapshot(s3, bucket) == before
    # The same server still saves a good notebook and a body just under the limit.
    r = await client.fetch("PUT", "/api/contents/fine.ipynb", {**NB, "content": NOTEBOOK})
    assert r.code == 201, r.body
    r = await client.fetch(
        "PUT", "/api/contents/big.txt", {**TEXT, "content": "x" * (MAX_BODY - 100)}
    )
    assert r.code == 201, r.body
    print(f"\n{len(requests)} bad model requests: {dict(client.statuses)}")
