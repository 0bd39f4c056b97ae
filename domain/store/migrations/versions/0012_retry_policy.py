"""retry policy: R40's policy per environment and per desktop flow, and retry chains of runs

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 23:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from domain.store.models.columns import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as table:
        table.add_column(sa.Column("retry_policy", sa.String(length=2000), nullable=True))
    with op.batch_alter_table("desktop_flows") as table:
        table.add_column(sa.Column("retry_policy", sa.String(length=2000), nullable=True))
    with op.batch_alter_table("flow_runs") as table:
        table.add_column(sa.Column("retry_of_id", sa.String(), nullable=True))
        table.add_column(
            sa.Column("retry_attempt", sa.Integer(), nullable=False, server_default="1")
        )
        table.add_column(sa.Column("not_before", UTCDateTime(timezone=True), nullable=True))
        table.create_foreign_key(
            "fk_flow_runs_retry_of_id_flow_runs",
            "flow_runs",
            ["retry_of_id"],
            ["id"],
            ondelete="SET NULL",
        )
        table.create_index("ux_flow_runs_retry_of", ["retry_of_id"], unique=True)
    # The default only filled the rows that existed; new rows get theirs from the code.
    with op.batch_alter_table("flow_runs") as table:
        table.alter_column("retry_attempt", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("flow_runs") as table:
        table.drop_index("ux_flow_runs_retry_of")
        table.drop_constraint("fk_flow_runs_retry_of_id_flow_runs", type_="foreignkey")
        table.drop_column("not_before")
        table.drop_column("retry_attempt")
        table.drop_column("retry_of_id")
    with op.batch_alter_table("desktop_flows") as table:
        table.drop_column("retry_policy")
    with op.batch_alter_table("environments") as table:
        table.drop_column("retry_policy")
