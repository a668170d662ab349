"""What only ``S3Storage`` does, on SeaweedFS and moto (``s3_server``): MD5 ETags, multipart
requests, access keys. The contract every adapter keeps is ``test_contract.py``."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from s3contents.errors import Forbidden, NotFound
from s3contents.s3.storage import S3Storage
from s3contents.storage.base import PutMode
from tests.support.servers import S3Server

pytestmark = pytest.mark.storage

MIB = 1024 * 1024


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # S3's ETag of a single-part object


@asynccontextmanager
async def opened(
    server: S3Server, bucket: str, *, lean: bool = True, **client: Any
) -> AsyncIterator[S3Storage]:
    """``S3Storage`` on ``bucket`` of ``server`` (``lean``: its lean request path), closed
    after use; ``client``: more ``client_kwargs``."""
    client_kwargs = {
        "endpoint_url": server.endpoint_url,
        "region_name": server.region_name,
        "aws_access_key_id": server.access_key_id,
        "aws_secret_access_key": server.secret_access_key,
        **client,
    }
    storage = S3Storage(bucket, client_kwargs=client_kwargs, lean=lean)
    try:
        yield storage
    finally:
        await storage.close()


async def test_etags_are_md5_of_single_part_objects(s3_server: S3Server, s3_bucket: str) -> None:
    async with opened(s3_server, s3_bucket) as storage:
        assert await storage.put("a", b"one") == _md5(b"one")
        assert await storage.put("b", b"two", mode=PutMode.CREATE) == _md5(b"two")
        assert await storage.put("a", b"1", mode=PutMode.IF_MATCH, etag=_md5(b"one")) == _md5(b"1")
        assert (await storage.head("a")).etag == _md5(b"1")
        assert [o.etag for o in (await storage.list("")).objects] == [_md5(b"1"), _md5(b"two")]


async def test_multipart_requests_and_etags(s3_server: S3Server, s3_bucket: str) -> None:
    first, second = os.urandom(5 * MIB), os.urandom(1234)
    async with opened(s3_server, s3_bucket) as storage:
        upload_id = await storage.multipart_begin("big.bin")
        part1 = await storage.multipart_part("big.bin", upload_id, 1, first)
        part2 = await storage.multipart_part("big.bin", upload_id, 2, second)
        await storage.multipart_complete("big.bin", upload_id, [part1, part2])
        # CreateMultipartUpload and CompleteMultipartUpload are POSTs, each part a PUT.
        assert storage.stats == {"POST": 2, "PUT": 2}
        assert part1.etag == _md5(first)
        etag = (await storage.head("big.bin")).etag
        assert etag is not None and etag.endswith("-2")


async def test_unknown_access_key_is_forbidden(s3_server: S3Server, s3_bucket: str) -> None:
    unknown = "AKIA" + secrets.token_hex(8).upper()
    async with opened(s3_server, s3_bucket, aws_access_key_id=unknown) as storage:
        with pytest.raises(Forbidden, match=r"InvalidAccessKeyId|403"):
            await storage.list("")
        with pytest.raises(Forbidden):
            await storage.get("x")
    async with opened(s3_server, s3_bucket) as good:
        with pytest.raises(NotFound):
            await good.head("x")
