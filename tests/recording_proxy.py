"""A recording HTTP/1.1 reverse proxy to put between a contents manager and its S3 server.

Every request is forwarded byte for byte (request line and headers as received, ``Host``
included, which SigV4 signs: the client must use the proxy's URL as its endpoint), bodies in
``Content-Length`` or chunked framing, ``Expect: 100-continue`` honoured, one upstream
connection per client connection. Each request is recorded as a :class:`Seen`: method, bucket,
key, the ``prefix=`` of a listing, the ``x-amz-copy-source`` of a copy and the keys named in
the body of a batch delete, so a test can tell exactly which keys the manager touched.

``benchmarks/proxy.py`` counts requests the same way for the benchmarks; this one lives in
``tests/`` because the tests do not import the benchmarks (the benchmarks import the tests).
It runs on its own event loop in a daemon thread::

    with RecordingProxy(seaweedfs.endpoint_url) as proxy:
        cm = make_cm(endpoint_url=proxy.url)
        ...
        for seen in proxy.requests(): ...
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.etree import ElementTree

__all__ = ["RecordingProxy", "Seen"]

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Seen:
    """One request as the S3 server received it (names decoded from the URL)."""

    method: str
    target: str
    bucket: str
    key: str
    query: dict[str, str]
    copy_source: str | None = None
    #: Keys of a batch delete (``POST ?delete``), from its XML body.
    deleted: tuple[str, ...] = ()
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def list_prefix(self) -> str | None:
        """The ``prefix`` of a listing (a GET on the bucket itself), else ``None``."""
        if self.method == "GET" and self.bucket and not self.key:
            return self.query.get("prefix", "")
        return None

    def touched(self) -> list[str]:
        """Every key or key prefix this request reads, writes or lists."""
        out = [self.key] if self.key else []
        if self.list_prefix is not None:
            out.append(self.list_prefix)
        if self.copy_source is not None:
            out.append(self.copy_source)
        out.extend(self.deleted)
        return out


def _parse_target(target: str) -> tuple[str, str, dict[str, str]]:
    parts = urlsplit(target)
    bucket, _, key = parts.path.lstrip("/").partition("/")
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    return unquote(bucket), unquote(key), query


def _copy_source(value: str | None) -> str | None:
    """``x-amz-copy-source: /bucket/key?versionId=..`` (URL-encoded) -> ``bucket/key``."""
    if value is None:
        return None
    return unquote(value.split("?", 1)[0]).lstrip("/")


def _deleted_keys(body: bytes) -> tuple[str, ...]:
    root = ElementTree.fromstring(body)
    return tuple(el.text or "" for el in root.iter() if re.sub(r"^\{.*\}", "", el.tag) == "Key")


class _Head:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        lines = raw.decode("latin-1").split("\r\n")
        self.start = lines[0].split(" ", 2)
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def length(self) -> int:
        return int(self.headers.get("content-length", "0") or 0)


async def _read_head(reader: asyncio.StreamReader) -> _Head | None:
    try:
        return _Head(await reader.readuntil(b"\r\n\r\n"))
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None


async def _relay_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: _Head, keep: bool = False
) -> bytes:
    """Relay a body in its framing; return it when ``keep`` (else ``b""``)."""
    kept = bytearray()

    async def relay(n: int) -> None:
        while n > 0:
            data = await reader.read(min(n, _CHUNK))
            if not data:
                raise ConnectionError("peer closed mid-body")
            writer.write(data)
            if keep:
                kept.extend(data)
            n -= len(data)
        await writer.drain()

    if head.chunked:
        while True:
            line = await reader.readuntil(b"\r\n")
            writer.write(line)
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                    writer.write(trailer)
                writer.write(b"\r\n")
                await writer.drain()
                break
            await relay(size + 2)
    else:
        await relay(head.length)
    return bytes(kept)


class RecordingProxy:
    """Forward to ``upstream_url`` (``http://127.0.0.1:PORT``) and record every request."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.port = 0
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[Seen]:
        """Requests recorded so far (answered ones; in the order they were answered)."""
        with self._lock:
            return list(self._seen)

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> RecordingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> RecordingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- forwarding -----------------------------------------------------------------------
    async def _client(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        self._writers.add(c_writer)
        u_reader: asyncio.StreamReader | None = None
        u_writer: asyncio.StreamWriter | None = None
        try:
            while (req := await _read_head(c_reader)) is not None:
                if u_reader is None or u_writer is None or u_reader.at_eof():
                    if u_writer is not None:
                        u_writer.close()
                    u_reader, u_writer = await asyncio.open_connection(*self.upstream)
                    self._writers.add(u_writer)
                if not await self._exchange(req, c_reader, c_writer, u_reader, u_writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]
            for w in (c_writer, u_writer):
                if w is not None:
                    self._writers.discard(w)
                    w.close()

    async def _exchange(
        self,
        req: _Head,
        c_reader: asyncio.StreamReader,
        c_writer: asyncio.StreamWriter,
        u_reader: asyncio.StreamReader,
        u_writer: asyncio.StreamWriter,
    ) -> bool:
        method, target = req.start[0].upper(), req.start[1]
        bucket, key, query = _parse_target(target)
        is_batch_delete = method == "POST" and "delete" in query
        u_writer.write(req.raw)
        await u_writer.drain()
        body = b""
        resp: _Head | None
        if req.headers.get("expect", "").lower() == "100-continue":
            resp = await _read_head(u_reader)
            if resp is None:
                return False
            if resp.start[1] != "100":
                self._record(req, bucket, key, query, body, resp)
                await self._relay_response(req, resp, u_reader, c_writer)
                return False
            c_writer.write(resp.raw)
            await c_writer.drain()
        body = await _relay_body(c_reader, u_writer, req, keep=is_batch_delete)
        while True:
            resp = await _read_head(u_reader)
            if resp is None:
                return False
            if resp.start[1].startswith("1") and resp.start[1] != "101":
                c_writer.write(resp.raw)
                continue
            break
        self._record(req, bucket, key, query, body, resp)
        keep = await self._relay_response(req, resp, u_reader, c_writer)
        return keep and req.headers.get("connection", "").lower() != "close"

    def _record(
        self, req: _Head, bucket: str, key: str, query: dict[str, str], body: bytes, resp: _Head
    ) -> None:
        deleted: tuple[str, ...] = ()
        if body:
            with contextlib.suppress(ElementTree.ParseError):
                deleted = _deleted_keys(body)
        seen = Seen(
            method=req.start[0].upper(),
            target=req.start[1],
            bucket=bucket,
            key=key,
            query=query,
            copy_source=_copy_source(req.headers.get("x-amz-copy-source")),
            deleted=deleted,
            status=int(resp.start[1]),
            headers=dict(req.headers),
        )
        with self._lock:
            self._seen.append(seen)

    async def _relay_response(
        self,
        req: _Head,
        resp: _Head,
        u_reader: asyncio.StreamReader,
        c_writer: asyncio.StreamWriter,
    ) -> bool:
        c_writer.write(resp.raw)
        status = int(resp.start[1])
        keep = resp.headers.get("connection", "").lower() != "close"
        if req.start[0].upper() == "HEAD" or status in (204, 304):
            pass
        elif resp.chunked or "content-length" in resp.headers:
            await _relay_body(u_reader, c_writer, resp)
        else:
            while data := await u_reader.read(_CHUNK):
                c_writer.write(data)
                await c_writer.drain()
            keep = False
        await c_writer.drain()
        return keep
