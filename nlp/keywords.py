"""The out-of-the-box classifier: weighted keywords per category, from the config.

One left-to-right pass over the text finds keyword occurrences, ignoring
letter case. Where several keywords start at the same character the longest
wins, so 公交车站 is one mention and not also one of 公交; a negative keyword
takes part too, so 宠物医院 hides the 医院 inside it.

A category scores, for each of its keywords found, the keyword's weight times
the square root of its number of occurrences (a long letter that keeps naming
its subject is about that subject, but not ten times more), and half as much
again when the keyword is in the first 40 characters, where the title or an
SMS's first sentence says what the complaint is about. A negative keyword rules
its category out.

Confidence is the mean of the category's share of all matched weight and, for
the leader, its margin over the runner-up, damped when little evidence was
found at all: one stray word does not route a ticket on its own, and a tie is
never sure. The evidence is the category's strongest keywords.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nlp.classifier import CategoryScore

# Below this much matched weight the evidence is too thin to be sure of anything.
_FULL_EVIDENCE_WEIGHT = 3.0
# Characters at the start of the text read as its title or summary.
_HEAD_CHARS = 40
# How much more a keyword in the head counts than one further down.
_HEAD_BOOST = 1.5
# Keywords shown to staff as the evidence of a category, strongest first.
_MAX_EVIDENCE = 6


@dataclass(frozen=True, slots=True)
class CategoryKeywords:
    """One category's dictionary."""

    category: str
    keywords: Mapping[str, float]
    negative_keywords: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class _Term:
    """What one matched string means: weights for some categories, vetoes for others."""

    word: str  # as configured, for the evidence
    weights: tuple[tuple[int, float], ...]  # (category index, weight)
    vetoes: tuple[int, ...]  # category indexes ruled out


def _repetition(count: int) -> float:
    """How much ``count`` occurrences of one keyword weigh, relative to one."""
    return math.sqrt(count)


class KeywordClassifier:
    """Scores text against every category's keywords."""

    name = "keywords"

    def __init__(self, dictionaries: Sequence[CategoryKeywords]) -> None:
        self._categories = tuple(entry.category for entry in dictionaries)
        # Matching ignores letter case (KTV, ktv); evidence shows the configured spelling.
        spelling: dict[str, str] = {}
        weights: dict[str, list[tuple[int, float]]] = {}
        vetoes: dict[str, list[int]] = {}
        for index, entry in enumerate(dictionaries):
            for word, weight in entry.keywords.items():
                if word:
                    spelling.setdefault(word.lower(), word)
                    weights.setdefault(word.lower(), []).append((index, float(weight)))
            for word in entry.negative_keywords:
                if word:
                    vetoes.setdefault(word.lower(), []).append(index)
        self._terms = {
            key: _Term(
                spelling.get(key, key), tuple(weights.get(key, ())), tuple(vetoes.get(key, ()))
            )
            for key in weights.keys() | vetoes.keys()
        }
        # First character -> the lengths of the terms starting with it, longest
        # first: the scan tries only those, and the first hit is the longest.
        lengths: dict[str, set[int]] = {}
        for key in self._terms:
            lengths.setdefault(key[0], set()).add(len(key))
        self._lengths = {char: tuple(sorted(ls, reverse=True)) for char, ls in lengths.items()}

    def classify(self, text: str) -> list[CategoryScore]:
        """Categories with any evidence, best first (empty when nothing matched)."""
        found = self._occurrences(text.lower())
        if not found:
            return []
        vetoed: set[int] = set()
        contributions: dict[int, list[tuple[float, int, str]]] = {}
        for key, (count, first) in found.items():
            term = self._terms[key]
            vetoed.update(term.vetoes)
            factor = _repetition(count) * (_HEAD_BOOST if first < _HEAD_CHARS else 1.0)
            for index, weight in term.weights:
                contributions.setdefault(index, []).append((weight * factor, first, term.word))
        scored = sorted(
            (
                (sum(c[0] for c in parts), self._categories[index], parts)
                for index, parts in contributions.items()
                if index not in vetoed
            ),
            key=lambda item: (-item[0], item[1]),
        )
        if not scored:
            return []
        total = sum(score for score, _, _ in scored)
        ranked = []
        for position, (score, category, parts) in enumerate(scored):
            # Only the leader has a margin; everyone else is behind someone.
            rival = scored[1][0] if len(scored) > 1 else 0.0
            margin = (score - rival) / score if position == 0 else 0.0
            damping = min(1.0, score / _FULL_EVIDENCE_WEIGHT)
            confidence = damping * (score / total + margin) / 2
            strongest = sorted(parts, key=lambda part: (-part[0], part[1]))[:_MAX_EVIDENCE]
            evidence = tuple(word for _, _, word in strongest)
            ranked.append(CategoryScore(category, round(confidence, 3), evidence))
        return ranked

    def _occurrences(self, text: str) -> dict[str, tuple[int, int]]:
        """Each term found (leftmost, longest, not overlapping): its count and first offset."""
        found: dict[str, tuple[int, int]] = {}
        lengths, terms = self._lengths, self._terms
        position, end = 0, len(text)
        while position < end:
            step = 1
            for length in lengths.get(text[position], ()):
                word = text[position : position + length]
                if word in terms:
                    count, first = found.get(word, (0, position))
                    found[word] = (count + 1, first)
                    step = length
                    break
            position += step
        return found


def find_terms(text: str, terms: Sequence[str]) -> list[str]:
    """The terms that occur in ``text``, in the order given."""
    return [term for term in terms if term and term in text]
