"""Chunked uploads streamed into multipart uploads, with bounded memory.

JupyterLab uploads large files as a series of saves carrying ``"chunk": 1, 2, ..., -1``
(about 1 MiB each). Each upload here is an :class:`UploadSession`: chunks are buffered up
to the part size, sent as multipart parts, and the upload is completed on chunk ``-1``.
The object appears (or is replaced) only then, atomically: until that moment readers see
the previous version. A chunk out of order, a storage failure or silence longer than the
time limit aborts the multipart upload and frees its memory.

Retries. A client that got no answer for chunk N (a timeout, a dropped connection) may send
it again. So the latest chunk is held back until the next one arrives: chunk N again
replaces it (whatever its bytes), chunk N + 1 or -1 commits it. Chunk 1 again starts the
upload over. Chunk -1 again, right after it completed the upload, is answered without a write
when its bytes are the same; with other bytes it replaces the file's last chunk (the file's
own first bytes are streamed back into a new upload, then the new last chunk), as long as the
file is still the one the upload made. Any other chunk out of order is refused (400) and
ends the upload: the previous version of the file stays. Memory: about ``part_size`` plus two
chunks per upload. A part is gathered in an ``io.BytesIO`` and handed to the store as it is
(no 8 MiB copy, see :data:`~s3contents.storage.base.PartBody`) once full; the final part goes
with the request that completes the upload.

Orphans. An upload whose process died (SIGKILL, a crash, a lost machine) stays in the bucket,
parts and all, until someone aborts it. :meth:`ChunkedUploads.sweep` aborts the uploads under
a prefix that have been silent for longer than the time limit (begun, and given their newest
part, longer ago than that), never this process's own; :mod:`s3contents.serverext` sweeps at
server start and then every ``timeout`` seconds, and aborts this process's own uploads when the
server stops.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import hashlib
import io
import logging
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .errors import BadRequest, Conflict, ContentsError, Forbidden, NotFound
from .models import encode_content, guess_mimetype
from .storage.base import ObjectInfo, Storage, UploadPart

__all__ = ["ChunkResult", "ChunkedUploads", "UploadSession"]

log = logging.getLogger(__name__)

#: S3's smallest part (all but the last).
MIN_PART_SIZE = 5 * 1024 * 1024
#: Completed uploads remembered for a resent last chunk, at most (the oldest go first).
MAX_COMPLETED = 256
#: Seconds between two sweeps of orphaned uploads, at most (and at least 1).
MAX_SWEEP_INTERVAL = 3600.0
_CONTESTED = (
    "Chunk {chunk} sent again with other bytes, in an upload that superseded another one "
    "to the same path: it may be the other upload's (chunks carry no upload id), so it is "
    "refused; the upload was aborted"
)
#: Bytes read at a time when a file is streamed back to replace its last chunk.
_STREAM_PIECE = 1024 * 1024


@dataclass
class UploadSession:
    """One chunked upload in progress."""

    key: str
    upload_id: str
    content_type: str | None = None
    #: Number of the chunk held back in :attr:`pending` (1 until chunk 2 arrives).
    last_chunk: int = 1
    #: The latest chunk, held back until the next one arrives: a resent chunk replaces it.
    pending: bytes = b""
    #: Bytes taken and not sent yet (a part at most), written at the end.
    buffer: io.BytesIO = field(default_factory=io.BytesIO)
    parts: list[UploadPart] = field(default_factory=list)
    #: Bytes received so far, :attr:`pending` included.
    received: int = 0
    #: Whether an object is at :attr:`key` (asked once during the upload, see
    #: :meth:`ChunkedUploads.object_exists`); ``None`` until asked.
    object_exists: bool | None = None
    last_activity: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False
    completed: bool = False
    #: This upload superseded another one to the same path, still in progress: a chunk sent
    #: again with other bytes may be that other upload's, and is refused rather than mixed in.
    contested: bool = False

    @property
    def held(self) -> int:
        """Bytes of the upload in memory."""
        return self.buffer.tell() + len(self.pending)


@dataclass(frozen=True)
class Completed:
    """An upload completed a moment ago: what answers its last chunk sent again."""

    info: ObjectInfo
    tail_size: int
    tail_digest: bytes
    content_type: str | None
    contested: bool = False
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk did."""

    #: The upload completed: the object is written.
    done: bool
    #: Bytes of the upload received so far.
    received: int
    #: The object, once ``done``.
    info: ObjectInfo | None = None
    #: False for a last chunk sent again with the same bytes: answered, nothing written.
    wrote: bool = True


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _rewound(body: io.BytesIO) -> io.BytesIO:
    """``body`` to be written again from its start, or a new buffer while a view of it
    lives (a store's client still holding it)."""
    try:
        body.seek(0)
        body.write(b"")  # BufferError while exported
    except BufferError:
        return io.BytesIO()
    return body


def _decode(model: dict[str, Any], api_path: str) -> bytes:
    """A chunk's bytes. Base64 without line breaks (JupyterLab's) is decoded straight from
    the string, without the two copies of :func:`~s3contents.models.encode_content` (which
    decides everything else, errors included, the same way)."""
    content = model["content"]
    if model.get("format") == "base64" and isinstance(content, str) and sys.version_info >= (3, 11):
        with contextlib.suppress(ValueError):  # binascii.Error; non-ASCII text
            return binascii.a2b_base64(content, strict_mode=True)
    return encode_content(content, model.get("format"), api_path)


def check_chunk(model: dict[str, Any], chunk: Any, api_path: str) -> None:
    """Refuse (400) a chunk of Jupyter's chunked-save protocol that is not one."""
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk == 0 or chunk < -1:
        raise BadRequest(f"Invalid chunk number {chunk!r}", path=api_path)
    if "type" not in model:
        raise BadRequest("No file type provided", path=api_path)
    if model["type"] != "file":
        raise BadRequest(
            f'File type "{model["type"]}" is not supported for large file transfer',
            path=api_path,
        )
    if "content" not in model:
        raise BadRequest("No file content provided", path=api_path)


class ChunkedUploads:
    """The chunked uploads in progress of one contents manager, by object key.

    Parameters
    ----------
    storage : Storage
        Where parts go.
    part_size : int
        Bytes buffered before a part is sent (at least 5 MiB); bounds the memory of one
        upload to about ``part_size`` plus two chunks.
    timeout : float
        Seconds of silence after which an upload is aborted (this process's own by the
        reaper, any process's by :meth:`sweep`).
    logger : logging.Logger, optional
        Where aborts and sweeps are told (default: this module's logger).
    """

    def __init__(
        self,
        storage: Storage,
        part_size: int,
        timeout: float,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        #: Where aborts and sweeps are told (the manager's log: the server's).
        self.log = logger or log
        self.storage = storage
        self.part_size = max(int(part_size), MIN_PART_SIZE)
        self.timeout = float(timeout)
        self.sessions: dict[str, UploadSession] = {}
        #: Uploads completed a moment ago (for a resent last chunk), by key, oldest first.
        self.completed: dict[str, Completed] = {}
        #: Orphaned uploads aborted by :meth:`sweep` since this was made.
        self.swept = 0
        self._reaper: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes held in memory by all uploads (for tests and metrics)."""
        return sum(s.held for s in self.sessions.values())

    @property
    def sweep_interval(self) -> float:
        """Seconds between two sweeps: the time limit, within 1 s and an hour."""
        return min(max(self.timeout, 1.0), MAX_SWEEP_INTERVAL)

    # -- chunks ---------------------------------------------------------------------------
    async def add_model(
        self, key: str, chunk: int, model: dict[str, Any], api_path: str
    ) -> ChunkResult:
        """:meth:`add` the content of a chunk's model (checked by :func:`check_chunk`). A
        chunk that cannot be decoded ends its upload: nothing partial is kept."""
        try:
            data = _decode(model, api_path)
        except BadRequest as err:
            if await self.abort(key, "a chunk could not be decoded"):
                raise BadRequest(f"{err}; the upload was aborted", path=api_path) from err
            raise
        content_type = guess_mimetype(api_path) or "application/octet-stream"
        return await self.add(key, chunk, data, content_type)

    async def add(self, key: str, chunk: int, data: bytes, content_type: str | None) -> ChunkResult:
        """Take chunk number ``chunk`` (1, 2, ..., or -1 for the last) of the upload to
        ``key``.

        Raises :class:`BadRequest` for a chunk out of order (the upload is aborted) or one
        that belongs to no upload in progress.
        """
        await self.reap()
        if chunk == 1:
            return await self._start(key, data, content_type)
        session = self.sessions.get(key)
        if session is None:
            if chunk == -1 and key in self.completed:
                return await self._resend_last(key, data)
            raise BadRequest(
                f"No upload in progress for chunk {chunk} (uploads start with chunk 1)", path=key
            )
        async with session.lock:
            if not session.closed:
                return await self._take(session, chunk, data)
        if session.completed:
            # The same last chunk, sent again while the first one was completing the upload.
            if chunk == -1 and key in self.completed:
                return await self._resend_last(key, data)
            raise BadRequest("This upload has completed; start a new one with chunk 1", path=key)
        raise BadRequest("This upload was aborted; start again with chunk 1", path=key)

    async def _start(self, key: str, data: bytes, content_type: str | None) -> ChunkResult:
        self.completed.pop(key, None)
        contested = False
        old = self.sessions.get(key)
        if old is not None:
            async with old.lock:
                if not old.closed and old.last_chunk == 1:
                    # Chunk 1 sent again: it replaces the one held back.
                    old.received = len(data)
                    old.pending = data
                    old.last_activity = time.monotonic()
                    return ChunkResult(False, old.received)
                if not old.closed:
                    # A new upload to the same path (the later one wins, the earlier is
                    # aborted); chunks of the earlier one may still come.
                    contested = True
                    self._forget(old)
                    await self._abort(old, "superseded by a new upload to the same path")
        upload_id = await self.storage.multipart_begin(key, content_type)
        session = UploadSession(
            key=key,
            upload_id=upload_id,
            content_type=content_type,
            pending=data,
            received=len(data),
            contested=contested,
        )
        displaced = self.sessions.get(key)
        self.sessions[key] = session
        self._ensure_reaper()
        if displaced is not None and not displaced.closed:
            # Two uploads to one path began at once: the later one wins.
            session.contested = True
            await self._abort(displaced, "superseded by a new upload to the same path")
        return ChunkResult(False, session.received)

    async def _take(self, session: UploadSession, chunk: int, data: bytes) -> ChunkResult:
        """Chunk ``chunk`` (not 1) of ``session``, under its lock."""
        session.last_activity = time.monotonic()
        if chunk == session.last_chunk:
            # Sent again (the client did not hear the answer): it replaces the one held back.
            if session.contested and data != session.pending:
                self._forget(session)
                await self._abort(session, f"chunk {chunk} sent again with other bytes")
                raise BadRequest(_CONTESTED.format(chunk=chunk), path=session.key)
            session.received += len(data) - len(session.pending)
            session.pending = data
            return ChunkResult(False, session.received)
        if chunk not in (-1, session.last_chunk + 1):
            expected = session.last_chunk + 1
            self._forget(session)
            await self._abort(session, f"chunk {chunk} out of order")
            raise BadRequest(
                f"Chunk {chunk} out of order: expected {expected} (or {expected - 1} again, "
                "or -1); the upload was aborted",
                path=session.key,
            )
        try:
            await self._feed(session, session.pending)
            session.pending = b""
            if chunk != -1:
                session.pending = data
                session.last_chunk = chunk
                session.received += len(data)
                return ChunkResult(False, session.received)
            return await self._finish(session, data)
        except ContentsError:
            if not session.completed:
                self._forget(session)
                await self._abort(session, "storage failure")
            raise

    async def _finish(self, session: UploadSession, last: bytes) -> ChunkResult:
        """Add the last chunk and complete the upload with what is left (the last part)."""
        await self._feed(session, last, last=True)
        session.received += len(last)
        body = self._take_buffer(session)
        info = await self.storage.multipart_complete(
            session.key, session.upload_id, session.parts, last=body
        )
        session.closed = session.completed = True
        self._forget(session)
        if info is None:
            # The store's answer did not tell the object's time (S3): the model's date must
            # be the one every later request reads, so it is asked for.
            info = await self.storage.head(session.key)
        record = Completed(info, len(last), _digest(last), session.content_type, session.contested)
        self._remember(session.key, record)
        return ChunkResult(True, session.received, info)

    async def _resend_last(self, key: str, data: bytes) -> ChunkResult:
        """The last chunk of an upload that completed a moment ago, sent again."""
        record = self.completed[key]
        try:
            info: ObjectInfo | None = await self.storage.head(key)
        except NotFound:
            info = None
        if info is None or (info.etag, info.size) != (record.info.etag, record.info.size):
            self.completed.pop(key, None)
            raise BadRequest(
                "No upload in progress for chunk -1: the upload completed, and the file was "
                "changed since (uploads start with chunk 1)",
                path=key,
            )
        if len(data) == record.tail_size and _digest(data) == record.tail_digest:
            return ChunkResult(True, info.size, info, wrote=False)
        if record.contested:
            raise BadRequest(
                _CONTESTED.format(chunk=-1).replace("the upload was aborted", "nothing written"),
                path=key,
            )
        # Other bytes: they replace the last chunk. The file's first bytes come back from
        # the bucket into a new upload (memory: a part), then the new last chunk.
        keep = info.size - record.tail_size
        upload_id = await self.storage.multipart_begin(key, record.content_type)
        session = UploadSession(key=key, upload_id=upload_id, content_type=record.content_type)
        displaced = self.sessions.get(key)
        self.sessions[key] = session
        self._ensure_reaper()
        if displaced is not None and not displaced.closed:
            await self._abort(displaced, "superseded by a new upload to the same path")
        async with session.lock:
            try:
                if keep:
                    await self._stream_back(session, keep)
                return await self._finish(session, data)
            except ContentsError:
                if not session.completed:
                    self._forget(session)
                    await self._abort(session, "storage failure")
                raise

    async def _stream_back(self, session: UploadSession, keep: int) -> None:
        """Take the first ``keep`` bytes of the object at the session's key."""
        stream = self.storage.stream(session.key, _STREAM_PIECE)
        async with contextlib.aclosing(stream) as pieces:
            async for piece in pieces:
                take = piece[: keep - session.received]
                await self._feed(session, take)
                session.received += len(take)
                session.last_activity = time.monotonic()
                if session.received >= keep:
                    return
        raise Conflict(f"{session.key} was changed by someone else", path=session.key)

    async def _feed(self, session: UploadSession, data: bytes, *, last: bool = False) -> None:
        """Write ``data`` into the part being gathered, sending each part once full; with
        the ``last`` bytes of the upload, the final part stays (full or not) for the
        completion, which sends it (GCS: in the request that creates the object)."""
        with memoryview(data) as view:
            offset = 0
            while offset < len(view):
                if session.buffer.tell() >= self.part_size:
                    await self._send_part(session)
                room = self.part_size - session.buffer.tell()
                session.buffer.write(view[offset : offset + room])
                offset += room
        if not last and session.buffer.tell() >= self.part_size:
            await self._send_part(session)

    @staticmethod
    def _take_buffer(session: UploadSession) -> io.BytesIO:
        """The part gathered so far, to send (from position 0, no longer than written)."""
        body, session.buffer = session.buffer, io.BytesIO()
        written = body.tell()
        if body.seek(0, io.SEEK_END) > written:
            body.truncate(written)  # a reused buffer holds the end of the previous part
        body.seek(0)
        return body

    async def _send_part(self, session: UploadSession) -> None:
        # The BytesIO itself is the request's body: no copy of the part is made. Once sent,
        # it gathers the next part, overwritten in place: one allocation of a part for the
        # whole upload, not one freed and made again per part (which leaves the allocator's
        # heap holding both).
        body = self._take_buffer(session)
        part = await self.storage.multipart_part(
            session.key, session.upload_id, len(session.parts) + 1, body
        )
        session.parts.append(part)
        if session.buffer.tell() == 0:
            session.buffer = _rewound(body)

    def _forget(self, session: UploadSession) -> None:
        if self.sessions.get(session.key) is session:
            del self.sessions[session.key]

    def _remember(self, key: str, record: Completed) -> None:
        self.completed.pop(key, None)
        self.completed[key] = record
        while len(self.completed) > MAX_COMPLETED:
            del self.completed[next(iter(self.completed))]
        self._ensure_reaper()

    async def abort(self, key: str, why: str) -> bool:
        """Abort the upload to ``key``, if one is in progress; returns whether there was one."""
        session = self.sessions.pop(key, None)
        if session is None:
            return False
        await self._abort(session, why)
        return True

    async def _abort(self, session: UploadSession, why: str) -> None:
        session.closed = True
        session.buffer = io.BytesIO()
        session.pending = b""
        self.log.info("Aborting upload to %s: %s", session.key, why)
        try:
            await self.storage.multipart_abort(session.key, session.upload_id)
        except ContentsError:
            self.log.warning("Could not abort the multipart upload to %s", session.key)

    # -- what the session knows -----------------------------------------------------------
    def object_exists(self, key: str) -> bool | None:
        """Whether an object is at ``key``, as asked earlier during the upload to it in
        progress; ``None`` when there is none or nobody asked yet.

        jupyter_server's PUT handler asks before every chunk (to answer 200 or 201); the
        upload changes nothing at ``key`` until it completes, so one HEAD answers them all.
        """
        session = self.sessions.get(key)
        if session is None or session.closed:
            return None
        return session.object_exists

    def note_object_exists(self, key: str, exists: bool) -> None:
        """Remember the answer of a HEAD of ``key`` for its upload in progress, if any."""
        session = self.sessions.get(key)
        if session is not None and not session.closed:
            session.object_exists = exists

    # -- silence --------------------------------------------------------------------------
    async def reap(self) -> int:
        """Abort uploads silent for longer than the timeout; returns how many."""
        now = time.monotonic()
        for key, record in list(self.completed.items()):
            if now - record.at > self.timeout:
                self.completed.pop(key, None)
        stale = [s for s in self.sessions.values() if now - s.last_activity > self.timeout]
        for session in stale:
            # Abort in the bucket first, then forget the session: once it is gone from
            # ``sessions`` nothing of it is left anywhere. A chunk arriving meanwhile finds
            # it closed and is refused.
            await self._abort(session, f"no chunk for {self.timeout:.0f} s")
            self._forget(session)
        return len(stale)

    def _ensure_reaper(self) -> None:
        if not _alive_here(self._reaper):
            self._reaper = asyncio.get_running_loop().create_task(self._reap_loop())

    async def _reap_loop(self) -> None:
        interval = max(0.05, min(self.timeout / 4, 60.0))
        while self.sessions or self.completed:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await self.reap()

    # -- orphans --------------------------------------------------------------------------
    async def sweep(self, prefix: str) -> int:
        """Abort the uploads in progress under ``prefix`` that were left behind: begun, and
        given their newest part, longer ago than the timeout. Returns how many.

        One request lists the uploads (more only past a page of them); an upload begun
        longer ago than that costs one more (its parts: a live upload of another process,
        receiving chunks, has a recent part and is left alone). This process's own uploads
        and keys outside ``prefix`` are never touched. Stores whose uploads cannot be listed
        (GCS) have nothing to sweep.
        """
        horizon = timedelta(seconds=self.timeout)
        listed = await self.storage.multipart_list(prefix)
        now = datetime.now(timezone.utc)
        aborted = 0
        for upload in listed:
            if not upload.key.startswith(prefix) or self._ours(upload.upload_id):
                continue
            if now - upload.initiated <= horizon:
                continue
            try:
                parts = await self.storage.multipart_parts(upload.key, upload.upload_id)
            except NotFound:
                continue  # completed or aborted meanwhile
            if parts.newest is not None and now - parts.newest <= horizon:
                continue
            with contextlib.suppress(NotFound):
                await self.storage.multipart_abort(upload.key, upload.upload_id)
            aborted += 1
            self.log.info(
                "Aborted an orphaned upload to %s (begun %s, %d part(s), %d bytes; nothing "
                "for %.0f s)",
                upload.key,
                upload.initiated.isoformat(timespec="seconds"),
                parts.count,
                parts.size,
                self.timeout,
            )
        self.swept += aborted
        return aborted

    def _ours(self, upload_id: str) -> bool:
        return any(s.upload_id == upload_id for s in self.sessions.values())

    def start_sweeping(self, prefix: str) -> None:
        """Sweep ``prefix`` now, then every :attr:`sweep_interval` seconds, in the running
        event loop, until :meth:`abort_all`; does nothing if already sweeping."""
        if not _alive_here(self._sweeper):
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop(prefix))

    async def _sweep_loop(self, prefix: str) -> None:
        failed = False
        where = f"{self.storage.url}/{prefix}"
        while True:
            try:
                await self.sweep(prefix)
                failed = False
            except Forbidden as err:
                self.log.warning(
                    "Orphaned uploads under %s are not swept: %s. A lifecycle rule that "
                    "aborts incomplete multipart uploads frees them instead (see "
                    "'s3contents doctor').",
                    where,
                    err,
                )
                return
            except ContentsError as err:
                if not failed:
                    self.log.info("Could not sweep orphaned uploads under %s: %s", where, err)
                failed = True
            except Exception:  # never let the loop die silently
                self.log.exception("Sweeping orphaned uploads under %s failed", where)
            await asyncio.sleep(self.sweep_interval)

    # -- shutdown -------------------------------------------------------------------------
    async def abort_all(self) -> None:
        """Abort every upload of this process and stop the reaper and the sweeps (server
        shutdown)."""
        for task in self._tasks():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await task
        self._reaper = self._sweeper = None
        self.completed.clear()
        sessions = list(self.sessions.values())
        self.sessions.clear()
        if sessions:
            await asyncio.gather(*(self._abort(s, "shutting down") for s in sessions))

    def _tasks(self) -> Iterable[asyncio.Task[None]]:
        # A task of another (closed) loop cannot be cancelled or awaited here: dropped.
        return [t for t in (self._reaper, self._sweeper) if t is not None and _alive_here(t)]


def _alive_here(task: asyncio.Task[None] | None) -> bool:
    """``task`` runs, in the running event loop (tests run one loop after another)."""
    return task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop()
