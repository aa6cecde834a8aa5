"""The provider plugin contract, derived from the operation catalog.

A provider is a subclass of :class:`ProviderPlugin` for one service. It implements
catalog operations as coroutine methods named after them::

    class GiteaGit(ProviderPlugin):
        provider = "gitea"; service = "git"; name = "Gitea"
        Config = GiteaConfig
        async def get_repository(self, p: GetRepositoryParams, ctx: RequestContext) -> Repository: ...

``capabilities()`` is exactly the set of catalog operations the class defines; any
other operation raises :class:`OperationNotSupported` (with the reason from
``unsupported`` when the provider documents one).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from mosaic.catalog.base import Operation, Service
from mosaic.errors import OperationNotSupported
from mosaic.gateway.context import RequestContext

Handler = Callable[[BaseModel, RequestContext], Awaitable[BaseModel]]


class EmptyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HealthStatus(BaseModel):
    status: Literal["healthy", "degraded", "unhealthy"]
    latency_ms: float | None = None
    detail: str = ""
    checked_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # e.g. {"remaining": 4990, "limit": 5000, "reset": 1700000000}
    rate_limit: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status != "unhealthy"


class PluginInfo(BaseModel):
    id: str
    name: str
    version: str
    type: Service
    provider: str
    capabilities: list[str]


class ProviderPlugin:
    """Base of every provider plugin (built-in and third-party alike)."""

    provider: ClassVar[str]
    service: ClassVar[Service]
    name: ClassVar[str]
    version: ClassVar[str] = "0.1.0"
    # pydantic model of the plugin's own config keys (the shared resilience keys such as
    # rateLimit/retry are validated by the gateway, not here).
    Config: ClassVar[type[BaseModel]] = EmptyConfig
    # Catalog operations this provider documents it cannot perform, with the reason.
    unsupported: ClassVar[dict[str, str]] = {}
    # Where an operation's semantics differ from the catalog's description (shown in the
    # published capability matrix), e.g. {"merge_branch": "implemented as PR + merge"}.
    notes: ClassVar[dict[str, str]] = {}

    def __init__(self, plugin_id: str) -> None:
        self.id = plugin_id
        self.config: BaseModel = EmptyConfig()
        self.started = False
        self._started_at: float | None = None
        # Calls currently inside this instance; read by least-connections balancing and
        # by the manager to drain an instance before disposing it.
        self.inflight = 0

    # -- lifecycle ----------------------------------------------------------
    async def initialize(self, config: BaseModel) -> None:
        """Receive validated config. Must not do network I/O (start does)."""
        self.config = config

    async def start(self) -> None:
        self.started = True
        self._started_at = time.monotonic()

    async def stop(self) -> None:
        """Stop accepting new work; in-flight calls may finish."""
        self.started = False

    async def dispose(self) -> None:
        """Release resources (clients, files). Called once after stop."""

    # -- observation --------------------------------------------------------
    async def health_check(self) -> HealthStatus:
        return HealthStatus(status="healthy" if self.started else "unhealthy",
                            detail="" if self.started else "not started")

    def metrics(self) -> dict[str, Any]:
        up = time.monotonic() - self._started_at if self._started_at is not None else 0.0
        return {"uptime_s": round(up, 3)}

    # -- capabilities -------------------------------------------------------
    @classmethod
    def capabilities(cls) -> frozenset[str]:
        from mosaic.catalog.registry import CATALOG

        names = CATALOG.names(cls.service)
        return frozenset(n for n in names if callable(getattr(cls, n, None)))

    @classmethod
    def supports(cls, op: Operation | str) -> bool:
        name = op.name if isinstance(op, Operation) else op.split(".")[-1]
        return name in cls.capabilities()

    def info(self) -> PluginInfo:
        return PluginInfo(id=self.id, name=self.name, version=self.version, type=self.service,
                          provider=self.provider, capabilities=sorted(self.capabilities()))

    async def call(self, op: Operation, params: BaseModel, ctx: RequestContext) -> BaseModel:
        handler: Handler | None = getattr(self, op.name, None) if op.service == self.service else None
        if handler is None:
            raise OperationNotSupported(op.qualified_name, self.id, self.unsupported.get(op.name))
        return await handler(params, ctx)
