"""`eta_error`: how far R42's estimated start is from the real one.

A simulated fleet (one group of machines, flows of varied lengths, runs arriving at random at
about the fleet's capacity, so queues build and drain) is played on a clock that jumps from one
event to the next: a run triggered, a run ended. Every use case is the domain's own, on SQLite:
a run is triggered, its estimate read at once (as `FlowRun.estimatedStartAt` answers it), the
dispatcher passes, the machine confirms what it was given, and ends it when its length is up.

The figure is the median, over the runs that had to wait, of |estimated - actual start| divided
by the actual wait; target <= 0.25. The baseline is the estimate a queue gives without R42 (its
place in the queue times the typical run length, over the number of bots), measured on the same
runs, printed to show what the queue played forward buys.
"""

from __future__ import annotations

import asyncio
import heapq
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from statistics import median

from bench.figures import Figure, Sizes
from domain.connections import connections
from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once
from domain.fleet import allocation, environments, groups, heartbeats, machines
from domain.identity import bootstrap, identity
from domain.kernel.clock import ManualClock
from domain.kernel.principals import Principal
from domain.kernel.settings import Settings
from domain.runs import flows, runs, runtime
from domain.store import schema_version
from domain.store.db import Database
from domain.store.models import RunMode, RunStatus

TARGET = 0.25
FLOW_SECONDS = (30.0, 60.0, 120.0, 300.0, 600.0)  # each flow's typical run
SPREAD = 0.3  # a run lasts its flow's typical length, give or take up to 30 %
MACHINES, BOTS = 4, 2
LOAD = 0.95  # arrivals as a share of what the bots can carry
WARM_UP = 40  # runs before measuring: each flow has ended a few, as on a fleet in service
SEED = 42  # the same fleet and arrivals in every run: a verdict that depends on the code only


@dataclass
class Waited:
    queued: datetime
    estimate: datetime | None
    naive: datetime
    started: datetime | None = None


@dataclass
class Fleet:
    ctx: DomainContext
    clock: ManualClock
    admin: Principal
    connection_id: str
    flow_ids: list[str]
    machines: dict[str, Principal]


async def _fleet(tmp: Path) -> Fleet:
    database_url = f"sqlite+aiosqlite:///{tmp / 'eta.db'}"
    await schema_version.upgrade(database_url)
    clock = ManualClock()
    settings = Settings(
        database_url=database_url,
        secret_key_file=tmp / "eta.secret",
        # The clock jumps by up to minutes: machines heartbeat only at the start, and confirm
        # at once.
        heartbeat_timeout_seconds=10**7,
        dispatch_confirm_timeout_seconds=10**7,
    )
    ctx = DomainContext(db=Database(database_url), settings=settings, clock=clock)
    issued = await bootstrap.first_run(ctx)
    assert issued is not None, "the eta benchmark needs an empty database"
    admin = await identity.authenticate(ctx, issued.secret)
    environment_id = (await environments.list_environments(ctx, admin))[0].id
    await environments.update_environment(
        ctx, admin, environment_id, unattended_capacity=MACHINES * BOTS, max_queue_seconds=86400
    )
    group = await groups.create_group(ctx, admin, environment_id=environment_id, name="eta")
    connection = await connections.create_connection(
        ctx,
        admin,
        name="eta",
        target=connections.Target(group_id=group.id),
        windows_username="eta-robot",
        password="correct horse battery staple",
    )
    flow_ids = [
        (await flows.create_flow(ctx, admin, environment_id=environment_id, name=f"{s:g} s")).id
        for s in FLOW_SECONDS
    ]
    principals: dict[str, Principal] = {}
    for m in range(MACHINES):
        registered = await machines.register_machine(
            ctx,
            admin,
            environment_id=environment_id,
            name=f"eta-{m}",
            runtime_version="2.50.0.1",
            os_edition="Windows 11 Enterprise",
        )
        machine_id = registered.machine.id
        await groups.add_machine(ctx, admin, group.id, machine_id)
        await allocation.allocate_unattended_bots(ctx, admin, machine_id, BOTS)
        principal = await identity.authenticate(ctx, registered.machine_key)
        await heartbeats.heartbeat(
            ctx, principal, runtime_version="2.50.0.1", os_edition="Windows 11 Enterprise"
        )
        principals[machine_id] = principal
    return Fleet(ctx, clock, admin, connection.id, flow_ids, principals)


async def _play(fleet: Fleet, measured_runs: int) -> list[Waited]:
    rng = random.Random(SEED)
    typical = sum(FLOW_SECONDS) / len(FLOW_SECONDS)
    rate = LOAD * MACHINES * BOTS / typical  # arrivals per second
    ctx, clock = fleet.ctx, fleet.clock
    ends: list[tuple[datetime, str, str]] = []  # (when, run id, machine id)
    lengths: dict[str, float] = {}
    seen: dict[str, Waited] = {}
    queued: list[str] = []  # in arrival order: every run has NORMAL priority (R25)
    next_arrival = clock.now() + timedelta(seconds=rng.expovariate(rate))
    triggered = 0
    while triggered < WARM_UP + measured_runs or ends:
        if triggered < WARM_UP + measured_runs and (not ends or next_arrival <= ends[0][0]):
            clock.advance(next_arrival - clock.now())
            next_arrival += timedelta(seconds=rng.expovariate(rate))
            flow = rng.randrange(len(FLOW_SECONDS))
            run = await runs.trigger_run(
                ctx,
                fleet.admin,
                flow_id=fleet.flow_ids[flow],
                connection_id=fleet.connection_id,
                mode=RunMode.UNATTENDED,
            )
            lengths[run.id] = FLOW_SECONDS[flow] * rng.uniform(1 - SPREAD, 1 + SPREAD)
            (wait,) = await runs.wait_states(ctx, [run])
            assert wait is not None
            naive = clock.now() + timedelta(seconds=len(queued) * typical / (MACHINES * BOTS))
            if triggered >= WARM_UP:
                seen[run.id] = Waited(run.queued_at, wait.estimate.at, naive)
            queued.append(run.id)
            triggered += 1
        else:
            when, run_id, machine_id = heapq.heappop(ends)
            clock.advance(when - clock.now())
            principal = fleet.machines[machine_id]
            ended = await runtime.report_run_finished(
                ctx, principal, run_id, 1, outcome=RunStatus.SUCCEEDED
            )
            assert ended.status is RunStatus.SUCCEEDED
        for dispatched in await dispatch_once(ctx):
            principal = fleet.machines[dispatched.machine_id]
            await runtime.confirm_run_started(ctx, principal, dispatched.run_id, 1)
            queued.remove(dispatched.run_id)
            if dispatched.run_id in seen:
                seen[dispatched.run_id].started = clock.now()
            end = clock.now() + timedelta(seconds=lengths[dispatched.run_id])
            heapq.heappush(ends, (end, dispatched.run_id, dispatched.machine_id))
    return list(seen.values())


def _error(estimate: datetime | None, run: Waited) -> float:
    assert run.started is not None
    if estimate is None:
        return float("inf")  # no estimate counts as a miss, never as a hit
    waited = (run.started - run.queued).total_seconds()
    return abs((estimate - run.started).total_seconds()) / waited


async def _measure(tmp: Path, measured_runs: int) -> tuple[float, float, int, int]:
    fleet = await _fleet(tmp)
    try:
        played = await _play(fleet, measured_runs)
    finally:
        await fleet.ctx.db.dispose()
    waited = [r for r in played if r.started is not None and r.started > r.queued]
    value = median(_error(r.estimate, r) for r in waited)
    baseline = median(_error(r.naive, r) for r in waited)
    unknown = sum(r.estimate is None for r in waited)
    return value, baseline, len(waited), unknown


def eta_error(tmp: Path, sizes: Sizes) -> list[Figure]:
    value, baseline, waited, unknown = asyncio.run(_measure(tmp, sizes.eta_runs))
    return [
        Figure(
            "eta_error",
            value,
            baseline,
            f"value<={TARGET:g}",
            lambda v: v <= TARGET,
            target_on_value=True,
            detail={
                "runs": sizes.eta_runs,
                "runs_that_waited": waited,
                "without_estimate": unknown,
                "machines": MACHINES,
                "bots_per_machine": BOTS,
            },
        )
    ]
