"""What real-time collaboration (jupyter-collaboration) needs from the contents manager.

jupyter_server_ydoc keeps each open document in a room and talks to the contents manager
through a file loader that:

* polls ``get(path, content=False)`` once a second: one HEAD, never a download;
* autosaves with ``get(content=False)`` (is the file still the version loaded?), ``save``,
  then ``get(content=False, require_hash=True)``. The manager remembers the hash of the bytes
  it has just written (:class:`SavedHashes`, by key and ETag), so that last call is one HEAD
  too instead of a GET of the whole notebook after every autosave.

A rename is a copy in object storage, and a copy is a new object with a new LastModified,
where a file system's rename keeps the file's date. The file loader of an open document
would take that newer date for a change made outside Jupyter and reload the document from
the bucket, dropping what collaborators typed since the last autosave. The manager reports
the date the object had before it renamed it for as long as the object holds those same bytes
(:class:`RenamedDates`, by key and ETag: S3 copies keep the ETag; elsewhere it never matches
and the copy's own date is reported), so a rename through Jupyter is no change.

jupyter_server_fileid (its default ``ArbitraryFileIdManager``, which needs no local files)
follows renames from the manager's events, in a SQLite table where a path has one id at
most. Its ``move`` fails (``UNIQUE constraint failed: Files.path``, the whole move undone:
the renamed files' ids are left at paths that no longer exist) when a destination path
already has an id, and it often has one: a collaboration session asked for a path indexes it
whether or not a file is there (the client asks again with the path it opened the document
at when it reconnects, after a rename too), a file deleted outside this server keeps its id,
and a failed move leaves every id where it was. It also moves a folder's files only when the
folder has an id of its own, and finds them with ``GLOB 'folder/*'``: a folder named with
``[``, ``*`` or ``?`` takes other folders' ids, or none. :func:`move_file_ids` moves the ids
itself, exactly, before the event (which then finds nothing left to move), dropping any id
in the way; :func:`drop_stale_file_ids` clears the destination of a copy before its event.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .storage.base import ObjectInfo

__all__ = ["RenamedDates", "SavedHashes", "drop_stale_file_ids", "move_file_ids"]

log = logging.getLogger(__name__)


class SavedHashes:
    """The ``hash`` fields of objects' bytes, by key, valid while the object's ETag is the same.

    A bounded, least recently used map: ``remember`` after writing or reading the bytes,
    ``get`` with the ETag a HEAD answers now (a changed object is a miss). The ETag names the
    bytes (S3: their MD5 for a plain PUT; GCS: the generation), so a hit is exact.
    """

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[str, dict[str, str]]] = OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def remember(self, key: str, etag: str | None, fields: dict[str, str]) -> None:
        if not etag:
            self._entries.pop(key, None)
            return
        self._entries[key] = (etag, dict(fields))
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def get(self, key: str, etag: str | None, algorithm: str) -> dict[str, str] | None:
        """The fields remembered for ``key`` if it is still version ``etag``, hashed with
        ``algorithm``; else None."""
        entry = self._entries.get(key)
        if entry is None or not etag or entry[0] != etag:
            return None
        if entry[1].get("hash_algorithm") != algorithm:
            return None
        self._entries.move_to_end(key)
        return dict(entry[1])


class RenamedDates:
    """The dates objects had before this process renamed them, by new key, valid while the
    object at that key has the same ETag (the same bytes); bounded, least recently used."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[str, datetime]] = OrderedDict()

    def remember(self, key: str, source: ObjectInfo) -> None:
        """``key`` is a copy of ``source`` (as a HEAD or a listing saw it, before the copy)."""
        source = self.apply(source)  # renamed twice: the first date
        self.note(key, source.etag, source.last_modified)

    def note(self, key: str, etag: str | None, when: datetime) -> None:
        """The object at ``key``, while it is version ``etag``, dates from ``when``."""
        if not etag:
            self._entries.pop(key, None)
            return
        self._entries[key] = (etag, when)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        """``key`` was written, or deleted, by this process."""
        self._entries.pop(key, None)

    def apply(self, info: ObjectInfo) -> ObjectInfo:
        """``info`` with the date from before the rename, if its object is still the copy."""
        entry = self._entries.get(info.key) if self._entries else None
        if entry is None or not info.etag or info.etag != entry[0]:
            return info
        return dataclasses.replace(info, last_modified=entry[1])


def _file_id_manager(serverapp: Any) -> Any:
    """The server's file id manager (jupyter_server_fileid), or None. Under another contents
    manager (a mount of :class:`~s3contents.hybrid.HybridContentsManager`, whose events go
    out with the mount's name in front) ``serverapp`` is no server: None too."""
    settings = getattr(getattr(serverapp, "web_app", None), "settings", None)
    return settings.get("file_id_manager") if isinstance(settings, dict) else None


def _file_id_table(manager: Any) -> tuple[sqlite3.Connection, Callable[[str], str]] | None:
    """The SQLite connection of an ``ArbitraryFileIdManager`` (its table ``Files``: ``id``,
    ``path`` unique) and how it turns an API path into a stored path; None for other classes."""
    try:
        from jupyter_server_fileid.manager import ArbitraryFileIdManager
    except ImportError:
        return None
    if not isinstance(manager, ArbitraryFileIdManager):
        return None
    return manager.con, manager._normalize_path


def _under(path: str) -> tuple[str, str]:
    """Bounds of the stored paths under the folder ``path``: ``low <= p < high`` holds exactly
    for the paths that start with ``path + "/"`` ("0" follows "/"), with no pattern syntax
    and on the table's index."""
    return path + "/", path + "0"


def _drop(con: sqlite3.Connection, path: str) -> int:
    low, high = _under(path)
    cursor = con.execute(
        "DELETE FROM Files WHERE path = ? OR (path >= ? AND path < ?)", (path, low, high)
    )
    return cursor.rowcount


def drop_stale_file_ids(serverapp: Any, path: str) -> None:
    """Before the ``copy`` event of the new file or folder ``path``: drop the ids that
    jupyter_server_fileid's manager has for it and for paths under it. A copy never replaces
    anything and always makes a new path, so they are ids of paths that did not exist; the
    event then indexes the copy without ``UNIQUE constraint failed`` and without giving it an
    old id. Does nothing without the extension; never fails the copy."""
    table = _file_id_table(_file_id_manager(serverapp))
    if table is None or not path:
        return
    con, normalize = table
    try:
        with con:
            dropped = _drop(con, normalize(path))
    except Exception:
        log.warning("Could not drop the file ids at %s", path, exc_info=True)
        return
    if dropped:
        log.info("Dropped %d file ids at %s, of paths that did not exist", dropped, path)


def move_file_ids(serverapp: Any, old: str, new: str, *, folder: bool) -> None:
    """Before the ``rename`` event of ``old`` to ``new``: move the ids that
    jupyter_server_fileid's ``ArbitraryFileIdManager`` has for ``old`` (and, for a folder,
    for the paths under it) to the new paths, in one transaction. An id already at one of
    those new paths is dropped: the file there now is the one whose id moves, so that id was
    indexed for a path where no file was, or is left from a file that has gone. Ids at new paths
    that nothing moves onto stay: the same rename answered twice moves nothing the second
    time and drops nothing. The event then finds no id at ``old`` and only makes sure ``new``
    has one: its own move, which fails on an id at the destination and takes folder names
    for ``GLOB`` patterns, has nothing left to do. With another file id manager, a renamed
    folder is given an id before the event (without one, a manager like
    ``ArbitraryFileIdManager`` leaves the folder's files behind). Does nothing without the
    extension; never fails the rename."""
    manager = _file_id_manager(serverapp)
    if manager is None or not old or not new or old == new:
        return
    table = _file_id_table(manager)
    try:
        if table is None:
            if folder:
                manager.index(old)
            return
        con, normalize = table
        src, dst = normalize(old), normalize(new)
        if dst.startswith(src + "/") or src.startswith(dst + "/"):
            return  # into itself or onto its own folder: refused by the manager before
        dropped = 0
        with con:
            if folder:
                low, high = _under(src)
                moved = (dst + "/", len(src) + 2, low, high)
                dropped += con.execute(
                    "DELETE FROM Files WHERE path IN (SELECT ? || substr(path, ?) FROM Files"
                    " WHERE path >= ? AND path < ?)",
                    moved,
                ).rowcount
                con.execute(
                    "UPDATE Files SET path = ? || substr(path, ?) WHERE path >= ? AND path < ?",
                    moved,
                )
            dropped += con.execute(
                "DELETE FROM Files WHERE path = ? AND EXISTS (SELECT 1 FROM Files WHERE path = ?)",
                (dst, src),
            ).rowcount
            con.execute("UPDATE Files SET path = ? WHERE path = ?", (dst, src))
    except Exception:
        log.warning("Could not move the file ids of %s to %s", old, new, exc_info=True)
        return
    if dropped:
        log.info("Dropped %d file ids at %s, of paths that did not exist", dropped, new)
