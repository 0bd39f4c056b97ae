"""Desktop-flow connections, legacy gateways and desktop flows (R20-R22)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import Column
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

from domain.store.models.columns import UTCDateTime, new_id


class Connectivity(str, Enum):
    DIRECT = "DIRECT"
    GATEWAY = "GATEWAY"  # R22: legacy, listed and migrated away from only


class Gateway(SQLModel, table=True):
    __tablename__ = "gateways"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    environment_id: str = Field(foreign_key="environments.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Connection(SQLModel, table=True):
    """Targets one machine or one group (DIRECT) or a gateway (legacy); holds Windows credentials."""

    __tablename__ = "connections"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    environment_id: str = Field(foreign_key="environments.id", index=True, ondelete="CASCADE")
    owner_id: str = Field(foreign_key="users.id", index=True)
    name: str = Field(max_length=100)
    connectivity: Connectivity = Field(
        sa_column=Column(SAEnum(Connectivity, native_enum=False, length=16), nullable=False)
    )
    machine_id: str | None = Field(
        default=None, foreign_key="machines.id", index=True, ondelete="CASCADE"
    )
    group_id: str | None = Field(
        default=None, foreign_key="machine_groups.id", index=True, ondelete="CASCADE"
    )
    gateway_id: str | None = Field(
        default=None, foreign_key="gateways.id", index=True, ondelete="SET NULL"
    )
    windows_username: str = Field(max_length=256)
    # R20: Fernet ciphertext; the key lives outside the database.
    password_ciphertext: str = Field(max_length=2048)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class DesktopFlow(SQLModel, table=True):
    __tablename__ = "desktop_flows"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    environment_id: str = Field(foreign_key="environments.id", index=True, ondelete="CASCADE")
    owner_id: str = Field(foreign_key="users.id", index=True)
    name: str = Field(max_length=100)
    # R40: its own retry policy as JSON (domain/runs/retries.py); None: its environment's.
    retry_policy: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # R42: how long its runs take: a moving mean over the runs that ran to an end (the newest
    # weighs a fifth), kept as they end so that an estimate never scans the run history.
    mean_run_seconds: float | None = None
