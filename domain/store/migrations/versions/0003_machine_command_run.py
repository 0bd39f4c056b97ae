"""machine commands may name a run (CANCEL_RUN); flow runs indexed by last dispatch per machine

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("machine_commands", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f("ix_machine_commands_run_id"), ["run_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_machine_commands_run_id_flow_runs",
            "flow_runs",
            ["run_id"],
            ["id"],
            ondelete="CASCADE",
        )
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_flow_runs_last_assigned", ["machine_id", "dispatched_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_flow_runs_last_assigned")
    with op.batch_alter_table("machine_commands", schema=None) as batch_op:
        batch_op.drop_constraint("fk_machine_commands_run_id_flow_runs", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_machine_commands_run_id"))
        batch_op.drop_column("run_id")
