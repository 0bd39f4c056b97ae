"""``deskfleet demo``: a live fleet in one command.

It starts the server on the embedded default (a SQLite file, in-process broadcast), fills it with
demo data through the public API (users with roles, a group, machines driven by the simulator,
flows, connections, a legacy gateway), then triggers a steady stream of runs until stopped. The
tokens it prints sign in as each demo user, e.g. in GraphiQL at ``/graphql``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from deskfleet.simulator import Simulator, SimulatorConfig
from domain.connections import connections
from domain.context import DomainContext
from domain.identity import bootstrap
from domain.kernel.settings import Settings
from domain.store.db import Database, is_sqlite

log = logging.getLogger("deskfleet.demo")

DEMO_DATABASE = "sqlite:///deskfleet-demo.db"
DEMO_SECRET_FILE = Path("deskfleet-demo.secret")
FLOWS = ("Invoice processing", "Payroll export", "Daily sales report", "Vendor onboarding")


class DemoError(RuntimeError):
    pass


@dataclass
class DemoOptions:
    machines: int = 6
    bots: int = 2
    run_interval: float = 2.0  # seconds between triggered runs
    min_run_seconds: float = 3.0
    max_run_seconds: float = 20.0
    failure_rate: float = 0.1
    duration: float | None = None  # None: until Ctrl-C
    log_path: Path | None = None
    seed: int | None = None


@dataclass
class DemoFleet:
    """What the seeding made: tokens and ids the run stream uses."""

    environment_id: str = ""
    tokens: dict[str, str] = field(default_factory=dict)  # display name -> token
    group_id: str = ""
    flows: dict[str, list[str]] = field(default_factory=dict)  # owner -> flow ids
    streams: list[tuple[str, str, str, str, float]] = field(default_factory=list)
    # (owner, connection id, mode, description, weight)
    lock_machine_id: str = ""  # where the session-lock scene locks Uma's robot user (R32)


class DemoApi:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http = http
        self.url = url

    async def __call__(self, token: str, query: str, **variables: Any) -> Any:
        """The operation's one field: an object, a list or a scalar, as ``query`` selects."""
        response = await self.http.post(
            self.url,
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = response.json()
        if body.get("errors"):
            raise DemoError(f"{query.split('(')[0].strip()}: {body['errors'][0]['message']}")
        data = next(iter(body["data"].values()))
        if isinstance(data, dict) and "code" in data and "message" in data:
            raise DemoError(f"{data['code']}: {data['message']}")
        return data


async def _person(
    api: DemoApi, admin: str, environment_id: str, name: str, role: str, *, licence: bool = False
) -> str:
    email = name.lower().replace(" ", ".") + "@demo.deskfleet.local"
    user = await api(
        admin,
        "mutation($i: CreateUserInput!) { createUser(input: $i) { "
        "... on UserPayload { user { id } } ... on UserError { code message } } }",
        i={"displayName": name, "email": email, "attendedLicence": licence},
    )
    user_id = user["user"]["id"]
    await api(
        admin,
        "mutation($i: RoleInput!) { assignRole(input: $i) { __typename "
        "... on UserError { code message } } }",
        i={"environmentId": environment_id, "userId": user_id, "role": role},
    )
    issued = await api(
        admin,
        'mutation($u: ID) { issueApiToken(name: "demo", userId: $u) { '
        "... on IssuedApiToken { secret } ... on UserError { code message } } }",
        u=user_id,
    )
    return str(issued["secret"])


async def seed(
    api: DemoApi, domain: DomainContext, admin: str, options: DemoOptions, http: httpx.AsyncClient
) -> tuple[DemoFleet, Simulator]:
    """Demo data through the API; the simulator registers and drives the machines."""
    fleet = DemoFleet()
    environments = await api(admin, "{ environments { id name } }")
    fleet.environment_id = env = next(e["id"] for e in environments if e["name"] == "Default")
    await api(
        admin,
        "mutation($i: UpdateEnvironmentInput!) { updateEnvironment(input: $i) { __typename "
        "... on UserError { code message } } }",
        i={
            "id": env,
            "unattendedCapacity": options.machines * options.bots,
            "sessionRecommendations": True,
        },
    )
    fleet.tokens["Ada Admin"] = await _person(api, admin, env, "Ada Admin", "ENVIRONMENT_ADMIN")
    maya = fleet.tokens["Maya Maker"] = await _person(
        api, admin, env, "Maya Maker", "ENVIRONMENT_MAKER", licence=True
    )
    uma = fleet.tokens["Uma User"] = await _person(api, admin, env, "Uma User", "MACHINE_USER")
    uma_id = (await api(uma, "{ me { user { id } } }"))["user"]["id"]

    group = await api(
        maya,
        "mutation($i: CreateMachineGroupInput!) { createMachineGroup(input: $i) { "
        "... on MachineGroupPayload { group { id } } ... on UserError { code message } } }",
        i={"environmentId": env, "name": "Finance bots", "description": "the demo's pool"},
    )
    fleet.group_id = group["group"]["id"]

    simulator = Simulator(
        SimulatorConfig(
            url=api.url,
            token=maya,
            environment_id=env,
            machines=options.machines,
            name_prefix="demo",
            bots=options.bots,
            sessions=[("CONTOSO\\maya", "ACTIVE")],
            session_churn=0.05,
            min_run_seconds=options.min_run_seconds,
            max_run_seconds=options.max_run_seconds,
            failure_rate=options.failure_rate,
            heartbeat_seconds=5.0,
            poll_seconds=0.5,
            log_path=options.log_path,
            seed=options.seed,
        ),
        http=http,
    )
    machines = await simulator.register()
    pooled, standalone = (
        machines[: max(1, len(machines) - 2)],
        machines[max(1, len(machines) - 2) :],
    )
    for machine in pooled:
        await api(
            maya,
            "mutation($g: ID!, $m: ID!) { addMachineToGroup(groupId: $g, machineId: $m) { "
            "__typename ... on UserError { code message } } }",
            g=fleet.group_id,
            m=machine.id,
        )
    desk = (standalone or machines)[0]
    shared = (standalone or machines)[-1]
    await api(
        maya,
        "mutation($i: ShareMachineInput!) { shareMachine(input: $i) { __typename "
        "... on UserError { code message } } }",
        i={"machineId": shared.id, "userId": uma_id, "access": "USER"},
    )

    for owner, token, names in (("maya", maya, FLOWS[:3]), ("uma", uma, FLOWS[3:])):
        for name in names:
            made = await api(
                token,
                "mutation($i: CreateDesktopFlowInput!) { createDesktopFlow(input: $i) { "
                "... on DesktopFlowPayload { flow { id } } ... on UserError { code message } } }",
                i={"environmentId": env, "name": name},
            )
            fleet.flows.setdefault(owner, []).append(made["flow"]["id"])

    async def connect(token: str, name: str, user: str, **target: str) -> str:
        made = await api(
            token,
            "mutation($i: CreateConnectionInput!) { createConnection(input: $i) { "
            "... on ConnectionPayload { connection { id } } ... on UserError { code message } } }",
            i={"name": name, "windowsUsername": user, "password": "demo-Passw0rd!", **target},
        )
        return str(made["connection"]["id"])

    pool = await connect(maya, "Finance bots", "CONTOSO\\svc-finance", groupId=fleet.group_id)
    attended = await connect(maya, f"{desk.name} as Maya", "CONTOSO\\maya", machineId=desk.id)
    uma_conn = await connect(uma, f"{shared.name} for Uma", "CONTOSO\\svc-uma", machineId=shared.id)
    fleet.lock_machine_id = shared.id
    fleet.streams = [
        ("maya", pool, "UNATTENDED", "unattended on the Finance bots group", 0.7),
        ("maya", attended, "ATTENDED", f"attended on {desk.name}", 0.15),
        ("uma", uma_conn, "UNATTENDED", f"unattended on {shared.name}", 0.15),
    ]

    # R22: nothing in the API creates gateways any more; the demo shows one left to migrate.
    gateway = await connections.seed_legacy_gateway(
        domain, environment_id=env, name="On-premises gateway (legacy)"
    )
    maya_id = (await api(maya, "{ me { user { id } } }"))["user"]["id"]
    await connections.seed_legacy_gateway_connection(
        domain,
        gateway_id=gateway.id,
        owner_id=maya_id,
        name="Old SAP connection",
        windows_username="CONTOSO\\svc-sap",
    )
    return fleet, simulator


LOCKED_USER = "CONTOSO\\svc-uma"
RECOMMENDATIONS = "{ sessionRecommendations { id title affectedRuns { runId } } }"
DISCONNECT = (
    "mutation($id: ID!, $runs: [ID!]!) { disconnectSessionUsers(recommendationId: $id, "
    "runIds: $runs) { __typename ... on UserError { code message } } }"
)


async def session_lock_scene(
    api: DemoApi, fleet: DemoFleet, simulator: Simulator, options: DemoOptions
) -> None:
    """R32-R34 on stage, again and again: Uma's robot user leaves a LOCKED session on her
    machine, her unattended runs stop starting and "Desktop flows not running" is raised to her;
    a moment later she disconnects the user, the simulated runtime signs it out, the runs start."""
    uma = fleet.tokens["Uma User"]
    beat = max(0.2, options.run_interval)
    await asyncio.sleep(5 * beat)
    while True:
        simulator.set_session(fleet.lock_machine_id, LOCKED_USER, "LOCKED")
        print(f"demo: {LOCKED_USER} left a LOCKED session on Uma's machine", flush=True)
        found: dict[str, Any] | None = None
        for _ in range(600):
            recs = await api(uma, RECOMMENDATIONS)
            found = next((r for r in recs if r["affectedRuns"]), None)
            if found:
                break
            await asyncio.sleep(beat / 2)
        if found is not None:
            run_ids = [r["runId"] for r in found["affectedRuns"]]
            print(
                f'demo: R32 "{found["title"]}" raised to Uma User: {len(run_ids)} run(s) '
                "blocked (query sessionRecommendations as Uma)",
                flush=True,
            )
            await asyncio.sleep(5 * beat)
            try:
                await api(uma, DISCONNECT, id=found["id"], runs=run_ids)
                print("demo: R34 Uma disconnected the user; her runs start", flush=True)
            except DemoError as exc:
                print(f"demo: disconnect refused: {exc}", flush=True)
        else:
            simulator.set_session(fleet.lock_machine_id, LOCKED_USER, None)
        await asyncio.sleep(30 * beat)


async def trigger_stream(
    api: DemoApi, fleet: DemoFleet, options: DemoOptions, rng: random.Random
) -> None:
    """A steady stream of runs: mostly unattended on the group, some attended, some HIGH."""
    tokens = {"maya": fleet.tokens["Maya Maker"], "uma": fleet.tokens["Uma User"]}
    weights = [s[4] for s in fleet.streams]
    while True:
        owner, connection_id, mode, _, _ = rng.choices(fleet.streams, weights)[0]
        try:
            await api(
                tokens[owner],
                "mutation($i: TriggerRunInput!) { triggerRun(input: $i) { __typename "
                "... on UserError { code message } } }",
                i={
                    "flowId": rng.choice(fleet.flows[owner]),
                    "connectionId": connection_id,
                    "mode": mode,
                    "priority": "HIGH" if rng.random() < 0.2 else "NORMAL",
                },
            )
        except (DemoError, httpx.HTTPError) as exc:
            log.info("trigger refused: %s", exc)
        await asyncio.sleep(options.run_interval * (0.5 + rng.random()))


def banner(url: str, admin: str, fleet: DemoFleet, options: DemoOptions) -> str:
    lines = [
        "",
        f"DeskFleet demo is live: {url}  (GraphiQL in your browser)",
        f"  {options.machines} simulated machines, a run every ~{options.run_interval:g}s",
        "  Sign in with a header  Authorization: Bearer <token>",
        f"    {'Administrator':<14} {admin}",
    ]
    lines += [f"    {name:<14} {token}" for name, token in fleet.tokens.items()]
    lines += [
        "  Try:",
        "    { machines(first: 20) { nodes { name status runningCount queuedCount group { name } } } }",
        "    { flowRuns(first: 10) { nodes { status queuePosition waitReason flow { name } } } }",
        f'    {{ gateways(environmentId: "{fleet.environment_id}") {{ name connections {{ name }} }} }}',
        "    { sessionRecommendations { title status affectedRuns { username sessionState } } }"
        "  (as Uma User)",
        "  Ctrl-C stops it.",
        "",
    ]
    return "\n".join(lines)


def _fresh_sqlite(url: str, fresh: bool) -> None:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database)
    if not path.exists():
        return
    if not fresh:
        raise DemoError(
            f"{path} already exists: the demo needs an empty database (add --fresh to delete it)"
        )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def run_demo(settings: Settings, options: DemoOptions, *, fresh: bool = True) -> int:
    import uvicorn

    from api.app import create_app, prepare_database

    if not is_sqlite(settings.database_url):
        raise DemoError("the demo runs on the embedded SQLite default; give a sqlite:/// URL")
    _fresh_sqlite(settings.database_url, fresh)
    await prepare_database(settings)
    ctx = DomainContext(db=Database(settings.database_url), settings=settings)
    try:
        issued = await bootstrap.first_run(ctx)
    finally:
        await ctx.db.dispose()
    if issued is None:
        raise DemoError("the database already has users: the demo needs an empty one (--fresh)")

    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            ws="websockets-sansio",
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            raise DemoError("the server stopped while starting")
        await asyncio.sleep(0.05)

    url = f"http://{settings.host}:{settings.port}/graphql"
    rng = random.Random(options.seed)
    background: list[asyncio.Task[Any]] = []
    async with httpx.AsyncClient(timeout=httpx.Timeout(15.0)) as http:
        api = DemoApi(http, url)
        simulator: Simulator | None = None
        try:
            fleet, simulator = await seed(api, app.state.domain, issued.secret, options, http)
            print(banner(url, issued.secret, fleet, options), flush=True)
            background = [
                asyncio.create_task(simulator.run()),
                asyncio.create_task(trigger_stream(api, fleet, options, rng)),
                asyncio.create_task(session_lock_scene(api, fleet, simulator, options)),
            ]
            if options.duration is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(serving), options.duration)
            else:
                await serving
        finally:
            if simulator is not None:
                simulator.stop()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if simulator is not None:
                stats = simulator.stats
                print(
                    f"demo stopped: {stats.started} runs started, {stats.succeeded} succeeded, "
                    f"{stats.failed} failed",
                    flush=True,
                )
                await simulator.close()
            server.should_exit = True
            await serving
    return 0


# --- the command line ---------------------------------------------------------------------------


def add_command(commands: Any) -> None:
    p = commands.add_parser(
        "demo",
        help="start a server with a live demo fleet (embedded SQLite)",
        description="Start DeskFleet on a fresh SQLite file with demo users, a group, simulated "
        "machines, flows, connections and a steady stream of runs.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--database-url",
        default=DEMO_DATABASE,
        help=f"a sqlite:/// URL (default {DEMO_DATABASE}, recreated at each start)",
    )
    p.add_argument("--fresh", action="store_true", help="delete a --database-url that exists")
    p.add_argument("--machines", type=int, default=6)
    p.add_argument("--bots", type=int, default=2, help="unattended bots per machine")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between triggered runs")
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--max-seconds", type=float, default=20.0)
    p.add_argument("--failure-rate", type=float, default=0.1)
    p.add_argument("--log", type=Path, help="the simulator's JSONL log of starts and finishes")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--seed", type=int)
    p.set_defaults(run=_demo)


def _demo(args: Any) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings(
        host=args.host,
        port=args.port,
        database_url=args.database_url,
        secret_key_file=DEMO_SECRET_FILE,
    )
    options = DemoOptions(
        machines=max(1, args.machines),
        bots=args.bots,
        run_interval=args.interval,
        min_run_seconds=args.min_seconds,
        max_run_seconds=args.max_seconds,
        failure_rate=args.failure_rate,
        duration=args.duration,
        log_path=args.log,
        seed=args.seed,
    )
    fresh = args.fresh or args.database_url == DEMO_DATABASE
    try:
        return asyncio.run(run_demo(settings, options, fresh=fresh))
    except DemoError as exc:
        print(f"deskfleet demo: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
