"""The Telegram sender against a fake Bot API, its flood-limit pacer, and the outbox.

Every call goes through the real python-telegram-bot ``Bot`` to
``tests.fake_telegram.FakeBotApi`` at PTB's request layer, so PTB builds each
request and turns each error body into its exception exactly as it would
Telegram's. Time for the pacer is a fake clock whose sleep only records and
advances, so nothing here really waits (except the one timeout test, 10 ms
against a call that never answers).
"""

from __future__ import annotations

import logging
import random
import re
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from fake_telegram import FAKE_TOKEN, FAKE_USERNAME, FakeBotApi, Timeouts
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, InvalidToken, NetworkError, TimedOut

from bot.channels.base import (
    OutgoingMessage,
    PermanentSendError,
    Sender,
    SendError,
    TransientSendError,
)
from bot.channels.telegram_sender import (
    ChatPacer,
    TelegramChatMigrated,
    TelegramSender,
    bot_api_base_url,
    inline_keyboard,
    telegram_sender_from_settings,
)
from bot.outbox import DispatcherPolicy, OutboxDispatcher
from bot.settings import Settings
from nlp.telegram_text import split_message
from storage.models import utcnow
from storage.unit_of_work import Database

RESIDENT_CHAT = 424242
DEPARTMENT_CHAT = -1001234567890
TOPIC = 77
BODY = "您的投诉已受理，受理编号：260001234。"
BUTTONS = [
    [{"text": "认领", "data": "t:260001234:claim"}, {"text": "退回", "data": "t:260001234:return"}]
]
SECRET = FAKE_TOKEN.partition(":")[2]
# Eight paragraphs of 1,100 characters: 8,806 with the blank lines, three messages.
LONG_ZH = "\n\n".join(f"第{i}段。" + "路灯坏了，晚上出行不安全。" * 84 for i in range(8))


class FakeTime:
    """A monotonic clock that moves only when the pacer sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def message(
    body: str = BODY,
    *,
    outbox_id: int = 1,
    recipient: int | str = RESIDENT_CHAT,
    buttons: list[list[dict[str, str]]] | None = None,
    thread_id: int | None = None,
) -> OutgoingMessage:
    return OutgoingMessage(
        outbox_id=outbox_id,
        channel="telegram",
        recipient=str(recipient),
        body=body,
        buttons=buttons,
        thread_id=thread_id,
    )


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def fake(fake_time: FakeTime) -> Iterator[FakeBotApi]:
    api = FakeBotApi(clock=fake_time.clock)
    yield api
    api.assert_no_unexpected_calls()


@pytest.fixture
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """PTB 22's RetryAfter warns when built unless this is set; -W error makes that fatal."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


MakeSender = Callable[..., TelegramSender]


@pytest.fixture
async def make_sender(fake: FakeBotApi, fake_time: FakeTime) -> AsyncIterator[MakeSender]:
    """Build senders talking to the fake (override any argument); all closed afterwards."""
    senders: list[TelegramSender] = []

    def make(**overrides: Any) -> TelegramSender:
        arguments: dict[str, Any] = {
            "token": FAKE_TOKEN,
            "request": fake,
            # Fast enough that only the pacing tests ever wait.
            "pacer": ChatPacer(
                # 1,000 a second: faster makes the fake clock's steps vanish in
                # float rounding (1000.0 + 1e-15 == 1000.0).
                overall_per_second=1000.0,
                private_per_second=1000.0,
                group_per_minute=60_010,
                group_burst=10,
                clock=fake_time.clock,
                sleep=fake_time.sleep,
            ),
        }
        arguments.update(overrides)
        sender = TelegramSender(**arguments)
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.close()


# --- sending -----------------------------------------------------------------


async def test_send_reaches_the_bot_api_with_thread_and_keyboard(
    fake: FakeBotApi, make_sender: MakeSender
) -> None:
    sender: Sender = make_sender(request_timeout_seconds=12.5)  # mypy checks the protocol

    first = await sender.send(message(recipient=DEPARTMENT_CHAT, thread_id=TOPIC, buttons=BUTTONS))
    second = await sender.send(message("第二条", recipient=RESIDENT_CHAT))

    assert sender.channel == "telegram"
    assert [call.method for call in fake.calls] == ["sendMessage", "sendMessage"]
    assert fake.sent_messages()[0] == {
        "chat_id": DEPARTMENT_CHAT,
        "text": BODY,
        "message_thread_id": TOPIC,
        "reply_markup": {
            "inline_keyboard": [
                [
                    {"text": "认领", "callback_data": "t:260001234:claim"},
                    {"text": "退回", "callback_data": "t:260001234:return"},
                ]
            ]
        },
        # Plain text (no parse_mode) and no link preview.
        "link_preview_options": {"is_disabled": True},
    }
    assert fake.sent_messages()[1] == {
        "chat_id": RESIDENT_CHAT,
        "text": "第二条",
        "link_preview_options": {"is_disabled": True},
    }
    # The fake's message ids, as strings.
    assert (first, second) == ("1", "2")
    assert fake.timeouts == [Timeouts(12.5, 12.5, 12.5, 12.5)] * 2


# --- edits and attachments ----------------------------------------------------


def edit(body: str, edit_message_id: str | None, buttons: Any = None) -> OutgoingMessage:
    return replace(
        message(body, outbox_id=2, recipient=DEPARTMENT_CHAT, buttons=buttons),
        kind="edit",
        edit_message_id=edit_message_id,
    )


async def test_an_edit_replaces_text_and_keyboard_and_no_buttons_removes_it(
    fake: FakeBotApi, make_sender: MakeSender
) -> None:
    sender = make_sender()
    sent = await sender.send(message(recipient=DEPARTMENT_CHAT, buttons=BUTTONS))
    assert sent is not None

    assert await sender.send(edit("已签收", sent, BUTTONS[:1])) == sent
    assert fake.shown(DEPARTMENT_CHAT, int(sent))[0] == "已签收"
    assert await sender.send(edit("已办结", sent)) == sent

    text, markup = fake.shown(DEPARTMENT_CHAT, int(sent))
    assert (text, markup) == ("已办结", None)
    assert "reply_markup" not in fake.calls_to("editMessageText")[-1]


async def test_an_edit_telegram_finds_unchanged_is_done_and_one_of_nothing_is_dead(
    fake: FakeBotApi, make_sender: MakeSender
) -> None:
    sender = make_sender()
    sent = await sender.send(message(recipient=DEPARTMENT_CHAT))
    assert sent is not None

    # A retried edit that had gone through: Telegram says "not modified".
    assert await sender.send(edit(BODY, sent)) == sent
    with pytest.raises(PermanentSendError, match="never sent") as never_sent:
        await sender.send(edit("已签收", None))
    with pytest.raises(PermanentSendError, match=r"(?i)message to edit not found") as gone:
        await sender.send(edit("已签收", "999"))
    # A missing message says nothing about whether the chat can be reached.
    assert not never_sent.value.unreachable and not gone.value.unreachable
    with pytest.raises(PermanentSendError, match="cannot be split"):
        await sender.send(edit("长" * 5000, sent))


async def test_attachments_are_re_sent_by_file_id_and_a_location_as_a_titled_venue(
    fake: FakeBotApi, make_sender: MakeSender
) -> None:
    sender = make_sender()
    base = message("受理编号 260001234 群众提供的照片", recipient=DEPARTMENT_CHAT, thread_id=TOPIC)
    await sender.send(replace(base, kind="photo", payload={"file_id": "AgAC-photo"}))
    await sender.send(replace(base, kind="document", payload={"file_id": "BQAC-doc"}))
    await sender.send(
        replace(base, kind="location", payload={"latitude": 31.23, "longitude": 121.47})
    )

    [photo] = fake.calls_to("sendPhoto")
    assert (photo["photo"], photo["caption"], photo["message_thread_id"]) == (
        "AgAC-photo",
        base.body,
        TOPIC,
    )
    assert fake.calls_to("sendDocument")[0]["document"] == "BQAC-doc"
    [venue] = fake.calls_to("sendVenue")
    assert (venue["latitude"], venue["longitude"], venue["title"]) == (31.23, 121.47, base.body)
    with pytest.raises(PermanentSendError, match="needs a file_id"):
        await sender.send(replace(base, kind="photo", payload={}))
    with pytest.raises(PermanentSendError, match="unknown message kind"):
        await sender.send(replace(base, kind="sticker"))


async def test_markup_characters_go_as_plain_text(
    fake: FakeBotApi, make_sender: MakeSender
) -> None:
    body = "请访问 https://www.gov.cn/a_b*c 查询 <b>编号</b> [1](x) `code` \\"

    await make_sender().send(message(body))

    [sent] = fake.sent_messages()
    assert sent["text"] == body
    assert "parse_mode" not in sent


async def test_long_text_goes_as_ordered_parts_with_the_buttons_on_the_last(
    fake: FakeBotApi, make_sender: MakeSender
) -> None:
    message_id = await make_sender().send(
        message(LONG_ZH, recipient=DEPARTMENT_CHAT, thread_id=TOPIC, buttons=BUTTONS)
    )

    parts = split_message(LONG_ZH)
    assert len(parts) == 3
    sent = fake.sent_messages()
    assert [params["text"] for params in sent] == parts
    assert "\n\n".join(parts) == LONG_ZH  # cut at blank lines, nothing lost
    assert [params.get("message_thread_id") for params in sent] == [TOPIC] * 3
    assert ["reply_markup" in params for params in sent] == [False, False, True]
    # The row keeps the last part's id: its arrival means the whole text arrived.
    assert message_id == "3"


async def test_retry_after_a_failed_part_resumes_at_that_part(
    fake: FakeBotApi, make_sender: MakeSender
) -> None:
    sender = make_sender()
    parts = split_message(LONG_ZH)
    fake.answer_next("sendMessage")
    fake.fail_next("sendMessage", 502, "Bad Gateway")

    with pytest.raises(TransientSendError, match="part 2 of 3"):
        await sender.send(message(LONG_ZH, outbox_id=7))
    assert fake.sent_texts() == parts[:1]

    # Another row's long text starts from its own first part.
    await sender.send(message(LONG_ZH, outbox_id=8))
    message_id = await sender.send(message(LONG_ZH, outbox_id=7))

    assert fake.sent_texts() == [parts[0], *parts, *parts[1:]]
    assert message_id == "6"


async def test_permanent_failure_of_a_part_forgets_the_progress(
    fake: FakeBotApi, make_sender: MakeSender
) -> None:
    sender = make_sender()
    parts = split_message(LONG_ZH)
    fake.answer_next("sendMessage")
    fake.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")

    with pytest.raises(PermanentSendError, match=re.escape("(part 2 of 3)")):
        await sender.send(message(LONG_ZH))
    # Revived after the resident unblocked the bot: the whole text again.
    await sender.send(message(LONG_ZH))

    assert fake.sent_texts() == [parts[0], *parts]


# --- buttons and addresses -----------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "t:" + "9" * 62,  # 64 bytes exactly
        "选" * 21,  # 63 bytes: three per character
    ],
)
async def test_callback_data_up_to_64_bytes_is_sent(
    fake: FakeBotApi, make_sender: MakeSender, data: str
) -> None:
    await make_sender().send(message(buttons=[[{"text": "办理", "data": data}]]))

    [sent] = fake.sent_messages()
    assert sent["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == data


@pytest.mark.parametrize(
    ("data", "size"),
    [("t:" + "9" * 63, 65), ("选" * 22, 66), ("t:260001234:" + "转办" * 9, 66)],
)
async def test_callback_data_over_64_bytes_is_refused_before_anything_is_sent(
    fake: FakeBotApi, make_sender: MakeSender, data: str, size: int
) -> None:
    buttons = [
        [{"text": "认领", "data": "t:1:claim"}],
        [{"text": "办", "data": "ok"}, {"text": "转办", "data": data}],
    ]

    with pytest.raises(PermanentSendError) as caught:
        await make_sender().send(message(LONG_ZH, buttons=buttons))

    assert str(caught.value) == (
        f"button '转办' (row 2, position 2): callback data {data!r} is {size} bytes in UTF-8; "
        "Telegram allows at most 64"
    )
    assert not caught.value.unreachable
    assert fake.calls == []


@pytest.mark.parametrize(
    ("button", "error"),
    [
        ({"text": "", "data": "t:1:claim"}, "has no text"),
        ({"text": "认领"}, "has no callback data"),
    ],
)
def test_malformed_buttons_are_refused(button: dict[str, str], error: str) -> None:
    with pytest.raises(PermanentSendError, match=error):
        inline_keyboard([[button]])


def test_empty_rows_are_dropped() -> None:
    assert inline_keyboard([]) is None
    assert inline_keyboard([[]]) is None
    keyboard = inline_keyboard([[], [{"text": "a", "data": "b"}]])
    assert keyboard is not None
    assert [[key.callback_data for key in row] for row in keyboard.inline_keyboard] == [["b"]]


@pytest.mark.parametrize("recipient", ["@someone", "12 34", "+8613812345678", "", "1.5"])
async def test_a_recipient_that_is_no_chat_id_is_unreachable(
    fake: FakeBotApi, make_sender: MakeSender, recipient: str
) -> None:
    with pytest.raises(PermanentSendError, match="is not a Telegram chat id") as caught:
        await make_sender().send(message(recipient=recipient))

    assert caught.value.unreachable
    assert fake.calls == []


@pytest.mark.parametrize("body", ["", "  \n "])
async def test_an_empty_body_is_refused(
    fake: FakeBotApi, make_sender: MakeSender, body: str
) -> None:
    with pytest.raises(PermanentSendError, match="body is empty"):
        await make_sender().send(message(body))

    assert fake.calls == []


# --- errors ------------------------------------------------------------------


@pytest.mark.usefixtures("ptb_timedelta")
async def test_flood_control_is_transient_with_telegrams_retry_after(
    fake: FakeBotApi, make_sender: MakeSender
) -> None:
    sender = make_sender()
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", {"retry_after": 7})

    with pytest.raises(TransientSendError) as caught:
        await sender.send(message())

    assert caught.value.retry_after == 7.0
    assert str(caught.value) == "Telegram flood control: retry after 7s"
    # The failure was only for the next call.
    assert await sender.send(message()) == "1"


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_retry_after_without_ptb_timedelta_is_read_too(
    fake: FakeBotApi, make_sender: MakeSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PTB 22's default: an int, with a deprecation warning (what production sees).
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 3", {"retry_after": 3})

    with pytest.raises(TransientSendError) as caught:
        await make_sender().send(message())

    assert caught.value.retry_after == 3.0


@pytest.mark.parametrize(
    "description",
    [
        "Forbidden: bot was blocked by the user",
        "Forbidden: user is deactivated",
        "Forbidden: bot was kicked from the supergroup chat",
        "Forbidden: bot can't initiate conversation with a user",
    ],
)
async def test_forbidden_marks_the_chat_unreachable(
    fake: FakeBotApi, make_sender: MakeSender, description: str
) -> None:
    fake.fail_next("sendMessage", 403, description)

    with pytest.raises(PermanentSendError) as caught:
        await make_sender().send(message())

    assert caught.value.unreachable
    assert not caught.value.opted_out
    assert str(caught.value) == f"Telegram refused chat {RESIDENT_CHAT}: {description}"


@pytest.mark.parametrize(
    ("description", "unreachable", "text"),
    [
        (
            "Bad Request: chat not found",
            True,
            "Telegram has no chat -1001234567890 the bot can reach: Chat not found",
        ),
        ("Bad Request: PEER_ID_INVALID", True, "Telegram has no chat -1001234567890"),
        (
            "Bad Request: message thread not found",
            False,
            "forum topic 77 of chat -1001234567890 is deleted or closed: Message thread not found; "
            "re-bind the department's topic",
        ),
        (
            "Bad Request: TOPIC_CLOSED",
            False,
            "forum topic 77 of chat -1001234567890 is deleted or closed",
        ),
        (
            "Bad Request: not enough rights to send text messages to the chat",
            False,
            "Telegram refused the message to chat -1001234567890: "
            "Not enough rights to send text messages to the chat",
        ),
    ],
)
async def test_bad_requests_are_permanent_with_the_reason(
    fake: FakeBotApi, make_sender: MakeSender, description: str, unreachable: bool, text: str
) -> None:
    fake.fail_next("sendMessage", 400, description)

    with pytest.raises(PermanentSendError) as caught:
        await make_sender().send(message(recipient=DEPARTMENT_CHAT, thread_id=TOPIC))

    assert caught.value.unreachable is unreachable
    assert str(caught.value).startswith(text)


async def test_a_group_upgraded_to_a_supergroup_names_the_new_chat(
    fake: FakeBotApi, make_sender: MakeSender
) -> None:
    fake.fail_next(
        "sendMessage",
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        {"migrate_to_chat_id": -1009876543210},
    )

    with pytest.raises(TelegramChatMigrated) as caught:
        await make_sender().send(message(recipient=-4567))

    assert (caught.value.old_chat_id, caught.value.new_chat_id) == (-4567, -1009876543210)
    assert str(caught.value) == (
        "Telegram chat -4567 was upgraded to a supergroup and is now chat -1009876543210: "
        "re-bind whatever used -4567 to -1009876543210"
    )
    assert isinstance(caught.value, PermanentSendError)
    assert not caught.value.unreachable


@pytest.mark.parametrize(("status", "description"), [(401, "Unauthorized"), (404, "Not Found")])
async def test_a_rejected_token_is_permanent_and_names_the_setting(
    fake: FakeBotApi, make_sender: MakeSender, status: int, description: str
) -> None:
    fake.fail_next("sendMessage", status, description)

    with pytest.raises(PermanentSendError, match="check TELEGRAM_BOT_TOKEN") as caught:
        await make_sender().send(message())

    assert not caught.value.unreachable


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (lambda fake: fake.raise_next("sendMessage", TimedOut()), "the Bot API timed out"),
        (
            lambda fake: fake.raise_next("sendMessage", ConnectionRefusedError(111, "refused")),
            "network error calling the Bot API: Unknown error in HTTP implementation",
        ),
        (
            lambda fake: fake.raise_next("sendMessage", NetworkError("httpx.ConnectError: boom")),
            "network error calling the Bot API: httpx.ConnectError: boom",
        ),
        (lambda fake: fake.fail_next("sendMessage", 502, "Bad Gateway"), "network error"),
        (lambda fake: fake.fail_next("sendMessage", 500, "Internal Server Error"), "network error"),
    ],
)
async def test_network_errors_are_transient(
    fake: FakeBotApi,
    make_sender: MakeSender,
    script: Callable[[FakeBotApi], None],
    error: str,
) -> None:
    sender = make_sender()
    script(fake)

    with pytest.raises(TransientSendError, match=re.escape(error)) as caught:
        await sender.send(message())

    assert caught.value.retry_after is None
    assert await sender.send(message()) == "1"


async def test_no_answer_within_the_request_timeout_is_transient(
    fake: FakeBotApi, make_sender: MakeSender
) -> None:
    fake.hang_next("sendMessage")

    with pytest.raises(TransientSendError, match=r"did not answer within 0\.01s"):
        await make_sender(request_timeout_seconds=0.01).send(message())


async def test_the_token_appears_in_no_error_and_no_log_record(
    fake: FakeBotApi, caplog: pytest.LogCaptureFixture, ptb_timedelta: None
) -> None:
    url = f"https://api.telegram.org/bot{FAKE_TOKEN}/sendMessage"
    errors: list[BaseException] = []
    # bot.cli.main quiets httpx for the whole process: a CLI test that ran
    # earlier must not hide here what httpx would log.
    caplog.set_level(logging.DEBUG, logger="httpx")

    with caplog.at_level(logging.DEBUG):
        # PTB logs the API URL, token included, when the Bot is built.
        sender = TelegramSender(token=FAKE_TOKEN, request=fake)
        await sender.initialize()
        # A proxy that echoes the request is the worst case: the token is in the answer.
        fake.fail_next("sendMessage", 502, f"Bad Gateway: upstream {url}")
        fake.fail_next("sendMessage", 400, f"Bad Request: wrong {SECRET}")
        fake.fail_next("sendMessage", 401, f"Unauthorized: {FAKE_TOKEN}")
        fake.raise_next("sendMessage", OSError(f"cannot connect to {url}"))
        fake.fail_next("sendMessage", 429, f"Too Many Requests: {url}", {"retry_after": 1})
        for _ in range(5):
            with pytest.raises(SendError) as caught:
                await sender.send(message())
            errors.append(caught.value)
        # What httpx logs for every request.
        logging.getLogger("httpx").info('HTTP Request: POST %s "HTTP/1.1 200 OK"', url)
        await sender.close()

    texts = [caplog.text, *("".join(traceback.format_exception(error)) for error in errors)]
    assert "Set Bot API URL: https://api.telegram.org/bot[bot token]" in caplog.text
    assert "HTTP Request: POST https://api.telegram.org/bot[bot token]/sendMessage" in caplog.text
    assert "[bot token]" in str(errors[0])
    for text in texts:
        assert FAKE_TOKEN not in text
        assert SECRET not in text


# --- pacing ------------------------------------------------------------------


def paced_sender(make_sender: MakeSender, fake_time: FakeTime, **limits: Any) -> TelegramSender:
    return make_sender(pacer=ChatPacer(clock=fake_time.clock, sleep=fake_time.sleep, **limits))


def offsets(fake: FakeBotApi) -> list[float]:
    """When each call reached the fake, in seconds after the first."""
    return [moment - fake.times[0] for moment in fake.times]


async def test_a_private_chat_gets_one_message_a_second(
    fake: FakeBotApi, make_sender: MakeSender, fake_time: FakeTime
) -> None:
    sender = paced_sender(make_sender, fake_time)

    for outbox_id, chat in enumerate(
        [RESIDENT_CHAT, RESIDENT_CHAT + 1, RESIDENT_CHAT, RESIDENT_CHAT]
    ):
        await sender.send(message(outbox_id=outbox_id, recipient=chat))

    # The other chat only waits for the bot's overall rate (30 a second).
    assert offsets(fake) == pytest.approx([0.0, 1 / 30, 1.0, 2.0])


async def test_a_group_gets_a_small_burst_and_never_more_than_20_a_minute(
    fake: FakeBotApi, make_sender: MakeSender, fake_time: FakeTime
) -> None:
    sender = paced_sender(make_sender, fake_time)

    for outbox_id in range(45):
        await sender.send(message(outbox_id=outbox_id, recipient=DEPARTMENT_CHAT))

    times = offsets(fake)
    assert times[:3] == pytest.approx([0.0, 1 / 30, 2 / 30])  # the burst of three
    assert times[3] == pytest.approx(60 / 17)  # then 17 a minute
    most_in_a_minute = max(
        sum(1 for other in times if start <= other < start + 60) for start in times
    )
    # The burst and 17 refills a minute: 20 when the minute ends on a refill.
    assert 19 <= most_in_a_minute <= 20
    # Paced, not starved: 42 messages after the burst at 17 a minute.
    assert times[-1] == pytest.approx(42 * 60 / 17)


async def test_the_bot_sends_at_most_30_messages_a_second_overall(
    fake: FakeBotApi, make_sender: MakeSender, fake_time: FakeTime
) -> None:
    sender = paced_sender(make_sender, fake_time)

    for chat in range(1, 62):
        await sender.send(message(outbox_id=chat, recipient=chat))

    assert offsets(fake)[-1] == pytest.approx(60 / 30)
    assert sum(fake_time.sleeps) == pytest.approx(2.0)


async def test_the_pacer_remembers_a_bounded_number_of_chats(fake_time: FakeTime) -> None:
    pacer = ChatPacer(max_chats=3, clock=fake_time.clock, sleep=fake_time.sleep)

    for chat in (1, 2, 3, 1, 4):  # 1 is used again, so 2 is the least recent
        await pacer.acquire(chat)
    assert pacer.tracked_chats == 3
    assert pacer.bucket(2) is None
    assert all(pacer.bucket(chat) is not None for chat in (1, 3, 4))

    for chat in range(-1, -2001, -1):
        await pacer.acquire(chat)
    assert pacer.tracked_chats == 3


@pytest.mark.parametrize(
    "limits",
    [
        {"group_burst": 0},
        {"group_burst": 20},
        {"max_chats": 0},
        {"private_per_second": 0},
        {"overall_per_second": -1},
    ],
)
def test_pacer_rejects_nonsense(limits: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        ChatPacer(**limits)


# --- the outbox --------------------------------------------------------------


class FakeClock:
    """The dispatcher's clock, a little ahead of the repository's real one."""

    def __init__(self) -> None:
        self.now = utcnow() + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now


def dispatcher_for(database: Database, sender: TelegramSender) -> OutboxDispatcher:
    policy = DispatcherPolicy(
        batch_size=10,
        max_attempts=3,
        lease=timedelta(seconds=60),
        base_backoff_seconds=2.0,
        max_backoff_seconds=100.0,
        poll_seconds=3600.0,
    )
    return OutboxDispatcher(
        database, {"telegram": sender}, policy, clock=FakeClock(), rng=random.Random(5)
    )


async def test_a_blocked_bot_marks_the_residents_contact_unreachable(
    database: Database, fake: FakeBotApi, make_sender: MakeSender
) -> None:
    address = str(RESIDENT_CHAT)
    async with database.transaction() as uow:
        await uow.directory.ensure_contact("telegram", address)
        row = await uow.outbox.enqueue(channel="telegram", recipient=address, body=BODY)
        row_id = row.id
    fake.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")

    assert await dispatcher_for(database, make_sender()).run_once() == 1

    async with database.reading() as uow:
        stored = await uow.outbox.get(row_id)
        contact = await uow.directory.contact("telegram", address)
    assert stored is not None and contact is not None
    assert (stored.status, stored.attempts) == ("dead", 1)
    assert stored.last_error == (
        f"Telegram refused chat {RESIDENT_CHAT}: Forbidden: bot was blocked by the user"
    )
    assert contact.unreachable


async def test_a_department_notice_goes_through_the_outbox_to_its_topic(
    database: Database, fake: FakeBotApi, make_sender: MakeSender
) -> None:
    async with database.transaction() as uow:
        row = await uow.outbox.enqueue(
            channel="telegram",
            recipient=str(DEPARTMENT_CHAT),
            thread_id=TOPIC,
            body=BODY,
            purpose="department",
            buttons=BUTTONS,
        )
        row_id = row.id

    assert await dispatcher_for(database, make_sender()).run_once() == 1

    async with database.reading() as uow:
        stored = await uow.outbox.get(row_id)
    assert stored is not None
    assert (stored.status, stored.provider_message_id) == ("sent", "1")
    [sent] = fake.sent_messages()
    assert (sent["chat_id"], sent["message_thread_id"]) == (DEPARTMENT_CHAT, TOPIC)
    assert sent["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "t:260001234:claim"


# --- lifecycle and configuration -------------------------------------------


async def test_initialize_checks_the_token_and_close_shuts_the_request(
    fake: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    sender = TelegramSender(token=FAKE_TOKEN, request=fake)
    assert sender.username is None

    with caplog.at_level(logging.INFO):
        await sender.initialize()
    await sender.close()
    await sender.close()

    assert [call.method for call in fake.calls] == ["getMe"]
    assert sender.username == FAKE_USERNAME
    assert f"ready as @{FAKE_USERNAME}" in caplog.text
    assert (fake.initialize_calls, fake.shutdown_calls) == (1, 1)


async def test_initialize_refuses_a_rejected_token(fake: FakeBotApi) -> None:
    sender = TelegramSender(token=FAKE_TOKEN, request=fake)
    fake.fail_next("getMe", 401, "Unauthorized")

    try:
        with pytest.raises(ValueError, match="rejected the bot token") as caught:
            await sender.initialize()
    finally:
        await sender.close()

    assert "TELEGRAM_BOT_TOKEN" in str(caught.value)
    assert SECRET not in str(caught.value)


async def test_initialize_tolerates_an_unreachable_bot_api(
    fake: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    sender = TelegramSender(token=FAKE_TOKEN, request=fake)
    fake.raise_next("getMe", TimedOut())

    try:
        await sender.initialize()
    finally:
        await sender.close()

    assert sender.username is None
    assert "could not check the bot token with getMe (TimedOut" in caplog.text


@pytest.mark.parametrize(
    ("server", "base_url"),
    [
        ("https://api.telegram.org", "https://api.telegram.org/bot"),
        ("https://api.telegram.org/bot", "https://api.telegram.org/bot"),
        ("http://tg.internal:8081/", "http://tg.internal:8081/bot"),
        ("http://tg.internal:8081/telegram/", "http://tg.internal:8081/telegram/bot"),
    ],
)
def test_bot_api_base_url(server: str, base_url: str) -> None:
    assert bot_api_base_url(server) == base_url


@pytest.mark.parametrize(
    "server", ["tg.internal:8081", "/bot", "ftp://tg.internal", "https://x/?a=1"]
)
def test_bot_api_base_url_refuses_nonsense(server: str) -> None:
    with pytest.raises(ValueError, match="TELEGRAM_API_BASE_URL"):
        bot_api_base_url(server)


async def test_a_self_hosted_bot_api_server_gets_the_requests(fake_time: FakeTime) -> None:
    fake = FakeBotApi(base_url="http://tg.internal:8081/bot", clock=fake_time.clock)
    sender = TelegramSender(token=FAKE_TOKEN, api_base_url="http://tg.internal:8081", request=fake)
    try:
        assert await sender.send(message()) == "1"
    finally:
        await sender.close()


@pytest.mark.parametrize(
    "token", ["", "no-colon", f" {FAKE_TOKEN}", f"{FAKE_TOKEN}\n", "abc:def", f"{FAKE_TOKEN}!"]
)
def test_a_malformed_token_is_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(ValueError, match="TELEGRAM_BOT_TOKEN") as caught:
        TelegramSender(token=token, request=FakeBotApi())

    assert SECRET not in str(caught.value)


def settings(**values: Any) -> Settings:
    """Settings from these values only, not from a .env file."""
    return Settings(_env_file=None, **values)


@pytest.fixture
def no_telegram_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_API_BASE_URL", "TELEGRAM_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_telegram_environment")
def test_no_token_means_no_sender() -> None:
    assert telegram_sender_from_settings(settings()) is None
    assert telegram_sender_from_settings(settings(telegram_bot_token="")) is None


@pytest.mark.usefixtures("no_telegram_environment")
async def test_sender_from_settings(fake_time: FakeTime) -> None:
    fake = FakeBotApi(base_url="http://tg.internal:8081/bot", clock=fake_time.clock)
    sender = telegram_sender_from_settings(
        settings(telegram_bot_token=FAKE_TOKEN, telegram_api_base_url="http://tg.internal:8081"),
        request=fake,
    )
    assert sender is not None
    try:
        assert sender.channel == "telegram"
        assert sender.paced
        assert sender.api_base_url == "http://tg.internal:8081/bot"
        assert await sender.send(message()) == "1"
    finally:
        await sender.close()
    assert fake.shutdown_calls == 1


@pytest.mark.usefixtures("no_telegram_environment")
async def test_sender_from_settings_defaults_to_telegrams_server() -> None:
    sender = telegram_sender_from_settings(settings(telegram_bot_token=FAKE_TOKEN))
    assert sender is not None
    try:
        assert sender.api_base_url == "https://api.telegram.org/bot"
    finally:
        await sender.close()


# --- the fake itself ---------------------------------------------------------


async def test_the_fake_answers_what_the_update_handling_calls(fake: FakeBotApi) -> None:
    bot = Bot(FAKE_TOKEN, request=fake, get_updates_request=fake)
    async with bot:
        assert bot.username == FAKE_USERNAME
        sent = await bot.send_message(chat_id=DEPARTMENT_CHAT, text="工单", message_thread_id=TOPIC)
        edited = await bot.edit_message_text(
            "已认领", chat_id=DEPARTMENT_CHAT, message_id=sent.message_id
        )
        answered = await bot.answer_callback_query("query-1", text="已认领")
        webhook_set = await bot.set_webhook(
            "https://desk.example.gov.cn/telegram", secret_token="s3cret"
        )
        info = await bot.get_webhook_info()
        webhook_deleted = await bot.delete_webhook()

    assert sent.chat.type == "supergroup" and sent.message_thread_id == TOPIC
    assert (edited.message_id, edited.text) == (sent.message_id, "已认领")  # type: ignore[union-attr]
    assert answered and webhook_set and webhook_deleted
    assert info.url == "https://desk.example.gov.cn/telegram"
    assert [call.method for call in fake.calls] == [
        "getMe",
        "sendMessage",
        "editMessageText",
        "answerCallbackQuery",
        "setWebhook",
        "getWebhookInfo",
        "deleteWebhook",
    ]
    assert fake.calls_to("setWebhook")[0]["secret_token"] == "s3cret"


async def test_the_fake_fails_loudly_on_a_method_it_does_not_know(fake: FakeBotApi) -> None:
    bot = Bot(FAKE_TOKEN, request=fake, get_updates_request=fake)

    # PTB wraps whatever the request layer raises, so the fake also keeps a record.
    with pytest.raises(NetworkError, match="UnexpectedApiCall"):
        await bot.delete_message(chat_id=RESIDENT_CHAT, message_id=1)

    assert fake.unexpected == ["deleteMessage"]
    with pytest.raises(AssertionError, match="deleteMessage"):
        fake.assert_no_unexpected_calls()
    fake.unexpected.clear()


async def test_the_fake_refuses_what_telegram_refuses(fake: FakeBotApi) -> None:
    bot = Bot(FAKE_TOKEN, request=fake, get_updates_request=fake)

    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(chat_id=RESIDENT_CHAT, text="x" * 4097)
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(chat_id=RESIDENT_CHAT, text=" ")
    with pytest.raises(BadRequest, match="Button_data_invalid"):  # PTB recases it
        await bot.send_message(
            chat_id=RESIDENT_CHAT,
            text="hi",
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton("a", callback_data="x" * 65)]]
            ),
        )
    wrong = Bot(FAKE_TOKEN.replace("AAH", "AAX"), request=fake, get_updates_request=fake)
    with pytest.raises(InvalidToken, match="Not Found"):
        await wrong.send_message(chat_id=RESIDENT_CHAT, text="hi")
