"""The append-only audit trail: rows are inserted and read, never updated."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import TicketEvent, utcnow


class EventRepository:
    """Writes and reads audit events."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def append(
        self,
        *,
        ticket_id: int | None,
        actor: str,
        action: str,
        from_status: str | None = None,
        to_status: str | None = None,
        detail: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> TicketEvent:
        """Record one event (``at``: the desk's clock, where the time decides something)."""
        event = TicketEvent(
            ticket_id=ticket_id,
            actor=actor,
            action=action,
            from_status=from_status,
            to_status=to_status,
            detail=detail or {},
            created_at=at or utcnow(),
        )
        # No flush: events need no id inside the transaction, and the commit's
        # flush writes them all in one batched INSERT, in the order appended.
        self._session.add(event)
        return event

    async def latest(
        self, *, ticket_ids: Collection[int], action: str, since: datetime
    ) -> TicketEvent | None:
        """The newest event of this action on any of these tickets at or after ``since``."""
        if not ticket_ids:
            return None
        result = await self._session.execute(
            select(TicketEvent)
            .where(
                TicketEvent.ticket_id.in_(ticket_ids),
                TicketEvent.action == action,
                TicketEvent.created_at >= since,
            )
            .order_by(TicketEvent.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def without_ticket(self) -> Sequence[TicketEvent]:
        """Events about no ticket (config, staff, broadcasts), in order."""
        result = await self._session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id.is_(None)).order_by(TicketEvent.id)
        )
        return result.scalars().all()

    async def for_tickets(self, ticket_ids: Collection[int]) -> dict[int, list[TicketEvent]]:
        """Several tickets' events in one query, each ticket's in the order they happened."""
        found: dict[int, list[TicketEvent]] = {ticket_id: [] for ticket_id in ticket_ids}
        if not found:
            return found
        result = await self._session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id.in_(found)).order_by(TicketEvent.id)
        )
        for event in result.scalars():
            if event.ticket_id is not None:
                found[event.ticket_id].append(event)
        return found

    async def for_ticket(self, ticket_id: int) -> Sequence[TicketEvent]:
        """A ticket's events in the order they happened."""
        result = await self._session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
        return result.scalars().all()
