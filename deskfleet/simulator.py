"""A machine-runtime simulator: N fake Windows machines driving DeskFleet through its public API.

Each simulated machine is registered with a user token (``registerMachine``), optionally given
unattended bots and a group, then behaves like the real runtime with its machine key: it sends
heartbeats with its user sessions, polls its assignments, confirms each run started, works it for
a random duration and reports a random outcome; it carries out ``CANCEL_RUN`` and session commands.
Every start and finish is appended to a JSONL log, so a test can prove from the simulator's side
that no run was ever held twice at once (:func:`check_log`).

It survives the server going away (a restart, a ``kill -9``): calls are retried with backoff and a
finished run's report is kept until the server acknowledges it. A throttled call (R39) waits the
time the server names and is sent again.

It holds thousands of machines in one process without becoming the load's bottleneck: one HTTP
client with a pool of ``connections`` keep-alive connections carries every call (registrations
included, ``connections`` at a time), heartbeats and polls are spread over their interval rather
than sent all at once, a machine sleeps until its next heartbeat or poll is due, and its
websocket (``push``) asks for no compression and no client pings (the server pings) and opens
``connections`` at a time. ``deskfleet simulate`` raises its open-files limit first
(:mod:`deskfleet.limits`).

Use it from Python (``Simulator(config).run(...)``, any ``httpx.AsyncClient`` such as one on an
ASGI transport) or from the command line: ``deskfleet simulate --help``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

from deskfleet.limits import ensure_open_files

log = logging.getLogger("deskfleet.simulator")

SESSION_STATES = ("ACTIVE", "LOCKED", "DISCONNECTED")
FAILURE_CODES = ("UI_ELEMENT_NOT_FOUND", "APPLICATION_CRASHED", "WINDOW_NOT_FOUND")

REGISTER = """
mutation($input: RegisterMachineInput!) {
  registerMachine(input: $input) {
    __typename
    ... on RegisteredMachinePayload { machineKey machine { id name } }
    ... on UserError { code message }
  }
}"""
ENVIRONMENTS = "{ environments { id name kind } }"
ALLOCATE = """
mutation($machineId: ID!, $count: Int!) {
  allocateUnattendedBots(machineId: $machineId, count: $count) {
    __typename ... on UserError { code message }
  }
}"""
ADD_TO_GROUP = """
mutation($groupId: ID!, $machineId: ID!) {
  addMachineToGroup(groupId: $groupId, machineId: $machineId) {
    __typename ... on UserError { code message }
  }
}"""
HEARTBEAT = """
mutation($input: HeartbeatInput!) {
  machineHeartbeat(input: $input) {
    __typename ... on HeartbeatPayload { keyActionRequired } ... on UserError { code message }
  }
}"""
ROTATE = """
mutation { completeMachineKeyRotation {
  __typename ... on NewMachineKeyPayload { machineKey } ... on UserError { code message }
} }"""
WORK = """
{
  machineAssignments { runId attempt flowName mode runAs username }
  machineCommands { id kind runId username }
}"""
PUSHED = """
subscription { machineAssignments {
  assignments { runId attempt flowName mode runAs username }
  commands { id kind runId username }
} }"""
CONFIRM = """
mutation($runId: ID!, $attempt: Int!) {
  confirmRunStarted(runId: $runId, attempt: $attempt) {
    __typename ... on FlowRunPayload { run { status } } ... on UserError { code message }
  }
}"""
FINISH = """
mutation($input: ReportRunFinishedInput!) {
  reportRunFinished(input: $input) {
    __typename ... on FlowRunPayload { run { status } } ... on UserError { code message }
  }
}"""
COMPLETE_COMMAND = """
mutation($id: ID!) {
  completeMachineCommand(id: $id) { __typename ... on UserError { code message } }
}"""


MASKED_ERROR = (
    "Unexpected error."  # what the server says of its own failures (api/transport/limits.py)
)

# The first heartbeats and polls of the fleet are spread over their interval, but over no more
# than this many seconds per machine: a thousand machines heartbeating every 5 s start spread
# over the 5 s, three machines within 30 ms.
START_SPACING_SECONDS = 0.01


class Unavailable(Exception):
    """The server cannot be reached or answered with a server error: try again later."""


class Throttled(Unavailable):
    """The caller's cost bucket is short (R39): try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Refused(Exception):
    """The server answered with GraphQL errors (not a typed result)."""


@dataclass
class SimulatorConfig:
    url: str = "http://127.0.0.1:8000/graphql"
    token: str = ""  # a user token that may register machines (and allocate bots, group them)
    environment_id: str | None = None  # default: the first environment the token sees
    machines: int = 3
    name_prefix: str = "sim"
    bots: int = 1  # unattended bots to allocate to each machine (0: leave as is)
    group_id: str | None = None  # put every machine in this group
    sessions: list[tuple[str, str]] = field(default_factory=list)  # (username, state) per machine
    session_churn: float = 0.0  # chance per heartbeat that one session changes state
    runtime_version: str = "2.8.73.21119"
    os_edition: str = "Windows 11 Pro"
    min_run_seconds: float = 1.0
    max_run_seconds: float = 5.0
    failure_rate: float = 0.1
    heartbeat_seconds: float = 5.0
    poll_seconds: float = 0.5
    # Take work pushed over the `machineAssignments` subscription (R35) instead of polling;
    # a poll every `poll_seconds * 20` stays as a safety net.
    push: bool = False
    # Keep-alive HTTP connections of the one client every machine shares, and so the most calls
    # in flight at once (registrations included); also the most websockets opening at once.
    # httpx's pool spends CPU on every request and response in proportion to its connections
    # (it scans them all): a few keep one server busy and cost the simulator far less than many.
    connections: int = 8
    log_path: Path | None = None
    seed: int | None = None


@dataclass
class Stats:
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    rejected: int = 0
    report_rejected: int = 0
    retries: int = 0
    sessions_ended: int = 0  # END_SESSION commands carried out (R34)
    heartbeats: int = 0  # acknowledged by the server

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed


@dataclass(slots=True)
class SimulatedMachine:
    id: str
    name: str
    key: str
    bots: int
    sessions: dict[str, str]
    held: dict[str, tuple[int, asyncio.Task[None]]] = field(default_factory=dict)
    next_heartbeat: float = 0.0
    next_poll: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # something is due sooner


class JsonlLog:
    """One JSON object per line, flushed at once: what the simulator did, in order."""

    def __init__(self, path: Path | None) -> None:
        self._file: TextIO | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> None:
        if self._file is None:
            return
        record = {"ts": datetime.now(UTC).isoformat(), "mono": time.monotonic(), "event": event}
        record.update(fields)
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Simulator:
    def __init__(
        self,
        config: SimulatorConfig,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.config = config
        self._http = http
        self._own_http = http is None
        self.rng = random.Random(config.seed)
        self.machines: list[SimulatedMachine] = []
        self.stats = Stats()
        self.log = JsonlLog(config.log_path)
        self._stopping = asyncio.Event()
        self._in_flight = asyncio.Semaphore(max(1, config.connections))  # calls
        self._opening = asyncio.Semaphore(max(1, config.connections))  # websocket handshakes
        self._throttled_warned = False
        self.registration_seconds: float | None = None  # how long register() took

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            # As many keep-alive connections as calls in flight (the semaphore), none waiting in
            # the pool, and let go of idle ones before the server's 5 s keep-alive timeout
            # closes them under a request.
            pool = max(1, self.config.connections)
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(10.0),
                limits=httpx.Limits(
                    max_connections=pool, max_keepalive_connections=pool, keepalive_expiry=4.0
                ),
            )
        return self._http

    async def call(
        self, query: str, variables: dict[str, Any] | None, token: str
    ) -> dict[str, Any]:
        try:
            async with self._in_flight:
                response = await self.http.post(
                    self.config.url,
                    json={"query": query, "variables": variables or {}},
                    headers={"Authorization": f"Bearer {token}"},
                )
        except httpx.HTTPError as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}") from None
        if response.status_code >= 500:
            raise Unavailable(f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise Unavailable(f"HTTP {response.status_code}: not a GraphQL response") from None
        if body.get("errors"):
            messages = [e.get("message", "?") for e in body["errors"]]
            if all(m == MASKED_ERROR for m in messages):
                # The server's own failure (e.g. its database away for a while), not a refusal:
                # a runtime tries again, or a finished run's report would be lost.
                raise Unavailable("; ".join(messages))
            throttled = [
                e for e in body["errors"] if (e.get("extensions") or {}).get("code") == "THROTTLED"
            ]
            if throttled:
                wait = throttled[0]["extensions"].get("retryAfterSeconds")
                raise Throttled("; ".join(messages), float(wait) if wait is not None else 5.0)
            raise Refused("; ".join(messages))
        return body["data"]

    async def persist(self, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
        """Call until the server answers (it may be restarting); stop only when told to."""
        delay = 0.2
        while True:
            try:
                return await self.call(query, variables, token)
            except Throttled as exc:
                if self._stopping.is_set():
                    raise
                self.stats.retries += 1
                self._warn_throttled(exc, token)
                await asyncio.sleep(exc.retry_after)
            except Unavailable as exc:
                if self._stopping.is_set():
                    raise
                self.stats.retries += 1
                log.debug("server unavailable (%s), retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _warn_throttled(self, exc: Throttled, token: str) -> None:
        if token == self.config.token and not self._throttled_warned:
            self._throttled_warned = True
            log.warning(
                "the user token is throttled (R39: %s): registering goes at the pace of its cost "
                "bucket; on a test server, raise DESKFLEET_COST_BUCKET_SIZE and "
                "DESKFLEET_COST_RESTORE_RATE",
                exc,
            )

    # --- registration -----------------------------------------------------------------------

    async def _environment_id(self) -> str:
        if self.config.environment_id:
            return self.config.environment_id
        environments = (await self.persist(ENVIRONMENTS, {}, self.config.token))["environments"]
        usable = [e for e in environments if e["kind"] != "TEAMS"]
        if not usable:
            raise RuntimeError("the token sees no environment that accepts machines")
        return str(usable[0]["id"])

    async def register(self) -> list[SimulatedMachine]:
        """Register ``config.machines`` machines (names ``<prefix>-01``...; a suffix if taken),
        ``config.connections`` at a time, logging the progress every few seconds."""
        cfg = self.config
        environment_id = await self._environment_id()
        registered: list[SimulatedMachine | None] = [None] * cfg.machines
        numbers = iter(range(1, cfg.machines + 1))
        started = told = time.monotonic()
        done = 0

        async def registering() -> None:
            nonlocal done, told
            for i in numbers:  # shared: each worker takes the next number
                registered[i - 1] = await self._register_one(environment_id, i)
                done += 1
                now = time.monotonic()
                if now - told >= 5.0 and done < cfg.machines:
                    told = now
                    log.info(
                        "registered %d of %d machines (%.0fs)", done, cfg.machines, now - started
                    )

        workers = [
            asyncio.create_task(registering())
            for _ in range(min(max(1, cfg.connections), cfg.machines))
        ]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        self.machines.extend(m for m in registered if m is not None)
        self.registration_seconds = time.monotonic() - started
        log.info("registered %d machines in %.1fs", cfg.machines, self.registration_seconds)
        return self.machines

    async def _register_one(self, environment_id: str, i: int) -> SimulatedMachine:
        cfg = self.config
        name = f"{cfg.name_prefix}-{i:02d}"
        for _ in range(5):
            result = (
                await self.persist(
                    REGISTER,
                    {
                        "input": {
                            "environmentId": environment_id,
                            "name": name,
                            "runtimeVersion": cfg.runtime_version,
                            "osEdition": cfg.os_edition,
                            "description": "simulated by deskfleet simulate",
                        }
                    },
                    cfg.token,
                )
            )["registerMachine"]
            if result.get("code") != "NAME_TAKEN":
                break
            name = f"{cfg.name_prefix}-{i:02d}-{self.rng.randrange(16**4):04x}"
        if result["__typename"] != "RegisteredMachinePayload":
            raise RuntimeError(f"cannot register {name}: {result['code']}: {result['message']}")
        machine = SimulatedMachine(
            id=result["machine"]["id"],
            name=result["machine"]["name"],
            key=result["machineKey"],
            bots=0,
            sessions=dict(cfg.sessions),
        )
        if cfg.bots:
            allocated = (
                await self.persist(
                    ALLOCATE, {"machineId": machine.id, "count": cfg.bots}, cfg.token
                )
            )["allocateUnattendedBots"]
            if allocated["__typename"] == "MachinePayload":
                machine.bots = cfg.bots
            else:
                log.warning("no bots for %s: %s", machine.name, allocated.get("message"))
        if cfg.group_id:
            added = (
                await self.persist(
                    ADD_TO_GROUP, {"groupId": cfg.group_id, "machineId": machine.id}, cfg.token
                )
            )["addMachineToGroup"]
            if "code" in added:
                log.warning("%s not grouped: %s", machine.name, added.get("message"))
        self.log.write("registered", machine=machine.name, machine_id=machine.id)
        return machine

    # --- the runtime ------------------------------------------------------------------------

    async def run(self, *, duration: float | None = None) -> Stats:
        """Register (if not done yet), then work until :meth:`stop` or ``duration`` seconds."""
        if not self.machines:
            await self.register()
        self._spread_start()
        tasks = [asyncio.create_task(self._machine_loop(m)) for m in self.machines]
        try:
            if duration is None:
                await self._stopping.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), duration)
        finally:
            self._stopping.set()
            for task in tasks:
                task.cancel()
            held = [t for m in self.machines for _, t in m.held.values()]
            for task in held:
                task.cancel()
            await asyncio.gather(*tasks, *held, return_exceptions=True)
        return self.stats

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        self.stop()
        self.log.close()
        if self._own_http and self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> Simulator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _spread_start(self) -> None:
        """Each machine's first heartbeat and poll at its own moment of their interval (a slot
        each, a random moment in it), so that a fleet never calls all at once; see
        :data:`START_SPACING_SECONDS`."""
        count = len(self.machines)
        now = time.monotonic()
        heartbeats = min(self.config.heartbeat_seconds, count * START_SPACING_SECONDS)
        polls = min(self._poll_interval(), count * START_SPACING_SECONDS)
        for i, machine in enumerate(self.machines):
            machine.next_heartbeat = now + heartbeats * (i + self.rng.random()) / count
            machine.next_poll = now + polls * (i + self.rng.random()) / count

    def _poll_interval(self) -> float:
        """Polls come every ``poll_seconds``; with ``push`` they are a safety net, 20 times
        rarer."""
        return self.config.poll_seconds * (20 if self.config.push else 1)

    async def _machine_loop(self, machine: SimulatedMachine) -> None:
        pushed = asyncio.create_task(self._pushed_work(machine)) if self.config.push else None
        try:
            await self._poll_loop(machine)
        finally:
            if pushed is not None:
                pushed.cancel()
                with contextlib.suppress(BaseException):
                    await pushed

    async def _poll_loop(self, machine: SimulatedMachine) -> None:
        """Heartbeat and poll when due; in between, sleep until the sooner of the two (or until
        woken: a session changed, a heartbeat is due at once)."""
        interval = self._poll_interval()
        failures = 0
        while not self._stopping.is_set():
            machine.wake.clear()
            retry_after = 0.0
            try:
                if time.monotonic() >= machine.next_heartbeat:
                    await self._heartbeat(machine)
                if time.monotonic() >= machine.next_poll:
                    await self._take_work(machine)
                    machine.next_poll = time.monotonic() + interval * (0.5 + self.rng.random())
                failures = 0
            except (Unavailable, Refused) as exc:
                self.stats.retries += 1
                failures += 1
                log.debug("%s: %s", machine.name, exc)
                if isinstance(exc, Throttled):
                    retry_after = exc.retry_after
            except Exception:  # a surprise must not take the machine down: log it, carry on
                failures += 1
                log.exception("%s: unexpected failure in the runtime loop", machine.name)
            if failures:
                # What failed is tried again after a poll's time, backing off while the server
                # stays away (a fleet must not hammer a restarting server).
                poll = self.config.poll_seconds
                backoff = min(poll * 2 ** min(failures - 1, 10), max(5.0, poll))
                now = time.monotonic()
                soon = now + max(retry_after, backoff * (0.5 + self.rng.random()))
                if machine.next_heartbeat <= now:
                    machine.next_heartbeat = soon
                if machine.next_poll <= now:
                    machine.next_poll = soon
            due = min(machine.next_heartbeat, machine.next_poll) - time.monotonic()
            if due > 0 and not machine.wake.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(due):
                        await machine.wake.wait()

    async def _heartbeat(self, machine: SimulatedMachine) -> None:
        cfg = self.config
        if machine.sessions and self.rng.random() < cfg.session_churn:
            username = self.rng.choice(sorted(machine.sessions))
            machine.sessions[username] = self.rng.choice(SESSION_STATES)
        # The next one is due an interval after this one is sent, not after it is answered: a
        # slow answer does not move the machine's slot. Asked for another meanwhile (a session
        # changed), it is due at once; failed, it is due again (the loop says when).
        machine.next_heartbeat = time.monotonic() + cfg.heartbeat_seconds
        try:
            result = (
                await self.call(
                    HEARTBEAT,
                    {
                        "input": {
                            "runtimeVersion": cfg.runtime_version,
                            "osEdition": cfg.os_edition,
                            "sessions": [
                                {"username": u, "state": s}
                                for u, s in sorted(machine.sessions.items())
                            ],
                        }
                    },
                    machine.key,
                )
            )["machineHeartbeat"]
        except BaseException:
            machine.next_heartbeat = min(machine.next_heartbeat, time.monotonic())
            raise
        self.stats.heartbeats += 1
        if result.get("keyActionRequired"):
            rotated = (await self.call(ROTATE, {}, machine.key))["completeMachineKeyRotation"]
            if "machineKey" in rotated:
                machine.key = rotated["machineKey"]
                self.log.write("key_rotated", machine=machine.name, machine_id=machine.id)

    def _heartbeat_now(self, machine: SimulatedMachine) -> None:
        machine.next_heartbeat = 0.0
        machine.wake.set()

    async def _pushed_work(self, machine: SimulatedMachine) -> None:
        """The `machineAssignments` subscription (graphql-transport-ws), reconnected with backoff;
        each message is the machine's whole current work, applied like a poll's answer.

        A websocket per machine, kept cheap: no per-message compression offered (`deskfleet
        serve` declines it: a zlib context per connection for messages of a few hundred bytes),
        no pings of our own (the server pings every connection; answering is enough), a short
        queue of unread messages, and at most ``connections`` handshakes at once, so that a
        fleet (re)connecting does not arrive as one burst."""
        import websockets
        from websockets.typing import Subprotocol

        url = self.config.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        delay = 0.2
        while not self._stopping.is_set():
            try:
                async with contextlib.AsyncExitStack() as stack:
                    async with self._opening, asyncio.timeout(30):
                        ws = await stack.enter_async_context(
                            websockets.connect(
                                url,
                                subprotocols=[Subprotocol("graphql-transport-ws")],
                                compression=None,
                                ping_interval=None,
                                max_queue=4,
                                open_timeout=None,  # the 30 s above cover the whole handshake
                                close_timeout=2,
                            )
                        )
                        init = {"type": "connection_init", "payload": {"token": machine.key}}
                        await ws.send(json.dumps(init))
                        acknowledged = json.loads(await ws.recv())
                    if acknowledged.get("type") != "connection_ack":
                        raise Unavailable(f"not acknowledged: {acknowledged.get('type')}")
                    await ws.send(
                        json.dumps(
                            {"id": "work", "type": "subscribe", "payload": {"query": PUSHED}}
                        )
                    )
                    async for raw in ws:
                        message = json.loads(raw)
                        if message.get("type") == "ping":
                            await ws.send(json.dumps({"type": "pong"}))
                        if message.get("type") != "next":
                            if message.get("type") in ("error", "complete"):
                                break
                            continue
                        if message["payload"].get("errors"):
                            break  # e.g. the key was rotated: reconnect with the new one
                        work = message["payload"]["data"]["machineAssignments"]
                        delay = 0.2
                        await self._apply_work(
                            machine,
                            {
                                "machineAssignments": work["assignments"],
                                "machineCommands": work["commands"],
                            },
                        )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server went away: retry, the poll covers meanwhile
                self.stats.retries += 1
                log.debug("%s: subscription: %s", machine.name, exc)
            await asyncio.sleep(delay * (0.5 + self.rng.random()))
            delay = min(delay * 2, 5.0)

    async def _take_work(self, machine: SimulatedMachine) -> None:
        await self._apply_work(machine, await self.call(WORK, {}, machine.key))

    async def _apply_work(self, machine: SimulatedMachine, work: dict[str, Any]) -> None:
        for command in work["machineCommands"]:
            await self._command(machine, command)
        for assignment in work["machineAssignments"]:
            run_id, attempt = assignment["runId"], int(assignment["attempt"])
            current = machine.held.get(run_id)
            if current is not None and current[0] >= attempt:
                continue  # already working on it
            if current is not None:  # re-dispatched to us: the old attempt is void
                current[1].cancel()
                self.log.write(
                    "superseded", **self._where(machine), run_id=run_id, attempt=current[0]
                )
            task = asyncio.create_task(self._work(machine, assignment))
            machine.held[run_id] = (attempt, task)

    async def _command(self, machine: SimulatedMachine, command: dict[str, Any]) -> None:
        run_id, username = command.get("runId"), command.get("username")
        if command["kind"] == "CANCEL_RUN" and run_id in machine.held:
            attempt, task = machine.held.pop(run_id)
            task.cancel()
            self.stats.cancelled += 1
            self.log.write("cancelled", **self._where(machine), run_id=run_id, attempt=attempt)
        elif username:  # END_SESSION (R34): the user is signed out
            held = [u for u in machine.sessions if u.casefold() == username.casefold()]
            for name in held:
                del machine.sessions[name]
            if held:
                self.stats.sessions_ended += 1
                self._heartbeat_now(machine)  # report it gone at once
                self.log.write("session_ended", **self._where(machine), username=username)
        await self.call(COMPLETE_COMMAND, {"id": command["id"]}, machine.key)

    def set_session(self, machine_id: str, username: str, state: str | None) -> None:
        """Put a user's session on a simulated machine in ``state`` (ACTIVE, LOCKED,
        DISCONNECTED) or sign it out (None); reported with the next heartbeat, sent at once."""
        if state is not None and state not in SESSION_STATES:
            raise ValueError(f"unknown session state {state!r}")
        machine = next(m for m in self.machines if m.id == machine_id)
        for name in [u for u in machine.sessions if u.casefold() == username.casefold()]:
            del machine.sessions[name]
        if state is not None:
            machine.sessions[username] = state
        self._heartbeat_now(machine)
        self.log.write("session_set", **self._where(machine), username=username, state=state)

    def _where(self, machine: SimulatedMachine) -> dict[str, str]:
        return {"machine": machine.name, "machine_id": machine.id}

    async def _work(self, machine: SimulatedMachine, assignment: dict[str, Any]) -> None:
        cfg = self.config
        run_id, attempt = assignment["runId"], int(assignment["attempt"])
        where = {**self._where(machine), "run_id": run_id, "attempt": attempt}
        try:
            confirmed = (
                await self.persist(CONFIRM, {"runId": run_id, "attempt": attempt}, machine.key)
            )["confirmRunStarted"]
            if confirmed["__typename"] != "FlowRunPayload":
                self.stats.rejected += 1
                self.log.write("rejected", **where, code=confirmed.get("code"))
                return
            self.stats.started += 1
            self.log.write("started", **where, mode=assignment["mode"], run_as=assignment["runAs"])
            seconds = self.rng.uniform(cfg.min_run_seconds, cfg.max_run_seconds)
            await asyncio.sleep(seconds)
            failed = self.rng.random() < cfg.failure_rate
            outcome = "FAILED" if failed else "SUCCEEDED"
            error_code = self.rng.choice(FAILURE_CODES) if failed else None
            # The bot lets go of the run here; the report may take a while if the server is down.
            self.log.write("finished", **where, outcome=outcome, seconds=round(seconds, 3))
            report = {
                "runId": run_id,
                "attempt": attempt,
                "outcome": outcome,
                "errorCode": error_code,
                "errorMessage": "simulated failure" if failed else None,
                "runtimeVersion": cfg.runtime_version,
            }
            reported = (await self.persist(FINISH, {"input": report}, machine.key))[
                "reportRunFinished"
            ]
            if reported["__typename"] == "FlowRunPayload":
                if failed:
                    self.stats.failed += 1
                else:
                    self.stats.succeeded += 1
                self.log.write("reported", **where, status=reported["run"]["status"])
            else:
                self.stats.report_rejected += 1
                self.log.write("report_rejected", **where, code=reported.get("code"))
        except Refused as exc:
            self.log.write("error", **where, message=str(exc))
        except Unavailable:
            pass  # stopping while the server is away
        finally:
            if machine.held.get(run_id, (None,))[0] == attempt:
                machine.held.pop(run_id, None)


# --- reading the log back -----------------------------------------------------------------------


@dataclass(frozen=True)
class LogCheck:
    started: dict[str, int]  # run id -> times a bot started it (any attempt)
    finished: dict[str, str]  # run id -> the outcome the simulator finished it with
    double_holds: list[str]  # runs held by two bots at the same time: must be empty (R30)
    double_finishes: list[str]  # runs the simulator finished more than once


def read_log(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def check_log(events: Iterable[dict[str, Any]]) -> LogCheck:
    """Prove from the simulator's side that no run was held twice at once (R30).

    A hold starts at ``started`` and ends at ``finished``, ``cancelled`` or ``superseded`` of the
    same run and attempt on the same machine.
    """
    holding: dict[str, set[tuple[str, int]]] = {}
    started: dict[str, int] = {}
    finished: dict[str, str] = {}
    double_holds: set[str] = set()
    double_finishes: set[str] = set()
    for e in events:  # in the order they were written
        run_id = e.get("run_id")
        if run_id is None:
            continue
        hold = (str(e.get("machine_id")), int(e.get("attempt", 0)))
        if e["event"] == "started":
            started[run_id] = started.get(run_id, 0) + 1
            held = holding.setdefault(run_id, set())
            if held:
                double_holds.add(run_id)
            held.add(hold)
        elif e["event"] in ("finished", "cancelled", "superseded"):
            holding.get(run_id, set()).discard(hold)
            if e["event"] == "finished":
                if run_id in finished:
                    double_finishes.add(run_id)
                finished[run_id] = e["outcome"]
    return LogCheck(
        started=started,
        finished=finished,
        double_holds=sorted(double_holds),
        double_finishes=sorted(double_finishes),
    )


def parse_session(text: str) -> tuple[str, str]:
    """``USER`` or ``USER=STATE`` (ACTIVE, LOCKED, DISCONNECTED) for the command line."""
    username, _, state = text.partition("=")
    state = (state or "ACTIVE").upper()
    if not username or state not in SESSION_STATES:
        raise ValueError(f"expected USER or USER=ACTIVE|LOCKED|DISCONNECTED, got {text!r}")
    return username, state


# --- the command line ---------------------------------------------------------------------------


def add_command(commands: Any) -> None:
    """``deskfleet simulate``: registered on the CLI's sub-command parser."""
    p = commands.add_parser(
        "simulate",
        help="run simulated machine runtimes against a DeskFleet server",
        description="Register N simulated machines through the API and work their runs: "
        "heartbeats with sessions, assignments, confirmations, random durations and outcomes.",
    )
    p.add_argument("--url", default=None, help="default: http://127.0.0.1:8000/graphql")
    p.add_argument("--token", help="a user token that may register machines (DESKFLEET_TOKEN)")
    p.add_argument("--environment-id", help="default: the first environment the token sees")
    p.add_argument("--machines", type=int, default=3)
    p.add_argument("--prefix", default="sim", help="machine names: PREFIX-01, PREFIX-02...")
    p.add_argument("--bots", type=int, default=1, help="unattended bots per machine (0: none)")
    p.add_argument("--group-id", help="add every machine to this group")
    p.add_argument(
        "--session",
        action="append",
        default=[],
        metavar="USER[=STATE]",
        help="a Windows session each machine reports (repeatable)",
    )
    p.add_argument("--session-churn", type=float, default=0.0)
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--max-seconds", type=float, default=5.0)
    p.add_argument("--failure-rate", type=float, default=0.1)
    p.add_argument("--heartbeat-seconds", type=float, default=5.0)
    p.add_argument("--poll-seconds", type=float, default=0.5)
    p.add_argument(
        "--push",
        action="store_true",
        help="take work from the machineAssignments subscription instead of polling",
    )
    p.add_argument(
        "--connections",
        type=int,
        default=SimulatorConfig.connections,
        help="HTTP connections shared by all machines: also the most calls (registrations "
        "included) and websocket handshakes in flight at once",
    )
    p.add_argument("--log", type=Path, help="append every start and finish to this JSONL file")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--seed", type=int)
    p.set_defaults(run=_simulate)


def _simulate(args: Any) -> int:
    import os
    import sys

    token = args.token or os.environ.get("DESKFLEET_TOKEN")
    if not token:
        print("deskfleet simulate: give --token or set DESKFLEET_TOKEN", file=sys.stderr)
        return 2
    try:
        sessions = [parse_session(s) for s in args.session]
    except ValueError as exc:
        print(f"deskfleet simulate: {exc}", file=sys.stderr)
        return 2
    config = SimulatorConfig(
        url=args.url or os.environ.get("DESKFLEET_URL") or SimulatorConfig.url,
        token=token,
        environment_id=args.environment_id,
        machines=args.machines,
        name_prefix=args.prefix,
        bots=args.bots,
        group_id=args.group_id,
        sessions=sessions,
        session_churn=args.session_churn,
        min_run_seconds=args.min_seconds,
        max_run_seconds=args.max_seconds,
        failure_rate=args.failure_rate,
        heartbeat_seconds=args.heartbeat_seconds,
        poll_seconds=args.poll_seconds,
        push=args.push,
        connections=args.connections,
        log_path=args.log,
        seed=args.seed,
    )

    async def main() -> Stats:
        async with Simulator(config) as simulator:
            machines = await simulator.register()
            names = [m.name for m in machines]
            if len(names) > 10:
                names = [*names[:3], "...", *names[-3:]]
            print(f"simulating {len(machines)} machine(s): {', '.join(names)}", flush=True)
            return await simulator.run(duration=args.duration)

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    # A websocket per machine with --push, and the HTTP connections.
    sockets = (config.machines if config.push else 0) + config.connections
    ensure_open_files(sockets, "the simulated machines need")
    try:
        stats = asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    print(
        f"started {stats.started}, succeeded {stats.succeeded}, failed {stats.failed}, "
        f"cancelled {stats.cancelled}, refused at start {stats.rejected}, "
        f"heartbeats {stats.heartbeats}"
    )
    return 0
