"""R42 as a pure function: when each queued run of an environment is likely to start.

The queue is played forward as the dispatcher would take it (R25 order, R26's checks): every
bot a run could use becomes free when the run it carries is expected to end, and each queued
run in turn takes the candidate bot that frees first, then holds it for its own flow's expected
duration. A run's estimate is when it takes its bot. What nobody can foresee (a machine coming
back online, leaving maintenance, updating its runtime, a person signing in or out) makes a
machine unusable for the estimate, never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from domain.fleet.sessions import user_key
from domain.runs.candidates import MachineState
from domain.store.models import RunMode, SessionState

# A flow's mean moves a fifth of the way to each new duration: about its last ten runs count.
MEAN_WEIGHT = 0.2
_UNKNOWN = math.inf  # a bot whose release nobody can tell


class EstimateUnknown(str, Enum):
    """R42: why a queued run has no estimated start."""

    # Every machine it may use is offline, in maintenance, below the minimum runtime, or held by
    # a session that only a person ends (or, attended, lacks the session it needs).
    NO_USABLE_MACHINE = "NO_USABLE_MACHINE"
    # The runs it waits for belong to flows that never ran to an end in its environment.
    NO_RUN_HISTORY = "NO_RUN_HISTORY"


@dataclass(frozen=True)
class ActiveRun:
    """A run DISPATCHED or RUNNING: it holds a bot (unattended) or a session (attended)."""

    machine_id: str
    mode: RunMode
    run_as: str
    flow_id: str
    since: datetime  # started, or dispatched while not started yet


@dataclass(frozen=True)
class QueuedFacts:
    id: str
    mode: RunMode
    run_as: str
    flow_id: str
    machine_ids: tuple[str, ...]  # its candidates (domain/runs/queue_state.py: candidate_ids)
    not_before: datetime | None = None  # it may not start earlier (a retry's delay)


@dataclass(frozen=True)
class Estimate:
    at: datetime | None
    unknown: EstimateUnknown | None = None


class Durations:
    """Expected seconds per flow: its own mean, else the environment's typical run."""

    def __init__(self, means: Mapping[str, float]):
        self.means = means
        self.typical = sum(means.values()) / len(means) if means else None

    def of(self, flow_id: str) -> float:
        found = self.means.get(flow_id, self.typical)
        return _UNKNOWN if found is None else found


def next_mean(mean: float | None, seconds: float) -> float:
    return seconds if mean is None else mean + MEAN_WEIGHT * (seconds - mean)


def _usable(run: QueuedFacts, machine: MachineState) -> bool:
    if not machine.connected or machine.maintenance or machine.outdated:
        return False
    user = user_key(run.run_as)
    if run.mode is RunMode.UNATTENDED:
        return machine.unattended_bots > 0 and user not in machine.sessions
    return machine.sessions.get(user) is SessionState.ACTIVE


def _bots(
    machines: Mapping[str, MachineState],
    active: Sequence[ActiveRun],
    durations: Durations,
    now: float,
) -> tuple[dict[str, list[float]], dict[tuple[str, str], float]]:
    """When each machine's unattended bots free up (one entry per bot), and each attended
    session carrying a run: the expected end of the runs they carry, never before now."""
    ends: dict[str, list[float]] = {}
    sessions: dict[tuple[str, str], float] = {}
    for run in active:
        end = max(now, run.since.timestamp() + durations.of(run.flow_id))
        if run.mode is RunMode.UNATTENDED:
            ends.setdefault(run.machine_id, []).append(end)
        else:
            sessions[(run.machine_id, user_key(run.run_as))] = end
    bots: dict[str, list[float]] = {}
    for machine in machines.values():
        carried = sorted(ends.get(machine.id, ()))
        count = machine.unattended_bots
        # More runs than bots (bots were taken away): a bot frees as the oldest runs end.
        free = [now] * max(0, count - len(carried)) + carried[max(0, len(carried) - count) :]
        bots[machine.id] = free
    return bots, sessions


def estimate_starts(
    queued: Sequence[QueuedFacts],
    machines: Mapping[str, MachineState],
    active: Sequence[ActiveRun],
    durations: Durations,
    now: datetime,
) -> dict[str, Estimate]:
    """Each queued run's estimate; ``queued`` in queue order, as R25 takes it."""
    clock = now.timestamp()
    bots, sessions = _bots(machines, active, durations, clock)
    result: dict[str, Estimate] = {}
    for run in queued:
        usable = [machines[i] for i in run.machine_ids if i in machines]
        usable = [m for m in usable if _usable(run, m)]
        if not usable:
            result[run.id] = Estimate(None, EstimateUnknown.NO_USABLE_MACHINE)
            continue
        earliest = max(clock, run.not_before.timestamp()) if run.not_before else clock
        if run.mode is RunMode.UNATTENDED:
            free, machine_id = min((min(bots[m.id]), m.id) for m in usable)
            start = max(free, earliest)
            taken = bots[machine_id]
            taken[taken.index(free)] = start + durations.of(run.flow_id)
        else:
            user = user_key(run.run_as)
            free, machine_id = min((sessions.get((m.id, user), clock), m.id) for m in usable)
            start = max(free, earliest)
            sessions[(machine_id, user)] = start + durations.of(run.flow_id)
        if start == _UNKNOWN:
            result[run.id] = Estimate(None, EstimateUnknown.NO_RUN_HISTORY)
        else:
            result[run.id] = Estimate(now + timedelta(seconds=start - clock))
    return result
