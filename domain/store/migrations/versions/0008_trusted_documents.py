"""trusted documents: the GraphQL documents accepted when only registered ones are

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from domain.store.models.columns import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trusted_documents",
        sa.Column("sha256", sa.String(length=64), primary_key=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("registered_at", UTCDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trusted_documents")
