"""What operators ask of a running instance: is it ready, and what does the fleet look like now."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, text
from sqlmodel import col, select

from domain.context import DomainContext
from domain.store import schema_version, storage
from domain.store.models import FlowRun, Machine, RunStatus

CHECK_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str]  # name -> "ok" or what is wrong

    @property
    def ready(self) -> bool:
        return all(v == "ok" for v in self.checks.values())


async def _check(name: str, probe: Awaitable[object]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return name, f"no answer within {CHECK_TIMEOUT_SECONDS:g}s"
    except Exception as exc:  # an unready dependency, whatever its failure
        return name, f"{type(exc).__name__}: {str(exc)[:200]}"
    return name, "ok"


async def _database(ctx: DomainContext) -> None:
    async with ctx.db.read() as session:
        await session.exec(select(text("1")))


async def _migrations(ctx: DomainContext) -> None:
    if not await schema_version.is_current(ctx.settings.database_url):
        raise RuntimeError("schema is not at the latest migration: run deskfleet db upgrade")


async def _storage(ctx: DomainContext) -> None:
    """Free while writes commit; after a write met a storage fault (full, read-only, ...), a
    probe write until one commits (which clears the fault, whoever's write it is)."""
    if ctx.db.storage_faults.last is None:
        return
    with storage.reported(ctx.settings.database_url):
        await storage.probe_write(ctx.db)


async def readiness(
    ctx: DomainContext, extra: dict[str, Awaitable[object]] | None = None
) -> Readiness:
    """/readyz: database reachable, migrations current, storage taking writes, plus any probes
    the app adds (broadcast)."""
    probes = {
        "database": _database(ctx),
        "migrations": _migrations(ctx),
        "storage": _storage(ctx),
        **(extra or {}),
    }
    results = await asyncio.gather(*(_check(n, p) for n, p in probes.items()))
    return Readiness(dict(results))


@dataclass(frozen=True)
class FleetFigures:
    queued_by_environment: dict[str, int] = field(default_factory=dict)
    runs_by_status: dict[str, int] = field(default_factory=dict)
    connected_machines: int = 0


async def fleet_figures(ctx: DomainContext) -> FleetFigures:
    """Set-based counts for /metrics: three statements whatever the fleet's size."""
    fresh = ctx.clock.now() - timedelta(seconds=ctx.settings.heartbeat_timeout_seconds)
    async with ctx.db.read() as session:
        queued = await session.exec(
            select(FlowRun.environment_id, func.count())
            .where(FlowRun.status == RunStatus.QUEUED)
            .group_by(col(FlowRun.environment_id))
        )
        by_status = await session.exec(
            select(col(FlowRun.status), func.count()).group_by(col(FlowRun.status))
        )
        connected = await session.exec(
            select(func.count()).select_from(Machine).where(col(Machine.last_heartbeat_at) >= fresh)
        )
        return FleetFigures(
            queued_by_environment={env: n for env, n in queued.all()},
            runs_by_status={str(status.value): n for status, n in by_status.all()},
            connected_machines=connected.one(),
        )
