"""The S3 adapter's versions of an object (history on a versioned bucket), over its ``_call``.

A mixin of :class:`.storage.S3Storage`: each method is one S3 request sent through the
adapter's one choke point (``_call``), which counts it, times it and translates its errors.
"""

from __future__ import annotations

import builtins
import contextlib
from datetime import datetime, timezone
from typing import Any

from ..errors import NotFound
from ..storage.base import (
    MTIME_KEY,
    VERSIONING_OFF,
    Copied,
    ObjectVersion,
    format_mtime,
    utc_seconds,
)

__all__ = ["S3Versions"]


class S3Versions:
    """``versioning``, ``list_versions``, ``copy_version``, ``delete_version`` of the
    storage port, for S3 (``get_version`` is the adapter's, beside its ``get``)."""

    bucket: str

    async def _call(self, op: str, key: str | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError  # the adapter's

    async def versioning(self) -> str:
        """GetBucketVersioning: ``enabled``, ``suspended``, or ``off`` (never turned on)."""
        r = await self._call("GetBucketVersioning", None)
        return str(r.get("Status") or VERSIONING_OFF).lower()

    async def list_versions(self, key: str, limit: int) -> builtins.list[ObjectVersion]:
        """One ListObjectVersions with ``Prefix=key``: S3 lists a key's versions newest
        first, before those of longer keys (``a.ipynb`` before ``a.ipynb.bak``), and its
        delete markers among them; both count against the page, so it asks for twice the
        limit (and two more), capped at S3's 1000."""
        page = min(1000, 2 * max(1, limit) + 2)
        r = await self._call("ListObjectVersions", key, Prefix=key, MaxKeys=page)
        found = [
            ObjectVersion(
                key,
                str(v["VersionId"]),
                int(v.get("Size", 0)),
                _store_time(v["LastModified"]),
                bool(v.get("IsLatest")),
            )
            for v in r.get("Versions", ())
            if v.get("Key") == key and v.get("VersionId") not in (None, "")
        ]
        # Newest first, whatever the server's order (ties keep the listing's order).
        found.sort(key=lambda v: (not v.is_latest, -v.last_modified.timestamp()))
        return found[:limit]

    async def copy_version(
        self,
        src: str,
        version_id: str,
        dst: str,
        *,
        mtime: datetime | None = None,
        content_type: str | None = None,
    ) -> Copied:
        source = {"Bucket": self.bucket, "Key": src, "VersionId": version_id}
        kwargs: dict[str, Any] = {"Key": dst, "CopySource": source}
        if mtime is not None:
            kwargs["MetadataDirective"] = "REPLACE"
            kwargs["Metadata"] = {MTIME_KEY: format_mtime(mtime)}
            kwargs["ContentType"] = content_type or "application/octet-stream"
        try:
            r = await self._call("CopyObject", dst, **kwargs)
        except NotFound as err:
            raise NotFound(f"No version {version_id} of {src}", path=src) from err
        result = r.get("CopyObjectResult", {})
        modified = result.get("LastModified")
        return Copied(_etag(result.get("ETag")), utc_seconds(modified) if modified else None)

    async def delete_version(self, key: str, version_id: str) -> None:
        with contextlib.suppress(NotFound):
            await self._call("DeleteObject", key, Key=key, VersionId=version_id)


def _etag(raw: str | None) -> str | None:
    return raw.strip('"') if raw else None


def _store_time(when: datetime) -> datetime:
    """A listing's time, timezone-aware UTC, its milliseconds kept (versions' order)."""
    return when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)
