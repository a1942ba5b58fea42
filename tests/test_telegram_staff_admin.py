"""``/staff`` in the admin room, end to end: centre admins add and remove department staff.

Commands reach the real webhook as Telegram would send them (by reply to the
person's message, or naming the user id), are handled by the real PTB
Application, and are answered by the outbox into the fake Bot API. What the
command changed is then tried the way it matters: the person taps a card in
their department's group, and ``staff_in_chat`` answers for them or not.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fake_telegram import FAKE_BOT_ID, FakeBotApi
from helpers import STAFF_BY_DEPARTMENT
from sqlalchemy import select
from telegram.ext import CommandHandler
from test_telegram_admin import (  # noqa: F401 - fixtures, used by name
    ADMIN_CHAT,
    SUPERVISOR,
    desk_config,
    to_chat,
)
from test_telegram_resident import (  # noqa: F401 - fixtures, used by name
    client,
    deliver,
    fake_api,
    settle,
)
from test_telegram_staff import ZHUJIAN_CHAT, complaint, last_answer, press, status

from bot.app import DESK, TELEGRAM
from bot.channels.telegram_admin import (
    NOT_A_PERSON,
    REFUSED,
    STAFF_REFUSED,
    STAFF_USAGE,
    StaffCommand,
    parse_staff_command,
)
from bot.channels.telegram_staff import REFUSED as CARD_REFUSED
from handlers.actors import staff_in_chat
from handlers.context import Desk
from handlers.directory_sync import sync_directory
from handlers.errors import NotAuthorised
from storage.models import Staff, TicketEvent

Client = TestClient[web.Request, web.Application]

ADMIN = STAFF_BY_DEPARTMENT["xiaoneng"]
CLERK = STAFF_BY_DEPARTMENT["zhujian"]
NEWCOMER, OTHER_NEWCOMER = 777, 778
HUANBAO_CHAT = -1002
GROUP_ANONYMOUS_BOT = 1087968824

_update_ids = itertools.count(800_000)
_message_ids = itertools.count(80_000)


@pytest.fixture
async def admin_room(client: Client) -> Client:  # noqa: F811
    """The app, whose front door registers /staff (checked, not assumed)."""
    application = client.app[TELEGRAM].front.application
    assert any(
        isinstance(handler, CommandHandler) and "staff" in handler.commands
        for handler in application.handlers.get(0, [])
    )
    return client


def said_by(user_id: int, text: str = "我是新来的", **extra: Any) -> dict[str, Any]:
    """A message someone posted in the admin room, as a reply quotes it."""
    return {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": {"id": ADMIN_CHAT, "type": "supergroup", "title": "中心"},
        "from": {"id": user_id, "is_bot": False, "first_name": "张", "last_name": "三"},
        "text": text,
        **extra,
    }


def staff_command(
    user_id: int, text: str, replying_to: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """/staff in the admin room, optionally as a reply."""
    message: dict[str, Any] = {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": {"id": ADMIN_CHAT, "type": "supergroup", "title": "中心"},
        "from": {"id": user_id, "is_bot": False, "first_name": "李"},
        "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}],
        **extra,
    }
    if replying_to is not None:
        message["reply_to_message"] = replying_to
    return {"update_id": next(_update_ids), "message": message}


async def staff(
    desk_client: Client,
    user_id: int,
    text: str,
    replying_to: dict[str, Any] | None = None,
    **extra: Any,
) -> None:
    await deliver(desk_client, staff_command(user_id, text, replying_to, **extra))
    await settle(desk_client)


def answers(api: FakeBotApi) -> list[str]:
    return to_chat(api, ADMIN_CHAT)


async def row(desk: Desk, user_id: int, code: str) -> Staff | None:
    """The staff row of a user in a department, active or not."""
    async with desk.database.reading() as uow:
        department = await uow.directory.department_by_code(code)
        assert department is not None
        return await uow.directory.staff_record(user_id, department.id)


async def staff_events(desk: Desk) -> list[TicketEvent]:
    async with desk.database.reading() as uow:
        return [
            e
            for e in await uow.events.without_ticket()
            if e.action in ("staff_added", "staff_removed")
        ]


async def is_staff(desk: Desk, user_id: int, chat_id: int) -> bool:
    try:
        await staff_in_chat(desk, user_id, chat_id)
    except NotAuthorised:
        return False
    return True


async def test_an_admin_adds_by_reply_and_the_newcomer_can_claim_a_card(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    desk = admin_room.app[DESK]
    number, card = await complaint(admin_room)
    await deliver(admin_room, press(NEWCOMER, card, f"t:{number}:claim"))
    await settle(admin_room)
    assert last_answer(fake_api)["text"] == CARD_REFUSED  # not yet

    await staff(admin_room, ADMIN, "/staff add zhujian", said_by(NEWCOMER))
    assert answers(fake_api) == ["已将张 三（ID 777）设为住建局的经办人员，即时生效。"]

    await deliver(admin_room, press(NEWCOMER, card, f"t:{number}:claim"))
    await settle(admin_room)
    assert await status(admin_room, number) == "claimed"
    actor = await staff_in_chat(desk, NEWCOMER, ZHUJIAN_CHAT)
    added = await row(desk, NEWCOMER, "zhujian")
    assert added is not None
    assert (added.name, added.role, added.source) == ("张 三", "clerk", "admin")
    assert actor.staff_id == added.id

    admin = await staff_in_chat(desk, ADMIN, ADMIN_CHAT)
    [event] = await staff_events(desk)
    assert (event.ticket_id, event.actor, event.action) == (None, admin.label, "staff_added")
    assert event.detail == {
        "telegram_user_id": NEWCOMER,
        "department": "zhujian",
        "role": "clerk",
        "previous_role": None,
    }


async def test_an_admin_adds_by_id_with_a_role(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    desk = admin_room.app[DESK]
    assert not await is_staff(desk, OTHER_NEWCOMER, HUANBAO_CHAT)
    await staff(admin_room, ADMIN, "/staff add 778 huanbao Supervisor")
    assert answers(fake_api) == ["已将用户（ID 778）设为生态环境局的督查人员，即时生效。"]
    assert (await staff_in_chat(desk, OTHER_NEWCOMER, HUANBAO_CHAT)).role == "supervisor"
    assert not await is_staff(desk, OTHER_NEWCOMER, ZHUJIAN_CHAT)  # that department only

    # The same again changes nothing and writes no second event.
    await staff(admin_room, ADMIN, "/staff add 778 huanbao supervisor")
    assert answers(fake_api)[-1] == "用户（ID 778）已是生态环境局的督查人员，无需变更。"
    assert len(await staff_events(desk)) == 1


async def test_removal_ends_the_rights_at_once_and_keeps_the_row(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    desk = admin_room.app[DESK]
    number, card = await complaint(admin_room)
    await staff(admin_room, ADMIN, "/staff add zhujian", said_by(NEWCOMER))
    added = await row(desk, NEWCOMER, "zhujian")
    assert added is not None

    await staff(admin_room, ADMIN, "/staff remove 777 zhujian")
    assert answers(fake_api)[-1] == "已移除张 三（ID 777）在住建局的经办人员权限，即时生效。"
    await deliver(admin_room, press(NEWCOMER, card, f"t:{number}:claim"))
    await settle(admin_room)
    assert last_answer(fake_api)["text"] == CARD_REFUSED
    assert await status(admin_room, number) == "assigned"
    assert not await is_staff(desk, NEWCOMER, ZHUJIAN_CHAT)
    removed = await row(desk, NEWCOMER, "zhujian")
    assert removed is not None and removed.id == added.id and not removed.active

    # Added again (by reply this time): the same row, active again.
    await staff(admin_room, ADMIN, "/staff add zhujian supervisor", said_by(NEWCOMER))
    back = await staff_in_chat(desk, NEWCOMER, ZHUJIAN_CHAT)
    assert (back.staff_id, back.role) == (added.id, "supervisor")
    actions = [(e.action, e.detail["role"]) for e in await staff_events(desk)]
    assert actions == [
        ("staff_added", "clerk"),
        ("staff_removed", "clerk"),
        ("staff_added", "supervisor"),
    ]


async def test_removal_by_reply_and_of_someone_without_a_role(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    desk = admin_room.app[DESK]
    await staff(admin_room, ADMIN, "/staff add 777 zhujian")
    await staff(admin_room, ADMIN, "/staff remove zhujian", said_by(NEWCOMER))
    await staff(admin_room, ADMIN, "/staff remove zhujian", said_by(NEWCOMER))
    assert answers(fake_api)[1:] == [
        "已移除用户（ID 777）在住建局的经办人员权限，即时生效。",
        "用户 777 不是住建局的工作人员。",
    ]
    assert not await is_staff(desk, NEWCOMER, ZHUJIAN_CHAT)
    assert [e.action for e in await staff_events(desk)] == ["staff_added", "staff_removed"]


async def test_a_supervisor_may_list_but_not_add_or_remove(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    desk = admin_room.app[DESK]
    await staff(admin_room, SUPERVISOR, "/staff add zhujian", said_by(NEWCOMER))
    await staff(admin_room, SUPERVISOR, "/staff add 777 zhujian")
    await staff(admin_room, SUPERVISOR, f"/staff remove {CLERK} zhujian")
    await staff(admin_room, SUPERVISOR, "/staff list zhujian")
    *refusals, listing = answers(fake_api)
    assert refusals == [STAFF_REFUSED] * 3
    assert listing.startswith("【工作人员】住建局：1人")
    assert await row(desk, NEWCOMER, "zhujian") is None
    assert await is_staff(desk, CLERK, ZHUJIAN_CHAT)
    assert await staff_events(desk) == []


@pytest.mark.parametrize("user_id", [CLERK, NEWCOMER], ids=["department-clerk", "stranger"])
async def test_anyone_but_centre_staff_is_refused(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
    user_id: int,
) -> None:
    await staff(admin_room, user_id, "/staff add 777 zhujian admin")
    await staff(admin_room, user_id, "/staff list")
    assert answers(fake_api) == [REFUSED, REFUSED]
    assert await row(admin_room.app[DESK], NEWCOMER, "zhujian") is None


async def test_staff_in_a_department_group_does_nothing(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    update = staff_command(ADMIN, "/staff add 777 zhujian")
    update["message"]["chat"] = {"id": ZHUJIAN_CHAT, "type": "supergroup", "title": "住建"}
    await deliver(admin_room, update)
    await settle(admin_room)
    assert fake_api.sent_messages() == []
    assert await row(admin_room.app[DESK], NEWCOMER, "zhujian") is None


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("/staff", STAFF_USAGE),
        ("/staff hire 777 zhujian", STAFF_USAGE),
        ("/staff add", STAFF_USAGE),
        ("/staff add 777", STAFF_USAGE),
        ("/staff add 777 zhujian clerk extra", STAFF_USAGE),
        ("/staff remove 777", STAFF_USAGE),
        ("/staff list zhujian huanbao", STAFF_USAGE),
        # No id and no reply: nobody named.
        ("/staff add zhujian", STAFF_USAGE),
        ("/staff add 777 nowhere", "没有这个单位代码。可用：zhujian、huanbao、chengguan、xiaoneng"),
        ("/staff list nowhere", "没有这个单位代码。可用：zhujian、huanbao、chengguan、xiaoneng"),
        (
            "/staff add 777 zhujian boss",
            "角色只能是 clerk（经办人员）、supervisor（督查人员）或 admin（管理员）。",
        ),
        ("/staff add 0 zhujian", "用户ID应为正整数。"),
        ("/staff add 99999999999999999999 zhujian", STAFF_USAGE),  # 20 digits: not an id
        ("/staff add 9999999999999999999 zhujian", "用户ID应为正整数。"),  # over BIGINT
        (f"/staff add {GROUP_ANONYMOUS_BOT} zhujian", NOT_A_PERSON),
    ],
)
async def test_bad_input_is_answered_and_changes_nothing(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
    text: str,
    answer: str,
) -> None:
    await staff(admin_room, ADMIN, text)
    assert answers(fake_api) == [answer]
    assert await staff_events(admin_room.app[DESK]) == []


@pytest.mark.parametrize(
    "replied",
    [
        {"from": {"id": FAKE_BOT_ID, "is_bot": True, "first_name": "Complaint Desk"}},
        {"from": {"id": 4242, "is_bot": True, "first_name": "别的机器人"}},
        {
            "from": {"id": GROUP_ANONYMOUS_BOT, "is_bot": True, "first_name": "Group"},
            "sender_chat": {"id": ADMIN_CHAT, "type": "supergroup", "title": "中心"},
        },
        {
            "from": {"id": 136817688, "is_bot": True, "first_name": "Channel"},
            "sender_chat": {"id": -1009999, "type": "channel", "title": "频道"},
        },
        # A linked channel's post forwarded into its discussion group comes
        # from Telegram's service account, which is no bot.
        {
            "from": {"id": 777000, "is_bot": False, "first_name": "Telegram"},
            "sender_chat": {"id": -1009999, "type": "channel", "title": "频道"},
        },
    ],
    ids=["this-bot", "another-bot", "anonymous-admin", "channel-post", "linked-channel"],
)
async def test_a_reply_to_no_person_is_refused(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
    replied: dict[str, Any],
) -> None:
    await staff(admin_room, ADMIN, "/staff add zhujian", {**said_by(NEWCOMER), **replied})
    assert answers(fake_api) == [NOT_A_PERSON]
    assert await staff_events(admin_room.app[DESK]) == []


async def test_a_retired_department_takes_no_staff(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    desk = admin_room.app[DESK]
    async with desk.database.transaction() as uow:
        department = await uow.directory.department_by_code("chengguan")
        assert department is not None
        department.active = False
    await staff(admin_room, ADMIN, "/staff add 777 chengguan")
    await staff(admin_room, ADMIN, "/staff list chengguan")
    assert answers(fake_api) == ["没有这个单位代码。可用：zhujian、huanbao、xiaoneng"] * 2
    assert await row(desk, NEWCOMER, "chengguan") is None


async def test_in_a_forum_topic_the_topic_start_is_no_reply(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    # Telegram puts the topic's first message in reply_to_message of every message in it.
    topic = 55
    opener = said_by(
        NEWCOMER,
        "话题",
        message_id=topic,
        forum_topic_created={"name": "人员", "icon_color": 7322096},
    )
    await staff(
        admin_room,
        ADMIN,
        "/staff add zhujian",
        opener,
        message_thread_id=topic,
        is_topic_message=True,
    )
    [sent] = fake_api.sent_messages()
    assert (sent["text"], sent["message_thread_id"]) == (STAFF_USAGE, topic)
    assert await row(admin_room.app[DESK], NEWCOMER, "zhujian") is None


async def test_an_admin_may_not_remove_or_demote_themselves(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    await staff(admin_room, ADMIN, f"/staff remove {ADMIN} xiaoneng")
    await staff(admin_room, ADMIN, f"/staff add {ADMIN} xiaoneng clerk")
    assert answers(fake_api) == [
        "不能移除您本人的权限，请由其他管理员操作。",
        "不能更改您本人的角色，请由其他管理员操作。",
    ]
    assert (await staff_in_chat(admin_room.app[DESK], ADMIN, ADMIN_CHAT)).role == "admin"


async def test_list_shows_names_roles_and_where_each_came_from(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    await staff(admin_room, ADMIN, "/staff add zhujian supervisor", said_by(NEWCOMER))
    await staff(admin_room, ADMIN, "/staff list zhujian")
    await staff(admin_room, ADMIN, "/staff list")
    await staff(admin_room, ADMIN, f"/staff remove {NEWCOMER} zhujian")
    await staff(admin_room, ADMIN, "/staff remove 501 zhujian")
    await staff(admin_room, ADMIN, "/staff list zhujian")
    _, zhujian, everyone, _, _, empty = answers(fake_api)
    assert zhujian.splitlines() == [
        "【工作人员】住建局：2人",
        "住建局（zhujian）经办人员：王科员（ID 501）（配置文件）",
        "住建局（zhujian）督查人员：张 三（ID 777）",
    ]
    lines = everyone.splitlines()
    assert lines[0] == "【工作人员】全部单位：6人"  # five from the file, one added
    assert "效能办（xiaoneng）管理员：李主任（ID 900）（配置文件）" in lines
    assert "效能办（xiaoneng）督查人员：用户（ID 901）（配置文件）" in lines
    assert empty == "该单位目前没有工作人员。"


async def test_a_config_member_removed_here_is_warned_about_and_restored_by_the_file(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    """The file stays the source of truth for whom it lists (handlers/staff_admin.py)."""
    desk = admin_room.app[DESK]
    await staff(admin_room, ADMIN, f"/staff remove {CLERK} zhujian")
    [answer] = answers(fake_api)
    assert answer.startswith("已移除王科员（ID 501）在住建局的经办人员权限，即时生效。")
    assert "配置文件中此人为住建局的经办人员，下次重启将按配置文件恢复" in answer
    assert not await is_staff(desk, CLERK, ZHUJIAN_CHAT)
    removed = await row(desk, CLERK, "zhujian")
    assert removed is not None and (removed.active, removed.source) == (False, "admin")
    [event] = await staff_events(desk)
    assert event.detail["previous_source"] == "config"

    await sync_directory(desk.database, desk.config)  # the next start
    assert await is_staff(desk, CLERK, ZHUJIAN_CHAT)

    # A role the file gives otherwise is warned about too; the same role is not.
    await staff(admin_room, ADMIN, f"/staff add {CLERK} zhujian supervisor")
    await staff(admin_room, ADMIN, f"/staff add {CLERK} zhujian clerk")
    changed, same = answers(fake_api)[1:]
    assert "下次重启将按配置文件恢复" in changed
    assert "配置文件" not in same


async def test_a_member_the_file_does_not_list_stays_removed_after_a_config_sync(
    admin_room: Client,
    fake_api: FakeBotApi,  # noqa: F811
) -> None:
    desk = admin_room.app[DESK]
    await staff(admin_room, ADMIN, "/staff add 777 zhujian")
    await staff(admin_room, ADMIN, "/staff add 778 huanbao")
    await staff(admin_room, ADMIN, "/staff remove 777 zhujian")
    assert all("配置文件" not in answer for answer in answers(fake_api))

    await sync_directory(desk.database, desk.config)

    assert not await is_staff(desk, NEWCOMER, ZHUJIAN_CHAT)
    assert await is_staff(desk, OTHER_NEWCOMER, HUANBAO_CHAT)
    async with desk.database.reading() as uow:
        rows = (await uow.session.execute(select(Staff).where(Staff.source == "admin"))).all()
    assert len(rows) == 2


@pytest.mark.parametrize(
    ("args", "parsed"),
    [
        (["list"], StaffCommand("list")),
        (["LIST", "zhujian"], StaffCommand("list", department="zhujian")),
        (["add", "zhujian"], StaffCommand("add", None, "zhujian", "clerk")),
        (["add", "zhujian", "Admin"], StaffCommand("add", None, "zhujian", "admin")),
        (["add", "42", "zhujian"], StaffCommand("add", 42, "zhujian", "clerk")),
        (["add", "42", "zhujian", "boss"], StaffCommand("add", 42, "zhujian", "boss")),
        (["remove", "zhujian"], StaffCommand("remove", None, "zhujian")),
        (["remove", "42", "zhujian"], StaffCommand("remove", 42, "zhujian")),
        ([], None),
        (["add", "-42", "zhujian"], StaffCommand("add", None, "-42", "zhujian")),
        (["remove", "zhujian", "clerk"], None),
        (["add", "42"], None),
    ],
)
def test_parse_staff_command(args: list[str], parsed: StaffCommand | None) -> None:
    assert parse_staff_command(args) == parsed
