"""MCP interface: one tool per catalog operation, over stdio and streamable HTTP."""

from mosaic.interfaces.mcp.server import McpInterface, Mode
from mosaic.interfaces.mcp.tools import ToolFilter, ToolSpec, build_tools

__all__ = ["McpInterface", "Mode", "ToolFilter", "ToolSpec", "build_tools"]
