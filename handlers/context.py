"""What every use case needs, built once in ``bot/`` and passed in explicitly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from handlers.desk_config import DeskConfig
from handlers.routing import Router
from handlers.working_days import WorkingCalendar
from storage.models import utcnow
from storage.unit_of_work import Database


@dataclass(slots=True)
class Desk:
    """The desk's dependencies: database, policy, router, calendar and clock."""

    database: Database
    config: DeskConfig
    router: Router
    calendar: WorkingCalendar
    clock: Callable[[], datetime] = field(default=utcnow)
    # Called after a transaction that wrote outbox rows commits (wakes the dispatcher).
    on_outbox: Callable[[], None] = field(default=lambda: None)

    @classmethod
    def build(cls, database: Database, config: DeskConfig, **kwargs: object) -> Desk:
        """A desk whose router and calendar come from ``config``."""
        calendar = WorkingCalendar(config.calendar.extra_holidays, config.calendar.extra_workdays)
        return cls(database, config, Router(config), calendar, **kwargs)  # type: ignore[arg-type]
