"""Plugin instances: build from config, validate, start, stop, reload without dropping calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import ValidationError

from mosaic.catalog.base import Service
from mosaic.config.loader import plugin_own_config
from mosaic.config.schema import PluginSpec
from mosaic.errors import ConfigError, NotFound, PluginError
from mosaic.plugins.contract import HealthStatus, ProviderPlugin
from mosaic.plugins.loader import PluginResolver

log = logging.getLogger("mosaic.plugins")


@dataclass
class Failed:
    """A configured plugin that could not be loaded or started, kept for reporting."""

    spec: PluginSpec
    error: str


class PluginManager:
    def __init__(self, resolver: PluginResolver | None = None, drain_timeout: float = 30.0) -> None:
        self.resolver = resolver or PluginResolver()
        self.plugins: dict[str, ProviderPlugin] = {}
        self.specs: dict[str, PluginSpec] = {}
        self.failed: dict[str, Failed] = {}
        self.drain_timeout = drain_timeout
        self._by_service: dict[Service, list[ProviderPlugin]] = {}

    async def build(self, spec: PluginSpec) -> ProviderPlugin:
        """Resolve, validate and start one plugin instance (not yet registered)."""
        cls = self.resolver.resolve(spec)
        try:
            config = plugin_own_config(cls.Config, spec.config)
        except ValidationError as exc:
            raise ConfigError([f"plugin {spec.id!r}: config.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                               for e in exc.errors()]) from None
        plugin = cls(spec.id)
        try:
            await plugin.initialize(config)
            await plugin.start()
        except Exception as exc:
            await self._dispose_quietly(plugin)
            raise PluginError(f"plugin {spec.id!r} failed to start: {type(exc).__name__}: {exc}") from exc
        return plugin

    async def load(self, specs: Iterable[PluginSpec]) -> None:
        """Start every enabled plugin; one that fails is recorded, the others still serve."""
        for spec in specs:
            if not spec.enabled:
                continue
            try:
                plugin = await self.build(spec)
            except (ConfigError, PluginError) as exc:
                log.error("plugin %s not started: %s", spec.id, exc.message)
                self.failed[spec.id] = Failed(spec, exc.message)
                continue
            self._register(spec, plugin)

    def _register(self, spec: PluginSpec, plugin: ProviderPlugin) -> None:
        self.plugins[spec.id] = plugin
        self.specs[spec.id] = spec
        self.failed.pop(spec.id, None)
        self._reindex()

    def _reindex(self) -> None:
        by: dict[Service, list[ProviderPlugin]] = {}
        for p in self.plugins.values():
            by.setdefault(p.service, []).append(p)
        self._by_service = by

    def get(self, plugin_id: str) -> ProviderPlugin:
        plugin = self.plugins.get(plugin_id)
        if plugin is None:
            if plugin_id in self.failed:
                raise PluginError(f"plugin {plugin_id!r} is configured but not running: "
                                  f"{self.failed[plugin_id].error}")
            raise NotFound(f"no plugin instance {plugin_id!r}",
                           details={"available": sorted(self.plugins)})
        return plugin

    def for_service(self, service: Service) -> list[ProviderPlugin]:
        return self._by_service.get(service, [])

    async def reload(self, plugin_id: str, spec: PluginSpec | None = None) -> ProviderPlugin:
        """Start a new instance, switch traffic to it, then drain and dispose the old one."""
        spec = spec or self.specs.get(plugin_id)
        if spec is None:
            raise NotFound(f"no plugin instance {plugin_id!r}")
        new = await self.build(spec)
        old = self.plugins.get(plugin_id)
        self._register(spec, new)
        if old is not None:
            await self._drain_and_dispose(old)
        return new

    async def unload(self, plugin_id: str) -> None:
        old = self.plugins.pop(plugin_id, None)
        self.specs.pop(plugin_id, None)
        self._reindex()
        if old is not None:
            await self._drain_and_dispose(old)

    async def _drain_and_dispose(self, plugin: ProviderPlugin) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + self.drain_timeout
        # Polling, not an Event: the in-flight count is a plain int bumped on the hot path,
        # and signalling every decrement would tax every call to serve a rare reload.
        while plugin.inflight > 0 and loop.time() < until:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if plugin.inflight > 0:
            log.warning("plugin %s disposed with %d calls still in flight", plugin.id, plugin.inflight)
        await self._dispose_quietly(plugin)

    async def _dispose_quietly(self, plugin: ProviderPlugin) -> None:
        try:
            if plugin.started:
                await plugin.stop()
            await plugin.dispose()
        except Exception:
            log.exception("plugin %s failed to stop cleanly", plugin.id)

    async def stop_all(self) -> None:
        plugins = list(self.plugins.values())
        self.plugins.clear()
        self._reindex()
        await asyncio.gather(*(self._drain_and_dispose(p) for p in plugins))

    async def health(self) -> dict[str, HealthStatus]:
        async def one(p: ProviderPlugin) -> tuple[str, HealthStatus]:
            try:
                return p.id, await asyncio.wait_for(p.health_check(), timeout=10)
            except Exception as exc:
                return p.id, HealthStatus(status="unhealthy", detail=f"{type(exc).__name__}: {exc}")

        results = await asyncio.gather(*(one(p) for p in self.plugins.values()))
        return dict(results)
