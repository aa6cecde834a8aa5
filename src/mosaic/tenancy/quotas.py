"""Quotas as fixed-window counters in Redis, shared by every replica.

Per tenant and per API key: requests per minute and writes per day; per tenant and provider
instance: call budgets per minute/hour/day/month. One Lua script checks every counter a call
touches and increments them only if none is exhausted, atomically — a refused call consumes
nothing and two replicas cannot both take the last unit. Keys carry the tenant in a hash tag
(``q:{acme}:...``) so that a Redis Cluster keeps one call's counters in one slot.

When Redis is not configured (embedded, single process) or unreachable, the same windows are
counted in process: quotas then hold per replica until Redis is back (best-effort, like the
rate limits), rather than failing every request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from mosaic.errors import RateLimited
from mosaic.state.redis import RedisState, RedisUnavailable
from mosaic.tenancy.settings import PERIOD_SECONDS, ProviderBudget, RateQuota

log = logging.getLogger("mosaic.quotas")

_SCRIPT = """
local n = #KEYS
for i = 1, n do
  local v = tonumber(redis.call('GET', KEYS[i]) or '0')
  if v >= tonumber(ARGV[i]) then
    return {i, redis.call('PTTL', KEYS[i])}
  end
end
for i = 1, n do
  if redis.call('INCR', KEYS[i]) == 1 then
    redis.call('PEXPIRE', KEYS[i], ARGV[n + i])
  end
end
return {0, 0}
"""


@dataclass(frozen=True, slots=True)
class Counter:
    key: str
    limit: int
    window_s: int
    # Shown to the caller when this counter is the one exhausted.
    label: str

    def ttl_ms(self, now: float) -> int:
        # Until the end of the window, plus a margin so that clock skew never resets it early.
        return int(((self.window_s - now % self.window_s) + 5) * 1000)


def _window(now: float, seconds: int) -> int:
    return int(now // seconds)


def request_counters(tenant: str, key_id: str | None, is_write: bool, tenant_q: RateQuota,
                     key_q: RateQuota | None, now: float) -> list[Counter]:
    out: list[Counter] = []
    minute, day = _window(now, 60), _window(now, 86400)
    scopes: list[tuple[str, RateQuota, str]] = [(f"q:{{{tenant}}}", tenant_q, f"tenant {tenant}")]
    if key_id is not None and key_q is not None:
        scopes.append((f"q:{{{tenant}}}:k:{key_id}", key_q, f"API key {key_id}"))
    for prefix, q, who in scopes:
        if q.requests_per_minute is not None:
            out.append(Counter(f"{prefix}:rpm:{minute}", q.requests_per_minute, 60,
                               f"{who}: {q.requests_per_minute} requests per minute"))
        if is_write and q.writes_per_day is not None:
            out.append(Counter(f"{prefix}:wpd:{day}", q.writes_per_day, 86400,
                               f"{who}: {q.writes_per_day} writes per day"))
    return out


def budget_counter(tenant: str, provider: str, budget: ProviderBudget, now: float) -> Counter:
    seconds = PERIOD_SECONDS[budget.per]
    return Counter(f"q:{{{tenant}}}:p:{provider}:{budget.per}:{_window(now, seconds)}", budget.calls, seconds,
                   f"provider {provider}: {budget.calls} calls per {budget.per}")


class Quotas:
    def __init__(self, redis: RedisState | None = None) -> None:
        self.redis = redis if redis is not None and redis.configured else None
        self._local: dict[str, tuple[int, float]] = {}
        self._script: Any = None
        self._warned = False

    async def take(self, counters: Sequence[Counter], *, now: float | None = None) -> None:
        """Consume one unit of every counter, or none and :class:`RateLimited` naming the limit."""
        if not counters:
            return
        now = time.time() if now is None else now
        if self.redis is not None:
            try:
                index, ttl_ms = await self._take_redis(counters, now)
            except RedisUnavailable:
                if not self._warned:
                    log.warning("quotas: Redis unavailable, counting in this process until it is back")
                    self._warned = True
                index, ttl_ms = self._take_local(counters, now)
            else:
                self._warned = False
        else:
            index, ttl_ms = self._take_local(counters, now)
        if index:
            c = counters[index - 1]
            retry = max(ttl_ms, 0) / 1000 or c.ttl_ms(now) / 1000
            raise RateLimited(f"quota exceeded ({c.label}); retry in {retry:.0f}s",
                              retry_after=round(retry, 3), details={"quota": c.label})

    async def _take_redis(self, counters: Sequence[Counter], now: float) -> tuple[int, int]:
        state = self.redis
        assert state is not None
        keys = [state.prefix + c.key for c in counters]
        args = [c.limit for c in counters] + [c.ttl_ms(now) for c in counters]

        async def run(r: Redis) -> Any:
            if self._script is None:
                self._script = r.register_script(_SCRIPT)
            return await self._script(keys=keys, args=args)

        index, ttl = await state.run(run)
        return int(index), int(ttl)

    def _take_local(self, counters: Sequence[Counter], now: float) -> tuple[int, int]:
        for i, c in enumerate(counters, 1):
            value, expires = self._local.get(c.key, (0, 0.0))
            if expires <= now:
                value = 0
            if value >= c.limit:
                return i, int((expires - now) * 1000)
        for c in counters:
            value, expires = self._local.get(c.key, (0, 0.0))
            if expires <= now:
                value, expires = 0, now + c.ttl_ms(now) / 1000
            self._local[c.key] = (value + 1, expires)
        if len(self._local) > 100_000:
            self._local = {k: v for k, v in self._local.items() if v[1] > now}
        return 0, 0
