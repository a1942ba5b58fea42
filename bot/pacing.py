"""Pacing outbound SMS to the sender's throughput, counted in segments.

Twilio accepts messages faster than a number can send them and queues the
rest; a queue that grows too long overflows (error 30001) and the messages are
lost. A long code sends about one segment per second, a short code or a
Messaging Service with several numbers more, so the sender waits for its share
here before every API call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

# A wait shorter than this is float noise from the refill arithmetic, not a deficit.
_EPSILON = 1e-9


class SegmentPacer:
    """A token bucket: ``rate_per_second`` tokens a second, at most ``burst`` saved up.

    Callers are served one at a time in arrival order (``asyncio.Lock`` is
    fair), so one resident's parts and other residents' messages share the rate
    without starving anyone. A request larger than ``burst`` waits for a full
    bucket and then overdraws it; the debt delays the next caller, so the
    long-run rate still holds.
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not rate_per_second > 0:
            raise ValueError(f"rate_per_second must be positive, got {rate_per_second}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self._rate = rate_per_second
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        # Starts full: the first message after a quiet spell goes at once.
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = asyncio.Lock()

    @property
    def rate_per_second(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def burst(self) -> int:
        """The most tokens the bucket holds."""
        return self._burst

    async def acquire(self, n: int) -> None:
        """Wait until ``n`` tokens may be spent, then spend them.

        Cancelled while waiting, it spends nothing.
        """
        if n < 1:
            raise ValueError(f"acquire needs at least 1 token, got {n}")
        async with self._lock:
            needed = min(n, self._burst)
            self._refill()
            while self._tokens + _EPSILON < needed:
                await self._sleep((needed - self._tokens) / self._rate)
                self._refill()
            self._tokens -= n

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(now - self._updated, 0.0)
        self._tokens = min(float(self._burst), self._tokens + elapsed * self._rate)
        self._updated = now
