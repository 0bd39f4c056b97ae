"""Fair use (R39): each caller spends its operations' cost from a leaky bucket.

A bucket holds up to ``cost_bucket_size`` points and gains ``cost_restore_rate`` points a second
back up to that size. An operation whose cost fits in what is available spends it and runs; one
that does not is refused (``THROTTLED``) without spending, and told how long until it would fit.
One bucket per user (all the user's tokens share it: minting another token buys no more) and one
per machine key.

Each kind also tells whether a bucket is known to be short for a cost without spending
(``known_short``): the door's early refusal (api/transport/early_refusal.py).

- :class:`MemoryBuckets`: this process only (``broadcast_url`` memory://).
- :class:`RedisBuckets`: one bucket per caller for every instance of a cluster, kept in Redis and
  updated by one Lua script (read, refill, spend, write: atomic). The time is the instance's
  clock (the app's :class:`~domain.kernel.clock.Clock`); an instance whose clock lags another's
  never refills a bucket backwards. When Redis cannot be reached the operation is let through
  (and logged): the static cost limit still holds.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from domain.kernel.settings import Settings

log = logging.getLogger("deskfleet.throttle")


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and one is made per
# operation (~1 us of `trivial`'s request, frozen; ~0.3 us so).
@dataclass(slots=True)
class Spent:
    """The outcome of one request to spend: allowed or not, and the bucket after it."""

    allowed: bool
    maximum: float
    available: float
    restore_rate: float

    @property
    def retry_after(self) -> float:
        """Seconds until ``cost`` would fit; 0 when it was allowed."""
        return 0.0

    def status(self) -> dict[str, float]:
        return {
            "maximumAvailable": _number(self.maximum),
            "currentlyAvailable": math.floor(self.available),
            "restoreRate": _number(self.restore_rate),
        }


@dataclass(slots=True)
class Refused(Spent):
    cost: int = 0

    @property
    def retry_after(self) -> float:
        if self.restore_rate <= 0:
            return math.inf
        return max(0.0, (self.cost - self.available) / self.restore_rate)


def _number(value: float) -> float:
    return int(value) if float(value).is_integer() else value


def refusal(cost: int, spent: Spent) -> tuple[str, dict[str, Any], int | None]:
    """A ``THROTTLED`` refusal's message and extensions, and its ``Retry-After`` in whole
    seconds (None: it never would fit)."""
    wait = spent.retry_after
    retry = math.ceil(wait) if math.isfinite(wait) else None
    message = (
        f"throttled: the operation costs {cost} and {math.floor(spent.available)} of "
        f"{spent.maximum:g} points are available; retry in {wait:.1f}s"
    )
    extensions = {
        "code": "THROTTLED",
        "cost": cost,
        "retryAfterSeconds": round(wait, 3) if retry is not None else None,
    }
    return message, extensions, None if retry is None else max(1, retry)


def cost_report(cost: int, spent: Spent | None) -> dict[str, Any]:
    """An HTTP answer's ``extensions.cost``."""
    report: dict[str, Any] = {"requestedQueryCost": cost}
    if spent is not None:
        report["throttleStatus"] = spent.status()
    return report


class Buckets(Protocol):
    size: float
    rate: float

    async def spend(self, key: str, cost: int) -> Spent: ...

    def known_short(self, key: str, cost: int) -> Refused | None:
        """The refusal ``spend`` would give, when this process knows the bucket cannot afford
        ``cost``; None when it may (only ``spend`` decides that)."""
        ...

    async def close(self) -> None: ...


def _refill(available: float, since: float, now: float, size: float, rate: float) -> float:
    return min(size, available + max(0.0, now - since) * rate)


def _outcome(allowed: bool, available: float, cost: int, size: float, rate: float) -> Spent:
    if allowed:
        return Spent(True, size, available, rate)
    return Refused(False, size, available, rate, cost)


class _LastSeen:
    """The state of each bucket as this process last saw it, at most ``max_keys`` (the least
    recently seen forgotten first)."""

    def __init__(self, size: float, rate: float, max_keys: int) -> None:
        self.size = size
        self.rate = rate
        self.max_keys = max_keys
        self.states: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def available(self, key: str, now: float) -> float:
        state = self.states.get(key)
        if state is None:
            return self.size
        return _refill(state[0], state[1], now, self.size, self.rate)

    def saw(self, key: str, available: float, at: float) -> None:
        self.states[key] = (available, at)
        self.states.move_to_end(key)
        if len(self.states) > self.max_keys:
            self.states.popitem(last=False)

    def short(self, key: str, cost: int, now: float) -> Refused | None:
        available = self.available(key, now)
        if cost <= available:
            return None
        return Refused(False, self.size, available, self.rate, cost)


class MemoryBuckets:
    """The buckets of this process; at most ``max_keys`` callers are remembered (a forgotten
    caller starts full again, the least recently seen is forgotten first)."""

    def __init__(
        self, size: float, rate: float, now: Callable[[], float], max_keys: int = 100_000
    ) -> None:
        self.size = size
        self.rate = rate
        self._now = now
        self._seen = _LastSeen(size, rate, max_keys)

    async def spend(self, key: str, cost: int) -> Spent:
        now = self._now()
        state = self._seen.states.get(key)
        if state is None:
            available = self.size
        else:
            available = _refill(state[0], state[1], now, self.size, self.rate)
            now = max(now, state[1])
        allowed = cost <= available
        if allowed:
            available -= cost
        self._seen.saw(key, available, now)
        return _outcome(allowed, available, cost, self.size, self.rate)

    def known_short(self, key: str, cost: int) -> Refused | None:
        return self._seen.short(key, cost, self._now())  # exact: every spend is seen here

    async def close(self) -> None:
        self._seen.states.clear()


# KEYS[1]: the bucket; ARGV: size, restore rate per second, now (seconds), cost.
# Returns {1 if spent else 0, what is available after, as a string (Lua numbers to Redis
# integers would truncate)}. The key expires once the bucket would be full again.
SPEND = """
local size = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'available', 'at')
local available = size
if state[1] then
  local at = tonumber(state[2])
  available = tonumber(state[1]) + math.max(0, now - at) * rate
  if available > size then available = size end
  if now < at then now = at end
end
local spent = 0
if cost <= available then
  available = available - cost
  spent = 1
end
redis.call('HSET', KEYS[1], 'available', tostring(available), 'at', tostring(now))
local full_in = 1
if rate > 0 then full_in = math.ceil((size - available) / rate) + 1 end
redis.call('EXPIRE', KEYS[1], full_in)
return {spent, tostring(available)}
"""


class RedisBuckets:
    """The buckets of every instance sharing one Redis (``broadcast_url`` redis://)."""

    prefix = "deskfleet:cost:"

    def __init__(self, url: str, size: float, rate: float, now: Callable[[], float]) -> None:
        from redis import asyncio as aioredis

        self.size = size
        self.rate = rate
        self._now = now
        self._redis: Any = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._script: Any = self._redis.register_script(SPEND)
        self._warned_at = -math.inf
        self._seen = _LastSeen(size, rate, max_keys=100_000)

    async def spend(self, key: str, cost: int) -> Spent:
        now = self._now()
        try:
            spent, available = await self._script(
                keys=[self.prefix + key], args=[self.size, self.rate, repr(now), cost]
            )
        except Exception:  # Redis away: let it through, say so now and then
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("cost bucket unavailable in Redis; not throttling", exc_info=True)
            return Spent(True, self.size, self.size, self.rate)
        self._seen.saw(key, float(available), now)
        return _outcome(bool(int(spent)), float(available), cost, self.size, self.rate)

    def known_short(self, key: str, cost: int) -> Refused | None:
        # An upper bound of the shared bucket: other instances only spend from it, and it
        # refills at the same rate. So "short here" means short in Redis too.
        return self._seen.short(key, cost, self._now())

    async def close(self) -> None:
        await self._redis.aclose()


def buckets_for(settings: Settings, now: Callable[[], float]) -> Buckets:
    """Shared through Redis when the event bus is, in this process otherwise."""
    size, rate = settings.cost_bucket_size, settings.cost_restore_rate
    if settings.broadcast_url.startswith(("redis://", "rediss://")):
        return RedisBuckets(settings.broadcast_url, size, rate, now)
    return MemoryBuckets(size, rate, now)
