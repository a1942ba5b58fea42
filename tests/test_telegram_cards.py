"""Telegram end to end: cards edited in place, 申请延期, attachments, the resident's buttons.

The same pipeline as tests/test_telegram_staff.py: updates reach the real
webhook, PTB handles them, the outbox sends through the fake Bot API, whose
``shown()`` is what a chat displays after every edit.
"""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from conftest import make_desk_config
from fake_telegram import FakeBotApi
from helpers import ROUTED_TEXT, STAFF_BY_DEPARTMENT, load_ticket
from test_telegram_resident import (  # noqa: F401 - fixtures, used by name
    RESIDENT_CHAT,
    client,
    deliver,
    fake_api,
    private_message,
    settle,
)
from test_telegram_staff import (
    ZHUJIAN_CHAT,
    bot_message,
    complaint,
    keys,
    last_answer,
    press,
    reply_to,
    status,
    to_chat,
)

from bot.app import DESK
from bot.channels.telegram_staff import REFUSED, parse_extension
from handlers import texts
from handlers.desk_config import DeskConfig
from handlers.errors import InvalidInput, TicketNotFound
from handlers.working_days import local_date_text
from storage.models import TicketAttachment

Client = TestClient[web.Request, web.Application]

ADMIN_CHAT, HUANBAO_CHAT = -1000, -1002
CLERK, CENTRE = STAFF_BY_DEPARTMENT["zhujian"], STAFF_BY_DEPARTMENT["xiaoneng"]
STRANGER = 777
FOLLOW_UP_MINUTES = 10
PHOTO_ID = "AgACAgUAAxkBAAIBZ2VmcGhvdG9fZmlsZV9pZA"
DOCUMENT_ID = "BQACAgUAAxkBAAIBaGVkb2N1bWVudF9maWxlX2lk"
_file_uniques = itertools.count(1)


@pytest.fixture
def desk_config() -> DeskConfig:
    """The test desk with the details window on (conftest's desk has it off)."""
    config = make_desk_config()
    desk = config.desk.model_copy(update={"follow_up_minutes": FOLLOW_UP_MINUTES})
    return config.model_copy(update={"desk": desk})


def photo(file_id: str = PHOTO_ID, caption: str | None = None) -> dict[str, Any]:
    """A resident's photo as Telegram sends it: every size, the largest last."""
    unique = next(_file_uniques)
    sizes = [
        {"file_id": f"{file_id}-small", "file_unique_id": f"s{unique}", "width": 90, "height": 90},
        {"file_id": file_id, "file_unique_id": f"l{unique}", "width": 1280, "height": 960},
    ]
    update = private_message("", photo=sizes)
    del update["message"]["text"]
    if caption is not None:
        update["message"]["caption"] = caption
    return update


def document() -> dict[str, Any]:
    update = private_message(
        "",
        document={"file_id": DOCUMENT_ID, "file_unique_id": "doc1", "file_name": "现场.pdf"},
    )
    del update["message"]["text"]
    return update


def location(latitude: float = 31.2304, longitude: float = 121.4737) -> dict[str, Any]:
    update = private_message("", location={"latitude": latitude, "longitude": longitude})
    del update["message"]["text"]
    return update


def resident_tap(data: str, message: dict[str, Any] | None = None) -> dict[str, Any]:
    """The resident tapping a button under one of the bot's messages in their chat."""
    shown = message or {
        "message_id": 1,
        "date": int(time.time()),
        "chat": {"id": RESIDENT_CHAT, "type": "private", "first_name": "王"},
        "text": "…",
    }
    tap = press(RESIDENT_CHAT, shown, data)
    tap["callback_query"]["from"] = {"id": RESIDENT_CHAT, "is_bot": False, "first_name": "王"}
    return tap


async def attachments(desk_client: Client, number: str) -> list[TicketAttachment]:
    ticket = await load_ticket(desk_client.app[DESK], number)
    async with desk_client.app[DESK].database.reading() as uow:
        return list(await uow.attachments.of_ticket(ticket.id))


PROMPT_MARKERS = {"return": "【退单】", "extend": "【申请延期】", "resolve": "【办结】"}


async def by_prompt(
    desk_client: Client, card: dict[str, Any], number: str, action: str, *answers: str
) -> None:
    """The clerk presses ``action`` on the card and replies to its prompt with each answer."""
    await deliver(desk_client, press(CLERK, card, f"t:{number}:{action}"))
    await settle(desk_client)
    prompt = await bot_message(desk_client, ZHUJIAN_CHAT, PROMPT_MARKERS[action])
    for answer in answers:
        await deliver(desk_client, reply_to(CLERK, prompt, answer))
        await settle(desk_client)


async def sent_id(desk_client: Client, number: str, purpose: str) -> int:
    """The Telegram message id of the resident's message of this purpose about the ticket."""
    ticket = await load_ticket(desk_client.app[DESK], number)
    async with desk_client.app[DESK].database.reading() as uow:
        rows = await uow.outbox.for_ticket(ticket.id)
    [row] = [r for r in rows if r.purpose == purpose and r.kind == "text"]
    assert row.provider_message_id is not None
    return int(row.provider_message_id)


# ------------------------------------------------------------- cards edited in place


async def test_a_transferred_card_loses_its_buttons_and_says_where_it_went(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(client)
    await deliver(client, press(CLERK, card, f"t:{number}:claim"))
    await deliver(client, press(CLERK, card, f"t:{number}:transfer"))
    await settle(client)
    menu = await bot_message(client, ZHUJIAN_CHAT, "【转办】")
    await deliver(client, press(CLERK, menu, f"x:{number}:huanbao"))
    await settle(client)

    text, markup = fake_api.shown(ZHUJIAN_CHAT, card["message_id"])
    assert "状态：已转办至生态环境局，本单位无需再办理" in text
    assert markup is None
    new_card = await bot_message(client, HUANBAO_CHAT, "【转办单】")
    assert "状态：待签收" in new_card["text"]
    assert keys(new_card)[0] == [f"t:{number}:claim"]
    # A stale tap on the old card changes nothing.
    await deliver(client, press(CLERK, card, f"t:{number}:resolve"))
    await settle(client)
    assert last_answer(fake_api)["show_alert"] is True
    assert await status(client, number) == "assigned"


async def test_a_returned_card_says_so_and_keeps_no_buttons(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(client)
    await by_prompt(client, card, number, "return", "不属于本单位职责")

    text, markup = fake_api.shown(ZHUJIAN_CHAT, card["message_id"])
    assert "状态：已退回中心重新分派" in text and markup is None
    # One edit per change of what the card shows: none is repeated.
    edits = fake_api.calls_to("editMessageText")
    assert len(edits) == len({(e["text"], str(e.get("reply_markup"))) for e in edits})


async def test_an_edit_that_telegram_finds_unchanged_counts_as_sent(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(client)
    fake_api.fail_next("editMessageText", 400, "Bad Request: message is not modified: same")
    await deliver(client, press(CLERK, card, f"t:{number}:claim"))
    await settle(client)
    async with client.app[DESK].database.reading() as uow:
        dead = await uow.outbox.with_status("dead")
    assert dead == []
    assert len(fake_api.calls_to("editMessageText")) == 1


# ------------------------------------------------------------------------ 申请延期


async def test_extension_request_approved_by_the_centre_moves_the_deadline(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    desk = client.app[DESK]
    number, card = await complaint(client)
    before = (await load_ticket(desk, number)).deadline_at
    assert before is not None
    await deliver(client, press(CLERK, card, f"t:{number}:claim"))
    await by_prompt(client, card, number, "extend", "5天，需协调施工单位")
    assert "延期申请（5个工作日）已提交" in to_chat(fake_api, ZHUJIAN_CHAT)[-1]

    notice = await bot_message(client, ADMIN_CHAT, "【延期申请】")
    assert "理由：需协调施工单位" in notice["text"]
    assert keys(notice) == [[f"e:{number}:5:y", f"e:{number}:5:n"]]
    # A clerk cannot decide it, even in the admin room; nor a stranger.
    for user in (CLERK, STRANGER):
        await deliver(client, press(user, notice, f"e:{number}:5:y"))
        await settle(client)
        assert (last_answer(fake_api)["text"], last_answer(fake_api)["show_alert"]) == (
            REFUSED,
            True,
        )
    assert (await load_ticket(desk, number)).deadline_at == before

    await deliver(client, press(CENTRE, notice, f"e:{number}:5:y"))
    await settle(client)
    after = (await load_ticket(desk, number)).deadline_at
    assert after == desk.calendar.deadline(before, 5)
    assert last_answer(fake_api)["text"] == "已同意延期"
    assert f"新的办理时限为{local_date_text(after)}" in to_chat(fake_api, RESIDENT_CHAT)[-1]
    assert "【延期审批】" in to_chat(fake_api, ZHUJIAN_CHAT)[-1]
    assert (
        f"办理时限：{local_date_text(after)}" in fake_api.shown(ZHUJIAN_CHAT, card["message_id"])[0]
    )

    # The same button again decides nothing more.
    await deliver(client, press(CENTRE, notice, f"e:{number}:5:y"))
    await settle(client)
    assert last_answer(fake_api)["text"] == "该延期申请已处理或已失效。"
    assert (await load_ticket(desk, number)).deadline_at == after


async def test_a_refused_extension_keeps_the_deadline_and_one_request_at_a_time(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    desk = client.app[DESK]
    number, card = await complaint(client)
    before = (await load_ticket(desk, number)).deadline_at
    for reason in ("3 等待配件", "4 还要等"):
        await by_prompt(client, card, number, "extend", reason)
    assert to_chat(fake_api, ZHUJIAN_CHAT)[-1] == "该工单已有延期申请待审批，请等待中心答复。"

    notice = await bot_message(client, ADMIN_CHAT, "【延期申请】")
    await deliver(client, press(CENTRE, notice, f"e:{number}:3:n"))
    await settle(client)
    assert (await load_ticket(desk, number)).deadline_at == before
    assert "不同意延期" in to_chat(fake_api, ZHUJIAN_CHAT)[-1]


async def test_an_extension_reply_without_days_gets_the_usage(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(client)
    await by_prompt(client, card, number, "extend", "过几天再说", "45 太久了")
    said = to_chat(fake_api, ZHUJIAN_CHAT)
    assert said[-2].startswith("请先写延长的工作日天数")
    assert said[-1] == "延期天数须为1至30个工作日。"
    assert not [t for t in to_chat(fake_api, ADMIN_CHAT) if "【延期申请】" in t]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("5 需协调", (5, "需协调")),
        ("5天，需协调", (5, "需协调")),
        ("10个工作日：等待审批", (10, "等待审批")),
        ("３ 全角", (3, "全角")),
    ],
)
def test_parse_extension(text: str, parsed: tuple[int, str]) -> None:
    assert parse_extension(text) == parsed


def test_parse_extension_needs_a_number_first() -> None:
    with pytest.raises(InvalidInput):
        parse_extension("需要更多时间")


# --------------------------------------------------------------------- attachments


async def test_a_photo_after_the_complaint_reaches_the_department_without_the_residents_name(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(client)
    for update in (photo(), document(), location()):
        await deliver(client, update)
    await settle(client)

    kept = await attachments(client, number)
    assert [(a.kind, a.file_ref) for a in kept] == [
        ("photo", PHOTO_ID),  # the largest size
        ("document", DOCUMENT_ID),
        ("location", None),
    ]
    [sent_photo] = fake_api.calls_to("sendPhoto")
    assert (sent_photo["chat_id"], sent_photo["photo"]) == (ZHUJIAN_CHAT, PHOTO_ID)
    assert number in sent_photo["caption"]
    [sent_document] = fake_api.calls_to("sendDocument")
    assert sent_document["document"] == DOCUMENT_ID
    [venue] = fake_api.calls_to("sendVenue")
    assert (venue["latitude"], venue["longitude"]) == (31.2304, 121.4737)
    assert number in venue["title"]
    # Re-sent, never forwarded: nothing names the resident.
    assert not fake_api.calls_to("forwardMessage")
    for call in (sent_photo, sent_document, venue):
        assert str(RESIDENT_CHAT) not in str(call) and "王" not in str(call)
    assert "附件：照片1张、文件1个、位置1处" in fake_api.shown(ZHUJIAN_CHAT, card["message_id"])[0]
    # The resident hears it was added, each time.
    assert to_chat(fake_api, RESIDENT_CHAT)[-1] == texts.details_appended(number)


async def test_a_photo_with_a_caption_is_a_complaint_and_follows_the_card(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    await deliver(client, photo(caption=ROUTED_TEXT))
    await settle(client)
    card = await bot_message(client, ZHUJIAN_CHAT, "【转办单】")
    assert "附件：照片1张" in card["text"]
    methods = [c.method for c in fake_api.calls if c.params.get("chat_id") == ZHUJIAN_CHAT]
    assert methods == ["sendMessage", "sendPhoto"]


async def test_a_photo_with_nothing_to_attach_to_asks_for_words(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    await deliver(client, photo())
    await settle(client)
    assert to_chat(fake_api, RESIDENT_CHAT) == [texts.attachments_need_text(FOLLOW_UP_MINUTES)]
    assert not fake_api.calls_to("sendPhoto")


async def test_the_details_button_reopens_the_window_for_that_ticket(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, _ = await complaint(client)
    service_card = next(
        m for m in fake_api.sent_messages() if m["chat_id"] == RESIDENT_CHAT and number in m["text"]
    )
    assert keys(service_card) == [[f"d:{number}"]]
    # An hour later the window after registering has closed ...
    async with client.app[DESK].database.transaction() as uow:
        ticket = await uow.tickets.by_number(number)
        assert ticket is not None
        ticket.created_at -= timedelta(hours=1)
    await deliver(client, photo())
    await settle(client)
    assert await attachments(client, number) == []

    # ... and 补充材料 opens it again.
    await deliver(client, resident_tap(f"d:{number}"))
    await settle(client)
    assert to_chat(fake_api, RESIDENT_CHAT)[-1] == texts.details_open(number, FOLLOW_UP_MINUTES)
    await deliver(client, photo("AgACAgUAAxkBAAIBZ2Vsecond"))
    await settle(client)
    assert [a.file_ref for a in await attachments(client, number)] == ["AgACAgUAAxkBAAIBZ2Vsecond"]


async def test_the_details_button_of_someone_elses_ticket_reveals_nothing(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, _ = await complaint(client)
    tap = resident_tap(f"d:{number}")
    other = RESIDENT_CHAT + 1
    tap["callback_query"]["from"]["id"] = other
    tap["callback_query"]["message"]["chat"]["id"] = other
    await deliver(client, tap)
    await settle(client)
    answers = [m["text"] for m in fake_api.sent_messages() if m["chat_id"] == other]
    assert answers == [TicketNotFound(number).resident_message]


# ---------------------------------------------------------------- /my and the timeline


async def test_my_lists_tickets_as_buttons_and_a_tap_shows_the_timeline(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(client)
    await deliver(client, press(CLERK, card, f"t:{number}:claim"))
    await deliver(client, reply_to(CLERK, card, "已联系物业"))
    await deliver(client, private_message("/my"))
    await settle(client)
    listing = [m for m in fake_api.sent_messages() if m["chat_id"] == RESIDENT_CHAT][-1]
    assert keys(listing) == [[f"s:{number}"]]

    await deliver(client, resident_tap(f"s:{number}"))
    await settle(client)
    timeline = to_chat(fake_api, RESIDENT_CHAT)[-1]
    assert "办理经过：" in timeline
    steps = [line.split(" ", 2)[2] for line in timeline.split("办理经过：\n")[1].splitlines()]
    assert steps == ["投诉登记", "受理", "转交住建局办理", "承办单位签收", "答复：已联系物业"]
    # Staff stay anonymous to residents.
    assert "王科员" not in timeline and "staff" not in timeline


async def test_answered_and_moot_keyboards_are_taken_off_the_residents_messages(
    client: Client,  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(client)
    await deliver(client, press(CLERK, card, f"t:{number}:claim"))
    await by_prompt(client, card, number, "resolve", "电梯已修好")
    service_card_id = await sent_id(client, number, "card")
    rating_id = await sent_id(client, number, "prompt")
    # Resolved: nothing more to add, so 补充材料 is gone.
    assert fake_api.shown(RESIDENT_CHAT, service_card_id)[1] is None

    await deliver(client, resident_tap(f"r:{number}:1"))
    await settle(client)
    text, markup = fake_api.shown(RESIDENT_CHAT, rating_id)
    assert markup is None and text.endswith("（已评价：满意）")
