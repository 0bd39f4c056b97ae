"""What every use case needs: the database, the settings, the clock, the event bus and the tracer."""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry.trace import Tracer

from domain.bus.events import EventBus, LocalEventBus
from domain.kernel.clock import Clock, SystemClock
from domain.kernel.credential_cache import CredentialCache
from domain.kernel.openid import OpenIDProvider
from domain.kernel.settings import Settings
from domain.kernel.traces import no_tracer
from domain.store.db import Database


@dataclass
class DomainContext:
    db: Database
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    events: EventBus = field(default_factory=LocalEventBus)
    credentials: CredentialCache = field(default_factory=CredentialCache)
    tracer: Tracer = field(default_factory=no_tracer)  # api/traces.py; a no-op unless configured
    openid: OpenIDProvider | None = None  # R44: when DESKFLEET_OIDC_ISSUER is set
