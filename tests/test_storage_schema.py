"""The migrated schema matches the models, on every backend."""

from __future__ import annotations

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
