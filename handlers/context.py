"""What every use case needs, built once in ``bot/`` and passed in explicitly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from handlers.desk_config import DeskConfig
from handlers.routing import Router
from handlers.working_days import WorkingCalendar
from nlp.classifier import Classifier
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
    def build(
        cls,
        database: Database,
        config: DeskConfig,
        classifier: Classifier | None = None,
        **kwargs: object,
    ) -> Desk:
        """A desk whose router and calendar come from ``config`` (keywords unless given)."""
        calendar = WorkingCalendar(config.calendar.extra_holidays, config.calendar.extra_workdays)
        router = Router(config, classifier)
        return cls(database, config, router, calendar, **kwargs)  # type: ignore[arg-type]
