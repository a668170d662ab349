"""Save hooks: running them off the event loop, and the file access they are given.

Layer: beside the manager, below it (it is passed in; nothing here imports it).

Pre- and post-save hooks are user code that may block (nbconvert, a git commit), so they run
in a worker thread. A post-save hook is called with those of ``model``, ``s3_path`` (the old
package's name), ``os_path`` (Jupyter's) and ``contents_manager`` that it accepts.

The old package let a ``post_save_hook`` read and write through
``contents_manager.fs.read(path, format=...)`` and ``contents_manager.fs.write(...)``.
Hooks now run in a worker thread; these methods hand each operation to the server's event
loop and wait for it in that thread, so a hook can block (nbconvert) without ever blocking
or deadlocking the loop. Called on the loop's own thread they raise at once instead of
deadlocking; async code should ``await`` the ``a``-prefixed twins.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

from tornado.web import HTTPError

from .errors import NotFound
from .models import decode_content, encode_content
from .paths import normalize_api_path

__all__ = ["HookFS", "call_hook", "hook_setting", "run_post_save_hooks", "run_pre_save_hooks"]

T = TypeVar("T")


def hook_setting(value: Any) -> Callable[..., Any] | None:
    """A hook setting's value: a callable, an import string naming one, or None."""
    if isinstance(value, str):
        from jupyter_server.utils import import_item

        value = import_item(value)
    if value is not None and not callable(value):
        raise TypeError("a save hook must be callable")
    return cast("Callable[..., Any] | None", value)


def call_hook(hook: Callable[..., Any], **candidates: Any) -> Any:
    """Call ``hook`` with those of ``candidates`` it accepts (all of them if it has **kw)."""
    try:
        params = inspect.signature(hook).parameters
    except (TypeError, ValueError):
        return hook(**candidates)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return hook(**candidates)
    return hook(**{k: v for k, v in candidates.items() if k in params})


async def run_pre_save_hooks(manager: Any, model: dict[str, Any], api_path: str) -> None:
    """jupyter_server's ``run_pre_save_hooks`` of ``manager``, in a worker thread. Hooks may
    use ``contents_manager.fs``, which hops back onto the event loop."""
    if manager.pre_save_hook is None and not manager._pre_save_hooks:
        return
    await asyncio.to_thread(manager.run_pre_save_hooks, model=model, path=api_path)


async def run_post_save_hooks(manager: Any, model: dict[str, Any], api_path: str) -> None:
    """The ``post_save_hook`` setting, then the hooks registered on ``manager``, each in a
    worker thread. A hook that raises makes the request 500 after the save, as in Jupyter."""
    hooks = [manager.post_save_hook] if manager.post_save_hook is not None else []
    hooks += list(manager._post_save_hooks)
    for hook in hooks:
        manager.log.debug("Running post-save hook on %s", api_path)
        try:
            await asyncio.to_thread(
                call_hook,
                hook,
                model=model,
                s3_path=api_path,
                os_path=api_path,
                contents_manager=manager,
            )
        except HTTPError:
            raise
        except Exception as err:
            manager.log.error("Post-save hook failed on %s", api_path, exc_info=True)
            raise HTTPError(500, f"Unexpected error while running post hook save: {err}") from err


class HookFS:
    """File operations on API paths (``"folder/name.ext"``, relative to the prefix).

    Paths that still carry the bucket or the prefix, as the old package accepted, are
    understood too.
    """

    def __init__(self, manager: Any, timeout: float = 300.0) -> None:
        self.manager = manager
        self.timeout = timeout

    # -- plumbing -------------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self.manager.event_loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            coro.close()
            raise RuntimeError(
                "contents_manager.fs.* blocks until done and cannot be called on the event "
                "loop's thread; use 'await contents_manager.fs.aread(...)' there"
            )
        if loop is None or loop.is_closed() or not loop.is_running():
            return asyncio.run(coro)
        return asyncio.run_coroutine_threadsafe(coro, loop).result(self.timeout)

    def _api_path(self, path: str) -> str:
        path = (path or "").strip("/")
        keys = self.manager.keys
        bucket = getattr(self.manager, "bucket", "") or ""
        for lead in (f"{bucket}/{keys.prefix}" if keys.prefix else "", keys.prefix, bucket):
            if lead and (path == lead or path.startswith(lead + "/")):
                path = path[len(lead) :].strip("/")
                break
        return normalize_api_path(path)

    # -- async API ------------------------------------------------------------------------
    async def aread(self, path: str, format: str | None = None) -> tuple[str, str]:
        """``(content, format)`` of a file: ``text`` when UTF-8 (or asked), else ``base64``."""
        api_path = self._api_path(path)
        data, _ = await self.manager.storage.get(self.manager.keys.key(api_path))
        if format == "base64":
            return base64.b64encode(data).decode("ascii"), "base64"
        return decode_content(data, format, api_path)

    async def aread_bytes(self, path: str) -> bytes:
        api_path = self._api_path(path)
        data, _ = await self.manager.storage.get(self.manager.keys.key(api_path))
        return cast(bytes, data)

    async def awrite(self, path: str, content: str | bytes, format: str | None = "text") -> None:
        """Write ``content`` (``text``: a str; ``base64``: base64 text; bytes: as they are)."""
        api_path = self._api_path(path)
        if isinstance(content, bytes):
            data = content
        else:
            data = encode_content(content, format or "text", api_path)
        from .models import guess_mimetype

        await self.manager.storage.put(
            self.manager.keys.key(api_path), data, content_type=guess_mimetype(api_path)
        )

    async def aisfile(self, path: str) -> bool:
        try:
            await self.manager.storage.head(self.manager.keys.key(self._api_path(path)))
        except NotFound:
            return False
        return True

    async def aisdir(self, path: str) -> bool:
        api_path = self._api_path(path)
        return not api_path or await self.manager.storage.exists_any(
            self.manager.keys.dir_prefix(api_path)
        )

    async def als(self, path: str = "") -> list[str]:
        """API paths of the entries directly in a folder."""
        model = await self.manager.get(self._api_path(path), content=True, type="directory")
        return [entry["path"] for entry in model["content"]]

    async def arm(self, path: str) -> None:
        await self.manager.delete(self._api_path(path))

    async def amkdir(self, path: str) -> None:
        await self.manager.save({"type": "directory"}, self._api_path(path))

    async def acp(self, old_path: str, new_path: str) -> None:
        await self.manager.copy(self._api_path(old_path), self._api_path(new_path))

    async def amv(self, old_path: str, new_path: str) -> None:
        await self.manager.rename(self._api_path(old_path), self._api_path(new_path))

    # -- sync API (for hooks in worker threads) ---------------------------------------------
    def read(self, path: str, format: str | None = None) -> tuple[str, str]:
        return self._run(self.aread(path, format))

    def read_bytes(self, path: str) -> bytes:
        return self._run(self.aread_bytes(path))

    def write(self, path: str, content: str | bytes, format: str | None = "text") -> None:
        self._run(self.awrite(path, content, format))

    def isfile(self, path: str) -> bool:
        return self._run(self.aisfile(path))

    def isdir(self, path: str) -> bool:
        return self._run(self.aisdir(path))

    def ls(self, path: str = "") -> list[str]:
        return self._run(self.als(path))

    def rm(self, path: str) -> None:
        self._run(self.arm(path))

    def mkdir(self, path: str) -> None:
        self._run(self.amkdir(path))

    def cp(self, old_path: str, new_path: str) -> None:
        self._run(self.acp(old_path, new_path))

    def mv(self, old_path: str, new_path: str) -> None:
        self._run(self.amv(old_path, new_path))
