"""The 台账 (ledger): tickets registered in a period, one keyset page at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Contact, Ticket


class LedgerRepository:
    """Pages of the ledger in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def page(
        self,
        since: datetime,
        until: datetime,
        *,
        after_id: int,
        limit: int,
        department_id: int | None = None,
    ) -> Sequence[tuple[Ticket, str, str]]:
        """(ticket, contact channel, contact address) created in ``[since, until)``.

        In id order, the ``limit`` tickets after ``after_id``: the caller passes
        the last id it got to read the next page, so no page is an OFFSET scan
        and no reader holds more than one page. ``department_id`` keeps the
        tickets that department leads (承办).
        """
        statement = (
            select(Ticket, Contact.channel, Contact.address)
            .join(Contact, Contact.id == Ticket.contact_id)
            .where(Ticket.created_at >= since, Ticket.created_at < until, Ticket.id > after_id)
            .order_by(Ticket.id)
            .limit(limit)
        )
        if department_id is not None:
            statement = statement.where(Ticket.department_id == department_id)
        result = await self._session.execute(statement)
        return [(ticket, channel, address) for ticket, channel, address in result.all()]
