"""What every use case needs: the database, the settings and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.clock import Clock, SystemClock
from domain.db import Database
from domain.settings import Settings


@dataclass
class DomainContext:
    db: Database
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
