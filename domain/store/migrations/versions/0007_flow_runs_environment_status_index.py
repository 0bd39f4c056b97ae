"""an environment's queued runs are read through (environment_id, status), not by walking every
run the environment ever had

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 14:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The new index serves the environment foreign key's cascade too, so it replaces the old one
    # (created first: the foreign key is never without an index).
    op.create_index("ix_flow_runs_environment_status", "flow_runs", ["environment_id", "status"])
    op.drop_index("ix_flow_runs_environment_id", table_name="flow_runs")


def downgrade() -> None:
    op.create_index("ix_flow_runs_environment_id", "flow_runs", ["environment_id"])
    op.drop_index("ix_flow_runs_environment_status", table_name="flow_runs")
