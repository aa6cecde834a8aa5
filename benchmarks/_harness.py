"""Shared benchmark plumbing: a server subprocess, a lean HTTP/1.1 client, percentiles.

The load client is a few lines of asyncio on raw sockets (keep-alive, Content-Length
bodies) so that, on a 2-core machine, the client costs far less CPU than the server it
measures; an HTTP library client would dominate the measurement.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, port: int,
                 extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MOSAIC_DATA_DIR": str(data_dir), **(extra_env or {})}
    env.pop("MOSAIC_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mosaic.interfaces.cli.serve", "serve", "--port", str(port),
         "--workers", "1", "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError("server did not become ready within 60 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) a process has used so far; None off Linux."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def load(port: int, make_request: Callable[[int], bytes], *, concurrency: int, duration: float,
               check: Callable[[int, bytes], None] | None = None) -> tuple[int, float, list[float]]:
    """Send requests for ``duration`` seconds on ``concurrency`` keep-alive connections.

    Returns (completed requests, elapsed seconds, per-request latencies in seconds).
    """
    latencies: list[float] = []
    stop_at = time.perf_counter() + duration
    count = 0

    async def worker(w: int) -> None:
        nonlocal count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = 0
        try:
            while time.perf_counter() < stop_at:
                req = make_request(w * 1_000_000 + i)
                t0 = time.perf_counter()
                writer.write(req)
                status, body = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                if check is not None:
                    check(status, body)
                count += 1
                i += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return count, time.perf_counter() - t0, latencies


def use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
