"""Read-only views of tickets for staff, the CLI and resident status queries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from handlers.context import Desk
from handlers.errors import TicketNotFound
from handlers.messages import Actor
from handlers.ticket_actions import visible_to
from storage.models import Ticket, TicketEvent
from storage.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class EventView:
    """One line of the audit trail."""

    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    detail: dict[str, object]


def event_views(events: Iterable[TicketEvent]) -> tuple[EventView, ...]:
    """Audit rows as the views read-only callers get."""
    return tuple(
        EventView(e.created_at, e.actor, e.action, e.from_status, e.to_status, e.detail)
        for e in events
    )


@dataclass(frozen=True, slots=True)
class TicketView:
    """A ticket with its department names and audit trail."""

    ticket: Ticket
    department: str | None
    accused_departments: tuple[str, ...]
    events: tuple[EventView, ...]


async def ticket_view(desk: Desk, number: str, viewer: Actor) -> TicketView:
    """The ticket and its timeline; residents see only their own tickets."""
    async with desk.database.reading() as uow:
        ticket = await uow.tickets.by_number(number)
        if ticket is None:
            raise TicketNotFound(number)
        if not visible_to(viewer, ticket) and not await _follows(uow, viewer, ticket):
            # Same answer as a missing ticket: nothing about others' tickets leaks.
            raise TicketNotFound(number)
        names = {d.id: d.short_name for d in await uow.directory.departments()}
        events = event_views(await uow.events.for_ticket(ticket.id))
    return TicketView(
        ticket=ticket,
        department=names.get(ticket.department_id) if ticket.department_id else None,
        accused_departments=tuple(names[i] for i in ticket.accused_department_ids if i in names),
        events=events,
    )


async def _follows(uow: UnitOfWork, viewer: Actor, ticket: Ticket) -> bool:
    """A resident whose complaint was merged into the ticket may follow it too."""
    if viewer.kind != "citizen":
        return False
    followers = await uow.directory.followers(ticket.id)
    return any(contact.citizen_id == viewer.citizen_id for contact in followers)
