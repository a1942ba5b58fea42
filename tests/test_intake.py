"""投诉登记: the service card, exactly-once registration under retries and concurrency, routing."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from helpers import (
    RESIDENT,
    ROUTED_TEXT,
    UNROUTED_TEXT,
    events,
    load_ticket,
    next_external_id,
    outbox_rows,
)

from handlers import texts
from handlers.context import Desk
from handlers.desk_config import DeskConfig
from handlers.inbound import process_pending
from handlers.intake import handle_register
from handlers.messages import IncomingMessage, IntakeResult
from handlers.notify import notify_resident
from handlers.routing import CONDUCT_CATEGORY, Router
from nlp.normalise import normalise
from nlp.ticket_numbers import is_valid_ticket_number
from storage.unit_of_work import Database


def sms(
    body: str, external_id: str | None = None, *, reply_inline: bool = False
) -> IncomingMessage:
    """An SMS from the standard resident."""
    return IncomingMessage(
        "sms", external_id or next_external_id(), RESIDENT, body, reply_inline=reply_inline
    )


async def totals(database: Database) -> tuple[int, int, int]:
    """Tickets, inbound messages and queued outbox rows in the whole database."""
    async with database.reading() as uow:
        queued = await uow.outbox.with_status("pending", limit=100_000)
        return await uow.tickets.count(), await uow.inbound.count(), len(queued)


# ------------------------------------------------------------------- the service card


async def test_registration_answers_with_the_service_card(desk: Desk) -> None:
    result = await handle_register(desk, sms(ROUTED_TEXT))

    number = result.ticket_number
    assert number is not None
    assert is_valid_ticket_number(number)
    assert result.duplicate is False
    assert result.reply == (
        f"您的投诉已登记，受理编号：{number}，承办单位：住建局，"
        f"办理时限：2026年12月14日前。查询进度请回复“查询 {number}”。"
    )
    rows = await outbox_rows(desk, number)
    # The resident's card first, then the department's transfer slip.
    assert [(r.channel, r.recipient, r.purpose) for r in rows] == [
        ("sms", RESIDENT, "card"),
        ("telegram", "-1001", "department_card"),
    ]
    assert rows[0].body == result.reply
    # The department sees the complaint and a masked contact, never the number itself.
    assert "来源：短信 138****5678" in rows[1].body
    assert RESIDENT.removeprefix("+86") not in rows[1].body


async def test_same_message_three_times_is_one_ticket_with_one_answer(desk: Desk) -> None:
    message = sms(ROUTED_TEXT, external_id="SMretry")

    first = await handle_register(desk, message)
    after_first = await totals(desk.database)
    again = [await handle_register(desk, message) for _ in range(2)]

    assert after_first == (1, 1, 2)  # one ticket, one inbound row, notice + card
    assert await totals(desk.database) == after_first
    for result in again:
        assert result == IntakeResult(first.reply, first.ticket_number, duplicate=True)


async def test_inline_reply_queues_no_card(desk: Desk) -> None:
    result = await handle_register(desk, sms(ROUTED_TEXT, reply_inline=True))

    assert result.ticket_number is not None
    assert f"受理编号：{result.ticket_number}" in result.reply
    rows = await outbox_rows(desk, result.ticket_number)
    assert [(r.recipient, r.purpose) for r in rows] == [("-1001", "department_card")]


# ----------------------------------------------------------------- concurrent writers


async def test_concurrent_duplicates_make_one_ticket(desk: Desk) -> None:
    message = sms(ROUTED_TEXT, external_id="SMsame")

    results = await asyncio.gather(*(handle_register(desk, message) for _ in range(20)))

    assert len({r.reply for r in results}) == 1
    assert len({r.ticket_number for r in results}) == 1
    assert sorted(r.duplicate for r in results) == [False] + [True] * 19
    assert await totals(desk.database) == (1, 1, 2)


async def test_fifty_concurrent_writers(desk: Desk, db_backend: str) -> None:
    senders = [f"+861380000000{i % 5}" for i in range(50)]

    results = await asyncio.gather(
        *(
            handle_register(desk, IncomingMessage("sms", f"SMmany{i:02d}", sender, ROUTED_TEXT))
            for i, sender in enumerate(senders)
        )
    )

    numbers = [r.ticket_number for r in results]
    assert all(number is not None and is_valid_ticket_number(number) for number in numbers)
    assert len(set(numbers)) == 50
    assert not any(r.duplicate for r in results)
    assert await totals(desk.database) == (50, 50, 100)
    # Racing first messages from one phone still make one resident.
    citizens: dict[str, set[int]] = {}
    for sender, number in zip(senders, numbers, strict=True):
        assert number is not None
        citizens.setdefault(sender, set()).add((await load_ticket(desk, number)).citizen_id)
    assert all(len(ids) == 1 for ids in citizens.values())
    assert len(set().union(*citizens.values())) == 5
    if db_backend == "sqlite":
        async with desk.database.engine.connect() as connection:
            check = await connection.exec_driver_sql("PRAGMA integrity_check")
            assert check.scalar_one() == "ok"


# ------------------------------------------------------------------ unusable messages


@pytest.mark.parametrize(
    "body",
    ["", "   ", "\u0007\u001b\u007f", "\u200b\u200d\ufeff", " \r\n\t\u3000 "],
    ids=["empty", "spaces", "control", "format", "whitespace-mix"],
)
async def test_empty_message_gets_a_polite_answer_and_no_ticket(desk: Desk, body: str) -> None:
    message = sms(body)

    result = await handle_register(desk, message)

    assert result == IntakeResult(texts.empty_complaint(), None, duplicate=False)
    # The answer is queued for channels that do not reply inline.
    assert await totals(desk.database) == (0, 1, 1)
    async with desk.database.reading() as uow:
        stored = await uow.inbound.find("sms", message.external_id)
    assert stored is not None
    assert (stored.text, stored.ticket_id, stored.reply_text) == (body, None, result.reply)


# PostgreSQL refuses NUL in a text column: one stray NUL in an SMS must not make
# every provider retry fail and lose the complaint.
async def test_nul_character_does_not_lose_the_complaint(desk: Desk) -> None:
    result = await handle_register(desk, sms("小区电梯坏了\u0000物业不管"))

    assert result.ticket_number is not None
    assert (await load_ticket(desk, result.ticket_number)).text == "小区电梯坏了物业不管"


@pytest.mark.parametrize(("extra", "registered"), [(0, True), (1, False)])
async def test_length_limit(desk: Desk, extra: int, registered: bool) -> None:
    limit = desk.config.desk.max_text_chars
    body = "物业" + "好" * (limit - 2 + extra)

    result = await handle_register(desk, sms(body))

    assert (result.ticket_number is not None) is registered
    if not registered:
        assert result.reply == texts.complaint_too_long(limit)
        assert await totals(desk.database) == (0, 1, 1)


async def test_refusal_is_not_queued_when_the_channel_replies_inline(desk: Desk) -> None:
    result = await handle_register(desk, replace(sms("   "), reply_inline=True))

    assert result.reply == texts.empty_complaint()
    assert await totals(desk.database) == (0, 1, 0)


async def test_full_width_text_is_routed_and_stored_as_written(desk: Desk) -> None:
    body = "１２号楼　小区电梯坏了，物业不管！ＡＢＣ"

    result = await handle_register(desk, sms(body))

    assert result.ticket_number is not None
    ticket = await load_ticket(desk, result.ticket_number)
    assert (ticket.category, ticket.status) == ("城乡建设", "assigned")
    # Stored as the resident wrote it (full-width kept), only whitespace folded.
    assert ticket.text == "１２号楼 小区电梯坏了，物业不管！ＡＢＣ"


async def test_low_confidence_waits_in_triage(desk: Desk) -> None:
    result = await handle_register(desk, sms(UNROUTED_TEXT))

    number = result.ticket_number
    assert number is not None
    assert result.reply == (
        f"您的投诉已登记，受理编号：{number}。"
        f"我们将在1个工作日内确定承办单位并告知您。查询进度请回复“查询 {number}”。"
    )
    ticket = await load_ticket(desk, number)
    assert (ticket.status, ticket.department_id, ticket.deadline_at) == ("received", None, None)
    rows = await outbox_rows(desk, number)
    assert [(r.recipient, r.purpose) for r in rows] == [("-1000", "admin"), (RESIDENT, "card")]
    assert rows[0].body == f"【待分派】受理编号 {number}，建议类别：无。\n内容：{UNROUTED_TEXT}"


async def test_split_evidence_waits_in_triage_with_suggestions(desk: Desk) -> None:
    result = await handle_register(desk, sms("物业占道，噪音扰民"))

    assert result.ticket_number is not None
    assert (await load_ticket(desk, result.ticket_number)).status == "received"
    notice = (await outbox_rows(desk, result.ticket_number))[0].body
    suggested = notice.split("建议类别：")[1].split("。")[0].split("、")
    assert sorted(suggested) == sorted(["城乡建设", "环境保护", "城管执法"])


# ---------------------------------------------------------------------------- routing


@pytest.mark.parametrize(
    ("body", "category", "department", "co_departments", "urgent"),
    [
        ("小区电梯坏了三天，物业不管", "城乡建设", "zhujian", (), False),
        ("工厂排放污染，晚上臭味很大", "环境保护", "huanbao", ("chengguan",), False),
        ("路口摊贩占道经营", "城管执法", "chengguan", (), False),
        ("小区燃气泄漏，物业不管", "城乡建设", "zhujian", (), True),
        ("楼道里着火了", None, None, (), True),
        ("我想反映一个情况", None, None, (), False),
    ],
)
def test_route_by_keywords(
    desk_config: DeskConfig,
    body: str,
    category: str | None,
    department: str | None,
    co_departments: tuple[str, ...],
    urgent: bool,
) -> None:
    decision = Router(desk_config).route(normalise(body))

    assert decision.category == category
    assert decision.department == department
    assert decision.co_departments == co_departments
    assert decision.urgent is urgent
    assert decision.accused_departments == ()
    assert decision.needs_triage is (department is None)


@pytest.mark.parametrize(
    ("body", "accused", "department", "evidence"),
    [
        ("城管局的人态度恶劣，推诿不管", ("chengguan",), "xiaoneng", ("态度恶劣", "推诿")),
        ("市城市管理综合执法局长期不作为", ("chengguan",), "xiaoneng", ("不作为",)),
        ("综合执法局的人推诿", ("chengguan",), "xiaoneng", ("推诿",)),
        ("环保局乱收费", ("huanbao",), "xiaoneng", ("乱收费",)),
        ("住建的工作人员态度恶劣", ("zhujian",), "xiaoneng", ("态度恶劣",)),
        ("窗口工作人员态度恶劣", (), "xiaoneng", ("态度恶劣",)),
        # 推诿扯皮 between two departments: both are accused, in order of mention.
        ("住建局和城管局互相推诿", ("zhujian", "chengguan"), "xiaoneng", ("推诿",)),
        # About the supervision office itself: the centre's administrators decide.
        ("效能办的人推诿", ("xiaoneng",), None, ("推诿",)),
    ],
)
def test_conduct_complaints_go_to_supervision(
    desk_config: DeskConfig,
    body: str,
    accused: tuple[str, ...],
    department: str | None,
    evidence: tuple[str, ...],
) -> None:
    decision = Router(desk_config).route(normalise(body))

    assert decision.category == CONDUCT_CATEGORY
    assert decision.accused_departments == accused
    assert decision.department == department
    assert decision.evidence == evidence
    assert decision.confidence == 1.0


@pytest.mark.parametrize(
    ("body", "accused"),
    [
        ("综合执法局的人推诿", ("chengguan",)),
        ("执法局的人推诿", ("zhifa",)),
        ("城管局不作为", ("chengguan",)),
        ("执法局和综合执法局都不作为", ("zhifa", "chengguan")),
    ],
)
def test_longest_department_name_wins(
    desk_config: DeskConfig, body: str, accused: tuple[str, ...]
) -> None:
    # A department whose short name is inside chengguan's alias 综合执法局, listed
    # first, so only the length of the match can decide.
    config = desk_config.model_dump()
    config["departments"].insert(
        0, {"code": "zhifa", "name": "市交通执法局", "short_name": "执法局", "aliases": []}
    )
    router = Router(DeskConfig.model_validate(config))

    assert router.route(normalise(body)).accused_departments == accused


async def test_conduct_complaint_is_registered_confidential(desk: Desk) -> None:
    result = await handle_register(desk, sms("城管局的人态度恶劣，推诿不管"))

    assert result.ticket_number is not None
    assert "承办单位：效能办" in result.reply
    ticket = await load_ticket(desk, result.ticket_number)
    assert ticket.confidential is True
    async with desk.database.reading() as uow:
        accused = await uow.directory.department_by_code("chengguan")
        events = await uow.events.for_ticket(ticket.id)
    assert accused is not None
    assert ticket.accused_department_ids == [accused.id]
    route = next(e for e in events if e.action == "route")
    assert route.detail["accused_departments"] == ["chengguan"]
    assert route.detail["department"] == "xiaoneng"


# ------------------------------------------------------- interrupted processing


async def store_only(desk: Desk, message: IncomingMessage) -> None:
    """What a process that died right after committing the message left behind."""
    async with desk.database.transaction() as uow:
        stored = await uow.inbound.record(
            channel=message.channel,
            external_id=message.external_id,
            sender=message.sender,
            text=message.text,
            raw_payload={},
        )
    assert stored is not None


async def test_a_retry_processes_a_message_stored_before_a_crash(desk: Desk) -> None:
    message = sms("小区电梯坏了三天，物业不管")
    await store_only(desk, message)

    first = await handle_register(desk, message)
    again = await handle_register(desk, message)

    assert first.ticket_number is not None
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.reply == first.reply
    assert (await totals(desk.database))[:2] == (1, 1)


async def test_start_up_processes_messages_left_unanswered(desk: Desk) -> None:
    await store_only(desk, sms("小区电梯坏了三天，物业不管"))
    await store_only(desk, sms(""))

    assert await process_pending(desk) == 2
    assert await process_pending(desk) == 0

    tickets, inbound, _ = await totals(desk.database)
    assert (tickets, inbound) == (1, 2)
    async with desk.database.reading() as uow:
        queued = await uow.outbox.with_status("pending", limit=100)
    # The answers go out by the outbox: the card and the polite refusal.
    assert {row.purpose for row in queued if row.recipient == RESIDENT} == {"card", "reply"}


async def test_unreachable_resident_who_writes_again_gets_the_card(desk: Desk) -> None:
    first = await handle_register(desk, sms("小区电梯坏了三天，物业不管"))
    assert first.ticket_number is not None
    async with desk.database.transaction() as uow:
        assert await uow.directory.mark_unreachable("sms", RESIDENT)
        # While unreachable, an update is skipped, and the audit trail says so.
        ticket = await uow.tickets.by_number(first.ticket_number)
        assert ticket is not None
        assert not await notify_resident(uow, ticket, "测试", purpose="update")
    skipped = [e for e in await events(desk, first.ticket_number) if e.action == "notice_skipped"]
    assert [e.detail["purpose"] for e in skipped] == ["update"]

    second = await handle_register(desk, sms("楼道灯坏了，物业不修"))

    assert second.ticket_number is not None
    cards = [r for r in await outbox_rows(desk, second.ticket_number) if r.purpose == "card"]
    assert [r.recipient for r in cards] == [RESIDENT]


async def test_the_sweep_leaves_messages_still_on_their_way(desk: Desk) -> None:
    await store_only(desk, sms("小区电梯坏了三天，物业不管"))
    # Just stored: a webhook may be about to hand it to the worker.
    assert await process_pending(desk, older_than=timedelta(minutes=1)) == 0
    assert await process_pending(desk, older_than=timedelta(0)) == 1
    assert (await totals(desk.database))[:2] == (1, 1)
