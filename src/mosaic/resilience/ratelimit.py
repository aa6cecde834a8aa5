"""Client-side provider rate limits with ``limits``: one moving window shared by every replica.

``rateLimit: {maxRequests: 5000, windowMs: 3600000}`` allows at most 5000 calls to that provider
instance in *any* hour (a moving window, not fixed buckets: we never send more than the provider
allows in any window of its own, wherever its window starts). The window lives in Redis
(``limits``' moving-window strategy), so N replicas together stay under the limit; while Redis
is unreachable each replica falls back to an in-memory window of ``fallbackMaxRequests``.

Adaptive: the provider's own headers (``X-RateLimit-Remaining: 0`` until ``-Reset``, or
``Retry-After``) block further calls until then — published in Redis, so every replica holds
back, not just the one that was told.

A call over the limit waits for a slot up to its deadline (or ``maxWaitMs`` without one), else
fails with :class:`LocalRateLimited` carrying ``retry_after``.

Leases: at high limits (>= 20 calls/s) a replica takes slots from the shared window in batches —
one Redis round trip for many calls — and spends them within ``leaseMs`` (default 100 ms); what
it has not spent by then is dropped, never carried over. The batch grows while leases are used
up and shrinks when they expire half-spent, so an idle replica holds one slot at a time. The
limit stays exact: a slot taken at ``t`` is spent by ``t + lease``, so every acquisition checks
the window of ``windowMs + lease`` before it (a little stricter than asked, never looser), and
any ``windowMs`` of actual calls falls inside the horizon of the last lease that fed it.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
import time
from typing import Any

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.limits import Granularity

from mosaic.gateway.pipeline import Call
from mosaic.resilience.config import RateLimitConfig
from mosaic.resilience.errors import LocalRateLimited
from mosaic.resilience.metrics import (
    RATELIMIT_MODE,
    RATELIMIT_REJECTED,
    RATELIMIT_REMAINING,
    RATELIMIT_WAIT,
)
from mosaic.state.redis import RedisState, RedisUnavailable

# A wait shorter than this before the deadline is pointless: fail instead.
MIN_CALL_S = 0.005
# The largest batch of slots one lease takes (also at most 1/20 of the limit).
MAX_LEASE = 64


class PerMillisecond(RateLimitItem):
    """``amount`` per ``multiples`` milliseconds (``limits`` itself counts whole seconds)."""

    GRANULARITY = Granularity(1, "millisecond")

    def get_expiry(self) -> float:  # type: ignore[override]
        return self.multiples / 1000


# limits' moving-window script with two changes: PEXPIRE (windows shorter than a second, as
# the seed's windowMs allows), Redis' own clock (replicas on other hosts may drift), and a
# provider-imposed block (KEYS[2]) checked in the same round trip.
_ACQUIRE = """
local t = redis.call('TIME')
local timestamp = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[2])
local expiry = tonumber(ARGV[3])
local amount = tonumber(ARGV[4])
if amount > limit then return false end
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > timestamp then return false end
local entry = redis.call('LINDEX', KEYS[1], limit - amount)
if entry and tonumber(entry) >= timestamp - expiry then return false end
for i = 1, amount do redis.call('LPUSH', KEYS[1], string.format('%.6f', timestamp)) end
redis.call('LTRIM', KEYS[1], 0, limit - 1)
redis.call('PEXPIRE', KEYS[1], math.ceil(expiry * 1000))
return true
"""


class MsRedisStorage(RedisStorage):
    """``limits``' async Redis storage (redis-py) on our shared connection pool, with the
    moving-window acquisition above. Not registered under a URI scheme on purpose."""

    # Only redis-py (its version is pinned by our own requirements): the parent also lists
    # coredis and valkey, and would import them (~1 s on the event loop).
    DEPENDENCIES = {"redis": None}

    def __init__(self, state: RedisState) -> None:
        assert state.client is not None
        self.client = state.client
        pool: Any = state.client.connection_pool
        super().__init__("async+" + (state.url or "redis://127.0.0.1:6379"), implementation="redispy",
                         key_prefix=state.key("rl"), connection_pool=pool)
        self._acquire = self.client.register_script(_ACQUIRE)

    @staticmethod
    def blocked_key(key: str) -> str:
        return key + ":blocked"

    async def acquire_entry(self, key: str, limit: int, expiry: float,  # type: ignore[override]
                            amount: int = 1) -> bool:
        full = self.bridge.prefixed_key(key)
        return bool(await self._acquire([full, self.blocked_key(full)], [0, limit, expiry, amount]))

    async def block(self, key: str, until: float) -> None:
        """Hold every replica back until ``until`` (Unix time)."""
        full = self.blocked_key(self.bridge.prefixed_key(key))
        ms = max(1, math.ceil((until - time.time()) * 1000))
        await self.client.set(full, f"{until:.6f}", px=ms)

    async def blocked_until(self, key: str) -> float:
        raw = await self.client.get(self.blocked_key(self.bridge.prefixed_key(key)))
        return float(raw) if raw else 0.0


async def _take(storage: MsRedisStorage, key: str, limit: int, expiry: float, amount: int,
                _client: object) -> bool:
    return await storage.acquire_entry(key, limit, expiry, amount)


class ProviderRateLimiter:
    """The rate limit of one provider instance (configured window and/or adaptive headers)."""

    def __init__(self, plugin_id: str, cfg: RateLimitConfig | None, redis: RedisState | None = None,
                 *, adaptive: bool = True) -> None:
        self.plugin_id = plugin_id
        self.cfg = cfg
        self.adaptive = cfg.adaptive if cfg is not None else adaptive
        self.redis = redis if redis is not None and redis.configured else None
        self.key = plugin_id
        self.item: PerMillisecond | None = None
        self.local_item: PerMillisecond | None = None
        self.max_wait = 10.0
        if cfg is not None:
            self.item = PerMillisecond(cfg.max_requests, cfg.window_ms, namespace="window")
            self.local_item = PerMillisecond(cfg.fallback_max_requests or cfg.max_requests, cfg.window_ms,
                                             namespace="window")
            self.max_wait = cfg.max_wait_ms / 1000
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._storage = MsRedisStorage(self.redis) if self.redis is not None else None
        self._shared = MovingWindowRateLimiter(self._storage) if self._storage is not None else None
        self.lease_s = cfg.lease_s if cfg is not None and self._storage is not None else 0.0
        self._lease_cap = max(1, min(MAX_LEASE, cfg.max_requests // 20)) if cfg is not None else 1
        self._lease_size = 1
        self._lease_left = 0
        self._lease_until = 0.0
        self._lease_lock = asyncio.Lock()
        # Unix time until which the provider told us to hold back (this replica's view).
        self.blocked_until = 0.0
        self._last_seen: float | None = None
        self._provider: dict[str, Any] = {}
        self._wait = RATELIMIT_WAIT.labels(plugin_id)
        self._rejected = RATELIMIT_REJECTED.labels(plugin_id)
        self._remaining = RATELIMIT_REMAINING.labels(plugin_id)
        self._mode = RATELIMIT_MODE.labels(plugin_id)

    @property
    def limited(self) -> bool:
        return self.item is not None

    # -- acquire ------------------------------------------------------------------
    async def acquire(self, call: Call) -> None:
        """Take one slot, waiting up to the call's deadline; else :class:`LocalRateLimited`."""
        if self.item is None and self.blocked_until <= 0:
            return
        started = time.monotonic()
        remaining = call.ctx.remaining()
        budget = self.max_wait if remaining is None else remaining
        while True:
            wait, reason = await self._try()
            if wait <= 0:
                if time.monotonic() - started > 0.0005:
                    self._wait.observe(time.monotonic() - started)
                return
            left = budget - (time.monotonic() - started)
            if wait + MIN_CALL_S > left:
                self._rejected.inc()
                raise LocalRateLimited(self.plugin_id, wait, reason,
                                       details={"limit": self._describe()})
            # A little jitter so that waiters do not all wake on the same millisecond.
            await asyncio.sleep(wait + random.uniform(0, min(0.01, wait / 10)))

    async def _try(self) -> tuple[float, str]:
        """(0, "") when a slot was taken, else (seconds until one may free up, why)."""
        now = time.time()
        if self.blocked_until > now:
            return self.blocked_until - now, "the provider asked to wait"
        if self.item is None:
            return 0.0, ""
        shared, storage = self._shared, self._storage
        if shared is not None and storage is not None and self.redis is not None and self.redis.available:
            item = self.item
            try:
                if await self._take_shared(item, storage):
                    self._mode.set(1)
                    return 0.0, ""
                stats, blocked = await self.redis.run(lambda _: self._stats_and_block(item))
            except RedisUnavailable:
                pass
            else:
                now = time.time()
                if blocked > now:
                    self.blocked_until = max(self.blocked_until, blocked)
                    return blocked - now, "the provider asked to wait"
                return max(0.001, stats[0] - now), f"{item.amount} calls per {self.cfg_window_ms} ms"
        self._mode.set(0)
        local_item = self.local_item
        assert local_item is not None
        if await self._local.hit(local_item, self.key):
            return 0.0, ""
        stats = await self._local.get_window_stats(local_item, self.key)
        reason = f"{local_item.amount} calls per {self.cfg_window_ms} ms (local)"
        return max(0.001, stats[0] - time.time()), reason

    async def _take_shared(self, item: PerMillisecond, storage: MsRedisStorage) -> bool:
        """One slot of the shared window: from this replica's lease, or straight from Redis."""
        assert self.redis is not None
        if not self.lease_s:
            return await self.redis.run(lambda _: storage.acquire_entry(
                item.key_for(self.key), item.amount, item.get_expiry(), 1))
        if self._spend_lease():
            return True
        async with self._lease_lock:  # one round trip refills the lease for every waiter
            if self._spend_lease():
                return True
            now = time.monotonic()
            if self._lease_left > 0 or now > self._lease_until + self.lease_s:
                # Expired half-spent, or idle since: demand fell.
                self._lease_size = max(1, self._lease_size // 2)
            elif self._lease_until:  # used up in time: demand is at least this
                self._lease_size = min(self._lease_cap, self._lease_size * 2)
            self._lease_left = 0
            key, expiry = item.key_for(self.key), item.get_expiry() + self.lease_s
            for size in dict.fromkeys((self._lease_size, 1)):  # near the limit, a single slot may fit
                take = functools.partial(_take, storage, key, item.amount, expiry, size)
                if await self.redis.run(take):
                    self._lease_left, self._lease_until = size - 1, time.monotonic() + self.lease_s
                    return True
            self._lease_until, self._lease_size = 0.0, 1  # at the limit: one slot at a time
            return False

    def _spend_lease(self) -> bool:
        if self._lease_left > 0 and time.monotonic() < self._lease_until:
            self._lease_left -= 1
            return True
        return False

    def drop_lease(self) -> None:
        """Forget the slots held (the provider asked every replica to hold back)."""
        self._lease_left = 0

    async def _stats_and_block(self, item: PerMillisecond) -> tuple[Any, float]:
        assert self._shared is not None and self._storage is not None
        stats = await self._shared.get_window_stats(item, self.key)
        return stats, await self._storage.blocked_until(item.key_for(self.key))

    @property
    def cfg_window_ms(self) -> int:
        return self.cfg.window_ms if self.cfg is not None else 0

    # -- adaptive ---------------------------------------------------------------------
    async def observe(self, plugin: object) -> None:
        """Read the provider's rate-limit state after a call (``plugin.rate_limit``)."""
        if not self.adaptive:
            return
        state = getattr(plugin, "rate_limit", None)
        observed = getattr(state, "observed_at", None)
        if state is None or observed is None or observed == self._last_seen:
            return
        self._last_seen = observed
        as_dict = getattr(state, "as_dict", None)
        if callable(as_dict):
            self._provider = dict(as_dict())
        until = 0.0
        retry_after = getattr(state, "retry_after", None)
        if retry_after is not None:
            until = observed + float(retry_after)
        elif getattr(state, "exhausted", False) and getattr(state, "reset", None) is not None:
            until = float(state.reset)
        remaining = getattr(state, "remaining", None)
        if isinstance(remaining, int):
            self._remaining.set(remaining)
        if until > time.time() and until > self.blocked_until:
            self.blocked_until = until
            self.drop_lease()
            if self._storage is not None and self.redis is not None and self.item is not None:
                storage, window_key = self._storage, self.item.key_for(self.key)
                try:
                    await self.redis.run(lambda _: storage.block(window_key, until))
                except RedisUnavailable:
                    pass

    # -- status -----------------------------------------------------------------------
    def _describe(self) -> dict[str, Any]:
        if self.cfg is None:
            return {}
        return {"max_requests": self.cfg.max_requests, "window_ms": self.cfg.window_ms}

    async def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"configured": self._describe() or None, "adaptive": self.adaptive}
        if self.lease_s:
            held = self._lease_left if time.monotonic() < self._lease_until else 0
            out["lease"] = {"ms": round(self.lease_s * 1000), "batch": self._lease_size, "held": held}
        now = time.time()
        if self.blocked_until > now:
            out["blocked_for_s"] = round(self.blocked_until - now, 3)
        if self._provider:
            out["provider"] = self._provider
        item, shared = self.item, self._shared
        if item is None:
            return out
        if shared is not None and self.redis is not None and self.redis.available:
            try:
                stats = await self.redis.run(lambda _: shared.get_window_stats(item, self.key))
                out.update(scope="global", remaining=stats[1])
                return out
            except RedisUnavailable:
                pass
        local_item = self.local_item
        assert local_item is not None
        stats = await self._local.get_window_stats(local_item, self.key)
        out.update(scope="local", remaining=stats[1])
        return out
