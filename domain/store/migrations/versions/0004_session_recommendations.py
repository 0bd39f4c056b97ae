"""session-lock recommendations "Desktop flows not running" and their affected runs (R31-R34)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 15:07:34.440480
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import domain.store.models.columns

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_recommendations",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("environment_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("recipient_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("OPEN", "RESOLVED", name="recommendationstatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "raised_at", domain.store.models.columns.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "window_ends_at", domain.store.models.columns.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "updated_at", domain.store.models.columns.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "resolved_at", domain.store.models.columns.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(["environment_id"], ["environments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["recipient_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("session_recommendations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_recommendations_environment_id"),
            ["environment_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_session_recommendations_recipient", ["recipient_id", "status"], unique=False
        )
        batch_op.create_index(
            "ux_session_recommendations_open",
            ["environment_id", "recipient_id"],
            unique=True,
            sqlite_where=sa.text("status = 'OPEN'"),
            postgresql_where=sa.text("status = 'OPEN'"),
        )

    op.create_table(
        "session_recommendation_items",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("recommendation_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("flow_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("machine_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=256), nullable=False),
        sa.Column(
            "session_state",
            sa.Enum(
                "ACTIVE",
                "LOCKED",
                "DISCONNECTED",
                name="sessionstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "blocked_since", domain.store.models.columns.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "outcome",
            sa.Enum(
                "BLOCKED",
                "STARTED",
                "ENDED",
                "UNBLOCKED",
                "FAILED_SESSION_EXISTS",
                "WITHDRAWN",
                name="itemoutcome",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("left_at", domain.store.models.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "disconnect_requested_at",
            domain.store.models.columns.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(["flow_id"], ["desktop_flows.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["machine_id"], ["machines.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["recommendation_id"], ["session_recommendations.id"], ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["flow_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("recommendation_id", "run_id"),
    )
    with op.batch_alter_table("session_recommendation_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_recommendation_items_recommendation_id"),
            ["recommendation_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_session_recommendation_items_run_id"), ["run_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("session_recommendation_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_recommendation_items_run_id"))
        batch_op.drop_index(batch_op.f("ix_session_recommendation_items_recommendation_id"))

    op.drop_table("session_recommendation_items")
    with op.batch_alter_table("session_recommendations", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_session_recommendations_open",
            sqlite_where=sa.text("status = 'OPEN'"),
            postgresql_where=sa.text("status = 'OPEN'"),
        )
        batch_op.drop_index("ix_session_recommendations_recipient")
        batch_op.drop_index(batch_op.f("ix_session_recommendations_environment_id"))

    op.drop_table("session_recommendations")
