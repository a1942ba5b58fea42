"""The Open311 per-key rate limit: a burst, then a steady rate, each key on its own.

A hand-moved clock stands in for ``time.monotonic``; nothing sleeps.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.rate_limit import MAX_TRACKED_KEYS, KeyRateLimiter
from bot.settings import Settings


class Clock:
    """Seconds on a clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    """The limiter's clock."""
    return Clock()


def test_a_burst_then_one_request_per_interval(clock: Clock) -> None:
    # 30 a minute: one every 2 seconds once the burst of 3 is spent.
    limiter = KeyRateLimiter(30, 3, clock=clock)

    assert [limiter.check(1) for _ in range(3)] == [None, None, None]
    assert limiter.check(1) == pytest.approx(2.0)
    # A refusal spends nothing: asking again at once gets the same answer.
    assert limiter.check(1) == pytest.approx(2.0)
    clock.advance(1.5)
    assert limiter.check(1) == pytest.approx(0.5)
    clock.advance(0.5)
    assert limiter.check(1) is None
    assert limiter.check(1) == pytest.approx(2.0)


def test_the_bucket_refills_to_the_burst_and_no_further(clock: Clock) -> None:
    limiter = KeyRateLimiter(60, 5, clock=clock)
    assert [limiter.check("k") for _ in range(5)] == [None] * 5
    assert limiter.check("k") == pytest.approx(1.0)

    clock.advance(3)  # three requests' worth
    assert [limiter.check("k") is None for _ in range(4)] == [True, True, True, False]

    clock.advance(3600)  # a quiet hour saves up only the burst
    assert [limiter.check("k") is None for _ in range(6)] == [True] * 5 + [False]


def test_the_long_run_rate_holds(clock: Clock) -> None:
    limiter = KeyRateLimiter(30, 10, clock=clock)
    allowed = 0
    for _ in range(600):  # ten minutes, a request every second
        allowed += limiter.check(7) is None
        clock.advance(1)
    # The burst plus 30 a minute for the remaining minutes (float-safe bound).
    assert 10 + 30 * 10 - 1 <= allowed <= 10 + 30 * 10


def test_keys_are_limited_independently(clock: Clock) -> None:
    limiter = KeyRateLimiter(30, 2, clock=clock)
    assert [limiter.check(1) for _ in range(2)] == [None, None]
    assert limiter.check(1) is not None

    assert [limiter.check(2) for _ in range(2)] == [None, None]
    assert limiter.check(2) is not None
    clock.advance(2)
    assert limiter.check(1) is None
    assert limiter.check(2) is None
    assert limiter.check(3) is None


def test_memory_is_bounded_by_forgetting_the_least_recent_key(clock: Clock) -> None:
    limiter = KeyRateLimiter(1, 1, clock=clock, max_keys=3)
    for key in (1, 2, 3):
        assert limiter.check(key) is None
    assert limiter.check(1) is not None  # key 1 is now the most recent

    assert limiter.check(4) is None  # forgets key 2, the least recent
    assert limiter.tracked_keys == 3
    assert limiter.check(1) is not None  # still remembered, still limited
    assert limiter.check(3) is not None
    assert limiter.check(2) is None  # forgotten: a fresh bucket
    assert limiter.tracked_keys == 3


def test_the_default_cap_holds_under_many_keys(clock: Clock) -> None:
    limiter = KeyRateLimiter(30, 10, clock=clock)
    for key in range(MAX_TRACKED_KEYS + 500):
        limiter.check(key)
    assert limiter.tracked_keys == MAX_TRACKED_KEYS


def test_idle_keys_are_forgotten_once_their_bucket_is_full(clock: Clock) -> None:
    # 30 a minute, burst 10: an empty bucket is full again after 20 seconds.
    limiter = KeyRateLimiter(30, 10, clock=clock)
    for key in range(1000):
        assert limiter.check(key) is None
    for _ in range(10):
        limiter.check("busy")
    assert limiter.tracked_keys == 1001

    clock.advance(19.5)
    assert limiter.check("busy") is None  # refilled 9.75 of 10
    assert limiter.tracked_keys == 1001  # the others may not be full yet: kept
    clock.advance(0.5)
    assert limiter.check("new") is None
    assert limiter.tracked_keys == 2  # only "busy" (still refilling) and "new"
    # "busy" kept its deficit: 10 - 10 + 9.75 - 1 + 0.25 = 9 tokens left.
    assert [limiter.check("busy") is None for _ in range(10)] == [True] * 9 + [False]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_per_minute": 0, "burst": 1}, "rate_per_minute must be at least 1, got 0"),
        ({"rate_per_minute": 1, "burst": 0}, "burst must be at least 1, got 0"),
        ({"rate_per_minute": 1, "burst": 1, "max_keys": 0}, "max_keys must be at least 1"),
    ],
)
def test_bad_limits_are_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KeyRateLimiter(**kwargs)


def test_the_settings_default_and_refuse_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(_env_file=None)
    assert (settings.open311_requests_per_minute, settings.open311_burst) == (30, 10)
    monkeypatch.setenv("OPEN311_REQUESTS_PER_MINUTE", "120")
    monkeypatch.setenv("OPEN311_BURST", "20")
    settings = Settings(_env_file=None)
    assert (settings.open311_requests_per_minute, settings.open311_burst) == (120, 20)
    monkeypatch.setenv("OPEN311_BURST", "0")
    with pytest.raises(ValidationError, match="open311_burst"):
        Settings(_env_file=None)
