"""Registry of git providers run by the shared conformance suite.

A target is a started plugin wired to something stateful: the real ``local`` provider in a temp
dir, or an HTTP provider in front of its spec-validated fake. Vendors register themselves in
``tests/providers/<vendor>/conformance.py`` (imported by :func:`discover`), so adding a provider
to the suite never means editing this file::

    @register_git_target("gitea")
    @asynccontextmanager
    async def gitea(tmp_path: Path) -> AsyncIterator[GitTarget]:
        ...
        yield GitTarget(plugin=alice, reviewer=bob, check=transport.assert_clean)
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mosaic.gateway.context import Principal, RequestContext
from mosaic.plugins.contract import ProviderPlugin


@dataclass
class GitTarget:
    plugin: ProviderPlugin
    # Acts as a second person: forges refuse an approval from the pull request's author.
    reviewer: ProviderPlugin
    reviewer_ctx: RequestContext = field(default_factory=RequestContext)
    # Owner for create_repository; None = the authenticated caller.
    owner: str | None = None
    # Called after the test: e.g. fail on a spec violation the code under test swallowed.
    check: Callable[[], None] = lambda: None


GitTargetFactory = Callable[[Path], AbstractAsyncContextManager[GitTarget]]
GIT_TARGETS: dict[str, GitTargetFactory] = {}


def register_git_target(name: str) -> Callable[[GitTargetFactory], GitTargetFactory]:
    def register(factory: GitTargetFactory) -> GitTargetFactory:
        GIT_TARGETS[name] = factory
        return factory

    return register


async def started(plugin: ProviderPlugin, config: object) -> ProviderPlugin:
    await plugin.initialize(plugin.Config.model_validate(config))
    await plugin.start()
    return plugin


async def shutdown(*plugins: ProviderPlugin) -> None:
    for plugin in plugins:
        await plugin.stop()
        await plugin.dispose()


def _register_local() -> None:
    try:
        from mosaic.providers.local.git import LocalGitPlugin
    except ImportError:  # the local provider is optional for this suite
        return

    @register_git_target("local")
    @asynccontextmanager
    async def local(tmp_path: Path) -> AsyncIterator[GitTarget]:
        plugin = await started(LocalGitPlugin("local-git"), {"dataDir": str(tmp_path / "local-git")})
        try:
            yield GitTarget(
                plugin=plugin,
                reviewer=plugin,
                reviewer_ctx=RequestContext(principal=Principal(id="reviewer")),
            )
        finally:
            await shutdown(plugin)


def discover() -> dict[str, GitTargetFactory]:
    """Every registered target: ``local`` plus each ``tests/providers/*/conformance.py``."""
    if not GIT_TARGETS:
        _register_local()
        providers = Path(__file__).resolve().parents[1] / "providers"
        for module in sorted(providers.glob("*/conformance.py")):
            importlib.import_module(f"tests.providers.{module.parent.name}.conformance")
    return dict(GIT_TARGETS)
