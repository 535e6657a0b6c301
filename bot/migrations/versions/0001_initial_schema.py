"""Initial schema: users, check-ins, questions, reminders, reminder deliveries.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Constraint names follow bot.storage.NAMING_CONVENTION; op.f() marks them as final.
UTC = sa.DateTime(timezone=True)


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("consent", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("consent_at", UTC, nullable=True),
        sa.Column("guide", sa.String(), nullable=True),
        sa.Column("phase", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(), server_default="Europe/Copenhagen", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("dialog_state", sa.String(), nullable=True),
        sa.Column("last_update_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "dialog_data",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("phase BETWEEN 1 AND 4", name=op.f("ck_users_phase_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )

    op.create_table(
        "checkins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(), server_default="open", nullable=False),
        sa.Column("step", sa.String(), nullable=True),
        sa.Column("pain", sa.Integer(), nullable=True),
        sa.Column("morning", sa.String(), nullable=True),
        sa.Column("activity", sa.String(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("zone", sa.String(), nullable=True),
        sa.Column("started_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("completed_at", UTC, nullable=True),
        sa.CheckConstraint("pain BETWEEN 0 AND 10", name=op.f("ck_checkins_pain_range")),
        sa.CheckConstraint(
            "status IN ('open', 'done', 'cancelled', 'expired', 'replaced')",
            name=op.f("ck_checkins_status_known"),
        ),
        _user_fk("checkins"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkins")),
    )
    op.create_index(op.f("ix_checkins_user_id"), "checkins", ["user_id"])
    # At most one open check-in per user, and one completed check-in per user per day.
    op.create_index(
        "uq_checkins_one_open",
        "checkins",
        ["user_id"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index(
        "uq_checkins_one_done_per_day",
        "checkins",
        ["user_id", "local_date"],
        unique=True,
        sqlite_where=sa.text("status = 'done'"),
        postgresql_where=sa.text("status = 'done'"),
    )

    op.create_table(
        "questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("guide", sa.String(), nullable=True),
        sa.Column("entry_id", sa.String(), nullable=True),
        sa.Column("score", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=True),
        sa.Column("feedback_at", UTC, nullable=True),
        sa.Column("created_at", UTC, server_default=sa.func.now(), nullable=False),
        _user_fk("questions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_questions")),
    )
    op.create_index(op.f("ix_questions_user_id"), "questions", ["user_id"])

    op.create_table(
        "reminders",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("local_time", sa.Time(), nullable=False),
        sa.Column("timezone", sa.String(), server_default="Europe/Copenhagen", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("next_due_at", UTC, nullable=False),
        sa.Column("paused_until", UTC, nullable=True),
        sa.Column("claimed_by", sa.String(), nullable=True),
        sa.Column("claimed_until", UTC, nullable=True),
        sa.Column("last_sent_on", sa.Date(), nullable=True),
        sa.Column("snoozed", sa.Boolean(), server_default=sa.false(), nullable=False),
        _user_fk("reminders"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_reminders")),
    )
    op.create_index(op.f("ix_reminders_next_due_at"), "reminders", ["next_due_at"])

    op.create_table(
        "reminder_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(), server_default="daily", nullable=False),
        sa.Column("status", sa.String(), server_default="claimed", nullable=False),
        sa.Column("claimed_by", sa.String(), nullable=False),
        sa.Column("claimed_at", UTC, server_default=sa.func.now(), nullable=False),
        sa.Column("sent_at", UTC, nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('daily', 'snooze')", name=op.f("ck_reminder_deliveries_kind_known")
        ),
        sa.CheckConstraint(
            "status IN ('claimed', 'sent', 'failed')",
            name=op.f("ck_reminder_deliveries_status_known"),
        ),
        _user_fk("reminder_deliveries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder_deliveries")),
        # One reminder per user per local day per kind, whatever happens to the workers.
        sa.UniqueConstraint(
            "user_id",
            "local_date",
            "kind",
            name=op.f("uq_reminder_deliveries_user_id_local_date_kind"),
        ),
    )


def downgrade() -> None:
    op.drop_table("reminder_deliveries")
    op.drop_index(op.f("ix_reminders_next_due_at"), table_name="reminders")
    op.drop_table("reminders")
    op.drop_index(op.f("ix_questions_user_id"), table_name="questions")
    op.drop_table("questions")
    op.drop_index("uq_checkins_one_done_per_day", table_name="checkins")
    op.drop_index("uq_checkins_one_open", table_name="checkins")
    op.drop_index(op.f("ix_checkins_user_id"), table_name="checkins")
    op.drop_table("checkins")
    op.drop_table("users")
