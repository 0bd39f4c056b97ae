"""deskfleet_http_request_seconds as Prometheus reads it: cumulative buckets, each counting the
requests at most its bound, by path (any unlisted path as "other")."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from api.request_latency import RequestLatency


def test_buckets_count_what_is_at_most_their_bound_and_paths_stay_bounded() -> None:
    latency = RequestLatency({"/graphql"})
    registry = CollectorRegistry()
    registry.register(latency)
    latency.observe("/graphql", 0.005)  # exactly a bound: counted in it
    latency.observe("/graphql", 0.3)
    latency.observe("/graphql", 99.0)  # past every finite bound: +Inf only
    latency.observe("/any/unlisted/path", 0.001)

    text = generate_latest(registry).decode()

    def sample(suffix: str, labels: str) -> str:
        line = next(ln for ln in text.splitlines() if ln.startswith(suffix + "{" + labels + "}"))
        return line.rsplit(" ", 1)[1]

    assert sample("deskfleet_http_request_seconds_bucket", 'le="0.005",path="/graphql"') == "1.0"
    assert sample("deskfleet_http_request_seconds_bucket", 'le="0.25",path="/graphql"') == "1.0"
    assert sample("deskfleet_http_request_seconds_bucket", 'le="0.5",path="/graphql"') == "2.0"
    assert sample("deskfleet_http_request_seconds_bucket", 'le="10.0",path="/graphql"') == "2.0"
    assert sample("deskfleet_http_request_seconds_bucket", 'le="+Inf",path="/graphql"') == "3.0"
    assert sample("deskfleet_http_request_seconds_count", 'path="/graphql"') == "3.0"
    assert float(sample("deskfleet_http_request_seconds_sum", 'path="/graphql"')) == 99.305
    assert sample("deskfleet_http_request_seconds_count", 'path="other"') == "1.0"
    assert "/any/unlisted/path" not in text
