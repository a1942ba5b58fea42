"""The append-only audit trail: rows are inserted and read, never updated."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import TicketEvent, utcnow


class EventRepository:
    """Writes and reads audit events."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(
        self,
        *,
        ticket_id: int | None,
        actor: str,
        action: str,
        from_status: str | None = None,
        to_status: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> TicketEvent:
        """Record one event."""
        event = TicketEvent(
            ticket_id=ticket_id,
            actor=actor,
            action=action,
            from_status=from_status,
            to_status=to_status,
            detail=detail or {},
            created_at=utcnow(),
        )
        self._session.add(event)
        await self._session.flush()
        return event

    async def for_ticket(self, ticket_id: int) -> Sequence[TicketEvent]:
        """A ticket's events in the order they happened."""
        result = await self._session.execute(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        )
        return result.scalars().all()
