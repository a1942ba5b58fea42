"""Group commit for inbound messages: many webhooks, one durable transaction.

A provider's webhook may be acknowledged only once its message is on disk.
One transaction per webhook caps the desk at what the database commits per
second (about 230 ORM transactions/s on aiosqlite, each an fsync); a flood of
texts after a burst water main or a storm needs several times that. So webhooks hand
their message to ``InboundBatchWriter.record`` and wait; a single writer task
takes everything that queued up while the previous commit was in flight and
writes it with one multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING``
in one transaction. Every waiter learns its row id after that commit, and
whether its message was new or a provider's retry of one already stored.

Batches form by themselves: under light load each holds one message and
costs what a plain transaction would; under load they grow, and the fsync is
shared. Nothing is acknowledged before its commit, so a crash loses only
messages whose webhooks had not been answered (the provider sends those again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite

from storage.models import InboundMessage, utcnow
from storage.unit_of_work import Database

logger = logging.getLogger(__name__)

# Rows per INSERT: far below SQLite's 32,766 bound parameters at 6 columns,
# and a batch this size commits in a few milliseconds.
DEFAULT_MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One accepted message, as it is stored."""

    channel: str
    external_id: str
    sender: str
    text: str
    raw_payload: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """The dedupe key: the provider's id within its channel."""
        return self.channel, self.external_id


@dataclass(frozen=True, slots=True)
class Recorded:
    """Where a message is stored, and whether this call stored it."""

    inbound_id: int
    new: bool


class WriterClosedError(RuntimeError):
    """The writer is shut down; the caller must not acknowledge the message."""


class InboundBatchWriter:
    """Stores inbound messages in shared transactions; ``record`` returns after the commit."""

    def __init__(self, database: Database, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._database = database
        self._max_batch = max_batch
        self._queue: asyncio.Queue[tuple[InboundRecord, asyncio.Future[Recorded]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # Set while nothing is queued or being written (see ``wait_idle``).
        self._idle = asyncio.Event()
        self._idle.set()
        self.batches = 0  # commits made, for figures and tests

    async def record(self, message: InboundRecord) -> Recorded:
        """Store ``message`` (or find it stored); returns once it is durable.

        Raises whatever the database raised for the batch: the message is then
        not stored, and the webhook must fail so that the provider retries.
        """
        if self._closed:
            raise WriterClosedError("the inbound writer is shut down")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="inbound-batch-writer")
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._idle.clear()
        self._queue.put_nowait((message, future))
        return await future

    async def wait_idle(self, at_most_seconds: float) -> bool:
        """Wait until nothing is queued or being written (bounded); True if idle.

        Lower-priority writers call this first, so that a burst of webhooks
        is stored (and answered) before other work takes the database.
        """
        if self._idle.is_set():
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), at_most_seconds)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Write what is queued, then stop; later ``record`` calls are refused."""
        self._closed = True
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await self._write([message for message, _ in batch])
            except Exception as exc:  # every waiter hears it; the writer lives on
                logger.exception("inbound batch of %d not stored", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                self.batches += 1
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # the webhook may have been cancelled
                        future.set_result(result)
            finally:
                for _ in batch:
                    self._queue.task_done()
                if self._queue.empty():
                    self._idle.set()

    async def _write(self, batch: Sequence[InboundRecord]) -> list[Recorded]:
        """One transaction for the batch; a result per message, in order."""
        # The first copy of a key in the batch is the one that may be new.
        first: dict[tuple[str, str], InboundRecord] = {}
        for message in batch:
            first.setdefault(message.key, message)
        table = InboundMessage.__table__
        assert isinstance(table, Table)
        now = utcnow()
        async with self._database.transaction(urgent=True) as uow:
            dialect = uow.session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            statement = (
                insert(table)
                .values(
                    [
                        {
                            "channel": m.channel,
                            "external_id": m.external_id,
                            "sender": m.sender,
                            # PostgreSQL text refuses NUL; the raw payload keeps the original.
                            "text": m.text.replace("\x00", ""),
                            "raw_payload": m.raw_payload,
                            "received_at": now,
                            "reply_inline": False,
                        }
                        for m in first.values()
                    ]
                )
                .on_conflict_do_nothing(index_elements=["channel", "external_id"])
                .returning(table.c.id, table.c.channel, table.c.external_id)
            )
            inserted = {(c, e): int(i) for i, c, e in (await uow.session.execute(statement))}
            stored = dict(inserted)
            missing = [key for key in first if key not in inserted]
            for channel in {c for c, _ in missing}:
                ids = [e for c, e in missing if c == channel]
                rows = await uow.session.execute(
                    select(table.c.id, table.c.external_id).where(
                        table.c.channel == channel, table.c.external_id.in_(ids)
                    )
                )
                stored.update({(channel, e): int(i) for i, e in rows})
        results: list[Recorded] = []
        claimed: set[tuple[str, str]] = set()
        for message in batch:
            new = message.key in inserted and message.key not in claimed
            claimed.add(message.key)
            results.append(Recorded(stored[message.key], new))
        return results
