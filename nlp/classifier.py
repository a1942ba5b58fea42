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
