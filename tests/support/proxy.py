"""The HTTP/1.1 reverse proxy the tests and the benchmarks put between a client (a contents
manager, Jupyter) and its storage server: it counts, records, delays and fails requests.

Every request is forwarded byte for byte: the request line and headers exactly as received
(``Host`` included, which SigV4 signs, so the client must use the proxy's URL as its
endpoint), bodies streamed in ``Content-Length`` or chunked framing, ``Expect: 100-continue``
honoured, keep-alive preserved (one upstream connection per client connection). On the way,
:class:`StorageProxy` can:

* **count**: each request is classified as one kind (:data:`KINDS`, by
  :mod:`tests.support.request_kinds`: S3 by default, GCS's JSON API with
  ``classifier=classify_gcs``) and counted as it arrives, with the error statuses answered
  (:meth:`~StorageProxy.snapshot`, :meth:`~StorageProxy.wait_idle`; what the benchmarks
  measure);
* **record**: each answered request is kept as a :class:`Seen` (method, bucket, key, the
  ``prefix=`` of a listing, the ``x-amz-copy-source`` of a copy, the keys named in the body of
  a batch delete, the status), so a test can tell exactly which keys were touched
  (:meth:`~StorageProxy.requests`; ``record=False`` keeps nothing);
* **delay**: ``delay_ms`` (or :meth:`~StorageProxy.set_delay`) holds every request back that
  long before it is forwarded, standing for the round trip to a cloud region, which a
  loopback server does not have;
* **fail**: a :class:`Rule` (:meth:`~StorageProxy.on`) acts on the first request that matches
  it: runs an action (kill the server, the client, write behind the client's back) and/or
  holds the request back, as it arrives before it is forwarded (``when="arrived"``), instead
  of forwarding it (``"dropped"``: both connections are closed), or once the server answered,
  before the answer is passed on (``"answered"``). :meth:`~StorageProxy.retarget` sends new
  connections to a restarted server's new port.

It runs on an event loop of its own in a daemon thread, so callers stay synchronous::

    with StorageProxy(seaweedfs.endpoint_url) as proxy:
        cm = make_cm(endpoint_url=proxy.url)
        proxy.on(method="PUT", key_contains="x.txt", action=kill)
        ...
        for seen in proxy.requests(): ...
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.etree import ElementTree

from tests.support.http_relay import CHUNK, Head, read_head, relay_body
from tests.support.request_kinds import KINDS, Classifier, classify, classify_gcs

__all__ = ["KINDS", "Rule", "Seen", "StorageProxy", "classify", "classify_gcs", "parse_target"]

_T = TypeVar("_T")

#: When a :class:`Rule` acts (see :meth:`StorageProxy.on`).
When = Literal["arrived", "dropped", "answered"]


# --------------------------------------------------------------------------- what is recorded


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
    #: ``time.monotonic()`` when the request went to the server and when its answer came.
    sent: float = field(default=0.0, compare=False, repr=False)
    answered: float = field(default=0.0, compare=False, repr=False)

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


def parse_target(target: str) -> tuple[str, str, dict[str, str]]:
    """An S3 request target (path-style) -> (bucket, key, query), names decoded."""
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


# --------------------------------------------------------------------------- fault rules


@dataclass
class Rule:
    """Act on the first request (after ``skip`` matching ones) that matches, ``times`` times.

    Matching reads the request as S3 (:func:`parse_target`): ``method`` equal,
    ``key_contains`` in the key, ``query_has`` among the query's names. ``action`` runs on a
    worker thread while the request waits; then the request is held back ``delay`` seconds.
    """

    method: str | None = None
    key_contains: str | None = None
    query_has: str | None = None
    skip: int = 0
    action: Callable[[], None] | None = None
    delay: float = 0.0
    times: int = 1
    fired: int = 0
    when: When = "arrived"

    def matches(self, method: str, key: str, query: dict[str, str]) -> bool:
        if self.fired >= self.times:
            return False
        if self.method is not None and method != self.method:
            return False
        if self.key_contains is not None and self.key_contains not in key:
            return False
        if self.query_has is not None and self.query_has not in query:
            return False
        if self.skip:
            self.skip -= 1
            return False
        return True


# --------------------------------------------------------------------------- the proxy


class StorageProxy:
    """Forward to ``upstream_url`` (``http://127.0.0.1:PORT``); count, record, delay, fail.

    ``delay_ms``: added to every request; ``classifier``: how requests are counted
    (:func:`classify`, S3, or :func:`classify_gcs`); ``record``: keep a :class:`Seen` of each
    answered request. ``BENCHMARKS_TRACE=FILE`` in the environment appends
    ``KIND METHOD TARGET -> STATUS TIME`` for each request to FILE (a debugging aid).
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        delay_ms: float = 0.0,
        classifier: Classifier = classify,
        record: bool = True,
    ) -> None:
        self.retarget(upstream_url)
        self.port = 0
        self.delay = delay_ms / 1000.0
        self.classify = classifier
        self.record = record
        self.trace = os.environ.get("BENCHMARKS_TRACE") or None
        #: Called on each request head as it arrives; what it returns is forwarded (and
        #: counted) instead (the benchmarks' ``--aws-pages`` caps listing pages with it).
        self.rewrite: Callable[[Head], Head] | None = None
        # Counters: touched on the proxy's loop only (read and reset through _call).
        self.counts: Counter[str] = Counter()
        #: Error statuses answered (404 included: it is how "does it exist?" is answered).
        self.statuses: Counter[int] = Counter()
        self.inflight = 0
        self.last_done = time.monotonic()
        # Record and rules: shared with the caller's threads, under the lock.
        self._seen: list[Seen] = []
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def retarget(self, upstream_url: str) -> None:
        """Forward new connections to ``upstream_url`` (a restarted server's new port)."""
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> StorageProxy:
        self._thread.start()
        self._call_async(self._start())
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._call_async(self._stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> StorageProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Idle keep-alive connections would otherwise outlive the loop. Closing their
        # sockets ends the handlers normally (cancelling them trips an asyncio 3.11 bug).
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    def _call_async(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def _call(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on the proxy's loop (where the counters change) and return its result."""

        async def run() -> _T:
            return fn()

        result: _T = self._call_async(run())
        return result

    # -- counting and recording -------------------------------------------------------------
    def reset(self) -> None:
        """Forget the counts, the error statuses and the record so far."""

        def do() -> None:
            self.counts.clear()
            self.statuses.clear()

        self._call(do)
        with self._lock:
            self._seen.clear()

    def set_delay(self, delay_ms: float) -> None:
        """Change the delay added to each request from now on."""

        def do() -> None:
            self.delay = delay_ms / 1000.0

        self._call(do)

    def snapshot(self) -> tuple[dict[str, int], dict[int, int]]:
        """Counts by kind and error statuses since the last :meth:`reset`."""
        return self._call(lambda: (dict(self.counts), dict(self.statuses)))

    def wait_idle(self, quiet: float = 0.05, timeout: float = 10.0) -> None:
        """Wait until no request is in flight and none finished for ``quiet`` seconds.

        A contents manager may still be talking to S3 after it answered Jupyter (e.g. a
        fire-and-forget cleanup); those requests belong to the operation that caused them.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            inflight, last = self._call(lambda: (self.inflight, self.last_done))
            if inflight == 0 and time.monotonic() - last >= quiet:
                return
            time.sleep(quiet / 2)

    def requests(self) -> list[Seen]:
        """Requests recorded since the last :meth:`reset` (answered ones, in that order)."""
        with self._lock:
            return list(self._seen)

    @property
    def connections(self) -> int:
        """Client connections the proxy is still handling."""
        return len(self._tasks)

    # -- fault rules ----------------------------------------------------------------------
    def on(self, **rule: Any) -> Rule:
        """Add a :class:`Rule` (keyword arguments are its fields, ``when`` included); returns
        it. ``when``: ``"arrived"`` (default), ``"dropped"`` or ``"answered"``."""
        made = Rule(**rule)
        with self._lock:
            self._rules.append(made)
        return made

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    async def _fire(self, when: When, req: Head) -> bool:
        """Act on the rules of ``when`` that ``req`` matches; whether any did."""
        method = req.start[0].upper()
        _, key, query = parse_target(req.start[1])
        with self._lock:
            fired = [r for r in self._rules if r.when == when and r.matches(method, key, query)]
            for r in fired:
                r.fired += 1
        for r in fired:
            if r.action is not None:
                # Runs on a worker thread: the request waits for it, as if the server
                # died just as it arrived.
                await asyncio.get_running_loop().run_in_executor(None, r.action)
            if r.delay:
                await asyncio.sleep(r.delay)
        return bool(fired)

    # -- forwarding -----------------------------------------------------------------------
    async def _client(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        u_reader: asyncio.StreamReader | None = None
        u_writer: asyncio.StreamWriter | None = None
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(c_writer)
        try:
            while True:
                req = await read_head(c_reader)
                if req is None:
                    return
                if self.rewrite is not None:
                    req = self.rewrite(req)
                method, target = req.start[0], req.start[1]
                kind = self.classify(method, target, req.headers)
                self.counts[kind] += 1
                self.inflight += 1
                try:
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    # An idle upstream connection may have been closed by the server
                    # (its idle timeout); the EOF has been seen by now, so reconnect.
                    if u_reader is None or u_writer is None or u_reader.at_eof():
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
            if task is not None:
                self._tasks.discard(task)
            for w in (c_writer, u_writer):
                if w is not None:
                    self._writers.discard(w)
                    w.close()

    async def _exchange(
        self,
        req: Head,
        c_reader: asyncio.StreamReader,
        c_writer: asyncio.StreamWriter,
        u_reader: asyncio.StreamReader,
        u_writer: asyncio.StreamWriter,
    ) -> bool:
        """Forward one request and its response; return whether both sides stay open."""
        if self._rules:
            if await self._fire("dropped", req):
                return False  # not forwarded; both connections are closed
            await self._fire("arrived", req)
        method = req.start[0].upper()
        keep_body = self.record and method == "POST" and "delete" in parse_target(req.start[1])[2]
        sent = time.monotonic()
        u_writer.write(req.raw)
        await u_writer.drain()
        body = b""
        resp: Head | None
        if req.headers.get("expect", "").lower() == "100-continue":
            # The client waits for the server's go-ahead before sending the body: relay the
            # interim response, or a final one if the server refuses early.
            resp = await read_head(u_reader)
            if resp is None:
                return False
            if resp.start[1] != "100":
                # Final answer without the body having been sent: the connection state is
                # unknown to us, so relay the answer and close.
                await self._answered(req, resp, body, sent)
                await self._relay_response(req, resp, u_reader, c_writer)
                return False
            c_writer.write(resp.raw)
            await c_writer.drain()
        body = await relay_body(c_reader, u_writer, req, keep=keep_body)
        await u_writer.drain()
        while True:
            resp = await read_head(u_reader)
            if resp is None:
                return False
            if resp.start[1].startswith("1") and resp.start[1] != "101":
                c_writer.write(resp.raw)  # stray interim response
                continue
            break
        await self._answered(req, resp, body, sent)
        keep = await self._relay_response(req, resp, u_reader, c_writer)
        return keep and not req.wants_close

    async def _answered(self, req: Head, resp: Head, body: bytes, sent: float) -> None:
        """The server answered ``req``: record it, then act on the ``answered`` rules."""
        if self.record:
            self._record(req, resp, body, sent)
        if self._rules:
            await self._fire("answered", req)

    def _record(self, req: Head, resp: Head, body: bytes, sent: float) -> None:
        bucket, key, query = parse_target(req.start[1])
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
            sent=sent,
            answered=time.monotonic(),
        )
        with self._lock:
            self._seen.append(seen)

    async def _relay_response(
        self,
        req: Head,
        resp: Head,
        u_reader: asyncio.StreamReader,
        c_writer: asyncio.StreamWriter,
    ) -> bool:
        status = int(resp.start[1])
        req.status = status
        if status >= 400:
            self.statuses[status] += 1
        c_writer.write(resp.raw)
        keep = not resp.wants_close
        if req.start[0].upper() == "HEAD" or status in (204, 304):
            pass
        elif resp.chunked or resp.length is not None:
            await relay_body(u_reader, c_writer, resp)
        else:
            # Body delimited by the server closing the connection.
            while data := await u_reader.read(CHUNK):
                c_writer.write(data)
                await c_writer.drain()
            keep = False
        await c_writer.drain()
        return keep
