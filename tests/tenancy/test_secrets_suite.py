"""Secrets suite: the whole flow with recognizable fake credentials, then a search for them in
everything an operator or a client can see — logs (DEBUG, every logger, no redaction filter),
results and errors, metrics, the audit log and its export, usage, admin listings, stored rows.

The provider is the real Gitea plugin talking to the in-memory Gitea fake (no network).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY as DEFAULT_REGISTRY
from prometheus_client import generate_latest
from sqlalchemy import text
from tests.providers.gitea.fake import GiteaFake
from tests.tenancy.harness import OPERATOR, FakeDns, close_tenancy, make_tenancy

from mosaic.config.schema import PluginSpec
from mosaic.errors import MosaicError, Unauthorized
from mosaic.gateway.layers import REGISTRY
from mosaic.plugins.contract import ProviderPlugin
from mosaic.plugins.loader import PluginResolver
from mosaic.plugins.manager import PluginManager
from mosaic.providers.gitea.git import GiteaGitPlugin
from mosaic.security.crypto import Keyring
from mosaic.tenancy.runtime import Tenancy

GITEA_TOKEN = "glpat-FAKEgiteaToken0001xyzzy"
OTHER_TOKEN = "ghp_FAKEwrongTokenZZZZZZZZZZZZZZZZZZZZZZ"
BASE = "https://gitea.example.test"


class FakeResolver(PluginResolver):
    def __init__(self, fake: GiteaFake) -> None:
        super().__init__()
        transport = fake.transport()

        class Bound(GiteaGitPlugin):
            def __init__(self, plugin_id: str) -> None:
                super().__init__(plugin_id, transport=transport)

        self.bound = Bound

    def resolve(self, spec: PluginSpec) -> type[ProviderPlugin]:
        return self.bound if spec.provider == "gitea" else super().resolve(spec)


@pytest.fixture
async def stack(db_url: str, tmp_path: Path, redis_prefix: str, keyring: Keyring,
                dns: FakeDns) -> AsyncIterator[tuple[Tenancy, GiteaFake]]:
    fake = GiteaFake(base_url=BASE)
    fake.add_user("alice", GITEA_TOKEN)
    tenancy = await make_tenancy(db_url, tmp_path / "data", redis_prefix, keyring=keyring, dns=dns,
                                 manager_factory=lambda: PluginManager(FakeResolver(fake)))
    try:
        yield tenancy, fake
    finally:
        await close_tenancy(tenancy)


def config(token: str) -> dict[str, Any]:
    return {"plugins": [{"id": "forge", "type": "git", "provider": "gitea", "default": True,
                         "config": {"baseUrl": f"{BASE}/api/v1", "auth": {"type": "token", "token": token}}}]}


async def test_no_credential_appears_anywhere(stack: tuple[Tenancy, GiteaFake], caplog: pytest.LogCaptureFixture,
                                              db_url: str) -> None:
    tenancy, _ = stack
    seen: list[str] = []
    caplog.set_level(logging.DEBUG)
    with caplog.at_level(logging.DEBUG):
        await tenancy.admin.create_tenant(OPERATOR, "acme")
        seen.append(repr((await tenancy.admin.configure(OPERATOR, "acme", config(GITEA_TOKEN))).public()))
        created = await tenancy.admin.create_key(OPERATOR, "acme", "ci", ["admin"])
        api_key = created.token
        seen.append(repr(created.record.public()))
        me = await tenancy.authenticator.authenticate(f"Bearer {api_key}")
        seen.append(repr(me) + repr(me.describe()))
        ctx = me.context()
        repo = await tenancy.gateways.execute("git.create_repository", {"name": "api"}, ctx)
        seen.append(repo.model_dump_json() + repr(ctx.meta))
        seen.append((await tenancy.gateways.execute("git.get_repository", {"repo": "alice/api"},
                                                    me.context())).model_dump_json())
        for bad in ({"repo": "alice/missing"}, {"repo": "nobody/x"}):
            with pytest.raises(MosaicError) as exc:
                await tenancy.gateways.execute("git.get_repository", bad, me.context())
            seen.append(repr(exc.value.to_dict()))
        # The provider credential goes bad: the provider's 401 must not echo what we sent.
        await tenancy.admin.configure(OPERATOR, "acme", config(OTHER_TOKEN))
        with pytest.raises(MosaicError) as exc:
            await tenancy.gateways.execute("git.get_repository", {"repo": "alice/api"}, me.context())
        seen.append(repr(exc.value.to_dict()) + str(exc.value))
        for wrong in (api_key[:-2] + "zz", api_key + "z", GITEA_TOKEN):
            with pytest.raises(Unauthorized) as exc_auth:
                await tenancy.authenticator.authenticate(f"Bearer {wrong}")
            seen.append(repr(exc_auth.value.to_dict()))
        seen.append(repr(await tenancy.admin.show_config(OPERATOR, "acme")))
        seen.append(repr([k.public() for k in await tenancy.admin.list_keys(OPERATOR, "acme")]))
        seen.append(repr([t.public() for t in await tenancy.admin.list_tenants(OPERATOR)]))
        await tenancy.usage.flush()
        now = datetime.now(UTC)
        seen.append(repr(await tenancy.admin.usage_report(OPERATOR, None, now - timedelta(1), now + timedelta(1))))
        seen.append(b"".join([line async for line in await tenancy.admin.audit_export(OPERATOR, None)]).decode())
        seen.append(repr((await tenancy.admin.audit_verify(OPERATOR, None)).to_dict()))
        seen.append(generate_latest(REGISTRY).decode() + generate_latest(DEFAULT_REGISTRY).decode())
        gateway = await tenancy.gateways.gateway_for("acme")
        seen.append(repr(gateway.config) + repr(gateway.manager.specs) + repr(gateway.manager.plugins["forge"].config))
        async with tenancy.db.read() as s:
            for table in ("tenants", "api_keys", "usage", "audit_entries", "audit_heads", "rbac_rules"):
                seen.append(repr((await s.execute(text(f"SELECT * FROM {table}"))).all()))
            blobs = (await s.execute(text("SELECT ciphertext FROM credentials"))).scalars().all()
    seen.append(caplog.text)
    seen.extend(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    everything = "\n".join(seen)
    assert "alice/api" in everything, "the flow really ran"
    secret_part = api_key.split("_", 2)[2]
    for secret in (GITEA_TOKEN, OTHER_TOKEN, secret_part):
        leaks = [chunk[max(0, chunk.find(secret) - 200):chunk.find(secret) + 60] for chunk in seen
                 if secret in chunk]
        assert not leaks, f"{secret[:8]}... leaked: {leaks}"
    for blob in blobs:
        assert GITEA_TOKEN.encode() not in bytes(blob) and OTHER_TOKEN.encode() not in bytes(blob)
