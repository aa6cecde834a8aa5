"""Provider health: background probes plus passive outcomes; never a probe on the request path.

The :class:`HealthBoard` is what routing reads (a dict lookup per candidate). It is fed by

* the :class:`HealthMonitor`: one task per plugin instance calling ``health_check()``
  every ``healthCheck.interval`` ms, bounded by ``healthCheck.timeout``;
* passive outcomes reported by the failover layer: ``unhealthyThreshold`` consecutive
  provider failures (unavailable, timeout, 5xx) mark an instance unhealthy at once,
  without waiting for the next probe; the next successful probe or call restores it.

Every status change bumps ``version``, which invalidates cached routing decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from prometheus_client import Gauge

from mosaic.gateway.layers import REGISTRY
from mosaic.plugins.contract import HealthStatus, ProviderPlugin

log = logging.getLogger("mosaic.routing.health")

Status = Literal["unknown", "healthy", "degraded", "unhealthy"]

HEALTH = Gauge("mosaic_provider_health", "Provider instance health: 1 healthy, 0.5 degraded, 0 unhealthy.",
               ["provider"], registry=REGISTRY)
_GAUGE = {"healthy": 1.0, "degraded": 0.5, "unhealthy": 0.0, "unknown": 1.0}


@dataclass
class ProviderHealth:
    status: Status = "unknown"
    source: str = ""  # probe | passive | call
    detail: str = ""
    changed_at: float = field(default_factory=time.time)
    checked_at: float | None = None
    probe_latency_ms: float | None = None
    consecutive_failures: int = 0

    @property
    def usable(self) -> bool:
        return self.status != "unhealthy"

    def view(self) -> dict[str, Any]:
        return {"status": self.status, "source": self.source, "detail": self.detail,
                "changed_at": self.changed_at, "checked_at": self.checked_at,
                "probe_latency_ms": self.probe_latency_ms,
                "consecutive_failures": self.consecutive_failures}


class HealthBoard:
    def __init__(self, unhealthy_threshold: int = 3) -> None:
        self.threshold = unhealthy_threshold
        self.version = 0
        self._by: dict[str, ProviderHealth] = {}
        # Ids currently unusable: the routing hot path reads only this set.
        self.down: set[str] = set()
        self._listeners: list[Callable[[str, ProviderHealth], None]] = []

    def get(self, provider: str) -> ProviderHealth:
        h = self._by.get(provider)
        if h is None:
            h = self._by[provider] = ProviderHealth()
        return h

    def usable(self, provider: str) -> bool:
        h = self._by.get(provider)
        return h is None or h.status != "unhealthy"

    def on_change(self, fn: Callable[[str, ProviderHealth], None]) -> None:
        self._listeners.append(fn)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {k: v.view() for k, v in sorted(self._by.items())}

    def _set(self, provider: str, status: Status, source: str, detail: str) -> None:
        h = self.get(provider)
        was_usable = h.usable
        if h.status != status:
            log.info("provider %s is %s (%s%s)", provider, status, source, f": {detail}" if detail else "")
            h.status = status
            h.changed_at = time.time()
            HEALTH.labels(provider).set(_GAUGE[status])
        h.source, h.detail = source, detail
        if was_usable != h.usable:
            if h.usable:
                self.down.discard(provider)
            else:
                self.down.add(provider)
            self.version += 1
            for fn in self._listeners:
                fn(provider, h)

    # -- probes -------------------------------------------------------------------
    def probe_result(self, provider: str, status: HealthStatus, latency_ms: float) -> None:
        h = self.get(provider)
        h.checked_at = time.time()
        h.probe_latency_ms = latency_ms
        if status.status != "unhealthy":
            h.consecutive_failures = 0
        self._set(provider, status.status, "probe", status.detail)

    def probe_failed(self, provider: str, detail: str) -> None:
        h = self.get(provider)
        h.checked_at = time.time()
        h.probe_latency_ms = None
        self._set(provider, "unhealthy", "probe", detail)

    # -- passive outcomes ------------------------------------------------------------
    def record_success(self, provider: str) -> None:
        h = self._by.get(provider)
        if h is None:
            return
        h.consecutive_failures = 0
        if h.status == "unhealthy":
            self._set(provider, "healthy", "call", "a call succeeded")

    def record_failure(self, provider: str, detail: str) -> None:
        h = self.get(provider)
        h.consecutive_failures += 1
        if h.consecutive_failures >= self.threshold and h.status != "unhealthy":
            self._set(provider, "unhealthy", "passive",
                      f"{h.consecutive_failures} consecutive failures; last: {detail}")


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel and reap background tasks, cancelling again any that swallowed a cancellation."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=1.0)
    for t in tasks:
        if not t.cancelled():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                t.result()


class HealthMonitor:
    """A background task per plugin instance probing ``health_check()``."""

    def __init__(self, board: HealthBoard, plugins: Callable[[], dict[str, ProviderPlugin]],
                 interval_s: float, timeout_s: float, ids: Callable[[], Iterable[str]] | None = None) -> None:
        self.board = board
        self._plugins = plugins
        self._ids = ids
        self.interval = interval_s
        self.timeout = timeout_s
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._rng = random.Random()

    def _wanted(self) -> set[str]:
        return set(self._ids()) if self._ids is not None else set(self._plugins())

    async def probe(self, provider: str) -> None:
        plugin = self._plugins().get(provider)
        if plugin is None:
            self.board.probe_failed(provider, "not running")
            return
        start = time.perf_counter()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # races with the probe's completion, and stop() would then wait a whole interval.
            async with asyncio.timeout(self.timeout):
                status = await plugin.health_check()
        except TimeoutError:
            self.board.probe_failed(provider, f"health check timed out after {self.timeout * 1000:.0f} ms")
            return
        except Exception as exc:
            self.board.probe_failed(provider, f"health check failed: {type(exc).__name__}")
            log.debug("health check of %s raised", provider, exc_info=True)
            return
        self.board.probe_result(provider, status, (time.perf_counter() - start) * 1000)

    async def probe_all(self) -> None:
        await asyncio.gather(*(self.probe(p) for p in sorted(self._wanted())))

    async def _watch(self, provider: str) -> None:
        # Spread the first probes so that N instances do not probe in lockstep.
        await asyncio.sleep(self._rng.uniform(0, min(self.interval, 1.0) * 0.1))
        while not self._stopping:
            await self.probe(provider)
            await asyncio.sleep(self.interval)

    def _sync(self) -> None:
        wanted = self._wanted()
        for pid in wanted - set(self._tasks):
            self._tasks[pid] = asyncio.create_task(self._watch(pid), name=f"health:{pid}")
        for pid in set(self._tasks) - wanted:
            self._tasks.pop(pid).cancel()

    async def _supervise(self) -> None:
        while not self._stopping:
            self._sync()
            await asyncio.sleep(self.interval)

    async def start(self) -> None:
        if self._supervisor is None:
            self._stopping = False
            self._sync()
            self._supervisor = asyncio.create_task(self._supervise(), name="health:supervisor")

    async def stop(self) -> None:
        self._stopping = True
        tasks = [*self._tasks.values(), *([self._supervisor] if self._supervisor else [])]
        await cancel_all(tasks)
        self._tasks.clear()
        self._supervisor = None

    @property
    def running(self) -> bool:
        return self._supervisor is not None
