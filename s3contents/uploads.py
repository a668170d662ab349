"""Chunked uploads streamed into multipart uploads, with bounded memory.

JupyterLab uploads large files as a series of saves carrying ``"chunk": 1, 2, ..., -1``
(about 1 MiB each). Each upload here is a :class:`UploadSession`: chunks are buffered up
to the part size, sent as multipart parts, and the upload is completed on chunk ``-1``.
The object appears (or is replaced) only then, atomically: until that moment readers see
the previous version. A chunk out of order, a storage failure or silence longer than the
time limit aborts the multipart upload and frees its memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from .errors import BadRequest, ContentsError
from .storage.base import Storage, UploadPart

__all__ = ["ChunkedUploads", "UploadSession"]

log = logging.getLogger(__name__)

#: S3's smallest part (all but the last).
MIN_PART_SIZE = 5 * 1024 * 1024


@dataclass
class UploadSession:
    """One chunked upload in progress."""

    key: str
    upload_id: str
    next_chunk: int = 2
    buffer: bytearray = field(default_factory=bytearray)
    parts: list[UploadPart] = field(default_factory=list)
    received: int = 0
    last_activity: float = field(default_factory=time.monotonic)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closed: bool = False


class ChunkedUploads:
    """The chunked uploads in progress of one contents manager, by object key.

    Parameters
    ----------
    storage : Storage
        Where parts go.
    part_size : int
        Bytes buffered before a part is sent (at least 5 MiB); bounds the memory of one
        upload to about ``part_size`` plus one chunk.
    timeout : float
        Seconds of silence after which an upload is aborted.
    """

    def __init__(self, storage: Storage, part_size: int, timeout: float) -> None:
        self.storage = storage
        self.part_size = max(int(part_size), MIN_PART_SIZE)
        self.timeout = float(timeout)
        self.sessions: dict[str, UploadSession] = {}
        self._reaper: asyncio.Task[None] | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes held in memory by all uploads (for tests and metrics)."""
        return sum(len(s.buffer) for s in self.sessions.values())

    async def add(
        self, key: str, chunk: int, data: bytes, content_type: str | None
    ) -> tuple[bool, int]:
        """Take chunk number ``chunk`` of the upload to ``key``.

        Returns ``(done, bytes_received)``; ``done`` is true once chunk ``-1`` completed the
        object. Raises :class:`BadRequest` for a chunk out of order (the upload is aborted).
        """
        await self.reap()
        if chunk == 1:
            old = self.sessions.pop(key, None)
            if old is not None:
                # A new upload to the same path: the later one wins, the earlier is dropped.
                await self._abort(old, "superseded by a new upload to the same path")
            upload_id = await self.storage.multipart_begin(key, content_type)
            session = UploadSession(key=key, upload_id=upload_id)
            self.sessions[key] = session
            self._ensure_reaper()
        else:
            found = self.sessions.get(key)
            if found is None:
                raise BadRequest(
                    f"No upload in progress for chunk {chunk} (uploads start with chunk 1)",
                    path=key,
                )
            session = found
        async with session.lock:
            if session.closed:
                raise BadRequest("This upload was aborted; start again with chunk 1", path=key)
            if chunk not in (1, -1, session.next_chunk) or (chunk == 1 and session.received):
                self.sessions.pop(key, None)
                await self._abort(session, f"chunk {chunk} out of order")
                raise BadRequest(
                    f"Chunk {chunk} out of order: expected {session.next_chunk} or -1; "
                    "the upload was aborted",
                    path=key,
                )
            session.last_activity = time.monotonic()
            session.buffer += data
            session.received += len(data)
            if chunk > 1:
                session.next_chunk = chunk + 1
            try:
                while len(session.buffer) >= self.part_size:
                    await self._send_part(session, self.part_size)
                if chunk == -1:
                    if session.buffer or not session.parts:
                        await self._send_part(session, len(session.buffer))
                    await self.storage.multipart_complete(key, session.upload_id, session.parts)
                    session.closed = True
                    self.sessions.pop(key, None)
                    return True, session.received
            except ContentsError:
                self.sessions.pop(key, None)
                await self._abort(session, "storage failure")
                raise
            return False, session.received

    async def abort(self, key: str, why: str) -> bool:
        """Abort the upload to ``key``, if one is in progress; returns whether there was one."""
        session = self.sessions.pop(key, None)
        if session is None:
            return False
        await self._abort(session, why)
        return True

    async def _send_part(self, session: UploadSession, size: int) -> None:
        # One copy of the part, not two (a bytearray slice would copy before bytes() does).
        with memoryview(session.buffer) as view:
            piece = bytes(view[:size])
        del session.buffer[:size]
        part = await self.storage.multipart_part(
            session.key, session.upload_id, len(session.parts) + 1, piece
        )
        session.parts.append(part)

    async def _abort(self, session: UploadSession, why: str) -> None:
        session.closed = True
        session.buffer = bytearray()
        log.info("Aborting upload to %s: %s", session.key, why)
        try:
            await self.storage.multipart_abort(session.key, session.upload_id)
        except ContentsError:
            log.warning("Could not abort the multipart upload to %s", session.key)

    async def reap(self) -> int:
        """Abort uploads silent for longer than the timeout; returns how many."""
        now = time.monotonic()
        stale = [s for s in self.sessions.values() if now - s.last_activity > self.timeout]
        for session in stale:
            # Abort in the bucket first, then forget the session: once it is gone from
            # ``sessions`` nothing of it is left anywhere. A chunk arriving meanwhile finds
            # it closed and is refused.
            await self._abort(session, f"no chunk for {self.timeout:.0f} s")
            if self.sessions.get(session.key) is session:
                del self.sessions[session.key]
        return len(stale)

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_loop())

    async def _reap_loop(self) -> None:
        interval = max(0.05, min(self.timeout / 4, 60.0))
        while self.sessions:
            await asyncio.sleep(interval)
            with contextlib.suppress(Exception):
                await self.reap()

    async def abort_all(self) -> None:
        """Abort every upload and stop the reaper (server shutdown)."""
        reaper, self._reaper = self._reaper, None
        if reaper is not None and not reaper.done():
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await reaper
        for session in list(self.sessions.values()):
            self.sessions.pop(session.key, None)
            await self._abort(session, "shutting down")
