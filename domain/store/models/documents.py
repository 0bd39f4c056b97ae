"""Trusted documents: the GraphQL documents an installation accepts when it accepts no others."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

from domain.store.models.columns import UTCDateTime


class TrustedDocument(SQLModel, table=True):
    __tablename__ = "trusted_documents"

    sha256: str = Field(primary_key=True, max_length=64)  # of the document's exact text
    document: str = Field(sa_column=Column(Text, nullable=False))
    source: str = Field(max_length=300)  # where it was registered from, e.g. a file name
    registered_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
