"""Gateway layers: ``RouteLayer`` picks the candidates, ``FailoverLayer`` walks them.

Failover rules (the request's effect decides, from the catalog):

* reads and writes the catalog marks idempotent move to the next candidate on
  ``ProviderUnavailable``, ``Timeout``, a 5xx-class provider error, ``RateLimited``, or
  an unexpected exception inside the provider;
* a non-idempotent write moves only when the failure proves the request never reached
  the provider (``ProviderUnavailable(sent=False)``: connection refused, DNS, TLS before
  send) or the provider does not implement the operation at all;
* caller errors (``NotFound``, ``Conflict``, ``InvalidRequest``, auth) never move — except
  ``NotFound`` on a read when ``routing.failover.onNotFound`` is set (migrations: the
  object is looked for on the next candidate).

Every hop is recorded in ``ctx.meta["failovers"]`` and counted in
``mosaic_routing_failovers_total``.
"""

from __future__ import annotations

import time

from prometheus_client import Counter
from pydantic import BaseModel

from mosaic.catalog.base import Operation
from mosaic.errors import (
    MosaicError,
    NotFound,
    OperationNotSupported,
    PluginError,
    ProviderUnavailable,
    RateLimited,
)
from mosaic.gateway.layers import REGISTRY, SelectLayer
from mosaic.gateway.pipeline import Call, Next
from mosaic.routing.engine import RoutingEngine

FAILOVERS = Counter("mosaic_routing_failovers", "Calls moved to another provider after a failure.",
                    ["operation", "from_provider", "to_provider", "reason"], registry=REGISTRY)
DECISIONS = Counter("mosaic_routing_decisions", "Routing decisions, by outcome.",
                    ["service", "outcome"], registry=REGISTRY)


def failover_reason(op: Operation, exc: BaseException, *, on_not_found: bool = False) -> str | None:
    """Why the call may move to the next candidate, or None if it must not."""
    code = getattr(exc, "code", "internal_error")
    if isinstance(exc, NotFound):
        return code if on_not_found and op.is_read else None
    if isinstance(exc, OperationNotSupported):
        return code
    if isinstance(exc, ProviderUnavailable):
        if not exc.sent:
            return f"{code}_not_sent"
        return code if op.safe_to_repeat else None
    if isinstance(exc, RateLimited):
        return code if op.safe_to_repeat else None
    if isinstance(exc, MosaicError):
        # The base class and PluginError are the 5xx of a provider that broke.
        return code if type(exc) in (MosaicError, PluginError) and op.safe_to_repeat else None
    return "internal_error" if op.safe_to_repeat else None


class RouteLayer:
    """Rule-based candidates; the plain selector for explicit instances and unrouted services."""

    def __init__(self, engine: RoutingEngine, selector: SelectLayer) -> None:
        self.engine = engine
        self.selector = selector

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        ctx, op = call.ctx, call.op
        if ctx.plugin is not None or not self.engine.routes(op.service):
            return await self.selector(call, nxt)
        decision = self.engine.decide(ctx, op)
        ctx.meta["routing"] = decision.meta()
        plugins = self.engine.instances(decision.candidates)
        if not plugins:
            DECISIONS.labels(op.service, "unavailable").inc()
            raise self.engine.unavailable(decision, op)
        DECISIONS.labels(op.service, "fallback" if decision.fallback else "rule").inc()
        call.candidates = plugins
        return await nxt(call)


class FailoverLayer:
    def __init__(self, engine: RoutingEngine) -> None:
        self.engine = engine
        self.on_not_found = engine.config.failover.on_not_found

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        ctx, op = call.ctx, call.op
        candidates = list(call.candidates)
        if len(candidates) <= 1:  # nothing to move to: just observe the outcome
            return await self._single(call, nxt)
        hops: list[dict[str, str | None]] = []
        for i, plugin in enumerate(candidates):
            call.plugin = plugin
            start = time.perf_counter()
            try:
                result = await nxt(call)
            except Exception as exc:
                ms = (time.perf_counter() - start) * 1000
                self.engine.observe_failure(plugin.id, op, exc, ms)
                reason = failover_reason(op, exc, on_not_found=self.on_not_found)
                following = candidates[i + 1] if i + 1 < len(candidates) else None
                remaining = ctx.remaining()
                if reason is None or following is None or (remaining is not None and remaining <= 0):
                    self._annotate(exc, op, hops, reason, following)
                    raise
                hop: dict[str, str | None] = {"from": plugin.id, "to": following.id, "reason": reason,
                                              "error": getattr(exc, "code", type(exc).__name__),
                                              "message": _short(exc)}
                hops.append(hop)
                ctx.meta["failovers"] = hops
                FAILOVERS.labels(op.qualified_name, plugin.id, following.id, reason).inc()
                continue
            self.engine.observe_success(plugin.id, op, (time.perf_counter() - start) * 1000)
            return result
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    async def _single(self, call: Call, nxt: Next) -> BaseModel:
        plugin = call.plugin or (call.candidates[0] if call.candidates else None)
        if plugin is None:
            return await nxt(call)
        call.plugin = plugin
        start = time.perf_counter()
        try:
            result = await nxt(call)
        except Exception as exc:
            self.engine.observe_failure(plugin.id, call.op, exc, (time.perf_counter() - start) * 1000)
            raise
        self.engine.observe_success(plugin.id, call.op, (time.perf_counter() - start) * 1000)
        return result

    @staticmethod
    def _annotate(exc: Exception, op: Operation, hops: list[dict[str, str | None]], reason: str | None,
                  following: object) -> None:
        if not isinstance(exc, MosaicError):
            return
        if hops:
            exc.details.setdefault("failovers", hops)
        if reason is None and following is not None and isinstance(exc, ProviderUnavailable):
            exc.details.setdefault(
                "failover", f"not attempted: {op.qualified_name} is not idempotent and the request "
                            "may have reached the provider")


def _short(exc: BaseException) -> str:
    text = exc.message if isinstance(exc, MosaicError) else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
