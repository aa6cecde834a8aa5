"""Idempotent writes: replays return the first result, never a second write."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from tests.faults.support import RedisServer
from tests.resilience.fakes import plugin_of, scripted_gateway

from mosaic.errors import Conflict, InvalidRequest, NotFound, ProviderUnavailable, Timeout
from mosaic.gateway.context import RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.resilience.idempotency import fingerprint

CREATE = "git.create_repository"


def keyed(key: str, timeout: float | None = None) -> RequestContext:
    ctx = RequestContext.with_timeout(timeout) if timeout else RequestContext()
    ctx.idempotency_key = key
    return ctx


@pytest.fixture(params=["redis", "memory"])
async def gateway(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    if request.param == "redis":
        request.getfixturevalue("redis_env")
    else:
        monkeypatch.delenv("MOSAIC_REDIS_URL", raising=False)
    g = scripted_gateway(retry={"attempts": 1}, circuitBreaker={"enabled": False})
    await g.start()
    yield g  # type: ignore[misc]
    await g.stop()


async def test_replay_returns_the_first_result(gateway: Gateway) -> None:
    p = plugin_of(gateway)
    first = await gateway.execute(CREATE, {"name": "api", "owner": "acme"}, keyed("k1"))
    ctx = keyed("k1")
    again = await gateway.execute(CREATE, {"name": "api", "owner": "acme"}, ctx)
    assert again == first and ctx.meta["idempotent_replay"] is True
    assert p.count("create_repository") == 1


async def test_same_key_other_params_is_refused(gateway: Gateway) -> None:
    await gateway.execute(CREATE, {"name": "api", "owner": "acme"}, keyed("k2"))
    with pytest.raises(InvalidRequest, match="other parameters"):
        await gateway.execute(CREATE, {"name": "web", "owner": "acme"}, keyed("k2"))
    assert plugin_of(gateway).count("create_repository") == 1


async def test_concurrent_replays_share_one_write(gateway: Gateway) -> None:
    p = plugin_of(gateway)
    p.push(0.1)
    results = await asyncio.gather(*(gateway.execute(CREATE, {"name": "api", "owner": "acme"},
                                                     keyed("k3", timeout=2)) for _ in range(5)))
    assert p.count("create_repository") == 1
    assert all(r == results[0] for r in results)


async def test_unknown_outcome_is_never_repeated(gateway: Gateway) -> None:
    p = plugin_of(gateway)
    p.push(ProviderUnavailable("connection reset after the request was sent", sent=True))
    with pytest.raises(ProviderUnavailable):
        await gateway.execute(CREATE, {"name": "api", "owner": "acme"}, keyed("k4"))
    with pytest.raises(Conflict, match="may or may not have been applied"):
        await gateway.execute(CREATE, {"name": "api", "owner": "acme"}, keyed("k4"))
    assert p.count("create_repository") == 1


async def test_a_write_that_was_not_sent_can_be_retried_with_the_same_key(gateway: Gateway) -> None:
    p = plugin_of(gateway)
    p.push(ProviderUnavailable("connection refused", sent=False))
    with pytest.raises(ProviderUnavailable):
        await gateway.execute(CREATE, {"name": "api", "owner": "acme"}, keyed("k5"))
    repo = await gateway.execute(CREATE, {"name": "api", "owner": "acme"}, keyed("k5"))
    assert repo.full_name == "acme/api" and p.count("create_repository") == 2


async def test_provider_answers_are_replayed_as_they_were(gateway: Gateway) -> None:
    p = plugin_of(gateway)
    p.push(NotFound("organization 'nope' not found"))
    for _ in range(2):
        with pytest.raises(NotFound, match="nope"):
            await gateway.execute(CREATE, {"name": "api", "owner": "nope"}, keyed("k6"))
    assert p.count("create_repository") == 1


async def test_replay_while_in_flight_waits_or_gets_conflict(gateway: Gateway) -> None:
    p = plugin_of(gateway)
    p.push(0.3)
    first = asyncio.ensure_future(gateway.execute(CREATE, {"name": "api", "owner": "acme"}, keyed("k7")))
    await asyncio.sleep(0.02)
    with pytest.raises(Conflict, match="still in progress"):
        await gateway.execute(CREATE, {"name": "api", "owner": "acme"}, keyed("k7", timeout=0.1))
    waited = await gateway.execute(CREATE, {"name": "api", "owner": "acme"}, keyed("k7", timeout=2))
    assert waited == await first and p.count("create_repository") == 1


async def test_a_crashed_first_attempt_is_reported_not_repeated(gateway: Gateway) -> None:
    """What a gateway that died between the provider call and the record leaves behind: a
    reservation whose lease ran out. The replay must not write again."""
    layer = gateway.resilience.idempotency
    call = gateway.prepare(CREATE, {"name": "api", "owner": "acme"}, keyed("k8"))
    record = orjson.dumps({"s": "pending", "fp": fingerprint(call), "owner": "dead-replica",
                           "lease": time.time() - 1})
    assert await layer.store.reserve(layer._record_key(call, "k8"), record, 60) is None
    with pytest.raises(Conflict, match="interrupted"):
        await gateway.execute(CREATE, {"name": "api", "owner": "acme"}, keyed("k8"))
    assert plugin_of(gateway).count("create_repository") == 0


async def test_keys_are_scoped_per_tenant(gateway: Gateway) -> None:
    ctx_a, ctx_b = keyed("same"), keyed("same")
    ctx_b.tenant = "other"
    await gateway.execute(CREATE, {"name": "api", "owner": "acme"}, ctx_a)
    await gateway.execute(CREATE, {"name": "api", "owner": "acme"}, ctx_b)
    assert plugin_of(gateway).count("create_repository") == 2


@pytest.mark.usefixtures("no_redis")
async def test_identical_idempotent_writes_in_flight_share_one_call_but_later_ones_run() -> None:
    g = scripted_gateway(retry={"attempts": 1})
    await g.start()
    try:
        p = plugin_of(g)
        p.repos["acme/api"] = p._repo("acme/api")
        p.push(0.05)
        await asyncio.gather(*(g.execute("git.update_repository", {"repo": "acme/api", "description": "A"})
                               for _ in range(4)))
        assert p.count("update_repository") == 1
        for d in ("B", "A"):
            await g.execute("git.update_repository", {"repo": "acme/api", "description": d})
        assert p.repos["acme/api"].description == "A" and p.count("update_repository") == 3
    finally:
        await g.stop()


async def test_fails_closed_when_redis_is_unreachable(private_redis: RedisServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOSAIC_REDIS_URL", private_redis.url)
    monkeypatch.setenv("MOSAIC_REDIS_PREFIX", "t:")
    g = scripted_gateway(retry={"attempts": 1})
    await g.start()
    try:
        private_redis.kill()
        start = time.monotonic()
        with pytest.raises(ProviderUnavailable) as info:
            await g.execute(CREATE, {"name": "api", "owner": "acme"}, keyed("k9"))
        assert info.value.sent is False and "Idempotency-Key" in info.value.message
        assert time.monotonic() - start < 1.0
        assert plugin_of(g).count("create_repository") == 0
        # Writes without a key, and reads, keep working.
        await g.execute(CREATE, {"name": "api", "owner": "acme"})
        assert not isinstance(await g.execute("git.get_repository", {"repo": "acme/api"}), Timeout)
    finally:
        await g.stop()
