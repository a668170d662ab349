"""Whether a path exists: the manager's ``file_exists``, ``dir_exists``, ``exists`` and
``is_hidden`` (the API layer, a part of :class:`~s3contents.manager.ObjectStoreContentsManager`).

Each answers from what the call's context already knows (:mod:`~s3contents.wrapping`: a
listing or a save asked for a wrapper's ``get``), from an upload in progress, or with one
request (a HEAD, or a LIST for a folder). ``exists`` answers an :class:`Existence`: awaited
as every method here, or asked ``bool()`` by a caller that forgot to await (jupytext), then
answered through :mod:`~s3contents.syncprobe`.
"""

from __future__ import annotations

from . import handoff
from .errors import ContentsError, NotFound, to_http_error
from .parts import ManagerParts
from .parts import api_call as _api
from .paths import is_hidden_path
from .storage.base import Storage
from .syncprobe import Existence, TurnListings
from .wrapping import known as _known

__all__ = ["ExistenceChecks"]


class ExistenceChecks(ManagerParts):
    """The existence checks of the contents manager."""

    @_api
    async def dir_exists(self, path: str) -> bool:
        api_path = self._norm(path)
        known = _known(api_path, self.keys.is_reserved)
        if known is not None and (answer := known.is_dir(api_path)) is not None:
            return answer
        return await self.tree.is_dir(api_path)

    @_api
    async def file_exists(self, path: str = "") -> bool:
        api_path = self._norm(path)
        if not api_path:
            return False
        facts = _known(api_path, self.keys.is_reserved)
        if facts is not None and (answer := facts.is_file(api_path)) is not None:
            return answer
        key = self.keys.key(api_path)
        if self._uploads is not None:
            # jupyter_server's PUT handler asks before each chunk of an upload: the upload
            # changes nothing at the key until it completes, so its session remembers.
            known = self._uploads.object_exists(key)
            if known is not None:
                return bool(known)
        info = await self.tree.info(api_path)
        # The PUT handler saves or creates right after asking: it needs no second HEAD.
        handoff.hand_over(key, info)
        if self._uploads is not None:
            self._uploads.note_object_exists(key, info is not None)
        return info is not None

    def exists(self, path: str) -> Existence:  # type: ignore[override]
        """Whether a file or folder is at ``path``: to be awaited, as every method here.

        jupytext calls it without ``await`` (jupyter_server's local manager keeps a
        synchronous ``exists``): ``bool()`` of the answer then makes one bounded request
        through an adapter of its own on a thread of its own (:mod:`s3contents.syncprobe`),
        instead of a coroutine that is always true; logged once as a warning."""
        return Existence(
            lambda: self._exists(path), lambda: self._exists_now(path), self._warn_sync_exists
        )

    @_api
    async def _exists(self, path: str) -> bool:
        api_path = self._norm(path)
        if not api_path:
            return True
        known = _known(api_path, self.keys.is_reserved)
        if known is not None:
            is_file, is_dir = known.is_file(api_path), known.is_dir(api_path)
            if is_file or is_dir:
                return True
            if is_file is False and is_dir is False:
                return False
        return await self.tree.info(api_path) is not None or await self.tree.is_dir(api_path)

    #: What a synchronous caller (PyPI hybridcontents, see :mod:`s3contents.blocking`) runs.
    exists.async_impl = _exists  # type: ignore[attr-defined]

    def _exists_now(self, path: str) -> bool:
        """``exists`` for a caller that did not await, from the event loop's thread."""
        try:
            api_path = self._norm(path)
            if not api_path:
                return True
            key, folder = self.keys.key(api_path), self.keys.dir_prefix(api_path)
            claim = self.keys.claim_key(api_path)
        except ContentsError as err:
            raise to_http_error(err) from err

        async def check(storage: Storage) -> bool:
            try:
                await storage.head(key)
                return True
            except NotFound:
                return await storage.exists_any(folder, ignore=claim)

        try:
            listed = self._turn_listings.answer(key, self.sync_probe)
            return listed if listed is not None else self.sync_probe.run(check)
        except ContentsError as err:
            raise to_http_error(err) from err

    @property
    def _turn_listings(self) -> TurnListings:
        if self._turn is None:
            self._turn = TurnListings(self.keys.delimiter)
        return self._turn

    _turn: TurnListings | None = None

    def _warn_sync_exists(self) -> None:
        if not self._sync_exists_warned:
            self._sync_exists_warned = True
            self.log.warning(
                "exists() was called without await (jupytext does so): answered by a "
                "blocking request on a separate connection; see docs/jupytext.md"
            )

    _sync_exists_warned = False

    async def is_hidden(self, path: str) -> bool:
        try:
            api_path = self._norm(path)
        except ContentsError:
            return True
        return is_hidden_path(api_path) or self.keys.is_reserved(api_path)
