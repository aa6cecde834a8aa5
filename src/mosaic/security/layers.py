"""Gateway layers for tenancy and security, and the function that orders them.

Order in a gateway (each arrow is ``next``)::

    observe → tenant guard → audit → authorize → quota → usage → [cache] → route
            → residency guard → failover → provider budget → [idempotency, retry, breaker, ...] → invoke

* the tenant guard first: a context for another tenant never reaches anything of this one;
* audit before authorize, so that refused writes are audited too (outcome ``forbidden``), and
  around everything else so that it records the final outcome and provider;
* authorize before quota: a caller who may not call does not consume quota;
* usage after quota: what is billed is what was admitted (cache hits included, as provider
  ``cache``);
* the residency guard between route and failover: it filters the routing decision before any
  candidate is called;
* the provider budget after failover: it charges the instance actually being tried, and a
  budget that is spent moves a read to the next candidate like any rate limit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import BaseModel

from mosaic.errors import Forbidden, MosaicError
from mosaic.gateway.pipeline import Call, Layer, Next
from mosaic.security.audit import AuditLog, AuditRecord, AuditUnavailable, Kind
from mosaic.security.identity import Identity
from mosaic.security.rbac import Authorizer

log = logging.getLogger("mosaic.security")


class TenantGuard:
    """Refuse a call whose context belongs to another tenant than this gateway's."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        ctx = call.ctx
        principal = ctx.principal
        if ctx.tenant != self.tenant:
            # Deliberately vague: the other tenant's name is the caller's own input, but this
            # gateway's is not theirs to learn.
            raise Forbidden("this request is not for this tenant's gateway")
        if isinstance(principal, Identity) and principal.tenant != ctx.tenant:
            raise Forbidden(f"{principal.id} belongs to another tenant and may not act in {ctx.tenant!r}")
        return await nxt(call)


class AuthorizeLayer:
    """RBAC before any provider call: the operation's service/name and its effect."""

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        ctx, op = call.ctx, call.op
        if not self.authorizer.may_call(ctx.principal, ctx.tenant, op):
            raise Forbidden(f"{ctx.principal.id} may not call {op.qualified_name} "
                            f"({op.effect.value}) in tenant {ctx.tenant!r}",
                            details={"operation": op.qualified_name, "action": op.effect.value,
                                     "roles": list(ctx.principal.roles)})
        return await nxt(call)


def _resource(call: Call, result: BaseModel | None) -> dict[str, Any]:
    res = {k: v for k, v in call.ctx.resource.items() if isinstance(v, (str, int, float, bool))}
    if result is not None:
        for attr in ("id", "url", "full_name"):
            value = getattr(result, attr, None)
            if isinstance(value, (str, int)):
                res[f"result_{attr}"] = value
    return res


class AuditLayer:
    """One durable entry per write (and per residency refusal), before the response returns."""

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        op = call.op
        try:
            result = await nxt(call)
        except asyncio.CancelledError:
            if self._audited(call):
                # The write may have reached the provider: record that we do not know.
                await asyncio.shield(self._record(call, None, "cancelled", None))
            raise
        except MosaicError as exc:
            if self._audited(call):
                await self._record(call, None, exc.code, exc)
            raise
        except Exception:
            if self._audited(call):
                await self._record(call, None, "internal_error", None)
            raise
        if not op.is_read or "residency" in call.ctx.meta:
            await self._record(call, result, "ok", None)
        return result

    @staticmethod
    def _audited(call: Call) -> bool:
        return not call.op.is_read or "residency" in call.ctx.meta

    async def _record(self, call: Call, result: BaseModel | None, outcome: str,
                      exc: MosaicError | None) -> None:
        ctx = call.ctx
        principal = ctx.principal
        kind: Kind = "residency" if "residency" in ctx.meta else "operation"
        details: dict[str, Any] = {"effect": call.op.effect.value, "roles": list(principal.roles)}
        if isinstance(principal, Identity):
            details["auth"] = principal.method
            if principal.key_id:
                details["key_id"] = principal.key_id
        if "residency" in ctx.meta:
            details["residency"] = ctx.meta["residency"]
        if ctx.meta.get("failovers"):
            details["failovers"] = [h.get("from") for h in ctx.meta["failovers"]]
        if exc is not None:
            details["error"] = exc.message[:300]
        record = AuditRecord(tenant=ctx.tenant, actor=principal.id, kind=kind, action=call.op.qualified_name,
                             outcome=outcome, resource=_resource(call, result),
                             provider=ctx.meta.get("provider") or (call.plugin.id if call.plugin else None),
                             request_id=ctx.trace_id, details=details)
        try:
            appended = await self.audit.append(record)
        except AuditUnavailable as failure:
            log.critical("audit entry for %s (request %s) could not be written: %s",
                         call.op.qualified_name, ctx.trace_id, failure.message)
            raise AuditUnavailable(
                f"{call.op.qualified_name} finished ({outcome}) but its audit entry could not be written; "
                f"quote request id {ctx.trace_id}", details={"request_id": ctx.trace_id, "outcome": outcome,
                                                              "applied": outcome == "ok"}) from None
        ctx.meta["audit"] = {"seq": appended.seq, "spooled": appended.spooled}


def build_security_layers(tenant: str, *, authorizer: Authorizer, audit: AuditLog,
                          quota: Layer | None = None, usage: Layer | None = None) -> list[Layer]:
    """The front security layers of one tenant's gateway, in order.

    They go right after ``observe`` and before the cache/route/resilience layers:
    ``observe → [tenant guard, audit, authorize, quota, usage] → cache → route → ...``.
    ``quota`` and ``usage`` are :class:`mosaic.tenancy.layers.QuotaLayer` and
    :class:`mosaic.tenancy.layers.UsageLayer` instances (omitted when None). The residency guard
    and the provider budget go elsewhere (after route / after failover): see
    :func:`mosaic.tenancy.registry.install_layers`, which places all of them.
    """
    layers: list[Layer] = [TenantGuard(tenant), AuditLayer(audit), AuthorizeLayer(authorizer)]
    layers.extend(x for x in (quota, usage) if x is not None)
    return layers


__all__ = ["AuditLayer", "AuthorizeLayer", "TenantGuard", "build_security_layers"]

