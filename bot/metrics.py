"""Prometheus metrics of one desk process, served on ``/metrics``.

``DeskMetrics`` owns a ``CollectorRegistry`` of its own instead of the global
one: nothing is registered at import time, and tests or several apps in one
process each get fresh counters without "Duplicated timeseries" errors.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

# The classic text format: what generate_latest writes by default and what every
# Prometheus version scrapes (the library itself answers with it when the
# scraper sends no Accept header).
CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4


class DeskMetrics:
    """The desk's counters, each labelled by channel (or route and status for HTTP)."""

    content_type: Final = CONTENT_TYPE

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # prometheus_client appends the "_total" suffix to counters on exposition.
        self.outbox_sent = Counter(
            "outbox_sent",
            "Outbox messages the provider accepted.",
            ["channel"],
            registry=self.registry,
        )
        self.outbox_retried = Counter(
            "outbox_retried",
            "Outbox send attempts that failed transiently and were rescheduled.",
            ["channel"],
            registry=self.registry,
        )
        self.outbox_dead = Counter(
            "outbox_dead",
            "Outbox messages dead-lettered (permanent error, attempts exhausted, no sender).",
            ["channel"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests served, by route template (not raw path) and status code.",
            ["route", "status"],
            registry=self.registry,
        )

        # Read from the database at scrape time, so they are right across workers.
        self.tickets = Gauge(
            "tickets", "Tickets in the database, by status.", ["status"], registry=self.registry
        )
        self.outbox_messages = Gauge(
            "outbox_messages",
            "Outbox rows, by status (dead = dead letters waiting for an operator).",
            ["status"],
            registry=self.registry,
        )

    def set_snapshot(self, tickets: dict[str, int], outbox: dict[str, int]) -> None:
        """Replace the database-derived gauges with fresh counts."""
        for gauge, counts in ((self.tickets, tickets), (self.outbox_messages, outbox)):
            gauge.clear()
            for status, count in counts.items():
                gauge.labels(status=status).set(count)

    def render(self) -> bytes:
        """The current values in the Prometheus text format."""
        return generate_latest(self.registry)
