"""S3 adapter of the storage port, on ``aiobotocore``.

Every SDK call goes through :meth:`S3Storage._call`, the one choke point that counts the
request, applies the write options (server-side encryption, ``s3fs_additional_kwargs``)
and translates provider errors into the package's own errors. botocore's standard retry
mode retries what is retryable (throttling, 5xx, dropped connections) before we see it.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import os
import platform
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import aiobotocore
import aiohttp
import botocore
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore import UNSIGNED
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from ..errors import (
    Conflict,
    ContentsError,
    Forbidden,
    NotFound,
    Unavailable,
)
from ..redact import mask_key
from ..storage.base import (
    MTIME_KEY,
    Copied,
    Listing,
    ObjectInfo,
    PutMode,
    Storage,
    format_mtime,
    parse_mtime,
    utc_seconds,
)
from .credentials import describe_session
from .errors import BAD_CREDENTIALS, DENIED, PRECONDITION, denied, translate
from .multipart import S3Multipart
from .roles import RoleSettings, role_session
from .timestamps import use_fast_parsing
from .versions import S3Versions
from .wire import OPS as WIRE_OPS
from .wire import Frozen, Unhandled, Wire, target_from_presigned

__all__ = ["S3Storage"]

log = logging.getLogger(__name__)

#: Request kind of each S3 operation, for :attr:`Storage.stats`.
_KIND = {
    "ListObjectsV2": "LIST",
    "GetObject": "GET",
    "HeadObject": "HEAD",
    "HeadBucket": "HEAD",
    "PutObject": "PUT",
    "UploadPart": "PUT",
    "CopyObject": "COPY",
    "DeleteObject": "DELETE",
    "DeleteObjects": "DELETE",
    "AbortMultipartUpload": "DELETE",
    "CreateMultipartUpload": "POST",
    "CompleteMultipartUpload": "POST",
    "ListMultipartUploads": "LIST",
    "ListParts": "LIST",
    "GetBucketLifecycleConfiguration": "GET",
    "GetBucketVersioning": "GET",
    "ListObjectVersions": "LIST",
}
#: Operations that create objects: these get SSE and the additional write arguments.
_WRITES = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})

#: The ``User-Agent`` of every request, made once. botocore otherwise builds its own twice
#: per request (with the features the request used): 10-15% of a request's CPU.
USER_AGENT = (
    f"s3contents aiobotocore/{aiobotocore.__version__} "
    f"botocore/{botocore.__version__} Python/{platform.python_version()}"
)

#: Client settings that save CPU on every request, as the S3 adapter configures its client
#: (``config_kwargs`` may override each): the arguments are built by the adapter itself, so
#: botocore's check of them against the model (parameter_validation) only costs CPU; the
#: User-Agent is made once. Checksums stay as botocore sets them: a PUT or part carries a
#: CRC32 of its body (checked by the store), a GET with a stored checksum is checked; over
#: HTTPS that checksum is what lets botocore skip the SHA-256 of the body for the signature.
FAST_CONFIG: dict[str, Any] = {"parameter_validation": False, "user_agent": USER_AGENT}

#: Keys asked for per LIST page. AWS answers at most 1000 whatever we ask; servers that
#: allow larger pages (SeaweedFS, MinIO) then answer a big folder in one request.
_PAGE = 10000
#: Bytes read from a GetObject body at a time (the response's checksum is updated per piece).
_READ_PIECE = 1 << 20


def _written(r: dict[str, Any]) -> datetime:
    """The write time of a HEAD or GET answer: ours from the metadata, else LastModified."""
    return parse_mtime((r.get("Metadata") or {}).get(MTIME_KEY)) or utc_seconds(r["LastModified"])


def _etag(raw: str | None) -> str | None:
    return raw.strip('"') if raw else None


class S3Storage(S3Multipart, S3Versions, Storage):
    """Object storage in one S3 bucket through aiobotocore.

    The client is created lazily inside the running event loop (aiobotocore clients belong
    to one loop) and re-created if the manager is used from another loop, as happens in
    tests.

    Parameters
    ----------
    bucket : str
        Bucket name.
    session : AioSession, optional
        Session to build the client from; the default one (AWS credential chain) otherwise.
    client_kwargs : dict
        Keyword arguments of ``create_client`` (endpoint, region, explicit credentials,
        ``verify``). Never logged.
    config_kwargs : dict
        Keyword arguments of ``AioConfig``.
    write_kwargs : dict
        Extra arguments for operations that create objects (``ServerSideEncryption``,
        ``SSEKMSKeyId``, ``ACL``...); each operation gets only those its API accepts.
    anon : bool
        Send unsigned requests.
    lean : bool
        Send the frequent requests through :class:`.wire.Wire` (SigV4 over aiohttp)
        rather than botocore, where the configuration allows (see :meth:`_make_wire`).
    role : RoleSettings, optional
        Sign with the credentials of this role, assumed with the session's own (and
        refreshed before they expire): see :mod:`.roles`. ``client_kwargs`` then carries
        no keys (the configured keys, if any, are the role's ``source_keys``).
    """

    provider = "s3"
    _kinds = _KIND

    def __init__(
        self,
        bucket: str,
        *,
        session: AioSession | None = None,
        client_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        write_kwargs: dict[str, Any] | None = None,
        anon: bool = False,
        max_concurrency: int = 32,
        lean: bool = True,
        role: RoleSettings | None = None,
    ) -> None:
        super().__init__()
        self.role = role
        self.bucket = bucket
        self.url = f"s3://{bucket}"
        self._session = session
        self._client_kwargs = dict(client_kwargs or {})
        config = {
            "retries": {"mode": "standard", "max_attempts": 4},
            "connect_timeout": 10,
            "read_timeout": 60,
            "max_pool_connections": max(10, max_concurrency),
            **FAST_CONFIG,
        }
        config.update(config_kwargs or {})
        if anon:
            config["signature_version"] = UNSIGNED
        self._config_kwargs = config
        self._write_kwargs = dict(write_kwargs or {})
        self.max_concurrency = max_concurrency
        self._client: Any = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._lock: asyncio.Lock | None = None
        self._write_members: dict[str, frozenset[str]] = {}
        self.lean = lean
        #: The lean request path, once the client exists (None: every request by botocore).
        self.wire: Wire | None = None

    # -- client lifecycle -----------------------------------------------------------------
    async def _get_client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is loop:
            return self._client
        if self._lock is None or self._client_loop is not loop:
            self._lock = asyncio.Lock()
            self._client = None
            self._client_loop = loop
        async with self._lock:
            if self._client is None:
                # Making a client reads botocore's S3 model (JSON files of several MB, about
                # 0.1 s of CPU): in a thread, so that the first request does not stall the
                # loop and every request of the server waiting on it.
                session = await asyncio.to_thread(_prepared_session, self._session, self.role)
                if self.role is not None:
                    # One client per loop, so one set of refreshable credentials per loop
                    # (their lock belongs to it); the first AssumeRole is made here.
                    session = await role_session(session, self.role)
                stack = contextlib.AsyncExitStack()
                client = await stack.enter_async_context(
                    session.create_client(
                        "s3",
                        config=AioConfig(**_resolving(self._config_kwargs)),
                        **self._client_kwargs,
                    )
                )
                self._exit_stack = stack
                if self.wire is not None:
                    await self.wire.close()
                self.wire = await self._make_wire(client, session) if self.lean else None
                self._client = client
        return self._client

    async def _make_wire(self, client: Any, session: AioSession) -> Wire | None:
        """The lean path for this client's bucket, or None where the configuration asks
        for something only botocore does (another signature version, proxies or client
        certificates in the configuration) or botocore cannot presign a URL."""
        config = self._config_kwargs
        signature = config.get("signature_version")
        if signature not in (None, "s3v4", "v4", UNSIGNED):
            return None
        if config.get("proxies") or config.get("client_cert"):
            return None
        try:
            url = await client.generate_presigned_url(
                "head_object", Params={"Bucket": self.bucket, "Key": "k"}
            )
            region = None if signature is UNSIGNED else str(client.meta.region_name)
            if region == "aws-global":
                region = "us-east-1"
            target = target_from_presigned(url, region)
        except (BotoCoreError, ValueError) as err:
            log.info("%s: every request goes through botocore (%s)", self.url, type(err).__name__)
            return None
        headers: dict[str, dict[str, str]] = {}
        model = client.meta.service_model
        for op in WIRE_OPS:
            members = model.operation_model(op).input_shape.members
            headers[op] = {
                name: str(shape.serialization["name"])
                for name, shape in members.items()
                if shape.serialization.get("location") in ("header", "headers")
            }
        verify = self._client_kwargs.get("verify")
        ssl_context: Any = None
        if verify is False:
            ssl_context = False
        elif isinstance(verify, str):
            ssl_context = ssl.create_default_context(cafile=verify)
        else:
            bundle = os.environ.get("AWS_CA_BUNDLE") or session.get_config_variable("ca_bundle")
            if bundle:
                ssl_context = ssl.create_default_context(cafile=bundle)
        retries = config.get("retries") or {}
        kwargs = self._client_kwargs

        async def credentials() -> Frozen | None:
            if kwargs.get("aws_access_key_id"):
                return Frozen(
                    kwargs["aws_access_key_id"],
                    kwargs.get("aws_secret_access_key") or "",
                    kwargs.get("aws_session_token"),
                )
            found = await session.get_credentials()
            if found is None:
                return None
            frozen = await found.get_frozen_credentials()
            return Frozen(frozen.access_key, frozen.secret_key, frozen.token)

        return Wire(
            target,
            credentials,
            headers,
            ssl_context=ssl_context,
            max_connections=int(config.get("max_pool_connections") or 10),
            connect_timeout=float(config.get("connect_timeout") or 10),
            read_timeout=float(config.get("read_timeout") or 60),
            max_attempts=int(retries.get("max_attempts") or retries.get("total_max_attempts") or 4),
            user_agent=str(config.get("user_agent") or USER_AGENT),
        )

    async def close(self) -> None:
        stack, self._exit_stack, self._client = self._exit_stack, None, None
        wire, self.wire = self.wire, None
        if wire is not None:
            with contextlib.suppress(Exception):
                await wire.close()
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()

    def _members(self, client: Any, op: str) -> frozenset[str]:
        if op not in self._write_members:
            shape = client.meta.service_model.operation_model(op).input_shape
            self._write_members[op] = frozenset(shape.members)
        return self._write_members[op]

    # -- the choke point ------------------------------------------------------------------
    async def _call(self, op: str, key: str | None = None, **kwargs: Any) -> Any:
        return await self._bounded(self._send(op, key, **kwargs), op, key)

    async def _send(self, op: str, key: str | None = None, **kwargs: Any) -> Any:
        client = await self._get_client()
        if op in _WRITES and self._write_kwargs:
            allowed = self._members(client, op)
            for name, value in self._write_kwargs.items():
                if name in allowed:
                    kwargs.setdefault(name, value)
        self.stats[_KIND.get(op, "OTHER")] += 1
        # A streamed GetObject stays botocore's (the lean path reads an answer whole).
        streamed = kwargs.pop("_streamed", False)
        try:
            wire = self.wire
            if wire is not None and op in WIRE_OPS and not streamed:
                try:
                    return await wire.call(op, kwargs)
                except Unhandled as why:
                    if why.lasting:
                        log.info(
                            "%s: every request goes through botocore from now (%s)", self.url, why
                        )
                        self.wire = None
            return await getattr(client, _snake(op))(Bucket=self.bucket, **kwargs)
        except ClientError as err:
            error = translate(err, op, key, kwargs, self.bucket, self.url, self.endpoint)
            if op in ("HeadObject", "HeadBucket") and type(error) is Forbidden:
                error = await self._explain_head_403(client, op, key, error)
            raise error from err
        except (NoCredentialsError, PartialCredentialsError) as err:
            raise Forbidden(
                f"No usable AWS credentials for {self.url}: {type(err).__name__}. Set "
                "access_key_id/secret_access_key, or configure the AWS credential chain.",
                path=key,
            ) from err
        except (
            BotoConnectionError,
            BotoCoreError,
            aiohttp.ClientError,
            OSError,
            asyncio.TimeoutError,
        ) as err:
            raise Unavailable(
                f"Object storage {self.url} is unreachable ({type(err).__name__}); try again later",
                path=key,
            ) from err

    def _reported_error(self, err: BaseException, what: str, key: str | None) -> BaseException:
        # A missing bucket is a failure of the configuration, not an answer (check_bucket).
        if what == "HeadBucket" and isinstance(err, NotFound):
            return Unavailable(f"Bucket {self.bucket!r} does not exist")
        return err

    async def _explain_head_403(
        self, client: Any, op: str, key: str | None, error: ContentsError
    ) -> ContentsError:
        """A HEAD answer has no body: a 403 to one does not say whether the credentials
        themselves were rejected. Ask once more with a request whose refusal carries an
        error code (a one-byte GET of the key, or a LIST of the bucket), so that wrong
        credentials are reported as such, at start and on every request."""
        self.stats["GET" if key else "LIST"] += 1
        try:
            if key is None:
                await client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
            else:
                r = await client.get_object(Bucket=self.bucket, Key=key, Range="bytes=0-0")
                async with r["Body"]:
                    pass
        except ClientError as err:
            if str(err.response.get("Error", {}).get("Code", "")) in BAD_CREDENTIALS:
                return translate(err, op, key, {}, self.bucket, self.url, self.endpoint)
        except (BotoCoreError, OSError, asyncio.TimeoutError):
            pass
        return error

    # -- reads ----------------------------------------------------------------------------
    async def head(self, key: str) -> ObjectInfo:
        r = await self._call("HeadObject", key, Key=key)
        return ObjectInfo(key, int(r["ContentLength"]), _written(r), _etag(r.get("ETag")))

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        # The body is read within the same time limit as the request.
        return await self._bounded(self._get(key), "GetObject", key)

    async def get_version(self, key: str, version_id: str) -> tuple[bytes, ObjectInfo]:
        # With a VersionId (a query argument) the lean path hands the GetObject to botocore.
        try:
            return await self._bounded(self._get(key, VersionId=version_id), "GetObject", key)
        except NotFound as err:
            raise NotFound(f"No version {version_id} of {key}", path=key) from err

    async def _get(self, key: str, **extra: str) -> tuple[bytes, ObjectInfo]:
        r = await self._send("GetObject", key, Key=key, **extra)
        whole = getattr(r["Body"], "whole", None)  # read already (the lean path)
        if isinstance(whole, bytes):
            return whole, ObjectInfo(key, len(whole), _written(r), _etag(r.get("ETag")))
        try:
            async with r["Body"] as body:
                # In pieces: read whole, botocore checksums (CRC32) a 10 MB body in one call
                # on the event loop; piece by piece the loop runs between them.
                pieces = []
                while piece := await body.read(_READ_PIECE):
                    pieces.append(piece)
                data = b"".join(pieces)
        except (BotoCoreError, OSError, asyncio.TimeoutError) as err:
            raise Unavailable(f"Reading {key} was interrupted ({type(err).__name__})") from err
        info = ObjectInfo(key, len(data), _written(r), _etag(r.get("ETag")))
        return data, info

    async def stream(self, key: str, chunk_size: int = 1 << 20) -> AsyncGenerator[bytes, None]:
        r = await self._call("GetObject", key, Key=key, _streamed=True)
        async with r["Body"] as body:
            async for chunk in body.iter_chunks(chunk_size):
                yield chunk

    #: Keys asked for per page of :meth:`list_page` (:data:`_PAGE`, as :meth:`list` and
    #: :meth:`list_all` ask; AWS answers 1000 at most).
    list_page_size = _PAGE

    async def list(self, prefix: str, delimiter: str = "/") -> Listing:
        listing = Listing()
        prefixes: builtins.list[str] = listing.prefixes
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "Prefix": prefix,
                "Delimiter": delimiter,
                "MaxKeys": _PAGE,
            }
            if token:
                kwargs["ContinuationToken"] = token
            r = await self._call("ListObjectsV2", prefix, **kwargs)
            listing.objects.extend(await _infos(r.get("Contents", ())))
            prefixes.extend(p["Prefix"] for p in r.get("CommonPrefixes", ()))
            token = r.get("NextContinuationToken") if r.get("IsTruncated") else None
            if not token:
                return listing

    async def list_all(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": prefix, "MaxKeys": _PAGE}
            if token:
                kwargs["ContinuationToken"] = token
            r = await self._call("ListObjectsV2", prefix, **kwargs)
            for info in await _infos(r.get("Contents", ())):
                yield info
            token = r.get("NextContinuationToken") if r.get("IsTruncated") else None
            if not token:
                return

    async def list_page(
        self, prefix: str, max_keys: int | None = None, *, token: str | None = None
    ) -> tuple[builtins.list[ObjectInfo], str | None]:
        kwargs: dict[str, Any] = {"Prefix": prefix, "MaxKeys": max_keys or self.list_page_size}
        if token:
            kwargs["ContinuationToken"] = token
        r = await self._call("ListObjectsV2", prefix, **kwargs)
        found = [_info(obj) for obj in r.get("Contents", ())]
        return found, (r.get("NextContinuationToken") if r.get("IsTruncated") else None)

    async def exists_any(self, prefix: str, *, ignore: str | None = None) -> bool:
        # Delimited: SeaweedFS keeps an emptied folder as a directory that only delimited
        # listings show (as a common prefix, or as the key itself); it is still listed,
        # so it must exist. On AWS the answer is the same either way.
        r = await self._call(
            "ListObjectsV2", prefix, Prefix=prefix, Delimiter="/", MaxKeys=2 if ignore else 1
        )
        if ignore is None:
            return bool(r.get("KeyCount") or r.get("Contents"))
        found = [o["Key"] for o in r.get("Contents", ())]
        found += [p["Prefix"] for p in r.get("CommonPrefixes", ())]
        return any(k != ignore for k in found)

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
        kwargs: dict[str, Any] = {"Key": key, "Body": data}
        if content_type:
            kwargs["ContentType"] = content_type
        if mtime is not None:
            kwargs["Metadata"] = {MTIME_KEY: format_mtime(mtime)}
        if mode is PutMode.CREATE:
            kwargs["IfNoneMatch"] = "*"
        elif mode is PutMode.IF_MATCH:
            if not etag:
                raise ValueError("IF_MATCH needs an etag")
            kwargs["IfMatch"] = f'"{etag}"'
        try:
            r = await self._call("PutObject", key, **kwargs)
        except NotFound as err:
            if mode is not PutMode.IF_MATCH:
                raise
            # AWS answers If-Match on a missing key with 404, SeaweedFS with 412: either way
            # the object is not the version the caller read.
            raise Conflict(f"{key} was deleted by someone else", path=key) from err
        return _etag(r.get("ETag"))

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
        kwargs: dict[str, Any] = {"Key": dst, "CopySource": {"Bucket": self.bucket, "Key": src}}
        if mtime is not None:
            kwargs["MetadataDirective"] = "REPLACE"
            kwargs["Metadata"] = {MTIME_KEY: format_mtime(mtime)}
            kwargs["ContentType"] = content_type or "application/octet-stream"
        if mode is PutMode.CREATE:
            kwargs["IfNoneMatch"] = "*"
        elif mode is PutMode.IF_MATCH:
            if not etag:
                raise ValueError("IF_MATCH needs an etag")
            kwargs["IfMatch"] = f'"{etag}"'
        try:
            r = await self._call("CopyObject", dst, **kwargs)
        except NotFound as err:
            if mode is PutMode.IF_MATCH:
                # S3 answers 404 for an If-Match copy onto a missing key (SeaweedFS 412):
                # the source or the destination is gone; either way not the version asked.
                raise Conflict(f"{dst} was changed by someone else", path=dst) from err
            raise NotFound(f"No such object: {src}", path=src) from err
        result = r.get("CopyObjectResult", {})
        modified = result.get("LastModified")
        return Copied(_etag(result.get("ETag")), utc_seconds(modified) if modified else None)

    async def delete(self, key: str, *, etag: str | None = None) -> None:
        if etag is None:
            await self._call("DeleteObject", key, Key=key)
            return
        try:
            await self._call("DeleteObject", key, Key=key, IfMatch=f'"{etag}"')
        except NotFound:
            return  # gone already: nothing of that version is left to lose
        except Conflict:
            # SeaweedFS answers 412 for a missing key too (AWS 404): which is it?
            try:
                await self.head(key)
            except NotFound:
                return
            raise

    async def delete_many(
        self, keys: Iterable[str], *, etags: Mapping[str, str] | None = None
    ) -> builtins.list[str]:
        changed: builtins.list[str] = []
        batch: builtins.list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == 1000:
                changed += await self._delete_batch(batch, etags or {})
                batch = []
        if batch:
            changed += await self._delete_batch(batch, etags or {})
        return changed

    async def _delete_batch(
        self, keys: builtins.list[str], etags: Mapping[str, str]
    ) -> builtins.list[str]:
        objects: builtins.list[dict[str, str]] = []
        for k in keys:
            etag = etags.get(k)
            objects.append({"Key": k, "ETag": f'"{etag}"'} if etag else {"Key": k})
        r = await self._call("DeleteObjects", keys[0], Delete={"Objects": objects, "Quiet": True})
        changed = [e.get("Key", "") for e in r.get("Errors", ()) if e.get("Code") in PRECONDITION]
        errors = [
            e for e in r.get("Errors", ()) if e.get("Code") not in PRECONDITION | {"NoSuchKey"}
        ]
        if errors:
            first = errors[0]
            code = first.get("Code", "")
            if code in DENIED:
                what = f"DeleteObjects of {len(errors)} object(s) (first {first.get('Key')})"
                raise denied(code, "DeleteObjects", what, first.get("Key"), self.url)
            raise Unavailable(
                f"Could not delete {len(errors)} object(s), first {first.get('Key')}: {code}",
                path=first.get("Key"),
            )
        return changed

    # -- set-up facts ---------------------------------------------------------------------
    async def lifecycle_rules(self) -> builtins.list[dict[str, Any]]:
        """The bucket's lifecycle rules, as S3 lists them (``[]`` when it has none); for
        ``s3contents doctor``. :class:`Forbidden` without s3:GetLifecycleConfiguration."""
        try:
            r = await self._call("GetBucketLifecycleConfiguration", None)
        except NotFound:  # NoSuchLifecycleConfiguration
            return []
        return [dict(rule) for rule in r.get("Rules", ())]

    @property
    def endpoint(self) -> str:
        explicit = self._client_kwargs.get("endpoint_url")
        if explicit:
            return str(explicit)
        region = self._client_kwargs.get("region_name") or "us-east-1"
        return f"https://s3.{region}.amazonaws.com"

    async def describe_credentials(self) -> str:
        if self._config_kwargs.get("signature_version") is UNSIGNED:
            return "anonymous (unsigned requests)"
        source = self.role.source_keys if self.role is not None else None
        key = source[0] if source else self._client_kwargs.get("aws_access_key_id")
        if key:
            described = f"access key {mask_key(key)} from the configuration"
        else:
            described = await describe_session(self._session or get_session())
        if self.role is not None:
            return f"{self.role.describe()}, assumed with {described}"
        return described

    # -- bucket ---------------------------------------------------------------------------
    async def check_bucket(self) -> None:
        """HEAD the bucket: :class:`Unavailable` naming it when it does not exist.

        Some servers (SeaweedFS) create a missing bucket on the first write: checking
        first keeps a misspelt bucket name from silently starting an empty tree.
        """
        try:
            if self.role is not None and self.role.probe_prefix:
                # A session policy scoped to the prefix allows no HeadBucket (it needs
                # s3:ListBucket with no prefix); a listing under the prefix tells as much.
                await self._call("ListObjectsV2", None, Prefix=self.role.probe_prefix, MaxKeys=1)
            else:
                await self._call("HeadBucket", None)
        except NotFound as err:
            raise Unavailable(f"Bucket {self.bucket!r} does not exist") from err


def _info(obj: dict[str, Any]) -> ObjectInfo:
    modified = utc_seconds(obj["LastModified"])
    return ObjectInfo(obj["Key"], int(obj.get("Size", 0)), modified, _etag(obj.get("ETag")))


#: Listing pages with more objects than this are turned into ``ObjectInfo`` in a worker
#: thread: about 5 us an object, so a page of 10000 would hold the event loop 50 ms.
_OFF_LOOP_OBJECTS = 1000


async def _infos(objects: Sequence[dict[str, Any]]) -> builtins.list[ObjectInfo]:
    """The ``ObjectInfo`` of a listing page's objects."""
    if len(objects) > _OFF_LOOP_OBJECTS:
        return await asyncio.to_thread(lambda: [_info(o) for o in objects])
    return [_info(o) for o in objects]


def _resolving(config_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``config_kwargs`` with host names resolved by the system (``getaddrinfo`` in a
    thread, as botocore's urllib3 does: /etc/hosts, the cluster's search domains), not by
    aiohttp's default, which is c-ares when aiodns happens to be installed. Made on the
    running loop (the resolver belongs to it)."""
    connector = dict(config_kwargs.get("connector_args") or {})
    connector.setdefault("resolver", aiohttp.ThreadedResolver())
    return {**config_kwargs, "connector_args": connector}


def _prepared_session(given: AioSession | None, role: RoleSettings | None = None) -> AioSession:
    """The session to make the client from (``given``, else a new one with the AWS chain),
    with botocore's S3 model loaded (STS's too with a role) and the fast timestamp parser
    (runs in a thread)."""
    session = given or get_session()
    use_fast_parsing(session)
    session.warm_up_loader_caches("s3")
    if role is not None:
        session.warm_up_loader_caches("sts")
    return session


def _snake(op: str) -> str:
    out = []
    for i, ch in enumerate(op):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
