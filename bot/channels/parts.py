"""Sending one outbox row as several provider messages, resumable after a failure.

A body too long for one message (an SMS over its segment budget, a Telegram
message over 4,096 characters) goes as parts, in order. If a later part fails
transiently, the parts already accepted are remembered in memory, keyed by
outbox id, and the dispatcher's retry resumes at the failed part instead of
sending the resident the first parts twice. The memory is per process and
bounded: after a restart, or when another worker takes the retry, the earlier
parts go again (the outbox promises at least once, never exactly once). A
permanent failure forgets the progress, so a revived dead letter is sent whole.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.channels.base import PermanentSendError

logger = logging.getLogger(__name__)

# Rows whose progress is remembered at once; the oldest is forgotten first.
PROGRESS_LIMIT = 1024

# Sends part ``index`` of ``count``; returns the provider's id for it.
SendPart = Callable[[int, int], Awaitable[str | None]]


@dataclass(slots=True)
class _Progress:
    """How far a multi-part send got: the parts, and how many the provider accepted."""

    parts: tuple[str, ...]
    sent: int = 0
    last_id: str | None = None


class PartedSends:
    """Remembers, per outbox row, how many parts of its body went out."""

    def __init__(self, what: str, limit: int = PROGRESS_LIMIT) -> None:
        self._what = what  # "SMS", "Telegram message": for the log line
        self._limit = limit
        self._progress: OrderedDict[int, _Progress] = OrderedDict()

    def __len__(self) -> int:
        return len(self._progress)

    async def send(self, outbox_id: int, parts: tuple[str, ...], send_part: SendPart) -> str | None:
        """Send the parts not yet accepted, in order; the last part's provider id."""
        progress = self._progress.get(outbox_id)
        if progress is None or progress.parts != parts:
            progress = _Progress(parts)
            self._remember(outbox_id, progress)
        elif progress.sent:
            logger.info(
                "outbox %d: resuming a %d-part %s at part %d",
                outbox_id,
                len(parts),
                self._what,
                progress.sent + 1,
            )
        while progress.sent < len(parts):
            try:
                provider_id = await send_part(progress.sent, len(parts))
            except PermanentSendError:
                self._progress.pop(outbox_id, None)
                raise
            progress.sent += 1
            progress.last_id = provider_id
        self._progress.pop(outbox_id, None)
        return progress.last_id

    def _remember(self, outbox_id: int, progress: _Progress) -> None:
        self._progress[outbox_id] = progress
        self._progress.move_to_end(outbox_id)
        while len(self._progress) > self._limit:
            self._progress.popitem(last=False)
