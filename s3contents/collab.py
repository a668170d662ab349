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
follows renames from the manager's events, but moves the ids of a folder's files only when
the folder has an id of its own: :func:`index_renamed_folder` gives it one before the event.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict
from datetime import datetime
from typing import Any

from .storage.base import ObjectInfo

__all__ = ["RenamedDates", "SavedHashes", "index_renamed_folder"]

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
        if not source.etag:
            self._entries.pop(key, None)
            return
        self._entries[key] = (source.etag, source.last_modified)
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


def index_renamed_folder(serverapp: Any, folder: str) -> None:
    """Before the ``rename`` event of ``folder``: make sure jupyter_server_fileid's manager
    (when the server runs it) has an id for the folder itself, so that it moves the ids of
    the files inside along with it. Without one, ``ArbitraryFileIdManager.move`` only gives
    the new folder path a new id and the files keep their old paths (their ids then lead
    nowhere). Does nothing without the extension; never fails the rename."""
    settings = getattr(getattr(serverapp, "web_app", None), "settings", None)
    manager = settings.get("file_id_manager") if isinstance(settings, dict) else None
    if manager is None or not folder:
        return
    try:
        manager.index(folder)
    except Exception:
        log.warning("Could not index %s for the file id manager", folder, exc_info=True)
