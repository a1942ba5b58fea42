"""Engine and session factories for SQLite (embedded default) and PostgreSQL.

SQLite is tuned as DESIGN.md requires: WAL, a generous busy_timeout,
``synchronous=FULL`` and foreign keys on every connection, and every write
transaction opened with ``BEGIN IMMEDIATE``. A deferred transaction that reads
and then writes fails at once with SQLITE_BUSY whatever busy_timeout says;
taking the write lock up front makes writers queue on busy_timeout instead.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

logger = logging.getLogger(__name__)

# Execution option read by the ``begin`` hook: "IMMEDIATE" for writers
# (the default), "DEFERRED" for read-only units of work.
SQLITE_BEGIN_OPTION = "complaint_desk_sqlite_begin"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(url: str | URL) -> bool:
    """True when the URL names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"


def safe_url(url: str | URL) -> str:
    """The URL with its password hidden, fit for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        # Unparseable: show only the scheme, since a password could be anywhere in it.
        scheme = str(url).split(":", 1)[0] if ":" in str(url) else "?"
        return f"<unparseable {scheme} URL>"


def sqlite_path(url: str | URL) -> str | None:
    """The database file of a SQLite URL, or None for other databases."""
    parsed = make_url(url)
    return parsed.database if parsed.get_backend_name() == "sqlite" else None


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """Build the process's one async engine for ``url``.

    A PostgreSQL URL may carry ``?search_path=SCHEMA`` to keep the desk's
    tables in a schema of their own.
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": not is_sqlite(parsed)}
    search_path = parsed.query.get("search_path")
    if search_path and parsed.get_backend_name() == "postgresql":
        # asyncpg takes no search_path in the URL; it is a server setting.
        parsed = parsed.difference_update_query(["search_path"])
        kwargs["connect_args"] = {"server_settings": {"search_path": str(search_path)}}
    if is_sqlite(parsed):
        if parsed.database in (None, "", ":memory:"):
            raise ValueError(
                "in-memory SQLite shares one connection across tasks; use a file database"
            )
        # Each aiosqlite connection owns a thread; enough of them for bursts
        # of concurrent writers, who then queue on the write lock.
        kwargs.update(pool_size=10, max_overflow=40, pool_timeout=60)
    engine = create_async_engine(parsed, **kwargs)
    if is_sqlite(parsed):
        _tune_sqlite(engine)
    return engine


def _tune_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 driver; the ``begin`` hook emits it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")
