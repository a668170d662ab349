"""The S3 adapter's multipart uploads (a chunked upload's parts, listed for the sweeps),
over its ``_call``.

A mixin of :class:`.storage.S3Storage`: each method sends its requests through the
adapter's one choke point (``_call``), which counts them, times them and translates their
errors.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from ..errors import NotFound
from ..storage.base import ObjectInfo, PartBody, PendingUpload, StoredParts, UploadPart, utc_seconds

__all__ = ["S3Multipart"]

log = logging.getLogger(__name__)

#: Uploads (and parts) asked for per ListMultipartUploads (ListParts) page: AWS's most.
_UPLOADS_PAGE = 1000

#: Clock differences up to this are taken for the rounding of the ``Date`` header.
_CLOCK_TOLERANCE = timedelta(seconds=2)


class S3Multipart:
    """The multipart methods of the storage port, for S3."""

    url: str

    async def _call(self, op: str, key: str | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError  # the adapter's

    async def multipart_begin(self, key: str, content_type: str | None = None) -> str:
        kwargs: dict[str, Any] = {"Key": key}
        if content_type:
            kwargs["ContentType"] = content_type
        r = await self._call("CreateMultipartUpload", key, **kwargs)
        return str(r["UploadId"])

    async def multipart_part(
        self, key: str, upload_id: str, number: int, data: PartBody
    ) -> UploadPart:
        # A BytesIO body is read by botocore in pieces (checksum, signature) and written
        # by aiohttp 64 KiB at a time; bytes would be joined to the headers and copied into
        # the socket's buffer whole (on Python < 3.12 twice): 8 MiB parts held three times.
        size = data.getbuffer().nbytes if isinstance(data, io.BytesIO) else len(data)
        r = await self._call(
            "UploadPart", key, Key=key, UploadId=upload_id, PartNumber=number, Body=data
        )
        return UploadPart(number, str(_etag(r.get("ETag"))), size)

    async def multipart_complete(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[UploadPart],
        last: PartBody | None = None,
    ) -> ObjectInfo | None:
        parts = builtins.list(parts)
        if last is not None:
            size = last.getbuffer().nbytes if isinstance(last, io.BytesIO) else len(last)
            if size or not parts:
                parts.append(await self.multipart_part(key, upload_id, len(parts) + 1, last))
        # The answer has the ETag but no time: the caller HEADs for the object's date.
        await self._call(
            "CompleteMultipartUpload",
            key,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": p.number, "ETag": f'"{p.etag}"'} for p in parts]
            },
        )
        return None

    async def multipart_abort(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(NotFound):
            await self._call("AbortMultipartUpload", key, Key=key, UploadId=upload_id)

    async def multipart_list(self, prefix: str) -> builtins.list[PendingUpload]:
        found: builtins.list[PendingUpload] = []
        markers: dict[str, str] = {}
        seen: set[tuple[str, str]] = set()
        while True:
            r = await self._call(
                "ListMultipartUploads", prefix, Prefix=prefix, MaxUploads=_UPLOADS_PAGE, **markers
            )
            skew = _clock_skew(r)
            for upload in r.get("Uploads", ()):
                key = str(upload.get("Key", ""))
                if key.startswith(prefix) and upload.get("UploadId") and upload.get("Initiated"):
                    initiated = utc_seconds(upload["Initiated"]) + skew
                    found.append(PendingUpload(key, str(upload["UploadId"]), initiated))
            if not r.get("IsTruncated"):
                return found
            marker = (str(r.get("NextKeyMarker") or ""), str(r.get("NextUploadIdMarker") or ""))
            if not marker[0] or marker in seen:
                # SeaweedFS marks a page truncated without saying where the next one starts.
                log.info("%s listed uploads in progress without a next page marker", self.url)
                return found
            seen.add(marker)
            markers = {"KeyMarker": marker[0], "UploadIdMarker": marker[1]}

    async def multipart_parts(self, key: str, upload_id: str) -> StoredParts:
        count = size = 0
        newest: datetime | None = None
        marker = 0
        while True:
            kwargs: dict[str, Any] = {"Key": key, "UploadId": upload_id, "MaxParts": _UPLOADS_PAGE}
            if marker:
                kwargs["PartNumberMarker"] = marker
            r = await self._call("ListParts", key, **kwargs)
            skew = _clock_skew(r)
            for part in r.get("Parts", ()):
                count += 1
                size += int(part.get("Size") or 0)
                if part.get("LastModified"):
                    stored = utc_seconds(part["LastModified"]) + skew
                    newest = stored if newest is None else max(newest, stored)
            following = int(r.get("NextPartNumberMarker") or 0)
            if not r.get("IsTruncated") or following <= marker:
                return StoredParts(count, size, newest)
            marker = following


def _etag(raw: str | None) -> str | None:
    return raw.strip('"') if raw else None


def _clock_skew(response: dict[str, Any]) -> timedelta:
    """This machine's clock minus the store's, from the ``Date`` of its answer (zero when it
    has none): added to the store's times, it puts them on this machine's clock."""
    raw = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        theirs = parsedate_to_datetime(raw) if raw else None
    except (TypeError, ValueError):
        theirs = None
    if theirs is None or theirs.tzinfo is None:
        return timedelta(0)
    skew = datetime.now(timezone.utc).replace(microsecond=0) - theirs
    # A Date is whole seconds: a difference of a second or so is its rounding, not skew.
    return skew if abs(skew) > _CLOCK_TOLERANCE else timedelta(0)
