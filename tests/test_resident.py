"""Resident use cases besides complaining: 查询, 评价, 退订/订阅, 帮助, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import FakeClock
from helpers import (
    REJECT_REASON,
    REPLY_TEXT,
    RESIDENT,
    RESULT_TEXT,
    ROUTED_TEXT,
    UNROUTED_TEXT,
    drive_to,
    load_ticket,
    outbox_rows,
    perform,
    register,
    staff_actor,
)

from handlers import texts
from handlers.context import Desk
from handlers.errors import TicketNotFound
from handlers.resident import (
    ANSWER_QUEUED,
    handle_resident_command,
    help_text,
    list_open_tickets,
    opt_in,
    opt_out,
    query_ticket,
    rate_ticket,
)
from handlers.resident_commands import (
    Complaint,
    Help,
    ListOpen,
    OptIn,
    OptOut,
    Query,
    Rate,
    ResidentCommand,
    Unclear,
)
from handlers.ticket_actions import handle_reply, handle_resolve
from handlers.workflow import Action, Rating, Status
from nlp.ticket_numbers import format_ticket_number
from storage.models import Contact

S = Status
NEIGHBOUR = "+8613900001111"
STRANGER = "+8613700002222"  # has never written to the desk
NOT_FOUND = TicketNotFound("x").resident_message
# Registered tickets start on 2026-11-30; zhujian has 10 working days.
DEADLINE = "2026年12月14日"


async def new_ticket(
    desk: Desk, clock: FakeClock, status: Status = S.ASSIGNED, sender: str = RESIDENT
) -> str:
    """A fresh ticket of ``sender`` brought to ``status`` by the real handlers."""
    # Later than intake's follow-up window and new-ticket limit, so it is a new ticket.
    clock.advance(minutes=15)
    triage = status in (S.RECEIVED, S.ACCEPTED, S.REJECTED)
    number = await register(desk, UNROUTED_TEXT if triage else ROUTED_TEXT, sender=sender)
    await drive_to(desk, number, status)
    return number


async def contact(desk: Desk, address: str, channel: str = "sms") -> Contact | None:
    async with desk.database.reading() as uow:
        return await uow.directory.contact(channel, address)


async def opt_events(desk: Desk) -> list[str]:
    async with desk.database.reading() as uow:
        return [
            event.action
            for event in await uow.events.without_ticket()
            if event.action in ("opt_out", "opt_in")
        ]


# ------------------------------------------------------------------------ 查询 <编号>


async def test_a_resident_sees_the_status_of_their_own_ticket(desk: Desk, clock: FakeClock) -> None:
    number = await new_ticket(desk, clock)
    reply = await query_ticket(desk, "sms", RESIDENT, number)
    assert reply == f"受理编号 {number}：已转办。承办单位：住建局，办理时限：{DEADLINE}前。"


@pytest.mark.parametrize(
    ("status", "expected", "absent"),
    [
        (S.RECEIVED, "：已登记。我们将尽快确定承办单位。", "承办单位："),
        (S.REJECTED, f"：不予受理。理由：{REJECT_REASON}。", "承办单位"),
        (S.CLAIMED, f"：已签收。承办单位：住建局，办理时限：{DEADLINE}前。", "答复"),
        (S.IN_PROGRESS, f"办理时限：{DEADLINE}前。最新答复：{REPLY_TEXT}。", "评价"),
        (S.RESOLVED, f"：已办结，待评价。承办单位：住建局。办理结果：{RESULT_TEXT}。", "时限"),
        (S.CLOSED, f"：已办结。承办单位：住建局。办理结果：{RESULT_TEXT}。", "评价"),
    ],
)
async def test_the_status_answer_carries_what_the_resident_was_last_told(
    desk: Desk, clock: FakeClock, status: Status, expected: str, absent: str
) -> None:
    number = await new_ticket(desk, clock, status)
    reply = await query_ticket(desk, "sms", RESIDENT, number)
    assert reply.startswith(f"受理编号 {number}")
    assert expected in reply
    assert absent not in reply
    assert len(reply) <= texts.SMS_REPLY_LIMIT


async def test_a_ticket_waiting_for_a_rating_says_how_to_rate_it(
    desk: Desk, clock: FakeClock
) -> None:
    number = await new_ticket(desk, clock, S.RESOLVED)
    reply = await query_ticket(desk, "sms", RESIDENT, number)
    assert reply.endswith(f"评价请回复“评价 {number} 数字”（1满意，2基本满意，3不满意）。")


async def test_a_reply_from_before_a_reopening_is_not_shown_as_the_latest(
    desk: Desk, clock: FakeClock
) -> None:
    number = await new_ticket(desk, clock, S.IN_PROGRESS)
    await perform(desk, number, Action.RESOLVE)
    await perform(desk, number, Action.RATE, rating=Rating.UNSATISFIED)
    reopened = await query_ticket(desk, "sms", RESIDENT, number)
    assert "：重新办理。" in reopened
    assert REPLY_TEXT not in reopened
    await perform(desk, number, Action.CLAIM)
    clerk = await staff_actor(desk, 501, "zhujian")
    await handle_reply(desk, number, clerk, "已再次派人查看")
    assert (await query_ticket(desk, "sms", RESIDENT, number)).endswith(
        "最新答复：已再次派人查看。"
    )


async def test_a_long_result_is_shortened_to_fit_two_sms_segments(
    desk: Desk, clock: FakeClock
) -> None:
    number = await new_ticket(desk, clock, S.CLAIMED)
    clerk = await staff_actor(desk, 501, "zhujian")
    await handle_resolve(desk, number, clerk, "已更换电梯主板并检测合格。" * 60)
    reply = await query_ticket(desk, "sms", RESIDENT, number)
    assert len(reply) == texts.SMS_REPLY_LIMIT
    assert "办理结果：已更换电梯主板" in reply
    assert "…。评价请回复" in reply  # the rating instructions survive the cut


async def test_someone_elses_ticket_gets_the_same_answer_as_a_missing_one(
    desk: Desk, clock: FakeClock
) -> None:
    own = await new_ticket(desk, clock)
    theirs = await new_ticket(desk, clock, S.IN_PROGRESS, sender=NEIGHBOUR)
    missing = format_ticket_number(999, 2026)
    answers = {
        "someone else's": await query_ticket(desk, "sms", RESIDENT, theirs),
        "missing": await query_ticket(desk, "sms", RESIDENT, missing),
        "stranger": await query_ticket(desk, "sms", STRANGER, own),
        # The same phone's ticket is not a Telegram chat's.
        "other channel": await query_ticket(desk, "telegram", RESIDENT, own),
    }
    assert set(answers.values()) == {NOT_FOUND}
    assert NOT_FOUND.startswith("未找到该受理编号")


async def test_a_resident_whose_complaint_was_merged_may_follow_the_ticket(
    desk: Desk, clock: FakeClock
) -> None:
    number = await new_ticket(desk, clock, sender=NEIGHBOUR)
    async with desk.database.transaction() as uow:
        follower = await uow.directory.ensure_contact("sms", RESIDENT)
        await uow.directory.follow((await load_ticket(desk, number)).id, follower.id)
    reply = await query_ticket(desk, "sms", RESIDENT, number)
    assert reply.startswith(f"受理编号 {number}：已转办。")


# --------------------------------------------------------------------------- 查询


async def test_listing_shows_the_newest_open_tickets_and_how_many_more(
    desk: Desk, clock: FakeClock
) -> None:
    closed = await new_ticket(desk, clock, S.CLOSED)
    assigned = await new_ticket(desk, clock, S.ASSIGNED)
    resolved = await new_ticket(desk, clock, S.RESOLVED)
    rejected = await new_ticket(desk, clock, S.REJECTED)
    in_progress = await new_ticket(desk, clock, S.IN_PROGRESS)
    received = await new_ticket(desk, clock, S.RECEIVED)
    await new_ticket(desk, clock, S.ASSIGNED, sender=NEIGHBOUR)
    reply = await list_open_tickets(desk, "sms", RESIDENT)
    assert reply == (
        "您有4件投诉正在办理：\n"
        f"{received} 已登记\n"
        f"{in_progress} 办理中，12月14日前办结\n"
        f"{resolved} 已办结，待评价\n"
        "另有1件。详情请回复“查询 编号”。"
    )
    assert assigned not in reply  # the fourth is counted, not listed
    assert closed not in reply and rejected not in reply


async def test_listing_with_nothing_open_says_how_to_complain(desk: Desk, clock: FakeClock) -> None:
    assert await list_open_tickets(desk, "sms", STRANGER) == texts.no_open_tickets()
    await new_ticket(desk, clock, S.CLOSED)
    assert await list_open_tickets(desk, "sms", RESIDENT) == texts.no_open_tickets()


# ------------------------------------------------------------------------------ 评价


@pytest.mark.parametrize(
    ("rating", "status", "notice"),
    [
        (Rating.SATISFIED, S.CLOSED, "感谢您的评价（满意）"),
        (Rating.BASIC, S.CLOSED, "感谢您的评价（基本满意）"),
        (Rating.UNSATISFIED, S.REOPENED, texts.REOPENED_ASK),
    ],
)
async def test_rating_a_ticket_by_number(
    desk: Desk, clock: FakeClock, rating: Rating, status: Status, notice: str
) -> None:
    number = await new_ticket(desk, clock, S.RESOLVED)
    before = len(await outbox_rows(desk, number))
    reply = await rate_ticket(desk, "sms", RESIDENT, number, rating)
    # handle_rate queued the confirmation; answering too would send it twice.
    assert reply == ANSWER_QUEUED == ""
    ticket = await load_ticket(desk, number)
    assert (ticket.status, ticket.rating) == (status.value, rating.value)
    to_resident = [
        row.body for row in (await outbox_rows(desk, number))[before:] if row.recipient == RESIDENT
    ]
    assert len(to_resident) == 1
    assert notice in to_resident[0]


async def test_a_bare_rating_answers_the_latest_rating_prompt(desk: Desk, clock: FakeClock) -> None:
    older = await new_ticket(desk, clock, S.IN_PROGRESS)
    newer = await new_ticket(desk, clock, S.RESOLVED)
    clock.advance(hours=1)
    # The older ticket is resolved last, so its prompt is the latest one.
    await perform(desk, older, Action.RESOLVE)
    assert await rate_ticket(desk, "sms", RESIDENT, None, Rating.UNSATISFIED) == ""
    assert (await load_ticket(desk, older)).status == S.REOPENED
    assert (await load_ticket(desk, newer)).status == S.RESOLVED
    assert await rate_ticket(desk, "sms", RESIDENT, None, Rating.SATISFIED) == ""
    assert (await load_ticket(desk, newer)).status == S.CLOSED


async def test_a_bare_rating_with_nothing_pending_is_answered_politely(
    desk: Desk, clock: FakeClock
) -> None:
    assert await rate_ticket(desk, "sms", STRANGER, None, Rating.SATISFIED) == (
        texts.nothing_to_rate()
    )
    number = await new_ticket(desk, clock, S.IN_PROGRESS)
    await new_ticket(desk, clock, S.RESOLVED, sender=NEIGHBOUR)
    assert await rate_ticket(desk, "sms", RESIDENT, None, Rating.UNSATISFIED) == (
        texts.nothing_to_rate()
    )
    assert (await load_ticket(desk, number)).status == S.IN_PROGRESS


@pytest.mark.parametrize(
    ("status", "label"), [(S.IN_PROGRESS, "办理中"), (S.CLOSED, "已办结"), (S.REOPENED, "重新办理")]
)
async def test_rating_a_ticket_not_waiting_for_one_changes_nothing(
    desk: Desk, clock: FakeClock, status: Status, label: str
) -> None:
    number = await new_ticket(desk, clock, status)
    before = await load_ticket(desk, number)
    reply = await rate_ticket(desk, "sms", RESIDENT, number, Rating.UNSATISFIED)
    assert reply == f"受理编号 {number} 目前无需评价（当前：{label}）。"
    after = await load_ticket(desk, number)
    assert (after.status, after.rating) == (before.status, before.rating)


async def test_nobody_rates_someone_elses_ticket(desk: Desk, clock: FakeClock) -> None:
    await new_ticket(desk, clock)
    theirs = await new_ticket(desk, clock, S.RESOLVED, sender=NEIGHBOUR)
    for address in (RESIDENT, STRANGER):
        reply = await rate_ticket(desk, "sms", address, theirs, Rating.UNSATISFIED)
        assert reply == NOT_FOUND
    missing = format_ticket_number(999, 2026)
    assert await rate_ticket(desk, "sms", RESIDENT, missing, Rating.SATISFIED) == NOT_FOUND
    assert (await load_ticket(desk, theirs)).status == S.RESOLVED


async def test_rating_makes_an_unreachable_contact_reachable_for_the_confirmation(
    desk: Desk, clock: FakeClock
) -> None:
    number = await new_ticket(desk, clock, S.RESOLVED)
    async with desk.database.transaction() as uow:
        assert await uow.directory.mark_unreachable("sms", RESIDENT)
    assert await rate_ticket(desk, "sms", RESIDENT, number, Rating.SATISFIED) == ""
    rows = await outbox_rows(desk, number)
    assert "感谢您的评价（满意）" in rows[-1].body
    assert rows[-1].recipient == RESIDENT


# ------------------------------------------------------------------------ 退订/订阅


async def test_opting_out_and_in_is_recorded_once_per_change(desk: Desk) -> None:
    assert await contact(desk, STRANGER) is None
    for _ in range(2):
        assert await opt_out(desk, "sms", STRANGER) == texts.opted_out()
        known = await contact(desk, STRANGER)
        assert known is not None and known.opted_out
    assert await opt_events(desk) == ["opt_out"]
    for _ in range(2):
        assert await opt_in(desk, "sms", STRANGER) == texts.opted_in()
        known = await contact(desk, STRANGER)
        assert known is not None and not known.opted_out
    assert await opt_events(desk) == ["opt_out", "opt_in"]


async def test_after_opting_out_progress_still_comes_but_rating_prompts_do_not(
    desk: Desk, clock: FakeClock
) -> None:
    """What the opt-out reply promises is what the outbox does."""
    number = await new_ticket(desk, clock, S.IN_PROGRESS)
    await opt_out(desk, "sms", RESIDENT)
    assert "办理进度仍会告知您" in texts.opted_out()
    before = len(await outbox_rows(desk, number))
    await perform(desk, number, Action.RESOLVE)
    purposes = [
        row.purpose
        for row in (await outbox_rows(desk, number))[before:]
        if row.recipient == RESIDENT
    ]
    assert purposes == ["update"]
    await opt_in(desk, "sms", RESIDENT)
    second = await new_ticket(desk, clock, S.RESOLVED)
    assert "prompt" in [row.purpose for row in await outbox_rows(desk, second)]


async def test_opting_in_makes_an_unreachable_contact_reachable(
    desk: Desk, clock: FakeClock
) -> None:
    await new_ticket(desk, clock)
    async with desk.database.transaction() as uow:
        assert await uow.directory.mark_unreachable("sms", RESIDENT)
    await opt_in(desk, "sms", RESIDENT)
    known = await contact(desk, RESIDENT)
    assert known is not None and not known.unreachable


# ------------------------------------------------------------------- dispatching


async def test_each_command_gets_its_use_case(desk: Desk, clock: FakeClock) -> None:
    number = await new_ticket(desk, clock, S.RESOLVED)
    answers: list[tuple[ResidentCommand, str | None]] = [
        (Query(number), await query_ticket(desk, "sms", RESIDENT, number)),
        (ListOpen(), await list_open_tickets(desk, "sms", RESIDENT)),
        (Help("帮助"), help_text("12345")),
        (Unclear("query"), texts.ticket_number_unclear()),
        (Unclear("rate"), texts.rating_usage()),
        (Complaint("路灯坏了"), None),
        (OptOut("退订"), texts.opted_out()),
        (OptIn("订阅"), texts.opted_in()),
        (Rate(None, Rating.SATISFIED), ANSWER_QUEUED),
    ]
    for command, expected in answers:
        assert await handle_resident_command(desk, "sms", RESIDENT, command) == expected, command
    assert (await load_ticket(desk, number)).status == S.CLOSED


# ------------------------------------------------------------------------ lengths

LONGEST_NUMBER = format_ticket_number(9_999_999, 2099)
LONGEST_NAME = "某" * 30  # the longest short_name the config allows
SOON = datetime(2026, 12, 14, 15, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "reply",
    [
        help_text(),
        help_text("0571-12345678"),
        texts.no_open_tickets(),
        texts.nothing_to_rate(),
        texts.rating_not_pending(LONGEST_NUMBER, "accepted"),
        texts.rating_usage(),
        texts.ticket_number_unclear(),
        texts.opted_out(),
        texts.opted_in(),
        texts.rate_limited(1440),
        texts.details_appended(LONGEST_NUMBER),
        texts.media_only(),
        texts.open_tickets([(LONGEST_NUMBER, "reopened", SOON)] * 3, 999),
        texts.open_tickets([(LONGEST_NUMBER, "accepted", None)] * 3, 999),
        texts.ticket_status(
            LONGEST_NUMBER,
            "resolved",
            department=LONGEST_NAME,
            deadline=SOON,
            note_label="办理结果",
            note="很" * 1000,
        ),
        texts.ticket_status(
            LONGEST_NUMBER,
            "in_progress",
            department=LONGEST_NAME,
            deadline=SOON,
            note_label="最新答复",
            note="很" * 1000,
        ),
        texts.ticket_status(
            LONGEST_NUMBER,
            "rejected",
            department=None,
            deadline=None,
            note_label="理由",
            note="很" * 1000,
        ),
    ],
)
def test_every_answer_fits_two_sms_segments(reply: str) -> None:
    assert 0 < len(reply) <= texts.SMS_REPLY_LIMIT, reply


def test_the_sms_limit_is_two_ucs2_segments() -> None:
    assert texts.SMS_REPLY_LIMIT == 2 * 67


def test_help_names_every_keyword_and_the_phone() -> None:
    reply = help_text("12345")
    for keyword in ("查询", "评价", "退订", "订阅", "12345"):
        assert keyword in reply
