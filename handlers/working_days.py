"""Deadlines in Chinese working days (weekends, statutory holidays and 调休 make-up days).

``chinese_calendar`` knows the State Council's holiday notices up to the year
its release covers. For later years we fall back to weekends plus the config's
``[calendar]`` corrections and log once, so a deadline is never refused, and an
administrator can add the new year's notice to the config.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

import chinese_calendar

from storage.models import DESK_TZ

logger = logging.getLogger(__name__)


class WorkingCalendar:
    """Answers "is this a working day?" and counts working days forward."""

    def __init__(
        self, extra_holidays: Iterable[date] = (), extra_workdays: Iterable[date] = ()
    ) -> None:
        self._holidays = frozenset(extra_holidays)
        self._workdays = frozenset(extra_workdays)
        self._warned_years: set[int] = set()

    def is_workday(self, day: date) -> bool:
        """True when government offices work on ``day``."""
        if day in self._holidays:
            return False
        if day in self._workdays:
            return True
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in self._warned_years:
                self._warned_years.add(day.year)
                logger.warning(
                    "no official holiday calendar for %d; counting weekends and the "
                    "config's [calendar] days only",
                    day.year,
                )
            return day.weekday() < 5

    def add_working_days(self, start: date, days: int) -> date:
        """The ``days``-th working day after ``start`` (``start`` itself not counted)."""
        if days < 1:
            raise ValueError(f"a deadline needs at least one working day, got {days}")
        current = start
        remaining = days
        while remaining:
            current += timedelta(days=1)
            if self.is_workday(current):
                remaining -= 1
        return current

    def deadline(self, assigned_at: datetime, days: int) -> datetime:
        """End of the ``days``-th working day after assignment, desk time, returned in UTC."""
        local_day = assigned_at.astimezone(DESK_TZ).date()
        due_day = self.add_working_days(local_day, days)
        end_of_day = datetime.combine(due_day, time(23, 59, 59), tzinfo=DESK_TZ)
        return end_of_day.astimezone(UTC)


def local_date_text(moment: datetime) -> str:
    """A date as residents read it: 2026年12月3日."""
    local = moment.astimezone(DESK_TZ)
    return f"{local.year}年{local.month}月{local.day}日"
