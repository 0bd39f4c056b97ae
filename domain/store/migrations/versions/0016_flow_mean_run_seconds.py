"""flow mean run seconds: R42's moving mean of how long a flow's runs take

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 23:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("desktop_flows") as table:
        table.add_column(sa.Column("mean_run_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("desktop_flows") as table:
        table.drop_column("mean_run_seconds")
