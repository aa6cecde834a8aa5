"""A compiled, immutable rule set: one per phase (or one when there are no phases).

A request takes the current rule set once, when it is routed, and keeps it for its whole
life (including failover): switching phases swaps one reference, so in-flight requests
finish on the set they started with while new ones use the new set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mosaic.catalog.base import Service
from mosaic.errors import ConfigError
from mosaic.routing.config import RoutingConfig, RuleSpec
from mosaic.routing.matcher import GlobIndex, ServiceMatcher, build_legacy, build_matchers
from mosaic.routing.reference import ReferenceEvaluator
from mosaic.routing.rules import Facts, Rule, Tier, build_rule


class RuleSet:
    def __init__(self, phase: str | None, rules: list[Rule], legacy: list[str],
                 cache_size: int = 4096) -> None:
        self.phase = phase
        self.rules = rules
        self.legacy_globs = legacy
        self.matchers: dict[Service, ServiceMatcher] = build_matchers(rules)
        self.legacy: GlobIndex[str] | None = build_legacy(legacy)
        self.cache_size = cache_size
        # Decision cache: routing-relevant request facts -> plan. Owned by this rule set, so
        # a phase switch starts from an empty one; cleared when health changes.
        self.cache: dict[Any, Any] = {}
        self.cache_stamp: tuple[int, int] = (-1, -1)

    def routes(self, service: str) -> bool:
        return service in self.matchers

    def match(self, facts: Facts, *, full: bool = False) -> tuple[Tier, ...]:
        sm = self.matchers.get(facts.op.service)
        if sm is None:
            return ()
        return sm.match(facts, self.legacy, full=full)

    def matching(self, facts: Facts) -> list[Rule]:
        sm = self.matchers.get(facts.op.service)
        return [] if sm is None else sm.matching(facts, self.legacy)

    def cache_key(self, facts: Facts) -> tuple[Any, ...] | None:
        sm = self.matchers.get(facts.op.service)
        if sm is None:
            return None
        f = facts.fields
        # Field values are str or bool per field, never mixed: no type tag needed.
        key: list[Any] = [facts.operation]
        key.extend(f.get(name) for name in sm.used_fields)
        for path in sm.cond_paths:
            found, value = facts.lookup(path)
            key.append(_freeze(value) if found else _MISSING)
        return tuple(key)

    def reference(self, *, fast: bool = False) -> ReferenceEvaluator:
        return ReferenceEvaluator(self.rules, self.legacy_globs, fast=fast)


_MISSING = object()


def _freeze(v: Any) -> Any:
    t = type(v)
    if t is dict:
        return (dict, tuple(sorted((k, _freeze(x)) for k, x in v.items())))
    if t is list or t is tuple:
        return (list, tuple(_freeze(x) for x in v))
    # The type is part of the key: CEL tells 1, 1.0 and true apart, Python's hash does not.
    return (t, v)


def compile_rules(specs: list[RuleSpec], where: str, services: Mapping[str, Service], start: int,
                  problems: list[str]) -> list[Rule]:
    out: list[Rule] = []
    for i, spec in enumerate(specs):
        try:
            out.append(build_rule(spec, start + len(out), f"{where}[{i}]", services))
        except ConfigError as exc:
            problems.extend(exc.problems)
    return out


def compile_rulesets(cfg: RoutingConfig, services: Mapping[str, Service]) -> dict[str | None, RuleSet]:
    """Every phase's rule set, compiled up front so that a switch is instant and a bad rule
    in a phase that is not active yet is still reported at start-up."""
    problems: list[str] = []
    sets: dict[str | None, RuleSet] = {}
    base = "routing.rules"
    if not cfg.phases:
        rules = compile_rules(cfg.rules, base, services, 0, problems)
        if not problems:
            sets[None] = RuleSet(None, rules, list(cfg.legacy), cfg.decision_cache_size)
    for j, phase in enumerate(cfg.phases):
        own = compile_rules(phase.rules, f"routing.phases[{j}] ({phase.name}).rules", services, 0, problems)
        shared = compile_rules(cfg.rules, base, services, len(own), problems)
        if not problems:
            sets[phase.name] = RuleSet(phase.name, own + shared, [*cfg.legacy, *phase.legacy],
                                       cfg.decision_cache_size)
    if problems:
        raise ConfigError(sorted(set(problems), key=problems.index))
    return sets
