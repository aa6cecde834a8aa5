"""The MCP server: catalog operations as tools, over stdio and streamable HTTP.

SDK: the official ``mcp`` Python SDK (v2), its low-level ``mcp.server.Server``. Why:
it is the reference implementation maintained with the specification (it speaks both
the initialize-handshake protocol versions and the 2026 per-request one), it ships
the stdio transport and the streamable-HTTP session manager with DNS-rebinding
protection, and it is already a dependency. The low-level server is used rather than
its decorator API (``MCPServer``) or the separate ``fastmcp`` package because our
tools are not Python functions: their names, input schemas (the params models'
JSON Schema), output schemas and annotations all come from the catalog, and
``tools/list`` must change per request with the tool filters, which the low-level
``on_list_tools``/``on_call_tool`` handlers allow directly.
"""

from __future__ import annotations

import difflib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
import orjson
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

import mosaic
from mosaic.catalog.base import Operation
from mosaic.catalog.registry import CATALOG
from mosaic.errors import MosaicError
from mosaic.gateway.context import RequestContext
from mosaic.gateway.executor import Executor
from mosaic.interfaces.auth import context_for, principal_of
from mosaic.interfaces.mcp.tools import ToolFilter, ToolSpec, build_tools, compact_dump, full_dump
from mosaic.interfaces.visibility import MAX_VIEWS, CallerViews, ViewKey

log = logging.getLogger("mosaic.mcp")

MODE_KEY = "mosaic.mcp_mode"

INSTRUCTIONS = (
    "MosAIc is one interface over git forges, CI/CD, docs and project-management services. "
    "Tools are named service_operation (git_, cicd_, docs_, project_). Repositories are "
    "'owner/name'. List tools return {items, next_cursor}: pass next_cursor back as `cursor`. "
    "Results omit the provider's raw payload and empty optional fields unless full results "
    "were requested. Errors come back as tool results with isError and a stable `code`."
)


@dataclass(frozen=True, slots=True)
class Mode:
    """What one client sees: which tools, and compact or full results."""

    filter: ToolFilter = field(default_factory=ToolFilter)
    compact: bool = True


class McpInterface:
    """Holds the tool specs (built once) and the low-level server bound to a Gateway."""

    def __init__(self, gateway: Executor, operations: Iterable[Operation] | None = None,
                 mode: Mode | None = None, views: CallerViews | None = None) -> None:
        self.gateway = gateway
        # With RBAC (the tenancy store), a caller's tool list shows only what it may call.
        self.views = views if views is not None and views.filtered else None
        self._role_lists: dict[tuple[Mode, ViewKey], types.ListToolsResult] = {}
        self.tools: dict[str, ToolSpec] = build_tools(CATALOG.values() if operations is None else operations)
        self.default_mode = mode or Mode()
        self._lists: dict[Mode, types.ListToolsResult] = {}
        self.server: Server[Any] = Server(
            "mosaic", version=mosaic.__version__, title="MosAIc",
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools, on_call_tool=self._call_tool,
            # Lets the 2026 HTTP transport check Mcp-Param headers without listing every tool.
            get_tool_input_schema=self._input_schema,
        )
        # The SDK's per-message OpenTelemetry middleware costs ~10% of a tool call and is a
        # no-op without an exporter; MosAIc's own metrics are recorded by the gateway.
        self.server.middleware = [m for m in self.server.middleware
                                  if type(m).__name__ != "OpenTelemetryMiddleware"]

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        spec = self.tools.get(name)
        return spec.input_schema if spec is not None else None

    def mode_of(self, ctx: ServerRequestContext[Any, Any]) -> Mode:
        request = ctx.request
        if request is not None:
            mode = request.scope.get(MODE_KEY)
            if isinstance(mode, Mode):
                return mode
        return self.default_mode

    def visible(self, mode: Mode) -> list[ToolSpec]:
        return [t for t in self.tools.values() if mode.filter.allows(t)]

    def list_result(self, mode: Mode) -> types.ListToolsResult:
        cached = self._lists.get(mode)
        if cached is None:
            cached = types.ListToolsResult.model_validate(
                {"tools": [t.definition(compact=mode.compact) for t in self.visible(mode)]})
            self._lists[mode] = cached
        return cached

    async def _list_tools(self, ctx: ServerRequestContext[Any, Any],
                          params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        mode = self.mode_of(ctx)
        result = self.list_result(mode)
        views = self.views
        if views is None or ctx.request is None:
            return result
        principal = principal_of(ctx.request.scope)
        key = (mode, views.key(principal))
        cached = self._role_lists.get(key)
        if cached is None:
            allowed = {op.qualified_name for op in views.for_principal(principal)}
            cached = types.ListToolsResult(
                tools=[t for t in result.tools if self.tools[t.name].op.qualified_name in allowed])
            if len(self._role_lists) >= MAX_VIEWS:
                self._role_lists.clear()
            self._role_lists[key] = cached
        return cached

    async def _call_tool(self, ctx: ServerRequestContext[Any, Any],
                         params: types.CallToolRequestParams) -> Any:
        mode = self.mode_of(ctx)
        spec = self.tools.get(params.name)
        if spec is None or not mode.filter.allows(spec):
            visible = [t.name for t in self.visible(mode)]
            close = difflib.get_close_matches(params.name, visible, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {params.name}{hint}")
        request = ctx.request
        rctx = context_for(principal_of(request.scope)) if request is not None else RequestContext()
        if request is not None:
            key = request.headers.get("idempotency-key")
            if key and not spec.op.is_read:
                rctx.idempotency_key = key[:255]
        try:
            result = await self.gateway.execute(spec.op, params.arguments or {}, rctx)
        except MosaicError as exc:
            return _error_result(exc.to_dict())
        except Exception:
            ref = uuid.uuid4().hex[:12]
            log.exception("internal error %s in tool %s", ref, spec.name)
            return _error_result({"code": "internal_error", "message": f"internal error (reference {ref})"})
        data = compact_dump(result) if mode.compact else full_dump(result)
        return {
            "content": [{"type": "text", "text": orjson.dumps(data).decode()}],
            "structuredContent": data,
            "isError": False,
            "resultType": "complete",
        }


def _error_result(error: dict[str, Any]) -> dict[str, Any]:
    text = orjson.dumps({"error": error}, default=str).decode()
    return {"content": [{"type": "text", "text": text}], "isError": True, "resultType": "complete"}
