"""The benchmark harness itself, at its tiny size: every figure runs and is reported.

Not a timed assertion: a shared, noisy machine says nothing about speed at this size. It checks
that each line has the agreed shape and that every figure produced a value (or says why not).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from bench.load import Load

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {
    "list100",
    "trivial",
    "sql_per_page",
    "dispatch_sqlite",
    "dispatch_pg",
    "fanout_p99",
    "sub_memory",
    "neighbour_p99",
    "heartbeats",
    "assignment_latency",
    "eta_error",
    "stats_query",
}
NUMBER = r"-?[\d.]+(?:e[+-]?\d+)?"
LINE = re.compile(
    rf"^(?P<name>\w+)\s+value=(?P<value>{NUMBER})(?: [\w/]+)?\s+baseline=(?:{NUMBER}|-)\s+"
    rf"ratio=(?:{NUMBER})\s+target=\S+\s+(?:PASS|FAIL)$"
)
SKIPPED = re.compile(
    r"^(?P<name>\w+)\s+value=-\s+baseline=-\s+ratio=-\s+target=\S+\s+SKIPPED \(.+\)$"
)


def test_every_figure_is_measured_and_reported(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr  # no --check: misses are reported
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("summary: "), lines
    reported: dict[str, str] = {}
    for line in lines[:-1]:
        match = LINE.match(line) or SKIPPED.match(line)
        assert match, f"not a figure line: {line!r}"
        reported[match["name"]] = line
    assert set(reported) == FIGURES

    results = {f["name"]: f for f in json.loads(out.read_text())["figures"]}
    assert set(results) == FIGURES
    for name, figure in results.items():
        if figure["skipped"]:
            assert "SKIPPED" in reported[name]
            continue
        assert isinstance(figure["value"], float | int) and figure["value"] > 0, figure
        assert isinstance(figure["passed"], bool)
        if name not in ("sub_memory",):
            assert figure["baseline"] and figure["baseline"] > 0, figure


def test_subject_and_baseline_each_go_first_every_other_round() -> None:
    from bench.figures import turns

    assert [turns(r) for r in range(4)] == [
        ("subject", "baseline"),
        ("baseline", "subject"),
        ("subject", "baseline"),
        ("baseline", "subject"),
    ]


def test_one_core_puts_the_benchmark_and_the_threads_it_starts_on_one_core() -> None:
    """``--one-core``: the event loop's thread and the database threads started under it share a
    core (the dispatch figures' hard case), and the process's cores come back afterwards."""
    import os
    import threading

    from bench.__main__ import _cores

    before = os.sched_getaffinity(0)
    seen: list[set[int]] = []
    with _cores(True):
        inside = os.sched_getaffinity(0)
        worker = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))
        worker.start()
        worker.join()
    assert inside == {min(before)}
    assert seen == [{min(before)}]
    assert os.sched_getaffinity(0) == before


def test_one_core_run_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--one-core", "--only", "dispatch_sqlite"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    figure, summary = done.stdout.strip().splitlines()
    assert LINE.match(figure) and figure.startswith("dispatch_sqlite"), figure
    assert summary.startswith("summary: ") and summary.endswith("(tiny, one core)"), summary


def test_one_core_where_cores_cannot_be_chosen_is_a_clear_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from bench.__main__ import main

    monkeypatch.delattr(os, "sched_setaffinity")
    with pytest.raises(SystemExit) as exited:
        main(["--tiny", "--one-core", "--only", "dispatch_sqlite"])
    assert exited.value.code == 2
    assert "--one-core needs a system with os.sched_setaffinity" in capsys.readouterr().err


def test_interleaved_servers_take_turns_and_are_left_running(tmp_path: Path) -> None:
    """Two identical servers measured in turns read alike (each rate is its requests over the
    time it was let run), and neither is left stopped."""
    from bench import processes
    from bench.interleaved import Rounds, interleaved
    from bench.load import post_load

    def load(server: processes.Server) -> tuple[processes.Server, Callable[[float], Load]]:
        return server, lambda seconds: post_load(
            server.url + "/graphql", "{ hello }", None, seconds=seconds, connections=4
        )

    with processes.baseline(tmp_path) as one, processes.baseline(tmp_path) as other:
        one.wait_ready()
        other.wait_ready()
        rounds = Rounds()
        interleaved(1, 1, load(one), load(other), into=rounds)
        interleaved(1, 1, load(one), load(other), into=rounds)
        states = [_state(server.process.pid) for server in (one, other)]
    measured = rounds.paired()
    assert len(rounds.subject) == len(rounds.baseline) == 2
    assert measured.subject > 0 and measured.baseline > 0
    assert 0.6 < measured.ratio < 1 / 0.6, measured
    assert "T" not in states, states  # T: stopped


def _state(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    raise AssertionError("no State line")


def test_steady_runs_again_with_the_other_core_busy_every_other_time(tmp_path: Path) -> None:
    """bench.steady: each figure's readings over the runs and one verdict for all of them."""
    out = tmp_path / "steady.json"
    command = ["-m", "bench.steady", "--tiny", "--runs", "2", "--only", "sql_per_page"]
    done = subprocess.run(
        [sys.executable, *command, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runs = json.loads(out.read_text())["runs"]
    assert [r["other_core_busy"] for r in runs] == [False, True]
    assert all([f["name"] for f in r["figures"]] == ["sql_per_page"] for r in runs)
    table = done.stdout.split("\nfigure ", 1)[1]  # after the runs' own lines
    assert table.splitlines()[1].split() == ["sql_per_page", "steady", "1", "[1]"], done.stdout
