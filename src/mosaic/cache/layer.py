"""The cache layer of the pipeline: serves cacheable reads, invalidates after writes.

It runs before routing, so a hit costs no routing and no provider call. Reads are cacheable when
the catalog gives them a ``cache_ttl``; the TTL used is the smallest of that, the global
``orchestration.cache.ttl`` and the serving plugin's ``cache.ttl``, and a plugin may switch
caching off (``cache: {enabled: false}``).

Cached results are shared between callers: treat returned models as read-only.
"""

from __future__ import annotations

from pydantic import BaseModel

from mosaic.cache.cache import MISSING, Lookup, TwoLevelCache
from mosaic.cache.keys import entry_key, negative_tag, read_tags, write_tags
from mosaic.errors import MosaicError, ProviderUnavailable
from mosaic.gateway.pipeline import Call, Next
from mosaic.resilience.errors import is_local_rejection
from mosaic.resilience.policies import ProviderPolicies


class CacheLayer:
    def __init__(self, cache: TwoLevelCache, policies: ProviderPolicies) -> None:
        self.cache = cache
        self.policies = policies

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        op = call.op
        if not op.is_read:
            return await self._write(call, nxt)
        if op.cache_ttl is None:
            return await nxt(call)
        ctx = call.ctx
        key = entry_key(ctx.tenant, ctx.plugin, op, call.params)
        value = self.cache.peek(key)
        if value is not MISSING:
            ctx.meta["cache"] = "hit"
            return value  # type: ignore[no-any-return]
        lookup = Lookup(key, read_tags(ctx.tenant, op, ctx.resource),
                        negative_tag(ctx.tenant, op, ctx.resource), op.result.model_validate_json)
        op_ttl = op.cache_ttl

        def policy() -> tuple[float, float]:
            plugin_id = call.plugin.id if call.plugin is not None else ctx.plugin
            ttl, negative = min(op_ttl, self.cache.settings.ttl), self.cache.settings.negative_ttl
            if plugin_id is not None:
                own = self.policies.get(plugin_id).config.cache
                if own.enabled is False:
                    return 0.0, 0.0
                if own.ttl is not None:
                    ttl = min(ttl, own.ttl)
                if own.negative_ttl is not None:
                    negative = own.negative_ttl
            return ttl, negative

        async def fetch() -> BaseModel:
            ctx.meta["cache"] = "miss"
            return await nxt(call)

        return await self.cache.get_or_fetch(lookup, fetch, policy, ctx.remaining)

    async def _write(self, call: Call, nxt: Next) -> BaseModel:
        ctx = call.ctx
        try:
            result = await nxt(call)
        except MosaicError as exc:
            # A write whose outcome is unknown (sent, then timed out or reset) may have applied.
            if isinstance(exc, ProviderUnavailable) and exc.sent and not is_local_rejection(exc):
                await self.cache.invalidate(write_tags(ctx.tenant, call.op, ctx.resource))
            raise
        await self.cache.invalidate(write_tags(ctx.tenant, call.op, ctx.resource, result))
        return result
