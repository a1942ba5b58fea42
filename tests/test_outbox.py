"""The outbox dispatcher on SQLite and PostgreSQL: send, retry, dead-letter, lease, order, stop.

Time is a fake clock advanced by hand and jitter comes from a seeded
``random.Random``, so every retry time is asserted exactly and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta

import pytest

from bot.channels.base import OutgoingMessage, PermanentSendError, TransientSendError
from bot.channels.recording import RecordingSender
from bot.metrics import DeskMetrics
from bot.outbox import DispatcherPolicy, OutboxDispatcher
from bot.settings import Settings
from storage.models import OutboxMessage, utcnow
from storage.unit_of_work import Database

SEED = 20240611
RESIDENT = "+8613800000001"
OTHER_RESIDENT = "+8613900000002"
BODY = "您的投诉已受理，受理编号：TS0001"
MICROSECOND = timedelta(microseconds=1)


class FakeClock:
    """A clock that only moves when the test moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def set(self, moment: datetime) -> None:
        self.now = moment


def make_policy(**overrides: object) -> DispatcherPolicy:
    values: dict[str, object] = {
        "batch_size": 10,
        "max_attempts": 3,
        "lease": timedelta(seconds=60),
        "base_backoff_seconds": 2.0,
        "max_backoff_seconds": 100.0,
        "poll_seconds": 3600.0,  # tests never wait for a poll: a wait would hang
    }
    values.update(overrides)
    return DispatcherPolicy(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> FakeClock:
    # The repository stamps enqueue() and revive() with the real clock; starting
    # a little ahead of it makes those rows due at the fake "now".
    return FakeClock(utcnow() + timedelta(minutes=1))


@pytest.fixture
def policy() -> DispatcherPolicy:
    return make_policy()


@pytest.fixture
def sms() -> RecordingSender:
    return RecordingSender("sms")


@pytest.fixture
def dispatcher(
    database: Database, sms: RecordingSender, policy: DispatcherPolicy, clock: FakeClock
) -> OutboxDispatcher:
    return OutboxDispatcher(database, {"sms": sms}, policy, clock=clock, rng=random.Random(SEED))


async def enqueue(
    database: Database, *, channel: str = "sms", recipient: str = RESIDENT, body: str = BODY
) -> int:
    async with database.transaction() as uow:
        message = await uow.outbox.enqueue(channel=channel, recipient=recipient, body=body)
        return message.id


async def load(database: Database, message_id: int) -> OutboxMessage:
    async with database.reading() as uow:
        message = await uow.outbox.get(message_id)
    assert message is not None
    return message


# --- policy ------------------------------------------------------------------


def test_policy_from_settings() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        outbox_batch_size=7,
        outbox_max_attempts=5,
        outbox_lease_seconds=90,
        outbox_base_backoff_seconds=1.5,
        outbox_max_backoff_seconds=600,
        outbox_poll_seconds=0.5,
    )
    assert DispatcherPolicy.from_settings(settings) == DispatcherPolicy(
        batch_size=7,
        max_attempts=5,
        lease=timedelta(seconds=90),
        base_backoff_seconds=1.5,
        max_backoff_seconds=600.0,
        poll_seconds=0.5,
    )


@pytest.mark.parametrize(
    ("attempts", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (6, 64.0), (7, 100.0), (10_000, 100.0)]
)
def test_backoff_ceiling_doubles_then_caps(attempts: int, ceiling: float) -> None:
    assert make_policy().backoff_ceiling(attempts) == ceiling


@pytest.mark.parametrize(
    "overrides",
    [
        {"batch_size": 0},
        {"max_attempts": 0},
        {"lease": timedelta(0)},
        {"base_backoff_seconds": 0.0},
        {"base_backoff_seconds": 200.0},  # above max_backoff_seconds
        {"poll_seconds": 0.0},
    ],
)
def test_policy_rejects_nonsense(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_policy(**overrides)


def test_sender_must_be_registered_under_its_own_channel(database: Database) -> None:
    with pytest.raises(ValueError, match="registered under 'telegram'"):
        OutboxDispatcher(database, {"telegram": RecordingSender("sms")}, make_policy())


# --- sending -----------------------------------------------------------------


async def test_success_stores_provider_id(
    database: Database, dispatcher: OutboxDispatcher, sms: RecordingSender
) -> None:
    message_id = await enqueue(database)

    assert await dispatcher.run_once() == 1

    row = await load(database, message_id)
    assert (row.status, row.attempts, row.provider_message_id) == ("sent", 1, "rec-1")
    assert row.sent_at is not None
    assert row.lease_until is None
    assert row.last_error is None
    assert sms.sent == [
        OutgoingMessage(outbox_id=message_id, channel="sms", recipient=RESIDENT, body=BODY)
    ]
    assert await dispatcher.run_once() == 0


async def test_transient_failure_is_retried_after_jittered_backoff(
    database: Database, dispatcher: OutboxDispatcher, sms: RecordingSender, clock: FakeClock
) -> None:
    message_id = await enqueue(database)
    sms.fail_next(TransientSendError("gateway timeout"))
    failed_at = clock.now

    assert await dispatcher.run_once() == 1

    row = await load(database, message_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "gateway timeout")
    # Full jitter after the first failure: uniform in [0, base * 2**0] = [0, 2] s.
    assert failed_at <= row.next_attempt_at <= failed_at + timedelta(seconds=2)
    expected_delay = random.Random(SEED).uniform(0.0, 2.0)
    assert row.next_attempt_at == failed_at + timedelta(seconds=expected_delay)

    clock.set(row.next_attempt_at - MICROSECOND)
    assert await dispatcher.run_once() == 0
    assert len(sms.calls) == 1

    clock.set(row.next_attempt_at)
    assert await dispatcher.run_once() == 1
    row = await load(database, message_id)
    assert (row.status, row.attempts, row.provider_message_id) == ("sent", 2, "rec-1")
    assert row.last_error is None
    assert len(sms.calls) == 2


async def test_retry_after_is_honoured_over_a_shorter_backoff(
    database: Database, dispatcher: OutboxDispatcher, sms: RecordingSender, clock: FakeClock
) -> None:
    message_id = await enqueue(database)
    sms.fail_next(TransientSendError("429 Too Many Requests", retry_after=30))

    await dispatcher.run_once()

    row = await load(database, message_id)
    assert row.status == "pending"
    # The backoff ceiling is 2 s, so the provider's 30 s wins outright.
    assert row.next_attempt_at == clock.now + timedelta(seconds=30)
    clock.advance(timedelta(seconds=30) - MICROSECOND)
    assert await dispatcher.run_once() == 0
    clock.advance(MICROSECOND)
    assert await dispatcher.run_once() == 1
    assert [m.outbox_id for m in sms.sent] == [message_id]


@pytest.mark.parametrize("unreachable", [True, False])
async def test_permanent_failure_dead_letters_and_revive_sends_again(
    database: Database,
    dispatcher: OutboxDispatcher,
    sms: RecordingSender,
    clock: FakeClock,
    unreachable: bool,
) -> None:
    async with database.transaction() as uow:
        await uow.directory.ensure_contact("sms", RESIDENT)
    message_id = await enqueue(database)
    sms.fail_next(PermanentSendError("Twilio 21610: recipient opted out", unreachable=unreachable))

    assert await dispatcher.run_once() == 1

    row = await load(database, message_id)
    assert (row.status, row.attempts) == ("dead", 1)
    assert row.last_error == "Twilio 21610: recipient opted out"
    async with database.reading() as uow:
        contact = await uow.directory.contact("sms", RESIDENT)
        dead = await uow.outbox.with_status("dead")
    assert contact is not None
    assert contact.unreachable is unreachable
    assert [m.id for m in dead] == [message_id]

    clock.advance(timedelta(days=1))
    assert await dispatcher.run_once() == 0
    assert len(sms.calls) == 1

    async with database.transaction() as uow:
        assert await uow.outbox.revive(message_id) is True
    assert await dispatcher.run_once() == 1
    row = await load(database, message_id)
    assert (row.status, row.attempts, row.provider_message_id) == ("sent", 1, "rec-1")
    async with database.transaction() as uow:
        assert await uow.outbox.revive(message_id) is False


async def test_unreachable_recipient_without_contact_row_is_still_dead_lettered(
    database: Database, dispatcher: OutboxDispatcher, sms: RecordingSender
) -> None:
    message_id = await enqueue(database, recipient="+8613700000003")
    sms.fail_next(PermanentSendError("invalid number", unreachable=True))

    assert await dispatcher.run_once() == 1

    row = await load(database, message_id)
    assert (row.status, row.last_error) == ("dead", "invalid number")


async def test_opted_out_recipient_is_marked_and_dead_lettered_without_retry(
    database: Database,
    dispatcher: OutboxDispatcher,
    sms: RecordingSender,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with database.transaction() as uow:
        await uow.directory.ensure_contact("sms", RESIDENT)
        await uow.directory.ensure_contact("sms", OTHER_RESIDENT)
    message_id = await enqueue(database)
    sms.fail_next(PermanentSendError("Twilio error 21610: recipient opted out", opted_out=True))

    with caplog.at_level(logging.WARNING, logger="bot.outbox"):
        assert await dispatcher.run_once() == 1

    row = await load(database, message_id)
    assert (row.status, row.attempts) == ("dead", 1)
    assert row.last_error == "Twilio error 21610: recipient opted out"
    async with database.reading() as uow:
        contact = await uow.directory.contact("sms", RESIDENT)
        other = await uow.directory.contact("sms", OTHER_RESIDENT)
    assert contact is not None and other is not None
    assert (contact.opted_out, contact.unreachable) == (True, False)
    assert other.opted_out is False
    assert f"outbox {message_id}: recipient on sms marked opted out" in caplog.text
    assert "no contact row" not in caplog.text

    # Dead at once: no retry, however long we wait.
    clock.advance(timedelta(days=1))
    assert await dispatcher.run_once() == 0
    assert len(sms.calls) == 1


async def test_opted_out_recipient_without_contact_row_is_still_dead_lettered(
    database: Database,
    dispatcher: OutboxDispatcher,
    sms: RecordingSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    message_id = await enqueue(database, recipient="+8613700000003")
    sms.fail_next(PermanentSendError("opted out", opted_out=True))

    with caplog.at_level(logging.WARNING, logger="bot.outbox"):
        assert await dispatcher.run_once() == 1

    row = await load(database, message_id)
    assert (row.status, row.last_error) == ("dead", "opted out")
    assert "marked opted out (no contact row: not a citizen address)" in caplog.text


async def test_gives_up_after_exactly_max_attempts(
    database: Database,
    dispatcher: OutboxDispatcher,
    sms: RecordingSender,
    clock: FakeClock,
    policy: DispatcherPolicy,
) -> None:
    message_id = await enqueue(database)
    for attempt in range(1, policy.max_attempts + 1):
        sms.fail_next(TransientSendError(f"timeout {attempt}"))
        failed_at = clock.now
        assert await dispatcher.run_once() == 1
        row = await load(database, message_id)
        assert row.attempts == attempt
        if attempt < policy.max_attempts:
            assert row.status == "pending"
            ceiling = timedelta(seconds=policy.backoff_ceiling(attempt))
            assert failed_at <= row.next_attempt_at <= failed_at + ceiling
            clock.set(row.next_attempt_at)

    assert (row.status, row.attempts) == ("dead", 3)
    assert row.last_error == "gave up after 3 attempts; last error: timeout 3"
    assert len(sms.calls) == 3
    assert sms.sent == []
    clock.advance(timedelta(days=1))
    assert await dispatcher.run_once() == 0


async def test_expired_lease_of_a_crashed_worker_is_reclaimed(
    database: Database,
    dispatcher: OutboxDispatcher,
    sms: RecordingSender,
    clock: FakeClock,
    policy: DispatcherPolicy,
) -> None:
    ids = [await enqueue(database, recipient=r) for r in (RESIDENT, OTHER_RESIDENT)]
    # The crashed worker: claims, commits the claim, never settles.
    async with database.transaction() as uow:
        crashed = await uow.outbox.claim_due(now=clock.now, lease=policy.lease, limit=10)
    assert [m.id for m in crashed] == ids

    assert await dispatcher.run_once() == 0
    clock.advance(policy.lease)
    assert await dispatcher.run_once() == 0  # lease_until == now: still held
    clock.advance(MICROSECOND)
    assert await dispatcher.run_once() == 2

    rows = [await load(database, i) for i in ids]
    assert [(r.status, r.attempts) for r in rows] == [("sent", 2), ("sent", 2)]
    assert sorted(m.outbox_id for m in sms.sent) == ids


async def test_late_outcome_of_a_worker_whose_lease_expired_changes_nothing(
    database: Database,
    dispatcher: OutboxDispatcher,
    clock: FakeClock,
    policy: DispatcherPolicy,
) -> None:
    message_id = await enqueue(database)
    # A slow worker claims (attempt 1) and is still sending when its lease runs out.
    async with database.transaction() as uow:
        (slow,) = await uow.outbox.claim_due(now=clock.now, lease=policy.lease, limit=10)
    clock.advance(policy.lease + MICROSECOND)
    assert await dispatcher.run_once() == 1  # reclaimed as attempt 2 and sent

    async with database.transaction() as uow:
        late = await uow.outbox.mark_retry(slow.id, slow.attempts, "timeout", clock.now)
        late_dead = await uow.outbox.mark_dead(slow.id, slow.attempts, "gave up")
    assert (late, late_dead) == (False, False)
    row = await load(database, message_id)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)


async def test_row_reclaimed_past_max_attempts_is_dead_lettered_unsent(
    database: Database,
    dispatcher: OutboxDispatcher,
    sms: RecordingSender,
    clock: FakeClock,
    policy: DispatcherPolicy,
) -> None:
    message_id = await enqueue(database)
    for _ in range(policy.max_attempts):  # a worker that dies on this row every time
        async with database.transaction() as uow:
            assert len(await uow.outbox.claim_due(now=clock.now, lease=policy.lease, limit=10)) == 1
        clock.advance(policy.lease + MICROSECOND)

    assert await dispatcher.run_once() == 1

    row = await load(database, message_id)
    assert (row.status, row.attempts) == ("dead", 4)
    assert row.last_error == (
        "gave up after 3 attempts (max_attempts=3); "
        "last error: none recorded, the worker stopped mid-send"
    )
    assert sms.calls == []


async def test_channel_without_sender_is_dead_lettered_with_reason(
    database: Database, dispatcher: OutboxDispatcher, sms: RecordingSender
) -> None:
    message_id = await enqueue(database, channel="fax")

    assert await dispatcher.run_once() == 1

    row = await load(database, message_id)
    assert (row.status, row.attempts) == ("dead", 1)
    assert row.last_error == (
        "no sender registered for channel 'fax' (registered: sms); "
        "configure that channel, then revive this row"
    )
    assert sms.calls == []


async def test_unexpected_sender_error_is_logged_and_retried(
    database: Database,
    dispatcher: OutboxDispatcher,
    sms: RecordingSender,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    message_id = await enqueue(database)
    sms.fail_next(RuntimeError("boom"))

    with caplog.at_level(logging.INFO, logger="bot.outbox"):
        assert await dispatcher.run_once() == 1

    row = await load(database, message_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "RuntimeError: boom")
    [logged] = [r for r in caplog.records if r.exc_info is not None]
    assert logged.levelno == logging.ERROR
    assert logged.exc_info is not None and logged.exc_info[0] is RuntimeError

    clock.set(row.next_attempt_at)
    assert await dispatcher.run_once() == 1
    assert (await load(database, message_id)).status == "sent"


async def test_hung_send_times_out_as_transient(database: Database, clock: FakeClock) -> None:
    class HangingSender(RecordingSender):
        async def send(self, message: OutgoingMessage) -> str:
            await asyncio.Event().wait()  # a provider that never answers
            raise AssertionError("unreachable")

    # The send timeout is half the lease: 10 ms here, so the test stays fast.
    policy = make_policy(lease=timedelta(milliseconds=20))
    dispatcher = OutboxDispatcher(
        database, {"sms": HangingSender("sms")}, policy, clock=clock, rng=random.Random(SEED)
    )
    message_id = await enqueue(database)

    assert await asyncio.wait_for(dispatcher.run_once(), timeout=10) == 1

    row = await load(database, message_id)
    assert (row.status, row.attempts, row.last_error) == (
        "pending",
        1,
        "send timed out after 0.01s",
    )


async def test_later_messages_wait_for_the_earlier_one_to_the_same_recipient(
    database: Database, dispatcher: OutboxDispatcher, sms: RecordingSender, clock: FakeClock
) -> None:
    first, second, third = [await enqueue(database, body=f"a{n}") for n in (1, 2, 3)]
    await enqueue(database, recipient=OTHER_RESIDENT, body="b1")
    sms.fail_next(TransientSendError("timeout"))

    assert await dispatcher.run_once() == 2  # first row of each recipient only
    assert [m.body for m in sms.calls] == ["a1", "b1"]  # the failure hit a1
    assert [m.body for m in sms.sent] == ["b1"]
    assert await dispatcher.run_once() == 0  # a2 waits behind the failed a1
    assert (await load(database, second)).attempts == 0

    clock.set((await load(database, first)).next_attempt_at)
    for _ in range(3):
        assert await dispatcher.run_once() == 1
    assert await dispatcher.run_once() == 0
    assert [m.body for m in sms.sent] == ["b1", "a1", "a2", "a3"]
    assert [(await load(database, i)).status for i in (first, second, third)] == ["sent"] * 3


async def test_concurrent_claims_take_disjoint_rows_on_postgresql(
    database: Database, db_backend: str, clock: FakeClock, policy: DispatcherPolicy
) -> None:
    if db_backend != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises writers with BEGIN IMMEDIATE")
    recipients = [f"+86138000000{n:02d}" for n in range(4)]
    ids = [await enqueue(database, recipient=r) for r in recipients]
    behind_first = await enqueue(database, recipient=recipients[0])

    async with database.transaction() as first:
        claimed_first = await first.outbox.claim_due(now=clock.now, lease=policy.lease, limit=2)
        # The first transaction still holds its row locks here.
        async with database.transaction() as second:
            # Without SKIP LOCKED this would wait on the first transaction forever.
            claimed_second = await asyncio.wait_for(
                second.outbox.claim_due(now=clock.now, lease=policy.lease, limit=10), timeout=10
            )

    assert [m.id for m in claimed_first] == ids[:2]
    # Skips the locked rows and keeps the recipient order: not the row behind ids[0].
    assert [m.id for m in claimed_second] == ids[2:]
    assert (await load(database, behind_first)).status == "pending"


async def test_metrics_count_outcomes_per_channel(
    database: Database, sms: RecordingSender, clock: FakeClock
) -> None:
    metrics = DeskMetrics()
    dispatcher = OutboxDispatcher(
        database, {"sms": sms}, make_policy(), clock=clock, rng=random.Random(SEED), metrics=metrics
    )
    for recipient in (RESIDENT, OTHER_RESIDENT, "+8613700000003"):
        await enqueue(database, recipient=recipient)
    sms.fail_next(TransientSendError("timeout"), PermanentSendError("blocked"))

    await dispatcher.run_once()

    text = metrics.render().decode()
    assert 'outbox_sent_total{channel="sms"} 1.0' in text
    assert 'outbox_retried_total{channel="sms"} 1.0' in text
    assert 'outbox_dead_total{channel="sms"} 1.0' in text
    assert metrics.content_type.startswith("text/plain")
    # Each instance owns its registry: a second one starts from nothing.
    assert 'outbox_sent_total{channel="sms"}' not in DeskMetrics().render().decode()


async def test_logs_never_carry_the_body_or_the_recipient(
    database: Database,
    dispatcher: OutboxDispatcher,
    sms: RecordingSender,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "我家门口有人乱倒垃圾，张三 13812345678"
    for recipient in (RESIDENT, OTHER_RESIDENT):
        await enqueue(database, recipient=recipient, body=secret)
    sms.fail_next(TransientSendError("timeout"), PermanentSendError("blocked", unreachable=True))

    with caplog.at_level(logging.DEBUG, logger="bot.outbox"):
        await dispatcher.run_once()
        clock.advance(timedelta(hours=1))
        await dispatcher.run_once()

    assert len(sms.sent) == 1
    assert "dead-lettered" in caplog.text
    assert secret not in caplog.text
    assert RESIDENT not in caplog.text
    assert OTHER_RESIDENT not in caplog.text


# --- the run loop ------------------------------------------------------------


class ObservedDispatcher(OutboxDispatcher):
    """Signals each time a round finds nothing to do, i.e. the loop is about to idle."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.idle = asyncio.Event()
        self.rounds = 0

    async def run_once(self) -> int:
        handled = await super().run_once()
        self.rounds += 1
        if handled == 0:
            self.idle.set()
        return handled


async def test_run_returns_promptly_when_stopped_while_idle(
    database: Database, sms: RecordingSender, clock: FakeClock
) -> None:
    dispatcher = ObservedDispatcher(
        database, {"sms": sms}, make_policy(poll_seconds=3600), clock=clock
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.wait_for(dispatcher.idle.wait(), timeout=10)

    stop.set()

    # The poll interval is an hour: only a wait that watches ``stop`` ends in time.
    await asyncio.wait_for(task, timeout=10)
    assert dispatcher.rounds == 1


async def test_wake_claims_new_rows_without_waiting_for_the_poll(
    database: Database, sms: RecordingSender, clock: FakeClock
) -> None:
    dispatcher = ObservedDispatcher(
        database, {"sms": sms}, make_policy(poll_seconds=3600), clock=clock
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.wait_for(dispatcher.idle.wait(), timeout=10)
    dispatcher.idle.clear()

    message_id = await enqueue(database)
    dispatcher.wake()
    await asyncio.wait_for(dispatcher.idle.wait(), timeout=10)

    assert [m.outbox_id for m in sms.sent] == [message_id]
    assert dispatcher.rounds == 3  # idle, sent one, idle again
    stop.set()
    await asyncio.wait_for(task, timeout=10)


async def test_stop_lets_the_batch_in_flight_finish(database: Database, clock: FakeClock) -> None:
    class GatedSender(RecordingSender):
        def __init__(self, channel: str) -> None:
            super().__init__(channel)
            self.entered = asyncio.Event()
            self.release = asyncio.Event()

        async def send(self, message: OutgoingMessage) -> str:
            self.entered.set()
            await self.release.wait()
            return await super().send(message)

    sender = GatedSender("sms")
    dispatcher = OutboxDispatcher(database, {"sms": sender}, make_policy(), clock=clock)
    message_id = await enqueue(database)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await asyncio.wait_for(sender.entered.wait(), timeout=10)

    stop.set()
    for _ in range(5):  # yield to the loop: the run must not end mid-send
        await asyncio.sleep(0)
    assert not task.done()

    sender.release.set()
    await asyncio.wait_for(task, timeout=10)
    row = await load(database, message_id)
    assert (row.status, row.provider_message_id) == ("sent", "rec-1")


async def test_run_survives_a_failing_round(
    database: Database, sms: RecordingSender, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class FlakyDatabaseDispatcher(ObservedDispatcher):
        async def run_once(self) -> int:
            if self.rounds == 0:
                self.rounds += 1
                self.wake()  # as if a handler enqueued meanwhile: skip the hour-long pause
                raise ConnectionError("database went away")
            return await super().run_once()

    dispatcher = FlakyDatabaseDispatcher(
        database, {"sms": sms}, make_policy(poll_seconds=3600), clock=clock
    )
    message_id = await enqueue(database)
    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="bot.outbox"):
        task = asyncio.create_task(dispatcher.run(stop))
        await asyncio.wait_for(dispatcher.idle.wait(), timeout=10)
        stop.set()
        await asyncio.wait_for(task, timeout=10)

    assert "outbox round failed" in caplog.text
    assert [m.outbox_id for m in sms.sent] == [message_id]
