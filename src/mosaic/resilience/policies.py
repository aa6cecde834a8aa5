"""Per-provider-instance resilience objects, built lazily from the plugin's shared config keys."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mosaic.errors import PluginError
from mosaic.plugins.manager import PluginManager
from mosaic.resilience.breaker import CircuitBreaker
from mosaic.resilience.bulkhead import Bulkhead
from mosaic.resilience.config import SharedConfig, parse_shared
from mosaic.resilience.ratelimit import ProviderRateLimiter
from mosaic.resilience.retry import RetryPolicy
from mosaic.state.redis import RedisState

log = logging.getLogger("mosaic.resilience")


@dataclass(slots=True)
class ProviderPolicy:
    plugin_id: str
    config: SharedConfig
    breaker: CircuitBreaker
    limiter: ProviderRateLimiter
    bulkhead: Bulkhead
    retry: RetryPolicy


class ProviderPolicies:
    """One :class:`ProviderPolicy` per plugin instance id, rebuilt when its config changes (reload)."""

    def __init__(self, manager: PluginManager | None, redis: RedisState | None) -> None:
        self.manager = manager
        self.redis = redis
        self._by_id: dict[str, tuple[object, ProviderPolicy]] = {}

    def get(self, plugin_id: str) -> ProviderPolicy:
        spec = self.manager.specs.get(plugin_id) if self.manager is not None else None
        raw: dict[str, Any] = spec.config if spec is not None else _EMPTY
        cached = self._by_id.get(plugin_id)
        if cached is not None and cached[0] is raw:
            return cached[1]
        try:
            cfg = parse_shared(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise PluginError(f"plugin {plugin_id!r} has invalid resilience settings: {problems}") from None
        policy = ProviderPolicy(
            plugin_id=plugin_id, config=cfg,
            breaker=CircuitBreaker(plugin_id, cfg.circuit_breaker, redis=self.redis),
            limiter=ProviderRateLimiter(plugin_id, cfg.rate_limit, self.redis),
            bulkhead=Bulkhead(plugin_id, cfg.bulkhead),
            retry=RetryPolicy(cfg.retry),
        )
        self._by_id[plugin_id] = (raw, policy)
        return policy

    def known(self) -> list[ProviderPolicy]:
        return [p for _, p in self._by_id.values()]

    def on_breaker_message(self, _channel: str, data: bytes) -> None:
        payload = data.decode(errors="replace")
        entry = self._by_id.get(payload.split("|", 1)[0])
        if entry is not None:
            entry[1].breaker.on_message(payload)

    async def sync_all(self) -> None:
        for policy in self.known():
            await policy.breaker.sync()


_EMPTY: dict[str, Any] = {}
