"""Gateway layers for quotas, provider budgets and usage (order: see mosaic.security.layers)."""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel

from mosaic.errors import MosaicError
from mosaic.gateway.pipeline import Call, Next
from mosaic.security.identity import Identity
from mosaic.tenancy.quotas import Quotas, budget_counter, request_counters
from mosaic.tenancy.settings import ProviderBudget, RateQuota
from mosaic.tenancy.usage import UsageRecorder


class QuotaLayer:
    """Requests/minute and writes/day, for the tenant and for the calling API key."""

    def __init__(self, quotas: Quotas, tenant_quota: RateQuota) -> None:
        self.quotas = quotas
        self.tenant_quota = tenant_quota

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        ctx = call.ctx
        principal = ctx.principal
        key_id: str | None = None
        key_quota: RateQuota | None = None
        if isinstance(principal, Identity) and principal.key_id and principal.quotas:
            key_id = principal.key_id
            key_quota = RateQuota.model_validate(principal.quotas)
        counters = request_counters(ctx.tenant, key_id, not call.op.is_read, self.tenant_quota, key_quota,
                                    time.time())
        await self.quotas.take(counters)
        return await nxt(call)


class ProviderBudgetLayer:
    """Charge the provider instance being tried against the tenant's budget for it."""

    def __init__(self, quotas: Quotas, budgets: dict[str, ProviderBudget]) -> None:
        self.quotas = quotas
        self.budgets = budgets

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        plugin = call.plugin
        budget = self.budgets.get(plugin.id) if plugin is not None else None
        if budget is not None and plugin is not None:
            await self.quotas.take([budget_counter(call.ctx.tenant, plugin.id, budget, time.time())])
        return await nxt(call)


class UsageLayer:
    """Record every admitted call: provider (``cache`` for a hit), outcome and duration."""

    def __init__(self, recorder: UsageRecorder) -> None:
        self.recorder = recorder

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        start = time.perf_counter()
        outcome = "ok"
        try:
            return await nxt(call)
        except MosaicError as exc:
            outcome = exc.code
            raise
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except Exception:
            outcome = "internal_error"
            raise
        finally:
            ctx = call.ctx
            provider = "cache" if ctx.meta.get("cache") == "hit" else str(ctx.meta.get("provider") or "-")
            self.recorder.record(ctx.tenant, ctx.principal.id, provider, call.op.qualified_name,
                                 call.op.effect.value, outcome, (time.perf_counter() - start) * 1000)
