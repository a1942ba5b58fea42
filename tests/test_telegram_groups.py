"""Department groups: /bind from the group itself, and a group's upgrade to a supergroup."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from fake_telegram import FakeBotApi
from test_telegram_resident import (  # noqa: F401 - fixtures, used by name
    client,
    deliver,
    fake_api,
    settle,
)

from bot.app import DESK
from handlers.desk_config import DeskConfig
from handlers.directory_sync import sync_directory

ADMIN, CLERK = 900, 501
NEW_GROUP = -2002
_ids = itertools.count(5000)


def group_message(text: str, user_id: int, chat_id: int, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": next(_ids),
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "supergroup", "title": "工作群"},
        "from": {"id": user_id, "is_bot": False, "first_name": "员"},
        **extra,
    }
    if text:
        message["text"] = text
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return {"update_id": next(_ids), "message": message}


@pytest.fixture
def desk_config(desk_config: DeskConfig) -> DeskConfig:
    """The test desk with 生态环境局's group left out of the file (to be bound by /bind).

    It overrides conftest's, so test_telegram_resident's ``client`` serves it.
    """
    departments = [
        d.model_copy(update={"chat_id": None}) if d.code == "huanbao" else d
        for d in desk_config.departments
    ]
    return desk_config.model_copy(update={"departments": departments})


async def chat_of(desk_client: TestClient, code: str) -> int | None:  # type: ignore[type-arg]
    async with desk_client.server.app[DESK].database.reading() as uow:
        department = await uow.directory.department_by_code(code)
    assert department is not None
    return department.chat_id


async def test_an_admin_binds_a_group_and_a_restart_keeps_it(
    client: TestClient,  # type: ignore[type-arg]  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
    desk_config: DeskConfig,
) -> None:
    assert await chat_of(client, "huanbao") is None
    await deliver(client, group_message("/bind huanbao", ADMIN, NEW_GROUP))
    await settle(client)
    assert await chat_of(client, "huanbao") == NEW_GROUP
    [answer] = [m["text"] for m in fake_api.sent_messages() if m["chat_id"] == NEW_GROUP]
    assert "市生态环境局" in answer
    # The file does not name the group: syncing it again (a restart) keeps the binding.
    await sync_directory(client.server.app[DESK].database, desk_config)
    assert await chat_of(client, "huanbao") == NEW_GROUP


@pytest.mark.parametrize(
    ("user", "command", "expected"),
    [
        (CLERK, "/bind huanbao", "管理员"),  # a clerk may not
        (ADMIN, "/bind nosuch", "没有这个单位代码"),
        (ADMIN, "/bind zhujian", "配置文件"),  # its group is the file's
    ],
)
async def test_bind_refusals_change_nothing(
    client: TestClient,  # type: ignore[type-arg]  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
    user: int,
    command: str,
    expected: str,
) -> None:
    await deliver(client, group_message(command, user, NEW_GROUP))
    await settle(client)
    [answer] = [m["text"] for m in fake_api.sent_messages() if m["chat_id"] == NEW_GROUP]
    assert expected in answer
    assert await chat_of(client, "huanbao") is None
    assert await chat_of(client, "zhujian") == -1001


async def test_a_group_upgraded_to_a_supergroup_takes_its_department_along(
    client: TestClient,  # type: ignore[type-arg]  # noqa: F811
) -> None:
    await deliver(client, group_message("", ADMIN, -1001, migrate_to_chat_id=-100777))
    await settle(client)
    assert await chat_of(client, "zhujian") == -100777


def _member(user: dict[str, Any], status: str) -> dict[str, Any]:
    # A banned member comes with the date the ban ends (0: never).
    return {"user": user, "status": status, **({"until_date": 0} if status == "kicked" else {})}


def membership(chat_id: int, old: str, new: str) -> dict[str, Any]:
    """The bot's own membership in a group changed (my_chat_member)."""
    bot = {"id": 7000000001, "is_bot": True, "first_name": "desk"}
    return {
        "update_id": next(_ids),
        "my_chat_member": {
            "chat": {"id": chat_id, "type": "supergroup", "title": "工作群"},
            "from": {"id": ADMIN, "is_bot": False, "first_name": "李"},
            "date": int(time.time()),
            "old_chat_member": _member(bot, old),
            "new_chat_member": _member(bot, new),
        },
    }


async def test_added_to_an_unbound_group_the_bot_asks_for_bind(
    client: TestClient,  # type: ignore[type-arg]  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    await deliver(client, membership(NEW_GROUP, "left", "member"))
    await settle(client)
    [hello] = [m["text"] for m in fake_api.sent_messages() if m["chat_id"] == NEW_GROUP]
    assert "/bind" in hello


async def test_removed_from_a_departments_group_the_admin_room_is_told(
    client: TestClient,  # type: ignore[type-arg]  # noqa: F811
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    await deliver(client, membership(-1001, "member", "kicked"))
    await settle(client)
    [notice] = [m["text"] for m in fake_api.sent_messages() if m["chat_id"] == -1000]
    assert "市住房和城乡建设局" in notice
    # An unbound group's goodbye tells nobody.
    await deliver(client, membership(NEW_GROUP, "member", "left"))
    await settle(client)
    assert len([m for m in fake_api.sent_messages() if m["chat_id"] == -1000]) == 1
