"""Ticket numbers: issued from the database id, typed back by residents.

A number is the two-digit year, the database id padded to six digits, and a
Damm check digit (``26`` ``000123`` ``x``): nine digits a resident can type on
an old phone's keypad. The Damm check catches every single mistyped digit and
every swap of two adjacent digits (Luhn misses 09/90), so a typo is refused
instead of pointing at someone else's ticket.
"""

from __future__ import annotations

import re

# The Damm quasigroup of order 10 (weakly totally anti-symmetric).
_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2),
    (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9),
    (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8),
    (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4),
    (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5),
    (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)
# Nine digits until the millionth ticket of a year-prefix, ten after. Phone
# numbers (11 digits) never match.
_NUMBER_RE = re.compile(r"(?<!\d)(\d{9,10})(?!\d)")


def check_digit(digits: str) -> str:
    """The Damm check digit for a string of digits."""
    interim = 0
    for char in digits:
        interim = _DAMM[interim][int(char)]
    return str(interim)


def format_ticket_number(ticket_id: int, year: int) -> str:
    """The public number of the ticket with this database id, created in ``year``."""
    if ticket_id <= 0:
        raise ValueError(f"ticket id must be positive, got {ticket_id}")
    body = f"{year % 100:02d}{ticket_id:06d}"
    return body + check_digit(body)


def is_valid_ticket_number(candidate: str) -> bool:
    """True when ``candidate`` is 9-10 ASCII digits and its check digit matches."""
    if not candidate.isascii() or not candidate.isdigit() or not 9 <= len(candidate) <= 10:
        return False
    return check_digit(candidate[:-1]) == candidate[-1]


def find_ticket_numbers(text: str) -> list[str]:
    """Valid ticket numbers typed anywhere in (already normalised) text, in order."""
    return [m for m in _NUMBER_RE.findall(text) if is_valid_ticket_number(m)]
