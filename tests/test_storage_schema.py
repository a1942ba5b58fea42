"""The migrated schema matches the models, on every backend."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from helpers import ROUTED_TEXT, register
from sqlalchemy import Connection
from sqlalchemy import inspect as sa_inspect

from handlers.context import Desk
from storage.migrate import MIGRATIONS_DIR, current_revision, head_revision, upgrade
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


REBUILD_DEPARTMENTS = '''"""Rebuild a referenced table, as batch mode does on SQLite."""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("departments", recreate="always") as batch:
        batch.add_column(sa.Column("probe", sa.String(10), nullable=True))


def downgrade() -> None:
    pass
'''


async def test_a_batch_migration_can_rebuild_a_referenced_table_with_data(
    database: Database, desk: Desk, tmp_path: Path, db_backend: str
) -> None:
    if db_backend != "sqlite":
        pytest.skip("table rebuilds are SQLite's batch mode; PostgreSQL alters in place")
    # Tickets and staff reference departments: with foreign keys enforced
    # during the migration, SQLite's DROP of the old table would fail.
    await register(desk, ROUTED_TEXT)
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_rebuild.py").write_text(REBUILD_DEPARTMENTS, encoding="utf-8")

    await upgrade(database.engine, script_location=scripts)

    async with database.reading() as uow:
        assert await uow.tickets.count() == 1
        assert len(await uow.directory.departments()) == len(desk.config.departments)
    async with database.engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: [c["name"] for c in sa_inspect(sync).get_columns("departments")]
        )
        assert "probe" in columns
        assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
