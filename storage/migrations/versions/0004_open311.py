"""Open311 front door: client API keys, and where a ticket's complaint is

API keys get their own table (only a hash of each key is stored); tickets
gain an address, coordinates and the API key that filed them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_prefix", sa.String(length=12), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
    )
    # Plain nullable ADD COLUMN on both backends: existing tickets keep their
    # data. api_key_id is no foreign key: SQLite cannot add one to an existing
    # table without rebuilding it.
    op.add_column("tickets", sa.Column("address", sa.String(length=300), nullable=True))
    op.add_column("tickets", sa.Column("latitude", sa.Double(), nullable=True))
    op.add_column("tickets", sa.Column("longitude", sa.Double(), nullable=True))
    op.add_column("tickets", sa.Column("api_key_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("api_key_id")
        batch.drop_column("longitude")
        batch.drop_column("latitude")
        batch.drop_column("address")
    op.drop_table("api_keys")
