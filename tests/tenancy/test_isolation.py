"""Isolation suite: two tenants with identically named repositories, provider instances and keys.

Probed at the Gateway level (the HTTP interfaces call the same gateways): reads, writes, the
two-level cache (Redis L2 included), errors, plugin instance ids, Redis keys, data on disk, the
audit streams, usage, and admin actions. Zero cross-tenant leaks are allowed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from tests.store.dbfixtures import REDIS_URL
from tests.tenancy.harness import OPERATOR, new_key

from mosaic.errors import Forbidden, MosaicError, NotFound
from mosaic.security.identity import Identity
from mosaic.tenancy.runtime import Tenancy

TENANTS = ("acme", "globex")


def tenant_config(secret_label: str) -> dict[str, Any]:
    # Identical instance ids in both tenants, plus one instance only this tenant has.
    return {"plugins": [
        {"id": "local-git", "type": "git", "provider": "local", "default": True},
        {"id": "local-docs", "type": "docs", "provider": "local", "default": True},
        {"id": f"{secret_label}-private-git", "type": "git", "provider": "local",
         "config": {"dataDir": "private"}}],
        "cache": {"enabled": True, "provider": "redis", "ttl": 300}}


@pytest.fixture
async def two(platform: Tenancy) -> dict[str, Identity]:
    people: dict[str, Identity] = {}
    for name in TENANTS:
        await platform.admin.create_tenant(OPERATOR, name)
        await platform.admin.configure(OPERATOR, name, tenant_config(name))
        _, people[name] = await new_key(platform, name, "admin", name="ci")
    return people


async def run(platform: Tenancy, who: Identity, op: str, **params: Any) -> Any:
    return await platform.gateways.execute(op, params, who.context())


def text_of(exc: BaseException) -> str:
    return repr(exc.to_dict()) if isinstance(exc, MosaicError) else repr(exc)


async def test_identical_repositories_stay_apart_through_reads_writes_and_the_cache(
        platform: Tenancy, two: dict[str, Identity]) -> None:
    for name, me in two.items():
        await run(platform, me, "git.create_repository", name="api", owner="shared", description=f"owned by {name}")
    for _ in range(2):  # the second round is served from the cache
        for name, me in two.items():
            ctx = me.context()
            repo = await platform.gateways.execute("git.get_repository", {"repo": "shared/api"}, ctx)
            assert repo.description == f"owned by {name}"  # type: ignore[attr-defined]
            assert ctx.meta.get("cache") in ("hit", "miss")
    # A write in one tenant invalidates only its own cached entries.
    await run(platform, two["acme"], "git.update_repository", repo="shared/api", description="acme v2")
    assert (await run(platform, two["acme"], "git.get_repository", repo="shared/api")).description == "acme v2"
    assert (await run(platform, two["globex"], "git.get_repository", repo="shared/api")).description == \
        "owned by globex"
    listed = {n: [r.full_name for r in (await run(platform, me, "git.list_repositories")).items]
              for n, me in two.items()}
    assert listed == {"acme": ["shared/api"], "globex": ["shared/api"]}


async def test_a_repository_of_one_tenant_does_not_exist_for_the_other(platform: Tenancy,
                                                                          two: dict[str, Identity]) -> None:
    await run(platform, two["globex"], "git.create_repository", name="secret-plans", owner="globex")
    with pytest.raises(NotFound) as exc:
        await run(platform, two["acme"], "git.get_repository", repo="globex/secret-plans")
    data_dir = str(platform.data_dir / "tenants" / "globex")
    assert data_dir not in text_of(exc.value) and "globex-private" not in text_of(exc.value)
    listed = await run(platform, two["acme"], "git.list_repositories")
    assert listed.items == []
    on_disk = {p.relative_to(platform.data_dir).parts[:2] for p in platform.data_dir.rglob("secret-plans*")}
    assert on_disk == {("tenants", "globex")}


async def test_another_tenants_instance_ids_are_unknown_and_never_listed(platform: Tenancy,
                                                                        two: dict[str, Identity]) -> None:
    ctx = two["acme"].context(plugin="globex-private-git")
    with pytest.raises(NotFound) as exc:
        await platform.gateways.execute("git.list_repositories", {}, ctx)
    assert exc.value.details["available"] == ["acme-private-git", "local-docs", "local-git"]
    # Only the caller's own input is echoed; nothing else of the other tenant appears.
    assert "globex" not in text_of(exc.value).replace("'globex-private-git'", "")


async def test_a_principal_cannot_act_in_another_tenant(platform: Tenancy, two: dict[str, Identity]) -> None:
    acme = two["acme"]
    for ctx in (acme.context(), acme.context()):
        ctx.tenant = "globex"
        with pytest.raises(Forbidden, match="belongs to another tenant"):
            await platform.gateways.execute("git.list_repositories", {}, ctx)
    globex_gateway = await platform.gateways.gateway_for("globex")
    with pytest.raises(Forbidden, match="not for this tenant's gateway"):
        await globex_gateway.execute("git.list_repositories", {}, acme.context())
    # Nothing about the attempt lands in the other tenant's audit stream.
    assert [e async for e in platform.audit.entries("globex") if e.actor == acme.id] == []


async def test_redis_state_is_namespaced_per_tenant(platform: Tenancy, two: dict[str, Identity],
                                                    redis_prefix: str) -> None:
    for me in two.values():
        await run(platform, me, "git.create_repository", name="api", owner="shared")
        await run(platform, me, "git.get_repository", repo="shared/api")
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [k.decode() async for k in client.scan_iter(match=redis_prefix + "t:*")]
    finally:
        await client.aclose()
    assert keys, "the tenants' caches live in Redis"
    for key in keys:
        tenant = key.removeprefix(redis_prefix + "t:").split(":", 1)[0]
        assert tenant in TENANTS
        other = TENANTS[1 - TENANTS.index(tenant)]
        assert other not in key


async def test_audit_streams_usage_and_admin_are_per_tenant(platform: Tenancy, two: dict[str, Identity]) -> None:
    for name, me in two.items():
        await run(platform, me, "git.create_repository", name=f"{name}-repo", owner=name)
    for name in TENANTS:
        actors = {e.actor async for e in platform.audit.entries(name)}
        assert actors <= {OPERATOR.id, two[name].id}
    await platform.usage.flush()
    now = datetime.now(UTC)
    acme_usage = await platform.admin.usage_report(two["acme"], None, now - timedelta(hours=1),
                                                   now + timedelta(hours=1))
    assert {r["tenant"] for r in acme_usage} == {"acme"}
    report = await platform.admin.audit_verify(two["acme"], None)
    assert set(report.chains) == {"acme"}
    for attempt in (lambda: platform.admin.list_keys(two["acme"], "globex"),
                    lambda: platform.admin.create_key(two["acme"], "globex", "sneaky", ["admin"]),
                    lambda: platform.admin.audit_verify(two["acme"], "globex"),
                    lambda: platform.admin.usage_report(two["acme"], "globex", now - timedelta(hours=1), now),
                    lambda: platform.admin.configure(two["acme"], "globex", {"plugins": []}),
                    lambda: platform.admin.create_tenant(two["acme"], "acme-two")):
        with pytest.raises(Forbidden):
            await attempt()
    # Same key name in both tenants: a key id of one tenant is unknown to the other's admin.
    globex_keys = await platform.admin.list_keys(two["globex"], "globex")
    assert {k.name for k in globex_keys} == {"ci"}
    with pytest.raises(NotFound):
        await platform.admin.revoke_key(OPERATOR, "acme", globex_keys[0].id)
    refused = [e async for e in platform.audit.entries("acme") if e.outcome == "forbidden"]
    assert len(refused) == 6 and all(e.kind == "admin" for e in refused)
    assert (await platform.audit.verify()).ok


async def test_tenant_data_directories_do_not_overlap(platform: Tenancy, two: dict[str, Identity]) -> None:
    roots = {}
    for name in TENANTS:
        gateway = await platform.gateways.gateway_for(name)
        roots[name] = {Path(p.config.data_dir) for p in gateway.manager.plugins.values()}  # type: ignore[attr-defined]
    for name, dirs in roots.items():
        # Tenant configs are materialized with resolved paths: a plain prefix check suffices.
        own = platform.data_dir / "tenants" / name
        for d in dirs:
            assert d == own or own in d.parents, (name, d)
