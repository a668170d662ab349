"""A handover reaches the next call of the same task, once, and nothing else."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from s3contents import handoff
from s3contents.storage.base import ObjectInfo

INFO = ObjectInfo("p/a.txt", 3, datetime(2026, 1, 2, tzinfo=timezone.utc), "e1")


def test_the_next_call_takes_it_once() -> None:
    async def main() -> None:
        with handoff.receiving():  # the first call: learns and hands over
            assert handoff.known("p/a.txt") == (False, None)
            handoff.hand_over("p/a.txt", INFO)
            handoff.hand_over("p/b.txt", None)
        with handoff.receiving():  # the next call takes both answers
            assert handoff.known("p/a.txt") == (True, INFO)
            assert handoff.known("p/b.txt") == (True, None)
            assert handoff.known("p/c.txt") == (False, None)
        with handoff.receiving():  # and the one after it, nothing
            assert handoff.known("p/a.txt") == (False, None)

    asyncio.run(main())


def test_a_nested_call_hands_over_to_its_callers_next_call() -> None:
    async def main() -> None:
        with handoff.receiving():  # update()
            with handoff.receiving():  # rename(), called by update
                handoff.hand_over("p/new.txt", INFO)
            with handoff.receiving():  # get(), called by update next
                assert handoff.known("p/new.txt") == (True, INFO)

    asyncio.run(main())


def test_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> None:
        with handoff.receiving():
            handoff.hand_over("p/a.txt", INFO)
        later = handoff._clock() + handoff.MAX_AGE + 0.1
        monkeypatch.setattr(handoff, "_clock", lambda: later)
        with handoff.receiving():
            assert handoff.known("p/a.txt") == (False, None)

    asyncio.run(main())


def test_another_task_sees_nothing() -> None:
    # Each connection's requests run in a task made when the connection opened, in a copy
    # of the context of that moment: a task made before the handover stands for another
    # client's request.
    async def main() -> None:
        concurrent = asyncio.get_running_loop().create_future()

        async def before() -> None:
            await concurrent
            with handoff.receiving():
                assert handoff.known("p/x.txt") == (False, None)

        task = asyncio.create_task(before())
        with handoff.receiving():
            handoff.hand_over("p/x.txt", INFO)
        concurrent.set_result(None)
        await task

    asyncio.run(main())
