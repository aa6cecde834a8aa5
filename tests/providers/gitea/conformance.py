"""Gitea and Forgejo in the shared git conformance suite: each plugin in front of the stateful
fake, every request and answer validated against the vendor's own description."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.providers.gitea.fake import GiteaFake
from tests.support.conformance import GitTarget, GitTargetFactory, register_git_target, shutdown, started
from tests.support.spec_validation import validating

from mosaic.providers.gitea.git import ForgejoGitPlugin, GiteaGitPlugin

BASE_URL = "https://gitea.test"


def _target(flavour: str, cls: type[GiteaGitPlugin]) -> GitTargetFactory:
    @asynccontextmanager
    async def factory(tmp_path: Path) -> AsyncIterator[GitTarget]:
        fake = GiteaFake(base_url=BASE_URL, flavour=flavour)
        fake.add_user("alice", "token-alice")
        fake.add_user("bob", "token-bob")
        transport = validating(flavour, fake.transport())
        owner = await started(
            cls(f"{flavour}-alice", transport=transport),
            {"baseUrl": BASE_URL, "auth": {"type": "token", "token": "token-alice"}},
        )
        reviewer = await started(
            cls(f"{flavour}-bob", transport=transport),
            {"baseUrl": BASE_URL, "auth": {"type": "token", "token": "token-bob"}},
        )
        try:
            yield GitTarget(plugin=owner, reviewer=reviewer, check=transport.assert_clean)
        finally:
            await shutdown(owner, reviewer)

    return factory


register_git_target("gitea")(_target("gitea", GiteaGitPlugin))
register_git_target("forgejo")(_target("forgejo", ForgejoGitPlugin))
