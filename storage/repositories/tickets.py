"""Tickets: insert with a database-issued number, fetch, lock and list."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from nlp.ticket_numbers import format_ticket_number
from storage.models import DESK_TZ, Ticket


class TicketRepository:
    """Reads and writes tickets inside one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, ticket: Ticket) -> Ticket:
        """Insert the ticket and give it its public number in the same transaction.

        The number comes from the database id, so it is unique across any number
        of workers without a counter in process memory.
        """
        self._session.add(ticket)
        await self._session.flush()
        # The year residents see is the desk's, not UTC's (1 January starts at 00:00 Beijing).
        local_year = ticket.created_at.astimezone(DESK_TZ).year
        ticket.number = format_ticket_number(ticket.id, local_year)
        await self._session.flush()
        return ticket

    async def get(self, ticket_id: int) -> Ticket | None:
        """The ticket with this database id."""
        return await self._session.get(Ticket, ticket_id)

    async def by_number(self, number: str, *, for_update: bool = False) -> Ticket | None:
        """The ticket with this public number; locked for the transaction if asked.

        On PostgreSQL the row lock serialises concurrent transitions of one
        ticket; SQLite's BEGIN IMMEDIATE already serialises all writers.
        """
        statement = select(Ticket).where(Ticket.number == number)
        if for_update:
            statement = statement.with_for_update()
        result = await self._session.execute(statement)
        return result.scalar_one_or_none()

    async def open_since(
        self, statuses: frozenset[str], since: datetime, limit: int
    ) -> Sequence[Ticket]:
        """Tickets in ``statuses`` created since ``since``, newest first."""
        result = await self._session.execute(
            select(Ticket)
            .where(Ticket.status.in_(statuses), Ticket.created_at >= since)
            .order_by(Ticket.id.desc())
            .limit(limit)
        )
        return result.scalars().all()

    async def of_contact_since(self, contact_id: int, since: datetime) -> Sequence[Ticket]:
        """Tickets this contact opened since ``since``, newest first."""
        return await self._of_contact(contact_id, Ticket.created_at >= since)

    async def of_contact_in(self, contact_id: int, statuses: Collection[str]) -> Sequence[Ticket]:
        """Tickets this contact opened that are in ``statuses``, newest first."""
        return await self._of_contact(contact_id, Ticket.status.in_(statuses))

    async def _of_contact(
        self, contact_id: int, condition: ColumnElement[bool]
    ) -> Sequence[Ticket]:
        result = await self._session.execute(
            select(Ticket)
            .where(Ticket.contact_id == contact_id, condition)
            .order_by(Ticket.id.desc())
        )
        return result.scalars().all()

    async def matching(
        self,
        *,
        numbers: Collection[str] = (),
        category: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        statuses: Collection[str] = (),
        limit: int,
    ) -> Sequence[Ticket]:
        """Tickets by number, category, registration time and status; the newest first."""
        query = select(Ticket).where(Ticket.number.is_not(None))
        if numbers:
            query = query.where(Ticket.number.in_(numbers))
        if category is not None:
            query = query.where(Ticket.category == category)
        if since is not None:
            query = query.where(Ticket.created_at >= since)
        if until is not None:
            query = query.where(Ticket.created_at <= until)
        if statuses:
            query = query.where(Ticket.status.in_(statuses))
        result = await self._session.execute(query.order_by(Ticket.id.desc()).limit(limit))
        return result.scalars().all()

    async def count_by_status(self) -> dict[str, int]:
        """How many tickets are in each status."""
        result = await self._session.execute(
            select(Ticket.status, func.count(Ticket.id)).group_by(Ticket.status)
        )
        return {status: int(count) for status, count in result.all()}

    async def count(self) -> int:
        """How many tickets exist."""
        result = await self._session.execute(select(func.count(Ticket.id)))
        return int(result.scalar_one())
