"""投诉登记: register a complaint exactly once and answer with the service card.

The inbound message, the ticket, its audit events and the messages it causes
are one transaction keyed on ``UNIQUE(channel, external_id)`` with
insert-on-conflict: a provider's retry (or a concurrent duplicate) finds the
stored row and gets the very same reply, and no second ticket or message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers import texts
from handlers.cards import DETAILS_OPENED, refresh_cards, send_attachments, send_cards
from handlers.context import Desk
from handlers.duplicates import DuplicateMatch, find_duplicate
from handlers.messages import SYSTEM, IncomingMessage, IntakeResult
from handlers.notify import (
    Buttons,
    notify_admins,
    notify_department,
    notify_resident,
    triage_buttons,
)
from handlers.routing import RouteDecision
from handlers.ticket_actions import set_assignment
from handlers.workflow import HANDLING, TRIAGE, Status
from nlp.extract import place_names
from nlp.normalise import clean, normalise
from storage.models import Department, InboundMessage, Ticket, TicketAttachment
from storage.unit_of_work import UnitOfWork

logger = logging.getLogger(__name__)

# The lead department and co-departments a new ticket was assigned to.
Assignment = tuple[Department, list[Department]]


async def handle_register(desk: Desk, message: IncomingMessage) -> IntakeResult:
    """The resident sees the service card: ticket number, department, deadline, how to query."""
    stored = await store_message(desk, message)
    if isinstance(stored, IntakeResult):
        return stored
    # 2. Processed exactly once, however many copies of the message race here.
    return await register_stored(desk, stored, message)


async def store_message(desk: Desk, message: IncomingMessage) -> int | IntakeResult:
    """Commit the message on its own; its row id, or the stored reply if it was answered.

    Whatever fails after this, the message is on record and will be processed
    (``handlers.inbound.process_pending``).
    """
    async with desk.database.transaction() as uow:
        inbound = await uow.inbound.record(
            channel=message.channel,
            external_id=message.external_id,
            sender=message.sender,
            # PostgreSQL text columns refuse NUL; the raw payload keeps the original.
            text=message.text.replace("\x00", ""),
            raw_payload=message.raw,
        )
        if inbound is None:
            stored = await uow.inbound.find(message.channel, message.external_id)
            if stored is None:  # pragma: no cover - the conflicting row is committed
                raise LookupError(f"inbound {message.channel}:{message.external_id} vanished")
            if stored.reply_text is not None:
                return await _replay(uow, stored)
            inbound = stored
        return inbound.id


async def register_stored(desk: Desk, inbound_id: int, message: IncomingMessage) -> IntakeResult:
    """Register a stored message as a complaint, exactly once (the row is locked and checked)."""
    text = clean(message.text.replace("\x00", ""))
    acceptable = bool(text) and len(text) <= desk.config.desk.max_text_chars
    # Classification (jieba for the trained engine) runs in a worker thread,
    # before the write transaction, so neither the event loop nor other
    # writers wait for it.
    analysis = (
        await asyncio.to_thread(_analyse, desk, text, message.category) if acceptable else None
    )
    async with desk.database.transaction() as uow:
        inbound = await uow.inbound.get_for_update(inbound_id)
        if inbound.reply_text is not None:
            return await _replay(uow, inbound)
        inbound.reply_inline = message.reply_inline
        duplicate = (
            await find_duplicate(
                desk,
                uow,
                channel=message.channel,
                sender=message.sender,
                text=text,
                places=analysis[1],
            )
            if analysis is not None
            else None
        )
        # Attachments alone are details for a recent ticket, never a complaint.
        attachments_only = not text and bool(message.attachments)
        recent = (
            await _recent_tickets(desk, uow, message)
            if message.joins_recent and (analysis is not None or attachments_only)
            else None
        )
        if recent is not None and recent.follow_up is not None:
            ticket = recent.follow_up
            reply, number = await _add_details(desk, uow, ticket, message, text), ticket.number
            inbound.ticket_id = ticket.id
            if not message.reply_inline:
                await _answer(uow, message, reply, ticket_id=ticket.id)
        elif analysis is None:
            reply, number = _refusal(desk, text, message), None
            if not message.reply_inline:
                await _answer(uow, message, reply, ticket_id=None)
        elif recent is not None and recent.over_limit:
            reply, number = texts.rate_limited(desk.config.desk.new_ticket_window_minutes), None
            logger.warning(
                "new-ticket limit reached for a %s sender; message %s refused",
                message.channel,
                message.external_id,
            )
            if not message.reply_inline:
                await _answer(uow, message, reply, ticket_id=None)
        elif duplicate is not None:
            reply, number = await _merge(uow, message, duplicate), duplicate.ticket.number
            inbound.ticket_id = duplicate.ticket.id
            if not message.reply_inline:
                await _answer(uow, message, reply, ticket_id=duplicate.ticket.id)
        else:
            decision = analysis[0]
            ticket, slip = await _register(desk, uow, message, text, decision)
            await _keep_attachments(uow, ticket, message)
            inbound.ticket_id = ticket.id
            reply, number = await _service_card(uow, ticket), ticket.number
            # The resident's card is queued first: they hear back before anyone else.
            if not message.reply_inline:
                await notify_resident(
                    uow, ticket, reply, purpose="card", buttons=details_button(message, ticket)
                )
            if slip is not None:
                await send_cards(desk, uow, ticket, *slip)
        inbound.reply_text = reply
    desk.on_outbox()
    return IntakeResult(reply=reply, ticket_number=number, duplicate=False)


@dataclass(frozen=True, slots=True)
class _Recent:
    """What the sender's recent tickets say about a new message."""

    follow_up: Ticket | None  # the ticket it adds details to, if any
    over_limit: bool  # the sender opened the most tickets allowed in the window


async def _recent_tickets(desk: Desk, uow: UnitOfWork, message: IncomingMessage) -> _Recent:
    """The sender's ticket a follow-up joins, and whether they may open another."""
    settings = desk.config.desk
    contact = await uow.directory.contact(message.channel, message.sender)
    if contact is None:
        return _Recent(None, False)
    now = desk.clock()
    follow_up_since = now - timedelta(minutes=settings.follow_up_minutes)
    limit_since = now - timedelta(minutes=settings.new_ticket_window_minutes)
    recent = await uow.tickets.of_contact_since(contact.id, min(follow_up_since, limit_since))
    newest = recent[0] if recent else None
    follow_up = (
        newest
        if newest is not None
        and settings.follow_up_minutes > 0
        and newest.created_at >= follow_up_since
        # Added details must reach someone still working on it.
        and Status(newest.status) in TRIAGE | HANDLING
        else None
    )
    if follow_up is None and settings.follow_up_minutes > 0:
        follow_up = await _opened_for_details(uow, contact.id, follow_up_since)
    opened = sum(1 for ticket in recent if ticket.created_at >= limit_since)
    over_limit = settings.new_ticket_limit > 0 and opened >= settings.new_ticket_limit
    return _Recent(follow_up, over_limit)


async def _opened_for_details(uow: UnitOfWork, contact_id: int, since: datetime) -> Ticket | None:
    """The open ticket whose 补充材料 button the sender pressed since ``since``, if any."""
    open_tickets = await uow.tickets.of_contact_in(contact_id, [s.value for s in TRIAGE | HANDLING])
    opened = await uow.events.latest(
        ticket_ids=[t.id for t in open_tickets], action=DETAILS_OPENED, since=since
    )
    if opened is None:
        return None
    return next(t for t in open_tickets if t.id == opened.ticket_id)


def details_button(message: IncomingMessage, ticket: Ticket) -> Buttons | None:
    """The service card's 补充材料 button, where the channel has buttons (Telegram)."""
    if message.channel != "telegram":
        return None
    return [[{"text": "补充材料", "data": f"d:{ticket.number}"}]]


async def _keep_attachments(
    uow: UnitOfWork, ticket: Ticket, message: IncomingMessage
) -> list[TicketAttachment]:
    """Store the message's attachments with the ticket; the rows stored."""
    kept = []
    for attachment in message.attachments:
        row = await uow.attachments.add(
            ticket_id=ticket.id,
            channel=message.channel,
            kind=attachment.kind,
            file_ref=attachment.file_ref,
            file_name=attachment.file_name,
            latitude=attachment.latitude,
            longitude=attachment.longitude,
        )
        kept.append(row)
    return kept


async def _add_details(
    desk: Desk, uow: UnitOfWork, ticket: Ticket, message: IncomingMessage, text: str
) -> str:
    """Append a follow-up (text, attachments or both) to the ticket and tell whoever handles it."""
    if text:
        ticket.text = f"{ticket.text}\n【补充】{text}"
    ticket.updated_at = desk.clock()
    kept = await _keep_attachments(uow, ticket, message)
    uow.events.append(
        ticket_id=ticket.id,
        actor=f"citizen:{ticket.citizen_id}",
        action="add_details",
        detail={
            "channel": message.channel,
            "inbound": message.external_id,
            "text": text,
            "attachments": [attachment.id for attachment in kept],
        },
    )
    if ticket.department_id is not None and Status(ticket.status) in HANDLING:
        handling = [ticket.department_id, *ticket.co_department_ids]
        for department_id in handling:
            department = await uow.directory.department(department_id)
            if department is None:  # pragma: no cover - departments are never deleted
                continue
            if text:
                await notify_department(
                    uow,
                    desk.config,
                    department,
                    ticket,
                    f"【补充材料】受理编号 {ticket.number}：{text}",
                )
            await send_attachments(desk, uow, ticket, department, kept)
    await refresh_cards(desk, uow, ticket)
    return texts.details_appended(ticket.number or "")


def _analyse(
    desk: Desk, text: str, category: str | None = None
) -> tuple[RouteDecision, tuple[str, ...]]:
    """Route the complaint and find the places it names (pure; runs in a thread)."""
    normalised = normalise(text)
    places = tuple(place_names(normalised)) if desk.config.duplicates.enabled else ()
    return desk.router.route(normalised, category), places


async def _answer(
    uow: UnitOfWork, message: IncomingMessage, reply: str, *, ticket_id: int | None
) -> None:
    """Queue the answer to the sender on the channel they used."""
    await uow.outbox.enqueue(
        channel=message.channel,
        recipient=message.sender,
        body=reply,
        ticket_id=ticket_id,
        purpose="reply",
    )


async def _merge(uow: UnitOfWork, message: IncomingMessage, duplicate: DuplicateMatch) -> str:
    """Link the message to the open ticket it duplicates; the answer names that ticket."""
    ticket = duplicate.ticket
    contact = await uow.directory.ensure_contact(message.channel, message.sender)
    contact.unreachable = False
    if contact.id != ticket.contact_id:
        await uow.directory.follow(ticket.id, contact.id)
    uow.events.append(
        ticket_id=ticket.id,
        actor=f"citizen:{contact.citizen_id}",
        action="merge",
        detail={
            "channel": message.channel,
            "inbound": message.external_id,
            "similarity": round(duplicate.score, 3),
            "same_sender": duplicate.same_sender,
        },
    )
    department = (
        await uow.directory.department(ticket.department_id) if ticket.department_id else None
    )
    return texts.merged_card(
        ticket.number or "", department.short_name if department else None, ticket.deadline_at
    )


def _refusal(desk: Desk, text: str, message: IncomingMessage) -> str:
    """The polite answer to a message that cannot become a ticket."""
    if not text and message.attachments:
        return texts.attachments_need_text(desk.config.desk.follow_up_minutes)
    if not text:
        return texts.media_only() if message.media_count else texts.empty_complaint()
    return texts.complaint_too_long(desk.config.desk.max_text_chars)


async def _replay(uow: UnitOfWork, stored: InboundMessage) -> IntakeResult:
    """A message seen before: the same answer, nothing new written."""
    number = None
    if stored.ticket_id is not None:
        ticket = await uow.tickets.get(stored.ticket_id)
        number = ticket.number if ticket else None
    logger.info("duplicate inbound %s:%s ignored", stored.channel, stored.external_id)
    return IntakeResult(reply=stored.reply_text or "", ticket_number=number, duplicate=True)


async def _register(
    desk: Desk, uow: UnitOfWork, message: IncomingMessage, text: str, decision: RouteDecision
) -> tuple[Ticket, Assignment | None]:
    """Create the ticket, audit it, and assign it when routing is confident."""
    place = message.place
    contact = await uow.directory.ensure_contact(message.channel, message.sender)
    if contact.unreachable:
        # They wrote to us, so they can be reached again (e.g. unblocked the bot).
        contact.unreachable = False
    now = desk.clock()
    accused = [
        department.id
        for code in decision.accused_departments
        if (department := await uow.directory.department_by_code(code)) is not None
    ]
    ticket = await uow.tickets.add(
        Ticket(
            citizen_id=contact.citizen_id,
            contact_id=contact.id,
            channel=message.channel,
            text=text,
            category=decision.category,
            confidence=decision.confidence,
            evidence=list(decision.evidence),
            accused_department_ids=accused,
            # Conduct complaints are confidential: the complainant is never shown.
            confidential=bool(accused),
            status=Status.RECEIVED.value,
            priority="urgent" if decision.urgent else "normal",
            created_at=now,
            updated_at=now,
            address=place.address if place else None,
            latitude=place.latitude if place else None,
            longitude=place.longitude if place else None,
            api_key_id=message.api_key_id,
        )
    )
    uow.events.append(
        ticket_id=ticket.id,
        actor=f"citizen:{contact.citizen_id}",
        action="register",
        to_status=Status.RECEIVED.value,
        detail={"channel": message.channel, "inbound": message.external_id},
    )
    uow.events.append(
        ticket_id=ticket.id,
        actor=SYSTEM.label,
        action="route",
        detail={
            "category": decision.category,
            "confidence": decision.confidence,
            "evidence": list(decision.evidence),
            "department": decision.department,
            "co_departments": list(decision.co_departments),
            "urgent": decision.urgent,
            "accused_departments": list(decision.accused_departments),
            "suggestions": [s.category for s in decision.suggestions],
        },
    )
    assignment = None
    if not decision.needs_triage:
        assignment = await _auto_assign(desk, uow, ticket, decision)
    else:
        suggestions = "、".join(s.category for s in decision.suggestions) or "无"
        buttons = await triage_buttons(
            uow, desk.config, ticket, [score.category for score in decision.suggestions]
        )
        await notify_admins(
            uow,
            desk.config,
            ticket,
            f"【待分派】受理编号 {ticket.number}，建议类别：{suggestions}。\n内容：{text}",
            buttons=buttons,
        )
    if decision.urgent:
        await notify_admins(
            uow, desk.config, ticket, f"【紧急】受理编号 {ticket.number} 涉及人身安全：{text}"
        )
    return ticket, assignment


async def _auto_assign(
    desk: Desk, uow: UnitOfWork, ticket: Ticket, decision: RouteDecision
) -> Assignment | None:
    """受理 and 转办 in the registering transaction when routing is confident."""
    assert decision.department is not None
    lead = await uow.directory.department_by_code(decision.department)
    if lead is None:
        logger.error("routed to unknown department %s; ticket waits in triage", decision.department)
        return None
    co = [
        department
        for code in decision.co_departments
        if (department := await uow.directory.department_by_code(code)) is not None
    ]
    set_assignment(desk, ticket, lead, co)
    for action, before, after in (
        ("accept", Status.RECEIVED, Status.ACCEPTED),
        ("assign", Status.ACCEPTED, Status.ASSIGNED),
    ):
        uow.events.append(
            ticket_id=ticket.id,
            actor=SYSTEM.label,
            action=action,
            from_status=before.value,
            to_status=after.value,
            detail={"department": lead.code} if action == "assign" else {},
        )
    ticket.status = Status.ASSIGNED.value
    return lead, co


async def _service_card(uow: UnitOfWork, ticket: Ticket) -> str:
    department = (
        await uow.directory.department(ticket.department_id) if ticket.department_id else None
    )
    return texts.service_card(
        ticket.number or "",
        department.short_name if department else None,
        ticket.deadline_at,
    )
