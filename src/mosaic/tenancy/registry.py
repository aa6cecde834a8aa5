"""One Gateway per tenant, built from the tenant's own stored configuration.

``gateway_for(tenant)`` returns the tenant's gateway: its own plugin manager and provider
instances (built from its config, credentials decrypted in memory), its own routing rules, its
own resilience state in Redis (``<prefix>t:<tenant>:`` — breakers, rate limits and cache entries
of one tenant are invisible to another even when their instance ids are equal), its own data
directory, and the security layers configured with its settings. The ``default`` tenant is
served by the gateway built from the configuration file (the operator's), with the same layers.

A tenant's version is re-read at most every ``refresh_interval`` seconds; when it changed
(settings, config, credentials, RBAC rules) a new gateway is built and started, traffic
switches to it, and the old one is stopped (its plugin manager drains in-flight calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, OperationalError

from mosaic.catalog.base import Operation
from mosaic.config.schema import MosaicConfig
from mosaic.errors import Forbidden, NotFound
from mosaic.gateway.context import RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.gateway.layers import observe
from mosaic.gateway.pipeline import Layer
from mosaic.plugins.manager import Failed, PluginManager
from mosaic.resilience.stack import Resilience, cache_settings
from mosaic.security.audit import AuditLog
from mosaic.security.layers import build_security_layers
from mosaic.security.rbac import Authorizer
from mosaic.security.residency import ResidencyGuard
from mosaic.security.ssrf import Resolver, UrlGuard
from mosaic.state.redis import DEFAULT_PREFIX, RedisState
from mosaic.store.errors import StoreUnavailable
from mosaic.tenancy.config import check_urls, tenant_root
from mosaic.tenancy.layers import ProviderBudgetLayer, QuotaLayer, UsageLayer
from mosaic.tenancy.quotas import Quotas
from mosaic.tenancy.settings import DEFAULT_TENANT, TenantSettings
from mosaic.tenancy.tenants import Tenants
from mosaic.tenancy.usage import UsageRecorder

log = logging.getLogger("mosaic.tenancy")

# Marks the layers this module inserted, so that re-installing replaces them.
_INSTALLED = "_mosaic_tenancy_layer"


@dataclass(slots=True)
class Services:
    """What every tenant's layers share."""

    authorizer: Authorizer
    audit: AuditLog
    quotas: Quotas
    usage: UsageRecorder


def _mark(layer: Layer) -> Layer:
    setattr(layer, _INSTALLED, True)
    return layer


def install_layers(gateway: Gateway, tenant: str, settings: TenantSettings, services: Services) -> None:
    """Place the tenancy/security layers into ``gateway`` (replacing earlier ones).

    ``observe → tenant guard → audit → authorize → quota → usage → ... → route → residency
    → failover → provider budget → ...`` (mosaic.security.layers explains why).
    """
    base = [layer for layer in gateway.layers if not getattr(layer, _INSTALLED, False)]
    front = build_security_layers(tenant, authorizer=services.authorizer, audit=services.audit,
                                  quota=QuotaLayer(services.quotas, settings.quotas),
                                  usage=UsageLayer(services.usage))
    residency = ResidencyGuard(settings.residency)
    budget = ProviderBudgetLayer(services.quotas, settings.provider_budgets)
    layers: list[Layer] = []
    placed = {"front": False, "residency": False, "budget": False}
    for layer in base:
        layers.append(layer)
        if layer is observe:
            layers.extend(_mark(x) for x in front)
            placed["front"] = True
        elif layer is gateway.route:
            layers.append(_mark(residency))
            placed["residency"] = True
        elif layer is gateway.failover:
            layers.append(_mark(budget))
            placed["budget"] = True
    missing = [k for k, ok in placed.items() if not ok]
    if missing:
        raise RuntimeError(f"cannot place the {', '.join(missing)} layer(s): the gateway has no "
                           "observe/route/failover layer where expected")
    gateway.rebuild(layers)


def _tenant_resilience(config: MosaicConfig, manager: PluginManager, redis: RedisState,
                       root: Path) -> Resilience:
    """A Resilience namespaced to its tenant (Redis prefix, write-back journal)."""
    cache = None
    if config.orchestration.cache.enabled:
        cache = dataclasses.replace(cache_settings(config), journal=root / "cache-writeback.journal")
    return Resilience(config, manager, redis=redis, cache=cache)


@dataclass(slots=True)
class _Entry:
    gateway: Gateway
    version: int
    checked_at: float
    settings: TenantSettings
    owned: bool


class TenantGateways:
    def __init__(self, tenants: Tenants, services: Services, *, default_gateway: Gateway | None = None,
                 redis_url: str | None = None, redis_prefix: str | None = None,
                 refresh_interval: float = 5.0, env: Mapping[str, str] | None = None,
                 resolver: Resolver | None = None,
                 manager_factory: Callable[[], PluginManager] = PluginManager) -> None:
        self.tenants = tenants
        self.services = services
        self.default_gateway = default_gateway
        self.redis_url = redis_url
        self.redis_prefix = redis_prefix or os.environ.get("MOSAIC_REDIS_PREFIX") or DEFAULT_PREFIX
        self.refresh_interval = refresh_interval
        self.env = env
        self.resolver = resolver
        self.manager_factory = manager_factory
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._retired: set[asyncio.Task[None]] = set()

    @property
    def data_dir(self) -> Path:
        return self.tenants.data_dir

    async def start(self) -> None:
        await self.tenants.ensure(DEFAULT_TENANT)
        if self.default_gateway is not None:
            await self.gateway_for(DEFAULT_TENANT)

    async def stop(self) -> None:
        entries, self._entries = list(self._entries.values()), {}
        await asyncio.gather(*(e.gateway.stop() for e in entries if e.owned), return_exceptions=True)
        await self.wait_retired()

    async def wait_retired(self) -> None:
        """Wait until replaced gateways have drained and stopped."""
        for task in list(self._retired):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def invalidate(self, tenant: str) -> None:
        """Re-check this tenant's version on its next request (an admin change in this process)."""
        entry = self._entries.get(tenant)
        if entry is not None:
            entry.checked_at = float("-inf")

    def cached(self, tenant: str) -> Gateway | None:
        entry = self._entries.get(tenant)
        return entry.gateway if entry is not None else None

    def settings_of(self, tenant: str) -> TenantSettings | None:
        entry = self._entries.get(tenant)
        return entry.settings if entry is not None else None

    async def gateway_for(self, tenant: str) -> Gateway:
        entry = self._entries.get(tenant)
        now = time.monotonic()
        if entry is not None and now - entry.checked_at < self.refresh_interval:
            return entry.gateway
        try:
            current = await self.tenants.version(tenant)
        except (OperationalError, DBAPIError, OSError, StoreUnavailable) as exc:
            if entry is not None:
                # The database is away: keep serving with what this tenant had.
                log.warning("tenant %s: version check failed (%s); serving the current gateway",
                            tenant, type(exc).__name__)
                entry.checked_at = now
                return entry.gateway
            raise StoreUnavailable("the tenant store is unreachable") from None
        if current is None:
            raise NotFound(f"no tenant {tenant!r}", details={"tenant": tenant})
        version, status = current
        if status != "active":
            raise Forbidden(f"tenant {tenant!r} is {status}")
        if entry is not None and entry.version == version:
            entry.checked_at = now
            return entry.gateway
        lock = self._locks.setdefault(tenant, asyncio.Lock())
        async with lock:
            entry = self._entries.get(tenant)
            if entry is not None and entry.version >= version:
                entry.checked_at = time.monotonic()
                return entry.gateway
            fresh = await self._build(tenant)
            self._entries[tenant] = fresh
        if entry is not None and entry.owned and entry.gateway is not fresh.gateway:
            self._retire(tenant, entry.gateway)
        return fresh.gateway

    async def _build(self, tenant: str) -> _Entry:
        state = await self.tenants.state(tenant, self.env)
        self.services.authorizer.load_tenant(tenant, state.rules)
        settings = state.info.settings
        if tenant == DEFAULT_TENANT and self.default_gateway is not None:
            install_layers(self.default_gateway, tenant, settings, self.services)
            return _Entry(self.default_gateway, state.info.version, time.monotonic(), settings, owned=False)
        config = state.config
        root = tenant_root(self.data_dir, tenant)
        guard = UrlGuard(settings.network.allow_private, resolver=self.resolver)
        refused = await check_urls(config, guard)
        if refused:
            config = config.model_copy(deep=True)
            config.orchestration.plugins = [p for p in config.orchestration.plugins if p.id not in refused]
        await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
        manager = self.manager_factory()
        redis = RedisState(self.redis_url, prefix=f"{self.redis_prefix}t:{tenant}:")
        gateway = Gateway(config, manager, data_dir=root,
                          resilience=_tenant_resilience(config, manager, redis, root))
        install_layers(gateway, tenant, settings, self.services)
        await gateway.start()
        for spec in state.config.orchestration.plugins:
            if spec.id in refused:
                manager.failed[spec.id] = Failed(spec, refused[spec.id])
                log.error("tenant %s: plugin %s refused: %s", tenant, spec.id, refused[spec.id])
        return _Entry(gateway, state.info.version, time.monotonic(), settings, owned=True)

    def _retire(self, tenant: str, gateway: Gateway) -> None:
        async def stop() -> None:
            try:
                await gateway.stop()
            except Exception:
                log.exception("tenant %s: stopping the previous gateway failed", tenant)

        task = asyncio.get_running_loop().create_task(stop(), name=f"retire-gateway-{tenant}")
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    # -- Gateway-like entry points --------------------------------------------------------------
    async def execute(self, op: Operation | str, params: Mapping[str, Any] | BaseModel | None = None,
                      ctx: RequestContext | None = None) -> BaseModel:
        """Run ``op`` on the gateway of ``ctx.tenant`` (``default`` without a context)."""
        context = ctx or RequestContext()
        gateway = await self.gateway_for(context.tenant)
        return await gateway.execute(op, params, context)


__all__ = ["Services", "TenantGateways", "install_layers"]
