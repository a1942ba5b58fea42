"""A sender's next texts: added to the ticket they just opened, and a limit on new tickets."""

from __future__ import annotations

import itertools

from conftest import FakeClock
from helpers import ROUTED_TEXT, UNROUTED_TEXT

from handlers import texts
from handlers.context import Desk
from handlers.inbound import handle_incoming
from handlers.messages import IncomingMessage, IntakeResult
from storage.models import OutboxMessage, Ticket, TicketEvent
from storage.unit_of_work import Database

PHONE = "+8613700001111"
_ids = itertools.count(1)


def desk_with(desk: Desk, **settings: int) -> Desk:
    """The same desk with follow-ups and the new-ticket limit configured."""
    config = desk.config.model_copy(update={"desk": desk.config.desk.model_copy(update=settings)})
    return Desk.build(desk.database, config, clock=desk.clock)


async def send(desk: Desk, text: str, sender: str = PHONE) -> IntakeResult:
    return await handle_incoming(desk, IncomingMessage("sms", f"SMfu{next(_ids)}", sender, text))


async def rows(database: Database, model: type) -> list:  # type: ignore[type-arg]
    from sqlalchemy import select

    async with database.reading() as uow:
        return list((await uow.session.execute(select(model))).scalars().all())


async def test_a_text_within_the_window_is_added_to_the_new_ticket(
    desk: Desk, clock: FakeClock
) -> None:
    desk = desk_with(desk, follow_up_minutes=10)
    first = await send(desk, ROUTED_TEXT)
    clock.advance(minutes=9)
    second = await send(desk, "补充：是3号楼的电梯")

    assert second.ticket_number == first.ticket_number
    assert second.reply == texts.details_appended(first.ticket_number or "")
    [ticket] = await rows(desk.database, Ticket)
    assert ticket.text.endswith("【补充】补充：是3号楼的电梯")
    events = [e.action for e in await rows(desk.database, TicketEvent)]
    assert events.count("add_details") == 1
    # The department handling it hears of the new details in its group.
    notices = [m for m in await rows(desk.database, OutboxMessage) if m.purpose == "department"]
    assert any("补充材料" in m.body for m in notices)


async def test_after_the_window_a_text_opens_a_new_ticket(desk: Desk, clock: FakeClock) -> None:
    desk = desk_with(desk, follow_up_minutes=10)
    first = await send(desk, ROUTED_TEXT)
    clock.advance(minutes=10, seconds=1)
    second = await send(desk, "另外小区门口的路灯也坏了")
    assert second.ticket_number not in (None, first.ticket_number)
    assert len(await rows(desk.database, Ticket)) == 2


async def test_other_senders_and_commands_are_not_follow_ups(desk: Desk) -> None:
    desk = desk_with(desk, follow_up_minutes=10)
    first = await send(desk, ROUTED_TEXT)
    other = await send(desk, "小区噪音太大", sender="+8613700002222")
    query = await send(desk, f"查询 {first.ticket_number}")
    assert other.ticket_number not in (None, first.ticket_number)
    assert query.ticket_number is None and first.ticket_number in query.reply
    [own] = [t for t in await rows(desk.database, Ticket) if t.number == first.ticket_number]
    assert "【补充】" not in own.text


async def test_window_off_means_every_text_is_a_ticket(desk: Desk) -> None:
    desk = desk_with(desk, follow_up_minutes=0)
    first = await send(desk, ROUTED_TEXT)
    second = await send(desk, UNROUTED_TEXT)
    assert second.ticket_number not in (None, first.ticket_number)


async def test_new_tickets_per_sender_are_limited_in_the_window(
    desk: Desk, clock: FakeClock
) -> None:
    desk = desk_with(desk, follow_up_minutes=0, new_ticket_limit=3, new_ticket_window_minutes=10)
    numbers = []
    for n in range(3):
        numbers.append((await send(desk, f"{ROUTED_TEXT}{n}")).ticket_number)
        clock.advance(minutes=1)
    refused = await send(desk, "第四件事：路灯坏了")
    assert refused.ticket_number is None
    assert refused.reply == texts.rate_limited(10)
    # Someone else is not limited by this sender.
    assert (await send(desk, "路灯坏了", sender="+8613700003333")).ticket_number is not None
    # Once the oldest falls out of the window the sender may open another.
    clock.advance(minutes=8)
    assert (await send(desk, "第五件事：路灯坏了")).ticket_number is not None
    assert len(await rows(desk.database, Ticket)) == 5
    # The refusal went back to the sender, and nowhere else.
    refusals = [
        m for m in await rows(desk.database, OutboxMessage) if m.body == texts.rate_limited(10)
    ]
    assert [m.recipient for m in refusals] == [PHONE]
