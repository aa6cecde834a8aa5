"""Three gateway replicas (three Gateway instances, own clients and L1) sharing one Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from tests.faults.support import gitea_spec, make_gateway, running
from tests.faults.upstream import FakeGitea, Fault

from mosaic.errors import ProviderUnavailable
from mosaic.gateway.context import RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.resilience.breaker import CircuitOpen, State

pytestmark = pytest.mark.usefixtures("redis_env")

GET = "git.get_repository"


def replicas(upstream: FakeGitea, n: int = 3, cache: dict[str, Any] | None = None,
             **shared: Any) -> list[Gateway]:
    return [make_gateway(gitea_spec("gitea", upstream, **shared), cache=cache) for _ in range(n)]


def max_in_window(times: Sequence[float], window: float) -> int:
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


async def eventually(pred: Callable[[], Any], within: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    while not await pred():
        assert loop.time() < until, "not reached in time"
        await asyncio.sleep(0.005)


async def test_one_global_rate_limit(upstream: FakeGitea) -> None:
    limit, window, n = 8, 0.4, 32
    for i in range(n):
        upstream.add_repo("acme", f"r{i}")
    gws = replicas(upstream, rateLimit={"maxRequests": limit, "windowMs": int(window * 1000)})
    async with running(*gws):
        for g in gws:  # open each replica's HTTP connection before measuring
            await g.execute(GET, {"repo": "acme/api"})
        await asyncio.sleep(window)
        upstream.log.clear()
        await asyncio.gather(*(gws[i % 3].execute(GET, {"repo": f"acme/r{i}"}, RequestContext.with_timeout(10))
                               for i in range(n)))
    times = upstream.times("GET", "/repos")
    assert len(times) == n
    span = max(times) - min(times)
    # One limit for the three together: 32 calls at 8 per 400 ms need three more windows after
    # the first (per-replica limits would have let 24 through at once and ended in ~0.4 s).
    assert span >= (n / limit - 1) * window * 0.9
    # The bound: within the limit per window over the run, +- one window.
    assert n <= limit * (span / window + 1)
    # Seen from the upstream, slots arrive a little after Redis granted them; with up to 100 ms of
    # scheduling jitter on a busy machine, no 300 ms stretch may carry more than the limit.
    assert max_in_window(times, window - 0.1) <= limit


async def test_one_breaker_state(upstream: FakeGitea) -> None:
    breaker = {"slidingWindowSize": 4, "minimumNumberOfCalls": 4, "waitDurationInOpenStateMs": 10_000}
    a, b, c = replicas(upstream, circuitBreaker=breaker, retry={"attempts": 1})
    async with running(a, b, c):
        upstream.script(*(Fault.error(503) for _ in range(4)), method="GET", path="/repos")
        for _ in range(4):
            with pytest.raises(ProviderUnavailable):
                await a.execute(GET, {"repo": "acme/api"})

        async def all_open() -> bool:
            return all(g.resilience.policies.get("gitea").breaker.state is State.OPEN for g in (a, b, c))

        await eventually(all_open, within=0.5)
        calls = upstream.count("GET", "/repos")
        for g in (b, c):
            with pytest.raises(CircuitOpen):
                await g.execute(GET, {"repo": "acme/api"})
        assert upstream.count("GET", "/repos") == calls  # B and C never called the failing provider


async def test_writes_invalidate_every_replicas_l1(upstream: FakeGitea) -> None:
    a, b, c = replicas(upstream, cache={"enabled": True, "provider": "redis", "ttl": 300})
    async with running(a, b, c):
        for g in (a, b, c):
            assert (await g.execute(GET, {"repo": "acme/api"})).description == "the API"
        for g in (a, b, c):  # now in every L1
            await g.execute(GET, {"repo": "acme/api"})
        assert upstream.count("GET", "/repos") == 1  # one fetch, then L2, then L1
        await c.execute("git.update_repository", {"repo": "acme/api", "description": "v2"})
        for g in (a, b):
            async def fresh(g: Gateway = g) -> bool:
                return (await g.execute(GET, {"repo": "acme/api"})).description == "v2"

            await eventually(fresh, within=1.0)
        remote = sum(g.resilience.cache.stats["remote_invalidations"] for g in (a, b) if g.resilience.cache)
        assert remote >= 2
