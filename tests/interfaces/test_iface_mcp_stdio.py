"""MCP over stdio with the official SDK client, spawning the real `mcp` command."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError
from tests.interfaces.iface_support import ROOT, mcp_git_flow, server_env

from mosaic.catalog.registry import CATALOG


def params(tmp_path: Path, *flags: str, console_script: bool = False) -> StdioServerParameters:
    """``python -m mosaic.interfaces.mcp``, or the installed ``mosaic mcp`` console script."""
    data = ["--data-dir", str(tmp_path / "data"), *flags]
    if console_script:
        script = Path(sys.executable).parent / "mosaic"
        assert script.exists(), f"{script} is missing: install the package (scripts/bootstrap)"
        return StdioServerParameters(command=str(script), args=["mcp", *data], env=server_env(), cwd=str(ROOT))
    return StdioServerParameters(command=sys.executable, args=["-m", "mosaic.interfaces.mcp", *data],
                                 env=server_env(), cwd=str(ROOT))


async def test_stdio_tools_list_and_full_git_flow(tmp_path: Path) -> None:
    async with Client(params(tmp_path), mode="legacy", read_timeout_seconds=60) as client:
        assert client.server_info is not None and client.server_info.name == "mosaic"
        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        assert names == {op.tool_name for op in CATALOG.values()}
        get_repo = next(t for t in tools.tools if t.name == "git_get_repository")
        assert get_repo.annotations is not None and get_repo.annotations.read_only_hint is True
        assert get_repo.output_schema is not None and "raw" not in get_repo.output_schema["properties"]
        await mcp_git_flow(client, f"o{uuid.uuid4().hex[:8]}")

        # Errors come back as tool results with a stable code, unknown tools as protocol errors.
        missing = await client.call_tool("git_get_repository", {"repo": "nobody/nothing"})
        assert missing.is_error and '"code":"not_found"' in missing.content[0].text  # type: ignore[union-attr]
        invalid = await client.call_tool("git_get_repository", {"repo": "not a repo"})
        assert invalid.is_error and '"code":"invalid_request"' in invalid.content[0].text  # type: ignore[union-attr]
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("git_no_such_tool", {})


async def test_stdio_filters_from_flags(tmp_path: Path) -> None:
    flags = ("--toolsets", "git", "--read-only", "--tools", "docs_search_documents")
    async with Client(params(tmp_path, *flags, console_script=True), mode="legacy",
                      read_timeout_seconds=60) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        expected = {op.tool_name for op in CATALOG.values()
                    if op.is_read and (op.service == "git" or op.tool_name == "docs_search_documents")}
        assert names == expected
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("git_create_repository", {"name": "nope"})


async def test_stdio_full_results_opt_out(tmp_path: Path) -> None:
    async with Client(params(tmp_path, "--full-results"), mode="legacy", read_timeout_seconds=60) as client:
        r = await client.call_tool("git_create_repository", {"name": "full", "owner": "acme"})
        assert not r.is_error and isinstance(r.structured_content, dict)
        assert "raw" in r.structured_content and "description" in r.structured_content
