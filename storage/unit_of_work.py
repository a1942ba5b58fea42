"""The unit of work: one session, one transaction, every repository over it.

Handlers open ``async with database.transaction() as uow:`` and everything they
write (state change, audit event, outbox rows) commits or rolls back together.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage.db import SQLITE_BEGIN_OPTION
from storage.repositories.api_keys import ApiKeyRepository
from storage.repositories.attachments import AttachmentRepository
from storage.repositories.directory import DirectoryRepository
from storage.repositories.events import EventRepository
from storage.repositories.examples import ExampleRepository
from storage.repositories.figures import FigureRepository
from storage.repositories.inbound import InboundRepository
from storage.repositories.ledger import LedgerRepository
from storage.repositories.outbox import OutboxRepository
from storage.repositories.tickets import TicketRepository
from storage.write_gate import WriteGate


class UnitOfWork:
    """The repositories of one transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.tickets = TicketRepository(session)
        self.inbound = InboundRepository(session)
        self.events = EventRepository(session)
        self.outbox = OutboxRepository(session)
        self.directory = DirectoryRepository(session)
        self.examples = ExampleRepository(session)
        self.figures = FigureRepository(session)
        self.attachments = AttachmentRepository(session)
        self.ledger = LedgerRepository(session)
        self.api_keys = ApiKeyRepository(session)


class Database:
    """Owns the engine and hands out units of work."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # SQLite has one writer at a time: the process's writers take turns
        # here instead of in SQLite's busy handler (see storage.write_gate).
        self._gate = WriteGate() if engine.dialect.name == "sqlite" else None
        self._writer = async_sessionmaker(engine, expire_on_commit=False)
        self._reader = async_sessionmaker(
            engine.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"}),
            expire_on_commit=False,
        )

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[UnitOfWork]:
        """A write transaction: committed when the block ends, rolled back on error.

        ``urgent`` writers (storing what a provider waits to hear is stored)
        go ahead of the others when the database takes one writer at a time.
        """
        if self._gate is None:
            async with self._writer() as session, session.begin():
                yield UnitOfWork(session)
            return
        await self._gate.acquire(urgent=urgent)
        try:
            async with self._writer() as session, session.begin():
                yield UnitOfWork(session)
        finally:
            self._gate.release()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[UnitOfWork]:
        """A read-only transaction that does not take SQLite's write lock."""
        async with self._reader() as session, session.begin():
            yield UnitOfWork(session)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
