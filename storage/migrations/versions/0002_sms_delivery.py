"""SMS channel: inline replies, provider delivery status, a sender's recent tickets

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    # Plain ADD COLUMN (nullable or with a server default) on both backends:
    # no table rebuild, existing rows keep their data.
    op.add_column(
        "inbound_messages",
        sa.Column("reply_inline", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "outbox_messages", sa.Column("delivery_status", sa.String(length=20), nullable=True)
    )
    op.add_column(
        "outbox_messages", sa.Column("delivery_error_code", sa.String(length=20), nullable=True)
    )
    op.add_column(
        "outbox_messages",
        sa.Column("delivery_updated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        op.f("ix_outbox_messages_provider_message_id"),
        "outbox_messages",
        ["provider_message_id"],
        unique=False,
    )
    op.create_index(
        "ix_tickets_contact_created", "tickets", ["contact_id", "created_at"], unique=False
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_tickets_contact_created", table_name="tickets")
    op.drop_index(op.f("ix_outbox_messages_provider_message_id"), table_name="outbox_messages")
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_column("delivery_updated_at")
        batch.drop_column("delivery_error_code")
        batch.drop_column("delivery_status")
    with op.batch_alter_table("inbound_messages") as batch:
        batch.drop_column("reply_inline")
