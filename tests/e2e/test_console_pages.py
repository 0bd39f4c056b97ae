"""The dashboard's run history, run timeline, trends, environment picker and honest empty states,
in a real headless Chromium against a real `deskfleet serve` seeded through the public GraphQL
API (tests/e2e/dashboard_given.py). A machine's runtime is played through the API with its key.

Each page is scanned by axe-core (no serious or critical violation); every browser console error
and uncaught page error fails the test; screenshots go to ``artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.dashboard_given import (
    Page,
    SeededFleet,
    seed,
    serious_accessibility_violations,
    sign_in,
)
from tests.graphql import ASSIGN_ROLE, CREATE_ENVIRONMENT, CREATE_USER, ISSUE_TOKEN
from tests.runs_given import UPDATE_ENVIRONMENT

pytestmark = pytest.mark.e2e

# Folds (the statistics) every second rather than every 5 s: the trends show up sooner.
FAST_SWEEP = {
    "DESKFLEET_DISPATCH_SWEEP_INTERVAL_SECONDS": "1",
    "DESKFLEET_STATISTICS_FOLD_SECONDS": "1",
}
SLOW = 60_000  # ms: a fold, then the page's next refresh (a busy machine takes a while)


def ran(fleet: SeededFleet) -> dict[str, str]:
    """Two runs that ended on a machine of their own: one succeeded, one failed."""
    fleet.register("runner-01", "Nightly jobs", bots=1)
    fleet.heartbeat("runner-01")
    connection = fleet.connection("runner-01")
    ok = fleet.trigger(fleet.flow("Backup"), connection)
    fleet.run_to_end("runner-01")
    failed = fleet.trigger(fleet.flow("Sync ledger"), connection)
    fleet.run_to_end(
        "runner-01", "FAILED", errorCode="LEDGER_LOCKED", errorMessage="The ledger file is locked"
    )
    return {"ok": ok, "failed": failed}


def clean(page: Page, name: str) -> None:
    """The page as it is: no serious accessibility violation, no console error; a screenshot."""
    assert serious_accessibility_violations(page.page) == [], name
    assert page.errors == [], page.errors
    page.shot(f"console-{name}.png")


def person(fleet: SeededFleet, name: str, role: str, environment_id: str) -> str:
    user = fleet.call(
        CREATE_USER, input={"displayName": name, "email": f"{name.split()[0].lower()}@x.test"}
    )["user"]["id"]
    fleet.call(ASSIGN_ROLE, input={"environmentId": environment_id, "userId": user, "role": role})
    return fleet.call(ISSUE_TOKEN, name="console test", userId=user)["secret"]


def test_run_history_filters_and_a_runs_timeline(
    deskfleet_server: Callable[..., LiveServer], page: Page
) -> None:
    server = deskfleet_server(env=FAST_SWEEP)
    fleet = seed(server)
    runs = ran(fleet)
    p = page.page
    sign_in(p, server, server.admin_token)

    p.get_by_role("link", name="Runs", exact=True).click()
    p.get_by_role("heading", name="Runs", level=1).wait_for()
    row = p.locator(f'#runs tr[data-run="{runs["failed"]}"]')
    row.wait_for()
    assert "LEDGER_LOCKED" in row.inner_text()
    # The seeded queue: a queued run says why it waits and when it should start (R29, R42).
    queued = p.locator(f'#runs tr[data-run="{fleet.queued["Invoices"]}"]')
    assert "Machine offline" in queued.inner_text()
    assert "Starts unknown" in queued.inner_text()
    clean(page, "runs")

    # Filter by status: only the failed run; then a filter nothing matches says so.
    p.get_by_label("Status").select_option("FAILED")
    p.locator("#runs tbody tr").first.wait_for()
    p.wait_for_function("document.querySelectorAll('#runs tbody tr[data-run]').length === 1")
    assert p.locator("#run-count").inner_text() == "1 run"
    p.get_by_label("Flow").select_option(label="Backup")
    p.locator("#runs-empty").wait_for()
    assert "No run matches these filters" in p.locator("#runs-empty").inner_text()
    clean(page, "runs-empty")
    p.get_by_label("Flow").select_option("")

    # Live: a run triggered elsewhere appears without a reload (the status filter: queued).
    p.get_by_label("Status").select_option("QUEUED")
    p.wait_for_function("document.querySelectorAll('#runs tbody tr[data-run]').length === 4")
    late = fleet.trigger(fleet.flows["Backup"], fleet.connections["queue-box"])
    p.locator(f'#runs tr[data-run="{late}"]').wait_for()
    p.get_by_label("Status").select_option("")

    # One run: its timeline, attempts, machine, error code and message.
    p.goto(f"{server.url}/#/runs/{runs['failed']}")
    p.get_by_role("heading", name="Sync ledger run", level=1).wait_for()
    steps = p.locator("#run-timeline li")
    assert [s.get_attribute("data-step") for s in steps.all()] == [
        "Queued",
        "Dispatched",
        "Started",
        "Failed",
    ]
    assert p.locator("#run-error-code").inner_text() == "LEDGER_LOCKED"
    assert p.locator("#run-error-message").inner_text() == "The ledger file is locked"
    assert "runner-01" in p.locator("main").inner_text()
    clean(page, "run")

    # A queued run's page follows it live: it is cancelled elsewhere.
    p.goto(f"{server.url}/#/runs/{late}")
    p.get_by_role("heading", name="Backup run", level=1).wait_for()
    assert p.locator('#run-timeline li[data-step="Waiting"]').is_visible()
    p.wait_for_timeout(2500)  # a fold or two (every second) record why it waits (R29)
    fleet.call(
        "mutation($id: ID!) { cancelRun(id: $id) { __typename ... on UserError { code } } }",
        id=late,
    )
    p.locator('#run-timeline li[data-step="Cancelled"]').wait_for()
    # Its wait history: the stretch ended with the next fold.
    p.wait_for_timeout(2500)
    p.reload()
    waited = p.locator('#run-timeline li[data-step="Waited"]')
    waited.wait_for()
    assert "Machine offline" in waited.inner_text()


@pytest.mark.rule("R40")
def test_a_failed_run_is_retried_from_its_page_and_the_chain_links_both_ways(
    deskfleet_server: Callable[..., LiveServer], page: Page
) -> None:
    server = deskfleet_server()
    fleet = seed(server)
    failed = ran(fleet)["failed"]
    p = page.page
    sign_in(p, server, server.admin_token)

    p.goto(f"{server.url}/#/runs/{failed}")
    p.get_by_role("heading", name="Sync ledger run", level=1).wait_for()
    assert p.locator("#run-retry-attempt").inner_text() == "Attempt 1"
    clean(page, "run-retry")
    p.get_by_role("button", name="Retry this run").click()

    # The page moves to the retry: attempt 2 of the chain, queued, linking back to attempt 1.
    p.wait_for_function("document.querySelector('#run-retry-attempt')?.textContent === 'Attempt 2'")
    chain = p.locator("#run-retry-chain")
    assert "retries attempt 1 (Failed)" in chain.inner_text()
    retry_id = p.evaluate("location.hash").rsplit("/", 1)[1]
    p.get_by_role("link", name="attempt 1").click()
    p.wait_for_function("document.querySelector('#run-retry-attempt')?.textContent === 'Attempt 1'")
    assert "retried by attempt 2" in p.locator("#run-retry-chain").inner_text()
    assert p.get_by_role("button", name="Retry this run").count() == 0  # retried once only
    assert p.locator(f'#run-retry-chain a[href="#/runs/{retry_id}"]').count() == 1
    clean(page, "run-retried")


def test_trends_chart_the_fleet_with_a_table_for_each_chart(
    deskfleet_server: Callable[..., LiveServer], page: Page
) -> None:
    server = deskfleet_server(env=FAST_SWEEP)
    fleet = seed(server)
    ran(fleet)
    p = page.page
    sign_in(p, server, server.admin_token)
    p.get_by_role("link", name="Trends").click()
    p.get_by_role("heading", name="Trends", level=1).wait_for()
    p.get_by_label("Range", exact=True).select_option(label="Last 6 hours")

    # The two runs that ended, once folded (every second) and read again.
    summary = p.locator("#chart-outcomes-summary")
    p.wait_for_function(
        "document.querySelector('#chart-outcomes-summary')?.textContent.startsWith('2 runs')",
        timeout=SLOW,
    )
    assert summary.inner_text() == "2 runs ended in this range."
    assert "Half the runs" in p.locator("#chart-waits-summary").inner_text()
    for chart in ("chart-queue", "chart-waits", "chart-outcomes", "chart-utilisation"):
        figure = p.locator(f"#{chart}")
        assert figure.locator("svg[role=img]").count() == 1
        assert figure.locator("details table").count() == 1  # the figures, for screen readers
    # The heat map lists the machines, runner-01 among them, busiest first.
    p.locator("#chart-utilisation summary").click()
    names = p.locator("#chart-utilisation tbody th").all_inner_texts()
    assert "runner-01" in names
    assert "Finance" in p.locator("#chart-group-utilisation").inner_text()
    p.locator("#chart-outcomes summary").click()
    cells = p.locator("#chart-outcomes tbody tr").all()
    failed = sum(int(row.locator("td").nth(1).inner_text()) for row in cells)
    assert failed == 1
    clean(page, "trends")

    # Live: another run ends; the chart follows without a reload.
    fleet.trigger(fleet.flows["Backup"], fleet.connections["runner-01"])
    fleet.run_to_end("runner-01")
    p.wait_for_function(
        "document.querySelector('#chart-outcomes-summary')?.textContent.startsWith('3 runs')",
        timeout=SLOW,
    )


def test_several_environments_get_a_picker_a_column_and_honest_empty_states(
    deskfleet_server: Callable[..., LiveServer], page: Page
) -> None:
    server = deskfleet_server()
    fleet = seed(server)
    lab = fleet.call(
        CREATE_ENVIRONMENT,
        input={"name": "Lab", "kind": "PRODUCTION", "flowExtensionsVersion": "1.2.4.1"},
    )["environment"]["id"]
    # R41: machines below Default's minimum runtime are marked, and filtered.
    fleet.call(UPDATE_ENVIRONMENT, input={"id": fleet.environment_id, "minRuntimeVersion": "99.0"})
    p = page.page
    sign_in(p, server, server.admin_token)

    headers = p.locator("#machines thead th").all_inner_texts()
    assert headers[:2] == ["Name", "Environment"]
    row = p.locator('#machines tr[data-machine="hr-01"]')
    assert "Default" in row.inner_text() and "Must update" in row.inner_text()
    p.locator("#filter-runtime").select_option("no")
    p.locator("#machines-empty").wait_for()
    assert "No machine matches these filters" in p.locator("#machines-empty").inner_text()
    p.locator("#filter-runtime").select_option("")
    p.locator("#filter-environment").select_option(label="Lab")
    p.locator("#machines-empty").wait_for()
    clean(page, "machines-environments")
    p.locator("#filter-environment").select_option("")
    p.get_by_role("link", name="Machine groups").click()
    p.locator('#groups tr[data-group="Finance"]').wait_for()
    assert p.locator("#groups thead th").all_inner_texts()[:2] == ["Name", "Environment"]
    p.get_by_role("link", name="Machines", exact=True).click()
    p.get_by_role("heading", name="Machines", level=1).wait_for()

    # Someone who holds a role only in Lab, where session-lock detection is off (R31).
    newcomer = person(fleet, "Lena Lab", "ENVIRONMENT_MAKER", lab)
    p.get_by_role("button", name="Sign out").click()
    sign_in(p, server, newcomer)
    assert "No machine you can see yet" in p.locator("#machines-empty").inner_text()
    p.get_by_role("link", name=re.compile("^Recommendations")).click()
    empty = p.locator("#no-recommendations")
    empty.wait_for()
    assert "Session-lock detection is off in Lab" in empty.inner_text()
    clean(page, "recommendations-off")
    p.get_by_role("link", name="Runs", exact=True).click()
    p.locator("#runs-empty").wait_for()
    assert "No run yet" in p.locator("#runs-empty").inner_text()
    p.get_by_role("link", name="Trends").click()
    p.locator("#chart-utilisation").wait_for()
    assert "No machine you can see" in p.locator("#chart-utilisation-summary").inner_text()
    clean(page, "trends-empty")

    # Turned on, the page says there is simply nothing blocked.
    fleet.call(UPDATE_ENVIRONMENT, input={"id": lab, "sessionRecommendations": True})
    p.get_by_role("button", name="Sign out").click()
    sign_in(p, server, newcomer)
    p.get_by_role("link", name=re.compile("^Recommendations")).click()
    p.locator("#no-recommendations").wait_for()
    assert "no run of yours is blocked" in p.locator("#no-recommendations").inner_text()
