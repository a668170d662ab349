"""A rename's lease: a renewal in flight when the rename ends is let finish, and the claims
are deleted as the versions written last, never left behind a finished rename."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from s3contents.claims import Claim, Held, Lease, delete_own
from s3contents.errors import Conflict, NotFound
from s3contents.storage.base import ObjectInfo, PutMode


class _Objects:
    """Just enough of the storage port for claims: versioned put, conditional delete."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.version = 0
        self.gate: asyncio.Event | None = None  # when set, puts wait for it
        self.in_flight = asyncio.Event()

    async def put(
        self, key: str, data: bytes, *, mode: PutMode = PutMode.OVERWRITE, etag: str = ""
    ) -> str:
        if self.gate is not None:
            self.in_flight.set()
            await self.gate.wait()
        if mode is PutMode.IF_MATCH and self.objects.get(key, (b"", None))[1] != etag:
            raise Conflict("changed")
        self.version += 1
        self.objects[key] = (data, f"v{self.version}")
        return f"v{self.version}"

    async def delete(self, key: str, *, etag: str | None = None) -> None:
        if key not in self.objects:
            return
        if etag is not None and self.objects[key][1] != etag:
            raise Conflict("changed")
        del self.objects[key]

    async def get(self, key: str) -> tuple[bytes, ObjectInfo]:
        if key not in self.objects:
            raise NotFound(key)
        data, etag = self.objects[key]
        return data, ObjectInfo(key, len(data), datetime.now(timezone.utc), etag)


def _held(store: _Objects, owner: str = "me") -> Held:
    claim = Claim("source", "A", "B", owner, 0.0)
    store.objects["A/.s3contents-rename"] = (claim.encode(), "v0")
    return Held("A/.s3contents-rename", claim, "v0")


def test_stopping_waits_for_a_renewal_in_flight_and_release_deletes_the_claim() -> None:
    async def main() -> None:
        store = _Objects()
        held = _held(store)
        lease = Lease(store, [held], seconds=0.03)  # type: ignore[arg-type]
        store.gate = asyncio.Event()
        lease.start()
        await asyncio.wait_for(store.in_flight.wait(), 5)  # a renewal is writing now
        stopping = asyncio.create_task(lease.stop())
        await asyncio.sleep(0.02)
        assert not stopping.done()  # it waits for the write instead of cancelling it
        store.gate.set()
        await stopping
        assert held.etag == store.objects[held.key][1] != "v0"  # the version written last
        store.gate = None
        await lease.release()
        assert held.key not in store.objects

    asyncio.run(main())


def test_a_claim_rewritten_unseen_by_its_owner_is_still_deleted() -> None:
    async def main() -> None:
        store = _Objects()
        held = _held(store)
        # A renewal landed but its answer was lost: the store has a version unknown here.
        store.objects[held.key] = (held.claim.encode(), "v9")
        await delete_own(store, held)  # type: ignore[arg-type]
        assert held.key not in store.objects

    asyncio.run(main())


def test_another_owners_claim_is_not_deleted() -> None:
    async def main() -> None:
        store = _Objects()
        held = _held(store)
        theirs: Any = Claim("source", "A", "B", "them", 1e12)
        store.objects[held.key] = (theirs.encode(), "v7")
        await delete_own(store, held)  # type: ignore[arg-type]
        assert store.objects[held.key][1] == "v7"

    asyncio.run(main())
