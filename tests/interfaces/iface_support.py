"""Helpers for the interface tests: a real `mosaic serve` process, the Node tools, free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
NODE = ROOT / "node_modules" / ".bin" / "node"
INSPECTOR = ROOT / "node_modules" / ".bin" / "mcp-inspector"
CONFORMANCE = ROOT / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIC_")}
    # The test helpers (slow plugin) import from this folder inside the server process.
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


@dataclass
class LiveServer:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def banner(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_server(tmp: Path, *args: str, env: dict[str, str] | None = None, ready_path: str = "/healthz",
                 timeout: float = 60) -> LiveServer:
    port = free_port()
    log = tmp / f"server-{port}.log"
    cmd = [sys.executable, "-m", "mosaic.interfaces.cli.serve", "serve", "--port", str(port),
           "--log-level", "warning", *args]
    if "--config" not in args and "--data-dir" not in args:
        cmd += ["--data-dir", str(tmp / "data")]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=env or server_env(), stdout=fh, stderr=subprocess.STDOUT,
                                cwd=str(tmp))
    server = LiveServer(proc, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mosaic serve exited with {proc.returncode}:\n{server.banner()}")
        try:
            with urllib.request.urlopen(server.url + ready_path, timeout=1) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"mosaic serve did not answer {ready_path} within {timeout}s:\n{server.banner()}")


def require_node_tools() -> None:
    """The Node tools are installed by scripts/npm-tools.sh (CI runs it): without them, fail."""
    missing = [str(p.relative_to(ROOT)) for p in (NODE, INSPECTOR, CONFORMANCE) if not p.exists()]
    if missing:
        raise AssertionError(f"missing {', '.join(missing)}: run scripts/npm-tools.sh first")


async def mcp_git_flow(client: object, owner: str) -> dict[str, object]:
    """create repository → branch → put file → pull request → merge, all through tools/call.

    ``client`` is an ``mcp.Client``; every step's structured output is checked.
    """
    from mcp import Client

    assert isinstance(client, Client)

    async def call(tool: str, **args: object) -> dict[str, object]:
        result = await client.call_tool(tool, args)
        assert not result.is_error, (tool, result.content)
        data = result.structured_content
        assert isinstance(data, dict), (tool, result)
        assert "raw" not in data  # compact results by default
        return data

    repo = await call("git_create_repository", name="flow", owner=owner, description="MCP flow")
    full = f"{owner}/flow"
    assert repo["full_name"] == full
    branch = await call("git_create_branch", repo=full, branch="feature")
    assert branch["name"] == "feature"
    put = await call("git_put_file", repo=full, path="docs/hello.md", content="hello\n",
                     message="add hello", branch="feature")
    assert put["path"] == "docs/hello.md"
    pr = await call("git_create_pull_request", repo=full, title="Add hello", head="feature", base="main")
    assert pr["state"] == "open"
    merged = await call("git_merge_pull_request", repo=full, number=pr["number"])
    assert merged["merged"] is True
    got = await call("git_get_file", repo=full, path="docs/hello.md", ref="main")
    assert got["path"] == "docs/hello.md"
    after = await call("git_get_pull_request", repo=full, number=pr["number"])
    assert after["state"] == "merged"
    return {"repo": repo, "pr": pr, "merge": merged}
