"""Google Cloud Storage adapter of the storage port (storage layer).

Maps each port operation to JSON API requests and their answers to port values
(:class:`~s3contents.storage.base.ObjectInfo`, errors of :mod:`s3contents.errors`). The
requests go through one choke point, :meth:`GCSStorage._call`, which hands them to
:meth:`JSONAPI.send <s3contents.gcs.client.JSONAPI.send>` (credentials, session, retries,
each attempt counted in :attr:`~s3contents.storage.base.Storage.stats`) within
:meth:`~s3contents.storage.base.Storage._bounded`, and maps every failure to the package's
own errors (:meth:`JSONAPI.translate <s3contents.gcs.client.JSONAPI.translate>`). The HTTP
half lives in :mod:`s3contents.gcs.client`.

How the port maps to GCS (one line per request; the kind counted in ``stats`` in brackets):

* ``head`` - ``GET b/{bucket}/o/{key}`` (metadata) [HEAD]
* ``get`` / ``stream`` - ``GET b/{bucket}/o/{key}?alt=media``, streamed for ``stream`` [GET]
* ``list`` / ``list_all`` / ``exists_any`` - ``GET b/{bucket}/o?prefix&delimiter&maxResults
  &pageToken``, 1000 entries a page [LIST]
* ``put`` - one multipart upload (metadata and bytes in one request):
  ``ifGenerationMatch=0`` for create-only (412 -> :class:`AlreadyExists`),
  ``ifGenerationMatch=<generation>`` for if-match (412 -> :class:`Conflict`) [PUT]
* ``copy`` - ``POST .../rewriteTo/...`` (server-side, repeated with ``rewriteToken`` until
  done; ``ifGenerationMatch=0`` for create-only) [COPY]
* ``delete`` - ``DELETE b/{bucket}/o/{key}`` (404 is fine) [DELETE]
* ``delete_many`` - the JSON API's batch endpoint, 100 deletions per request (GCS's
  limit), a few batches at once; servers without a batch endpoint get single deletions,
  run concurrently (bounded) [DELETE]
* multipart - a resumable upload: ``begin`` starts the session [POST]; each ``part`` PUTs
  the bytes buffered so far, as many whole 256 KiB blocks as it can while keeping at least
  one byte back [PUT]; ``complete`` PUTs the rest and the last part with the total size,
  which creates the object and answers its resource (time, size, generation: no HEAD)
  [PUT]; ``abort`` DELETEs the session URI [DELETE]. Memory: less than 256 KiB besides the
  part, which is sent from the caller's buffer in pieces, never copied whole.
  ``multipart_list`` returns nothing, without a request: GCS has no request that lists
  resumable upload sessions (a session is known only by the URI its ``begin`` answered, kept
  in the process that began it); a session holds no object (nothing appears in the bucket
  before the final chunk), and GCS forgets an abandoned one by itself, a week after it
  began. So there are no orphans to sweep, and none could be found.

The ``etag`` of an :class:`~s3contents.storage.base.ObjectInfo` is the object's
*generation* (a number GCS changes on every write of the object): it is what GCS's
preconditions compare, so ``put(mode=IF_MATCH, etag=...)`` is exact. (The MD5 would not do:
GCS has no precondition on it, and composite objects have none.)
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from ..errors import (
    BadRequest,
    Conflict,
    NotFound,
    Unavailable,
)
from ..storage.base import (
    MTIME_KEY,
    Copied,
    Listing,
    ObjectInfo,
    PartBody,
    PendingUpload,
    PutMode,
    Storage,
    StoredParts,
    UploadPart,
    body_view,
    format_mtime,
    parse_mtime,
    utc_seconds,
)
from .client import (
    JSONAPI,
    HTTPStatusError,
    batch_body,
    batch_statuses,
    precise_time,
    related_body,
)
from .versions import GCSVersions

__all__ = ["GCSStorage"]

log = logging.getLogger(__name__)

#: Entries asked for per LIST page (GCS answers at most 1000).
_PAGE = 1000
#: Deletions per batch request (GCS's limit is 100 calls per batch).
_BATCH = 100
#: Batch requests in flight at once.
_BATCH_CONCURRENCY = 4
#: Resumable uploads take chunks in multiples of this (all but the last).
RESUMABLE_BLOCK = 256 * 1024


@dataclass
class _Resumable:
    """A resumable upload in progress: where it goes and what is not sent yet."""

    key: str
    url: str
    sent: int = 0
    next_part: int = 1
    #: Bytes taken and not sent yet (less than a block after each part).
    buffer: bytearray = field(default_factory=bytearray)


def _parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 time of the JSON API in whole seconds (:func:`utc_seconds`)."""
    return utc_seconds(precise_time(text))


def _info(obj: dict[str, Any]) -> ObjectInfo:
    modified = obj.get("updated") or obj.get("timeCreated")
    written = parse_mtime((obj.get("metadata") or {}).get(MTIME_KEY))
    return ObjectInfo(
        key=obj["name"],
        size=int(obj.get("size", 0)),
        last_modified=written
        or (_parse_rfc3339(modified) if modified else datetime.now(timezone.utc)),
        etag=str(obj["generation"]) if obj.get("generation") else None,
    )


class GCSStorage(GCSVersions, Storage):
    """Object storage in one GCS bucket.

    The gcsfs file system (credentials, endpoint) is made once; its aiohttp session belongs
    to one event loop and is re-made if the storage is used from another loop, as happens
    in tests.

    Parameters
    ----------
    bucket : str
        Bucket name.
    project : str
        Google Cloud project (only used by Google's default credentials to check they
        belong to it).
    token : str or dict or google.auth.credentials.Credentials, optional
        What gcsfs calls ``token``: a path to a service-account or authorized-user JSON
        file, ``"google_default"``, ``"cloud"`` (the metadata server), ``"anon"``, a raw
        access token, or a credentials object. Default (None): ``"google_default"``, Google's
        default credentials. Never logged.
    endpoint_url : str, optional
        Root of the JSON API (emulators, private endpoints); gcsfs's default otherwise
        (``STORAGE_EMULATOR_HOST``, else Google's).
    max_concurrency : int
        Requests :meth:`delete_many` may run at once when it falls back to single deletions.
    retries : int
        Attempts per request on throttling, 5xx and dropped connections.
    """

    provider = "gcs"

    def __init__(
        self,
        bucket: str,
        *,
        project: str = "",
        token: Any = None,
        endpoint_url: str | None = None,
        max_concurrency: int = 32,
        retries: int = 4,
    ) -> None:
        super().__init__()
        self.bucket = bucket
        self.url = f"gs://{bucket}"
        self.max_concurrency = max(1, max_concurrency)
        self._api = JSONAPI(
            bucket,
            self.url,
            self.stats,
            project=project,
            token=token,
            endpoint_url=endpoint_url,
            retries=retries,
        )
        self._uploads: dict[str, _Resumable] = {}
        self._batch_supported = True

    @property
    def endpoint(self) -> str:
        return self.location

    async def describe_credentials(self) -> str:
        return self._api.describe_credentials()

    @property
    def location(self) -> str:
        """Scheme and host of the API (``https://storage.googleapis.com`` or an emulator)."""
        return self._api.location

    async def close(self) -> None:
        await self._api.close()

    # -- the choke point ------------------------------------------------------------------
    async def _call(
        self, kind: str, method: str, url: str, key: str | None = None, **kwargs: Any
    ) -> aiohttp.ClientResponse:
        """One request (:meth:`JSONAPI.send <s3contents.gcs.client.JSONAPI.send>`, its
        retries included) within the request time limit; HTTP errors untranslated."""
        return await self._bounded(self._api.send(kind, method, url, key, **kwargs), kind, key)

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
        """:meth:`_call`, with HTTP errors translated; ``create``: 412 means "exists"."""
        try:
            return await self._call(kind, method, url, key, **kwargs)
        except HTTPStatusError as err:
            raise self._api.translate(err, kind, key, create) from err

    def _reported_error(self, err: BaseException, what: str, key: str | None) -> BaseException:
        # _call raises HTTP errors untranslated (_request and _delete_batch translate them).
        if isinstance(err, HTTPStatusError):
            return self._api.translate(err, what, key, False)
        return err

    async def _json(self, resp: aiohttp.ClientResponse) -> dict[str, Any]:
        return await self._api.json(resp)

    # -- reads ----------------------------------------------------------------------------
    async def head(self, key: str) -> ObjectInfo:
        url = self._api.api_url(self._api.object_path(key))
        return _info(await self._json(await self._request("HEAD", "GET", url, key)))

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        url = self._api.api_url(self._api.object_path(key), {"alt": "media"})
        resp = await self._request("GET", "GET", url, key)
        data = await resp.read()
        return data, _media_info(key, resp, len(data))

    async def stream(self, key: str, chunk_size: int = 1 << 20) -> AsyncGenerator[bytes, None]:
        url = self._api.api_url(self._api.object_path(key), {"alt": "media"})
        resp = await self._request("GET", "GET", url, key, stream=True)
        try:
            async for chunk in resp.content.iter_chunked(chunk_size):
                yield chunk
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
            raise Unavailable(f"Reading {key} was interrupted ({type(err).__name__})") from err
        finally:
            resp.release()

    async def _list_pages(
        self,
        prefix: str,
        delimiter: str | None,
        page: int | None = None,
        token: str | None = None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        while True:
            params = {
                "prefix": prefix,
                "delimiter": delimiter or None,
                "maxResults": page or _PAGE,
                "pageToken": token,
                "fields": (
                    "items(name,size,updated,timeCreated,generation,metadata),"
                    "prefixes,nextPageToken"
                ),
            }
            url = self._api.api_url(self._api.objects_path, params)
            body = await self._json(await self._request("LIST", "GET", url, prefix))
            yield body
            token = body.get("nextPageToken")
            if not token:
                return

    #: Entries asked for per page of :meth:`list_page` (:data:`_PAGE`, as the other
    #: listings ask: GCS's most).
    list_page_size = _PAGE

    async def list(self, prefix: str, delimiter: str = "/") -> Listing:
        listing = Listing()
        seen: set[str] = set()
        async with contextlib.aclosing(self._list_pages(prefix, delimiter)) as pages:
            async for body in pages:
                listing.objects.extend(_info(o) for o in body.get("items", ()))
                for p in body.get("prefixes", ()):
                    # Some servers (fake-gcs-server) repeat the prefixes on every page.
                    if p not in seen:
                        seen.add(p)
                        listing.prefixes.append(p)
        return listing

    async def list_all(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        async with contextlib.aclosing(self._list_pages(prefix, None)) as pages:
            async for body in pages:
                for obj in body.get("items", ()):
                    yield _info(obj)

    async def list_page(
        self, prefix: str, max_keys: int | None = None, *, token: str | None = None
    ) -> tuple[builtins.list[ObjectInfo], str | None]:
        pages_of = self._list_pages(prefix, None, max_keys or self.list_page_size, token)
        async with contextlib.aclosing(pages_of) as pages:
            async for body in pages:
                items = [_info(o) for o in body.get("items", ())]
                return items, body.get("nextPageToken") or None
        return [], None  # pragma: no cover

    async def exists_any(self, prefix: str, *, ignore: str | None = None) -> bool:
        page = 2 if ignore else 1
        async with contextlib.aclosing(self._list_pages(prefix, None, page=page)) as pages:
            async for body in pages:
                return any(item.get("name") != ignore for item in body.get("items", ()))
        return False  # pragma: no cover

    # -- writes ---------------------------------------------------------------------------
    async def put(
        self,
        key: str,
        data: bytes,
        *,
        mode: PutMode = PutMode.OVERWRITE,
        etag: str | None = None,
        content_type: str | None = None,
        mtime: datetime | None = None,
    ) -> str | None:
        params: dict[str, Any] = {"uploadType": "multipart"}
        if mode is PutMode.CREATE:
            params["ifGenerationMatch"] = "0"
        elif mode is PutMode.IF_MATCH:
            if not etag:
                raise ValueError("IF_MATCH needs an etag (the object's generation)")
            params["ifGenerationMatch"] = etag
        metadata: dict[str, Any] = {
            "name": key,
            "contentType": content_type or "application/octet-stream",
        }
        if mtime is not None:
            metadata["metadata"] = {MTIME_KEY: format_mtime(mtime)}
        body_type, body = related_body(metadata, data)
        url = self._api.api_url(self._api.objects_path, params, upload=True)
        resp = await self._request(
            "PUT",
            "POST",
            url,
            key,
            create=mode is PutMode.CREATE,
            headers={"Content-Type": body_type},
            data=body,
        )
        generation = (await self._json(resp)).get("generation")
        return str(generation) if generation else None

    async def copy(
        self,
        src: str,
        dst: str,
        *,
        mode: PutMode = PutMode.OVERWRITE,
        etag: str | None = None,
        mtime: datetime | None = None,
        content_type: str | None = None,
    ) -> Copied:
        # A rewrite keeps the source's metadata unless the body names the destination's.
        resource: dict[str, Any] = {}
        if mtime is not None:
            resource = {
                "metadata": {MTIME_KEY: format_mtime(mtime)},
                "contentType": content_type or "application/octet-stream",
            }
        params: dict[str, Any] = {}
        if mode is PutMode.CREATE:
            params["ifGenerationMatch"] = "0"
        elif mode is PutMode.IF_MATCH:
            if not etag:
                raise ValueError("IF_MATCH needs an etag (the object's generation)")
            params["ifGenerationMatch"] = etag
        try:
            return await self._rewrite(src, dst, params, resource, create=mode is PutMode.CREATE)
        except NotFound as err:
            raise NotFound(f"No such object: {src}", path=src) from err

    async def _rewrite(
        self, src: str, dst: str, params: dict[str, Any], resource: dict[str, Any], create: bool
    ) -> Copied:
        """``rewriteTo`` of ``src`` onto ``dst``, in as many steps as the store takes."""
        path = f"{self._api.object_path(src)}/rewriteTo/{self._api.object_path(dst)}"
        while True:
            url = self._api.api_url(path, params)
            resp = await self._request(
                "COPY",
                "POST",
                url,
                dst,
                create=create,
                headers={"Content-Type": "application/json"},
                data=json.dumps(resource).encode(),
            )
            body = await self._json(resp)
            if body.get("done", True):
                made = body.get("resource") or {}
                modified = made.get("updated")
                generation = made.get("generation")
                return Copied(
                    str(generation) if generation else None,
                    _parse_rfc3339(modified) if modified else None,
                )
            # Large objects across locations or classes are copied in steps.
            params["rewriteToken"] = body["rewriteToken"]

    async def delete(self, key: str, *, etag: str | None = None) -> None:
        params = {"ifGenerationMatch": etag} if etag else None
        url = self._api.api_url(self._api.object_path(key), params)
        await self._request("DELETE", "DELETE", url, key, ok=(404,))

    async def delete_many(
        self, keys: Iterable[str], *, etags: Mapping[str, str] | None = None
    ) -> builtins.list[str]:
        todo = builtins.list(dict.fromkeys(keys))
        etags = etags or {}
        changed: builtins.list[str] = []
        if not todo:
            return changed
        if self._batch_supported:
            batches = [todo[i : i + _BATCH] for i in range(0, len(todo), _BATCH)]
            gate = asyncio.Semaphore(_BATCH_CONCURRENCY)

            async def one(batch: builtins.list[str]) -> builtins.list[str] | None:
                async with gate:
                    return await self._delete_batch(batch, etags)

            done = await asyncio.gather(*(one(b) for b in batches))
            todo = [k for b, res in zip(batches, done, strict=True) if res is None for k in b]
            changed = [k for res in done if res for k in res]
            if not todo:
                return changed
        gate = asyncio.Semaphore(self.max_concurrency)

        async def single(key: str) -> None:
            async with gate:
                try:
                    await self.delete(key, etag=etags.get(key))
                except Conflict:
                    changed.append(key)

        await asyncio.gather(*(single(k) for k in todo))
        return changed

    async def _delete_batch(
        self, keys: builtins.list[str], etags: Mapping[str, str]
    ) -> builtins.list[str] | None:
        """One batch request deleting ``keys``: the keys that changed meanwhile (their
        generation no longer the one in ``etags``), or None if the server has no batch
        endpoint."""
        lines = []
        for key in keys:
            generation = etags.get(key)
            query = f"?ifGenerationMatch={quote(generation, safe='')}" if generation else ""
            lines.append(f"DELETE /storage/v1/{self._api.object_path(key)}{query} HTTP/1.1")
        body_type, body = batch_body(lines)
        url = f"{self.location}/batch/storage/v1"
        try:
            resp = await self._call(
                "DELETE",
                "POST",
                url,
                keys[0],
                headers={"Content-Type": body_type},
                data=body,
            )
        except HTTPStatusError as err:
            if err.status in (404, 405, 501):
                log.info("%s has no batch endpoint: deleting objects one by one", self.location)
                self._batch_supported = False
                return None
            raise self._api.translate(err, "DELETE", keys[0], False) from err
        statuses = batch_statuses(await resp.read(), resp.headers.get("Content-Type", ""))
        if len(statuses) != len(keys):
            self._batch_supported = False
            return None
        changed = [key for key, (status, _) in zip(keys, statuses, strict=True) if status == 412]
        failed = [
            (key, status)
            for key, (status, _) in zip(keys, statuses, strict=True)
            if status >= 300 and status not in (404, 412)
        ]
        if failed:
            key, status = failed[0]
            reason, message = next((details for (s, details) in statuses if s == status), ("", ""))
            first = self._api.translate(
                HTTPStatusError(status, reason, message), "DELETE", key, False
            )
            raise type(first)(
                f"Could not delete {len(failed)} object(s), first {key}: {first.message}",
                path=key,
            )
        return changed

    # -- multipart: resumable uploads -----------------------------------------------------
    async def multipart_begin(self, key: str, content_type: str | None = None) -> str:
        url = self._api.api_url(self._api.objects_path, {"uploadType": "resumable"}, upload=True)
        metadata = {"name": key, "contentType": content_type or "application/octet-stream"}
        resp = await self._request(
            "POST",
            "POST",
            url,
            key,
            headers={
                "Content-Type": "application/json; charset=UTF-8",
                "X-Upload-Content-Type": metadata["contentType"],
            },
            data=json.dumps(metadata).encode(),
        )
        location = resp.headers.get("Location")
        if not location:
            raise Unavailable(f"Object storage did not start an upload to {key}", path=key)
        # The session URI is a capability (whoever has it may upload): it stays in this
        # process and is never logged. Our upload id is a random handle to it.
        upload_id = secrets.token_urlsafe(16)
        self._uploads[upload_id] = _Resumable(key=key, url=location)
        return upload_id

    def _upload(self, key: str, upload_id: str) -> _Resumable:
        upload = self._uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise NotFound(f"No upload in progress to {key}", path=key)
        return upload

    async def multipart_part(
        self, key: str, upload_id: str, number: int, data: PartBody
    ) -> UploadPart:
        upload = self._upload(key, upload_id)
        if number != upload.next_part:
            raise BadRequest(f"Part {number} out of order (expected {upload.next_part})", path=key)
        upload.next_part += 1
        with body_view(data) as view:
            size = len(view)
            # Send whole 256 KiB blocks, always keeping at least one byte back: GCS only
            # learns the total size (and creates the object) with the last chunk, sent by
            # complete.
            sendable = (len(upload.buffer) + size - 1) // RESUMABLE_BLOCK * RESUMABLE_BLOCK
            if sendable > 0:
                await self._send_chunk(upload, view, sendable, final=False)
            else:
                upload.buffer += view
        return UploadPart(number, f"{upload.sent}", size)

    async def multipart_complete(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[UploadPart],
        last: PartBody | None = None,
    ) -> ObjectInfo | None:
        upload = self._upload(key, upload_id)
        try:
            with body_view(last if last is not None else b"") as view:
                total = len(upload.buffer) + len(view)
                resp = await self._send_chunk(upload, view, total, final=True)
            made = await self._json(resp)
        finally:
            self._uploads.pop(upload_id, None)
        # The answer is the object's resource: its time as every later request reads it.
        if made.get("name") != key or not made.get("updated") or not made.get("generation"):
            return None
        return _info(made)

    async def _send_chunk(
        self, upload: _Resumable, view: memoryview, size: int, *, final: bool
    ) -> aiohttp.ClientResponse:
        """PUT the first ``size`` bytes of the buffered ones followed by ``view``; keep the
        rest buffered. ``final`` declares the total size. Returns the last answer."""
        offset = 0  # of what is sent, into the buffered bytes followed by ``view``
        carry = memoryview(upload.buffer)
        try:
            while True:
                piece = _span((carry, view), offset, size - offset)
                length = sum(len(p) for p in piece)
                start, end = upload.sent, upload.sent + length - 1
                total = str(upload.sent + length) if final else "*"
                span = f"{start}-{end}" if length else "*"
                resp = await self._request(
                    "PUT",
                    "PUT",
                    upload.url,
                    upload.key,
                    headers={"Content-Range": f"bytes {span}/{total}"},
                    data=piece,
                    ok=(308,),
                    # A chunk is not repeated blindly: the server may have kept part of it.
                    retry=False,
                )
                if resp.status != 308:
                    upload.sent += length
                    offset += length
                    break
                # 308: the server kept bytes 0..N; send what it did not keep.
                kept = resp.headers.get("Range", "")
                persisted = int(kept.rsplit("-", 1)[1]) + 1 if kept else upload.sent
                taken = max(0, persisted - upload.sent)
                upload.sent += taken
                offset += taken
                if offset >= size and not final:
                    break
            rest = bytearray().join(_span((carry, view), offset, len(carry) + len(view)))
        finally:
            carry.release()
        upload.buffer = rest
        return resp

    async def multipart_abort(self, key: str, upload_id: str) -> None:
        upload = self._uploads.pop(upload_id, None)
        if upload is None:
            return
        # GCS answers 499 to a cancelled session, 404/410 when it is already gone.
        with contextlib.suppress(NotFound):
            await self._request(
                "DELETE", "DELETE", upload.url, key, ok=(499, 404, 410), retry=False
            )

    async def multipart_list(self, prefix: str) -> builtins.list[PendingUpload]:
        """Nothing: resumable upload sessions cannot be listed (see the module's notes),
        and an abandoned one holds no object and expires by itself after a week."""
        return []

    async def multipart_parts(self, key: str, upload_id: str) -> StoredParts:
        """Only this process's own sessions are known (GCS cannot list sessions, see
        :meth:`multipart_list`), and it keeps no parts: what it has sent counts as one,
        stored now. :class:`NotFound` for any other id."""
        upload = self._upload(key, upload_id)
        if not upload.sent:
            return StoredParts()
        return StoredParts(1, upload.sent, datetime.now(timezone.utc))

    # -- bucket ---------------------------------------------------------------------------
    async def check_bucket(self) -> None:
        """Raise :class:`Unavailable`/:class:`Forbidden` unless the bucket answers."""
        url = self._api.api_url(self._api.bucket_path)
        try:
            await self._request("HEAD", "GET", url)
        except NotFound as err:
            raise Unavailable(f"Bucket {self.bucket!r} does not exist") from err

    # -- versions (history): the rest in gcs/versions.py ---------------------------------
    async def get_version(self, key: str, version_id: str) -> tuple[bytes, ObjectInfo]:
        url = self._api.api_url(
            self._api.object_path(key), {"alt": "media", "generation": version_id}
        )
        try:
            resp = await self._request("GET", "GET", url, key)
        except NotFound as err:
            raise NotFound(f"No version {version_id} of {key}", path=key) from err
        data = await resp.read()
        return data, _media_info(key, resp, len(data))

    # -- set-up facts ---------------------------------------------------------------------
    async def bucket_lifecycle(self) -> builtins.list[dict[str, Any]]:
        """The bucket's lifecycle rules (``lifecycle.rule``), for ``s3contents doctor``."""
        url = self._api.api_url(self._api.bucket_path, {"fields": "lifecycle"})
        body = await self._json(await self._request("GET", "GET", url))
        return [dict(r) for r in (body.get("lifecycle") or {}).get("rule", ())]


def _span(buffers: Sequence[memoryview], start: int, length: int) -> tuple[memoryview, ...]:
    """``length`` bytes from ``start`` of ``buffers`` read one after the other, as views."""
    out = []
    for buffer in buffers:
        if length <= 0:
            break
        if start >= len(buffer):
            start -= len(buffer)
            continue
        taken = buffer[start : start + length]
        out.append(taken)
        length -= len(taken)
        start = 0
    return tuple(out)


def _media_info(key: str, resp: aiohttp.ClientResponse, size: int) -> ObjectInfo:
    modified = resp.headers.get("Last-Modified")
    try:
        when = utc_seconds(parsedate_to_datetime(modified)) if modified else None
    except (TypeError, ValueError):
        when = None
    written = parse_mtime(resp.headers.get(f"X-Goog-Meta-{MTIME_KEY}"))
    return ObjectInfo(
        key=key,
        size=size,
        last_modified=written or when or utc_seconds(datetime.now(timezone.utc)),
        etag=resp.headers.get("X-Goog-Generation"),
    )
