"""R46 across instances: on one PostgreSQL database, a trigger retried on another instance after
the first one was killed with SIGKILL answers the run queued before the kill, and the same key
sent to two instances at once queues one run."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.cluster.conftest import Cluster, Instance
from tests.e2e.test_retry_after_kill import given_connection, trigger_input
from tests.faults.story import TRIGGER, ok, post

pytestmark = [pytest.mark.e2e, pytest.mark.rule("R46")]

AT_ONCE = 8  # requests with one key, alternately to two instances


def trigger(instance: Instance, flow_id: str, connection_id: str, key: str) -> str:
    data = post(
        instance.url, instance.admin_token, TRIGGER, trigger_input(flow_id, connection_id, key)
    )
    return str(ok(data, "triggerRun")["run"]["id"])


def runs_in_database(cluster: Cluster) -> set[str]:
    return {row["id"] for row in asyncio.run(cluster.sql("SELECT id FROM flow_runs"))}


def test_a_trigger_retried_on_another_instance_answers_the_run_queued_before_the_kill(
    cluster: Cluster,
) -> None:
    a = cluster.start("a")
    b = cluster.start("b")
    c = cluster.start("c")
    flow_id, connection_id = given_connection(a.url, a.admin_token, "cluster-bot")

    # Given a trigger committed on `a`, whose answer its client lost when `a` was killed.
    lost = trigger(a, flow_id, connection_id, "cluster-1")
    a.kill9()

    # When the client retries on `b` with the same key; and another key goes to `b` and `c`
    # several times at once.
    again = trigger(b, flow_id, connection_id, "cluster-1")
    with ThreadPoolExecutor(AT_ONCE) as pool:
        answers = list(
            pool.map(
                lambda n: trigger((b, c)[n % 2], flow_id, connection_id, "cluster-2"),
                range(AT_ONCE),
            )
        )

    # Then the retry answers the run queued before the kill, and the requests at once one run.
    assert again == lost
    assert len(set(answers)) == 1
    assert runs_in_database(cluster) == {lost, answers[0]}
