"""The Twilio SMS sender against a fake Messages API, and the segment pacer it waits on.

Every request goes through the real twilio-python client and aiohttp to
``tests.fake_twilio.FakeTwilio`` on 127.0.0.1; time for the pacer is a fake
clock whose sleep only records and advances, so nothing here really waits
(except the one timeout test, 50 ms against a server that never answers).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import socket
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from fake_twilio import FakeTwilio, Hang, RoutedTwilioHttpClient, TwilioFailure
from yarl import URL

from bot.channels.base import (
    OutgoingMessage,
    PermanentSendError,
    Sender,
    SendError,
    TransientSendError,
)
from bot.channels.twilio_sms import TwilioSmsSender, mask_address, twilio_sender_from_settings
from bot.pacing import SegmentPacer
from bot.settings import Settings
from nlp.sms_segments import segment_count, split_for_sms

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "5eb1b2c3d4e5f60718293a4b5c6d7e8f"
FROM_NUMBER = "+15005550006"
SERVICE_SID = "MG" + "a1" * 16
RESIDENT = "+8613812345678"
CALLBACK = "https://desk.example.gov.cn/sms/status"
BODY = "您的投诉已受理，受理编号：260001234。"
SID = re.compile(r"SM[0-9a-f]{32}")
# Eight sentences of 36 characters: 288 UCS-2 units, three parts at two segments each.
LONG_ZH = "".join(
    f"第{i}条：小区东门路灯已坏了三个星期，晚上出行很不安全，请相关部门尽快安排维修。"
    for i in range(8)
)


class FakeTime:
    """A monotonic clock that moves only when the pacer sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] = lambda: None

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.on_sleep()
        self.sleeps.append(seconds)
        self.now += seconds


def message(body: str = BODY, outbox_id: int = 1, recipient: str = RESIDENT) -> OutgoingMessage:
    return OutgoingMessage(outbox_id=outbox_id, channel="sms", recipient=recipient, body=body)


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio(ACCOUNT_SID, AUTH_TOKEN).serving() as fake:
        yield fake


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


MakeSender = Callable[..., TwilioSmsSender]


@pytest.fixture
async def make_sender(fake_twilio: FakeTwilio, fake_time: FakeTime) -> AsyncIterator[MakeSender]:
    """Build senders routed to the fake (override any argument); all closed afterwards."""
    senders: list[TwilioSmsSender] = []

    def make(**overrides: object) -> TwilioSmsSender:
        arguments: dict[str, object] = {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "from_number": FROM_NUMBER,
            "status_callback_url": CALLBACK,
            # Fast enough that only the pacing test ever waits.
            "pacer": SegmentPacer(1000.0, 10, clock=fake_time.clock, sleep=fake_time.sleep),
        }
        arguments.update(overrides)
        if "http_client" not in arguments:
            arguments["http_client"] = RoutedTwilioHttpClient(fake_twilio.url)
        sender = TwilioSmsSender(**arguments)  # type: ignore[arg-type]
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.close()


@pytest.fixture
def refused_origin() -> Iterator[URL]:
    """A local port that refuses connections: bound, never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield URL.build(scheme="http", host="127.0.0.1", port=sock.getsockname()[1])


# --- sending -----------------------------------------------------------------


async def test_send_posts_the_message_to_twilio_and_returns_its_sid(
    fake_twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    sender: Sender = make_sender()  # mypy checks it meets the protocol

    sid = await sender.send(message())

    assert sender.channel == "sms"
    [request] = fake_twilio.requests
    assert request.form == {
        "To": RESIDENT,
        "From": FROM_NUMBER,
        "Body": BODY,
        "StatusCallback": CALLBACK,
    }
    assert (request.account_sid, request.username, request.password) == (
        ACCOUNT_SID,
        ACCOUNT_SID,
        AUTH_TOKEN,
    )
    assert sid == fake_twilio.created[0]
    assert sid is not None and SID.fullmatch(sid)


@pytest.mark.parametrize("kind", ["edit", "photo", "location"])
async def test_only_text_goes_by_sms(
    fake_twilio: FakeTwilio, make_sender: MakeSender, kind: str
) -> None:
    with pytest.raises(PermanentSendError, match=f"SMS cannot send a '{kind}' message"):
        await make_sender().send(replace(message(), kind=kind))
    assert fake_twilio.requests == []


async def test_messaging_service_sends_without_a_from_number(
    fake_twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    sender = make_sender(from_number=None, messaging_service_sid=SERVICE_SID)

    sid = await sender.send(message())

    [request] = fake_twilio.requests
    assert request.form == {
        "To": RESIDENT,
        "MessagingServiceSid": SERVICE_SID,
        "Body": BODY,
        "StatusCallback": CALLBACK,
    }
    assert sid == fake_twilio.created[0]


async def test_without_a_callback_url_none_is_sent(
    fake_twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    await make_sender(status_callback_url=None).send(message())

    assert "StatusCallback" not in fake_twilio.requests[0].form


async def test_body_within_max_segments_goes_as_one_concatenated_message(
    fake_twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    body = "中" * 268  # four UCS-2 segments exactly

    await make_sender(max_segments=4).send(message(body))

    assert fake_twilio.bodies == [body]


async def test_long_chinese_text_goes_as_ordered_numbered_parts(
    fake_twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    sender = make_sender(max_segments=2)

    sid = await sender.send(message(LONG_ZH))

    parts = split_for_sms(LONG_ZH, 2)
    assert len(parts) == 3
    assert fake_twilio.bodies == parts
    assert [body[:6] for body in fake_twilio.bodies] == ["(1/3) ", "(2/3) ", "(3/3) "]
    assert "".join(body[6:] for body in fake_twilio.bodies) == LONG_ZH
    assert all(segment_count(body) <= 2 for body in fake_twilio.bodies)
    # The row keeps the last part's SID: its delivery means the whole text arrived.
    assert sid == fake_twilio.created[-1]
    assert len(fake_twilio.created) == 3


async def test_retry_after_a_failed_part_resumes_at_that_part(
    fake_twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    sender = make_sender(max_segments=2)
    parts = split_for_sms(LONG_ZH, 2)
    fake_twilio.queue(None, TwilioFailure(503, 20500, "Internal Server Error"))

    with pytest.raises(TransientSendError, match="part 2 of 3"):
        await sender.send(message(LONG_ZH, outbox_id=7))
    assert fake_twilio.bodies == parts[:2]

    # Another row's long text starts from its own first part.
    await sender.send(message(LONG_ZH, outbox_id=8))
    sid = await sender.send(message(LONG_ZH, outbox_id=7))

    assert fake_twilio.bodies == [*parts[:2], *parts, *parts[1:]]
    assert sid == fake_twilio.created[-1]


async def test_permanent_failure_of_a_part_forgets_the_progress(
    fake_twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    sender = make_sender(max_segments=2)
    parts = split_for_sms(LONG_ZH, 2)
    fake_twilio.queue(None, TwilioFailure(400, 21610, "Attempt to send to unsubscribed recipient"))

    with pytest.raises(PermanentSendError):
        await sender.send(message(LONG_ZH))
    # Revived after the resident opted back in: the whole text again.
    await sender.send(message(LONG_ZH))

    assert fake_twilio.bodies == [*parts[:2], *parts]


# --- errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "unreachable", "opted_out"),
    [
        (TwilioFailure(400, 21610, "Attempt to send to unsubscribed recipient"), False, True),
        (TwilioFailure(400, 21610, "unsubscribed", problem_details=True), False, True),
        (TwilioFailure(400, 21211, "The 'To' number is not a valid phone number."), True, False),
        (TwilioFailure(400, 21614, "'To' number is not a valid mobile number"), True, False),
        (
            TwilioFailure(400, 21612, "The 'To' phone number is not currently reachable"),
            False,
            False,
        ),
        (TwilioFailure(400, 21617, "The concatenated message body exceeds 1600"), False, False),
        (TwilioFailure(401, 20003, "Authenticate"), False, False),
        (TwilioFailure(404, 20404, "The requested resource was not found"), False, False),
    ],
)
async def test_permanent_errors(
    fake_twilio: FakeTwilio,
    make_sender: MakeSender,
    failure: TwilioFailure,
    unreachable: bool,
    opted_out: bool,
) -> None:
    fake_twilio.fail_next(failure)

    with pytest.raises(PermanentSendError) as caught:
        await make_sender().send(message())

    assert (caught.value.unreachable, caught.value.opted_out) == (unreachable, opted_out)
    assert f"Twilio error {failure.code} (HTTP {failure.status})" in str(caught.value)
    assert fake_twilio.created == []


@pytest.mark.parametrize(
    "failure",
    [
        TwilioFailure(429, 20429, "Too Many Requests"),
        TwilioFailure(429, None),  # a rate limiter in front of the API, no Twilio body
        TwilioFailure(400, 21611, "This 'From' number has exceeded the maximum queued messages"),
        TwilioFailure(400, 30001, "Queue overflow"),
        TwilioFailure(500, 20500, "Internal Server Error"),
        TwilioFailure(500, None),
        TwilioFailure(502, None),
        TwilioFailure(503, 20503, "Service Unavailable", problem_details=True),
        TwilioFailure(503, None),
    ],
)
async def test_transient_errors(
    fake_twilio: FakeTwilio, make_sender: MakeSender, failure: TwilioFailure
) -> None:
    fake_twilio.fail_next(failure)
    sender = make_sender()

    with pytest.raises(TransientSendError) as caught:
        await sender.send(message())

    # Twilio's errors carry no headers through the library: no Retry-After to honour.
    assert caught.value.retry_after is None
    assert f"HTTP {failure.status}" in str(caught.value)
    # The failure was only for the next call.
    assert await sender.send(message()) == fake_twilio.created[0]


async def test_connection_refused_is_transient(
    make_sender: MakeSender, refused_origin: URL
) -> None:
    sender = make_sender(http_client=RoutedTwilioHttpClient(refused_origin))

    with pytest.raises(TransientSendError, match="network error calling Twilio"):
        await sender.send(message())


async def test_no_answer_within_the_request_timeout_is_transient(
    fake_twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    fake_twilio.queue(Hang())

    with pytest.raises(TransientSendError, match=r"did not answer within 0\.05s"):
        await make_sender(request_timeout_seconds=0.05).send(message())


async def test_the_recipients_number_is_masked_in_errors(
    fake_twilio: FakeTwilio, make_sender: MakeSender
) -> None:
    fake_twilio.fail_next(
        TwilioFailure(400, 21211, f"The 'To' number {RESIDENT} is not a valid phone number.")
    )

    with pytest.raises(PermanentSendError) as caught:
        await make_sender().send(message())

    assert RESIDENT not in str(caught.value)
    assert "+86138****5678" in str(caught.value)


@pytest.mark.parametrize(
    ("address", "masked"),
    [("+8613812345678", "+86138****5678"), ("+15005550006", "+150****0006"), ("12345", "****")],
)
def test_mask_address(address: str, masked: str) -> None:
    assert mask_address(address) == masked


async def test_the_auth_token_appears_in_no_error_and_no_log_record(
    fake_twilio: FakeTwilio,
    make_sender: MakeSender,
    refused_origin: URL,
    caplog: pytest.LogCaptureFixture,
) -> None:
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    sender = make_sender()
    offline = make_sender(http_client=RoutedTwilioHttpClient(refused_origin))
    # A proxy that echoes the request back is the worst case: the token is in the answer.
    fake_twilio.queue(
        None,
        TwilioFailure(500, 20500, f"upstream said: {AUTH_TOKEN} {credentials}"),
        TwilioFailure(400, 21211, f"bad 'To' {RESIDENT}, token {AUTH_TOKEN}"),
        TwilioFailure(401, 20003, "Authenticate"),
    )
    errors: list[SendError] = []

    with caplog.at_level(logging.DEBUG):
        await sender.send(message())
        for target in (sender, sender, sender, offline):
            with pytest.raises(SendError) as caught:
                await target.send(message())
            errors.append(caught.value)

    assert len(fake_twilio.requests) == 4
    texts = [caplog.text, *("".join(traceback.format_exception(error)) for error in errors)]
    assert "Twilio error 20500" in texts[1]
    for text in texts:
        assert AUTH_TOKEN not in text
        assert credentials not in text
    assert "[auth token]" in str(errors[0])


# --- pacing ------------------------------------------------------------------


async def test_sends_are_paced_in_segments(
    fake_twilio: FakeTwilio, make_sender: MakeSender, fake_time: FakeTime
) -> None:
    # One segment a second and a bucket of two: one two-segment message at once,
    # then one every two seconds.
    pacer = SegmentPacer(1.0, 2, clock=fake_time.clock, sleep=fake_time.sleep)
    sender = make_sender(pacer=pacer)
    requests_before_sleep: list[int] = []
    fake_time.on_sleep = lambda: requests_before_sleep.append(len(fake_twilio.requests))
    body = "Your complaint was received. " * 7  # 203 GSM-7 characters: two segments
    assert segment_count(body) == 2

    for outbox_id in (1, 2, 3):
        await sender.send(message(body, outbox_id=outbox_id))

    assert sum(fake_time.sleeps) == pytest.approx(4.0)
    assert fake_time.sleeps == pytest.approx([2.0, 2.0])
    # Each wait came before the request it paced.
    assert requests_before_sleep == [1, 2]
    assert len(fake_twilio.created) == 3


async def test_default_pacer_allows_one_full_message_at_a_time(
    make_sender: MakeSender,
) -> None:
    sender = make_sender(pacer=None, segments_per_second=2.5, max_segments=3)

    assert (sender.pacer.rate_per_second, sender.pacer.burst) == (2.5, 3)


async def test_pacer_spaces_requests_to_the_rate(fake_time: FakeTime) -> None:
    pacer = SegmentPacer(2.0, 4, clock=fake_time.clock, sleep=fake_time.sleep)

    await pacer.acquire(4)  # the full bucket: no wait
    await pacer.acquire(1)  # half a second for one token
    fake_time.now += 10  # a quiet spell refills the bucket, but only up to the burst
    await pacer.acquire(4)
    await pacer.acquire(2)

    assert fake_time.sleeps == pytest.approx([0.5, 1.0])


async def test_pacer_lets_an_oversized_request_overdraw_after_a_full_bucket(
    fake_time: FakeTime,
) -> None:
    pacer = SegmentPacer(1.0, 2, clock=fake_time.clock, sleep=fake_time.sleep)

    await pacer.acquire(5)  # bucket full: goes now, three tokens in debt
    await pacer.acquire(1)  # waits out the debt and one token

    assert fake_time.sleeps == pytest.approx([4.0])


async def test_a_cancelled_wait_spends_nothing(fake_time: FakeTime) -> None:
    cancel_sleeps = True

    async def sleep(seconds: float) -> None:
        # What the dispatcher's send timeout does to a sender waiting its turn.
        if cancel_sleeps:
            raise asyncio.CancelledError
        await fake_time.sleep(seconds)

    pacer = SegmentPacer(1.0, 1, clock=fake_time.clock, sleep=sleep)
    await pacer.acquire(1)
    with pytest.raises(asyncio.CancelledError):
        await pacer.acquire(1)
    cancel_sleeps = False
    fake_time.now += 1

    await pacer.acquire(1)  # the token that refilled is still there: no wait

    assert fake_time.sleeps == []


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-1.0, 1), (1.0, 0)])
def test_pacer_rejects_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        SegmentPacer(rate, burst)


# --- configuration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"messaging_service_sid": SERVICE_SID}, "not both"),
        ({"from_number": None}, "got none"),
        ({"from_number": ""}, "got none"),
        ({"from_number": None, "messaging_service_sid": "PN123"}, "starts with 'MG'"),
        ({"auth_token": ""}, "auth token"),
        ({"account_sid": ""}, "account SID"),
        ({"max_segments": 0}, "max_segments"),
        ({"max_segments": 11}, "max_segments"),
        ({"request_timeout_seconds": 0}, "request_timeout_seconds"),
        ({"status_callback_url": "/sms/status"}, "absolute http"),
    ],
)
def test_constructor_names_what_to_fix(overrides: dict[str, object], error: str) -> None:
    arguments: dict[str, object] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_number": FROM_NUMBER,
    }
    arguments.update(overrides)
    with pytest.raises(ValueError, match=re.escape(error)):
        TwilioSmsSender(**arguments)  # type: ignore[arg-type]


def settings(**values: Any) -> Settings:
    """Settings from these values only, not from a .env file."""
    return Settings(_env_file=None, **values)


@pytest.fixture
def no_twilio_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM_NUMBER",
        "TWILIO_MESSAGING_SERVICE_SID",
        "PUBLIC_BASE_URL",
        "SMS_SEGMENTS_PER_SECOND",
        "SMS_MAX_SEGMENTS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_twilio_environment")
async def test_sender_from_settings() -> None:
    sender = twilio_sender_from_settings(
        settings(
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_messaging_service_sid=SERVICE_SID,
            public_base_url="https://desk.example.gov.cn/desk/",
            sms_segments_per_second=10,
            sms_max_segments=3,
        )
    )
    assert sender is not None
    try:
        assert sender.status_callback_url == "https://desk.example.gov.cn/desk/sms/status"
        assert sender.max_segments == 3
        assert (sender.pacer.rate_per_second, sender.pacer.burst) == (10.0, 3)
    finally:
        await sender.close()


@pytest.mark.usefixtures("no_twilio_environment")
async def test_sender_from_settings_without_a_public_url_asks_for_no_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = twilio_sender_from_settings(
        settings(
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_from_number=FROM_NUMBER,
        )
    )
    assert sender is not None
    try:
        assert sender.status_callback_url is None
        assert sender.max_segments == 4
        assert sender.pacer.rate_per_second == 1.0
        assert "PUBLIC_BASE_URL is not set" in caplog.text
    finally:
        await sender.close()


@pytest.mark.usefixtures("no_twilio_environment")
def test_no_twilio_settings_means_no_sender() -> None:
    assert twilio_sender_from_settings(settings()) is None


@pytest.mark.usefixtures("no_twilio_environment")
@pytest.mark.parametrize(
    ("values", "error"),
    [
        ({"twilio_account_sid": ACCOUNT_SID}, "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"),
        ({"twilio_auth_token": AUTH_TOKEN}, "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"),
        ({"twilio_account_sid": ACCOUNT_SID, "twilio_auth_token": AUTH_TOKEN}, "got none"),
    ],
)
def test_half_a_twilio_configuration_is_refused(values: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        twilio_sender_from_settings(settings(**values))


@pytest.mark.parametrize(
    ("field", "value"), [("sms_segments_per_second", 0), ("sms_max_segments", 11)]
)
def test_sms_settings_are_bounded(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        settings(**{field: value})
