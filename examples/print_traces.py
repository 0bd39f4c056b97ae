"""Watch DeskFleet's traces without a tracing backend: an OTLP/HTTP endpoint on 127.0.0.1 that
prints each span it receives, one line each, indented under its parent.

    python examples/print_traces.py                 # listens on 127.0.0.1:4318
    DESKFLEET_TRACES_OTLP_ENDPOINT=http://127.0.0.1:4318/v1/traces deskfleet serve

Then trigger a run and let a machine take it: the request, its GraphQL operation and SQL, the
run's dispatch and the assignment sent to the machine print under one trace id (docs/operations.md,
"Traces"). Needs ``pip install -e '.[examples]'`` (the OTLP protobuf types); the server traces with
``deskfleet[traces]``.
"""

from __future__ import annotations

import argparse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans


def lines(request: ExportTraceServiceRequest) -> list[str]:
    """``service  trace  span<-parent  name  duration`` for every span of one export."""
    printed = []
    for resource_spans in request.resource_spans:
        service = _service(resource_spans)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                parent = span.parent_span_id.hex() or "-" * 16
                took_ms = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
                printed.append(
                    f"{service}  trace={span.trace_id.hex()}  span={span.span_id.hex()}"
                    f"<-{parent}  {span.name}  {took_ms:.2f} ms"
                )
    return printed


def _service(resource_spans: ResourceSpans) -> str:
    for attribute in resource_spans.resource.attributes:
        if attribute.key == "service.name":
            return attribute.value.string_value
    return "?"


class Endpoint(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for line in lines(request):
            print(line, flush=True)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:  # only the spans on standard output
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318)
    port = parser.parse_args().port
    with ThreadingHTTPServer(("127.0.0.1", port), Endpoint) as server:
        print(f"OTLP/HTTP traces endpoint: http://127.0.0.1:{port}/v1/traces", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
