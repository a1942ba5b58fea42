"""A sender that delivers nowhere: it records what it is given.

Used by the ``demo`` command, where the outbox should run end to end without a
provider, and by tests, which script failures with ``fail_next`` to drive the
dispatcher through retries and dead letters.
"""

from __future__ import annotations

from collections import deque

from bot.channels.base import OutgoingMessage


class RecordingSender:
    """A ``Sender`` for one channel that keeps every message in memory."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        # Every call, failed ones included, in call order.
        self.calls: list[OutgoingMessage] = []
        # Only the calls that succeeded: what a resident would have received.
        self.sent: list[OutgoingMessage] = []
        self._failures: deque[Exception] = deque()
        self._next_id = 0

    def fail_next(self, *errors: Exception) -> None:
        """Make the next calls raise these errors, one per call, in order."""
        self._failures.extend(errors)

    @property
    def pending_failures(self) -> int:
        """How many scripted failures are still to be raised."""
        return len(self._failures)

    async def send(self, message: OutgoingMessage) -> str:
        """Record the message; raise the next scripted failure or return ``rec-N``."""
        self.calls.append(message)
        if self._failures:
            raise self._failures.popleft()
        self.sent.append(message)
        self._next_id += 1
        return f"rec-{self._next_id}"
