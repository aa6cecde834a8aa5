"""Failover: reads and idempotent writes move on; a non-idempotent write only if never sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from tests.routing.fakes import MemoryGit, gateway, plugin

from mosaic.errors import (
    Conflict,
    MosaicError,
    NotFound,
    OperationNotSupported,
    PluginError,
    ProviderUnavailable,
    Timeout,
)
from mosaic.gateway.context import RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.gateway.layers import REGISTRY

RULES = {"rules": [{"pattern": "*", "provider": "a", "priority": 10},
                   {"pattern": "*", "provider": "b", "priority": 5}],
         "loadBalancing": {"healthCheck": {"interval": 60000}}}


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    g = gateway(RULES, plugins=("a", "b"))
    await g.start()
    for pid in ("a", "b"):
        p = plugin(g, pid)
        p.repos["o/r"] = p._repo("o", "r")
    yield g
    await g.stop()


def failing(g: Gateway, pid: str, exc: Callable[[], Exception]) -> MemoryGit:
    p = plugin(g, pid)
    p.fail = exc
    return p


def failovers(op: str, frm: str, to: str, reason: str) -> float:
    v = REGISTRY.get_sample_value("mosaic_routing_failovers_total",
                                  {"operation": op, "from_provider": frm, "to_provider": to, "reason": reason})
    return v or 0.0


@pytest.mark.parametrize(("exc", "reason"), [
    (lambda: ProviderUnavailable("502 from upstream"), "provider_unavailable"),
    (lambda: Timeout("read timed out"), "timeout"),
    (lambda: PluginError("upstream 500"), "plugin_error"),
    (lambda: MosaicError("upstream 500"), "internal_error"),
    (lambda: RuntimeError("bug in the provider"), "internal_error"),
])
async def test_a_read_moves_to_the_next_candidate(gw: Gateway, exc: Callable[[], Exception], reason: str) -> None:
    failing(gw, "a", exc)
    before = failovers("git.get_repository", "a", "b", reason)
    ctx = RequestContext()
    repo = await gw.execute("git.get_repository", {"repo": "o/r"}, ctx)
    assert repo.provider == "b"  # type: ignore[attr-defined]
    hop = ctx.meta["failovers"][0]
    assert (hop["from"], hop["to"], hop["reason"]) == ("a", "b", reason)
    assert ctx.meta["provider"] == "b" and ctx.meta["routing"]["candidates"] == ["a", "b"]
    assert failovers("git.get_repository", "a", "b", reason) == before + 1


async def test_an_idempotent_write_moves_on(gw: Gateway) -> None:
    failing(gw, "a", lambda: ProviderUnavailable("connection reset after the request was sent"))
    ctx = RequestContext()
    out = await gw.execute("git.update_repository", {"repo": "o/r", "description": "moved"}, ctx)
    assert out.provider == "b" and out.description == "moved"  # type: ignore[attr-defined]
    assert ctx.meta["failovers"][0]["reason"] == "provider_unavailable"


async def test_a_non_idempotent_write_that_may_have_been_sent_does_not_move(gw: Gateway) -> None:
    failing(gw, "a", lambda: ProviderUnavailable("connection reset after the request was sent"))
    ctx = RequestContext()
    with pytest.raises(ProviderUnavailable) as info:
        await gw.execute("git.create_repository", {"name": "new", "owner": "o"}, ctx)
    assert "not idempotent" in info.value.details["failover"]
    assert plugin(gw, "b").calls == [] and "failovers" not in ctx.meta


async def test_a_non_idempotent_write_that_never_left_moves(gw: Gateway) -> None:
    failing(gw, "a", lambda: ProviderUnavailable("connection refused", sent=False))
    ctx = RequestContext()
    repo = await gw.execute("git.create_repository", {"name": "new", "owner": "o"}, ctx)
    assert repo.provider == "b" and "o/new" in plugin(gw, "b").repos  # type: ignore[attr-defined]
    assert "o/new" not in plugin(gw, "a").repos
    assert ctx.meta["failovers"][0]["reason"] == "provider_unavailable_not_sent"


@pytest.mark.parametrize("exc", [lambda: NotFound("no such repo"), lambda: Conflict("exists")])
async def test_caller_errors_never_move(gw: Gateway, exc: Callable[[], Exception]) -> None:
    failing(gw, "a", exc)
    with pytest.raises((NotFound, Conflict)):
        await gw.execute("git.get_repository", {"repo": "o/r"})
    assert plugin(gw, "b").calls == []
    assert gw.routing.board.usable("a")  # the provider answered: it is healthy


async def test_every_candidate_failing_raises_the_last_error_with_the_hops(gw: Gateway) -> None:
    failing(gw, "a", lambda: ProviderUnavailable("a down"))
    failing(gw, "b", lambda: Timeout("b slow"))
    ctx = RequestContext()
    with pytest.raises(Timeout) as info:
        await gw.execute("git.get_repository", {"repo": "o/r"}, ctx)
    assert info.value.details["failovers"] == ctx.meta["failovers"]
    assert [h["from"] for h in ctx.meta["failovers"]] == ["a"]


async def test_no_move_once_the_deadline_has_passed(gw: Gateway) -> None:
    plugin(gw, "a").delay = 0.2
    ctx = RequestContext.with_timeout(0.05)
    with pytest.raises(Timeout):
        await gw.execute("git.get_repository", {"repo": "o/r"}, ctx)
    assert plugin(gw, "b").calls == []


async def test_an_unsupported_operation_moves_even_for_writes() -> None:
    g = gateway(RULES, plugins=("a", "b"), providers={"a": "memory-ro"})
    await g.start()
    try:
        ctx = RequestContext()
        repo = await g.execute("git.create_repository", {"name": "x", "owner": "o"}, ctx)
        assert repo.provider == "b"  # type: ignore[attr-defined]
        assert ctx.meta["failovers"][0]["reason"] == "operation_not_supported"
        assert g.routing.board.usable("a")
    finally:
        await g.stop()


async def test_not_found_moves_reads_when_enabled_for_migrations() -> None:
    g = gateway({**RULES, "failover": {"onNotFound": True}}, plugins=("a", "b"))
    await g.start()
    try:
        b = plugin(g, "b")
        b.repos["o/only-on-b"] = b._repo("o", "only-on-b")
        ctx = RequestContext()
        repo = await g.execute("git.get_repository", {"repo": "o/only-on-b"}, ctx)
        assert repo.provider == "b" and ctx.meta["failovers"][0]["reason"] == "not_found"  # type: ignore[attr-defined]
        with pytest.raises(NotFound):  # a write never moves on NotFound
            await g.execute("git.update_repository", {"repo": "o/only-on-b", "description": "x"})
        with pytest.raises(NotFound):  # nowhere: the last NotFound is the answer
            await g.execute("git.get_repository", {"repo": "o/nowhere"})
    finally:
        await g.stop()


async def test_explicit_instance_bypasses_routing(gw: Gateway) -> None:
    ctx: dict[str, Any] = {}
    failing(gw, "b", lambda: ProviderUnavailable("down"))
    with pytest.raises(ProviderUnavailable):
        await gw.execute("git.get_repository", {"repo": "o/r"}, RequestContext(plugin="b"))
    assert plugin(gw, "a").calls == [] and ctx == {}
    with pytest.raises(OperationNotSupported):
        await gw.execute("git.create_branch", {"repo": "o/r", "branch": "x"}, RequestContext(plugin="a"))
