"""Bulkhead (concurrent calls per provider instance) and per-operation timeouts.

A slow provider must not absorb every worker of the gateway: at most ``maxConcurrentCalls`` calls
are inside one instance at a time; the next waits up to ``maxWaitMs`` (and never past its
deadline) for a slot, then fails with :class:`BulkheadFull` (``sent=False``, so failover may use
another instance). Each attempt is also bounded by ``timeoutMs`` (or the operation's entry in
``operationTimeoutsMs``) — the request deadline still applies on top.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from mosaic.errors import Timeout
from mosaic.gateway.pipeline import Call
from mosaic.resilience.config import BulkheadConfig
from mosaic.resilience.errors import BulkheadFull
from mosaic.resilience.metrics import BULKHEAD_INFLIGHT, BULKHEAD_REJECTED

T = TypeVar("T")


class Bulkhead:
    def __init__(self, plugin_id: str, cfg: BulkheadConfig) -> None:
        self.plugin_id = plugin_id
        self.cfg = cfg
        self.limit = cfg.max_concurrent_calls
        self.max_wait = cfg.max_wait_ms / 1000
        self._sem = asyncio.Semaphore(self.limit) if self.limit is not None else None
        self.inflight = 0
        self._gauge = BULKHEAD_INFLIGHT.labels(plugin_id)
        self._rejected = BULKHEAD_REJECTED.labels(plugin_id)

    async def run(self, call: Call, fn: Callable[[Call], Awaitable[T]]) -> T:
        sem = self._sem
        if sem is not None:
            if sem.locked():
                await self._wait_for_slot(call, sem)
            else:
                await sem.acquire()
        self.inflight += 1
        self._gauge.inc()
        # The provider's clock starts here (read by the circuit breaker's slow-call check).
        call.ctx.meta["_attempt_started"] = time.monotonic()
        try:
            timeout = self.cfg.timeout_for(call.op.name)
            if timeout is None:
                return await fn(call)
            try:
                async with asyncio.timeout(timeout):
                    return await fn(call)
            except TimeoutError:
                raise Timeout(f"{call.op.qualified_name} on {self.plugin_id} exceeded its "
                              f"{timeout * 1000:.0f} ms operation timeout",
                              details={"provider": self.plugin_id, "operation_timeout": True}) from None
        finally:
            self.inflight -= 1
            self._gauge.dec()
            if sem is not None:
                sem.release()

    async def _wait_for_slot(self, call: Call, sem: asyncio.Semaphore) -> None:
        assert self.limit is not None
        remaining = call.ctx.remaining()
        wait = self.max_wait if remaining is None else min(self.max_wait, remaining)
        if wait <= 0:
            self._rejected.inc()
            raise BulkheadFull(self.plugin_id, self.limit)
        try:
            async with asyncio.timeout(wait):
                await sem.acquire()
        except TimeoutError:
            self._rejected.inc()
            raise BulkheadFull(self.plugin_id, self.limit) from None

    def snapshot(self) -> dict[str, object]:
        return {"max_concurrent_calls": self.limit, "inflight": self.inflight,
                "timeout_ms": self.cfg.timeout_ms,
                "operation_timeouts_ms": dict(self.cfg.operation_timeouts_ms)}
