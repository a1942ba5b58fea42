"""The out-of-the-box classifier: weighted keywords per category, from the config.

Each category scores the sum of the weights of its keywords found in the text;
a negative keyword vetoes its category. Confidence is the top category's share
of all matched weight, damped when little evidence was found at all, so one
stray word does not route a ticket on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nlp.classifier import CategoryScore

# Below this much matched weight the evidence is too thin to be sure of anything.
_FULL_EVIDENCE_WEIGHT = 3.0


@dataclass(frozen=True, slots=True)
class CategoryKeywords:
    """One category's dictionary."""

    category: str
    keywords: Mapping[str, float]
    negative_keywords: Sequence[str] = ()


class KeywordClassifier:
    """Scores text against every category's keywords."""

    name = "keywords"

    def __init__(self, dictionaries: Sequence[CategoryKeywords]) -> None:
        self._dictionaries = tuple(dictionaries)

    def classify(self, text: str) -> list[CategoryScore]:
        """Categories with any evidence, best first (empty when nothing matched)."""
        scored: list[tuple[float, str, tuple[str, ...]]] = []
        for entry in self._dictionaries:
            if any(word in text for word in entry.negative_keywords):
                continue
            found = tuple(word for word in entry.keywords if word in text)
            if found:
                score = sum(entry.keywords[word] for word in found)
                evidence = tuple(sorted(found, key=lambda w: -entry.keywords[w]))
                scored.append((score, entry.category, evidence))
        if not scored:
            return []
        total = sum(score for score, _, _ in scored)
        damping = min(1.0, max(score for score, _, _ in scored) / _FULL_EVIDENCE_WEIGHT)
        scored.sort(key=lambda item: (-item[0], item[1]))
        return [
            CategoryScore(category, round(score / total * damping, 3), evidence)
            for score, category, evidence in scored
        ]


def find_terms(text: str, terms: Sequence[str]) -> list[str]:
    """The terms that occur in ``text``, in the order given."""
    return [term for term in terms if term and term in text]
