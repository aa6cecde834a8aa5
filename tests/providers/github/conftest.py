"""Fixtures of the GitHub tests: the stateful fake behind the spec-validating transport, and a
plugin started against it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from tests.providers.github.fake import GitHubFake
from tests.providers.github.spec import github_spec
from tests.support.spec_validation import SpecValidatingTransport

from mosaic.gateway.context import RequestContext
from mosaic.providers.github.git import GitHubGitPlugin

TOKEN = "ghp_alice_s3cret_token"


@dataclass
class Env:
    fake: GitHubFake
    plugin: GitHubGitPlugin
    transport: SpecValidatingTransport
    ctx: RequestContext

    def calls(self) -> list[tuple[str, str]]:
        return self.transport.calls()

    def query(self, index: int) -> dict[str, str]:
        return dict(self.transport.requests[index].url.params)


def new_fake(**kwargs: Any) -> GitHubFake:
    fake = GitHubFake(**kwargs)
    fake.add_user("alice", TOKEN)
    fake.add_user("bob", "ghp_bob")
    fake.add_org("acme", ["alice"])
    return fake


async def make_env(
    spec_transport: Callable[..., SpecValidatingTransport],
    *,
    fake: GitHubFake | None = None,
    api_root: str | None = None,
    **config: Any,
) -> Env:
    fake = fake or new_fake()
    transport = spec_transport(github_spec(), fake.transport(), api_root=api_root)
    plugin = GitHubGitPlugin("github", transport=transport, clock=lambda: fake.now)
    settings = {"auth": {"type": "token", "token": TOKEN}, **config}
    await plugin.initialize(GitHubGitPlugin.Config.model_validate(settings))
    await plugin.start()
    return Env(fake, plugin, transport, RequestContext())


@pytest.fixture
async def env(spec_transport: Callable[..., SpecValidatingTransport]) -> AsyncIterator[Env]:
    e = await make_env(spec_transport)
    yield e
    await e.plugin.dispose()
