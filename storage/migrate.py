"""Apply Alembic migrations from code: ``complaint-desk db upgrade`` and ``serve``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(script_location: Path = MIGRATIONS_DIR) -> Config:
    """An Alembic config pointing at our migrations, with no ini file."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    return config


def head_revision() -> str | None:
    """The newest revision the code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(
    engine: AsyncEngine, revision: str = "head", *, script_location: Path = MIGRATIONS_DIR
) -> None:
    """Migrate the database behind ``engine`` to ``revision``.

    On SQLite, Alembic's batch mode rebuilds a table to alter it (copy, drop,
    rename), and dropping a table that others reference fails while foreign
    keys are enforced. The pragma cannot change inside a transaction, so it is
    turned off before BEGIN, and ``foreign_key_check`` must come back empty
    before the migration commits.
    """

    def _run(connection: Connection) -> None:
        config = alembic_config(script_location)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    sqlite = engine.dialect.name == "sqlite"
    async with engine.connect() as connection:
        if sqlite:
            await _sqlite_pragma(connection, "foreign_keys = OFF")
        try:
            async with connection.begin():
                await connection.run_sync(_run)
                if sqlite:
                    broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                    if broken:
                        raise RuntimeError(f"migration left broken foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                await _sqlite_pragma(connection, "foreign_keys = ON")


async def _sqlite_pragma(connection: AsyncConnection, pragma: str) -> None:
    # Through the driver, outside SQLAlchemy's transaction (whose BEGIN would come first).
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.execute(f"PRAGMA {pragma}")


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, None when it was never migrated."""

    def _read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(_read)
