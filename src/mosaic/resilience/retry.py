"""Retries with exponential backoff and jitter, over ``stamina``.

What may be retried is decided here, once, for every provider:

* only errors that say so (``retryable``: provider unavailable, timeout, rate limited) — never
  an error the caller caused, never a rejection by our own breaker, bulkhead or rate limiter;
* only reads and idempotent writes — plus any call that provably never reached the provider
  (``sent=False``) or that the provider refused unprocessed (429): repeating those cannot
  duplicate a write;
* never past the request's deadline nor the configured total time: a retry whose backoff
  would end after the deadline is not attempted, and the last error is raised at once;
* ``Retry-After`` (and an exhausted window's reset) replaces the computed backoff when longer,
  and a wait longer than ``maxRetryAfterMs`` is not waited at all.

The first attempt runs outside stamina: the happy path pays nothing for retries.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import stamina

from mosaic.errors import MosaicError, ProviderUnavailable, RateLimited
from mosaic.gateway.pipeline import Call
from mosaic.resilience.config import RetryConfig
from mosaic.resilience.errors import is_local_rejection
from mosaic.resilience.metrics import RETRIES, RETRY_GAVE_UP

T = TypeVar("T")

# A retry that would leave less than this before the deadline is not worth sending.
MIN_ATTEMPT_S = 0.005


def repeatable(call: Call, exc: MosaicError) -> bool:
    """Whether sending the call again cannot duplicate its effect."""
    if call.op.safe_to_repeat:
        return True
    if isinstance(exc, RateLimited):
        return True  # 429: the provider refused it unprocessed
    return isinstance(exc, ProviderUnavailable) and not exc.sent


class RetryPolicy:
    def __init__(self, cfg: RetryConfig) -> None:
        self.cfg = cfg
        self.attempts = cfg.attempts
        self.initial = cfg.initial_delay_ms / 1000
        self.max_delay = cfg.max_delay_ms / 1000
        self.jitter = cfg.jitter_ms / 1000
        self.total = cfg.timeout_ms / 1000 if cfg.timeout_ms else None
        self.max_retry_after = cfg.max_retry_after_ms / 1000

    def backoff(self, retry_number: int) -> float:
        """Delay before retry ``retry_number`` (1-based), jitter included."""
        cfg = self.cfg
        if cfg.backoff == "none":
            base = 0.0
        elif cfg.backoff == "constant":
            base = self.initial
        else:
            base = self.initial * cfg.multiplier ** (retry_number - 1)
        jitter = random.uniform(0, self.jitter) if self.jitter else 0.0
        return min(self.max_delay, base + jitter) if self.max_delay else base + jitter

    def retryable(self, call: Call, exc: BaseException) -> bool:
        return (isinstance(exc, MosaicError) and exc.retryable and not is_local_rejection(exc)
                and repeatable(call, exc))


def provider_wait(exc: MosaicError, call: Call) -> float | None:
    """The wait the provider asked for: ``Retry-After``, else its exhausted window's reset."""
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return max(0.0, exc.retry_after)
    plugin = call.plugin
    state = getattr(plugin, "rate_limit", None)
    wait_seconds = getattr(state, "wait_seconds", None)
    if isinstance(exc, RateLimited) and callable(wait_seconds):
        wait = wait_seconds(time.time())
        if isinstance(wait, int | float):
            return float(wait)
    return None


async def run_with_retries(call: Call, attempt: Callable[[Call], Awaitable[T]], policy: RetryPolicy) -> T:
    """Run ``attempt`` once, then retry it per ``policy`` while it fails retryably."""
    started = time.monotonic()
    try:
        return await attempt(call)
    except MosaicError as exc:
        if policy.attempts <= 1 or not policy.retryable(call, exc):
            raise
        first: MosaicError = exc

    provider = call.plugin.id if call.plugin is not None else "-"
    retries = 0

    def delay_or_stop(exc: BaseException) -> float | bool:
        """stamina's backoff hook: the delay before the next attempt, or False to stop."""
        nonlocal retries
        if not isinstance(exc, MosaicError) or not policy.retryable(call, exc):
            return False
        retries += 1
        delay = policy.backoff(retries)
        if policy.cfg.respect_retry_after:
            asked = provider_wait(exc, call)
            if asked is not None:
                if asked > policy.max_retry_after:
                    RETRY_GAVE_UP.labels(provider, "retry_after_too_long").inc()
                    return False
                delay = max(delay, asked)
        now = time.monotonic()
        remaining = call.ctx.remaining()
        if remaining is not None and delay + MIN_ATTEMPT_S >= remaining:
            RETRY_GAVE_UP.labels(provider, "deadline").inc()
            return False
        if policy.total is not None and now + delay - started >= policy.total:
            RETRY_GAVE_UP.labels(provider, "total_timeout").inc()
            return False
        RETRIES.labels(provider, call.op.qualified_name).inc()
        call.ctx.meta["retries"] = retries
        return delay

    first_delay = delay_or_stop(first)
    if first_delay is False:
        raise first
    await asyncio.sleep(float(first_delay))
    async for try_ in stamina.retry_context(on=delay_or_stop, attempts=policy.attempts - 1, timeout=None):
        with try_:
            return await attempt(call)
    raise first  # pragma: no cover - stamina either returns or raises
