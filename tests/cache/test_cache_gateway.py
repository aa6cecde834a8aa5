"""The two-level cache inside Gateway.execute, on the machine's Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from tests.faults.support import REDIS_URL, RedisServer
from tests.resilience.fakes import ScriptedGit, plugin_of, scripted_gateway

from mosaic.errors import NotFound
from mosaic.gateway.gateway import Gateway

GET = "git.get_repository"
REDIS_CACHE = {"enabled": True, "provider": "redis", "ttl": 60, "maxSize": 100}


async def started(cache: dict[str, Any] = REDIS_CACHE, **kw: Any) -> tuple[Gateway, ScriptedGit]:
    g = scripted_gateway(cache=cache, retry={"attempts": 1}, **kw)
    await g.start()
    p = plugin_of(g)
    p.repos["acme/api"] = p._repo("acme/api", description="v1")
    return g, p


async def redis_keys(prefix: str, pattern: str) -> list[bytes]:
    client = Redis.from_url(REDIS_URL)
    try:
        return [k async for k in client.scan_iter(match=prefix + pattern)]
    finally:
        await client.aclose()


@pytest.mark.usefixtures("redis_env")
async def test_reads_are_served_from_l1_then_l2() -> None:
    g, p = await started()
    g2, p2 = await started()  # a second replica: empty L1, same L2
    try:
        first = await g.execute(GET, {"repo": "acme/api"})
        for _ in range(5):
            assert await g.execute(GET, {"repo": "acme/api"}) is first  # L1: the same object
        assert p.count("get_repository") == 1
        other = await g2.execute(GET, {"repo": "acme/api"})
        assert other == first and p2.count("get_repository") == 0  # L2
        assert g2.resilience.cache is not None and g2.resilience.cache.stats["l2_hits"] == 1
    finally:
        await g.stop()
        await g2.stop()


@pytest.mark.usefixtures("redis_env")
async def test_a_write_evicts_the_reads_it_makes_stale() -> None:
    g, p = await started()
    try:
        p.repos["acme/web"] = p._repo("acme/web", description="w1")
        await g.execute(GET, {"repo": "acme/api"})
        await g.execute(GET, {"repo": "acme/web"})
        await g.execute("git.list_repositories", {})
        await g.execute("git.list_repositories", {})
        assert p.count("get_repository") == 2 and p.count("list_repositories") == 1
        updated = await g.execute("git.update_repository", {"repo": "acme/api", "description": "v2"})
        assert updated.description == "v2"
        assert (await g.execute(GET, {"repo": "acme/api"})).description == "v2"
        page = await g.execute("git.list_repositories", {})
        assert {r.description for r in page.items} == {"v2", "w1"}
        await g.execute(GET, {"repo": "acme/web"})  # another repository's entry is untouched
        assert p.count("get_repository") == 3 and p.count("list_repositories") == 2
    finally:
        await g.stop()


@pytest.mark.usefixtures("redis_env")
async def test_not_found_is_cached_briefly_and_cleared_by_a_create() -> None:
    g, p = await started(cache={**REDIS_CACHE})
    try:
        for _ in range(3):
            with pytest.raises(NotFound):
                await g.execute(GET, {"repo": "acme/new"})
        assert p.count("get_repository") == 1
        await g.execute("git.create_repository", {"name": "new", "owner": "acme"})
        assert (await g.execute(GET, {"repo": "acme/new"})).full_name == "acme/new"
    finally:
        await g.stop()


@pytest.mark.usefixtures("redis_env")
async def test_one_fetch_per_key_under_a_stampede_even_across_replicas() -> None:
    g, p = await started()
    g2, p2 = await started()
    try:
        p.push(0.1)
        p2.push(0.1)
        results = await asyncio.gather(*(gw.execute(GET, {"repo": "acme/api"})
                                         for gw in (g, g2) for _ in range(50)))
        assert all(r.full_name == "acme/api" for r in results)
        assert p.count("get_repository") + p2.count("get_repository") == 1
    finally:
        await g.stop()
        await g2.stop()


@pytest.mark.usefixtures("redis_env")
async def test_a_read_that_raced_a_write_is_not_cached() -> None:
    g, p = await started()
    try:
        p.push(0.15)  # the read is slow...
        read = asyncio.ensure_future(g.execute(GET, {"repo": "acme/api"}))
        await asyncio.sleep(0.02)
        await g.execute("git.update_repository", {"repo": "acme/api", "description": "v2"})  # ...a write lands
        assert (await read).description in ("v1", "v2")
        assert (await g.execute(GET, {"repo": "acme/api"})).description == "v2"
    finally:
        await g.stop()


@pytest.mark.usefixtures("redis_env")
async def test_l1_stays_bounded() -> None:
    g, p = await started(cache={**REDIS_CACHE, "maxSize": 10})
    try:
        for i in range(50):
            p.repos[f"acme/r{i}"] = p._repo(f"acme/r{i}")
            await g.execute(GET, {"repo": f"acme/r{i}"})
        assert g.resilience.cache is not None and len(g.resilience.cache.l1) == 10
    finally:
        await g.stop()


@pytest.mark.usefixtures("redis_env")
async def test_a_plugin_may_switch_caching_off_or_shorten_the_ttl() -> None:
    g, p = await started(plugin_cache={"enabled": False})
    try:
        for _ in range(3):
            await g.execute(GET, {"repo": "acme/api"})
        assert p.count("get_repository") == 3
    finally:
        await g.stop()
    g, p = await started(plugin_cache={"ttl": 0.05})
    try:
        await g.execute(GET, {"repo": "acme/api"})
        await g.execute(GET, {"repo": "acme/api"})
        await asyncio.sleep(0.08)
        await g.execute(GET, {"repo": "acme/api"})
        assert p.count("get_repository") == 2
    finally:
        await g.stop()


async def test_write_back_flushes_and_survives_a_restart(private_redis: RedisServer, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOSAIC_REDIS_URL", private_redis.url)
    monkeypatch.setenv("MOSAIC_REDIS_PREFIX", "wb:")
    monkeypatch.setenv("MOSAIC_CACHE_JOURNAL", str(tmp_path / "journal"))
    back = {**REDIS_CACHE, "strategy": "write-back"}
    g, _ = await started(cache=back)
    await g.execute(GET, {"repo": "acme/api"})
    await asyncio.sleep(0.2)
    client = Redis.from_url(private_redis.url)
    assert [k async for k in client.scan_iter(match="wb:c:*")]  # flushed in the background
    await client.aclose()

    private_redis.kill()
    p = plugin_of(g)
    p.repos["acme/web"] = p._repo("acme/web")
    await g.execute(GET, {"repo": "acme/web"})  # Redis is gone: the entry waits in the queue
    await g.stop()  # ...and is journaled
    assert (tmp_path / "journal").read_bytes()

    private_redis.start()  # an empty Redis (no persistence), as after a crash
    g2, p2 = await started(cache=back)
    try:
        await asyncio.sleep(0.2)
        client = Redis.from_url(private_redis.url)
        keys = [k async for k in client.scan_iter(match="wb:c:*")]
        await client.aclose()
        assert len(keys) == 1  # the entry journaled while Redis was down
        assert not (tmp_path / "journal").exists()  # flushed: the journal is gone
        await g2.execute(GET, {"repo": "acme/web"})
        assert p2.count("get_repository") == 0  # served from the recovered L2 entry
    finally:
        await g2.stop()


@pytest.mark.usefixtures("redis_env")
async def test_waiters_fetch_themselves_when_the_first_caller_goes_away() -> None:
    g, p = await started()
    try:
        p.push(0.2, 0.0)
        first = asyncio.ensure_future(g.execute(GET, {"repo": "acme/api"}))
        await asyncio.sleep(0.02)
        second = asyncio.ensure_future(g.execute(GET, {"repo": "acme/api"}))
        await asyncio.sleep(0.02)
        first.cancel()  # e.g. its client disconnected
        assert (await second).full_name == "acme/api"
        assert first.cancelled() and p.count("get_repository") == 2
    finally:
        await g.stop()
