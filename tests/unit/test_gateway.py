"""Gateway.execute: validation, selection, error hygiene, deadlines, metrics, reload."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mosaic.catalog.git import GetRepositoryParams, Repository
from mosaic.config.schema import MosaicConfig, Orchestration, PluginSpec
from mosaic.errors import (
    InvalidRequest,
    MosaicError,
    NotFound,
    OperationNotSupported,
    PluginError,
    Timeout,
    UnknownOperation,
)
from mosaic.gateway.context import RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.gateway.layers import CALLS
from mosaic.plugins.contract import ProviderPlugin
from mosaic.plugins.loader import PluginResolver
from mosaic.plugins.manager import PluginManager


class MemoryGit(ProviderPlugin):
    """A small real in-memory git provider used to exercise the pipeline."""

    provider = "memory"
    service = "git"
    name = "In-memory git"

    def __init__(self, plugin_id: str) -> None:
        super().__init__(plugin_id)
        self.repos: dict[str, Repository] = {}
        self.delay = 0.0

    async def get_repository(self, p: GetRepositoryParams, ctx: RequestContext) -> Repository:
        if self.delay:
            await asyncio.sleep(self.delay)
        if p.repo == "boom/boom":
            raise RuntimeError("secret-internal-detail")
        repo = self.repos.get(p.repo)
        if repo is None:
            raise NotFound(f"repository {p.repo} not found")
        return repo


class Resolver(PluginResolver):
    def resolve(self, spec: PluginSpec) -> type[ProviderPlugin]:
        return MemoryGit


def make_gateway(*specs: PluginSpec) -> Gateway:
    cfg = MosaicConfig(orchestration=Orchestration(plugins=list(specs)))
    return Gateway(cfg, PluginManager(Resolver(), drain_timeout=2))


async def started(*ids: str, default: str | None = None) -> Gateway:
    gw = make_gateway(*(PluginSpec(id=i, type="git", provider="memory", default=(i == default))
                        for i in ids))
    await gw.start()
    for i in ids:
        plugin = gw.manager.plugins[i]
        assert isinstance(plugin, MemoryGit)
        owner, name = "acme", "api"
        plugin.repos[f"{owner}/{name}"] = Repository(provider=i, id="1", owner=owner, name=name,
                                                     full_name=f"{owner}/{name}")
    return gw


async def test_execute_validates_selects_and_returns_model() -> None:
    gw = await started("m1", "m2", default="m2")
    ctx = RequestContext()
    repo = await gw.execute("git.get_repository", {"repo": "acme/api"}, ctx)
    assert isinstance(repo, Repository) and repo.provider == "m2"
    assert ctx.meta["provider"] == "m2" and ctx.resource["org"] == "acme"
    explicit = await gw.execute("git_get_repository", {"repo": "acme/api"}, RequestContext(plugin="m1"))
    assert isinstance(explicit, Repository) and explicit.provider == "m1"
    await gw.stop()


async def test_bad_params_name_the_field() -> None:
    gw = await started("m1")
    with pytest.raises(InvalidRequest) as exc:
        await gw.execute("git.get_repository", {"repo": "../etc", "extra": 1})
    fields = {f["field"]: f["problem"] for f in exc.value.details["fields"]}
    assert set(fields) == {"repo", "extra"} and fields["extra"] == "unknown parameter"
    with pytest.raises(InvalidRequest) as exc2:
        await gw.execute("git.get_repository", {})
    assert exc2.value.details["fields"] == [{"field": "repo", "problem": "required"}]
    await gw.stop()


async def test_unknown_operation_suggests() -> None:
    gw = await started("m1")
    with pytest.raises(UnknownOperation) as exc:
        await gw.execute("git.get_repositry", {})
    assert "git.get_repository" in exc.value.details["suggestions"]
    await gw.stop()


async def test_unsupported_operation_is_typed() -> None:
    gw = await started("m1")
    with pytest.raises(OperationNotSupported) as exc:
        await gw.execute("git.list_branches", {"repo": "acme/api"})
    assert exc.value.code == "operation_not_supported" and exc.value.details["provider"] == "m1"
    await gw.stop()


async def test_unexpected_exception_becomes_internal_error_without_detail() -> None:
    gw = await started("m1")
    with pytest.raises(MosaicError) as exc:
        await gw.execute("git.get_repository", {"repo": "boom/boom"})
    assert type(exc.value) is MosaicError and exc.value.code == "internal_error"
    assert "secret-internal-detail" not in exc.value.message
    assert "error_id" in exc.value.details
    await gw.stop()


async def test_deadline_becomes_timeout() -> None:
    gw = await started("m1")
    plugin = gw.manager.plugins["m1"]
    assert isinstance(plugin, MemoryGit)
    plugin.delay = 1.0
    with pytest.raises(Timeout):
        await gw.execute("git.get_repository", {"repo": "acme/api"}, RequestContext.with_timeout(0.05))
    assert plugin.inflight == 0
    await gw.stop()


async def test_metrics_count_outcomes() -> None:
    gw = await started("mx")
    before = CALLS.labels("git.get_repository", "mx", "not_found")._value.get()
    with pytest.raises(NotFound):
        await gw.execute("git.get_repository", {"repo": "acme/none"})
    assert CALLS.labels("git.get_repository", "mx", "not_found")._value.get() == before + 1
    await gw.stop()


async def test_explicit_plugin_errors() -> None:
    gw = await started("m1")
    with pytest.raises(NotFound):
        await gw.execute("git.get_repository", {"repo": "acme/api"}, RequestContext(plugin="nope"))
    await gw.stop()


async def test_reload_keeps_in_flight_calls() -> None:
    gw = await started("m1")
    old = gw.manager.plugins["m1"]
    assert isinstance(old, MemoryGit)
    old.delay = 0.2
    pending = asyncio.create_task(gw.execute("git.get_repository", {"repo": "acme/api"}))
    await asyncio.sleep(0.05)
    assert old.inflight == 1
    new = await gw.manager.reload("m1")
    result: Any = await pending
    assert result.provider == "m1" and new is gw.manager.plugins["m1"] and new is not old
    assert not old.started and new.started
    await gw.stop()


async def test_failed_default_plugin_is_explained() -> None:
    class Broken(MemoryGit):
        async def start(self) -> None:
            raise OSError("disk on fire")

    class BrokenResolver(PluginResolver):
        def resolve(self, spec: PluginSpec) -> type[ProviderPlugin]:
            return Broken

    cfg = MosaicConfig(orchestration=Orchestration(plugins=[
        PluginSpec(id="b", type="git", provider="memory", default=True)]))
    gw = Gateway(cfg, PluginManager(BrokenResolver()))
    await gw.start()
    assert "disk on fire" in gw.manager.failed["b"].error
    with pytest.raises(PluginError) as exc:
        await gw.execute("git.get_repository", {"repo": "acme/api"})
    assert "disk on fire" in exc.value.message
