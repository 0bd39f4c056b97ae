"""Environments: where machines are registered and flows run (R1, R2, R4, R27, R31)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import Column
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

from domain.store.models.columns import UTCDateTime, new_id

DEFAULT_MAX_QUEUE_SECONDS = 12 * 60 * 60  # R27
DEFAULT_RECOMMENDATION_WINDOW_SECONDS = 10 * 60  # R45


class EnvironmentKind(str, Enum):
    DEFAULT = "DEFAULT"
    PRODUCTION = "PRODUCTION"
    SANDBOX = "SANDBOX"
    DEVELOPER = "DEVELOPER"
    TEAMS = "TEAMS"


class Environment(SQLModel, table=True):
    __tablename__ = "environments"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    name: str = Field(max_length=100, unique=True)
    kind: EnvironmentKind = Field(
        sa_column=Column(SAEnum(EnvironmentKind, native_enum=False, length=16), nullable=False)
    )
    flow_extensions_version: str = Field(max_length=64)
    restrict_registration: bool = False  # R4
    max_queue_seconds: int = DEFAULT_MAX_QUEUE_SECONDS  # R27
    session_recommendations: bool = False  # R31
    recommendation_window_seconds: int = DEFAULT_RECOMMENDATION_WINDOW_SECONDS  # R45
    # R41: machines whose runtime is older get no new run; None: any version will do.
    min_runtime_version: str | None = Field(default=None, max_length=64)
    # R40: the retry policy of its flows that have none of their own, as JSON
    # (domain/runs/retries.py); None: runs are not retried.
    retry_policy: str | None = Field(default=None, max_length=2000)
    unattended_capacity: int = 0  # R24: bots that may be allocated to its machines
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
