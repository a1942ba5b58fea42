"""Outbox rows a transition causes: the resident's update and the department's notice.

Always called inside the transition's unit of work, so the messages exist if
and only if the change does.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Final

from handlers.desk_config import DeskConfig
from storage.models import Department, OutboxMessage, Ticket
from storage.unit_of_work import UnitOfWork

Buttons = list[list[dict[str, str]]]

# The 【待分派】 keyboard's last button: every active department to choose from.
OTHER_DEPARTMENTS: Final = "其他单位"
_SUGGESTED: Final = 3

# Channels that push nothing: their clients ask for a ticket's status
# (Open311's GET requests). A notice to such a contact is not queued.
POLLED_CHANNELS = frozenset({"open311"})

# Purposes a resident who opted out does not receive; status updates still go.
OPTIONAL_PURPOSES = frozenset({"prompt", "broadcast"})


def staff_buttons(number: str, actions: list[tuple[str, str]]) -> Buttons:
    """One row of buttons whose callback data (``t:<number>:<action>``) fits 64 bytes."""
    return [[{"text": label, "data": f"t:{number}:{action}"} for label, action in actions]]


async def triage_buttons(
    uow: UnitOfWork,
    config: DeskConfig,
    ticket: Ticket,
    categories: Iterable[str],
    *,
    exclude: Collection[int] = (),
) -> Buttons:
    """The triage notice's keyboard: a department per suggested category, then 其他单位.

    Callback data names the department and the category's place in the
    config (``g:<number>:<code>:<index>``), not the category itself:
    category codes may be 60 Chinese characters (180 bytes), a department
    code is at most 40 ASCII ones, so the data stays within Telegram's 64
    bytes. The tap checks the index still names a category of that
    department (the config may have changed since) before taking it.
    """
    number = ticket.number or ""
    rows: Buttons = []
    chosen: set[str] = set()
    for code in categories:
        category = config.category_by_code.get(code)
        if category is None or category.department in chosen:
            continue
        department = await uow.directory.department_by_code(category.department)
        if department is None or not department.active or department.is_supervision:
            continue
        if department.id in ticket.accused_department_ids or department.id in exclude:
            continue  # never offer the department complained about (or the one returning it)
        chosen.add(department.code)
        label = f"{category.code}·{department.short_name}"
        # The category's place in the config rides along: a tap confirms it too.
        index = config.categories.index(category)
        rows.append([{"text": label, "data": f"g:{number}:{department.code}:{index}"}])
        if len(rows) == _SUGGESTED:
            break
    rows.append([{"text": OTHER_DEPARTMENTS, "data": f"o:{number}"}])
    return rows


async def notify_resident(
    uow: UnitOfWork,
    ticket: Ticket,
    body: str,
    *,
    purpose: str = "update",
    buttons: Buttons | None = None,
) -> bool:
    """Queue a message to the resident on the channel they used; False if not queued."""
    contact = await uow.directory.contact_by_id(ticket.contact_id)
    if contact is None or contact.unreachable:
        reason = "contact unreachable (blocked the bot or number invalid)"
    elif contact.opted_out and purpose in OPTIONAL_PURPOSES:
        reason = "contact opted out of prompts and broadcasts"
    else:
        reason = None
    if contact is None or reason is not None:
        # Not sent, but never silently: the audit trail says why.
        uow.events.append(
            ticket_id=ticket.id,
            actor="system",
            action="notice_skipped",
            detail={"purpose": purpose, "reason": reason},
        )
        return False
    if contact.channel in POLLED_CHANNELS:
        # Not skipped: the resident's client reads the status when it asks.
        return True
    recipients = [contact]
    if purpose not in OPTIONAL_PURPOSES:
        # Residents whose complaints were merged in hear every update (not the
        # rating question: the ticket's own complainant answers that).
        recipients += [
            f
            for f in await uow.directory.followers(ticket.id)
            if not f.unreachable and f.channel not in POLLED_CHANNELS
        ]
    for recipient in recipients:
        await uow.outbox.enqueue(
            channel=recipient.channel,
            recipient=recipient.address,
            body=body,
            ticket_id=ticket.id,
            purpose=purpose,
            buttons=buttons if recipient is contact else None,
        )
    return True


async def retire_buttons(
    uow: UnitOfWork, ticket: Ticket, purposes: Collection[str], *, note: str = ""
) -> int:
    """Take the keyboard off the resident's messages of these purposes; how many.

    Once answered (a rating) or moot (补充材料 on a finished ticket), buttons
    only invite a tap that can change nothing. An edit row with the same text
    (and ``note`` after it) and no buttons: Telegram removes the keyboard.
    """
    rows = await uow.outbox.for_ticket(ticket.id)
    retired = {row.edit_of_id for row in rows if row.kind == "edit"}
    count = 0
    for row in rows:
        if (
            row.channel != "telegram"
            or row.kind != "text"
            or row.purpose not in purposes
            or not row.buttons
            or row.status == "dead"
            or row.id in retired
        ):
            continue
        body = f"{row.body}\n{note}" if note else row.body
        await uow.outbox.enqueue_edit(row, body=body, buttons=None, purpose="retire_buttons")
        count += 1
    return count


async def notify_department(
    uow: UnitOfWork,
    config: DeskConfig,
    department: Department,
    ticket: Ticket,
    body: str,
    *,
    buttons: Buttons | None = None,
    purpose: str = "department",
    kind: str = "text",
    payload: dict[str, Any] | None = None,
) -> OutboxMessage | None:
    """Queue a notice to the department's group chat (the admin room if it has none).

    Returns the outbox row, or None when there was nowhere to send it. A
    redirected notice says so in its first line, and its payload (if any)
    records ``redirected`` so an edit of it can say so again.
    """
    chat_id, thread_id = department.chat_id, department.thread_id
    if chat_id is None:
        chat_id, thread_id = config.desk.admin_chat_id, None
        body = f"{redirect_line(department)}\n{body}"
        if payload is not None:
            payload = {**payload, "redirected": True}
    if chat_id is None:
        _unroutable(uow, ticket, department.code)
        return None
    return await uow.outbox.enqueue(
        channel="telegram",
        recipient=str(chat_id),
        thread_id=thread_id,
        body=body,
        ticket_id=ticket.id,
        purpose=purpose,
        buttons=buttons,
        kind=kind,
        payload=payload,
    )


def redirect_line(department: Department) -> str:
    """The first line of a notice for a department with no group, sent to the admin room."""
    return f"（{department.name}未绑定群组，转至管理群）"


async def notify_admins(
    uow: UnitOfWork,
    config: DeskConfig,
    ticket: Ticket,
    body: str,
    *,
    buttons: Buttons | None = None,
) -> bool:
    """Queue a notice (with its buttons, if any) to the centre's admin room, if configured."""
    if config.desk.admin_chat_id is None:
        _unroutable(uow, ticket, "admin room")
        return False
    await uow.outbox.enqueue(
        channel="telegram",
        recipient=str(config.desk.admin_chat_id),
        body=body,
        ticket_id=ticket.id,
        purpose="admin",
        buttons=buttons,
    )
    return True


def _unroutable(uow: UnitOfWork, ticket: Ticket, where: str) -> None:
    """Record that a notice had nowhere to go (no group chat configured)."""
    uow.events.append(
        ticket_id=ticket.id,
        actor="system",
        action="notice_unroutable",
        detail={"to": where},
    )
