"""What each live subscription (R35) may see, and how it stays current (R36).

Every stream follows one pattern (:func:`follow`): register an inbox on the event bus, read a
snapshot through the same domain functions as the HTTP queries (so the same visibility checks),
send it, then on each batch of relevant events re-read and send what changed. Events only say
"re-read this"; a resync (inbox overflow, bus reconnect) re-sends a whole snapshot. A lost message
therefore delays an update and never corrupts one. Machine status for those who see a filter's
whole scope (installation admins; environment admins of the filter's environment) is followed
once for all of them (:class:`_ScopeFeed`).

The caller is re-authenticated at every read (``who``): a token revoked, or a user deactivated,
while a subscription is open ends it at the next change.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import select

from domain.bus.events import (
    Event,
    GroupChanged,
    Inbox,
    MachineChanged,
    MachineWorkChanged,
    QueueChanged,
    RunChanged,
)
from domain.bus.live import PrincipalSource, Update, follow, shared_read
from domain.context import DomainContext
from domain.fleet import machines, maintenance
from domain.kernel.errors import NotFound
from domain.kernel.permissions import Role
from domain.kernel.principals import Principal, UserPrincipal
from domain.kernel.traces import continued
from domain.runs import runs, runtime
from domain.store.models import (
    FlowRun,
    Machine,
    MachineCommand,
    MachineStatus,
    RoleAssignment,
    RunPriority,
    RunStatus,
)

# --- machine status ---------------------------------------------------------------------------

SNAPSHOT_PAGE = 100


@dataclass(frozen=True)
class MachineStatusFilter:
    environment_id: str | None = None
    group_id: str | None = None
    machine_id: str | None = None


@dataclass(frozen=True)
class MachineLive:
    """What a fleet dashboard shows of one machine (R8, R9, R19, R35)."""

    machine_id: str
    name: str
    environment_id: str
    group_id: str | None
    status: MachineStatus
    maintenance: bool
    drained: bool
    key_action_required: bool
    running: int
    queued: int
    version: str


async def _visible_machines(
    ctx: DomainContext, principal: Principal, flt: MachineStatusFilter
) -> list[Machine]:
    if flt.machine_id is not None:
        # The `machine(id:)` query's check; invisible or gone is simply absent.
        try:
            machine = await machines.get_machine(ctx, principal, flt.machine_id)
        except NotFound:
            return []
        if flt.environment_id not in (None, machine.environment_id):
            return []
        if flt.group_id not in (None, machine.group_id):
            return []
        return [machine]
    # The `machines(filter:)` query's check, page after page.
    listing = machines.MachineFilter(environment_id=flt.environment_id, group_id=flt.group_id)
    found: list[Machine] = []
    after: str | None = None
    while True:
        page = await machines.list_machines(
            ctx, principal, listing, first=SNAPSHOT_PAGE, after=after
        )
        found.extend(page.items)
        if not page.has_next_page:
            return found
        after = page.end_cursor


# Reads the whole scope of a filter; its result goes only to who may see all of that scope.
_WHOLE_SCOPE = UserPrincipal(user_id="", token_id="", is_admin=True)


@dataclass(frozen=True)
class _ScopeView:
    machines: dict[str, MachineLive]
    environment_admins: frozenset[str]  # user ids (of the filter's environment)


async def _scope_view(ctx: DomainContext, flt: MachineStatusFilter) -> _ScopeView:
    view = await _machine_status_view(ctx, _WHOLE_SCOPE, flt)
    admins: frozenset[str] = frozenset()
    if flt.environment_id is not None:
        async with ctx.db.read() as session:
            rows = await session.exec(
                select(RoleAssignment.user_id).where(
                    RoleAssignment.environment_id == flt.environment_id,
                    RoleAssignment.role == Role.ENVIRONMENT_ADMIN,
                )
            )
            admins = frozenset(rows.all())
    return _ScopeView(view, admins)


async def machine_status_view(
    ctx: DomainContext, principal: Principal, flt: MachineStatusFilter
) -> dict[str, MachineLive]:
    """What ``principal`` sees. Installation admins, and environment admins watching their
    environment, see the filter's whole scope: one read of it serves all of them (the rest read
    through the `machines` query's own visibility)."""
    if isinstance(principal, UserPrincipal) and flt.machine_id is None:
        if principal.is_admin or flt.environment_id is not None:
            scope = await shared_read(
                ctx.events, ("machineStatus", flt), lambda: _scope_view(ctx, flt)
            )
            if principal.is_admin or principal.user_id in scope.environment_admins:
                return scope.machines
    return await _machine_status_view(ctx, principal, flt)


async def _machine_status_view(
    ctx: DomainContext, principal: Principal, flt: MachineStatusFilter
) -> dict[str, MachineLive]:
    found = await _visible_machines(ctx, principal, flt)
    if not found:
        return {}
    now = ctx.clock.now()
    timeout = ctx.settings.heartbeat_timeout_seconds
    counts = await machines.run_counts(ctx, [m.id for m in found])
    states = await maintenance.machine_maintenance(ctx, found)
    return {
        m.id: MachineLive(
            machine_id=m.id,
            name=m.name,
            environment_id=m.environment_id,
            group_id=m.group_id,
            status=machines.status_of(m, now, timeout),
            maintenance=state.maintenance,
            drained=state.drained,
            key_action_required=machines.key_action_required(m, now),
            running=count.running,
            queued=count.queued,
            version=m.runtime_version,
        )
        for m, count, state in zip(found, counts, states, strict=True)
    }


def _environment_of(event: Event) -> str | None:
    return getattr(event, "environment_id", None)


def machine_status_relevant(flt: MachineStatusFilter) -> Callable[[Event], bool]:
    def relevant(event: Event) -> bool:
        if not isinstance(event, MachineChanged | GroupChanged | QueueChanged | RunChanged):
            return False
        if flt.environment_id is not None and _environment_of(event) != flt.environment_id:
            return False
        if flt.machine_id is not None and isinstance(event, MachineChanged):
            return event.machine_id == flt.machine_id
        return True

    return relevant


class _ScopeFeed:
    """A filter's whole scope, followed once for every subscriber who may see all of it: one
    inbox, one read and one diff per change, published as numbered versions. A subscriber that
    missed a version gets the whole view instead (a snapshot), so none is ever out of date."""

    def __init__(self, ctx: DomainContext, flt: MachineStatusFilter) -> None:
        self.ctx = ctx
        self.flt = flt
        self.version = 0
        self.view = _ScopeView({}, frozenset())
        self.change: Update[MachineLive] = Update(snapshot=True, items=[])
        self.error: BaseException | None = None
        self.subscribers = 0
        self._whole: tuple[int, Update[MachineLive]] = (0, self.change)
        self._published = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inbox: Inbox | None = None

    def whole(self) -> Update[MachineLive]:
        """The view at the current version as a snapshot (one object per version)."""
        if self._whole[0] != self.version:
            self._whole = (self.version, Update(True, list(self.view.machines.values())))
        return self._whole[1]

    def published(self) -> Awaitable[bool]:
        # The event's own wait, not a coroutine around it: a frame less per waiting subscriber.
        return self._published.wait()

    def join(self) -> None:
        self.subscribers += 1
        if self._inbox is not None:
            self._inbox.listeners = self.subscribers
        if self._task is None:
            self._task = asyncio.create_task(self._follow(), name="deskfleet-scope-feed")

    def leave(self) -> None:
        self.subscribers -= 1
        if self._inbox is not None:
            self._inbox.listeners = self.subscribers
        if self.subscribers <= 0:
            _forget_feed(self)
            if self._task is not None:
                self._task.cancel()

    def _publish(self, view: _ScopeView, change: Update[MachineLive]) -> None:
        self.view = view
        self.change = change
        self.version += 1
        if change.snapshot:
            self._whole = (self.version, change)
        self._published.set()
        self._published.clear()  # the waiting subscribers are woken already

    async def _follow(self) -> None:
        relevant = machine_status_relevant(self.flt)
        try:
            with self.ctx.events.inbox() as inbox:  # before the read: nothing is missed
                self._inbox = inbox
                inbox.listeners = self.subscribers
                view = await _scope_view(self.ctx, self.flt)
                self._publish(view, Update(True, list(view.machines.values())))
                while True:
                    batch = await inbox.next_batch()
                    if batch.resync:
                        view = await _scope_view(self.ctx, self.flt)
                        self._publish(view, Update(True, list(view.machines.values())))
                        continue
                    if not any(relevant(event) for event in batch.events):
                        continue
                    view = await _scope_view(self.ctx, self.flt)
                    current = self.view.machines
                    changed = [m for key, m in view.machines.items() if current.get(key) != m]
                    removed = [key for key in current if key not in view.machines]
                    if (
                        changed
                        or removed
                        or view.environment_admins != self.view.environment_admins
                    ):
                        self._publish(view, Update(False, changed, removed))
        except Exception as exc:  # the subscribers end with it, as each would with its own read
            self.error = exc
            _forget_feed(self)
            self._published.set()


_FEEDS: weakref.WeakKeyDictionary[object, dict[MachineStatusFilter, _ScopeFeed]] = (
    weakref.WeakKeyDictionary()
)


def _feed(ctx: DomainContext, flt: MachineStatusFilter) -> _ScopeFeed:
    feeds = _FEEDS.setdefault(ctx.events, {})
    feed = feeds.get(flt)
    if feed is None:
        feed = feeds[flt] = _ScopeFeed(ctx, flt)
    return feed


def _forget_feed(feed: _ScopeFeed) -> None:
    feeds = _FEEDS.get(feed.ctx.events, {})
    if feeds.get(feed.flt) is feed:
        del feeds[feed.flt]


def _sees_whole_scope(principal: Principal, view: _ScopeView) -> bool:
    return isinstance(principal, UserPrincipal) and (
        principal.is_admin or principal.user_id in view.environment_admins
    )


async def machine_status(
    ctx: DomainContext, who: PrincipalSource, flt: MachineStatusFilter
) -> AsyncIterator[Update[MachineLive]]:
    """Installation admins, and environment admins watching their environment, follow the
    filter's shared scope feed while they still may see the whole scope; everyone else (and
    whoever stops being one) reads their own. The feed is followed here rather than in a
    generator of its own: each idle subscriber keeps one generator less (about 0.5 KiB)."""
    principal = await who()
    if isinstance(principal, UserPrincipal) and flt.machine_id is None:
        if principal.is_admin or flt.environment_id is not None:
            feed = _feed(ctx, flt)
            feed.join()
            try:
                seen = 0
                while True:
                    if feed.error is None and feed.version == seen:
                        await feed.published()
                    if feed.error is not None:
                        raise feed.error
                    version, change, view = feed.version, feed.change, feed.view
                    whole = feed.whole() if seen == 0 or version != seen + 1 else None
                    if not _sees_whole_scope(await who(), view):
                        break
                    seen = version
                    if whole is not None:
                        yield whole
                    elif change.items or change.removed or change.snapshot:
                        yield change
            finally:
                feed.leave()

    async def read() -> dict[str, MachineLive]:
        return await machine_status_view(ctx, await who(), flt)

    async for update in follow(ctx.events, read, machine_status_relevant(flt)):
        yield update


# --- queue depth ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueDepth:
    """One queue (a machine's or a group's) at a glance (R25, R35)."""

    machine_id: str | None
    group_id: str | None
    depth: int
    oldest_queued_at: datetime | None
    by_priority: tuple[tuple[RunPriority, int], ...]
    # Grows with the clock: shown, never compared (it alone is no change worth sending).
    oldest_wait_seconds: float | None = field(default=None, compare=False)


async def queue_depth_view(
    ctx: DomainContext, principal: Principal, *, machine_id: str | None, group_id: str | None
) -> QueueDepth:
    if machine_id is not None:
        entries = await runs.machine_queue(ctx, principal, machine_id)
    else:
        assert group_id is not None
        entries = await runs.group_queue(ctx, principal, group_id)
    oldest = min((e.run.queued_at for e in entries), default=None)
    per = Counter(e.run.priority for e in entries)
    return QueueDepth(
        machine_id=machine_id,
        group_id=group_id,
        depth=len(entries),
        oldest_queued_at=oldest,
        by_priority=tuple((p, per[p]) for p in RunPriority),
        oldest_wait_seconds=(ctx.clock.now() - oldest).total_seconds() if oldest else None,
    )


async def queue_depth(
    ctx: DomainContext, who: PrincipalSource, *, machine_id: str | None, group_id: str | None
) -> AsyncIterator[QueueDepth]:
    """The queue's depth now, then again each time it changes. Access is checked like the
    `machineQueue` / `groupQueue` queries (NotFound when the caller cannot see it)."""
    key = machine_id or group_id or ""

    async def read() -> dict[str, QueueDepth]:
        view = await queue_depth_view(ctx, await who(), machine_id=machine_id, group_id=group_id)
        return {key: view}

    def relevant(event: Event) -> bool:
        # Dispatch, maintenance and heartbeats change which runs wait, not only new runs.
        return isinstance(event, QueueChanged | RunChanged | MachineChanged | GroupChanged)

    async for update in follow(ctx.events, read, relevant):
        for item in update.items:
            yield item


# --- run updates ------------------------------------------------------------------------------

ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.DISPATCHED, RunStatus.RUNNING)


def run_matches(run: FlowRun, flt: runs.RunFilter) -> bool:
    """The `flowRuns(filter:)` conditions, for one run already read."""
    return flt.matches(run)


async def _active_runs(
    ctx: DomainContext, principal: Principal, flt: runs.RunFilter
) -> dict[str, FlowRun]:
    found: dict[str, FlowRun] = {}
    statuses = [flt.status] if flt.status is not None else list(ACTIVE_STATUSES)
    for status in statuses:
        listing = runs.RunFilter(**{**flt.__dict__, "status": status})
        after: str | None = None
        while True:
            page = await runs.list_runs(ctx, principal, listing, first=SNAPSHOT_PAGE, after=after)
            found.update((r.id, r) for r in page.items)
            if not page.has_next_page:
                break
            after = page.end_cursor
    return found


async def run_updates(
    ctx: DomainContext,
    who: PrincipalSource,
    *,
    run_id: str | None = None,
    flt: runs.RunFilter | None = None,
) -> AsyncIterator[Update[FlowRun]]:
    """One run, or the runs matching a filter: a snapshot (the run; or the filter's active runs),
    then every change to a matching run the caller may see (`run(id:)` checks), terminal ones
    included. A run that stops matching or becomes invisible is sent in ``removed``."""
    flt = flt or runs.RunFilter()
    shown: set[str] = set()
    waiting: dict[str, str] = {}  # the queued runs shown, by id: their environment

    async def snapshot() -> Update[FlowRun]:
        principal = await who()
        if run_id is not None:
            try:
                found = {run_id: await runs.get_run(ctx, principal, run_id)}
            except NotFound:
                found = {}
        else:
            found = await _active_runs(ctx, principal, flt)
        shown.clear()
        shown.update(found)
        waiting.clear()
        waiting.update(
            (r.id, r.environment_id) for r in found.values() if r.status is RunStatus.QUEUED
        )
        return Update(snapshot=True, items=list(found.values()))

    with ctx.events.inbox() as inbox:
        yield await snapshot()
        while True:
            batch = await inbox.next_batch()
            if batch.resync:
                yield await snapshot()
                continue
            events = dict.fromkeys(batch.events)
            ids = [
                e.run_id
                for e in events
                if isinstance(e, RunChanged)
                and (run_id is None or e.run_id == run_id)
                and flt.environment_id in (None, e.environment_id)
            ]
            # A queue that moved moves the place and the estimated start (R29, R42) of every
            # queued run shown in it, though none of them changed.
            moved = {e.environment_id for e in events if isinstance(e, QueueChanged)}
            ids += [i for i, env in waiting.items() if env in moved and i not in ids]
            if not ids:
                continue
            principal = await who()
            changed: list[FlowRun] = []
            removed: list[str] = []
            for changed_id in ids:
                try:
                    run = await runs.get_run(ctx, principal, changed_id)
                except NotFound:
                    run = None
                waiting.pop(changed_id, None)
                if run is not None and run_matches(run, flt):
                    shown.add(run.id)
                    changed.append(run)
                    if run.status is RunStatus.QUEUED:
                        waiting[run.id] = run.environment_id
                elif changed_id in shown:
                    shown.discard(changed_id)
                    removed.append(changed_id)
            if changed or removed:
                yield Update(snapshot=False, items=changed, removed=removed)


# --- the machine runtime's work ---------------------------------------------------------------


@dataclass(frozen=True)
class MachineWork:
    """Everything the runtime must act on now: its assignments and its pending commands."""

    assignments: list[runtime.Assignment]
    commands: list[MachineCommand]

    def fingerprint(self) -> Hashable:
        return (
            tuple((a.run.id, a.run.attempt) for a in self.assignments),
            tuple(c.id for c in self.commands),
        )


async def machine_work_view(ctx: DomainContext, principal: Principal) -> MachineWork:
    return MachineWork(
        assignments=await runtime.assignments(ctx, principal),
        commands=await runtime.pending_commands(ctx, principal),
    )


async def machine_work(ctx: DomainContext, who: PrincipalSource) -> AsyncIterator[MachineWork]:
    """For a machine key: the current assignments and commands, then the whole list again each
    time it changes (the runtime acts on what is new to it, by run id and attempt)."""
    principal = await who()
    machine_id = getattr(principal, "machine_id", None)
    last: Hashable = None
    with ctx.events.inbox(machine_id) as inbox:
        resync = True
        while True:
            if resync:
                work = await machine_work_view(ctx, await who())
                last = work.fingerprint()
                yield work
            batch = await inbox.next_batch()
            resync = batch.resync
            if resync:
                continue
            if not any(
                isinstance(e, MachineWorkChanged | MachineChanged) and e.machine_id == machine_id
                for e in batch.events
            ):
                continue
            # The dispatches traced among them end here, with the list sent to the machine (the
            # subscription resumes this generator once it has sent what it yielded).
            dispatched = [
                e.traceparent
                for e in batch.events
                if isinstance(e, MachineWorkChanged)
                and e.machine_id == machine_id
                and e.traceparent is not None
            ]
            attributes = {"deskfleet.machine.id": machine_id or ""}
            with continued(ctx.tracer, "machine assignments sent", dispatched, attributes):
                work = await machine_work_view(ctx, await who())
                if work.fingerprint() != last:
                    last = work.fingerprint()
                    yield work
