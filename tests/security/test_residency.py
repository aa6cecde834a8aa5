"""Data residency at the Gateway: routing decisions outside the tenant's regions are refused
(and audited) before any provider is called; a compliant fallback candidate still serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.tenancy.harness import (
    OPERATOR,
    FakeDns,
    ProbeReached,
    ProbeResolver,
    close_tenancy,
    make_tenancy,
    new_key,
)

from mosaic.config.schema import MosaicConfig
from mosaic.errors import Forbidden
from mosaic.plugins.manager import PluginManager
from mosaic.security.crypto import Keyring
from mosaic.security.residency import ResidencyViolation
from mosaic.tenancy.runtime import Tenancy

CONFIG = {"orchestration": {
    "plugins": [{"id": "git-us", "type": "git", "provider": "probe"},
                {"id": "git-eu", "type": "git", "provider": "probe"},
                {"id": "git-nowhere", "type": "git", "provider": "probe"}],
    "routing": {"rules": [{"pattern": "acme/*", "provider": "git-us", "priority": 10},
                          {"pattern": "*/*", "provider": "git-eu", "priority": 1}]}}}


@pytest.fixture
async def probes(db_url: str, tmp_path: Path, redis_prefix: str, keyring: Keyring,
                 dns: FakeDns) -> AsyncIterator[tuple[Tenancy, list[tuple[str, str]]]]:
    calls: list[tuple[str, str]] = []
    tenancy = await make_tenancy(db_url, tmp_path / "data", redis_prefix, keyring=keyring, dns=dns,
                                 default_config=MosaicConfig.model_validate(CONFIG),
                                 default_manager=PluginManager(ProbeResolver(calls)))
    try:
        yield tenancy, calls
    finally:
        await close_tenancy(tenancy)


async def pin(tenancy: Tenancy, **residency: Any) -> None:
    await tenancy.admin.update_settings(OPERATOR, "default", {"residency": residency})
    tenancy.gateways.invalidate("default")


async def last_entry(tenancy: Tenancy) -> Any:
    entries = [e async for e in tenancy.audit.entries("default")]
    return entries[-1]


async def test_a_violating_first_choice_is_refused_audited_and_a_compliant_fallback_serves(
        probes: tuple[Tenancy, list[tuple[str, str]]]) -> None:
    tenancy, calls = probes
    _, me = await new_key(tenancy, "default", "developer")
    gateway = await tenancy.gateways.gateway_for("default")
    with pytest.raises(ProbeReached):
        await gateway.execute("git.get_repository", {"repo": "acme/api"}, me.context())
    assert calls[-1][0] == "git-us", "without residency the rule's choice serves"
    await pin(tenancy, regions=["eu"], providers={"git-us": "us", "git-eu": "eu"})
    gateway = await tenancy.gateways.gateway_for("default")
    ctx = me.context()
    with pytest.raises(ProbeReached):
        await gateway.execute("git.get_repository", {"repo": "acme/api"}, ctx)
    assert calls[-1][0] == "git-eu"
    assert ctx.meta["residency"]["refused"] == ["git-us"]
    entry = await last_entry(tenancy)
    assert (entry.kind, entry.action, entry.provider, entry.actor) == \
        ("residency", "git.get_repository", "git-eu", me.id)
    assert entry.details["residency"]["regions"] == {"git-us": "us"}


async def test_no_compliant_candidate_means_refusal_before_any_provider_call(
        probes: tuple[Tenancy, list[tuple[str, str]]]) -> None:
    tenancy, calls = probes
    await pin(tenancy, regions=["eu"], providers={"git-us": "us", "git-eu": "eu"})
    _, me = await new_key(tenancy, "default", "developer")
    gateway = await tenancy.gateways.gateway_for("default")
    for plugin in ("git-us", "git-nowhere"):
        before = len(calls)
        ctx = me.context(plugin=plugin)
        with pytest.raises(ResidencyViolation) as exc:
            await gateway.execute("git.create_branch", {"repo": "acme/api", "branch": "b"}, ctx)
        assert isinstance(exc.value, Forbidden) and exc.value.code == "forbidden"
        assert exc.value.details == {"refused": [plugin], "allowed_regions": ["eu"]}
        assert len(calls) == before
        entry = await last_entry(tenancy)
        assert (entry.kind, entry.outcome, entry.action) == ("residency", "forbidden", "git.create_branch")
        assert entry.details["residency"]["regions"][plugin] == ("us" if plugin == "git-us" else "undeclared")
    assert (await tenancy.audit.verify()).ok


async def test_the_callers_region_can_narrow_the_tenants_regions(
        probes: tuple[Tenancy, list[tuple[str, str]]]) -> None:
    tenancy, calls = probes
    await pin(tenancy, regions=["eu", "us"], providers={"git-us": "us", "git-eu": "eu"},
              followPrincipalRegion=True)
    _, eu_user = await new_key(tenancy, "default", "reader", attributes={"region": "EU"})
    _, us_user = await new_key(tenancy, "default", "reader", attributes={"region": "us"})
    gateway = await tenancy.gateways.gateway_for("default")
    with pytest.raises(ProbeReached):
        await gateway.execute("git.get_repository", {"repo": "acme/api"}, eu_user.context())
    assert calls[-1][0] == "git-eu"
    with pytest.raises(ProbeReached):
        await gateway.execute("git.get_repository", {"repo": "acme/api"}, us_user.context())
    assert calls[-1][0] == "git-us"
