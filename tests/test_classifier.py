"""The trained engine hands over to the keyword engine where it is unsure."""

from __future__ import annotations

import pytest

from nlp.classifier import CategoryScore, FallbackClassifier


class Fixed:
    """An engine that always answers the same."""

    def __init__(self, name: str, *scores: CategoryScore) -> None:
        self.name = name
        self._scores = list(scores)

    def classify(self, text: str) -> list[CategoryScore]:
        return list(self._scores)


KEYWORDS = Fixed("keywords", CategoryScore("环境保护", 0.8, ("噪音",)))


@pytest.mark.parametrize(
    ("trained", "expected"),
    [
        # Sure of a known category: the trained answer stands.
        (Fixed("trained", CategoryScore("城乡建设", 0.9, ("物业",))), "城乡建设"),
        # Unsure: the keyword dictionary decides.
        (Fixed("trained", CategoryScore("城乡建设", 0.2, ("物业",))), "环境保护"),
        # A label the desk does not have: ignored, keywords decide.
        (Fixed("trained", CategoryScore("火星事务", 0.99, ("火星",))), "环境保护"),
        # Nothing at all from the trained engine.
        (Fixed("trained"), "环境保护"),
    ],
)
def test_fallback(trained: Fixed, expected: str) -> None:
    engine = FallbackClassifier(
        trained, KEYWORDS, known=frozenset({"城乡建设", "环境保护"}), min_confidence=0.5
    )
    assert engine.classify("任何文本")[0].category == expected
    assert engine.name == "trained+keywords"


def test_unsure_trained_answer_is_kept_when_keywords_find_nothing() -> None:
    unsure = Fixed("trained", CategoryScore("城乡建设", 0.2, ("物业",)))
    engine = FallbackClassifier(
        unsure, Fixed("keywords"), known=frozenset({"城乡建设"}), min_confidence=0.5
    )
    assert engine.classify("任何文本") == [CategoryScore("城乡建设", 0.2, ("物业",))]
