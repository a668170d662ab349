"""Folder rename, safe with several writers and with any server killed half-way.

Layer: storage and keys only (no Jupyter, no HTTP), on the folder operations of
:mod:`s3contents.folders` and the claims of :mod:`s3contents.claims`.

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
import logging
import time
from collections.abc import Awaitable, Callable

from .claims import Claim, Held, Lease, delete_own
from .errors import AlreadyExists, BadRequest, Conflict, ContentsError, NotFound
from .folders import Folders, OnCopied, _CopyFailed
from .storage.base import ObjectInfo, PutMode

__all__ = ["FolderRenames"]

log = logging.getLogger(__name__)

#: Listings of the source after its deletion, each moving what was saved in it meanwhile,
#: before a rename gives up on a folder that keeps being written to (and says so: 409).
SWEEPS = 5


class FolderRenames(Folders):
    """:class:`~s3contents.folders.Folders` that also rename (the protocol above)."""

    # -- rename -----------------------------------------------------------------------------
    async def rename(
        self,
        old: str,
        new: str,
        *,
        check_parent: Callable[[str], Awaitable[None]],
        file_exists: Callable[[str], Awaitable[bool]],
        on_copied: OnCopied | None = None,
        listed: list[ObjectInfo] | None = None,
    ) -> None:
        """Rename folder ``old`` to ``new`` (the protocol in this module's docstring);
        ``listed``: ``old``'s recursive listing, when the caller has just made it."""
        # One rename of a pair at a time in this manager: a second request for the same
        # rename (a client's retry) while the first runs is 409, never a take-over of the
        # first one's claims (they carry this manager's own id).
        if (old, new) in self.running:
            raise Conflict(f"{old} is being renamed to {new}; try again when that is done")
        self.running.add((old, new))
        try:
            await self._rename(old, new, check_parent, file_exists, on_copied, listed)
        finally:
            self.running.discard((old, new))

    async def _rename(
        self,
        old: str,
        new: str,
        check_parent: Callable[[str], Awaitable[None]],
        file_exists: Callable[[str], Awaitable[bool]],
        on_copied: OnCopied | None,
        listed: list[ObjectInfo] | None,
    ) -> None:
        if new.startswith(old + "/"):
            if await file_exists(new) or await self.exists(new):
                raise AlreadyExists(f"File already exists: {new}", path=new)  # as on disk
            raise BadRequest(f"Cannot move {old} into itself", path=new)
        objects = listed if listed is not None else await self.tree(old)
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

    async def _claim(self, old: str, new: str) -> tuple[Lease, bool]:
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
                if h.fresh:
                    await delete_own(self.storage, h)
                else:
                    with contextlib.suppress(ContentsError):
                        await Lease(self.storage, [h], self.lease_seconds).give_up()
            raise
        resume = not (lock.fresh and journal.fresh)
        return Lease(self.storage, held, self.lease_seconds), resume

    async def _take(self, fresh: Claim, old: str, new: str) -> Held:
        """Write the claim ``fresh`` create-only in its folder, or take over a claim of this
        very rename whose owner is gone (``If-Match``: one server wins the take-over)."""
        folder = old if fresh.role == "source" else new
        key = self.claim_key(folder)
        try:
            etag = await self.storage.put(key, fresh.encode(), mode=PutMode.CREATE)
            return Held(key, fresh, etag, fresh=True)
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
        except (Conflict, NotFound) as err:
            raise Conflict(
                f"{old} is being renamed by another server; try again", path=old
            ) from err
        log.info("Resuming the interrupted rename of %s to %s (left by %s)", old, new, claim.owner)
        return Held(key, fresh, taken, fresh=False)

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
        lease: Lease,
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
            raise failed.error from failed.error.__cause__  # the copy's own cause
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
        changed = await self.delete_tree(
            old, moving, gone=True, then=[(lock.key, lock.etag), (journal.key, journal.etag)]
        )
        for held in (lock, journal):
            if held.key in changed:  # another version than the one held: still ours?
                await delete_own(self.storage, held)

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
        lease: Lease,
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
