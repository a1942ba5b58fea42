"""The migrated schema matches the models, on every backend."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection

from storage.migrate import current_revision, head_revision
from storage.models import Base
from storage.unit_of_work import Database


async def test_migrations_reach_head_and_match_models(database: Database) -> None:
    assert await current_revision(database.engine) == head_revision()

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with database.engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []


async def test_sqlite_connections_are_tuned(database: Database, db_backend: str) -> None:
    if db_backend != "sqlite":
        pytest.skip("SQLite pragmas")
    async with database.engine.connect() as connection:
        values = {
            pragma: (await connection.exec_driver_sql(f"PRAGMA {pragma}")).scalar()
            for pragma in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    # synchronous=2 is FULL.
    assert values == {
        "journal_mode": "wal",
        "synchronous": 2,
        "busy_timeout": 30_000,
        "foreign_keys": 1,
    }


async def test_sqlite_write_transactions_take_the_write_lock_at_begin(
    database: Database, db_backend: str
) -> None:
    if db_backend != "sqlite":
        pytest.skip("SQLite locking")
    # A reader that began first must not be able to write after a writer began:
    # with BEGIN IMMEDIATE the writer holds RESERVED from its first statement.
    async with database.transaction() as writer:
        # Only a read so far: with a deferred BEGIN this would hold no write lock.
        await writer.tickets.count()
        async with database.engine.connect() as other:
            raw = await other.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.execute("PRAGMA busy_timeout = 0")
            with pytest.raises(Exception, match="locked"):
                await other.exec_driver_sql("BEGIN IMMEDIATE")
            await driver.execute("PRAGMA busy_timeout = 30000")
