"""Labelled examples: the desk's own history, for retraining the classifier."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LabelledExample, utcnow


class ExampleRepository:
    """Adds and reads labelled examples."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def add(self, *, ticket_id: int | None, text: str, label: str, source: str) -> None:
        """Record one example (written with the transaction that confirmed it)."""
        self._session.add(
            LabelledExample(
                ticket_id=ticket_id, text=text, label=label, source=source, created_at=utcnow()
            )
        )

    async def latest_per_ticket(self) -> Sequence[LabelledExample]:
        """Every example, keeping only the newest label of each ticket."""
        result = await self._session.execute(select(LabelledExample).order_by(LabelledExample.id))
        newest: dict[object, LabelledExample] = {}
        for example in result.scalars():
            key = example.ticket_id if example.ticket_id is not None else ("row", example.id)
            newest[key] = example
        return list(newest.values())
