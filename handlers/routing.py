"""Routing: text -> category -> lead department (+ co-departments), table-driven.

Conduct complaints (作风效能) go to the supervision office, and the department
they accuse is recognised from its names and aliases and recorded; the accused
department is never the one that receives the ticket. Urgent danger words
shorten the deadline. Below the configured confidence the ticket waits in
triage with the top suggestions.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.desk_config import CategoryConfig, DeskConfig
from nlp.classifier import CategoryScore, Classifier, FallbackClassifier
from nlp.conduct import ConductDetector, ConductFinding
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
    """Routes normalised complaint text using the desk config and a classifier."""

    def __init__(self, config: DeskConfig, classifier: Classifier | None = None) -> None:
        self._config = config
        self.classifier: Classifier = classifier or keyword_classifier(config)
        names: dict[str, str] = {}
        for department in config.departments:
            for name in (department.name, department.short_name, *department.aliases):
                names[name] = department.code
        self._conduct = ConductDetector(
            config.conduct.keywords,
            names,
            config.conduct.officials,
            config.conduct.private_parties,
        )
        self._districts = sorted(
            ((name, d) for d in config.districts for name in (d.name, *d.aliases)),
            key=lambda item: -len(item[0]),
        )

    def route(self, text: str, chosen: str | None = None) -> RouteDecision:
        """Decide category, department and urgency for one complaint.

        ``chosen``: a category the sender picked (an Open311 service code).
        It replaces the classifier, not the conduct check: a complaint about
        a department's conduct still never goes to that department.
        """
        urgent = bool(find_terms(text, self._config.urgent.keywords))
        picked = self._config.category_by_code.get(chosen) if chosen is not None else None
        ranked = () if picked is not None else tuple(self.classifier.classify(text)[:3])
        finding = self._conduct.detect(text)
        if finding is not None:
            return self._conduct_decision(finding, urgent, ranked)
        if picked is not None:
            return RouteDecision(
                category=picked.code,
                confidence=1.0,
                evidence=("service_code",),
                department=self._district_department(text, picked) or picked.department,
                co_departments=tuple(picked.co_departments),
                urgent=urgent,
                accused_departments=(),
                suggestions=(),
            )
        best = ranked[0] if ranked else None
        if best is None or best.confidence < self._config.desk.triage_confidence:
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
        category = self._config.category_by_code[best.category]
        return RouteDecision(
            category=best.category,
            confidence=best.confidence,
            evidence=best.evidence,
            department=self._district_department(text, category) or category.department,
            co_departments=tuple(category.co_departments),
            urgent=urgent,
            accused_departments=(),
            suggestions=ranked,
        )

    def accused_departments(self, text: str) -> tuple[str, ...]:
        """The departments a conduct complaint accuses (empty when it is not one)."""
        finding = self._conduct.detect(text)
        return finding.accused if finding else ()

    def _district_department(self, text: str, category: CategoryConfig) -> str | None:
        """A district's own office for exactly this category, if the text names the district.

        Only the exact category: a second-level category has a department of
        its own (城管执法 is not 住建's), so its parent's district route does not apply.
        """
        for name, district in self._districts:
            if name in text:
                return district.routes.get(category.code)
        return None

    def _conduct_decision(
        self, finding: ConductFinding, urgent: bool, ranked: tuple[CategoryScore, ...]
    ) -> RouteDecision:
        supervision = self._config.desk.supervision_department
        return RouteDecision(
            category=CONDUCT_CATEGORY,
            confidence=1.0,
            evidence=finding.words,
            # A complaint about the supervision office itself waits for the
            # centre's administrators instead of going to the accused.
            department=None if supervision in finding.accused else supervision,
            co_departments=(),
            urgent=urgent,
            accused_departments=finding.accused,
            suggestions=ranked,
        )


def trained_with_fallback(config: DeskConfig, trained: Classifier) -> FallbackClassifier:
    """The trained engine, with the keyword engine deciding where it is unsure."""
    return FallbackClassifier(
        trained,
        keyword_classifier(config),
        known=frozenset(config.category_by_code),
        min_confidence=config.desk.triage_confidence,
    )


def keyword_classifier(config: DeskConfig) -> KeywordClassifier:
    """The keyword engine over the config's categories."""
    return KeywordClassifier(
        [
            CategoryKeywords(c.code, c.keywords, tuple(c.negative_keywords))
            for c in config.categories
        ]
    )
