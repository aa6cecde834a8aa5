"""A running tenancy stack for tests: database (both backends), Redis, tenant gateways.

``platform`` is a started :class:`Tenancy` whose ``default`` tenant runs the embedded local
providers; other tenants get their own local providers under ``<data>/tenants/<name>``.
DNS is a fake (no test resolves a real name): every host resolves to a public documentation
address unless the test maps it elsewhere in ``dns``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.store.dbfixtures import FAST_HASH, REDIS_URL

from mosaic.catalog.base import Operation
from mosaic.catalog.registry import CATALOG
from mosaic.config.defaults import embedded_config
from mosaic.config.schema import MosaicConfig, Orchestration, PluginSpec
from mosaic.errors import NotFound
from mosaic.gateway.context import Principal, RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.plugins.contract import ProviderPlugin
from mosaic.plugins.loader import PluginResolver
from mosaic.plugins.manager import PluginManager
from mosaic.security.crypto import Keyring, generate_key_line
from mosaic.security.identity import Identity
from mosaic.state.redis import RedisState
from mosaic.store.engine import Database
from mosaic.tenancy.runtime import Tenancy

OPERATOR = Principal(id="test-operator", roles=("admin",))
PUBLIC_IP = "93.184.216.34"


@dataclass
class FakeDns:
    answers: dict[str, list[str]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host.endswith(".invalid"):
            raise OSError("name does not resolve")
        return self.answers.get(host, [PUBLIC_IP])


@pytest.fixture
def dns() -> FakeDns:
    return FakeDns()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.parse(generate_key_line("test-k1"), "test")


async def make_tenancy(db_url: str, data: Path, redis_prefix: str | None, *, keyring: Keyring,
                       dns: FakeDns, default_config: MosaicConfig | None = None,
                       default_manager: PluginManager | None = None, **kwargs: Any) -> Tenancy:
    default_dir = data / "default"
    gateway = Gateway(default_config or embedded_config(default_dir), default_manager or PluginManager(),
                      data_dir=default_dir)
    db = await Database.open(db_url)
    redis = RedisState(REDIS_URL, prefix=redis_prefix) if redis_prefix is not None else None
    tenancy = Tenancy(db, data_dir=data, default_gateway=gateway, keyring=keyring, redis=redis,
                      hash_params=FAST_HASH, env=kwargs.pop("env", {}), resolver=dns,
                      refresh_interval=kwargs.pop("refresh_interval", 0.0),
                      usage_flush_interval=kwargs.pop("usage_flush_interval", 0.05), **kwargs)
    await gateway.start()
    await tenancy.start()
    return tenancy


async def close_tenancy(tenancy: Tenancy) -> None:
    gateway = tenancy.gateways.default_gateway
    await tenancy.stop()
    if gateway is not None:
        await gateway.stop()


@pytest.fixture
async def platform(db_url: str, tmp_path: Path, redis_prefix: str, keyring: Keyring,
                   dns: FakeDns) -> AsyncIterator[Tenancy]:
    tenancy = await make_tenancy(db_url, tmp_path / "data", redis_prefix, keyring=keyring, dns=dns)
    try:
        yield tenancy
    finally:
        await close_tenancy(tenancy)


async def new_key(tenancy: Tenancy, tenant: str, *roles: str, **kwargs: Any) -> tuple[str, Identity]:
    """Create a key and authenticate with it: (token, identity)."""
    created = await tenancy.admin.create_key(OPERATOR, tenant, kwargs.pop("name", "test-key"),
                                             list(roles) or ["developer"], **kwargs)
    identity = await tenancy.authenticator.authenticate(f"Bearer {created.token}")
    return created.token, identity


# -- a probe provider for every service: records the call, answers "probe reached" ------------
class ProbeReached(NotFound):
    code = "not_found"


def probe_class(service: str, calls: list[tuple[str, str]]) -> type[ProviderPlugin]:
    def method(op: Operation) -> Callable[..., Any]:
        async def run(self: ProviderPlugin, p: Any, ctx: RequestContext) -> Any:
            calls.append((self.id, op.qualified_name))
            raise ProbeReached(f"probe {self.id} reached by {op.qualified_name}")
        run.__name__ = op.name
        return run

    namespace: dict[str, Any] = {"provider": "probe", "service": service, "name": f"Probe {service}"}
    namespace.update({op.name: method(op) for op in CATALOG.for_service(service)})  # type: ignore[arg-type]
    return type(f"Probe{service.title()}", (ProviderPlugin,), namespace)


class ProbeResolver(PluginResolver):
    def __init__(self, calls: list[tuple[str, str]]) -> None:
        super().__init__()
        self.classes = {s: probe_class(s, calls) for s in ("git", "cicd", "docs", "project")}

    def resolve(self, spec: PluginSpec) -> type[ProviderPlugin]:
        if spec.provider == "probe":
            return self.classes[spec.type]
        return super().resolve(spec)


def probe_config() -> MosaicConfig:
    return MosaicConfig(orchestration=Orchestration(plugins=[
        PluginSpec(id=f"probe-{s}", type=s, provider="probe", default=True)  # type: ignore[arg-type]
        for s in ("git", "cicd", "docs", "project")]))


__all__ = ["OPERATOR", "PUBLIC_IP", "FakeDns", "ProbeReached", "ProbeResolver", "close_tenancy", "dns",
           "keyring", "make_tenancy", "new_key", "platform", "probe_config"]
