"""Insert-on-conflict that works the same on SQLite and PostgreSQL.

Dedupe keys are enforced by unique constraints and written with
``INSERT ... ON CONFLICT DO NOTHING``, never check-then-insert, so two workers
racing on the same key cannot both win.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Base


async def insert_if_absent(
    session: AsyncSession,
    model: type[Base],
    values: dict[str, Any],
    conflict_columns: list[str],
) -> int | None:
    """Insert a row and return its id, or return None if the key already exists."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = model.__table__
    assert isinstance(table, Table)
    statement = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=conflict_columns)
        .returning(table.c.id)
    )
    result = await session.execute(statement)
    inserted = result.scalar_one_or_none()
    return None if inserted is None else int(inserted)
