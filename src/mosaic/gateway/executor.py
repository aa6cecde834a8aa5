"""What the interfaces call: one Gateway, or the per-tenant gateway registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from mosaic.catalog.base import Operation
from mosaic.gateway.context import RequestContext


@runtime_checkable
class Executor(Protocol):
    async def execute(self, op: Operation | str, params: Mapping[str, Any] | BaseModel | None = None,
                      ctx: RequestContext | None = None) -> BaseModel: ...
