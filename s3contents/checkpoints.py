"""Checkpoints stored in the bucket, next to their file, as server-side copies (API layer:
its methods answer HTTP errors, as the hybrid manager calls them past their manager).

Jupyter's local manager keeps one checkpoint per file, with id ``checkpoint``, at
``folder/.ipynb_checkpoints/<name>-checkpoint<ext>``. We keep the same layout in the
bucket, so a checkpoint is one CopyObject away from its file and never touches the
server's local disk.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Protocol, cast

from jupyter_server.services.contents.checkpoints import AsyncCheckpoints
from traitlets import Unicode

from .errors import NotFound, http_errors
from .models import content_type
from .paths import CHECKPOINT_DIR, KeyMapper, join_api, split_api
from .storage.base import Storage

__all__ = ["ObjectStoreCheckpoints"]


class _Bucket(Protocol):
    """What checkpoints need of their manager (their ``parent``): its storage and keys."""

    @property
    def storage(self) -> Storage: ...

    @property
    def keys(self) -> KeyMapper: ...


class ObjectStoreCheckpoints(AsyncCheckpoints):
    """One checkpoint per file, kept in the bucket (see module docstring)."""

    checkpoint_id = Unicode(
        "checkpoint",
        config=True,
        help="Id of the one checkpoint kept per file, as in Jupyter. Default: 'checkpoint'.",
    )

    @property
    def manager(self) -> _Bucket:
        return cast(_Bucket, self.parent)

    def _key(self, api_path: str, checkpoint_id: str) -> str:
        return self.manager.keys.checkpoint_key(api_path.strip("/"), checkpoint_id)

    def _dir_entry(self, api_path: str) -> str:
        """Key of the checkpoint folder's own entry, deleted along with a checkpoint.

        SeaweedFS keeps an emptied ``.ipynb_checkpoints/`` as a directory, which would keep
        its parent folder alive after the parent is deleted; deleting that key removes it
        once empty and does nothing while other checkpoints remain (or on AWS).
        """
        parent, _ = split_api(api_path.strip("/"))
        return self.manager.keys.dir_prefix(join_api(parent, CHECKPOINT_DIR))

    def _model(self, checkpoint_id: str, last_modified: Any) -> dict[str, Any]:
        return {"id": checkpoint_id, "last_modified": last_modified}

    @http_errors
    async def create_checkpoint(self, contents_mgr: Any, path: str) -> dict[str, Any]:
        storage = self.manager.storage
        api_path = path.strip("/")
        key = self._key(api_path, self.checkpoint_id)
        # Stamped with its own time (the metadata a copy would keep is the file's).
        now = datetime.now(timezone.utc)
        try:
            await storage.copy(
                self.manager.keys.key(api_path),
                key,
                mtime=now,
                content_type=content_type(api_path),
            )
        except NotFound as err:
            raise NotFound(f"File {api_path} does not exist", path=api_path) from err
        return self._model(self.checkpoint_id, now)

    @http_errors
    async def restore_checkpoint(self, contents_mgr: Any, checkpoint_id: str, path: str) -> None:
        api_path = path.strip("/")
        try:
            # A restore is a new write of the file: a new time, so other clients see it.
            await self.manager.storage.copy(
                self._key(api_path, checkpoint_id),
                self.manager.keys.key(api_path),
                mtime=datetime.now(timezone.utc),
                content_type=content_type(api_path),
            )
        except NotFound as err:
            raise NotFound(
                f"Checkpoint {checkpoint_id} of {api_path} does not exist", path=api_path
            ) from err

    @http_errors
    async def rename_checkpoint(self, checkpoint_id: str, old_path: str, new_path: str) -> None:
        await self._rename(checkpoint_id, old_path, new_path)

    async def _rename(self, checkpoint_id: str, old_path: str, new_path: str) -> None:
        storage = self.manager.storage
        old_key = self._key(old_path, checkpoint_id)
        await storage.copy(old_key, self._key(new_path, checkpoint_id))
        await storage.delete_many([old_key, self._dir_entry(old_path)])

    @http_errors
    async def rename_all_checkpoints(self, old_path: str, new_path: str) -> None:
        # One COPY tells whether a checkpoint exists: no HEAD first.
        try:
            await self._rename(self.checkpoint_id, old_path, new_path)
        except NotFound:
            return

    @http_errors
    async def delete_checkpoint(self, checkpoint_id: str, path: str) -> None:
        storage = self.manager.storage
        key = self._key(path, checkpoint_id)
        try:
            await storage.head(key)
        except NotFound as err:
            raise NotFound(f"Checkpoint does not exist: {path}@{checkpoint_id}", path=path) from err
        await storage.delete_many([key, self._dir_entry(path)])

    @http_errors
    async def delete_all_checkpoints(self, path: str) -> None:
        # Deleting an absent key is not an error in object storage: one request, no HEAD.
        await self.manager.storage.delete_many(
            [self._key(path, self.checkpoint_id), self._dir_entry(path)]
        )

    @http_errors
    async def list_checkpoints(self, path: str) -> list[dict[str, Any]]:
        try:
            info = await self.manager.storage.head(self._key(path, self.checkpoint_id))
        except NotFound:
            return []
        return [self._model(self.checkpoint_id, info.last_modified)]
