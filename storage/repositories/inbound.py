"""Inbound messages: the dedupe key and the reply remembered for retries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboundMessage, utcnow
from storage.repositories.upsert import insert_if_absent


class InboundRepository:
    """Stores every accepted inbound message exactly once per (channel, external id)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(
        self,
        *,
        channel: str,
        external_id: str,
        sender: str,
        text: str,
        raw_payload: dict[str, Any],
    ) -> InboundMessage | None:
        """Insert the message; None when this (channel, external id) was already stored."""
        new_id = await insert_if_absent(
            self._session,
            InboundMessage,
            {
                "channel": channel,
                "external_id": external_id,
                "sender": sender,
                "text": text,
                "raw_payload": raw_payload,
                "received_at": utcnow(),
            },
            ["channel", "external_id"],
        )
        if new_id is None:
            return None
        return await self._session.get_one(InboundMessage, new_id)

    async def find(self, channel: str, external_id: str) -> InboundMessage | None:
        """The stored message with this dedupe key, if any."""
        result = await self._session.execute(
            select(InboundMessage).where(
                InboundMessage.channel == channel, InboundMessage.external_id == external_id
            )
        )
        return result.scalar_one_or_none()

    async def get(self, inbound_id: int) -> InboundMessage | None:
        """One stored message by id."""
        return await self._session.get(InboundMessage, inbound_id)

    async def get_for_update(self, inbound_id: int) -> InboundMessage:
        """The row, locked until the transaction ends (PostgreSQL; SQLite's writers are serial)."""
        result = await self._session.execute(
            select(InboundMessage)
            .where(InboundMessage.id == inbound_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return result.scalar_one()

    async def unprocessed(
        self, limit: int = 1000, received_before: datetime | None = None
    ) -> Sequence[InboundMessage]:
        """Stored messages that were never answered (processing was interrupted)."""
        statement = select(InboundMessage).where(InboundMessage.reply_text.is_(None))
        if received_before is not None:
            statement = statement.where(InboundMessage.received_at < received_before)
        result = await self._session.execute(statement.order_by(InboundMessage.id).limit(limit))
        return result.scalars().all()

    async def count(self) -> int:
        """How many inbound messages are stored (for figures and tests)."""
        result = await self._session.execute(select(func.count(InboundMessage.id)))
        return int(result.scalar_one())
