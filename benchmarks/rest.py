"""REST benchmark: GET a repository through `mosaic serve` (one worker) vs Gateway.execute in-process.

    .venv/bin/python benchmarks/rest.py [--duration 5]

Prints a human summary, then one JSON line of figures (the last line of output).
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

REPO = "bench/api"


async def inprocess(data_dir: Path, duration: float) -> tuple[float, list[float], float]:
    op = CATALOG["git.get_repository"]
    async with Orchestrator.embedded(data_dir) as orch:
        await orch.call("git.create_repository", name="api", owner="bench")
        for _ in range(200):  # warm-up
            await orch.gateway.execute(op, {"repo": REPO}, RequestContext())
        lat: list[float] = []
        stop_at = time.perf_counter() + duration
        t_start = time.perf_counter()
        cpu_start = time.process_time()
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            await orch.gateway.execute(op, {"repo": REPO}, RequestContext())
            lat.append(time.perf_counter() - t0)
        cpu_us = (time.process_time() - cpu_start) / len(lat) * 1e6
        return len(lat) / (time.perf_counter() - t_start), lat, cpu_us


def _check(status: int, body: bytes) -> None:
    if status != 200:
        raise RuntimeError(f"GET failed with {status}: {body[:200]!r}")


def _create_repo(port: int) -> None:
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/git/repositories",
                                 data=json.dumps({"name": "api", "owner": "bench"}).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=10).read()


async def over_http(port: int, duration: float, pid: int | None = None) -> dict[str, float]:
    await asyncio.to_thread(_create_repo, port)
    raw = (f"GET /v1/git/repositories/{REPO} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").encode()
    await load(port, lambda i: raw, concurrency=4, duration=1.0, check=_check)  # warm-up
    out: dict[str, float] = {}
    for c in (1, 16):
        cpu0 = cpu_seconds(pid) if pid else None
        n, elapsed, lat = await load(port, lambda i: raw, concurrency=c, duration=duration, check=_check)
        cpu1 = cpu_seconds(pid) if pid else None
        out[f"rest_rps_c{c}"] = round(n / elapsed, 1)
        if cpu0 is not None and cpu1 is not None:
            # Server CPU per request: what one worker can sustain regardless of how busy the
            # (shared, 2-core) machine is; 1e6 / this = requests/s per fully used core.
            out[f"server_cpu_us_per_req_c{c}"] = round((cpu1 - cpu0) / n * 1e6, 1)
        out[f"http_p50_ms_c{c}"] = round(pct(lat, 50) * 1000, 3)
        out[f"http_p99_ms_c{c}"] = round(pct(lat, 99) * 1000, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    args = ap.parse_args()
    use_uvloop()
    with tempfile.TemporaryDirectory() as tmp:
        inproc_rate, inproc_lat, inproc_cpu = asyncio.run(inprocess(Path(tmp) / "inproc", args.duration))
        port = free_port()
        proc = start_server(Path(tmp) / "server", port)
        try:
            http = asyncio.run(over_http(port, args.duration, proc.pid))
        finally:
            stop_server(proc)
    in_p50 = pct(inproc_lat, 50) * 1000
    in_p99 = pct(inproc_lat, 99) * 1000
    figures = {
        **http,
        "inproc_calls_per_s": round(inproc_rate, 1),
        "inproc_p50_ms": round(in_p50, 3),
        "inproc_p99_ms": round(in_p99, 3),
        "inproc_cpu_us_per_call": round(inproc_cpu, 1),
        "http_added_p50_ms": round(http["http_p50_ms_c1"] - in_p50, 3),
        "http_added_p99_ms": round(http["http_p99_ms_c1"] - in_p99, 3),
        "rps_ratio_c16_vs_inproc": round(http["rest_rps_c16"] / inproc_rate, 3),
        "targets_met": {
            "rest_rps_c16>=1500": http["rest_rps_c16"] >= 1500,
            "http_added_p50_ms<=0.5": http["http_p50_ms_c1"] - in_p50 <= 0.5,
        },
    }
    print(f"in-process Gateway.execute: {inproc_rate:,.0f} calls/s, p50 {in_p50:.3f} ms, p99 {in_p99:.3f} ms")
    for c in (1, 16):
        print(f"HTTP c={c}: {http[f'rest_rps_c{c}']:,.0f} req/s, p50 {http[f'http_p50_ms_c{c}']} ms, "
              f"p99 {http[f'http_p99_ms_c{c}']} ms, server CPU "
              f"{http.get(f'server_cpu_us_per_req_c{c}', float('nan'))} us/request")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
