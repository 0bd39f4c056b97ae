"""What R46 remembers of a creating mutation sent with an idempotency key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from domain.store.models.columns import UTCDateTime


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    # One record per caller, mutation and key: a second request meets the first one's here.
    caller_id: str = Field(primary_key=True, max_length=36)  # the user who sent it
    mutation: str = Field(primary_key=True, max_length=64)  # e.g. "triggerRun"
    key: str = Field(primary_key=True, max_length=255)
    fingerprint: str = Field(max_length=64)  # of the request's input
    result_id: str = Field(max_length=36)  # what the first request created
    # What the first answer showed that is stored nowhere else, sealed (a machine key, R5).
    secret: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
