"""The benchmark suites; each returns its figures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx

from bench import processes
from bench.figures import Figure, Sizes
from bench.interleaved import Rounds, interleaved, pairs_for
from bench.load import Load, post_load
from bench.neighbour import neighbour_p99
from bench.seed import SeededFleet, seed

LIST100 = """{ machines(first: 100) { nodes { name description version status maintenance
  runningCount queuedCount accessType group { name } owner { displayName } } } }"""
BASELINE_LIST100 = """{ machines(first: 100) { nodes { name description version status maintenance
  runningCount queuedCount accessType group { name } owner { displayName } } } }"""
TRIVIAL = "{ me { id } }"
BASELINE_TRIVIAL = "{ hello }"


def _check(url: str, query: str, token: str | None) -> None:
    """A figure only counts if the server answers the query correctly."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = httpx.post(url, json={"query": query}, headers=headers, timeout=30).json()
    if body.get("errors") or not body.get("data"):
        raise RuntimeError(f"benchmark query failed: {body}")


def http_throughput(tmp: Path, sizes: Sizes) -> list[Figure]:
    url = f"sqlite:///{tmp / 'bench-http.db'}"
    fleet: SeededFleet = asyncio.run(
        seed(url, machines=sizes.machines, groups=sizes.groups, runs=sizes.runs)
    )
    server_core, load_core = processes.cores()
    cases = [
        ("list100", LIST100, BASELINE_LIST100, ">=0.5", 0.5),
        ("trivial", TRIVIAL, BASELINE_TRIVIAL, ">=0.8", 0.8),
    ]
    pairs, per_pair = pairs_for(sizes.rounds)
    figures = []
    for name, query, base_query, target, bound in cases:
        rounds = Rounds()
        for _ in range(pairs):  # a fresh pair of processes each time (bench/interleaved.py)
            with (
                processes.deskfleet(
                    tmp, url, core=server_core, env=processes.UNTHROTTLED
                ) as subject,
                processes.baseline(tmp, core=server_core) as base,
            ):
                subject.wait_ready()
                base.wait_ready()
                _check(subject.url + "/graphql", query, fleet.admin_token)
                _check(base.url + "/graphql", base_query, None)
                interleaved(
                    per_pair,
                    sizes.seconds,
                    (subject, _loading(subject, query, fleet.admin_token, load_core)),
                    (base, _loading(base, base_query, None, load_core)),
                    into=rounds,
                )
        measured = rounds.paired()
        figures.append(
            Figure(
                name,
                measured.subject,
                measured.baseline,
                target,
                lambda r, b=bound: r >= b,
                unit=" req/s",
                paired_ratio=measured.ratio,
            )
        )
    return figures


def _loading(
    server: processes.Server, query: str, token: str | None, core: int | None
) -> Callable[[float], Load]:
    return lambda seconds: post_load(
        server.url + "/graphql", query, token, seconds=seconds, core=core
    )


def sql_per_page(tmp: Path, sizes: Sizes) -> list[Figure]:
    from bench.statements import statements_per_page

    url = f"sqlite:///{tmp / 'bench-sql.db'}"
    fleet = asyncio.run(seed(url, machines=sizes.machines, groups=sizes.groups, runs=sizes.runs))
    at_10, at_100 = asyncio.run(statements_per_page(url, fleet.admin_token))
    return [Figure("sql_per_page", at_100, at_10, "equal", lambda r: r == 1.0, unit=" stmts")]


def dispatch_sqlite(tmp: Path, sizes: Sizes) -> list[Figure]:
    from bench.dispatch import dispatch_sqlite

    return dispatch_sqlite(tmp, sizes)


def dispatch_pg(tmp: Path, sizes: Sizes) -> list[Figure]:
    from bench.dispatch import dispatch_pg

    return dispatch_pg(tmp, sizes)


def fanout(tmp: Path, sizes: Sizes) -> list[Figure]:
    from bench.fanout import fanout

    return fanout(tmp, sizes)


def heartbeats(tmp: Path, sizes: Sizes) -> list[Figure]:
    from bench.heartbeats import heartbeats

    return heartbeats(tmp, sizes)


def assignments(tmp: Path, sizes: Sizes) -> list[Figure]:
    from bench.assignments import assignment_latency

    return assignment_latency(tmp, sizes)


def eta(tmp: Path, sizes: Sizes) -> list[Figure]:
    from bench.eta import eta_error

    return eta_error(tmp, sizes)


def stats_query(tmp: Path, sizes: Sizes) -> list[Figure]:
    from bench.statistics import stats_query

    return stats_query(tmp, sizes)


SUITES: dict[str, Callable[[Path, Sizes], list[Figure]]] = {
    "http": http_throughput,
    "sql_per_page": sql_per_page,
    "dispatch_sqlite": dispatch_sqlite,
    "dispatch_pg": dispatch_pg,
    "fanout": fanout,
    "neighbour": neighbour_p99,
    "heartbeats": heartbeats,
    "eta": eta,
    "assignments": assignments,
    "stats_query": stats_query,
}
