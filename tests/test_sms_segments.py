"""SMS encodings, segment counts and splitting long texts into ordered messages."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nlp.sms_segments import (
    DEFAULT_MAX_SEGMENTS,
    SmsEncoding,
    encoded_length,
    encoding_of,
    segment_count,
    split_for_sms,
)

GSM = SmsEncoding.GSM7
UCS2 = SmsEncoding.UCS2
FAMILY = "👨\u200d👩\u200d👧"  # three emoji joined by zero-width joiners: 8 UTF-16 units
MARKER = re.compile(r"^\((\d+)/(\d+)\) ")


def unmarked(parts: list[str]) -> list[str]:
    """The parts without their (i/n) markers, checking the markers count 1..n."""
    bodies = []
    for index, part in enumerate(parts, start=1):
        match = MARKER.match(part)
        assert match is not None, part
        assert (int(match[1]), int(match[2])) == (index, len(parts))
        bodies.append(part[match.end() :])
    return bodies


def without_whitespace(text: str) -> str:
    return "".join(text.split())


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Your complaint TS0001 was received.", GSM),
        ("Price: 5€ {a} [b] ~c| ^d \\e", GSM),  # extension table
        ("Ñoño à Ø Δ ¿¡ §", GSM),  # accented letters of the basic table
        ("你好", UCS2),
        ("Ticket 260001234: 已受理", UCS2),
        ("Thanks 🙂", UCS2),
        ("back`tick", UCS2),  # not in GSM 03.38
        ("", GSM),
    ],
)
def test_encoding(text: str, encoding: SmsEncoding) -> None:
    assert encoding_of(text) is encoding


@pytest.mark.parametrize(
    ("text", "length", "segments"),
    [
        ("", 0, 1),
        ("a" * 160, 160, 1),
        ("a" * 161, 161, 2),
        ("a" * 306, 306, 2),
        ("a" * 307, 307, 3),
        ("{" * 80, 160, 1),  # extension characters are two septets
        ("{" * 81, 162, 2),
        ("中" * 70, 70, 1),
        ("中" * 71, 71, 2),
        ("中" * 134, 134, 2),
        ("中" * 135, 135, 3),
        ("Hi 你好", 5, 1),  # one Chinese character makes it all UCS-2
        ("a" * 100 + "中", 101, 2),  # 101 units fit GSM-7, not UCS-2
        ("😀" * 35, 70, 1),  # outside the BMP: two units each
        ("😀" * 36, 72, 2),
        ("😀" * 133, 266, 5),  # under 4 * 67 units, yet 33 pairs per segment
        # A pair never straddles two segments: the first ends one unit short.
        ("中" * 66 + "😀" + "中" * 66, 134, 3),
        ("a" * 152 + "{" + "a" * 152, 306, 3),
    ],
)
def test_length_and_segments(text: str, length: int, segments: int) -> None:
    assert encoded_length(text) == length
    assert segment_count(text) == segments


@pytest.mark.parametrize(
    "text",
    [
        "Your complaint was received.",
        "您的投诉已受理，受理编号：260001234。",
        "中" * 268,  # exactly four concatenated UCS-2 segments
        "a" * 612,  # exactly four concatenated GSM-7 segments
        "😀" * 132,  # 33 per segment: a pair cannot fill a segment's odd 67th unit
    ],
)
def test_text_that_fits_is_one_message_unchanged(text: str) -> None:
    assert split_for_sms(text) == [text]


@pytest.mark.parametrize(
    ("text", "max_segments"),
    [
        ("中" * 269, 4),  # one unit over four segments
        ("a" * 613, 4),
        ("中" * 71, 1),
        ("a" * 161, 1),
    ],
)
def test_one_unit_over_the_boundary_splits_in_two(text: str, max_segments: int) -> None:
    parts = split_for_sms(text, max_segments)
    assert len(parts) == 2
    assert "".join(unmarked(parts)) == text
    assert all(segment_count(part) <= max_segments for part in parts)


SENTENCES_ZH = "".join(
    f"第{i}件事：小区东门的路灯坏了很久，晚上很不安全，请尽快维修。" for i in range(40)
)
SENTENCES_EN = " ".join(
    f"Item {i}: the street light at the east gate has been broken for weeks." for i in range(30)
)
CLAUSES_ZH = "，".join(f"第{i}段说明情况" for i in range(120)) + "。"
NO_PUNCTUATION_ZH = "我家楼下的餐馆每天晚上油烟很大" * 60
WORDS_EN = " ".join(["complaint"] * 300)
LETTERS_EN = "x" * 2000
EMOJI = "😀🙂" * 400
FAMILIES = FAMILY * 120
MIXED = ("Ticket 260001234 已受理。We will reply within 10 working days. 谢谢！") * 15


@pytest.mark.parametrize(
    "text",
    [
        SENTENCES_ZH,
        SENTENCES_EN,
        CLAUSES_ZH,
        NO_PUNCTUATION_ZH,
        WORDS_EN,
        LETTERS_EN,
        EMOJI,
        FAMILIES,
        MIXED,
    ],
)
@pytest.mark.parametrize("max_segments", [1, 2, DEFAULT_MAX_SEGMENTS, 10])
def test_long_text_splits_into_numbered_parts_that_fit_and_keep_everything(
    text: str, max_segments: int
) -> None:
    parts = split_for_sms(text, max_segments)

    assert len(parts) >= 2
    assert all(segment_count(part) <= max_segments for part in parts)
    bodies = unmarked(parts)
    assert all(body and body == body.strip() for body in bodies)
    # Only whitespace at the cuts is dropped; nothing is lost, added or reordered.
    assert without_whitespace("".join(bodies)) == without_whitespace(text)


@pytest.mark.parametrize(
    ("text", "ending"),
    [(SENTENCES_ZH, "。"), (SENTENCES_EN, "."), (CLAUSES_ZH, "，")],
)
def test_parts_end_at_the_best_boundary_available(text: str, ending: str) -> None:
    parts = split_for_sms(text)

    assert len(parts) >= 2
    assert all(part.endswith(ending) for part in parts[:-1]), parts


def test_parts_fill_their_segments() -> None:
    # Greedy packing: a part stops only where the next sentence would not fit.
    parts = split_for_sms(SENTENCES_ZH)
    sentence = len("第10件事：小区东门的路灯坏了很久，晚上很不安全，请尽快维修。")
    assert all(encoded_length(part) > 268 - sentence - 1 for part in parts[:-1])


def test_words_are_not_broken_when_there_are_spaces() -> None:
    parts = split_for_sms(WORDS_EN, 1)
    assert all(set(body.split()) == {"complaint"} for body in unmarked(parts))


def test_a_run_without_boundaries_is_cut_hard_at_the_limit() -> None:
    parts = split_for_sms(NO_PUNCTUATION_ZH, 1)
    # "(13/14) " leaves 62 of 70 units; the budget assumes a two-digit marker.
    assert [len(body) for body in unmarked(parts)[:-1]] == [62] * (len(parts) - 1)


def test_emoji_are_never_cut_in_half() -> None:
    parts = split_for_sms(EMOJI, 1)
    bodies = unmarked(parts)
    # Each part is valid UTF-16 on its own, and the emoji alternate without a gap.
    for body in bodies:
        body.encode("utf-16-le")
    assert "".join(bodies) == EMOJI


def test_joined_emoji_stay_whole() -> None:
    bodies = unmarked(split_for_sms(FAMILIES, 1))
    assert all(body.replace(FAMILY, "") == "" for body in bodies), bodies


def test_markers_widen_past_nine_parts() -> None:
    parts = split_for_sms("中" * 1000, 1)
    assert len(parts) >= 10
    assert parts[0].startswith("(1/")
    assert parts[-1].startswith(f"({len(parts)}/{len(parts)}) ")
    assert all(segment_count(part) == 1 for part in parts)


@pytest.mark.parametrize("max_segments", [0, 11, -1])
def test_max_segments_is_bounded(max_segments: int) -> None:
    with pytest.raises(ValueError, match="max_segments"):
        split_for_sms("hello", max_segments)


ALPHABET = st.sampled_from([*"ab 。，.,!\n中文{€", "😀", "\u200d", "\u0301", " "])


@given(text=st.text(ALPHABET, max_size=1200), max_segments=st.integers(1, 10))
def test_any_text_splits_into_parts_that_fit(text: str, max_segments: int) -> None:
    parts = split_for_sms(text, max_segments)

    assert parts
    assert all(segment_count(part) <= max_segments for part in parts)
    bodies = parts if len(parts) == 1 else unmarked(parts)
    assert without_whitespace("".join(bodies)) == without_whitespace(text)
