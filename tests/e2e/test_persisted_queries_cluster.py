"""Persisted queries in a cluster: a document one instance learned runs by its hash on another,
through the Redis they share (real servers, a real redis-server)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from tests.e2e.conftest import LiveServer, RedisServer

pytestmark = pytest.mark.e2e

ME = "query Me { me { id } }"
PERSISTED = {
    "persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(ME.encode()).hexdigest()}
}


def test_a_document_learned_by_one_instance_runs_by_hash_on_another(
    deskfleet_server: Callable[..., LiveServer], redis_server: RedisServer
) -> None:
    first = deskfleet_server(broadcast_url=redis_server.url)
    second = deskfleet_server(broadcast_url=redis_server.url)

    unknown = second.post({"extensions": PERSISTED})
    first.post({"query": ME, "extensions": PERSISTED})
    known = second.post({"extensions": PERSISTED})

    assert unknown["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    assert known["data"]["me"]["id"]
