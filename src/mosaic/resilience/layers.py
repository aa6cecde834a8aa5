"""The per-provider pipeline layers: retry → circuit breaker → rate limit → bulkhead/timeout.

Each acts on ``call.plugin``, the candidate being tried (set by failover; the first candidate
otherwise). The order is deliberate:

* retry is outermost so that *every* attempt passes the breaker and the rate limiter — a retry
  storm can neither exceed the provider's limit nor hide failures from the breaker;
* the breaker comes before the rate limiter so that calls it rejects do not spend the
  provider's quota;
* the bulkhead is innermost, next to the call, so that a slot is held only while the provider
  is actually being called, and the breaker's slow-call clock starts there too (time spent
  queueing for a rate-limit slot or a bulkhead slot is ours, not the provider's).
"""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel

from mosaic.errors import MosaicError, Timeout
from mosaic.gateway.pipeline import Call, Next
from mosaic.plugins.contract import ProviderPlugin
from mosaic.resilience.breaker import CircuitBreaker, Permit
from mosaic.resilience.config import CircuitBreakerConfig
from mosaic.resilience.errors import is_local_rejection
from mosaic.resilience.policies import ProviderPolicies
from mosaic.resilience.retry import run_with_retries

ATTEMPT_STARTED = "_attempt_started"


def current_plugin(call: Call) -> ProviderPlugin:
    plugin = call.plugin
    if plugin is None:
        plugin = call.candidates[0]
        call.plugin = plugin
    return plugin


class RetryLayer:
    def __init__(self, policies: ProviderPolicies) -> None:
        self.policies = policies

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        policy = self.policies.get(current_plugin(call).id).retry
        if policy.attempts <= 1:
            return await nxt(call)
        return await run_with_retries(call, nxt, policy)


def classify(exc: BaseException, call: Call, cfg: CircuitBreakerConfig) -> str:
    """``fail``, ``ok`` or ``ignore`` for the breaker."""
    if is_local_rejection(exc):
        return "ignore"
    code = exc.code if isinstance(exc, MosaicError) else "internal_error"
    if code in cfg.ignore_errors:
        return "ignore"
    if isinstance(exc, Timeout) and not exc.details.get("operation_timeout") and call.ctx.remaining() == 0:
        # The caller's own deadline ran out: says nothing about the provider.
        return "ignore"
    return "fail" if code in cfg.record_errors else "ok"


class BreakerLayer:
    def __init__(self, policies: ProviderPolicies) -> None:
        self.policies = policies

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        policy = self.policies.get(current_plugin(call).id)
        breaker = policy.breaker
        permit = await breaker.acquire()
        entered = time.monotonic()
        try:
            result = await nxt(call)
        except asyncio.CancelledError:
            _release_cancelled(breaker, permit)
            raise
        except Exception as exc:
            outcome = classify(exc, call, policy.config.circuit_breaker)
            await breaker.record(permit, outcome, _duration(call, entered))
            raise
        await breaker.record(permit, "ok", _duration(call, entered))
        return result


def _duration(call: Call, entered: float) -> float:
    started = call.ctx.meta.get(ATTEMPT_STARTED)
    begin = started if isinstance(started, float) and started >= entered else entered
    return time.monotonic() - begin


_BACKGROUND: set[asyncio.Task[None]] = set()


def _release_cancelled(breaker: CircuitBreaker, permit: Permit) -> None:
    if not permit.half_open:
        return
    task = asyncio.get_running_loop().create_task(breaker.record(permit, "ignore", 0.0))
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


class RateLimitLayer:
    def __init__(self, policies: ProviderPolicies) -> None:
        self.policies = policies

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        plugin = current_plugin(call)
        limiter = self.policies.get(plugin.id).limiter
        await limiter.acquire(call)
        try:
            return await nxt(call)
        finally:
            if limiter.adaptive:
                await limiter.observe(plugin)


class BulkheadLayer:
    def __init__(self, policies: ProviderPolicies) -> None:
        self.policies = policies

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        bulkhead = self.policies.get(current_plugin(call).id).bulkhead
        return await bulkhead.run(call, nxt)
