"""Health: background probes, passive outcomes, transitions, and never a probe per request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from tests.routing.fakes import FakeResolver, gateway, plugin

from mosaic.config.schema import MosaicConfig
from mosaic.errors import ProviderUnavailable
from mosaic.gateway.context import RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.plugins.contract import HealthStatus
from mosaic.plugins.manager import PluginManager
from mosaic.routing.health import HealthBoard

FAST = {"interval": 100, "timeout": 50, "unhealthyThreshold": 2}
RULES = {"rules": [{"pattern": "*", "provider": "a", "priority": 10},
                   {"pattern": "*", "provider": "b", "priority": 5}],
         "loadBalancing": {"healthCheck": FAST}}


def test_board_transitions_and_version() -> None:
    board = HealthBoard(unhealthy_threshold=2)
    assert board.usable("a") and board.get("a").status == "unknown"
    v = board.version
    board.probe_result("a", HealthStatus(status="healthy"), 1.0)
    assert board.version == v  # unknown -> healthy: still usable, cached plans stay valid
    board.probe_result("a", HealthStatus(status="degraded", detail="slow"), 900.0)
    assert board.usable("a") and board.version == v
    board.probe_result("a", HealthStatus(status="unhealthy", detail="db down"), 3.0)
    assert not board.usable("a") and board.version == v + 1
    assert board.get("a").detail == "db down" and board.get("a").source == "probe"
    board.probe_result("a", HealthStatus(status="healthy"), 1.0)
    assert board.usable("a") and board.version == v + 2
    # Passive: N consecutive failures mark it unhealthy at once; a success restores it.
    board.record_failure("a", "provider_unavailable")
    assert board.usable("a")
    board.record_success("a")
    board.record_failure("a", "timeout")
    assert board.usable("a")  # the success reset the count
    board.record_failure("a", "timeout")
    assert not board.usable("a") and board.get("a").source == "passive"
    assert "2 consecutive failures; last: timeout" in board.get("a").detail
    board.record_success("a")
    assert board.usable("a") and board.get("a").source == "call"


async def wait_for(cond: Callable[[], bool], limit: float = 2.0) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_probes_move_traffic_away_and_back() -> None:
    gw = gateway(RULES, plugins=("a", "b"))
    await gw.start()
    try:
        a, b = plugin(gw, "a"), plugin(gw, "b")
        for p in (a, b):
            p.repos["o/r"] = p._repo("o", "r")
        assert (await gw.execute("git.get_repository", {"repo": "o/r"})).provider == "a"  # type: ignore[attr-defined]
        a.health = "unhealthy"
        await wait_for(lambda: not gw.routing.board.usable("a"))
        served = await gw.execute("git.get_repository", {"repo": "o/r"})
        assert served.provider == "b"  # type: ignore[attr-defined]
        assert a.calls == ["get_repository"]  # skipped, not tried
        a.health = "healthy"
        await wait_for(lambda: gw.routing.board.usable("a"))
        assert (await gw.execute("git.get_repository", {"repo": "o/r"})).provider == "a"  # type: ignore[attr-defined]
    finally:
        await gw.stop()


async def test_a_hanging_health_check_times_out_as_unhealthy() -> None:
    gw = gateway(RULES, plugins=("a", "b"))
    await gw.start()
    try:
        plugin(gw, "a").health_delay = 5
        await wait_for(lambda: not gw.routing.board.usable("a"))
        assert "timed out after 50 ms" in gw.routing.board.get("a").detail
    finally:
        await gw.stop()


async def test_requests_never_probe() -> None:
    gw = gateway({**RULES, "loadBalancing": {"healthCheck": {"interval": 60000, "timeout": 1000}}},
                 plugins=("a", "b"))
    await gw.start()
    try:
        a = plugin(gw, "a")
        a.repos["o/r"] = a._repo("o", "r")
        await wait_for(lambda: a.health_checks >= 1)
        before = a.health_checks
        for _ in range(200):
            await gw.execute("git.get_repository", {"repo": "o/r"})
        assert a.health_checks == before
        assert len(a.calls) == 200
    finally:
        await gw.stop()


async def test_all_unhealthy_fails_fast_listing_every_candidate() -> None:
    gw = gateway(RULES, plugins=("a", "b"))
    await gw.start()
    try:
        for pid in ("a", "b"):
            plugin(gw, pid).health = "unhealthy"
        await wait_for(lambda: not gw.routing.board.usable("a") and not gw.routing.board.usable("b"))
        with pytest.raises(ProviderUnavailable) as info:
            await gw.execute("git.get_repository", {"repo": "o/r"})
        err = info.value
        assert err.sent is False
        assert "a (unhealthy: a says unhealthy)" in err.message and "b (unhealthy" in err.message
        assert [c["provider"] for c in err.details["candidates"]] == ["a", "b"]
        assert plugin(gw, "a").calls == [] and plugin(gw, "b").calls == []
    finally:
        await gw.stop()


async def test_passive_failures_mark_unhealthy_before_the_next_probe() -> None:
    gw = gateway({**RULES, "loadBalancing": {"healthCheck": {"interval": 60000, "timeout": 1000,
                                                             "unhealthyThreshold": 2}}},
                 plugins=("a", "b"))
    await gw.start()
    try:
        a, b = plugin(gw, "a"), plugin(gw, "b")
        b.repos["o/r"] = b._repo("o", "r")
        a.fail = lambda: ProviderUnavailable("connection reset")
        for _ in range(5):
            assert (await gw.execute("git.get_repository", {"repo": "o/r"})).provider == "b"  # type: ignore[attr-defined]
        assert len(a.calls) == 2  # two failures, then skipped
        assert gw.routing.board.get("a").source == "passive"
    finally:
        await gw.stop()


async def test_cached_decisions_follow_health_changes() -> None:
    gw = gateway({**RULES, "loadBalancing": {"healthCheck": {"interval": 60000}}}, plugins=("a", "b"))
    await gw.start()
    try:
        call = gw.prepare("git.get_repository", {"repo": "o/r"}, RequestContext())
        first = gw.routing.decide(call.ctx, call.op)
        again = gw.routing.decide(call.ctx, call.op)
        assert first.candidates == ["a", "b"] and not first.cached and again.cached
        gw.routing.board.probe_result("a", HealthStatus(status="unhealthy", detail="x"), 1)
        after = gw.routing.decide(call.ctx, call.op)
        assert after.candidates == ["b"] and not after.cached
        assert after.skipped == (("a", "unhealthy: x"),)
    finally:
        await gw.stop()


async def test_an_instance_that_is_not_running_is_skipped() -> None:
    cfg = MosaicConfig.model_validate({"orchestration": {
        "plugins": [{"id": "a", "type": "git", "provider": "memory", "enabled": False},
                    {"id": "b", "type": "git", "provider": "memory"}],
        "routing": RULES}})
    gw = Gateway(cfg, PluginManager(FakeResolver()))
    await gw.start()
    try:
        b = plugin(gw, "b")
        b.repos["o/r"] = b._repo("o", "r")
        ctx = RequestContext()
        assert (await gw.execute("git.get_repository", {"repo": "o/r"}, ctx)).provider == "b"  # type: ignore[attr-defined]
        assert ctx.meta["routing"]["skipped"] == [{"provider": "a", "reason": "not running"}]
    finally:
        await gw.stop()
