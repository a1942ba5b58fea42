"""Splitting long texts into Telegram messages: limits, preferred cuts, nothing lost."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from telegram.constants import MessageLimit

from nlp.telegram_text import MAX_MESSAGE_LENGTH, split_message, utf16_length

FAMILY = "👨\u200d👩\u200d👧"  # three emoji joined by zero-width joiners: 8 UTF-16 units
SENTENCE = "小区东门路灯已坏了三个星期，晚上出行很不安全。"  # 23 characters


def assert_rebuilds(text: str, parts: list[str]) -> None:
    """The parts are the text in order; only whitespace between them is gone."""
    position = 0
    for part in parts:
        assert part, parts
        assert part == part.strip(), part
        found = text.find(part, position)
        assert found >= 0, (part, position)
        assert text[position:found].strip() == "", text[position:found]
        position = found + len(part)
    assert text[position:].strip() == ""


def test_the_limit_is_the_bot_apis() -> None:
    assert int(MessageLimit.MAX_TEXT_LENGTH) == MAX_MESSAGE_LENGTH


@pytest.mark.parametrize(
    ("text", "length"),
    [("", 0), ("abc", 3), ("投诉", 2), ("🙂", 2), (FAMILY, 8), ("e\u0301", 2)],
)
def test_utf16_length(text: str, length: int) -> None:
    assert utf16_length(text) == length
    assert utf16_length(text) == len(text.encode("utf-16-le")) // 2


@pytest.mark.parametrize("text", ["短消息", " leading and trailing \n", "x" * 4096, "🙂" * 2048])
def test_a_text_that_fits_is_unchanged(text: str) -> None:
    assert split_message(text) == [text]


@pytest.mark.parametrize("text", ["", "   ", "\n\t\n"])
def test_nothing_but_whitespace_gives_no_message(text: str) -> None:
    assert split_message(text) == []


def test_emoji_count_twice_against_the_limit() -> None:
    text = "🙂" * 2049  # 2049 characters, 4098 UTF-16 units

    parts = split_message(text)

    assert parts == ["🙂" * 2048, "🙂"]


def test_paragraphs_are_kept_whole_when_they_fit() -> None:
    first, second, third = "甲" * 3000, "乙" * 900, "丙" * 3000
    text = f"{first}\n\n{second}\n{third}"

    # The line break after the second paragraph is later, but the blank line
    # is the better boundary and lies past half the limit.
    assert split_message(text) == [first, f"{second}\n{third}"]


def test_a_line_break_beats_a_later_sentence_end() -> None:
    text = "甲" * 3000 + "\n" + SENTENCE * 60

    parts = split_message(text)

    assert parts[0] == "甲" * 3000
    assert_rebuilds(text, parts)


def test_long_chinese_prose_is_cut_at_sentence_ends() -> None:
    text = SENTENCE * 400  # 9,200 characters, no line breaks

    parts = split_message(text)

    assert len(parts) == 3
    assert all(part.endswith("。") for part in parts)
    assert all(utf16_length(part) <= 4096 for part in parts)
    assert "".join(parts) == text


def test_ascii_sentence_ends_need_whitespace_after_them() -> None:
    words = "Version 3.5 of https://www.gov.cn/x.y is ready. " * 100  # 4,900 characters

    parts = split_message(words, limit=200)

    assert all(part.endswith("ready.") for part in parts[:-1])
    assert_rebuilds(words, parts)


def test_an_early_boundary_gives_way_to_a_later_worse_one() -> None:
    # The only line break is at 10 of 100: a part of 10 would waste the
    # message, so the last space before the limit is used instead.
    text = "a" * 10 + "\n" + " ".join(["word"] * 40)

    parts = split_message(text, limit=100)

    assert len(parts[0]) > 50
    assert_rebuilds(text, parts)


def test_without_any_boundary_the_cut_is_hard() -> None:
    text = "x" * 250

    assert split_message(text, limit=100) == ["x" * 100, "x" * 100, "x" * 50]


def test_a_hard_cut_never_splits_an_emoji_sequence_or_a_combining_mark() -> None:
    text = "a" * 95 + FAMILY + "e\u0301" * 10

    parts = split_message(text, limit=100)

    assert parts[0] == "a" * 95
    assert parts[1].startswith(FAMILY)
    assert all(not part.startswith("\u0301") for part in parts)
    assert "".join(parts) == text


def test_a_cluster_longer_than_the_limit_is_cut_where_it_must() -> None:
    text = "e" + "\u0301" * 20

    parts = split_message(text, limit=8)

    assert "".join(parts) == text
    assert all(utf16_length(part) <= 8 for part in parts)


def test_a_surrogate_pair_held_as_two_code_points_stays_whole() -> None:
    # JSON encodes the two halves as "\ud83d\ude42", which Telegram reads as one emoji.
    lone_halves = "\ud83d\ude42"
    text = "a" * 9 + lone_halves + "b" * 5

    parts = split_message(text, limit=10)

    assert parts == ["a" * 9, lone_halves + "b" * 5]


def test_the_limit_must_hold_a_character() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        split_message("abc", limit=1)


ALPHABET = st.sampled_from(
    ["a", "b", " ", "\n", "。", "，", ".", ",", "中", "文", "🙂", "\u200d", "\u0301", "\ufe0f"]
)


@given(text=st.text(ALPHABET, max_size=600), limit=st.integers(2, 120))
def test_parts_fit_and_rebuild_the_text(text: str, limit: int) -> None:
    parts = split_message(text, limit)

    assert all(utf16_length(part) <= limit for part in parts)
    if utf16_length(text) <= limit and text.strip():
        assert parts == [text]
    else:
        assert_rebuilds(text, parts)


@given(text=st.text(max_size=300), limit=st.integers(2, 64))
def test_any_text_splits_into_parts_that_fit(text: str, limit: int) -> None:
    parts = split_message(text, limit)

    assert all(utf16_length(part) <= limit for part in parts)
    assert "".join("".join(parts).split()) == "".join(text.split())
