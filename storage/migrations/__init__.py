"""Alembic migrations, run through ``storage.migrate`` (no alembic.ini needed)."""
