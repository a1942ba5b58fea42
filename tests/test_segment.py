"""Segmentation: the desk's own words stay whole, and jieba stays quiet."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nlp import segment
from nlp.segment import Segmenter

# 城管局 is in jieba's dictionary already (as an organisation, "nt").
DESK_WORDS = ("综合执法局", "占道经营", "油烟净化器", "城管局", "iPhone 12", "x")
TEXT = "我要投诉综合执法局，楼下饭店没装油烟净化器，还占道经营"


@pytest.fixture(scope="module")
def desk_segmenter() -> Segmenter:
    """A segmenter that knows the desk's words (built once: it takes a second)."""
    return Segmenter(DESK_WORDS, places=["望城区"])


@pytest.fixture(scope="module")
def plain_segmenter() -> Segmenter:
    """The shared segmenter without user words."""
    return segment.load()


@pytest.mark.parametrize(
    ("word", "split"),
    [
        ("综合执法局", ["综合", "执法局"]),
        ("占道经营", ["占", "道", "经营"]),
        ("油烟净化器", ["油烟", "净化器"]),
        ("望城区", ["望", "城区"]),
    ],
)
def test_user_words_stay_whole(
    desk_segmenter: Segmenter, plain_segmenter: Segmenter, word: str, split: list[str]
) -> None:
    assert word in desk_segmenter.words(TEXT + "，望城区")
    # Without the user word jieba cuts it up, which is why we add it.
    words = plain_segmenter.words(TEXT + "，望城区")
    assert word not in words
    start = words.index(split[0])
    assert words[start : start + len(split)] == split


def test_words_with_spaces_and_single_characters_are_skipped(desk_segmenter: Segmenter) -> None:
    assert desk_segmenter.user_words == ("综合执法局", "占道经营", "油烟净化器", "城管局", "望城区")


def test_segment_drops_whitespace_tokens(plain_segmenter: Segmenter) -> None:
    assert plain_segmenter.words("噪音 扰民  严重") == ["噪音", "扰民", "严重"]


def test_tags_mark_places_and_user_words(desk_segmenter: Segmenter) -> None:
    # New words are proper nouns ("nz"), places are places ("ns"), and a
    # word jieba knew keeps its tag.
    assert desk_segmenter.tagged("望城区综合执法局和城管局在长沙市") == [
        ("望城区", "ns"),
        ("综合执法局", "nz"),
        ("和", "c"),
        ("城管局", "nt"),
        ("在", "p"),
        ("长沙市", "ns"),
    ]


class FakeSegmenter:
    """Records what it was built with; building a real one takes a second."""

    def __init__(self, user_words: tuple[str, ...], places: tuple[str, ...]) -> None:
        self.built_with = (user_words, places)

    def words(self, text: str, *, hmm: bool = True) -> list[str]:
        return [text]


def test_load_is_idempotent_and_swaps_on_new_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segment, "Segmenter", FakeSegmenter)
    monkeypatch.setattr(segment, "_loaded", None)
    first = segment.load(["占道经营"])
    assert segment.load(iter(["占道经营"])) is first
    assert segment.current() is first
    other = segment.load(["占道经营"], places=["望城区"])
    assert other is not first
    assert segment.current() is other
    assert isinstance(other, FakeSegmenter)
    assert other.built_with == (("占道经营",), ("望城区",))


def test_segment_loads_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segment, "Segmenter", FakeSegmenter)
    monkeypatch.setattr(segment, "_loaded", None)
    assert segment.segment("占道经营") == ["占道经营"]
    loaded = segment.current()
    assert isinstance(loaded, FakeSegmenter)
    assert loaded.built_with == ((), ())


def test_jieba_logs_nothing_below_warning(plain_segmenter: Segmenter) -> None:
    assert logging.getLogger("jieba").getEffectiveLevel() >= logging.WARNING


def test_loading_prints_no_log_lines_or_warnings() -> None:
    # A fresh interpreter, where the import warnings and start-up log lines
    # would appear; -W error turns any warning into a failure.
    script = textwrap.dedent(
        """
        import logging
        logging.basicConfig(level=logging.DEBUG)
        from nlp import segment
        print(segment.load(["占道经营"]).words("占道经营"))
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "['占道经营']\n"
    assert result.stderr == ""


def test_without_hmm_unknown_words_come_out_as_characters(plain_segmenter: Segmenter) -> None:
    # A name jieba's dictionary lacks: the HMM guesses it as one word, the
    # dictionary alone gives its characters (the trained engine's cheaper mode).
    assert plain_segmenter.words("张伟强说明天来") == ["张伟强", "说", "明天", "来"]
    assert segment.segment("张伟强说明天来", hmm=False) == ["张", "伟", "强", "说", "明天", "来"]
