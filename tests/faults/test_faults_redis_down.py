"""Redis is not a single point of failure: killed or frozen mid-load, then back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from tests.faults.support import RedisServer, gitea_spec, make_gateway, running
from tests.faults.upstream import FakeGitea

from mosaic.gateway.gateway import Gateway

GET = "git.get_repository"
SHARED = {"rateLimit": {"maxRequests": 100_000, "windowMs": 1000},
          "circuitBreaker": {"slidingWindowSize": 20}, "retry": {"attempts": 2}}


@pytest.fixture
def redis_at(private_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> RedisServer:
    monkeypatch.setenv("MOSAIC_REDIS_URL", private_redis.url)
    monkeypatch.setenv("MOSAIC_REDIS_PREFIX", "down:")
    monkeypatch.setenv("MOSAIC_REDIS_TIMEOUT_MS", "300")
    return private_redis


async def load(gateways: list[Gateway], seconds: float, events: dict[float, Callable[[], None]]
               ) -> tuple[list[float], list[BaseException]]:
    """Cacheable reads from 20 workers while ``events`` happen at their offsets."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    start = time.monotonic()
    stop = start + seconds

    async def worker(n: int) -> None:
        i = n
        while time.monotonic() < stop:
            g = gateways[i % len(gateways)]
            t = time.monotonic()
            try:
                await g.execute(GET, {"repo": f"acme/r{i % 30}"})
            except BaseException as exc:  # any error at all fails the test
                errors.append(exc)
            latencies.append(time.monotonic() - t)
            i += 7
            await asyncio.sleep(0.002)

    async def timeline() -> None:
        for at, action in sorted(events.items()):
            await asyncio.sleep(max(0.0, start + at - time.monotonic()))
            action()

    await asyncio.gather(timeline(), *(worker(n) for n in range(20)))
    return latencies, errors


async def keys(server: RedisServer, prefix: str = "") -> int:
    client = Redis.from_url(server.url, socket_timeout=1)
    try:
        return len([k async for k in client.scan_iter(match=(prefix or "") + "*")])
    finally:
        await client.aclose()


async def test_killing_redis_mid_load_never_hangs_nor_fails_reads(redis_at: RedisServer,
                                                                  upstream: FakeGitea) -> None:
    for i in range(30):
        upstream.add_repo("acme", f"r{i}")
    gws = [make_gateway(gitea_spec("gitea", upstream, **SHARED),
                        cache={"enabled": True, "provider": "redis", "ttl": 0.2}) for _ in range(2)]
    async with running(*gws):
        states: list[str] = []
        latencies, errors = await load(gws, 1.6, {
            0.4: redis_at.kill,
            0.8: lambda: states.append(gws[0].resilience.ready()["status"]),
            0.9: redis_at.start,
        })
        assert not errors, errors[:3]
        assert max(latencies) < 1.0, f"a request took {max(latencies):.3f}s"
        assert states == ["degraded"]

        async def recovered() -> bool:
            return all(g.resilience.ready()["status"] == "ok" for g in gws)

        deadline = time.monotonic() + 5
        while not await recovered():
            assert time.monotonic() < deadline, "did not recover by itself"
            await asyncio.sleep(0.05)
        # Shared state is used again: new entries land in the (restarted, empty) Redis.
        await gws[0].execute(GET, {"repo": "acme/api"})
        assert await keys(redis_at) > 0
        assert all(g.resilience.subscriber.subscriptions >= 2 for g in gws)  # resubscribed


async def test_a_frozen_redis_costs_at_most_its_timeout(redis_at: RedisServer, upstream: FakeGitea) -> None:
    for i in range(30):
        upstream.add_repo("acme", f"r{i}")
    gws = [make_gateway(gitea_spec("gitea", upstream, **SHARED),
                        cache={"enabled": True, "provider": "redis", "ttl": 0.2})]
    async with running(*gws):
        latencies, errors = await load(gws, 1.5, {0.3: redis_at.pause, 1.0: redis_at.resume})
        assert not errors, errors[:3]
        # A hung Redis (no RST, no answer) costs one operation timeout (0.3 s) per request at most.
        assert max(latencies) < 0.9, f"a request took {max(latencies):.3f}s"
        deadline = time.monotonic() + 5
        while gws[0].resilience.ready()["status"] != "ok":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)


async def test_a_gateway_started_without_redis_serves_and_attaches_later(
        tmp_path: Path, upstream: FakeGitea, monkeypatch: pytest.MonkeyPatch) -> None:
    server = RedisServer(tmp_path)  # not started yet
    monkeypatch.setenv("MOSAIC_REDIS_URL", server.url)
    monkeypatch.setenv("MOSAIC_REDIS_PREFIX", "late:")
    g = make_gateway(gitea_spec("gitea", upstream, **SHARED), cache={"enabled": True, "provider": "redis"})
    started = time.monotonic()
    try:
        async with running(g):
            assert time.monotonic() - started < 1.5  # start-up does not wait for Redis
            assert g.resilience.ready()["status"] == "degraded"
            assert (await g.execute(GET, {"repo": "acme/api"})).full_name == "acme/api"
            server.start()
            deadline = time.monotonic() + 5
            while g.resilience.ready()["status"] != "ok" or g.resilience.subscriber.subscriptions < 1:
                assert time.monotonic() < deadline, "did not attach to Redis"
                await asyncio.sleep(0.05)
            upstream.add_repo("acme", "late")
            await g.execute(GET, {"repo": "acme/late"})
            assert await keys(server) > 0  # the shared state is in use again
    finally:
        server.stop()
