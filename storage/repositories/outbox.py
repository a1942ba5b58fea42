"""The outbox: rows written with the change that caused them, claimed by dispatchers.

Claiming is one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
RETURNING`` statement. On PostgreSQL the row locks let several workers claim
disjoint batches; on SQLite the FOR UPDATE is dropped and the statement runs
inside the unit of work's ``BEGIN IMMEDIATE``, so one claimer at a time.

A claim is a lease: a worker that dies mid-send leaves the row ``sending`` with
an expired ``lease_until`` and the next claim takes it back.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import OutboxMessage, utcnow

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
DEAD = "dead"

# Provider delivery statuses in the order they can happen (Twilio's message
# status values). A callback may only move a row to a higher rank: repeated
# or late callbacks change nothing, and the final ones (rank 4) stay.
DELIVERY_RANK = {
    "accepted": 0,
    "scheduled": 0,
    "queued": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "canceled": 4,
    "read": 5,
}


class OutboxRepository:
    """Enqueue, claim and settle outbound messages."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def enqueue(
        self,
        *,
        channel: str,
        recipient: str,
        body: str,
        ticket_id: int | None = None,
        purpose: str = "update",
        buttons: list[list[dict[str, str]]] | None = None,
        thread_id: int | None = None,
        kind: str = "text",
        payload: dict[str, Any] | None = None,
        edit_of_id: int | None = None,
    ) -> OutboxMessage:
        """Add a message to send once the surrounding transaction commits.

        ``kind`` "edit" changes the message row ``edit_of_id`` sent (its body
        and buttons); the per-recipient order below makes it wait for that row.
        """
        now = utcnow()
        message = OutboxMessage(
            channel=channel,
            recipient=recipient,
            body=body,
            ticket_id=ticket_id,
            purpose=purpose,
            buttons=buttons,
            thread_id=thread_id,
            kind=kind,
            payload=payload,
            edit_of_id=edit_of_id,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        self._session.add(message)
        await self._session.flush()
        return message

    async def enqueue_edit(
        self,
        original: OutboxMessage,
        *,
        body: str,
        buttons: list[list[dict[str, str]]] | None,
        purpose: str,
    ) -> OutboxMessage:
        """Queue an edit of the message ``original`` sent: same chat, new body and buttons."""
        return await self.enqueue(
            channel=original.channel,
            recipient=original.recipient,
            thread_id=original.thread_id,
            body=body,
            buttons=buttons,
            ticket_id=original.ticket_id,
            purpose=purpose,
            kind="edit",
            edit_of_id=original.id,
        )

    async def claim_due(
        self, *, now: datetime, lease: timedelta, limit: int
    ) -> Sequence[OutboxMessage]:
        """Lease up to ``limit`` due rows: pending ones and ones whose lease expired.

        A row is only due when no earlier unfinished row waits for the same
        recipient, so each resident reads their messages in the order written.
        """
        earlier = aliased(OutboxMessage)
        blocked_by_earlier = exists().where(
            earlier.channel == OutboxMessage.channel,
            earlier.recipient == OutboxMessage.recipient,
            earlier.id < OutboxMessage.id,
            earlier.status.in_((PENDING, SENDING)),
        )
        due = (
            select(OutboxMessage.id)
            .where(
                or_(
                    and_(OutboxMessage.status == PENDING, OutboxMessage.next_attempt_at <= now),
                    and_(OutboxMessage.status == SENDING, OutboxMessage.lease_until < now),
                ),
                ~blocked_by_earlier,
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due.scalar_subquery()))
            .values(
                status=SENDING,
                lease_until=now + lease,
                attempts=OutboxMessage.attempts + 1,
            )
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False)
        )
        result = await self._session.execute(statement)
        return sorted(result.scalars().all(), key=lambda m: m.id)

    # Settling is fenced by the claim: only a row still ``sending`` with the
    # attempt count this worker claimed it at is changed. A worker whose lease
    # expired and whose row another worker reclaimed cannot overwrite the
    # newer outcome. Each returns False when the claim was lost.

    async def mark_sent(
        self, message_id: int, attempt: int, provider_message_id: str | None
    ) -> bool:
        """Record a successful send."""
        return await self._settle(
            message_id,
            attempt,
            status=SENT,
            provider_message_id=provider_message_id,
            sent_at=utcnow(),
            last_error=None,
        )

    async def mark_retry(
        self, message_id: int, attempt: int, error: str, next_attempt_at: datetime
    ) -> bool:
        """Put the row back to be tried again at ``next_attempt_at``."""
        return await self._settle(
            message_id, attempt, status=PENDING, last_error=error, next_attempt_at=next_attempt_at
        )

    async def mark_dead(self, message_id: int, attempt: int, error: str) -> bool:
        """Give up on the row; it stays visible as a dead letter."""
        return await self._settle(message_id, attempt, status=DEAD, last_error=error)

    async def _settle(self, message_id: int, attempt: int, **values: object) -> bool:
        result = await self._session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.status == SENDING,
                OutboxMessage.attempts == attempt,
            )
            .values(lease_until=None, **values)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        return result.scalar_one_or_none() is not None

    async def sent_message_ids(self, row_ids: Collection[int]) -> dict[int, str]:
        """The provider message ids of those rows that were sent (edits need them)."""
        if not row_ids:
            return {}
        result = await self._session.execute(
            select(OutboxMessage.id, OutboxMessage.provider_message_id).where(
                OutboxMessage.id.in_(row_ids),
                OutboxMessage.status == SENT,
                OutboxMessage.provider_message_id.is_not(None),
            )
        )
        return {row_id: str(provider_id) for row_id, provider_id in result.all()}

    async def count_by_status(self) -> dict[str, int]:
        """How many rows are in each status."""
        result = await self._session.execute(
            select(OutboxMessage.status, func.count(OutboxMessage.id)).group_by(
                OutboxMessage.status
            )
        )
        return {status: int(count) for status, count in result.all()}

    async def get(self, message_id: int) -> OutboxMessage | None:
        """One row by id."""
        return await self._session.get(OutboxMessage, message_id)

    async def with_status(self, status: str, limit: int = 100) -> Sequence[OutboxMessage]:
        """Rows in one status, oldest first."""
        result = await self._session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.status == status)
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        return result.scalars().all()

    async def for_ticket(self, ticket_id: int) -> Sequence[OutboxMessage]:
        """Everything written to send about one ticket."""
        result = await self._session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.ticket_id == ticket_id)
            .order_by(OutboxMessage.id)
        )
        return result.scalars().all()

    async def revive_all(self) -> int:
        """Send every dead letter again from scratch; how many."""
        result = await self._session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == DEAD)
            .values(status=PENDING, attempts=0, next_attempt_at=utcnow(), lease_until=None)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        return len(result.all())

    async def revive(self, message_id: int) -> bool:
        """Send a dead letter again from scratch; False if it is not dead."""
        result = await self._session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == message_id, OutboxMessage.status == DEAD)
            .values(status=PENDING, attempts=0, next_attempt_at=utcnow(), lease_until=None)
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        return result.scalar_one_or_none() is not None

    async def record_delivery(
        self, provider_message_id: str, status: str, error_code: str | None
    ) -> bool:
        """Move the row's delivery status forward; False if the callback changes nothing.

        One conditional UPDATE, so two callbacks racing cannot move it backwards.
        """
        rank = DELIVERY_RANK.get(status)
        if rank is None:
            return False
        current = case(DELIVERY_RANK, value=OutboxMessage.delivery_status, else_=-1)
        result = await self._session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.provider_message_id == provider_message_id,
                or_(OutboxMessage.delivery_status.is_(None), current < rank),
            )
            .values(
                delivery_status=status,
                delivery_error_code=error_code,
                delivery_updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))
