"""The async contents manager shared by every provider (the API layer).

:class:`ObjectStoreContentsManager` implements jupyter_server's ``AsyncContentsManager``
on the storage port of :mod:`s3contents.storage`. Provider classes
(:class:`~s3contents.S3ContentsManager`, :class:`~s3contents.gcs.GCSContentsManager`)
only declare their settings and build the adapter.

The manager holds the Jupyter API and orchestrates; the rules live below it: its settings
and parts in :mod:`~s3contents.settings` and :mod:`~s3contents.parts`, names and keys in
:mod:`~s3contents.paths`, models in :mod:`~s3contents.models`, files and folders as objects
in :mod:`~s3contents.tree` (with :mod:`~s3contents.folders` and the rename protocol of
:mod:`~s3contents.renames`), save hooks in :mod:`~s3contents.hooks`, uploads in
:mod:`~s3contents.uploads`, checkpoints in :mod:`~s3contents.checkpoints`, existence
checks in :mod:`~s3contents.existence`. Each public
method passes :func:`_api`, where the package's errors become HTTP errors. Each operation
spends as few storage requests as it can (docs/architecture.md, "Request budget"): a
listing is one LIST, an open one GET, a save one PUT.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, cast

from tornado.web import HTTPError

from . import handoff, models
from .collab import drop_stale_file_ids, move_file_ids
from .contents import copy_name, create_unique
from .errors import (
    AlreadyExists,
    BadRequest,
    ContentsError,
    NotFound,
)
from .existence import ExistenceChecks
from .folders import FolderListing
from .hooks import run_post_save_hooks, run_pre_save_hooks
from .notebooks import convert_and_check, notebook_over, parse_and_sign, precomputed
from .parts import api_call as _api
from .paths import (
    ancestors_and_self,
    join_api,
    split_api,
)
from .storage.base import ObjectInfo, PutMode
from .uploads import check_chunk
from .wrapping import CREATING as _CREATING
from .wrapping import KNOWN as _KNOWN
from .wrapping import WAS_DIR as _WAS_DIR
from .wrapping import Known as _Known
from .wrapping import creating as _creating
from .wrapping import name_taken as _name_taken

__all__ = ["ObjectStoreContentsManager"]

#: Notebooks larger than this are parsed, signed, checked and serialised in a worker thread
#: (below it they take about a millisecond on the loop, near the cost of the thread hop).
_THREAD_THRESHOLD = 256 * 1024
#: Folders listing more entries than this get their model built in a worker thread.
_THREAD_ENTRIES = 2000


class ObjectStoreContentsManager(ExistenceChecks):
    """Jupyter contents (notebooks, files, folders, checkpoints) in an object store."""

    # -- folders --------------------------------------------------------------------------
    async def _dir_model(
        self, api_path: str, listing: FolderListing, content: bool
    ) -> dict[str, Any]:
        if content and len(listing.files) + len(listing.dirs) > _THREAD_ENTRIES:
            # About 6 us an entry: a folder of 10000 would hold the loop for 60 ms.
            model = await asyncio.to_thread(self._dir_model_now, api_path, listing, content)
        else:
            model = self._dir_model_now(api_path, listing, content)
        if content and self._wrapped("get"):
            await self._entries_through_get(api_path, listing, model)
        return model

    async def _entries_through_get(
        self, api_path: str, listing: FolderListing, model: dict[str, Any]
    ) -> None:
        """Each file entry of a listing as the wrapper's ``get(content=False)`` makes it
        (jupytext: a ``.py`` notebook is a notebook), as jupyter_server's local manager
        builds its listings. The listing answers the questions that ``get`` asks of its
        files and folders: no request more."""
        renamed, written = self._renamed.apply, self._written.apply
        known = _Known(
            files={join_api(api_path, n): renamed(written(o)) for n, o in listing.files},
            dirs={join_api(api_path, d) for d in listing.dirs},
            complete=api_path,
        )
        token = _KNOWN.set(known)
        try:
            entries = []
            for entry in model["content"]:
                if entry["type"] != "directory":
                    entry = await self.get(entry["path"], content=False)
                entries.append(entry)
        finally:
            _KNOWN.reset(token)
        model["content"] = entries

    def _dir_model_now(
        self, api_path: str, listing: FolderListing, content: bool
    ) -> dict[str, Any]:
        renamed, written = self._renamed.apply, self._written.apply
        files = [(name, renamed(written(o))) for name, o in listing.files]
        return models.directory_from_listing(
            api_path,
            files,
            listing.dirs,
            self._listable,
            content,
            listing.date,
            listing.dir_dates,
        )

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
        """The model of a file, notebook or folder (see jupyter_server's contents API)."""
        api_path = self._norm(path)
        if type not in (None, "file", "notebook", "directory"):
            raise BadRequest(f"Unknown type {type!r}", path=api_path)
        self._check_readable(api_path)
        model: dict[str, Any] | None
        if not api_path or type == "directory":
            model = await self._get_dir(api_path, content, type)
        elif type in ("file", "notebook") or "." in api_path.rsplit("/", 1)[-1]:
            # Names with an extension are files nearly always: ask for the object first.
            model = await self._get_file(api_path, content, type, format, require_hash)
            if model is None:
                model = await self._get_dir(api_path, content, type)
        else:
            # Extension-less names are folders nearly always: one LIST answers for a
            # folder, and only a miss costs the GET or HEAD of a file (and a miss of
            # both one LIST for a folder emptied on SeaweedFS).
            listing = await self._listing(api_path, content, probe_emptied=False)
            if listing.exists:
                model = await self._dir_model(api_path, listing, content)
            else:
                model = await self._get_file(api_path, content, type, format, require_hash)
                if model is None:
                    listing = await self.folders.emptied_listing(api_path)
                    if not listing.exists:
                        raise NotFound(f"No such file or directory: {api_path}", path=api_path)
                    model = await self._dir_model(api_path, listing, content)
        self.emit(data={"action": "get", "path": api_path})
        return model

    async def _listing(
        self, api_path: str, content: bool, *, probe_emptied: bool = True
    ) -> FolderListing:
        return await self.folders.dated_listing(
            api_path, content=content, listable=self._listable, probe_emptied=probe_emptied
        )

    async def _get_dir(self, api_path: str, content: bool, type_: str | None) -> dict[str, Any]:
        listing = await self._listing(api_path, content)
        if not listing.exists:
            if type_ == "directory" and await self.tree.info(api_path) is not None:
                raise BadRequest(f"{api_path} is not a directory", path=api_path)
            raise NotFound(f"No such file or directory: {api_path}", path=api_path)
        if type_ in ("file", "notebook"):
            raise BadRequest(f"{api_path} is a directory, not a {type_}", path=api_path)
        return await self._dir_model(api_path, listing, content)

    async def _get_file(
        self,
        api_path: str,
        content: bool,
        type_: str | None,
        fmt: str | None,
        require_hash: bool,
    ) -> dict[str, Any] | None:
        """File or notebook model, or ``None`` when no object has that key."""
        key = self.keys.key(api_path)
        kind = models.kind(api_path, type_)
        try:
            if not content and not require_hash:
                facts = _KNOWN.get()
                handed = facts.files.get(api_path) if facts is not None else None
                # What the listing or save that calls a wrapper's get back knows comes
                # first (it is newer than what the request's first call handed over).
                found = handed is not None
                if not found:
                    found, handed = handoff.known(key)  # a rename just made it (PATCH)
                info = handed if found and handed is not None else await self.storage.head(key)
                info = self._renamed.apply(info)
                return models.file_model(api_path, kind, info.last_modified, info.size)
            if not content and key in self._hashes:
                # The hash of bytes this process saved (real-time collaboration asks for it
                # after each autosave): one HEAD tells whether they are still current.
                info = self._renamed.apply(await self.storage.head(key))
                known = self._hashes.get(key, info.etag, self.hash_algorithm)
                if known is not None:
                    model = models.file_model(api_path, kind, info.last_modified, info.size)
                    return {**model, **known}
            data, info = await self.storage.get(key)
        except NotFound:
            return None
        info = self._renamed.apply(info)
        model = models.file_model(api_path, kind, info.last_modified, info.size)
        if content:
            if kind == "notebook":
                validation_error: dict[str, Any] = {}
                if len(data) > _THREAD_THRESHOLD:
                    notary = self._thread_ready_notary()
                    nb, signature = await asyncio.to_thread(
                        parse_and_sign, data, api_path, validation_error, notary.compute_signature
                    )
                    # Only the signature store's lookup (SQLite, bound to this thread) here.
                    with precomputed(notary, compute_signature=lambda _nb: signature):
                        self.mark_trusted_cells(nb, api_path)
                else:
                    nb = models.parse_notebook(data, api_path, validation_error)
                    self.mark_trusted_cells(nb, api_path)
                model["content"] = nb
                model["format"] = "json"
                self.validate_notebook_model(model, validation_error)
            else:
                text, used = models.decode_content(data, fmt, api_path)
                model["content"] = text
                model["format"] = used
                if model["mimetype"] is None:
                    model["mimetype"] = (
                        "text/plain" if used == "text" else "application/octet-stream"
                    )
        if require_hash:
            hashed = await self._hash(data)
            self._hashes.remember(key, info.etag, hashed)
            model.update(hashed)
        return model

    # -- save -----------------------------------------------------------------------------
    @_api
    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        """Save a model (notebook, file, folder, or one chunk of an upload).

        ``new``, ``new_untitled`` and ``copy`` create through this method, as jupyter_server's
        managers do, so a wrapper's ``save`` (jupytext) sees every write: while they run,
        the path they create is written create-only (:func:`_creating`)."""
        creating = _CREATING.get()
        mode, parent_known = PutMode.OVERWRITE, False
        if creating:
            api_path = self._norm(path) if isinstance(path, str) else path
            if api_path in creating:
                mode, parent_known = PutMode.CREATE, creating[api_path]
        try:
            return await self._save(model, path, mode, parent_known)
        except (HTTPError, ContentsError):
            raise
        except Exception as err:
            self.log.error("Error while saving file: %s %s", path, err, exc_info=True)
            raise HTTPError(500, f"Unexpected error while saving file: {path} {err}") from err

    async def _save(
        self, model: dict[str, Any], path: str, mode: PutMode, parent_known: bool = False
    ) -> dict[str, Any]:
        """Save ``model``; ``mode=CREATE`` never replaces an existing file.

        ``parent_known``: the caller just listed the parent folder, so the existence checks
        of a creation are not repeated.
        """
        api_path = self._norm(path)
        if not isinstance(model, dict):
            raise BadRequest("The model must be a JSON object", path=api_path)
        self._check_writable(api_path, "create")
        chunk = model.get("chunk")
        if chunk is not None:
            return await self._save_chunk(model, api_path, chunk)

        await run_pre_save_hooks(self, model, api_path)
        type_ = model.get("type")
        if type_ is None:
            raise BadRequest("No file type provided", path=api_path)
        if "content" not in model and type_ != "directory":
            raise BadRequest("No file content provided", path=api_path)
        creating = mode is PutMode.CREATE and not parent_known
        if creating:
            # Creating needs an existing parent, as on a file system. Overwriting an
            # existing file (a save) skips the check: it costs a LIST per save.
            await self.tree.check_parent(api_path)

        validation_message = None
        if type_ == "directory":
            found, info = handoff.known(self.keys.key(api_path))  # the PUT handler asked
            if not found:
                info = await self.tree.info(api_path)
            if info is not None:
                raise BadRequest(f"Not a directory: {api_path}", path=api_path)
            now = datetime.now(timezone.utc)
            await self.tree.make_dir(api_path, mtime=now)
            saved = models.directory_model(api_path, now)
        elif type_ in ("notebook", "file"):
            key = self.keys.key(api_path)
            if type_ == "notebook":
                validation_error: dict[str, Any] = {}
                data = await self._notebook_bytes(model["content"], api_path, validation_error)
                content_type = models.NOTEBOOK_MIMETYPE
            else:
                data = models.encode_content(model["content"], model.get("format"), api_path)
                content_type = models.guess_mimetype(api_path) or "application/octet-stream"
            if creating and await self.tree.folder_in_the_way(api_path):
                raise AlreadyExists(f"A folder named {api_path} exists", path=api_path)
            # The write time goes with the object (see storage.base.MTIME_KEY): the model
            # needs no HEAD, and every server reports this time, to the microsecond.
            now = datetime.now(timezone.utc)
            etag = await self.storage.put(
                key, data, mode=mode, content_type=content_type, mtime=now
            )
            self._renamed.forget(key)
            self._written.note(key, etag, now)
            if etag:
                await self._remember_hash(key, etag, data)
            saved = models.file_model(api_path, type_, now, len(data))
            if self._wrapped("get"):
                # As jupyter_server's local manager answers a save: its get's model (jupytext
                # types a .py notebook as a notebook), from what the save knows.
                token = _KNOWN.set(_Known({api_path: ObjectInfo(key, len(data), now, etag)}))
                try:
                    saved = dict(await self.get(api_path, content=False))
                finally:
                    _KNOWN.reset(token)
            if type_ == "notebook":
                self.validate_notebook_model(model, validation_error)
                validation_message = model.get("message")
        else:
            raise BadRequest(f"Unhandled contents type: {type_}", path=api_path)

        if validation_message:
            saved["message"] = validation_message
        await run_post_save_hooks(self, saved, api_path)
        self.emit(data={"action": "save", "path": api_path})
        return saved

    async def _remember_hash(self, key: str, etag: str, data: bytes) -> None:
        """Hash what a save wrote, for the ``require_hash`` get that may follow (see
        :mod:`s3contents.collab`)."""
        self._hashes.remember(key, etag, await self._hash(data))

    async def _hash(self, data: bytes) -> dict[str, str]:
        """``hash`` and ``hash_algorithm`` of ``data``; large contents hashed off the loop."""
        if len(data) > _THREAD_THRESHOLD:
            return await asyncio.to_thread(models.hash_fields, data, self.hash_algorithm)
        return models.hash_fields(data, self.hash_algorithm)

    async def _notebook_bytes(
        self, content: Any, api_path: str, validation_error: dict[str, Any]
    ) -> bytes:
        """The bytes to store for a notebook model's ``content``, signed when trusted.

        A large notebook (outputs included) takes tens of milliseconds to convert, hash for
        its signature, validate and serialise: all of it runs in worker threads, but the
        signature store's calls (SQLite, bound to the loop's thread), made by Jupyter's own
        ``check_and_sign`` with what the thread computed."""
        if not notebook_over(content, _THREAD_THRESHOLD):
            nb = models.notebook_from_model(content, api_path)
            self.check_and_sign(nb, api_path)
            return models.encode_notebook(nb, validation_error)
        notary = self._thread_ready_notary()
        nb, trusted, signature = await asyncio.to_thread(
            convert_and_check, content, api_path, notary.check_cells, notary.compute_signature
        )
        if trusted is None:  # the check failed: Jupyter's own, on the loop, says how
            self.check_and_sign(nb, api_path)
        else:
            with precomputed(
                notary,
                check_cells=lambda _nb: trusted,
                compute_signature=lambda _nb: signature,
            ):
                self.check_and_sign(nb, api_path)
        return await asyncio.to_thread(models.encode_notebook, nb, validation_error)

    def _thread_ready_notary(self) -> Any:
        """The notary, its secret and digest loaded here (a first use reads, or writes, the
        secret file: not from two threads at once). Its methods for a worker thread are
        looked up here too, on the loop, never inside a ``precomputed`` block."""
        notary = self.notary
        _ = notary.secret, notary.digestmod
        return notary

    async def _save_chunk(self, model: dict[str, Any], api_path: str, chunk: Any) -> dict[str, Any]:
        check_chunk(model, chunk, api_path)
        if chunk == 1:
            await run_pre_save_hooks(self, model, api_path)
            await self.tree.check_parent(api_path)
        key = self.keys.key(api_path)
        result = await self.uploads.add_model(key, chunk, model, api_path)
        if chunk == 1:
            # The handler asked file_exists before this first chunk: its session keeps the
            # answer for the next chunks' questions (nothing changes at the key till the end).
            found, info = handoff.known(key)
            if found:
                self.uploads.note_object_exists(key, info is not None)
        if result.info is None:
            now = datetime.now(timezone.utc)
            return models.file_model(api_path, "file", now, result.received)
        info = result.info
        saved = models.file_model(api_path, "file", info.last_modified, info.size)
        if result.wrote:  # not for a last chunk sent again and answered without a write
            await run_post_save_hooks(self, saved, api_path)
            self.emit(data={"action": "save", "path": api_path})
        return saved

    # -- new / copy -----------------------------------------------------------------------
    @_api
    async def new(self, model: dict[str, Any] | None = None, path: str = "") -> dict[str, Any]:
        """Create a new file or folder at ``path`` (refuses to replace an existing file)."""
        api_path = self._norm(path)
        model = dict(model or {})
        self._fill_new_model(model, api_path)
        with _creating(api_path):
            return cast(dict[str, Any], await self.save(model, api_path))

    @staticmethod
    def _fill_new_model(model: dict[str, Any], api_path: str) -> None:
        from nbformat.v4 import new_notebook

        model.setdefault("type", "notebook" if api_path.endswith(".ipynb") else "file")
        if "content" not in model and model["type"] != "directory":
            if model["type"] == "notebook":
                model["content"] = new_notebook()
                model["format"] = "json"
            else:
                model["content"] = ""
                model["type"] = "file"
                model["format"] = "text"

    async def _create_unique(
        self,
        dir_path: str,
        filename: str,
        insert: str,
        create: Callable[[str], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """Create ``filename`` (or the first free ``filename<insert>N``) in ``dir_path``.

        One LIST finds the free name; the create-only write makes the choice safe against
        a racing client, and a lost race moves on to the next name.
        """
        listing = await self.folders.listing(dir_path)
        if not listing.exists:
            raise NotFound(f"No such directory: {dir_path}", path=dir_path)
        return await create_unique(listing.names, filename, insert, create, dir_path)

    @_api
    async def new_untitled(self, path: str = "", type: str = "", ext: str = "") -> dict[str, Any]:
        """Create a new untitled file, notebook or folder in the folder ``path``."""
        dir_path = self._norm(path)
        self._check_readable(dir_path)
        if not isinstance(type or "", str) or not isinstance(ext or "", str) or "/" in (ext or ""):
            raise BadRequest(f"Invalid type or extension: {type!r}, {ext!r}", path=dir_path)
        ext = ext or ""
        model: dict[str, Any] = {}
        if type:
            model["type"] = type
        model.setdefault("type", "notebook" if ext == ".ipynb" else "file")
        insert = ""
        if model["type"] == "directory":
            untitled, insert = self.untitled_directory, " "
        elif model["type"] == "notebook":
            untitled, ext = self.untitled_notebook, ".ipynb"
        elif model["type"] == "file":
            untitled = self.untitled_file
        else:
            raise BadRequest(f"Unexpected model type: {model['type']!r}", path=dir_path)

        async def create(api_path: str) -> dict[str, Any]:
            api_path = self._norm(api_path)  # the name includes the client's extension
            m = dict(model)
            if m["type"] == "directory":
                # Create-only marker: a folder of that name appearing meanwhile is a race lost.
                self._check_writable(api_path)
                now = datetime.now(timezone.utc)
                await self.tree.make_dir(api_path, mtime=now, mode=PutMode.CREATE)
                saved = models.directory_model(api_path, now)
                self.emit(data={"action": "save", "path": api_path})
                return saved
            with _creating(api_path, parent_known=True), _name_taken():  # just listed
                return cast(dict[str, Any], await self.new(m, api_path))

        return await self._create_unique(dir_path, untitled + ext, insert, create)

    @_api
    async def copy(self, from_path: str, to_path: str | None = None) -> dict[str, Any]:
        """Copy a file or folder server-side, never replacing an existing entry."""
        src = self._norm(from_path)
        self._check_readable(src)
        dst = self._norm(to_path) if to_path is not None else None
        from_dir, from_name = split_api(src)
        info = await self.tree.info(src)
        is_dir = info is None
        if is_dir and not await self.tree.is_dir(src):
            raise NotFound(f"No such file or directory: {src}", path=src)

        target_dir = dst if dst is not None else from_dir
        if dst is None or await self.tree.is_dir(target_dir):
            name = copy_name(from_name)

            async def create(api_path: str) -> dict[str, Any]:
                return await self._copy_to(src, api_path, info)

            model = await self._create_unique(target_dir, name, "-Copy", create)
        elif is_dir:
            # As Jupyter's local manager: a folder copied to a path that is no folder goes
            # into a new folder of that path, under its own name.
            for parent in ancestors_and_self(dst):
                if await self.tree.info(parent) is not None:
                    raise BadRequest(f"{parent} is a file, not a folder", path=dst)
            model = await self._copy_to(src, join_api(dst, copy_name(from_name)), info)
        else:
            to_dir, _ = split_api(dst)
            if to_dir and not await self.tree.is_dir(to_dir):
                raise NotFound(f"No such parent directory: {to_dir} to copy file in", path=to_dir)
            if info is not None and await self.tree.info(dst) is not None:
                # As for rename: not every store honours a create-only copy.
                raise AlreadyExists(f"File already exists: {dst}", path=dst)
            model = await self._copy_to(src, dst, info)
        drop_stale_file_ids(self.parent, model["path"])
        self.emit(data={"action": "copy", "path": model["path"], "source_path": src})
        return model

    async def _copy_to(self, src: str, dst: str, src_info: ObjectInfo | None) -> dict[str, Any]:
        """Copy the file (``src_info`` given) or folder ``src`` to the new name ``dst``."""
        self._check_writable(dst, "copy to")
        if src_info is not None and self._wrapped("get", "save"):
            # A wrapper (jupytext) reads and writes its own way, pairs included: as
            # jupyter_server's managers copy a file, through its get and save.
            model = dict(await self.get(src))
            model.pop("path", None)
            model.pop("name", None)
            with _creating(dst, parent_known=True), _name_taken():
                return cast(dict[str, Any], await self.save(model, dst))
        if src_info is not None:
            now = await self.tree.copy_file(src, dst)
            return models.file_model(dst, models.kind(dst), now, src_info.size)
        await self.tree.copy_dir(src, dst)
        return await self._get_dir(dst, False, "directory")

    def _wrapped(self, *names: str) -> bool:
        """Does a subclass (a wrapper such as jupytext's) override any of these methods?"""
        cls = type(self)
        # The blocking variant (s3contents.blocking) wraps the very same methods.
        impls = getattr(cls, "_blocking_impls", {})
        return any(
            impls.get(name, getattr(cls, name)) is not getattr(ObjectStoreContentsManager, name)
            for name in names
        )

    # -- rename / delete ------------------------------------------------------------------
    @_api
    async def rename_file(self, old_path: str, new_path: str) -> None:
        """Rename a file or folder (server-side copies, then deletion of the source).
        ``rename`` renames through it, so a wrapper's ``rename_file`` (jupytext) sees it."""
        old = self._norm(old_path)
        was_dir = await self._rename_file(old, self._norm(new_path))
        kinds = _WAS_DIR.get()
        if kinds is not None:
            kinds[old] = was_dir

    async def _rename_file(self, old: str, new: str) -> bool:
        """Rename; returns True when ``old`` was a folder."""
        if old == new:
            return False
        self._check_writable(old, "rename")
        self._check_writable(new, "rename to")
        listed = None
        if "." not in old.rsplit("/", 1)[-1]:
            # A name without an extension is most often a folder: list it first, and a
            # folder's rename needs no HEAD (a file's pays one LIST more).
            listed = await self.tree.folders.tree(old)
        info = None if listed else await self.tree.info(old)
        if info is None:
            await self.tree.rename_dir(old, new, on_copied=self._renamed.remember, listed=listed)
            return True
        if split_api(old)[0] != split_api(new)[0]:
            await self.tree.check_parent(new)
        await self.tree.rename_file(old, new, info)
        new_key = self.keys.key(new)
        self._renamed.remember(new_key, info)  # a rename keeps the file's date
        handoff.hand_over(new_key, dataclasses.replace(info, key=new_key))  # PATCH asks next
        return False

    @_api
    async def delete_file(self, path: str) -> None:
        """Delete a file, or a folder and everything in it. ``delete`` deletes through it."""
        api_path = self._norm(path)
        was_dir = await self._delete_file(api_path)
        kinds = _WAS_DIR.get()
        if kinds is not None:
            kinds[api_path] = was_dir

    async def _delete_file(self, api_path: str) -> bool:
        """Delete; returns True when it was a folder."""
        if not api_path:
            raise BadRequest("Can't delete root", path=api_path)
        self._check_writable(api_path, "delete")
        return await self.tree.delete(
            api_path, non_empty=self.delete_to_trash or self.always_delete_dir
        )

    @_api
    async def delete(self, path: str) -> None:
        api_path = self._norm(path)
        if not api_path:
            raise BadRequest("Can't delete root", path=api_path)
        kinds: dict[str, bool] = {}
        token = _WAS_DIR.set(kinds)
        try:
            await self.delete_file(api_path)
        finally:
            _WAS_DIR.reset(token)
        if not kinds.get(api_path, False):
            # A folder's checkpoints live inside it and went with it.
            await self.checkpoints.delete_all_checkpoints(api_path)
        self.emit(data={"action": "delete", "path": api_path})

    @_api
    async def rename(self, old_path: str, new_path: str) -> None:
        old, new = self._norm(old_path), self._norm(new_path)
        kinds: dict[str, bool] = {}
        token = _WAS_DIR.set(kinds)
        try:
            await self.rename_file(old, new)
        finally:
            _WAS_DIR.reset(token)
        was_dir = kinds.get(old, False)
        if old != new and not was_dir:
            await self.checkpoints.rename_all_checkpoints(old, new)
        move_file_ids(self.parent, old, new, folder=was_dir)
        self.emit(data={"action": "rename", "path": new, "source_path": old})

    @_api
    async def update(self, model: dict[str, Any], path: str) -> dict[str, Any]:
        api_path = self._norm(path)
        if not isinstance(model, dict):
            raise BadRequest("The model must be a JSON object", path=api_path)
        new_path = model.get("path", api_path)
        if not isinstance(new_path, str):
            raise BadRequest("'path' must be a string", path=api_path)
        new_path = self._norm(new_path)
        if api_path != new_path:
            await self.rename(api_path, new_path)
        return await self.get(new_path, content=False)

    # -- trust, kernels, checkpoints ------------------------------------------------------
    @_api
    async def trust_notebook(self, path: str) -> None:
        api_path = self._norm(path)
        model = await self.get(api_path)
        if model["type"] != "notebook":
            raise BadRequest(f"{api_path} is not a notebook", path=api_path)
        nb = model["content"]
        self.log.warning("Trusting notebook %s", api_path)
        self.notary.mark_cells(nb, True)
        self.check_and_sign(nb, api_path)

    def check_and_sign(self, nb: Any, path: Any = "", **kwargs: Any) -> Any:
        """Jupyter's signing; a notebook it cannot read is the client's error (400, not 500)."""
        try:
            return super().check_and_sign(nb, path, **kwargs)
        except (KeyError, TypeError, AttributeError, ValueError) as err:
            raise BadRequest(f"Invalid notebook: {type(err).__name__} {err}", path=path) from err

    async def get_kernel_path(self, path: str, model: Any = None) -> str:
        """Kernels start in the server's ``root_dir``: notebooks have no local folder."""
        return ""

    def kernel_env(self, path: str) -> dict[str, str]:
        """What a kernel started for the notebook (or console) at ``path`` is told of it.

        ``JPY_SESSION_NAME`` (IPython's ``__session__``) is the notebook's URL in the bucket
        (``s3://bucket/prefix/sub/nb.ipynb``; jupyter_server's own value would be a local
        path that does not exist), ``S3CONTENTS_URL`` the URL of its folder (ending with
        ``/``) and ``S3CONTENTS_ENDPOINT_URL`` the storage endpoint when one is set. URLs
        are not percent-encoded, as fsspec reads them. No credential is ever added. The
        server extension adds these to jupyter_server's environment of the kernel; a
        subclass may return ``{}`` to keep jupyter_server's.
        """
        api_path = self._norm(path)
        key = self.keys.key(api_path)
        folder = key[: len(key) - len(key.rpartition(self.keys.delimiter)[2])]
        env = {
            "JPY_SESSION_NAME": f"{self.storage.url}/{key}",
            "S3CONTENTS_URL": f"{self.storage.url}/{folder}",
        }
        endpoint = (getattr(self, "endpoint_url", "") or "").strip()
        if endpoint:
            env["S3CONTENTS_ENDPOINT_URL"] = endpoint
        return env

    @_api
    async def create_checkpoint(self, path: str) -> dict[str, Any]:
        return cast(dict[str, Any], await super().create_checkpoint(self._checkpointed(path)))

    @_api
    async def restore_checkpoint(self, checkpoint_id: str, path: str) -> None:
        await super().restore_checkpoint(checkpoint_id, self._checkpointed(path))

    @_api
    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], await super().list_checkpoints(self._checkpointed(path)))

    @_api
    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        await super().delete_checkpoint(checkpoint_id, self._checkpointed(path))

    def _checkpointed(self, path: str) -> str:
        """The API path of a file whose checkpoints are asked for: hidden files (unless
        allowed) and the package's own names have none, as they have no contents (404)."""
        api_path = self._norm(path)
        self._check_readable(api_path)
        if self.keys.is_reserved(api_path):
            raise NotFound(f"file does not exist: {api_path!r}", path=api_path)
        return api_path
