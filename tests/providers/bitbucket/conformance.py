"""Bitbucket Cloud in the shared git conformance suite: the plugin in front of the stateful fake,
every request and answer validated against ``bitbucket.yaml`` (with the errata of ``spec.py``).

Alice and Bob are both members of the workspace ``acme``, where the suite creates its
repositories: Bitbucket refuses an approval from a pull request's author, so Bob reviews. Alice
signs in with an app password (basic auth), Bob with an access token (bearer).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.providers.bitbucket.fake import BitbucketFake
from tests.providers.bitbucket.spec import bitbucket_spec
from tests.support.conformance import GitTarget, register_git_target, shutdown, started
from tests.support.spec_validation import validating

from mosaic.providers.bitbucket.git import BitbucketGitPlugin

API_URL = "https://api.bitbucket.test/2.0"
WEB_URL = "https://bitbucket.test"


@register_git_target("bitbucket")
@asynccontextmanager
async def bitbucket(tmp_path: Path) -> AsyncIterator[GitTarget]:
    fake = BitbucketFake(API_URL, WEB_URL)
    fake.add_user("alice", "token-alice", app_password="app-password-alice")
    fake.add_user("bob", "token-bob")
    fake.add_workspace("acme", ["alice", "bob"])
    transport = validating(bitbucket_spec(), fake.transport())
    owner = await started(BitbucketGitPlugin("bitbucket-alice", transport=transport),
                          {"baseUrl": API_URL, "webUrl": WEB_URL,
                           "auth": {"type": "basic", "username": "alice", "password": "app-password-alice"}})
    reviewer = await started(BitbucketGitPlugin("bitbucket-bob", transport=transport),
                             {"baseUrl": API_URL, "webUrl": WEB_URL,
                              "auth": {"type": "bearer", "token": "token-bob"}})
    for plugin in (owner, reviewer):
        assert isinstance(plugin, BitbucketGitPlugin)
        plugin.merge_poll_s = 0.0
    try:
        yield GitTarget(plugin=owner, reviewer=reviewer, owner="acme", check=transport.assert_clean)
    finally:
        await shutdown(owner, reviewer)
