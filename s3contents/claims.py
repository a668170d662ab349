"""The claims of a folder rename and their lease (the protocol is in
:mod:`s3contents.renames`). Layer: storage only.

A claim is one small JSON object, ``.s3contents-rename`` in a folder: in the folder being
renamed its *source lock*, in the new folder its *destination journal*. Each is written
create-only, carries its owner and an expiry, and is rewritten by its owner (the lease)
every third of the lease, each time only while it is still the version written
(``If-Match``): an owner that lost its claim finds out before its next deletion.
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
from dataclasses import dataclass, field

from .errors import Conflict, ContentsError, NotFound, Unavailable
from .storage.base import PutMode, Storage

__all__ = ["LEASE_SECONDS", "Claim", "Held", "Lease", "delete_own", "new_owner_id"]

log = logging.getLogger(__name__)

#: How long a claim of a folder rename stays valid without being renewed. Renewed every
#: third of it; a rename killed with its server is resumable by another after this.
LEASE_SECONDS = 30.0


def new_owner_id() -> str:
    """An id for one manager: which process holds a claim (host and pid, for people)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


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
class Held:
    """One claim object this process holds: its key and the version it last wrote."""

    key: str
    claim: Claim
    etag: str | None
    #: Written new by this attempt (else taken over from an owner that is gone).
    fresh: bool = True


@dataclass
class Lease:
    """Both claims of one rename, renewed in the background while it runs."""

    storage: Storage
    held: list[Held]
    seconds: float
    #: time.monotonic() until which the claims are known to be ours.
    valid_until: float = 0.0
    lost: str | None = None
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _stopping: asyncio.Event | None = field(default=None, repr=False)

    def start(self) -> None:
        self.valid_until = time.monotonic() + self.seconds * 0.9
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._renew_loop(self._stopping))

    async def _renew_loop(self, stopping: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.seconds / 3)
            if stopping.is_set():
                return
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
            except (Conflict, NotFound) as err:
                raise Conflict(
                    f"Another server took over the rename of {h.claim.src} to {h.claim.dst}",
                    path=h.claim.dst,
                ) from err
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
        """Stop renewing. A renewal in flight is let finish, not cancelled: cancelled, its
        write could land unseen, and the claim would no longer be the version held here
        (its release would then fail, and leave the claim behind a finished rename)."""
        task, self._task = self._task, None
        if self._stopping is not None:
            self._stopping.set()
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def give_up(self) -> None:
        """Leave the claims for a retry to take over at once (best effort)."""
        await self.stop()
        with contextlib.suppress(ContentsError):
            await self.renew(expires=0.0)

    async def release(self) -> None:
        """Delete the claims, each only while it is still this owner's."""
        await self.stop()
        for h in self.held:
            await delete_own(self.storage, h)


async def delete_own(storage: Storage, held: Held) -> None:
    """Delete the claim ``held`` while it is the version written here, or, when that
    version was replaced, while the claim there is still this owner's own (a renewal whose
    answer was lost, after a timeout, wrote a version unknown here). Best effort: a claim
    that stays is logged, and a retry of the rename takes it over once its lease ran out."""
    try:
        await storage.delete(held.key, etag=held.etag)
        return
    except Conflict:
        pass
    except ContentsError as err:
        log.warning("Could not delete the rename claim %s: %s", held.key, err)
        return
    try:
        data, info = await storage.get(held.key)
    except NotFound:
        return
    except ContentsError as err:
        log.warning("Could not delete the rename claim %s: %s", held.key, err)
        return
    found = Claim.decode(data)
    mine = held.claim
    if found is None or (found.owner, found.role, found.src, found.dst) != (
        mine.owner,
        mine.role,
        mine.src,
        mine.dst,
    ):
        return  # another owner's now: not ours to delete
    try:
        await storage.delete(held.key, etag=info.etag)
    except ContentsError as err:
        log.warning("Could not delete the rename claim %s: %s", held.key, err)
