"""What a process knows of its callers' buckets (R39): the door refuses on it, so it must never
claim a bucket is short, or that none is low, when that is not so."""

from __future__ import annotations

import pytest

from api.transport.throttle import MemoryBuckets

pytestmark = pytest.mark.rule("R39")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_bucket_below_the_low_mark_is_low_until_seen_restored() -> None:
    clock = Clock()
    buckets = MemoryBuckets(size=100, rate=10, now=clock, low=50)
    assert not buckets.anyone_low  # nobody seen: every bucket is full

    await buckets.spend("user:a", 40)  # 60 left: not low
    assert not buckets.anyone_low
    await buckets.spend("user:a", 40)  # 20 left: low
    assert buckets.anyone_low
    refused = buckets.known_short("user:a", 30)
    assert refused is not None and refused.available == 20
    assert buckets.known_short("user:a", 20) is None  # it would fit: only spend decides

    clock.now = 3.0  # 20 + 30 restored: 50, the low mark
    assert buckets.known_short("user:a", 50) is None
    assert not buckets.anyone_low  # seen restored


async def test_a_refused_spend_changes_nothing_and_a_forgotten_caller_is_not_low() -> None:
    clock = Clock()
    buckets = MemoryBuckets(size=100, rate=0, now=clock, max_keys=1, low=50)
    await buckets.spend("user:a", 90)
    refused = await buckets.spend("user:a", 20)

    assert not refused.allowed and refused.available == 10
    assert buckets.anyone_low
    await buckets.spend("user:b", 1)  # only one caller is remembered: a is forgotten (full)
    assert not buckets.anyone_low
    assert buckets.known_short("user:a", 100) is None
