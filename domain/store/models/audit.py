"""The audit trail: who changed what, written in the transaction of the change."""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from enum import Enum

from sqlalchemy import Column, Index
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

from domain.store.models.columns import UTCDateTime


def sortable_id() -> str:
    """Wall-clock nanoseconds then randomness: entries of one instant keep their write order."""
    return f"{time.time_ns():016x}{secrets.token_hex(10)}"


class AuditAction(str, Enum):
    MACHINE_REGISTERED = "MACHINE_REGISTERED"
    MACHINE_UPDATED = "MACHINE_UPDATED"
    MACHINE_DELETED = "MACHINE_DELETED"
    MACHINE_MOVED = "MACHINE_MOVED"  # to another environment (R6)
    MACHINE_KEY_ROTATED = "MACHINE_KEY_ROTATED"
    MACHINE_SHARED = "MACHINE_SHARED"
    MACHINE_UNSHARED = "MACHINE_UNSHARED"
    MACHINE_MAINTENANCE = "MACHINE_MAINTENANCE"  # detail: on / off
    GROUP_CREATED = "GROUP_CREATED"
    GROUP_UPDATED = "GROUP_UPDATED"
    GROUP_DELETED = "GROUP_DELETED"
    GROUP_MACHINE_ADDED = "GROUP_MACHINE_ADDED"
    GROUP_MACHINE_REMOVED = "GROUP_MACHINE_REMOVED"
    GROUP_SHARED = "GROUP_SHARED"
    GROUP_UNSHARED = "GROUP_UNSHARED"
    GROUP_MAINTENANCE = "GROUP_MAINTENANCE"
    ROLE_ASSIGNED = "ROLE_ASSIGNED"
    ROLE_REVOKED = "ROLE_REVOKED"
    USER_DEACTIVATED = "USER_DEACTIVATED"
    USER_REACTIVATED = "USER_REACTIVATED"
    CONNECTION_CREATED = "CONNECTION_CREATED"
    CONNECTION_UPDATED = "CONNECTION_UPDATED"
    CONNECTION_DELETED = "CONNECTION_DELETED"
    CONNECTION_SWITCHED_TO_DIRECT = "CONNECTION_SWITCHED_TO_DIRECT"  # R22
    SIGN_IN_GROUP_MAPPED = "SIGN_IN_GROUP_MAPPED"  # R44; detail: the role
    SIGN_IN_GROUP_UNMAPPED = "SIGN_IN_GROUP_UNMAPPED"
    WEBHOOK_ENDPOINT_CREATED = "WEBHOOK_ENDPOINT_CREATED"  # R43; detail: the event types
    WEBHOOK_ENDPOINT_UPDATED = "WEBHOOK_ENDPOINT_UPDATED"
    WEBHOOK_ENDPOINT_PAUSED = "WEBHOOK_ENDPOINT_PAUSED"
    WEBHOOK_ENDPOINT_RESUMED = "WEBHOOK_ENDPOINT_RESUMED"
    WEBHOOK_ENDPOINT_SECRET_ROTATED = "WEBHOOK_ENDPOINT_SECRET_ROTATED"
    WEBHOOK_ENDPOINT_DELETED = "WEBHOOK_ENDPOINT_DELETED"


class AuditTargetKind(str, Enum):
    MACHINE = "MACHINE"
    GROUP = "GROUP"
    USER = "USER"
    CONNECTION = "CONNECTION"
    SIGN_IN_GROUP = "SIGN_IN_GROUP"  # a group of the OpenID Connect provider (R44)
    WEBHOOK_ENDPOINT = "WEBHOOK_ENDPOINT"


class AuditEntry(SQLModel, table=True):
    """No foreign keys: an entry outlives the machine, group or user it names."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_environment_at", "environment_id", "at", "id"),)

    id: str = Field(default_factory=sortable_id, primary_key=True, max_length=36)
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    environment_id: str | None = Field(default=None, max_length=36)
    actor_id: str | None = Field(default=None, max_length=36)  # the user; None: the system
    action: AuditAction = Field(
        sa_column=Column(SAEnum(AuditAction, native_enum=False, length=40), nullable=False)
    )
    target_kind: AuditTargetKind = Field(
        sa_column=Column(SAEnum(AuditTargetKind, native_enum=False, length=16), nullable=False)
    )
    target_id: str = Field(max_length=36)
    target_name: str | None = Field(default=None, max_length=200)
    detail: str | None = Field(default=None, max_length=500)  # e.g. "USER access for <user id>"
