"""The admin room routes triage tickets by button, end to end.

An unroutable complaint reaches the real webhook; the 【待分派】 notice goes
by the outbox into the fake Bot API with its buttons; the centre's taps
arrive as Telegram would send them and are handled by the real PTB
Application with the triage handlers registered.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_telegram import FakeBotApi
from helpers import (
    RETURN_REASON,
    ROUTED_TEXT,
    STAFF_BY_DEPARTMENT,
    UNROUTED_TEXT,
    department_code,
    department_id,
    load_ticket,
    register,
)
from telegram.ext import CallbackQueryHandler
from test_telegram_resident import (  # noqa: F401 - fixtures, used by name
    RESIDENT_CHAT,
    client,
    deliver,
    fake_api,
    private_message,
    settle,
)
from test_telegram_staff import bot_message, last_answer, press, reply_to, to_chat

from bot.app import DESK, TELEGRAM
from bot.channels.telegram_staff import REFUSED
from bot.channels.telegram_triage import ASSIGN_BUTTON, assign_prompt
from handlers.context import Desk
from handlers.notify import OTHER_DEPARTMENTS, triage_buttons

Client = TestClient[web.Request, web.Application]

ADMIN_CHAT, ZHUJIAN_CHAT = -1000, -1001
ADMIN = STAFF_BY_DEPARTMENT["xiaoneng"]
CLERK = STAFF_BY_DEPARTMENT["zhujian"]
STRANGER = 777


@pytest.fixture
async def triage(client: Client) -> Client:  # noqa: F811
    """The app, whose front door registers the triage handlers (checked, not assumed)."""
    application = client.app[TELEGRAM].front.application
    assert any(
        isinstance(handler, CallbackQueryHandler) and handler.pattern == ASSIGN_BUTTON
        for handler in application.handlers.get(0, [])
    )
    return client


def keys(message: dict[str, Any]) -> dict[str, str]:
    """The message's buttons, label -> callback data."""
    rows = message["reply_markup"]["inline_keyboard"]
    return {b["text"]: b["callback_data"] for row in rows for b in row}


async def unrouted(desk_client: Client) -> tuple[str, dict[str, Any]]:
    """A complaint routing cannot place; its number and the admin room's notice."""
    await deliver(desk_client, private_message(UNROUTED_TEXT))
    await settle(desk_client)
    notice = await bot_message(desk_client, ADMIN_CHAT, "【待分派】")
    found = re.search(r"受理编号 (\d+)", notice["text"])
    assert found is not None
    return found.group(1), notice


async def status(desk_client: Client, number: str) -> str:
    return (await load_ticket(desk_client.app[DESK], number)).status


async def lead(desk_client: Client, number: str) -> str | None:
    desk = desk_client.app[DESK]
    return await department_code(desk, (await load_ticket(desk, number)).department_id)


async def test_the_centre_assigns_an_unrouted_complaint_from_the_notice(
    triage: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, notice = await unrouted(triage)
    # Nothing to suggest for this text: 其他单位 only.
    assert keys(notice) == {OTHER_DEPARTMENTS: f"o:{number}"}

    await deliver(triage, press(ADMIN, notice, f"o:{number}"))
    await settle(triage)
    keyboard = await bot_message(triage, ADMIN_CHAT, "【分派】")
    assert keyboard["text"] == assign_prompt(number)
    # Every active department but the centre itself.
    assert keys(keyboard) == {
        "住建局": f"g:{number}:zhujian",
        "生态环境局": f"g:{number}:huanbao",
        "城管局": f"g:{number}:chengguan",
    }
    assert await status(triage, number) == "received"

    await deliver(triage, press(ADMIN, keyboard, f"g:{number}:zhujian"))
    await settle(triage)
    assert last_answer(fake_api)["text"] == "已分派至住建局"
    assert await status(triage, number) == "assigned"
    assert await lead(triage, number) == "zhujian"
    card = await bot_message(triage, ZHUJIAN_CHAT, "【转办单】")
    assert f"受理编号 {number}" in card["text"]
    assert keys(card)["签收"] == f"t:{number}:claim"
    assert any("住建局" in text for text in to_chat(fake_api, RESIDENT_CHAT))


@pytest.mark.parametrize("user_id", [CLERK, STRANGER], ids=["clerk", "stranger"])
async def test_a_tap_by_anyone_but_the_centre_changes_nothing(
    triage: Client,
    fake_api: FakeBotApi,  # noqa: F811
    user_id: int,
) -> None:
    number, notice = await unrouted(triage)
    room_before = to_chat(fake_api, ADMIN_CHAT)
    for data in (f"o:{number}", f"g:{number}:zhujian"):
        await deliver(triage, press(user_id, notice, data))
        await settle(triage)
        answer = last_answer(fake_api)
        assert (answer["text"], answer["show_alert"]) == (REFUSED, True)
    assert await status(triage, number) == "received"
    assert to_chat(fake_api, ADMIN_CHAT) == room_before
    assert to_chat(fake_api, ZHUJIAN_CHAT) == []


async def test_the_centre_tapping_in_a_department_group_is_refused(
    triage: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, notice = await unrouted(triage)
    elsewhere = {**notice, "chat": {"id": ZHUJIAN_CHAT, "type": "supergroup", "title": "部门群"}}
    await deliver(triage, press(ADMIN, elsewhere, f"g:{number}:zhujian"))
    await settle(triage)
    assert last_answer(fake_api)["show_alert"] is True
    assert await status(triage, number) == "received"


async def test_tapping_again_after_assignment_is_politely_refused(
    triage: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number, notice = await unrouted(triage)
    await deliver(triage, press(ADMIN, notice, f"g:{number}:zhujian"))
    await settle(triage)
    assert await status(triage, number) == "assigned"
    sent_before = len(fake_api.sent_messages())

    for data in (f"g:{number}:huanbao", f"o:{number}"):
        await deliver(triage, press(ADMIN, notice, data))
        await settle(triage)
        answer = last_answer(fake_api)
        assert answer["show_alert"] is True
        assert "当前状态不能执行该操作" in answer["text"] and number in answer["text"]
    assert await status(triage, number) == "assigned"
    assert await lead(triage, number) == "zhujian"
    assert len(fake_api.sent_messages()) == sent_before


async def test_a_returned_ticket_is_assigned_without_a_second_acceptance(
    triage: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    await deliver(triage, private_message(ROUTED_TEXT))
    await settle(triage)
    card = await bot_message(triage, ZHUJIAN_CHAT, "【转办单】")
    found = re.search(r"受理编号 (\d+)", card["text"])
    assert found is not None
    number = found.group(1)
    await deliver(triage, press(CLERK, card, f"t:{number}:return"))
    await settle(triage)
    prompt = await bot_message(triage, ZHUJIAN_CHAT, "【退单】")
    await deliver(triage, reply_to(CLERK, prompt, RETURN_REASON))
    await settle(triage)
    assert await status(triage, number) == "returned"

    notice = await bot_message(triage, ADMIN_CHAT, "【退单】")
    await deliver(triage, press(ADMIN, notice, f"o:{number}"))
    await settle(triage)
    keyboard = await bot_message(triage, ADMIN_CHAT, "【分派】")
    await deliver(triage, press(ADMIN, keyboard, f"g:{number}:huanbao"))
    await settle(triage)
    assert last_answer(fake_api)["text"] == "已分派至生态环境局"
    assert await status(triage, number) == "assigned"
    assert await lead(triage, number) == "huanbao"


async def test_suggested_categories_become_department_buttons_within_64_bytes(desk: Desk) -> None:
    number = await register(desk, UNROUTED_TEXT)
    ticket = await load_ticket(desk, number)
    ticket.accused_department_ids = [await department_id(desk, "chengguan")]
    suggested = ["环境保护", "未知类别", "城管执法", "城乡建设", "环境保护"]
    async with desk.database.reading() as uow:
        buttons = await triage_buttons(uow, desk.config, ticket, suggested)
    # Unknown categories, repeats and the accused department are skipped.
    assert buttons == [
        # With the category's place in the config: a tap confirms it.
        [{"text": "环境保护·生态环境局", "data": f"g:{number}:huanbao:1"}],
        [{"text": "城乡建设·住建局", "data": f"g:{number}:zhujian:0"}],
        [{"text": OTHER_DEPARTMENTS, "data": f"o:{number}"}],
    ]
    longest = f"g:{'9' * 10}:{'a' * 40}:999"
    assert ASSIGN_BUTTON.match(longest) and len(longest.encode()) <= 64


@pytest.mark.parametrize(
    ("data", "category"),
    [
        (":1", "环境保护"),  # the suggestion's category replaces routing's guess
        ("", None),  # 其他单位's buttons name no category: it stays as it was
        (":0", None),  # index 0 is 城乡建设, not huanbao's: a stale button, ignored
        (":99", None),  # beyond the config: ignored
    ],
)
async def test_a_suggestion_button_confirms_its_category(
    triage: Client,
    fake_api: FakeBotApi,  # noqa: F811
    data: str,
    category: str | None,
) -> None:
    number, notice = await unrouted(triage)
    guessed = (await load_ticket(triage.app[DESK], number)).category
    await deliver(triage, press(ADMIN, notice, f"g:{number}:huanbao{data}"))
    await settle(triage)
    assert await lead(triage, number) == "huanbao"
    ticket = await load_ticket(triage.app[DESK], number)
    assert ticket.category == (category or guessed)
    async with triage.app[DESK].database.reading() as uow:
        examples = await uow.examples.latest_per_ticket()
    corrections = [(e.text, e.label) for e in examples if e.source == "correction"]
    assert corrections == ([(ticket.text, category)] if category else [])
