"""What every use case needs: the database, the settings, the clock, the event bus and the tracer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
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
    # Set while this process's dispatcher runs (domain/dispatch/dispatcher.py): claims at once
    # what an environment's queue allows and answers the ids of the runs it dispatched. A trigger
    # with nothing queued ahead of its run calls it, so a free bot gets the run in the trigger's
    # own request instead of at the dispatcher's next pass.
    dispatch_now: Callable[[str], Awaitable[Collection[str]]] | None = None
