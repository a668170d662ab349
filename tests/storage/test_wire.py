"""The lean request path (``s3contents.s3.wire``): its signature against AWS's published
example, its answers against botocore's on SeaweedFS and moto, its retries and its hand-over
to botocore, on real HTTP servers (127.0.0.1)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from s3contents.errors import AlreadyExists, Conflict, NotFound
from s3contents.s3.storage import S3Storage
from s3contents.s3.wire import Frozen, Target, Unhandled, Wire, sign_v4, target_from_presigned
from s3contents.storage.base import PutMode
from tests.storage.test_s3_storage import opened
from tests.support.servers import S3Server

pytestmark = pytest.mark.storage

#: Names that URL and XML encodings get wrong when they are wrong.
AWKWARD = [
    "plain.ipynb",
    "with space/and+plus.txt",
    "dir/a file ü+é?.txt",
    "ünïcödé/日本語.ipynb",
    "sym~bols&=;,@$!'()*.txt",
    "per%cent/q?mark#hash.txt",
    "<angle>&amp;.txt",
]


def test_signature_matches_aws_example() -> None:
    # The GET Object example of AWS's Signature Version 4 documentation for S3.
    headers = {"Range": "bytes=0-9"}
    sign_v4(
        "GET",
        "examplebucket.s3.amazonaws.com",
        "/test.txt",
        "",
        headers,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        Frozen("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        "us-east-1",
        datetime(2013, 5, 24, tzinfo=timezone.utc),
    )
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_target_of_path_and_virtual_host_urls() -> None:
    path = target_from_presigned(
        "http://127.0.0.1:8333/bkt/k?AWSAccessKeyId=a&Signature=s&Expires=1", "eu-west-3"
    )
    assert path == Target(
        "http://127.0.0.1:8333/bkt/",
        "http://127.0.0.1:8333/bkt",
        "127.0.0.1:8333",
        "/bkt/",
        "eu-west-3",
    )
    virtual = target_from_presigned("https://bkt.s3.amazonaws.com:443/k", None)
    assert virtual == Target(
        "https://bkt.s3.amazonaws.com:443/",
        "https://bkt.s3.amazonaws.com:443/",
        "bkt.s3.amazonaws.com",
        "/",
        None,
    )
    with pytest.raises(ValueError):
        target_from_presigned("https://bkt.s3.amazonaws.com/other", None)


async def test_answers_equal_botocores(s3_server: S3Server, s3_bucket: str) -> None:
    prefix = f"w/{secrets.token_hex(4)}/"
    mtime = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    async with (
        opened(s3_server, s3_bucket) as lean,
        opened(s3_server, s3_bucket, lean=False) as sdk,
    ):
        for i, name in enumerate(AWKWARD):
            await lean.put(prefix + name, b"x" * i, mtime=mtime, content_type="text/plain")
        for name in AWKWARD:
            assert await lean.head(prefix + name) == await sdk.head(prefix + name)
            assert await lean.get(prefix + name) == await sdk.get(prefix + name)
        for delimiter in ("/", ""):
            assert await lean.list(prefix, delimiter) == await sdk.list(prefix, delimiter)
        copied = await lean.copy(prefix + AWKWARD[1], prefix + "copy/" + AWKWARD[2])
        assert (await sdk.head(prefix + "copy/" + AWKWARD[2])).etag == copied.etag
        with pytest.raises(NotFound):
            await lean.head(prefix + "missing")
        with pytest.raises(AlreadyExists):
            await lean.put(prefix + AWKWARD[0], b"again", mode=PutMode.CREATE)
        with pytest.raises(Conflict):
            await lean.put(prefix + AWKWARD[0], b"again", mode=PutMode.IF_MATCH, etag="0" * 32)
        await lean.delete(prefix + AWKWARD[3])
        assert not await lean.delete_many([prefix + n for n in AWKWARD])
        assert [o.key for o in (await sdk.list(prefix, "")).objects] == [
            prefix + "copy/" + AWKWARD[2]
        ]
        assert lean.wire is not None and sdk.wire is None
        assert set(lean.wire.answered) == {
            "PutObject",
            "HeadObject",
            "GetObject",
            "List",
            "CopyObject",
            "DeleteObject",
            "DeleteObjects",
        }


async def test_pages_follow_the_continuation_token(s3_server: S3Server, s3_bucket: str) -> None:
    async with opened(s3_server, s3_bucket) as lean:
        keys = [f"p/{i:03}+{n}" for i, n in enumerate(AWKWARD * 3)]
        await asyncio.gather(*(lean.put(k, b"") for k in keys))
        lean.list_page_size = 4
        found, token = await lean.list_page("p/")
        seen = [o.key for o in found]
        while token:
            found, token = await lean.list_page("p/", token=token)
            seen += [o.key for o in found]
        assert seen == sorted(keys)


class _Script:
    """A local HTTP server answering each request with the next scripted answer."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = answers
        self.seen: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(f"{request.method} {request.path_qs}")
        status, headers, body = self.answers.pop(0) if self.answers else (500, {}, b"")
        return web.Response(status=status, headers=headers, body=body)


@asynccontextmanager
async def scripted(
    answers: list[tuple[int, dict[str, str], bytes]],
) -> AsyncIterator[tuple[_Script, Wire]]:
    script = _Script(answers)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", script.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def creds() -> Frozen:
        return Frozen("AK", "SK")

    base = f"http://127.0.0.1:{port}"
    wire = Wire(
        Target(base + "/b/", base + "/b", f"127.0.0.1:{port}", "/b/", "us-east-1"), creds, {}
    )
    try:
        yield script, wire
    finally:
        await wire.close()
        await runner.cleanup()


async def test_throttling_and_5xx_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("s3contents.s3.wire.random.random", lambda: 0.0)
    slow = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate</Message></Error>"
    answers = [(503, {}, slow), (500, {}, b""), (200, {"Content-Length": "0", "ETag": '"e"'}, b"")]
    async with scripted(answers) as (script, wire):
        answer = await wire.call("HeadObject", {"Key": "a b"})
        assert answer["ETag"] == '"e"'
        assert script.seen == ["HEAD /b/a%20b"] * 3


async def test_a_body_that_fails_its_checksum_is_refused() -> None:
    stored = {"x-amz-checksum-crc32": "AAAAAA==", "ETag": '"e"'}  # the CRC32 of b""
    async with scripted([(200, stored, b"not empty"), (200, stored, b"")]) as (_, wire):
        with pytest.raises(aiohttp.ClientPayloadError):
            await wire.call("GetObject", {"Key": "k"})
        answer = await wire.call("GetObject", {"Key": "k"})
        assert await answer["Body"].read() == b""


async def test_error_answers_are_botocore_errors() -> None:
    denied = b"<Error><Code>AccessDenied</Code><Message>no</Message></Error>"
    async with scripted([(403, {}, denied)]) as (_, wire):
        from botocore.exceptions import ClientError

        with pytest.raises(ClientError) as caught:
            await wire.call("DeleteObject", {"Key": "k"})
        assert caught.value.response["Error"]["Code"] == "AccessDenied"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


async def test_redirect_hands_every_request_to_botocore(
    s3_server: S3Server, s3_bucket: str
) -> None:
    moved = b"<Error><Code>PermanentRedirect</Code></Error>"
    async with (
        opened(s3_server, s3_bucket) as storage,
        scripted([(301, {}, moved)]) as (script, fake),
    ):
        await storage.put("here", b"1")  # through the lean path to the real server
        assert storage.wire is not None
        await storage.wire.close()
        storage.wire = fake  # as if the bucket had moved to another region
        assert (await storage.head("here")).size == 1  # answered by botocore instead
        assert script.seen == ["HEAD /b/here"]
        assert storage.wire is None
        assert (await storage.head("here")).size == 1


async def test_unknown_argument_goes_through_botocore(s3_server: S3Server, s3_bucket: str) -> None:
    async with opened(s3_server, s3_bucket) as storage:
        await storage.put("k", b"1")
        assert storage.wire is not None
        with pytest.raises(Unhandled):
            await storage.wire.call("HeadObject", {"Key": "k", "PartNumber": object()})
        # The adapter sends such a request through botocore and keeps the lean path.
        answer: Any = await storage._call("HeadObject", "k", Key="k", PartNumber=1)
        assert int(answer["ContentLength"]) == 1
        assert storage.wire is not None


async def test_credentials_from_the_chain(
    s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No keys in the configuration: the lean path signs with what the session's chain finds
    # (here the environment), as botocore does; a server that checks signatures accepts it.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_access_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    storage = S3Storage(
        s3_bucket,
        client_kwargs={
            "endpoint_url": s3_server.endpoint_url,
            "region_name": s3_server.region_name,
        },
    )
    try:
        await storage.put("chain", b"signed")
        assert (await storage.get("chain"))[0] == b"signed"
        assert storage.wire is not None
        assert storage.wire.answered["PutObject"] == storage.wire.answered["GetObject"] == 1
    finally:
        await storage.close()


async def test_wrong_secret_is_refused_on_the_lean_path(
    s3_server: S3Server, s3_bucket: str
) -> None:
    from s3contents.errors import Forbidden

    storage = S3Storage(
        s3_bucket,
        client_kwargs={
            "endpoint_url": s3_server.endpoint_url,
            "region_name": s3_server.region_name,
            "aws_access_key_id": s3_server.access_key_id,
            "aws_secret_access_key": "not-the-secret",
        },
    )
    try:
        with pytest.raises(Forbidden) as refused:
            await storage.put("nope", b"x")
        assert "not-the-secret" not in str(refused.value)
        assert storage.wire is not None and storage.wire.answered["PutObject"] >= 1
    finally:
        await storage.close()


def _answer(contents: str, extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\n'
        "  <Name>b</Name><Prefix>p/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys>\n"
        f"  <EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>{extra}\n"
        f"{contents}\n"
        "  <NextContinuationToken>a+b/c==</NextContinuationToken>\n"
        "</ListBucketResult>"
    ).encode()


LAID_OUT = [
    # As AWS writes it (no spaces), with a checksum field between ETag and Size.
    "<Contents><Key>p/a+b%26c.txt</Key><LastModified>2026-01-02T03:04:05.678Z</LastModified>"
    "<ETag>&quot;e1&quot;</ETag><ChecksumAlgorithm>CRC32</ChecksumAlgorithm><Size>7</Size>"
    "<StorageClass>STANDARD</StorageClass></Contents>",
    # Indented, as moto writes it, with an owner and a folder.
    "<Contents>\n    <Key>p/%C3%BC.ipynb</Key>\n"
    "    <LastModified>2026-01-02T03:04:05Z</LastModified>\n"
    '    <ETag>"e2"</ETag>\n    <Size>0</Size>\n    <Owner><ID>x</ID></Owner>\n</Contents>\n'
    "<CommonPrefixes>\n  <Prefix>p/sub+dir/</Prefix>\n</CommonPrefixes>",
]


@pytest.mark.parametrize("contents", LAID_OUT)
def test_fast_listing_reads_what_the_tree_reads(contents: str) -> None:

    from s3contents.s3.answers import fast_listing, tree_listing

    body = _answer(contents)
    fast = fast_listing(body)
    assert fast is not None
    tree = tree_listing(body, 200, {})
    del tree["ResponseMetadata"]
    assert fast == tree
    assert fast["IsTruncated"] is True and fast["NextContinuationToken"] == "a+b/c=="


def test_listing_laid_out_otherwise_is_read_by_the_tree() -> None:
    from s3contents.s3.answers import fast_listing, listing

    # Size before ETag: not the schema's order; CDATA: not what the expressions read.
    odd = [
        "<Contents><Key>p/k</Key><LastModified>2026-01-02T03:04:05Z</LastModified>"
        '<Size>3</Size><ETag>"e"</ETag></Contents>',
        "<Contents><Key><![CDATA[p/k]]></Key><LastModified>2026-01-02T03:04:05Z</LastModified>"
        '<ETag>"e"</ETag><Size>3</Size></Contents>',
    ]
    for contents in odd:
        body = _answer(contents)
        assert fast_listing(body) is None
        (obj,) = listing(body, 200, {})["Contents"]
        assert (obj["Key"], obj["Size"], obj["ETag"]) == ("p/k", 3, '"e"')


async def test_get_of_a_version_goes_through_botocore(s3_server: S3Server) -> None:
    """A VersionId is a query argument the lean path has no place for: ``get_version``'s
    GetObject goes through botocore, and the lean path stays for the rest."""
    bucket = s3_server.make_bucket()
    admin = s3_server.admin
    admin.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    try:
        async with opened(s3_server, bucket) as storage:
            await storage.put("k", b"first")
            await storage.put("k", b"second")
            older = (await storage.list_versions("k", 5))[-1]
            assert storage.wire is not None
            with pytest.raises(Unhandled) as why:
                await storage.wire.call("GetObject", {"Key": "k", "VersionId": older.version_id})
            assert not why.value.lasting
            storage.stats.clear()
            data, info = await storage.get_version("k", older.version_id)
            assert (data, info.size) == (b"first", 5)
            assert storage.stats == {"GET": 1}
            assert storage.wire is not None
            assert (await storage.get("k"))[0] == b"second"
    finally:
        for v in admin.list_object_versions(Bucket=bucket).get("Versions", []):
            admin.delete_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])
        admin.delete_bucket(Bucket=bucket)
