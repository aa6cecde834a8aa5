"""MCP over streamable HTTP at ``/mcp``, with the tool filters as per-request headers.

``X-MCP-Toolsets: git,docs``, ``X-MCP-Tools: git_get_repository,...``,
``X-MCP-Read-Only: true`` and ``X-MCP-Full-Results: true`` do over HTTP what the
``mosaic mcp`` flags do over stdio. They are parsed once per distinct value (cached)
and a bad value is refused with a 400 problem before the MCP layer sees the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from mosaic.errors import InvalidRequest
from mosaic.interfaces.mcp.server import MODE_KEY, McpInterface, Mode
from mosaic.interfaces.mcp.tools import ToolFilter, parse_bool
from mosaic.interfaces.rest.problems import send_problem

_HEADERS = {
    b"x-mcp-toolsets": 0,
    b"x-mcp-tools": 1,
    b"x-mcp-read-only": 2,
    b"x-mcp-full-results": 3,
}
_MAX_CACHED_MODES = 512


def loopback_security() -> TransportSecuritySettings:
    """DNS-rebinding protection for a server bound to loopback: only local Host/Origin."""
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )


class McpHttpApp:
    def __init__(self, iface: McpInterface, *, json_response: bool = True, stateless: bool = False,
                 security: TransportSecuritySettings | None = None) -> None:
        """``stateless``: no ``Mcp-Session-Id``, every request stands alone. Needed with several
        worker processes, where the next request of a session may reach another process."""
        self.iface = iface
        self.manager = StreamableHTTPSessionManager(
            app=iface.server, json_response=json_response, stateless=stateless,
            security_settings=security,
        )
        self._modes: dict[tuple[str | None, ...], Mode] = {}

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield

    def mode_for(self, values: tuple[str | None, ...]) -> Mode:
        mode = self._modes.get(values)
        if mode is None:
            toolsets, tools, read_only, full = values
            flt = ToolFilter.parse(toolsets, tools, read_only, self.iface.tools)
            mode = Mode(filter=flt, compact=not parse_bool(full, "X-MCP-Full-Results"))
            if len(self._modes) >= _MAX_CACHED_MODES:
                self._modes.clear()
            self._modes[values] = mode
        return mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        values: list[str | None] = [None, None, None, None]
        for name, value in scope["headers"]:
            i = _HEADERS.get(name)
            if i is not None:
                values[i] = value.decode("latin-1")
        try:
            scope[MODE_KEY] = self.mode_for(tuple(values))
        except InvalidRequest as exc:
            await send_problem(send, 400, exc.code, exc.message, instance="/mcp")
            return
        await self.manager.handle_request(scope, receive, send)
