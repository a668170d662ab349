"""Serving a synchronous parent, such as PyPI's ``hybridcontents``: blocking calls.

PyPI's ``hybridcontents`` 0.4.0 (the package the old s3contents README pointed to) is a
synchronous ``ContentsManager`` that makes its managers with ``parent=self`` and calls them
synchronously (``mgr.get(...)``, ``mgr.dir_exists(...)``). An async manager under it hands
back coroutines that are never awaited, and every request hangs.

When an :class:`~s3contents.manager.ObjectStoreContentsManager` is made with such a parent (a
jupyter_server ``ContentsManager`` that is not an ``AsyncContentsManager``), its ``__new__``
makes it an instance of a generated subclass (:func:`blocking_variant`, same name) whose
public async methods block until done and return plain results, as the old package did with
s3fs. The work runs on an event loop of the package's own, on a daemon thread shared by every
such manager (:class:`LoopThread`), where the storage clients are made and used (aiobotocore
and aiohttp sessions belong to one loop). Errors (tornado ``HTTPError``) are raised as they
are.

* Called on that loop's thread (the manager's own async code, ``await self.get(...)``), the
  same methods return their coroutine: the manager's internals are unchanged. Its checkpoints
  (an ``AsyncCheckpoints``) get the same treatment, for a parent that calls them directly.
* Never a hang: a call gives up with 503 once storage has had no request for twice the
  manager's ``request_timeout`` (:data:`NO_LIMIT_WINDOW` when that is 0); each storage request
  is itself bounded by ``request_timeout``.
* Events are emitted on the caller's event loop (the server's), where their listeners live.
* A warning says, once per parent, that this blocks the server's event loop and names the
  async way, :data:`ASYNC_WAY`.
* At exit the managers are closed and the thread is stopped.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import functools
import inspect
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

from jupyter_server.services.contents.checkpoints import AsyncCheckpoints
from jupyter_server.services.contents.manager import AsyncContentsManager, ContentsManager
from tornado.web import HTTPError
from traitlets import default

__all__ = [
    "ASYNC_WAY",
    "LoopThread",
    "blocking_variant",
    "loop_thread",
    "serves_sync_parent",
    "shutdown",
]

#: The async manager with the same configuration shape as PyPI's hybridcontents.
ASYNC_WAY = "s3contents.hybrid.HybridContentsManager"
#: Seconds without a storage request after which a blocking call gives up, when the
#: manager's ``request_timeout`` is 0 (no limit of its own).
NO_LIMIT_WINDOW = 600.0
#: Seconds the managers get to close, and the thread to stop, at exit.
EXIT_TIMEOUT = 10.0

#: The event loop of the thread that made the blocking call (None: no loop there); set in
#: the task that runs the call, for :func:`_emit`.
_CALLER_LOOP: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "s3contents_blocking_caller_loop", default=None
)


def serves_sync_parent(parent: Any) -> bool:
    """True when ``parent`` is a synchronous jupyter_server contents manager."""
    return isinstance(parent, ContentsManager) and not isinstance(parent, AsyncContentsManager)


class LoopThread:
    """An event loop running on a daemon thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._run, args=(ready,), name="s3contents-blocking", daemon=True
        )
        self.thread.start()
        ready.wait(EXIT_TIMEOUT)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    def alive(self) -> bool:
        return self.thread.is_alive() and not self.loop.is_closed()

    def on_thread(self) -> bool:
        """True when called on the loop's own thread."""
        return threading.get_ident() == self.thread.ident

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self, timeout: float = EXIT_TIMEOUT) -> None:
        """Cancel what still runs, stop the loop, join the thread, close the loop."""
        if not self.alive():
            return
        concurrent.futures.wait([self.submit(_cancel_others())], timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)
        if not self.thread.is_alive():
            self.loop.close()


async def _cancel_others() -> None:
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.get_running_loop().shutdown_asyncgens()


_lock = threading.RLock()
_runner: LoopThread | None = None
_exit_registered = False
#: Managers serving a sync parent, closed at exit.
_managers: weakref.WeakSet[Any] = weakref.WeakSet()
#: Parents already warned about.
_warned: weakref.WeakSet[Any] = weakref.WeakSet()
#: Class -> its blocking variant.
_variants: dict[type, type] = {}


def loop_thread() -> LoopThread:
    """The shared loop thread, started on first use (and again after :func:`shutdown`)."""
    global _runner, _exit_registered
    with _lock:
        if _runner is None or not _runner.alive():
            _runner = LoopThread()
            if not _exit_registered:
                atexit.register(shutdown)
                _exit_registered = True
        return _runner


def _on_loop_thread() -> bool:
    runner = _runner
    return runner is not None and runner.on_thread()


def shutdown(timeout: float = EXIT_TIMEOUT) -> None:
    """Close every manager serving a sync parent, then stop the loop thread (at exit)."""
    with _lock:
        runner = _runner
        if runner is None or not runner.alive() or runner.on_thread():
            return
        closing = []
        for manager in list(_managers):
            close = getattr(type(manager), "_blocking_impls", {}).get("close")
            if close is not None:
                closing.append(runner.submit(close(manager)))
        if closing:
            concurrent.futures.wait(closing, timeout)
        runner.stop(timeout)


def _manager_of(obj: Any) -> Any:
    return obj if isinstance(obj, ContentsManager) else getattr(obj, "parent", None)


def _activity(manager: Any) -> int:
    """Storage requests the manager has sent so far (its adapter counts them)."""
    storage = getattr(manager, "_storage", None)
    stats = getattr(storage, "stats", None)
    return sum(stats.values()) if stats else 0


async def _called_from(
    caller: asyncio.AbstractEventLoop | None, coro: Coroutine[Any, Any, Any]
) -> Any:
    _CALLER_LOOP.set(caller)
    return await coro


def wait(manager: Any, coro: Coroutine[Any, Any, Any], what: str) -> Any:
    """Run ``coro`` on the loop thread and block until it is done; its result, or its error.

    Gives up (cancels it, 503) once the manager's storage has sent no request for twice its
    ``request_timeout``: a stalled loop or store can never hold the caller for ever.
    """
    runner = loop_thread()
    try:
        caller: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        caller = None
    future = runner.submit(_called_from(caller, coro))
    request_timeout = float(getattr(manager, "request_timeout", 0) or 0)
    window = 2 * request_timeout if request_timeout > 0 else NO_LIMIT_WINDOW
    seen = _activity(manager)
    while True:
        done, _ = concurrent.futures.wait([future], window)
        if done:
            return future.result()
        now = _activity(manager)
        if now != seen:
            seen = now
            continue
        future.cancel()
        url = getattr(getattr(manager, "_storage", None), "url", "") or "object storage"
        raise HTTPError(503, f"{what}: no answer from {url} for {window:g} s; try again later")


def _blocking(name: str, impl: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """A method that runs ``impl`` on the loop thread and blocks for its result; on the
    loop thread itself, it returns the coroutine for the caller to await."""

    @functools.wraps(impl)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        coro = impl(self, *args, **kwargs)
        if _on_loop_thread():
            return coro
        return wait(_manager_of(self), coro, f"{type(self).__name__}.{name}")

    return method


def _public_coroutine_functions(cls: type) -> dict[str, Callable[..., Any]]:
    found = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        if inspect.iscoroutinefunction(attr):
            found[name] = attr
        elif inspect.iscoroutinefunction(getattr(attr, "async_impl", None)):
            # A method that answers an awaitable of its own (the manager's ``exists``):
            # its coroutine implementation, blocked on like the others.
            found[name] = attr.async_impl
    return found


def blocking_variant(cls: type) -> type:
    """The subclass of ``cls`` (a contents manager or an ``AsyncCheckpoints`` class) that
    serves a synchronous caller; ``cls`` itself if it is one already."""
    if getattr(cls, "_blocking_variant", False):
        return cls
    with _lock:
        if cls not in _variants:
            impls = _public_coroutine_functions(cls)
            namespace: dict[str, Any] = {
                name: _blocking(name, impl) for name, impl in impls.items()
            }
            namespace.update(
                __module__=cls.__module__,
                __qualname__=cls.__qualname__,
                __doc__=cls.__doc__,
                _blocking_variant=True,
                _blocking_impls=impls,
            )
            if issubclass(cls, ContentsManager):
                namespace.update(_manager_members(cls))
            _variants[cls] = type(cls)(cls.__name__, (cls,), namespace)
        return _variants[cls]


def _manager_members(base: Any) -> dict[str, Any]:
    """What a contents manager's blocking variant adds to the blocking methods."""

    def __init__(self: Any, **kwargs: Any) -> None:
        loop_thread()
        base.__init__(self, **kwargs)
        _managers.add(self)
        parent = self.parent
        with _lock:
            first = parent not in _warned
            _warned.add(parent)
        if first:
            parent_class = type(parent)
            self.log.warning(
                "%s is called synchronously by %s.%s: each contents request blocks the "
                "server's event loop until object storage answers, as the old s3contents "
                "did. %s serves the same manager_classes and manager_kwargs without "
                "blocking: set it as contents_manager_class.",
                type(self).__name__,
                parent_class.__module__,
                parent_class.__qualname__,
                ASYNC_WAY,
            )

    def _build_storage(self: Any) -> Any:
        # The storage clients are made, and used, on the loop thread only.
        if _on_loop_thread():
            return base._build_storage(self)

        async def build() -> Any:
            return base._build_storage(self)

        return wait(self, build(), f"{type(self).__name__} start")

    def emit(self: Any, data: Any) -> None:
        caller = _CALLER_LOOP.get()
        if caller is not None and _on_loop_thread() and not caller.is_closed():
            try:
                caller.call_soon_threadsafe(functools.partial(base.emit, self, data))
            except RuntimeError:  # the caller's loop closed meanwhile
                pass
            else:
                return
        base.emit(self, data)

    @default("checkpoints")
    def _default_checkpoints(self: Any) -> Any:
        klass = self.checkpoints_class
        if issubclass(klass, AsyncCheckpoints):
            klass = blocking_variant(klass)
        return klass(**self.checkpoints_kwargs)

    return {
        "__init__": __init__,
        "_build_storage": _build_storage,
        "emit": emit,
        "_default_checkpoints": _default_checkpoints,
    }
