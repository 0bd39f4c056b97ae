"""Session-lock recommendations, "Desktop flows not running" (R31-R34)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import Column, Index, UniqueConstraint, text
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

from domain.store.models.columns import UTCDateTime, new_id
from domain.store.models.runs import SessionState


class RecommendationStatus(str, Enum):
    OPEN = "OPEN"  # it lists at least one run still blocked
    RESOLVED = "RESOLVED"  # no run is blocked any more (R33: an empty list resolves it)


class ItemOutcome(str, Enum):
    """Where an affected run stands in its recommendation."""

    BLOCKED = "BLOCKED"  # still waiting only for its user's locked / disconnected session
    STARTED = "STARTED"  # it was dispatched in time: it left the list (R33)
    ENDED = "ENDED"  # cancelled, timed out or otherwise ended while listed
    UNBLOCKED = "UNBLOCKED"  # still queued, but no longer held back by a user session
    FAILED_SESSION_EXISTS = "FAILED_SESSION_EXISTS"  # R33: still blocked when the window ended
    WITHDRAWN = "WITHDRAWN"  # the environment stopped receiving recommendations (R31)


class SessionRecommendation(SQLModel, table=True):
    """One per recipient (the connection owner, R32) and environment while OPEN."""

    __tablename__ = "session_recommendations"
    __table_args__ = (
        Index(
            "ux_session_recommendations_open",
            "environment_id",
            "recipient_id",
            unique=True,
            sqlite_where=text("status = 'OPEN'"),
            postgresql_where=text("status = 'OPEN'"),
        ),
        Index("ix_session_recommendations_recipient", "recipient_id", "status"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    environment_id: str = Field(foreign_key="environments.id", index=True, ondelete="CASCADE")
    recipient_id: str = Field(foreign_key="users.id", ondelete="CASCADE")
    status: RecommendationStatus = Field(
        sa_column=Column(SAEnum(RecommendationStatus, native_enum=False, length=16), nullable=False)
    )
    raised_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    window_ends_at: datetime = Field(sa_type=UTCDateTime, nullable=False)  # R33
    updated_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SessionRecommendationItem(SQLModel, table=True):
    """An affected run: where it is blocked, by whose session, and how it left the list."""

    __tablename__ = "session_recommendation_items"
    __table_args__ = (UniqueConstraint("recommendation_id", "run_id"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    recommendation_id: str = Field(
        foreign_key="session_recommendations.id", index=True, ondelete="CASCADE"
    )
    run_id: str = Field(foreign_key="flow_runs.id", index=True, ondelete="CASCADE")
    flow_id: str = Field(foreign_key="desktop_flows.id", ondelete="CASCADE")
    machine_id: str | None = Field(default=None, foreign_key="machines.id", ondelete="SET NULL")
    username: str = Field(max_length=256)  # the run's user (run_as)
    session_state: SessionState = Field(
        sa_column=Column(SAEnum(SessionState, native_enum=False, length=16), nullable=False)
    )
    blocked_since: datetime = Field(sa_type=UTCDateTime, nullable=False)
    outcome: ItemOutcome = Field(
        sa_column=Column(SAEnum(ItemOutcome, native_enum=False, length=32), nullable=False)
    )
    left_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # R34: when someone asked the machine to end this user's session.
    disconnect_requested_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
