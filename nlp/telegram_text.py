"""Splitting long texts into Telegram messages of at most 4,096 characters.

The Bot API refuses a message longer than 4,096 characters ("message is too
long"). Reports disagree on whether a character outside the Basic Multilingual
Plane (most emoji) counts once or twice, so length is measured here in UTF-16
code units, where it counts twice: a part that fits by that measure fits by
either.

``split_message`` returns a text that fits unchanged; a longer one is cut
preferring blank lines, then line breaks, then sentence ends, then clause
marks, then spaces, and only then a hard cut, which never falls inside a
surrogate pair, an emoji sequence or before a combining mark. Parts lose the
whitespace at their edges (Telegram trims a message's edges anyway, and a part
of only whitespace would be refused as empty); nothing else is added, dropped
or reordered. Telegram delivers one chat's messages in the order they were
sent, so parts carry no ``(1/3)`` markers, unlike SMS (``nlp.sms_segments``,
whose splitting is built on segment arithmetic and does not generalise).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

# telegram.constants.MessageLimit.MAX_TEXT_LENGTH; nlp/ stays free of the SDK.
MAX_MESSAGE_LENGTH: Final = 4096

_CLOSERS = "”’」』）)】》\"'\\]"
# Where a part may end, from the best cut to the worst; a cut is made after the
# match, so the closing quote or the line break stays with what it ends. ASCII
# punctuation only counts before whitespace, so "3.5", "1,000" and
# "https://www.gov.cn" are never cut.
_CUT_LEVELS: Final = (
    re.compile(r"\n[^\S\n]*\n\s*"),
    re.compile(r"\n\s*"),
    re.compile(rf"[。！？；…]+[{_CLOSERS}]*\s*|[.!?;]+[{_CLOSERS}]*\s+"),
    re.compile(r"[，、：]+\s*|[,:]\s+"),
    re.compile(r"\s+"),
)

_ZERO_WIDTH_JOINER: Final = "\u200d"
_MARKS: Final = frozenset({"Mn", "Mc", "Me"})


def utf16_length(text: str) -> int:
    """The text's length in UTF-16 code units: characters beyond U+FFFF count twice."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def split_message(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """The messages to send, in reading order, each at most ``limit`` UTF-16 code units.

    A text that fits is returned unchanged as the only element; a text of
    nothing but whitespace gives no message at all (Telegram refuses it).
    """
    if limit < 2:
        # One unit could not hold a character beyond U+FFFF: the cut would loop.
        raise ValueError(f"limit must be at least 2, got {limit}")
    if not text.strip():
        return []
    if utf16_length(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text.strip()
    while utf16_length(rest) > limit:
        window = _prefix_within(rest, limit)
        cut = _best_cut(rest, window)
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def _prefix_within(text: str, limit: int) -> int:
    """The length (in characters) of the longest prefix of ``text`` within ``limit`` units."""
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def _best_cut(text: str, window: int) -> int:
    """Where to end the next part of ``text`` (no leading whitespace); ``window`` chars fit.

    The best level with a cut in the back half of the window wins, so a part
    is never much shorter than it could be; failing that, the latest cut of
    any level; failing that, a hard cut.
    """
    # One character more than fits: a boundary may end exactly at the window's edge.
    head = text[: window + 1]
    latest = 0
    for cuts in _CUT_LEVELS:
        best = 0
        for match in cuts.finditer(head):
            # Only the whitespace of a match may lie beyond the window: the
            # parts' edges are stripped, so cutting inside it loses nothing.
            if match.start() + len(match.group().rstrip()) <= window:
                best = min(match.end(), window)
        if best * 2 >= window:
            return best
        latest = max(latest, best)
    return latest or _hard_cut(text, window)


def _hard_cut(text: str, window: int) -> int:
    """The window's end, moved back out of an emoji sequence or off a combining mark.

    A cluster longer than the whole window is cut where the window ends: there
    is no better place.
    """
    cut = window
    while cut > 1 and _joins(text[cut - 1], text[cut]):
        cut -= 1
    return cut if cut > 1 or not _joins(text[0], text[1]) else window


def _joins(before: str, after: str) -> bool:
    """Whether a cut between these two characters would break a visible character."""
    return (
        before == _ZERO_WIDTH_JOINER
        or after == _ZERO_WIDTH_JOINER
        # A lone high surrogate followed by its low half (text decoded with
        # "surrogatepass"): one character on the wire.
        or ("\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff")
        # Combining marks, enclosing keycaps, spacing vowel signs: part of the letter before.
        or unicodedata.category(after) in _MARKS
        or "\ufe00" <= after <= "\ufe0f"  # variation selectors (text/emoji style)
        or "\U0001f3fb" <= after <= "\U0001f3ff"  # skin-tone modifiers
    )
