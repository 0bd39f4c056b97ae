"""``python -m bench.steady [--runs N] [--only SUITE...] [--json FILE] [--tiny]``: whether each
figure's verdict holds over repeated quick runs of the same code (``--tiny``: the harness only).

A figure whose verdict flips between runs cannot decide whether a change lands. This runs
``python -m bench --quick`` ``N`` times in a row (default 10), every other run with a process
spinning on the load generator's core (the core the server under test is not pinned to), and
prints each figure's readings, one column a run, with its verdict over all of them: ``steady``
when every run passed or every run failed, else ``FLIPS``. It exits non-zero when a figure flips
or misses its target in any run. A run whose figures cannot be read (the benchmark itself
failed) stops it, as a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench import processes

SPIN = "while True: pass"


@dataclass
class Readings:
    """One figure over the runs: its reading in each, and whether it met its target."""

    name: str
    values: list[str] = field(default_factory=list)
    passed: list[bool] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return "steady" if len(set(self.passed)) == 1 else "FLIPS"


@contextmanager
def _other_core_busy(busy: bool) -> Iterator[None]:
    """With ``busy``, a process spinning on the load generator's core while the run lasts."""
    if not busy:
        yield
        return
    _, load_core = processes.cores()
    spinner = subprocess.Popen(
        [sys.executable, "-c", SPIN], preexec_fn=processes.on_core(load_core)
    )
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


def _reading(figure: dict[str, object]) -> str:
    if figure.get("skipped"):
        return "skipped"
    value = figure["value"] if figure.get("target_on_value") else figure["ratio"]
    return f"{value:.3g}" if isinstance(value, float | int) else str(value)


def _one_run(size: str, only: list[str] | None, busy: bool, out: Path) -> list[dict[str, object]]:
    command = [sys.executable, "-m", "bench", size, "--json", str(out)]
    if only:
        command += ["--only", *only]
    with _other_core_busy(busy):
        subprocess.run(command, check=True)
    figures: list[dict[str, object]] = json.loads(out.read_text())["figures"]
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.steady")
    parser.add_argument("--runs", type=int, default=10, help="quick runs in a row (default 10)")
    parser.add_argument("--only", nargs="*", help="run only these suites")
    parser.add_argument("--json", type=Path, help="write every run's figures to this file")
    parser.add_argument("--tiny", action="store_true", help="smallest sizes: the harness only")
    args = parser.parse_args(argv)
    readings: dict[str, Readings] = {}
    runs: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="deskfleet-steady-") as tmp:
        for run in range(args.runs):
            busy = run % 2 == 1
            print(f"== run {run + 1} of {args.runs}, other core {'busy' if busy else 'idle'}")
            sys.stdout.flush()
            size = "--tiny" if args.tiny else "--quick"
            figures = _one_run(size, args.only, busy, Path(tmp) / f"run-{run}.json")
            runs.append({"other_core_busy": busy, "figures": figures})
            for figure in figures:
                if figure.get("skipped"):
                    continue
                name = str(figure["name"])
                found = readings.setdefault(name, Readings(name))
                found.values.append(_reading(figure))
                found.passed.append(bool(figure["passed"]))
    print(f"{'figure':<20} {'verdict':<8} readings (runs with the other core busy in [])")
    for found in readings.values():
        shown = [v if i % 2 == 0 else f"[{v}]" for i, v in enumerate(found.values)]
        print(f"{found.name:<20} {found.verdict:<8} {' '.join(shown)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs}, indent=2))
    steady = all(r.verdict == "steady" and all(r.passed) for r in readings.values())
    return 0 if steady else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
