"""R9's other half: a machine that stops sending heartbeats becomes DISCONNECTED by the clock alone,
with no write to announce it. This watcher notices machines whose last heartbeat has just crossed
the timeout and publishes ``MachineChanged`` for each, so live views (R35) show the transition.

One per API process; with several processes each publishes the same notifications, which is
harmless (events are "re-read this" notices).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from sqlmodel import col, select

from domain.bus.events import MachineChanged
from domain.context import DomainContext
from domain.store.models import Machine

log = logging.getLogger("deskfleet.presence")


async def went_silent(
    ctx: DomainContext, after: datetime, until: datetime
) -> list[tuple[str, str]]:
    """(machine id, environment id) of machines whose last heartbeat is in ``(after, until]``."""
    async with ctx.db.read() as session:
        rows = await session.exec(
            select(Machine.id, Machine.environment_id).where(
                col(Machine.last_heartbeat_at) > after, col(Machine.last_heartbeat_at) <= until
            )
        )
        return [(machine_id, environment_id) for machine_id, environment_id in rows.all()]


class PresenceWatcher:
    def __init__(self, ctx: DomainContext, interval: float | None = None) -> None:
        self.ctx = ctx
        timeout = ctx.settings.heartbeat_timeout_seconds
        self.interval = interval or ctx.settings.presence_check_seconds
        self._timeout = timedelta(seconds=timeout)
        self._checked_until: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> int:
        """Publish for machines that went silent since the last check; how many did."""
        cutoff = self.ctx.clock.now() - self._timeout
        since = self._checked_until or cutoff
        self._checked_until = cutoff
        if cutoff <= since:
            return 0
        silent = await went_silent(self.ctx, since, cutoff)
        for machine_id, environment_id in silent:
            await self.ctx.events.publish(MachineChanged(machine_id, environment_id))
        return len(silent)

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("presence check failed; retrying")
            await asyncio.sleep(self.interval)

    async def start(self) -> None:
        self._checked_until = self.ctx.clock.now() - self._timeout
        self._task = asyncio.create_task(self._run(), name="deskfleet-presence")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
