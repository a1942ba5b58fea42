"""Figures for the centre: counts per department, overdue tickets, text search."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Department, Ticket


class FigureRepository:
    """Aggregate queries over tickets for the centre's figures, in the caller's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def counts(
        self,
        since: datetime,
        now: datetime,
        *,
        open_statuses: Collection[str],
        running: Collection[str],
    ) -> dict[int | None, tuple[int, int, int, int]]:
        """department id -> (received, closed, open, overdue), in one grouped query.

        ``COUNT(CASE WHEN ... THEN 1 END)`` counts the rows meeting each
        condition; the WHERE keeps the scan to tickets that count for one.
        """
        received = Ticket.created_at >= since
        closed = Ticket.resolved_at >= since
        is_open = Ticket.status.in_(open_statuses)
        overdue = Ticket.status.in_(running) & (Ticket.deadline_at < now)
        result = await self._session.execute(
            select(
                Ticket.department_id,
                func.count(case((received, 1))),
                func.count(case((closed, 1))),
                func.count(case((is_open, 1))),
                func.count(case((overdue, 1))),
            )
            .where(received | closed | is_open)
            .group_by(Ticket.department_id)
        )
        return {
            row[0]: (int(row[1]), int(row[2]), int(row[3]), int(row[4])) for row in result.all()
        }

    async def overdue(
        self, now: datetime, limit: int, *, running: Collection[str]
    ) -> Sequence[tuple[str, str | None, datetime, str]]:
        """(number, department short name, deadline, status), earliest deadline first."""
        result = await self._session.execute(
            select(Ticket.number, Department.short_name, Ticket.deadline_at, Ticket.status)
            .outerjoin(Department, Department.id == Ticket.department_id)
            .where(Ticket.status.in_(running), Ticket.deadline_at < now)
            .order_by(Ticket.deadline_at, Ticket.id)
            .limit(limit)
        )
        # The WHERE already excludes a missing deadline; the check is for the type.
        return [
            (number or "", name, deadline, status)
            for number, name, deadline, status in result.all()
            if deadline is not None
        ]

    async def containing(self, text: str, limit: int) -> Sequence[Ticket]:
        """Tickets whose text contains ``text`` (``%`` and ``_`` literal), newest first."""
        result = await self._session.execute(
            select(Ticket)
            .where(Ticket.text.contains(text, autoescape=True))
            .order_by(Ticket.id.desc())
            .limit(limit)
        )
        return result.scalars().all()
