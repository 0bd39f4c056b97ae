"""fleet statistics: rollups per environment and minute or hour, busy bot-seconds per machine
and hour, the gauges' samples and the fold's mark, queued runs' wait history; indexes on when
runs started and ended

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from domain.store.models.columns import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_COUNTS = (
    "runs_started",
    "runs_succeeded",
    "runs_failed",
    "runs_timed_out",
    "runs_cancelled",
    *(f"waits_{i}" for i in range(12)),
    "queued_sum",
    "queued_peak",
    "running_sum",
    "running_peak",
    "connected_sum",
)


def upgrade() -> None:
    op.create_table(
        "fleet_rollups",
        sa.Column(
            "environment_id",
            sa.String(length=36),
            sa.ForeignKey("environments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("span", sa.String(length=8), primary_key=True),
        sa.Column("start", UTCDateTime(timezone=True), primary_key=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS[:5]),
        sa.Column("wait_seconds_sum", sa.Float(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in _COUNTS[5:]),
        sa.Column("busy_bot_seconds", sa.Float(), nullable=False),
    )
    op.create_table(
        "machine_hours",
        sa.Column(
            "machine_id",
            sa.String(length=36),
            sa.ForeignKey("machines.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("start", UTCDateTime(timezone=True), primary_key=True),
        sa.Column(
            "environment_id",
            sa.String(length=36),
            sa.ForeignKey("environments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("busy_bot_seconds", sa.Float(), nullable=False),
    )
    op.create_index("ix_machine_hours_environment_id", "machine_hours", ["environment_id"])
    op.create_table(
        "fold_samples",
        sa.Column("span", sa.String(length=8), primary_key=True),
        sa.Column("start", UTCDateTime(timezone=True), primary_key=True),
        sa.Column("samples", sa.Integer(), nullable=False),
    )
    op.create_table(
        "statistics_folds",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("folded_until", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "run_waits",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column(
            "run_id",
            sa.String(length=36),
            sa.ForeignKey("flow_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("since", UTCDateTime(timezone=True), nullable=False),
        sa.Column("until", UTCDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_run_waits_run_id", "run_waits", ["run_id"])
    op.create_index("ix_run_waits_until", "run_waits", ["until"])
    op.create_index("ix_flow_runs_started_at", "flow_runs", ["started_at"])
    op.create_index("ix_flow_runs_ended_at", "flow_runs", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_flow_runs_ended_at", table_name="flow_runs")
    op.drop_index("ix_flow_runs_started_at", table_name="flow_runs")
    op.drop_index("ix_run_waits_until", table_name="run_waits")
    op.drop_index("ix_run_waits_run_id", table_name="run_waits")
    op.drop_table("run_waits")
    op.drop_table("statistics_folds")
    op.drop_table("fold_samples")
    op.drop_index("ix_machine_hours_environment_id", table_name="machine_hours")
    op.drop_table("machine_hours")
    op.drop_table("fleet_rollups")
