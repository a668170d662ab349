"""LoopSlices: requests are sent in slices of the event loop's turns, none is lost."""

from __future__ import annotations

import asyncio
import time

from s3contents.storage.base import LoopSlices


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def _run(slices: LoopSlices, tasks: int, work: float) -> tuple[list[int], list[int]]:
    """``tasks`` tasks each take a turn, then hold the loop ``work`` seconds. Returns the
    turn of the loop each one ran in, and the order they ran in."""
    tick = [0]
    stop = False

    def count() -> None:
        tick[0] += 1
        if not stop:
            asyncio.get_running_loop().call_soon(count)

    asyncio.get_running_loop().call_soon(count)
    ticks: list[int] = []
    order: list[int] = []

    async def one(i: int) -> None:
        await slices.turn()
        ticks.append(tick[0])
        order.append(i)
        _spin(work)

    await asyncio.gather(*(one(i) for i in range(tasks)))
    stop = True
    return ticks, order


def test_a_turn_of_the_loop_holds_one_slice_of_requests() -> None:
    slices = LoopSlices(budget=0.010)
    ticks, order = asyncio.run(_run(slices, 20, 0.004))
    assert len(ticks) == 20  # every request went
    per_turn = {t: ticks.count(t) for t in ticks}
    # 10 ms slices of 4 ms requests: 3 fit (the third starts before 10 ms), never all 20.
    assert max(per_turn.values()) <= 4, per_turn
    assert len(per_turn) >= 5, per_turn
    assert order == sorted(order)  # first come, first served


def test_requests_under_the_budget_go_at_once() -> None:
    slices = LoopSlices(budget=10.0)
    ticks, _ = asyncio.run(_run(slices, 20, 0.0))
    assert len(set(ticks)) == 1


def test_a_cancelled_waiter_does_not_hold_up_the_others() -> None:
    async def main() -> int:
        slices = LoopSlices(budget=0.001)
        done: list[int] = []

        async def one(i: int) -> None:
            await slices.turn()
            done.append(i)
            _spin(0.002)

        tasks = [asyncio.ensure_future(one(i)) for i in range(6)]
        await asyncio.sleep(0)  # all started: the first went, the others wait
        tasks[2].cancel()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=5)
        assert isinstance(results[2], asyncio.CancelledError)
        return len(done)

    assert asyncio.run(main()) == 5


def test_slices_of_two_loops_are_apart() -> None:
    slices = LoopSlices(budget=0.005)
    for _ in range(2):  # a second loop after the first one closed
        ticks, _ = asyncio.run(_run(slices, 6, 0.003))
        assert len(ticks) == 6


def test_a_finished_loop_is_not_kept() -> None:
    import gc

    slices = LoopSlices(budget=0.005)
    asyncio.run(_run(slices, 3, 0.0))
    gc.collect()
    assert len(slices._slices) == 0
