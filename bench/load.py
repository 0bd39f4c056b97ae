"""The load generator: wrk (Debian's package), a separate process, the same for subject and baseline."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.processes import on_core


@dataclass(frozen=True)
class Throughput:
    requests_per_second: float
    requests: int
    bad_responses: int


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is needed for the HTTP benchmarks: apt-get install wrk")
    return found


def _lua(query: str, token: str | None) -> str:
    body = json.dumps({"query": query})
    lines = [
        'wrk.method = "POST"',
        f"wrk.body = {json.dumps(body)}",
        'wrk.headers["Content-Type"] = "application/json"',
    ]
    if token:
        lines.append(f'wrk.headers["Authorization"] = "Bearer {token}"')
    return "\n".join(lines) + "\n"


def post_throughput(
    url: str,
    query: str,
    token: str | None,
    *,
    seconds: float,
    connections: int = 16,
    core: int | None = None,
) -> Throughput:
    """POST one GraphQL document over keep-alive connections for ``seconds``, from ``core`` if
    given (bench/processes.py's ``cores``)."""
    wrk = ensure_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(query, token))
    try:
        out = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                script.name,
                "--latency",
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            preexec_fn=on_core(core),
        ).stdout
    finally:
        Path(script.name).unlink(missing_ok=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Throughput(rps, total, int(bad.group(1)) if bad else 0)
