"""The request pipeline: small layers with one signature, composed in one place.

A layer is ``async def layer(call, next) -> result``; like ASGI middleware, each layer
may act before and after ``next`` or answer without calling it (a cache hit).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel

from mosaic.catalog.base import Operation
from mosaic.gateway.context import RequestContext
from mosaic.plugins.contract import ProviderPlugin


@dataclass(slots=True)
class Call:
    ctx: RequestContext
    op: Operation
    params: BaseModel
    # Ordered provider instances that may serve the call; the first is tried first.
    candidates: list[ProviderPlugin] = field(default_factory=list)
    # The instance actually serving the current attempt.
    plugin: ProviderPlugin | None = None


Next = Callable[[Call], Awaitable[BaseModel]]
Layer = Callable[[Call, Next], Awaitable[BaseModel]]


def compose(layers: Sequence[Layer], terminal: Next) -> Next:
    """Bind the layers around ``terminal`` once, so a request pays no lookup per layer."""
    handler = terminal
    for layer in reversed(layers):
        handler = _bind(layer, handler)
    return handler


def _bind(layer: Layer, nxt: Next) -> Next:
    async def bound(call: Call) -> BaseModel:
        return await layer(call, nxt)

    bound.__qualname__ = getattr(layer, "__qualname__", "layer")
    return bound
