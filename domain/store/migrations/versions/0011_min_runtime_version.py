"""min runtime version: each environment's R41 minimum, none unless set

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 21:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as table:
        table.add_column(sa.Column("min_runtime_version", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("environments") as table:
        table.drop_column("min_runtime_version")
