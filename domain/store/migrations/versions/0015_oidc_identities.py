"""oidc identities: sign-in through an OpenID Connect provider (R44), its people by issuer and
subject, group -> role mappings per environment, and which role assignments sign-in made

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 23:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

from domain.store.models.columns import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ROLES = (
    "ENVIRONMENT_ADMIN",
    "ENVIRONMENT_MAKER",
    "MACHINE_OWNER",
    "MACHINE_USER",
    "MACHINE_USER_CAN_SHARE",
)


def upgrade() -> None:
    op.create_table(
        "sign_in_identities",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("issuer", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column(
            "matched_by",
            sa.Enum("EMAIL", "PROVISIONED", name="signinmatch", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issuer", "subject"),
    )
    with op.batch_alter_table("sign_in_identities") as table:
        table.create_index(table.f("ix_sign_in_identities_user_id"), ["user_id"], unique=False)
    op.create_table(
        "sign_in_group_roles",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("environment_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("group", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column(
            "role", sa.Enum(*ROLES, name="role", native_enum=False, length=32), nullable=False
        ),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["environment_id"], ["environments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("environment_id", "group", "role"),
    )
    with op.batch_alter_table("sign_in_group_roles") as table:
        table.create_index(
            table.f("ix_sign_in_group_roles_environment_id"), ["environment_id"], unique=False
        )
    with op.batch_alter_table("role_assignments") as table:
        table.add_column(
            sa.Column("from_sign_in", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("role_assignments") as table:
        table.drop_column("from_sign_in")
    op.drop_table("sign_in_group_roles")
    op.drop_table("sign_in_identities")
