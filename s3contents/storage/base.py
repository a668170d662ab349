"""The async storage port: the narrow interface every provider adapter implements.

Storage layer, the bottom of it: the manager talks to object storage only through
:class:`Storage`, so that it never sees a provider's SDK. Adapters raise only the errors of
:mod:`s3contents.errors` (``NotFound``, ``Conflict``, ``Forbidden``, ``Unavailable``...),
never a provider's exception, count every request they make in :attr:`Storage.stats` so
round trips can be measured, and send every request through :meth:`Storage._bounded`, which
bounds its time, paces it (:class:`LoopSlices`) and tells a :class:`RequestObserver` about
it. What is done with that (the Prometheus metrics of :mod:`s3contents.metrics`) is the
business of whoever attaches the observer (the contents manager), not of the port.
"""

from __future__ import annotations

import abc
import asyncio
import builtins
import enum
import inspect
import io
import logging
import time
import weakref
from collections import Counter, deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Protocol, TypeVar

from ..errors import BadCredentials, Forbidden, NotFound, Unavailable

_T = TypeVar("_T")

__all__ = [
    "MTIME_KEY",
    "VERSIONING_OFF",
    "Copied",
    "Listing",
    "LoopSlices",
    "ObjectInfo",
    "ObjectVersion",
    "PartBody",
    "PendingUpload",
    "PutMode",
    "RequestObserver",
    "Storage",
    "StoredParts",
    "UploadPart",
    "body_view",
    "format_mtime",
    "parse_mtime",
    "utc_seconds",
]

#: The user metadata key (``x-amz-meta-s3contents-mtime`` on S3, ``metadata`` on GCS) that
#: keeps the time of a write made through s3contents, to the microsecond: the stores' own
#: LastModified has whole seconds in HEAD answers, and a copy (a rename) resets it, so
#: JupyterLab, comparing times to tell a file changed on disk, would miss a save made in
#: the same second and see a change after a rename.
MTIME_KEY = "s3contents-mtime"


def format_mtime(when: datetime) -> str:
    """The metadata value of a write time (ISO 8601, UTC, microseconds)."""
    return when.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_mtime(value: str | None) -> datetime | None:
    """A write time read back from metadata, or None for a missing or foreign value."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(timezone.utc) if when.tzinfo else None


def utc_seconds(when: datetime) -> datetime:
    """A store's own time in whole seconds, UTC (a naive time is taken as UTC).

    HEAD and GET answers carry Last-Modified as an HTTP date (seconds), listings and copy
    results in milli- or microseconds: one precision everywhere keeps the time of a file the
    same whichever request saw it (JupyterLab compares them). Adapters pass every time the
    store reports through here; the write times kept in metadata (:func:`parse_mtime`)
    keep their microseconds.
    """
    when = when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return when.replace(microsecond=0)


@dataclass(frozen=True)
class ObjectInfo:
    """What a listing or a HEAD tells about one object."""

    key: str
    size: int
    #: Timezone-aware UTC: the write time kept in the object's metadata (:data:`MTIME_KEY`)
    #: where the answer carries it (HEAD and GET everywhere, listings on GCS), else the
    #: store's own LastModified (objects written by other tools, S3 listings).
    last_modified: datetime
    etag: str | None = None


@dataclass(frozen=True)
class ObjectVersion:
    """One earlier version of an object, as a versioned bucket lists it (never a delete
    marker)."""

    key: str
    #: The store's id of the version (S3 VersionId; GCS generation), opaque.
    version_id: str
    size: int
    #: When the version was written: the store's own time, timezone-aware UTC, with the
    #: precision the listing gives (milliseconds on S3, microseconds on GCS), not cut to
    #: seconds (versions written within one second stay in order).
    last_modified: datetime
    #: The current version, which is the file itself.
    is_latest: bool = False


#: :meth:`Storage.versioning` of a bucket that never had versioning turned on.
VERSIONING_OFF = "off"


@dataclass(frozen=True)
class Copied:
    """What the store tells about the object a server-side copy made (either may be None)."""

    etag: str | None = None
    last_modified: datetime | None = None


@dataclass
class Listing:
    """One folder level: the objects directly in it and the sub-prefixes (folders)."""

    objects: list[ObjectInfo] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)


class PutMode(enum.Enum):
    """How a write treats an existing object."""

    OVERWRITE = "overwrite"
    #: Create only if absent (S3 ``If-None-Match: *``; GCS ``ifGenerationMatch=0``).
    CREATE = "create"
    #: Replace only if the current ETag matches (S3 ``If-Match``).
    IF_MATCH = "if-match"


#: The bytes of a multipart part: ``bytes``, or an ``io.BytesIO`` holding them (from position
#: 0), which adapters send piece by piece without copying it (an 8 MiB part copied into the
#: socket's buffer would be held twice).
PartBody = bytes | io.BytesIO


def body_view(body: PartBody) -> memoryview:
    """The bytes of a part, without a copy (a ``BytesIO``'s buffer: it must not be written
    to while the view lives)."""
    return body.getbuffer() if isinstance(body, io.BytesIO) else memoryview(body)


@dataclass(frozen=True)
class UploadPart:
    """A part of a multipart upload, as the store acknowledged it."""

    number: int
    etag: str
    size: int


@dataclass(frozen=True)
class PendingUpload:
    """A multipart upload begun and neither completed nor aborted, as the store lists it."""

    key: str
    upload_id: str
    #: When it began, on this machine's clock (timezone-aware UTC): adapters correct the
    #: store's own clock by the ``Date`` of its answer, so a skewed clock cannot make a live
    #: upload look old.
    initiated: datetime


@dataclass(frozen=True)
class StoredParts:
    """The parts an upload in progress holds in the store."""

    count: int = 0
    size: int = 0
    #: When the newest was stored, on this machine's clock; ``None`` without parts.
    newest: datetime | None = None


class LoopSlices:
    """Hands the event loop back between slices of request-sending CPU.

    Building, signing and sending a request costs the SDK about a millisecond of CPU on the
    event loop (botocore: 0.5-2 ms). A folder operation keeps ``concurrency`` requests in
    flight; when their answers come back together, one turn of the loop would otherwise run
    every waiting task's next request back to back (16 x 1.5 ms and more), and every other
    request of the server (an ``/api/status``, a save) would wait that long.

    :meth:`turn`, awaited before each request: the first request of a turn of the loop opens
    a slice; requests go on while the slice is younger than :attr:`budget` seconds. Later
    ones queue, first come first served, and the end of the slice (a callback it schedules
    for the next turn of the loop) lets as many go as fitted in a slice, in that next turn,
    after whatever else became ready meanwhile; while some wait, new requests queue behind
    them. Nothing is refused: a request waits a few turns of the loop at most.
    """

    def __init__(self, budget: float = 0.008) -> None:
        #: Seconds of one slice.
        self.budget = budget
        # By loop, weakly: tests (and blocking.py's thread) run loops that end.
        self._slices: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Slice] = (
            weakref.WeakKeyDictionary()
        )

    async def turn(self) -> None:
        """Return when the request may be sent in this turn of the loop."""
        loop = asyncio.get_running_loop()
        state = self._slices.get(loop)
        if state is None:
            state = self._slices[loop] = _Slice()
        if not state.waiting and state.admit(loop, self.budget):
            return
        waiter = loop.create_future()
        state.waiting.append(waiter)
        state.arm(loop)
        await waiter  # a cancelled waiter is skipped when it would have been let go


class _Slice:
    """The state of :class:`LoopSlices` on one event loop."""

    __slots__ = ("armed", "fits", "opened", "sent", "waiting")

    def __init__(self) -> None:
        self.opened: float | None = None  # when this turn's slice opened
        self.sent = 0  # requests of this turn's slice
        self.fits = 4  # requests that went in a full slice, the last time one filled up
        self.armed = False  # an end of slice is scheduled
        self.waiting: deque[asyncio.Future[None]] = deque()

    def admit(self, loop: asyncio.AbstractEventLoop, budget: float) -> bool:
        now = time.perf_counter()
        if self.opened is None:
            self.opened, self.sent = now, 1
            self.arm(loop)
            return True
        if now - self.opened < budget:
            self.sent += 1
            return True
        self.fits = max(1, self.sent)
        return False

    def arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self.armed:
            self.armed = True
            loop.call_soon(self.end, loop)

    def end(self, loop: asyncio.AbstractEventLoop) -> None:
        """The turn of the loop that opened the slice is over: let the next ones go."""
        self.armed = False
        self.opened = None
        let_go = 0
        while self.waiting and let_go < self.fits:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                let_go += 1
        if let_go:
            # They run in the next turn of the loop: that is their slice, which ends after them.
            self.opened, self.sent = time.perf_counter(), let_go
            self.arm(loop)


#: The slices of every adapter of the process (they share the event loop).
SLICES = LoopSlices()


async def _within(awaitable: Awaitable[_T], limit: float) -> _T:
    """``awaitable`` within ``limit`` seconds (:class:`asyncio.TimeoutError` after), in the
    calling task: ``asyncio.wait_for`` would run it as a task of its own, which costs a task
    per request and, worse, runs the request's CPU in a later turn of the loop than the one
    :class:`LoopSlices` gave it. Python 3.10 has no ``asyncio.timeout``: ``wait_for`` there,
    the turn taken again inside the new task."""
    timeout = getattr(asyncio, "timeout", None)
    if timeout is not None:
        async with timeout(limit):
            return await awaitable
    return await asyncio.wait_for(_paced(awaitable), limit)  # pragma: no cover - 3.10


async def _paced(awaitable: Awaitable[_T]) -> _T:  # pragma: no cover - 3.10
    try:
        await SLICES.turn()
    except BaseException:
        _close(awaitable)
        raise
    return await awaitable


def _close(awaitable: Awaitable[object]) -> None:
    """Close a coroutine that will never be awaited (no "never awaited" warning)."""
    if inspect.iscoroutine(awaitable):
        awaitable.close()


class RequestObserver(Protocol):
    """Told of every request an adapter sends, once per logical request (retries included):
    :meth:`Storage._bounded` calls :meth:`start` before it and :meth:`done` after it.

    :class:`s3contents.metrics.StorageMeter` (Prometheus) is one; the contents manager
    attaches it to its adapter (:attr:`Storage.observer`).
    """

    def start(self) -> float:
        """A request is sent; returns what :meth:`done` gets back as ``started``."""
        ...

    def done(
        self,
        operation: str,
        started: float,
        err: BaseException | None = None,
        timed_out: bool = False,
    ) -> None:
        """The request of kind ``operation`` (as counted in :attr:`Storage.stats`) ended:
        ``err`` is None on success, else the package error it stands for (or
        :class:`asyncio.CancelledError`); ``timed_out`` when :attr:`Storage.request_timeout`
        ran out."""
        ...


class Storage(abc.ABC):
    """Async object storage, as the contents manager needs it.

    Keys are full object keys (the manager's :class:`~s3contents.paths.KeyMapper` builds
    them). Every method may raise :class:`~s3contents.errors.Unavailable` or
    :class:`~s3contents.errors.Forbidden`.
    """

    #: A human-readable location for messages, e.g. ``s3://bucket``.
    url: str = ""
    #: Which provider this is (``s3``, ``gcs``): the ``provider`` label of the metrics.
    provider: str = "other"
    #: The bucket, for messages and the ``bucket`` label of the metrics.
    bucket: str = ""
    #: Told of every request (:meth:`_bounded`); None: nobody is.
    observer: RequestObserver | None = None
    #: ``what`` (as passed to :meth:`_bounded`) -> request kind, where they differ.
    _kinds: Mapping[str, str] = {}

    def __init__(self) -> None:
        #: Requests sent, by kind (``LIST``, ``GET``, ``HEAD``, ``PUT``, ``COPY``,
        #: ``DELETE``, ``POST``); the figure round-trip budgets are measured with.
        self.stats: Counter[str] = Counter()
        #: Seconds one request may take, its retries included, before it fails with
        #: :class:`Unavailable`; ``None`` or 0: no limit beyond the SDK's own timeouts.
        self.request_timeout: float | None = None

    async def _bounded(self, awaitable: Awaitable[_T], what: str, key: str | None = None) -> _T:
        """Await one request (with its retries) within :attr:`request_timeout`.

        Slow or stalled storage then answers 503 after a known time instead of holding the
        request (and the client waiting on it) open. Every request passes here: it waits
        for its turn (:class:`LoopSlices`) first, and its :attr:`observer` hears of it here
        too, once.
        """
        try:
            await SLICES.turn()
        except BaseException:
            _close(awaitable)  # cancelled while waiting: never sent
            raise
        observer = self.observer
        limit = self.request_timeout
        started = observer.start() if observer is not None else 0.0
        timed_out = False
        try:
            if not limit:
                result = await awaitable
            else:
                try:
                    result = await _within(awaitable, limit)
                except asyncio.TimeoutError as err:
                    timed_out = True
                    raise Unavailable(
                        f"Object storage {self.url} did not answer {what} within {limit:g} s; "
                        "try again later",
                        path=key,
                    ) from err
        except BaseException as err:
            if observer is not None:
                failure = self._reported_error(err, what, key)
                observer.done(self._kinds.get(what, what), started, failure, timed_out)
            raise
        if observer is not None:
            observer.done(self._kinds.get(what, what), started)
        return result

    def _reported_error(self, err: BaseException, what: str, key: str | None) -> BaseException:
        """The package error that ``err``, out of a request, stands for, as the observer is
        told: adapters whose requests raise an internal error, translated by their caller,
        translate it here."""
        return err

    # -- reads ----------------------------------------------------------------------------
    @abc.abstractmethod
    async def head(self, key: str) -> ObjectInfo:
        """Metadata of ``key``; :class:`NotFound` if absent."""

    @abc.abstractmethod
    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        """Whole content and metadata of ``key``; :class:`NotFound` if absent."""

    @abc.abstractmethod
    def stream(self, key: str, chunk_size: int = 1 << 20) -> AsyncGenerator[bytes, None]:
        """Yield the content of ``key`` in pieces of at most ``chunk_size`` bytes."""

    @abc.abstractmethod
    async def list(self, prefix: str, delimiter: str = "/") -> Listing:
        """One level under ``prefix`` (all pages)."""

    @abc.abstractmethod
    def list_all(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, recursively, page by page."""

    #: Keys asked for per LIST page (stores cap it: AWS and GCS answer at most 1000).
    #: :meth:`list_page` answers one such page; tests set it small to make trees span pages.
    list_page_size: int = 1000

    async def list_page(
        self, prefix: str, max_keys: int | None = None, *, token: str | None = None
    ) -> tuple[builtins.list[ObjectInfo], str | None]:
        """One page of :meth:`list_all` (``max_keys`` or ``list_page_size`` keys at most,
        fewer where the store caps pages): its objects, and the token of the next page
        (None after the last). One request.

        In the order :meth:`list_all` gives, every time: a folder's date is taken from the
        first keys of its tree (``folders.Folders.dated_listing``), whether its own model
        or its parent's listing asks.
        """
        limit = max_keys or self.list_page_size
        skip = int(token) if token else 0
        found: builtins.list[ObjectInfo] = []
        seen = 0
        async for o in self.list_all(prefix):
            seen += 1
            if seen <= skip:
                continue
            if len(found) == limit:
                return found, str(skip + limit)
            found.append(o)
        return found, None

    async def exists_any(self, prefix: str, *, ignore: str | None = None) -> bool:
        """True when a folder ``prefix`` exists: a key lies under it, or (on servers that
        keep folders as directories, like SeaweedFS) it is still listed as a folder.

        ``ignore``: a key that does not count (a folder holding only the lock of its own
        rename does not exist for new files). One request either way.
        """
        async for o in self.list_all(prefix):
            if o.key != ignore:
                return True
        return False

    # -- writes ---------------------------------------------------------------------------
    @abc.abstractmethod
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
        """Write ``data`` at ``key``; returns the new ETag when the store gives one.

        ``mode=CREATE`` raises :class:`AlreadyExists` when the key exists;
        ``mode=IF_MATCH`` raises :class:`Conflict` unless the current ETag is ``etag``.
        ``mtime``: the write time to keep with the object (:data:`MTIME_KEY`).
        """

    @abc.abstractmethod
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
        """Server-side copy of ``src`` onto ``dst``; :class:`NotFound` if ``src`` is absent.

        ``mode=CREATE`` raises :class:`AlreadyExists` when ``dst`` exists; ``mode=IF_MATCH``
        raises :class:`Conflict` unless ``dst`` is still the version ``etag`` (a copy that
        must not replace a newer save). The copy keeps the source's metadata, its write
        time included (a rename keeps the date), unless ``mtime`` gives it a new one (a
        copy, a checkpoint: new writes), with ``content_type``. Returns the new object's
        ETag and LastModified, as far as the store reports them.
        """

    @abc.abstractmethod
    async def delete(self, key: str, *, etag: str | None = None) -> None:
        """Delete one key (no error if absent).

        With ``etag``, only while the object is still that version: :class:`Conflict` if it
        was replaced meanwhile (a save racing a rename must not be deleted unseen).
        """

    @abc.abstractmethod
    async def delete_many(
        self, keys: Iterable[str], *, etags: Mapping[str, str] | None = None
    ) -> builtins.list[str]:
        """Delete many keys in as few requests as the store allows.

        Keys with an entry in ``etags`` are deleted only while they are still that version;
        returns those that were not because they changed meanwhile (``[]`` normally).
        """

    # -- multipart ------------------------------------------------------------------------
    @abc.abstractmethod
    async def multipart_begin(self, key: str, content_type: str | None = None) -> str:
        """Start a multipart upload to ``key``; returns its upload id."""

    @abc.abstractmethod
    async def multipart_part(
        self, key: str, upload_id: str, number: int, data: PartBody
    ) -> UploadPart:
        """Upload part ``number`` (1-based) of an upload."""

    @abc.abstractmethod
    async def multipart_complete(
        self,
        key: str,
        upload_id: str,
        parts: Sequence[UploadPart],
        last: PartBody | None = None,
    ) -> ObjectInfo | None:
        """Assemble the parts, and ``last`` after them, into the object at ``key``.

        ``last``: the final part's bytes, sent with the request that creates the object
        where the store allows it (GCS: the resumable upload's final chunk), else as part
        ``len(parts) + 1`` first (S3; skipped when empty and there are other parts).
        Returns the object as the store's answer describes it, or ``None`` when the answer
        does not tell all of it (S3's has no time: the caller HEADs the object).
        """

    @abc.abstractmethod
    async def multipart_abort(self, key: str, upload_id: str) -> None:
        """Abandon an upload and free its parts (no error if already gone)."""

    @abc.abstractmethod
    async def multipart_list(self, prefix: str) -> builtins.list[PendingUpload]:
        """The uploads in progress whose keys start with ``prefix``, whoever began them
        (other processes too): one request, more only for more than a page of them.

        For the sweep of orphaned uploads (:meth:`ChunkedUploads.sweep
        <s3contents.uploads.ChunkedUploads.sweep>`). A store whose uploads cannot be listed
        returns ``[]`` and says why.
        """

    @abc.abstractmethod
    async def multipart_parts(self, key: str, upload_id: str) -> StoredParts:
        """The parts an upload in progress holds: how many, their bytes, and when the newest
        was stored (on this machine's clock, as :attr:`PendingUpload.initiated`). One
        request, more only for more than a page of parts.

        :class:`NotFound` when the upload is gone (completed or aborted meanwhile).
        """

    # -- versions (history) ---------------------------------------------------------------
    # Stores without versioning keep the defaults: no history, and the two version
    # operations refused, so a manager on them behaves exactly as without this section.

    async def versioning(self) -> str:
        """The bucket's versioning state: ``"enabled"``, ``"suspended"`` (earlier versions
        kept, new writes replace the last one) or :data:`VERSIONING_OFF`. One request; the
        caller asks once per process and keeps the answer."""
        return VERSIONING_OFF

    async def list_versions(self, key: str, limit: int) -> builtins.list[ObjectVersion]:
        """The versions of exactly ``key`` (not of keys it is a prefix of), newest first,
        the current one included (``is_latest``), delete markers left out: at most
        ``limit`` of them, in one request."""
        return []

    async def get_version(self, key: str, version_id: str) -> tuple[bytes, ObjectInfo]:
        """The bytes of version ``version_id`` of ``key`` (one request); :class:`NotFound`
        when that version is gone."""
        raise NotFound(f"No version {version_id} of {key}: the store keeps no versions", path=key)

    async def copy_version(
        self,
        src: str,
        version_id: str,
        dst: str,
        *,
        mtime: datetime | None = None,
        content_type: str | None = None,
    ) -> Copied:
        """Server-side copy of version ``version_id`` of ``src`` onto ``dst`` (unconditional:
        a new version of ``dst``); :class:`NotFound` when that version is gone."""
        raise NotFound(f"No version {version_id} of {src}: the store keeps no versions", path=src)

    async def delete_version(self, key: str, version_id: str) -> None:
        """Delete one version of ``key`` for good (no error if already gone)."""
        raise NotFound(f"No version {version_id} of {key}: the store keeps no versions", path=key)

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """Base URL of the service the adapter talks to (for messages and ``doctor``)."""
        return self.url

    async def describe_credentials(self) -> str:
        """Where the credentials come from, in words; never a secret.

        Raises :class:`Forbidden` when no credentials can be found.
        """
        return "provider default"

    async def check_bucket(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`Unavailable` naming the bucket when it does not exist, and
        :class:`Forbidden` when the credentials may not look at it."""

    async def check(self) -> None:
        """:meth:`check_bucket`, called once at start, where refused access is no error.

        A user allowed only under a prefix may not be allowed to look at the bucket itself.
        """
        try:
            await self.check_bucket()
        except BadCredentials:
            raise  # wrong credentials are an error everywhere, not a prefix-only user
        except Forbidden:
            logging.getLogger(__name__).info(
                "Not allowed to look at %s itself; going on (prefix-only access?)", self.url
            )

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
