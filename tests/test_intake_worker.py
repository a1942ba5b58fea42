"""The intake worker: arrival order, and exactly one of response or outbox carries each reply."""

from __future__ import annotations

import asyncio
from typing import cast

from bot.intake_worker import IntakeWorker
from handlers.context import Desk
from handlers.messages import IncomingMessage, IntakeResult


class FakeProcess:
    """Records what it was asked to process; holds a message until the test releases it."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []
        self.gates: dict[int, asyncio.Event] = {}
        self.fail: set[int] = set()
        self.started = asyncio.Event()

    def hold(self, inbound_id: int) -> asyncio.Event:
        self.gates[inbound_id] = asyncio.Event()
        return self.gates[inbound_id]

    async def __call__(self, desk: Desk, inbound_id: int, message: IncomingMessage) -> IntakeResult:
        self.calls.append((inbound_id, message.reply_inline))
        self.started.set()
        if inbound_id in self.gates:
            await self.gates[inbound_id].wait()
        if inbound_id in self.fail:
            raise ConnectionError("database went away")
        return IntakeResult(reply=f"reply {inbound_id}", ticket_number=None, duplicate=False)


def message(n: int) -> IncomingMessage:
    return IncomingMessage("sms", f"SM{n}", "+8613800000000", f"text {n}")


def worker(process: FakeProcess, **options: float) -> IntakeWorker:
    started = IntakeWorker(cast(Desk, None), process, **options)  # type: ignore[arg-type]
    started.start()
    return started


async def test_an_idle_worker_answers_in_the_response() -> None:
    process = FakeProcess()
    intake = worker(process)
    assert await intake.submit_and_wait(1, message(1)) == "reply 1"
    await intake.stop()
    assert process.calls == [(1, True)]


async def test_messages_are_processed_in_arrival_order() -> None:
    process = FakeProcess()
    intake = worker(process, inline_backlog=0)
    for n in range(1, 6):
        intake.submit(n, message(n))
    await intake.stop()
    assert [n for n, _ in process.calls] == [1, 2, 3, 4, 5]
    assert intake.processed == 5


async def test_a_long_queue_sends_the_answer_by_the_outbox() -> None:
    process = FakeProcess()
    intake = worker(process, inline_backlog=2)
    release = process.hold(1)
    intake.submit(1, message(1))
    intake.submit(2, message(2))
    intake.submit(3, message(3))
    # Two or more already waiting: no wait, no reply in the response.
    assert await intake.submit_and_wait(4, message(4)) is None
    release.set()
    await intake.stop()
    assert dict(process.calls)[4] is False


async def test_a_webhook_that_gave_up_leaves_the_answer_to_the_outbox() -> None:
    process = FakeProcess()
    intake = worker(process, reply_wait_seconds=0)
    release = process.hold(1)
    intake.submit(1, message(1))
    # The worker is busy with message 1; a zero wait runs out at once.
    assert await intake.submit_and_wait(2, message(2)) is None
    release.set()
    await intake.stop()
    assert process.calls == [(1, False), (2, False)]


async def test_a_claimed_reply_is_awaited_however_long_processing_takes() -> None:
    process = FakeProcess()
    intake = worker(process)
    release = process.hold(1)
    webhook = asyncio.create_task(intake.submit_and_wait(1, message(1)))
    await process.started.wait()  # the worker has taken it (claimed) and is processing
    assert not webhook.done()
    release.set()
    assert await webhook == "reply 1"
    await intake.stop()
    assert process.calls == [(1, True)]


async def test_a_failure_answers_nothing_and_the_worker_goes_on() -> None:
    process = FakeProcess()
    process.fail.add(1)
    intake = worker(process)
    assert await intake.submit_and_wait(1, message(1)) is None
    assert await intake.submit_and_wait(2, message(2)) == "reply 2"
    await intake.stop()
    assert (intake.processed, intake.failed) == (1, 1)


async def test_only_messages_nobody_waits_for_yield_to_intake() -> None:
    process = FakeProcess()
    yielded: list[int] = []

    async def yield_to_intake() -> None:
        yielded.append(len(process.calls))

    intake = IntakeWorker(
        cast(Desk, None),
        process,  # type: ignore[arg-type]
        yield_to_intake=yield_to_intake,
    )
    intake.start()
    assert await intake.submit_and_wait(1, message(1)) == "reply 1"
    intake.submit(2, message(2))
    await intake.stop()
    # The webhook waiting for message 1 was served at once; message 2 yielded first.
    assert yielded == [1]


async def test_an_idle_worker_sweeps_up_unanswered_messages() -> None:
    process = FakeProcess()
    swept = asyncio.Event()

    async def sweep() -> int:
        swept.set()
        return 0

    intake = IntakeWorker(
        cast(Desk, None),
        process,  # type: ignore[arg-type]
        sweep=sweep,
        sweep_seconds=0.01,
    )
    intake.start()
    await asyncio.wait_for(swept.wait(), 5)
    # A failing sweep does not end the worker.
    swept.clear()

    async def broken() -> int:
        swept.set()
        raise ConnectionError("database went away")

    intake._sweep = broken
    await asyncio.wait_for(swept.wait(), 5)
    assert await intake.submit_and_wait(1, message(1)) == "reply 1"
    await intake.stop()
