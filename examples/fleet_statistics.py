"""An environment's trends with the `gql` client and examples/operations/statistics.graphql.

    DESKFLEET_URL=http://127.0.0.1:8000/graphql DESKFLEET_TOKEN=dfu_... \
        python examples/fleet_statistics.py [--environment NAME] [--hours 24] \
            [--bucket MINUTE|HOUR|DAY]

Prints one line per bucket (runs started, succeeded, failed, timed out; wait p50/p90; queue
depth and running runs, mean and peak; machines connected) and the busiest machines' mean
busy-bot share. The server reads its rollups, never the runs, so this costs the same on a
history of a million runs as on one of a thousand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from documents import operation
from gql import Client
from gql.transport.httpx import HTTPXAsyncTransport


def number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def line(b: dict[str, Any]) -> str:
    return (
        f"{b['start'][:16]}  started {b['runsStarted']:>4}  ok {b['runsSucceeded']:>4}  "
        f"failed {b['runsFailed']:>3}  timed out {b['runsTimedOut']:>3}  "
        f"wait p50 {number(b['waitSecondsP50']):>6}s p90 {number(b['waitSecondsP90']):>6}s  "
        f"queued {number(b['queueDepthMean'])}/{b['queueDepthPeak'] if b['queueDepthPeak'] is not None else '-'}  "
        f"running {number(b['runningMean'])}/{b['runningPeak'] if b['runningPeak'] is not None else '-'}  "
        f"connected {number(b['machinesConnectedMean'])}"
    )


async def main(url: str, token: str, args: argparse.Namespace) -> int:
    transport = HTTPXAsyncTransport(url=url, headers={"Authorization": f"Bearer {token}"})
    async with Client(transport=transport) as session:
        environments = (await session.execute(operation("statistics.graphql", "Environments")))[
            "environments"
        ]
        chosen = [e for e in environments if e["name"].casefold() == args.environment.casefold()]
        if not chosen:
            print(f"no environment named {args.environment!r} is visible to you", file=sys.stderr)
            return 1
        now = datetime.now(UTC)
        answer = (
            await session.execute(
                operation(
                    "statistics.graphql",
                    "FleetStatistics",
                    environmentId=chosen[0]["id"],
                    **{"from": (now - timedelta(hours=args.hours)).isoformat()},
                    to=now.isoformat(),
                    bucket=args.bucket,
                )
            )
        )["fleetStatistics"]
        if answer["__typename"] != "FleetStatistics":
            print(f"{answer['__typename']} {answer['code']}: {answer['message']}", file=sys.stderr)
            return 1
        print(f"{answer['environment']['name']}: {answer['from']} to {answer['to']}")
        for bucket in answer["buckets"]:
            print(line(bucket))
        print(f"busiest machines (mean busy-bot share per {answer['utilisationBucket'].lower()}):")
        for machine in answer["machines"]:
            shares = machine["busyShare"]
            print(f"  {machine['name']:<24} {sum(shares) / max(1, len(shares)):.0%}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--environment", default="Default")
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--bucket", default="HOUR", choices=("MINUTE", "HOUR", "DAY"))
    url = os.environ.get("DESKFLEET_URL", "http://127.0.0.1:8000/graphql")
    token = os.environ.get("DESKFLEET_TOKEN")
    if not token:
        sys.exit("set DESKFLEET_TOKEN to an API token")
    sys.exit(asyncio.run(main(url, token, parser.parse_args())))
