"""Copies and moves from one mount to another (API layer, under
:mod:`s3contents.hybrid.manager`, on :mod:`s3contents.hybrid.mounts`).

Two managers share no storage, so the data goes through this process: files in pieces of
``chunk_size`` (read by the source mount, written through the target's chunked-upload
protocol when it has one), notebooks as models, folders file by file after a plan of what
they list. A move first checks that the source holds nothing its listing hides (it would
be deleted without being copied), and deletes the source only once everything is copied;
whatever a failed copy wrote is removed again (:meth:`Transfer.abandon`). Kept apart from
the manager because it is the one part that holds data and cleans up after failures.

The caller (the hybrid manager) keeps the mounts quiet meanwhile and emits one event.
"""

from __future__ import annotations

import base64
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any, cast

from ..contents import call, copy_name, free_names
from ..errors import AlreadyExists, BadRequest, NotFound
from ..paths import split_api
from .mounts import Place, join, quiet

__all__ = ["Transfer"]

#: Names tried for a copy before giving up (``a.txt``, ``a-Copy1.txt``, ...).
_MAX_NAMES = 10_000


class Transfer:
    """One copy or move between two mounts, in pieces of ``chunk_size`` bytes."""

    def __init__(self, chunk_size: int, log: logging.Logger | logging.LoggerAdapter[Any]):
        self.chunk_size = chunk_size
        self.log = log

    async def copy(self, src: Place, dst: Place) -> dict[str, Any]:
        """Copy ``src`` into the folder ``dst`` (under a free name, as Jupyter's copy does),
        or to the new path ``dst`` when it is no folder (its parent must exist); returns the
        copy's model, paths from the root of the tree."""
        src_model = await call(src.cm.get, src.rel, content=False)
        name = src.full.rsplit("/", 1)[-1]
        if await self.is_dir(dst):
            target = dst.at(await self.free_name(dst, copy_name(name)))
        else:
            await self.check_new(dst)
            target = dst
        saved = await self.transfer(src, target, src_model["type"])
        return cast(dict[str, Any], target.full_model(saved))

    async def move(self, src: Place, dst: Place) -> None:
        """Move ``src`` to the new path ``dst`` of another mount: copy, then delete the
        source. A folder holding files its listing hides (hidden files, ``hide_globs``)
        is refused first: they could not be copied and would go with the source."""
        await self.check_new(dst)
        src_model = await call(src.cm.get, src.rel, content=False)
        plan = None
        if src_model["type"] == "directory":
            plan = await self.plan(src)
            listed = {rel for rel, kind in plan if kind != "directory"}
            unlisted = await self.unlisted_files(src, listed)
            if unlisted:
                shown = ", ".join(unlisted[:3]) + (", ..." if len(unlisted) > 3 else "")
                raise BadRequest(
                    f"Cannot move {src.full} to another mount: {len(unlisted)} file(s) in it "
                    f"are hidden from listings and could not be moved ({shown})",
                    path=src.full,
                )
        await self.transfer(src, dst, src_model["type"], plan)
        try:
            await call(src.cm.delete, src.rel)
        except BaseException:
            # The source stays whole (its manager refused, e.g. a local folder that is not
            # empty with delete_to_trash off): the copy goes, nothing is half-moved.
            await self.abandon(dst)
            raise

    # -- the target ------------------------------------------------------------------------
    async def is_dir(self, place: Place) -> bool:
        return not place.rel or bool(await call(place.cm.dir_exists, place.rel))

    async def check_new(self, place: Place) -> None:
        """``place`` is free and its parent folder exists (404 / 409 otherwise)."""
        parent = place.at(split_api(place.rel)[0])
        if not await self.is_dir(parent):
            raise NotFound(f"No such parent directory: {parent.full}", path=parent.full)
        if await call(place.cm.exists, place.rel):
            raise AlreadyExists(f"File already exists: {place.full}", path=place.full)

    async def free_name(self, folder: Place, filename: str) -> str:
        """``filename``, or the first free ``name-CopyN.ext`` in ``folder`` (Jupyter's rule:
        the number goes before the last dot of a notebook, before the first dot otherwise)."""
        for name in itertools.islice(free_names(filename, "-Copy"), _MAX_NAMES):
            rel = join(folder.rel, name)
            if not await call(folder.cm.exists, rel):
                return rel
        raise AlreadyExists(f"No free name for {filename} in {folder.full}", path=folder.full)

    # -- the source ------------------------------------------------------------------------
    async def plan(self, src: Place) -> list[tuple[str, str]]:
        """Every entry the folder ``src`` lists, recursively, as (path inside it, type);
        a folder comes before what it holds."""
        plan: list[tuple[str, str]] = []
        todo = [""]
        while todo:
            sub = todo.pop()
            listing = await call(src.cm.get, join(src.rel, sub), content=True, type="directory")
            for entry in listing.get("content") or ():
                rel = join(sub, entry["name"])
                plan.append((rel, entry["type"]))
                if entry["type"] == "directory":
                    todo.append(rel)
        return plan

    async def unlisted_files(self, src: Place, listed: set[str]) -> list[str]:
        """Files in the folder ``src`` that ``listed`` lacks, from the store itself (a
        bucket's keys, a local folder's files; checkpoints and folder markers excepted).
        Mounts of other kinds are taken at their listing's word."""
        found = await src.mount.stored_files(src.rel)
        return sorted(set(found or ()) - listed)

    # -- copying ---------------------------------------------------------------------------
    async def transfer(
        self,
        src: Place,
        dst: Place,
        kind: str,
        plan: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        """Write ``src`` (of type ``kind``) to the new path ``dst``; returns the manager's
        model of ``dst``. A folder made here is removed again if the copy fails half-way."""
        if kind != "directory":
            return await self.transfer_file(src, dst, kind)
        if plan is None:
            plan = await self.plan(src)
        await call(dst.cm.new, {"type": "directory"}, dst.rel)
        try:
            for rel, entry_kind in plan:
                s, d = src.at(join(src.rel, rel)), dst.at(join(dst.rel, rel))
                if entry_kind == "directory":
                    await call(d.cm.new, {"type": "directory"}, d.rel)
                else:
                    await self.transfer_file(s, d, entry_kind)
            return cast(dict[str, Any], await call(dst.cm.get, dst.rel, content=False))
        except BaseException:
            await self.abandon(dst)
            raise

    async def transfer_file(self, src: Place, dst: Place, kind: str) -> dict[str, Any]:
        """Copy one file or notebook: a notebook as a model, a file in pieces (one save
        when it fits in one piece or the target takes no chunks)."""
        if kind == "notebook":
            model = await call(src.cm.get, src.rel, content=True, type="notebook")
            saved = await call(
                dst.cm.new,
                {"type": "notebook", "format": "json", "content": model["content"]},
                dst.rel,
            )
            return cast(dict[str, Any], saved)
        pieces = src.mount.read_pieces(src.rel, self.chunk_size)
        try:
            current = await _next_piece(pieces)
            following = await _next_piece(pieces)
            if following is not None and not dst.mount.takes_chunks:
                # No chunked protocol: the whole file in one save (a generic manager).
                rest = [current or b"", following]
                while (piece := await _next_piece(pieces)) is not None:
                    rest.append(piece)
                current, following = b"".join(rest), None
            if following is None:
                saved = await call(dst.cm.new, _file_model(current or b""), dst.rel)
                return cast(dict[str, Any], saved)
            number = 1
            try:
                while True:
                    last = following is None
                    chunk = _file_model(current or b"")
                    chunk["chunk"] = -1 if last else number
                    saved = await call(dst.cm.save, chunk, dst.rel)
                    if last:
                        return cast(dict[str, Any], saved)
                    current, following = following, await _next_piece(pieces)
                    number += 1
            except BaseException:
                if number > 1:  # an upload is under way at dst
                    await self.abandon(dst)
                raise
        finally:
            await pieces.aclose()

    async def abandon(self, dst: Place) -> None:
        """Remove what a failed transfer wrote at ``dst`` (best effort, logged): a chunked
        upload of ours is aborted (its object never appeared), anything else deleted."""
        cm = dst.cm
        try:
            with quiet():
                if await dst.mount.abort_upload(dst.rel, "copy between mounts failed"):
                    return
                if await call(cm.exists, dst.rel):
                    await call(cm.delete, dst.rel)
        except Exception:
            self.log.warning("Could not remove the partial copy at %s", dst.full, exc_info=True)


def _file_model(data: bytes) -> dict[str, Any]:
    return {"type": "file", "format": "base64", "content": base64.b64encode(data).decode()}


async def _next_piece(pieces: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await pieces.__anext__()
    except StopAsyncIteration:
        return None
