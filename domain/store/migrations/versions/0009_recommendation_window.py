"""recommendation window: each environment's R33 window, ten minutes unless changed

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 21:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as table:
        table.add_column(
            sa.Column(
                "recommendation_window_seconds",
                sa.Integer(),
                nullable=False,
                server_default="600",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("environments") as table:
        table.drop_column("recommendation_window_seconds")
