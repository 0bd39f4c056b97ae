"""The fleet's rollups: what happened per environment and minute or hour, and how long each
machine's bots were busy per hour, kept as runs change so that statistics never read the runs."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from domain.store.models.columns import UTCDateTime

# Upper bounds (seconds) of the wait-time histogram's buckets; a last bucket holds the rest.
WAIT_BOUNDS: tuple[int, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)
WAIT_COLUMNS: tuple[str, ...] = tuple(f"waits_{i}" for i in range(len(WAIT_BOUNDS) + 1))

MINUTE = "MINUTE"
HOUR = "HOUR"


class FleetRollup(SQLModel, table=True):
    """One environment's minute or hour: counts of what happened in it, the wait times of the
    runs that started in it (a histogram), and samples of the gauges taken in it."""

    __tablename__ = "fleet_rollups"

    environment_id: str = Field(
        foreign_key="environments.id", primary_key=True, max_length=36, ondelete="CASCADE"
    )
    span: str = Field(primary_key=True, max_length=8)  # MINUTE or HOUR
    start: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    runs_started: int = 0
    runs_succeeded: int = 0
    runs_failed: int = 0
    runs_timed_out: int = 0
    runs_cancelled: int = 0
    wait_seconds_sum: float = 0.0
    waits_0: int = 0
    waits_1: int = 0
    waits_2: int = 0
    waits_3: int = 0
    waits_4: int = 0
    waits_5: int = 0
    waits_6: int = 0
    waits_7: int = 0
    waits_8: int = 0
    waits_9: int = 0
    waits_10: int = 0
    waits_11: int = 0
    # Sums of the gauges read at each fold (divided by FoldSamples.samples: their mean).
    queued_sum: int = 0
    queued_peak: int = 0
    running_sum: int = 0
    running_peak: int = 0
    connected_sum: int = 0
    busy_bot_seconds: float = 0.0


class MachineHour(SQLModel, table=True):
    """How many bot-seconds one machine spent running runs in one hour (its utilisation)."""

    __tablename__ = "machine_hours"

    machine_id: str = Field(
        foreign_key="machines.id", primary_key=True, max_length=36, ondelete="CASCADE"
    )
    start: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    environment_id: str = Field(
        foreign_key="environments.id", max_length=36, ondelete="CASCADE", index=True
    )
    busy_bot_seconds: float = 0.0


class FoldSamples(SQLModel, table=True):
    """How many times the gauges were read in a minute or hour, in every environment at once:
    an environment without a row there had nothing queued, running or connected."""

    __tablename__ = "fold_samples"

    span: str = Field(primary_key=True, max_length=8)
    start: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    samples: int = 0


class StatisticsFold(SQLModel, table=True):
    """Up to when the rollups hold what happened: each fold takes the time since, once."""

    __tablename__ = "statistics_folds"

    id: int = Field(default=1, primary_key=True)
    folded_until: datetime = Field(sa_type=UTCDateTime, nullable=False)
