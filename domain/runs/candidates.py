"""R26 as a pure function: which machine a queued run may go to, or why it waits (R29).

Everything here works on plain data, never on the database: the dispatcher (domain/dispatch/dispatcher.py)
and the queue views (domain/runs/runs.py) load the same snapshot and call the same :func:`plan`, so the
wait reason a queue shows is exactly the reason the dispatcher did not dispatch the run.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from domain.fleet.sessions import user_key
from domain.store.models import RunMode, SessionState


class WaitReason(str, Enum):
    """R29: why a queued run is not running yet."""

    NO_MACHINE = "NO_MACHINE"  # the target group has no machine (or the machine is gone)
    MACHINE_OFFLINE = "MACHINE_OFFLINE"  # R9: no recent heartbeat
    MAINTENANCE = "MAINTENANCE"  # R16-R18
    RUNTIME_OUTDATED = "RUNTIME_OUTDATED"  # R41: its runtime is below the environment's minimum
    NO_FREE_BOT = "NO_FREE_BOT"  # R24: every unattended bot carries a run
    USER_SESSION_EXISTS = "USER_SESSION_EXISTS"  # R26: unattended, the user has a session
    NO_ACTIVE_SESSION = "NO_ACTIVE_SESSION"  # R26: attended, the user has no ACTIVE session
    SESSION_BUSY = "SESSION_BUSY"  # R26: attended, an attended run already uses that session
    BEHIND_IN_QUEUE = "BEHIND_IN_QUEUE"  # R25: it could start, runs ahead of it take the room
    RETRY_DELAY = "RETRY_DELAY"  # R40: a retry waiting out its delay


# How far a machine got through R26's checks: for a group, the reason shown is the one of the
# machine that came closest to taking the run.
_PROGRESS = {
    WaitReason.NO_MACHINE: 0,
    WaitReason.MACHINE_OFFLINE: 1,
    WaitReason.MAINTENANCE: 2,
    WaitReason.RUNTIME_OUTDATED: 3,
    WaitReason.NO_FREE_BOT: 4,
    WaitReason.NO_ACTIVE_SESSION: 4,
    WaitReason.SESSION_BUSY: 5,
    WaitReason.USER_SESSION_EXISTS: 5,
}


@dataclass(frozen=True)
class MachineState:
    """What R26 needs to know about one machine, at one instant."""

    id: str
    connected: bool  # R9
    maintenance: bool  # effective: its own or its group's (R16-R18), off during key actions (R10)
    unattended_bots: int  # R24
    outdated: bool = False  # R41: its runtime is below the environment's minimum
    busy_bots: int = 0  # unattended runs DISPATCHED or RUNNING on it
    running: int = 0  # every run DISPATCHED or RUNNING on it (for spreading load)
    last_assigned_at: datetime | None = None
    sessions: Mapping[str, SessionState] = field(default_factory=dict)  # by user_key
    attended_users: frozenset[str] = frozenset()  # user_keys whose session carries a run
    # R26's load spreading: fewest runs first, then the one assigned longest ago (never assigned
    # first). Compared for every candidate of every run a pass plans, so made with the state (a
    # cached_property takes a lock on its first read, on Python 3.11: a fifth of planning).
    spread_key: tuple[int, int, float, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        last = self.last_assigned_at
        key = (self.running, 0 if last is None else 1, last.timestamp() if last else 0.0, self.id)
        object.__setattr__(self, "spread_key", key)


@dataclass(frozen=True)
class RunRequest:
    id: str
    mode: RunMode
    run_as: str
    # ``run_as`` as sessions are keyed (checked against every candidate machine).
    user: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "user", user_key(self.run_as))


def check(run: RunRequest, machine: MachineState) -> WaitReason | None:
    """R26 for one run on one machine: ``None`` when the machine may take it now."""
    if not machine.connected:
        return WaitReason.MACHINE_OFFLINE
    if machine.maintenance:
        return WaitReason.MAINTENANCE
    if machine.outdated:
        return WaitReason.RUNTIME_OUTDATED
    user = run.user
    if run.mode is RunMode.UNATTENDED:
        if machine.busy_bots >= machine.unattended_bots:
            return WaitReason.NO_FREE_BOT
        if user in machine.sessions:
            return WaitReason.USER_SESSION_EXISTS
        return None
    if machine.sessions.get(user) is not SessionState.ACTIVE:
        return WaitReason.NO_ACTIVE_SESSION
    if user in machine.attended_users:
        return WaitReason.SESSION_BUSY
    return None


def choose(run: RunRequest, machines: Sequence[MachineState]) -> MachineState | WaitReason:
    """The machine a run goes to among its candidates, spreading load (R26), or why it waits:
    for a group, the reason of the machine that came closest to taking it."""
    best: MachineState | None = None
    closest: WaitReason | None = None
    for machine in machines:
        reason = check(run, machine)
        if reason is None:
            if best is None or machine.spread_key < best.spread_key:
                best = machine
        elif closest is None or _PROGRESS[reason] > _PROGRESS[closest]:
            closest = reason
    if best is not None:
        return best
    return WaitReason.NO_MACHINE if closest is None else closest


def take(run: RunRequest, machine: MachineState, now: datetime) -> MachineState:
    """The machine's state once it carries ``run``."""
    unattended = run.mode is RunMode.UNATTENDED
    # Built field by field: dataclasses.replace looks the fields up again for every run planned.
    return MachineState(
        id=machine.id,
        connected=machine.connected,
        maintenance=machine.maintenance,
        unattended_bots=machine.unattended_bots,
        outdated=machine.outdated,
        busy_bots=machine.busy_bots + (1 if unattended else 0),
        running=machine.running + 1,
        last_assigned_at=now,
        sessions=machine.sessions,
        attended_users=machine.attended_users
        if unattended
        else machine.attended_users | {run.user},
    )


@dataclass(frozen=True)
class QueuedRun:
    """A queued run in queue order, with the machines its queue may use."""

    request: RunRequest
    machine_ids: tuple[str, ...]


@dataclass(frozen=True)
class Plan:
    assignments: dict[str, str]  # run id -> machine id
    reasons: dict[str, WaitReason]  # run id -> why it waits


class _Candidates:
    """The machines runs of one kind (same candidates, mode and user) may go to, cheapest first.

    R26 only ever takes room during a plan: a machine a run of this kind cannot use now stays
    unusable for the rest of the plan, and a machine's spread key only grows. So entries are
    fixed lazily: an unusable machine is dropped when it surfaces, a stale key is re-sorted, and
    each run costs a few heap steps instead of a check of every candidate.
    """

    def __init__(
        self, request: RunRequest, ids: Sequence[str], current: Mapping[str, MachineState]
    ):
        self.heap = [
            (m.spread_key, m.id)
            for m in (current[i] for i in ids if i in current)
            if check(request, m) is None
        ]
        heapq.heapify(self.heap)
        self.reason: WaitReason | None = None  # why runs of this kind wait, once one does

    def pick(self, request: RunRequest, current: Mapping[str, MachineState]) -> MachineState | None:
        heap = self.heap
        while heap:
            key, machine_id = heap[0]
            machine = current[machine_id]
            if check(request, machine) is not None:
                heapq.heappop(heap)
            elif machine.spread_key != key:
                heapq.heapreplace(heap, (machine.spread_key, machine_id))
            else:
                heapq.heappop(heap)
                return machine
        return None

    def put_back(self, request: RunRequest, machine: MachineState) -> None:
        if check(request, machine) is None:
            heapq.heappush(self.heap, (machine.spread_key, machine.id))


def plan(queued: Iterable[QueuedRun], machines: Mapping[str, MachineState], now: datetime) -> Plan:
    """R25 + R26 for a whole environment: walk the runs in queue order and give each the best
    machine still free (what :func:`choose` picks). A run that cannot start is skipped, never
    holding back those behind it.
    """
    current = dict(machines)
    kinds: dict[tuple[tuple[str, ...], RunMode, str], _Candidates] = {}
    assignments: dict[str, str] = {}
    reasons: dict[str, WaitReason] = {}
    for item in queued:
        request = item.request
        kind = (item.machine_ids, request.mode, request.user)
        candidates = kinds.get(kind)
        if candidates is None:
            candidates = kinds[kind] = _Candidates(request, item.machine_ids, current)
        picked = candidates.pick(request, current)
        if picked is not None:
            assignments[request.id] = picked.id
            current[picked.id] = taken = take(request, picked, now)
            candidates.put_back(request, taken)
            continue
        if candidates.reason is None:
            before = choose(request, [machines[i] for i in item.machine_ids if i in machines])
            # Free before this pass but taken by runs ahead of it: it waits its turn, nothing
            # else. The same for every run of this kind, whatever the others took meanwhile.
            candidates.reason = (
                WaitReason.BEHIND_IN_QUEUE if isinstance(before, MachineState) else before
            )
        reasons[request.id] = candidates.reason
    return Plan(assignments=assignments, reasons=reasons)
