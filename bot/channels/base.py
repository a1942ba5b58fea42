"""What every channel sender is: the contract between the outbox and a provider.

A sender turns one outbox row into one provider call. It returns the
provider's message id on success and raises one of the two errors below on
failure; the dispatcher decides what happens next (retry, back off, dead-letter).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """The part of an outbox row a sender needs."""

    outbox_id: int
    channel: str
    recipient: str
    body: str
    buttons: list[list[dict[str, str]]] | None = None
    thread_id: int | None = None
    ticket_id: int | None = None
    # "text", or "edit" / "photo" / "document" / "location" (see OutboxMessage.kind).
    kind: str = "text"
    payload: dict[str, Any] | None = None
    # For an edit: the provider's id of the message to change; None when the
    # message it edits was never sent (dead-lettered), which no retry mends.
    edit_message_id: str | None = None


class SendError(Exception):
    """A send failed. ``str(self)`` is for operators, never shown to residents."""


class TransientSendError(SendError):
    """Worth trying again later: timeouts, 5xx, rate limits.

    ``retry_after`` is the provider's own instruction in seconds, when it gave one;
    the dispatcher waits at least that long.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """Will never succeed (blocked bot, opted-out number, bad address): dead-letter it.

    ``unreachable`` marks the recipient's contact so nothing more is queued for it.
    ``opted_out`` marks it opted out: the resident asked the provider to stop
    (SMS STOP), and the provider refuses everything until they opt back in.
    """

    def __init__(self, message: str, *, unreachable: bool = False, opted_out: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable
        self.opted_out = opted_out


class Sender(Protocol):
    """A channel's outbound half. ``channel`` is the name outbox rows use.

    A sender that paces itself (waits for its channel's rate before calling
    the provider) bounds each provider call with its own timeout and sets
    ``paced = True``: the dispatcher then does not time the whole ``send``,
    whose pacing wait grows with the queue (see ``bot.outbox``).
    """

    channel: str

    async def send(self, message: OutgoingMessage) -> str | None:
        """Deliver one message; return the provider's message id."""
        ...
