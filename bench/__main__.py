"""``python -m bench [--quick] [--check] [--json FILE] [--one-core]``: every benchmark, each
against a baseline measured in the same run, one line per figure, then a summary."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.figures import Figure, Sizes
from bench.suites import SUITES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "--quick", action="store_true", help="reduced sizes (a few minutes on 2 cores)"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="smallest sizes: checks the harness only"
    )
    parser.add_argument("--check", action="store_true", help="exit non-zero if a target is missed")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--only", nargs="*", help="run only these benchmarks")
    parser.add_argument(
        "--one-core",
        action="store_true",
        help="run the in-process benchmarks (dispatch) with every thread on one core",
    )
    args = parser.parse_args(argv)
    if args.one_core and not hasattr(os, "sched_setaffinity"):
        parser.error("--one-core needs a system with os.sched_setaffinity (Linux)")
    sizes = Sizes.tiny() if args.tiny else Sizes.quick() if args.quick else Sizes.full()

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="deskfleet-bench-") as tmp, _cores(args.one_core):
        for name, suite in SUITES.items():
            if args.only and name not in args.only:
                continue
            for figure in suite(Path(tmp), sizes):
                print(figure.line(), flush=True)
                figures.append(figure)

    passed = sum(f.passed for f in figures)
    skipped = [f.name for f in figures if f.skipped is not None]
    measured = len(figures) - len(skipped)
    label = f"{sizes.label}, one core" if args.one_core else sizes.label
    print(
        f"summary: {passed}/{measured} targets met ({label})"
        + (f"; skipped: {', '.join(skipped)}" if skipped else "")
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"sizes": sizes.label, "figures": [f.as_dict() for f in figures]}, indent=2)
        )
    return 1 if args.check and passed < measured else 0


@contextlib.contextmanager
def _cores(one: bool) -> Iterator[None]:
    """With ``one``, this thread and every thread it starts (the event loop's, aiosqlite's) run
    on one core: a hand-off between the event loop and a database thread then wakes no other
    core. Such hand-offs cost ~100 us on some hosts and a few us on others, and the raw dispatch
    loop makes four a run to the subject's one, so this is the dispatch figures' hard case on any
    host. The HTTP and websocket servers pin their own processes as before."""
    if not one:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


if __name__ == "__main__":
    sys.exit(main())
