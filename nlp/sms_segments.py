"""SMS segment arithmetic and splitting of long texts into ordered messages.

An SMS travels in segments. A text made only of GSM 03.38 characters is sent
as GSM-7: 160 septets in a single segment, 153 per segment once concatenated
(the concatenation header takes the rest); characters of the extension table
(``{ } [ ] ~ | ^ € \\`` and form feed) take two septets. Any other character,
and so any Chinese text, makes the whole message UCS-2: 70 UTF-16 code units in
one segment, 67 per segment when concatenated. A character outside the Basic
Multilingual Plane (most emoji) is two code units, and neither it nor a GSM-7
escape pair is ever split across two segments: a segment ends early instead.
Providers count throughput and price in segments, hence ``segment_count``.

``split_for_sms`` keeps a text that fits in ``max_segments`` as one
concatenated message, and otherwise cuts it into messages that each fit,
preferring sentence ends, then commas, then spaces, and only then a hard cut,
and numbers them ``(1/3) ``, ``(2/3) ``... because carriers do not promise to
deliver separate messages in the order they were sent.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from enum import StrEnum
from typing import Final

# Four segments: 268 Chinese characters or 612 GSM-7 ones in one concatenated
# message. Every notice the desk writes (acknowledgement, status update, reply
# from a department) fits, so nearly nothing is ever split, while a runaway
# body is still cut into separately numbered messages: the more segments one
# message has, the more often a handset fails to reassemble it, and each one is
# paid for and paced (a long code sends one segment per second).
DEFAULT_MAX_SEGMENTS: Final = 4
# Twilio refuses bodies over 1600 characters (error 21617); ten GSM-7 segments
# are 1530, eleven would be 1683.
MAX_SEGMENTS_PER_MESSAGE: Final = 10


class SmsEncoding(StrEnum):
    """How a text is encoded on the air."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


# GSM 03.38 default alphabet, in table order (0x1B, the escape, is not a character).
_GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Reached through the escape, so each costs two septets.
_GSM7_EXTENSION: Final = frozenset("\f^{}\\[~]|€")

# (single-segment capacity, per-segment capacity when concatenated), in units:
# septets for GSM-7, UTF-16 code units for UCS-2.
_CAPACITY: Final = {SmsEncoding.GSM7: (160, 153), SmsEncoding.UCS2: (70, 67)}

_CLOSERS = "”’」』）)】》\"'\\]"
# Where a piece may end, from the best cut to the worst. A cut is made after
# the match, so closing quotes and the following whitespace stay with the
# sentence they end. ASCII marks only count when followed by whitespace, so
# "3.5" or "www.gov.cn" is never cut.
_CUT_LEVELS: Final = (
    re.compile(rf"[。！？；…\n]+[{_CLOSERS}]*\s*|[.!?;]+[{_CLOSERS}]*\s+"),
    re.compile(r"[，、,]+\s*"),
    re.compile(r"\s+"),
)

_ZERO_WIDTH_JOINER: Final = "\u200d"


def encoding_of(text: str) -> SmsEncoding:
    """GSM-7 when every character is in the GSM 03.38 tables, else UCS-2."""
    for char in text:
        if char not in _GSM7_BASIC and char not in _GSM7_EXTENSION:
            return SmsEncoding.UCS2
    return SmsEncoding.GSM7


def _unit_widths(text: str) -> list[int]:
    """Each character's size in its encoding's units (1 or 2)."""
    if encoding_of(text) is SmsEncoding.GSM7:
        return [2 if char in _GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def encoded_length(text: str) -> int:
    """The text's length in septets (GSM-7) or UTF-16 code units (UCS-2)."""
    return sum(_unit_widths(text))


def segment_count(text: str) -> int:
    """How many segments the text takes as one message (an empty text still takes one)."""
    widths = _unit_widths(text)
    single, per_segment = _CAPACITY[encoding_of(text)]
    if sum(widths) <= single:
        return 1
    segments, used = 1, 0
    for width in widths:
        # A two-unit character never straddles segments: the segment ends short.
        if used + width > per_segment:
            segments += 1
            used = 0
        used += width
    return segments


def split_for_sms(text: str, max_segments: int = DEFAULT_MAX_SEGMENTS) -> list[str]:
    """The messages to send, in reading order, each at most ``max_segments`` segments.

    A text that fits is returned unchanged as the only element. Otherwise the
    parts carry a ``(i/n) `` marker and lose the whitespace at their edges;
    nothing else is added, dropped or reordered.
    """
    if not 1 <= max_segments <= MAX_SEGMENTS_PER_MESSAGE:
        raise ValueError(
            f"max_segments must be between 1 and {MAX_SEGMENTS_PER_MESSAGE}, got {max_segments}"
        )
    if segment_count(text) <= max_segments:
        return [text]
    digits = 1
    while True:
        # Budget every part for the widest marker, e.g. "(12/12) " when there
        # are ten or more parts; if the split needs more digits, redo it.
        widest_marker = _marker(10**digits - 1, 10**digits - 1)
        parts = [
            part.strip()
            for part in _pack(text, _fits_after(widest_marker, max_segments), level=0)
            if part.strip()
        ]
        if len(str(len(parts))) <= digits:
            break
        digits += 1
    if len(parts) <= 1:
        return parts or [text.strip()]
    return [_marker(index, len(parts)) + part for index, part in enumerate(parts, start=1)]


def _marker(index: int, total: int) -> str:
    return f"({index}/{total}) "


def _fits_after(marker: str, max_segments: int) -> Callable[[str], bool]:
    """Whether a candidate part, marked and stripped, fits in ``max_segments``."""

    def fits(candidate: str) -> bool:
        return segment_count(marker + candidate.strip()) <= max_segments

    return fits


def _pieces(text: str, cuts: re.Pattern[str]) -> list[str]:
    """The text cut after every match of ``cuts``; the pieces join back to the text."""
    pieces: list[str] = []
    start = 0
    for match in cuts.finditer(text):
        if match.end() > start:
            pieces.append(text[start : match.end()])
            start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def _pack(text: str, fits: Callable[[str], bool], level: int) -> list[str]:
    """Greedily fill parts with the pieces of one cut level, descending into oversized ones."""
    if fits(text):
        return [text]
    if level == len(_CUT_LEVELS):
        return _hard_cut(text, fits)
    parts: list[str] = []
    current = ""
    for piece in _pieces(text, _CUT_LEVELS[level]):
        if fits(current + piece):
            current += piece
            continue
        if current:
            parts.append(current)
        if fits(piece):
            current = piece
        else:
            *complete, current = _pack(piece, fits, level + 1)
            parts.extend(complete)
    if current:
        parts.append(current)
    return parts


def _hard_cut(text: str, fits: Callable[[str], bool]) -> list[str]:
    """Cut a run with no usable boundary into the longest prefixes that fit.

    Python strings index code points, so a cut can never fall inside a
    surrogate pair; the cut is also moved back out of an emoji sequence or off
    a combining mark, so a family emoji or an accented letter stays whole.
    """
    parts: list[str] = []
    rest = text
    while rest:
        # fits() only gets worse as a prefix grows, so binary search the longest.
        low, high = 1, len(rest)
        while low < high:
            middle = (low + high + 1) // 2
            if fits(rest[:middle]):
                low = middle
            else:
                high = middle - 1
        cut = low
        while cut > 1 and cut < len(rest) and _joins(rest[cut - 1], rest[cut]):
            cut -= 1
        if cut == 1 and len(rest) > 1 and _joins(rest[0], rest[1]):
            # One cluster longer than a whole part: cutting it is the only way.
            cut = low
        parts.append(rest[:cut])
        rest = rest[cut:]
    return parts


def _joins(before: str, after: str) -> bool:
    """Whether a cut between these two characters would break a visible character."""
    return (
        before == _ZERO_WIDTH_JOINER
        or after == _ZERO_WIDTH_JOINER
        or unicodedata.combining(after) != 0
        or "\ufe00" <= after <= "\ufe0f"  # variation selectors (text/emoji style)
        or "\U0001f3fb" <= after <= "\U0001f3ff"  # skin-tone modifiers
    )
