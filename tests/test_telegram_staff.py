"""Department staff on Telegram, end to end: buttons on the card and replies in the group.

A resident's complaint reaches the real webhook; the card goes by the outbox
into the fake Bot API; staff taps and replies arrive as Telegram would send
them (callback queries carrying the card message, replies quoting the
bot's message with the id Telegram returned for it) and are handled by the
real PTB Application with the staff handlers registered.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_telegram import FAKE_BOT_ID, FAKE_USERNAME, FakeBotApi
from helpers import (
    RESULT_TEXT,
    RETURN_REASON,
    ROUTED_TEXT,
    STAFF_BY_DEPARTMENT,
    department_code,
    load_ticket,
)
from sqlalchemy import select
from telegram.ext import CallbackQueryHandler
from test_telegram_resident import (  # noqa: F401 - fixtures, used by name
    RESIDENT_CHAT,
    client,
    deliver,
    fake_api,
    private_message,
    settle,
)

from bot.app import DESK, TELEGRAM
from bot.channels.telegram_staff import (
    CARD_BUTTON,
    REFUSED,
    parse_bot_message,
    prompt_text,
)
from handlers.workflow import Action
from storage.models import OutboxMessage

Client = TestClient[web.Request, web.Application]

ZHUJIAN_CHAT, HUANBAO_CHAT, ADMIN_CHAT = -1001, -1002, -1000
CLERK = STAFF_BY_DEPARTMENT["zhujian"]
STRANGER = 777
GROUP_ANONYMOUS_BOT = 1087968824
REPLY = "已联系物业，明天维修"
BOT_USER = {"id": FAKE_BOT_ID, "is_bot": True, "first_name": "Complaint Desk"}

_update_ids = itertools.count(500_000)
_message_ids = itertools.count(90_000)
_query_ids = itertools.count(1)


@pytest.fixture
async def staff(client: Client) -> Client:  # noqa: F811
    """The app, whose front door registers the staff handlers (checked, not assumed)."""
    application = client.app[TELEGRAM].front.application
    assert any(
        isinstance(handler, CallbackQueryHandler) and handler.pattern == CARD_BUTTON
        for handler in application.handlers.get(0, [])
    )
    return client


def person(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "用户"}


def press(user_id: int, message: dict[str, Any], data: str) -> dict[str, Any]:
    """A callback query update: ``user_id`` tapped a button of ``message``."""
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(next(_query_ids)),
            "from": person(user_id),
            "chat_instance": "-8812345",
            "data": data,
            "message": message,
        },
    }


def reply_to(user_id: int, replied: dict[str, Any], text: str) -> dict[str, Any]:
    """A group message from ``user_id`` replying to ``replied``."""
    return {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_message_ids),
            "date": int(time.time()),
            "chat": replied["chat"],
            "from": person(user_id),
            "text": text,
            "reply_to_message": replied,
        },
    }


async def bot_message(desk_client: Client, chat_id: int, marker: str) -> dict[str, Any]:
    """The bot's last message to a group containing ``marker``, as Telegram shows it.

    The message id is the one the fake Bot API returned, as the sender stored it.
    """
    async with desk_client.app[DESK].database.reading() as uow:
        rows = (
            (
                await uow.session.execute(
                    select(OutboxMessage)
                    .where(OutboxMessage.recipient == str(chat_id), OutboxMessage.status == "sent")
                    .order_by(OutboxMessage.id)
                )
            )
            .scalars()
            .all()
        )
    matching = [row for row in rows if marker in row.body]
    assert matching, f"no message with {marker!r} in chat {chat_id}: {[r.body for r in rows]}"
    row = matching[-1]
    assert row.provider_message_id is not None
    message: dict[str, Any] = {
        "message_id": int(row.provider_message_id),
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "supergroup", "title": "部门群"},
        "from": {**BOT_USER, "username": FAKE_USERNAME},
        "text": row.body,
    }
    if row.buttons:
        message["reply_markup"] = {
            "inline_keyboard": [
                [{"text": b["text"], "callback_data": b["data"]} for b in line]
                for line in row.buttons
            ]
        }
    return message


async def complaint(desk_client: Client) -> tuple[str, dict[str, Any]]:
    """A resident's 住建 complaint; returns its number and the card in the 住建 group."""
    await deliver(desk_client, private_message(ROUTED_TEXT))
    await settle(desk_client)
    card = await bot_message(desk_client, ZHUJIAN_CHAT, "【转办单】")
    found = re.search(r"受理编号 (\d+)", card["text"])
    assert found is not None
    return found.group(1), card


async def status(desk_client: Client, number: str) -> str:
    return (await load_ticket(desk_client.app[DESK], number)).status


def to_chat(api: FakeBotApi, chat_id: int) -> list[str]:
    return [str(m["text"]) for m in api.sent_messages() if m["chat_id"] == chat_id]


# The card's second row: what a department may do before and after claiming.
LATER = ("return", "transfer", "extend")


def keys(message: dict[str, Any]) -> list[list[str]]:
    """The callback data of a message's inline keyboard, row by row."""
    markup = message.get("reply_markup") or {"inline_keyboard": []}
    return [[b["callback_data"] for b in row] for row in markup["inline_keyboard"]]


def last_answer(api: FakeBotApi) -> dict[str, Any]:
    return api.calls_to("answerCallbackQuery")[-1]


async def test_claim_reply_and_resolve_from_the_group(
    staff: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(staff)
    assert keys(card) == [[f"t:{number}:claim"], [f"t:{number}:{a}" for a in LATER]]

    await deliver(staff, press(CLERK, card, f"t:{number}:claim"))
    await settle(staff)
    assert await status(staff, number) == "claimed"
    assert last_answer(fake_api)["text"] == "已签收"
    # The card itself now says who has it, and offers what comes next.
    text, markup = fake_api.shown(ZHUJIAN_CHAT, card["message_id"])
    assert "状态：已签收，经办人：王科员" in text
    assert keys({"reply_markup": markup}) == [
        [f"t:{number}:reply", f"t:{number}:resolve"],
        [f"t:{number}:{a}" for a in LATER],
    ]

    await deliver(staff, reply_to(CLERK, card, REPLY))
    await settle(staff)
    assert await status(staff, number) == "in_progress"
    assert any(REPLY in text for text in to_chat(fake_api, RESIDENT_CHAT))
    assert "状态：办理中，经办人：王科员" in fake_api.shown(ZHUJIAN_CHAT, card["message_id"])[0]

    # 回复 asks for the text by a prompt, like 办结.
    await deliver(staff, press(CLERK, card, f"t:{number}:reply"))
    await settle(staff)
    reply_prompt = await bot_message(staff, ZHUJIAN_CHAT, "【回复】")
    assert reply_prompt["text"] == prompt_text(Action.REPLY, number)
    await deliver(staff, reply_to(CLERK, reply_prompt, "维修工人已到场"))
    await settle(staff)
    assert "维修工人已到场" in to_chat(fake_api, RESIDENT_CHAT)[-1]

    await deliver(staff, press(CLERK, card, f"t:{number}:resolve"))
    await settle(staff)
    prompt = await bot_message(staff, ZHUJIAN_CHAT, "【办结】")
    assert prompt["text"] == prompt_text(Action.RESOLVE, number)
    assert await status(staff, number) == "in_progress"  # nothing changes until the text

    await deliver(staff, reply_to(CLERK, prompt, RESULT_TEXT))
    await settle(staff)
    assert await status(staff, number) == "resolved"
    to_resident = [m for m in fake_api.sent_messages() if m["chat_id"] == RESIDENT_CHAT]
    assert RESULT_TEXT in to_resident[-2]["text"]
    rating = to_resident[-1]["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in rating] == [f"r:{number}:{n}" for n in (1, 2, 3)]
    assert any("已办结" in text for text in to_chat(fake_api, ZHUJIAN_CHAT))
    # Nothing is left to press on the card.
    text, markup = fake_api.shown(ZHUJIAN_CHAT, card["message_id"])
    assert "状态：已办结，待群众评价，经办人：王科员" in text and markup is None


@pytest.mark.parametrize(
    "user_id",
    [STRANGER, STAFF_BY_DEPARTMENT["huanbao"], GROUP_ANONYMOUS_BOT],
    ids=["stranger", "other-department", "anonymous-admin"],
)
async def test_a_tap_by_anyone_but_the_departments_staff_changes_nothing(
    staff: Client,
    fake_api: FakeBotApi,  # noqa: F811
    user_id: int,
) -> None:
    number, card = await complaint(staff)
    group_before = to_chat(fake_api, ZHUJIAN_CHAT)
    for action in ("claim", "resolve", "return", "transfer"):
        await deliver(staff, press(user_id, card, f"t:{number}:{action}"))
        await settle(staff)
        answer = last_answer(fake_api)
        assert (answer["text"], answer["show_alert"]) == (REFUSED, True)
    assert await status(staff, number) == "assigned"
    assert to_chat(fake_api, ZHUJIAN_CHAT) == group_before


async def test_a_button_on_a_channel_post_is_refused(
    staff: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(staff)
    channel_card = {**card, "chat": {"id": ZHUJIAN_CHAT, "type": "channel", "title": "频道"}}
    await deliver(staff, press(CLERK, channel_card, f"t:{number}:claim"))
    await settle(staff)
    assert last_answer(fake_api)["show_alert"] is True
    assert await status(staff, number) == "assigned"


async def test_a_strangers_reply_to_the_card_reaches_nobody(
    staff: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(staff)
    resident_before = to_chat(fake_api, RESIDENT_CHAT)
    await deliver(staff, reply_to(STRANGER, card, "我来答复一下"))
    await settle(staff)
    assert to_chat(fake_api, RESIDENT_CHAT) == resident_before
    assert to_chat(fake_api, ZHUJIAN_CHAT)[-1] == REFUSED
    assert await status(staff, number) == "assigned"


async def test_resolve_before_claim_is_refused_without_a_prompt(
    staff: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(staff)
    await deliver(staff, press(CLERK, card, f"t:{number}:resolve"))
    await settle(staff)
    answer = last_answer(fake_api)
    assert answer["show_alert"] is True and "当前状态不能执行该操作" in answer["text"]
    assert not [t for t in to_chat(fake_api, ZHUJIAN_CHAT) if t.startswith("【办结】")]


async def test_return_with_a_reason_tells_the_admin_room(
    staff: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(staff)
    await deliver(staff, press(CLERK, card, f"t:{number}:return"))
    await settle(staff)
    prompt = await bot_message(staff, ZHUJIAN_CHAT, "【退单】")
    await deliver(staff, reply_to(CLERK, prompt, RETURN_REASON))
    await settle(staff)
    assert await status(staff, number) == "returned"
    [notice] = to_chat(fake_api, ADMIN_CHAT)
    assert number in notice and RETURN_REASON in notice


async def test_transfer_to_another_department_sends_it_the_card(
    staff: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(staff)
    await deliver(staff, press(CLERK, card, f"t:{number}:transfer"))
    await settle(staff)
    keyboard = await bot_message(staff, ZHUJIAN_CHAT, "【转办】")
    choices = [
        b["callback_data"] for row in keyboard["reply_markup"]["inline_keyboard"] for b in row
    ]
    # Not back to itself, not to the centre (that is 退单).
    assert choices == [f"x:{number}:huanbao", f"x:{number}:chengguan"]

    await deliver(staff, press(CLERK, keyboard, f"x:{number}:huanbao"))
    await settle(staff)
    assert await status(staff, number) == "assigned"
    ticket = await load_ticket(staff.app[DESK], number)
    assert await department_code(staff.app[DESK], ticket.department_id) == "huanbao"
    assert any(f"受理编号 {number}" in text for text in to_chat(fake_api, HUANBAO_CHAT))
    assert last_answer(fake_api)["text"] == "已转办至生态环境局"


async def test_messages_in_a_forum_topic_that_reply_to_nothing_are_ignored(
    staff: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, _card = await complaint(staff)
    topic_start = {
        "message_id": 5,
        "date": int(time.time()),
        "chat": {"id": ZHUJIAN_CHAT, "type": "supergroup", "title": "部门群", "is_forum": True},
        "from": {**BOT_USER, "username": FAKE_USERNAME},
        "message_thread_id": 5,
        "forum_topic_created": {"name": f"受理编号 {number}", "icon_color": 7322096},
    }
    before = len(fake_api.sent_messages())
    update = reply_to(CLERK, topic_start, "大家好")
    update["message"].update(message_thread_id=5, is_topic_message=True)
    await deliver(staff, update)
    await settle(staff)
    assert len(fake_api.sent_messages()) == before
    assert await status(staff, number) == "assigned"


@pytest.mark.parametrize(
    ("text", "meaning"),
    [
        ("【办结】受理编号 260000019：请回复本消息填写办理结果。", (Action.RESOLVE, "260000019")),
        ("【退单】受理编号 260000019：请回复本消息填写退单理由。", (Action.RETURN, "260000019")),
        ("【转办单】受理编号 260000019\n类别：城乡建设", (Action.REPLY, "260000019")),
        (
            "（市住建局未绑定群组，转至管理群）\n【转办单】受理编号 2600000190",
            (Action.REPLY, "2600000190"),
        ),
        # The admin room's return notice is neither a prompt nor a card.
        ("【退单】受理编号 260000019，理由：不属于本单位职责，请重新分派。", None),
        ("受理编号 260000019 已办结，办理结果已告知群众。", None),
    ],
)
def test_what_a_reply_to_a_bot_message_means(text: str, meaning: tuple[Action, str] | None) -> None:
    assert parse_bot_message(text) == meaning


async def test_a_reply_to_a_message_that_only_looks_like_a_card_is_ignored(
    staff: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(staff)
    # A colleague pasted the card's text: replying to them is not replying to the bot.
    pasted = {**card, "message_id": next(_message_ids), "from": person(STRANGER)}
    pasted.pop("reply_markup", None)
    before = len(fake_api.sent_messages())
    await deliver(staff, reply_to(CLERK, pasted, REPLY))
    await settle(staff)
    assert len(fake_api.sent_messages()) == before
    assert await status(staff, number) == "assigned"


async def test_an_anonymous_admins_reply_is_refused(
    staff: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, card = await complaint(staff)
    resident_before = to_chat(fake_api, RESIDENT_CHAT)
    update = reply_to(GROUP_ANONYMOUS_BOT, card, REPLY)
    update["message"]["sender_chat"] = {"id": ZHUJIAN_CHAT, "type": "supergroup", "title": "部门群"}
    await deliver(staff, update)
    await settle(staff)
    assert to_chat(fake_api, ZHUJIAN_CHAT)[-1] == REFUSED
    assert to_chat(fake_api, RESIDENT_CHAT) == resident_before
    assert await status(staff, number) == "assigned"
