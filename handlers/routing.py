"""Routing: text -> category -> lead department (+ co-departments), table-driven.

Conduct complaints (作风效能) go to the supervision office, and the department
they accuse is recognised from its names and aliases and recorded; the accused
department is never the one that receives the ticket. Urgent danger words
shorten the deadline. Below the configured confidence the ticket waits in
triage with the top suggestions.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.desk_config import DeskConfig
from nlp.classifier import CategoryScore
from nlp.keywords import CategoryKeywords, KeywordClassifier, find_terms

CONDUCT_CATEGORY = "作风效能"


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where a complaint goes and why."""

    category: str | None
    confidence: float
    evidence: tuple[str, ...]
    department: str | None  # department code; None means triage
    co_departments: tuple[str, ...]
    urgent: bool
    accused_departments: tuple[str, ...]
    suggestions: tuple[CategoryScore, ...]

    @property
    def needs_triage(self) -> bool:
        """True when a person has to choose the department."""
        return self.department is None


class Router:
    """Routes normalised complaint text using the desk config."""

    def __init__(self, config: DeskConfig) -> None:
        self._config = config
        self._classifier = KeywordClassifier(
            [
                CategoryKeywords(c.code, c.keywords, tuple(c.negative_keywords))
                for c in config.categories
            ]
        )
        # Longest names first, so 综合执法局 wins over 执法局.
        names: list[tuple[str, str]] = []
        for department in config.departments:
            for name in {department.name, department.short_name, *department.aliases}:
                names.append((name, department.code))
        self._department_names = sorted(names, key=lambda item: -len(item[0]))

    def route(self, text: str) -> RouteDecision:
        """Decide category, department and urgency for one complaint."""
        urgent = bool(find_terms(text, self._config.urgent.keywords))
        conduct_words = find_terms(text, self._config.conduct.keywords)
        ranked = tuple(self._classifier.classify(text)[:3])
        if conduct_words:
            return self._conduct(text, tuple(conduct_words), urgent, ranked)
        if not ranked or ranked[0].confidence < self._config.desk.triage_confidence:
            best = ranked[0] if ranked else None
            return RouteDecision(
                category=best.category if best else None,
                confidence=best.confidence if best else 0.0,
                evidence=best.evidence if best else (),
                department=None,
                co_departments=(),
                urgent=urgent,
                accused_departments=(),
                suggestions=ranked,
            )
        best = ranked[0]
        category = self._config.category_by_code[best.category]
        return RouteDecision(
            category=best.category,
            confidence=best.confidence,
            evidence=best.evidence,
            department=category.department,
            co_departments=tuple(category.co_departments),
            urgent=urgent,
            accused_departments=(),
            suggestions=ranked,
        )

    def accused_departments(self, text: str) -> tuple[str, ...]:
        """Every department the text names, in order of first mention.

        Longest names claim their characters first, so 综合执法局 is one
        mention of 城管 and not also one of a department called 执法局.
        """
        taken = [False] * len(text)
        found: dict[str, int] = {}
        for name, code in self._department_names:
            start = text.find(name)
            while start != -1:
                end = start + len(name)
                if not any(taken[start:end]):
                    taken[start:end] = [True] * len(name)
                    found[code] = min(found.get(code, start), start)
                start = text.find(name, end)
        return tuple(sorted(found, key=found.__getitem__))

    def _conduct(
        self,
        text: str,
        words: tuple[str, ...],
        urgent: bool,
        ranked: tuple[CategoryScore, ...],
    ) -> RouteDecision:
        supervision = self._config.desk.supervision_department
        accused = self.accused_departments(text)
        return RouteDecision(
            category=CONDUCT_CATEGORY,
            confidence=1.0,
            evidence=words,
            # A complaint about the supervision office itself waits for the
            # centre's administrators instead of going to the accused.
            department=None if supervision in accused else supervision,
            co_departments=(),
            urgent=urgent,
            accused_departments=accused,
            suggestions=ranked,
        )
