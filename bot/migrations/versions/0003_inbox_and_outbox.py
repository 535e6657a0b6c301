"""Inbox and outbox: every update stored before Telegram is told it arrived, every reply
a row written in its turn's transaction (bot/inbox.py, bot/outbox.py).

Revision ID: 0003
Revises: 0001 (re-chained onto 0002 at merge)
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("received_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("processed_at", UTC, nullable=True),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_inbox_updates")),
    )
    op.create_index(op.f("ix_inbox_updates_user_id"), "inbox_updates", ["user_id"])
    op.create_index(op.f("ix_inbox_updates_processed_at"), "inbox_updates", ["processed_at"])
    op.create_table(
        "outbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("kind", sa.String(), server_default="text", nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("buttons", sa.JSON(), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("filename", sa.String(), nullable=True),
        sa.Column("claimed_by", sa.String(), nullable=True),
        sa.Column("claimed_until", UTC, nullable=True),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_messages")),
    )
    op.create_index(op.f("ix_outbox_messages_chat_id"), "outbox_messages", ["chat_id"])
    op.create_index(op.f("ix_outbox_messages_user_id"), "outbox_messages", ["user_id"])
    op.create_index(op.f("ix_outbox_messages_claimed_until"), "outbox_messages", ["claimed_until"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_messages_claimed_until"), table_name="outbox_messages")
    op.drop_index(op.f("ix_outbox_messages_user_id"), table_name="outbox_messages")
    op.drop_index(op.f("ix_outbox_messages_chat_id"), table_name="outbox_messages")
    op.drop_table("outbox_messages")
    op.drop_index(op.f("ix_inbox_updates_processed_at"), table_name="inbox_updates")
    op.drop_index(op.f("ix_inbox_updates_user_id"), table_name="inbox_updates")
    op.drop_table("inbox_updates")
