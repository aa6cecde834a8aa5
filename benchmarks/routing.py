"""Routing decision latency: the compiled engine vs the linear reference, in the same run.

    .venv/bin/python benchmarks/routing.py               # 10, 1k, 10k, 100k rules (~1-2 minutes)
    .venv/bin/python benchmarks/routing.py --sizes 10 10000 --samples 5000

What is timed is ``RoutingEngine.decide`` with its decision cache *off*: building the
request facts, rule lookup (compiled indexes, or a scan of every rule for the reference),
conditions, ranking, the health filter and the balancer. The reference is the
:class:`~mosaic.routing.reference.ReferenceEvaluator` in its fast mode (each glob
precompiled by wcmatch, conditions by the native CEL compiler), so the ratio is the
indexes' doing, not a slow baseline's. ``cached_p50_us`` is the same decision answered by
the decision cache (a repeated request).

Rule sets are a realistic mix: exact ``org:``/``repo:``/``user:`` rules, prefix globs,
brace and ``**`` globs, patterns with CEL conditions, region conditions (indexed by value),
a few negations and defaults; requests hit known organizations 70% of the time.
Both evaluators must agree on every request; the run fails otherwise.

Targets: <= 20 us p50 at 10,000 rules; growth 10 -> 10,000 rules < 3x.
The last line printed is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mosaic.catalog.base import Operation
from mosaic.catalog.registry import CATALOG
from mosaic.config.schema import MosaicConfig
from mosaic.gateway.context import Principal, RequestContext
from mosaic.gateway.resource import extract_resource
from mosaic.routing.engine import RoutingEngine
from mosaic.routing.reference import ReferenceEvaluator
from mosaic.routing.rules import Facts, Tier
from mosaic.routing.ruleset import RuleSet

PROVIDERS = [f"git-{i}" for i in range(8)]
REGIONS = [f"R{i}" for i in range(40)]
CONDITIONS = [
    "build.size > 10GB", "'ops' in user.roles", "user.region == 'EU'", "private == true",
    "user.id.startsWith('bot-') && user.region != 'US'", "operation == 'git.create_repository'",
]


def make_rules(n: int, rng: random.Random) -> list[dict[str, Any]]:
    """``n`` rules; as in real configurations, what grows with ``n`` is the number of
    organizations, repositories and users covered, not the number of rules about any one
    request: each organization has a few rules, and the rules every request must consider
    (negations, match-alls, defaults, region rules) stay a bounded set."""
    region_rules = min(n // 20, 80)
    rules: list[dict[str, Any]] = [
        # A handful every request must look at: negations, match-all, defaults.
        {"pattern": "!org:internal-*", "condition": "'ops' in user.roles", "provider": PROVIDERS[0],
         "priority": 5},
        {"pattern": "new-repos:*", "provider": PROVIDERS[1], "priority": 60},
        {"default": True, "provider": PROVIDERS[2]},
    ]
    i = 0
    while len(rules) < n:
        i += 1
        kind = rng.random()
        prio = rng.choice([0, 10, 20, 50, 50, 100])
        prov = rng.choice(PROVIDERS)
        if kind < 0.35:
            r = {"pattern": f"org:team-{i}"}
        elif kind < 0.50:
            r = {"pattern": f"org:grp-{i}-*"}
        elif kind < 0.65:
            r = {"pattern": f"repo:team-{i}/svc-{i % 50}"}
        elif kind < 0.72:
            r = {"pattern": f"repo:team-{i}/*"}
        elif kind < 0.80:
            r = {"pattern": f"user:bot-{i}"}
        elif kind < 0.86:
            r = {"pattern": f"{{proj-{i},proj-{i}-mirror}}/**"}
        elif kind < 0.95 or region_rules <= 0:
            r = {"pattern": f"org:team-{i}", "condition": rng.choice(CONDITIONS)}
        else:
            region_rules -= 1
            r = {"condition": f"user.region == '{rng.choice(REGIONS)}' && build.size > {rng.randrange(10)}GB"
                 if rng.random() < 0.5 else f"user.region == '{rng.choice(REGIONS)}'"}
        rules.append({**r, "provider": prov, "priority": prio})
    return rules[:n]


def make_requests(n_rules: int, count: int, rng: random.Random) -> list[tuple[RequestContext, Operation]]:
    out: list[tuple[RequestContext, Operation]] = []
    top = max(1, n_rules)
    for _ in range(count):
        k = rng.randrange(1, top + 1)
        org = rng.choice([f"team-{k}", f"grp-{k}-eu", f"proj-{k}", f"team-{k}"]) if rng.random() < 0.7 \
            else rng.choice(["internal-x", "unknown-org", "acme"])
        name = f"svc-{k % 50}" if rng.random() < 0.5 else "api"
        params: dict[str, Any]
        if rng.random() < 0.8:
            op, params = CATALOG["git.get_repository"], {"repo": f"{org}/{name}"}
        else:
            op, params = CATALOG["git.create_repository"], {"name": name, "owner": org,
                                                            "private": rng.random() < 0.3}
        model = op.params.model_validate(params)
        user = f"bot-{k}" if rng.random() < 0.2 else "alice"
        ctx = RequestContext(principal=Principal(id=user, roles=("dev",) if rng.random() < 0.8 else ("ops",),
                                                 attributes={"region": rng.choice(REGIONS)}))
        ctx.operation = op.qualified_name
        ctx.resource = extract_resource(op, model)
        out.append((ctx, op))
    return out


def build_engine(rules: list[dict[str, Any]]) -> RoutingEngine:
    cfg = MosaicConfig.model_validate({"orchestration": {
        "plugins": [{"id": p, "type": "git", "provider": "memory"} for p in PROVIDERS],
        "routing": {"rules": rules, "loadBalancing": {"strategy": "round-robin"}}}})
    return RoutingEngine(cfg.orchestration.routing, dict.fromkeys(PROVIDERS, "git"))


class LinearRuleSet(RuleSet):
    """The same rules behind the same engine, matched by scanning them all."""

    def __init__(self, rs: RuleSet) -> None:  # no indexes are built
        self.phase, self.rules, self.cache_size = rs.phase, rs.rules, 0
        self._ref = ReferenceEvaluator(rs.rules, rs.legacy_globs, fast=True)

    def match(self, facts: Facts, *, full: bool = False) -> tuple[Tier, ...]:
        return self._ref.match(facts)


def timed(fn: Callable[[RequestContext, Operation], Any], reqs: list[tuple[RequestContext, Operation]],
          samples: int, budget_s: float) -> list[float]:
    out: list[float] = []
    clock = time.perf_counter_ns
    end = time.perf_counter() + budget_s
    i = 0
    while len(out) < samples and (time.perf_counter() < end or len(out) < 5):
        ctx, op = reqs[i % len(reqs)]
        i += 1
        t0 = clock()
        fn(ctx, op)
        out.append((clock() - t0) / 1000)
    return out


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def measure(n: int, samples: int, reference_budget: float, seed: int) -> dict[str, float]:
    rng = random.Random(seed + n)
    rules = make_rules(n, rng)
    t0 = time.perf_counter()
    eng = build_engine(rules)
    build_s = time.perf_counter() - t0
    reqs = make_requests(n, 2000, rng)
    rs = eng.current
    linear = LinearRuleSet(rs)

    # Same answer from both, on every request (the run is void otherwise).
    for ctx, op in (reqs if n <= 10_000 else reqs[:40]):
        a = [t.key() for t in rs.match(Facts(ctx, op))]
        b = [t.key() for t in linear.match(Facts(ctx, op))]
        if a != b:
            raise SystemExit(f"compiled and reference disagree at {n} rules on {ctx.resource}: {a} != {b}")

    def compiled(ctx: RequestContext, op: Operation) -> Any:
        return eng.decide(ctx, op, use_cache=False)

    def cached(ctx: RequestContext, op: Operation) -> Any:
        return eng.decide(ctx, op)

    def reference(ctx: RequestContext, op: Operation) -> Any:
        return eng.decide(ctx, op, ruleset=linear, use_cache=False)

    gc.collect()
    gc.freeze()
    try:
        timed(compiled, reqs, 2000, 5)  # warm up
        dec = timed(compiled, reqs, samples, 30)
        for ctx, op in reqs:
            cached(ctx, op)
        cac = timed(cached, reqs, samples, 30)
        ref = timed(reference, reqs, samples, reference_budget)
    finally:
        gc.unfreeze()
    return {
        "decision_p50_us": round(statistics.median(dec), 2), "decision_p99_us": round(pct(dec, 0.99), 2),
        "cached_p50_us": round(statistics.median(cac), 2),
        "reference_p50_us": round(statistics.median(ref), 2), "reference_p99_us": round(pct(ref, 0.99), 2),
        "reference_samples": len(ref),
        "speedup_p50": round(statistics.median(ref) / statistics.median(dec), 1),
        "build_s": round(build_s, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10, 1000, 10_000, 100_000])
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--reference-budget", type=float, default=4.0,
                    help="Seconds spent timing the linear evaluator per size (fewer samples at 100k).")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    columns = ("build_s", "decision_p50_us", "decision_p99_us", "cached_p50_us", "reference_p50_us",
               "reference_p99_us", "reference_samples", "speedup_p50")
    figures: dict[str, dict[str, float]] = {k: {} for k in columns}
    print(f"{'rules':>8} {'build s':>8} {'p50 us':>8} {'p99 us':>8} {'cached':>8} "
          f"{'ref p50 us':>11} {'ref p99 us':>11} {'ref n':>6} {'speedup':>8}")
    for n in args.sizes:
        row = measure(n, args.samples, args.reference_budget, args.seed)
        for k in columns:
            figures[k][str(n)] = row[k]
        print(f"{n:>8} {row['build_s']:>8.2f} {row['decision_p50_us']:>8} {row['decision_p99_us']:>8} "
              f"{row['cached_p50_us']:>8} {row['reference_p50_us']:>11} {row['reference_p99_us']:>11} "
              f"{row['reference_samples']:>6} {row['speedup_p50']:>7}x", flush=True)

    p50 = figures["decision_p50_us"]
    out: dict[str, Any] = dict(figures)
    if "10" in p50 and "10000" in p50:
        out["growth_10_to_10k"] = round(p50["10000"] / p50["10"], 2)
        print(f"growth 10 -> 10k rules: {out['growth_10_to_10k']}x (target < 3x); "
              f"p50 at 10k: {p50['10000']} us (target <= 20 us)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
