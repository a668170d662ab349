"""The GCS adapter's versions of an object (history on a bucket with object versioning),
over its ``_request``.

A mixin of :class:`.storage.GCSStorage`: each method is one request of the JSON API sent
through the adapter's ``_request`` (its choke point ``_call``, which counts and times it,
with HTTP errors translated). ``get_version`` is the adapter's, beside its ``get``.
"""

from __future__ import annotations

import builtins
from datetime import datetime, timezone
from typing import Any

import aiohttp

from ..errors import NotFound
from ..storage.base import MTIME_KEY, VERSIONING_OFF, Copied, ObjectVersion, format_mtime
from .client import JSONAPI, precise_time

__all__ = ["GCSVersions"]

#: Versions asked for per page of a versioned list (GCS answers at most 1000).
_PAGE = 1000


class GCSVersions:
    """``versioning``, ``list_versions``, ``copy_version``, ``delete_version`` of the
    storage port, for GCS."""

    _api: JSONAPI

    async def _request(
        self,
        kind: str,
        method: str,
        url: str,
        key: str | None = None,
        *,
        create: bool = False,
        **kwargs: Any,
    ) -> aiohttp.ClientResponse:
        raise NotImplementedError  # the adapter's

    async def _json(self, resp: aiohttp.ClientResponse) -> dict[str, Any]:
        raise NotImplementedError  # the adapter's

    async def _rewrite(
        self, src: str, dst: str, params: dict[str, Any], resource: dict[str, Any], create: bool
    ) -> Copied:
        raise NotImplementedError  # the adapter's

    async def versioning(self) -> str:
        """The bucket's ``versioning.enabled``: ``enabled`` or ``off`` (GCS has no
        suspended state: turned off, it keeps the noncurrent versions it has)."""
        url = self._api.api_url(self._api.bucket_path, {"fields": "versioning"})
        body = await self._json(await self._request("GET", "GET", url))
        return "enabled" if (body.get("versioning") or {}).get("enabled") else VERSIONING_OFF

    async def list_versions(self, key: str, limit: int) -> builtins.list[ObjectVersion]:
        """One versioned list (``versions=true``) with ``prefix=key``: GCS lists a name's
        generations oldest first, before longer names, so the newest are the last of the
        name's run: a further page only for a file with more than a page (1000) of them."""
        found: builtins.list[ObjectVersion] = []
        token: str | None = None
        while True:
            params = {
                "prefix": key,
                "versions": "true",
                "maxResults": _PAGE,
                "pageToken": token,
                "fields": "items(name,size,generation,timeCreated,updated,timeDeleted),"
                "nextPageToken",
            }
            url = self._api.api_url(self._api.objects_path, params)
            body = await self._json(await self._request("LIST", "GET", url, key))
            items = body.get("items", ())
            for item in items:
                if item.get("name") == key and item.get("generation"):
                    written = item.get("timeCreated") or item.get("updated")
                    found.append(
                        ObjectVersion(
                            key,
                            str(item["generation"]),
                            int(item.get("size", 0)),
                            precise_time(written) if written else datetime.now(timezone.utc),
                            not item.get("timeDeleted"),
                        )
                    )
            token = body.get("nextPageToken")
            if not token or not items or items[-1].get("name") != key:
                break
        # Generations grow with time (microseconds): newest first by generation.
        found.sort(key=lambda v: int(v.version_id), reverse=True)
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
        resource: dict[str, Any] = {}
        if mtime is not None:
            resource = {
                "metadata": {MTIME_KEY: format_mtime(mtime)},
                "contentType": content_type or "application/octet-stream",
            }
        params: dict[str, Any] = {"sourceGeneration": version_id}
        try:
            return await self._rewrite(src, dst, params, resource, create=False)
        except NotFound as err:
            raise NotFound(f"No version {version_id} of {src}", path=src) from err

    async def delete_version(self, key: str, version_id: str) -> None:
        url = self._api.api_url(self._api.object_path(key), {"generation": version_id})
        await self._request("DELETE", "DELETE", url, key, ok=(404,))
