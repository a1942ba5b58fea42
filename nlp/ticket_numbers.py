"""Ticket numbers: issued from the database id, typed back by residents.

A number is the two-digit year, the database id padded to six digits, and a
Luhn check digit (``26`` ``000123`` ``x``): nine digits a resident can type on an
old phone's keypad, and a single mistyped digit or swapped pair is caught
instead of pointing at someone else's ticket.
"""

from __future__ import annotations

import re

_NUMBER_RE = re.compile(r"(?<!\d)(\d{9,12})(?!\d)")


def luhn_digit(digits: str) -> str:
    """The Luhn check digit for a string of digits."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def format_ticket_number(ticket_id: int, year: int) -> str:
    """The public number of the ticket with this database id, created in ``year``."""
    if ticket_id <= 0:
        raise ValueError(f"ticket id must be positive, got {ticket_id}")
    body = f"{year % 100:02d}{ticket_id:06d}"
    return body + luhn_digit(body)


def is_valid_ticket_number(candidate: str) -> bool:
    """True when ``candidate`` is all digits, long enough, and its check digit matches."""
    if not candidate.isascii() or not candidate.isdigit() or not 9 <= len(candidate) <= 12:
        return False
    return luhn_digit(candidate[:-1]) == candidate[-1]


def find_ticket_numbers(text: str) -> list[str]:
    """Valid ticket numbers typed anywhere in (already normalised) text, in order."""
    return [m for m in _NUMBER_RE.findall(text) if is_valid_ticket_number(m)]
