"""Our contents managers and the Jupyter server that runs them: its start and its stop.

jupyter_server never calls its contents manager's ``close()``: a chunked upload in progress
when the server stops would stay in the bucket, parts and all, for good. So every manager
made by a server (directly, or as a mount of :class:`~s3contents.hybrid.HybridContentsManager`)
calls :func:`attach`, which

* enables the server extension ``s3contents`` (:mod:`s3contents.serverext`) in that server,
  unless ``ServerApp.jpserver_extensions`` says ``{"s3contents": False}``. Its start hook
  sweeps orphaned uploads (left by a process that died) under each manager's prefix, then
  every ``upload_timeout`` seconds; its stop hook closes each manager (uploads in progress
  aborted in the bucket, sweeps stopped, connections closed). The server runs the stop hooks
  on SIGTERM, on Ctrl-C confirmed in its terminal (or pressed twice), on ``/api/shutdown`` and
  at ``shutdown_no_activity_timeout``;
* (the same extension, at start) makes a SIGINT stop a server that has no terminal as
  SIGTERM does. jupyter_server asks for confirmation of a Ctrl-C only in a terminal;
  elsewhere (a service manager, a script, a container's ``docker stop -s INT``) it leaves
  Python's default, a ``KeyboardInterrupt`` out of its event loop, and the process exits
  without any cleanup: no stop hook, no upload aborted. A second SIGINT interrupts at once.

At load, the extension also makes the server's session manager tell each kernel where its
notebook is (:func:`tell_kernels`).

A SIGKILL runs nothing: the uploads it leaves are swept at the next start of a server on that
prefix (or by a running one), once silent for longer than ``upload_timeout``.

The same start hook also freezes the garbage collector's view of what the server loaded
(:func:`freeze_loaded_objects`): a full collection walks every object alive, about 250,000
in a Jupyter server with botocore's S3 model, and runs on whichever thread allocates when it
triggers, holding the GIL, so the event loop too. Listing 10000 notebooks triggers two: each
held the loop 370-1000 ms on a loaded machine, against 10-170 ms once the objects loaded at
start (and the storage clients, built by the first sweep) are frozen.

This module is imported by every manager; it imports nothing of the server.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import threading
import weakref
from collections.abc import Iterable
from typing import Any

__all__ = [
    "EXTENSION",
    "STOP_TIMEOUT",
    "attach",
    "close_all",
    "freeze_loaded_objects",
    "managers_of",
    "stop_on_sigint",
    "tell_kernels",
]

log = logging.getLogger(__name__)

#: The server extension's name (in ``ServerApp.jpserver_extensions``).
EXTENSION = "s3contents"
#: Seconds the managers get to abort their uploads when the server stops.
STOP_TIMEOUT = 10.0

#: Seconds after the server's start when the loaded objects are frozen again: the first
#: sweep, at start, has built the storage clients (botocore's model of S3) by then.
FREEZE_AGAIN_AFTER = 15.0

#: Server -> the managers it runs that attached themselves, by ``id``: a manager need not be
#: hashable (jupytext's derived class defines ``__eq__`` and so loses ``__hash__``).
_by_server: weakref.WeakKeyDictionary[Any, weakref.WeakValueDictionary[int, Any]] = (
    weakref.WeakKeyDictionary()
)


def server_of(manager: Any) -> Any:
    """The Jupyter server that runs ``manager`` (through async contents managers such as
    ours: the hybrid manager's mounts), or ``None``. A manager under a synchronous contents
    manager (PyPI's hybridcontents) has none: :mod:`s3contents.blocking` closes those."""
    from jupyter_server.services.contents.manager import AsyncContentsManager

    parent = getattr(manager, "parent", None)
    while isinstance(parent, AsyncContentsManager):
        parent = getattr(parent, "parent", None)
    has_trait = getattr(parent, "has_trait", None)
    if has_trait is None or not has_trait("jpserver_extensions"):
        return None
    return parent


def attach(manager: Any) -> None:
    """Hook ``manager`` to the server that runs it, if any (see the module's notes)."""
    server = server_of(manager)
    if server is None:
        return
    _by_server.setdefault(server, weakref.WeakValueDictionary())[id(manager)] = manager
    _enable_extension(server)


def _enable_extension(server: Any) -> None:
    if server.jpserver_extensions.get(EXTENSION) is False:
        return  # turned off in the configuration
    extensions = getattr(server, "extension_manager", None)
    if extensions is None:
        # Before the server found its extensions: it will, with this one.
        server.jpserver_extensions = {**server.jpserver_extensions, EXTENSION: True}
        return
    if EXTENSION in extensions.extensions:
        return  # enabled in the configuration, or by another manager of this server
    # The server made its contents manager after linking its extensions and before loading
    # them: link this one now, and the server loads it with the others.
    if extensions.add_extension(EXTENSION, enabled=True):
        extensions.link_extension(EXTENSION)


def managers_of(server: Any) -> list[Any]:
    """The managers run by ``server`` that attached themselves."""
    attached = _by_server.get(server)
    return list(attached.values()) if attached is not None else []


async def close_all(managers: Iterable[Any], timeout: float = STOP_TIMEOUT) -> None:
    """Close ``managers`` at once (aborting their uploads), within ``timeout`` seconds."""

    async def close(manager: Any) -> None:
        try:
            await manager.close()
        except Exception as err:  # one manager's failure must not keep the others open
            log.warning("Could not close %s: %s", type(manager).__name__, err)

    closing = [close(m) for m in managers]
    if not closing:
        return
    try:
        await asyncio.wait_for(asyncio.gather(*closing), timeout)
    except asyncio.TimeoutError:
        log.warning("Uploads still being aborted after %.0f s: left to the next sweep", timeout)


def stop_on_sigint(server: Any) -> bool:
    """Make a SIGINT stop ``server`` as SIGTERM does, where jupyter_server left Python's
    default handler (no terminal); returns whether it did. Main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return False  # the server's own (a terminal's confirmation), or someone else's

    def stop(sig: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one: at once
        server._signal_stop(sig, frame)

    signal.signal(signal.SIGINT, stop)
    return True


def freeze_loaded_objects(again_after: float | None = FREEZE_AGAIN_AFTER) -> None:
    """Collect, then move every object alive to the collector's permanent generation
    (:func:`gc.freeze`): modules, classes and models loaded once are never walked by a
    collection again, so a full collection costs what requests keep alive, not the whole
    server. Again ``again_after`` seconds later (in the running loop), for what the first
    requests loaded; that time only the young generations are collected first (a full
    collection is the stall this avoids). Objects frozen are never freed by the collector
    (reference counting still frees them): only long-lived ones are alive at these times."""
    gc.collect(2 if again_after is not None else 1)
    gc.freeze()
    if again_after is not None:
        asyncio.get_running_loop().call_later(again_after, freeze_loaded_objects, None)


def tell_kernels(server: Any) -> None:
    """Kernels started by ``server``'s session manager get its contents manager's
    ``kernel_env(path)`` (where the notebook is in the bucket) over jupyter_server's own
    environment, which names the notebook by a local path that does not exist.

    jupyter_server has no hook for this: the session manager's ``get_kernel_env`` is wrapped
    on that one instance (its class, maybe a configured one, is left alone). A path the
    contents manager refuses keeps jupyter_server's environment.
    """
    sessions: Any = getattr(server, "session_manager", None)
    original = getattr(sessions, "get_kernel_env", None)
    if original is None or getattr(original, "_s3contents", False):
        return

    def get_kernel_env(path: str | None, name: Any = None) -> dict[str, str]:
        env: dict[str, str] = original(path, name)
        own = getattr(server.contents_manager, "kernel_env", None)
        if path and callable(own):
            try:
                env.update(own(path))
            except Exception as err:  # an HTTPError for a path it refuses, and the like
                log.debug("No kernel environment for %r: %s", path, err)
        return env

    get_kernel_env._s3contents = True  # type: ignore[attr-defined]
    sessions.get_kernel_env = get_kernel_env
