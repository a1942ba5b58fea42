"""The department's ticket card (转办单): sent once, then edited in place.

A card is an outbox row with purpose ``card`` and a payload naming the
department it was sent to (and its heading: 转办单, 协办单 or 重新办理). After
every change to a ticket, ``refresh_cards`` renders each of its cards again
from the ticket as it now stands: the status, who claimed it (经办人), the
deadline, the attachments, and the buttons that department may press now.
Where that differs from what the chat shows, an ``edit`` row is queued; the
Telegram sender turns it into editMessageText, which replaces the text and
the keyboard. So a card never keeps buttons that no longer apply: a ticket
transferred away, returned or resolved leaves its old cards with a status
line and no buttons.

Only a department's newest card is live (has buttons): a ticket reopened or
transferred back gets a fresh card, and the older ones point to it.

A card is always one message, so it can be edited: a complaint too long for
one goes in full in a message before the card, and the card quotes the
beginning.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from handlers import texts
from handlers.context import Desk
from handlers.notify import Buttons, notify_department, redirect_line, staff_buttons
from handlers.workflow import Status
from storage.models import Department, OutboxMessage, Ticket, TicketAttachment
from storage.unit_of_work import UnitOfWork

CARD_PURPOSE: Final = "department_card"
ATTACHMENT_PURPOSE: Final = "attachment"
# The audit action of a resident pressing 补充材料: their next messages join the ticket.
DETAILS_OPENED: Final = "details_opened"
EDIT_PURPOSE: Final = "card_edit"
# Under Telegram's 4,096 characters, with room for the redirect line.
CARD_LIMIT: Final = 3900
_EXCERPT_NOTE: Final = "…（内容较长，全文见上一条消息）"

LEAD_HEADING: Final = "转办单"
CO_HEADING: Final = "协办单"
REOPEN_HEADING: Final = "重新办理"

# What the lead department may press, by status (labels and actions of t:<number>:<action>).
_WAITING: Final = [
    [("签收", "claim")],
    [("退单", "return"), ("转办", "transfer"), ("申请延期", "extend")],
]
_HANDLING: Final = [
    [("回复", "reply"), ("办结", "resolve")],
    [("退单", "return"), ("转办", "transfer"), ("申请延期", "extend")],
]
LEAD_BUTTONS: Final = {
    Status.ASSIGNED: _WAITING,
    Status.REOPENED: _WAITING,
    Status.CLAIMED: _HANDLING,
    Status.IN_PROGRESS: _HANDLING,
}
# A co-handling department reports progress once the lead has claimed it.
CO_BUTTONS: Final = {
    Status.CLAIMED: [[("回复", "reply")]],
    Status.IN_PROGRESS: [[("回复", "reply")]],
}
CARD_STATUS: Final = {
    Status.ASSIGNED: "待签收",
    Status.CLAIMED: "已签收",
    Status.IN_PROGRESS: "办理中",
    Status.REOPENED: "重新办理，待签收",
    Status.RESOLVED: "已办结，待群众评价",
    Status.CLOSED: "已办结",
    Status.RETURNED: "已退回中心重新分派",
    Status.REJECTED: "不予受理",
}
ATTACHMENT_LABELS: Final = {
    "photo": ("照片", "张"),
    "document": ("文件", "个"),
    "location": ("位置", "处"),
    "link": ("图片链接", "个"),
}


@dataclass(frozen=True, slots=True)
class CardView:
    """What a card shows: its text and the buttons under it (None for none)."""

    body: str
    buttons: Buttons | None
    # True when the complaint was too long and the card quotes its beginning.
    excerpt: bool = False


async def send_cards(
    desk: Desk,
    uow: UnitOfWork,
    ticket: Ticket,
    lead: Department,
    co_departments: Sequence[Department] = (),
    *,
    heading: str = LEAD_HEADING,
    status: Status | None = None,
    with_attachments: bool = True,
) -> None:
    """Send the lead department its card and each co-department a 协办单.

    ``status`` is the one the ticket is moving to, when the transaction has
    not set it yet. The ticket's attachments follow each card, unless the
    department has them already (``with_attachments`` False). The ticket's
    older cards are refreshed by the action's own transaction
    (``ticket_actions._act``), after the change: a ticket being registered
    has none.
    """
    facts = await card_facts(uow, ticket)
    for department, card_heading in [(lead, heading), *((co, CO_HEADING) for co in co_departments)]:
        view = await render_card(
            uow, ticket, department, facts, heading=card_heading, live=True, status=status
        )
        if view.excerpt:
            # The card quotes the beginning; the whole complaint goes first.
            await notify_department(
                uow,
                desk.config,
                department,
                ticket,
                f"【诉求全文】受理编号 {ticket.number}\n{ticket.text}",
            )
        await notify_department(
            uow,
            desk.config,
            department,
            ticket,
            view.body,
            buttons=view.buttons,
            purpose=CARD_PURPOSE,
            payload={"department_id": department.id, "heading": card_heading},
        )
        if with_attachments:
            await send_attachments(desk, uow, ticket, department, facts.attachments)


async def send_attachments(
    desk: Desk,
    uow: UnitOfWork,
    ticket: Ticket,
    department: Department,
    attachments: Sequence[TicketAttachment],
) -> None:
    """Re-send a resident's photos, documents and locations to a department's group.

    By Telegram file id, captioned with the ticket number (a location by its
    coordinates, titled with the number): never forwarded, so the resident's
    name and account stay out of the group.
    """
    for attachment in attachments:
        if attachment.kind == "location":
            payload: dict[str, object] = {
                "latitude": attachment.latitude,
                "longitude": attachment.longitude,
            }
        elif attachment.kind == "link" and attachment.file_ref is not None:
            # A link a client gave (Open311 media_url): the department opens it.
            await notify_department(
                uow,
                desk.config,
                department,
                ticket,
                f"受理编号 {ticket.number} 的图片链接：{attachment.file_ref}",
                purpose=ATTACHMENT_PURPOSE,
            )
            continue
        elif attachment.file_ref is not None and attachment.channel == "telegram":
            payload = {"file_id": attachment.file_ref}
        else:  # pragma: no cover - nothing else is kept
            continue
        label = ATTACHMENT_LABELS.get(attachment.kind, ("附件", ""))[0]
        await notify_department(
            uow,
            desk.config,
            department,
            ticket,
            f"受理编号 {ticket.number} 群众提供的{label}",
            purpose=ATTACHMENT_PURPOSE,
            kind=attachment.kind,
            payload=payload,
        )


async def refresh_cards(desk: Desk, uow: UnitOfWork, ticket: Ticket) -> int:
    """Queue an edit for every card of the ticket that no longer shows its state; how many."""
    rows = await uow.outbox.for_ticket(ticket.id)
    cards = [
        r for r in rows if r.purpose == CARD_PURPOSE and r.kind == "text" and r.status != "dead"
    ]
    if not cards:
        return 0
    newest: dict[int, int] = {}
    for card in cards:
        newest[_department_id(card)] = card.id  # rows are in id order: the last one wins
    shown = _shown(rows)
    facts = await card_facts(uow, ticket)
    queued = 0
    for card in cards:
        department = await uow.directory.department(_department_id(card))
        if department is None:  # pragma: no cover - departments are never deleted
            continue
        payload = card.payload or {}
        view = await render_card(
            uow,
            ticket,
            department,
            facts,
            heading=str(payload.get("heading", LEAD_HEADING)),
            live=newest[department.id] == card.id,
        )
        body = (
            f"{redirect_line(department)}\n{view.body}" if payload.get("redirected") else view.body
        )
        if shown.get(card.id, (card.body, card.buttons)) == (body, view.buttons):
            continue
        await uow.outbox.enqueue_edit(card, body=body, buttons=view.buttons, purpose=EDIT_PURPOSE)
        queued += 1
    return queued


@dataclass(frozen=True, slots=True)
class CardFacts:
    """What every card of a ticket shows alike, read once however many cards are drawn."""

    masked_contact: str
    attachments: Sequence[TicketAttachment]


async def card_facts(uow: UnitOfWork, ticket: Ticket) -> CardFacts:
    """The ticket's masked contact and its attachments."""
    contact = await uow.directory.contact_by_id(ticket.contact_id)
    masked = texts.mask_address(contact.channel, contact.address) if contact else ""
    return CardFacts(masked, await uow.attachments.of_ticket(ticket.id))


async def render_card(
    uow: UnitOfWork,
    ticket: Ticket,
    department: Department,
    facts: CardFacts,
    *,
    heading: str,
    live: bool,
    status: Status | None = None,
) -> CardView:
    """The card as ``department`` should see it now (``live``: its newest card of the ticket).

    ``status`` overrides the ticket's, for a card sent before the transaction sets it.
    """
    line, buttons = await _state(
        uow, ticket, department, Status(ticket.status) if status is None else status, live=live
    )
    lines = [f"状态：{line}"]
    if facts.attachments:
        summary = attachment_summary(a.kind for a in facts.attachments)
        lines.insert(0, f"附件：{summary}（见群内消息）")
    head = texts.department_notice(
        number=ticket.number or "",
        category=ticket.category,
        confidence=ticket.confidence,
        evidence=list(ticket.evidence),
        urgent=ticket.priority == "urgent",
        deadline=ticket.deadline_at,
        masked_contact=facts.masked_contact,
        channel=ticket.channel,
        text="",
        heading=heading,
    )
    tail = "\n" + "\n".join(lines)
    room = CARD_LIMIT - len(head) - len(tail)
    text, excerpt = ticket.text, len(ticket.text) > room
    if excerpt:
        text = text[: max(room - len(_EXCERPT_NOTE), 0)] + _EXCERPT_NOTE
    return CardView(head + text + tail, buttons, excerpt)


def attachment_summary(kinds: Iterable[str]) -> str:
    """``照片2张、位置1处``: how many of each kind, in a fixed order."""
    counts = Counter(kinds)
    parts = [
        f"{label}{counts[kind]}{unit}"
        for kind, (label, unit) in ATTACHMENT_LABELS.items()
        if counts.get(kind)
    ]
    return "、".join(parts)


async def _state(
    uow: UnitOfWork, ticket: Ticket, department: Department, status: Status, *, live: bool
) -> tuple[str, Buttons | None]:
    """The status line a department's card shows, and its buttons."""
    number = ticket.number or ""
    label = CARD_STATUS.get(status, texts.STATUS_LABELS.get(status, status))
    if ticket.department_id == department.id:
        role, table = "", LEAD_BUTTONS
    elif department.id in ticket.co_department_ids:
        role, table = "（本单位协办）", CO_BUTTONS
    elif ticket.department_id is not None:
        now_with = await uow.directory.department(ticket.department_id)
        name = now_with.short_name if now_with is not None else "其他单位"
        return f"已转办至{name}，本单位无需再办理", None
    else:
        return label, None
    if not live:
        return "已重新派发，请在本单位收到的最新工单卡片上办理", None
    line = label + role
    if ticket.owner_staff_id is not None:
        owner = await uow.directory.staff_by_id(ticket.owner_staff_id)
        line += f"，经办人：{owner.name or f'工作人员#{owner.id}'}" if owner else ""
    rows = table.get(status)
    buttons = [staff_buttons(number, row)[0] for row in rows] if rows is not None else None
    return line, buttons


def _department_id(card: OutboxMessage) -> int:
    return int((card.payload or {}).get("department_id", 0))


def _shown(rows: Sequence[OutboxMessage]) -> dict[int, tuple[str, Buttons | None]]:
    """What each card shows now, or will once its queued edits are sent: the newest edit's."""
    shown: dict[int, tuple[str, Buttons | None]] = {}
    for row in rows:
        if row.kind == "edit" and row.edit_of_id is not None and row.status != "dead":
            shown[row.edit_of_id] = (row.body, row.buttons)
    return shown
