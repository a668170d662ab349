"""Whole-folder operations on object storage: list, copy and delete a tree of objects.

Layer: storage and keys only (no Jupyter, no HTTP). The manager calls these for folders;
everything here speaks :mod:`s3contents.errors` and the :class:`~s3contents.storage.base.Storage`
port. A folder is only a key prefix, so copying or deleting one touches many objects, while
other servers may write in it: copies are create-only, deletions conditional, and a folder
claimed by a rename in progress (:mod:`s3contents.claims`) is not deleted. Renaming a
folder, the protocol that keeps every acknowledged save with several writers and killed
servers, is :mod:`s3contents.renames`, built on these.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .claims import LEASE_SECONDS, Claim
from .errors import Conflict, ContentsError, NotFound
from .paths import KeyMapper
from .storage.base import ObjectInfo, PutMode, Storage
from .traits import StoreTraits

__all__ = ["FolderListing", "Folders", "OnCopied"]

log = logging.getLogger(__name__)

#: How many keys of a folder's tree, the first listed, date the folder (AWS's and GCS's
#: page): its own model and its parent's listing read the same ones.
DATE_KEYS = 1000


class _CopyFailed(Exception):
    """A copy of a tree failed: what was made before, and the error."""

    def __init__(self, made: dict[str, str | None], error: ContentsError) -> None:
        super().__init__(str(error))
        self.made = made
        self.error = error


OnCopied = Callable[[str, ObjectInfo], None]


@dataclass
class FolderListing:
    """One folder's listing: direct files as (name, object), subfolder names, existence;
    from :meth:`Folders.dated_listing`, also the folder's date and its subfolders' (None:
    no object that dates it)."""

    files: list[tuple[str, ObjectInfo]]
    dirs: list[str]
    exists: bool
    date: datetime | None = None
    dir_dates: dict[str, datetime | None] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        return {name for name, _ in self.files} | set(self.dirs)


class _Tree:
    """What the pages of a folder's recursive listing tell, page after page: its direct
    files, its subfolders (in order) and the date of each from its first ``limit`` keys."""

    def __init__(self, prefix: str, delimiter: str, limit: int, dates: Callable[[str], bool]):
        self.prefix, self.delimiter, self.limit, self.dates = prefix, delimiter, limit, dates
        self.files: list[tuple[str, ObjectInfo]] = []
        self.newest: dict[str, datetime | None] = {}
        self.counted: dict[str, int] = {}

    def take(self, objects: Sequence[ObjectInfo]) -> None:
        d, n, limit, dates = self.delimiter, len(self.prefix), self.limit, self.dates
        files, newest, counted = self.files, self.newest, self.counted
        for o in objects:
            rel = o.key[n:]
            cut = rel.find(d)
            if cut < 0:
                if rel:
                    files.append((rel, o))
                continue
            if cut == 0:
                continue  # "folder//x": an empty name, not a subfolder
            name = rel[:cut]
            seen = counted.get(name, 0)
            counted[name] = seen + 1
            if seen == 0:
                newest[name] = None
            elif seen >= limit:
                continue
            if dates(rel[cut + len(d) :]):
                when, before = o.last_modified, newest[name]
                if before is None or when > before:
                    newest[name] = when


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
        traits: StoreTraits | None = None,
    ) -> None:
        self.storage = storage
        self.keys = keys
        self.owner = owner
        self.concurrency = max(1, concurrency)
        self.lease_seconds = lease_seconds
        #: Renames this manager is running now, (old, new): a claim of our own owner id
        #: not in here was left by a rename of ours that failed, and may be taken over.
        self.running = running if running is not None else set()
        #: What the store does where stores differ (asked once, then known).
        self.traits = traits if traits is not None else StoreTraits(storage, keys, owner)

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

    @property
    def date_keys(self) -> int:
        """How many keys of a folder's tree, the first listed, date it: 1000 (AWS's and
        GCS's page), fewer only where the adapter's pages are smaller (tests)."""
        return min(DATE_KEYS, self.storage.list_page_size)

    def _newest(self, prefix: str, objects: Sequence[ObjectInfo]) -> datetime | None:
        """The newest write among the first :attr:`date_keys` of ``objects`` (listed
        under ``prefix``, in the store's order) that date the folder."""
        n, dates = len(prefix), self.keys.dates_folder
        first = objects[: self.date_keys]
        return max((o.last_modified for o in first if dates(o.key[n:])), default=None)

    async def _first_page_date(self, prefix: str) -> datetime | None:
        objects, _ = await self.storage.list_page(prefix, self.date_keys)
        return self._newest(prefix, objects)

    async def dated_listing(
        self,
        api_path: str,
        *,
        content: bool = True,
        listable: Callable[[str], bool] | None = None,
        probe_emptied: bool = True,
    ) -> FolderListing:
        """The folder's listing with dates: its own, and with ``content`` its files and
        each subfolder's (``listable``: the subfolder names that are shown; others get no
        date).

        **A folder's date** is the newest write among the first :attr:`date_keys` (1000)
        keys of its recursive listing, in the store's order, that date it
        (:meth:`KeyMapper.dates_folder`: not checkpoints nor claims): the newest in its
        whole tree up to that size; None when no such object is there. Whoever asks, this
        folder's own model or its parent's listing, reads the same keys, so both give the
        same date.

        Without ``content``: one request of those keys. With it, the first page of the
        folder's tree (:meth:`Storage.list_page`: 1000 keys on AWS and GCS, 10000 on
        SeaweedFS and moto) gives its date, its direct files and the date of every
        subfolder it holds whole, so a tree of one page is one request. A page ending on
        a file of the folder itself is followed by the next (a flat folder costs its
        pages); one ending inside a subfolder turns to the delimited listing of the folder
        (its direct files and subfolders, all pages) and, for each subfolder the pages did
        not hold whole (the one they end in, those after it), the first
        :attr:`date_keys` of its own tree, concurrently.

        An empty page: nothing is under the folder, but some servers (SeaweedFS) keep
        emptied folders as directories that only delimited listings show; with
        ``probe_emptied`` one delimited LIST tells (:meth:`emptied_listing`).
        """
        prefix = self.keys.dir_prefix(api_path)
        page = None if content else self.date_keys
        objects, token = await self.storage.list_page(prefix, page)
        if not objects:
            known = self.traits.known()  # never probed for a read: it writes
            if probe_emptied and (known is None or known.keeps_emptied_folders):
                return await self.emptied_listing(api_path)
            return FolderListing([], [], not api_path)
        claim = self.claim_key(api_path) if api_path else None
        exists = not api_path or any(o.key != claim for o in objects)
        date = self._newest(prefix, objects)
        if not content:
            return FolderListing([], [], exists, date)
        d, n = self.keys.delimiter, len(prefix)
        tree = _Tree(prefix, d, self.date_keys, self.keys.dates_folder)
        tree.take(objects)
        # More pages while they end on a file of the folder itself (a flat folder: as many
        # pages as a delimited listing); a page ending inside a subfolder may be followed by
        # any number of keys of it: the delimited listing then gives the rest.
        last = objects[-1].key[n:]
        while token and d not in last:
            objects, token = await self.storage.list_page(prefix, token=token)
            tree.take(objects)
            last = objects[-1].key[n:] if objects else ""
        incomplete: set[str] = set()
        if token:
            # The page ends inside one subfolder (a tree's keys come in one run), which is
            # dated already if the pages held as many of its keys as date it.
            name = last.split(d, 1)[0]
            if name and tree.counted.get(name, 0) < tree.limit:
                incomplete.add(name)
            found = await self.storage.list(prefix, d)
            tree.files = [
                (self.keys.child_name(prefix, o.key), o)
                for o in found.objects
                if o.key != prefix and not o.key.endswith(d)
            ]
            for p in found.prefixes:
                name = self.keys.child_name(prefix, p)
                if name and name not in tree.newest:
                    tree.newest[name] = None
                    incomplete.add(name)
        if listable is not None:
            incomplete = {name for name in incomplete if listable(name)}
        if incomplete:
            await self._date_subfolders(prefix, sorted(incomplete), tree.newest)
        return FolderListing(tree.files, list(tree.newest), exists, date, tree.newest)

    async def _date_subfolders(
        self, prefix: str, names: list[str], dates: dict[str, datetime | None]
    ) -> None:
        """The date of each subfolder ``names`` of ``prefix``, from its own first page."""
        sem = asyncio.Semaphore(self.concurrency)
        d = self.keys.delimiter

        async def one(name: str) -> None:
            async with sem:
                dates[name] = await self._first_page_date(prefix + name + d)

        results = await asyncio.gather(*(one(name) for name in names), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def emptied_listing(self, api_path: str) -> FolderListing:
        """The delimited listing of a folder whose recursive listing found no object: on
        SeaweedFS an emptied folder (and emptied subfolders in it) still listed; nothing in
        it dates it."""
        found = await self.listing(api_path)
        found.dir_dates = dict.fromkeys(found.dirs)
        return found

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
            raise failed.error from failed.error.__cause__  # the copy's own cause

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
        # on SeaweedFS. One delimited LIST tells; only then walk. Stores that keep no
        # emptied folders (AWS, GCS, moto: asked once) need no look.
        if (await self.traits.get()).keeps_emptied_folders and await self.storage.exists_any(root):
            leftovers = await self.emptied_entries(api_path)
            if leftovers:
                await self.storage.delete_many(leftovers)
        return changed
