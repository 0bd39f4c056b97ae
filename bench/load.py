"""The load generator: wrk (Debian's package), a separate process, the same for subject and baseline."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.processes import on_core


@dataclass(frozen=True)
class Throughput:
    requests_per_second: float
    requests: int
    bad_responses: int
    p99_ms: float = math.nan


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _p99_ms(out: str) -> float:
    """wrk's ``--latency`` distribution, its 99% line."""
    found = re.search(r"^\s*99(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\b", out, re.MULTILINE)
    return float(found.group(1)) * _UNITS_MS[found.group(2)] if found else math.nan


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


def _rotating_lua(requests: Sequence[tuple[str, str]]) -> str:
    """Each request the next (bearer, JSON body) of ``requests``, round robin."""
    rows = ",\n".join(
        f"  {{{json.dumps('Bearer ' + token)}, {json.dumps(body)}}}" for token, body in requests
    )
    return (
        f"local requests = {{\n{rows}\n}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #requests + 1\n"
        "  local r = requests[i]\n"
        '  return wrk.format("POST", nil, '
        '{["Content-Type"] = "application/json", ["Authorization"] = r[1]}, r[2])\n'
        "end\n"
    )


def rotating_throughput(
    url: str,
    requests: Sequence[tuple[str, str]],
    *,
    seconds: float,
    connections: int = 16,
    core: int | None = None,
) -> Throughput:
    """As :func:`post_load`, to its end, each request the next of ``requests`` (bearer, JSON body): many
    callers (machine keys) from one load generator."""
    return _wrk(url, _rotating_lua(requests), seconds, connections, core)


class Load:
    """A running wrk: started now, its :class:`Throughput` read with :meth:`result`."""

    def __init__(
        self, url: str, lua: str, seconds: float, connections: int, core: int | None
    ) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(lua)
        self._script = Path(script.name)
        self._process = subprocess.Popen(
            [
                ensure_wrk(),
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                script.name,
                "--latency",
                url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=on_core(core),
        )

    def result(self) -> Throughput:
        try:
            out, err = self._process.communicate()
        finally:
            self._script.unlink(missing_ok=True)
        if self._process.returncode != 0:
            raise RuntimeError(f"wrk failed ({self._process.returncode}): {err}")
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        total = int(re.search(r"(\d+) requests in", out).group(1))
        bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        return Throughput(rps, total, int(bad.group(1)) if bad else 0, _p99_ms(out))


def post_load(
    url: str,
    query: str,
    token: str | None,
    *,
    seconds: float,
    connections: int = 16,
    core: int | None = None,
) -> Load:
    """POST one GraphQL document over keep-alive connections for ``seconds``, from ``core`` if
    given (bench/processes.py's ``cores``): wrk started, its :class:`Throughput` read with
    :meth:`Load.result` once it ends."""
    return Load(url, _lua(query, token), seconds, connections, core)


def _wrk(url: str, lua: str, seconds: float, connections: int, core: int | None) -> Throughput:
    return Load(url, lua, seconds, connections, core).result()
