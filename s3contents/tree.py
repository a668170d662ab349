"""The Jupyter tree under one prefix as objects: files and folders by API path.

Layer: storage and keys only, like :mod:`s3contents.folders` beneath it (no Jupyter, no
HTTP, no models). The manager above checks names, builds models, runs hooks and emits
events; this module knows what a file and a folder are in a bucket and which request
sequence keeps each change safe with several writers (docs/architecture.md, "Several
writers"): creations are create-only, a rename deletes only the version it copied.

Object storage has no folders: a folder exists while some key lies under ``folder/``
(:meth:`Folders.exists <s3contents.folders.Folders.exists>`), and a file and a folder may
share a name unless we refuse it here (:meth:`Tree.folder_in_the_way`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timezone

from .errors import AlreadyExists, BadRequest, Conflict, NotEmpty, NotFound
from .models import content_type
from .paths import KeyMapper, split_api
from .renames import FolderRenames
from .storage.base import ObjectInfo, PutMode, Storage

__all__ = ["Tree"]


class Tree:
    """Files and folders of one manager: its storage, keys and folder operations."""

    def __init__(self, storage: Storage, keys: KeyMapper, folders: FolderRenames) -> None:
        self.storage = storage
        self.keys = keys
        self.folders = folders

    # -- questions ------------------------------------------------------------------------
    async def info(self, api_path: str) -> ObjectInfo | None:
        """The file at ``api_path`` (one HEAD), or ``None`` (the root is no file)."""
        if not api_path:
            return None
        try:
            return await self.storage.head(self.keys.key(api_path))
        except NotFound:
            return None

    async def is_dir(self, api_path: str) -> bool:
        if not api_path:
            return True
        # A folder holding nothing but the lock of its own rename is gone for new files:
        # a save racing the rename is refused (404) instead of landing under the old name.
        return await self.folders.exists(api_path)

    async def folder_in_the_way(self, api_path: str) -> bool:
        """Is there a folder where a file is about to be written?

        Only asked for extension-less names, where a folder is plausible: saving a file
        over a folder name would make one name both a file and a folder.
        """
        if "." in api_path.rsplit("/", 1)[-1]:
            return False
        return await self.is_dir(api_path)

    async def check_parent(self, api_path: str) -> None:
        """The parent folder must exist, as on a file system (free for the root, else
        one LIST of at most one key): object storage would otherwise create it silently."""
        parent, _ = split_api(api_path)
        if parent and not await self.is_dir(parent):
            raise NotFound(f"No such directory: {parent}", path=parent)

    async def stored_files(self, api_path: str) -> list[str]:
        """Every file stored under the folder, recursively (paths inside it), the package's
        own objects and checkpoints excepted."""
        found = []
        for obj in await self.folders.tree(api_path):
            full = self.keys.api_path(obj.key)
            if not obj.key.endswith(self.keys.delimiter) and not self.keys.is_reserved(full):
                found.append(full[len(api_path) + 1 :] if api_path else full)
        return found

    # -- folders --------------------------------------------------------------------------
    async def make_dir(
        self, api_path: str, *, mtime: datetime, mode: PutMode = PutMode.OVERWRITE
    ) -> None:
        """Write the folder's marker (the caller checked that no file has the name);
        ``CREATE``: only if no other client made it first."""
        await self.storage.put(self.keys.marker_key(api_path), b"", mode=mode, mtime=mtime)

    async def copy_dir(self, src: str, dst: str) -> None:
        """Copy the folder ``src`` to the new name ``dst`` (create-only copies)."""
        if dst == src or dst.startswith(src + "/"):
            raise BadRequest(f"Cannot copy {src} into itself", path=dst)
        if await self.info(dst) is not None or await self.is_dir(dst):
            raise AlreadyExists(f"File already exists: {dst}", path=dst)
        await self.folders.copy_tree(src, dst)

    async def rename_dir(
        self,
        old: str,
        new: str,
        on_copied: Callable[[str, ObjectInfo], None],
        listed: list[ObjectInfo] | None = None,
    ) -> None:
        """Rename a folder: :mod:`s3contents.renames`, safe with several
        servers on the prefix and with any of them killed half-way. ``listed``: the
        folder's recursive listing, when the caller has just made it."""

        async def file_exists(api_path: str) -> bool:
            return await self.info(api_path) is not None

        await self.folders.rename(
            old,
            new,
            check_parent=self.check_parent,
            file_exists=file_exists,
            on_copied=on_copied,
            listed=listed,
        )

    # -- files ----------------------------------------------------------------------------
    async def copy_file(self, src: str, dst: str) -> datetime:
        """Copy the file ``src`` to the new name ``dst``, create-only; returns its time."""
        if await self.folder_in_the_way(dst):
            raise AlreadyExists(f"A folder named {dst} exists", path=dst)
        now = datetime.now(timezone.utc)  # a copy is a new file: a new write time
        await self.storage.copy(
            self.keys.key(src),
            self.keys.key(dst),
            mode=PutMode.CREATE,
            mtime=now,
            content_type=content_type(dst),
        )
        return now

    async def rename_file(self, old: str, new: str, info: ObjectInfo) -> None:
        """Rename the file ``old`` (as ``info`` found it) to ``new``, whose folder exists.

        Copy create-only, then delete the source only while it is the version copied: a
        save that landed meanwhile makes the rename 409 and stays where it was written.
        """
        # The create-only copy refuses an existing file where the store honours the
        # condition (AWS, GCS, SeaweedFS: asked once, s3contents.traits); elsewhere (moto,
        # fake-gcs-server, some S3-compatible stores) a HEAD of the new name comes first.
        honoured = (await self.folders.traits.get()).create_only_copy
        if (not honoured and await self.info(new) is not None) or await self.folder_in_the_way(new):
            raise AlreadyExists(f"File already exists: {new}", path=new)
        new_key = self.keys.key(new)
        try:
            copied = await self.storage.copy(self.keys.key(old), new_key, mode=PutMode.CREATE)
        except AlreadyExists as err:
            raise AlreadyExists(f"File already exists: {new}", path=new) from err
        try:
            # Only the version copied: a save that landed meanwhile must not vanish.
            await self.storage.delete(self.keys.key(old), etag=info.etag)
        except Conflict as err:
            # Only the copy made here: a save at the new name meanwhile stays.
            with contextlib.suppress(Conflict):
                await self.storage.delete(new_key, etag=copied.etag)
            raise Conflict(
                f"{old} was saved while it was being renamed; nothing was renamed, try again",
                path=old,
            ) from err

    async def delete(self, api_path: str, *, non_empty: bool) -> bool:
        """Delete the file, or the folder with everything in it; returns True for a
        folder. ``non_empty=False`` refuses a folder holding files of the user's."""
        if await self.info(api_path) is not None:
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
        if not non_empty:
            prefix = self.keys.dir_prefix(api_path)
            if self.keys.holds_user_files(prefix, [o.key for o in objects]):
                raise NotEmpty(f"Directory {api_path} not empty", path=api_path)
        await folders.delete_tree(api_path, objects)
        return True
