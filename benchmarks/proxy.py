"""A counting HTTP/1.1 reverse proxy to put between a contents manager and its S3 server.

Every request is forwarded byte for byte: the request line and headers exactly as received
(including ``Host``, which SigV4 signs, so the client must use the proxy's URL as its endpoint),
bodies streamed in either ``Content-Length`` or chunked framing, ``Expect: 100-continue``
honoured, keep-alive preserved (one upstream connection per client connection).  Each request
is classified as one S3 operation kind and counted; an optional per-request delay stands in for
the round trip to a cloud region, which a loopback server does not have.

The proxy runs on its own event loop in a background thread (:class:`ProxyThread`), so the
harness can stay synchronous and read or reset the counters between operations.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

#: Display order of the request kinds.
KINDS = ("LIST", "GET", "HEAD", "PUT", "COPY", "DELETE", "POST", "OTHER")

_CHUNK = 64 * 1024
# Listing query parameters (ListObjects v1/v2); a bucket GET with other subresources
# (?location, ?versioning, ...) is bucket configuration, not a listing.
_LIST_PARAMS = {"list-type", "prefix", "delimiter", "marker", "continuation-token", "max-keys"}


def classify(method: str, target: str, headers: dict[str, str]) -> str:
    """Return the request kind (one of :data:`KINDS`) of an S3 request.

    Only path-style addressing is expected: the clients talk to ``http://127.0.0.1:PORT``, for
    which botocore and s3fs never use virtual-hosted buckets.
    """
    parts = urlsplit(target)
    path = parts.path.lstrip("/")
    bucket, _, key = path.partition("/")
    query = {k for k, _ in parse_qsl(parts.query, keep_blank_values=True)}
    method = method.upper()
    if method == "GET":
        if not bucket:
            return "OTHER"  # ListBuckets
        if not key:
            return "LIST" if not query or query & _LIST_PARAMS else "OTHER"
        return "GET"
    if method == "HEAD":
        return "HEAD"
    if method == "PUT":
        if "x-amz-copy-source" in headers:
            return "COPY"  # CopyObject and UploadPartCopy
        return "PUT" if key else "OTHER"  # PutObject/UploadPart vs CreateBucket etc.
    if method == "DELETE":
        return "DELETE"
    if method == "POST":
        if "delete" in query:
            return "DELETE"  # DeleteObjects (batch)
        if "uploads" in query or "uploadId" in query:
            return "POST"  # CreateMultipartUpload / CompleteMultipartUpload
        return "OTHER"
    return "OTHER"


def classify_gcs(method: str, target: str, headers: dict[str, str]) -> str:
    """Return the request kind (one of :data:`KINDS`) of a GCS JSON API request.

    ``GET .../o?prefix=`` (objects.list) is LIST, ``GET .../o/NAME?alt=media`` (or
    ``GET /download/...``) GET, ``GET .../o/NAME`` (object metadata) HEAD, uploads (``POST
    /upload/...`` in one request, or the bytes of a resumable upload, sent to its session URI)
    PUT, the start of a resumable upload POST,
    ``.../rewriteTo/...`` and ``.../copyTo/...`` COPY, ``DELETE`` (an object, or a resumable
    session) and the batch endpoint (``/batch/storage/v1``) DELETE.  Bucket metadata
    (``GET /storage/v1/b/BUCKET``) is HEAD, as S3's HeadBucket.
    """
    parts = urlsplit(target)
    path = parts.path
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    method = method.upper()
    if path.startswith("/batch/"):
        return "DELETE"  # the only batch calls the adapter makes are deletions
    if method == "DELETE":
        return "DELETE"
    if "upload_id" in query:
        # The session URI of a resumable upload: its bytes, by PUT (or POST, as gcsfs
        # sends them), or an empty PUT asking the session's status.
        return "PUT"
    if path.startswith("/upload/"):
        if method == "POST":
            return "POST" if query.get("uploadType") == "resumable" else "PUT"
        if method == "PUT":
            return "PUT"  # bytes of a resumable upload (the session URI)
        return "OTHER"
    if path.startswith("/download/storage/v1/"):
        # The media download URL gcsfs uses (same as ``?alt=media`` on the object).
        return "GET" if method == "GET" else "OTHER"
    if "/rewriteTo/" in path or "/copyTo/" in path:
        return "COPY"
    segments = path.strip("/").split("/")
    # storage/v1/b/BUCKET[/o[/NAME...]]
    if segments[:3] != ["storage", "v1", "b"] or len(segments) < 4:
        return "OTHER"
    if method == "GET":
        if len(segments) == 4:
            return "HEAD"  # bucket metadata
        if len(segments) == 5 and segments[4] == "o":
            return "LIST"
        if len(segments) > 5 and segments[4] == "o":
            return "GET" if query.get("alt") == "media" else "HEAD"
    if method == "HEAD":
        return "HEAD"
    return "OTHER"


#: Classifiers by storage protocol.
CLASSIFIERS = {"s3": classify, "gcs": classify_gcs}


class _Head:
    """A parsed request or response head, keeping the raw bytes to forward unchanged."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.status = 0  # of the response to this request, once relayed
        lines = raw.decode("latin-1").split("\r\n")
        self.start = lines[0].split(" ", 2)
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            # Repeated headers matter only for framing here; keep the last one.
            self.headers[name.strip().lower()] = value.strip()

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    @property
    def length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None else None

    @property
    def wants_close(self) -> bool:
        return self.headers.get("connection", "").lower() == "close"


async def _read_head(reader: asyncio.StreamReader) -> _Head | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return _Head(raw)


async def _relay_length(reader, writer, n: int) -> None:
    while n > 0:
        data = await reader.read(min(n, _CHUNK))
        if not data:
            raise ConnectionError("peer closed mid-body")
        writer.write(data)
        await writer.drain()
        n -= len(data)


async def _relay_chunked(reader, writer) -> None:
    while True:
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        size = int(line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            # Trailers, then the empty line that ends the message.
            while True:
                trailer = await reader.readuntil(b"\r\n")
                writer.write(trailer)
                if trailer == b"\r\n":
                    break
            await writer.drain()
            return
        await _relay_length(reader, writer, size + 2)  # data + CRLF


async def _relay_body(reader, writer, head: _Head) -> None:
    if head.chunked:
        await _relay_chunked(reader, writer)
    elif head.length:
        await _relay_length(reader, writer, head.length)


class CountingProxy:
    """The proxy server; use its methods from the loop it runs on (see :class:`ProxyThread`)."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        delay_ms: float = 0.0,
        classifier: Callable[[str, str, dict[str, str]], str] = classify,
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay = delay_ms / 1000.0
        self.classify = classifier
        # Debugging aid: BENCHMARKS_TRACE=FILE appends "KIND METHOD TARGET -> STATUS TIME"
        # for each request.
        self.trace = os.environ.get("BENCHMARKS_TRACE") or None
        self.counts: Counter[str] = Counter()
        # S3 error statuses seen (404 included: it is how "does it exist?" is answered).
        self.statuses: Counter[int] = Counter()
        self.inflight = 0
        self.last_done = time.monotonic()
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Idle keep-alive connections would otherwise outlive the loop.  Closing their
        # sockets ends the handlers normally (cancelling them trips an asyncio 3.11 bug).
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    async def _client(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter):
        u_reader = u_writer = None
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(c_writer)
        try:
            while True:
                req = await _read_head(c_reader)
                if req is None:
                    return
                method, target = req.start[0], req.start[1]
                kind = self.classify(method, target, req.headers)
                self.counts[kind] += 1
                self.inflight += 1
                try:
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    # An idle upstream connection may have been closed by the server
                    # (its idle timeout); the EOF has been seen by now, so reconnect.
                    if u_reader is None or u_reader.at_eof():
                        if u_writer is not None:
                            self._writers.discard(u_writer)
                            u_writer.close()
                        u_reader, u_writer = await asyncio.open_connection(*self.upstream)
                        self._writers.add(u_writer)
                    began = time.monotonic()
                    keep = await self._exchange(req, c_reader, c_writer, u_reader, u_writer)
                    if self.trace:
                        took = (time.monotonic() - began) * 1000
                        with open(self.trace, "a") as out:
                            out.write(f"{kind} {method} {target} -> {req.status} {took:.0f} ms\n")
                finally:
                    self.inflight -= 1
                    self.last_done = time.monotonic()
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            self._tasks.discard(task)
            for w in (c_writer, u_writer):
                if w is not None:
                    self._writers.discard(w)
                    w.close()

    async def _exchange(self, req: _Head, c_reader, c_writer, u_reader, u_writer) -> bool:
        """Forward one request and its response; return whether both sides stay open."""
        u_writer.write(req.raw)
        await u_writer.drain()
        resp: _Head | None = None
        if req.headers.get("expect", "").lower() == "100-continue":
            # The client waits for the server's go-ahead before sending the body: relay the
            # interim response, or a final one if the server refuses early.
            resp = await _read_head(u_reader)
            if resp is None:
                return False
            if resp.start[1] == "100":
                c_writer.write(resp.raw)
                await c_writer.drain()
                resp = None
                await _relay_body(c_reader, u_writer, req)
            else:
                # Final answer without the body having been sent: the connection state is
                # unknown to us, so relay the answer and close.
                await self._relay_response(req, resp, u_reader, c_writer)
                return False
        else:
            await _relay_body(c_reader, u_writer, req)
        await u_writer.drain()
        while True:
            resp = await _read_head(u_reader)
            if resp is None:
                return False
            if resp.start[1].startswith("1") and resp.start[1] != "101":
                c_writer.write(resp.raw)  # stray interim response
                continue
            break
        keep = await self._relay_response(req, resp, u_reader, c_writer)
        return keep and not req.wants_close

    async def _relay_response(self, req: _Head, resp: _Head, u_reader, c_writer) -> bool:
        status = int(resp.start[1])
        req.status = status
        if status >= 400:
            self.statuses[status] += 1
        c_writer.write(resp.raw)
        keep = not resp.wants_close
        if req.start[0].upper() == "HEAD" or status in (204, 304):
            pass
        elif resp.chunked or resp.length is not None:
            await _relay_body(u_reader, c_writer, resp)
        else:
            # Body delimited by the server closing the connection.
            while data := await u_reader.read(_CHUNK):
                c_writer.write(data)
                await c_writer.drain()
            keep = False
        await c_writer.drain()
        return keep


class ProxyThread:
    """Run a :class:`CountingProxy` on an event loop of its own, in a daemon thread."""

    def __init__(
        self,
        upstream_host: str,
        upstream_port: int,
        delay_ms: float = 0.0,
        classifier: Callable[[str, str, dict[str, str]], str] = classify,
    ) -> None:
        self.proxy = CountingProxy(upstream_host, upstream_port, delay_ms, classifier)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy.port}"

    def start(self) -> ProxyThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.proxy.stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()

    def _call(self, fn):
        async def run():
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def reset(self) -> None:
        def do():
            self.proxy.counts.clear()
            self.proxy.statuses.clear()

        self._call(do)

    def set_delay(self, delay_ms: float) -> None:
        """Change the delay added to each request from now on."""

        def do():
            self.proxy.delay = delay_ms / 1000.0

        self._call(do)

    def snapshot(self) -> tuple[dict[str, int], dict[int, int]]:
        """Counts by kind and error statuses since the last :meth:`reset`."""
        return self._call(lambda: (dict(self.proxy.counts), dict(self.proxy.statuses)))

    def wait_idle(self, quiet: float = 0.05, timeout: float = 10.0) -> None:
        """Wait until no request is in flight and none finished for ``quiet`` seconds.

        A contents manager may still be talking to S3 after it answered Jupyter (e.g. a
        fire-and-forget cleanup); those requests belong to the operation that caused them.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            inflight, last = self._call(lambda: (self.proxy.inflight, self.proxy.last_done))
            if inflight == 0 and time.monotonic() - last >= quiet:
                return
            time.sleep(quiet / 2)
