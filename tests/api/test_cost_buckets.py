"""What a process knows of its callers' buckets (R39): the door refuses on it, so it must never
claim a bucket is short when it is not."""

from __future__ import annotations

import pytest

from api.transport.throttle import MemoryBuckets

pytestmark = pytest.mark.rule("R39")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_known_short_is_what_spend_would_refuse_and_restores_over_time() -> None:
    clock = Clock()
    buckets = MemoryBuckets(size=100, rate=10, now=clock)
    assert buckets.known_short("user:a", 100) is None  # nobody seen: every bucket is full

    await buckets.spend("user:a", 80)  # 20 left
    refused = buckets.known_short("user:a", 30)
    assert refused is not None and refused.available == 20
    assert refused.retry_after == pytest.approx(1.0)
    assert buckets.known_short("user:a", 20) is None  # it would fit: only spend decides

    clock.now = 1.0  # 20 + 10 restored
    assert buckets.known_short("user:a", 30) is None


async def test_a_refused_spend_changes_nothing_and_a_forgotten_caller_is_full() -> None:
    clock = Clock()
    buckets = MemoryBuckets(size=100, rate=0, now=clock, max_keys=1)
    await buckets.spend("user:a", 90)
    refused = await buckets.spend("user:a", 20)

    assert not refused.allowed and refused.available == 10
    assert buckets.known_short("user:a", 20) is not None
    await buckets.spend("user:b", 1)  # only one caller is remembered: a is forgotten (full)
    assert buckets.known_short("user:a", 100) is None
