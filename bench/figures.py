"""One measured figure and the sizes a run uses."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Sizes:
    label: str
    machines: int
    groups: int
    runs: int
    seconds: float  # per measurement round
    rounds: int
    dispatch_runs: int
    dispatch_machines: int
    subscribers: int
    changes: int
    fleet: int  # machines heartbeating, and holding assignment subscriptions
    eta_runs: int  # runs measured by eta_error
    stats_runs: int  # the long history's runs in stats_query (the short one: a hundredth)

    @classmethod
    def full(cls) -> Sizes:
        return cls("full", 1000, 20, 5000, 10, 5, 2000, 200, 10_000, 50, 10_000, 2000, 1_000_000)

    @classmethod
    def quick(cls) -> Sizes:
        return cls("quick", 1000, 20, 5000, 3, 9, 600, 200, 2000, 20, 2000, 500, 1_000_000)

    @classmethod
    def tiny(cls) -> Sizes:
        return cls("tiny", 120, 4, 300, 1, 1, 40, 10, 20, 3, 100, 60, 20_000)


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    baseline: float | None
    target: str
    passes: Callable[[float], bool]
    unit: str = ""
    skipped: str | None = None  # why the figure could not be measured here
    detail: dict[str, object] | None = None  # the sizes it was measured at, in --json
    # The median of per-round ratios (see :func:`paired`), when subject and baseline were
    # measured in rounds; value and baseline are then each one's median, for reading.
    paired_ratio: float | None = None
    # The target is on the value itself (an error, a size); the baseline is there to compare.
    target_on_value: bool = False

    @classmethod
    def skipped_because(cls, name: str, target: str, reason: str) -> Figure:
        return cls(name, float("nan"), None, target, lambda _: True, skipped=reason)

    @property
    def ratio(self) -> float:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.baseline in (None, 0):
            return self.value
        return self.value / self.baseline

    @property
    def passed(self) -> bool:
        return self.skipped is None and self.passes(
            self.value if self.target_on_value else self.ratio
        )

    def line(self) -> str:
        if self.skipped is not None:
            return (
                f"{self.name:<16} value=-  baseline=-  ratio=-  target={self.target}  "
                f"SKIPPED ({self.skipped})"
            )
        baseline = "-" if self.baseline is None else f"{self.baseline:.4g}"
        return (
            f"{self.name:<16} value={self.value:.4g}{self.unit}  baseline={baseline}  "
            f"ratio={self.ratio:.3f}  target={self.target}  {'PASS' if self.passed else 'FAIL'}"
        )

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("passes")
        if self.skipped is not None:
            return {**data, "value": None, "ratio": None, "passed": None}
        return {**data, "ratio": self.ratio, "passed": self.passed}


def turns(round_: int) -> tuple[str, str]:
    """Who is measured first in ``round_``: subject and baseline take turns, so drift on a noisy
    machine does not always favour the one measured first."""
    return ("subject", "baseline") if round_ % 2 == 0 else ("baseline", "subject")


@dataclass(frozen=True)
class Paired:
    subject: float  # the median of the subject's rounds
    baseline: float  # the median of the baseline's rounds
    ratio: float  # the median of each round's subject / baseline


def paired(rounds: int, subject: Callable[[], float], baseline: Callable[[], float]) -> Paired:
    """Subject and baseline measured back to back in each of ``rounds`` (taking turns, see
    :func:`turns`), after one untimed round of each.

    The verdict is the median of each round's own ratio. This host's speed drifts by ~10% over
    seconds (other tenants): five bare baselines measured in turns dipped together, round by
    round. The ratio of two medians let such a dip hit one side only and flipped `trivial`'s
    verdict between runs of the same code; two measurements seconds apart share most of it.
    The first round of a fresh server read up to 10% low (caches, the first credential look-up).
    """
    subject()
    baseline()
    measured: dict[str, list[float]] = {"subject": [], "baseline": []}
    measure = {"subject": subject, "baseline": baseline}
    for r in range(rounds):
        for who in turns(r):
            measured[who].append(measure[who]())
    return Paired(
        statistics.median(measured["subject"]),
        statistics.median(measured["baseline"]),
        statistics.median(
            [s / b for s, b in zip(measured["subject"], measured["baseline"], strict=True)]
        ),
    )
