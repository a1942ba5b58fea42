"""Staff rights come from the role table: user id and department (or its group chat)."""

from __future__ import annotations

import pytest

from handlers.actors import staff_in_chat, staff_in_department
from handlers.context import Desk
from handlers.desk_config import DeskConfig
from handlers.directory_sync import sync_directory
from handlers.errors import NotAuthorised


@pytest.mark.parametrize(
    ("user", "chat", "department", "centre"),
    [
        (501, -1001, "zhujian", False),  # a clerk in their department's group
        (900, -1004, "xiaoneng", True),  # the supervision office's admin in its group
        (900, -1000, "xiaoneng", True),  # ... and in the centre's admin room
    ],
)
async def test_a_chat_names_the_department_the_user_acts_for(
    desk: Desk, user: int, chat: int, department: str, centre: bool
) -> None:
    actor = await staff_in_chat(desk, user, chat)
    expected = await staff_in_department(desk, user, department)
    assert actor == expected
    assert actor.is_centre is centre
    assert actor.kind == "staff"


@pytest.mark.parametrize(
    ("user", "chat"),
    [
        (501, -1002),  # a zhujian clerk in huanbao's group
        (501, -1000),  # a department clerk in the admin room
        (999, -1001),  # nobody we know
        (501, -4242),  # a chat no department is bound to
    ],
)
async def test_anyone_without_a_role_in_that_chat_is_refused(
    desk: Desk, user: int, chat: int
) -> None:
    with pytest.raises(NotAuthorised):
        await staff_in_chat(desk, user, chat)


async def test_a_clerk_of_the_supervision_office_does_not_act_for_the_centre(
    desk: Desk,
) -> None:
    config = desk.config.model_dump()
    config["staff"].append({"telegram_user_id": 910, "department": "xiaoneng", "role": "clerk"})
    await sync_directory(desk.database, DeskConfig.model_validate(config))

    clerk = await staff_in_chat(desk, 910, -1004)
    assert clerk.is_centre is False
    with pytest.raises(NotAuthorised):
        await staff_in_chat(desk, 910, -1000)
