"""Quotas: Redis counters shared by replicas, per tenant and per key, provider budgets, and the
in-process fallback while Redis is away."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from tests.store.dbfixtures import REDIS_URL
from tests.tenancy.harness import OPERATOR, new_key

from mosaic.errors import NotFound, RateLimited
from mosaic.state.redis import RedisState
from mosaic.tenancy.quotas import Counter, Quotas, budget_counter, request_counters
from mosaic.tenancy.runtime import Tenancy
from mosaic.tenancy.settings import ProviderBudget, RateQuota

NOW = 1_800_000_030.0  # 30 s into a minute


async def test_two_replicas_share_the_tenant_window_atomically(redis_state: RedisState) -> None:
    other = RedisState(REDIS_URL, prefix=redis_state.prefix)
    await other.start()
    try:
        replicas = [Quotas(redis_state), Quotas(other)]
        counters = request_counters("acme", None, False, RateQuota(requestsPerMinute=10), None, NOW)

        async def attempt(i: int) -> bool:
            try:
                await replicas[i % 2].take(counters, now=NOW)
                return True
            except RateLimited:
                return False

        results = await asyncio.gather(*(attempt(i) for i in range(25)))
        assert results.count(True) == 10
        with pytest.raises(RateLimited) as exc:
            await replicas[0].take(counters, now=NOW)
        assert exc.value.details["quota"] == "tenant acme: 10 requests per minute"
        assert 0 < (exc.value.retry_after or 0) <= 35
        # The next minute is a new window.
        await replicas[1].take(request_counters("acme", None, False, RateQuota(requestsPerMinute=10), None,
                                                NOW + 60), now=NOW + 60)
    finally:
        await other.stop()


async def test_a_refused_call_consumes_nothing(redis_state: RedisState) -> None:
    q = Quotas(redis_state)
    tenant_q, key_q = RateQuota(requestsPerMinute=5, writesPerDay=100), RateQuota(requestsPerMinute=2)
    for _ in range(2):
        await q.take(request_counters("acme", "k1", True, tenant_q, key_q, NOW), now=NOW)
    with pytest.raises(RateLimited, match="API key k1: 2 requests per minute"):
        await q.take(request_counters("acme", "k1", True, tenant_q, key_q, NOW), now=NOW)
    # k1's refusals did not eat into the tenant's window: another key gets the remaining 3.
    for _ in range(3):
        await q.take(request_counters("acme", "k2", False, tenant_q, None, NOW), now=NOW)
    with pytest.raises(RateLimited, match="tenant acme: 5 requests per minute"):
        await q.take(request_counters("acme", "k2", False, tenant_q, None, NOW), now=NOW)
    # Other tenants are unaffected.
    await q.take(request_counters("globex", None, False, tenant_q, None, NOW), now=NOW)


async def test_writes_per_day_and_provider_budgets(redis_state: RedisState) -> None:
    q = Quotas(redis_state)
    quota = RateQuota(writesPerDay=2)
    for _ in range(2):
        await q.take(request_counters("acme", None, True, quota, None, NOW), now=NOW)
    await q.take(request_counters("acme", None, False, quota, None, NOW), now=NOW)  # reads are not writes
    with pytest.raises(RateLimited, match="2 writes per day"):
        await q.take(request_counters("acme", None, True, quota, None, NOW + 3600), now=NOW + 3600)
    budget = ProviderBudget(calls=1, per="hour")
    await q.take([budget_counter("acme", "github", budget, NOW)], now=NOW)
    with pytest.raises(RateLimited, match="provider github: 1 calls per hour"):
        await q.take([budget_counter("acme", "github", budget, NOW)], now=NOW)
    await q.take([budget_counter("globex", "github", budget, NOW)], now=NOW)


async def test_keys_carry_the_tenant_hash_tag(redis_state: RedisState) -> None:
    counters = request_counters("acme", "k", True, RateQuota(requestsPerMinute=1, writesPerDay=1),
                                RateQuota(requestsPerMinute=1), NOW)
    assert all(c.key.startswith("q:{acme}") for c in counters)
    assert budget_counter("acme", "gh", ProviderBudget(calls=1), NOW).key.startswith("q:{acme}:p:gh:day:")


async def test_without_redis_windows_are_counted_in_process() -> None:
    down = RedisState("redis://127.0.0.1:1/0", op_timeout=0.05)
    await down.start()
    for q in (Quotas(None), Quotas(down)):
        c = [Counter("q:{t}:rpm:1", 2, 60, "tenant t: 2 requests per minute")]
        await q.take(c, now=NOW)
        await q.take(c, now=NOW)
        with pytest.raises(RateLimited):
            await q.take(c, now=NOW)
        await q.take(c, now=NOW + 61)
    await down.stop()


async def test_quotas_are_enforced_in_the_gateway_before_any_provider_call(platform: Tenancy) -> None:
    await platform.admin.create_tenant(OPERATOR, "acme", settings={"quotas": {"requestsPerMinute": 3}})
    _, limited = await new_key(platform, "acme", "developer", quotas={"requestsPerMinute": 1})
    _, other = await new_key(platform, "acme", "developer")
    await platform.gateways.execute("git.list_repositories", {}, limited.context())
    with pytest.raises(RateLimited, match=f"API key {limited.key_id}"):
        await platform.gateways.execute("git.list_repositories", {}, limited.context())
    await platform.gateways.execute("git.list_repositories", {}, other.context())
    await platform.gateways.execute("git.list_repositories", {}, other.context())
    with pytest.raises(RateLimited, match="tenant acme"):
        await platform.gateways.execute("git.list_repositories", {}, other.context())
    await platform.usage.flush()
    rows = await platform.usage.query(*_window())
    assert sum(r["count"] for r in rows if r["tenant"] == "acme") == 3, "refused calls are not billed"


async def test_a_spent_provider_budget_moves_a_read_to_the_next_candidate(platform: Tenancy) -> None:
    await platform.admin.create_tenant(OPERATOR, "acme", settings={
        "providerBudgets": {"git-a": {"calls": 1, "per": "day"}}})
    await platform.admin.configure(OPERATOR, "acme", {
        "plugins": [{"id": "git-a", "type": "git", "provider": "local", "config": {"dataDir": "a"}},
                    {"id": "git-b", "type": "git", "provider": "local", "config": {"dataDir": "b"}}],
        "routing": {"rules": [{"pattern": "*/*", "provider": "git-a", "priority": 10},
                              {"pattern": "*/*", "provider": "git-b", "priority": 1}]}})
    _, me = await new_key(platform, "acme", "developer")
    first, second = me.context(), me.context()
    # The repository exists nowhere: what matters is which provider was asked.
    with pytest.raises(NotFound):
        await platform.gateways.execute("git.get_repository", {"repo": "x/y"}, first)
    assert first.meta["provider"] == "git-a"
    with pytest.raises(NotFound):
        await platform.gateways.execute("git.get_repository", {"repo": "x/y"}, second)
    assert second.meta["provider"] == "git-b"
    assert second.meta["failovers"][0]["error"] == "rate_limited"


def _window() -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(hours=1)
