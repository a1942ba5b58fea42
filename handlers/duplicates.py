"""Duplicates: a new complaint about a problem already open is merged, not re-opened.

Two cases, with thresholds in ``[duplicates]``: near-identical to an open
ticket from the same resident (they wrote twice), or highly similar to an open
ticket from someone else that names the same place (neighbours complaining
about the same noisy site). Confidential conduct complaints only merge with
the same resident's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from handlers.context import Desk
from handlers.workflow import HANDLING, TRIAGE
from nlp.similarity import best_match
from storage.models import Ticket
from storage.unit_of_work import UnitOfWork

OPEN = frozenset(status.value for status in HANDLING | TRIAGE)


@dataclass(frozen=True, slots=True)
class DuplicateMatch:
    """The open ticket a new complaint duplicates, and how alike they are."""

    ticket: Ticket
    score: float
    same_sender: bool


async def find_duplicate(
    desk: Desk,
    uow: UnitOfWork,
    *,
    channel: str,
    sender: str,
    text: str,
    places: tuple[str, ...],
) -> DuplicateMatch | None:
    """The open ticket this complaint duplicates, if any."""
    policy = desk.config.duplicates
    if not policy.enabled:
        return None
    since = desk.clock() - timedelta(days=policy.window_days)
    candidates = await uow.tickets.open_since(OPEN, since, policy.max_candidates)
    if not candidates:
        return None
    contact = await uow.directory.contact(channel, sender)
    citizen = contact.citizen_id if contact is not None else None
    own = [(t, t.text) for t in candidates if t.citizen_id == citizen]
    found = best_match(text, own, policy.same_sender_threshold)
    if found is not None:
        return DuplicateMatch(found[0], found[1], same_sender=True)
    # Only places long enough to mean one spot (not a bare 区 or 路).
    named = [place for place in places if len(place) >= 3]
    if not named:
        return None
    others = [
        (t, t.text)
        for t in candidates
        if t.citizen_id != citizen
        and not t.confidential
        and any(place in t.text for place in named)
    ]
    found = best_match(text, others, policy.same_place_threshold)
    if found is None:
        return None
    return DuplicateMatch(found[0], found[1], same_sender=False)
