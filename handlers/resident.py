"""What a resident can do besides complaining: 查询, 评价, 退订/订阅, 帮助.

Channel-neutral: the SMS and Telegram adapters parse the text with
``handlers.resident_commands`` and call these with the sender's channel and
address. Each returns the reply for the resident, in Chinese, within two UCS-2
SMS segments; expected failures become polite answers, never exceptions.

A resident is known only by the contact they write from, so a resident only
ever learns about their own tickets (and those their complaints were merged
into): anybody else's number gets the very answer a number that does not exist
gets.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from handlers import texts
from handlers.cards import DETAILS_OPENED
from handlers.context import Desk
from handlers.errors import DeskError, IllegalTransition, TicketNotFound
from handlers.messages import Actor
from handlers.notify import Buttons
from handlers.queries import TicketView, ticket_view
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
from handlers.ticket_actions import handle_rate
from handlers.workflow import HANDLING, TRIAGE, Rating, Status
from handlers.working_days import local_date_text
from storage.models import DESK_TZ, Ticket
from storage.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

# Waiting for a rating counts as open: it still asks something of the resident.
OPEN_STATUSES = frozenset(status.value for status in (*TRIAGE, *HANDLING, Status.RESOLVED))
LISTED = 3
# Events after which an earlier interim reply no longer describes the work.
_NEW_ROUND = frozenset({"assign", "transfer", "return", "reopen", "rate", "resolve"})
# Channels whose answers may run long (not SMS): 查询 there shows the timeline too.
LONG_ANSWER_CHANNELS = frozenset({"telegram"})
TIMELINE_SHOWN = 20
_PUBLIC_STEPS = {
    "register": "投诉登记",
    "accept": "受理",
    "claim": "承办单位签收",
    "return": "重新确定承办单位",
    "reopen": "重新办理",
    "add_details": "补充材料",
    "reject": "不予受理",
}
# handle_rate queues its own confirmation (to the rater and the ticket's
# followers); answering as well would send the resident the same thing twice.
ANSWER_QUEUED = ""


def _citizen(citizen_id: int) -> Actor:
    return Actor(kind="citizen", label=f"citizen:{citizen_id}", citizen_id=citizen_id)


async def handle_resident_command(
    desk: Desk, channel: str, address: str, command: ResidentCommand
) -> str | None:
    """The reply to a parsed command; None for a complaint, which the caller registers."""
    match command:
        case Query(number):
            return await query_ticket(desk, channel, address, number)
        case ListOpen():
            return await list_open_tickets(desk, channel, address)
        case Rate(number, rating):
            return await rate_ticket(desk, channel, address, number, rating)
        case OptOut():
            return await opt_out(desk, channel, address)
        case OptIn():
            return await opt_in(desk, channel, address)
        case Help():
            return help_text(desk.config.desk.phone)
        case Unclear("query"):
            return texts.ticket_number_unclear()
        case Unclear():
            return texts.rating_usage()
        case Complaint():
            return None


async def query_ticket(desk: Desk, channel: str, address: str, number: str) -> str:
    """The resident sees their ticket's status, department, deadline and latest public note."""
    async with desk.database.reading() as uow:
        contact = await uow.directory.contact(channel, address)
    if contact is None:
        return TicketNotFound(number).resident_message
    try:
        # ticket_view holds the one visibility rule (own tickets and followed ones).
        view = await ticket_view(desk, number, _citizen(contact.citizen_id))
    except TicketNotFound as exc:
        return exc.resident_message
    label, note = public_note(view)
    ticket = view.ticket
    status = texts.ticket_status(
        ticket.number or number,
        ticket.status,
        department=view.department,
        deadline=ticket.deadline_at,
        note_label=label,
        note=note,
    )
    if channel not in LONG_ANSWER_CHANNELS:
        return status
    return "\n".join([status, "", "办理经过：", *_timeline(desk, view)])


def _timeline(desk: Desk, view: TicketView) -> list[str]:
    """The ticket's public history, one line per step, the newest last (at most TIMELINE_SHOWN).

    Only what the resident was told or may know: no staff names, no internal
    reasons (a return's reason stays with the centre).
    """
    lines = []
    for event in view.events:
        what = _public_step(desk, event.action, event.detail)
        if what:
            local = event.at.astimezone(DESK_TZ)
            lines.append(f"{local.month}月{local.day}日 {local:%H:%M} {what}")
    if len(lines) > TIMELINE_SHOWN:
        lines = ["……", *lines[-TIMELINE_SHOWN:]]
    return lines


def _public_step(desk: Desk, action: str, detail: dict[str, Any]) -> str:
    """How one audit event reads in the resident's timeline; "" for what they do not see."""
    if action in ("assign", "transfer"):
        department = desk.config.department_by_code.get(str(detail.get("department")))
        return f"转交{department.short_name}办理" if department else "转交承办单位办理"
    if action == "reply":
        return f"答复：{_short(detail.get('text'))}"
    if action == "resolve":
        return f"办结：{_short(detail.get('result'))}"
    if action == "rate":
        return f"评价：{texts.RATING_LABELS.get(str(detail.get('rating')), '')}"
    if action == "decide_extension":
        after = detail.get("deadline_after")
        if not detail.get("approved") or not isinstance(after, str):
            return ""
        return f"办理时限延长至{local_date_text(datetime.fromisoformat(after))}"
    return _PUBLIC_STEPS.get(action, "")


def _short(text: object, limit: int = 60) -> str:
    value = str(text or "")
    return value if len(value) <= limit else value[: limit - 1] + "…"


async def open_ticket_buttons(desk: Desk, channel: str, address: str) -> Buttons | None:
    """A button per listed open ticket (``s:<number>``: tap for its timeline), on Telegram."""
    if channel != "telegram":
        return None
    async with desk.database.reading() as uow:
        contact = await uow.directory.contact(channel, address)
        tickets = [] if contact is None else await _own_tickets(uow, contact.id, OPEN_STATUSES)
    rows = [
        [
            {
                "text": f"{t.number} {texts.STATUS_LABELS.get(t.status, t.status)}",
                "data": f"s:{t.number}",
            }
        ]
        for t in tickets[:LISTED]
    ]
    return rows or None


async def open_details(desk: Desk, channel: str, address: str, number: str) -> str:
    """补充材料 pressed: the resident's next messages join ``number`` for the follow-up window."""
    minutes = desk.config.desk.follow_up_minutes
    async with desk.database.transaction() as uow:
        contact = await uow.directory.contact(channel, address)
        ticket = await uow.tickets.by_number(number)
        if contact is None or ticket is None or not _own(contact.citizen_id, ticket):
            return TicketNotFound(number).resident_message
        if ticket.status not in OPEN_STATUSES - {Status.RESOLVED.value} or minutes <= 0:
            return texts.details_closed(number)
        uow.events.append(
            ticket_id=ticket.id,
            actor=f"citizen:{contact.citizen_id}",
            action=DETAILS_OPENED,
            at=desk.clock(),
        )
    return texts.details_open(number, minutes)


def _own(citizen_id: int, ticket: Ticket) -> bool:
    return ticket.citizen_id == citizen_id


def public_note(view: TicketView) -> tuple[str, str]:
    """What the resident was last told in writing: the result, the reason or a reply."""
    ticket = view.ticket
    if ticket.status in (Status.RESOLVED, Status.CLOSED) and ticket.result_text:
        return "办理结果", ticket.result_text
    reason = reply = ""
    for event in view.events:
        if event.action in _NEW_ROUND:
            reply = ""
        if event.action == "reply" and isinstance(text := event.detail.get("text"), str):
            reply = text
        if event.action == "reject" and isinstance(text := event.detail.get("reason"), str):
            reason = text
    if ticket.status == Status.REJECTED and reason:
        return "理由", reason
    if ticket.status in HANDLING and reply:
        return "最新答复", reply
    return "", ""


async def list_open_tickets(desk: Desk, channel: str, address: str) -> str:
    """The resident sees their newest open tickets (number, status, deadline)."""
    async with desk.database.reading() as uow:
        contact = await uow.directory.contact(channel, address)
        tickets = [] if contact is None else await _own_tickets(uow, contact.id, OPEN_STATUSES)
    if not tickets:
        return texts.no_open_tickets()
    shown = [(t.number or "", t.status, t.deadline_at) for t in tickets[:LISTED]]
    return texts.open_tickets(shown, len(tickets))


async def _own_tickets(uow: UnitOfWork, contact_id: int, statuses: frozenset[str]) -> list[Ticket]:
    """The tickets this contact registered that are in ``statuses``, newest first."""
    return list(await uow.tickets.of_contact_in(contact_id, statuses))


async def rate_ticket(
    desk: Desk, channel: str, address: str, number: str | None, rating: Rating
) -> str:
    """回访: the resident rates a ticket; without a number, the latest one awaiting a rating.

    On success the confirmation is already queued by ``handle_rate`` and the
    answer is ``ANSWER_QUEUED`` (empty): the channel sends nothing more.
    """
    async with desk.database.transaction() as uow:
        contact = await uow.directory.contact(channel, address)
        if contact is None:
            return texts.nothing_to_rate() if number is None else _not_found(number)
        # They just wrote to us, so the confirmation can reach them again.
        contact.unreachable = False
        citizen_id = contact.citizen_id
        if number is None:
            pending = await _own_tickets(uow, contact.id, frozenset({Status.RESOLVED.value}))
            if not pending:
                return texts.nothing_to_rate()
            # The latest rating prompt is the one a bare "1" answers.
            number = max(pending, key=lambda t: (t.resolved_at or t.updated_at, t.id)).number
            if number is None:  # pragma: no cover - committed tickets have numbers
                return texts.nothing_to_rate()
    try:
        await handle_rate(desk, number, _citizen(citizen_id), rating)
    except IllegalTransition as exc:
        return texts.rating_not_pending(number, exc.status)
    except DeskError as exc:
        # TicketNotFound for anybody else's ticket (the same as a missing one),
        # NotAuthorised, InvalidInput: each carries its resident message.
        logger.info("rating of %s refused: %s", number, exc)
        return exc.resident_message
    return ANSWER_QUEUED


def _not_found(number: str) -> str:
    return TicketNotFound(number).resident_message


async def opt_out(desk: Desk, channel: str, address: str) -> str:
    """退订: rating prompts and broadcasts stop; their own tickets' progress still comes."""
    await _set_opted_out(desk, channel, address, opted_out=True)
    return texts.opted_out()


async def opt_in(desk: Desk, channel: str, address: str) -> str:
    """订阅: rating prompts and broadcasts come again."""
    await _set_opted_out(desk, channel, address, opted_out=False)
    return texts.opted_in()


async def _set_opted_out(desk: Desk, channel: str, address: str, *, opted_out: bool) -> None:
    """Record the choice (idempotent); only a change is audited."""
    async with desk.database.transaction() as uow:
        contact = await uow.directory.ensure_contact(channel, address)
        # They wrote to us: reachable again (e.g. START after a carrier block).
        contact.unreachable = False
        if contact.opted_out == opted_out:
            return
        contact.opted_out = opted_out
        uow.events.append(
            ticket_id=None,
            actor=f"citizen:{contact.citizen_id}",
            action="opt_out" if opted_out else "opt_in",
            detail={"channel": channel},
        )


def help_text(phone: str = "") -> str:
    """The short help: how to complain, 查询, 评价, 退订/订阅 (and the desk's phone)."""
    return texts.help_text(phone)
