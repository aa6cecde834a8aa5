"""Bulkhead (concurrent calls per provider instance) and per-operation timeouts."""

from __future__ import annotations

import asyncio
import time

import pytest
from tests.resilience.fakes import plugin_of, scripted_gateway

from mosaic.errors import ProviderUnavailable, Timeout
from mosaic.gateway.context import RequestContext
from mosaic.resilience.breaker import State
from mosaic.resilience.errors import BulkheadFull

pytestmark = pytest.mark.usefixtures("no_redis")


async def test_full_bulkhead_rejects_without_calling_the_provider() -> None:
    g = scripted_gateway(bulkhead={"maxConcurrentCalls": 2}, retry={"attempts": 1})
    await g.start()
    try:
        p = plugin_of(g)
        p.repos["acme/api"] = p._repo("acme/api")
        p.push(0.1, 0.1)
        results = await asyncio.gather(*(g.execute("git.get_repository", {"repo": "acme/api"})
                                         for _ in range(3)), return_exceptions=True)
        rejected = [r for r in results if isinstance(r, BulkheadFull)]
        assert len(rejected) == 1 and p.count("get_repository") == 2
        assert isinstance(rejected[0], ProviderUnavailable) and rejected[0].sent is False
        # A rejection by our own bulkhead says nothing about the provider's health.
        assert g.resilience.policies.get("scripted").breaker.window.snapshot(0)[0] == 2
    finally:
        await g.stop()


async def test_waiting_for_a_slot_within_max_wait() -> None:
    g = scripted_gateway(bulkhead={"maxConcurrentCalls": 1, "maxWaitMs": 500})
    await g.start()
    try:
        p = plugin_of(g)
        p.repos["acme/api"] = p._repo("acme/api")
        p.push(0.05, 0.05, 0.05)
        start = time.monotonic()
        await asyncio.gather(*(g.execute("git.get_repository", {"repo": "acme/api"}) for _ in range(3)))
        assert time.monotonic() - start >= 0.15  # one at a time
        # ...but never past the request's own deadline.
        p.push(0.3)
        first = asyncio.ensure_future(g.execute("git.get_repository", {"repo": "acme/api"}))
        await asyncio.sleep(0.01)
        with pytest.raises(BulkheadFull):
            await g.execute("git.get_repository", {"repo": "acme/api"}, RequestContext.with_timeout(0.05))
        await first
    finally:
        await g.stop()


async def test_operation_timeout_applies_per_attempt_and_counts_for_the_breaker() -> None:
    g = scripted_gateway(
        bulkhead={"timeoutMs": 1000, "operationTimeoutsMs": {"get_repository": 30}},
        retry={"attempts": 1},
        circuitBreaker={"slidingWindowSize": 2, "minimumNumberOfCalls": 2, "waitDurationInOpenStateMs": 1000})
    await g.start()
    try:
        p = plugin_of(g)
        p.push(0.5, 0.5)
        for _ in range(2):
            start = time.monotonic()
            with pytest.raises(Timeout) as info:
                await g.execute("git.get_repository", {"repo": "acme/api"})
            assert time.monotonic() - start < 0.4  # 30 ms operation timeout, not the 0.5 s call
            assert info.value.details["operation_timeout"] is True
        assert g.resilience.policies.get("scripted").breaker.state is State.OPEN
    finally:
        await g.stop()


async def test_the_callers_own_deadline_does_not_trip_the_breaker() -> None:
    g = scripted_gateway(retry={"attempts": 1},
                         circuitBreaker={"slidingWindowSize": 2, "minimumNumberOfCalls": 2})
    await g.start()
    try:
        p = plugin_of(g)
        p.push(0.2, 0.2)
        for _ in range(2):
            with pytest.raises(Timeout):
                await g.execute("git.get_repository", {"repo": "acme/api"}, RequestContext.with_timeout(0.02))
        breaker = g.resilience.policies.get("scripted").breaker
        assert breaker.state is State.CLOSED and breaker.window.snapshot(0)[0] == 0
    finally:
        await g.stop()
