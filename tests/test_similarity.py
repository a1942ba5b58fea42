"""Similarity of complaint texts: duplicates score high, other complaints low."""

from __future__ import annotations

import pytest

from nlp.similarity import DUPLICATE_THRESHOLD, best_match, bigrams, similarity

BASE = (
    "我住在岳麓区望月湖小区3栋,楼下的烧烤店每天晚上油烟很大,噪音一直到凌晨两点,"
    "严重影响休息。多次打电话给城管都没有人来处理,请尽快解决。"
)

# Rewrites of BASE that a desk should recognise as the same complaint.
DUPLICATES = {
    "one word changed": BASE.replace("凌晨两点", "凌晨三点"),
    "two edits": BASE.replace("凌晨两点", "凌晨三点").replace("尽快解决", "尽快处理"),
    "punctuation and a typo": BASE.replace(",", " ").replace("烧烤店", "烧烤摊"),
    "full-width punctuation": BASE.replace(",", "，").replace("3", "３"),
    "traditional characters": (
        "我住在岳麓區望月湖小區3棟,樓下的燒烤店每天晚上油煙很大,噪音一直到凌晨兩點,"
        "嚴重影響休息。多次打電話給城管都沒有人來處理,請儘快解決。"
    ),
    "sentences reordered": (
        "多次打电话给城管都没有人来处理,请尽快解决。楼下的烧烤店每天晚上油烟很大,"
        "噪音一直到凌晨两点,严重影响休息。我住在岳麓区望月湖小区3栋。"
    ),
    "a sentence added": BASE + "这已经是我第三次投诉了,如果还不处理我就向上级反映。",
    "a sentence dropped": BASE.replace("多次打电话给城管都没有人来处理,", ""),
}

# Other complaints: same kind (noise, fumes) elsewhere, or another matter.
OTHERS = {
    "same kind, another estate": (
        "我家在雨花区东塘小区,小区门口的大排档每天晚上噪音很大,油烟也很严重,"
        "影响居民休息,希望有关部门处理。"
    ),
    "same kind, a bar": (
        "天心区坡子街的酒吧每晚音乐声很大,一直到凌晨,严重影响附近居民休息,请城管处理。"
    ),
    "same estate, another matter": (
        "岳麓区望月湖小区3栋的电梯坏了一个星期,物业一直不修,老人上下楼很不方便。"
    ),
    "another matter": (
        "开福区四方坪镇黄花村的自来水停了三天,没有任何通知,老人孩子没水喝,请供水公司尽快恢复。"
    ),
    "a short one": "噪音扰民",
}


def test_identical_texts_score_one() -> None:
    assert similarity(BASE, BASE) == 1.0


@pytest.mark.parametrize("name", DUPLICATES)
def test_duplicates_reach_the_threshold(name: str) -> None:
    assert similarity(BASE, DUPLICATES[name]) >= DUPLICATE_THRESHOLD


@pytest.mark.parametrize("name", OTHERS)
def test_other_complaints_stay_below_it(name: str) -> None:
    assert similarity(BASE, OTHERS[name]) < DUPLICATE_THRESHOLD


@pytest.mark.parametrize(
    ("first", "second", "low", "high"),
    [
        (BASE, DUPLICATES["traditional characters"], 1.0, 1.0),
        (BASE, DUPLICATES["full-width punctuation"], 1.0, 1.0),
        (BASE, DUPLICATES["one word changed"], 0.95, 1.0),
        (BASE, DUPLICATES["sentences reordered"], 0.9, 1.0),
        (BASE, OTHERS["same kind, another estate"], 0.1, 0.4),
        (BASE, OTHERS["another matter"], 0.0, 0.1),
        ("小区门口占道经营", "小区门口有人占道经营", 0.7, 0.9),
        ("小区门口占道经营", "小区门口垃圾成堆", 0.3, 0.5),
    ],
)
def test_scores_fall_in_sensible_bands(first: str, second: str, low: float, high: float) -> None:
    assert low <= similarity(first, second) <= high


@pytest.mark.parametrize(
    ("first", "second"),
    [(BASE, OTHERS["a short one"]), (BASE, DUPLICATES["a sentence added"]), ("甲", "甲乙")],
)
def test_similarity_is_symmetric(first: str, second: str) -> None:
    assert similarity(first, second) == similarity(second, first)


@pytest.mark.parametrize(
    ("first", "second", "score"),
    [
        ("", "", 0.0),
        ("!!!", "???", 0.0),  # nothing to compare is no duplicate
        ("", BASE, 0.0),
        ("好", "好", 1.0),
        ("好", "不好", 0.0),
    ],
)
def test_edge_cases(first: str, second: str, score: float) -> None:
    assert similarity(first, second) == score


def test_bigrams_ignore_punctuation_and_spaces() -> None:
    assert bigrams("噪音, 扰民!") == {"噪音", "音扰", "扰民"}


def test_best_match_picks_the_duplicate() -> None:
    candidates = [(key, text) for key, text in enumerate(OTHERS.values())]
    candidates.insert(2, (99, BASE))
    found = best_match(DUPLICATES["sentences reordered"], candidates)
    assert found is not None
    assert found[0] == 99
    assert found[1] == pytest.approx(similarity(BASE, DUPLICATES["sentences reordered"]))


def test_best_match_prefers_the_closest_and_the_earlier_on_ties() -> None:
    candidates = [
        ("edited", DUPLICATES["two edits"]),
        ("same", BASE),
        ("same again", BASE),
    ]
    assert best_match(BASE, candidates) == ("same", 1.0)


@pytest.mark.parametrize(
    ("threshold", "expected"), [(0.2, "a"), (DUPLICATE_THRESHOLD, None), (1.0, None)]
)
def test_best_match_respects_the_threshold(threshold: float, expected: str | None) -> None:
    candidates = [("a", OTHERS["same kind, another estate"]), ("b", OTHERS["another matter"])]
    found = best_match(BASE, candidates, threshold)
    assert (found[0] if found else None) == expected


def test_best_match_without_candidates_or_text() -> None:
    assert best_match(BASE, []) is None
    assert best_match("!!!", [("a", "!!!")]) is None


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5])
def test_best_match_refuses_a_threshold_outside_0_1(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        best_match(BASE, [("a", BASE)], threshold)
