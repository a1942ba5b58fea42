"""The centre's figures and look-ups for the admin room: counts, overdue tickets, search.

Channel-neutral and read-only, one transaction each, counted by the database
(``COUNT`` with ``GROUP BY``), never by loading every ticket. "Today" and
"this week" are the desk's (Asia/Shanghai): a week starts on Monday 00:00
local time. ``handle_reveal`` is the one write here: showing a resident's
contact is only ever done together with its audit event.

The SQL lives here rather than in a repository only until
``storage/repositories`` gets a figures repository; the queries are kept in
``_FigureQueries`` so that move is a cut and paste.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from handlers.context import Desk
from handlers.errors import NotAuthorised, TicketNotFound
from handlers.messages import Actor
from handlers.texts import CHANNEL_LABELS
from handlers.ticket_actions import visible_to
from handlers.workflow import HANDLING, TRIAGE
from nlp.ticket_numbers import is_valid_ticket_number
from storage.models import DESK_TZ, Ticket

# Waiting for the centre or for a department; a resolved ticket waits only for
# the resident's rating, so the department's part is done.
OPEN = frozenset(s.value for s in TRIAGE | HANDLING)
# Only a department at work runs against a deadline (triage and 退单 clear it).
_RUNNING = frozenset(s.value for s in HANDLING)
# The role that may see a resident's contact unmasked (supervisors may not).
REVEAL_ROLE = "admin"
UNASSIGNED = "待分派"


@dataclass(frozen=True, slots=True)
class DepartmentFigures:
    """One department's counts; ``code`` is None for tickets no department holds."""

    code: str | None
    name: str
    received: int  # created since
    closed: int  # 办结 (the department's result) since
    open: int  # in triage or being handled now
    overdue: int  # being handled now, past the deadline


@dataclass(frozen=True, slots=True)
class OverdueTicket:
    """A ticket a department is handling past its deadline."""

    number: str
    department: str | None
    deadline_at: datetime
    days_overdue: int
    status: str


@dataclass(frozen=True, slots=True)
class TicketSummary:
    """One line of a search result."""

    number: str
    status: str
    department: str | None
    created_at: datetime
    deadline_at: datetime | None
    text: str


@dataclass(frozen=True, slots=True)
class Revealed:
    """A resident's contact as shown to a centre admin (the reveal is already audited)."""

    number: str
    channel: str
    address: str


def start_of_day(moment: datetime) -> datetime:
    """00:00 of ``moment``'s day in the desk's time zone, in UTC."""
    local_day = moment.astimezone(DESK_TZ).date()
    return datetime.combine(local_day, time(), tzinfo=DESK_TZ).astimezone(UTC)


def start_of_week(moment: datetime) -> datetime:
    """Monday 00:00 of ``moment``'s week in the desk's time zone, in UTC."""
    local_day = moment.astimezone(DESK_TZ).date()
    monday = local_day - timedelta(days=local_day.weekday())
    return datetime.combine(monday, time(), tzinfo=DESK_TZ).astimezone(UTC)


def days_between(earlier: datetime, later: datetime) -> int:
    """Calendar days from ``earlier`` to ``later`` as the desk's dates count them."""
    return (later.astimezone(DESK_TZ).date() - earlier.astimezone(DESK_TZ).date()).days


def total_of(figures: Sequence[DepartmentFigures]) -> DepartmentFigures:
    """The 合计 row of ``figures``."""
    return DepartmentFigures(
        code=None,
        name="合计",
        received=sum(f.received for f in figures),
        closed=sum(f.closed for f in figures),
        open=sum(f.open for f in figures),
        overdue=sum(f.overdue for f in figures),
    )


async def desk_figures(desk: Desk, since: datetime) -> list[DepartmentFigures]:
    """Per department: received and closed since ``since``, open and overdue now.

    Every active department has a row, zeros included (a department with
    nothing overdue should be seen to have nothing overdue); a retired one
    only while it has numbers, and tickets in triage as ``待分派`` after them.
    Add ``total_of`` for the 合计 row.
    """
    async with desk.database.reading() as uow:
        counts = await uow.figures.counts(since, desk.clock(), open_statuses=OPEN, running=_RUNNING)
        departments = await uow.directory.departments()
    rows = [
        DepartmentFigures(d.code, d.short_name, *counts.get(d.id, (0, 0, 0, 0)))
        for d in departments
        if d.active or any(counts.get(d.id, ()))
    ]
    if any(counts.get(None, ())):
        rows.append(DepartmentFigures(None, UNASSIGNED, *counts[None]))
    return rows


async def overdue_tickets(desk: Desk, limit: int = 20) -> list[OverdueTicket]:
    """Up to ``limit`` tickets handled past their deadline, most overdue first."""
    now = desk.clock()
    async with desk.database.reading() as uow:
        found = await uow.figures.overdue(now, limit, running=_RUNNING)
    return [
        OverdueTicket(number, name, deadline, days_between(deadline, now), status)
        for number, name, deadline, status in found
    ]


async def find_tickets(
    desk: Desk, query: str, limit: int = 10, *, viewer: Actor | None = None
) -> list[TicketSummary]:
    """A ticket number finds that ticket; any other text, the newest tickets containing it.

    With ``viewer``, tickets they may not see (a conduct complaint about their
    own department) are left out, as if they did not exist.
    """
    query = query.strip()
    if not query:
        return []
    async with desk.database.reading() as uow:
        if is_valid_ticket_number(query):
            ticket = await uow.tickets.by_number(query)
            tickets: Sequence[Ticket] = [] if ticket is None else [ticket]
        else:
            tickets = await uow.figures.containing(query, limit)
        names = {d.id: d.short_name for d in await uow.directory.departments()}
    return [
        TicketSummary(
            number=t.number or "",
            status=t.status,
            department=names.get(t.department_id) if t.department_id is not None else None,
            created_at=t.created_at,
            deadline_at=t.deadline_at,
            text=t.text,
        )
        for t in tickets
        if viewer is None or visible_to(viewer, t)
    ]


async def handle_reveal(
    desk: Desk, number: str, actor: Actor, telegram_user_id: int, *, thread_id: int | None = None
) -> Revealed:
    """Show a centre admin the resident's contact in the admin room, audited.

    The audit event and the admin room's message are written in one
    transaction: a contact is never shown without the record that it was.
    """
    admin_chat_id = desk.config.desk.admin_chat_id
    if not (actor.is_centre and actor.role == REVEAL_ROLE) or admin_chat_id is None:
        raise NotAuthorised(f"{actor.label} may not reveal contacts")
    async with desk.database.transaction() as uow:
        ticket = await uow.tickets.by_number(number)
        if ticket is None or not visible_to(actor, ticket):
            raise TicketNotFound(number)
        contact = await uow.directory.contact_by_id(ticket.contact_id)
        if contact is None:  # pragma: no cover - contacts are never deleted
            raise TicketNotFound(number)
        revealed = Revealed(number, contact.channel, contact.address)
        uow.events.append(
            ticket_id=ticket.id,
            actor=actor.label,
            action="reveal",
            # Who looked, and at which contact; the address itself stays out of
            # the append-only log so anonymising the contact also clears it.
            detail={
                "telegram_user_id": telegram_user_id,
                "contact_id": contact.id,
                "channel": contact.channel,
            },
        )
        await uow.outbox.enqueue(
            channel="telegram",
            recipient=str(admin_chat_id),
            thread_id=thread_id,
            body=reveal_text(revealed),
            ticket_id=ticket.id,
            purpose="admin",
        )
    desk.on_outbox()
    return revealed


def reveal_text(revealed: Revealed) -> str:
    """The admin room's message with the unmasked contact."""
    channel = CHANNEL_LABELS.get(revealed.channel, revealed.channel)
    return (
        f"【联系方式】受理编号 {revealed.number}：{channel} {revealed.address}\n"
        "本次查看已记入审计日志，请勿转发给承办单位。"
    )
