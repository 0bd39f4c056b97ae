"""A machine runtime's subscription wakes for its own machine's events only (and resyncs), so
thousands of them do not all wake at every event of the fleet."""

from __future__ import annotations

from domain.bus.events import (
    LocalEventBus,
    MachineChanged,
    MachineWorkChanged,
    QueueChanged,
    RunChanged,
)


def test_an_inbox_for_one_machine_gets_its_events_and_every_resync() -> None:
    bus = LocalEventBus()
    with bus.inbox("m1") as mine, bus.inbox("m2") as theirs, bus.inbox() as everything:
        events = [
            MachineWorkChanged("m1"),
            MachineWorkChanged("m2"),
            MachineChanged("m1", "env"),
            QueueChanged("env", machine_id="m1"),
            QueueChanged("env"),
            RunChanged("r1", "env"),
        ]
        for event in events:
            bus.deliver(event)

        mine_got, theirs_got, all_got = mine.take(), theirs.take(), everything.take()
        assert bus.subscriber_count == 3
        bus.resync_all()
        resynced = [box.take() for box in (mine, theirs, everything)]

    assert mine_got is not None and mine_got.events == (events[0], events[2], events[3])
    assert theirs_got is not None and theirs_got.events == (events[1],)
    assert all_got is not None and all_got.events == tuple(events)
    assert all(batch is not None and batch.resync for batch in resynced)
    assert bus.subscriber_count == 0


def test_an_inbox_that_left_gets_nothing_more_and_the_others_go_on() -> None:
    bus = LocalEventBus()
    first_event, second_event = MachineWorkChanged("m1"), MachineChanged("m1", "env")
    with bus.inbox("m1") as first:
        with bus.inbox("m1") as second:
            bus.deliver(first_event)
        bus.deliver(second_event)  # the second inbox is gone: only the first gets it
        got = first.take()
    left = second.take()

    assert got is not None and got.events == (first_event, second_event)
    assert left is not None and left.events == (first_event,)
    assert bus.subscriber_count == 0
    with bus.inbox("m1") as again:  # a machine that subscribes again is served again
        bus.deliver(first_event)
        assert again.take() is not None
