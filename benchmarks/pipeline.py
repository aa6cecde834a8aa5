"""Benchmarks of the full request pipeline, each against a direct httpx call in the same run.

    .venv/bin/python benchmarks/pipeline.py                  # everything (~2-3 minutes)
    .venv/bin/python benchmarks/pipeline.py --memory-requests 100000   # a shorter memory run

Figures (targets from the issue in brackets):

* ``added_p50_ms_c1`` / ``added_p99_ms_c1`` / ``added_p50_ms_c16`` / ``added_p99_ms_c16`` —
  latency the pipeline adds to a cache miss (real Gitea provider over HTTP, Redis L2 lookup,
  fetch lock, global rate limit, breaker, retry, bulkhead, L2 store) over a direct ``httpx`` GET of
  the same upstream, at concurrency 1 and 16 [p50 <= 0.5 ms, p99 <= 3 ms];
* ``l1_hit_us`` — a whole ``Gateway.execute`` answered from L1 (params validation and metrics
  included); ``l1_lookup_us`` — the cache lookup alone [L1 <= 20 us];
* ``l2_hit_us`` — a whole ``Gateway.execute`` answered from Redis (L1 miss) [<= 300 us];
* ``concurrent_1000_total_ms`` — 1000 concurrent calls to an upstream that answers in 100 ms,
  through the pipeline; ``direct_concurrent_1000_total_ms`` — the same with httpx alone on the
  providers' pool [<= 150 ms]; ``httpcore_concurrent_1000_total_ms`` — the same through a plain
  ``httpx.AsyncClient`` (httpcore's pool);
* ``rss_mb`` — resident memory at 0, 250k, 500k and 1M requests through a gateway with a bounded
  L1 and an in-process provider (every request a new key, so L1 evicts all the time) [flat].

The upstream is ``tests/faults/upstream.py`` in its own process; Redis is ``MOSAIC_REDIS_URL``
(default the machine's ``redis://127.0.0.1:6379/0``) under a private prefix deleted at the end.
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REDIS_URL = os.environ.get("MOSAIC_REDIS_URL", "redis://127.0.0.1:6379/0")
PREFIX = f"mosaic-bench:{uuid.uuid4().hex[:8]}:"
os.environ["MOSAIC_REDIS_URL"] = REDIS_URL
os.environ["MOSAIC_REDIS_PREFIX"] = PREFIX
os.environ.setdefault("MOSAIC_CACHE_JOURNAL", f"/tmp/{PREFIX.replace(':', '-')}journal")

from mosaic.catalog.git import GetRepositoryParams, Repository  # noqa: E402
from mosaic.config.schema import CacheConfig, MosaicConfig, Orchestration, PluginSpec  # noqa: E402
from mosaic.gateway.context import RequestContext  # noqa: E402
from mosaic.gateway.gateway import Gateway  # noqa: E402
from mosaic.plugins.contract import ProviderPlugin  # noqa: E402
from mosaic.plugins.http_transport import PooledTransport  # noqa: E402
from mosaic.plugins.manager import PluginManager  # noqa: E402

GET = "git.get_repository"
SHARED = {
    "rateLimit": {"maxRequests": 10_000_000, "windowMs": 3_600_000},
    "retry": {"attempts": 3},
    "circuitBreaker": {"slidingWindowSize": 100},
    "bulkhead": {"maxConcurrentCalls": 5000},
    "maxConnections": 2000,
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def start_upstream(latency: float) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.faults.upstream", "--port", "0", "--latency",
                             str(latency)], cwd=ROOT, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


def gateway(base_url: str, cache: dict[str, Any], **shared: Any) -> Gateway:
    spec = PluginSpec(id="gitea", type="git", provider="gitea", default=True,
                      module="mosaic.providers.gitea.git:GiteaGitPlugin",
                      config={"baseUrl": base_url, "auth": {"type": "token", "token": "bench"}, **shared})
    return Gateway(MosaicConfig(orchestration=Orchestration(
        plugins=[spec], cache=CacheConfig.model_validate(cache))), PluginManager())


def direct_client(base: str, **kwargs: Any) -> httpx.AsyncClient:
    """The baseline: httpx on the same connection pool as the providers (aiohttp's, see
    ``mosaic.plugins.http_transport``), so that the difference is the pipeline alone."""
    return httpx.AsyncClient(base_url=base + "/api/v1/",
                             transport=PooledTransport(verify=True, max_connections=2000), **kwargs)


REDIS_CACHE = {"enabled": True, "provider": "redis", "ttl": 300, "maxSize": 10_000}


async def latency(base: str, requests: int) -> dict[str, float]:
    g = gateway(base, REDIS_CACHE, **SHARED)
    await g.start()
    direct = direct_client(base, headers={"Authorization": "token bench"})
    counter = iter(range(10**9))
    out: dict[str, float] = {}
    try:
        for concurrency in (1, 16):
            pipe_t: list[float] = []
            direct_t: list[float] = []

            async def worker(n: int, pipe_t: list[float] = pipe_t, direct_t: list[float] = direct_t) -> None:
                for _ in range(n):
                    i = next(counter)
                    t = time.perf_counter()
                    r = await direct.get(f"repos/acme/d{i}")
                    direct_t.append(time.perf_counter() - t)
                    assert r.status_code == 200
                    t = time.perf_counter()
                    await g.execute(GET, {"repo": f"acme/p{i}"})  # a new key: always a cache miss
                    pipe_t.append(time.perf_counter() - t)

            await asyncio.gather(*(worker(50) for _ in range(concurrency)))  # warm-up
            pipe_t.clear()
            direct_t.clear()
            await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
            for q, name in ((0.5, "p50"), (0.99, "p99")):
                added = (pct(pipe_t, q) - pct(direct_t, q)) * 1000
                out[f"added_{name}_ms_c{concurrency}"] = round(added, 3)
                out[f"direct_{name}_ms_c{concurrency}"] = round(pct(direct_t, q) * 1000, 3)
            log(f"c={concurrency}: direct p50 {pct(direct_t, .5) * 1e3:.3f} ms "
                f"p99 {pct(direct_t, .99) * 1e3:.3f} ms; pipeline p50 {pct(pipe_t, .5) * 1e3:.3f} ms "
                f"p99 {pct(pipe_t, .99) * 1e3:.3f} ms")
    finally:
        await direct.aclose()
        await g.stop()
    return out


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t)
    return times


async def hits(base: str) -> dict[str, float]:
    g = gateway(base, REDIS_CACHE, **SHARED)
    await g.start()
    # A second replica whose L1 holds a single entry: alternating two keys, every read misses
    # L1 and is answered by L2.
    g2 = gateway(base, {**REDIS_CACHE, "maxSize": 1}, **SHARED)
    await g2.start()
    try:
        await g.execute(GET, {"repo": "acme/hot"})
        await g.execute(GET, {"repo": "acme/warm"})
        l1 = await timed(lambda: g.execute(GET, {"repo": "acme/hot"}), 20_000)
        cache = g.resilience.cache
        assert cache is not None
        call = g.prepare(GET, {"repo": "acme/hot"})
        from mosaic.cache.keys import entry_key

        key = entry_key(call.ctx.tenant, None, call.op, call.params)
        lookup = await timed(lambda: _peek(cache, key), 20_000)
        keys = iter(["acme/hot", "acme/warm"] * 10_000)
        l2 = await timed(lambda: g2.execute(GET, {"repo": next(keys)}), 5_000)
        assert g2.resilience.cache is not None and g2.resilience.cache.stats["misses"] == 0
        out = {"l1_hit_us": round(statistics.median(l1) * 1e6, 2),
               "l1_lookup_us": round(statistics.median(lookup) * 1e6, 2),
               "l2_hit_us": round(statistics.median(l2) * 1e6, 2)}
        log(f"hits: {out}")
        return out
    finally:
        await g.stop()
        await g2.stop()


async def _peek(cache: Any, key: str) -> Any:
    return cache.peek(key)


async def burst(slow_base: str, n: int = 1000) -> dict[str, float]:
    g = gateway(slow_base, REDIS_CACHE, **SHARED)
    await g.start()
    direct = direct_client(slow_base)
    try:
        out: dict[str, float] = {}
        for run in ("warm", "measure"):
            tag = uuid.uuid4().hex[:6]
            t = time.perf_counter()
            answers = await asyncio.gather(*(direct.get(f"repos/acme/{tag}d{i}") for i in range(n)))
            direct_ms = (time.perf_counter() - t) * 1000
            assert all(a.status_code == 200 for a in answers)
            t = time.perf_counter()
            results = await asyncio.gather(*(g.execute(GET, {"repo": f"acme/{tag}p{i}"},
                                                       RequestContext.with_timeout(30)) for i in range(n)),
                                           return_exceptions=True)
            pipe_ms = (time.perf_counter() - t) * 1000
            if run == "measure":
                out = {"concurrent_1000_total_ms": round(pipe_ms, 1),
                       "direct_concurrent_1000_total_ms": round(direct_ms, 1),
                       "concurrent_1000_errors": sum(isinstance(r, BaseException) for r in results)}
        log(f"burst of {n} against a 100 ms upstream: {out}")
        return out
    finally:
        await direct.aclose()
        await g.stop()


async def burst_httpcore(slow_base: str, n: int = 1000) -> dict[str, float]:
    """The same burst through a plain ``httpx.AsyncClient`` (httpcore's pool), pool as wide: why
    the providers run on aiohttp's pool (``mosaic.plugins.http_transport``)."""
    limits = httpx.Limits(max_connections=2 * n, max_keepalive_connections=2 * n)
    async with httpx.AsyncClient(base_url=slow_base + "/api/v1/", limits=limits) as plain:
        tag = uuid.uuid4().hex[:6]
        t = time.perf_counter()
        answers = await asyncio.gather(*(plain.get(f"repos/acme/{tag}h{i}") for i in range(n)))
        total_ms = (time.perf_counter() - t) * 1000
    assert all(a.status_code == 200 for a in answers)
    log(f"burst of {n} through httpcore's pool: {total_ms:.0f} ms")
    return {"httpcore_concurrent_1000_total_ms": round(total_ms, 1)}


class InProcessGit(ProviderPlugin):
    """A provider without I/O, so that the memory run measures the gateway only."""

    provider = "bench"
    service = "git"
    name = "in-process"

    async def get_repository(self, p: GetRepositoryParams, ctx: RequestContext) -> Repository:
        owner, name = p.repo.split("/")
        return Repository(provider=self.id, id=p.repo, owner=owner, name=name, full_name=p.repo,
                          raw={"id": 1, "name": name})


async def memory(requests: int) -> dict[str, Any]:
    spec = PluginSpec(id="mem", type="git", provider="bench", default=True,
                      module=f"{__name__}:InProcessGit",
                      config={"circuitBreaker": {"slidingWindowSize": 100}})
    cfg = MosaicConfig(orchestration=Orchestration(
        plugins=[spec], cache=CacheConfig(enabled=True, provider="memory", ttl=300, maxSize=1000)))
    os.environ.pop("MOSAIC_REDIS_URL", None)  # L1 only: the bound under test
    g = Gateway(cfg, PluginManager())
    os.environ["MOSAIC_REDIS_URL"] = REDIS_URL
    await g.start()
    marks = {0, requests // 4, requests // 2, requests}
    rss: list[float] = []
    try:
        for i in range(20_000):  # warm-up: imports, caches, pools reach their steady size
            await g.execute(GET, {"repo": f"warm/r{i}"})
        gc.collect()
        started = time.perf_counter()
        for i in range(requests + 1):
            if i in marks:
                gc.collect()
                rss.append(rss_mb())
                log(f"memory: {i} requests, RSS {rss[-1]} MB")
            if i < requests:
                await g.execute(GET, {"repo": f"acme/r{i}"})  # every request a new key
        rate = requests / (time.perf_counter() - started)
        assert g.resilience.cache is not None and len(g.resilience.cache.l1) <= 1000
        return {"rss_mb": rss, "memory_requests": requests, "memory_run_req_per_s": round(rate)}
    finally:
        await g.stop()


async def cleanup() -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=PREFIX + "*", count=1000)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i:i + 500])
    finally:
        await client.aclose()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    fast, fast_url = start_upstream(0.0)
    slow, slow_url = start_upstream(0.1)
    figures: dict[str, Any] = {}
    try:
        figures.update(await latency(fast_url, args.latency_requests))
        figures.update(await hits(fast_url))
        figures.update(await burst(slow_url))
        if not args.skip_httpcore:
            figures.update(await burst_httpcore(slow_url))
        if args.memory_requests:
            figures.update(await memory(args.memory_requests))
    finally:
        for proc in (fast, slow):
            proc.terminate()
            proc.wait(5)
        await cleanup()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Gateway pipeline benchmarks")
    parser.add_argument("--latency-requests", type=int, default=2000)
    parser.add_argument("--memory-requests", type=int, default=1_000_000)
    parser.add_argument("--skip-httpcore", action="store_true",
                        help="skip the plain-httpx burst (it takes 10-20 s)")
    result = asyncio.run(main(parser.parse_args()))
    print(orjson.dumps(result).decode(), flush=True)
