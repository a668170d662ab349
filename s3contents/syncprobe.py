"""Synchronous answers asked for on the event loop's own thread (jupytext's ``exists``).

Layer: beside the manager, below it (the manager passes in how to build an adapter).

jupytext (1.19) calls ``contents_manager.exists(path)`` without ``await`` where it looks for
a free untitled name and where it renames paired files, because jupyter_server's local
manager keeps a synchronous ``exists``. An un-awaited coroutine is always true: the loop
looking for a free name never ends and the whole server freezes. The manager's ``exists``
therefore returns an :class:`Existence`: awaited, it is the ordinary async check; asked
``bool()``, it answers through a :class:`SyncProbe`, a storage adapter of its own on a
thread and event loop of its own (the server's loop cannot be waited for from its own
thread, and an adapter's client belongs to the loop that made it), bounded by a timeout.
The loop waits for that request, as jupyter_server's local manager waits for its
``os.path.exists``; a timeout or an error raises instead of guessing.

jupytext asks many such questions in one go: looking for a free name for a new notebook it
asks about ``Untitled`` with each of the ~50 extensions it knows, then ``Untitled1``...,
all without returning to the event loop. One request each (two for a missing name: a HEAD
and a LIST) held the server 130-600 ms per new notebook on a local store, seconds at AWS's
latency. So the first question of a turn of the event loop lists the names beginning with
the asked name's stem (``Untitled`` for ``Untitled.py``: one LIST with the delimiter, which
covers ``Untitled1.ipynb`` too) and :class:`TurnListings` answers the questions that follow
from it until the loop gets control back. Within that turn nothing else of this process
runs, so the listing is as fresh as a HEAD made at its time; another server may write in
between either way, and the write that follows a free-name search is create-only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

from .errors import Unavailable
from .storage.base import Listing, Storage

__all__ = ["Existence", "SyncProbe", "TurnListings"]

T = TypeVar("T")

#: Seconds a synchronous answer may take when no ``request_timeout`` is set.
DEFAULT_TIMEOUT = 30.0


class SyncProbe:
    """Runs storage calls to completion for a synchronous caller, on a thread of its own.

    The adapter (``build()``) and its event loop are made at the first call and live until
    :meth:`close`; the thread is a daemon, so it never holds the process at exit.
    """

    def __init__(self, build: Callable[[], Storage], timeout: float | None = None) -> None:
        self._build = build
        self.timeout = timeout or DEFAULT_TIMEOUT
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._storage: Storage | None = None
        self._lock = threading.Lock()

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="s3contents-sync-probe", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _on_probe_loop(self, func: Callable[[Storage], Awaitable[T]]) -> T:
        if self._storage is None:
            self._storage = self._build()
        return await func(self._storage)

    def run(self, func: Callable[[Storage], Awaitable[T]]) -> T:
        """``await func(storage)`` on the probe's loop, waiting at most ``timeout`` seconds
        (:class:`~s3contents.errors.Unavailable` past it)."""
        loop = self._started()
        future = asyncio.run_coroutine_threadsafe(self._on_probe_loop(func), loop)
        try:
            return future.result(self.timeout)
        except concurrent.futures.TimeoutError as err:
            future.cancel()
            raise Unavailable(f"No answer from the store within {self.timeout:g} s") from err

    def close(self) -> None:
        """Close the adapter and stop the thread (waits at most a few seconds)."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        storage, self._storage = self._storage, None
        if storage is not None:
            done = asyncio.run_coroutine_threadsafe(storage.close(), loop)
            try:
                done.result(5)
            except Exception:  # closing is best effort: the thread is a daemon anyway
                logging.getLogger(__name__).debug("sync probe close failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()


class Existence:
    """Whether a path exists: ``await`` it (the async check), or ask ``bool()`` of it (a
    bounded synchronous request through a :class:`SyncProbe`, for callers that forget to
    await). The coroutine is made only when awaited, so a ``bool()`` alone leaves no
    "never awaited" warning behind."""

    __slots__ = ("_answer", "_check", "_on_bool", "_sync")

    def __init__(
        self,
        check: Callable[[], Coroutine[Any, Any, bool]],
        sync: Callable[[], bool],
        on_bool: Callable[[], None] | None = None,
    ) -> None:
        self._check = check
        self._sync = sync
        self._on_bool = on_bool
        self._answer: bool | None = None

    def __await__(self) -> Generator[Any, None, bool]:
        return self._check().__await__()

    def __bool__(self) -> bool:
        if self._answer is None:
            if self._on_bool is not None:
                self._on_bool()
            self._answer = bool(self._sync())
        return self._answer

    def __repr__(self) -> str:
        return f"<Existence {'unknown' if self._answer is None else self._answer}>"


class TurnListings:
    """Listings of names by stem, kept until the event loop gets control back.

    :meth:`answer` says whether a file key exists from a listing made earlier in this turn
    of the running loop (listing it first when none covers the key): True for a file,
    False when nothing has that name, None when a folder has it (the exact folder rules,
    such as one holding only its rename claim, are left to the caller's own check). Without
    a running loop (a plain synchronous caller) it keeps nothing and answers None.
    """

    def __init__(self, delimiter: str = "/") -> None:
        self.delimiter = delimiter
        #: (parent prefix, listed prefix) -> (file keys, folder prefixes) of this turn.
        self._listed: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]]] = {}

    def answer(self, key: str, probe: SyncProbe) -> bool | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        parent, _, name = key.rpartition(self.delimiter)
        parent = parent + self.delimiter if parent else ""
        stem = name.split(".", 1)[0]
        if not stem:
            return None  # ".hidden": no stem to share with other names
        found = self._find(parent, key)
        if found is None:
            listed = parent + stem
            listing = probe.run(lambda storage: storage.list(listed, self.delimiter))
            if not self._listed:
                loop.call_soon(self._listed.clear)
            found = self._listed[(parent, listed)] = _names(listing)
        files, folders = found
        if key in files:
            return True
        return None if key + self.delimiter in folders else False

    def _find(self, parent: str, key: str) -> tuple[frozenset[str], frozenset[str]] | None:
        for (listed_parent, listed), names in self._listed.items():
            if listed_parent == parent and key.startswith(listed):
                return names
        return None


def _names(listing: Listing) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(o.key for o in listing.objects), frozenset(listing.prefixes)
