"""Usage aggregation across replicas and its export; the per-tenant gateway registry."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import OperationalError
from tests.tenancy.harness import OPERATOR, FakeDns, new_key

from mosaic.errors import Forbidden, NotFound
from mosaic.gateway.layers import observe
from mosaic.security.layers import AuditLayer, AuthorizeLayer, TenantGuard
from mosaic.security.residency import ResidencyGuard
from mosaic.store.engine import Database
from mosaic.tenancy.layers import ProviderBudgetLayer, QuotaLayer, UsageLayer
from mosaic.tenancy.runtime import Tenancy
from mosaic.tenancy.usage import UsageRecorder, to_csv

T0 = datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC).timestamp()


async def test_replicas_add_to_the_same_minute_buckets(db: Database) -> None:
    one, two = UsageRecorder(db), UsageRecorder(db)
    one.record("acme", "key:a", "local-git", "git.get_repository", "read", "ok", 10.0, at=T0)
    one.record("acme", "key:a", "local-git", "git.get_repository", "read", "ok", 30.0, at=T0 + 5)
    two.record("acme", "key:a", "local-git", "git.get_repository", "read", "ok", 50.0, at=T0 + 20)
    two.record("acme", "key:a", "local-git", "git.get_repository", "read", "not_found", 1.0, at=T0 + 20)
    two.record("acme", "key:a", "local-git", "git.get_repository", "read", "ok", 2.0, at=T0 + 60)
    assert one.pending == 2
    assert await one.flush() == 2 and await two.flush() == 3
    assert one.pending == 0
    rows = await one.query(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))
    summary = [(r["bucket"][11:16], r["outcome"], r["count"], r["total_ms"], r["max_ms"]) for r in rows]
    assert summary == [("12:00", "not_found", 1, 1.0, 1.0), ("12:00", "ok", 3, 90.0, 50.0),
                       ("12:01", "ok", 1, 2.0, 2.0)]
    assert await one.query(datetime(2026, 3, 1, 12, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC),
                           tenant="acme") == rows[2:]
    assert await one.query(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC),
                           tenant="globex") == []


async def test_an_unreachable_database_keeps_usage_pending_within_bounds() -> None:
    down = await Database.open("postgresql://mosaic@127.0.0.1:1/unreachable")
    try:
        rec = UsageRecorder(down, max_pending=2)
        rec.record("acme", "p", "g", "git.x", "read", "ok", 1.0, at=T0)
        assert await rec.flush() == 0
        assert rec.pending == 1
        rec.record("acme", "p", "g", "git.x", "read", "ok", 1.0, at=T0 + 60)
        rec.record("acme", "p", "g", "git.x", "read", "ok", 1.0, at=T0 + 120)
        assert rec.pending == 2 and rec.dropped == 1
    finally:
        await down.dispose()


def test_csv_export_has_a_header_and_defuses_formulas() -> None:
    rows = [{"tenant": "acme", "bucket": "2026-03-01T12:00:00+00:00", "principal": "=HYPERLINK(\"x\")",
             "provider": "local-git", "operation": "git.get_repository", "effect": "read", "outcome": "ok",
             "count": 3, "total_ms": 90.0, "max_ms": 50.0}]
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert parsed[0]["principal"] == "'=HYPERLINK(\"x\")" and parsed[0]["count"] == "3"


async def test_unknown_and_disabled_tenants_are_refused(platform: Tenancy) -> None:
    with pytest.raises(NotFound, match="no tenant 'nobody'"):
        await platform.gateways.gateway_for("nobody")
    await platform.admin.create_tenant(OPERATOR, "acme")
    await platform.gateways.gateway_for("acme")
    await platform.admin.set_tenant_status(OPERATOR, "acme", "disabled")
    with pytest.raises(Forbidden, match="disabled"):
        await platform.gateways.gateway_for("acme")


async def test_a_change_rebuilds_the_tenants_gateway_and_retires_the_old_one(platform: Tenancy) -> None:
    await platform.admin.create_tenant(OPERATOR, "acme")
    first = await platform.gateways.gateway_for("acme")
    assert await platform.gateways.gateway_for("acme") is first
    await platform.admin.configure(OPERATOR, "acme", {"plugins": [
        {"id": "only-git", "type": "git", "provider": "local", "default": True}]})
    second = await platform.gateways.gateway_for("acme")
    assert second is not first
    assert sorted(second.manager.plugins) == ["only-git"]
    await platform.gateways.wait_retired()
    assert first.manager.plugins == {}, "the previous gateway was stopped"


async def test_the_layers_are_in_the_documented_order(platform: Tenancy) -> None:
    await platform.admin.create_tenant(OPERATOR, "acme")
    for tenant in ("default", "acme"):
        gateway = await platform.gateways.gateway_for(tenant)
        layers = gateway.layers
        kinds = [getattr(x, "__name__", type(x).__name__) for x in layers]
        assert layers[0] is observe
        assert [type(x) for x in layers[1:6]] == [TenantGuard, AuditLayer, AuthorizeLayer, QuotaLayer, UsageLayer]
        route = layers.index(gateway.route)
        failover = layers.index(gateway.failover)
        assert isinstance(layers[route + 1], ResidencyGuard) and failover == route + 2, kinds
        assert isinstance(layers[failover + 1], ProviderBudgetLayer), kinds
    # Re-installing (after a settings change) replaces, never duplicates.
    await platform.admin.update_settings(OPERATOR, "default", {"quotas": {"requestsPerMinute": 1000}})
    gateway = await platform.gateways.gateway_for("default")
    assert sum(isinstance(x, AuditLayer) for x in gateway.layers) == 1


async def test_a_plugin_pointing_inward_is_refused_and_reported(platform: Tenancy, dns: FakeDns) -> None:
    dns.answers["gitea.corp.example"] = ["10.0.0.7"]
    await platform.admin.create_tenant(OPERATOR, "acme")
    await platform.admin.configure(OPERATOR, "acme", {"plugins": [
        {"id": "inner", "type": "git", "provider": "gitea",
         "config": {"baseUrl": "https://gitea.corp.example/api/v1"}},
        {"id": "local-git", "type": "git", "provider": "local", "default": True}]})
    gateway = await platform.gateways.gateway_for("acme")
    assert "inner" not in gateway.manager.plugins
    assert "private address" in gateway.manager.failed["inner"].error
    _, me = await new_key(platform, "acme", "developer")
    with pytest.raises(Exception, match="configured but not running"):
        await platform.gateways.execute("git.list_repositories", {}, me.context(plugin="inner"))
    await platform.admin.update_settings(OPERATOR, "acme", {"network": {"allowPrivate": ["10.0.0.0/24"]}})
    gateway = await platform.gateways.gateway_for("acme")
    assert "inner" in gateway.manager.plugins


async def test_a_database_outage_keeps_serving_known_tenants(platform: Tenancy,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    await platform.admin.create_tenant(OPERATOR, "acme")
    gateway = await platform.gateways.gateway_for("acme")

    async def broken(name: str) -> None:
        raise OperationalError("SELECT", {}, OSError("connection refused"))

    monkeypatch.setattr(platform.tenants, "version", broken)
    assert await platform.gateways.gateway_for("acme") is gateway
    with pytest.raises(Exception, match="tenant store is unreachable"):
        await platform.gateways.gateway_for("globex")


async def test_usage_is_recorded_per_call_with_provider_and_outcome(platform: Tenancy) -> None:
    await platform.admin.create_tenant(OPERATOR, "acme")
    _, me = await new_key(platform, "acme", "developer")
    await platform.gateways.execute("git.create_repository", {"name": "api", "owner": "acme"}, me.context())
    with pytest.raises(NotFound):
        await platform.gateways.execute("git.get_repository", {"repo": "acme/nope"}, me.context())
    await platform.usage.flush()
    now = datetime.now(UTC)
    rows = await platform.admin.usage_report(OPERATOR, "acme", now - timedelta(hours=1), now + timedelta(hours=1))
    assert {(r["principal"], r["provider"], r["operation"], r["outcome"], r["count"]) for r in rows} == {
        (me.id, "local-git", "git.create_repository", "ok", 1),
        (me.id, "local-git", "git.get_repository", "not_found", 1)}


async def test_cache_hits_are_billed_as_provider_cache(platform: Tenancy) -> None:
    await platform.admin.create_tenant(OPERATOR, "acme")
    await platform.admin.configure(OPERATOR, "acme", {
        "plugins": [{"id": "local-git", "type": "git", "provider": "local", "default": True}],
        "cache": {"enabled": True, "ttl": 300}})
    _, me = await new_key(platform, "acme", "developer")
    await platform.gateways.execute("git.create_repository", {"name": "api", "owner": "acme"}, me.context())
    contexts = [me.context() for _ in range(3)]
    for ctx in contexts:
        await platform.gateways.execute("git.get_repository", {"repo": "acme/api"}, ctx)
    assert [c.meta.get("cache") for c in contexts] == ["miss", "hit", "hit"]
    await platform.usage.flush()
    now = datetime.now(UTC)
    rows = await platform.usage.query(now - timedelta(hours=1), now + timedelta(hours=1), tenant="acme")
    reads = {r["provider"]: r["count"] for r in rows if r["operation"] == "git.get_repository"}
    assert reads == {"local-git": 1, "cache": 2}
