"""Webhooks (R43): endpoints, the events recorded for them, each delivery and its attempts."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

from domain.store.models.columns import UTCDateTime, new_id


class DeliveryStatus(str, Enum):
    PENDING = "PENDING"  # waiting for its next attempt
    SUCCEEDED = "SUCCEEDED"  # an attempt got a 2xx answer
    FAILED = "FAILED"  # no 2xx answer within the retry schedule (a day)


class WebhookEndpoint(SQLModel, table=True):
    __tablename__ = "webhook_endpoints"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    environment_id: str = Field(foreign_key="environments.id", index=True, ondelete="CASCADE")
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=1000)
    # The subscribed event types as a JSON list of quoted names: '["run.finished"]'.
    event_types: str = Field(max_length=1000)
    secret_sealed: str = Field(sa_column=Column(Text, nullable=False))  # Fernet (R20's vault)
    paused: bool = False
    disabled_reason: str | None = Field(default=None, max_length=500)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Thresholds of the time-based event types.
    offline_minutes: int = 30
    waiting_minutes: int = 30
    queue_depth: int = 100
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class WebhookEvent(SQLModel, table=True):
    """Something that happened, recorded in the transaction of the change (the outbox)."""

    __tablename__ = "webhook_events"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    environment_id: str = Field(foreign_key="environments.id", index=True, ondelete="CASCADE")
    type: str = Field(max_length=64)
    occurred_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    data: str = Field(sa_column=Column(Text, nullable=False))  # JSON


class WebhookDelivery(SQLModel, table=True):
    """One event for one endpoint: the message sent (and retried) under one webhook-id."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    event_id: str = Field(foreign_key="webhook_events.id", index=True, ondelete="CASCADE")
    endpoint_id: str = Field(foreign_key="webhook_endpoints.id", ondelete="CASCADE")
    status: DeliveryStatus = Field(
        sa_column=Column(SAEnum(DeliveryStatus, native_enum=False, length=16), nullable=False)
    )
    attempts: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # Retries stop being made after this (a day after the first attempt was due).
    give_up_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The instance sending it now, until then (a cluster sends each delivery from one instance).
    leased_by: str | None = Field(default=None, max_length=64)
    leased_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_delivery_at", "delivery_id", "at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    delivery_id: str = Field(foreign_key="webhook_deliveries.id", ondelete="CASCADE")
    at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    succeeded: bool
    response_status: int | None = None  # the HTTP status, None when no answer came
    duration_ms: int
    error: str | None = Field(default=None, max_length=500)


class WebhookAlert(SQLModel, table=True):
    """A time-based event already sent to an endpoint, while its condition lasts: a machine
    offline, a run waiting, a queue too deep. ``marker`` tells the episode (the machine's last
    heartbeat, ...): one event per episode."""

    __tablename__ = "webhook_alerts"

    endpoint_id: str = Field(
        foreign_key="webhook_endpoints.id", primary_key=True, ondelete="CASCADE", max_length=36
    )
    kind: str = Field(primary_key=True, max_length=64)
    subject_id: str = Field(primary_key=True, max_length=36)
    marker: str = Field(max_length=64)
