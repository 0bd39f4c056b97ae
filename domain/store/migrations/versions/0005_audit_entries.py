"""audit trail: who registered, shared, moved, deleted, changed roles...

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 16:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import domain.store.models.columns
from domain.store.models.audit import AuditAction, AuditTargetKind

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("at", domain.store.models.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("environment_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column("actor_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True),
        sa.Column(
            "action",
            sa.Enum(
                *(a.value for a in AuditAction), name="auditaction", native_enum=False, length=40
            ),
            nullable=False,
        ),
        sa.Column(
            "target_kind",
            sa.Enum(
                *(k.value for k in AuditTargetKind),
                name="audittargetkind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("target_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("target_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_entries_environment_at", ["environment_id", "at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_environment_at")
    op.drop_table("audit_entries")
