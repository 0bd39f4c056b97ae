"""What every use case needs: the database, the settings, the clock and the event bus."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.bus.events import EventBus, LocalEventBus
from domain.kernel.clock import Clock, SystemClock
from domain.kernel.credential_cache import CredentialCache
from domain.kernel.settings import Settings
from domain.store.db import Database


@dataclass
class DomainContext:
    db: Database
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    events: EventBus = field(default_factory=LocalEventBus)
    credentials: CredentialCache = field(default_factory=CredentialCache)
