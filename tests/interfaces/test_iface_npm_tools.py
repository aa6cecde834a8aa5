"""Node clients against a real server: the MCP Inspector CLI and the official conformance suite.

The tools are pinned in package.json and installed by scripts/npm-tools.sh (Node 22 comes with
them as the `node` package). Without them these tests fail: they are not optional.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
from tests.interfaces.iface_support import CONFORMANCE, INSPECTOR, NODE, LiveServer, require_node_tools


def _node(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a Node 22 script with a throw-away HOME (the inspector keeps a catalog file there)."""
    require_node_tools()
    return subprocess.run([str(NODE), *args], capture_output=True, text=True, timeout=timeout, cwd=str(home),
                          env={"PATH": f"{NODE.parent}:/usr/bin:/bin", "HOME": str(home),
                               "NO_COLOR": "1", "CI": "1"})


def test_inspector_cli_lists_and_calls_tools(live_server: LiveServer, tmp_path: Path) -> None:
    url = live_server.url + "/mcp"
    listed = _node(str(INSPECTOR), "--cli", url, "--transport", "http",
                   "--method", "tools/list", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    tools = json.loads(listed.stdout)["tools"]
    names = {t["name"] for t in tools}
    assert {"git_create_repository", "git_get_repository", "git_merge_pull_request"} <= names

    owner = f"i{uuid.uuid4().hex[:8]}"
    called = _node(str(INSPECTOR), "--cli", url, "--transport", "http",
                   "--method", "tools/call", "--tool-name", "git_create_repository",
                   "--tool-arg", "name=viainspector", "--tool-arg", f"owner={owner}", home=tmp_path)
    assert called.returncode == 0, called.stderr
    result = json.loads(called.stdout)
    assert result.get("isError") in (None, False)
    assert result["structuredContent"]["full_name"] == f"{owner}/viainspector"

    filtered = _node(str(INSPECTOR), "--cli", url, "--transport", "http",
                     "--header", "X-MCP-Toolsets: git", "--header", "X-MCP-Read-Only: true",
                     "--method", "tools/list", home=tmp_path)
    assert filtered.returncode == 0, filtered.stderr
    shown = json.loads(filtered.stdout)["tools"]
    assert shown and all(t["name"].startswith("git_") and t["annotations"]["readOnlyHint"] for t in shown)


@pytest.mark.parametrize("scenario", ["server-initialize", "tools-list", "ping", "dns-rebinding-protection"])
def test_conformance_suite(live_server: LiveServer, scenario: str, tmp_path: Path) -> None:
    run = _node(str(CONFORMANCE), "server", "--url", live_server.url + "/mcp", "--scenario", scenario,
                "--output-dir", str(tmp_path / "results"), home=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "0 failed" in out and "Passed:" in out, out
