"""Everything the resilience and cache layers share, built once per Gateway.

``Gateway.__init__`` asks it for its layers::

    self.resilience = Resilience(config, manager)
    layers = [observe, *self.resilience.front_layers, <route, failover>, *self.resilience.provider_layers]

and ``Gateway.start``/``stop`` start and stop it (Redis client, pub/sub, write-back, heartbeat).

What is shared-state-critical and what is best-effort when Redis is away:

=====================  =========================================================
idempotency records    critical: writes with an Idempotency-Key fail closed (503, not sent)
rate-limit windows     best-effort: each replica falls back to ``fallbackMaxRequests``
breaker state          best-effort: each replica runs its own state machine
cache (L2, pub/sub)    best-effort: L1 only; L1 cleared when the subscription returns
=====================  =========================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from mosaic.cache.cache import CacheSettings, TwoLevelCache
from mosaic.cache.layer import CacheLayer
from mosaic.config.schema import MosaicConfig, Settings
from mosaic.errors import PluginError
from mosaic.gateway.pipeline import Layer
from mosaic.plugins.manager import PluginManager
from mosaic.resilience.idempotency import IdempotencyLayer
from mosaic.resilience.layers import BreakerLayer, BulkheadLayer, RateLimitLayer, RetryLayer
from mosaic.resilience.metrics import REDIS_UP
from mosaic.resilience.policies import ProviderPolicies
from mosaic.state.redis import RedisState, RedisUnavailable, Subscriber

log = logging.getLogger("mosaic.resilience")

HEARTBEAT_S = 2.0


def cache_settings(config: MosaicConfig) -> CacheSettings:
    c = config.orchestration.cache
    journal_env = os.environ.get("MOSAIC_CACHE_JOURNAL")
    journal = Path(journal_env) if journal_env else Settings().data_dir / "cache-writeback.journal"
    return CacheSettings(max_size=c.max_size, ttl=c.ttl, use_l2=c.provider == "redis",
                         write_back=c.strategy == "write-back", journal=journal)


class Resilience:
    def __init__(self, config: MosaicConfig, manager: PluginManager | None, *,
                 redis: RedisState | None = None, cache: CacheSettings | None = None) -> None:
        self.redis = redis if redis is not None else RedisState.from_env()
        self.subscriber = Subscriber(self.redis)
        self.policies = ProviderPolicies(manager, self.redis)
        self.subscriber.subscribe(self.redis.key("breaker"), self.policies.on_breaker_message)
        self.subscriber.on_resubscribed(self.policies.sync_all)
        self.redis.on_up(self._redis_up)
        self.redis.on_down(lambda: REDIS_UP.set(0))
        self.cache: TwoLevelCache | None = None
        settings = cache or (cache_settings(config) if config.orchestration.cache.enabled else None)
        if settings is not None:
            if settings.use_l2 and not self.redis.configured:
                log.warning("cache.provider is redis but MOSAIC_REDIS_URL is not set: in-process cache only")
            self.cache = TwoLevelCache(settings, self.redis, self.subscriber)
        self.idempotency = IdempotencyLayer(self.redis)
        self.front_layers: list[Layer] = [CacheLayer(self.cache, self.policies)] if self.cache else []
        self.provider_layers: list[Layer] = [
            self.idempotency, RetryLayer(self.policies), BreakerLayer(self.policies),
            RateLimitLayer(self.policies), BulkheadLayer(self.policies)]
        self._heartbeat: asyncio.Task[None] | None = None
        self.started_at: float | None = None

    async def start(self) -> None:
        await self.redis.start()
        REDIS_UP.set(-1 if not self.redis.configured else (1 if self.redis.available else 0))
        await self.subscriber.start()
        if self.cache is not None:
            await self.cache.start()
        if self.redis.configured:
            self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="mosaic-heartbeat")
        self.started_at = time.time()

    async def stop(self) -> None:
        task, self._heartbeat = self._heartbeat, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.cache is not None:
            await self.cache.stop()
        await self.subscriber.stop()
        if self.redis.available:
            with contextlib.suppress(RedisUnavailable):
                await self.redis.run(lambda r: r.delete(self.redis.key("replica", self.redis.replica_id)))
        await self.redis.stop()

    def prepare(self, plugin_ids: Iterable[str]) -> None:
        """Build the per-provider objects now rather than on the first request."""
        for plugin_id in plugin_ids:
            try:
                self.policies.get(plugin_id)
            except PluginError as exc:
                log.error("%s", exc.message)

    async def _redis_up(self) -> None:
        REDIS_UP.set(1)

    # -- observation -------------------------------------------------------------------------
    def ready(self) -> dict[str, Any]:
        """Readiness: ``degraded`` while a configured Redis is unreachable (still serving)."""
        redis = self.redis.health()
        return {"status": "degraded" if redis["status"] == "down" else "ok", "redis": redis}

    async def status(self) -> dict[str, Any]:
        providers: dict[str, Any] = {}
        for policy in self.policies.known():
            providers[policy.plugin_id] = {
                "breaker": policy.breaker.snapshot(),
                "rate_limit": await policy.limiter.snapshot(),
                "bulkhead": policy.bulkhead.snapshot(),
                "retry": {"attempts": policy.retry.attempts},
            }
        return {"replica": self.redis.replica_id, "ready": self.ready(), "providers": providers,
                "cache": self.cache.snapshot() if self.cache is not None else None}

    async def heartbeat(self) -> None:
        """Publish this replica's view for ``mosaic status`` (it expires if we die)."""
        key = self.redis.key("replica", self.redis.replica_id)
        body = orjson.dumps(await self.status(), default=str)
        await self.redis.run(lambda r: r.set(key, body, px=int(HEARTBEAT_S * 5000)))

    async def _beat(self) -> None:
        while True:
            try:
                await self.heartbeat()
            except RedisUnavailable:
                pass
            except Exception:
                log.exception("heartbeat failed")
            await asyncio.sleep(HEARTBEAT_S)
