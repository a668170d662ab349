"""What a bucket manager is made of, and how it is put together (API layer, beneath
:mod:`s3contents.manager`, which holds the contents API itself).

:class:`ManagerParts` builds, on first use, the parts the contents API works with: the
provider's storage adapter (``_build_storage``, overridden by each provider's manager), the
key mapping, whole-folder operations, the tree of files and folders, chunked uploads and the
save hooks' ``fs``; and it checks the bucket once, at the first request. Its base,
:class:`~s3contents.settings.BucketSettings`, declares the settings.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from traitlets import default, observe

from .blocking import blocking_variant, serves_sync_parent
from .checkpoints import ObjectStoreCheckpoints
from .claims import new_owner_id
from .collab import RenamedDates, SavedHashes
from .errors import ContentsError
from .hooks import HookFS
from .metrics import StorageMeter
from .paths import KeyMapper
from .renames import FolderRenames
from .serverhooks import attach
from .settings import BucketSettings, apply_environment, configured_names
from .storage.base import Storage
from .tree import Tree
from .uploads import ChunkedUploads

__all__ = ["ManagerParts"]


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
        self._storage_checked = False
        self._hashes = SavedHashes()
        self._renamed = RenamedDates()
        #: Who this manager is in the claims of folder renames (s3contents.folders).
        self._owner = new_owner_id()
        self._renames_running: set[tuple[str, str]] = set()
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
    def folders(self) -> FolderRenames:
        """Whole-folder copy, delete and rename on this manager's storage and keys."""
        return FolderRenames(
            self.storage,
            self.keys,
            owner=self._owner,
            concurrency=self.max_concurrency,
            lease_seconds=self.rename_lease,
            running=self._renames_running,
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
