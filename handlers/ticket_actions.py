"""Staff, centre and resident actions on a ticket: one transaction each.

Every action follows the same path: lock the ticket, check the actor's right,
ask the state machine for the next status (an illegal action changes nothing),
apply the change, append the audit event, queue the messages it causes, commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from handlers import texts
from handlers.cards import REOPEN_HEADING, refresh_cards, send_cards
from handlers.context import Desk
from handlers.errors import InvalidInput, NotAuthorised, TicketNotFound
from handlers.messages import Actor
from handlers.notify import (
    notify_admins,
    notify_department,
    notify_resident,
    retire_buttons,
    triage_buttons,
)
from handlers.workflow import Action, Rating, Status, next_status
from handlers.working_days import local_date_text
from storage.models import Department, Ticket, TicketEvent
from storage.unit_of_work import UnitOfWork

CENTRE_ACTIONS = frozenset(
    {
        Action.ACCEPT,
        Action.REJECT,
        Action.ASSIGN,
        Action.REOPEN,
        Action.URGE,
        Action.DECIDE_EXTENSION,
    }
)
DEPARTMENT_ACTIONS = frozenset(
    {
        Action.CLAIM,
        Action.REPLY,
        Action.RESOLVE,
        Action.RETURN,
        Action.TRANSFER,
        Action.REQUEST_EXTENSION,
    }
)
# The most working days one extension may add (限时办结: extensions are the exception).
MAX_EXTENSION_DAYS = 30


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The ticket's number and status after an action."""

    number: str
    status: str


def visible_to(actor: Actor, ticket: Ticket) -> bool:
    """Whether ``actor`` may know this ticket exists at all.

    Residents see their own; staff see their department's (lead or co-handling);
    the centre sees everything; a department accused in a conduct complaint
    never sees it, whatever the role of the person asking.
    """
    if actor.kind == "system":
        return True
    if actor.kind == "citizen":
        return actor.citizen_id == ticket.citizen_id
    if actor.department_id in ticket.accused_department_ids:
        return False
    if actor.is_centre:
        return True
    return actor.department_id == ticket.department_id or (
        actor.department_id in ticket.co_department_ids
    )


def authorise(actor: Actor, action: Action, ticket: Ticket) -> None:
    """Refuse an actor who has no right to this action on this ticket.

    A ticket the actor may not see is reported as not found, so refusals do
    not reveal that it exists.
    """
    number = ticket.number or str(ticket.id)
    if not visible_to(actor, ticket):
        raise TicketNotFound(number)
    if actor.kind == "system" or actor.is_centre:
        return
    if actor.kind == "citizen":
        if action is Action.RATE:
            return
        raise NotAuthorised(f"citizen {actor.label} may not {action} ticket {number}")
    lead = actor.department_id == ticket.department_id
    if action is Action.REPLY and not lead:
        return  # co-handling departments report progress too
    if not lead or action not in DEPARTMENT_ACTIONS:
        raise NotAuthorised(f"{actor.label} may not {action} ticket {number}")
    # 首问负责制: once claimed, the owner (or the department's supervisor) acts on it.
    owner = ticket.owner_staff_id
    claim_from_scratch = action is Action.CLAIM and ticket.status == Status.ASSIGNED
    if (
        owner not in (None, actor.staff_id)
        and not claim_from_scratch
        and actor.role not in ("supervisor", "admin")
    ):
        raise NotAuthorised(f"{actor.label}: ticket {number} is owned by staff:{owner}")


def require_text(value: str, what: str, resident_message: str, *, limit: int) -> str:
    """A required free-text field, stripped, within ``limit`` characters, or InvalidInput."""
    stripped = value.strip()
    if not stripped:
        raise InvalidInput(f"{what} is required", resident_message)
    if len(stripped) > limit:
        raise InvalidInput(
            f"{what} is {len(stripped)} characters, over the limit of {limit}",
            f"内容过长（{len(stripped)}字），请精简到{limit}字以内。",
        )
    return stripped


async def _department(uow: UnitOfWork, code: str) -> Department:
    department = await uow.directory.department_by_code(code)
    if department is None or not department.active:
        raise InvalidInput(f"unknown department {code!r}", "未找到该部门。")
    return department


Change = Callable[[UnitOfWork, Ticket, Status], Awaitable[dict[str, object]]]


async def _act(
    desk: Desk,
    number: str,
    actor: Actor,
    action: Action,
    change: Change,
    rating: Rating | None = None,
) -> ActionResult:
    """The shared transaction of every action; ``change`` applies what is specific."""
    async with desk.database.transaction() as uow:
        ticket = await uow.tickets.by_number(number, for_update=True)
        if ticket is None:
            raise TicketNotFound(number)
        authorise(actor, action, ticket)
        before = ticket.status
        after = next_status(number, before, action, rating)
        detail = await change(uow, ticket, after)
        ticket.status = after.value
        ticket.updated_at = desk.clock()
        # Every department card of the ticket shows the new status and owner.
        await refresh_cards(desk, uow, ticket)
        uow.events.append(
            ticket_id=ticket.id,
            actor=actor.label,
            action=action.value,
            from_status=before,
            to_status=after.value,
            detail=detail,
        )
    desk.on_outbox()
    return ActionResult(number, after.value)


def set_assignment(
    desk: Desk, ticket: Ticket, department: Department, co_departments: Sequence[Department] = ()
) -> None:
    """Make ``department`` the lead and start its clock (the deadline runs from now)."""
    if any(d.id in ticket.accused_department_ids for d in (department, *co_departments)):
        raise InvalidInput(
            f"ticket {ticket.number}: department {department.code} is the one complained about",
            "该投诉不能转交被投诉单位办理。",
        )
    now = desk.clock()
    days = desk.config.deadline_days(ticket.category, urgent=ticket.priority == "urgent")
    ticket.department_id = department.id
    ticket.co_department_ids = [co.id for co in co_departments]
    ticket.owner_staff_id = None
    ticket.assigned_at = now
    ticket.deadline_at = desk.calendar.deadline(now, days)


async def handle_accept(desk: Desk, number: str, actor: Actor) -> ActionResult:
    """受理: the resident is told the complaint was accepted."""

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        await notify_resident(uow, ticket, texts.resident_update(number, after))
        return {}

    return await _act(desk, number, actor, Action.ACCEPT, change)


async def handle_reject(desk: Desk, number: str, actor: Actor, reason: str) -> ActionResult:
    """不予受理: the resident is told why."""
    reason = require_text(
        reason, "reject reason", "请填写不予受理的理由。", limit=desk.config.desk.max_reply_chars
    )

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        ticket.closed_at = desk.clock()
        await retire_buttons(uow, ticket, {"card"})
        await notify_resident(uow, ticket, texts.resident_update(number, after, f"理由：{reason}"))
        return {"reason": reason}

    return await _act(desk, number, actor, Action.REJECT, change)


async def handle_assign(
    desk: Desk,
    number: str,
    actor: Actor,
    department_code: str,
    co_codes: Sequence[str] = (),
    corrected_category: str | None = None,
) -> ActionResult:
    """转办: the department gets the ticket card, the resident the department and deadline.

    ``corrected_category``: the category the centre chose with the department.
    """

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        corrected = corrected_category != ticket.category and corrected_category is not None
        _correct_category(desk, uow, ticket, corrected_category)
        lead = await _department(uow, department_code)
        co = [await _department(uow, code) for code in co_codes if code != department_code]
        set_assignment(desk, ticket, lead, co)
        await send_cards(desk, uow, ticket, lead, co, status=after)
        assert ticket.deadline_at is not None
        await notify_resident(
            uow, ticket, texts.assigned_update(number, lead.short_name, ticket.deadline_at)
        )
        detail: dict[str, object] = {
            "department": lead.code,
            "co_departments": [c.code for c in co],
        }
        if corrected:
            detail["corrected_category"] = corrected_category
        return detail

    return await _act(desk, number, actor, Action.ASSIGN, change)


async def handle_transfer(
    desk: Desk,
    number: str,
    actor: Actor,
    department_code: str,
    reason: str = "",
    corrected_category: str | None = None,
) -> ActionResult:
    """转办 to another department: its clock starts afresh; the resident is told."""

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        previous = ticket.department_id
        _correct_category(desk, uow, ticket, corrected_category)
        target = await _department(uow, department_code)
        if target.id == previous:
            raise InvalidInput(
                f"ticket {number} is already with {department_code}", "该投诉已由该部门办理。"
            )
        # Co-handling departments stay on the ticket (less the new lead).
        co = [
            department
            for department_id in ticket.co_department_ids
            if department_id != target.id
            and (department := await uow.directory.department(department_id)) is not None
        ]
        set_assignment(desk, ticket, target, co)
        await send_cards(desk, uow, ticket, target, co, status=after)
        assert ticket.deadline_at is not None
        await notify_resident(
            uow, ticket, texts.assigned_update(number, target.short_name, ticket.deadline_at)
        )
        return {
            "from_department_id": previous,
            "department": target.code,
            "reason": reason,
            "corrected_category": corrected_category,
        }

    return await _act(desk, number, actor, Action.TRANSFER, change)


async def handle_claim(desk: Desk, number: str, actor: Actor) -> ActionResult:
    """签收: the claimer owns the ticket (首问负责制); the resident is told."""

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        if ticket.owner_staff_id is None or ticket.status == Status.ASSIGNED:
            ticket.owner_staff_id = actor.staff_id
        await notify_resident(uow, ticket, texts.resident_update(number, after))
        return {"owner_staff_id": ticket.owner_staff_id}

    return await _act(desk, number, actor, Action.CLAIM, change)


async def handle_reply(desk: Desk, number: str, actor: Actor, text: str) -> ActionResult:
    """Interim reply: the resident receives the staff member's text."""
    text = require_text(
        text, "reply text", "请输入回复内容。", limit=desk.config.desk.max_reply_chars
    )

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        await notify_resident(uow, ticket, texts.resident_update(number, after, f"答复：{text}"))
        return {"text": text}

    return await _act(desk, number, actor, Action.REPLY, change)


async def handle_return(
    desk: Desk, number: str, actor: Actor, reason: str, corrected_category: str | None = None
) -> ActionResult:
    """退单: back to triage with the reason; the admin room is told."""
    reason = require_text(
        reason, "return reason", "请填写退单理由。", limit=desk.config.desk.max_reply_chars
    )

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        previous = ticket.department_id
        _correct_category(desk, uow, ticket, corrected_category)
        ticket.department_id = None
        ticket.co_department_ids = []
        ticket.owner_staff_id = None
        ticket.deadline_at = None
        # The category's own department is offered again unless it is the one returning it.
        buttons = await triage_buttons(
            uow,
            desk.config,
            ticket,
            [ticket.category] if ticket.category else [],
            exclude=[previous] if previous is not None else [],
        )
        await notify_admins(
            uow,
            desk.config,
            ticket,
            f"【退单】受理编号 {number}，理由：{reason}，请重新分派。",
            buttons=buttons,
        )
        await notify_resident(uow, ticket, texts.resident_update(number, after))
        return {
            "reason": reason,
            "from_department_id": previous,
            "corrected_category": corrected_category,
        }

    return await _act(desk, number, actor, Action.RETURN, change)


def _correct_category(
    desk: Desk, uow: UnitOfWork, ticket: Ticket, corrected_category: str | None
) -> None:
    """Apply a staff correction of the category and keep it as a labelled example."""
    if corrected_category is None or corrected_category == ticket.category:
        return
    if corrected_category not in desk.config.category_by_code:
        raise InvalidInput(f"unknown category {corrected_category!r}", "未找到该类别。")
    ticket.category = corrected_category
    uow.examples.add(
        ticket_id=ticket.id, text=ticket.text, label=corrected_category, source="correction"
    )


async def handle_resolve(desk: Desk, number: str, actor: Actor, result: str) -> ActionResult:
    """办结: the resident gets the written result and the rating question."""
    result = require_text(
        result, "result text", "请填写办理结果。", limit=desk.config.desk.max_reply_chars
    )

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        ticket.result_text = result
        ticket.resolved_at = desk.clock()
        # 补充材料 has nothing to add to any more.
        await retire_buttons(uow, ticket, {"card"})
        if ticket.category in desk.config.category_by_code:
            # The department handled it under this category: a confirmed label.
            uow.examples.add(
                ticket_id=ticket.id, text=ticket.text, label=ticket.category, source="resolved"
            )
        await notify_resident(
            uow, ticket, texts.resident_update(number, after, f"办理结果：{result}")
        )
        await notify_resident(
            uow,
            ticket,
            texts.rating_prompt(number),
            purpose="prompt",
            buttons=[
                [
                    {"text": "满意", "data": f"r:{number}:1"},
                    {"text": "基本满意", "data": f"r:{number}:2"},
                    {"text": "不满意", "data": f"r:{number}:3"},
                ]
            ],
        )
        return {"result": result}

    return await _act(desk, number, actor, Action.RESOLVE, change)


async def handle_rate(desk: Desk, number: str, actor: Actor, rating: Rating) -> ActionResult:
    """回访: satisfied closes the ticket; unsatisfied reopens it with the department."""

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        ticket.rating = rating.value
        label = texts.RATING_LABELS[rating.value]
        await retire_buttons(uow, ticket, {"prompt"}, note=f"（已评价：{label}）")
        if after is Status.CLOSED:
            ticket.closed_at = desk.clock()
            await notify_resident(
                uow, ticket, f"感谢您的评价（{label}），受理编号 {number} 已办结。"
            )
        else:
            await _reopen_with_department(desk, uow, ticket, f"群众评价：{label}")
            await notify_resident(
                uow,
                ticket,
                texts.resident_update(number, after, texts.REOPENED_ASK),
            )
        return {"rating": rating.value}

    return await _act(desk, number, actor, Action.RATE, change, rating=rating)


async def handle_reopen(desk: Desk, number: str, actor: Actor, reason: str) -> ActionResult:
    """Reopen a resolved or closed ticket with its department."""
    reason = require_text(
        reason, "reopen reason", "请填写重新办理的理由。", limit=desk.config.desk.max_reply_chars
    )

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        await _reopen_with_department(desk, uow, ticket, reason)
        await notify_resident(uow, ticket, texts.resident_update(number, after))
        return {"reason": reason}

    return await _act(desk, number, actor, Action.REOPEN, change)


async def handle_urge(desk: Desk, number: str, actor: Actor, note: str = "") -> ActionResult:
    """催办: the department is reminded of the ticket and its deadline."""

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        department = await _lead(uow, ticket)
        deadline = f"，办理时限 {local_date_text(ticket.deadline_at)}" if ticket.deadline_at else ""
        body = f"【催办】受理编号 {number}{deadline}。{note}".rstrip()
        await notify_department(uow, desk.config, department, ticket, body)
        return {"note": note}

    return await _act(desk, number, actor, Action.URGE, change)


async def handle_request_extension(
    desk: Desk, number: str, actor: Actor, days: int, reason: str
) -> ActionResult:
    """申请延期: the department asks the centre for ``days`` more working days, with a reason.

    One request at a time: another waits until the centre has decided this one.
    """
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        raise InvalidInput(
            f"extension of {days} working days is outside 1-{MAX_EXTENSION_DAYS}",
            f"延期天数须为1至{MAX_EXTENSION_DAYS}个工作日。",
        )
    reason = require_text(
        reason, "extension reason", "请填写延期理由。", limit=desk.config.desk.max_reply_chars
    )

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        if await pending_extension(uow, ticket) is not None:
            raise InvalidInput(
                f"ticket {number} already has an extension request waiting",
                "该工单已有延期申请待审批，请等待中心答复。",
            )
        department = await _lead(uow, ticket)
        assert ticket.deadline_at is not None  # handling tickets always have one
        extended = desk.calendar.deadline(ticket.deadline_at, days)
        await notify_admins(
            uow,
            desk.config,
            ticket,
            f"【延期申请】受理编号 {number}，{department.short_name}申请延长{days}个工作日"
            f"（现时限{local_date_text(ticket.deadline_at)}，延期后{local_date_text(extended)}），"
            f"理由：{reason}",
            buttons=[
                [
                    {"text": "同意延期", "data": f"e:{number}:{days}:y"},
                    {"text": "不同意", "data": f"e:{number}:{days}:n"},
                ]
            ],
        )
        return {"days": days, "reason": reason}

    return await _act(desk, number, actor, Action.REQUEST_EXTENSION, change)


async def handle_decide_extension(
    desk: Desk, number: str, actor: Actor, days: int, *, approve: bool
) -> ActionResult:
    """The centre's answer to 申请延期: a new deadline (the resident is told), or a refusal.

    ``days`` must be the request's: a button left over from an earlier
    request decides nothing.
    """

    async def change(uow: UnitOfWork, ticket: Ticket, after: Status) -> dict[str, object]:
        request = await pending_extension(uow, ticket)
        if request is None or request.detail.get("days") != days:
            raise InvalidInput(
                f"ticket {number} has no pending extension request of {days} days",
                "该延期申请已处理或已失效。",
            )
        department = await _lead(uow, ticket)
        before = ticket.deadline_at
        assert before is not None  # handling tickets always have one
        if approve:
            ticket.deadline_at = desk.calendar.deadline(before, days)
            deadline = local_date_text(ticket.deadline_at)
            notice = f"同意延期{days}个工作日，新的办理时限：{deadline}。"
            await notify_resident(
                uow,
                ticket,
                f"受理编号 {number}：承办单位申请延期办理，经审核同意，新的办理时限为{deadline}。",
            )
        else:
            notice = f"不同意延期，请按原时限{local_date_text(before)}办结。"
        await notify_department(
            uow, desk.config, department, ticket, f"【延期审批】受理编号 {number}：{notice}"
        )
        return {
            "approved": approve,
            "days": days,
            "request_event_id": request.id,
            "deadline_before": before.isoformat(),
            "deadline_after": ticket.deadline_at.isoformat() if ticket.deadline_at else None,
        }

    return await _act(desk, number, actor, Action.DECIDE_EXTENSION, change)


async def pending_extension(uow: UnitOfWork, ticket: Ticket) -> TicketEvent | None:
    """The ticket's extension request the centre has not decided yet, if any.

    A transfer, return or resolution also ends a request: the deadline it
    was about is gone.
    """
    pending: TicketEvent | None = None
    for event in await uow.events.for_ticket(ticket.id):
        if event.action == Action.REQUEST_EXTENSION:
            pending = event
        elif event.action in _ENDS_EXTENSION_REQUEST:
            pending = None
    return pending


_ENDS_EXTENSION_REQUEST = frozenset(
    {
        Action.DECIDE_EXTENSION,
        Action.TRANSFER,
        Action.RETURN,
        Action.RESOLVE,
        Action.ASSIGN,
        Action.REOPEN,
    }
)


async def _lead(uow: UnitOfWork, ticket: Ticket) -> Department:
    if ticket.department_id is None:
        raise InvalidInput(f"ticket {ticket.number} has no department", "该投诉尚未分派。")
    department = await uow.directory.department(ticket.department_id)
    if department is None:  # pragma: no cover - foreign key guarantees it
        raise InvalidInput(f"ticket {ticket.number}: department vanished", "该投诉尚未分派。")
    return department


async def _reopen_with_department(desk: Desk, uow: UnitOfWork, ticket: Ticket, reason: str) -> None:
    """Give the ticket back to its department with a fresh deadline and tell them why."""
    department = await _lead(uow, ticket)
    now = desk.clock()
    days = desk.config.deadline_days(ticket.category, urgent=ticket.priority == "urgent")
    ticket.deadline_at = desk.calendar.deadline(now, days)
    ticket.resolved_at = None
    ticket.closed_at = None
    body = (
        f"【重新办理】受理编号 {ticket.number}，原因：{reason}，"
        f"办理时限：{local_date_text(ticket.deadline_at)}。"
    )
    await notify_department(uow, desk.config, department, ticket, body)
    # A fresh card with the buttons; the older ones point to it.
    await send_cards(desk, uow, ticket, department, heading=REOPEN_HEADING, status=Status.REOPENED)
