"""A scriptable in-process git provider for the resilience layers' tests."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from mosaic.catalog.base import Page
from mosaic.catalog.git import (
    CreateRepositoryParams,
    GetRepositoryParams,
    ListRepositoriesParams,
    Repository,
    UpdateRepositoryParams,
)
from mosaic.config.schema import CacheConfig, MosaicConfig, Orchestration, PluginSpec
from mosaic.errors import NotFound
from mosaic.gateway.context import RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.plugins.contract import ProviderPlugin
from mosaic.plugins.manager import PluginManager

MODULE = "tests.resilience.fakes:ScriptedGit"


class ScriptedGit(ProviderPlugin):
    """Each call consumes the next scripted action: an exception to raise, or a delay (seconds)
    before answering normally. With nothing scripted it answers at once."""

    provider = "scripted"
    service = "git"
    name = "Scripted git"

    def __init__(self, plugin_id: str) -> None:
        super().__init__(plugin_id)
        self.script: deque[BaseException | float] = deque()
        self.calls: list[tuple[str, float]] = []
        self.repos: dict[str, Repository] = {}
        self.rate_limit: Any = None

    def push(self, *actions: BaseException | float) -> None:
        self.script.extend(actions)

    def count(self, op: str) -> int:
        return sum(1 for name, _ in self.calls if name == op)

    async def _step(self, op: str) -> None:
        self.calls.append((op, time.monotonic()))
        if self.script:
            action = self.script.popleft()
            if isinstance(action, BaseException):
                raise action
            await asyncio.sleep(action)

    def _repo(self, full: str, **kw: Any) -> Repository:
        owner, name = full.split("/")
        return Repository(provider=self.id, id=full, owner=owner, name=name, full_name=full, **kw)

    async def get_repository(self, p: GetRepositoryParams, ctx: RequestContext) -> Repository:
        await self._step("get_repository")
        repo = self.repos.get(p.repo)
        if repo is None:
            raise NotFound(f"repository {p.repo} not found")
        return repo

    async def list_repositories(self, p: ListRepositoriesParams, ctx: RequestContext) -> Page[Repository]:
        await self._step("list_repositories")
        items = [r for r in self.repos.values() if p.owner is None or r.owner == p.owner]
        return Page[Repository](items=items[: p.limit])

    async def create_repository(self, p: CreateRepositoryParams, ctx: RequestContext) -> Repository:
        await self._step("create_repository")
        repo = self._repo(f"{p.owner or 'me'}/{p.name}", description=p.description)
        self.repos[repo.full_name] = repo
        return repo

    async def update_repository(self, p: UpdateRepositoryParams, ctx: RequestContext) -> Repository:
        await self._step("update_repository")
        repo = self.repos.get(p.repo)
        if repo is None:
            raise NotFound(f"repository {p.repo} not found")
        if p.description is not None:
            repo = repo.model_copy(update={"description": p.description})
            self.repos[p.repo] = repo
        return repo


def scripted_gateway(pid: str = "scripted", *, cache: dict[str, Any] | None = None,
                     plugin_cache: dict[str, Any] | None = None, **shared: Any) -> Gateway:
    """A gateway over one ScriptedGit; ``shared`` are its rateLimit/retry/... keys, ``cache`` the
    global cache config and ``plugin_cache`` the plugin's own ``cache`` key."""
    config = {**shared, **({"cache": plugin_cache} if plugin_cache is not None else {})}
    spec = PluginSpec(id=pid, type="git", provider="scripted", module=MODULE, default=True, config=config)
    cfg = MosaicConfig(orchestration=Orchestration(
        plugins=[spec], cache=CacheConfig.model_validate(cache) if cache else CacheConfig()))
    return Gateway(cfg, PluginManager())


def plugin_of(gateway: Gateway, pid: str = "scripted") -> ScriptedGit:
    plugin = gateway.manager.get(pid)
    assert isinstance(plugin, ScriptedGit)
    return plugin
