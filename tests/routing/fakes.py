"""Small real providers for routing tests: an in-memory git service with switchable faults."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import yaml

from mosaic.catalog.base import Deleted, Operation, Page
from mosaic.catalog.git import (
    CreateRepositoryParams,
    DeleteRepositoryParams,
    GetRepositoryParams,
    ListRepositoriesParams,
    Repository,
    UpdateRepositoryParams,
)
from mosaic.catalog.registry import CATALOG
from mosaic.config.schema import MosaicConfig, PluginSpec
from mosaic.errors import Conflict, NotFound
from mosaic.gateway.context import Principal, RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.gateway.resource import extract_resource
from mosaic.plugins.contract import HealthStatus, ProviderPlugin
from mosaic.plugins.loader import PluginResolver
from mosaic.plugins.manager import PluginManager
from mosaic.routing.engine import RoutingEngine


class MemoryGit(ProviderPlugin):
    """Repositories in a dict. Tests flip ``health``, ``fail``, ``delay`` to script faults."""

    provider = "memory"
    service = "git"
    name = "In-memory git"

    def __init__(self, plugin_id: str) -> None:
        super().__init__(plugin_id)
        self.repos: dict[str, Repository] = {}
        self.calls: list[str] = []
        self.delay = 0.0
        # Raised by the next ``fail_times`` calls (all calls when fail_times is None).
        self.fail: Callable[[], Exception] | None = None
        self.fail_times: int | None = None
        self.health = "healthy"
        self.health_delay = 0.0
        self.health_checks = 0

    async def health_check(self) -> HealthStatus:
        self.health_checks += 1
        if self.health_delay:
            await asyncio.sleep(self.health_delay)
        return HealthStatus(status=self.health, detail=f"{self.id} says {self.health}")  # type: ignore[arg-type]

    async def _enter(self, op: str) -> None:
        self.calls.append(op)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None and (self.fail_times is None or self.fail_times > 0):
            if self.fail_times is not None:
                self.fail_times -= 1
            raise self.fail()

    def _repo(self, owner: str, name: str, private: bool = False, description: str = "") -> Repository:
        now = datetime.now(UTC)
        return Repository(provider=self.id, id=f"{owner}/{name}", owner=owner, name=name,
                          full_name=f"{owner}/{name}", private=private, description=description,
                          created_at=now, updated_at=now, raw={"stored_by": self.id})

    async def create_repository(self, p: CreateRepositoryParams, ctx: RequestContext) -> Repository:
        await self._enter("create_repository")
        owner = p.owner or ctx.principal.id
        key = f"{owner}/{p.name}"
        if key in self.repos:
            raise Conflict(f"repository {key} already exists")
        repo = self.repos[key] = self._repo(owner, p.name, p.private, p.description)
        return repo

    async def get_repository(self, p: GetRepositoryParams, ctx: RequestContext) -> Repository:
        await self._enter("get_repository")
        repo = self.repos.get(p.repo)
        if repo is None:
            raise NotFound(f"repository {p.repo} not found on {self.id}")
        return repo

    async def update_repository(self, p: UpdateRepositoryParams, ctx: RequestContext) -> Repository:
        await self._enter("update_repository")
        repo = self.repos.get(p.repo)
        if repo is None:
            raise NotFound(f"repository {p.repo} not found on {self.id}")
        changes: dict[str, Any] = {k: v for k, v in (("description", p.description), ("private", p.private))
                                   if v is not None}
        repo = self.repos[p.repo] = repo.model_copy(update=changes)
        return repo

    async def delete_repository(self, p: DeleteRepositoryParams, ctx: RequestContext) -> Deleted:
        await self._enter("delete_repository")
        if self.repos.pop(p.repo, None) is None:
            raise NotFound(f"repository {p.repo} not found on {self.id}")
        return Deleted(provider=self.id, id=p.repo)

    async def list_repositories(self, p: ListRepositoriesParams, ctx: RequestContext) -> Page[Repository]:
        await self._enter("list_repositories")
        items = [r for r in self.repos.values() if p.owner is None or r.owner == p.owner]
        return Page[Repository](items=items[: p.limit])


class ReadOnlyGit(MemoryGit):
    """A provider that cannot create repositories at all (OperationNotSupported)."""

    provider = "memory-ro"
    unsupported = {"create_repository": "read-only mirror"}
    create_repository = None  # type: ignore[assignment]


FAKES: dict[str, type[ProviderPlugin]] = {"memory": MemoryGit, "memory-ro": ReadOnlyGit}


class FakeResolver(PluginResolver):
    """Resolves the fake providers above; everything else as usual."""

    def resolve(self, spec: PluginSpec) -> type[ProviderPlugin]:
        cls = FAKES.get(spec.provider)
        return cls if cls is not None else super().resolve(spec)


def config(routing: dict[str, Any] | str, plugins: Iterable[str] = ("a", "b", "c"),
           default: str | None = None, service: str = "git",
           providers: dict[str, str] | None = None) -> MosaicConfig:
    """A config of memory instances and the given ``routing`` section (dict or YAML)."""
    section = yaml.safe_load(routing) if isinstance(routing, str) else routing
    kinds = providers or {}
    # One attempt per candidate: these tests are about routing and failover, not retries.
    return MosaicConfig.model_validate({"orchestration": {
        "plugins": [{"id": p, "type": service, "provider": kinds.get(p, "memory"), "default": p == default,
                     "config": {"retry": {"attempts": 1}}} for p in plugins],
        "routing": section,
    }})


def gateway(routing: dict[str, Any] | str, plugins: Iterable[str] = ("a", "b", "c"),
            default: str | None = None, providers: dict[str, str] | None = None, **kwargs: Any) -> Gateway:
    return Gateway(config(routing, plugins, default, providers=providers),
                   PluginManager(FakeResolver(), drain_timeout=2), **kwargs)


def plugin(gw: Gateway, pid: str) -> MemoryGit:
    p = gw.manager.plugins[pid]
    assert isinstance(p, MemoryGit)
    return p


def engine(routing: dict[str, Any] | str, plugins: Iterable[str] = ("a", "b", "c"),
           default: str | None = None, service: str = "git") -> RoutingEngine:
    """An engine over instances of one service, without a plugin manager (all usable)."""
    cfg = config(routing, plugins, default, service)
    specs = cfg.orchestration.plugins
    return RoutingEngine(cfg.orchestration.routing, {p.id: p.type for p in specs},
                         defaults={p.type: p.id for p in specs if p.default})


def request(op: str, params: dict[str, Any], *, user: str = "local", roles: tuple[str, ...] = ("dev",),
            tenant: str = "default", **attributes: Any) -> tuple[RequestContext, Operation]:
    """The context Gateway.prepare would build for this call."""
    operation = CATALOG.resolve(op)
    model = operation.params.model_validate(params)
    ctx = RequestContext(tenant=tenant, principal=Principal(id=user, roles=roles, attributes=attributes))
    ctx.operation = operation.qualified_name
    ctx.resource = extract_resource(operation, model)
    return ctx, operation


def route(eng: RoutingEngine, op: str, params: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
    """Candidate order for one request (a decision that moves no balancer state)."""
    ctx, operation = request(op, params or {}, **kwargs)
    return eng.decide(ctx, operation, commit=False, use_cache=False).candidates
