"""Several contents managers side by side in one Jupyter tree (API layer).

:class:`HybridContentsManager` mounts contents managers on folder names of the root: the
root manager (mount ``""``) serves every path whose first name is not a mount, and each
mount serves the paths under its folder, e.g. local files at the root and a bucket under
``s3/``, or two buckets (or two prefixes of one bucket) under ``team/`` and ``me/``::

    c.ServerApp.contents_manager_class = HybridContentsManager
    c.HybridContentsManager.manager_classes = {"": LargeFileManager, "s3": S3ContentsManager}
    c.HybridContentsManager.manager_kwargs = {"": {"root_dir": "/data"}, "s3": {"bucket": "nb"}}

It is async and hosts sync managers (jupyter_server's ``FileContentsManager`` and
``LargeFileManager``, called directly as jupyter_server itself calls them: local disk) as
well as async ones (ours, ``AsyncFileContentsManager``...). Each mount keeps its own
checkpoints, hidden-file rules and events; the events reach the server's event logger once,
with full paths. Copies and renames between two mounts stream the data: files in pieces of
``cross_mount_chunk_size`` through the target's chunked-upload protocol, notebooks as models,
folders file by file; a rename deletes the source only once everything is copied.

PyPI's ``hybridcontents`` (the package the old s3contents README pointed to) is a sync
``ContentsManager`` that calls its managers without awaiting them; this package's managers
serve it with blocking calls (:mod:`s3contents.blocking`), which block the server's event loop
for each request: this manager is the async way, with the same settings.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import functools
import inspect
import os
import re
import stat as stat_module
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar, cast

from jupyter_events import EventLogger
from jupyter_server.services.contents.checkpoints import AsyncCheckpoints
from jupyter_server.services.contents.fileio import FileManagerMixin
from jupyter_server.services.contents.largefilemanager import (
    AsyncLargeFileManager,
    LargeFileManager,
)
from jupyter_server.services.contents.manager import AsyncContentsManager, ContentsManager
from tornado import web
from traitlets import Dict, Int, TraitError, Type, default, observe, validate

from . import models
from .contents import Download
from .errors import AlreadyExists, BadRequest, ContentsError, NotFound, to_http_error
from .manager import ObjectStoreContentsManager
from .paths import is_hidden_path, matches_globs, normalize_api_path, split_api

__all__ = ["HybridCheckpoints", "HybridContentsManager"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_COPY_PAT = re.compile(r"\-Copy\d*\.")
#: Settings of the hybrid manager that every mount inherits unless its kwargs set them.
_INHERITED = ("allow_hidden", "hide_globs")
#: True while a cross-mount copy or rename runs: the mounts' own events (the save, get and
#: delete it is made of) are not passed on; the hybrid manager emits one copy or rename.
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("s3contents_hybrid_quiet")


async def _call(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a sync or async manager method; await the result when it is awaitable."""
    result = func(*args, **kwargs)
    if inspect.isawaitable(result):
        result = await result
    return result


def _api(func: F) -> F:
    """Turn the package's errors into tornado ``HTTPError`` at the API boundary."""

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await func(*args, **kwargs)
        except ContentsError as err:
            raise to_http_error(err) from None

    return cast(F, wrapper)


def _join(mount: str, rel: str) -> str:
    """The full API path of ``rel`` inside ``mount`` (either may be ``""``)."""
    return "/".join(p for p in (mount, rel) if p)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def _clean(path: Any) -> str:
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
        raise TraitError(f"Invalid mount name {name!r}: {err}") from None
    if "/" in normal:
        raise TraitError(
            f"Invalid mount name {name!r}: a mount is one folder name of the root; nested "
            "mounts are not supported (mount it at the root under its own name instead)"
        )
    return normal


@dataclass(frozen=True)
class _Place:
    """Where an API path lives: mount name, that mount's manager, the path inside it."""

    mount: str
    cm: Any
    rel: str

    @property
    def full(self) -> str:
        return _join(self.mount, self.rel)

    def at(self, rel: str) -> _Place:
        return _Place(self.mount, self.cm, rel)


class _MountEvents(EventLogger):
    """Event logger of one mount's manager: passes its contents events on to the hybrid
    manager's logger (the server's) with the mount's name put in front of the paths, except
    during a cross-mount copy or rename, which emits its own single event."""

    def __init__(self, hybrid: HybridContentsManager, mount: str) -> None:
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
                    data[name] = _join(self._mount, data[name].strip("/"))
        logged: dict[str, Any] | None = self._hybrid.event_logger.emit(
            schema_id=schema_id, data=data, timestamp_override=timestamp_override
        )
        return logged


class HybridContentsManager(AsyncContentsManager):
    """Contents managers mounted side by side: a root manager and managers on folder names."""

    manager_classes = Dict(
        config=True,
        help="""Mount name -> contents manager class (or its import string). The name ""
        is the root: its manager serves every path whose first name is not a mount. Any
        other name is a folder of the root served by its manager, e.g.
        ``{"": LargeFileManager, "s3": S3ContentsManager}``. Mounts are single folder names
        (no nested mounts); a root entry with a mount's name is hidden by the mount. Sync
        and async managers both work. Required.""",
    )

    manager_kwargs = Dict(
        config=True,
        help="""Mount name -> keyword arguments of that mount's manager, e.g.
        ``{"s3": {"bucket": "notebooks", "prefix": "me"}, "": {"root_dir": "/data"}}``.
        Every manager is made with ``parent=`` this manager, so configuration sections
        (``c.S3ContentsManager...``) apply too; these arguments win over them. The hybrid
        manager's ``allow_hidden`` and ``hide_globs`` are passed on to every mount that
        does not set them here. Default: {}.""",
    )

    cross_mount_chunk_size = Int(
        1024 * 1024,
        config=True,
        help="""Bytes read and written at a time when a file is copied or moved from one
        mount to another: a larger file goes through the target's chunked-upload protocol
        (ours, LargeFileManager's), so a copy holds a few pieces in memory, not the file.
        JupyterLab uploads in 1 MiB chunks too; our managers gather them into multipart
        parts of their ``upload_part_size``. At least 64 KiB. Default: 1 MiB.""",
    )

    @validate("cross_mount_chunk_size")
    def _validate_chunk_size(self, proposal: Any) -> int:
        value = int(proposal["value"])
        if value < 64 * 1024:
            raise TraitError("cross_mount_chunk_size must be at least 64 KiB")
        return value

    files_handler_class = Type(  # type: ignore[assignment]
        default_value="s3contents.handlers.StreamingFilesHandler",
        klass="tornado.web.RequestHandler",
        allow_none=True,
        config=True,
        help="""Handler of /files/ downloads: each path is served by its mount, streamed
        from the bucket or from local disk.""",
    )

    @validate("manager_classes")
    def _validate_manager_classes(self, proposal: Any) -> dict[str, type]:
        classes: dict[str, type] = {}
        for name, cls in dict(proposal["value"]).items():
            mount = mount_name(name)
            if isinstance(cls, str):
                from jupyter_server.utils import import_item

                cls = import_item(cls)
            if not (isinstance(cls, type) and issubclass(cls, ContentsManager)):
                raise TraitError(f"manager_classes[{name!r}] is not a ContentsManager class")
            if mount in classes:
                raise TraitError(f"Mount {mount!r} is given twice in manager_classes")
            classes[mount] = cls
        return classes

    @validate("manager_kwargs")
    def _validate_manager_kwargs(self, proposal: Any) -> dict[str, dict[str, Any]]:
        kwargs: dict[str, dict[str, Any]] = {}
        for name, values in dict(proposal["value"]).items():
            if not isinstance(values, dict):
                raise TraitError(f"manager_kwargs[{name!r}] must be a dict")
            kwargs[mount_name(name)] = dict(values)
        return kwargs

    @default("root_dir")
    def _default_root_dir(self) -> str:
        # The server's: local mounts without a root_dir of their own serve it, and kernels
        # start relative to it.
        return str(getattr(self.parent, "root_dir", "") or os.getcwd())

    @validate("preferred_dir")
    def _validate_preferred_dir(self, proposal: Any) -> str:
        """Only normalised while the configuration loads: a bucket is not asked yet."""
        try:
            value = _clean(str(proposal["value"]))
        except ContentsError as err:
            raise TraitError(f"preferred_dir: {err}") from None
        if self.parent is not None and value:
            with contextlib.suppress(TraitError, AttributeError):
                self.parent.preferred_dir = os.path.join(self.root_dir, *value.split("/"))
        return value

    @default("checkpoints_class")
    def _default_checkpoints_class(self) -> type:
        return HybridCheckpoints

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.manager_classes:
            raise TraitError(
                "HybridContentsManager.manager_classes is empty: map at least one mount "
                '("" for the root) to a contents manager class'
            )
        unknown = sorted(set(self.manager_kwargs) - set(self.manager_classes))
        if unknown:
            raise TraitError(f"manager_kwargs names mounts that manager_classes lacks: {unknown}")
        self._inherits: dict[str, set[str]] = {}
        managers: dict[str, Any] = {}
        for mount, cls in self.manager_classes.items():
            mount_kwargs = dict(self.manager_kwargs.get(mount, {}))
            self._inherits[mount] = {n for n in _INHERITED if n not in mount_kwargs}
            for name in self._inherits[mount]:
                value = getattr(self, name)
                mount_kwargs[name] = list(value) if isinstance(value, list) else value
            mount_kwargs.setdefault("event_logger", _MountEvents(self, mount))
            managers[mount] = cls(parent=self, log=self.log, **mount_kwargs)
        self._managers = managers

    @observe(*_INHERITED)
    def _pass_on(self, change: Any) -> None:
        for mount, cm in getattr(self, "_managers", {}).items():
            if change["name"] in self._inherits.get(mount, ()):
                new = change["new"]
                setattr(cm, change["name"], list(new) if isinstance(new, list) else new)

    # -- mounts ---------------------------------------------------------------------------
    @property
    def managers(self) -> dict[str, Any]:
        """Mount name -> its contents manager (``""``: the root manager, when there is one)."""
        return dict(self._managers)

    @property
    def root_manager(self) -> Any:
        """The manager of the root (mount ``""``), or None."""
        return self._managers.get("")

    def _mounts(self) -> list[str]:
        return sorted(m for m in self._managers if m)

    def _place(self, path: Any) -> _Place:
        api_path = _clean(path)
        first, _, rest = api_path.partition("/")
        if first and first in self._managers:
            return _Place(first, self._managers[first], rest)
        root = self._managers.get("")
        if root is None:
            raise NotFound(
                f"No such file or directory: {api_path} (only {', '.join(self._mounts())} "
                "are served)",
                path=api_path,
            )
        return _Place("", root, api_path)

    def mount_of(self, path: str) -> tuple[str, Any, str]:
        """(mount name, its manager, path inside it) of the API path ``path``.

        Raises :class:`~s3contents.errors.NotFound` when no manager serves it.
        """
        place = self._place(path)
        return place.mount, place.cm, place.rel

    def _is_mount_point(self, place: _Place) -> bool:
        return bool(place.mount) and not place.rel

    def _full(self, place: _Place, model: Any) -> Any:
        """``model`` (and the entries of its listing) with paths from the root of the tree."""
        if not place.mount or not isinstance(model, dict):
            return model
        if isinstance(model.get("path"), str):
            rel = model["path"].strip("/")
            model["path"] = _join(place.mount, rel)
            if not rel:
                model["name"] = place.mount
        content = model.get("content")
        if model.get("type") == "directory" and isinstance(content, list):
            for entry in content:
                self._full(place, entry)
        return model

    def _mount_entry(self, mount: str) -> dict[str, Any]:
        return models.directory_model(mount, None)

    def _listed(self, name: str) -> bool:
        if not self.allow_hidden and name.startswith("."):
            return False
        return not matches_globs(name, list(self.hide_globs))

    # -- existence ------------------------------------------------------------------------
    async def _exists(self, path: str, method: str, *, root: bool, mount_point: bool) -> bool:
        """Ask the mount's manager ``method(rel)``; the root and a mount point are folders."""
        api_path = _clean(path)
        if not api_path:
            return root
        try:
            place = self._place(api_path)
        except NotFound:
            return False
        if self._is_mount_point(place):
            return mount_point
        return bool(await _call(getattr(place.cm, method), place.rel))

    @_api
    async def dir_exists(self, path: str) -> bool:
        return await self._exists(path, "dir_exists", root=True, mount_point=True)

    @_api
    async def file_exists(self, path: str = "") -> bool:
        return await self._exists(path, "file_exists", root=False, mount_point=False)

    @_api
    async def exists(self, path: str) -> bool:
        return await self._exists(path, "exists", root=True, mount_point=True)

    async def is_hidden(self, path: str) -> bool:
        try:
            place = self._place(path)
        except ContentsError:
            return False  # the operation itself answers (404)
        if self._is_mount_point(place):
            return is_hidden_path(place.mount)
        if not place.rel:
            return False
        return bool(await _call(place.cm.is_hidden, place.rel))

    # -- get ------------------------------------------------------------------------------
    @_api
    async def get(
        self,
        path: str,
        content: bool = True,
        type: str | None = None,
        format: str | None = None,
        require_hash: bool = False,
    ) -> dict[str, Any]:
        """The model at ``path``, from the manager of its mount (the root: the root
        manager's listing with the mount points added as folders)."""
        api_path = _clean(path)
        if not api_path:
            return await self._get_root(content, type, format, require_hash)
        place = self._place(api_path)
        kwargs: dict[str, Any] = {"content": content, "type": type, "format": format}
        if require_hash:
            # Passed only when asked: a manager older than jupyter_server 2.11 then fails
            # with TypeError, and jupyter_server's handler retries without it.
            kwargs["require_hash"] = True
        model = await _call(place.cm.get, place.rel, **kwargs)
        return cast(dict[str, Any], self._full(place, model))

    async def _get_root(
        self, content: bool, type_: str | None, fmt: str | None, require_hash: bool
    ) -> dict[str, Any]:
        if type_ in ("file", "notebook"):
            raise BadRequest(f"The root is a directory, not a {type_}", path="")
        root = self._managers.get("")
        if root is None:
            model = models.directory_model("", models.UNKNOWN_TIME, [] if content else None)
            self.emit(data={"action": "get", "path": ""})
        else:
            kwargs: dict[str, Any] = {"content": content, "type": type_, "format": fmt}
            if require_hash:
                kwargs["require_hash"] = True
            model = await _call(root.get, "", **kwargs)
        if content and isinstance(model.get("content"), list):
            mounts = [m for m in self._mounts() if self._listed(m)]
            model["content"] = [e for e in model["content"] if e.get("name") not in mounts]
            model["content"].extend(self._mount_entry(m) for m in mounts)
        return cast(dict[str, Any], model)

    # -- save / new -----------------------------------------------------------------------
    def _writable_place(self, path: Any, model: Any) -> _Place | None:
        """The place to write ``model`` to; None for a folder saved onto a mount point."""
        place = self._place(path)
        if self._is_mount_point(place):
            if isinstance(model, dict) and model.get("type") == "directory":
                return None
            raise BadRequest(f"{place.mount} is a mount point, a folder", path=place.mount)
        return place

    @_api
    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        """Save through the mount's manager (chunks of an upload included)."""
        place = self._writable_place(path, model)
        if place is None:
            return await self.get(path, content=False)
        saved = await _call(place.cm.save, model, place.rel)
        return cast(dict[str, Any], self._full(place, saved))

    @_api
    async def new(self, model: dict[str, Any] | None = None, path: str = "") -> dict[str, Any]:
        place = self._writable_place(path, model)
        if place is None:
            return await self.get(path, content=False)
        saved = await _call(place.cm.new, model, place.rel)
        return cast(dict[str, Any], self._full(place, saved))

    @_api
    async def new_untitled(self, path: str = "", type: str = "", ext: str = "") -> dict[str, Any]:
        place = self._place(path)
        saved = await _call(place.cm.new_untitled, path=place.rel, type=type, ext=ext)
        return cast(dict[str, Any], self._full(place, saved))

    @_api
    async def increment_filename(self, filename: str, path: str = "", insert: str = "") -> str:
        place = self._place(path)
        return cast(str, await _call(place.cm.increment_filename, filename, place.rel, insert))

    # -- delete ---------------------------------------------------------------------------
    def _deletable_place(self, path: Any) -> _Place:
        api_path = _clean(path)
        if not api_path:
            raise BadRequest("Can't delete root", path=api_path)
        place = self._place(api_path)
        if self._is_mount_point(place):
            raise BadRequest(f"Cannot delete the mount point {place.mount}", path=place.mount)
        return place

    @_api
    async def delete_file(self, path: str) -> None:
        place = self._deletable_place(path)
        await _call(place.cm.delete_file, place.rel)

    @_api
    async def delete(self, path: str) -> None:
        """Delete through the mount's manager (which deletes the checkpoints and emits)."""
        place = self._deletable_place(path)
        await _call(place.cm.delete, place.rel)

    # -- rename ---------------------------------------------------------------------------
    def _rename_places(self, old_path: Any, new_path: Any) -> tuple[_Place, _Place]:
        old, new = _clean(old_path), _clean(new_path)
        if not old or not new:
            raise BadRequest("Cannot rename the root folder", path=old)
        src, dst = self._place(old), self._place(new)
        for place, what in ((src, "rename"), (dst, "rename onto")):
            if self._is_mount_point(place):
                raise BadRequest(f"Cannot {what} the mount point {place.mount}", path=place.mount)
        return src, dst

    @_api
    async def rename_file(self, old_path: str, new_path: str) -> None:
        src, dst = self._rename_places(old_path, new_path)
        if src.mount == dst.mount:
            await _call(src.cm.rename_file, src.rel, dst.rel)
            return
        with _quiet():
            await self._move(src, dst)

    @_api
    async def rename(self, old_path: str, new_path: str) -> None:
        """Rename within a mount (its manager moves the checkpoints and emits), or move to
        another mount: copy, then delete the source (one ``rename`` event)."""
        src, dst = self._rename_places(old_path, new_path)
        if src.mount == dst.mount:
            await _call(src.cm.rename, src.rel, dst.rel)
            return
        with _quiet():
            await self._move(src, dst)
        self.emit(data={"action": "rename", "path": dst.full, "source_path": src.full})

    @_api
    async def update(self, model: dict[str, Any], path: str) -> dict[str, Any]:
        api_path = _clean(path)
        if not isinstance(model, dict):
            raise BadRequest("The model must be a JSON object", path=api_path)
        new_path = _clean(model.get("path", api_path))
        if new_path != api_path:
            await self.rename(api_path, new_path)
        return await self.get(new_path, content=False)

    # -- copy -----------------------------------------------------------------------------
    @_api
    async def copy(self, from_path: str, to_path: str | None = None) -> dict[str, Any]:
        """Copy within a mount (its manager's copy), or from one mount to another (streamed,
        never replacing an existing file: 409)."""
        src = self._place(from_path)
        if not src.full:
            raise BadRequest("Cannot copy the root folder", path="")
        dst = src.at(split_api(src.rel)[0]) if to_path is None else self._place(to_path)
        if src.mount == dst.mount:
            if self._is_mount_point(src):
                raise BadRequest(f"Cannot copy {src.mount} into itself", path=src.mount)
            rel_to = None if to_path is None else dst.rel
            copied = await _call(src.cm.copy, src.rel, rel_to)
            return cast(dict[str, Any], self._full(src, copied))
        with _quiet():
            copied = await self._copy_across(src, dst)
        self.emit(data={"action": "copy", "path": copied["path"], "source_path": src.full})
        return copied

    async def _copy_across(self, src: _Place, dst: _Place) -> dict[str, Any]:
        """Copy ``src`` into the folder ``dst`` (under a free name, as Jupyter's copy does),
        or to the new path ``dst`` when it is no folder (its parent must exist)."""
        src_model = await _call(src.cm.get, src.rel, content=False)
        name = src.full.rsplit("/", 1)[-1]
        if await self._is_dir(dst):
            target = dst.at(await self._free_name(dst, _COPY_PAT.sub(".", name)))
        else:
            await self._check_new(dst)
            target = dst
        saved = await self._transfer(src, target, src_model["type"])
        return cast(dict[str, Any], self._full(target, saved))

    async def _is_dir(self, place: _Place) -> bool:
        return not place.rel or bool(await _call(place.cm.dir_exists, place.rel))

    async def _check_new(self, place: _Place) -> None:
        """``place`` is free and its parent folder exists (404 / 409 otherwise)."""
        parent = place.at(split_api(place.rel)[0])
        if not await self._is_dir(parent):
            raise NotFound(f"No such parent directory: {parent.full}", path=parent.full)
        if await _call(place.cm.exists, place.rel):
            raise AlreadyExists(f"File already exists: {place.full}", path=place.full)

    async def _free_name(self, folder: _Place, filename: str) -> str:
        """``filename``, or the first free ``name-CopyN.ext`` in ``folder`` (Jupyter's rule:
        the number goes before the last dot of a notebook, before the first dot otherwise)."""
        basename, dot, ext = filename.rpartition(".")
        if ext != "ipynb":
            basename, dot, ext = filename.partition(".")
        for i in range(10_000):
            name = f"{basename}-Copy{i}{dot}{ext}" if i else filename
            rel = _join(folder.rel, name)
            if not await _call(folder.cm.exists, rel):
                return rel
        raise AlreadyExists(f"No free name for {filename} in {folder.full}", path=folder.full)

    # -- moving data between mounts -------------------------------------------------------
    async def _move(self, src: _Place, dst: _Place) -> None:
        """Move ``src`` to the new path ``dst`` of another mount: copy, then delete the
        source. A folder holding files its listing hides (hidden files, ``hide_globs``)
        is refused first: they could not be copied and would go with the source."""
        await self._check_new(dst)
        src_model = await _call(src.cm.get, src.rel, content=False)
        plan = None
        if src_model["type"] == "directory":
            plan = await self._plan(src)
            listed = {rel for rel, kind in plan if kind != "directory"}
            unlisted = await self._unlisted_files(src, listed)
            if unlisted:
                shown = ", ".join(unlisted[:3]) + (", ..." if len(unlisted) > 3 else "")
                raise BadRequest(
                    f"Cannot move {src.full} to another mount: {len(unlisted)} file(s) in it "
                    f"are hidden from listings and could not be moved ({shown})",
                    path=src.full,
                )
        await self._transfer(src, dst, src_model["type"], plan)
        try:
            await _call(src.cm.delete, src.rel)
        except BaseException:
            # The source stays whole (its manager refused, e.g. a local folder that is not
            # empty with delete_to_trash off): the copy goes, nothing is half-moved.
            await self._abandon(dst)
            raise

    async def _transfer(
        self,
        src: _Place,
        dst: _Place,
        kind: str,
        plan: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Write ``src`` (of type ``kind``) to the new path ``dst``; returns the manager's
        model of ``dst``. A folder made here is removed again if the copy fails half-way."""
        if kind != "directory":
            return await self._transfer_file(src, dst, kind)
        if plan is None:
            plan = await self._plan(src)
        await _call(dst.cm.new, {"type": "directory"}, dst.rel)
        try:
            for rel, entry_kind in plan:
                s, d = src.at(_join(src.rel, rel)), dst.at(_join(dst.rel, rel))
                if entry_kind == "directory":
                    await _call(d.cm.new, {"type": "directory"}, d.rel)
                else:
                    await self._transfer_file(s, d, entry_kind)
            return cast(dict[str, Any], await _call(dst.cm.get, dst.rel, content=False))
        except BaseException:
            await self._abandon(dst)
            raise

    async def _plan(self, src: _Place) -> list[tuple[str, str]]:
        """Every entry the folder ``src`` lists, recursively, as (path inside it, type);
        a folder comes before what it holds."""
        plan: list[tuple[str, str]] = []
        todo = [""]
        while todo:
            sub = todo.pop()
            listing = await _call(src.cm.get, _join(src.rel, sub), content=True, type="directory")
            for entry in listing.get("content") or ():
                rel = _join(sub, entry["name"])
                plan.append((rel, entry["type"]))
                if entry["type"] == "directory":
                    todo.append(rel)
        return plan

    async def _unlisted_files(self, src: _Place, listed: set[str]) -> list[str]:
        """Files in the folder ``src`` that ``listed`` lacks, from the store itself (a
        bucket's keys, a local folder's files; checkpoints and folder markers excepted).
        Managers of other kinds are taken at their listing's word."""
        cm = src.cm
        found: list[str] = []
        if isinstance(cm, ObjectStoreContentsManager):
            base = cm.keys.dir_prefix(src.rel)
            try:
                async for obj in cm.storage.list_all(base):
                    if obj.key.endswith(cm.keys.delimiter):
                        continue
                    api_path = cm.keys.api_path(obj.key)
                    if not cm.keys.is_reserved(api_path):
                        found.append(api_path[len(src.rel) + 1 :] if src.rel else api_path)
            except ContentsError as err:
                raise to_http_error(err) from None
        elif isinstance(cm, FileManagerMixin):
            checkpoints = getattr(cm, "checkpoints", None)
            skip = getattr(checkpoints, "checkpoint_dir", ".ipynb_checkpoints")
            found = await asyncio.to_thread(_local_files, cm._get_os_path(src.rel), skip)
        return sorted(set(found) - listed)

    async def _transfer_file(self, src: _Place, dst: _Place, kind: str) -> dict[str, Any]:
        if kind == "notebook":
            model = await _call(src.cm.get, src.rel, content=True, type="notebook")
            saved = await _call(
                dst.cm.new,
                {"type": "notebook", "format": "json", "content": model["content"]},
                dst.rel,
            )
            return cast(dict[str, Any], saved)
        pieces = self._read_pieces(src)
        try:
            current = await _next_piece(pieces)
            following = await _next_piece(pieces)
            if following is not None and not _takes_chunks(dst.cm):
                # No chunked protocol: the whole file in one save (a generic manager).
                rest = [current or b"", following]
                while (piece := await _next_piece(pieces)) is not None:
                    rest.append(piece)
                current, following = b"".join(rest), None
            if following is None:
                saved = await _call(dst.cm.new, _file_model(current or b""), dst.rel)
                return cast(dict[str, Any], saved)
            number = 1
            try:
                while True:
                    last = following is None
                    chunk = _file_model(current or b"")
                    chunk["chunk"] = -1 if last else number
                    saved = await _call(dst.cm.save, chunk, dst.rel)
                    if last:
                        return cast(dict[str, Any], saved)
                    current, following = following, await _next_piece(pieces)
                    number += 1
            except BaseException:
                if number > 1:  # an upload of ours is under way at dst
                    await self._abandon(dst)
                raise
        finally:
            await pieces.aclose()

    async def _read_pieces(self, src: _Place) -> AsyncGenerator[bytes, None]:
        """The bytes of the file ``src`` in pieces of ``cross_mount_chunk_size``: streamed
        from the bucket, read from local disk, or (other managers) one ``get``."""
        size = self.cross_mount_chunk_size
        cm = src.cm
        if isinstance(cm, ObjectStoreContentsManager):
            stream: Any = cm.storage.stream(cm.keys.key(src.rel), size)
            buffer = bytearray()
            try:
                async with contextlib.aclosing(stream) as received:
                    async for data in received:
                        buffer += data
                        while len(buffer) >= size:
                            with memoryview(buffer) as view:
                                piece = bytes(view[:size])
                            del buffer[:size]
                            yield piece
            except ContentsError as err:
                raise to_http_error(err) from None
            if buffer:
                yield bytes(buffer)
        elif isinstance(cm, FileManagerMixin):
            with await asyncio.to_thread(open, cm._get_os_path(src.rel), "rb") as file:
                while piece := await asyncio.to_thread(file.read, size):
                    yield piece
        else:
            model = await _call(cm.get, src.rel, content=True, type="file", format="base64")
            data = base64.b64decode(model["content"])
            for start in range(0, len(data), size):
                yield data[start : start + size]

    async def _abandon(self, dst: _Place) -> None:
        """Remove what a failed transfer wrote at ``dst`` (best effort, logged): a chunked
        upload of ours is aborted (its object never appeared), anything else deleted."""
        cm = dst.cm
        try:
            with _quiet():
                if isinstance(cm, ObjectStoreContentsManager) and cm._uploads is not None:
                    key = cm.keys.key(dst.rel)
                    if await cm.uploads.abort(key, "copy between mounts failed"):
                        return
                if await _call(cm.exists, dst.rel):
                    await _call(cm.delete, dst.rel)
        except Exception:
            self.log.warning("Could not remove the partial copy at %s", dst.full, exc_info=True)

    # -- /files/ --------------------------------------------------------------------------
    @_api
    async def download(self, path: str) -> Download:
        """The file at ``path`` for ``/files/``, from its mount: streamed from the bucket
        (our managers), read from local disk in pieces (jupyter_server's file managers), or
        through ``get`` (any other manager)."""
        place = self._place(path)
        if not place.rel:
            raise NotFound("Not a file", path=place.full)
        cm = place.cm
        if isinstance(cm, ObjectStoreContentsManager):
            return await cm.download(place.rel)
        if not cm.allow_hidden and await _call(cm.is_hidden, place.rel):
            raise NotFound("Not found", path=place.full)
        name = place.rel.rsplit("/", 1)[-1]
        if isinstance(cm, FileManagerMixin):
            os_path = cm._get_os_path(place.rel)
            try:
                stat = await asyncio.to_thread(os.stat, os_path)
            except OSError:
                raise NotFound("Not found", path=place.full) from None
            if not stat_module.S_ISREG(stat.st_mode):
                raise NotFound("Not a file", path=place.full)

            async def read_local(size: int) -> AsyncIterator[bytes]:
                with await asyncio.to_thread(open, os_path, "rb") as file:
                    while piece := await asyncio.to_thread(file.read, size):
                        yield piece

            modified = datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)
            return Download(name, stat.st_size, modified, None, read_local)
        model = await _call(cm.get, place.rel, type="file", content=False)

        async def read_model(size: int) -> AsyncIterator[bytes]:
            full = await _call(cm.get, place.rel, type="file", content=True)
            if full.get("format") == "base64":
                yield base64.b64decode(full["content"])
            else:
                yield str(full["content"]).encode("utf-8")

        return Download(name, None, model.get("last_modified"), None, read_model)

    # -- trust, kernels, checkpoints ------------------------------------------------------
    @_api
    async def trust_notebook(self, path: str) -> None:
        place = self._place(path)
        await _call(place.cm.trust_notebook, place.rel)

    @_api
    async def resolve_path(self, path: str) -> str | None:
        place = self._place(path)
        resolve = getattr(place.cm, "resolve_path", None)
        return None if resolve is None else cast("str | None", await _call(resolve, place.rel))

    async def get_kernel_path(self, path: str, model: Any = None) -> str:
        """Kernels start in the local folder of a notebook on a local mount (relative to the
        server's root, when it lies inside it), else in the server's root."""
        try:
            place = self._place(path)
        except ContentsError:
            return ""
        kernel_path = str(await _call(place.cm.get_kernel_path, place.rel, model) or "")
        if isinstance(place.cm, FileManagerMixin):
            return _relative_api_path(place.cm._get_os_path(kernel_path), self.root_dir)
        return kernel_path if not place.mount else ""

    def _file_place(self, path: Any) -> _Place:
        place = self._place(path)
        if not place.rel:
            raise NotFound(f"{place.full or 'The root'} is a folder: no checkpoints", path=path)
        return place

    @_api
    async def create_checkpoint(self, path: str) -> dict[str, Any]:
        place = self._file_place(path)
        return cast(dict[str, Any], await _call(place.cm.create_checkpoint, place.rel))

    @_api
    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        place = self._file_place(path)
        return cast(list[dict[str, Any]], await _call(place.cm.list_checkpoints, place.rel))

    @_api
    async def restore_checkpoint(self, checkpoint_id: str, path: str) -> None:
        place = self._file_place(path)
        await _call(place.cm.restore_checkpoint, checkpoint_id, place.rel)

    @_api
    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        place = self._file_place(path)
        await _call(place.cm.delete_checkpoint, checkpoint_id, place.rel)

    # -- server ---------------------------------------------------------------------------
    def info_string(self) -> str:
        lines = []
        for mount in ["", *self._mounts()]:
            cm = self._managers.get(mount)
            if cm is not None:
                lines.append(f"/{mount}: {cm.info_string()}")
        return "Serving contents from mounts: " + "; ".join(lines)

    async def close(self) -> None:
        """Close every mount's manager that can be closed (ours: their connections)."""
        for cm in self._managers.values():
            close = getattr(cm, "close", None)
            if close is not None:
                await _call(close)


class HybridCheckpoints(AsyncCheckpoints):
    """The checkpoints of a :class:`HybridContentsManager`: each call goes to the
    checkpoints of the mount that holds the file (a mount keeps its own checkpoints)."""

    @property
    def hybrid(self) -> HybridContentsManager:
        return cast(HybridContentsManager, self.parent)

    def _place(self, path: str) -> _Place:
        try:
            return self.hybrid._file_place(path)
        except ContentsError as err:
            raise to_http_error(err) from None

    async def create_checkpoint(self, contents_mgr: Any, path: str) -> dict[str, Any]:
        p = self._place(path)
        return cast(dict[str, Any], await _call(p.cm.checkpoints.create_checkpoint, p.cm, p.rel))

    async def restore_checkpoint(self, contents_mgr: Any, checkpoint_id: str, path: str) -> None:
        p = self._place(path)
        await _call(p.cm.checkpoints.restore_checkpoint, p.cm, checkpoint_id, p.rel)

    async def rename_checkpoint(self, checkpoint_id: str, old_path: str, new_path: str) -> None:
        old, new = self._place(old_path), self._place(new_path)
        if old.mount != new.mount:
            raise web.HTTPError(400, "Checkpoints do not move between mounts")
        await _call(old.cm.checkpoints.rename_checkpoint, checkpoint_id, old.rel, new.rel)

    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        p = self._place(path)
        await _call(p.cm.checkpoints.delete_checkpoint, checkpoint_id, p.rel)

    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        p = self._place(path)
        return cast(list[dict[str, Any]], await _call(p.cm.checkpoints.list_checkpoints, p.rel))

    async def rename_all_checkpoints(self, old_path: str, new_path: str) -> None:
        old, new = self._place(old_path), self._place(new_path)
        if old.mount == new.mount:
            await _call(old.cm.checkpoints.rename_all_checkpoints, old.rel, new.rel)
        # Between mounts, the move deleted the source with its checkpoints.

    async def delete_all_checkpoints(self, path: str) -> None:
        p = self._place(path)
        await _call(p.cm.checkpoints.delete_all_checkpoints, p.rel)


# --------------------------------------------------------------------------- helpers


def _file_model(data: bytes) -> dict[str, Any]:
    return {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}


def _takes_chunks(cm: Any) -> bool:
    """Managers known to accept Jupyter's chunked saves (``chunk`` 1, 2, ..., -1)."""
    return isinstance(cm, (ObjectStoreContentsManager, LargeFileManager, AsyncLargeFileManager))


async def _next_piece(pieces: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await pieces.__anext__()
    except StopAsyncIteration:
        return None


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
