"""A git provider whose get_repository takes a while: to prove shutdown drains in-flight requests."""

from __future__ import annotations

import asyncio

from mosaic.catalog.git import GetRepositoryParams, Repository
from mosaic.gateway.context import RequestContext
from mosaic.plugins.contract import ProviderPlugin

DELAY = 1.5


class SlowGit(ProviderPlugin):
    provider = "slow"
    service = "git"
    name = "Slow git (tests)"

    async def get_repository(self, p: GetRepositoryParams, ctx: RequestContext) -> Repository:
        await asyncio.sleep(DELAY)
        owner, _, name = p.repo.rpartition("/")
        return Repository(provider=self.id, id=p.repo, owner=owner, name=name, full_name=p.repo)
