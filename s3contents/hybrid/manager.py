"""The contents API of the hybrid manager (API layer, on :mod:`s3contents.hybrid.mounts`
and :mod:`s3contents.hybrid.transfer`).

:class:`HybridContentsManager` answers each request through the manager of the mount that
holds the path, with the mount's name taken off the paths going in and put back on the
models coming out; the root adds the mount points to its listing, and copies and renames
between mounts go to :class:`~s3contents.hybrid.transfer.Transfer`. What differs between
kinds of managers is asked of the mounts, never of the managers' classes.
:class:`HybridCheckpoints` sends each checkpoint call to the checkpoints of its mount. The
package's errors become HTTP errors at each public method (:func:`s3contents.errors.http_errors`).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, cast

from jupyter_server.services.contents.checkpoints import (
    AsyncCheckpoints,
    AsyncGenericCheckpointsMixin,
    GenericCheckpointsMixin,
)
from jupyter_server.services.contents.manager import AsyncContentsManager, ContentsManager
from traitlets import Dict, Int, TraitError, Type, default, observe, validate

from .. import models
from ..contents import Download, call, preferred_dir
from ..errors import BadRequest, ContentsError, NotFound, http_errors
from ..paths import is_hidden_path, matches_globs, split_api
from .mounts import Mount, MountEvents, Place, clean, make_mount, mount_name, quiet
from .transfer import Transfer

__all__ = ["HybridCheckpoints", "HybridContentsManager"]

#: Settings of the hybrid manager that every mount inherits unless its kwargs set them.
_INHERITED = ("allow_hidden", "hide_globs")


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
        return preferred_dir(self, proposal["value"], clean)

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
        mounts: dict[str, Mount] = {}
        for mount, cls in self.manager_classes.items():
            mount_kwargs = dict(self.manager_kwargs.get(mount, {}))
            self._inherits[mount] = {n for n in _INHERITED if n not in mount_kwargs}
            for name in self._inherits[mount]:
                value = getattr(self, name)
                mount_kwargs[name] = list(value) if isinstance(value, list) else value
            mount_kwargs.setdefault("event_logger", MountEvents(self, mount))
            mounts[mount] = make_mount(mount, cls(parent=self, log=self.log, **mount_kwargs))
        self._mounts = mounts

    @observe(*_INHERITED)
    def _pass_on(self, change: Any) -> None:
        for name, mount in getattr(self, "_mounts", {}).items():
            if change["name"] in self._inherits.get(name, ()):
                new = change["new"]
                setattr(mount.cm, change["name"], list(new) if isinstance(new, list) else new)

    # -- mounts ---------------------------------------------------------------------------
    @property
    def managers(self) -> dict[str, Any]:
        """Mount name -> its contents manager (``""``: the root manager, when there is one)."""
        return {name: mount.cm for name, mount in self._mounts.items()}

    def _mount_names(self) -> list[str]:
        return sorted(m for m in self._mounts if m)

    def _place(self, path: Any) -> Place:
        api_path = clean(path)
        first, _, rest = api_path.partition("/")
        if first and first in self._mounts:
            return Place(self._mounts[first], rest)
        root = self._mounts.get("")
        if root is None:
            raise NotFound(
                f"No such file or directory: {api_path} (only {', '.join(self._mount_names())} "
                "are served)",
                path=api_path,
            )
        return Place(root, api_path)

    def mount_of(self, path: str) -> tuple[str, Any, str]:
        """(mount name, its manager, path inside it) of the API path ``path``.

        Raises :class:`~s3contents.errors.NotFound` when no manager serves it.
        """
        place = self._place(path)
        return place.name, place.cm, place.rel

    def _is_mount_point(self, place: Place) -> bool:
        return bool(place.name) and not place.rel

    def _mount_entry(self, mount: str) -> dict[str, Any]:
        return models.directory_model(mount, None)

    def _listed(self, name: str) -> bool:
        if not self.allow_hidden and name.startswith("."):
            return False
        return not matches_globs(name, list(self.hide_globs))

    # -- existence ------------------------------------------------------------------------
    async def _exists(self, path: str, method: str, *, root: bool, mount_point: bool) -> bool:
        """Ask the mount's manager ``method(rel)``; the root and a mount point are folders."""
        api_path = clean(path)
        if not api_path:
            return root
        try:
            place = self._place(api_path)
        except NotFound:
            return False
        if self._is_mount_point(place):
            return mount_point
        return bool(await call(getattr(place.cm, method), place.rel))

    @http_errors
    async def dir_exists(self, path: str) -> bool:
        return await self._exists(path, "dir_exists", root=True, mount_point=True)

    @http_errors
    async def file_exists(self, path: str = "") -> bool:
        return await self._exists(path, "file_exists", root=False, mount_point=False)

    @http_errors
    async def exists(self, path: str) -> bool:
        return await self._exists(path, "exists", root=True, mount_point=True)

    async def is_hidden(self, path: str) -> bool:
        try:
            place = self._place(path)
        except ContentsError:
            return False  # the operation itself answers (404)
        if self._is_mount_point(place):
            return is_hidden_path(place.name)
        if not place.rel:
            return False
        return bool(await call(place.cm.is_hidden, place.rel))

    # -- get ------------------------------------------------------------------------------
    @http_errors
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
        api_path = clean(path)
        if not api_path:
            return await self._get_root(content, type, format, require_hash)
        place = self._place(api_path)
        kwargs: dict[str, Any] = {"content": content, "type": type, "format": format}
        if require_hash:
            # Passed only when asked: a manager older than jupyter_server 2.11 then fails
            # with TypeError, and jupyter_server's handler retries without it.
            kwargs["require_hash"] = True
        model = await call(place.cm.get, place.rel, **kwargs)
        return cast(dict[str, Any], place.full_model(model))

    async def _get_root(
        self, content: bool, type_: str | None, fmt: str | None, require_hash: bool
    ) -> dict[str, Any]:
        if type_ in ("file", "notebook"):
            raise BadRequest(f"The root is a directory, not a {type_}", path="")
        root = self._mounts.get("")
        if root is None:
            model = models.directory_model("", models.UNKNOWN_TIME, [] if content else None)
            self.emit(data={"action": "get", "path": ""})
        else:
            kwargs: dict[str, Any] = {"content": content, "type": type_, "format": fmt}
            if require_hash:
                kwargs["require_hash"] = True
            model = await call(root.cm.get, "", **kwargs)
        if content and isinstance(model.get("content"), list):
            mounts = [m for m in self._mount_names() if self._listed(m)]
            model["content"] = [e for e in model["content"] if e.get("name") not in mounts]
            model["content"].extend(self._mount_entry(m) for m in mounts)
        return cast(dict[str, Any], model)

    # -- save / new -----------------------------------------------------------------------
    def _writable_place(self, path: Any, model: Any) -> Place | None:
        """The place to write ``model`` to; None for a folder saved onto a mount point."""
        place = self._place(path)
        if self._is_mount_point(place):
            if isinstance(model, dict) and model.get("type") == "directory":
                return None
            raise BadRequest(f"{place.name} is a mount point, a folder", path=place.name)
        return place

    @http_errors
    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        """Save through the mount's manager (chunks of an upload included)."""
        place = self._writable_place(path, model)
        if place is None:
            return await self.get(path, content=False)
        saved = await call(place.cm.save, model, place.rel)
        return cast(dict[str, Any], place.full_model(saved))

    @http_errors
    async def new(self, model: dict[str, Any] | None = None, path: str = "") -> dict[str, Any]:
        place = self._writable_place(path, model)
        if place is None:
            return await self.get(path, content=False)
        saved = await call(place.cm.new, model, place.rel)
        return cast(dict[str, Any], place.full_model(saved))

    @http_errors
    async def new_untitled(self, path: str = "", type: str = "", ext: str = "") -> dict[str, Any]:
        place = self._place(path)
        saved = await call(place.cm.new_untitled, path=place.rel, type=type, ext=ext)
        return cast(dict[str, Any], place.full_model(saved))

    @http_errors
    async def increment_filename(self, filename: str, path: str = "", insert: str = "") -> str:
        place = self._place(path)
        return cast(str, await call(place.cm.increment_filename, filename, place.rel, insert))

    # -- delete ---------------------------------------------------------------------------
    def _deletable_place(self, path: Any) -> Place:
        api_path = clean(path)
        if not api_path:
            raise BadRequest("Can't delete root", path=api_path)
        place = self._place(api_path)
        if self._is_mount_point(place):
            raise BadRequest(f"Cannot delete the mount point {place.name}", path=place.name)
        return place

    @http_errors
    async def delete_file(self, path: str) -> None:
        place = self._deletable_place(path)
        await call(place.cm.delete_file, place.rel)

    @http_errors
    async def delete(self, path: str) -> None:
        """Delete through the mount's manager (which deletes the checkpoints and emits)."""
        place = self._deletable_place(path)
        await call(place.cm.delete, place.rel)

    # -- rename ---------------------------------------------------------------------------
    def _rename_places(self, old_path: Any, new_path: Any) -> tuple[Place, Place]:
        old, new = clean(old_path), clean(new_path)
        if not old or not new:
            raise BadRequest("Cannot rename the root folder", path=old)
        src, dst = self._place(old), self._place(new)
        for place, what in ((src, "rename"), (dst, "rename onto")):
            if self._is_mount_point(place):
                raise BadRequest(f"Cannot {what} the mount point {place.name}", path=place.name)
        return src, dst

    @http_errors
    async def rename_file(self, old_path: str, new_path: str) -> None:
        src, dst = self._rename_places(old_path, new_path)
        if src.name == dst.name:
            await call(src.cm.rename_file, src.rel, dst.rel)
            return
        with quiet():
            await self._transfer().move(src, dst)

    @http_errors
    async def rename(self, old_path: str, new_path: str) -> None:
        """Rename within a mount (its manager moves the checkpoints and emits), or move to
        another mount: copy, then delete the source (one ``rename`` event)."""
        src, dst = self._rename_places(old_path, new_path)
        if src.name == dst.name:
            await call(src.cm.rename, src.rel, dst.rel)
            return
        with quiet():
            await self._transfer().move(src, dst)
        self.emit(data={"action": "rename", "path": dst.full, "source_path": src.full})

    @http_errors
    async def update(self, model: dict[str, Any], path: str) -> dict[str, Any]:
        api_path = clean(path)
        if not isinstance(model, dict):
            raise BadRequest("The model must be a JSON object", path=api_path)
        new_path = clean(model.get("path", api_path))
        if new_path != api_path:
            await self.rename(api_path, new_path)
        return await self.get(new_path, content=False)

    # -- copy -----------------------------------------------------------------------------
    @http_errors
    async def copy(self, from_path: str, to_path: str | None = None) -> dict[str, Any]:
        """Copy within a mount (its manager's copy), or from one mount to another (streamed,
        never replacing an existing file: 409)."""
        src = self._place(from_path)
        if not src.full:
            raise BadRequest("Cannot copy the root folder", path="")
        dst = src.at(split_api(src.rel)[0]) if to_path is None else self._place(to_path)
        if src.name == dst.name:
            if self._is_mount_point(src):
                raise BadRequest(f"Cannot copy {src.name} into itself", path=src.name)
            rel_to = None if to_path is None else dst.rel
            copied = await call(src.cm.copy, src.rel, rel_to)
            return cast(dict[str, Any], src.full_model(copied))
        with quiet():
            copied = await self._transfer().copy(src, dst)
        self.emit(data={"action": "copy", "path": copied["path"], "source_path": src.full})
        return copied

    def _transfer(self) -> Transfer:
        return Transfer(self.cross_mount_chunk_size, self.log)

    # -- /files/ --------------------------------------------------------------------------
    @http_errors
    async def download(self, path: str) -> Download:
        """The file at ``path`` for ``/files/``, from its mount: streamed from the bucket
        (our managers), read from local disk in pieces (jupyter_server's file managers), or
        through ``get`` (any other manager); see :mod:`s3contents.hybrid.mounts`."""
        place = self._place(path)
        if not place.rel:
            raise NotFound("Not a file", path=place.full)
        return await place.mount.download(place.rel)

    # -- trust, kernels, checkpoints ------------------------------------------------------
    @http_errors
    async def trust_notebook(self, path: str) -> None:
        place = self._place(path)
        await call(place.cm.trust_notebook, place.rel)

    @http_errors
    async def resolve_path(self, path: str) -> str | None:
        place = self._place(path)
        resolve = getattr(place.cm, "resolve_path", None)
        return None if resolve is None else cast("str | None", await call(resolve, place.rel))

    @http_errors
    async def get_kernel_path(self, path: str, model: Any = None) -> str:
        """Kernels start in the local folder of a notebook on a local mount (relative to the
        server's root, when it lies inside it), else in the server's root."""
        try:
            place = self._place(path)
        except ContentsError:
            return ""
        return await place.mount.kernel_path(place.rel, model, self.root_dir)

    def kernel_env(self, path: str) -> dict[str, str]:
        """What a kernel for ``path`` is told of it: the mount's ``kernel_env`` (a bucket's
        URLs, see :meth:`ObjectStoreContentsManager.kernel_env`); nothing for a local mount,
        whose notebooks jupyter_server names by their local path itself."""
        try:
            place = self._place(path)
        except ContentsError:
            return {}
        own = getattr(place.cm, "kernel_env", None)
        return dict(own(place.rel)) if callable(own) and place.rel else {}

    def _file_place(self, path: Any) -> Place:
        place = self._place(path)
        if not place.rel:
            raise NotFound(f"{place.full or 'The root'} is a folder: no checkpoints", path=path)
        return place

    @http_errors
    async def create_checkpoint(self, path: str) -> dict[str, Any]:
        place = self._file_place(path)
        return cast(dict[str, Any], await call(place.cm.create_checkpoint, place.rel))

    @http_errors
    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        place = self._file_place(path)
        return cast(list[dict[str, Any]], await call(place.cm.list_checkpoints, place.rel))

    @http_errors
    async def restore_checkpoint(self, checkpoint_id: str, path: str) -> None:
        place = self._file_place(path)
        await call(place.cm.restore_checkpoint, checkpoint_id, place.rel)

    @http_errors
    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        place = self._file_place(path)
        await call(place.cm.delete_checkpoint, checkpoint_id, place.rel)

    # -- server ---------------------------------------------------------------------------
    def info_string(self) -> str:
        lines = []
        for name in ["", *self._mount_names()]:
            mount = self._mounts.get(name)
            if mount is not None:
                lines.append(f"/{name}: {mount.cm.info_string()}")
        return "Serving contents from mounts: " + "; ".join(lines)

    async def close(self) -> None:
        """Close every mount's manager that can be closed (ours: their connections)."""
        for mount in self._mounts.values():
            close = getattr(mount.cm, "close", None)
            if close is not None:
                await call(close)


class HybridCheckpoints(AsyncGenericCheckpointsMixin, AsyncCheckpoints):
    """The checkpoints of a :class:`HybridContentsManager`: each call goes to the
    checkpoints of the mount that holds the file (a mount keeps its own checkpoints).

    Also a ``GenericCheckpointsMixin`` (its own methods take precedence), for the tools that
    read a checkpoint's content through that interface (nbdime's checkpoint diff):
    :meth:`get_notebook_checkpoint` and :meth:`get_file_checkpoint` ask the mount's
    checkpoints where they have that interface (ours), else read the local file of a
    ``FileCheckpoints`` (a local mount's)."""

    @property
    def hybrid(self) -> HybridContentsManager:
        return cast(HybridContentsManager, self.parent)

    def _place(self, path: str) -> Place:
        return self.hybrid._file_place(path)

    @http_errors
    async def create_checkpoint(self, contents_mgr: Any, path: str) -> dict[str, Any]:
        p = self._place(path)
        return cast(dict[str, Any], await call(p.cm.checkpoints.create_checkpoint, p.cm, p.rel))

    @http_errors
    async def restore_checkpoint(self, contents_mgr: Any, checkpoint_id: str, path: str) -> None:
        p = self._place(path)
        await call(p.cm.checkpoints.restore_checkpoint, p.cm, checkpoint_id, p.rel)

    @http_errors
    async def get_notebook_checkpoint(
        self, checkpoint_id: str | dict[str, Any], path: str
    ) -> dict[str, Any]:
        return await self._content("get_notebook_checkpoint", checkpoint_id, path)

    @http_errors
    async def get_file_checkpoint(
        self, checkpoint_id: str | dict[str, Any], path: str
    ) -> dict[str, Any]:
        return await self._content("get_file_checkpoint", checkpoint_id, path)

    async def _content(
        self, method: str, checkpoint: str | dict[str, Any], path: str
    ) -> dict[str, Any]:
        """A checkpoint's content (given its id, or its model as nbdime passes it) from the
        checkpoints of the mount holding ``path``."""
        p = self._place(path)
        checkpoint_id = (
            str(checkpoint.get("id", "")) if isinstance(checkpoint, dict) else checkpoint
        )
        checkpoints = p.cm.checkpoints
        if isinstance(checkpoints, GenericCheckpointsMixin):
            found = await call(getattr(checkpoints, method), checkpoint_id, p.rel)
            return cast(dict[str, Any], found)
        locate = getattr(checkpoints, "checkpoint_path", None)  # FileCheckpoints: a local file
        if locate is None:
            raise BadRequest(f"The checkpoints of mount {p.name!r} give no content", path=p.full)
        local = Path(await call(locate, checkpoint_id, p.rel))
        try:
            data = await asyncio.to_thread(local.read_bytes)
        except FileNotFoundError as err:
            raise NotFound(
                f"Checkpoint {checkpoint_id} of {p.full} does not exist", path=p.full
            ) from err
        if method == "get_notebook_checkpoint":
            return {"type": "notebook", "content": models.parse_notebook(data, p.full)}
        content, fmt = models.decode_content(data, None, p.full)
        return {"type": "file", "content": content, "format": fmt}

    @http_errors
    async def rename_checkpoint(self, checkpoint_id: str, old_path: str, new_path: str) -> None:
        old, new = self._place(old_path), self._place(new_path)
        if old.name != new.name:
            raise BadRequest("Checkpoints do not move between mounts", path=old.full)
        await call(old.cm.checkpoints.rename_checkpoint, checkpoint_id, old.rel, new.rel)

    @http_errors
    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        p = self._place(path)
        await call(p.cm.checkpoints.delete_checkpoint, checkpoint_id, p.rel)

    @http_errors
    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        p = self._place(path)
        return cast(list[dict[str, Any]], await call(p.cm.checkpoints.list_checkpoints, p.rel))

    @http_errors
    async def rename_all_checkpoints(self, old_path: str, new_path: str) -> None:
        old, new = self._place(old_path), self._place(new_path)
        if old.name == new.name:
            await call(old.cm.checkpoints.rename_all_checkpoints, old.rel, new.rel)
        # Between mounts, the move deleted the source with its checkpoints.

    @http_errors
    async def delete_all_checkpoints(self, path: str) -> None:
        p = self._place(path)
        await call(p.cm.checkpoints.delete_all_checkpoints, p.rel)
