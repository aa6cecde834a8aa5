"""Choosing among equally ranked candidates.

A balancer orders a tier: its first element serves the call, the rest follow in the
failover order. ``commit=False`` (explain) reports the same choice without moving
round-robin counters or drawing random numbers.
"""

from __future__ import annotations

import fnmatch
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mosaic.routing.config import CostSpec, LoadBalancingSpec


class Stats:
    """Observed call durations (EWMA, ms) per provider and per provider+operation."""

    def __init__(self, alpha: float = 0.3) -> None:
        self.alpha = alpha
        self._by_provider: dict[str, float] = {}
        self._by_op: dict[tuple[str, str], float] = {}
        self.calls: dict[str, int] = {}

    def observe(self, provider: str, operation: str, ms: float) -> None:
        a = self.alpha
        old = self._by_provider.get(provider)
        self._by_provider[provider] = ms if old is None else old + a * (ms - old)
        key = (provider, operation)
        old = self._by_op.get(key)
        self._by_op[key] = ms if old is None else old + a * (ms - old)
        self.calls[provider] = self.calls.get(provider, 0) + 1

    def ewma(self, provider: str, operation: str | None = None) -> float | None:
        if operation is not None:
            v = self._by_op.get((provider, operation))
            if v is not None:
                return v
        return self._by_provider.get(provider)

    def snapshot(self) -> dict[str, Any]:
        return {p: {"ewma_ms": round(v, 3), "calls": self.calls.get(p, 0)}
                for p, v in sorted(self._by_provider.items())}


@dataclass(slots=True)
class BalanceInput:
    operation: str
    size_bytes: int | None
    inflight: Callable[[str], int]


class Balancer(ABC):
    name: str

    @abstractmethod
    def order(self, tier: Sequence[str], inp: BalanceInput, commit: bool = True
              ) -> tuple[list[str], dict[str, Any]]:
        """The tier in the order to try it, and the figures the choice was based on."""


class RoundRobin(Balancer):
    name = "round-robin"

    def __init__(self) -> None:
        self._next: dict[tuple[str, ...], int] = {}

    def offset(self, tier: Sequence[str], commit: bool) -> int:
        key = tuple(tier)
        n = self._next.get(key, 0)
        if commit:
            self._next[key] = n + 1
        return n % len(tier)

    def order(self, tier: Sequence[str], inp: BalanceInput, commit: bool = True
              ) -> tuple[list[str], dict[str, Any]]:
        i = self.offset(tier, commit)
        return [*tier[i:], *tier[:i]], {}


class LeastConnections(Balancer):
    name = "least-connections"

    def __init__(self) -> None:
        self._rr = RoundRobin()

    def order(self, tier: Sequence[str], inp: BalanceInput, commit: bool = True
              ) -> tuple[list[str], dict[str, Any]]:
        # Rotating before a stable sort spreads calls among equally loaded candidates.
        rotated, _ = self._rr.order(tier, inp, commit)
        load = {p: inp.inflight(p) for p in tier}
        return sorted(rotated, key=load.__getitem__), {"inflight": load}


class Weighted(Balancer):
    name = "weighted"

    def __init__(self, weights: dict[str, float], rng: random.Random) -> None:
        self.weights = weights
        self.rng = rng

    def order(self, tier: Sequence[str], inp: BalanceInput, commit: bool = True
              ) -> tuple[list[str], dict[str, Any]]:
        w = {p: self.weights.get(p, 1.0) for p in tier}
        total = sum(w.values())
        by_weight = sorted(tier, key=lambda p: -w[p])
        info = {"weights": w, "probability": {p: round(w[p] / total, 4) for p in tier}}
        if not commit:
            return by_weight, info
        x = self.rng.random() * total
        chosen = tier[-1]
        for p in tier:
            x -= w[p]
            if x < 0:
                chosen = p
                break
        return [chosen, *(p for p in by_weight if p != chosen)], info


class Latency(Balancer):
    """Fastest observed (EWMA) first; unmeasured candidates are tried first to learn them."""

    name = "latency"

    def __init__(self, stats: Stats, explore: float, rng: random.Random) -> None:
        self.stats = stats
        self.explore = explore
        self.rng = rng
        self._rr = RoundRobin()

    def order(self, tier: Sequence[str], inp: BalanceInput, commit: bool = True
              ) -> tuple[list[str], dict[str, Any]]:
        est = {p: self.stats.ewma(p, inp.operation) for p in tier}
        rotated, _ = self._rr.order(tier, inp, commit)
        ordered = sorted(rotated, key=lambda p: _or_first(est[p]))
        info: dict[str, Any] = {"ewma_ms": {p: None if v is None else round(v, 3) for p, v in est.items()}}
        if commit and len(ordered) > 1 and self.explore > 0 and self.rng.random() < self.explore:
            pick = self.rng.randrange(1, len(ordered))
            ordered.insert(0, ordered.pop(pick))
            info["explored"] = True
        return ordered, info


def _or_first(v: float | None) -> float:
    return -1.0 if v is None else v


class Cost(Balancer):
    """Cheapest candidate expected to meet the SLA (seed use case 5).

    Expected run time: the observed EWMA for this provider and operation, else for the
    provider, else the configured ``expectedDurationMs``, else the mean of the other
    candidates' (the same work elsewhere). When the provider already runs ``capacity``
    calls, queueing stretches it by ``(inflight - capacity + 1) / capacity`` run lengths.
    Cost = perRequest + perMinute x run time + perGB x build size. Candidates meeting the
    SLA go cheapest first (an unknown cost last); if none does, the fastest first.
    """

    name = "cost"

    def __init__(self, spec: LoadBalancingSpec, stats: Stats) -> None:
        self.spec = spec
        self.stats = stats

    def sla_ms(self, operation: str) -> float | None:
        for pattern, ms in self.spec.sla.operations.items():
            if fnmatch.fnmatchcase(operation, pattern):
                return ms
        return self.spec.sla.max_duration_ms

    def _run(self, provider: str, operation: str) -> tuple[float | None, str]:
        observed = self.stats.ewma(provider, operation)
        if observed is not None:
            return observed, "observed"
        configured = self.spec.costs.get(provider, CostSpec()).expected_duration_ms
        if configured is not None:
            return configured, "configured"
        return None, "unknown"

    def estimate(self, provider: str, inp: BalanceInput, run: float | None, source: str) -> dict[str, Any]:
        cost = self.spec.costs.get(provider, CostSpec())
        inflight = inp.inflight(provider)
        load = None
        expected = run
        if cost.capacity is not None:
            load = inflight / cost.capacity
            if run is not None and inflight >= cost.capacity:
                expected = run * (1 + (inflight - cost.capacity + 1) / cost.capacity)
        price: float | None = cost.per_request + cost.per_gb * (inp.size_bytes or 0) / (1 << 30)
        if cost.per_minute:
            price = None if run is None else price + cost.per_minute * run / 60000  # type: ignore[operator]
        return {"duration_ms": None if expected is None else round(expected, 3), "duration_source": source,
                "load": None if load is None else round(load, 3),
                "cost": None if price is None else round(price, 6)}

    def order(self, tier: Sequence[str], inp: BalanceInput, commit: bool = True
              ) -> tuple[list[str], dict[str, Any]]:
        sla = self.sla_ms(inp.operation)
        runs = {p: self._run(p, inp.operation) for p in tier}
        known = [r for r, _ in runs.values() if r is not None]
        peers = sum(known) / len(known) if known else None
        est = {p: self.estimate(p, inp, *(runs[p] if runs[p][0] is not None else (peers, "peers" if peers
                                                                                     else "unknown")))
               for p in tier}
        pos = {p: i for i, p in enumerate(tier)}

        def meets(p: str) -> bool:
            d = est[p]["duration_ms"]
            return sla is None or d is None or d <= sla

        inf = float("inf")
        ok = sorted((p for p in tier if meets(p)),
                    key=lambda p: (inf if est[p]["cost"] is None else est[p]["cost"],
                                   est[p]["duration_ms"] or 0.0, pos[p]))
        late = sorted((p for p in tier if not meets(p)),
                      key=lambda p: (est[p]["duration_ms"], inf if est[p]["cost"] is None else est[p]["cost"],
                                     pos[p]))
        for p in tier:
            est[p]["meets_sla"] = meets(p)
        reason = "cheapest meeting the SLA" if ok else "no candidate meets the SLA: fastest"
        return [*ok, *late], {"sla_ms": sla, "estimates": est, "reason": reason}


def make_balancer(spec: LoadBalancingSpec, stats: Stats) -> Balancer:
    rng = random.Random(spec.seed)
    if spec.strategy == "round-robin":
        return RoundRobin()
    if spec.strategy == "least-connections":
        return LeastConnections()
    if spec.strategy == "weighted":
        return Weighted(spec.weights, rng)
    if spec.strategy == "latency":
        return Latency(stats, spec.latency.explore, rng)
    return Cost(spec, stats)
