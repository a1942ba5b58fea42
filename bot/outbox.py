"""The outbox dispatcher: the one path every outbound message takes to a provider.

Handlers only write outbox rows (in the transaction that caused them); this
module sends them. One round (``run_once``) is three steps, none of which holds
a transaction across network I/O:

1. claim a batch of due rows in one short transaction (a lease, so a worker
   that dies mid-send only delays its rows until the lease expires);
2. send each claimed row through the sender registered for its channel,
   concurrently across recipients (a batch holds at most one row per
   recipient, so per-recipient order is kept by the claim itself);
3. record each outcome in its own short transaction: sent, retried later with
   exponential backoff and full jitter (never sooner than the provider's
   ``retry_after``), or dead-lettered where an operator can see and revive it.

Delivery is at least once: a send that succeeded but whose outcome could not
be recorded is sent again after the lease expires.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, TypeAlias

from bot.channels.base import OutgoingMessage, PermanentSendError, Sender, TransientSendError
from bot.metrics import DeskMetrics
from bot.settings import Settings
from storage.models import OutboxMessage, utcnow
from storage.unit_of_work import Database

logger = logging.getLogger(__name__)

# A provider's retry_after is honoured up to this; a garbled header must not
# park a message for years (or overflow timedelta).
MAX_RETRY_AFTER_SECONDS: Final = 7 * 24 * 3600.0

# 2**62 seconds is far past any cap; clamping the exponent keeps the float finite.
_MAX_BACKOFF_EXPONENT: Final = 62


@dataclass(frozen=True, slots=True)
class DispatcherPolicy:
    """How the dispatcher batches, leases, retries and polls."""

    batch_size: int
    max_attempts: int
    lease: timedelta
    base_backoff_seconds: float
    max_backoff_seconds: float
    poll_seconds: float

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.lease <= timedelta(0):
            raise ValueError("lease must be positive")
        if not 0 < self.base_backoff_seconds <= self.max_backoff_seconds:
            raise ValueError("need 0 < base_backoff_seconds <= max_backoff_seconds")
        if self.poll_seconds <= 0:
            raise ValueError("poll_seconds must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatcherPolicy:
        """The policy the process settings describe."""
        return cls(
            batch_size=settings.outbox_batch_size,
            max_attempts=settings.outbox_max_attempts,
            lease=timedelta(seconds=settings.outbox_lease_seconds),
            base_backoff_seconds=settings.outbox_base_backoff_seconds,
            max_backoff_seconds=settings.outbox_max_backoff_seconds,
            poll_seconds=settings.outbox_poll_seconds,
        )

    def backoff_ceiling(self, attempts: int) -> float:
        """The longest delay after ``attempts`` failures: base * 2**(attempts-1) s, capped."""
        exponent = min(max(attempts - 1, 0), _MAX_BACKOFF_EXPONENT)
        return min(self.max_backoff_seconds, self.base_backoff_seconds * 2.0**exponent)

    @property
    def send_timeout_seconds(self) -> float:
        """How long one provider call may take.

        Half the lease: a hung call must end, and its outcome be recorded, well
        before the lease runs out and another worker sends the row again.
        """
        return self.lease.total_seconds() / 2


@dataclass(frozen=True, slots=True)
class _Claim:
    """What the dispatcher keeps of a claimed row once its transaction has ended."""

    message: OutgoingMessage
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class _Sent:
    """The provider accepted the message."""

    provider_message_id: str | None


@dataclass(frozen=True, slots=True)
class _Retry:
    """Failed for now; try again at ``next_attempt_at``."""

    error: str
    next_attempt_at: datetime


@dataclass(frozen=True, slots=True)
class _Dead:
    """Give up; keep the row as a dead letter, and maybe flag the recipient."""

    error: str
    unreachable: bool = False
    opted_out: bool = False


_Outcome: TypeAlias = _Sent | _Retry | _Dead


class OutboxDispatcher:
    """Claims due outbox rows, sends them through their channel's sender, records the outcome."""

    def __init__(
        self,
        database: Database,
        senders: Mapping[str, Sender],
        policy: DispatcherPolicy,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        metrics: DeskMetrics | None = None,
    ) -> None:
        for name, sender in senders.items():
            # Rows name their channel; a sender filed under another name would
            # deliver one channel's messages through another's provider.
            if sender.channel != name:
                raise ValueError(f"sender for channel {sender.channel!r} registered under {name!r}")
        self._database = database
        self._senders = dict(senders)
        self._policy = policy
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._metrics = metrics
        self._wake = asyncio.Event()

    @property
    def policy(self) -> DispatcherPolicy:
        """The policy this dispatcher runs with."""
        return self._policy

    def wake(self) -> None:
        """Nudge an idle ``run`` loop to claim now; call after committing new rows."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set; the batch in flight is finished first."""
        logger.info(
            "outbox dispatcher started (channels: %s)", ", ".join(sorted(self._senders)) or "none"
        )
        while not stop.is_set():
            # Cleared before the round, so a wake() during it is not lost.
            self._wake.clear()
            try:
                handled = await self.run_once()
            except Exception:
                # A database outage must not end the loop; poll again later.
                logger.exception("outbox round failed; trying again after the poll interval")
                handled = 0
            if handled == 0:
                await self._idle(stop)
        logger.info("outbox dispatcher stopped")

    async def run_once(self) -> int:
        """Claim, send and settle one batch of due rows; return how many were handled."""
        async with self._database.transaction() as uow:
            rows = await uow.outbox.claim_due(
                now=self._clock(), lease=self._policy.lease, limit=self._policy.batch_size
            )
            # An edit's target was sent before it (the claim keeps a chat's order).
            targets = await uow.outbox.sent_message_ids(
                [row.edit_of_id for row in rows if row.edit_of_id is not None]
            )
            claims = [_claim_of(row, targets) for row in rows]
        if not claims:
            return 0
        logger.debug(
            "claimed %d outbox row(s): %s", len(claims), [c.message.outbox_id for c in claims]
        )
        # Bounded by batch_size; rows of one batch go to different recipients.
        await asyncio.gather(*(self._deliver(claim) for claim in claims))
        return len(claims)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait for the poll interval, a wake-up or stop, whichever comes first."""
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(
                waiters, timeout=self._policy.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _deliver(self, claim: _Claim) -> None:
        """Send one claimed row and record what happened; never raises."""
        try:
            outcome = await self._attempt(claim)
        except Exception:  # pragma: no cover - _attempt handles sender errors itself
            logger.exception(
                "outbox %d: dispatcher error; the row is retried when its lease expires",
                claim.message.outbox_id,
            )
            return
        await self._record(claim, outcome)

    async def _attempt(self, claim: _Claim) -> _Outcome:
        """Call the channel's sender and classify the result."""
        message = claim.message
        sender = self._senders.get(message.channel)
        if sender is None:
            registered = ", ".join(sorted(self._senders)) or "none"
            return _Dead(
                (
                    f"no sender registered for channel {message.channel!r} "
                    f"(registered: {registered}); configure that channel, then revive this row"
                ),
            )
        if claim.attempts > self._policy.max_attempts:
            # Only reachable through lease reclaims (a worker claimed it and died
            # before recording an outcome) or a lowered max_attempts: stop
            # resending a message that may be what crashes the worker.
            return _Dead(
                (
                    f"gave up after {claim.attempts - 1} attempts "
                    f"(max_attempts={self._policy.max_attempts}); last error: "
                    f"{claim.last_error or 'none recorded, the worker stopped mid-send'}"
                ),
            )
        # A paced sender's wait for its rate is not a hung call: it bounds each
        # provider call itself. (The rows of a batch wait their turn under their
        # lease; one dispatcher never reclaims rows it is still sending.)
        timeout = None if getattr(sender, "paced", False) else self._policy.send_timeout_seconds
        try:
            async with asyncio.timeout(timeout):
                provider_message_id = await sender.send(message)
        except PermanentSendError as exc:
            return _Dead(str(exc), unreachable=exc.unreachable, opted_out=exc.opted_out)
        except TransientSendError as exc:
            return self._retry_or_give_up(claim, str(exc), exc.retry_after)
        except TimeoutError:
            error = f"send timed out after {self._policy.send_timeout_seconds:g}s"
            return self._retry_or_give_up(claim, error, None)
        except Exception as exc:
            # A sender bug or an error it failed to classify: log the traceback
            # for whoever fixes it, and treat it as transient so nothing is lost.
            logger.exception(
                "outbox %d: unexpected error from the %s sender; treating it as transient",
                message.outbox_id,
                message.channel,
            )
            return self._retry_or_give_up(claim, f"{type(exc).__name__}: {exc}", None)
        return _Sent(provider_message_id)

    def _retry_or_give_up(self, claim: _Claim, error: str, retry_after: float | None) -> _Outcome:
        """A retry after backoff with full jitter, or a dead letter once attempts run out."""
        if claim.attempts >= self._policy.max_attempts:
            return _Dead(f"gave up after {claim.attempts} attempts; last error: {error}")
        # Full jitter: spreads the retries of a burst that failed together.
        delay = self._rng.uniform(0.0, self._policy.backoff_ceiling(claim.attempts))
        if retry_after is not None and math.isfinite(retry_after):
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_SECONDS))
        return _Retry(error, self._clock() + timedelta(seconds=delay))

    async def _record(self, claim: _Claim, outcome: _Outcome) -> None:
        """Settle one row in its own short transaction, then count and log it."""
        message = claim.message
        contact_found = False
        settled = False
        try:
            async with self._database.transaction() as uow:
                attempt = claim.attempts
                if isinstance(outcome, _Sent):
                    settled = await uow.outbox.mark_sent(
                        message.outbox_id, attempt, outcome.provider_message_id
                    )
                elif isinstance(outcome, _Retry):
                    settled = await uow.outbox.mark_retry(
                        message.outbox_id, attempt, outcome.error, outcome.next_attempt_at
                    )
                else:
                    settled = await uow.outbox.mark_dead(message.outbox_id, attempt, outcome.error)
                    if settled and outcome.unreachable:
                        contact_found = await uow.directory.mark_unreachable(
                            message.channel, message.recipient
                        )
                    if settled and outcome.opted_out:
                        contact_found = await uow.directory.mark_opted_out(
                            message.channel, message.recipient
                        )
        except Exception:
            # Left leased: the row is claimed again once the lease expires.
            logger.exception(
                "outbox %d: could not record outcome %s; it will be retried after its lease",
                message.outbox_id,
                type(outcome).__name__.lstrip("_").lower(),
            )
            return
        if not settled:
            # Our lease expired and another claim owns the row now; its outcome stands.
            logger.warning(
                "outbox %d: lease lost before recording %s; left to the newer claim",
                message.outbox_id,
                type(outcome).__name__.lstrip("_").lower(),
            )
            return
        self._report(claim, outcome, contact_found=contact_found)

    def _report(self, claim: _Claim, outcome: _Outcome, *, contact_found: bool) -> None:
        """Count and log a recorded outcome: ids, channel and error only, never the body."""
        message = claim.message
        metrics = self._metrics
        if isinstance(outcome, _Sent):
            if metrics is not None:
                metrics.outbox_sent.labels(channel=message.channel).inc()
            logger.info(
                "outbox %d sent on %s (attempt %d, provider id %s)",
                message.outbox_id,
                message.channel,
                claim.attempts,
                outcome.provider_message_id,
            )
        elif isinstance(outcome, _Retry):
            if metrics is not None:
                metrics.outbox_retried.labels(channel=message.channel).inc()
            logger.warning(
                "outbox %d on %s failed (attempt %d of %d), retry at %s: %s",
                message.outbox_id,
                message.channel,
                claim.attempts,
                self._policy.max_attempts,
                outcome.next_attempt_at.isoformat(),
                outcome.error,
            )
        else:
            if metrics is not None:
                metrics.outbox_dead.labels(channel=message.channel).inc()
            logger.error(
                "outbox %d on %s dead-lettered (attempt %d): %s",
                message.outbox_id,
                message.channel,
                claim.attempts,
                outcome.error,
            )
            flags = [
                name
                for name, flagged in (
                    ("unreachable", outcome.unreachable),
                    ("opted out", outcome.opted_out),
                )
                if flagged
            ]
            if flags:
                logger.warning(
                    "outbox %d: recipient on %s marked %s%s",
                    message.outbox_id,
                    message.channel,
                    " and ".join(flags),
                    "" if contact_found else " (no contact row: not a citizen address)",
                )


def _claim_of(row: OutboxMessage, sent_ids: Mapping[int, str]) -> _Claim:
    """Copy what sending needs out of a row, so nothing touches it after its session."""
    return _Claim(
        message=OutgoingMessage(
            outbox_id=row.id,
            channel=row.channel,
            recipient=row.recipient,
            body=row.body,
            buttons=row.buttons,
            thread_id=row.thread_id,
            ticket_id=row.ticket_id,
            kind=row.kind,
            payload=row.payload,
            edit_message_id=sent_ids.get(row.edit_of_id) if row.edit_of_id is not None else None,
        ),
        attempts=row.attempts,
        last_error=row.last_error,
    )
