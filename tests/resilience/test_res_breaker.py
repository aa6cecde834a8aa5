"""Circuit breaker: Resilience4j semantics, locally and shared by replicas through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.faults.support import REDIS_URL, RedisServer

from mosaic.resilience.breaker import CircuitBreaker, CircuitOpen, Permit, State
from mosaic.resilience.config import CircuitBreakerConfig
from mosaic.state.redis import RedisState, Subscriber


def cfg(**kw: Any) -> CircuitBreakerConfig:
    base: dict[str, Any] = {"slidingWindowSize": 4, "minimumNumberOfCalls": 4, "failureRateThreshold": 50,
                            "waitDurationInOpenStateMs": 80, "permittedNumberOfCallsInHalfOpenState": 2}
    base.update(kw)
    return CircuitBreakerConfig.model_validate(base)


async def call(b: CircuitBreaker, outcome: str, duration: float = 0.001) -> Permit:
    permit = await b.acquire()
    await b.record(permit, outcome, duration)
    return permit


async def test_count_window_opens_only_after_minimum_calls() -> None:
    b = CircuitBreaker("p1", cfg(slidingWindowSize=10, minimumNumberOfCalls=5))
    for _ in range(4):
        await call(b, "fail")
    assert b.state is State.CLOSED  # 4 failures, but fewer than minimumNumberOfCalls
    await call(b, "fail")
    assert b.state is State.OPEN


async def test_failure_rate_below_threshold_stays_closed_and_window_slides() -> None:
    b = CircuitBreaker("p2", cfg(slidingWindowSize=4, minimumNumberOfCalls=4, failureRateThreshold=75))
    for outcome in ("fail", "ok", "fail", "ok", "ok", "fail"):
        await call(b, outcome)
    assert b.state is State.CLOSED  # never 3 failures among the last 4 calls
    await call(b, "fail")  # last four: ok ok fail fail
    assert b.state is State.CLOSED
    await call(b, "fail")  # last four: ok fail fail fail = 75 %
    assert b.state is State.OPEN


async def test_open_rejects_then_half_open_permits_exactly_n_then_closes() -> None:
    b = CircuitBreaker("p3", cfg())
    for _ in range(4):
        await call(b, "fail")
    assert b.state is State.OPEN
    with pytest.raises(CircuitOpen) as info:
        await b.acquire()
    assert info.value.sent is False and info.value.code == "provider_unavailable"
    assert 0 < info.value.retry_after <= 0.08
    await asyncio.sleep(0.09)
    p1, p2 = await b.acquire(), await b.acquire()
    assert b.state is State.HALF_OPEN and p1.half_open and p2.half_open
    with pytest.raises(CircuitOpen):
        await b.acquire()  # only two trial calls
    await b.record(p1, "ok", 0.001)
    assert b.state is State.HALF_OPEN  # waits for all permitted calls
    await b.record(p2, "ok", 0.001)
    assert b.state is State.CLOSED
    assert (await b.acquire()).half_open is False


async def test_failed_trial_reopens_with_backoff() -> None:
    b = CircuitBreaker("p4", cfg(waitDurationBackoffMultiplier=2.0, permittedNumberOfCallsInHalfOpenState=1))
    for _ in range(4):
        await call(b, "fail")
    assert b.wait_ms == 80
    await asyncio.sleep(0.09)
    await call(b, "fail")
    assert b.state is State.OPEN and b.wait_ms == 160  # second open in a row waits twice as long
    await asyncio.sleep(0.09)
    with pytest.raises(CircuitOpen):
        await b.acquire()
    await asyncio.sleep(0.08)
    await call(b, "ok")
    assert b.state is State.CLOSED and b.opens == 0


async def test_slow_call_rate_opens() -> None:
    b = CircuitBreaker("p5", cfg(slowCallRateThreshold=50, slowCallDurationThresholdMs=20))
    for _ in range(2):
        await call(b, "ok", 0.001)
    for _ in range(2):
        await call(b, "ok", 0.05)  # successful but slow
    assert b.state is State.OPEN


async def test_ignored_outcomes_do_not_count_and_release_half_open_permits() -> None:
    b = CircuitBreaker("p6", cfg(permittedNumberOfCallsInHalfOpenState=1))
    for _ in range(10):
        await call(b, "ignore")
    assert b.window.snapshot(0)[0] == 0
    for _ in range(4):
        await call(b, "fail")
    await asyncio.sleep(0.09)
    permit = await b.acquire()
    await b.record(permit, "ignore", 0.0)  # e.g. the caller's deadline ran out
    assert b.state is State.HALF_OPEN
    await call(b, "ok")  # the permit was given back
    assert b.state is State.CLOSED


async def test_time_window_forgets_old_failures() -> None:
    b = CircuitBreaker("p7", cfg(slidingWindowType="TIME_BASED", slidingWindowMs=100, minimumNumberOfCalls=3))
    await call(b, "fail")
    await call(b, "fail")
    await asyncio.sleep(0.12)
    await call(b, "fail")
    assert b.state is State.CLOSED  # the first two left the window
    await call(b, "fail")
    await call(b, "fail")
    assert b.state is State.OPEN


async def test_half_open_that_waits_too_long_reopens() -> None:
    b = CircuitBreaker("p8", cfg(permittedNumberOfCallsInHalfOpenState=1,
                                 maxWaitDurationInHalfOpenStateMs=50))
    for _ in range(4):
        await call(b, "fail")
    await asyncio.sleep(0.09)
    await b.acquire()  # a trial call that never completes
    await asyncio.sleep(0.06)
    with pytest.raises(CircuitOpen):
        await b.acquire()
    assert b.state is State.OPEN


def test_config_refuses_caller_errors_and_accepts_resilience4j_spelling() -> None:
    with pytest.raises(ValueError, match="caused by the caller"):
        CircuitBreakerConfig.model_validate({"recordErrors": ["not_found"]})
    with pytest.raises(ValueError, match="unknown error code"):
        CircuitBreakerConfig.model_validate({"ignoreErrors": ["bogus"]})
    r4j = CircuitBreakerConfig.model_validate({"slidingWindowType": "COUNT_BASED"})
    assert r4j.sliding_window_type == "count"


# -- shared through Redis ----------------------------------------------------------------------

@pytest.fixture
async def replicas(redis_prefix: str) -> AsyncIterator[list[tuple[RedisState, Subscriber, CircuitBreaker]]]:
    made = []
    for _ in range(3):
        state = RedisState(REDIS_URL, prefix=redis_prefix)
        await state.start()
        sub = Subscriber(state)
        breaker = CircuitBreaker("gitea", cfg(), redis=state)
        sub.subscribe(state.key("breaker"), lambda _c, d, b=breaker: b.on_message(d.decode()))
        await sub.start()
        made.append((state, sub, breaker))
    try:
        yield made
    finally:
        for state, sub, _ in made:
            await sub.stop()
            await state.stop()


async def eventually(pred: Any, within: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + within
    while not pred():
        if loop.time() > until:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


async def test_replicas_see_one_state(replicas: list[tuple[RedisState, Subscriber, CircuitBreaker]]) -> None:
    a, b, c = (r[2] for r in replicas)
    for _ in range(4):
        await call(a, "fail")
    assert a.state is State.OPEN
    await eventually(lambda: b.state is State.OPEN and c.state is State.OPEN)
    with pytest.raises(CircuitOpen):
        await b.acquire()
    await asyncio.sleep(0.09)
    # Half-open permits are global: two trial calls across all replicas, not two each.
    grants = []
    for br in (a, b, c, a, b, c):
        try:
            grants.append((br, await br.acquire()))
        except CircuitOpen:
            pass
    assert len(grants) == 2
    for br, permit in grants:
        await br.record(permit, "ok", 0.001)
    await eventually(lambda: all(x.state is State.CLOSED for x in (a, b, c)))


async def test_new_replica_adopts_shared_open_state(redis_prefix: str) -> None:
    state = RedisState(REDIS_URL, prefix=redis_prefix)
    await state.start()
    try:
        first = CircuitBreaker("gitea", cfg(waitDurationInOpenStateMs=5000), redis=state)
        for _ in range(4):
            await call(first, "fail")
        late = CircuitBreaker("gitea", cfg(waitDurationInOpenStateMs=5000), redis=state)
        with pytest.raises(CircuitOpen):
            await late.acquire()
        assert late.state is State.OPEN
    finally:
        await state.stop()


async def test_breaker_runs_locally_while_redis_is_down(private_redis: RedisServer) -> None:
    state = RedisState(private_redis.url, prefix="t:")
    await state.start()
    try:
        b = CircuitBreaker("gitea", cfg(), redis=state)
        private_redis.kill()
        for _ in range(4):
            await call(b, "fail")  # the transition script fails: the local machine takes over
        assert b.state is State.OPEN and not state.available
        with pytest.raises(CircuitOpen):
            await b.acquire()
    finally:
        await state.stop()


async def test_concurrent_failures_open_it_once(private_redis: RedisServer) -> None:
    """Calls completing while the opening transition waits on a (dying) Redis do not re-open it:
    each re-open would multiply the open wait."""
    state = RedisState(private_redis.url, prefix="t:", op_timeout=0.2)
    await state.start()
    try:
        b = CircuitBreaker("gitea", cfg(waitDurationBackoffMultiplier=2.0, slidingWindowSize=4), redis=state)
        permits = [await b.acquire() for _ in range(12)]
        private_redis.pause()  # the transition script will hang until its timeout
        await asyncio.gather(*(b.record(p, "fail", 0.001) for p in permits))
        assert b.state is State.OPEN and b.opens == 1 and b.wait_ms == 80
    finally:
        private_redis.resume()
        await state.stop()


def test_an_older_generation_never_replaces_a_newer_one() -> None:
    """Replies of concurrent scripts may be handled out of order."""
    b = CircuitBreaker("p9", cfg())
    b._adopt(State.CLOSED, 3, 0, 0, 0)
    b._adopt(State.HALF_OPEN, 2, 0, 0, 0)  # a late reply from before the close
    assert b.state is State.CLOSED and b.gen == 3
    b._adopt(State.OPEN, 1, 0, 100, 1, force=True)  # resynchronising with Redis after an outage
    assert b.state is State.OPEN and b.gen == 1
