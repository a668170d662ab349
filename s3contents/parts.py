"""What a bucket manager is made of, and how it is put together (API layer, beneath
:mod:`s3contents.manager`, which holds the contents API itself).

:class:`ManagerParts` builds, on first use, the parts the contents API works with: the
provider's storage adapter (``_build_storage``, overridden by each provider's manager), the
key mapping, whole-folder operations, the tree of files and folders, chunked uploads and the
save hooks' ``fs``; it checks the bucket once, at the first request; and it runs the
uploads' upkeep (sweeps, aborts) and closes the parts when the server stops. Its base,
:class:`~s3contents.settings.BucketSettings`, declares the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar, cast

from traitlets import default, observe

from . import handoff
from .blocking import blocking_variant, serves_sync_parent
from .checkpoints import ObjectStoreCheckpoints
from .claims import new_owner_id
from .collab import RenamedDates, SavedHashes
from .contents import Download
from .errors import BadRequest, ContentsError, NotFound, http_errors
from .hooks import HookFS
from .metrics import StorageMeter
from .paths import KeyMapper, is_hidden_path, matches_globs, normalize_api_path, split_api
from .renames import FolderRenames
from .serverhooks import attach
from .settings import BucketSettings, apply_environment, configured_names
from .storage.base import Storage
from .syncprobe import SyncProbe
from .traits import StoreTraits
from .tree import Tree
from .uploads import ChunkedUploads

__all__ = ["ManagerParts", "api_call"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def api_call(func: F) -> F:
    """A public method of the contents API: the bucket is checked at the first call, what
    the request's previous call handed over is taken (:mod:`s3contents.handoff`), and the
    package's errors leave as HTTP errors (:func:`s3contents.errors.http_errors`)."""

    @functools.wraps(func)
    @http_errors
    async def wrapper(self: ManagerParts, *args: Any, **kwargs: Any) -> Any:
        self._remember_loop()
        with handoff.receiving():
            if not self._storage_checked:
                await self._check_storage()
            return await func(self, *args, **kwargs)

    return cast(F, wrapper)


class ManagerParts(BucketSettings):
    """The parts of a bucket manager (see the module's notes)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Made by a synchronous contents manager (PyPI's hybridcontents): serve it with
        # blocking calls (see s3contents.blocking). Python still calls __init__ on it.
        if serves_sync_parent(kwargs.get("parent")):
            cls = blocking_variant(cls)
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        apply_environment(self, configured_names(self, kwargs))
        self._storage: Storage | None = None
        self._keys: KeyMapper | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._uploads: ChunkedUploads | None = None
        self._fs: HookFS | None = None
        self._sync_probe: SyncProbe | None = None
        self._storage_checked = False
        self._hashes = SavedHashes()
        self._renamed = RenamedDates()
        #: The write times of the saves this process made (kept in each object's metadata,
        #: which S3 listings do not carry): its listings' entries then equal a HEAD's model.
        self._written = RenamedDates()
        #: Who this manager is in the claims of folder renames (s3contents.folders).
        self._owner = new_owner_id()
        self._renames_running: set[tuple[str, str]] = set()
        self._store_traits: StoreTraits | None = None
        # The server extension ``s3contents`` (sweeps, close at stop, the /api/contents
        # handler): enabled in the server that runs this manager.
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
        self._store_traits = None  # another store: probed again when needed

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
    def store_traits(self) -> StoreTraits:
        """What the store does where stores differ, probed once (:mod:`s3contents.traits`)."""
        if self._store_traits is None:
            self._store_traits = StoreTraits(self.storage, self.keys, self._owner)
        return self._store_traits

    @property
    def folders(self) -> FolderRenames:
        """Whole-folder copy, delete and rename on this manager's storage and keys."""
        return FolderRenames(
            self.storage,
            self.keys,
            owner=self._owner,
            concurrency=self.max_concurrency,
            lease_seconds=self.rename_lease,
            running=self._renames_running,
            traits=self.store_traits,
        )

    @property
    def tree(self) -> Tree:
        """Files and folders as objects (see :mod:`s3contents.tree`)."""
        return Tree(self.storage, self.keys, self.folders)

    @property
    def fs(self) -> HookFS:
        """Synchronous file access for save hooks (see :class:`s3contents.hooks.HookFS`)."""
        if self._fs is None:
            self._fs = HookFS(self)
        return self._fs

    @property
    def sync_probe(self) -> SyncProbe:
        """Storage calls for a synchronous caller on the loop's thread (jupytext's
        un-awaited ``exists``): an adapter of its own on a thread of its own, built on first
        use (see :mod:`s3contents.syncprobe`)."""
        if self._sync_probe is None:

            def build() -> Storage:
                storage = self._build_storage()
                storage.request_timeout = self.request_timeout or None
                # Its requests are counted in /metrics too (prometheus_client is thread-safe).
                storage.observer = StorageMeter(storage.provider, storage.bucket)
                return storage

            self._sync_probe = SyncProbe(build, self.request_timeout or None)
        return self._sync_probe

    @property
    def uploads(self) -> ChunkedUploads:
        """Chunked uploads in progress (see :mod:`s3contents.uploads`)."""
        if self._uploads is None:
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

    @property
    def event_loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop that serves this manager (known from its first API call): the
        hooks' synchronous ``fs`` hands its operations to it."""
        return self._loop

    @default("checkpoints_class")
    def _default_checkpoints_class(self) -> type:
        return ObjectStoreCheckpoints

    def info_string(self) -> str:
        prefix = self.keys.prefix
        return f"Serving contents from {self.storage.url}" + (f"/{prefix}" if prefix else "")

    # -- for the web layer and the hybrid manager -----------------------------------------
    @api_call
    async def download(self, path: str) -> Download:
        """The file at ``path`` for ``/files/``: one HEAD now, its bytes streamed from the
        store when read. Hidden files (unless allowed) and the package's own objects are 404."""
        api_path = self._norm(path)
        if not api_path:
            raise NotFound("Not a file")
        if (not self.allow_hidden and is_hidden_path(api_path)) or self.keys.is_reserved(api_path):
            raise NotFound("Not found", path=api_path)
        info = self._renamed.apply(await self.storage.head(self.keys.key(api_path)))
        storage = self.storage

        def read(piece_size: int) -> AsyncGenerator[bytes, None]:
            return storage.stream(info.key, piece_size)

        return Download(split_api(api_path)[1], info.size, info.last_modified, info.etag, read)

    def stream(self, path: str, piece_size: int) -> AsyncGenerator[bytes, None]:
        """The bytes of the file at ``path`` as they arrive from the store, in pieces of at
        most ``piece_size``: one GET, no HEAD (the hybrid manager's copies, whose source
        was already asked for its type). Errors are the package's, raised when iterated."""
        api_path = self._norm(path)
        self._check_readable(api_path)
        return self.storage.stream(self.keys.key(api_path), piece_size)

    @api_call
    async def stored_files(self, path: str) -> list[str]:
        """Every file stored under the folder ``path``, recursively, hidden or not (paths
        inside it), from the store itself rather than listings: the package's own objects
        and checkpoints excepted. The hybrid manager checks with it that a move between
        mounts leaves nothing behind."""
        return await self.tree.stored_files(self._norm(path))

    # -- name rules, on the settings --------------------------------------------------------
    def _norm(self, api_path: str | None) -> str:
        return normalize_api_path(api_path)

    def _check_readable(self, api_path: str) -> None:
        if api_path and (
            (not self.allow_hidden and is_hidden_path(api_path)) or self.keys.is_own_file(api_path)
        ):
            raise NotFound(f"file or directory does not exist: {api_path!r}", path=api_path)

    def _check_writable(self, api_path: str, verb: str = "create") -> None:
        if not api_path:
            raise BadRequest(f"Cannot {verb} the root folder", path=api_path)
        if self.keys.is_reserved(api_path):
            raise BadRequest(f"Cannot {verb} {api_path!r}: the name is reserved", path=api_path)
        if not self.allow_hidden and is_hidden_path(api_path):
            raise BadRequest(f"Cannot {verb} file or directory {api_path!r}", path=api_path)

    def _listable(self, name: str) -> bool:
        if self.keys.is_own_name(name) or not name:
            return False
        if not self.allow_hidden and name.startswith("."):
            return False
        return not matches_globs(name, list(self.hide_globs))

    # -- uploads and the end ---------------------------------------------------------------
    async def abort_upload(self, path: str, reason: str) -> bool:
        """Abort the chunked upload in progress to ``path``, if any (its object never
        appears); returns whether there was one."""
        if self._uploads is None:
            return False
        return bool(
            await http_errors(self._uploads.abort)(self.keys.key(normalize_api_path(path)), reason)
        )

    async def sweep_uploads(self) -> int:
        """Abort the orphaned uploads under this manager's prefix (left behind by a process
        that died: silent for longer than ``upload_timeout``); returns how many. A Jupyter
        server does it at start and every ``upload_timeout`` seconds (see
        :mod:`s3contents.serverext`)."""
        return int(await http_errors(self.uploads.sweep)(self.keys.root))

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
        if self._sync_probe is not None:
            probe, self._sync_probe = self._sync_probe, None
            await asyncio.to_thread(probe.close)
