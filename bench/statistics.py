"""`stats_query`: `fleetStatistics` over a short history and over one a hundred times longer.

Two SQLite databases hold the same fleet (50 machines in 5 groups) and the last 7 days of runs:
``stats_runs / 100`` (at least 10,000) in one (the baseline, about one a minute), ``stats_runs`` in the other (the
subject; a million at full size, about a hundred a minute), each machine taking every 50th. Each history is written straight to its tables,
runs and rollups alike (the rollups as the fold would have kept them: domain/statistics), since
folding a year of runs one interval at a time would take longer than the measurement. The query
is the dashboard's trends page: the last 7 days in hours, with the 50 machines' utilisation,
called through the domain as the resolver calls it. Each round times both, in turns
(bench/figures.py), each the median of several calls.

The figure is the subject's median time over the baseline's: the statistics read the rollups of
the range asked, never the runs, so the ratio stays near 1 however long the history; target
<= 1.5.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import select

from bench.figures import Figure, Sizes, turns
from bench.seed import seed
from domain.context import DomainContext
from domain.kernel.principals import UserPrincipal
from domain.kernel.settings import Settings
from domain.statistics import trends
from domain.statistics.rollups import span_start, wait_column
from domain.store.db import Database
from domain.store.models import User
from domain.store.models.statistics import HOUR, MINUTE, WAIT_COLUMNS

TARGET = 1.5
CALLS = 11  # a round's measurement: the median of this many calls
WINDOW = timedelta(days=7)
SEED = 7
# Each rollup's timed-out and cancelled runs, queued and running sums and peaks, connected sum.
GAUGES = (0, 0, 3, 3, 5, 5, 50)


@dataclass
class History:
    ctx: DomainContext
    admin: UserPrincipal
    environment_id: str
    now: datetime


def _text(instant: datetime) -> str:
    """A UTC instant as SQLite holds it (domain/store/models/columns.py)."""
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _write_history(path: Path, runs: int, now: datetime) -> None:
    """``runs`` runs ending before ``now``, and the rollups the fold would have made of them."""
    db = sqlite3.connect(path)
    try:
        environment_id, flow_id, owner_id = db.execute(
            "SELECT environment_id, id, owner_id FROM desktop_flows"
        ).fetchone()
        machines = [m for (m,) in db.execute("SELECT id FROM machines ORDER BY name")]
        rng = random.Random(SEED)
        rollups: dict[tuple[str, datetime], dict[str, float]] = defaultdict(
            lambda: defaultdict(float)
        )
        machine_hours: dict[tuple[str, datetime], float] = defaultdict(float)
        rows = []
        for i in range(runs):
            queued = now - WINDOW + (WINDOW - timedelta(minutes=10)) * (i / runs)
            waited = rng.expovariate(1 / 30)
            started = queued + timedelta(seconds=waited)
            ran = rng.uniform(30, 300)
            ended = started + timedelta(seconds=ran)
            status = "FAILED" if i % 10 == 0 else "SUCCEEDED"
            machine_id = machines[i % len(machines)]
            rows.append(
                (
                    str(uuid.uuid4()),
                    environment_id,
                    flow_id,
                    machine_id,
                    "bench",
                    owner_id,
                    owner_id,
                    "UNATTENDED",
                    "NORMAL",
                    status,
                    _text(queued),
                    machine_id,
                    _text(started - timedelta(seconds=1)),
                    _text(started),
                    _text(ended),
                    _text(queued),
                )
            )
            for span in (MINUTE, HOUR):
                row = rollups[(span, span_start(started, span))]
                row["runs_started"] += 1
                row["wait_seconds_sum"] += waited
                row[wait_column(waited)] += 1
                row["busy_bot_seconds"] += ran
                ending = rollups[(span, span_start(ended, span))]
                ending["runs_failed" if status == "FAILED" else "runs_succeeded"] += 1
            machine_hours[(machine_id, span_start(started, HOUR))] += ran
            if len(rows) == 50_000:
                _insert_runs(db, rows)
                rows = []
        _insert_runs(db, rows)
        columns = ["runs_started", "runs_succeeded", "runs_failed", "wait_seconds_sum"]
        columns += [*WAIT_COLUMNS, "busy_bot_seconds"]
        zeros = ["runs_timed_out", "runs_cancelled", "queued_sum", "queued_peak"]
        zeros += ["running_sum", "running_peak", "connected_sum"]
        db.executemany(
            f"INSERT INTO fleet_rollups (environment_id, span, start, {', '.join(columns)}, "
            f"{', '.join(zeros)}) VALUES ({', '.join('?' * (3 + len(columns) + len(zeros)))})",
            [
                (environment_id, span, _text(start), *(row.get(c, 0) for c in columns), *GAUGES)
                for (span, start), row in rollups.items()
            ],
        )
        db.executemany(
            "INSERT INTO machine_hours (machine_id, start, environment_id, busy_bot_seconds) "
            "VALUES (?, ?, ?, ?)",
            [(m, _text(start), environment_id, s) for (m, start), s in machine_hours.items()],
        )
        db.executemany(
            "INSERT INTO fold_samples (span, start, samples) VALUES (?, ?, ?)",
            [(span, _text(start), 12) for span, start in rollups],
        )
        db.commit()
    finally:
        db.close()


def _insert_runs(db: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    db.executemany(
        "INSERT INTO flow_runs (id, environment_id, flow_id, target_machine_id, run_as, "
        "connection_owner_id, triggered_by_id, mode, priority, status, queued_at, machine_id, "
        "dispatched_at, started_at, ended_at, created_at, priority_rank, top_rank, attempt, "
        "retry_attempt) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, 1, 1)",
        rows,
    )


async def _history(tmp: Path, name: str, runs: int) -> History:
    path = tmp / f"stats-{name}.db"
    url = f"sqlite+aiosqlite:///{path}"
    fleet = await seed(url, machines=50, groups=5, runs=0)
    now = datetime.now(UTC)
    await asyncio.to_thread(_write_history, path, runs, now)
    ctx = DomainContext(db=Database(url), settings=Settings(database_url=url))
    async with ctx.db.read() as session:
        admin = (await session.exec(select(User).where(User.is_admin))).first()
    assert admin is not None
    principal = UserPrincipal(user_id=admin.id, token_id="bench", is_admin=True)
    return History(ctx, principal, fleet.environment_id, now)


async def _time(history: History) -> float:
    """The median of :data:`CALLS` calls, in milliseconds."""
    took = []
    for _ in range(CALLS):
        started = time.perf_counter()
        found = await trends.fleet_statistics(
            history.ctx,
            history.admin,
            history.environment_id,
            history.now - WINDOW,
            history.now,
            trends.StatisticsBucket.HOUR,
        )
        took.append((time.perf_counter() - started) * 1000)
        assert sum(p.runs_started for p in found.periods) > 0, "the history is not read"
    return statistics.median(took)


async def _measure(tmp: Path, sizes: Sizes) -> Figure:
    small = await _history(tmp, "small", max(10_000, sizes.stats_runs // 100))
    large = await _history(tmp, "large", sizes.stats_runs)
    try:
        measure = {"subject": large, "baseline": small}
        measured: dict[str, list[float]] = {"subject": [], "baseline": []}
        await _time(small)
        await _time(large)
        for r in range(sizes.rounds):
            for who in turns(r):
                measured[who].append(await _time(measure[who]))
    finally:
        await small.ctx.db.dispose()
        await large.ctx.db.dispose()
    subject = statistics.median(measured["subject"])
    baseline = statistics.median(measured["baseline"])
    ratios = [s / b for s, b in zip(measured["subject"], measured["baseline"], strict=True)]
    return Figure(
        "stats_query",
        subject,
        baseline,
        f"<={TARGET}",
        lambda r: r <= TARGET,
        unit=" ms",
        paired_ratio=statistics.median(ratios),
        detail={"runs": sizes.stats_runs, "baseline_runs": max(10_000, sizes.stats_runs // 100)},
    )


def stats_query(tmp: Path, sizes: Sizes) -> list[Figure]:
    return [asyncio.run(_measure(tmp, sizes))]
