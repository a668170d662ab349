"""A lean request path for S3's frequent requests: SigV4 over aiohttp (S3 adapter only).

botocore costs 1.1-2 ms of CPU per request on the event loop, whatever the request: event
hooks, endpoint rules, parameter serialisation, the signature, the answer's parsing through
the model. A folder rename is one COPY per object, a listing one LIST of thousands of keys,
so that cost is the server's CPU budget. :class:`Wire` sends the requests the contents
manager makes all the time (``HeadObject``, ``GetObject`` read whole, ``PutObject``,
``CopyObject``, ``DeleteObject``, ``DeleteObjects``, ``ListObjectsV2``) itself: it signs
them with AWS Signature Version 4, sends them on its own aiohttp connection pool, and
answers the same dictionaries botocore would (the fields the adapter reads), raising
botocore's ``ClientError`` for an error answer so that :mod:`.errors` translates both paths
alike. Everything else (multipart, streamed reads, bucket settings) stays on aiobotocore,
and so does every request when this path is off
(``S3ContentsManager.lean_requests``).

What botocore decides stays botocore's: the bucket's URL (path or virtual-host style, the
region's endpoint, FIPS, dual-stack...) and the signing region are read once from a URL it
presigns; credentials come from the same session and chain, refreshable ones refreshed as
botocore does. Answers this path does not know how to read (a redirect to another region,
an argument it has no header for) raise :class:`Unhandled`: the adapter sends that request
through botocore, and after a redirect sends everything there.

Bodies are not hashed for the signature (``UNSIGNED-PAYLOAD``, which S3 accepts on every
endpoint); a PUT carries a CRC32 of its body (``x-amz-checksum-crc32``), checked by the store,
as botocore sends one. Retries follow botocore's standard mode: throttling, 5xx and dropped
connections, ``max_attempts`` in all, with jittered exponential backoff.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import logging
import random
import ssl
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from botocore.exceptions import ClientError, NoCredentialsError
from yarl import URL

from .answers import error_answer, head_answer, iso_time, listing, namespace, xml_root

__all__ = ["OPS", "Frozen", "Target", "Unhandled", "Wire", "sign_v4", "target_from_presigned"]

log = logging.getLogger(__name__)

#: The operations :class:`Wire` sends.
OPS = frozenset(
    {
        "HeadObject",
        "GetObject",
        "PutObject",
        "CopyObject",
        "DeleteObject",
        "DeleteObjects",
        "ListObjectsV2",
    }
)

_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNSIGNED = "UNSIGNED-PAYLOAD"
#: Codes botocore's standard retry mode retries (besides 500, 502, 503, 504 and dropped
#: connections).
_RETRY_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
    }
)
_RETRY_STATUS = frozenset({500, 502, 503, 504})
#: Listing answers bigger than this are read in a worker thread (about 300 keys).
_OFF_LOOP_BYTES = 96 * 1024
#: Bytes aiohttp reads from a connection before it waits for them to be consumed.
_READ_BUFFER = 1 << 20
#: Bodies bigger than this are given to aiohttp as a file (written in pieces).
_PIECE_BODY = 256 * 1024


class Unhandled(Exception):
    """A request or answer :class:`Wire` does not read; botocore is asked instead.

    ``lasting``: the answer says this store needs what botocore does (a redirect to the
    bucket's region): send every later request through botocore too."""

    def __init__(self, why: str, *, lasting: bool = False) -> None:
        super().__init__(why)
        self.lasting = lasting


@dataclass(frozen=True)
class Frozen:
    """Credentials at one instant."""

    access_key: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:  # never show a secret
        return "Frozen(...)"


@dataclass(frozen=True)
class Target:
    """Where the bucket's requests go, as botocore resolved it.

    ``objects``: the URL an object's quoted key is appended to (ends with ``/``);
    ``bucket``: the URL of bucket requests (listings, batch deletes); ``host``: the ``Host``
    header; ``region``: the signing region (None: unsigned requests)."""

    objects: str
    bucket: str
    host: str
    path: str
    region: str | None


def target_from_presigned(url: str, region: str | None, key: str = "k") -> Target:
    """The :class:`Target` of a bucket from a URL botocore presigned for object ``key`` of
    it (any signature: only the URL is read), signed for ``region`` (None: unsigned)."""
    parts = urlsplit(url)
    if not parts.path.endswith("/" + key):
        raise ValueError("the presigned URL does not end with its key")
    path = parts.path[: -len(key)]
    base = f"{parts.scheme}://{parts.netloc}"
    bucket_path = path.rstrip("/") or "/"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    default = {"http": ":80", "https": ":443"}.get(parts.scheme, "")
    host = netloc[: -len(default)] if default and netloc.endswith(default) else netloc
    return Target(base + path, base + bucket_path, host, path, region)


def _quote(text: str) -> str:
    return quote(text, safe="-_.~")


def sign_v4(
    method: str,
    host: str,
    path: str,
    query: str,
    headers: dict[str, str],
    payload: str,
    creds: Frozen,
    region: str,
    now: datetime,
    *,
    keys: dict[tuple[str, str, str], bytes] | None = None,
) -> None:
    """Sign a request with AWS Signature Version 4 for S3: add ``x-amz-date``,
    ``x-amz-content-sha256``, the session token if any and ``Authorization`` to ``headers``.

    ``path`` and ``query`` are as sent (already encoded; the query's pairs sorted);
    ``payload`` is the body's SHA-256 in hex or ``UNSIGNED-PAYLOAD``. Every header given
    is signed, with ``host``. ``keys`` caches the day's signing key."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    headers["x-amz-date"] = stamp
    headers["x-amz-content-sha256"] = payload
    if creds.token:
        headers["x-amz-security-token"] = creds.token
    signed = [(k.lower(), " ".join(str(v).split())) for k, v in headers.items()]
    signed.append(("host", host))
    signed.sort()
    names = ";".join(k for k, _ in signed)
    canonical = "\n".join(
        [
            method,
            path,
            query,
            "".join(f"{k}:{v}\n" for k, v in signed),
            names,
            payload,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    cache_key = (creds.secret_key, day, region)
    key = keys.get(cache_key) if keys is not None else None
    if key is None:
        key = ("AWS4" + creds.secret_key).encode()
        for part in (day, region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        if keys is not None:
            if len(keys) > 8:
                keys.clear()
            keys[cache_key] = key
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={creds.access_key}/{scope}, "
        f"SignedHeaders={names}, Signature={signature}"
    )


CredentialSource = Callable[[], Awaitable[Frozen | None]]


class Wire:
    """Sends :data:`OPS` to one bucket (see the module docstring).

    Parameters
    ----------
    target : Target
        The bucket's URLs and signing region.
    credentials : callable
        Returns the credentials to sign with now (None: none found, which is an error
        unless ``target.region`` is None).
    headers : dict
        For each operation, botocore's header (or header prefix, for ``Metadata``) of each
        argument the adapter may pass: from botocore's model, so both paths send the same.
    ssl_context : ssl.SSLContext | bool | None
        ``False`` not to verify certificates; None for aiohttp's default.
    """

    def __init__(
        self,
        target: Target,
        credentials: CredentialSource,
        headers: Mapping[str, Mapping[str, str]],
        *,
        ssl_context: ssl.SSLContext | bool | None = None,
        max_connections: int = 32,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        max_attempts: int = 4,
        user_agent: str = "s3contents",
    ) -> None:
        self.target = target
        self._credentials = credentials
        self._headers = headers
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self.max_attempts = max(1, max_attempts)
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._keys: dict[tuple[str, str, str], bytes] = {}
        # The proxy of the environment (HTTPS_PROXY, NO_PROXY...), as botocore honours it,
        # found once: aiohttp's trust_env looks it up (and ~/.netrc) in a thread per request.
        self._proxy: URL | None = None
        self._proxy_auth: aiohttp.BasicAuth | None = None
        with contextlib.suppress(LookupError):
            self._proxy, self._proxy_auth = get_env_proxy_for_url(URL(target.objects))
        #: Answers received, by operation (retries included).
        self.answered: Counter[str] = Counter()

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                ssl=self._ssl if self._ssl is not None else True,
                ttl_dns_cache=300,
                # The system's resolver, as botocore's (see storage._resolving).
                resolver=aiohttp.ThreadedResolver(),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                auto_decompress=False,
                # Big answers (a 10 MB notebook) come in 1 MiB reads, not 64 KiB ones.
                read_bufsize=_READ_BUFFER,
                trust_env=False,
                skip_auto_headers=("Content-Type",),
                headers={"User-Agent": self._user_agent},
            )
            self._loop = loop
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    # -- requests -------------------------------------------------------------------------
    async def call(self, op: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Send S3 operation ``op`` with botocore-style ``kwargs`` (without ``Bucket``)."""
        if op == "ListObjectsV2":
            return await self._list(kwargs)
        if op == "DeleteObjects":
            return await self._delete_objects(kwargs)
        key = kwargs["Key"]
        headers = self._argument_headers(op, kwargs)
        url = self.target.objects + quote(key, safe="/~")
        path = self.target.path + quote(key, safe="/~")
        if op == "HeadObject":
            status, answer, body = await self._send("HEAD", url, path, "", headers, None, op)
            return head_answer(answer)
        if op == "GetObject":
            # Read whole (a streamed read stays botocore's); checked against the object's
            # whole-object CRC32 where the store keeps one, as botocore checks it.
            headers["x-amz-checksum-mode"] = "ENABLED"
            status, answer, body = await self._send("GET", url, path, "", headers, None, op)
            expected = answer.get("x-amz-checksum-crc32")
            if expected and "-" not in expected:
                crc = zlib.crc32(body) if len(body) < (1 << 20) else await _crc32(body)
                if base64.b64encode(crc.to_bytes(4, "big")).decode() != expected:
                    raise aiohttp.ClientPayloadError(f"GetObject {key}: CRC32 mismatch")
            got = head_answer(answer)
            got["Body"] = _Body(body)
            got["ContentLength"] = len(body)
            return got
        if op == "DeleteObject":
            await self._send("DELETE", url, path, "", headers, None, op)
            return {}
        if op == "PutObject":
            data = kwargs.get("Body", b"")
            if not isinstance(data, bytes | bytearray | memoryview):
                raise Unhandled("a PutObject body that is not bytes")
            data = bytes(data)
            crc = zlib.crc32(data) if len(data) < (1 << 20) else await _crc32(data)
            headers["x-amz-checksum-crc32"] = base64.b64encode(crc.to_bytes(4, "big")).decode()
            status, answer, body = await self._send("PUT", url, path, "", headers, data, op)
            return {"ETag": answer.get("ETag"), "VersionId": answer.get("x-amz-version-id")}
        if op == "CopyObject":
            source = kwargs["CopySource"]
            if not isinstance(source, dict) or set(source) - {"Bucket", "Key", "VersionId"}:
                raise Unhandled("a CopySource that is not a bucket and key")
            copy_source = quote(f"{source['Bucket']}/{source['Key']}", safe="-._~/")
            if source.get("VersionId"):
                copy_source += f"?versionId={source['VersionId']}"
            headers["x-amz-copy-source"] = copy_source
            status, answer, body = await self._send("PUT", url, path, "", headers, None, op)
            root = xml_root(body, op, status, answer)
            ns = namespace(root)
            if root.tag == f"{ns}Error":  # S3 may fail a copy after its 200 has been sent
                raise ClientError(error_answer(body, status, answer), op)
            etag = root.findtext(f"{ns}ETag")
            modified = root.findtext(f"{ns}LastModified")
            result: dict[str, Any] = {}
            if etag is not None:
                result["ETag"] = etag
            if modified:
                result["LastModified"] = iso_time(modified)
            return {"CopyObjectResult": result, "VersionId": answer.get("x-amz-version-id")}
        raise Unhandled(f"{op} is not sent by this path")

    def _argument_headers(self, op: str, kwargs: Mapping[str, Any]) -> dict[str, str]:
        known = self._headers.get(op, {})
        headers: dict[str, str] = {}
        for name, value in kwargs.items():
            if name in ("Key", "Body", "CopySource"):
                continue
            header = known.get(name)
            if header is None:
                raise Unhandled(f"{op} argument {name}")
            if name == "Metadata":
                for meta, text in value.items():
                    headers[f"{header}{meta}"] = str(text)
            elif isinstance(value, str):
                headers[header] = value
            elif isinstance(value, bool):
                headers[header] = "true" if value else "false"
            elif isinstance(value, int):
                headers[header] = str(value)
            else:
                raise Unhandled(f"{op} argument {name} of type {type(value).__name__}")
        return headers

    async def _list(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        params = {"list-type": "2", "encoding-type": "url"}
        names = {
            "Prefix": "prefix",
            "Delimiter": "delimiter",
            "MaxKeys": "max-keys",
            "ContinuationToken": "continuation-token",
            "StartAfter": "start-after",
        }
        for name, value in kwargs.items():
            if name not in names:
                raise Unhandled(f"ListObjectsV2 argument {name}")
            params[names[name]] = str(value)
        query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(params.items()))
        status, answer, body = await self._send(
            "GET", f"{self.target.bucket}?{query}", self._bucket_path(), query, {}, None, "List"
        )
        if len(body) > _OFF_LOOP_BYTES:
            return await asyncio.to_thread(listing, body, status, answer)
        return listing(body, status, answer)

    def _bucket_path(self) -> str:
        return self.target.path.rstrip("/") or "/"

    async def _delete_objects(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        if set(kwargs) != {"Delete"}:
            raise Unhandled(f"DeleteObjects arguments {sorted(kwargs)}")
        delete = kwargs["Delete"]
        items = []
        for obj in delete["Objects"]:
            item = f"<Key>{escape(obj['Key'])}</Key>"
            if obj.get("ETag"):
                item += f"<ETag>{escape(obj['ETag'])}</ETag>"
            items.append(f"<Object>{item}</Object>")
        quiet = "<Quiet>true</Quiet>" if delete.get("Quiet") else ""
        data = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"{quiet}{''.join(items)}</Delete>"
        ).encode()
        headers = {
            "Content-MD5": base64.b64encode(
                hashlib.md5(data, usedforsecurity=False).digest()
            ).decode(),
            "Content-Type": "application/xml",
        }
        status, answer, body = await self._send(
            "POST",
            f"{self.target.bucket}?delete",
            self._bucket_path(),
            "delete=",
            headers,
            data,
            "DeleteObjects",
        )
        root = xml_root(body, "DeleteObjects", status, answer)
        ns = namespace(root)
        errors = [
            {
                "Key": e.findtext(f"{ns}Key") or "",
                "Code": e.findtext(f"{ns}Code") or "",
                "Message": e.findtext(f"{ns}Message") or "",
            }
            for e in root.iterfind(f"{ns}Error")
        ]
        deleted = [{"Key": d.findtext(f"{ns}Key") or ""} for d in root.iterfind(f"{ns}Deleted")]
        return {"Errors": errors, "Deleted": deleted}

    async def _send(
        self,
        method: str,
        url: str,
        path: str,
        query: str,
        headers: dict[str, str],
        data: bytes | None,
        op: str,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One request with its retries: (status, headers, body) of a 2xx answer; an error
        answer raises ``ClientError``, a redirect :class:`Unhandled`."""
        attempt = 0
        payload = _EMPTY_SHA256 if not data else _UNSIGNED
        if op == "DeleteObjects" and data:
            payload = hashlib.sha256(data).hexdigest()
        while True:
            attempt += 1
            sent = dict(headers)
            if self.target.region is not None:
                creds = await self._credentials()
                if creds is None:
                    raise NoCredentialsError()
                sign_v4(
                    method,
                    self.target.host,
                    path,
                    query,
                    sent,
                    payload,
                    creds,
                    self.target.region,
                    datetime.now(timezone.utc),
                    keys=self._keys,
                )
            sent["Host"] = self.target.host
            try:
                async with self._client().request(
                    method,
                    URL(url, encoded=True),
                    headers=sent,
                    # A big body as a file: aiohttp writes it in pieces, not in one go.
                    data=io.BytesIO(data) if data and len(data) > _PIECE_BODY else data,
                    allow_redirects=False,
                    proxy=self._proxy,
                    proxy_auth=self._proxy_auth,
                ) as response:
                    status = response.status
                    self.answered[op] += 1
                    answer = response.headers
                    body = b"" if method == "HEAD" else await response.read()
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError):
                if attempt >= self.max_attempts:
                    raise
                await _backoff(attempt)
                continue
            if 200 <= status < 300:
                return status, answer, body
            if 300 <= status < 400:
                raise Unhandled(f"{op} answered {status}", lasting=True)
            else:
                error = error_answer(body, status, answer)
            code = error["Error"].get("Code", "")
            region = answer.get("x-amz-bucket-region")
            if region and region != self.target.region and status in (301, 400):
                raise Unhandled(f"{op}: the bucket is in {region}", lasting=True)
            retryable = status in _RETRY_STATUS or code in _RETRY_CODES
            if retryable and attempt < self.max_attempts:
                await _backoff(attempt)
                continue
            raise ClientError(error, op)


class _Body:
    """A body read whole, read as botocore's streaming body is (``async with``, ``read``)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        #: The whole body, for a reader that wants it at once.
        self.whole = data
        self._at = 0

    async def __aenter__(self) -> _Body:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self, size: int = -1) -> bytes:
        if self._at == 0 and (size < 0 or size >= len(self.whole)):
            self._at = len(self.whole)
            return self.whole
        end = len(self._data) if size < 0 else min(len(self._data), self._at + size)
        piece = bytes(self._data[self._at : end])
        self._at = end
        return piece


async def _backoff(attempt: int) -> None:
    # botocore's standard mode: a random wait up to 2^attempt seconds, at most 20 s.
    await asyncio.sleep(min(random.random() * (2 ** (attempt - 1)), 20.0))


async def _crc32(data: bytes) -> int:
    return await asyncio.to_thread(zlib.crc32, data)
