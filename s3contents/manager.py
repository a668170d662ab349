"""The async contents manager shared by every provider (the API layer).

:class:`ObjectStoreContentsManager` implements jupyter_server's ``AsyncContentsManager``
on the storage port of :mod:`s3contents.storage`. Provider classes
(:class:`~s3contents.S3ContentsManager`, :class:`~s3contents.gcs.GCSContentsManager`)
only declare their settings and build the adapter.

This is the only layer that turns the package's errors into HTTP errors (in
:func:`_api`), and the only one that runs the pre- and post-save hooks. Each operation is
written to spend as few storage requests as possible (see ``DESIGN.md``): a listing is one
LIST, an open one GET, a save one PUT and one HEAD.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timezone
from typing import Any, TypeVar, cast

from jupyter_server.services.contents.manager import AsyncContentsManager
from tornado.web import HTTPError
from traitlets import Any as AnyTrait
from traitlets import Bool, Enum, Float, Int, TraitError, Type, default, observe, validate

from . import models
from .collab import RenamedDates, SavedHashes, drop_stale_file_ids, move_file_ids
from .errors import (
    AlreadyExists,
    BadRequest,
    Conflict,
    ContentsError,
    NotEmpty,
    NotFound,
    to_http_error,
)
from .folders import LEASE_SECONDS, Folders, new_owner_id
from .metrics import StorageMeter
from .paths import (
    CHECKPOINT_DIR,
    RENAME_JOURNAL,
    KeyMapper,
    is_hidden_path,
    join_api,
    matches_globs,
    normalize_api_path,
    split_api,
)
from .settings import apply_environment, configured_names
from .storage.base import ObjectInfo, PutMode, Storage

__all__ = ["ObjectStoreContentsManager"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_COPY_PAT = re.compile(r"\-Copy\d*\.")
#: Notebooks larger than this are parsed and serialised in a worker thread.
_THREAD_THRESHOLD = 256 * 1024


def _api(func: F) -> F:
    """Turn the package's errors into tornado ``HTTPError`` at the API boundary."""

    @functools.wraps(func)
    async def wrapper(self: ObjectStoreContentsManager, *args: Any, **kwargs: Any) -> Any:
        self._remember_loop()
        try:
            if not self._storage_checked:
                await self._check_storage()
            return await func(self, *args, **kwargs)
        except ContentsError as err:
            raise to_http_error(err) from None

    return cast(F, wrapper)


def _ancestors_and_self(api_path: str) -> list[str]:
    """``"a/b/c"`` -> ``["a", "a/b", "a/b/c"]``."""
    names = api_path.split("/")
    return ["/".join(names[: i + 1]) for i in range(len(names))]


def _call_hook(hook: Callable[..., Any], **candidates: Any) -> Any:
    """Call ``hook`` with those of ``candidates`` it accepts (all of them if it has **kw)."""
    try:
        params = inspect.signature(hook).parameters
    except (TypeError, ValueError):
        return hook(**candidates)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return hook(**candidates)
    return hook(**{k: v for k, v in candidates.items() if k in params})


class ObjectStoreContentsManager(AsyncContentsManager):
    """Jupyter contents (notebooks, files, folders, checkpoints) in an object store."""

    post_save_hook = AnyTrait(
        None,
        config=True,
        allow_none=True,
        help="""Python callable or importstring naming one, called after each save.

        Called as ``hook(model=model, s3_path=s3_path, contents_manager=self)``, where
        ``s3_path`` is the API path of the file just written (without bucket or prefix)
        and ``model`` the saved model without content. It runs in a worker thread, so it
        may block (nbconvert, for instance) without stalling the server, and may use the
        synchronous ``contents_manager.fs.read(path, format=...)`` and
        ``contents_manager.fs.write(path=..., content=..., format=...)``. A hook that
        raises makes the request answer 500 after the file was saved, as in Jupyter.
        Default: None.
        """,
    )

    @validate("post_save_hook")
    def _validate_post_save_hook(self, proposal: Any) -> Any:
        value = proposal["value"]
        if isinstance(value, str):
            from jupyter_server.utils import import_item

            value = import_item(value)
        if value is not None and not callable(value):
            raise TraitError("post_save_hook must be callable")
        return value

    max_concurrency = Int(
        32,
        config=True,
        help="""Storage requests one folder rename, copy or delete runs at once.
        Default: 32. Environment variable: S3CONTENTS_MAX_CONCURRENCY.""",
    ).tag(env="S3CONTENTS_MAX_CONCURRENCY")

    upload_part_size = Int(
        8 * 1024 * 1024,
        config=True,
        help="""Bytes buffered per chunked upload before they are sent as one multipart
        part; bounds the memory each upload holds. At least 5 MiB. Default: 8 MiB.
        Environment variable: S3CONTENTS_UPLOAD_PART_SIZE.""",
    ).tag(env="S3CONTENTS_UPLOAD_PART_SIZE")

    request_timeout = Float(
        60.0,
        config=True,
        help="""Seconds one storage request may take, retries included, before the
        operation fails with 503 (storage unavailable) instead of keeping the client
        waiting. 0 means no limit beyond the SDK's own connect and read timeouts. Default:
        60. Environment variable: S3CONTENTS_REQUEST_TIMEOUT.""",
    ).tag(env="S3CONTENTS_REQUEST_TIMEOUT")

    rename_lease = Float(
        LEASE_SECONDS,
        config=True,
        help="""Seconds a folder rename's claim on its two folders stays valid unless its
        server renews it (every third of it, while the rename runs). Another server may
        resume a rename whose claim ran out, so after a server was killed mid-rename, the
        rename can be completed after this long. Default: 30. Environment variable:
        S3CONTENTS_RENAME_LEASE.""",
    ).tag(env="S3CONTENTS_RENAME_LEASE")

    upload_timeout = Float(
        600.0,
        config=True,
        help="""Seconds after which a chunked upload that stopped receiving chunks is
        aborted and its parts freed in the bucket. Uploads under the prefix left behind by a
        process that died (begun, and given their last part, longer ago than this) are
        aborted when a Jupyter server starts and every this many seconds. Default: 600.
        Environment variable: S3CONTENTS_UPLOAD_TIMEOUT.""",
    ).tag(env="S3CONTENTS_UPLOAD_TIMEOUT")

    delete_to_trash = Bool(
        True,
        config=True,
        help="""Object storage has no trash: when True (Jupyter's default) deleting a
        folder deletes it with everything in it, as sending it to the trash would remove
        it from view. When False, a folder that is not empty is refused (400) unless
        ``always_delete_dir`` is set, as in Jupyter's local manager. Default: True.""",
    )

    always_delete_dir = Bool(
        False,
        config=True,
        help="""Delete folders that are not empty even when ``delete_to_trash`` is False.
        Default: False.""",
    )

    hash_algorithm = Enum(
        sorted(hashlib.algorithms_available),
        default_value="sha256",
        config=True,
        help="""Hash algorithm of the ``hash`` field of models asked for with
        ``require_hash``, as in Jupyter's local manager. Default: 'sha256'.""",
    )

    files_handler_class = Type(  # type: ignore[assignment]
        default_value="s3contents.handlers.StreamingFilesHandler",
        klass="tornado.web.RequestHandler",
        allow_none=True,
        config=True,
        help="""Handler of /files/ downloads: streams the object from the bucket in
        pieces, with the right content type, never through local disk.""",
    )

    #: Name of the folder marker object.
    folder_marker = ".s3keep"

    @default("root_dir")
    def _default_root_dir(self) -> str:
        # Nothing is read from this folder; it mirrors the server's own root_dir because
        # frontends (Notebook 7's tree) take the server's preferred_dir relative to it.
        return str(getattr(self.parent, "root_dir", "") or "/")

    @validate("preferred_dir")
    def _validate_preferred_dir(self, proposal: Any) -> str:
        """Jupyter checks that the folder exists while the configuration is still being
        loaded, before the storage settings are all known: here it is only normalised (a
        missing folder shows as a 404 in the file browser)."""
        try:
            value = normalize_api_path(str(proposal["value"]))
        except ContentsError as err:
            raise TraitError(f"preferred_dir: {err}") from None
        if self.parent is not None and value:
            with contextlib.suppress(TraitError, AttributeError):
                self.parent.preferred_dir = os.path.join(self.root_dir, *value.split("/"))
        return value

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Made by a synchronous contents manager (PyPI's hybridcontents): serve it with
        # blocking calls (see s3contents.blocking). Python still calls __init__ on it.
        from .blocking import blocking_variant, serves_sync_parent

        if serves_sync_parent(kwargs.get("parent")):
            cls = blocking_variant(cls)
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        apply_environment(self, configured_names(self, kwargs))
        self._storage: Storage | None = None
        self._keys: KeyMapper | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._uploads: Any = None
        self._fs: Any = None
        self._storage_checked = False
        self._hashes = SavedHashes()
        self._renamed = RenamedDates()
        #: Who this manager is in the claims of folder renames (s3contents.folders).
        self._owner = new_owner_id()
        self._renames_running: set[tuple[str, str]] = set()
        from .handlers import guard_contents_api
        from .serverhooks import attach

        guard_contents_api(self.parent)
        attach(self)

    # -- provider hooks -------------------------------------------------------------------
    def _build_storage(self) -> Storage:
        """Build the provider's storage adapter (overridden by provider classes)."""
        raise NotImplementedError

    def _key_prefix(self) -> str:
        return ""

    def _key_delimiter(self) -> str:
        return "/"

    # -- wiring ---------------------------------------------------------------------------
    @property
    def storage(self) -> Storage:
        """The storage adapter (built on first use)."""
        if self._storage is None:
            self.storage = self._build_storage()
        assert self._storage is not None
        return self._storage

    @storage.setter
    def storage(self, value: Storage) -> None:
        value.request_timeout = self.request_timeout or None
        if value.observer is None:
            # Measured around the port: the adapter only tells its observer.
            value.observer = StorageMeter(value.provider, value.bucket)
        self._storage = value

    @observe("request_timeout")
    def _request_timeout_changed(self, change: Any) -> None:
        storage = getattr(self, "_storage", None)  # None until __init__ has run
        if storage is not None:
            storage.request_timeout = change["new"] or None

    @property
    def keys(self) -> KeyMapper:
        """Maps API paths to object keys."""
        if self._keys is None:
            self._keys = KeyMapper(
                prefix=self._key_prefix(),
                delimiter=self._key_delimiter(),
                marker=self.folder_marker,
            )
        return self._keys

    @property
    def folders(self) -> Folders:
        """Whole-folder copy, delete and rename on this manager's storage and keys."""
        return Folders(
            self.storage,
            self.keys,
            owner=self._owner,
            concurrency=self.max_concurrency,
            lease_seconds=self.rename_lease,
            running=self._renames_running,
        )

    @property
    def fs(self) -> Any:
        """Synchronous file access for save hooks (see :class:`s3contents.hookfs.HookFS`)."""
        if self._fs is None:
            from .hookfs import HookFS

            self._fs = HookFS(self)
        return self._fs

    @property
    def uploads(self) -> Any:
        """Chunked uploads in progress (see :mod:`s3contents.uploads`)."""
        if self._uploads is None:
            from .uploads import ChunkedUploads

            self._uploads = ChunkedUploads(
                self.storage,
                part_size=self.upload_part_size,
                timeout=self.upload_timeout,
                logger=self.log,
            )
        return self._uploads

    async def _check_storage(self) -> None:
        """Check the bucket once, on the first request (1 request per server process).

        A missing bucket answers 503 with its name, logged once, and is checked again on
        the next request, so creating the bucket fixes the server without a restart.
        """
        try:
            await self.storage.check()
        except ContentsError as err:
            if not self._storage_error_logged:
                self.log.error("Object storage not ready: %s", err)
                self._storage_error_logged = True
            raise
        self._storage_checked = True

    _storage_error_logged = False

    def _remember_loop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()

    @default("checkpoints_class")
    def _default_checkpoints_class(self) -> type:
        from .checkpoints import ObjectStoreCheckpoints

        return ObjectStoreCheckpoints

    def info_string(self) -> str:
        prefix = self.keys.prefix
        return f"Serving contents from {self.storage.url}" + (f"/{prefix}" if prefix else "")

    # -- rules ----------------------------------------------------------------------------
    def _norm(self, api_path: str | None) -> str:
        return normalize_api_path(api_path)

    def _reserved(self, api_path: str) -> bool:
        """Names the package owns: folder markers and the checkpoint folders."""
        names = api_path.split("/")
        return names[-1] in (self.folder_marker, RENAME_JOURNAL) or CHECKPOINT_DIR in names

    def _check_readable(self, api_path: str) -> None:
        if api_path and (
            (not self.allow_hidden and is_hidden_path(api_path))
            or api_path.split("/")[-1] in (self.folder_marker, RENAME_JOURNAL)
        ):
            raise NotFound(f"file or directory does not exist: {api_path!r}", path=api_path)

    def _check_writable(self, api_path: str, verb: str = "create") -> None:
        if not api_path:
            raise BadRequest(f"Cannot {verb} the root folder", path=api_path)
        if self._reserved(api_path):
            raise BadRequest(f"Cannot {verb} {api_path!r}: the name is reserved", path=api_path)
        if not self.allow_hidden and is_hidden_path(api_path):
            raise BadRequest(f"Cannot {verb} file or directory {api_path!r}", path=api_path)

    def _listable(self, name: str) -> bool:
        if name in (self.folder_marker, CHECKPOINT_DIR, RENAME_JOURNAL) or not name:
            return False
        if not self.allow_hidden and name.startswith("."):
            return False
        return not matches_globs(name, list(self.hide_globs))

    @staticmethod
    def _content_type(api_path: str) -> str:
        if api_path.endswith(".ipynb"):
            return models.NOTEBOOK_MIMETYPE
        return models.guess_mimetype(api_path) or "application/octet-stream"

    @staticmethod
    def _kind(api_path: str, type_: str | None = None) -> str:
        if type_ in ("notebook", "file"):
            return type_
        return "notebook" if api_path.endswith(".ipynb") else "file"

    # -- folders --------------------------------------------------------------------------
    async def _list_dir(self, api_path: str) -> tuple[list[ObjectInfo], list[str], bool]:
        """One delimited LIST of a folder: (files, subfolder names, exists)."""
        prefix = self.keys.dir_prefix(api_path)
        listing = await self.storage.list(prefix, self.keys.delimiter)
        files = []
        exists = bool(listing.prefixes)
        claim = prefix + RENAME_JOURNAL  # alone, the lock of a rename moving it away
        for obj in listing.objects:
            exists = exists or obj.key != claim
            if obj.key == prefix or obj.key.endswith(self.keys.delimiter):
                continue  # a zero-byte "folder/" object (AWS console, SeaweedFS)
            files.append(obj)
        dirs = [self.keys.child_name(prefix, p) for p in listing.prefixes]
        return files, [d for d in dirs if d], exists or not api_path

    def _dir_model_from_listing(
        self, api_path: str, files: list[ObjectInfo], dirs: list[str], content: bool
    ) -> dict[str, Any]:
        prefix = self.keys.dir_prefix(api_path)
        files = [self._renamed.apply(o) for o in files]
        # A folder has no date of its own in object storage: take its newest direct entry
        # (its marker included), the store's own time, or the epoch when it has none.
        newest = max((o.last_modified for o in files), default=models.UNKNOWN_TIME)
        entries: list[dict[str, Any]] | None = None
        if content:
            entries = []
            for obj in files:
                name = self.keys.child_name(prefix, obj.key)
                if not self._listable(name):
                    continue
                child = join_api(api_path, name)
                entries.append(
                    models.file_model(child, self._kind(child), obj.last_modified, obj.size)
                )
            for name in dirs:
                if self._listable(name):
                    entries.append(models.directory_model(join_api(api_path, name), None))
        return models.directory_model(api_path, newest, entries)

    async def _dir_exists(self, api_path: str) -> bool:
        if not api_path:
            return True
        # A folder holding nothing but the lock of its own rename is gone for new files:
        # a save racing the rename is refused (404) instead of landing under the old name.
        return await self.folders.exists(api_path)

    async def _file_info(self, api_path: str) -> ObjectInfo | None:
        if not api_path:
            return None
        try:
            return await self.storage.head(self.keys.key(api_path))
        except NotFound:
            return None

    # -- existence ------------------------------------------------------------------------
    @_api
    async def dir_exists(self, path: str) -> bool:
        api_path = self._norm(path)
        return await self._dir_exists(api_path)

    @_api
    async def file_exists(self, path: str = "") -> bool:
        api_path = self._norm(path)
        if self._uploads is None or not api_path:
            return await self._file_info(api_path) is not None
        # jupyter_server's PUT handler asks before each chunk of an upload: the upload
        # changes nothing at the key until it completes, so its session remembers the answer.
        key = self.keys.key(api_path)
        known = self._uploads.object_exists(key)
        if known is not None:
            return bool(known)
        exists = await self._file_info(api_path) is not None
        self._uploads.note_object_exists(key, exists)
        return exists

    @_api
    async def exists(self, path: str) -> bool:
        api_path = self._norm(path)
        if not api_path:
            return True
        return await self._file_info(api_path) is not None or await self._dir_exists(api_path)

    async def is_hidden(self, path: str) -> bool:
        try:
            api_path = self._norm(path)
        except ContentsError:
            return True
        return is_hidden_path(api_path) or self._reserved(api_path)

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
            # folder, and only a miss costs the GET or HEAD of a file.
            files, dirs, exists = await self._list_dir(api_path)
            if exists:
                model = self._dir_model_from_listing(api_path, files, dirs, content)
            else:
                model = await self._get_file(api_path, content, type, format, require_hash)
                if model is None:
                    raise NotFound(f"No such file or directory: {api_path}", path=api_path)
        self.emit(data={"action": "get", "path": api_path})
        return model

    async def _get_dir(self, api_path: str, content: bool, type_: str | None) -> dict[str, Any]:
        files, dirs, exists = await self._list_dir(api_path)
        if not exists:
            if type_ == "directory" and await self._file_info(api_path) is not None:
                raise BadRequest(f"{api_path} is not a directory", path=api_path)
            raise NotFound(f"No such file or directory: {api_path}", path=api_path)
        if type_ in ("file", "notebook"):
            raise BadRequest(f"{api_path} is a directory, not a {type_}", path=api_path)
        return self._dir_model_from_listing(api_path, files, dirs, content)

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
        kind = self._kind(api_path, type_)
        try:
            if not content and not require_hash:
                info = self._renamed.apply(await self.storage.head(key))
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
                    nb = await asyncio.to_thread(
                        models.parse_notebook, data, api_path, validation_error
                    )
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
            hashed = models.hash_fields(data, self.hash_algorithm)
            self._hashes.remember(key, info.etag, hashed)
            model.update(hashed)
        return model

    # -- save -----------------------------------------------------------------------------
    @_api
    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        """Save a model (notebook, file, folder, or one chunk of an upload)."""
        try:
            return await self._save(model, path, PutMode.OVERWRITE)
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

        await self._run_pre_save_hooks(model, api_path)
        type_ = model.get("type")
        if type_ is None:
            raise BadRequest("No file type provided", path=api_path)
        if "content" not in model and type_ != "directory":
            raise BadRequest("No file content provided", path=api_path)
        creating = mode is PutMode.CREATE and not parent_known
        if creating:
            # Creating needs an existing parent, as on a file system. Overwriting an
            # existing file (a save) skips the check: it costs a LIST per save.
            await self._check_parent(api_path)

        validation_message = None
        if type_ == "directory":
            await self._make_dir(api_path)
            saved = await self._get_dir(api_path, False, "directory")
        elif type_ in ("notebook", "file"):
            key = self.keys.key(api_path)
            if type_ == "notebook":
                nb = models.notebook_from_model(model["content"], api_path)
                self.check_and_sign(nb, api_path)
                validation_error: dict[str, Any] = {}
                data = await self._encode_notebook(nb, validation_error)
                content_type = models.NOTEBOOK_MIMETYPE
            else:
                data = models.encode_content(model["content"], model.get("format"), api_path)
                content_type = models.guess_mimetype(api_path) or "application/octet-stream"
            if creating and await self._dir_exists_cheap(api_path):
                raise AlreadyExists(f"A folder named {api_path} exists", path=api_path)
            # The write time goes with the object (see storage.base.MTIME_KEY): the model
            # needs no HEAD, and every server reports this time, to the microsecond.
            now = datetime.now(timezone.utc)
            etag = await self.storage.put(
                key, data, mode=mode, content_type=content_type, mtime=now
            )
            self._renamed.forget(key)
            if etag:
                await self._remember_hash(key, etag, data)
            saved = models.file_model(api_path, type_, now, len(data))
            if type_ == "notebook":
                self.validate_notebook_model(model, validation_error)
                validation_message = model.get("message")
        else:
            raise BadRequest(f"Unhandled contents type: {type_}", path=api_path)

        if validation_message:
            saved["message"] = validation_message
        await self._run_post_save_hooks(saved, api_path)
        self.emit(data={"action": "save", "path": api_path})
        return saved

    async def _remember_hash(self, key: str, etag: str, data: bytes) -> None:
        """Hash what a save wrote, for the ``require_hash`` get that may follow (see
        :mod:`s3contents.collab`); large contents are hashed off the event loop."""
        if len(data) > _THREAD_THRESHOLD:
            hashed = await asyncio.to_thread(models.hash_fields, data, self.hash_algorithm)
        else:
            hashed = models.hash_fields(data, self.hash_algorithm)
        self._hashes.remember(key, etag, hashed)

    async def _dir_exists_cheap(self, api_path: str) -> bool:
        """Is there a folder where a file is about to be written?

        Only asked for extension-less names, where a folder is plausible: saving a file
        over a folder name would make one name both a file and a folder.
        """
        if "." in api_path.rsplit("/", 1)[-1]:
            return False
        return await self._dir_exists(api_path)

    async def _check_parent(self, api_path: str) -> None:
        """The parent folder must exist, as on a file system (free for the root, else
        one LIST of at most one key): object storage would otherwise create it silently."""
        parent, _ = split_api(api_path)
        if parent and not await self._dir_exists(parent):
            raise NotFound(f"No such directory: {parent}", path=parent)

    async def _encode_notebook(self, nb: Any, validation_error: dict[str, Any]) -> bytes:
        # Serialising a large notebook takes tens of milliseconds: keep it off the loop.
        if sum(len(str(c.get("source", ""))) for c in nb.get("cells", ())) > _THREAD_THRESHOLD:
            return await asyncio.to_thread(models.encode_notebook, nb, validation_error)
        return models.encode_notebook(nb, validation_error)

    async def _make_dir(self, api_path: str) -> None:
        if await self._file_info(api_path) is not None:
            raise BadRequest(f"Not a directory: {api_path}", path=api_path)
        await self.storage.put(self.keys.marker_key(api_path), b"")

    async def _save_chunk(self, model: dict[str, Any], api_path: str, chunk: Any) -> dict[str, Any]:
        if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk == 0 or chunk < -1:
            raise BadRequest(f"Invalid chunk number {chunk!r}", path=api_path)
        if "type" not in model:
            raise BadRequest("No file type provided", path=api_path)
        if model["type"] != "file":
            raise BadRequest(
                f'File type "{model["type"]}" is not supported for large file transfer',
                path=api_path,
            )
        if "content" not in model:
            raise BadRequest("No file content provided", path=api_path)
        if chunk == 1:
            await self._run_pre_save_hooks(model, api_path)
            await self._check_parent(api_path)
        key = self.keys.key(api_path)
        try:
            data = models.encode_content(model["content"], model.get("format"), api_path)
        except BadRequest as err:
            # A chunk that cannot be decoded ends its upload: nothing partial is kept.
            if await self.uploads.abort(key, "a chunk could not be decoded"):
                raise BadRequest(f"{err}; the upload was aborted", path=api_path) from None
            raise
        content_type = models.guess_mimetype(api_path) or "application/octet-stream"
        result = await self.uploads.add(key, chunk, data, content_type)
        if result.info is None:
            now = datetime.now(timezone.utc)
            return models.file_model(api_path, "file", now, result.received)
        info = result.info
        saved = models.file_model(api_path, "file", info.last_modified, info.size)
        if result.wrote:  # not for a last chunk sent again and answered without a write
            await self._run_post_save_hooks(saved, api_path)
            self.emit(data={"action": "save", "path": api_path})
        return saved

    # -- hooks ----------------------------------------------------------------------------
    async def _run_pre_save_hooks(self, model: dict[str, Any], api_path: str) -> None:
        if self.pre_save_hook is None and not self._pre_save_hooks:
            return
        # Hooks are user code that may block: run them in a worker thread. They may use
        # ``contents_manager.fs``, which hops back onto this loop.
        await asyncio.to_thread(self.run_pre_save_hooks, model=model, path=api_path)

    async def _run_post_save_hooks(self, model: dict[str, Any], api_path: str) -> None:
        hooks = [self.post_save_hook] if self.post_save_hook is not None else []
        hooks += list(self._post_save_hooks)
        for hook in hooks:
            self.log.debug("Running post-save hook on %s", api_path)
            try:
                await asyncio.to_thread(
                    _call_hook,
                    hook,
                    model=model,
                    s3_path=api_path,
                    os_path=api_path,
                    contents_manager=self,
                )
            except HTTPError:
                raise
            except Exception as err:
                self.log.error("Post-save hook failed on %s", api_path, exc_info=True)
                raise HTTPError(
                    500, f"Unexpected error while running post hook save: {err}"
                ) from None

    # -- new / copy -----------------------------------------------------------------------
    @_api
    async def new(self, model: dict[str, Any] | None = None, path: str = "") -> dict[str, Any]:
        """Create a new file or folder at ``path`` (refuses to replace an existing file)."""
        api_path = self._norm(path)
        model = dict(model or {})
        self._fill_new_model(model, api_path)
        return await self._save(model, api_path, PutMode.CREATE)

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

    async def _taken_names(self, dir_path: str) -> set[str]:
        files, dirs, exists = await self._list_dir(dir_path)
        if not exists:
            raise NotFound(f"No such directory: {dir_path}", path=dir_path)
        prefix = self.keys.dir_prefix(dir_path)
        return {self.keys.child_name(prefix, o.key) for o in files} | set(dirs)

    @staticmethod
    def _candidates(filename: str, insert: str) -> Iterable[str]:
        basename, dot, ext = filename.rpartition(".")
        if ext != "ipynb":
            basename, dot, ext = filename.partition(".")
        suffix = dot + ext
        i = 0
        while True:
            yield f"{basename}{insert}{i}{suffix}" if i else f"{basename}{suffix}"
            i += 1

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
        taken = await self._taken_names(dir_path)
        attempts = 0
        for name in self._candidates(filename, insert):
            if name in taken:
                continue
            try:
                return await create(join_api(dir_path, name))
            except AlreadyExists:
                taken.add(name)
                attempts += 1
                if attempts > 100:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

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
                await self.storage.put(self.keys.marker_key(api_path), b"", mode=PutMode.CREATE)
                saved = await self._get_dir(api_path, False, "directory")
                self.emit(data={"action": "save", "path": api_path})
                return saved
            self._fill_new_model(m, api_path)
            return await self._save(m, api_path, PutMode.CREATE, parent_known=True)

        return await self._create_unique(dir_path, untitled + ext, insert, create)

    @_api
    async def copy(self, from_path: str, to_path: str | None = None) -> dict[str, Any]:
        """Copy a file or folder server-side, never replacing an existing entry."""
        src = self._norm(from_path)
        self._check_readable(src)
        dst = self._norm(to_path) if to_path is not None else None
        from_dir, from_name = split_api(src)
        info = await self._file_info(src)
        is_dir = info is None
        if is_dir and not await self._dir_exists(src):
            raise NotFound(f"No such file or directory: {src}", path=src)

        target_dir = dst if dst is not None else from_dir
        if dst is None or await self._dir_exists(target_dir):
            name = _COPY_PAT.sub(".", from_name)

            async def create(api_path: str) -> dict[str, Any]:
                return await self._copy_to(src, api_path, info)

            model = await self._create_unique(target_dir, name, "-Copy", create)
        elif is_dir:
            # As Jupyter's local manager: a folder copied to a path that is no folder goes
            # into a new folder of that path, under its own name.
            for parent in _ancestors_and_self(dst):
                if await self._file_info(parent) is not None:
                    raise BadRequest(f"{parent} is a file, not a folder", path=dst)
            model = await self._copy_to(src, join_api(dst, _COPY_PAT.sub(".", from_name)), info)
        else:
            to_dir, _ = split_api(dst)
            if to_dir and not await self._dir_exists(to_dir):
                raise NotFound(f"No such parent directory: {to_dir} to copy file in", path=to_dir)
            if info is not None and await self._file_info(dst) is not None:
                # As for rename: not every store honours a create-only copy.
                raise AlreadyExists(f"File already exists: {dst}", path=dst)
            model = await self._copy_to(src, dst, info)
        drop_stale_file_ids(self.parent, model["path"])
        self.emit(data={"action": "copy", "path": model["path"], "source_path": src})
        return model

    async def _copy_to(self, src: str, dst: str, src_info: ObjectInfo | None) -> dict[str, Any]:
        """Copy the file (``src_info`` given) or folder ``src`` to the new name ``dst``."""
        self._check_writable(dst, "copy to")
        if src_info is not None:
            if await self._dir_exists_cheap(dst):
                raise AlreadyExists(f"A folder named {dst} exists", path=dst)
            dst_key = self.keys.key(dst)
            now = datetime.now(timezone.utc)  # a copy is a new file: a new write time
            await self.storage.copy(
                self.keys.key(src),
                dst_key,
                mode=PutMode.CREATE,
                mtime=now,
                content_type=self._content_type(dst),
            )
            return models.file_model(dst, self._kind(dst), now, src_info.size)
        if dst == src or dst.startswith(src + "/"):
            raise BadRequest(f"Cannot copy {src} into itself", path=dst)
        if await self._file_info(dst) is not None or await self._dir_exists(dst):
            raise AlreadyExists(f"File already exists: {dst}", path=dst)
        await self.folders.copy_tree(src, dst)
        return await self._get_dir(dst, False, "directory")

    # -- rename / delete ------------------------------------------------------------------
    @_api
    async def rename_file(self, old_path: str, new_path: str) -> None:
        """Rename a file or folder (server-side copies, then deletion of the source)."""
        await self._rename_file(self._norm(old_path), self._norm(new_path))

    async def _rename_file(self, old: str, new: str) -> bool:
        """Rename; returns True when ``old`` was a folder."""
        if old == new:
            return False
        self._check_writable(old, "rename")
        self._check_writable(new, "rename to")
        same_parent = split_api(old)[0] == split_api(new)[0]
        info = await self._file_info(old)
        if info is None:
            await self._rename_dir(old, new)
            return True
        if not same_parent:
            await self._check_parent(new)
        # The HEAD is for servers that ignore If-None-Match on CopyObject (moto, some
        # S3-compatible stores, fake-gcs-server); the create-only copy still closes the
        # race where the store honours it (AWS, SeaweedFS, GCS).
        if await self._file_info(new) is not None or await self._dir_exists_cheap(new):
            raise AlreadyExists(f"File already exists: {new}", path=new)
        new_key = self.keys.key(new)
        try:
            copied = await self.storage.copy(self.keys.key(old), new_key, mode=PutMode.CREATE)
        except AlreadyExists:
            raise AlreadyExists(f"File already exists: {new}", path=new) from None
        try:
            # Only the version copied: a save that landed meanwhile must not vanish.
            await self.storage.delete(self.keys.key(old), etag=info.etag)
        except Conflict:
            # Only the copy made here: a save at the new name meanwhile stays.
            with contextlib.suppress(Conflict):
                await self.storage.delete(new_key, etag=copied.etag)
            raise Conflict(
                f"{old} was saved while it was being renamed; nothing was renamed, try again",
                path=old,
            ) from None
        self._renamed.remember(new_key, info)  # a rename keeps the file's date
        return False

    async def _rename_dir(self, old: str, new: str) -> None:
        """Rename a folder: :meth:`s3contents.folders.Folders.rename`, safe with several
        servers on the prefix and with any of them killed half-way."""

        async def file_exists(api_path: str) -> bool:
            return await self._file_info(api_path) is not None

        await self.folders.rename(
            old,
            new,
            check_parent=self._check_parent,
            file_exists=file_exists,
            on_copied=self._renamed.remember,
        )

    @_api
    async def delete_file(self, path: str) -> None:
        """Delete a file, or a folder and everything in it."""
        await self._delete_file(self._norm(path))

    async def _delete_file(self, api_path: str) -> bool:
        """Delete; returns True when it was a folder."""
        if not api_path:
            raise BadRequest("Can't delete root", path=api_path)
        self._check_writable(api_path, "delete")
        if await self._file_info(api_path) is not None:
            await self.storage.delete(self.keys.key(api_path))
            return False
        folders = self.folders
        objects = await folders.tree(api_path)
        if not objects:
            emptied = await folders.emptied_entries(api_path)
            if not emptied:
                raise NotFound(f"File or directory does not exist: {api_path}", path=api_path)
            await self.storage.delete_many(emptied)
            return True
        await folders.refuse_if_claimed(api_path, objects)
        if not self.delete_to_trash and not self.always_delete_dir:
            prefix = self.keys.dir_prefix(api_path)
            for o in objects:
                rel = o.key[len(prefix) :]
                first = rel.split(self.keys.delimiter, 1)[0]
                if rel and first not in (self.folder_marker, CHECKPOINT_DIR, RENAME_JOURNAL):
                    raise NotEmpty(f"Directory {api_path} not empty", path=api_path)
        await folders.delete_tree(api_path, objects)
        return True

    @_api
    async def delete(self, path: str) -> None:
        api_path = self._norm(path)
        if not api_path:
            raise BadRequest("Can't delete root", path=api_path)
        if not await self._delete_file(api_path):
            # A folder's checkpoints live inside it and went with it.
            await self.checkpoints.delete_all_checkpoints(api_path)
        self.emit(data={"action": "delete", "path": api_path})

    @_api
    async def rename(self, old_path: str, new_path: str) -> None:
        old, new = self._norm(old_path), self._norm(new_path)
        was_dir = await self._rename_file(old, new)
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
            raise BadRequest(f"Invalid notebook: {type(err).__name__} {err}", path=path) from None

    async def get_kernel_path(self, path: str, model: Any = None) -> str:
        """Kernels start in a temporary local folder: notebooks have no local directory."""
        return ""

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
        if self._reserved(api_path):
            raise NotFound(f"file does not exist: {api_path!r}", path=api_path)
        return api_path

    async def sweep_uploads(self) -> int:
        """Abort the orphaned uploads under this manager's prefix (left behind by a process
        that died: silent for longer than ``upload_timeout``); returns how many. A Jupyter
        server does it at start and every ``upload_timeout`` seconds (see
        :mod:`s3contents.serverext`)."""
        try:
            return int(await self.uploads.sweep(self.keys.root))
        except ContentsError as err:
            raise to_http_error(err) from None

    def start_sweeping_uploads(self) -> None:
        """Sweep now and every ``upload_timeout`` seconds in the running event loop, until
        :meth:`close` (the server extension calls it at start)."""
        self._remember_loop()
        self.uploads.start_sweeping(self.keys.root)

    async def close(self) -> None:
        """Abort uploads in progress, stop the sweeps and close the storage connections
        (the server extension calls it when the server stops). May be called again."""
        if self._uploads is not None:
            await self._uploads.abort_all()
        if self._storage is not None:
            await self._storage.close()
