"""What the object store behind a manager does where stores differ, learned once per process.

Layer: storage and keys only (no Jupyter, no HTTP).

Two behaviours decide how many requests a rename or a folder deletion needs, and stores
disagree on both:

* **Create-only copies.** AWS S3, GCS and SeaweedFS refuse a server-side copy onto an
  existing key when the copy is create-only (S3 ``If-None-Match: *`` on CopyObject, GCS
  ``ifGenerationMatch=0`` on a rewrite); moto and fake-gcs-server ignore the condition and
  overwrite. Where the store honours it, a file rename needs no HEAD of the new name first.
* **Emptied folders.** SeaweedFS keeps a folder whose last object was deleted visible as a
  ``folder/`` entry until that key is deleted too; AWS, GCS and moto have no such entries.
  Where the store keeps none, deleting a folder needs no last listing to find them.

:class:`StoreTraits` asks the store itself, once, the first time a manager needs to know:
under the root's checkpoint folder (a name no client can reach) it writes two small probe
objects of its own (names carry the manager's id), copies one onto the other create-only,
deletes both, and lists what is left: 2 PUT, 1 COPY, 1 DELETE batch, 1 LIST, and on
SeaweedFS a DELETE of the emptied entries. Any error (read-only credentials, a store that
answers something unexpected) gives the safe answers: a HEAD before each rename, a listing
after each folder deletion.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from .errors import AlreadyExists, ContentsError
from .paths import CHECKPOINT_DIR, KeyMapper
from .storage.base import PutMode, Storage

__all__ = ["StoreTraits", "Traits"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Traits:
    """The answers; the defaults are the safe ones, used until (and unless) a probe says."""

    #: A create-only copy onto an existing key is refused (not an overwrite).
    create_only_copy: bool = False
    #: Emptied folders stay listed until their ``folder/`` entry is deleted (SeaweedFS).
    keeps_emptied_folders: bool = True


SAFE = Traits()


class StoreTraits:
    """The :class:`Traits` of one store, probed on first use and kept for the process."""

    def __init__(self, storage: Storage, keys: KeyMapper, owner: str) -> None:
        self.storage = storage
        self.keys = keys
        self.owner = owner
        self._probe: asyncio.Future[Traits] | None = None

    async def get(self) -> Traits:
        """The store's traits; the first call probes (5-6 requests), later ones are free.

        Callers that run at once wait for the one probe; a caller cancelled meanwhile does
        not cancel it.
        """
        if self._probe is None or self._probe.get_loop() is not asyncio.get_running_loop():
            self._probe = asyncio.ensure_future(self._run())
        return await asyncio.shield(self._probe)

    def known(self) -> Traits | None:
        """The traits if a probe has told them already, else ``None`` (no request)."""
        probe = self._probe
        if probe is None or not probe.done() or probe.cancelled():
            return None
        return probe.result()

    def _folder(self) -> str:
        # In the root's checkpoint folder: never listed, served or reachable by a client
        # (KeyMapper.is_reserved), and with no "-" so it is no checkpoint's name.
        return self.keys.key(f"{CHECKPOINT_DIR}/.s3contents_probe_{self.owner}")

    async def _run(self) -> Traits:
        try:
            return await self._ask()
        except ContentsError as err:
            log.info("Could not probe the store's behaviour (%s); assuming the safe answers", err)
            return SAFE
        except Exception:  # a probe must never fail an operation
            log.warning("Probing the store's behaviour failed; assuming the safe answers")
            log.debug("Probe failure", exc_info=True)
            return SAFE

    async def _ask(self) -> Traits:
        delim = self.keys.delimiter
        folder = self._folder()
        first, second = folder + delim + "a", folder + delim + "b"
        try:
            await asyncio.gather(self.storage.put(first, b"a"), self.storage.put(second, b"b"))
            try:
                await self.storage.copy(first, second, mode=PutMode.CREATE)
                create_only = False  # overwritten: the condition was ignored
            except AlreadyExists:
                create_only = True
        finally:
            with contextlib.suppress(ContentsError):
                await self.storage.delete_many([first, second])
        # Both objects are gone: is their folder still listed?
        parent = self.keys.key(CHECKPOINT_DIR) + delim
        listing = await self.storage.list(parent, delim)
        keeps = folder + delim in listing.prefixes
        if keeps:
            with contextlib.suppress(ContentsError):
                # The probe's own folder entry; the checkpoint folder's goes too while it
                # holds nothing (a store that keeps folders keeps a non-empty one).
                await self.storage.delete_many([folder + delim, parent])
        traits = Traits(create_only_copy=create_only, keeps_emptied_folders=keeps)
        log.debug("Store traits: %s", traits)
        return traits
