"""MCP benchmark: tools/call per second over streamable HTTP (`mosaic serve`, one worker) vs in-process.

    .venv/bin/python benchmarks/mcp.py [--duration 5]

The HTTP client speaks the protocol directly (initialize, then JSON-RPC POSTs on the
session), so the figure is the server's cost, not an SDK client's. In-process figures:
Gateway.execute of the same operation, and the same tools/call through the official
SDK client connected in-memory to the server object.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

# This file is named like the `mcp` package: keep its folder off the import path and load
# the shared harness by file location instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
_spec = importlib.util.spec_from_file_location("_mosaic_bench_harness", _HERE / "_harness.py")
assert _spec is not None and _spec.loader is not None
_harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_harness)
free_port, load, pct, cpu_seconds = _harness.free_port, _harness.load, _harness.pct, _harness.cpu_seconds
start_server, stop_server, use_uvloop = _harness.start_server, _harness.stop_server, _harness.use_uvloop

from mosaic.api import Orchestrator  # noqa: E402
from mosaic.catalog.registry import CATALOG  # noqa: E402
from mosaic.gateway.context import RequestContext  # noqa: E402

PROTOCOL = "2025-11-25"
ARGS = {"repo": "bench/api"}


async def inprocess(data_dir: Path, duration: float) -> dict[str, float]:
    from mcp import Client

    from mosaic.interfaces.mcp import McpInterface

    op = CATALOG["git.get_repository"]
    out: dict[str, float] = {}
    async with Orchestrator.embedded(data_dir) as orch:
        await orch.call("git.create_repository", name="api", owner="bench")
        n = 0
        stop_at = time.perf_counter() + duration
        t0 = time.perf_counter()
        while time.perf_counter() < stop_at:
            await orch.gateway.execute(op, ARGS, RequestContext())
            n += 1
        out["inproc_gateway_calls_per_s"] = round(n / (time.perf_counter() - t0), 1)

        iface = McpInterface(orch.gateway)
        async with Client(iface.server, mode="legacy") as client:
            n = 0
            stop_at = time.perf_counter() + duration
            t0 = time.perf_counter()
            while time.perf_counter() < stop_at:
                r = await client.call_tool("git_get_repository", ARGS)
                if r.is_error:
                    raise RuntimeError(str(r.content))
                n += 1
            out["inproc_mcp_calls_per_s"] = round(n / (time.perf_counter() - t0), 1)
    return out


def _post(port: int, body: bytes, session: str | None) -> bytes:
    headers = [
        "POST /mcp HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json",
        "Accept: application/json, text/event-stream", f"MCP-Protocol-Version: {PROTOCOL}",
        f"Content-Length: {len(body)}",
    ]
    if session:
        headers.append(f"Mcp-Session-Id: {session}")
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def _open_session(port: int) -> str:
    import urllib.request

    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
    hdrs = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", data=json.dumps(init).encode(),
                                 headers=hdrs, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        session = r.headers["mcp-session-id"]
        r.read()
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", data=json.dumps(note).encode(),
                                 headers={**hdrs, "mcp-session-id": session,
                                          "mcp-protocol-version": PROTOCOL}, method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "git_create_repository", "arguments": {"name": "api", "owner": "bench"}}}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", data=json.dumps(call).encode(),
                                 headers={**hdrs, "mcp-session-id": session,
                                          "mcp-protocol-version": PROTOCOL}, method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    return str(session)


def _check(status: int, body: bytes) -> None:
    if status != 200 or b'"isError":false' not in body:
        raise RuntimeError(f"tools/call failed ({status}): {body[:300]!r}")


async def over_http(port: int, duration: float, pid: int | None = None) -> dict[str, float]:
    session = await asyncio.to_thread(_open_session, port)

    def request(i: int) -> bytes:
        body = json.dumps({"jsonrpc": "2.0", "id": i + 10, "method": "tools/call",
                           "params": {"name": "git_get_repository", "arguments": ARGS}}).encode()
        return _post(port, body, session)

    await load(port, request, concurrency=4, duration=1.0, check=_check)  # warm-up
    out: dict[str, float] = {}
    for c in (1, 16):
        cpu0 = cpu_seconds(pid) if pid else None
        n, elapsed, lat = await load(port, request, concurrency=c, duration=duration, check=_check)
        cpu1 = cpu_seconds(pid) if pid else None
        out[f"mcp_calls_per_s_c{c}"] = round(n / elapsed, 1)
        if cpu0 is not None and cpu1 is not None:
            out[f"server_cpu_us_per_call_c{c}"] = round((cpu1 - cpu0) / n * 1e6, 1)
        out[f"mcp_p50_ms_c{c}"] = round(pct(lat, 50) * 1000, 3)
        out[f"mcp_p99_ms_c{c}"] = round(pct(lat, 99) * 1000, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    args = ap.parse_args()
    use_uvloop()
    with tempfile.TemporaryDirectory() as tmp:
        inproc = asyncio.run(inprocess(Path(tmp) / "inproc", args.duration))
        port = free_port()
        proc = start_server(Path(tmp) / "server", port)
        try:
            http = asyncio.run(over_http(port, args.duration, proc.pid))
        finally:
            stop_server(proc)
    figures = {
        "mcp_calls_per_s": http["mcp_calls_per_s_c16"],
        **http,
        **inproc,
        "http_vs_inproc_gateway_ratio": round(
            http["mcp_calls_per_s_c16"] / inproc["inproc_gateway_calls_per_s"], 3),
        "http_vs_inproc_mcp_ratio": round(http["mcp_calls_per_s_c16"] / inproc["inproc_mcp_calls_per_s"], 3),
        "targets_met": {"mcp_calls_per_s>=1000": http["mcp_calls_per_s_c16"] >= 1000},
    }
    print(f"in-process: Gateway.execute {inproc['inproc_gateway_calls_per_s']:,.0f}/s, "
          f"SDK client in-memory tools/call {inproc['inproc_mcp_calls_per_s']:,.0f}/s")
    for c in (1, 16):
        print(f"streamable HTTP c={c}: {http[f'mcp_calls_per_s_c{c}']:,.0f} tools/call/s, "
              f"p50 {http[f'mcp_p50_ms_c{c}']} ms, p99 {http[f'mcp_p99_ms_c{c}']} ms, server CPU "
              f"{http.get(f'server_cpu_us_per_call_c{c}', float('nan'))} us/call")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
