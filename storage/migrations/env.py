"""Alembic environment: runs on the connection ``storage.migrate`` hands it.

The connection-sharing recipe from Alembic's cookbook: the caller opens an
async connection, and inside ``run_sync`` passes the sync connection here via
``config.attributes``, so migrations run on the caller's event loop and engine
(with its SQLite pragmas and BEGIN IMMEDIATE).
"""

from __future__ import annotations

from alembic import context

from storage.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through storage.migrate (complaint-desk db upgrade)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
