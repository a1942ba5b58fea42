"""The admin room's commands on Telegram, end to end.

Commands reach the real webhook as Telegram would send them, are stored,
handled by the real PTB Application with the admin handlers registered, and
answered by the outbox through the real sender into the fake Bot API.
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from conftest import make_desk_config
from fake_telegram import FakeBotApi
from helpers import ROUTED_TEXT, STAFF_BY_DEPARTMENT, events
from telegram.ext import CommandHandler
from test_telegram_resident import (  # noqa: F401 - fixtures, used by name
    RESIDENT_CHAT,
    client,
    deliver,
    fake_api,
    private_message,
    settle,
)

from bot.app import DESK, TELEGRAM
from bot.channels.telegram_admin import (
    MESSAGE_LIMIT,
    REFUSED,
    REVEAL_REFUSED,
    stats_text,
)
from handlers.desk_config import DeskConfig, StaffConfig
from handlers.figures import DepartmentFigures

Client = TestClient[web.Request, web.Application]

ADMIN_CHAT, ZHUJIAN_CHAT = -1000, -1001
ADMIN = STAFF_BY_DEPARTMENT["xiaoneng"]
CLERK = STAFF_BY_DEPARTMENT["zhujian"]
SUPERVISOR = 901

_update_ids = itertools.count(700_000)
_message_ids = itertools.count(70_000)


@pytest.fixture
def desk_config() -> DeskConfig:
    """The test desk, plus a supervisor of the supervision office (may not reveal)."""
    config = make_desk_config()
    supervisor = StaffConfig(telegram_user_id=SUPERVISOR, department="xiaoneng", role="supervisor")
    return config.model_copy(update={"staff": [*config.staff, supervisor]})


@pytest.fixture
async def admin_room(client: Client) -> Client:  # noqa: F811
    """The app, whose front door registers the admin handlers (checked, not assumed)."""
    application = client.app[TELEGRAM].front.application
    assert any(
        isinstance(handler, CommandHandler) and "stats" in handler.commands
        for handler in application.handlers.get(0, [])
    )
    return client


def command(user_id: int, text: str, chat_id: int = ADMIN_CHAT) -> dict[str, Any]:
    """A group message with a bot command, as the Bot API sends it."""
    return {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "supergroup", "title": "群"},
            "from": {"id": user_id, "is_bot": False, "first_name": "用户"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        },
    }


def to_chat(api: FakeBotApi, chat_id: int) -> list[str]:
    return [str(m["text"]) for m in api.sent_messages() if m["chat_id"] == chat_id]


async def complaint(desk_client: Client, api: FakeBotApi) -> str:
    """A resident's 住建 complaint by Telegram; returns its number."""
    await deliver(desk_client, private_message(ROUTED_TEXT))
    await settle(desk_client)
    found = re.search(r"受理编号：(\d+)", to_chat(api, RESIDENT_CHAT)[-1])
    assert found is not None
    return found.group(1)


async def ask(desk_client: Client, user_id: int, text: str, chat_id: int = ADMIN_CHAT) -> None:
    await deliver(desk_client, command(user_id, text, chat_id))
    await settle(desk_client)


async def test_stats_by_the_admin_answers_in_the_admin_room(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    await complaint(admin_room, fake_api)
    await ask(admin_room, ADMIN, "/stats")
    [answer] = to_chat(fake_api, ADMIN_CHAT)
    assert answer.startswith("【效能统计】")
    # Today 1 received, 0 closed | this week the same | 1 open, 0 overdue.
    assert "住建局：1/0｜1/0｜1/0" in answer.splitlines()
    assert "合计：1/0｜1/0｜1/0" in answer.splitlines()


@pytest.mark.parametrize("user_id", [CLERK, 777], ids=["department-clerk", "stranger"])
async def test_stats_by_anyone_but_centre_staff_is_refused(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
    user_id: int,
) -> None:
    await ask(admin_room, user_id, "/stats")
    assert to_chat(fake_api, ADMIN_CHAT) == [REFUSED]


async def test_admin_commands_in_a_department_group_do_nothing(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number = await complaint(admin_room, fake_api)
    before = len(fake_api.sent_messages())
    for text in ("/stats", "/overdue", f"/find {number}", f"/reveal {number}"):
        await ask(admin_room, ADMIN, text, chat_id=ZHUJIAN_CHAT)
        await ask(admin_room, CLERK, text, chat_id=ZHUJIAN_CHAT)
    assert len(fake_api.sent_messages()) == before
    assert not [e for e in await events(admin_room.app[DESK], number) if e.action == "reveal"]


async def test_reveal_by_the_admin_is_audited_and_shows_the_full_contact(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number = await complaint(admin_room, fake_api)
    # The department's card shows no contact; the reveal is the audited exception.
    assert not [t for t in to_chat(fake_api, ZHUJIAN_CHAT) if str(RESIDENT_CHAT) in t]
    await ask(admin_room, ADMIN, f"/reveal {number}")
    [answer] = to_chat(fake_api, ADMIN_CHAT)
    assert number in answer and str(RESIDENT_CHAT) in answer
    [event] = [e for e in await events(admin_room.app[DESK], number) if e.action == "reveal"]
    assert event.detail["telegram_user_id"] == ADMIN


async def test_reveal_by_a_supervisor_is_refused_and_not_shown(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number = await complaint(admin_room, fake_api)
    await ask(admin_room, SUPERVISOR, "/stats")  # a supervisor may read the figures
    await ask(admin_room, SUPERVISOR, f"/reveal {number}")
    answers = to_chat(fake_api, ADMIN_CHAT)
    assert answers[0].startswith("【效能统计】") and answers[1:] == [REVEAL_REFUSED]
    assert not [e for e in await events(admin_room.app[DESK], number) if e.action == "reveal"]


async def test_find_by_number_and_by_text(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    number = await complaint(admin_room, fake_api)
    await ask(admin_room, ADMIN, f"/find {number}")
    await ask(admin_room, ADMIN, "/find 电梯")
    await ask(admin_room, ADMIN, "/find")
    by_number, by_text, usage = to_chat(fake_api, ADMIN_CHAT)
    for answer in (by_number, by_text):
        assert number in answer and "住建局" in answer and "电梯" in answer
        assert str(RESIDENT_CHAT) not in answer  # a search never shows the contact
    assert usage.startswith("用法")


async def test_overdue_with_nothing_late(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    await complaint(admin_room, fake_api)
    await ask(admin_room, ADMIN, "/overdue")
    assert to_chat(fake_api, ADMIN_CHAT) == ["目前没有超期工单。"]


def test_a_long_stats_table_stays_under_the_message_limit() -> None:
    many = [DepartmentFigures(f"d{i}", f"第{i}个单位的很长的名称", i, i, i, i) for i in range(400)]
    text = stats_text(datetime(2026, 11, 30, 2, 0, tzinfo=UTC), many, many)
    assert len(text) <= MESSAGE_LIMIT and text.endswith("（单位较多，其余从略）")
