"""Shared test helpers: actors, registration, and driving a ticket through the real handlers.

``EXPECTED_MOVES`` is the workflow of DESIGN.md written out by hand, independently
of ``handlers.workflow.TRANSITIONS``: the workflow tests compare the production
table with it, and ``drive_to`` walks it to bring a fresh ticket to any status.
"""

from __future__ import annotations

import itertools
from collections import deque

from handlers import ticket_actions as actions
from handlers.actors import staff_in_department
from handlers.context import Desk
from handlers.intake import handle_register
from handlers.messages import Actor, IncomingMessage
from handlers.ticket_actions import CENTRE_ACTIONS, ActionResult
from handlers.workflow import Action, Rating, Status
from storage.models import OutboxMessage, Ticket, TicketEvent

S = Status
RESIDENT = "+8613812345678"
# 城乡建设 with full confidence: auto-accepted and assigned to zhujian at registration.
ROUTED_TEXT = "小区电梯坏了三天，物业不管"
# No keyword of any category: the ticket waits in triage as ``received``.
UNROUTED_TEXT = "我想反映一个情况，请尽快处理"
CONDUCT_TEXT = "城管局的人态度恶劣，推诿不管"

STAFF_BY_DEPARTMENT = {"zhujian": 501, "huanbao": 502, "chengguan": 503, "xiaoneng": 900}
CENTRE_USER, CENTRE_DEPARTMENT = 900, "xiaoneng"

# The free text every action of ``perform`` is given.
REJECT_REASON = "不属于本中心受理范围"
REPLY_TEXT = "已联系物业，明天维修"
RETURN_REASON = "不属于本单位职责"
TRANSFER_REASON = "请对口单位办理"
RESULT_TEXT = "电梯已修好"
REOPEN_REASON = "群众反映问题仍未解决"
URGE_NOTE = "请抓紧办理"
EXTENSION_DAYS = 5
EXTENSION_REASON = "需协调施工单位"

_HANDLING = (S.ASSIGNED, S.CLAIMED, S.IN_PROGRESS, S.REOPENED)
# action -> {status it may start from: status it leads to}; rate is listed with a
# satisfied rating (an unsatisfied one reopens instead), urge stays where it is.
EXPECTED_MOVES: dict[Action, dict[Status, Status]] = {
    Action.ACCEPT: {S.RECEIVED: S.ACCEPTED},
    Action.REJECT: {s: S.REJECTED for s in (S.RECEIVED, S.ACCEPTED, S.RETURNED)},
    Action.ASSIGN: {S.ACCEPTED: S.ASSIGNED, S.RETURNED: S.ASSIGNED},
    Action.CLAIM: {S.ASSIGNED: S.CLAIMED, S.REOPENED: S.CLAIMED},
    Action.REPLY: {S.CLAIMED: S.IN_PROGRESS, S.IN_PROGRESS: S.IN_PROGRESS},
    Action.RETURN: dict.fromkeys(_HANDLING, S.RETURNED),
    Action.TRANSFER: dict.fromkeys(_HANDLING, S.ASSIGNED),
    Action.RESOLVE: {S.CLAIMED: S.RESOLVED, S.IN_PROGRESS: S.RESOLVED},
    Action.RATE: {S.RESOLVED: S.CLOSED},
    Action.REOPEN: {S.RESOLVED: S.REOPENED, S.CLOSED: S.REOPENED},
    Action.URGE: {s: s for s in _HANDLING},
    Action.REQUEST_EXTENSION: {s: s for s in _HANDLING},
    Action.DECIDE_EXTENSION: {s: s for s in _HANDLING},
}

_external_ids = itertools.count(1)


def next_external_id() -> str:
    """A provider message id no other message of the run has used."""
    return f"SM{next(_external_ids):06d}"


async def staff_actor(desk: Desk, telegram_user_id: int, department_code: str) -> Actor:
    """The staff member as the Telegram adapter would present them."""
    return await staff_in_department(desk, telegram_user_id, department_code)


async def centre_actor(desk: Desk) -> Actor:
    """The supervision office's administrator, who acts for the centre."""
    return await staff_actor(desk, CENTRE_USER, CENTRE_DEPARTMENT)


async def citizen_actor(desk: Desk, number: str) -> Actor:
    """The resident who sent the ticket."""
    ticket = await load_ticket(desk, number)
    return Actor(kind="citizen", label=f"citizen:{ticket.citizen_id}", citizen_id=ticket.citizen_id)


async def department_code(desk: Desk, department_id: int | None) -> str | None:
    """The config code of a department id."""
    if department_id is None:
        return None
    async with desk.database.reading() as uow:
        department = await uow.directory.department(department_id)
    assert department is not None
    return department.code


async def department_id(desk: Desk, code: str) -> int:
    """The database id of a department code."""
    async with desk.database.reading() as uow:
        department = await uow.directory.department_by_code(code)
    assert department is not None, code
    return department.id


async def register(
    desk: Desk,
    text: str,
    sender: str = RESIDENT,
    external_id: str | None = None,
    channel: str = "sms",
) -> str:
    """Register a complaint through intake and return its ticket number."""
    result = await handle_register(
        desk, IncomingMessage(channel, external_id or next_external_id(), sender, text)
    )
    assert result.ticket_number is not None, result.reply
    return result.ticket_number


async def load_ticket(desk: Desk, number: str) -> Ticket:
    """The ticket row as stored now."""
    async with desk.database.reading() as uow:
        ticket = await uow.tickets.by_number(number)
    assert ticket is not None, number
    return ticket


async def outbox_rows(desk: Desk, number: str, *, edits: bool = False) -> list[OutboxMessage]:
    """Every message queued about the ticket, oldest first.

    Edits of the department's cards only with ``edits``: tests/test_cards.py
    is about them, and every other test about the messages themselves.
    """
    ticket = await load_ticket(desk, number)
    async with desk.database.reading() as uow:
        rows = await uow.outbox.for_ticket(ticket.id)
    return [row for row in rows if edits or row.kind != "edit"]


async def events(desk: Desk, number: str) -> list[TicketEvent]:
    """The ticket's audit trail, oldest first."""
    ticket = await load_ticket(desk, number)
    async with desk.database.reading() as uow:
        return list(await uow.events.for_ticket(ticket.id))


async def default_actor(desk: Desk, number: str, action: Action) -> Actor:
    """Who normally does ``action``: the centre, the resident, or the department's clerk."""
    if action in CENTRE_ACTIONS:
        return await centre_actor(desk)
    if action is Action.RATE:
        return await citizen_actor(desk, number)
    code = await department_code(desk, (await load_ticket(desk, number)).department_id)
    if code is None:
        # Nobody in a department holds it; only the centre could act.
        return await centre_actor(desk)
    return await staff_actor(desk, STAFF_BY_DEPARTMENT[code], code)


async def perform(
    desk: Desk,
    number: str,
    action: Action,
    *,
    actor: Actor | None = None,
    rating: Rating = Rating.SATISFIED,
) -> ActionResult:
    """Do ``action`` through its real handler with the standard texts of this module."""
    actor = actor or await default_actor(desk, number, action)
    match action:
        case Action.ACCEPT:
            return await actions.handle_accept(desk, number, actor)
        case Action.REJECT:
            return await actions.handle_reject(desk, number, actor, REJECT_REASON)
        case Action.ASSIGN:
            return await actions.handle_assign(desk, number, actor, "zhujian")
        case Action.CLAIM:
            return await actions.handle_claim(desk, number, actor)
        case Action.REPLY:
            return await actions.handle_reply(desk, number, actor, REPLY_TEXT)
        case Action.RETURN:
            return await actions.handle_return(desk, number, actor, RETURN_REASON)
        case Action.TRANSFER:
            current = await department_code(desk, (await load_ticket(desk, number)).department_id)
            target = "huanbao" if current == "zhujian" else "zhujian"
            return await actions.handle_transfer(desk, number, actor, target, TRANSFER_REASON)
        case Action.RESOLVE:
            return await actions.handle_resolve(desk, number, actor, RESULT_TEXT)
        case Action.RATE:
            return await actions.handle_rate(desk, number, actor, rating)
        case Action.REOPEN:
            return await actions.handle_reopen(desk, number, actor, REOPEN_REASON)
        case Action.URGE:
            return await actions.handle_urge(desk, number, actor, URGE_NOTE)
        case Action.REQUEST_EXTENSION:
            return await actions.handle_request_extension(
                desk, number, actor, EXTENSION_DAYS, EXTENSION_REASON
            )
        case Action.DECIDE_EXTENSION:
            return await actions.handle_decide_extension(
                desk, number, actor, EXTENSION_DAYS, approve=True
            )
    raise AssertionError(f"unhandled action {action}")


Step = tuple[Action, Rating]


def moves_tickets(action: Action) -> bool:
    """Whether ``action`` can move a ticket at all (urge and extensions never do)."""
    return action not in (Action.URGE, Action.REQUEST_EXTENSION, Action.DECIDE_EXTENSION)


def _path(start: Status, goal: Status) -> list[Step]:
    """The shortest list of actions that leads from ``start`` to ``goal``."""
    edges: list[tuple[Status, Step, Status]] = [
        (before, (action, Rating.SATISFIED), after)
        for action, moves in EXPECTED_MOVES.items()
        if moves_tickets(action)
        for before, after in moves.items()
    ]
    edges.append((S.RESOLVED, (Action.RATE, Rating.UNSATISFIED), S.REOPENED))
    paths: dict[Status, list[Step]] = {start: []}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        for before, step, after in edges:
            if before is here and after not in paths:
                paths[after] = [*paths[here], step]
                queue.append(after)
    if goal not in paths:
        raise AssertionError(f"{goal} cannot be reached from {start}")
    return paths[goal]


async def drive_to(desk: Desk, number: str, status: Status) -> None:
    """Bring the ticket to ``status`` with the real handlers (tickets go to zhujian)."""
    current = Status((await load_ticket(desk, number)).status)
    for action, rating in _path(current, status):
        await perform(desk, number, action, rating=rating)
    assert (await load_ticket(desk, number)).status == status.value


async def ticket_in(desk: Desk, status: Status) -> str:
    """A fresh ticket of the standard resident, handled by zhujian, now in ``status``.

    Only an unrouted complaint can still be ``received`` or ``accepted``; every
    other status is reached from a complaint routed to zhujian at registration.
    """
    triage = status in (S.RECEIVED, S.ACCEPTED, S.REJECTED)
    number = await register(desk, UNROUTED_TEXT if triage else ROUTED_TEXT)
    await drive_to(desk, number, status)
    return number
