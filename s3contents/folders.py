"""Whole-folder operations on object storage: copy, delete and rename a tree of objects.

Layer: storage and keys only (no Jupyter, no HTTP). The manager calls these for folders;
everything here speaks :mod:`s3contents.errors` and the :class:`~s3contents.storage.base.Storage`
port.

A folder is only a key prefix, so copying, renaming or deleting one touches many objects,
and several Jupyter servers may share the prefix (two pods of a user, named servers, a
restarted pod overlapping the old one) while any of them may be killed at any instant. The
rename protocol below keeps every acknowledged save under both (docs/architecture.md,
"Several writers", says the same with the reasoning).

Rename of folder ``A`` to ``B`` by owner ``O`` (a manager's random id):

1. **Claim both names**, create-only (``If-None-Match: *``): the *source lock*
   ``A/.s3contents-rename`` ``{"role": "source", "to": "B", "owner", "expires"}`` and the
   *destination journal* ``B/.s3contents-rename`` ``{"role": "destination", "from": "A",
   ...}``. Losing either claim to a live lease is 409; a second rename of ``A`` (to ``B``
   or elsewhere), a rename onto ``B`` and a delete of ``A`` all see the claim and answer 409.
2. **Lease**: the owner rewrites both claims every ``lease/3`` seconds, each only while it is
   still the version it wrote (``If-Match``), pushing ``expires`` forward. A claim whose
   ``expires`` has passed belongs to a dead owner; a rename of the same ``A`` to the same
   ``B`` takes it over (again with ``If-Match``, so two servers cannot both take it over)
   and resumes. An owner that could not renew, or finds its claim taken over, stops before
   its next deletion (its copies are create-only or conditional: harmless meanwhile).
3. **Copy**, server-side, create-only: a copy never replaces an object it did not write.
   When resuming, what is already at the destination decides, object by object: the same
   version (same ETag) is done; an older one (the source was saved after the crashed copy)
   is replaced only while it is still that version (``If-Match``); a newer one (a save made
   in the half-made destination) is kept, and the source's older version is dropped: the
   newest write wins, as for one file saved twice. Same second, different bytes: both are
   kept and the rename answers 409 naming them.
4. **Delete the sources**, each only while it is the version listed (a save made during the
   rename is not deleted unseen: it is copied again, over the destination only while that is
   still the copy made here, then deleted). A last recursive listing of ``A`` moves files
   created in it during the rename. Then the source lock goes, last of ``A``, and the
   destination journal, last of all.
5. **Failure**: a fresh rename that fails while copying deletes the copies it made (each
   only while it is still the version its copy produced) and both claims, and answers the
   error; nothing else changed. A failure later, or one during a resume, leaves the claims
   with their lease given up, so doing the rename again resumes at once.

A retry finds the state it needs from the claims alone: ``A`` holding nothing but its lock,
or gone while ``B``'s journal names it, means every source was already deleted: the retry
removes the claims and answers 200. ``A`` gone with no journal in ``B`` is 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from .errors import AlreadyExists, BadRequest, Conflict, ContentsError, NotFound, Unavailable
from .paths import KeyMapper
from .storage.base import ObjectInfo, PutMode, Storage

__all__ = ["LEASE_SECONDS", "Claim", "FolderListing", "Folders", "new_owner_id"]

log = logging.getLogger(__name__)

#: Listings of the source after its deletion, each moving what was saved in it meanwhile,
#: before a rename gives up on a folder that keeps being written to (and says so: 409).
SWEEPS = 5
#: How long a claim of a folder rename stays valid without being renewed. Renewed every
#: third of it; a rename killed with its server is resumable by another after this.
LEASE_SECONDS = 30.0


def new_owner_id() -> str:
    """An id for one manager: which process holds a claim (host and pid, for people)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class _CopyFailed(Exception):
    """A copy of a tree failed: what was made before, and the error."""

    def __init__(self, made: dict[str, str | None], error: ContentsError) -> None:
        super().__init__(str(error))
        self.made = made
        self.error = error


@dataclass
class Claim:
    """The content of a rename claim (``.s3contents-rename``), source lock or journal."""

    role: str  # "source" (in the folder being renamed) or "destination"
    src: str  # API path of the folder renamed
    dst: str  # API path it is renamed to
    owner: str = ""
    expires: float = 0.0  # time.time() of the owner; 0: given up

    def encode(self) -> bytes:
        return json.dumps(
            {
                "v": 2,
                "role": self.role,
                "from": self.src,
                "to": self.dst,
                "owner": self.owner,
                "expires": self.expires,
            }
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> Claim | None:
        """A claim, or None for bytes that are not one. A journal of the first format
        (``{"from": ...}``, no lease) reads as a destination journal given up."""
        try:
            raw = json.loads(data)
        except ValueError:
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("from"), str):
            return None
        try:
            return cls(
                role=str(raw.get("role", "destination")),
                src=raw["from"],
                dst=str(raw.get("to", "")),
                owner=str(raw.get("owner", "")),
                expires=float(raw.get("expires", 0.0)),
            )
        except (TypeError, ValueError):
            return None

    def live(self, now: float | None = None) -> bool:
        return self.expires > (time.time() if now is None else now)


@dataclass
class _Held:
    """One claim object this process holds: its key and the version it last wrote."""

    key: str
    claim: Claim
    etag: str | None
    #: Written new by this attempt (else taken over from an owner that is gone).
    fresh: bool = True


@dataclass
class _Lease:
    """Both claims of one rename, renewed in the background while it runs."""

    storage: Storage
    held: list[_Held]
    seconds: float
    #: time.monotonic() until which the claims are known to be ours.
    valid_until: float = 0.0
    lost: str | None = None
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.valid_until = time.monotonic() + self.seconds * 0.9
        self._task = asyncio.get_running_loop().create_task(self._renew_loop())

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                await self.renew()
            except Conflict as err:
                self.lost = str(err)
                return
            except ContentsError:
                continue  # storage trouble: try again; `check` stops the work if it lasts

    async def renew(self, expires: float | None = None) -> None:
        started = time.monotonic()
        for h in self.held:
            h.claim.expires = time.time() + self.seconds if expires is None else expires
            try:
                h.etag = await self.storage.put(
                    h.key, h.claim.encode(), mode=PutMode.IF_MATCH, etag=h.etag or ""
                )
            except (Conflict, NotFound):
                raise Conflict(
                    f"Another server took over the rename of {h.claim.src} to {h.claim.dst}",
                    path=h.claim.dst,
                ) from None
        self.valid_until = started + self.seconds * 0.9

    def check(self) -> None:
        """Raise unless the claims are still certainly ours (before deleting anything)."""
        if self.lost is not None:
            raise Conflict(self.lost)
        if time.monotonic() > self.valid_until:
            raise Unavailable(
                "Could not renew the claim of a folder rename in time; try again", path=None
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def give_up(self) -> None:
        """Leave the claims for a retry to take over at once (best effort)."""
        await self.stop()
        with contextlib.suppress(ContentsError):
            await self.renew(expires=0.0)

    async def release(self) -> None:
        """Delete the claims, each only while it is the version written here."""
        await self.stop()
        for h in self.held:
            with contextlib.suppress(ContentsError):
                await self.storage.delete(h.key, etag=h.etag)


OnCopied = Callable[[str, ObjectInfo], None]


@dataclass
class FolderListing:
    """One folder's listing: direct files as (name, object), subfolder names, existence."""

    files: list[tuple[str, ObjectInfo]]
    dirs: list[str]
    exists: bool

    @property
    def names(self) -> set[str]:
        return {name for name, _ in self.files} | set(self.dirs)


class Folders:
    """Copy, delete and rename folders of one manager (its storage, keys and owner id)."""

    def __init__(
        self,
        storage: Storage,
        keys: KeyMapper,
        *,
        owner: str,
        concurrency: int = 16,
        lease_seconds: float = LEASE_SECONDS,
        running: set[tuple[str, str]] | None = None,
    ) -> None:
        self.storage = storage
        self.keys = keys
        self.owner = owner
        self.concurrency = max(1, concurrency)
        self.lease_seconds = lease_seconds
        #: Renames this manager is running now, (old, new): a claim of our own owner id
        #: not in here was left by a rename of ours that failed, and may be taken over.
        self.running = running if running is not None else set()

    # -- listing ----------------------------------------------------------------------------
    async def tree(self, api_path: str) -> list[ObjectInfo]:
        """Every object under the folder, recursively."""
        return [o async for o in self.storage.list_all(self.keys.dir_prefix(api_path))]

    async def listing(self, api_path: str) -> FolderListing:
        """One delimited LIST of the folder: its direct files, its subfolders, and whether
        it exists (it holds something, a rename's claim alone excepted; the root always)."""
        prefix = self.keys.dir_prefix(api_path)
        delim = self.keys.delimiter
        found = await self.storage.list(prefix, delim)
        claim = self.claim_key(api_path) if api_path else None
        files: list[tuple[str, ObjectInfo]] = []
        exists = bool(found.prefixes) or not api_path
        for obj in found.objects:
            exists = exists or obj.key != claim
            if obj.key == prefix or obj.key.endswith(delim):
                continue  # a zero-byte "folder/" object (AWS console, SeaweedFS)
            files.append((self.keys.child_name(prefix, obj.key), obj))
        dirs = [d for d in (self.keys.child_name(prefix, p) for p in found.prefixes) if d]
        return FolderListing(files, dirs, exists)

    async def exists(self, api_path: str) -> bool:
        """True when the folder exists: anything but a rename's claim lies in it (one
        LIST). A folder holding only the lock of its own rename exists no more."""
        if not api_path:
            return True
        return await self.storage.exists_any(
            self.keys.dir_prefix(api_path), ignore=self.claim_key(api_path)
        )

    async def emptied_entries(self, api_path: str) -> list[str]:
        """Folder entries of a folder that holds no object any more, deepest first.

        SeaweedFS stores folders as directories: a folder emptied by deleting or moving its
        last file (or its last checkpoint) stays listed, as ``folder/`` or through an
        emptied subfolder, until those keys are deleted, and only delimited listings show
        them. Called only after a recursive listing found no object, so it costs one more
        LIST on a miss (on AWS, where such entries do not exist) and one per emptied
        subfolder. Returns ``[]`` when there is no such folder.
        """
        delim = self.keys.delimiter
        found: list[str] = []
        todo = [self.keys.dir_prefix(api_path)]
        while todo:
            prefix = todo.pop()
            listing = await self.storage.list(prefix, delim)
            if listing.objects or listing.prefixes:
                found.append(prefix)
            todo.extend(listing.prefixes)
        return sorted(found, key=len, reverse=True)

    def claim_key(self, api_path: str) -> str:
        return self.keys.claim_key(api_path)

    async def read_claim(self, key: str) -> tuple[Claim, str | None] | None:
        try:
            data, info = await self.storage.get(key)
        except NotFound:
            return None
        claim = Claim.decode(data)
        return (claim, info.etag) if claim is not None else None

    # -- copy -------------------------------------------------------------------------------
    def _pairs(self, src: str, dst: str, objects: list[ObjectInfo]) -> list[tuple[ObjectInfo, str]]:
        """(source object, destination key) for every object of folder ``src``."""
        src_prefix, dst_prefix = self.keys.dir_prefix(src), self.keys.dir_prefix(dst)
        return [
            (o, self.keys.rebase(o.key, src_prefix, dst_prefix))
            for o in objects
            if not o.key.endswith(self.keys.delimiter)
        ]

    async def _copy_pairs(
        self, pairs: list[tuple[ObjectInfo, str]], on_copied: OnCopied | None
    ) -> dict[str, str | None]:
        """Create-only copies, concurrently (bounded); the ETag of each copy by key. On a
        failure, raises :class:`_CopyFailed` with what was made."""
        made: dict[str, str | None] = {}
        sem = asyncio.Semaphore(self.concurrency)

        async def one(source: ObjectInfo, dst_key: str) -> None:
            async with sem:
                copied = await self.storage.copy(source.key, dst_key, mode=PutMode.CREATE)
                made[dst_key] = copied.etag
                if on_copied is not None:
                    on_copied(dst_key, source)

        results = await asyncio.gather(*(one(s, d) for s, d in pairs), return_exceptions=True)
        for r in results:
            if isinstance(r, ContentsError):
                raise _CopyFailed(made, r)
            if isinstance(r, BaseException):
                raise r
        return made

    async def copy_tree(
        self,
        src: str,
        dst: str,
        objects: list[ObjectInfo] | None = None,
        *,
        on_copied: OnCopied | None = None,
    ) -> dict[str, str | None]:
        """Copy every object under folder ``src`` to folder ``dst``, create-only.

        Returns the ETag of each copy made, by key. If one copy fails, the copies made are
        deleted again (each only while it is still the version the copy produced: a save
        made there meanwhile stays) and the error is raised: the source stays the only
        complete tree.
        """
        if objects is None:
            objects = await self.tree(src)
        pairs = self._pairs(src, dst, objects)
        if not pairs:
            marker = self.keys.marker_key(dst)
            return {marker: await self.storage.put(marker, b"", mode=PutMode.CREATE)}
        try:
            return await self._copy_pairs(pairs, on_copied)
        except _CopyFailed as failed:
            await self._undo_copies(failed.made, dst)
            raise failed.error from None

    async def _undo_copies(self, made: dict[str, str | None], dst: str) -> bool:
        """Delete copies made, each only while it is the version made; True when done."""
        etags = {k: e for k, e in made.items() if e}
        try:
            kept = await self.storage.delete_many(list(made), etags=etags)
        except ContentsError:
            log.warning("Could not roll back a partial copy to %s", dst)
            return False
        if kept:
            log.info("Kept %d objects saved in %s while it was being copied", len(kept), dst)
        return True

    # -- delete -----------------------------------------------------------------------------
    async def refuse_if_claimed(self, api_path: str, objects: list[ObjectInfo]) -> None:
        """409 when a live rename holds the folder (its claim is among ``objects``)."""
        key = self.claim_key(api_path)
        if not any(o.key == key for o in objects):
            return
        found = await self.read_claim(key)
        if found is None:
            return
        claim, _ = found
        if claim.live() or (claim.owner == self.owner and (claim.src, claim.dst) in self.running):
            raise Conflict(
                f"{api_path} is being renamed ({claim.src} to {claim.dst}); try again when "
                "that is done",
                path=api_path,
            )
        if claim.role == "source":
            raise Conflict(
                f"An interrupted rename of {claim.src} to {claim.dst} holds {api_path}: "
                f"rename it to {claim.dst} again to finish it",
                path=api_path,
            )
        # The half-made destination of an interrupted rename: its sources may be deleted
        # already, so it is all there is of them, unless that rename's lock is gone (a
        # journal left behind: the folder is an ordinary one).
        if await self.read_claim(self.claim_key(claim.src)) is not None:
            raise Conflict(
                f"{api_path} is the unfinished destination of a rename from {claim.src}: "
                f"rename {claim.src} to {api_path} again to finish it",
                path=api_path,
            )

    def _folder_entries(self, api_path: str, objects: list[ObjectInfo]) -> list[str]:
        """The folder's own ``folder/`` entry and its subfolders' among ``objects``,
        deepest first (a folder entry that still holds an object is not deleted)."""
        delim = self.keys.delimiter
        root = self.keys.dir_prefix(api_path)
        folders = {root}
        for o in objects:
            parts = o.key[len(root) :].split(delim)[:-1]
            for i in range(1, len(parts) + 1):
                folders.add(root + delim.join(parts[:i]) + delim)
        return sorted(folders, key=len, reverse=True)

    async def delete_tree(
        self,
        api_path: str,
        objects: list[ObjectInfo],
        *,
        etags: bool = False,
        gone: bool = False,
        then: Sequence[tuple[str, str | None]] = (),
    ) -> list[str]:
        """Delete every listed object of a folder, then the folder entries themselves.

        Some servers (SeaweedFS) keep an emptied folder visible as a ``folder/`` entry until
        that key is deleted; AWS has no such entries. Deleting them (deepest first, after
        the objects) makes the folder disappear on both. With ``etags``, objects are deleted
        only while they are the listed version; those saved again meanwhile are returned.
        ``gone``: the objects were deleted already, only their folder entries are left.
        ``then``: (key, ETag) pairs deleted in the same request, each only while it is that
        version (a rename's claims): those in the folder before its entries, others last.
        """
        delim = self.keys.delimiter
        keys = [] if gone else [o.key for o in objects if not o.key.endswith(delim)]
        conditions = {o.key: o.etag for o in objects if o.etag} if etags else {}
        conditions.update({key: etag for key, etag in then if etag})
        # One batch request, in this order: objects, the ``then`` keys inside the folder,
        # its entries (a folder entry that still holds an object is not deleted), the
        # ``then`` keys elsewhere.
        root = self.keys.dir_prefix(api_path)
        inside = [key for key, _ in then if key.startswith(root)]
        outside = [key for key, _ in then if not key.startswith(root)]
        changed = await self.storage.delete_many(
            keys + inside + self._folder_entries(api_path, objects) + outside,
            etags=conditions or None,
        )
        # A subfolder emptied earlier has no key to find it by, and keeps the folder listed
        # on SeaweedFS. One delimited LIST tells (nothing there on AWS); only then walk.
        if await self.storage.exists_any(root):
            leftovers = await self.emptied_entries(api_path)
            if leftovers:
                await self.storage.delete_many(leftovers)
        return changed

    # -- rename -----------------------------------------------------------------------------
    async def rename(
        self,
        old: str,
        new: str,
        *,
        check_parent: Callable[[str], Awaitable[None]],
        file_exists: Callable[[str], Awaitable[bool]],
        on_copied: OnCopied | None = None,
    ) -> None:
        """Rename folder ``old`` to ``new`` (the protocol in this module's docstring)."""
        # One rename of a pair at a time in this manager: a second request for the same
        # rename (a client's retry) while the first runs is 409, never a take-over of the
        # first one's claims (they carry this manager's own id).
        if (old, new) in self.running:
            raise Conflict(f"{old} is being renamed to {new}; try again when that is done")
        self.running.add((old, new))
        try:
            await self._rename(old, new, check_parent, file_exists, on_copied)
        finally:
            self.running.discard((old, new))

    async def _rename(
        self,
        old: str,
        new: str,
        check_parent: Callable[[str], Awaitable[None]],
        file_exists: Callable[[str], Awaitable[bool]],
        on_copied: OnCopied | None,
    ) -> None:
        if new.startswith(old + "/"):
            if await file_exists(new) or await self.exists(new):
                raise AlreadyExists(f"File already exists: {new}", path=new)  # as on disk
            raise BadRequest(f"Cannot move {old} into itself", path=new)
        objects = await self.tree(old)
        if await file_exists(new):
            raise AlreadyExists(f"File already exists: {new}", path=new)
        lock_key = self.claim_key(old)
        moving = [o for o in objects if o.key != lock_key]
        if not moving:
            await self._rename_without_objects(old, new, bool(objects), check_parent)
            return
        if old.rpartition("/")[0] != new.rpartition("/")[0]:
            await check_parent(new)
        lease, resume = await self._claim(old, new)
        lease.start()
        try:
            await self._move(old, new, moving, lease, resume, on_copied)
        finally:
            await lease.stop()

    async def _rename_without_objects(
        self,
        old: str,
        new: str,
        locked: bool,
        check_parent: Callable[[str], Awaitable[None]],
    ) -> None:
        """``old`` holds no object but perhaps its lock (``locked``): a rename to finish,
        an empty folder (SeaweedFS's emptied directories) to rename, or nothing (404)."""
        journal = await self.read_claim(self.claim_key(new))
        finished = journal is not None and journal[0].src == old
        if locked:
            found = await self.read_claim(self.claim_key(old))
            if found is not None:
                claim, etag = found
                if claim.role != "source" or claim.dst != new:
                    raise self._refusal(claim, old, new)
                if claim.live() and not self._ours(claim, old, new):
                    raise self._refusal(claim, old, new)
                # Every source was deleted under this lock: only the claims are left.
                claims = [(self.claim_key(old), etag)]
                if journal is not None and journal[0].src == old:
                    claims.append((self.claim_key(new), journal[1]))
                await self.delete_tree(old, [], then=claims)
                return
        if finished and journal is not None:
            await self.storage.delete(self.claim_key(new), etag=journal[1])
            return
        if await self.exists(new):
            raise AlreadyExists(f"File already exists: {new}", path=new)
        emptied = await self.emptied_entries(old)
        if not emptied:
            raise NotFound(f"File or directory does not exist: {old}", path=old)
        if old.rpartition("/")[0] != new.rpartition("/")[0]:
            await check_parent(new)
        await self.copy_tree(old, new, [])  # writes new's marker
        await self.storage.delete_many(emptied)

    def _ours(self, claim: Claim, old: str, new: str) -> bool:
        """A claim of this rename that may be taken over: its lease ran out, or it was
        left by an earlier attempt of this manager (called while this rename holds its
        place in :attr:`running`, so no other attempt of it runs here)."""
        if (claim.src, claim.dst) != (old, new):
            return False
        return not claim.live() or claim.owner == self.owner

    async def _claim(self, old: str, new: str) -> tuple[_Lease, bool]:
        """Claim ``old`` (its lock) and ``new`` (its journal); returns the lease and whether
        this resumes an interrupted rename."""
        expires = time.time() + self.lease_seconds
        lock = await self._take(Claim("source", old, new, self.owner, expires), old, new)
        held = [lock]
        try:
            journal = await self._take(
                Claim("destination", old, new, self.owner, expires), old, new
            )
            held.append(journal)
            if journal.fresh and await self.exists(new):
                raise AlreadyExists(f"File already exists: {new}", path=new)
        except BaseException:
            # Give back what this attempt made; a claim taken over stays, given up.
            for h in held:
                with contextlib.suppress(ContentsError):
                    if h.fresh:
                        await self.storage.delete(h.key, etag=h.etag)
                    else:
                        await _Lease(self.storage, [h], self.lease_seconds).give_up()
            raise
        resume = not (lock.fresh and journal.fresh)
        return _Lease(self.storage, held, self.lease_seconds), resume

    async def _take(self, fresh: Claim, old: str, new: str) -> _Held:
        """Write the claim ``fresh`` create-only in its folder, or take over a claim of this
        very rename whose owner is gone (``If-Match``: one server wins the take-over)."""
        folder = old if fresh.role == "source" else new
        key = self.claim_key(folder)
        try:
            etag = await self.storage.put(key, fresh.encode(), mode=PutMode.CREATE)
            return _Held(key, fresh, etag, fresh=True)
        except AlreadyExists:
            pass
        found = await self.read_claim(key)
        if found is None:
            raise Conflict(f"{folder} is being renamed or changed; try again", path=folder)
        claim, etag = found
        if claim.role != fresh.role or not self._ours(claim, old, new):
            raise self._refusal(claim, old, new)
        try:
            taken = await self.storage.put(
                key, fresh.encode(), mode=PutMode.IF_MATCH, etag=etag or ""
            )
        except (Conflict, NotFound):
            raise Conflict(
                f"{old} is being renamed by another server; try again", path=old
            ) from None
        log.info("Resuming the interrupted rename of %s to %s (left by %s)", old, new, claim.owner)
        return _Held(key, fresh, taken, fresh=False)

    @staticmethod
    def _refusal(claim: Claim, old: str, new: str) -> ContentsError:
        """The 409 for a rename of ``old`` to ``new`` that meets someone else's claim."""
        if claim.live():
            return Conflict(
                f"{claim.src} is being renamed to {claim.dst}; try again when that is done",
                path=old,
            )
        if claim.src == old:
            return Conflict(
                f"An interrupted rename of {old} to {claim.dst} holds it: rename it to "
                f"{claim.dst} again to finish it",
                path=old,
            )
        if claim.dst == old:
            return Conflict(
                f"{old} is the unfinished destination of a rename from {claim.src}: rename "
                f"{claim.src} to {old} again to finish it",
                path=old,
            )
        return AlreadyExists(f"File already exists: {new}", path=new)

    async def _move(
        self,
        old: str,
        new: str,
        moving: list[ObjectInfo],
        lease: _Lease,
        resume: bool,
        on_copied: OnCopied | None,
    ) -> None:
        """Copy, then delete the sources, then the claims (steps 3 and 4)."""
        src_prefix, dst_prefix = self.keys.dir_prefix(old), self.keys.dir_prefix(new)

        def dst_of(key: str) -> str:
            return self.keys.rebase(key, src_prefix, dst_prefix)

        keep: list[str] = []  # sources changed in both folders: kept, not deleted
        try:
            if resume:
                journal_key = self.claim_key(new)
                there = {o.key: o for o in await self.tree(new) if o.key != journal_key}
                made = await self._copy_resumed(moving, there, dst_of, keep, on_copied)
            else:
                made = await self._copy_pairs(self._pairs(old, new, moving), on_copied)
        except _CopyFailed as failed:
            if not resume and await self._undo_copies(failed.made, new):
                await lease.release()  # nothing of this rename is left
            else:
                await lease.give_up()
            raise failed.error from None
        except ContentsError:
            await lease.give_up()
            raise
        lock = lease.held[0]
        try:
            lease.check()
            listed = [o for o in moving if o.key not in keep]
            # The sources, and the subfolders' entries SeaweedFS keeps (the folder's own
            # goes last, with the lock): from now on nothing but the lock is in ``old``,
            # so new files are refused there (its ``exists`` is false).
            entries = self._folder_entries(old, moving)[:-1]
            changed = await self.storage.delete_many(
                [o.key for o in listed] + entries,
                etags={o.key: o.etag for o in listed if o.etag},
            )
            await self._move_all(changed, dst_of, made, keep, lease)
            # Files saved in ``old`` while it was being moved (new ones, and ones deleted
            # above and saved again) were not listed: sweep until a listing finds none.
            still: list[str] = []
            for sweep in range(SWEEPS + 1):
                late = [
                    o.key
                    for o in await self.tree(old)
                    if o.key != lock.key
                    and o.key not in keep
                    and not o.key.endswith(self.keys.delimiter)
                ]
                if not late or sweep == SWEEPS:
                    still = late
                    break
                await self._move_all(late, dst_of, made, keep, lease)
            lease.check()
        except ContentsError:
            await lease.give_up()
            raise
        if keep or still:
            # Nothing more will be moved: the claims go; what is named stays where it is.
            await lease.release()
            names = ", ".join(sorted(k[len(src_prefix) :] for k in keep))
            kept = (
                f" except {names}: changed in both folders during the rename, so both "
                "versions were kept; keep one and delete the other"
                if keep
                else ""
            )
            busy = (
                f"; files kept being saved in {old} meanwhile and stay there: "
                + ", ".join(sorted(k[len(src_prefix) :] for k in still))
                if still
                else ""
            )
            raise Conflict(f"Renamed {old} to {new}{kept}{busy}", path=old)
        # No renewal may rewrite a claim from here on: each is deleted as the version held.
        await lease.stop()
        journal = lease.held[1]
        # Then the folder entries, the lock and the journal, in one request: should it be
        # cut short, a retry finds ``old`` holding at most its lock (or gone while the
        # journal names it) and completes.
        await self.delete_tree(
            old, moving, gone=True, then=[(lock.key, lock.etag), (journal.key, journal.etag)]
        )

    async def _copy_resumed(
        self,
        moving: list[ObjectInfo],
        there: dict[str, ObjectInfo],
        dst_of: Callable[[str], str],
        keep: list[str],
        on_copied: OnCopied | None,
    ) -> dict[str, str | None]:
        """Copy what an interrupted rename left, the newest write winning object by object."""
        made: dict[str, str | None] = {}
        sem = asyncio.Semaphore(self.concurrency)

        async def one(source: ObjectInfo) -> None:
            dst_key = dst_of(source.key)
            found = there.get(dst_key)
            if found is not None and found.etag and found.etag == source.etag:
                made[dst_key] = found.etag  # copied before the interruption
                return
            if found is not None and found.last_modified > source.last_modified:
                return  # saved in the destination since: the newer one stays
            if found is not None and found.last_modified == source.last_modified:
                keep.append(source.key)  # same second, other bytes: keep both
                return
            async with sem:
                try:
                    if found is None:
                        copied = await self.storage.copy(source.key, dst_key, mode=PutMode.CREATE)
                    else:  # saved in the source after it was copied: replace that copy
                        copied = await self.storage.copy(
                            source.key, dst_key, mode=PutMode.IF_MATCH, etag=found.etag or ""
                        )
                except NotFound:
                    return  # moved by the owner taken over from, just before it stopped
                except (AlreadyExists, Conflict):
                    return  # written in the destination just now: newer than the source
            made[dst_key] = copied.etag
            if on_copied is not None:
                on_copied(dst_key, source)

        pending = [o for o in moving if not o.key.endswith(self.keys.delimiter)]
        results = await asyncio.gather(*(one(o) for o in pending), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return made

    async def _move_all(
        self,
        keys: list[str],
        dst_of: Callable[[str], str],
        made: dict[str, str | None],
        keep: list[str],
        lease: _Lease,
    ) -> None:
        """:meth:`_move_changed` for each key, concurrently (bounded)."""
        if not keys:
            return
        lease.check()
        sem = asyncio.Semaphore(self.concurrency)

        async def one(key: str) -> None:
            async with sem:
                await self._move_changed(key, dst_of(key), made, keep)

        results = await asyncio.gather(*(one(k) for k in keys), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _move_changed(
        self, src_key: str, dst_key: str, made: dict[str, str | None], keep: list[str]
    ) -> None:
        """Move one object saved (or created) in the source during the rename: over the
        destination only while that is still the copy made here, else both are kept."""
        for _ in range(5):
            try:
                info = await self.storage.head(src_key)
            except NotFound:
                return  # deleted or moved by someone else meanwhile
            ours = made.get(dst_key)
            try:
                if ours:
                    copied = await self.storage.copy(
                        src_key, dst_key, mode=PutMode.IF_MATCH, etag=ours
                    )
                else:
                    copied = await self.storage.copy(src_key, dst_key, mode=PutMode.CREATE)
            except NotFound:
                return
            except (AlreadyExists, Conflict):
                keep.append(src_key)  # changed in both folders: keep both
                return
            made[dst_key] = copied.etag
            try:
                await self.storage.delete(src_key, etag=info.etag)
                return
            except Conflict:
                continue  # saved again meanwhile: once more
        raise Conflict(f"{src_key} keeps changing while being renamed; try again", path=src_key)
