"""The core pipeline layers: observe (metrics, error hygiene), select, invoke."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic import BaseModel

from mosaic.errors import InvalidRequest, MosaicError, ProviderUnavailable, Timeout
from mosaic.gateway.pipeline import Call, Next
from mosaic.plugins.manager import PluginManager

log = logging.getLogger("mosaic.gateway")

REGISTRY = CollectorRegistry(auto_describe=True)
CALLS = Counter("mosaic_operation_calls", "Operations executed, by outcome.",
                ["operation", "provider", "outcome"], registry=REGISTRY)
DURATION = Histogram("mosaic_operation_duration_seconds", "Time spent in Gateway.execute.",
                     ["operation", "provider"], registry=REGISTRY,
                     buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


async def observe(call: Call, nxt: Next) -> BaseModel:
    """Count and time every call; turn any unexpected exception into a typed error."""
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
    except Exception as exc:
        outcome = "internal_error"
        error_id = uuid.uuid4().hex[:12]
        # The traceback goes to the log only; the client gets a reference to find it.
        log.exception("internal error %s in %s", error_id, call.op.qualified_name)
        raise MosaicError(f"internal error in {call.op.qualified_name} (reference {error_id})",
                          details={"error_id": error_id}) from exc
    finally:
        provider = call.plugin.id if call.plugin is not None else "-"
        CALLS.labels(call.op.qualified_name, provider, outcome).inc()
        DURATION.labels(call.op.qualified_name, provider).observe(time.perf_counter() - start)


class SelectLayer:
    """Candidates: the explicitly requested instance, else the service's default instance.

    The routing engine replaces this layer with rule-based selection when rules exist.
    """

    def __init__(self, manager: PluginManager, defaults: dict[str, str]) -> None:
        self.manager = manager
        self.defaults = defaults

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        ctx = call.ctx
        if ctx.plugin is not None:
            plugin = self.manager.get(ctx.plugin)
            if plugin.service != call.op.service:
                raise InvalidRequest(f"plugin {plugin.id!r} serves {plugin.service}, "
                                     f"not {call.op.service}")
            call.candidates = [plugin]
        else:
            default = self.defaults.get(call.op.service)
            if default is not None:
                # Raises a clear error when the configured default failed to start.
                call.candidates = [self.manager.get(default)]
            else:
                call.candidates = list(self.manager.for_service(call.op.service)[:1])
        if not call.candidates:
            raise ProviderUnavailable(f"no provider is configured for the {call.op.service} service")
        return await nxt(call)


async def invoke(call: Call) -> BaseModel:
    """Terminal handler: call the chosen (or first) candidate, within the deadline."""
    plugin = call.plugin or call.candidates[0]
    call.plugin = plugin
    call.ctx.meta["provider"] = plugin.id
    plugin.inflight += 1
    try:
        remaining = call.ctx.remaining()
        if remaining is None:
            return await plugin.call(call.op, call.params, call.ctx)
        if remaining <= 0:
            raise Timeout(f"deadline passed before {call.op.qualified_name} reached {plugin.id}",
                          sent=False)
        try:
            return await asyncio.wait_for(plugin.call(call.op, call.params, call.ctx), remaining)
        except TimeoutError:
            raise Timeout(f"{call.op.qualified_name} on {plugin.id} exceeded the deadline") from None
    finally:
        plugin.inflight -= 1
