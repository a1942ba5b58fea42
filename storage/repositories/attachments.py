"""Residents' attachments: photos, documents and locations kept with their ticket."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import TicketAttachment, utcnow


class AttachmentRepository:
    """Add and list a ticket's attachments."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        *,
        ticket_id: int,
        channel: str,
        kind: str,
        file_ref: str | None = None,
        file_name: str | None = None,
        latitude: float | None = None,
        longitude: float | None = None,
    ) -> TicketAttachment:
        """Keep one attachment with its ticket."""
        attachment = TicketAttachment(
            ticket_id=ticket_id,
            channel=channel,
            kind=kind,
            file_ref=file_ref,
            file_name=file_name,
            latitude=latitude,
            longitude=longitude,
            created_at=utcnow(),
        )
        self._session.add(attachment)
        await self._session.flush()
        return attachment

    async def of_tickets(self, ticket_ids: Collection[int]) -> dict[int, list[TicketAttachment]]:
        """Several tickets' attachments in one query, each ticket's in the order they came."""
        found: dict[int, list[TicketAttachment]] = {ticket_id: [] for ticket_id in ticket_ids}
        if not found:
            return found
        result = await self._session.execute(
            select(TicketAttachment)
            .where(TicketAttachment.ticket_id.in_(found))
            .order_by(TicketAttachment.id)
        )
        for attachment in result.scalars():
            found[attachment.ticket_id].append(attachment)
        return found

    async def of_ticket(self, ticket_id: int) -> Sequence[TicketAttachment]:
        """A ticket's attachments, in the order they came."""
        result = await self._session.execute(
            select(TicketAttachment)
            .where(TicketAttachment.ticket_id == ticket_id)
            .order_by(TicketAttachment.id)
        )
        return result.scalars().all()
