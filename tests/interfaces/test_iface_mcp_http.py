"""MCP over streamable HTTP against a real `mosaic serve` (uvicorn) with the official SDK client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from tests.interfaces.conftest import running
from tests.interfaces.iface_support import LiveServer, mcp_git_flow

from mosaic.api import Orchestrator
from mosaic.catalog.registry import CATALOG
from mosaic.interfaces.http_app import create_app


@asynccontextmanager
async def connect(server: LiveServer, mode: str = "legacy", **headers: str) -> AsyncIterator[Client]:
    async with create_mcp_http_client(headers=headers or None) as http:
        transport = streamable_http_client(server.url + "/mcp", http_client=http)
        async with Client(transport, mode=mode, read_timeout_seconds=60) as client:
            yield client


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_http_tools_list_and_full_git_flow(live_server: LiveServer, mode: str) -> None:
    async with connect(live_server, mode) as client:
        tools = (await client.list_tools()).tools
        assert {t.name for t in tools} == {op.tool_name for op in CATALOG.values()}
        for t in tools:
            assert t.annotations is not None and t.annotations.read_only_hint is not None
        await mcp_git_flow(client, f"h{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_filters_as_request_headers(live_server: LiveServer, mode: str) -> None:
    headers = {"X-MCP-Toolsets": "git", "X-MCP-Read-Only": "true", "X-MCP-Tools": "docs_get_space"}
    async with connect(live_server, mode, **headers) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert names == {op.tool_name for op in CATALOG.values()
                         if op.is_read and (op.service == "git" or op.tool_name == "docs_get_space")}
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("git_create_repository", {"name": "x"})
    async with connect(live_server, mode, **{"X-MCP-Full-Results": "true"}) as client:
        r = await client.call_tool("git_create_repository", {"name": "full", "owner": f"f{uuid.uuid4().hex[:8]}"})
        assert not r.is_error and isinstance(r.structured_content, dict) and "raw" in r.structured_content


async def test_bad_filter_header_is_a_400_problem(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        r = await http.post("/mcp", headers={"X-MCP-Toolsets": "nope", "Accept": "application/json"},
                            json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/problem+json"
    assert "unknown toolset" in r.json()["detail"]


async def test_stateless_mode_for_several_workers(tmp_path: Path) -> None:
    """With several workers MCP runs without sessions: every POST stands on its own."""
    app = create_app(Orchestrator.embedded(tmp_path / "data"), mcp_stateless=True)
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                               base_url="http://127.0.0.1") as http:
        init = await http.post("/mcp", headers=headers, json={
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}})
        assert init.status_code == 200 and "mcp-session-id" not in init.headers
        call = await http.post("/mcp", headers=headers, json={
            "jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "git_create_repository", "arguments": {"name": "s", "owner": "acme"}}})
        assert call.status_code == 200, call.text
        result = call.json()["result"]
        assert result["isError"] is False and result["structuredContent"]["full_name"] == "acme/s"
