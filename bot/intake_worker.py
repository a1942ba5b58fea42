"""The intake worker: stored messages are processed in arrival order, off the webhook's path.

A webhook returns as soon as its message is durable (``storage.group_commit``);
classifying and registering it (jieba, several writes) happens here, one
message at a time, so a sender's texts are handled in the order they came and
a follow-up finds the ticket its first text opened.

The resident's answer goes back the quickest way that cannot lose or double
it. A webhook that may wait (the queue is short) offers to carry the reply in
its HTTP response: if the worker takes the message while the webhook is still
waiting, the reply is *claimed* for the response and no outbox row is written;
if the webhook gave up first, the worker finds no taker and the reply goes by
the outbox. Claiming and giving up happen on the event loop without an
``await`` in between, so exactly one of the two carries the answer. Under a
flood the queue is long, webhooks do not wait, and every answer goes by the
outbox, paced to what the channel allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum

from handlers.context import Desk
from handlers.messages import IncomingMessage, IntakeResult

logger = logging.getLogger(__name__)

Process = Callable[[Desk, int, IncomingMessage], Awaitable[IntakeResult]]
# Waits (boundedly) until the webhooks' writes are done: processing yields to intake.
YieldToIntake = Callable[[], Awaitable[object]]
# Processes stored messages that were never answered (a failure, a lost hand-over).
Sweep = Callable[[], Awaitable[int]]


class _Offer(Enum):
    WAITING = "waiting"  # the webhook waits to carry the reply
    CLAIMED = "claimed"  # the worker will answer in the webhook's response
    WITHDRAWN = "withdrawn"  # the webhook gave up: the answer goes by the outbox


@dataclass(slots=True)
class _Item:
    inbound_id: int
    message: IncomingMessage
    offer: _Offer | None = None
    claimed: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Future[IntakeResult | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class IntakeWorker:
    """Processes stored inbound messages one by one; webhooks may wait for their reply."""

    def __init__(
        self,
        desk: Desk,
        process: Process,
        *,
        inline_backlog: int = 4,
        reply_wait_seconds: float = 5.0,
        yield_to_intake: YieldToIntake | None = None,
        sweep: Sweep | None = None,
        sweep_seconds: float = 60.0,
    ) -> None:
        self._desk = desk
        self._process = process
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._inline_backlog = inline_backlog
        self._reply_wait = reply_wait_seconds
        self._yield_to_intake = yield_to_intake
        if sweep_seconds <= 0:
            raise ValueError("sweep_seconds must be positive")
        self._sweep = sweep
        self._sweep_seconds = sweep_seconds
        self._task: asyncio.Task[None] | None = None
        self.processed = 0
        self.failed = 0

    @property
    def backlog(self) -> int:
        """Messages waiting for the worker."""
        return self._queue.qsize()

    def start(self) -> None:
        """Start processing (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="intake-worker")

    async def drained(self) -> None:
        """Return once every queued message has been processed."""
        await self._queue.join()

    async def stop(self) -> None:
        """Finish the queue, then stop. Anything left is processed at the next start."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def submit(self, inbound_id: int, message: IncomingMessage) -> None:
        """Queue a stored message; its answer goes by the outbox."""
        self._queue.put_nowait(_Item(inbound_id, message))

    async def submit_and_wait(self, inbound_id: int, message: IncomingMessage) -> str | None:
        """Queue a stored message and wait for the reply to carry in the HTTP response.

        None means "answer the webhook with no reply": the queue was too long
        to wait, the wait ran out before the worker took the message, or
        processing failed (the message is stored and will be processed again).
        """
        if self._queue.qsize() >= self._inline_backlog:
            self.submit(inbound_id, message)
            return None
        item = _Item(inbound_id, dataclasses.replace(message, reply_inline=True), _Offer.WAITING)
        self._queue.put_nowait(item)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(item.claimed.wait(), self._reply_wait)
        if item.offer is _Offer.WAITING:
            item.offer = _Offer.WITHDRAWN
            return None
        # Claimed: processing has started and this response carries the reply.
        result = await asyncio.shield(item.done)
        return result.reply if result is not None else None

    async def _run(self) -> None:
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), self._sweep_seconds)
            except TimeoutError:
                # Idle: a message whose processing failed is still stored and
                # unanswered; take it up again now rather than at the next start.
                await self._sweep_stranded()
                continue
            try:
                await self._handle(item)
            finally:
                self._queue.task_done()

    async def _sweep_stranded(self) -> None:
        if self._sweep is None:
            return
        try:
            await self._sweep()
        except Exception:
            logger.exception("sweeping unanswered inbound messages failed; trying again later")

    async def _handle(self, item: _Item) -> None:
        if item.offer is None and self._yield_to_intake is not None:
            # Nobody waits for this reply: let a burst of webhooks be stored
            # first (a ticket's transaction holds SQLite's one write slot for
            # many round trips), within a bound so processing never stops.
            await self._yield_to_intake()
        message = item.message
        if item.offer is _Offer.WAITING:
            item.offer = _Offer.CLAIMED
            item.claimed.set()
        elif message.reply_inline:
            # Nobody waits any more: the reply goes by the outbox.
            message = dataclasses.replace(message, reply_inline=False)
        try:
            result = await self._process(self._desk, item.inbound_id, message)
        except Exception:
            # Stored and unanswered: ``process_pending`` takes it up again.
            self.failed += 1
            logger.exception(
                "processing inbound %d (%s) failed; it stays stored for a retry",
                item.inbound_id,
                message.channel,
            )
            if not item.done.done():
                item.done.set_result(None)
            return
        self.processed += 1
        if not item.done.done():
            item.done.set_result(result)
