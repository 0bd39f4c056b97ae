"""R26 as a table: connected x maintenance x free bot x the user's session x mode -> decision.

The candidate function is pure, so this is the one place every combination is spelled out; the
API tests check that the dispatcher and the queue views act on exactly these decisions.
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.fleet.sessions import user_key
from domain.runs.candidates import (
    MachineState,
    QueuedRun,
    RunRequest,
    WaitReason,
    check,
    choose,
    plan,
)
from domain.store.models import RunMode, SessionState

NOW = datetime(2026, 1, 1, tzinfo=UTC)
USER = r"CONTOSO\robot"
ATT, UNATT = RunMode.ATTENDED, RunMode.UNATTENDED
ACTIVE, LOCKED, DISC = SessionState.ACTIVE, SessionState.LOCKED, SessionState.DISCONNECTED
R = WaitReason


def machine(
    *,
    connected: bool = True,
    maintenance: bool = False,
    bots: int = 1,
    busy: int = 0,
    session: SessionState | None = None,
    session_busy: bool = False,
    ident: str = "m1",
    running: int = 0,
    last: datetime | None = None,
) -> MachineState:
    key = USER.casefold()
    return MachineState(
        id=ident,
        connected=connected,
        maintenance=maintenance,
        unattended_bots=bots,
        busy_bots=busy,
        running=running,
        last_assigned_at=last,
        sessions={key: session} if session else {},
        attended_users=frozenset({key}) if session_busy else frozenset(),
    )


# connected, maintenance, free bot, the run user's session, its session busy, mode -> expected
TABLE = [
    # offline or in maintenance: nothing else matters
    (False, False, True, None, False, UNATT, R.MACHINE_OFFLINE),
    (False, True, True, ACTIVE, False, ATT, R.MACHINE_OFFLINE),
    (True, True, True, None, False, UNATT, R.MAINTENANCE),
    (True, True, True, ACTIVE, False, ATT, R.MAINTENANCE),
    # unattended: a free bot and no session of the user in any state
    (True, False, True, None, False, UNATT, None),
    (True, False, False, None, False, UNATT, R.NO_FREE_BOT),
    (True, False, True, ACTIVE, False, UNATT, R.USER_SESSION_EXISTS),
    (True, False, True, LOCKED, False, UNATT, R.USER_SESSION_EXISTS),
    (True, False, True, DISC, False, UNATT, R.USER_SESSION_EXISTS),
    (True, False, False, LOCKED, False, UNATT, R.NO_FREE_BOT),
    # attended: an ACTIVE session of the user with no attended run in it; bots do not matter
    (True, False, False, ACTIVE, False, ATT, None),
    (True, False, True, ACTIVE, False, ATT, None),
    (True, False, True, None, False, ATT, R.NO_ACTIVE_SESSION),
    (True, False, True, LOCKED, False, ATT, R.NO_ACTIVE_SESSION),
    (True, False, True, DISC, False, ATT, R.NO_ACTIVE_SESSION),
    (True, False, True, ACTIVE, True, ATT, R.SESSION_BUSY),
]


@pytest.mark.rule("R26")
@pytest.mark.parametrize(
    ("connected", "maintenance", "free_bot", "session", "session_busy", "mode", "expected"),
    TABLE,
)
def test_r26_candidate_table(
    connected: bool,
    maintenance: bool,
    free_bot: bool,
    session: SessionState | None,
    session_busy: bool,
    mode: RunMode,
    expected: WaitReason | None,
) -> None:
    state = machine(
        connected=connected,
        maintenance=maintenance,
        bots=2,
        busy=1 if free_bot else 2,
        session=session,
        session_busy=session_busy,
    )
    assert check(RunRequest("r1", mode, USER), state) is expected


@pytest.mark.rule("R26")
def test_r26_user_names_compare_case_insensitively() -> None:
    state = machine(session=ACTIVE)
    assert check(RunRequest("r1", ATT, USER.upper()), state) is None
    assert check(RunRequest("r1", UNATT, USER.lower()), state) is R.USER_SESSION_EXISTS


@pytest.mark.rule("R26")
def test_r26_a_group_spreads_load_fewest_running_then_least_recently_assigned() -> None:
    run = RunRequest("r1", UNATT, USER)
    busy = machine(ident="a", bots=3, running=2)
    idle_recent = machine(ident="b", bots=3, running=0, last=NOW)
    idle_old = machine(ident="c", bots=3, running=0, last=NOW - timedelta(hours=1))
    assert choose(run, [busy, idle_recent, idle_old]).id == "c"  # type: ignore[union-attr]
    never = machine(ident="d", bots=3, running=0, last=None)
    assert choose(run, [busy, idle_recent, idle_old, never]).id == "d"  # type: ignore[union-attr]


@pytest.mark.rule("R29")
def test_r29_a_group_reports_the_reason_of_the_machine_closest_to_taking_the_run() -> None:
    run = RunRequest("r1", UNATT, USER)
    offline = machine(ident="a", connected=False)
    maintenance = machine(ident="b", maintenance=True)
    session = machine(ident="c", session=LOCKED)
    assert choose(run, [offline, maintenance]) is R.MAINTENANCE
    assert choose(run, [offline, maintenance, session]) is R.USER_SESSION_EXISTS
    assert choose(run, []) is R.NO_MACHINE


@pytest.mark.rule("R25")
def test_r25_plan_skips_a_blocked_run_and_gives_later_runs_the_room() -> None:
    m = machine(ident="m", bots=1)
    blocked = QueuedRun(RunRequest("head", ATT, USER), ("m",))  # no session: cannot start
    behind = QueuedRun(RunRequest("next", UNATT, USER), ("m",))
    last = QueuedRun(RunRequest("last", UNATT, "other"), ("m",))

    result = plan([blocked, behind, last], {"m": m}, NOW)

    assert result.assignments == {"next": "m"}
    assert result.reasons == {"head": R.NO_ACTIVE_SESSION, "last": R.BEHIND_IN_QUEUE}


@pytest.mark.rule("R24")
def test_r24_plan_never_puts_more_unattended_runs_on_a_machine_than_its_free_bots() -> None:
    m = machine(ident="m", bots=3, busy=1)
    queued = [QueuedRun(RunRequest(f"r{i}", UNATT, f"u{i}"), ("m",)) for i in range(5)]
    result = plan(queued, {"m": m}, NOW)
    assert list(result.assignments) == ["r0", "r1"]
    assert set(result.reasons.values()) == {R.BEHIND_IN_QUEUE}


@pytest.mark.rule("R26")
def test_r26_one_attended_run_per_session_and_the_user_session_blocks_unattended() -> None:
    m = machine(ident="m", bots=2, session=ACTIVE)
    first = QueuedRun(RunRequest("a1", ATT, USER), ("m",))
    second = QueuedRun(RunRequest("a2", ATT, USER), ("m",))
    unattended = QueuedRun(RunRequest("u1", UNATT, USER), ("m",))
    result = plan([first, second, unattended], {"m": m}, NOW)
    assert result.assignments == {"a1": "m"}
    assert result.reasons == {"a2": R.BEHIND_IN_QUEUE, "u1": R.USER_SESSION_EXISTS}


# --- plan() against the rule read literally ---------------------------------------------------


def _plan_as_written(queued: list[QueuedRun], machines: dict[str, MachineState]) -> dict:
    """R25 + R26 read literally: each run in queue order checks every candidate as the runs
    ahead of it left them; a waiting run's reason is BEHIND_IN_QUEUE if a candidate was free
    before the pass, else what the machines said before the pass."""
    from domain.runs.candidates import take

    current = dict(machines)
    out: dict[str, object] = {}
    for item in queued:
        picked = choose(item.request, [current[i] for i in item.machine_ids if i in current])
        if isinstance(picked, MachineState):
            out[item.request.id] = picked.id
            current[picked.id] = take(item.request, picked, NOW)
            continue
        before = choose(item.request, [machines[i] for i in item.machine_ids if i in machines])
        out[item.request.id] = R.BEHIND_IN_QUEUE if isinstance(before, MachineState) else before
    return out


_users = st.sampled_from(["robot", "ROBOT ", "alice", "bob"])
_machine_states = st.builds(
    lambda ident, connected, maintenance, bots, busy, sessions, attended, running, last: (
        MachineState(
            id=ident,
            connected=connected,
            maintenance=maintenance,
            unattended_bots=bots,
            busy_bots=min(busy, bots),
            running=running,
            last_assigned_at=None if last is None else NOW - timedelta(seconds=last),
            sessions={user_key(u): s for u, s in sessions.items()},
            attended_users=frozenset(user_key(u) for u in attended),
        )
    ),
    st.just(""),
    st.sampled_from([True, True, True, False]),  # mostly usable: machines get shared and taken
    st.sampled_from([False, False, False, True]),
    st.integers(0, 3),
    st.integers(0, 2),
    st.one_of(
        st.just({}), st.dictionaries(_users, st.sampled_from([ACTIVE, LOCKED, DISC]), max_size=2)
    ),
    st.one_of(st.just(set()), st.sets(_users, max_size=2)),
    st.integers(0, 3),
    st.one_of(st.none(), st.integers(0, 5)),
)


@given(
    states=st.lists(_machine_states, min_size=0, max_size=8),
    runs=st.lists(st.tuples(st.sampled_from([ATT, UNATT]), _users, st.integers(0, 3)), max_size=25),
)
@settings(max_examples=300, deadline=None)
def test_r25_r26_plan_decides_as_the_rule_reads(states, runs) -> None:
    """plan() keeps per-kind heaps instead of checking every candidate for every run: it must
    make exactly the same assignments and give exactly the same wait reasons."""
    machines = {f"m{i}": replace(s, id=f"m{i}") for i, s in enumerate(states)}
    ids = sorted(machines)
    queues = [tuple(ids[: len(ids) // 2]), tuple(ids[len(ids) // 2 :]), tuple(ids), ("gone",)]
    queued = [
        QueuedRun(RunRequest(f"r{n}", mode, user), queues[q])
        for n, (mode, user, q) in enumerate(runs)
    ]
    result = plan(queued, machines, NOW)
    assert {**result.assignments, **result.reasons} == _plan_as_written(queued, machines)


def test_r26_a_run_sees_what_runs_of_another_kind_took_before_it() -> None:
    """Runs of two users share three machines: the second run of the first user must see that
    the other user's run made "b" busier, and go to the idle "c"."""
    machines = {i: machine(ident=i, bots=3) for i in ("a", "b", "c")}
    queued = [
        QueuedRun(RunRequest(run_id, UNATT, user), ("a", "b", "c"))
        for run_id, user in (("r0", "bob"), ("r1", "alice"), ("r2", "bob"))
    ]
    assert plan(queued, machines, NOW).assignments == {"r0": "a", "r1": "b", "r2": "c"}


@pytest.mark.parametrize("mode", [UNATT, ATT])
def test_take_keeps_every_other_field_of_the_machine(mode: RunMode) -> None:
    """R24/R26: a planned run takes room on its machine and changes nothing else about it
    (take() builds the new state field by field, so a field added later must be kept too)."""
    from dataclasses import fields

    from domain.runs.candidates import take

    before = machine(session=ACTIVE, bots=3, busy=1, running=2, last=NOW - timedelta(hours=1))
    run = RunRequest(id="r", mode=mode, run_as="someone else")
    after = take(run, before, NOW)
    changed = {"busy_bots", "running", "last_assigned_at", "attended_users"}
    for f in fields(MachineState):
        if f.init and f.name not in changed:
            assert getattr(after, f.name) == getattr(before, f.name), f.name
    assert after.running == 3 and after.last_assigned_at == NOW
    assert after.spread_key == (3, 1, NOW.timestamp(), before.id)  # R26: it spreads on the new load
    if mode is UNATT:
        assert after.busy_bots == 2 and after.attended_users == before.attended_users
    else:
        assert after.busy_bots == 1 and after.attended_users == {user_key("someone else")}


@pytest.mark.rule("R41")
def test_r41_an_outdated_machine_takes_no_run_and_says_why_after_offline_and_maintenance() -> None:
    run = RunRequest("r1", UNATT, USER)
    outdated = replace(machine(ident="old"), outdated=True)

    assert check(run, outdated) is R.RUNTIME_OUTDATED
    assert check(run, replace(outdated, maintenance=True)) is R.MAINTENANCE
    assert check(run, replace(outdated, connected=False)) is R.MACHINE_OFFLINE
    # In a group the reason is the machine's that came closest: past an outdated one, a busy one.
    assert choose(run, [outdated, machine(ident="off", connected=False)]) is R.RUNTIME_OUTDATED
    assert choose(run, [outdated, machine(ident="busy", busy=1)]) is R.NO_FREE_BOT
    fresh = machine(ident="new")
    assert choose(run, [outdated, fresh]) == fresh
    taken = plan([QueuedRun(run, ("old", "new"))], {"old": outdated, "new": fresh}, NOW)
    assert taken.assignments == {"r1": "new"}
