"""``python -m bench [--quick] [--check] [--json FILE]``: every benchmark, each against a baseline
measured in the same run, one line per figure, then a summary."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
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
    args = parser.parse_args(argv)
    sizes = Sizes.tiny() if args.tiny else Sizes.quick() if args.quick else Sizes.full()

    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="deskfleet-bench-") as tmp:
        for name, suite in SUITES.items():
            if args.only and name not in args.only:
                continue
            for figure in suite(Path(tmp), sizes):
                print(figure.line(), flush=True)
                figures.append(figure)

    passed = sum(f.passed for f in figures)
    skipped = [f.name for f in figures if f.skipped is not None]
    measured = len(figures) - len(skipped)
    print(
        f"summary: {passed}/{measured} targets met ({sizes.label})"
        + (f"; skipped: {', '.join(skipped)}" if skipped else "")
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"sizes": sizes.label, "figures": [f.as_dict() for f in figures]}, indent=2)
        )
    return 1 if args.check and passed < measured else 0


if __name__ == "__main__":
    sys.exit(main())
