"""Scripted upstream faults through the real Gitea provider and the whole pipeline."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.faults.support import gitea_spec, make_gateway, running
from tests.faults.upstream import FakeGitea, Fault

from mosaic.errors import Conflict, NotFound, ProviderUnavailable, RateLimited, Timeout
from mosaic.gateway.context import RequestContext
from mosaic.resilience.breaker import CircuitOpen, State

GET = "git.get_repository"
REPO = {"repo": "acme/api"}
BREAKER = {"slidingWindowSize": 4, "minimumNumberOfCalls": 4, "failureRateThreshold": 50,
           "waitDurationInOpenStateMs": 150, "permittedNumberOfCallsInHalfOpenState": 2}

pytestmark = pytest.mark.usefixtures("redis_env")


async def test_5xx_burst_opens_the_breaker_then_half_open_closes_it(upstream: FakeGitea) -> None:
    g = make_gateway(gitea_spec("gitea", upstream, circuitBreaker=BREAKER, retry={"attempts": 1}))
    async with running(g):
        upstream.script(*(Fault.error(503) for _ in range(4)), method="GET", path="/repos")
        for _ in range(4):
            with pytest.raises(ProviderUnavailable):
                await g.execute(GET, REPO)
        breaker = g.resilience.policies.get("gitea").breaker
        assert breaker.state is State.OPEN
        before = upstream.count("GET", "/repos")
        with pytest.raises(CircuitOpen) as info:
            await g.execute(GET, REPO)
        assert upstream.count("GET", "/repos") == before  # rejected without calling the provider
        assert info.value.code == "provider_unavailable" and info.value.details["breaker"] == "open"
        await asyncio.sleep(0.16)
        # Half-open: the permitted trial calls reach the (recovered) upstream and close it.
        await asyncio.gather(*(g.execute(GET, REPO) for _ in range(2)))
        assert breaker.state is State.CLOSED
        assert upstream.count("GET", "/repos") == before + 2


async def test_failing_trial_calls_reopen_the_breaker(upstream: FakeGitea) -> None:
    g = make_gateway(gitea_spec("gitea", upstream, retry={"attempts": 1},
                                circuitBreaker={**BREAKER, "permittedNumberOfCallsInHalfOpenState": 1}))
    async with running(g):
        upstream.script(*(Fault.error(500) for _ in range(5)), method="GET", path="/repos")
        for _ in range(4):
            with pytest.raises(ProviderUnavailable):
                await g.execute(GET, REPO)
        await asyncio.sleep(0.16)
        with pytest.raises(ProviderUnavailable):
            await g.execute(GET, REPO)  # the trial fails...
        assert g.resilience.policies.get("gitea").breaker.state is State.OPEN  # ...and it opens again


async def test_caller_errors_never_trip_the_breaker(upstream: FakeGitea) -> None:
    g = make_gateway(gitea_spec("gitea", upstream, circuitBreaker=BREAKER, retry={"attempts": 3}))
    async with running(g):
        for _ in range(10):
            with pytest.raises(NotFound):
                await g.execute(GET, {"repo": "acme/missing"})
        with pytest.raises(Conflict):
            await g.execute("git.create_repository", {"name": "api", "owner": "acme"})  # exists
        assert g.resilience.policies.get("gitea").breaker.state is State.CLOSED
        assert upstream.count("GET", "/repos/acme/missing") == 10  # and never retried


async def test_slow_upstream_trips_the_slow_call_rate(upstream: FakeGitea) -> None:
    g = make_gateway(gitea_spec("gitea", upstream, retry={"attempts": 1}, circuitBreaker={
        **BREAKER, "slowCallRateThreshold": 50, "slowCallDurationThresholdMs": 40}))
    async with running(g):
        upstream.script(*(Fault.ok(latency=0.06) for _ in range(4)), method="GET", path="/repos")
        for _ in range(4):
            await g.execute(GET, REPO)  # all succeed, slowly
        assert g.resilience.policies.get("gitea").breaker.state is State.OPEN


async def test_retries_stop_at_the_deadline_against_a_hanging_and_failing_upstream(
        upstream: FakeGitea) -> None:
    g = make_gateway(gitea_spec("gitea", upstream, circuitBreaker={"enabled": False},
                                retry={"attempts": 20, "initialDelayMs": 20, "jitterMs": 10},
                                bulkhead={"timeoutMs": 100}))
    async with running(g):
        upstream.script(Fault.hang(), *(Fault.error(502) for _ in range(30)), method="GET", path="/repos")
        start = time.monotonic()
        with pytest.raises((ProviderUnavailable, Timeout)):
            await g.execute(GET, REPO, RequestContext.with_timeout(0.5))
        elapsed = time.monotonic() - start
        assert 0.1 <= elapsed < 0.6, elapsed  # the 0.5 s deadline, plus scheduling slack
        assert 2 <= upstream.count("GET", "/repos") <= 12


async def test_429_retry_after_is_honoured(upstream: FakeGitea) -> None:
    g = make_gateway(gitea_spec("gitea", upstream, retry={"attempts": 3, "initialDelayMs": 1}))
    async with running(g):
        upstream.script(Fault.too_many(0.2), method="GET", path="/repos")
        start = time.monotonic()
        repo = await g.execute(GET, REPO, RequestContext.with_timeout(2))
        assert repo.full_name == "acme/api" and time.monotonic() - start >= 0.2
        upstream.script(Fault.too_many(30), method="GET", path="/repos")
        start = time.monotonic()
        with pytest.raises(RateLimited) as info:
            await g.execute(GET, REPO, RequestContext.with_timeout(2))
        assert info.value.retry_after == 30 and time.monotonic() - start < 1.0  # not 30 s


async def test_rate_limit_headers_make_the_gateway_hold_back(upstream: FakeGitea) -> None:
    reset = time.time() + 0.3
    upstream.extra_headers = lambda req: {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0",
                                          "X-RateLimit-Reset": f"{reset:.3f}"}
    g = make_gateway(gitea_spec("gitea", upstream, rateLimit={"maxRequests": 1000, "windowMs": 60000}))
    async with running(g):
        await g.execute(GET, REPO)  # the provider says: nothing left until reset
        upstream.extra_headers = None
        with pytest.raises(RateLimited):
            await g.execute(GET, {"repo": "acme/other"}, RequestContext.with_timeout(0.1))
        start = time.monotonic()
        with pytest.raises(NotFound):
            await g.execute(GET, {"repo": "acme/other"}, RequestContext.with_timeout(2))
        assert time.time() >= reset - 0.01 and time.monotonic() - start > 0.1
