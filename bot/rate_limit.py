"""Per-client request limits for the Open311 endpoints: a token bucket per API key.

The limiter is per process: every ``serve`` worker counts only the requests
it received, so N workers behind one address let a client through up to N
times the configured rate. That bounds abuse well enough for a front door
whose clients are few and known; an exact shared limit would need the
database or a shared store on every request.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Final

# Buckets of the keys seen most recently. Idle keys' buckets are forgotten
# once they are full again (losing nothing); the cap only matters if more
# keys than this are busy at once, and then the least recent one goes.
MAX_TRACKED_KEYS: Final = 10_000
# A deficit smaller than this is float noise from the refill arithmetic.
_EPSILON: Final = 1e-9


class _Bucket:
    __slots__ = ("tokens", "updated")

    def __init__(self, tokens: float, updated: float) -> None:
        self.tokens = tokens
        self.updated = updated


class KeyRateLimiter:
    """``rate_per_minute`` requests a minute per key, with up to ``burst`` at once.

    A key's bucket starts full: a client that has been quiet may send
    ``burst`` requests at once, then one every ``60 / rate_per_minute``
    seconds. ``check`` never waits; it answers at once, so a request handler
    can refuse with 429 and a ``Retry-After`` header.
    """

    def __init__(
        self,
        rate_per_minute: int,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        if rate_per_minute < 1:
            raise ValueError(f"rate_per_minute must be at least 1, got {rate_per_minute}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, got {max_keys}")
        self._rate = rate_per_minute / 60
        self._burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        # Least recently checked first.
        self._buckets: OrderedDict[Hashable, _Bucket] = OrderedDict()

    @property
    def tracked_keys(self) -> int:
        """How many keys have a bucket now (never more than ``max_keys``)."""
        return len(self._buckets)

    def check(self, key_id: Hashable) -> float | None:
        """Spend one request of ``key_id``'s allowance.

        None: allowed. Otherwise the request is refused and nothing is spent;
        the value is how many seconds until the key may send again (round it
        up for an HTTP ``Retry-After``, which takes whole seconds).
        """
        now = self._clock()
        self._forget_idle(now)
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = _Bucket(self._burst, now)
            self._buckets[key_id] = bucket
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key_id)
            self._refill(bucket, now)
        if bucket.tokens + _EPSILON >= 1:
            bucket.tokens = max(bucket.tokens - 1, 0.0)
            return None
        return (1 - bucket.tokens) / self._rate

    def _refill(self, bucket: _Bucket, now: float) -> None:
        elapsed = max(now - bucket.updated, 0.0)
        bucket.tokens = min(self._burst, bucket.tokens + elapsed * self._rate)
        bucket.updated = now

    def _forget_idle(self, now: float) -> None:
        # A bucket that has refilled completely is the same as no bucket, so
        # dropping it changes no answer. The oldest is checked first and the
        # scan stops at the first one still refilling: each bucket is dropped
        # at most once, so this costs O(1) a call on average.
        full_after = self._burst / self._rate
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if now - oldest.updated < full_after:
                return
            self._buckets.popitem(last=False)
