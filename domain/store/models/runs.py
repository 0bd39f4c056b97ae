"""Desktop-flow runs, the sessions machines report, and commands sent to machines (R23-R30)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import Column, Index, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

from domain.store.models.columns import UTCDateTime, new_id


class RunMode(str, Enum):
    ATTENDED = "ATTENDED"
    UNATTENDED = "UNATTENDED"


class RunPriority(str, Enum):
    HIGH = "HIGH"
    NORMAL = "NORMAL"


PRIORITY_RANK = {RunPriority.HIGH: 0, RunPriority.NORMAL: 1}  # R25: HIGH first


class RunStatus(str, Enum):
    """R28."""

    QUEUED = "QUEUED"
    DISPATCHED = "DISPATCHED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMED_OUT = "TIMED_OUT"


TERMINAL_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT}
)


class SessionState(str, Enum):
    ACTIVE = "ACTIVE"
    LOCKED = "LOCKED"
    DISCONNECTED = "DISCONNECTED"


class FlowRun(SQLModel, table=True):
    __tablename__ = "flow_runs"
    __table_args__ = (
        Index("ix_flow_runs_queue_machine", "status", "target_machine_id"),
        Index("ix_flow_runs_queue_group", "status", "target_group_id"),
        Index("ix_flow_runs_assigned", "machine_id", "status"),
        # R26's "least recently assigned": the latest dispatch per machine is one index probe.
        Index("ix_flow_runs_last_assigned", "machine_id", "dispatched_at"),
        # An environment's queued runs (every dispatcher pass reads them) without walking its
        # whole run history; the foreign key's cascade uses it as well.
        Index("ix_flow_runs_environment_status", "environment_id", "status"),
        # R40: a run is retried at most once, so a retry chain is a list whose last run alone
        # may be live (a run is retried only once it has ended). Unique: two people retrying
        # the same run at once cannot both succeed, on either database.
        Index("ux_flow_runs_retry_of", "retry_of_id", unique=True),
        # The statistics' fold reads the runs that started or ended since its last pass.
        Index("ix_flow_runs_started_at", "started_at"),
        Index("ix_flow_runs_ended_at", "ended_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    environment_id: str = Field(foreign_key="environments.id", ondelete="CASCADE")
    flow_id: str = Field(foreign_key="desktop_flows.id", index=True, ondelete="CASCADE")
    connection_id: str | None = Field(
        default=None, foreign_key="connections.id", index=True, ondelete="SET NULL"
    )
    # The queue the run waits in: one machine or one group (copied from the connection).
    target_machine_id: str | None = Field(
        default=None, foreign_key="machines.id", ondelete="SET NULL"
    )
    target_group_id: str | None = Field(
        default=None, foreign_key="machine_groups.id", ondelete="SET NULL"
    )
    # The Windows user the run signs in as (the connection's user name): R26's "run's user".
    run_as: str = Field(max_length=256)
    connection_owner_id: str = Field(foreign_key="users.id", index=True)
    triggered_by_id: str = Field(foreign_key="users.id")
    mode: RunMode = Field(
        sa_column=Column(SAEnum(RunMode, native_enum=False, length=16), nullable=False)
    )
    priority: RunPriority = Field(
        sa_column=Column(SAEnum(RunPriority, native_enum=False, length=16), nullable=False)
    )
    priority_rank: int = 1
    # R25 "move to top": a larger rank sorts first, so the last moved is first.
    top_rank: int = 0
    status: RunStatus = Field(
        sa_column=Column(SAEnum(RunStatus, native_enum=False, length=16), nullable=False)
    )
    queued_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    machine_id: str | None = Field(default=None, foreign_key="machines.id", ondelete="SET NULL")
    # Incremented at each dispatch: a fencing token, so a stale confirmation cannot win (R30).
    attempt: int = 0
    dispatched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=2000)
    reported_runtime_version: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # R40: the run this one retries (null for a first run), and its place in its retry chain
    # (1 for the first run). Not ``attempt``: that counts dispatches of this one run (R30).
    retry_of_id: str | None = Field(default=None, foreign_key="flow_runs.id", ondelete="SET NULL")
    retry_attempt: int = 1
    # R40: a retry waits for its delay; the dispatcher takes no run before this instant.
    not_before: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The trigger's span as a W3C traceparent, when traced: its dispatch continues that trace.
    traceparent: str | None = Field(default=None, max_length=55)


class UserSession(SQLModel, table=True):
    """A Windows session a machine reports (R26, R32)."""

    __tablename__ = "user_sessions"
    __table_args__ = (UniqueConstraint("machine_id", "username"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    machine_id: str = Field(foreign_key="machines.id", index=True, ondelete="CASCADE")
    username: str = Field(max_length=256)
    state: SessionState = Field(
        sa_column=Column(SAEnum(SessionState, native_enum=False, length=16), nullable=False)
    )
    reported_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class MachineCommand(SQLModel, table=True):
    """Something the machine runtime must do, e.g. end a user's session (R34)."""

    __tablename__ = "machine_commands"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    machine_id: str = Field(foreign_key="machines.id", index=True, ondelete="CASCADE")
    kind: str = Field(max_length=32)
    username: str | None = Field(default=None, max_length=256)
    # The run a command is about (CANCEL_RUN: stop it), if any.
    run_id: str | None = Field(
        default=None, foreign_key="flow_runs.id", index=True, ondelete="CASCADE"
    )
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RunWait(SQLModel, table=True):
    """One stretch of a queued run's wait and its reason (R29), as the statistics' fold read it at
    each sweep: a run's wait history, for its timeline."""

    __tablename__ = "run_waits"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    run_id: str = Field(foreign_key="flow_runs.id", index=True, ondelete="CASCADE")
    reason: str = Field(max_length=32)
    since: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # Null while it still waits for this reason; the run's reads say it is current.
    until: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
