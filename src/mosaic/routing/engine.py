"""The routing engine: rules -> ranked candidates -> health filter -> balancer; and explain.

``decide`` is synchronous and does no I/O: compiled rule lookup (or a cache hit), a dict
lookup per candidate for health, and the balancer. Probes and phase-file checks run in
background tasks started by ``start``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, Field

from mosaic.catalog.base import Operation, Service
from mosaic.errors import MosaicError, OperationNotSupported, PluginError, ProviderUnavailable
from mosaic.gateway.context import RequestContext
from mosaic.plugins.contract import ProviderPlugin
from mosaic.routing.balancers import BalanceInput, Balancer, Stats, make_balancer
from mosaic.routing.config import RoutingConfig
from mosaic.routing.health import HealthBoard, HealthMonitor, cancel_all
from mosaic.routing.phases import PhaseController, PhaseStore
from mosaic.routing.rules import Facts, Tier, pattern_matches, with_legacy
from mosaic.routing.ruleset import RuleSet, compile_rulesets


class Plan(NamedTuple):
    """What the rules and health say for one kind of request (the cached part)."""

    tiers: tuple[Tier, ...]
    usable: tuple[tuple[str, ...], ...]
    skipped: tuple[tuple[str, str], ...]
    fallback: bool


class Decision(NamedTuple):
    operation: str
    phase: str | None
    candidates: list[str]
    tiers: tuple[Tier, ...]
    skipped: tuple[tuple[str, str], ...]
    strategy: str
    balance: dict[str, Any]
    fallback: bool = False
    cached: bool = False

    @property
    def chosen(self) -> str | None:
        return self.candidates[0] if self.candidates else None

    def meta(self) -> dict[str, Any]:
        """The small, JSON-able record put in ``ctx.meta["routing"]``."""
        chosen = self.chosen
        # The rules that put the chosen provider where it is (its best tier).
        rules = next(([r.label for r in t.rules if chosen in r.providers]
                      for t in self.tiers if chosen in t.providers), [])
        out: dict[str, Any] = {
            "phase": self.phase, "chosen": chosen, "candidates": list(self.candidates), "rules": rules,
            "strategy": self.strategy, "fallback": self.fallback, "cached": self.cached,
        }
        if self.skipped:
            out["skipped"] = [{"provider": p, "reason": r} for p, r in self.skipped]
        est = self.balance.get("estimates")
        if isinstance(est, dict) and self.chosen in est:
            out["estimate"] = {"sla_ms": self.balance.get("sla_ms"), **est[self.chosen]}
        return out


class RuleView(BaseModel):
    rule: str
    priority: int
    default: bool
    providers: list[str]
    pattern: str | None = None
    condition: str | None = None
    applies: bool = Field(description="The rule's service/operation filter admits this operation.")
    pattern_matched: bool | None = None
    condition_matched: bool | None = None
    matched: bool


class CandidateView(BaseModel):
    provider: str
    running: bool
    health: dict[str, Any]
    position: int | None = Field(None, description="0 = serves the call; then the failover order.")
    tier: int | None = Field(None, description="0 = the winning tier.")
    score: int | None = Field(None, description="Priority of the best matching rule naming it.")
    default_rule: bool = False
    rules: list[str] = Field(default_factory=list)
    chosen: bool = False
    skipped: str | None = None
    balancer: dict[str, Any] = Field(default_factory=dict)


class Explanation(BaseModel):
    operation: str
    phase: str | None
    routed: bool = Field(description="False when no rule exists for the service (default instance).")
    facts: dict[str, Any]
    strategy: str
    chosen: str | None
    order: list[str]
    fallback: bool
    candidates: list[CandidateView]
    rules: list[RuleView]
    rules_total: int
    balance: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


def _is_provider_failure(exc: BaseException) -> bool:
    """Does this error say something about the provider's health (vs the caller's request)?"""
    if isinstance(exc, ProviderUnavailable):
        return True
    if isinstance(exc, OperationNotSupported):
        return False
    if isinstance(exc, MosaicError):
        return type(exc) in (MosaicError, PluginError)
    return True


class RoutingEngine:
    def __init__(self, config: RoutingConfig, services: Mapping[str, Service], *,
                 defaults: Mapping[str, str] | None = None,
                 instances: Callable[[], dict[str, ProviderPlugin]] | None = None,
                 state_dir: Path | None = None) -> None:
        self.config = config
        self.services = dict(services)
        self._instances = instances
        self._defaults: dict[str, str] = dict(defaults or {})
        rulesets = compile_rulesets(config, self.services)
        directory = config.state_dir or state_dir
        store = PhaseStore(directory) if directory is not None and config.phases else None
        self.phases = PhaseController(rulesets, config.active_phase, store)
        lb = config.load_balancing
        self.board = HealthBoard(lb.health_check.unhealthy_threshold)
        self.stats = Stats(lb.latency.alpha)
        self.balancer: Balancer = make_balancer(lb, self.stats)
        self.monitor: HealthMonitor | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ----------------------------------------------------------------
    @property
    def has_rules(self) -> bool:
        return any(rs.rules for rs in self.phases.rulesets.values())

    async def start(self) -> None:
        await self.phases.load()
        if not self.has_rules:
            return
        hc = self.config.load_balancing.health_check
        if self._instances is not None and self.monitor is None:
            self.monitor = HealthMonitor(self.board, self._instances, hc.interval / 1000, hc.timeout / 1000,
                                         ids=self._routed_ids)
            await self.monitor.start()
        if self.phases.store is not None and not self._tasks:
            self._tasks.append(asyncio.create_task(
                self.phases.watch(self.config.phase_watch_interval / 1000), name="routing:phase-watch"))

    async def stop(self) -> None:
        if self.monitor is not None:
            await self.monitor.stop()
            self.monitor = None
        await cancel_all(self._tasks)
        self._tasks.clear()

    def _routed_ids(self) -> set[str]:
        running = set(self._instances()) if self._instances is not None else set()
        return running & set(self.services)

    # -- decisions ------------------------------------------------------------------
    @property
    def current(self) -> RuleSet:
        return self.phases.current

    def routes(self, service: str) -> bool:
        return self.phases.current.routes(service)

    def unusable(self, provider: str) -> str | None:
        if self._instances is not None and provider not in self._instances():
            return "not running"
        if not self.board.usable(provider):
            return f"unhealthy: {self.board.get(provider).detail}"
        return None

    def fallback(self, service: str) -> str | None:
        """When no rule matches: the service's default instance, else its first running one
        (what the gateway does without routing rules)."""
        d = self._defaults.get(service)
        if d is not None:
            return d
        ids = [p for p, s in self.services.items() if s == service]
        running = self._instances() if self._instances is not None else None
        for p in ids:
            if running is None or p in running:
                return p
        return ids[0] if ids else None

    def _plan(self, tiers: tuple[Tier, ...], service: str) -> Plan:
        fallback = False
        if not tiers:
            fallback = True
            d = self.fallback(service)
            tiers = (Tier(0, True, (d,), ()),) if d is not None else ()
        running = self._instances() if self._instances is not None else None
        down = self.board.down
        if not down and (running is None or all(p in running for t in tiers for p in t.providers)):
            return Plan(tiers, tuple(t.providers for t in tiers), (), fallback)
        usable: list[tuple[str, ...]] = []
        skipped: list[tuple[str, str]] = []
        for t in tiers:
            ok: list[str] = []
            for p in t.providers:
                reason = self.unusable(p)
                if reason is None:
                    ok.append(p)
                else:
                    skipped.append((p, reason))
            if ok:
                usable.append(tuple(ok))
        return Plan(tiers, tuple(usable), tuple(skipped), fallback)

    def decide(self, ctx: RequestContext, op: Operation, *, ruleset: RuleSet | None = None,
               commit: bool = True, use_cache: bool = True) -> Decision:
        rs = ruleset or self.phases.current
        facts = Facts(ctx, op)
        plan: Plan | None = None
        key = None
        if use_cache and rs.cache_size:
            # Valid while no instance changed usability and none was added or removed.
            stamp = (self.board.version, len(self._instances()) if self._instances is not None else -1)
            if rs.cache_stamp != stamp:
                rs.cache.clear()
                rs.cache_stamp = stamp
            key = rs.cache_key(facts)
            plan = rs.cache.get(key)
        cached = plan is not None
        if plan is None:
            plan = self._plan(rs.match(facts), op.service)
            if key is not None:
                if len(rs.cache) >= rs.cache_size:
                    rs.cache.pop(next(iter(rs.cache)))
                rs.cache[key] = plan
        strategy = self.balancer.name
        qualified = facts.operation
        if not plan.usable:
            return Decision(qualified, rs.phase, [], plan.tiers, plan.skipped, strategy, {},
                            plan.fallback, cached)
        top = plan.usable[0]
        info: dict[str, Any] = {}
        if len(top) > 1:
            build = ctx.resource.get("build")
            size = build.get("size") if isinstance(build, dict) else None
            inp = BalanceInput(qualified, size if isinstance(size, int) else None, self.inflight)
            ordered, info = self.balancer.order(top, inp, commit)
        else:
            ordered = list(top)
        for rest in plan.usable[1:]:
            ordered.extend(rest)
        return Decision(qualified, rs.phase, ordered, plan.tiers, plan.skipped, strategy,
                        info, plan.fallback, cached)

    def inflight(self, provider: str) -> int:
        if self._instances is None:
            return 0
        p = self._instances().get(provider)
        return p.inflight if p is not None else 0

    def instances(self, ids: list[str]) -> list[ProviderPlugin]:
        running = self._instances() if self._instances is not None else {}
        return [running[i] for i in ids if i in running]

    def unavailable(self, decision: Decision, op: Operation) -> ProviderUnavailable:
        listed = ", ".join(f"{p} ({r})" for p, r in decision.skipped) or "none configured"
        return ProviderUnavailable(
            f"no healthy provider for {op.qualified_name}: {listed}",
            details={"operation": op.qualified_name, "phase": decision.phase,
                     "candidates": [{"provider": p, "reason": r} for p, r in decision.skipped]},
            sent=False)

    # -- outcomes (fed by the failover layer) ------------------------------------------
    def observe_success(self, provider: str, op: Operation, ms: float) -> None:
        self.stats.observe(provider, op.qualified_name, ms)
        self.board.record_success(provider)

    def observe_failure(self, provider: str, op: Operation, exc: BaseException, ms: float) -> None:
        if isinstance(exc, OperationNotSupported):
            return
        self.stats.observe(provider, op.qualified_name, ms)
        if _is_provider_failure(exc):
            code = getattr(exc, "code", type(exc).__name__)
            self.board.record_failure(provider, str(code))
        else:  # the provider answered; the request was at fault
            self.board.record_success(provider)

    # -- explain ----------------------------------------------------------------------
    def explain(self, ctx: RequestContext, op: Operation, *, all_rules: bool = False) -> Explanation:
        rs = self.phases.current
        facts = Facts(ctx, op)
        fields: dict[str, Any] = dict(facts.fields)
        fields["tenant"] = ctx.tenant
        fields["principal"] = {"id": ctx.principal.id, "roles": list(ctx.principal.roles),
                               "attributes": dict(ctx.principal.attributes)}
        svc_ids = [p for p, s in self.services.items() if s == op.service]
        routed = rs.routes(op.service) and ctx.plugin is None
        health = {p: {**self.board.get(p).view(), "usable": self.unusable(p) is None} for p in svc_ids}
        running = set(self._instances()) if self._instances is not None else set(svc_ids)
        if not routed:
            chosen = ctx.plugin or self.fallback(op.service)
            cands = [CandidateView(provider=p, running=p in running, health=health[p],
                                   position=0 if p == chosen else None, chosen=p == chosen)
                     for p in svc_ids]
            why = "explicit plugin" if ctx.plugin else "no routing rule for this service: default instance"
            return Explanation(operation=op.qualified_name, phase=rs.phase, routed=False, facts=fields,
                               strategy=why, chosen=chosen, order=[chosen] if chosen else [],
                               fallback=True, candidates=cands, rules=[], rules_total=0)
        decision = self.decide(ctx, op, commit=False, use_cache=False)
        views: list[RuleView] = []
        sm = rs.matchers.get(op.service)
        service_rules = sm.rules if sm is not None else []
        legacy_fields = with_legacy(facts.fields, rs.legacy is not None and "repo" in facts.fields
                                    and rs.legacy.contains(facts.fields["repo"]))
        if legacy_fields is not facts.fields:
            fields["legacy"] = True
        # The compiled matcher finds the matching rules; only --all walks every rule.
        matched_ids = {id(r) for r in rs.matching(facts)}
        for r in service_rules if all_rules else [r for r in service_rules if id(r) in matched_ids]:
            applies = r.applies_to(op)
            pm = pattern_matches(r.pattern, legacy_fields) if r.pattern is not None else None
            cm = r.condition.matches(facts.activation()) if r.condition is not None else None
            views.append(RuleView(rule=r.label, priority=r.priority, default=r.default,
                                  providers=list(r.providers),
                                  pattern=r.pattern.text if r.pattern else None,
                                  condition=r.condition.source if r.condition else None,
                                  applies=applies, pattern_matched=pm, condition_matched=cm,
                                  matched=id(r) in matched_ids))
        total = len(service_rules)
        position = {p: i for i, p in enumerate(decision.candidates)}
        tier_of: dict[str, tuple[int, Tier]] = {}
        for i, t in enumerate(decision.tiers):
            for p in t.providers:
                tier_of.setdefault(p, (i, t))
        rules_of: dict[str, list[str]] = {}
        for v in views:
            if v.matched:
                for p in v.providers:
                    rules_of.setdefault(p, []).append(v.rule)
        skipped = dict(decision.skipped)
        per: dict[str, dict[str, Any]] = {}
        for k, table in decision.balance.items():
            if isinstance(table, dict):
                for p, val in table.items():
                    if p in svc_ids:
                        per.setdefault(p, {})[k] = val
        cands = []
        for p in sorted(svc_ids, key=lambda p: (position.get(p, 1 << 30), p)):
            ti = tier_of.get(p)
            cands.append(CandidateView(
                provider=p, running=p in running, health=health[p], position=position.get(p),
                tier=ti[0] if ti else None, score=ti[1].priority if ti else None,
                default_rule=ti[1].default if ti else False, rules=rules_of.get(p, []),
                chosen=p == decision.chosen, skipped=skipped.get(p), balancer=per.get(p, {})))
        balance = {k: v for k, v in decision.balance.items() if not isinstance(v, dict)}
        error = None if decision.candidates else str(self.unavailable(decision, op))
        return Explanation(operation=op.qualified_name, phase=rs.phase, routed=True, facts=fields,
                           strategy=decision.strategy, chosen=decision.chosen,
                           order=list(decision.candidates), fallback=decision.fallback,
                           candidates=cands, rules=views, rules_total=total, balance=balance, error=error)

    def view(self) -> dict[str, Any]:
        return {"phase": self.phases.view(), "health": self.board.snapshot(),
                "latency": self.stats.snapshot(), "strategy": self.balancer.name,
                "rules": len(self.current.rules)}
