"""The mounts of a hybrid manager, one small protocol per kind (API layer, below
:mod:`s3contents.hybrid.manager` and :mod:`s3contents.hybrid.transfer`).

The contents API is the same for every mounted manager, but a copy between mounts, a
``/files/`` download and a kernel's folder are done better when the kind of manager is
known: a bucket of ours streams objects and reports what it stores, a local folder is read
from disk. What differs lives here, behind :class:`Mount`, chosen once per mount by
:func:`make_mount` when the hybrid manager is made; the rest of the package asks the mount
and never looks at its manager's class or private attributes:

- :class:`BucketMount`: our :class:`~s3contents.manager.ObjectStoreContentsManager`, through
  its public ``download``, ``stored_files`` and ``abort_upload``;
- :class:`LocalMount`: jupyter_server's file managers (``FileManagerMixin``), through their
  public ``root_dir`` and the same rule as theirs for paths outside it (404);
- :class:`OtherMount`: any other manager, through the contents API alone.

Also here: where an API path lives (:class:`Place`), the hybrid manager's path cleaner and
mount names, and the event logger that passes a mount's events on with full paths.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import os
import stat as stat_module
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from jupyter_events import EventLogger
from jupyter_server.services.contents.fileio import FileManagerMixin
from jupyter_server.services.contents.largefilemanager import (
    AsyncLargeFileManager,
    LargeFileManager,
)
from jupyter_server.services.contents.manager import ContentsManager
from jupyter_server.utils import ApiPath, to_os_path
from traitlets import TraitError

from ..contents import Download, call
from ..errors import BadRequest, ContentsError, NotFound
from ..manager import ObjectStoreContentsManager
from ..paths import normalize_api_path

__all__ = [
    "BucketMount",
    "LocalMount",
    "Mount",
    "MountEvents",
    "OtherMount",
    "Place",
    "clean",
    "join",
    "make_mount",
    "mount_name",
    "quiet",
]

#: True while a cross-mount copy or rename runs: the mounts' own events (the save, get and
#: delete it is made of) are not passed on; the hybrid manager emits one copy or rename.
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("s3contents_hybrid_quiet")


def join(mount: str, rel: str) -> str:
    """The full API path of ``rel`` inside ``mount`` (either may be ``""``)."""
    return "/".join(p for p in (mount, rel) if p)


def clean(path: Any) -> str:
    """An API path without its leading and trailing slashes; ``.`` and ``..`` refused.

    Only the first name chooses the mount; each mount's manager checks the rest by its own
    rules (our managers refuse more than a local one does).
    """
    if path is None:
        return ""
    if not isinstance(path, str):
        raise BadRequest(f"Path must be a string, not {type(path).__name__}")
    api_path = path.strip("/")
    if any(name in (".", "..") for name in api_path.split("/")):
        raise NotFound(f"{api_path} is outside the root", path=api_path)
    return api_path


def mount_name(name: Any) -> str:
    """Normalise a mount name of ``manager_classes``: ``""`` (the root) or one folder name."""
    if not isinstance(name, str):
        raise TraitError(f"Mount names must be strings, not {type(name).__name__}")
    stripped = name.strip("/")
    if not stripped:
        return ""
    try:
        normal = normalize_api_path(stripped)
    except ContentsError as err:
        raise TraitError(f"Invalid mount name {name!r}: {err}") from err
    if "/" in normal:
        raise TraitError(
            f"Invalid mount name {name!r}: a mount is one folder name of the root; nested "
            "mounts are not supported (mount it at the root under its own name instead)"
        )
    return normal


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Keep the mounts' own events to themselves (see :class:`MountEvents`)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


class MountEvents(EventLogger):
    """Event logger of one mount's manager: passes its contents events on to the hybrid
    manager's logger (the server's) with the mount's name put in front of the paths, except
    during a cross-mount copy or rename (:func:`quiet`), which emits its own single event."""

    def __init__(self, hybrid: ContentsManager, mount: str) -> None:
        super().__init__()
        self._hybrid = hybrid
        self._mount = mount

    def emit(
        self,
        *,
        schema_id: str,
        data: dict[str, Any],
        timestamp_override: datetime | None = None,
    ) -> dict[str, Any] | None:
        if _QUIET.get(False):
            return None
        if schema_id == self._hybrid.event_schema_id and self._mount:
            data = dict(data)
            for name in ("path", "source_path"):
                if isinstance(data.get(name), str):
                    data[name] = join(self._mount, data[name].strip("/"))
        logged: dict[str, Any] | None = self._hybrid.event_logger.emit(
            schema_id=schema_id, data=data, timestamp_override=timestamp_override
        )
        return logged


class Mount(Protocol):
    """What the hybrid manager asks of a mount beyond its manager's contents API."""

    #: The mount's folder name in the root (``""``: the root manager).
    name: str
    #: Its contents manager (sync or async).
    cm: Any
    #: True when the manager accepts Jupyter's chunked saves (``chunk`` 1, 2, ..., -1).
    takes_chunks: bool

    async def download(self, rel: str) -> Download:
        """The file ``rel`` for ``/files/``; hidden files (unless allowed) are 404."""
        ...

    def read_pieces(self, rel: str, size: int) -> AsyncGenerator[bytes, None]:
        """The bytes of the file ``rel`` in pieces of exactly ``size`` (the last shorter)."""
        ...

    async def stored_files(self, rel: str) -> list[str] | None:
        """Every file stored under the folder ``rel`` (paths inside it), hidden or not,
        checkpoints excepted; None when only the listing can tell (trust it)."""
        ...

    async def abort_upload(self, rel: str, reason: str) -> bool:
        """Abort a chunked upload in progress to ``rel``; whether there was one."""
        ...

    async def kernel_path(self, rel: str, model: Any, server_root: str) -> str:
        """The API path (from the server's root) where a kernel of ``rel`` starts."""
        ...


class BucketMount:
    """A bucket of ours: streamed downloads and copies, its store's own file list, its
    chunked uploads aborted on failure (one multipart upload, never a half object)."""

    takes_chunks = True

    def __init__(self, name: str, cm: ObjectStoreContentsManager) -> None:
        self.name = name
        self.cm = cm

    async def download(self, rel: str) -> Download:
        return await self.cm.download(rel)

    async def read_pieces(self, rel: str, size: int) -> AsyncGenerator[bytes, None]:
        # One streamed GET, no HEAD first (``download`` would add a HEAD per file copied:
        # a copy's source was already asked for its type; a folder's files come from its
        # listing).
        stream = self.cm.stream(rel, size)
        buffer = bytearray()
        async with contextlib.aclosing(stream) as received:
            async for data in received:
                buffer += data
                while len(buffer) >= size:
                    with memoryview(buffer) as view:
                        piece = bytes(view[:size])
                    del buffer[:size]
                    yield piece
        if buffer:
            yield bytes(buffer)

    async def stored_files(self, rel: str) -> list[str] | None:
        return await self.cm.stored_files(rel)

    async def abort_upload(self, rel: str, reason: str) -> bool:
        return await self.cm.abort_upload(rel, reason)

    async def kernel_path(self, rel: str, model: Any, server_root: str) -> str:
        return await _kernel_path(self, rel, model)


async def _kernel_path(mount: Mount, rel: str, model: Any) -> str:
    """The manager's kernel path at the root mount; elsewhere the server's root (a
    kernel cannot start inside a bucket)."""
    kernel_path = str(await call(mount.cm.get_kernel_path, rel, model) or "")
    return kernel_path if not mount.name else ""


async def _check_visible(mount: Mount, rel: str) -> None:
    cm = mount.cm
    if not cm.allow_hidden and await call(cm.is_hidden, rel):
        raise NotFound("Not found", path=join(mount.name, rel))


class LocalMount:
    """A local folder (jupyter_server's file managers): files read from disk in pieces,
    checked against what the disk holds, kernels started in the notebook's folder."""

    def __init__(self, name: str, cm: Any, *, takes_chunks: bool) -> None:
        self.name = name
        self.cm = cm
        self.takes_chunks = takes_chunks

    def os_path(self, rel: str) -> str:
        """The file system path of ``rel``; 404 outside ``root_dir``, as the manager's
        own (private) ``_get_os_path`` answers."""
        root = os.path.abspath(self.cm.root_dir)
        if os.path.splitdrive(rel)[0]:
            raise NotFound(f"{rel} is not a relative API path", path=join(self.name, rel))
        os_path = to_os_path(ApiPath(rel), root)
        try:
            os.lstat(os_path)
        except OSError:
            pass  # a missing file is answered by the operation itself
        except ValueError as err:  # e.g. an embedded null byte
            raise NotFound(f"{rel} is not a valid path", path=join(self.name, rel)) from err
        # When root_dir is the file system's root, root + sep is no prefix of anything.
        if os.path.dirname(root) != root and not (
            os.path.abspath(os_path) + os.path.sep
        ).startswith(root + os.path.sep):
            raise NotFound(f"{rel} is outside root contents directory", path=join(self.name, rel))
        return os_path

    async def download(self, rel: str) -> Download:
        await _check_visible(self, rel)
        full = join(self.name, rel)
        os_path = self.os_path(rel)
        try:
            stat = await asyncio.to_thread(os.stat, os_path)
        except OSError as err:
            raise NotFound("Not found", path=full) from err
        if not stat_module.S_ISREG(stat.st_mode):
            raise NotFound("Not a file", path=full)

        def read(size: int) -> AsyncGenerator[bytes, None]:
            return _read_local(os_path, size)

        modified = datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)
        return Download(rel.rsplit("/", 1)[-1], stat.st_size, modified, None, read)

    async def read_pieces(self, rel: str, size: int) -> AsyncGenerator[bytes, None]:
        with await asyncio.to_thread(open, self.os_path(rel), "rb") as file:
            while piece := await asyncio.to_thread(file.read, size):
                yield piece

    async def stored_files(self, rel: str) -> list[str] | None:
        checkpoints = getattr(self.cm, "checkpoints", None)
        skip = getattr(checkpoints, "checkpoint_dir", ".ipynb_checkpoints")
        return await asyncio.to_thread(_local_files, self.os_path(rel), skip)

    async def abort_upload(self, rel: str, reason: str) -> bool:
        return False  # a chunked save writes the file itself: deleting it is the abort

    async def kernel_path(self, rel: str, model: Any, server_root: str) -> str:
        kernel_path = str(await call(self.cm.get_kernel_path, rel, model) or "")
        return _relative_api_path(self.os_path(kernel_path), server_root)


class OtherMount:
    """Any other manager: only its contents API (a file is read with one ``get``, saved
    with one ``save``; its listing is taken at its word)."""

    takes_chunks = False

    def __init__(self, name: str, cm: Any) -> None:
        self.name = name
        self.cm = cm

    async def download(self, rel: str) -> Download:
        await _check_visible(self, rel)
        cm = self.cm
        model = await call(cm.get, rel, type="file", content=False)

        async def read(size: int) -> AsyncGenerator[bytes, None]:
            full = await call(cm.get, rel, type="file", content=True)
            if full.get("format") == "base64":
                yield base64.b64decode(full["content"])
            else:
                yield str(full["content"]).encode("utf-8")

        name = rel.rsplit("/", 1)[-1]
        return Download(name, None, model.get("last_modified"), None, read)

    async def read_pieces(self, rel: str, size: int) -> AsyncGenerator[bytes, None]:
        model = await call(self.cm.get, rel, content=True, type="file", format="base64")
        data = base64.b64decode(model["content"])
        for start in range(0, len(data), size):
            yield data[start : start + size]

    async def stored_files(self, rel: str) -> list[str] | None:
        return None

    async def abort_upload(self, rel: str, reason: str) -> bool:
        return False

    async def kernel_path(self, rel: str, model: Any, server_root: str) -> str:
        return await _kernel_path(self, rel, model)


def make_mount(name: str, cm: Any) -> Mount:
    """The one place that tells the kinds of managers apart."""
    if isinstance(cm, ObjectStoreContentsManager):
        return BucketMount(name, cm)
    if isinstance(cm, FileManagerMixin):
        chunked = isinstance(cm, (LargeFileManager, AsyncLargeFileManager))
        return LocalMount(name, cm, takes_chunks=chunked)
    return OtherMount(name, cm)


@dataclass(frozen=True)
class Place:
    """Where an API path lives: its mount and the path inside it."""

    mount: Mount
    rel: str

    @property
    def name(self) -> str:
        """The mount's name."""
        return self.mount.name

    @property
    def cm(self) -> Any:
        """The mount's manager."""
        return self.mount.cm

    @property
    def full(self) -> str:
        """The API path from the root of the tree."""
        return join(self.mount.name, self.rel)

    def at(self, rel: str) -> Place:
        """Another path of the same mount."""
        return Place(self.mount, rel)

    def full_model(self, model: Any) -> Any:
        """``model`` (and the entries of its listing) with paths from the root of the tree."""
        mount = self.mount.name
        if not mount or not isinstance(model, dict):
            return model
        if isinstance(model.get("path"), str):
            rel = model["path"].strip("/")
            model["path"] = join(mount, rel)
            if not rel:
                model["name"] = mount
        content = model.get("content")
        if model.get("type") == "directory" and isinstance(content, list):
            for entry in content:
                self.full_model(entry)
        return model


async def _read_local(os_path: str, size: int) -> AsyncGenerator[bytes, None]:
    with await asyncio.to_thread(open, os_path, "rb") as file:
        while piece := await asyncio.to_thread(file.read, size):
            yield piece


def _relative_api_path(os_path: str, root: str) -> str:
    """``os_path`` as an API path relative to the local folder ``root``; ``""`` when it is
    ``root`` or lies outside it."""
    rel = os.path.relpath(os_path, os.path.abspath(root))
    if rel == "." or rel == ".." or rel.startswith(".." + os.sep):
        return ""
    return rel.replace(os.sep, "/")


def _local_files(root: str, skip_dir: str) -> list[str]:
    """Every file under the local folder ``root`` (paths relative to it, ``/``-separated),
    checkpoint folders excepted."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != skip_dir]
        rel = os.path.relpath(folder, root)
        for name in files:
            path = name if rel == "." else os.path.join(rel, name)
            found.append(path.replace(os.sep, "/"))
    return found
