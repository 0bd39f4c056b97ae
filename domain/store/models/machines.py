"""Machines, machine groups and their shares (R5-R19)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import CheckConstraint, Column, Index, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

from domain.kernel.permissions import AccessLevel
from domain.store.models.columns import UTCDateTime, new_id


class MachineStatus(str, Enum):
    """R9: derived from heartbeats, never stored."""

    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"


class MachineGroup(SQLModel, table=True):
    __tablename__ = "machine_groups"
    __table_args__ = (UniqueConstraint("environment_id", "name"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    environment_id: str = Field(foreign_key="environments.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    description: str = Field(default="", max_length=1000)
    owner_id: str = Field(foreign_key="users.id", index=True)
    maintenance: bool = False  # R18
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Machine(SQLModel, table=True):
    __tablename__ = "machines"
    __table_args__ = (
        UniqueConstraint("environment_id", "name"),  # R5
        # Lists page by (name, id): walking this index reads one page, not every machine sorted.
        Index("ix_machines_name_id", "name", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    environment_id: str = Field(foreign_key="environments.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    description: str = Field(default="", max_length=1000)
    owner_id: str = Field(foreign_key="users.id", index=True)
    group_id: str | None = Field(
        default=None, foreign_key="machine_groups.id", index=True, ondelete="SET NULL"
    )
    runtime_version: str = Field(max_length=64)  # R7
    os_edition: str = Field(max_length=100)
    maintenance: bool = False  # R16
    unattended_bots: int = 0  # R24
    last_heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    key_hash: str = Field(max_length=64, unique=True, index=True)  # R5
    key_expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)  # R10
    key_rotation_pending: bool = False  # R10
    registered_by_id: str = Field(foreign_key="users.id")
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class Share(SQLModel, table=True):
    """Access to one machine or one group granted to a user (R12)."""

    __tablename__ = "shares"
    __table_args__ = (
        UniqueConstraint("machine_id", "user_id"),
        UniqueConstraint("group_id", "user_id"),
        CheckConstraint(
            "(machine_id IS NULL) <> (group_id IS NULL)", name="share_targets_one_resource"
        ),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    machine_id: str | None = Field(
        default=None, foreign_key="machines.id", index=True, ondelete="CASCADE"
    )
    group_id: str | None = Field(
        default=None, foreign_key="machine_groups.id", index=True, ondelete="CASCADE"
    )
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    access: AccessLevel = Field(
        sa_column=Column(SAEnum(AccessLevel, native_enum=False, length=16), nullable=False)
    )
    granted_by_id: str = Field(foreign_key="users.id")
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
