"""The write gate: one writer at a time, urgent ones first, cancellation never leaks the gate."""

from __future__ import annotations

import asyncio

import pytest

from storage.write_gate import WriteGate


async def test_waiters_are_let_in_urgent_first_then_in_arrival_order() -> None:
    gate = WriteGate()
    await gate.acquire()
    order: list[str] = []

    async def writer(name: str, urgent: bool) -> None:
        await gate.acquire(urgent=urgent)
        order.append(name)
        gate.release()

    tasks = [
        asyncio.create_task(writer(name, urgent))
        for name, urgent in [("a", False), ("b", True), ("c", False), ("d", True)]
    ]
    await asyncio.sleep(0)  # one turn of the loop: every writer runs up to its wait
    assert gate.waiting == 4
    gate.release()
    await asyncio.gather(*tasks)
    assert order == ["b", "d", "a", "c"]
    # Open again: the next writer gets in at once.
    await asyncio.wait_for(gate.acquire(), 1)


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    gate = WriteGate()
    await gate.acquire()
    waiting = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    assert gate.waiting == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert gate.waiting == 0
    gate.release()
    await asyncio.wait_for(gate.acquire(), 1)


async def test_a_waiter_cancelled_as_it_is_handed_the_gate_passes_it_on() -> None:
    gate = WriteGate()
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    second = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0)
    gate.release()  # hands the gate to ``first`` ...
    first.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 1)  # ``second`` got it instead
    assert gate.waiting == 0
