"""Subject and baseline under load at once, served in turns of a tenth of a second.

This host's speed drifts by 10-15 % within seconds and within fractions of one (other tenants
of the machine; no steal time shows it). Measured one after the other, even in rounds of a
second, subject and baseline saw different hosts: one `trivial` reading's rounds ranged from
0.77 to 0.98 for the same code and its median flipped the verdict between runs. Here both load
generators run for the whole round and the two servers (pinned to the same core) take turns:
one is stopped (SIGSTOP) while the other runs. Each server's rate is its requests over the
time it was let run, so both are measured across the same seconds of the host. Rounds so
measured read within ~2 % of each other. A turn is long enough that a switch costs nothing
measurable (caches refill in microseconds), unlike two servers sharing the core through the
scheduler, where the larger one lost ~5 % to switches every few milliseconds.

Rounds of one pair of server processes agree closely, but pairs do not: a process's hash seed
and memory layout are its own, and `list100` read from 0.55 to 0.58 across pairs of the same
code. A figure therefore takes its rounds from several pairs (:class:`Rounds`, as pyperf averages
over worker processes).
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.figures import Paired
from bench.load import Load
from bench.processes import Server

TURN_SECONDS = 0.1
StartLoad = Callable[[float], Load]  # starts the load generator for the given seconds


@dataclass
class Rounds:
    """Each round's rate of subject and baseline, from any number of server pairs."""

    subject: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)

    def paired(self) -> Paired:
        """The medians, and the median of the rounds' own ratios (the verdict)."""
        return Paired(
            statistics.median(self.subject),
            statistics.median(self.baseline),
            statistics.median([s / b for s, b in zip(self.subject, self.baseline, strict=True)]),
        )


def pairs_for(rounds: int) -> tuple[int, int]:
    """How many server pairs, and rounds on each, for at least ``rounds`` rounds: three pairs
    where there are rounds enough."""
    pairs = min(3, rounds)
    return pairs, -(-rounds // pairs)


def interleaved(
    rounds: int,
    seconds: float,
    subject: tuple[Server, StartLoad],
    baseline: tuple[Server, StartLoad],
    into: Rounds,
) -> None:
    """``rounds`` rounds of one pair of servers, each server running ``seconds`` in each,
    added to ``into``; after one untimed round (a fresh server's first second reads low:
    caches, the first credential look-up)."""
    _round(1, subject, baseline, first=0)
    for r in range(rounds):
        s, b = _round(seconds, subject, baseline, first=r % 2)
        into.subject.append(s)
        into.baseline.append(b)


def _round(
    seconds: float,
    subject: tuple[Server, StartLoad],
    baseline: tuple[Server, StartLoad],
    first: int,
) -> tuple[float, float]:
    """Requests per second of running time, subject's and baseline's; ``first`` (0 or 1) says
    which server has the first turn."""
    servers = (subject[0].process.pid, baseline[0].process.pid)
    ran = [0.0, 0.0]
    window = 2 * max(1, round(seconds))  # wrk's duration is whole seconds
    running = first
    os.kill(servers[1 - running], signal.SIGSTOP)
    try:
        loads = (subject[1](window), baseline[1](window))
        started = turn_began = time.monotonic()
        ends = started + window
        while (now := time.monotonic()) < ends:
            time.sleep(min(TURN_SECONDS, ends - now))
            now = min(time.monotonic(), ends)
            ran[running] += now - turn_began
            turn_began = now
            os.kill(servers[running], signal.SIGSTOP)
            running = 1 - running
            os.kill(servers[running], signal.SIGCONT)
    finally:
        for pid in servers:
            os.kill(pid, signal.SIGCONT)
    counts = [load.result().requests for load in loads]
    return counts[0] / ran[0], counts[1] / ran[1]
