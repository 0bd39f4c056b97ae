"""Traces exported over OTLP/HTTP: a real `deskfleet serve` with `DESKFLEET_TRACES_OTLP_ENDPOINT`
sends its spans to examples/print_traces.py on 127.0.0.1, which decodes and prints them."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


class PrintedTraces:
    """examples/print_traces.py as a user runs it; the lines it prints, as they come."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "examples" / "print_traces.py"), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        self.endpoint = f"http://127.0.0.1:{port}/v1/traces"
        assert self.process.stdout.readline().strip().endswith(self.endpoint)
        self.lines: list[str] = []
        self._reading = threading.Thread(target=self._read, daemon=True)
        self._reading.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def spans(self) -> list[tuple[str, str]]:
        """(service, span name) of each printed line."""
        found = []
        for line in self.lines:
            service, _trace, _span, name = line.split("  ")[:4]
            found.append((service, name))
        return found

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self._reading.join(10)


@pytest.fixture
def printed() -> Iterator[PrintedTraces]:
    traces = PrintedTraces()
    yield traces
    traces.stop()


def test_a_served_instance_exports_its_spans_over_otlp_when_configured(
    deskfleet_server: Callable[..., LiveServer], printed: PrintedTraces
) -> None:
    server = deskfleet_server(
        env={
            "DESKFLEET_TRACES_OTLP_ENDPOINT": printed.endpoint,
            "DESKFLEET_TRACES_SERVICE_NAME": "deskfleet-under-test",
        }
    )
    server.graphql("query Me { me { id } }")
    server.served.stop()  # a clean stop sends what is still batched, before it exits
    printed.stop()

    spans = printed.spans()

    assert ("deskfleet-under-test", "query Me") in spans
    assert ("deskfleet-under-test", "POST /graphql") in spans
    assert any(name == "SELECT" for _, name in spans)


def test_an_endpoint_that_is_not_http_is_refused_at_start(
    deskfleet_server: Callable[..., LiveServer],
) -> None:
    # The server exits at once, naming the setting and what it expects, in one line.
    with pytest.raises(
        AssertionError,
        match=r"deskfleet: DESKFLEET_TRACES_OTLP_ENDPOINT: .*"
        r"is not an OTLP/HTTP endpoint: give http\(s\)://",
    ):
        deskfleet_server(env={"DESKFLEET_TRACES_OTLP_ENDPOINT": "grpc://127.0.0.1:4317"})
