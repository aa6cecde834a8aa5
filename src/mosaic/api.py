"""The Python API: ``Orchestrator`` runs catalog operations in-process through Gateway.execute.

    async with Orchestrator.embedded("/tmp/data") as orch:
        repo = await orch.git.create_repository(name="api", owner="acme")
        same = await orch.call("git.get_repository", repo="acme/api")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import BaseModel

from mosaic.catalog.base import SERVICES
from mosaic.catalog.registry import CATALOG
from mosaic.config.defaults import embedded_config
from mosaic.config.loader import load_config
from mosaic.config.schema import MosaicConfig, Settings
from mosaic.gateway.context import RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.plugins.manager import PluginManager


class _Service:
    """``orch.git.create_repository(**params)``: attribute access derived from the catalog."""

    def __init__(self, orch: Orchestrator, service: str) -> None:
        self._orch = orch
        self._service = service

    def __getattr__(self, name: str) -> Callable[..., Awaitable[BaseModel]]:
        op = CATALOG.resolve(f"{self._service}.{name}")

        async def run(ctx: RequestContext | None = None, **params: Any) -> BaseModel:
            return await self._orch.gateway.execute(op, params, ctx)

        run.__doc__ = op.summary
        return run

    def __dir__(self) -> list[str]:
        return sorted(op.name for op in CATALOG.values() if op.service == self._service)


class Orchestrator:
    def __init__(self, config: MosaicConfig, manager: PluginManager | None = None,
                 data_dir: Path | None = None) -> None:
        self.config = config
        self.gateway = Gateway(config, manager or PluginManager(), data_dir=data_dir)
        self.git = _Service(self, "git")
        self.cicd = _Service(self, "cicd")
        self.docs = _Service(self, "docs")
        self.project = _Service(self, "project")

    @classmethod
    def from_file(cls, path: str | Path, data_dir: Path | None = None) -> Orchestrator:
        return cls(load_config(path), data_dir=data_dir)

    @classmethod
    def embedded(cls, data_dir: str | Path | None = None) -> Orchestrator:
        d = Path(data_dir) if data_dir else Settings().data_dir
        return cls(embedded_config(d), data_dir=d)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Orchestrator:
        s = settings or Settings()
        return cls.from_file(s.config, s.data_dir) if s.config else cls.embedded(s.data_dir)

    async def start(self) -> Orchestrator:
        await self.gateway.start()
        return self

    async def stop(self) -> None:
        await self.gateway.stop()

    async def __aenter__(self) -> Orchestrator:
        return await self.start()

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def call(self, operation: str, params: dict[str, Any] | None = None,
                   ctx: RequestContext | None = None, **kwargs: Any) -> BaseModel:
        return await self.gateway.execute(operation, {**(params or {}), **kwargs}, ctx)


__all__ = ["SERVICES", "Orchestrator"]
