"""Conduct complaints (作风效能): misconduct words aimed at a government actor.

A word such as 推诿 or 不作为 makes a conduct complaint only when the one it is
aimed at is a government body or official: "城管局的人态度恶劣" is one,
"物业推诿不管，希望住建局处理" is not (the 物业 is a company, and 住建局 is
where the resident wants it to go). For every misconduct word the nearest
subject written before it decides: a department name, a generic official (工作
人员, 窗口, 科长 ...) or a private party (物业, 开发商, 商家 ...). The accused
departments are the ones named close to the words, or else the nearest one
named earlier in the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# How far before a misconduct word its subject may stand (characters).
SUBJECT_WINDOW = 24
# A subject may also follow closely: "推诿扯皮的城管局".
TRAILING_WINDOW = 8

_DEPARTMENT = "department"
_OFFICIAL = "official"
_PRIVATE = "private"


@dataclass(frozen=True, slots=True)
class ConductFinding:
    """Why a complaint is a conduct complaint and whom it accuses (department codes)."""

    words: tuple[str, ...]
    accused: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Mention:
    start: int
    end: int
    kind: str
    code: str | None


class ConductDetector:
    """Finds conduct complaints and the departments they accuse."""

    def __init__(
        self,
        words: Sequence[str],
        department_names: Mapping[str, str],
        officials: Sequence[str],
        private_parties: Sequence[str],
    ) -> None:
        self._words = _alternation(words)
        subjects: dict[str, tuple[str, str | None]] = {}
        for name in private_parties:
            subjects[name] = (_PRIVATE, None)
        for name in officials:
            # 城管队员 is an official of 城管: keep the department it names.
            inside = [d for d in department_names if d in name]
            code = department_names[max(inside, key=len)] if inside else None
            subjects[name] = (_OFFICIAL, code)
        for name, code in department_names.items():
            subjects[name] = (_DEPARTMENT, code)
        self._subjects = subjects
        self._subject_re = _alternation(list(subjects))

    def detect(self, text: str) -> ConductFinding | None:
        """The finding, or None when no misconduct word is aimed at a government actor."""
        if self._words is None or self._subject_re is None:
            return None
        mentions = [
            _Mention(m.start(), m.end(), *self._subjects[m.group()])
            for m in self._subject_re.finditer(text)
        ]
        words: list[str] = []
        accused: list[str] = []
        for hit in self._words.finditer(text):
            subject = _subject_of(mentions, hit.start(), hit.end())
            if subject is None or subject.kind == _PRIVATE:
                continue
            if hit.group() not in words:
                words.append(hit.group())
            for code in _accused_near(mentions, hit.start(), hit.end()):
                if code not in accused:
                    accused.append(code)
        if not words:
            return None
        return ConductFinding(tuple(words), tuple(accused))


def _alternation(terms: Sequence[str]) -> re.Pattern[str] | None:
    """One regex matching any term, longest first (so 综合执法局 beats 执法局)."""
    unique = sorted({t for t in terms if t}, key=lambda t: (-len(t), t))
    if not unique:
        return None
    return re.compile("|".join(re.escape(t) for t in unique))


def _subject_of(mentions: Sequence[_Mention], start: int, end: int) -> _Mention | None:
    """The subject a misconduct word at [start, end) is aimed at, if any."""
    before = [m for m in mentions if m.end <= start and start - m.end <= SUBJECT_WINDOW]
    if before:
        return max(before, key=lambda m: m.end)
    after = [m for m in mentions if m.start >= end and m.start - end <= TRAILING_WINDOW]
    return min(after, key=lambda m: m.start) if after else None


def _accused_near(mentions: Sequence[_Mention], start: int, end: int) -> list[str]:
    """Departments named around a misconduct word, else the nearest named before it."""
    departments = [m for m in mentions if m.kind != _PRIVATE and m.code is not None]
    close = [
        m
        for m in departments
        if (m.end <= start and start - m.end <= SUBJECT_WINDOW)
        or (m.start >= end and m.start - end <= TRAILING_WINDOW)
    ]
    if close:
        return [m.code for m in sorted(close, key=lambda m: m.start) if m.code]
    earlier = [m for m in departments if m.end <= start]
    if earlier:
        nearest = max(earlier, key=lambda m: m.end)
        return [nearest.code] if nearest.code else []
    return []
