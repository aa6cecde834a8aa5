"""Client-side provider rate limits: moving windows, global on Redis, local fallback, adaptive."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import pytest
from tests.faults.support import REDIS_URL, RedisServer
from tests.resilience.fakes import plugin_of, scripted_gateway

from mosaic.errors import RateLimited
from mosaic.gateway.context import RequestContext
from mosaic.plugins.http_ratelimit import RateLimitState
from mosaic.resilience.config import RateLimitConfig
from mosaic.resilience.errors import LocalRateLimited
from mosaic.resilience.ratelimit import ProviderRateLimiter
from mosaic.state.redis import RedisState


class _Call:
    """What the limiter reads from a pipeline call: its context."""

    def __init__(self, timeout: float | None) -> None:
        self.ctx = RequestContext.with_timeout(timeout) if timeout is not None else RequestContext()


def max_in_window(times: Sequence[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


@contextlib.asynccontextmanager
async def replicas(prefix: str, n: int) -> AsyncIterator[list[RedisState]]:
    """``n`` replicas' Redis states on the real Redis, under one test prefix."""
    states = [RedisState(REDIS_URL, prefix=prefix) for _ in range(n)]
    for s in states:
        await s.start()
    try:
        yield states
    finally:
        for s in states:
            await s.stop()


def limit(max_requests: int, window_ms: int, **kw: object) -> RateLimitConfig:
    return RateLimitConfig.model_validate({"maxRequests": max_requests, "windowMs": window_ms, **kw})


async def take_all(limiters: list[ProviderRateLimiter], n: int, deadline: float) -> list[float]:
    times: list[float] = []

    async def one(lim: ProviderRateLimiter) -> None:
        await lim.acquire(_Call(deadline))  # type: ignore[arg-type]
        times.append(time.monotonic())

    await asyncio.gather(*(one(limiters[i % len(limiters)]) for i in range(n)))
    return times


async def test_local_moving_window_never_exceeds_the_limit() -> None:
    lim = ProviderRateLimiter("p", limit(5, 200))
    times = await take_all([lim], 14, deadline=2.0)
    assert len(times) == 14
    assert times[-1] - times[0] >= 0.4 * 0.9  # 14 calls at 5 per 200 ms need two more windows
    assert max_in_window(times, 0.15) <= 5  # (50 ms allowed for scheduling on a busy machine)


async def test_no_slot_before_the_deadline_fails_with_retry_after() -> None:
    lim = ProviderRateLimiter("p", limit(2, 1000))
    await take_all([lim], 2, deadline=1)
    start = time.monotonic()
    with pytest.raises(LocalRateLimited) as info:
        await lim.acquire(_Call(0.5))  # type: ignore[arg-type]
    assert time.monotonic() - start < 0.25  # fails at once (not after 0.5 s): it would never fit
    assert isinstance(info.value, RateLimited) and 0.8 < info.value.retry_after <= 1.0


async def test_replicas_share_one_window_on_redis(redis_prefix: str) -> None:
    async with replicas(redis_prefix, 3) as states:
        limiters = [ProviderRateLimiter("gitea", limit(6, 250), s) for s in states]
        times = await take_all(limiters, 18, deadline=3.0)
        # The sum over the three replicas, not 6 each: 18 calls need two more windows after the
        # first. Slots are granted on Redis' clock and seen here a moment later: the sliding check
        # allows 80 ms of scheduling jitter on a busy machine.
        span = times[-1] - times[0]
        assert span >= 0.5 * 0.9
        assert len(times) <= 6 * (span / 0.25 + 1)
        assert max_in_window(times, 0.17) <= 6
        snapshot = await limiters[0].snapshot()
        assert snapshot["scope"] == "global"


async def test_falls_back_to_a_local_window_when_redis_dies(private_redis: RedisServer) -> None:
    state = RedisState(private_redis.url, prefix="t:")
    await state.start()
    try:
        lim = ProviderRateLimiter("gitea", limit(10, 300, fallbackMaxRequests=3), state)
        await take_all([lim], 2, deadline=1)
        private_redis.kill()
        start = time.monotonic()
        times = await take_all([lim], 6, deadline=2)
        assert time.monotonic() - start < 1.5
        assert max_in_window(times, 0.22) <= 3  # fallbackMaxRequests per replica
        assert times[-1] - times[0] >= 0.3 * 0.9
        assert (await lim.snapshot())["scope"] == "local"
    finally:
        await state.stop()


async def test_provider_headers_hold_every_replica_back(redis_prefix: str) -> None:
    async with replicas(redis_prefix, 2) as states:
        a, b = (ProviderRateLimiter("gitea", limit(100, 1000), s) for s in states)

        class Plugin:
            rate_limit = RateLimitState(limit=5000, remaining=0, reset=time.time() + 0.2,
                                        observed_at=time.time())

        await a.observe(Plugin())
        start = time.monotonic()
        await b.acquire(_Call(1.0))  # type: ignore[arg-type]  # b never saw the headers itself
        assert time.monotonic() - start >= 0.15
        with pytest.raises(LocalRateLimited):
            Plugin.rate_limit = RateLimitState(retry_after=30, observed_at=time.time())
            await a.observe(Plugin())
            await b.acquire(_Call(0.5))  # type: ignore[arg-type]


@pytest.mark.usefixtures("no_redis")
async def test_gateway_waits_for_a_slot_within_the_deadline() -> None:
    g = scripted_gateway(rateLimit={"maxRequests": 3, "windowMs": 300}, circuitBreaker={"enabled": False})
    await g.start()
    try:
        p = plugin_of(g)
        p.repos["acme/api"] = p._repo("acme/api")
        await asyncio.gather(*(g.execute("git.get_repository", {"repo": "acme/api"},
                                         RequestContext.with_timeout(2)) for _ in range(9)))
        # Measured where the provider sees the calls: allow for scheduling jitter.
        times = [t for _, t in p.calls]
        assert max_in_window(times, 0.15) <= 3 and max(times) - min(times) >= 0.6 * 0.9
        with pytest.raises(RateLimited):
            for _ in range(5):
                await g.execute("git.get_repository", {"repo": "acme/api"}, RequestContext.with_timeout(0.02))
    finally:
        await g.stop()


class _CountingStorage:
    """Counts the round trips a limiter makes to the shared window (the window itself is real)."""

    def __init__(self, lim: ProviderRateLimiter) -> None:
        assert lim._storage is not None
        self.trips = 0
        real = lim._storage.acquire_entry

        async def counted(key: str, limit: int, expiry: float, amount: int = 1) -> bool:
            self.trips += 1
            return await real(key, limit, expiry, amount)

        lim._storage.acquire_entry = counted  # type: ignore[method-assign]


def test_leases_only_for_high_limits() -> None:
    assert limit(5000, 3_600_000).lease_s == 0.0  # GitHub's 5,000/h: every call asks Redis
    assert limit(100, 1000).lease_s == pytest.approx(0.05)  # at most windowMs/20
    assert limit(10_000, 60_000).lease_s == pytest.approx(0.1)
    assert limit(10_000, 60_000, leaseMs=0).lease_s == 0.0


async def test_leases_take_slots_in_batches_and_keep_the_global_limit(redis_prefix: str) -> None:
    async with replicas(redis_prefix, 2) as states:
        # Below the limit: 700 calls need far fewer than 700 round trips.
        roomy = [ProviderRateLimiter("roomy", limit(5000, 1000), s) for s in states]
        counters = [_CountingStorage(lim) for lim in roomy]
        assert len(await take_all(roomy, 700, deadline=5.0)) == 700
        trips = sum(c.trips for c in counters)
        assert trips < 700 / 3, f"{trips} round trips for 700 calls: leases are not batching"
        assert max(lim._lease_size for lim in roomy) > 1
        shown = (await roomy[0].snapshot())["lease"]
        assert shown["ms"] == 50 and shown["batch"] >= 1 and shown["held"] >= 0  # what `mosaic status` shows
        # At the limit: 200 per 500 ms over two replicas, leases of up to 10 slots held 25 ms.
        tight = [ProviderRateLimiter("tight", limit(200, 500), s) for s in states]
        times = await take_all(tight, 700, deadline=5.0)
        assert len(times) == 700
        assert max_in_window(times, 0.45) <= 200  # never more than the limit in any window
        assert times[-1] - times[0] >= 1.5 * 0.9  # 700 calls at 200 per 500 ms


async def test_an_idle_lease_expires_and_shrinks(redis_prefix: str) -> None:
    state = RedisState(REDIS_URL, prefix=redis_prefix)
    await state.start()
    try:
        lim = ProviderRateLimiter("gitea", limit(1000, 1000, leaseMs=30), state)
        await take_all([lim], 200, deadline=2.0)
        grown = lim._lease_size
        assert grown > 1
        for _ in range(6):  # one call per lease period: every lease expires nearly unspent
            await asyncio.sleep(0.04)
            await take_all([lim], 1, deadline=1.0)
        assert lim._lease_size < grown
    finally:
        await state.stop()
