"""Checkpoints stored in the bucket, next to their file, as server-side copies (API layer:
its methods answer HTTP errors, as the hybrid manager calls them past their manager).

Jupyter's local manager keeps one checkpoint per file, with id ``checkpoint``, at
``folder/.ipynb_checkpoints/<name>-checkpoint<ext>``. We keep the same layout in the
bucket, so a checkpoint is one CopyObject away from its file and never touches the
server's local disk.

**History.** On a bucket with versioning (S3 versioning, GCS object versioning), every save
is a version, and :meth:`ObjectStoreCheckpoints.list_checkpoints` lists the file's earlier
versions after its checkpoint, newest first, up to ``max_versions``: JupyterLab's "Revert to
Checkpoint" then offers each. A version's id is ``v`` + its write time (UTC, to the
millisecond: ``YYYYMMDDhhmmssfff``) + ``-`` + two digits ordering versions of the same
tick (SeaweedFS's times have whole seconds: 00 for the oldest listed) + ``-`` + the store's
version id in URL-safe base64 (Jupyter's routes take ``[A-Za-z0-9_-]`` only): sortable as
the versions' ages, stable (the tie digits change only when a version of the same tick
is deleted or falls past the listed ones), decoded without a request. Restoring one is one
server-side copy of that version onto the file (a new version: the restore can be undone);
deleting one is refused unless ``delete_versions`` is set (the bucket's lifecycle rules
keep history).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from datetime import datetime, timezone
from typing import Any, Protocol, cast

from jupyter_server.services.contents.checkpoints import (
    AsyncCheckpoints,
    AsyncGenericCheckpointsMixin,
)
from traitlets import Bool, Int, Unicode

from .errors import Conflict, Forbidden, NotFound, http_errors
from .models import content_type, decode_content, parse_notebook
from .paths import CHECKPOINT_DIR, KeyMapper, join_api, split_api
from .storage.base import VERSIONING_OFF, ObjectVersion, Storage

__all__ = ["ObjectStoreCheckpoints", "version_checkpoint_id", "version_of"]

#: A version's checkpoint id (module docstring).
_VERSION_ID = re.compile(r"^v(\d{17})-(\d{2})-([A-Za-z0-9_-]+)$")


def _stamp(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y%m%d%H%M%S") + f"{when.microsecond // 1000:03d}"


def version_checkpoint_id(version: ObjectVersion, tie: int = 0) -> str:
    """The checkpoint id of a version: ``v<YYYYMMDDhhmmssfff>-<tie>-<version id,
    base64url>``; ``tie``: how many listed versions of the same tick are older."""
    token = base64.urlsafe_b64encode(version.version_id.encode()).decode().rstrip("=")
    return f"v{_stamp(version.last_modified)}-{min(tie, 99):02d}-{token}"


def version_of(checkpoint_id: str) -> str | None:
    """The store's version id in a version's checkpoint id; None for any other id."""
    found = _VERSION_ID.match(checkpoint_id)
    if found is None:
        return None
    token = found.group(3)
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, ValueError):
        return None


class _Bucket(Protocol):
    """What checkpoints need of their manager (their ``parent``): its storage and keys."""

    @property
    def storage(self) -> Storage: ...

    @property
    def keys(self) -> KeyMapper: ...


class ObjectStoreCheckpoints(AsyncGenericCheckpointsMixin, AsyncCheckpoints):
    """One checkpoint per file, kept in the bucket (see module docstring).

    Also a ``GenericCheckpointsMixin`` (its methods of its own take precedence): tools that
    read a checkpoint's content through that interface (nbdime's checkpoint diff) get it
    from :meth:`get_notebook_checkpoint` and :meth:`get_file_checkpoint`, one GET each.
    """

    checkpoint_id = Unicode(
        "checkpoint",
        config=True,
        help="Id of the one checkpoint kept per file, as in Jupyter. Default: 'checkpoint'.",
    )
    max_versions = Int(
        20,
        config=True,
        help="On a bucket with versioning, the earlier versions of a file listed as its "
        "checkpoints (after its checkpoint), newest first; 0: none, and the bucket's "
        "versioning is never asked. Default: 20.",
    )
    delete_versions = Bool(
        False,
        config=True,
        help="Allow deleting a version of a file through the checkpoint API (for good). "
        "Default: False (409: history is kept by the bucket's lifecycle rules).",
    )

    #: The bucket's versioning, asked once (the first ``list_checkpoints``) and kept.
    _history: bool | None = None
    #: The ask in flight, on its event loop.
    _asking: tuple[asyncio.AbstractEventLoop, asyncio.Task[bool]] | None = None

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
        version = version_of(checkpoint_id)
        if version is not None:
            await self._restore_version(api_path, checkpoint_id, version)
            return
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

    async def _restore_version(self, api_path: str, checkpoint_id: str, version: str) -> None:
        """One server-side copy of the version onto the file: a new write, as a save (and
        as the restore of a checkpoint), with a new time; a new version, so it can be undone."""
        key = self.manager.keys.key(api_path)
        try:
            await self.manager.storage.copy_version(
                key,
                version,
                key,
                mtime=datetime.now(timezone.utc),
                content_type=content_type(api_path),
            )
        except NotFound as err:
            raise NotFound(
                f"Checkpoint {checkpoint_id} of {api_path} does not exist", path=api_path
            ) from err

    @http_errors
    async def get_notebook_checkpoint(
        self, checkpoint_id: str | dict[str, Any], path: str
    ) -> dict[str, Any]:
        """``{"type": "notebook", "content": <the notebook>}`` of a checkpoint or version,
        given its id or its model (nbdime passes the model ``list_checkpoints`` answered)."""
        api_path = path.strip("/")
        data = await self._checkpoint_bytes(checkpoint_id, api_path)
        return {"type": "notebook", "content": parse_notebook(data, api_path)}

    @http_errors
    async def get_file_checkpoint(
        self, checkpoint_id: str | dict[str, Any], path: str
    ) -> dict[str, Any]:
        """``{"type": "file", "content": ..., "format": "text" or "base64"}`` of a
        checkpoint or version, given its id or its model."""
        api_path = path.strip("/")
        data = await self._checkpoint_bytes(checkpoint_id, api_path)
        content, fmt = decode_content(data, None, api_path)
        return {"type": "file", "content": content, "format": fmt}

    async def _checkpoint_bytes(self, checkpoint: str | dict[str, Any], api_path: str) -> bytes:
        """The stored bytes of a checkpoint (its id or model): one GET, of the checkpoint's
        object or of the file's version."""
        checkpoint_id = (
            str(checkpoint.get("id", "")) if isinstance(checkpoint, dict) else checkpoint
        )
        storage = self.manager.storage
        version = version_of(checkpoint_id)
        try:
            if version is not None:
                data, _ = await storage.get_version(self.manager.keys.key(api_path), version)
            else:
                data, _ = await storage.get(self._key(api_path, checkpoint_id))
        except NotFound as err:
            raise NotFound(
                f"Checkpoint {checkpoint_id} of {api_path} does not exist", path=api_path
            ) from err
        return data

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
        version = version_of(checkpoint_id)
        if version is not None:
            if not self.delete_versions:
                raise Conflict(
                    f"Checkpoint {checkpoint_id} of {path} is a version kept by the bucket: "
                    "history is kept by the bucket's lifecycle rules "
                    "(set ObjectStoreCheckpoints.delete_versions to allow deleting it)",
                    path=path,
                )
            await storage.delete_version(self.manager.keys.key(path.strip("/")), version)
            return
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
        if self.max_versions > 0 and await self._versioned():
            # The checkpoint and the versions are under two prefixes: two requests at once.
            explicit, versions = await asyncio.gather(self._explicit(path), self._versions(path))
            return explicit + versions
        return await self._explicit(path)

    async def _explicit(self, path: str) -> list[dict[str, Any]]:
        try:
            info = await self.manager.storage.head(self._key(path, self.checkpoint_id))
        except NotFound:
            return []
        return [self._model(self.checkpoint_id, info.last_modified)]

    async def _versions(self, path: str) -> list[dict[str, Any]]:
        """The file's earlier versions, newest first (the current one is the file itself)."""
        key = self.manager.keys.key(path.strip("/"))
        found = await self.manager.storage.list_versions(key, self.max_versions + 1)
        if not any(v.is_latest for v in found):
            # A deleted file (its newest version a delete marker): its versions stay in the
            # bucket (README, "History"), but a restore would recreate it without the parent
            # check a creation makes ("Several writers"): none is offered.
            return []
        stamps = [_stamp(v.last_modified) for v in found]
        models = [
            self._model(version_checkpoint_id(v, stamps[i + 1 :].count(stamps[i])), v.last_modified)
            for i, v in enumerate(found)
            if not v.is_latest
        ]
        return models[: self.max_versions]

    async def _versioned(self) -> bool:
        """Does the bucket keep versions? Asked once per manager, then kept (calls that
        come while it is asked wait for the same answer); a bucket whose versioning may not
        be read (no s3:GetBucketVersioning) has no history. A failed ask is asked again."""
        if self._history is not None:
            return self._history
        loop = asyncio.get_running_loop()
        if self._asking is None or self._asking[0] is not loop:
            self._asking = (loop, loop.create_task(self._ask_versioning()))
        task = self._asking[1]
        try:
            return await asyncio.shield(task)
        finally:
            if task.done() and (task.cancelled() or task.exception() is not None):
                self._asking = None

    async def _ask_versioning(self) -> bool:
        try:
            state = await self.manager.storage.versioning()
        except Forbidden:
            self.log.info("Not allowed to read the bucket's versioning: no history")
            state = VERSIONING_OFF
        self._history = state != VERSIONING_OFF
        return self._history
