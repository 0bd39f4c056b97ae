"""What every use case needs: the database, the settings, the clock and the event bus."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.clock import Clock, SystemClock
from domain.credential_cache import CredentialCache
from domain.db import Database
from domain.events import EventBus, LocalEventBus
from domain.settings import Settings


@dataclass
class DomainContext:
    db: Database
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    events: EventBus = field(default_factory=LocalEventBus)
    credentials: CredentialCache = field(default_factory=CredentialCache)
