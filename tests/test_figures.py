"""The admin room's figures and look-ups, at the handler level.

Tickets are registered through intake and moved with the real handlers; the
FakeClock (a Monday, 10:00 in Shanghai) decides what "today", "this week"
and "overdue" mean.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import FakeClock
from helpers import (
    CONDUCT_TEXT,
    ROUTED_TEXT,
    UNROUTED_TEXT,
    centre_actor,
    drive_to,
    events,
    load_ticket,
    outbox_rows,
    register,
    staff_actor,
)

from handlers.context import Desk
from handlers.errors import NotAuthorised, TicketNotFound
from handlers.figures import (
    DepartmentFigures,
    days_between,
    desk_figures,
    find_tickets,
    handle_reveal,
    overdue_tickets,
    start_of_day,
    start_of_week,
    total_of,
)
from handlers.workflow import Status

NOISE_TEXT = "工厂噪音污染严重，晚上还有臭味"


def by_code(figures: list[DepartmentFigures]) -> dict[str | None, tuple[int, int, int, int]]:
    return {f.code: (f.received, f.closed, f.open, f.overdue) for f in figures}


def test_today_and_this_week_start_at_midnight_in_shanghai() -> None:
    # Sunday 23:30 in Shanghai is still last week; Monday 00:30 is this one.
    sunday_night = datetime(2026, 11, 29, 15, 30, tzinfo=UTC)
    monday_early = datetime(2026, 11, 29, 16, 30, tzinfo=UTC)
    assert start_of_week(sunday_night) == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)
    assert start_of_week(monday_early) == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
    assert start_of_day(sunday_night) == datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
    # Thursday 20:00 UTC is already Friday in Shanghai.
    thursday = datetime(2026, 12, 3, 20, 0, tzinfo=UTC)
    assert start_of_day(thursday) == datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    assert start_of_week(thursday) == datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
    assert days_between(sunday_night, monday_early) == 1


async def test_counts_per_department_today_and_this_week(desk: Desk, clock: FakeClock) -> None:
    clock.advance(days=-3)  # last Friday: received last week, still open
    await register(desk, ROUTED_TEXT)
    clock.advance(days=3)  # Monday 10:00
    resolved = await register(desk, ROUTED_TEXT)
    await register(desk, ROUTED_TEXT)
    noise = await register(desk, NOISE_TEXT)
    await register(desk, UNROUTED_TEXT)
    await drive_to(desk, resolved, Status.RESOLVED)
    noise_department = (await load_ticket(desk, noise)).department_id
    assert noise_department is not None

    today = by_code(await desk_figures(desk, start_of_day(clock())))
    assert today["zhujian"] == (2, 1, 2, 0)
    assert today["huanbao"] == (1, 0, 1, 0)
    assert today[None] == (1, 0, 1, 0)  # 待分派: in triage
    # Every active department has a row, nothing to report included.
    assert today["chengguan"] == (0, 0, 0, 0)

    clock.advance(days=1)  # Tuesday
    today = by_code(await desk_figures(desk, start_of_day(clock())))
    week = await desk_figures(desk, start_of_week(clock()))
    assert today["zhujian"] == (0, 0, 2, 0)
    assert by_code(week)["zhujian"] == (2, 1, 2, 0)  # Friday's ticket was last week
    total = total_of(week)
    assert (total.received, total.closed, total.open) == (4, 1, 4)


async def test_overdue_once_the_clock_passes_the_deadline(desk: Desk, clock: FakeClock) -> None:
    late = await register(desk, ROUTED_TEXT)
    await drive_to(desk, late, Status.CLAIMED)
    done = await register(desk, ROUTED_TEXT)
    await drive_to(desk, done, Status.RESOLVED)
    waiting = await register(desk, UNROUTED_TEXT)
    deadline = (await load_ticket(desk, late)).deadline_at
    assert deadline is not None
    assert await overdue_tickets(desk) == []

    clock.now = deadline  # the last second of the last working day: not yet late
    assert await overdue_tickets(desk) == []

    clock.advance(days=3)
    [overdue] = await overdue_tickets(desk)
    assert (overdue.number, overdue.department, overdue.status) == (late, "住建局", "claimed")
    assert (overdue.deadline_at, overdue.days_overdue) == (deadline, 3)
    figures = by_code(await desk_figures(desk, start_of_week(clock())))
    assert figures["zhujian"][2:] == (1, 1)  # open 1 (the resolved one is not), overdue 1
    assert figures[None][2:] == (1, 0)  # triage has no deadline to miss
    assert waiting not in [t.number for t in await overdue_tickets(desk)]


async def test_overdue_lists_the_most_overdue_first_up_to_the_limit(
    desk: Desk, clock: FakeClock
) -> None:
    first = await register(desk, ROUTED_TEXT)
    clock.advance(days=7)
    second = await register(desk, ROUTED_TEXT)
    clock.advance(days=60)
    assert [t.number for t in await overdue_tickets(desk)] == [first, second]
    assert [t.number for t in await overdue_tickets(desk, limit=1)] == [first]


async def test_find_by_number_and_by_text(desk: Desk) -> None:
    older = await register(desk, ROUTED_TEXT)
    noise = await register(desk, NOISE_TEXT)
    newer = await register(desk, ROUTED_TEXT)

    [found] = await find_tickets(desk, noise)
    assert (found.number, found.department, found.text) == (noise, "生态环境局", NOISE_TEXT)
    assert [t.number for t in await find_tickets(desk, "电梯")] == [newer, older]
    assert [t.number for t in await find_tickets(desk, "电梯", limit=1)] == [newer]
    assert await find_tickets(desk, "燃气") == []
    assert await find_tickets(desk, "   ") == []
    # LIKE's wildcards are searched for literally, not as "anything".
    assert await find_tickets(desk, "%") == []


async def test_find_leaves_out_a_conduct_complaint_about_the_viewers_department(
    desk: Desk,
) -> None:
    conduct = await register(desk, CONDUCT_TEXT)
    clerk = await staff_actor(desk, 503, "chengguan")  # the accused department
    assert [t.number for t in await find_tickets(desk, conduct)] == [conduct]
    assert await find_tickets(desk, conduct, viewer=clerk) == []


async def test_reveal_is_audited_and_answered_in_the_admin_room(desk: Desk) -> None:
    number = await register(desk, ROUTED_TEXT, sender="+8613900001111")
    revealed = await handle_reveal(desk, number, await centre_actor(desk), 900)
    assert (revealed.channel, revealed.address) == ("sms", "+8613900001111")
    [event] = [e for e in await events(desk, number) if e.action == "reveal"]
    assert event.detail["telegram_user_id"] == 900
    assert "+8613900001111" not in str(event.detail)
    [answer] = [m for m in await outbox_rows(desk, number) if m.purpose == "admin"]
    assert answer.recipient == str(desk.config.desk.admin_chat_id)
    assert "+8613900001111" in answer.body and number in answer.body


async def test_reveal_is_refused_to_anyone_but_a_centre_admin(desk: Desk) -> None:
    number = await register(desk, ROUTED_TEXT)
    clerk = await staff_actor(desk, 501, "zhujian")
    with pytest.raises(NotAuthorised):
        await handle_reveal(desk, number, clerk, 501)
    with pytest.raises(TicketNotFound):
        await handle_reveal(desk, "260009999", await centre_actor(desk), 900)
    assert not [e for e in await events(desk, number) if e.action == "reveal"]
    assert not [m for m in await outbox_rows(desk, number) if m.purpose == "admin"]
