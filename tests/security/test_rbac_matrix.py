"""RBAC matrix at the Gateway: every role × every operation of every service (read and write).

The providers are probes that record each call and answer "probe reached": an allowed call
reaches its probe, a refused one is a ``Forbidden`` that no probe ever saw. Every write —
refused or not — leaves exactly one audit entry. The expected matrix is written out here
independently of the policy tables in mosaic.security.rbac.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError
from tests.tenancy.harness import (
    FakeDns,
    ProbeReached,
    ProbeResolver,
    close_tenancy,
    make_tenancy,
    new_key,
    probe_config,
)

from mosaic.catalog.base import SERVICES, Operation
from mosaic.catalog.registry import CATALOG
from mosaic.errors import Forbidden
from mosaic.plugins.manager import PluginManager
from mosaic.security.crypto import Keyring
from mosaic.security.rbac import ROLES, Authorizer, Rule
from mosaic.tenancy.runtime import Tenancy

# role -> may (read, write a non-destructive op, write a destructive op)
EXPECTED = {
    "admin": (True, True, True),
    "maintainer": (True, True, True),
    "developer": (True, True, False),
    "reader": (True, False, False),
    "auditor": (True, False, False),
}


def expected(role: str, op: Operation) -> bool:
    read, write, destroy = EXPECTED[role]
    if op.is_read:
        return read
    return destroy if op.destructive else write


def dummy_params(op: Operation) -> BaseModel:
    """Required fields filled with a value of their type (the probes never look at them)."""
    values: dict[str, Any] = {}
    for name, info in op.params.model_fields.items():
        if not info.is_required():
            continue
        adapter: TypeAdapter[Any] = TypeAdapter(info.annotation)
        for candidate in ("acme/api" if name == "repo" else "x", 1, [], {}, True):
            try:
                values[name] = adapter.validate_python(candidate)
                break
            except ValidationError:
                continue
    return op.params.model_construct(**values)


@pytest.fixture
async def probes(db_url: str, tmp_path: Path, redis_prefix: str, keyring: Keyring,
                 dns: FakeDns) -> AsyncIterator[tuple[Tenancy, list[tuple[str, str]]]]:
    calls: list[tuple[str, str]] = []
    tenancy = await make_tenancy(db_url, tmp_path / "data", redis_prefix, keyring=keyring, dns=dns,
                                 default_config=probe_config(), default_manager=PluginManager(ProbeResolver(calls)))
    try:
        yield tenancy, calls
    finally:
        await close_tenancy(tenancy)


def test_roles_under_test_are_the_builtin_roles() -> None:
    assert set(EXPECTED) == set(ROLES)
    assert any(op.destructive for op in CATALOG.values()), "the matrix needs a destructive operation"


@pytest.mark.parametrize("role", sorted(EXPECTED))
async def test_role_matrix_over_every_operation(role: str, probes: tuple[Tenancy, list[tuple[str, str]]]) -> None:
    tenancy, calls = probes
    _, me = await new_key(tenancy, "default", role)
    gateway = await tenancy.gateways.gateway_for("default")
    outcome: dict[str, bool] = {}
    for op in CATALOG.values():
        before = len(calls)
        try:
            await gateway.execute(op, dummy_params(op), me.context())
        except ProbeReached:
            outcome[op.qualified_name] = True
            assert calls[before:] == [(f"probe-{op.service}", op.qualified_name)]
        except Forbidden as exc:
            outcome[op.qualified_name] = False
            assert len(calls) == before, f"{op.qualified_name} reached a provider although refused"
            assert role in exc.details["roles"]
    wanted = {op.qualified_name: expected(role, op) for op in CATALOG.values()}
    assert outcome == wanted
    # The same matrix, summarised per service and effect for readability of failures.
    for service in SERVICES:
        for effect in ("read", "write"):
            ops = [o for o in CATALOG.for_service(service) if o.effect.value == effect and not o.destructive]
            if ops:
                assert {outcome[o.qualified_name] for o in ops} == {EXPECTED[role][0 if effect == "read" else 1]}
    # What MCP/REST/GraphQL listings must show: exactly the callable operations.
    visible = {op.qualified_name for op in tenancy.authorizer.visible(me, "default", CATALOG.values())}
    assert visible == {name for name, ok in wanted.items() if ok}
    # One audit entry per write, with its outcome; none for reads.
    report = await tenancy.audit.verify("default")
    assert report.ok
    entries = [e async for e in tenancy.audit.entries("default") if e.kind == "operation"]
    writes = [op for op in CATALOG.values() if not op.is_read]
    assert [e.action for e in entries] == [op.qualified_name for op in writes]
    assert [e.outcome for e in entries] == ["not_found" if wanted[op.qualified_name] else "forbidden"
                                            for op in writes]
    assert {e.actor for e in entries} == {me.id}


async def test_tenant_rules_extend_roles_without_reaching_other_tenants() -> None:
    authorizer = Authorizer()
    authorizer.load_tenant("acme", [Rule("ci-bot", inherits="reader"), Rule("ci-bot", permission="cicd:write"),
                                    Rule("developer", permission="git.create_branch:write", effect="deny")])
    assert authorizer.allowed(["ci-bot"], "acme", "cicd.trigger_pipeline", "write")
    assert authorizer.allowed(["ci-bot"], "acme", "git.get_repository", "read")
    assert not authorizer.allowed(["ci-bot"], "acme", "git.create_repository", "write")
    assert not authorizer.allowed(["ci-bot"], "globex", "cicd.trigger_pipeline", "write")
    assert not authorizer.allowed(["developer"], "acme", "git.create_branch", "write")
    assert authorizer.allowed(["developer"], "globex", "git.create_branch", "write")
    # A deny on one role does not cancel another role's grant.
    assert authorizer.allowed(["developer", "maintainer"], "acme", "git.delete_repository", "write")
    assert authorizer.roles("acme") >= {"ci-bot", "admin"}
    authorizer.load_tenant("acme", [])
    assert not authorizer.allowed(["ci-bot"], "acme", "cicd.trigger_pipeline", "write")
