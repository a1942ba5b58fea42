"""Duplicates are merged into the open ticket; its updates reach every complainant."""

from __future__ import annotations

import pytest
from helpers import (
    RESIDENT,
    load_ticket,
    next_external_id,
    outbox_rows,
    staff_actor,
)

from handlers.context import Desk
from handlers.desk_config import DeskConfig
from handlers.intake import handle_register
from handlers.messages import Actor, IncomingMessage
from handlers.queries import ticket_view
from handlers.ticket_actions import handle_claim

SYSTEM_VIEW = Actor(kind="system", label="test")
NEIGHBOUR = "+8613900002222"
NOISE = "岳麓区望月湖小区旁边的工地每天晚上施工到凌晨两点，噪音扰民，严重影响休息"
NOISE_AGAIN = "岳麓区望月湖小区旁边的工地每天晚上施工到凌晨，噪音扰民严重影响休息，请尽快处理"


@pytest.fixture(autouse=True)
def merging_on(desk: Desk) -> None:
    """The shared test desk has merging off; these tests are about merging."""
    data = desk.config.model_dump()
    data["duplicates"]["enabled"] = True
    desk.config = DeskConfig.model_validate(data)


async def send(desk: Desk, text: str, sender: str = RESIDENT) -> tuple[str | None, str]:
    result = await handle_register(desk, IncomingMessage("sms", next_external_id(), sender, text))
    return result.ticket_number, result.reply


async def ticket_count(desk: Desk) -> int:
    async with desk.database.reading() as uow:
        return await uow.tickets.count()


async def test_the_same_resident_writing_twice_gets_the_same_ticket(desk: Desk) -> None:
    first, _ = await send(desk, NOISE)
    second, reply = await send(desk, NOISE_AGAIN)

    assert second == first
    assert await ticket_count(desk) == 1
    assert f"已合并到受理编号：{first}一并办理" in reply
    assert "承办单位：生态环境局" in reply
    assert len(reply) <= 134  # two UCS-2 SMS segments
    assert first is not None
    merges = [
        e for e in (await ticket_view(desk, first, SYSTEM_VIEW)).events if e.action == "merge"
    ]
    assert [e.detail["same_sender"] for e in merges] == [True]
    # The answer is queued to the sender, linked to the ticket.
    replies = [r for r in await outbox_rows(desk, first) if r.purpose == "reply"]
    assert [r.recipient for r in replies] == [RESIDENT]


async def test_a_neighbour_about_the_same_place_follows_the_open_ticket(desk: Desk) -> None:
    first, _ = await send(desk, NOISE)
    assert first is not None
    second, _ = await send(desk, NOISE_AGAIN, sender=NEIGHBOUR)

    assert second == first
    assert await ticket_count(desk) == 1
    # The neighbour may look it up, and hears the department's progress too.
    ticket = await load_ticket(desk, first)
    async with desk.database.reading() as uow:
        neighbour = await uow.directory.contact("sms", NEIGHBOUR)
    assert neighbour is not None
    view = await ticket_view(
        desk, first, Actor(kind="citizen", label="n", citizen_id=neighbour.citizen_id)
    )
    assert view.ticket.id == ticket.id
    before = len(await outbox_rows(desk, first))
    await handle_claim(desk, first, await staff_actor(desk, 502, "huanbao"))
    new = (await outbox_rows(desk, first))[before:]
    assert sorted(r.recipient for r in new) == sorted([RESIDENT, NEIGHBOUR])


async def test_a_similar_complaint_about_another_place_is_a_new_ticket(desk: Desk) -> None:
    first, _ = await send(desk, NOISE)
    other, _ = await send(
        desk, NOISE_AGAIN.replace("岳麓区望月湖小区", "芙蓉区东湖花园"), sender=NEIGHBOUR
    )
    assert other not in (None, first)
    assert await ticket_count(desk) == 2


async def test_the_same_resident_with_a_different_problem_gets_a_new_ticket(desk: Desk) -> None:
    first, _ = await send(desk, NOISE)
    other, _ = await send(desk, "小区电梯坏了三天，物业不管，老人上下楼很困难")
    assert other not in (None, first)


async def test_merging_can_be_switched_off(desk: Desk) -> None:
    data = desk.config.model_dump()
    data["duplicates"]["enabled"] = False
    desk.config = DeskConfig.model_validate(data)
    first, _ = await send(desk, NOISE)
    second, _ = await send(desk, NOISE)
    assert second not in (None, first)


async def test_a_conduct_complaint_is_not_merged_with_someone_elses(desk: Desk) -> None:
    text = "岳麓区望月湖社区城管局的人态度恶劣，推诿不管，占道问题一直不处理"
    first, _ = await send(desk, text)
    second, _ = await send(desk, text, sender=NEIGHBOUR)
    assert second not in (None, first)
