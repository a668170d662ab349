"""The GCS JSON API as the adapter speaks it: credentials, endpoint, session, retries.

Storage layer, below :mod:`s3contents.gcs.storage` (the adapter of the port), which sends
every request through :meth:`JSONAPI.send`. Split from the adapter because this half knows
HTTP and Google's authentication and nothing of the port: the adapter maps port operations
to requests and answers to port values, this module gets a request to GCS and back.

gcsfs gives us credentials (service-account files, Google's default credentials, raw
tokens, anonymous access), the endpoint (``endpoint_url``, ``STORAGE_EMULATOR_HOST`` or
Google's) and the aiohttp session. gcsfs's own ``_call`` is not used because it reads whole
bodies (no streamed downloads), retries every request six times with up to 32 s pauses, and
turns HTTP statuses into built-in exceptions that lose the difference between "already
exists" and "changed by someone else": :meth:`JSONAPI.send` raises :class:`HTTPStatusError`
with the status and GCS's reason, and :meth:`JSONAPI.translate` turns it into the package's
error (the adapter decides when: a few statuses are answers to some requests).

This module is where gcsfs is imported, with its gRPC bucket-type probes off (see
:mod:`s3contents.gcs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from ..errors import (
    AlreadyExists,
    BadCredentials,
    BadRequest,
    Conflict,
    ContentsError,
    Forbidden,
    NotFound,
    Unavailable,
)

__all__ = [
    "JSONAPI",
    "RETRY_STATUS",
    "HTTPStatusError",
    "batch_body",
    "batch_statuses",
    "precise_time",
    "related_body",
]

#: Read by gcsfs when it is imported (see :mod:`s3contents.gcs`).
_HNS_VARIABLE = "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"


def _import_gcsfs() -> None:
    """Import gcsfs without its gRPC bucket-type probes (see :mod:`s3contents.gcs`).

    ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT`` is read once, when gcsfs is imported; unless the
    user set it, it is ``false`` for that import only, so processes started later (kernels)
    do not inherit our choice.
    """
    ours = _HNS_VARIABLE not in os.environ
    if ours:
        os.environ[_HNS_VARIABLE] = "false"
    try:
        import gcsfs  # noqa: F401
    except ImportError as err:
        raise ImportError(
            f"Google Cloud Storage needs gcsfs ({err}): install s3contents with its gcs "
            "extra, pip install '.[gcs]' in a checkout (or 's3contents[gcs]')"
        ) from err
    finally:
        if ours:
            os.environ.pop(_HNS_VARIABLE, None)


_import_gcsfs()

#: Statuses worth another attempt.
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=60)
#: Bodies larger than this are sent in pieces of this size (see :func:`_body`).
_PIECE = 1 << 18
#: A request body: bytes, or buffers sent one after the other without being joined.
Body = bytes | memoryview | tuple[memoryview, ...]
#: What gcsfs's credential ``method`` names are, in words.
_CREDENTIAL_METHODS = {
    "anon": "anonymous access",
    "google_default": "Google's default credentials",
    "cloud": "the metadata server",
    "browser": "a browser sign-in",
    "cache": "cached credentials",
    "token": "a token (file or object)",
}


class HTTPStatusError(Exception):
    """A non-success answer (turned into a ContentsError by :meth:`JSONAPI.translate`)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(status)
        self.status = status
        self.reason = reason
        self.message = message


class JSONAPI:
    """The JSON API of one bucket, through one gcsfs file system.

    The gcsfs file system (credentials, endpoint) is made once; its aiohttp session belongs
    to one event loop and is re-made if the API is used from another loop, as happens in
    tests. ``url`` (``gs://bucket``) names the bucket in messages; ``stats`` is the
    adapter's :attr:`~s3contents.storage.base.Storage.stats`, where every attempt is
    counted by the kind the adapter names. The other parameters are
    :class:`~s3contents.gcs.storage.GCSStorage`'s.
    """

    def __init__(
        self,
        bucket: str,
        url: str,
        stats: Counter[str],
        *,
        project: str = "",
        token: Any = None,
        endpoint_url: str | None = None,
        retries: int = 4,
    ) -> None:
        from gcsfs.core import GCSFileSystem  # the core class: no zonal-bucket probes

        self.bucket = bucket
        self.url = url
        self.stats = stats
        self.retries = max(1, retries)
        try:
            self._fs = GCSFileSystem(
                project=project or "",
                token="google_default" if token is None else token,
                endpoint_url=endpoint_url or None,
                asynchronous=True,
                skip_instance_cache=True,
            )
        except Exception as err:
            # Only the type: gcsfs's and google-auth's messages may quote a raw token (a
            # failed token check names it in the URL it could not reach).
            raise Forbidden(
                f"No usable Google credentials for {url} ({type(err).__name__}); check "
                "the token setting or Google's default credentials"
            ) from err
        self._session_loop: asyncio.AbstractEventLoop | None = None

    @property
    def location(self) -> str:
        """Scheme and host of the API (``https://storage.googleapis.com`` or an emulator)."""
        return str(self._fs._location).rstrip("/")

    def describe_credentials(self) -> str:
        """Where the credentials come from, in words (never a secret)."""
        method = getattr(getattr(self._fs, "credentials", None), "method", None) or "token"
        return _CREDENTIAL_METHODS.get(str(method), str(method))

    # -- URLs -----------------------------------------------------------------------------
    def api_url(self, path: str, params: dict[str, Any] | None = None, upload: bool = False) -> str:
        """The URL of ``path`` under ``storage/v1`` (``upload/storage/v1`` for uploads),
        with the parameters that are not None."""
        base = f"{self.location}/{'upload/' if upload else ''}storage/v1/{path}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        return base + ("?" + urlencode(query, quote_via=quote) if query else "")

    @property
    def bucket_path(self) -> str:
        """``b/{bucket}``: the bucket resource."""
        return f"b/{quote(self.bucket, safe='')}"

    @property
    def objects_path(self) -> str:
        """``b/{bucket}/o``: the bucket's objects (listings, uploads)."""
        return f"{self.bucket_path}/o"

    def object_path(self, key: str) -> str:
        """``b/{bucket}/o/{key}``: one object."""
        return f"{self.objects_path}/{quote(key, safe='')}"

    # -- session lifecycle ----------------------------------------------------------------
    async def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session_loop is not loop:
            # An aiohttp session belongs to the loop it was made in: drop it, closed.
            old, self._fs._session = self._fs._session, None
            if old is not None:
                _discard_session(old, self._session_loop)
            self._session_loop = loop
        session: aiohttp.ClientSession = await self._fs._set_session()
        return session

    async def close(self) -> None:
        """Close the session (a later request opens another)."""
        session, self._fs._session = self._fs._session, None
        self._session_loop = None
        if session is not None and not session.closed:
            with contextlib.suppress(Exception):
                await session.close()

    async def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        creds = self._fs.credentials
        if creds.credentials is not None:
            with contextlib.suppress(AttributeError):
                if not creds._credentials_valid(300):
                    # A refresh is a blocking HTTP call in google-auth: keep it off the loop.
                    await asyncio.to_thread(creds.maybe_refresh)
        headers: dict[str, str] = self._fs._get_headers(dict(extra or {}))
        return headers

    # -- one request ----------------------------------------------------------------------
    async def send(
        self,
        kind: str,
        method: str,
        url: str,
        key: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        data: Body | None = None,
        ok: Iterable[int] = (),
        retry: bool = True,
        stream: bool = False,
    ) -> aiohttp.ClientResponse:
        """Send one request (retried on throttling, 5xx and dropped connections unless
        ``retry`` is false); return the response (read, unless ``stream``).

        Statuses below 300, and those in ``ok``, are answers; anything else raises
        :class:`HTTPStatusError`; no answer at all :class:`Unavailable`, no credentials
        :class:`Forbidden`. A streamed response must be released by the caller.
        """
        accepted = set(ok)
        attempts = self.retries if retry else 1
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(min(0.25 * 2 ** (attempt - 1), 4.0) * (0.5 + random.random()))
            try:
                request_headers = await self._headers(headers)
            except Exception as err:  # only credentials code runs here
                # The one chain dropped on purpose: google-auth's errors may quote the
                # token endpoint's answer, and this error is the whole story for the user.
                raise Forbidden(
                    f"Could not get Google credentials for {self.url}: {type(err).__name__}",
                    path=key,
                ) from None
            body = _body(data)
            if data is not None and not isinstance(body, (bytes, memoryview)):
                request_headers["Content-Length"] = str(_size(data))
            self.stats[kind] += 1
            try:
                session = await self._session()
                resp = await session.request(
                    method,
                    URL(url, encoded=True),
                    headers=request_headers,
                    data=body,
                    timeout=_TIMEOUT,
                    allow_redirects=False,
                )
                if resp.status < 300 or resp.status in accepted:
                    if not stream:
                        await resp.read()
                    return resp
                body = await resp.read()
                resp.release()
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
                if attempt + 1 < attempts:
                    continue
                raise Unavailable(
                    f"Object storage {self.url} is unreachable ({type(err).__name__}); "
                    "try again later",
                    path=key,
                ) from err
            if resp.status in RETRY_STATUS and attempt + 1 < attempts:
                continue
            reason, message = _error_details(body)
            raise HTTPStatusError(resp.status, reason, message)
        raise AssertionError("unreachable")  # pragma: no cover

    def translate(
        self, err: HTTPStatusError, kind: str, key: str | None, create: bool
    ) -> ContentsError:
        """The package error an HTTP error of a ``kind`` request on ``key`` stands for;
        ``create``: the request was create-only, so 412 means "already exists"."""
        # Our own words from the status and GCS's reason code: the server's text is shown
        # only for refusals of bad input, where it says what is wrong (it never carries
        # credentials; URLs and headers are never quoted).
        status, reason = err.status, err.reason
        what = f"{kind} {key}" if key else kind
        if status == 404:
            if kind == "LIST" or "bucket does not exist" in err.message.lower():
                return Unavailable(f"Bucket {self.bucket!r} does not exist", path=key)
            return NotFound(f"No such object: {key}", path=key)
        if status == 412:
            if create:
                return AlreadyExists(f"Already exists: {key}", path=key)
            return Conflict(f"{key} was changed by someone else", path=key)
        if status == 409:
            return Conflict(f"A concurrent write to {key} won; try again", path=key)
        if status == 401:
            return BadCredentials(
                f"Object storage rejected the credentials ({reason or status}) for {what} "
                f"in {self.url}",
                path=key,
            )
        if status == 403:
            return Forbidden(
                f"Access denied by object storage ({reason or status}) for {what} in {self.url}",
                path=key,
            )
        if status in (400, 411, 413, 416):
            detail = f": {err.message[:200]}" if err.message else ""
            return BadRequest(f"Object storage refused {what} ({status}){detail}", path=key)
        code = f"{status} {reason}" if reason else str(status)
        return Unavailable(f"Object storage error {code} on {what}; try again later", path=key)

    async def json(self, resp: aiohttp.ClientResponse) -> dict[str, Any]:
        """The JSON object of an answer (``{}`` for an empty body)."""
        body = await resp.read()
        if not body:
            return {}
        try:
            value = json.loads(body)
        except ValueError as err:
            raise Unavailable(f"Object storage {self.url} answered something not JSON") from err
        return value if isinstance(value, dict) else {}


# -- request and answer bodies --------------------------------------------------------------
def precise_time(text: str) -> datetime:
    """An RFC 3339 time of the JSON API, timezone-aware UTC, its microseconds kept."""
    # "2024-01-02T03:04:05.123456789Z": Python < 3.11 knows neither "Z" nor nanoseconds.
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, _, tz = text.partition("+")
    if "." in head:
        # Python 3.10 wants exactly 3 or 6 digits of fraction.
        base, frac = head.split(".", 1)
        head = f"{base}.{frac[:6].ljust(6, '0')}"
    return datetime.fromisoformat(head + ("+" + tz if tz else "+00:00")).astimezone(timezone.utc)


def related_body(metadata: dict[str, Any], data: bytes) -> tuple[str, bytes]:
    """A ``multipart/related`` upload body (metadata, then bytes): its content type and
    bytes."""
    boundary = f"==s3contents{secrets.token_hex(12)}=="
    body = b"".join(
        [
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
            json.dumps(metadata).encode(),
            f"\r\n--{boundary}\r\nContent-Type: {metadata['contentType']}\r\n\r\n".encode(),
            data,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return f'multipart/related; boundary="{boundary}"', body


def batch_body(requests: Sequence[str]) -> tuple[str, bytes]:
    """A batch request body of request lines (``DELETE /storage/v1/... HTTP/1.1``): its
    content type and bytes."""
    boundary = f"s3contents{secrets.token_hex(12)}"
    parts = [
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <{i + 1}>\r\n"
        f"\r\n{line}\r\n\r\n\r\n"
        for i, line in enumerate(requests)
    ]
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    return f"multipart/mixed; boundary={boundary}", body


def _error_details(body: bytes) -> tuple[str, str]:
    """GCS's reason code and message out of an error body (JSON API errors)."""
    try:
        error = json.loads(body).get("error", {})
    except (ValueError, AttributeError):
        return "", ""
    if not isinstance(error, dict):
        return "", str(error)[:200]
    reason = ""
    errors = error.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        reason = str(errors[0].get("reason", ""))
    return reason, str(error.get("message", ""))


def batch_statuses(body: bytes, content_type: str) -> list[tuple[int, tuple[str, str]]]:
    """The status (and error details) of each part of a batch answer, in order."""
    boundary = ""
    for item in content_type.split(";"):
        name, _, value = item.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        return []
    out: list[tuple[int, tuple[str, str]]] = []
    for part in body.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        marker = part.find(b"HTTP/1.1 ")
        if marker < 0:
            continue
        status_line = part[marker:].split(b"\r\n", 1)[0].split(b"\n", 1)[0]
        try:
            status = int(status_line.split()[1])
        except (IndexError, ValueError):
            continue
        details = ("", "")
        if status >= 300:
            brace = part.find(b"{", marker)
            if brace >= 0:
                details = _error_details(part[brace:].strip())
        out.append((status, details))
    return out


def _discard_session(
    session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop | None
) -> None:
    """Close a session of another loop: on that loop if it still runs, else its sockets."""
    if session.closed:
        return
    if loop is not None and loop.is_running() and not loop.is_closed():
        asyncio.run_coroutine_threadsafe(session.close(), loop)
        return
    connector = session.connector
    if connector is not None:
        with contextlib.suppress(Exception):
            connector._close()


def _size(data: Body) -> int:
    return sum(len(p) for p in data) if isinstance(data, tuple) else len(data)


def _body(data: Body | None) -> bytes | memoryview | AsyncIterator[memoryview] | None:
    """A request's body as aiohttp is given it: a large one (or one in several buffers) in
    pieces, fresh for each attempt, the ``Content-Length`` header set beside it. A large
    bytes body would be joined to the headers and copied into the socket's buffer whole (on
    Python < 3.12 twice), and aiohttp warns that it "might lock the event loop"; a
    ``BytesIO`` of it would be a copy too."""
    if data is None:
        return None
    if _size(data) <= _PIECE:
        return b"".join(data) if isinstance(data, tuple) else data
    buffers = data if isinstance(data, tuple) else (memoryview(data),)

    async def pieces() -> AsyncIterator[memoryview]:
        for buffer in buffers:
            view = memoryview(buffer)
            for start in range(0, len(view), _PIECE):
                yield view[start : start + _PIECE]

    return pieces()
