"""``neighbour_p99`` (R39): what one environment's flood of the costliest accepted query does to
another environment's smallest request.

A real ``deskfleet serve`` (production mode, default cost limits) on a seeded SQLite fleet. An
environment-A administrator floods it with the costliest document the server accepts (the
dashboard's machine row plus access lists, at the largest page whose cost is within
``max_query_cost``) from 8 concurrent connections (``wrk``, without backing off when throttled).
Meanwhile an environment-B user sends ``{ me { id } }``, 40 a second (within its own bucket). The figure is the p99
of B's latency under the flood divided by the same p99 without it; rounds alternate (each goes
first every other round) after an untimed warm-up of both, and the median of the rounds counts.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

import httpx
from graphql import parse

from api.schema import schema
from api.transport.cost import CostTable, operation_cost
from api.transport.strawberry_adapter import graphql_schema
from bench import processes
from bench.figures import Figure, Sizes, turns
from bench.load import post_load
from bench.seed import seed
from domain.kernel.settings import Settings

FLOODERS = 8
NEIGHBOUR = "{ me { id } }"
PACE = 0.025  # seconds from one of B's requests to the next: 40 a second, inside B's own bucket
ROW = """id name description version status maintenance runningCount queuedCount accessType
  allowedActions group { id name } owner { id displayName }
  accessList { access user { id displayName email } }"""


def costliest_accepted() -> tuple[str, int]:
    """The largest page of the heavy row whose cost is still within the default maximum."""
    settings = Settings()
    table = CostTable.from_settings(settings)
    best = ("", 0)
    for first in range(1, settings.max_page_size + 1):
        query = f"{{ machines(first: {first}) {{ totalCount nodes {{ {ROW} }} }} }}"
        cost = operation_cost(graphql_schema(schema), table, parse(query))[0].cost
        if cost > settings.max_query_cost:
            break
        best = (query, cost)
    return best


def _graphql(url: str, query: str, token: str, variables: dict[str, object]) -> dict:
    body = httpx.post(
        url,
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    if body.get("errors"):
        raise RuntimeError(f"benchmark setup failed: {body}")
    return body["data"]


def environment_b_user(url: str, admin_token: str) -> str:
    """A machine owner of a second environment; returns their token."""
    created = _graphql(
        url,
        "mutation($input: CreateEnvironmentInput!) { createEnvironment(input: $input) "
        "{ ... on EnvironmentPayload { environment { id } } } }",
        admin_token,
        {"input": {"name": "B", "kind": "SANDBOX", "flowExtensionsVersion": "1.0.0"}},
    )
    environment_id = created["createEnvironment"]["environment"]["id"]
    user = _graphql(
        url,
        "mutation($input: CreateUserInput!) { createUser(input: $input) "
        "{ ... on UserPayload { user { id } } } }",
        admin_token,
        {"input": {"displayName": "neighbour", "email": "neighbour@bench.test"}},
    )["createUser"]["user"]["id"]
    _graphql(
        url,
        "mutation($input: RoleInput!) { assignRole(input: $input) { __typename } }",
        admin_token,
        {"input": {"environmentId": environment_id, "userId": user, "role": "MACHINE_OWNER"}},
    )
    issued = _graphql(
        url,
        'mutation($id: ID) { issueApiToken(name: "bench", userId: $id) '
        "{ ... on IssuedApiToken { secret } } }",
        admin_token,
        {"id": user},
    )
    return str(issued["issueApiToken"]["secret"])


def p99_of_neighbour(url: str, token: str, seconds: float) -> float:
    """B's requests one every ``PACE`` seconds (a busy client within its fair use) for
    ``seconds``; the p99 of their latency in ms."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=60) as client:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            response = client.post(url, json={"query": NEIGHBOUR})
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(max(0.0, started + PACE - time.perf_counter()))
            if response.status_code != 200 or "errors" in response.json():
                raise RuntimeError(f"the neighbour was refused: {response.text}")
    return statistics.quantiles(latencies, n=100)[98] if len(latencies) > 1 else latencies[0]


def neighbour_p99(tmp: Path, sizes: Sizes) -> list[Figure]:
    database = f"sqlite:///{tmp / 'bench-neighbour.db'}"
    machines = min(sizes.machines, 100)
    fleet = asyncio.run(seed(database, machines=machines, groups=2, runs=0, viewers=1))
    query, cost = costliest_accepted()
    rounds = max(1, min(sizes.rounds, 5))
    server_core, load_core = processes.cores()
    with processes.deskfleet(tmp, database, core=server_core) as server:
        server.wait_ready()
        url = server.url + "/graphql"
        neighbour = environment_b_user(url, fleet.admin_token)
        flooder = fleet.viewer_tokens[0]  # an environment-A administrator
        _graphql(url, query, flooder, {})  # accepted (the bucket is full)

        def flooded() -> float:
            flood = post_load(
                url,
                query,
                flooder,
                seconds=sizes.seconds + 1,
                core=load_core,
                connections=FLOODERS,
            )
            time.sleep(0.5)  # the flood is under way
            try:
                return p99_of_neighbour(url, neighbour, sizes.seconds)
            finally:
                flood.result()

        def quiet() -> float:
            return p99_of_neighbour(url, neighbour, sizes.seconds)

        quiet()  # warm-up, untimed
        flooded()
        measured: dict[str, list[float]] = {"subject": [], "baseline": []}
        measure = {"subject": flooded, "baseline": quiet}
        for r in range(rounds):
            for who in turns(r):
                measured[who].append(measure[who]())
    value = statistics.median(measured["subject"])
    baseline = statistics.median(measured["baseline"])
    return [
        Figure(
            "neighbour_p99",
            value,
            baseline,
            "<=3",
            lambda ratio: ratio <= 3,
            unit=" ms",
            detail={"machines": machines, "flooders": FLOODERS, "cost": cost, "rounds": rounds},
        )
    ]
