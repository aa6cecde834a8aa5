"""GitHub in the shared git conformance suite: the plugin in front of the stateful fake, every
request and answer validated against GitHub's own OpenAPI description (``github.json``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.providers.github.fake import GitHubFake
from tests.providers.github.spec import github_spec
from tests.support.conformance import GitTarget, register_git_target, shutdown, started
from tests.support.spec_validation import SpecValidatingTransport

from mosaic.providers.github.git import GitHubGitPlugin


@register_git_target("github")
@asynccontextmanager
async def github(tmp_path: Path) -> AsyncIterator[GitTarget]:
    fake = GitHubFake()
    fake.add_user("alice", "ghp_alice")
    fake.add_user("bob", "ghp_bob")
    transport = SpecValidatingTransport(github_spec(), fake.transport())
    owner = await started(
        GitHubGitPlugin("github-alice", transport=transport),
        {"auth": {"type": "token", "token": "ghp_alice"}},
    )
    reviewer = await started(
        GitHubGitPlugin("github-bob", transport=transport), {"auth": {"type": "token", "token": "ghp_bob"}}
    )
    try:
        yield GitTarget(plugin=owner, reviewer=reviewer, check=transport.assert_clean)
    finally:
        await shutdown(owner, reviewer)
