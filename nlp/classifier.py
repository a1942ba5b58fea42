"""The one interface every classification engine offers.

An engine takes normalised complaint text (title and body joined, when there
is a title) and returns ranked categories with a confidence in [0, 1] and the
evidence staff will see on the ticket card: matched keywords for the keyword
engine, the strongest features for a trained one. Engines are pure and
synchronous; callers run them off the event loop for long text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CategoryScore:
    """A ranked guess: the category, its confidence in [0, 1] and the words that support it."""

    category: str
    confidence: float
    evidence: tuple[str, ...]


class Classifier(Protocol):
    """A classification engine."""

    name: str

    def classify(self, text: str) -> list[CategoryScore]:
        """Categories best first (empty when the engine has nothing to say)."""
        ...


class FallbackClassifier:
    """A trained engine first, the keyword engine when it is unsure or out of its depth.

    The trained engine only knows the labels it was trained on; when its best
    guess is below ``min_confidence`` or not one of the desk's categories, the
    keyword dictionary (which administrators keep up to date) decides.
    """

    def __init__(
        self,
        primary: Classifier,
        fallback: Classifier,
        *,
        known: frozenset[str],
        min_confidence: float,
    ) -> None:
        self.name = f"{primary.name}+{fallback.name}"
        self._primary = primary
        self._fallback = fallback
        self._known = known
        self._min_confidence = min_confidence

    def classify(self, text: str) -> list[CategoryScore]:
        """The primary engine's ranking when it is sure of a known category, else the fallback's."""
        ranked = [s for s in self._primary.classify(text) if s.category in self._known]
        if ranked and ranked[0].confidence >= self._min_confidence:
            return ranked
        return self._fallback.classify(text) or ranked
