"""machines listed by (name, id) walk an index instead of sorting every machine

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 18:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_machines_name_id", "machines", ["name", "id"])


def downgrade() -> None:
    op.drop_index("ix_machines_name_id", table_name="machines")
