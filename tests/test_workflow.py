"""The ticket workflow: state machine, actions on stored tickets, rights, deadlines, numbers."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from conftest import FakeClock
from helpers import (
    CONDUCT_TEXT,
    EXPECTED_MOVES,
    EXTENSION_DAYS,
    EXTENSION_REASON,
    REJECT_REASON,
    REOPEN_REASON,
    REPLY_TEXT,
    RESIDENT,
    RESULT_TEXT,
    RETURN_REASON,
    ROUTED_TEXT,
    TRANSFER_REASON,
    URGE_NOTE,
    centre_actor,
    citizen_actor,
    default_actor,
    department_id,
    events,
    load_ticket,
    outbox_rows,
    perform,
    register,
    staff_actor,
    ticket_in,
)
from hypothesis import given
from hypothesis import strategies as st

from handlers import texts
from handlers.context import Desk
from handlers.desk_config import DeskConfig
from handlers.directory_sync import sync_directory
from handlers.errors import IllegalTransition, InvalidInput, NotAuthorised, TicketNotFound
from handlers.queries import ticket_view
from handlers.ticket_actions import (
    ActionResult,
    handle_assign,
    handle_claim,
    handle_reply,
    handle_resolve,
    handle_return,
    handle_transfer,
)
from handlers.workflow import TRANSITIONS, Action, Rating, Status, next_status
from handlers.working_days import WorkingCalendar
from nlp.normalise import normalise
from nlp.ticket_numbers import (
    check_digit,
    find_ticket_numbers,
    format_ticket_number,
    is_valid_ticket_number,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NUMBER = "260000013"


def shanghai_end_of(day: date) -> datetime:
    """23:59:59 desk time on ``day``: when a deadline falls due."""
    return datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=SHANGHAI)


async def state(desk: Desk, number: str) -> tuple[dict[str, object], int, int]:
    """What an action could change: the ticket's columns and its event and outbox counts."""
    ticket = await load_ticket(desk, number)
    columns = {
        name: getattr(ticket, name)
        for name in (
            "status",
            "department_id",
            "co_department_ids",
            "owner_staff_id",
            "deadline_at",
            "assigned_at",
            "rating",
            "result_text",
            "resolved_at",
            "closed_at",
            "updated_at",
        )
    }
    return columns, len(await events(desk, number)), len(await outbox_rows(desk, number))


# ---------------------------------------------------------------- the state machine, pure


def test_transition_table_covers_every_action_as_designed() -> None:
    assert set(TRANSITIONS) == set(Action)
    for action, (allowed_from, _) in TRANSITIONS.items():
        assert allowed_from == set(EXPECTED_MOVES[action]), action


@pytest.mark.parametrize("action", list(Action), ids=str)
@pytest.mark.parametrize("status", list(Status), ids=str)
def test_next_status_for_every_status_and_action(status: Status, action: Action) -> None:
    expected = EXPECTED_MOVES[action].get(status)
    if expected is None:
        with pytest.raises(IllegalTransition) as caught:
            next_status(NUMBER, status.value, action)
        message = str(caught.value)
        assert NUMBER in message
        assert status.value in message
        assert action.value in message
        assert (caught.value.number, caught.value.status, caught.value.action) == (
            NUMBER,
            status.value,
            action.value,
        )
        # Safe to show: the number and the status in words, not the internals.
        label = texts.STATUS_LABELS[status.value]
        assert caught.value.resident_message == (
            f"受理编号 {NUMBER} 当前状态不能执行该操作（当前：{label}）。"
        )
    elif action is Action.RATE:
        assert next_status(NUMBER, status.value, action, Rating.SATISFIED) is Status.CLOSED
        assert next_status(NUMBER, status.value, action, Rating.BASIC) is Status.CLOSED
        assert next_status(NUMBER, status.value, action, Rating.UNSATISFIED) is Status.REOPENED
    else:
        assert next_status(NUMBER, status.value, action) is expected


# ------------------------------------------------------ every action on a stored ticket

SMS_UPDATE = ("sms", RESIDENT, "update")
ZHUJIAN_NOTICE = ("telegram", "-1001", "department")
ZHUJIAN_CARD = ("telegram", "-1001", "department_card")
HUANBAO_CARD = ("telegram", "-1002", "department_card")
ADMIN_NOTICE = ("telegram", "-1000", "admin")

# action -> the rows it queues: (channel, recipient, purpose), a fragment of the body,
# and which buttons ("card": the staff card, "rating": the 回访 question, None).
EXPECTED_ROWS: dict[Action, list[tuple[tuple[str, str, str], str, str | None]]] = {
    Action.ACCEPT: [(SMS_UPDATE, "：已受理，待分派。", None)],
    Action.REJECT: [(SMS_UPDATE, f"：不予受理。理由：{REJECT_REASON}", None)],
    Action.ASSIGN: [
        (ZHUJIAN_CARD, "【转办单】", "card"),
        (SMS_UPDATE, "：已转办。承办单位：住建局，办理时限：", None),
    ],
    Action.CLAIM: [(SMS_UPDATE, "：已签收。", None)],
    Action.REPLY: [(SMS_UPDATE, f"：办理中。答复：{REPLY_TEXT}", None)],
    Action.RETURN: [
        (ADMIN_NOTICE, f"【退单】受理编号 {{number}}，理由：{RETURN_REASON}", "triage"),
        (SMS_UPDATE, "：重新分派中。", None),
    ],
    Action.TRANSFER: [
        (HUANBAO_CARD, "【转办单】", "card"),
        (SMS_UPDATE, "：已转办。承办单位：生态环境局，办理时限：", None),
    ],
    Action.RESOLVE: [
        (SMS_UPDATE, f"：已办结，待评价。办理结果：{RESULT_TEXT}", None),
        (("sms", RESIDENT, "prompt"), "办理结果评价", "rating"),
    ],
    Action.RATE: [(SMS_UPDATE, "感谢您的评价（满意）", None)],
    Action.REOPEN: [
        (ZHUJIAN_NOTICE, f"【重新办理】受理编号 {{number}}，原因：{REOPEN_REASON}", None),
        (ZHUJIAN_CARD, "【重新办理】受理编号 {number}\n", "card"),
        (SMS_UPDATE, "：重新办理。", None),
    ],
    Action.URGE: [(ZHUJIAN_NOTICE, "【催办】受理编号 {number}，办理时限 ", None)],
    Action.REQUEST_EXTENSION: [
        (
            ADMIN_NOTICE,
            f"【延期申请】受理编号 {{number}}，住建局申请延长{EXTENSION_DAYS}个工作日",
            "extension",
        )
    ],
}


def expected_buttons(kind: str | None, number: str) -> list[list[dict[str, str]]] | None:
    """The inline keyboard a row carries."""
    if kind == "card":
        # A card waiting to be claimed (转办, 重新办理).
        rows = [
            [("签收", "claim")],
            [("退单", "return"), ("转办", "transfer"), ("申请延期", "extend")],
        ]
        return [
            [{"text": text, "data": f"t:{number}:{action}"} for text, action in row] for row in rows
        ]
    if kind == "extension":
        return [
            [
                {"text": "同意延期", "data": f"e:{number}:{EXTENSION_DAYS}:y"},
                {"text": "不同意", "data": f"e:{number}:{EXTENSION_DAYS}:n"},
            ]
        ]
    if kind == "triage":
        # Returned by the category's own department: only "other departments" is left.
        return [[{"text": "其他单位", "data": f"o:{number}"}]]
    if kind == "rating":
        labels = [("满意", "1"), ("基本满意", "2"), ("不满意", "3")]
        return [[{"text": text, "data": f"r:{number}:{value}"} for text, value in labels]]
    return None


async def expected_detail(desk: Desk, action: Action) -> dict[str, object]:
    """The audit detail of ``perform(action)`` on a zhujian ticket."""
    zhujian = await department_id(desk, "zhujian")
    clerk = await staff_actor(desk, 501, "zhujian")
    return {
        Action.ACCEPT: {},
        Action.REJECT: {"reason": REJECT_REASON},
        Action.ASSIGN: {"department": "zhujian", "co_departments": []},
        Action.CLAIM: {"owner_staff_id": clerk.staff_id},
        Action.REPLY: {"text": REPLY_TEXT},
        Action.RETURN: {
            "reason": RETURN_REASON,
            "from_department_id": zhujian,
            "corrected_category": None,
        },
        Action.TRANSFER: {
            "from_department_id": zhujian,
            "department": "huanbao",
            "reason": TRANSFER_REASON,
            "corrected_category": None,
        },
        Action.RESOLVE: {"result": RESULT_TEXT},
        Action.RATE: {"rating": "satisfied"},
        Action.REOPEN: {"reason": REOPEN_REASON},
        Action.URGE: {"note": URGE_NOTE},
        Action.REQUEST_EXTENSION: {"days": EXTENSION_DAYS, "reason": EXTENSION_REASON},
    }[action]


# Two starts per action where it is refused: a near miss and a far one.
ILLEGAL_STARTS: dict[Action, tuple[Status, Status]] = {
    Action.ACCEPT: (Status.ACCEPTED, Status.ASSIGNED),
    Action.REJECT: (Status.ASSIGNED, Status.CLOSED),
    Action.ASSIGN: (Status.RECEIVED, Status.ASSIGNED),
    Action.CLAIM: (Status.ACCEPTED, Status.CLAIMED),
    Action.REPLY: (Status.ASSIGNED, Status.RESOLVED),
    Action.RETURN: (Status.RETURNED, Status.RESOLVED),
    Action.TRANSFER: (Status.RECEIVED, Status.CLOSED),
    Action.RESOLVE: (Status.ASSIGNED, Status.REOPENED),
    Action.RATE: (Status.IN_PROGRESS, Status.CLOSED),
    Action.REOPEN: (Status.IN_PROGRESS, Status.REJECTED),
    Action.URGE: (Status.RESOLVED, Status.RETURNED),
    Action.REQUEST_EXTENSION: (Status.RESOLVED, Status.ACCEPTED),
    Action.DECIDE_EXTENSION: (Status.RESOLVED, Status.RETURNED),
}
# Every legal start of every action, and its two refused starts. Deciding an
# extension needs a request first: its legal starts are in tests/test_extension.py.
ACTION_CASES = [
    pytest.param(action, start, id=f"{action}-from-{start}")
    for action in Action
    for start in [
        *(EXPECTED_MOVES[action] if action is not Action.DECIDE_EXTENSION else ()),
        *ILLEGAL_STARTS[action],
    ]
]


@pytest.mark.parametrize(("action", "start"), ACTION_CASES)
async def test_action_on_stored_ticket(desk: Desk, action: Action, start: Status) -> None:
    number = await ticket_in(desk, start)
    actor = await default_actor(desk, number, action)
    before = await state(desk, number)
    events_before = len(await events(desk, number))
    rows_before = len(await outbox_rows(desk, number))
    expected = EXPECTED_MOVES[action].get(start)

    if expected is None:
        with pytest.raises(IllegalTransition, match=f"{number}.*{action.value}.*{start.value}"):
            await perform(desk, number, action, actor=actor)
        assert await state(desk, number) == before
        return

    assert await perform(desk, number, action, actor=actor) == ActionResult(number, expected.value)
    assert (await load_ticket(desk, number)).status == expected.value
    new_events = (await events(desk, number))[events_before:]
    assert [(e.actor, e.action, e.from_status, e.to_status, e.detail) for e in new_events] == [
        (
            actor.label,
            action.value,
            start.value,
            expected.value,
            await expected_detail(desk, action),
        )
    ]
    new_rows = (await outbox_rows(desk, number))[rows_before:]
    assert [(r.channel, r.recipient, r.purpose) for r in new_rows] == [
        where for where, _, _ in EXPECTED_ROWS[action]
    ]
    for row, (_, fragment, buttons) in zip(new_rows, EXPECTED_ROWS[action], strict=True):
        assert number in row.body
        assert fragment.format(number=number) in row.body
        assert row.buttons == expected_buttons(buttons, number)
        for button in [b for line in row.buttons or [] for b in line]:
            assert len(button["data"].encode()) <= 64


# ---------------------------------------------------------------------- authorisation


async def test_another_department_cannot_even_see_the_ticket(desk: Desk) -> None:
    number = await ticket_in(desk, Status.ASSIGNED)
    before = await state(desk, number)
    huanbao_clerk = await staff_actor(desk, 502, "huanbao")

    with pytest.raises(TicketNotFound):
        await handle_claim(desk, number, huanbao_clerk)

    assert await state(desk, number) == before


@pytest.mark.parametrize("action", [a for a in Action if a is not Action.RATE], ids=str)
async def test_resident_may_only_rate(desk: Desk, action: Action) -> None:
    start = next(iter(EXPECTED_MOVES[action]))
    number = await ticket_in(desk, start)
    before = await state(desk, number)

    with pytest.raises(NotAuthorised):
        await perform(desk, number, action, actor=await citizen_actor(desk, number))

    assert await state(desk, number) == before


async def test_clerk_who_does_not_own_a_claimed_ticket_cannot_act_on_it(desk: Desk) -> None:
    # 首问负责制: 王科员 (501) claimed it; a second zhujian clerk may not resolve it,
    # the department's supervisor may.
    config = desk.config.model_dump()
    config["staff"] += [
        {"telegram_user_id": 511, "department": "zhujian", "role": "clerk"},
        {"telegram_user_id": 512, "department": "zhujian", "role": "supervisor"},
    ]
    await sync_directory(desk.database, DeskConfig.model_validate(config))
    number = await ticket_in(desk, Status.CLAIMED)
    before = await state(desk, number)

    with pytest.raises(NotAuthorised, match="owned by"):
        await handle_resolve(desk, number, await staff_actor(desk, 511, "zhujian"), "已处理")
    assert await state(desk, number) == before

    supervisor = await staff_actor(desk, 512, "zhujian")
    assert await handle_resolve(desk, number, supervisor, "已处理") == ActionResult(
        number, "resolved"
    )


async def test_over_long_result_is_refused_before_anything_changes(desk: Desk) -> None:
    number = await ticket_in(desk, Status.CLAIMED)
    clerk = await staff_actor(desk, 501, "zhujian")
    limit = desk.config.desk.max_reply_chars
    before = await state(desk, number)

    with pytest.raises(InvalidInput) as caught:
        await handle_resolve(desk, number, clerk, "修" * (limit + 1))

    assert caught.value.resident_message == f"内容过长（{limit + 1}字），请精简到{limit}字以内。"
    assert await state(desk, number) == before
    assert await handle_resolve(desk, number, clerk, "修" * limit) == ActionResult(
        number, "resolved"
    )


async def test_transfer_keeps_the_co_handling_departments(desk: Desk) -> None:
    number = await ticket_in(desk, Status.ASSIGNED)
    centre = await centre_actor(desk)
    await handle_return(desk, number, centre, "重新分派")
    await handle_assign(desk, number, centre, "zhujian", ["huanbao", "chengguan"])

    await handle_transfer(desk, number, centre, "chengguan", "主办调整")

    ticket = await load_ticket(desk, number)
    assert ticket.department_id == await department_id(desk, "chengguan")
    assert ticket.co_department_ids == [await department_id(desk, "huanbao")]
    # The co-handler may report progress; it may not resolve.
    helper = await staff_actor(desk, 502, "huanbao")
    await handle_claim(desk, number, await staff_actor(desk, 503, "chengguan"))
    assert (await handle_reply(desk, number, helper, "已派员配合")).status == "in_progress"
    with pytest.raises(NotAuthorised):
        await handle_resolve(desk, number, helper, "已处理")


async def test_resident_cannot_rate_someone_elses_ticket(desk: Desk) -> None:
    number = await ticket_in(desk, Status.RESOLVED)
    other_number = await register(desk, ROUTED_TEXT, sender="+8613900001111")
    other = await citizen_actor(desk, other_number)
    assert other.citizen_id != (await citizen_actor(desk, number)).citizen_id
    before = await state(desk, number)

    with pytest.raises(TicketNotFound):
        await perform(desk, number, Action.RATE, actor=other, rating=Rating.UNSATISFIED)

    assert await state(desk, number) == before


async def test_conduct_complaint_is_kept_from_the_accused_department(desk: Desk) -> None:
    number = await register(desk, CONDUCT_TEXT)
    ticket = await load_ticket(desk, number)
    assert ticket.category == "作风效能"
    assert ticket.department_id == await department_id(desk, "xiaoneng")
    assert ticket.accused_department_ids == [await department_id(desk, "chengguan")]
    assert ticket.confidential is True
    assert ticket.status == Status.ASSIGNED.value
    recipients = {row.recipient for row in await outbox_rows(desk, number)}
    assert "-1004" in recipients
    assert "-1003" not in recipients

    accused = await staff_actor(desk, 503, "chengguan")
    before = await state(desk, number)
    for action in Action:
        with pytest.raises(TicketNotFound):
            await perform(desk, number, action, actor=accused)
    assert await state(desk, number) == before
    with pytest.raises(TicketNotFound):
        await ticket_view(desk, number, accused)

    view = await ticket_view(desk, number, await centre_actor(desk))
    assert (view.department, view.accused_departments) == ("效能办", ("城管局",))


async def test_accused_departments_own_admin_is_refused_too(desk: Desk) -> None:
    number = await register(desk, CONDUCT_TEXT)
    # An admin role does not make 城管局's own staff neutral about 城管局.
    accused_admin = replace(await staff_actor(desk, 503, "chengguan"), role="admin", centre=True)
    before = await state(desk, number)

    for action in (Action.URGE, Action.TRANSFER, Action.CLAIM):
        with pytest.raises(TicketNotFound):
            await perform(desk, number, action, actor=accused_admin)
    with pytest.raises(TicketNotFound):
        await ticket_view(desk, number, accused_admin)
    assert await state(desk, number) == before


async def test_return_with_unknown_category_changes_nothing(desk: Desk) -> None:
    number = await ticket_in(desk, Status.CLAIMED)
    before = await state(desk, number)

    with pytest.raises(InvalidInput):
        await handle_return(
            desk, number, await staff_actor(desk, 501, "zhujian"), "不归我们", "火星"
        )

    assert await state(desk, number) == before


async def test_conduct_complaint_cannot_be_sent_to_the_accused(desk: Desk) -> None:
    number = await register(desk, CONDUCT_TEXT)
    centre = await centre_actor(desk)
    before = await state(desk, number)

    with pytest.raises(InvalidInput) as caught:
        await handle_transfer(desk, number, centre, "chengguan", "试试")
    assert caught.value.resident_message == "该投诉不能转交被投诉单位办理。"
    assert await state(desk, number) == before

    await handle_return(desk, number, centre, "需重新研究")
    before = await state(desk, number)
    for lead, co in (("chengguan", ()), ("zhujian", ("chengguan",))):
        with pytest.raises(InvalidInput):
            await handle_assign(desk, number, centre, lead, co)
        assert await state(desk, number) == before


# ---------------------------------------------------------------------------- deadlines


async def test_assignment_on_monday_gets_ten_working_days(desk: Desk) -> None:
    number = await register(desk, ROUTED_TEXT)  # clock: Monday 2026-11-30 10:00 Shanghai

    ticket = await load_ticket(desk, number)
    assert ticket.assigned_at == datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
    assert ticket.deadline_at == shanghai_end_of(date(2026, 12, 14))
    assert ticket.priority == "normal"


async def test_urgent_complaint_gets_one_working_day_and_alerts_the_centre(desk: Desk) -> None:
    number = await register(desk, "小区燃气泄漏，物业不管")

    ticket = await load_ticket(desk, number)
    assert ticket.priority == "urgent"
    assert ticket.deadline_at == shanghai_end_of(date(2026, 12, 1))
    rows = await outbox_rows(desk, number)
    alerts = [r.body for r in rows if r.purpose == "admin" and r.recipient == "-1000"]
    assert alerts == [f"【紧急】受理编号 {number} 涉及人身安全：小区燃气泄漏，物业不管"]
    notice = next(r.body for r in rows if r.recipient == "-1001")
    assert "优先级：紧急" in notice
    assert "办理时限：2026年12月1日" in notice


async def test_national_day_holidays_and_make_up_saturday(desk: Desk, clock: FakeClock) -> None:
    # What the State Council notice says, as chinese_calendar knows it.
    golden_week = [date(2026, 10, d) for d in range(1, 8)]
    assert not any(chinese_calendar.is_workday(d) for d in golden_week)
    assert chinese_calendar.is_workday(date(2026, 10, 10))  # 调休: a Saturday worked
    working_days, day = [], date(2026, 9, 30)
    while len(working_days) < 5:
        day += timedelta(days=1)
        if chinese_calendar.is_workday(day):
            working_days.append(day)
    assert working_days == [date(2026, 10, d) for d in (8, 9, 10, 12, 13)]

    clock.now = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)  # Wednesday 10:00 Shanghai
    number = await register(desk, "工厂排放污染，臭味很大")  # 环境保护: 5 working days

    ticket = await load_ticket(desk, number)
    assert ticket.deadline_at == shanghai_end_of(working_days[-1])
    coop = [r.body for r in await outbox_rows(desk, number) if r.recipient == "-1003"]
    assert len(coop) == 1
    assert coop[0].startswith(f"【协办单】受理编号 {number}")


def test_year_without_official_calendar_uses_weekends_and_config_days(
    caplog: pytest.LogCaptureFixture,
) -> None:
    try:
        chinese_calendar.is_workday(date(2027, 3, 1))
    except NotImplementedError:
        pass
    else:
        pytest.skip("chinese_calendar now knows 2027; pick a later year")
    calendar = WorkingCalendar(extra_holidays=[date(2027, 1, 1)], extra_workdays=[date(2027, 2, 6)])

    with caplog.at_level(logging.WARNING, logger="handlers.working_days"):
        # Thursday 2026-12-31: New Year's Day (config) and the weekend are skipped.
        assert calendar.deadline(datetime(2026, 12, 31, 2, 0, tzinfo=UTC), 1) == (
            shanghai_end_of(date(2027, 1, 4))
        )
        assert calendar.add_working_days(date(2027, 3, 5), 3) == date(2027, 3, 10)
        assert calendar.is_workday(date(2027, 2, 6))  # a Saturday the config makes a workday
        assert not calendar.is_workday(date(2027, 2, 7))

    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1


# ------------------------------------------------------------------- 退单 and 回访


async def test_return_goes_back_to_triage_and_can_be_reassigned(desk: Desk) -> None:
    number = await ticket_in(desk, Status.CLAIMED)
    clerk = await staff_actor(desk, 501, "zhujian")
    rows_before = len(await outbox_rows(desk, number))

    result = await handle_return(desk, number, clerk, "应由环保部门处理", "环境保护")

    assert result == ActionResult(number, "returned")
    ticket = await load_ticket(desk, number)
    assert (ticket.department_id, ticket.owner_staff_id, ticket.deadline_at) == (None, None, None)
    assert ticket.co_department_ids == []
    last = (await events(desk, number))[-1]
    assert (last.action, last.from_status, last.to_status) == ("return", "claimed", "returned")
    assert last.detail == {
        "reason": "应由环保部门处理",
        "from_department_id": await department_id(desk, "zhujian"),
        "corrected_category": "环境保护",
    }
    # The correction is applied: the next 转办单 and deadline follow 环境保护.
    assert ticket.category == "环境保护"
    new_rows = (await outbox_rows(desk, number))[rows_before:]
    assert [(r.recipient, r.purpose) for r in new_rows] == [
        ("-1000", "admin"),
        (RESIDENT, "update"),
    ]
    assert new_rows[0].body == f"【退单】受理编号 {number}，理由：应由环保部门处理，请重新分派。"
    # The returning department no longer holds it.
    with pytest.raises(TicketNotFound):
        await handle_claim(desk, number, clerk)

    await handle_assign(desk, number, await centre_actor(desk), "huanbao")
    huanbao_clerk = await staff_actor(desk, 502, "huanbao")
    assert await handle_claim(desk, number, huanbao_clerk) == ActionResult(number, "claimed")
    ticket = await load_ticket(desk, number)
    assert ticket.department_id == await department_id(desk, "huanbao")
    assert ticket.owner_staff_id == huanbao_clerk.staff_id
    notices = [r for r in await outbox_rows(desk, number) if r.recipient == "-1002"]
    assert len(notices) == 1
    assert notices[0].buttons == expected_buttons("card", number)


async def test_unsatisfied_rating_reopens_with_a_fresh_deadline(
    desk: Desk, clock: FakeClock
) -> None:
    number = await ticket_in(desk, Status.RESOLVED)
    owner = await staff_actor(desk, 501, "zhujian")
    assert (await load_ticket(desk, number)).owner_staff_id == owner.staff_id
    clock.advance(days=10)  # Thursday 2026-12-10 10:00 Shanghai
    rows_before = len(await outbox_rows(desk, number))

    result = await perform(desk, number, Action.RATE, rating=Rating.UNSATISFIED)

    assert result == ActionResult(number, "reopened")
    ticket = await load_ticket(desk, number)
    assert ticket.rating == "unsatisfied"
    assert ticket.deadline_at == shanghai_end_of(date(2026, 12, 24))
    assert (ticket.resolved_at, ticket.closed_at) == (None, None)
    new_rows = (await outbox_rows(desk, number))[rows_before:]
    assert [(r.recipient, r.purpose) for r in new_rows] == [
        ("-1001", "department"),
        ("-1001", "department_card"),
        (RESIDENT, "update"),
    ]
    assert new_rows[0].body == (
        f"【重新办理】受理编号 {number}，原因：群众评价：不满意，办理时限：2026年12月24日。"
    )
    # The fresh card carries the buttons; the reason notice is only news.
    assert new_rows[0].buttons is None
    assert new_rows[1].body.startswith(f"【重新办理】受理编号 {number}\n")
    assert "办理时限：2026年12月24日" in new_rows[1].body
    assert new_rows[1].buttons == expected_buttons("card", number)
    assert new_rows[2].body == f"受理编号 {number}：重新办理。{texts.REOPENED_ASK}"

    # Someone else signs for it again; the first handler stays the owner (首问负责制).
    assert await handle_claim(desk, number, await centre_actor(desk)) == ActionResult(
        number, "claimed"
    )
    assert (await load_ticket(desk, number)).owner_staff_id == owner.staff_id
    await perform(desk, number, Action.RESOLVE)
    assert await perform(desk, number, Action.RATE) == ActionResult(number, "closed")


# ----------------------------------------------------------------------- ticket numbers


def test_damm_check_digit_matches_the_published_example() -> None:
    # Damm (2004) and every reference implementation: 572 -> check digit 4.
    assert check_digit("572") == "4"
    assert check_digit("5724") == "0"


@pytest.mark.parametrize(
    ("ticket_id", "year", "expected"),
    [(1, 2026, "260000019"), (13, 2026, "260000137"), (999_999, 2027, "279999998")],
)
def test_format_ticket_number(ticket_id: int, year: int, expected: str) -> None:
    assert format_ticket_number(ticket_id, year) == expected
    assert is_valid_ticket_number(expected)


def test_format_refuses_non_positive_ids() -> None:
    with pytest.raises(ValueError, match="positive"):
        format_ticket_number(0, 2026)


@pytest.mark.parametrize(
    "candidate",
    ["260000138", "26000001", "2600000190000", "２６０００００１９", "26000001x", "", " 260000019"],
)
def test_invalid_ticket_numbers_are_refused(candidate: str) -> None:
    assert not is_valid_ticket_number(candidate)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("查询 260000019", ["260000019"]),
        ("查询２６０００００１９谢谢", ["260000019"]),  # full-width, once normalised
        ("编号260000019和260000137", ["260000019", "260000137"]),
        ("查询 260000138", []),  # check digit wrong
        ("账号12600000191", []),  # inside a longer digit run
        ("电话13812345678", []),  # an 11-digit phone number is never a ticket number
    ],
)
def test_find_ticket_numbers(text: str, found: list[str]) -> None:
    assert find_ticket_numbers(normalise(text)) == found


real_numbers = st.builds(format_ticket_number, st.integers(1, 999_999), st.integers(2000, 2099))


@given(number=real_numbers, position=st.integers(0, 8), shift=st.integers(1, 9))
def test_any_single_digit_substitution_is_caught(number: str, position: int, shift: int) -> None:
    wrong = str((int(number[position]) + shift) % 10)
    typo = number[:position] + wrong + number[position + 1 :]
    assert not is_valid_ticket_number(typo)


def swap(number: str, position: int) -> str:
    """``number`` with the digits at ``position`` and ``position + 1`` exchanged."""
    return number[:position] + number[position + 1] + number[position] + number[position + 2 :]


@given(number=real_numbers, position=st.integers(0, 7))
def test_every_adjacent_swap_is_caught(number: str, position: int) -> None:
    if number[position] == number[position + 1]:
        return  # swapping equal digits changes nothing
    assert not is_valid_ticket_number(swap(number, position))


def test_swapped_09_pair_is_caught() -> None:
    # The swap Luhn cannot see: ticket 90's number with "09" typed as "90".
    number = format_ticket_number(90, 2026)
    assert number == "260000901"
    assert not is_valid_ticket_number(swap(number, 5))


async def test_numbers_issued_by_the_database_are_unique_and_valid(desk: Desk) -> None:
    numbers = [await register(desk, ROUTED_TEXT) for _ in range(12)]

    assert len(set(numbers)) == 12
    for number in numbers:
        ticket = await load_ticket(desk, number)
        assert number == format_ticket_number(ticket.id, 2026)
        assert is_valid_ticket_number(number)
        assert find_ticket_numbers(normalise(f"查询 {number}")) == [number]


async def test_number_carries_the_desk_local_year(desk: Desk, clock: FakeClock) -> None:
    clock.now = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)  # 01:00 on 1 Jan 2027, Shanghai
    number = await register(desk, ROUTED_TEXT)
    assert number.startswith("27")


async def test_conduct_complaint_naming_two_departments_reaches_neither(desk: Desk) -> None:
    number = await register(desk, "住建局和城管局互相推诿，谁都不管")
    centre = await centre_actor(desk)
    await handle_return(desk, number, centre, "重新研究")
    before = await state(desk, number)

    for accused in ("zhujian", "chengguan"):
        with pytest.raises(InvalidInput):
            await handle_assign(desk, number, centre, accused)
        with pytest.raises(TicketNotFound):
            await ticket_view(desk, number, await staff_actor(desk, 501, "zhujian"))
    assert await state(desk, number) == before
    assert await handle_assign(desk, number, centre, "huanbao") == ActionResult(number, "assigned")


# --------------------------------------------------------- learning from corrections


async def examples(desk: Desk) -> list[tuple[str, str]]:
    async with desk.database.reading() as uow:
        return [(e.label, e.source) for e in await uow.examples.latest_per_ticket()]


async def test_corrections_and_resolutions_become_labelled_examples(desk: Desk) -> None:
    number = await ticket_in(desk, Status.CLAIMED)  # routed as 城乡建设
    clerk = await staff_actor(desk, 501, "zhujian")
    centre = await centre_actor(desk)

    await handle_return(desk, number, clerk, "应由环保部门处理", "环境保护")
    assert await examples(desk) == [("环境保护", "correction")]

    await handle_assign(desk, number, centre, "huanbao")
    huanbao = await staff_actor(desk, 502, "huanbao")
    await handle_transfer(desk, number, huanbao, "chengguan", "占道问题", "城管执法")
    assert await examples(desk) == [("城管执法", "correction")]

    chengguan = await staff_actor(desk, 503, "chengguan")
    await handle_claim(desk, number, chengguan)
    await handle_resolve(desk, number, chengguan, "已清理")
    # The newest label of the ticket wins: the category it was resolved under.
    assert await examples(desk) == [("城管执法", "resolved")]
    assert (await load_ticket(desk, number)).category == "城管执法"
