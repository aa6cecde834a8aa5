"""Retries: backoff, deadline, Retry-After, and what may be repeated at all."""

from __future__ import annotations

import time

import pytest
from tests.resilience.fakes import plugin_of, scripted_gateway

from mosaic.errors import NotFound, ProviderUnavailable, RateLimited, Timeout
from mosaic.gateway.context import RequestContext
from mosaic.resilience.config import RetryConfig
from mosaic.resilience.retry import RetryPolicy

pytestmark = pytest.mark.usefixtures("no_redis")

FAST = {"attempts": 5, "initialDelayMs": 10, "maxDelayMs": 40, "jitterMs": 5}
NO_BREAKER = {"enabled": False}


def down(sent: bool = True) -> ProviderUnavailable:
    return ProviderUnavailable("injected outage", sent=sent)


async def test_read_is_retried_until_it_succeeds() -> None:
    g = scripted_gateway(retry=FAST, circuitBreaker=NO_BREAKER)
    await g.start()
    try:
        p = plugin_of(g)
        p.repos["acme/api"] = p._repo("acme/api")
        p.push(down(), Timeout("slow"))
        ctx = RequestContext()
        repo = await g.execute("git.get_repository", {"repo": "acme/api"}, ctx)
        assert repo.full_name == "acme/api"
        assert p.count("get_repository") == 3 and ctx.meta["retries"] == 2
    finally:
        await g.stop()


async def test_retries_stop_at_the_deadline() -> None:
    g = scripted_gateway(retry={"attempts": 50, "initialDelayMs": 30, "multiplier": 1, "jitterMs": 0},
                         circuitBreaker=NO_BREAKER)
    await g.start()
    try:
        p = plugin_of(g)
        p.push(*(down() for _ in range(50)))
        start = time.monotonic()
        with pytest.raises(ProviderUnavailable):
            await g.execute("git.get_repository", {"repo": "acme/api"}, RequestContext.with_timeout(0.2))
        elapsed = time.monotonic() - start
        # Scheduling slack on a shared machine: without the deadline, 50 retries take 1.5 s.
        assert elapsed < 0.3, "a retry never runs past the deadline"
        assert 2 <= p.count("get_repository") <= 7
    finally:
        await g.stop()


async def test_total_retry_time_is_bounded_too() -> None:
    g = scripted_gateway(retry={**FAST, "attempts": 50, "multiplier": 1, "timeoutMs": 100},
                         circuitBreaker=NO_BREAKER)
    await g.start()
    try:
        plugin_of(g).push(*(down() for _ in range(50)))
        start = time.monotonic()
        with pytest.raises(ProviderUnavailable):
            await g.execute("git.get_repository", {"repo": "acme/api"})
        assert time.monotonic() - start < 0.25  # timeoutMs 100, plus scheduling slack
    finally:
        await g.stop()


async def test_retry_after_is_honoured() -> None:
    g = scripted_gateway(retry=FAST, circuitBreaker=NO_BREAKER)
    await g.start()
    try:
        p = plugin_of(g)
        p.repos["acme/api"] = p._repo("acme/api")
        p.push(RateLimited("slow down", retry_after=0.15))
        start = time.monotonic()
        await g.execute("git.get_repository", {"repo": "acme/api"}, RequestContext.with_timeout(2))
        assert time.monotonic() - start >= 0.15
        assert p.count("get_repository") == 2
    finally:
        await g.stop()


async def test_a_retry_after_beyond_the_deadline_fails_at_once() -> None:
    g = scripted_gateway(retry=FAST, circuitBreaker=NO_BREAKER)
    await g.start()
    try:
        plugin_of(g).push(RateLimited("slow down", retry_after=5))
        start = time.monotonic()
        with pytest.raises(RateLimited) as info:
            await g.execute("git.get_repository", {"repo": "acme/api"}, RequestContext.with_timeout(1))
        assert time.monotonic() - start < 0.5 and info.value.retry_after == 5  # not 1 s, not 5 s
    finally:
        await g.stop()


async def test_non_idempotent_write_is_retried_only_when_it_was_not_sent() -> None:
    g = scripted_gateway(retry=FAST, circuitBreaker=NO_BREAKER)
    await g.start()
    try:
        p = plugin_of(g)
        p.push(down(sent=True))
        with pytest.raises(ProviderUnavailable):
            await g.execute("git.create_repository", {"name": "a", "owner": "acme"})
        assert p.count("create_repository") == 1  # may have been applied: never repeated
        p.push(down(sent=False), down(sent=False))
        repo = await g.execute("git.create_repository", {"name": "b", "owner": "acme"})
        assert repo.full_name == "acme/b" and p.count("create_repository") == 4
    finally:
        await g.stop()


async def test_idempotent_write_is_retried() -> None:
    g = scripted_gateway(retry=FAST, circuitBreaker=NO_BREAKER)
    await g.start()
    try:
        p = plugin_of(g)
        p.repos["acme/api"] = p._repo("acme/api")
        p.push(Timeout("lost answer"))
        repo = await g.execute("git.update_repository", {"repo": "acme/api", "description": "x"})
        assert repo.description == "x" and p.count("update_repository") == 2
    finally:
        await g.stop()


async def test_caller_errors_are_not_retried() -> None:
    g = scripted_gateway(retry=FAST, circuitBreaker=NO_BREAKER)
    await g.start()
    try:
        with pytest.raises(NotFound):
            await g.execute("git.get_repository", {"repo": "acme/missing"})
        assert plugin_of(g).count("get_repository") == 1
    finally:
        await g.stop()


def test_backoff_is_exponential_with_bounded_jitter() -> None:
    policy = RetryPolicy(RetryConfig(initialDelayMs=100, maxDelayMs=1000, jitterMs=50, multiplier=2))
    for n, base in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8)):
        delays = [policy.backoff(n) for _ in range(50)]
        assert all(base <= d <= base + 0.05 for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert policy.backoff(10) == 1.0  # capped
    constant = RetryPolicy(RetryConfig(backoff="constant", initialDelayMs=100, jitterMs=0))
    assert constant.backoff(5) == 0.1
