"""MCP over stdio (``mosaic mcp``): one client, the filters given as flags."""

from __future__ import annotations

from mcp.server.stdio import stdio_server

from mosaic.api import Orchestrator
from mosaic.interfaces.mcp.server import McpInterface, Mode


async def serve_stdio(orch: Orchestrator, mode: Mode) -> None:
    """Start the providers, serve one MCP session on stdin/stdout, stop the providers."""
    async with orch:
        iface = McpInterface(orch.gateway, mode=mode)
        async with stdio_server() as (read_stream, write_stream):
            await iface.server.run(read_stream, write_stream, iface.server.create_initialization_options())
