"""Gateway.execute: the one place where the request pipeline is composed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from mosaic.catalog.base import Operation
from mosaic.catalog.registry import CATALOG
from mosaic.config.schema import MosaicConfig, Settings
from mosaic.errors import InvalidRequest
from mosaic.gateway.context import RequestContext
from mosaic.gateway.layers import SelectLayer, invoke, observe
from mosaic.gateway.pipeline import Call, Layer, Next, compose
from mosaic.gateway.resource import extract_resource
from mosaic.plugins.manager import PluginManager
from mosaic.routing.engine import RoutingEngine
from mosaic.routing.layers import FailoverLayer, RouteLayer

if TYPE_CHECKING:
    from mosaic.resilience.stack import Resilience


def params_error(op: Operation, exc: ValidationError) -> InvalidRequest:
    """Name each bad field and what was expected, without echoing secrets or huge values."""
    fields = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(params)"
        msg = "required" if e["type"] == "missing" else (
            "unknown parameter" if e["type"] == "extra_forbidden" else e["msg"])
        fields.append({"field": loc, "problem": msg})
    text = "; ".join(f"{f['field']}: {f['problem']}" for f in fields)
    return InvalidRequest(f"invalid parameters for {op.qualified_name}: {text}",
                          details={"operation": op.qualified_name, "fields": fields})


class Gateway:
    def __init__(self, config: MosaicConfig, manager: PluginManager,
                 extra_layers: Sequence[Layer] = (), data_dir: Path | None = None,
                 resilience: Resilience | None = None) -> None:
        """``resilience``: the shared-state layers to use (a tenant's gateway passes one on its
        own Redis prefix and journal); by default one is built from ``config`` and the environment."""
        self.config = config
        self.manager = manager
        defaults: dict[str, str] = {p.type: p.id for p in config.orchestration.plugins
                                    if p.default and p.enabled}
        self.selector = SelectLayer(manager, defaults)
        routing = config.orchestration.routing
        # Rules are compiled here, once: a bad rule is a ConfigError before anything starts.
        # The data dir only matters for migration phases (active phase + switch log).
        self.routing = RoutingEngine(
            routing, {p.id: p.type for p in config.orchestration.plugins}, defaults=defaults,
            instances=lambda: manager.plugins,
            state_dir=data_dir or (Settings().data_dir if routing.phases else None))
        # Route picks the candidates (the plain selector for an explicit instance or a
        # service without rules); failover walks them.
        self.route = RouteLayer(self.routing, self.selector)
        self.failover = FailoverLayer(self.routing)
        # Order matters and is fixed here, once: observe wraps everything so that every
        # error is typed and counted; later issues slot auth, quota, cache and per-provider
        # resilience layers in between.
        # Cache before routing (a hit costs no routing); per-provider resilience after failover,
        # so that it acts on the candidate being tried (mosaic.resilience.layers explains its order).
        if resilience is None:
            from mosaic.resilience.stack import Resilience as _Resilience

            resilience = _Resilience(config, manager)
        self.resilience = resilience
        self.layers: list[Layer] = [observe, *extra_layers, *self.resilience.front_layers, self.route,
                                    self.failover, *self.resilience.provider_layers]
        self._handler: Next = compose(self.layers, invoke)

    def rebuild(self, layers: Sequence[Layer]) -> None:
        self.layers = list(layers)
        self._handler = compose(self.layers, invoke)

    async def start(self) -> None:
        await self.resilience.start()
        await self.manager.load(self.config.orchestration.plugins)
        self.resilience.prepare(self.manager.plugins)
        await self.routing.start()

    async def stop(self) -> None:
        await self.routing.stop()
        await self.manager.stop_all()
        await self.resilience.stop()

    def prepare(self, op: Operation | str, params: Mapping[str, Any] | BaseModel | None,
                ctx: RequestContext | None = None) -> Call:
        operation = op if isinstance(op, Operation) else CATALOG.resolve(op)
        if isinstance(params, operation.params):
            model = params
        else:
            raw = params.model_dump(exclude_unset=True) if isinstance(params, BaseModel) else (params or {})
            try:
                model = operation.params.model_validate(raw)
            except ValidationError as exc:
                raise params_error(operation, exc) from None
        context = ctx or RequestContext()
        context.operation = operation.qualified_name
        context.resource = extract_resource(operation, model)
        return Call(context, operation, model)

    async def execute(self, op: Operation | str, params: Mapping[str, Any] | BaseModel | None = None,
                      ctx: RequestContext | None = None) -> BaseModel:
        """Validate, route and run one catalog operation; raise only typed MosaicErrors."""
        return await self._handler(self.prepare(op, params, ctx))

    async def run(self, call: Call) -> BaseModel:
        """Run a call built by :meth:`prepare`."""
        return await self._handler(call)
