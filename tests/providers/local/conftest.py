"""Fixtures of the local provider tests: a started plugin on a fresh data dir, a caller, plain git."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mosaic.catalog.registry import CATALOG
from mosaic.gateway.context import Principal, RequestContext
from mosaic.providers.local.git import LocalGitPlugin


class GitCaller:
    """Calls catalog operations on a local git plugin the way the gateway does."""

    def __init__(self, plugin: LocalGitPlugin, data_dir: Path) -> None:
        self.plugin = plugin
        self.data_dir = data_dir

    async def __call__(self, operation: str, *, principal: str = "alice", **params: Any) -> Any:
        op = CATALOG[f"git.{operation}"]
        ctx = RequestContext(principal=Principal(id=principal))
        return await self.plugin.call(op, op.params(**params), ctx)

    def repo_dir(self, full_name: str) -> Path:
        owner, name = full_name.split("/")
        return self.data_dir / "git" / owner / f"{name}.git"

    async def plain(self, full_name: str, *args: str, stdin: str | None = None) -> str:
        """Run plain ``git`` against the bare repository, independently of the plugin."""
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.data_dir), "GIT_CONFIG_NOSYSTEM": "1",
               "LC_ALL": "C", "GIT_AUTHOR_NAME": "Pusher", "GIT_AUTHOR_EMAIL": "pusher@example.com",
               "GIT_COMMITTER_NAME": "Pusher", "GIT_COMMITTER_EMAIL": "pusher@example.com"}
        proc = await asyncio.create_subprocess_exec(
            "git", f"--git-dir={self.repo_dir(full_name)}", *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        assert proc.returncode == 0, err.decode()
        return out.decode()


async def start_local_git(data_dir: Path, plugin_id: str = "local-git", **config: Any) -> LocalGitPlugin:
    plugin = LocalGitPlugin(plugin_id)
    await plugin.initialize(LocalGitPlugin.Config(dataDir=data_dir, **config))
    await plugin.start()
    return plugin


@pytest.fixture
async def git_plugin(tmp_path: Path) -> AsyncIterator[LocalGitPlugin]:
    plugin = await start_local_git(tmp_path)
    yield plugin
    await plugin.stop()
    await plugin.dispose()


@pytest.fixture
def git(git_plugin: LocalGitPlugin, tmp_path: Path) -> GitCaller:
    return GitCaller(git_plugin, tmp_path)


@pytest.fixture
async def repo(git: GitCaller) -> str:
    """A repository ``acme/api`` with an initial commit (README.md) on ``main``."""
    await git("create_repository", name="api", owner="acme", description="The API")
    return "acme/api"


@pytest.fixture
async def git_factory() -> AsyncIterator[Any]:
    """Start more local git plugins (each on its own data dir); all are disposed afterwards."""
    started: list[LocalGitPlugin] = []

    async def make(data_dir: Path, plugin_id: str = "local-git", **config: Any) -> GitCaller:
        plugin = await start_local_git(data_dir, plugin_id, **config)
        started.append(plugin)
        return GitCaller(plugin, data_dir)

    yield make
    for plugin in started:
        await plugin.stop()
        await plugin.dispose()
