"""Balancers among tied candidates: distributions with fixed seeds, and the cost model."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from tests.routing.fakes import engine, gateway, plugin, request

from mosaic.routing.balancers import (
    BalanceInput,
    Cost,
    Latency,
    LeastConnections,
    RoundRobin,
    Stats,
    Weighted,
)
from mosaic.routing.config import LoadBalancingSpec

TIE = ["a", "b", "c"]


def inp(op: str = "git.get_repository", size: int | None = None, load: dict[str, int] | None = None
        ) -> BalanceInput:
    loads = load or {}
    return BalanceInput(op, size, lambda p: loads.get(p, 0))


def firsts(balancer: Any, n: int, tier: list[str] = TIE, **kw: Any) -> Counter[str]:
    return Counter(balancer.order(tier, inp(**kw))[0][0] for _ in range(n))


def test_round_robin_is_exactly_even_and_keeps_the_rest_as_failover() -> None:
    rr = RoundRobin()
    assert firsts(rr, 300) == {"a": 100, "b": 100, "c": 100}
    order, _ = rr.order(TIE, inp())
    assert sorted(order) == TIE and order[1:] == [*TIE[TIE.index(order[0]) + 1:], *TIE[:TIE.index(order[0])]]
    # explain (commit=False) reports the next choice without consuming it
    peek = rr.order(TIE, inp(), commit=False)[0][0]
    assert rr.order(TIE, inp())[0][0] == peek


def test_least_connections_prefers_idle_and_rotates_among_equals() -> None:
    lc = LeastConnections()
    order, info = lc.order(TIE, inp(load={"a": 5, "b": 0, "c": 2}))
    assert order == ["b", "c", "a"] and info["inflight"] == {"a": 5, "b": 0, "c": 2}
    assert firsts(lc, 90, load={"a": 1, "b": 1, "c": 1}) == {"a": 30, "b": 30, "c": 30}


def test_weighted_follows_the_weights() -> None:
    spec = LoadBalancingSpec.model_validate({"strategy": "weighted", "weights": {"a": 1, "b": 3, "c": 6},
                                             "seed": 7})
    import random

    w = Weighted(spec.weights, random.Random(spec.seed))
    n = 20000
    counts = firsts(w, n)
    for p, share in (("a", 0.1), ("b", 0.3), ("c", 0.6)):
        assert abs(counts[p] / n - share) < 0.015, counts
    order, info = w.order(TIE, inp(), commit=False)
    assert order == ["c", "b", "a"] and info["probability"] == {"a": 0.1, "b": 0.3, "c": 0.6}


def test_latency_prefers_the_fastest_and_explores_a_little() -> None:
    import random

    stats = Stats(alpha=0.5)
    for p, ms in (("a", 100.0), ("b", 20.0), ("c", 50.0)):
        for _ in range(3):
            stats.observe(p, "git.get_repository", ms)
    lat = Latency(stats, explore=0.1, rng=random.Random(3))
    n = 10000
    counts = firsts(lat, n)
    assert abs(counts["b"] / n - 0.9) < 0.02
    assert abs(counts["a"] / n - 0.05) < 0.015 and abs(counts["c"] / n - 0.05) < 0.015
    order, info = lat.order(TIE, inp(), commit=False)
    assert order == ["b", "c", "a"] and info["ewma_ms"]["b"] == 20.0
    # An instance never measured is tried first, to learn its latency.
    assert lat.order([*TIE, "d"], inp(), commit=False)[0][0] == "d"


def cost_spec(**over: Any) -> LoadBalancingSpec:
    # The seed's use case 5: a 2 h build, $50 on GitHub, $5 on self-hosted Jenkins.
    return LoadBalancingSpec.model_validate({
        "strategy": "cost",
        "costs": {"github-actions": {"perMinute": 50 / 120},
                  "jenkins": {"perMinute": 5 / 120, "capacity": 4, "expectedDurationMs": 2 * 3600_000}},
        "sla": {"maxDurationMs": 3 * 3600_000, "operations": {"cicd.get_*": 1000}},
        **over,
    })


def test_cost_picks_the_cheapest_candidate_that_meets_the_sla() -> None:
    stats = Stats()
    stats.observe("github-actions", "cicd.trigger_pipeline", 2 * 3600_000)
    bal = Cost(cost_spec(), stats)
    order, info = bal.order(["github-actions", "jenkins"], inp("cicd.trigger_pipeline", load={"jenkins": 1}))
    assert order == ["jenkins", "github-actions"]
    est = info["estimates"]
    assert est["jenkins"] == {"duration_ms": 7200000.0, "duration_source": "configured", "load": 0.25,
                              "cost": 5.0, "meets_sla": True}
    assert est["github-actions"]["cost"] == 50.0 and est["github-actions"]["duration_source"] == "observed"
    assert info["reason"] == "cheapest meeting the SLA"


def test_cost_avoids_a_saturated_provider_and_falls_back_to_the_fastest() -> None:
    stats = Stats()
    stats.observe("github-actions", "cicd.trigger_pipeline", 2 * 3600_000)
    bal = Cost(cost_spec(), stats)
    # 8 runs on 4 slots: queueing stretches the expected duration to 4.5 h > 3 h SLA.
    order, info = bal.order(["github-actions", "jenkins"], inp("cicd.trigger_pipeline", load={"jenkins": 8}))
    assert order == ["github-actions", "jenkins"]
    assert info["estimates"]["jenkins"]["duration_ms"] == 4.5 * 3600_000
    assert info["estimates"]["jenkins"]["meets_sla"] is False
    stats.observe("github-actions", "cicd.trigger_pipeline", 6 * 3600_000)  # EWMA moves to 3.2 h
    order, info = bal.order(["github-actions", "jenkins"], inp("cicd.trigger_pipeline", load={"jenkins": 8}))
    assert info["reason"] == "no candidate meets the SLA: fastest"
    assert order[0] == "github-actions"


def test_cost_counts_data_volume_and_per_operation_slas() -> None:
    spec = LoadBalancingSpec.model_validate({"strategy": "cost", "costs": {
        "a": {"perRequest": 0.01, "perGB": 0.09}, "b": {"perRequest": 0.05}}})
    bal = Cost(spec, Stats())
    assert bal.order(["a", "b"], inp(size=1 << 28))[0] == ["a", "b"]  # 0.01 + 0.25 x 0.09 < 0.05
    assert bal.order(["a", "b"], inp(size=1 << 30))[0] == ["b", "a"]  # 0.01 + 0.09 > 0.05
    assert Cost(cost_spec(), Stats()).sla_ms("cicd.get_pipeline_status") == 1000


def test_the_decision_records_the_cost_estimate_it_used() -> None:
    eng = engine({"rules": [{"pattern": "*", "provider": ["github-actions", "jenkins"]}],
                  "loadBalancing": cost_spec().model_dump(by_alias=True)},
                 plugins=("github-actions", "jenkins"), service="cicd")
    ctx, op = request("cicd.trigger_pipeline", {"repo": "ml/model", "pipeline": "train", "size_bytes": 5 << 30})
    d = eng.decide(ctx, op)
    meta = d.meta()
    # GitHub's run time is unknown: the same work is assumed to take what it takes elsewhere.
    assert d.balance["estimates"]["github-actions"]["duration_source"] == "peers"
    assert d.balance["estimates"]["github-actions"]["cost"] == 50.0
    assert meta["chosen"] == "jenkins" and meta["strategy"] == "cost"
    assert meta["estimate"]["cost"] == 5.0 and meta["estimate"]["sla_ms"] == 3 * 3600_000


async def test_least_connections_through_the_gateway_avoids_a_busy_instance() -> None:
    gw = gateway({"rules": [{"pattern": "*", "provider": ["a", "b"]}],
                  "loadBalancing": {"strategy": "least-connections"}}, plugins=("a", "b"))
    await gw.start()
    try:
        for p in ("a", "b"):
            plugin(gw, p).repos["o/r"] = plugin(gw, p)._repo("o", "r")
        slow = plugin(gw, "a")
        slow.delay = 0.3
        busy = asyncio.create_task(gw.execute("git.get_repository", {"repo": "o/r"}, _ctx_for_a()))
        await asyncio.sleep(0.02)
        slow.delay = 0.0
        served = Counter()
        for _ in range(10):
            r = await gw.execute("git.get_repository", {"repo": "o/r"})
            served[r.provider] += 1  # type: ignore[attr-defined]
        assert served == {"b": 10}
        await busy
    finally:
        await gw.stop()


def _ctx_for_a() -> Any:
    from mosaic.gateway.context import RequestContext

    return RequestContext(plugin="a")
