"""R42 as a pure function: the queue played forward over the bots and sessions of its machines.
The API tests (tests/api/test_start_estimates.py) check the same estimates through the stack."""

from datetime import timedelta

import pytest

from domain.runs.start_estimates import (
    ActiveRun,
    Durations,
    Estimate,
    EstimateUnknown,
    QueuedFacts,
    estimate_starts,
    next_mean,
)
from domain.store.models import RunMode, SessionState
from tests.domain.test_candidates import NOW, USER, machine

ATT, UNATT = RunMode.ATTENDED, RunMode.UNATTENDED


def queued(ident: str, *, mode: RunMode = UNATT, flow: str = "f", on: str = "m1", **kw: object):
    return QueuedFacts(id=ident, mode=mode, run_as=USER, flow_id=flow, machine_ids=(on,), **kw)  # type: ignore[arg-type]


def carrying(seconds_ago: float, *, mode: RunMode = UNATT, flow: str = "f", on: str = "m1"):
    since = NOW - timedelta(seconds=seconds_ago)
    return ActiveRun(machine_id=on, mode=mode, run_as=USER, flow_id=flow, since=since)


def after(seconds: float) -> Estimate:
    return Estimate(NOW + timedelta(seconds=seconds))


@pytest.mark.rule("R42")
def test_r42_two_bots_share_the_queue_in_turns() -> None:
    machines = {"m1": machine(bots=2, busy=2)}
    active = [carrying(10), carrying(50)]  # a 60 s flow: they end in 50 s and in 10 s
    runs = [queued(f"r{i}") for i in range(4)]

    got = estimate_starts(runs, machines, active, Durations({"f": 60}), NOW)

    assert [got[f"r{i}"] for i in range(4)] == [after(10), after(50), after(70), after(110)]


@pytest.mark.rule("R42")
def test_r42_bots_taken_away_free_up_only_as_the_oldest_runs_end() -> None:
    machines = {"m1": machine(bots=1, busy=3)}
    active = [carrying(0), carrying(20), carrying(40)]

    got = estimate_starts([queued("r")], machines, active, Durations({"f": 60}), NOW)

    assert got["r"] == after(60)  # when two of the three ended (at 20 s, then 40 s): the later


@pytest.mark.rule("R42")
def test_r42_a_run_past_its_expected_end_is_taken_as_ending_now() -> None:
    machines = {"m1": machine(bots=1, busy=1)}

    got = estimate_starts([queued("r")], machines, [carrying(90)], Durations({"f": 60}), NOW)

    assert got["r"] == after(0)


@pytest.mark.rule("R42")
def test_r42_an_attended_run_waits_for_its_users_session_not_for_bots() -> None:
    machines = {"m1": machine(bots=0, session=SessionState.ACTIVE, session_busy=True)}
    active = [carrying(15, mode=ATT)]
    runs = [queued("a", mode=ATT), queued("b", mode=ATT)]

    got = estimate_starts(runs, machines, active, Durations({"f": 60}), NOW)

    assert (got["a"], got["b"]) == (after(45), after(105))


@pytest.mark.rule("R42")
@pytest.mark.parametrize(
    "state",
    [
        machine(connected=False),
        machine(maintenance=True),
        machine(bots=0),
        machine(session=SessionState.LOCKED),  # unattended: only its user can end that session
    ],
)
def test_r42_what_only_a_person_changes_gives_no_estimate(state: object) -> None:
    got = estimate_starts([queued("r")], {"m1": state}, [], Durations({"f": 60}), NOW)  # type: ignore[dict-item]

    assert got["r"] == Estimate(None, EstimateUnknown.NO_USABLE_MACHINE)


@pytest.mark.rule("R42")
def test_r42_a_run_does_not_start_before_its_own_delay() -> None:
    held = queued("held", not_before=NOW + timedelta(seconds=30))

    got = estimate_starts([held], {"m1": machine()}, [], Durations({}), NOW)

    assert got["held"] == after(30)


@pytest.mark.rule("R42")
def test_r42_unknown_lengths_make_the_runs_behind_unknown() -> None:
    machines = {"m1": machine(bots=1, busy=1)}
    runs = [queued("r1", flow="new"), queued("r2", flow="new")]

    got = estimate_starts(runs, machines, [carrying(5, flow="new")], Durations({}), NOW)

    assert got["r1"] == got["r2"] == Estimate(None, EstimateUnknown.NO_RUN_HISTORY)


@pytest.mark.rule("R42")
def test_r42_the_mean_moves_a_fifth_of_the_way_to_each_new_length() -> None:
    assert next_mean(None, 30) == 30
    assert next_mean(100, 50) == 90
