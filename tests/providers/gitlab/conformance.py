"""GitLab in the shared git conformance suite: the plugin in front of the stateful fake, every
request and answer validated against GitLab's description (with the errata of ``spec.py``).

Alice and Bob are both members of the group ``acme``, where the suite creates its repositories:
GitLab refuses an approval from a merge request's author, so Bob reviews.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.providers.gitlab.fake import GitLabFake
from tests.providers.gitlab.spec import gitlab_spec
from tests.support.conformance import GitTarget, register_git_target, shutdown, started
from tests.support.spec_validation import validating

from mosaic.providers.gitlab.git import GitLabGitPlugin

BASE_URL = "https://gitlab.test"


@register_git_target("gitlab")
@asynccontextmanager
async def gitlab(tmp_path: Path) -> AsyncIterator[GitTarget]:
    fake = GitLabFake(BASE_URL)
    fake.add_user("alice", "glpat-alice")
    fake.add_user("bob", "glpat-bob")
    fake.add_group("acme", ["alice", "bob"])
    transport = validating(gitlab_spec(), fake.transport())
    owner = await started(GitLabGitPlugin("gitlab-alice", transport=transport),
                          {"baseUrl": BASE_URL, "auth": {"type": "token", "token": "glpat-alice"}})
    reviewer = await started(GitLabGitPlugin("gitlab-bob", transport=transport),
                             {"baseUrl": BASE_URL, "auth": {"type": "bearer", "token": "glpat-bob"}})
    for plugin in (owner, reviewer):
        assert isinstance(plugin, GitLabGitPlugin)
        plugin.rebase_poll_s = 0.0  # the fake's rebase finishes after one poll; don't sleep for it
    try:
        yield GitTarget(plugin=owner, reviewer=reviewer, owner="acme", check=transport.assert_clean)
    finally:
        await shutdown(owner, reviewer)
