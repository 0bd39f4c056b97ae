"""run traceparent: the trigger's trace, continued by the run's dispatch (when traced)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 21:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flow_runs") as table:
        table.add_column(sa.Column("traceparent", sa.String(length=55), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flow_runs") as table:
        table.drop_column("traceparent")
