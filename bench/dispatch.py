"""`dispatch_sqlite` / `dispatch_pg`: runs per second from trigger to DISPATCHED.

Subject: the real domain, in process. Simulated machines are registered, given two unattended bots
each and heartbeat through the domain (grouped by R11's group limit, one connection per group);
runs are triggered one after another through ``domain.runs.runs.trigger_run`` while the app's own
``domain.dispatch.dispatcher.Dispatcher`` task dispatches them. Runs go in rounds of at most the free bots:
a round is timed from its first trigger to its last run DISPATCHED; between rounds (not timed)
every simulated machine reports its runs finished through ``domain.runs.runtime``, freeing its bots.
A first, untimed round of one run per connection warms the dispatcher up (its connections and
compiled statements), as the baseline connects before its clock starts.

Baseline: on a database of the same schema and fleet, a raw driver loop (aiosqlite / asyncpg)
doing, per run, one transaction with one INSERT of the run and one UPDATE to DISPATCHED.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import median

from cryptography.fernet import Fernet
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from bench.figures import Figure, Sizes, turns
from domain.connections import connections
from domain.context import DomainContext
from domain.dispatch.dispatcher import Dispatched, Dispatcher
from domain.fleet import allocation, environments, groups, heartbeats, machines
from domain.identity import bootstrap, identity
from domain.kernel.principals import Principal
from domain.kernel.settings import Settings
from domain.runs import flows, runs, runtime
from domain.store import schema_version
from domain.store.db import Database
from domain.store.models import FlowRun, RunMode, RunStatus

RUNTIME = "2.8.73.21119"
EDITION = "Windows 11 Pro"
BOTS = 2
TARGET = 0.5
SECRET_KEY = Fernet.generate_key().decode()


@dataclass
class SimMachine:
    id: str
    key: str
    principal: Principal


@dataclass
class Fleet:
    """The fleet's ids and credentials, and a domain context on one copy of its database."""

    ctx: DomainContext
    admin: Principal
    admin_token: str
    environment_id: str
    flow_id: str
    connection_ids: list[str]
    machines: list[SimMachine]
    group_ids: list[str]
    admin_id: str

    async def reopen(self, database_url: str, tmp: Path) -> Fleet:
        """The same fleet on a copy of its database."""
        ctx = DomainContext(db=Database(database_url), settings=_settings(database_url, tmp))
        admin = await identity.authenticate(ctx, self.admin_token)
        sims = [
            SimMachine(m.id, m.key, await identity.authenticate(ctx, m.key)) for m in self.machines
        ]
        return dataclasses.replace(self, ctx=ctx, admin=admin, machines=sims)


def _settings(database_url: str, tmp: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=SECRET_KEY,  # the same for every copy of the fleet's database
        secret_key_file=tmp / "bench.secret",
        heartbeat_timeout_seconds=3600,  # the simulated machines heartbeat between rounds
        # They report runs finished without confirming them (R28) between rounds; a slow host
        # (or a profiler) must not see them put back in the queue meanwhile.
        dispatch_confirm_timeout_seconds=3600,
    )


async def build_fleet(database_url: str, tmp: Path, n_machines: int) -> Fleet:
    """The fleet, made through the domain's use cases (as the API would)."""
    await schema_version.upgrade(database_url)
    settings = _settings(database_url, tmp)
    ctx = DomainContext(db=Database(database_url), settings=settings)
    issued = await bootstrap.first_run(ctx)
    assert issued is not None, "the dispatch benchmark needs an empty database"
    admin = await identity.authenticate(ctx, issued.secret)
    environment_id = (await environments.list_environments(ctx, admin))[0].id
    await environments.update_environment(
        ctx, admin, environment_id, unattended_capacity=n_machines * BOTS, max_queue_seconds=86400
    )
    flow = await flows.create_flow(ctx, admin, environment_id=environment_id, name="bench flow")
    per_group = settings.group_machine_limit
    group_ids: list[str] = []
    connection_ids: list[str] = []
    sims: list[SimMachine] = []
    for m in range(n_machines):
        if m % per_group == 0:
            group = await groups.create_group(
                ctx, admin, environment_id=environment_id, name=f"bench group {m // per_group}"
            )
            group_ids.append(group.id)
            connection = await connections.create_connection(
                ctx,
                admin,
                name=f"bench connection {m // per_group}",
                target=connections.Target(group_id=group.id),
                windows_username="bench-robot",
                password="correct horse battery staple",
            )
            connection_ids.append(connection.id)
        registered = await machines.register_machine(
            ctx,
            admin,
            environment_id=environment_id,
            name=f"sim-{m:04d}",
            runtime_version=RUNTIME,
            os_edition=EDITION,
        )
        machine_id = registered.machine.id
        await groups.add_machine(ctx, admin, group_ids[-1], machine_id)
        await allocation.allocate_unattended_bots(ctx, admin, machine_id, BOTS)
        principal = await identity.authenticate(ctx, registered.machine_key)
        sims.append(SimMachine(machine_id, registered.machine_key, principal))
    fleet = Fleet(
        ctx=ctx,
        admin=admin,
        admin_token=issued.secret,
        environment_id=environment_id,
        flow_id=flow.id,
        connection_ids=connection_ids,
        machines=sims,
        group_ids=group_ids,
        admin_id=admin.user_id,  # type: ignore[attr-defined]
    )
    await heartbeat_all(fleet)
    return fleet


async def heartbeat_all(fleet: Fleet) -> None:
    for sim in fleet.machines:
        await heartbeats.heartbeat(
            fleet.ctx, sim.principal, runtime_version=RUNTIME, os_edition=EDITION
        )


async def finish_all(fleet: Fleet) -> int:
    """Every simulated machine reports its assignments finished (frees the bots)."""
    done = 0
    for sim in fleet.machines:
        for assignment in await runtime.assignments(fleet.ctx, sim.principal):
            await runtime.report_run_finished(
                fleet.ctx,
                sim.principal,
                assignment.run.id,
                assignment.run.attempt,
                outcome=RunStatus.SUCCEEDED,
            )
            done += 1
    return done


async def _count(ctx: DomainContext, status: RunStatus) -> int:
    async with ctx.db.read() as session:
        result = await session.exec(
            select(func.count()).select_from(FlowRun).where(col(FlowRun.status) == status)
        )
        return int(result.one())


def rounds_of(total: int, capacity: int) -> list[int]:
    sizes = []
    while total > 0:
        sizes.append(min(total, capacity))
        total -= sizes[-1]
    return sizes


async def subject_rate(template: Fleet, database_url: str, tmp: Path, sizes: Sizes) -> float:
    fleet = await template.reopen(database_url, tmp)
    await heartbeat_all(fleet)
    ctx = fleet.ctx
    # The dispatcher says what it dispatched once each pass has committed (the app's dispatch
    # latency metric listens the same way): the clock stops when the round is all out, without
    # polling the database from the same event loop while the dispatcher works.
    dispatched = [0]
    all_out = asyncio.Event()
    goal = [0]

    def on_dispatched(batch: list[Dispatched]) -> None:
        dispatched[0] += len(batch)
        if dispatched[0] >= goal[0]:
            all_out.set()

    async def one_round(size: int) -> float:
        """``size`` runs triggered and all DISPATCHED: the seconds that took. Then (not timed)
        the database agrees, and the machines finish their runs and say they are alive."""
        goal[0] = dispatched[0] + size
        all_out.clear()
        started = time.perf_counter()
        for i in range(size):
            await runs.trigger_run(
                ctx,
                fleet.admin,
                flow_id=fleet.flow_id,
                connection_id=fleet.connection_ids[i % len(fleet.connection_ids)],
                mode=RunMode.UNATTENDED,
            )
        try:
            async with asyncio.timeout(120):
                await all_out.wait()
        except TimeoutError:
            raise RuntimeError(
                "dispatch benchmark: runs were not all dispatched in 120 s"
            ) from None
        took = time.perf_counter() - started
        in_database = await _count(ctx, RunStatus.DISPATCHED)
        if in_database != size:
            raise RuntimeError(f"dispatch benchmark: {in_database} of {size} dispatched")
        await finish_all(fleet)
        await heartbeat_all(fleet)
        return took

    dispatcher = Dispatcher(ctx, on_dispatched=on_dispatched)
    await dispatcher.start()
    elapsed = 0.0
    triggered = 0
    try:
        # Not timed, as the baseline's connecting is not: the dispatcher's first pass opens its
        # connections and compiles its statements (10-15 ms, once per process in a server).
        await one_round(len(fleet.connection_ids))
        for size in rounds_of(sizes.dispatch_runs, sizes.dispatch_machines * BOTS):
            elapsed += await one_round(size)
            triggered += size
    finally:
        await dispatcher.stop()
        await ctx.db.dispose()
    return triggered / elapsed


# --- the baseline: a raw driver loop ------------------------------------------------------------


_INSERT = (
    "INSERT INTO flow_runs (id, environment_id, flow_id, connection_id, target_group_id, run_as, "
    "connection_owner_id, triggered_by_id, mode, priority, priority_rank, top_rank, status, "
    "queued_at, attempt, created_at, retry_attempt) VALUES ({})"
)
_UPDATE = (
    "UPDATE flow_runs SET status = {0}, machine_id = {1}, attempt = attempt + 1, "
    "dispatched_at = {2} WHERE id = {3} AND status = {4}"
)


def _placeholders(style: str, n: int) -> list[str]:
    return ["?"] * n if style == "qmark" else [f"${i + 1}" for i in range(n)]


def _rows(fleet: Fleet, n: int) -> list[tuple[list[object], list[object]]]:
    """Per run: the INSERT's and the UPDATE's parameters (datetimes filled in by the driver)."""
    work = []
    for i in range(n):
        run_id = str(uuid.uuid4())
        group = i % len(fleet.group_ids)
        machine = fleet.machines[i % len(fleet.machines)]
        insert = [
            run_id,
            fleet.environment_id,
            fleet.flow_id,
            fleet.connection_ids[group],
            fleet.group_ids[group],
            "bench-robot",
            fleet.admin_id,
            fleet.admin_id,
            RunMode.UNATTENDED.value,
            "NORMAL",
            1,
            0,
            RunStatus.QUEUED.value,
            None,  # queued_at
            0,
            None,  # created_at
            1,  # retry_attempt (R40): a first run
        ]
        update = [RunStatus.DISPATCHED.value, machine.id, None, run_id, RunStatus.QUEUED.value]
        work.append((insert, update))
    return work


async def _sqlite_loop(path: str, work: list[tuple[list[object], list[object]]]) -> float:
    import aiosqlite

    insert = _INSERT.format(", ".join(_placeholders("qmark", 17)))
    update = _UPDATE.format(*_placeholders("qmark", 5))
    async with aiosqlite.connect(path, isolation_level=None) as db:
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
            await db.execute(f"PRAGMA {pragma}")
        started = time.perf_counter()
        for ins, upd in work:
            now = datetime.now(UTC).isoformat(sep=" ")
            ins[13] = ins[15] = now
            upd[2] = now
            await db.execute("BEGIN IMMEDIATE")
            await db.execute(insert, ins)
            cursor = await db.execute(update, upd)
            assert cursor.rowcount == 1
            await db.execute("COMMIT")
        return len(work) / (time.perf_counter() - started)


async def _postgres_loop(dsn: str, work: list[tuple[list[object], list[object]]]) -> float:
    import asyncpg

    insert = _INSERT.format(", ".join(_placeholders("numeric", 17)))
    update = _UPDATE.format(*_placeholders("numeric", 5))
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        for ins, upd in work:
            now = datetime.now(UTC)
            ins[13] = ins[15] = now
            upd[2] = now
            async with conn.transaction():
                await conn.execute(insert, *ins)
                status = await conn.execute(update, *upd)
                assert status == "UPDATE 1", status
        return len(work) / (time.perf_counter() - started)
    finally:
        await conn.close()


async def baseline_rate(fleet: Fleet, database_url: str, sizes: Sizes) -> float:
    work = _rows(fleet, sizes.dispatch_runs)
    parsed = make_url(database_url)
    if parsed.get_backend_name() == "sqlite":
        return await _sqlite_loop(str(parsed.database), work)
    return await _postgres_loop(_plain_dsn(database_url), work)


# --- the suites -------------------------------------------------------------------------------


def _plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def _pg_database(url: str, template: str | None = None) -> AsyncIterator[str]:
    """A fresh database on the server of ``url`` (a copy of ``template``), dropped afterwards."""
    import asyncpg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin_dsn = make_url(_plain_dsn(url)).set(database="postgres")
    admin = await asyncpg.connect(admin_dsn.render_as_string(hide_password=False))
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await admin.close()
    try:
        yield make_url(_plain_dsn(url)).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(admin_dsn.render_as_string(hide_password=False))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _figure(name: str, value: float, baseline: float) -> Figure:
    return Figure(name, value, baseline, f">={TARGET}", lambda r: r >= TARGET, unit=" runs/s")


async def _template(database_url: str, tmp: Path, sizes: Sizes) -> Fleet:
    """The fleet, made once; every measurement runs on a fresh copy of its database."""
    fleet = await build_fleet(database_url, tmp, sizes.dispatch_machines)
    await fleet.ctx.db.dispose()
    return fleet


def _sqlite_copy(template: Path, copy: Path) -> str:
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{template}{suffix}")
        if source.exists():
            shutil.copyfile(source, f"{copy}{suffix}")
    return f"sqlite:///{copy}"


def dispatch_sqlite(tmp: Path, sizes: Sizes) -> list[Figure]:
    template = tmp / "dispatch-template.db"
    fleet = asyncio.run(_template(f"sqlite:///{template}", tmp, sizes))
    values, baselines = [], []
    for r in range(sizes.rounds):
        for who in turns(r):
            if who == "subject":
                url = _sqlite_copy(template, tmp / f"dispatch-{r}.db")
                values.append(asyncio.run(subject_rate(fleet, url, tmp, sizes)))
            else:
                url = _sqlite_copy(template, tmp / f"dispatch-raw-{r}.db")
                baselines.append(asyncio.run(baseline_rate(fleet, url, sizes)))
    return [_figure("dispatch_sqlite", median(values), median(baselines))]


async def _pg_rounds(url: str, tmp: Path, sizes: Sizes) -> tuple[list[float], list[float]]:
    values, baselines = [], []
    async with _pg_database(url) as template_url:
        fleet = await _template(template_url, tmp, sizes)
        template = make_url(template_url).database
        for r in range(sizes.rounds):
            for who in turns(r):
                async with _pg_database(url, template=template) as copy:
                    if who == "subject":
                        values.append(await subject_rate(fleet, copy, tmp, sizes))
                    else:
                        baselines.append(await baseline_rate(fleet, copy, sizes))
    return values, baselines


def dispatch_pg(tmp: Path, sizes: Sizes) -> list[Figure]:
    url = os.environ.get("DESKFLEET_BENCH_DATABASE_URL") or os.environ.get(
        "DESKFLEET_TEST_DATABASE_URL"
    )
    if not url:
        return [
            Figure.skipped_because(
                "dispatch_pg",
                f">={TARGET}",
                "no PostgreSQL: set DESKFLEET_TEST_DATABASE_URL (or DESKFLEET_BENCH_DATABASE_URL)",
            )
        ]
    values, baselines = asyncio.run(_pg_rounds(url, tmp, sizes))
    return [_figure("dispatch_pg", median(values), median(baselines))]
