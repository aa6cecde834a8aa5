"""The straightforward evaluator: every rule, in order, checked one by one.

It is the oracle the compiled matcher is tested against (property tests) and the baseline
it is benchmarked against. By default it shares nothing with the matcher but the parsed
rules and the ranking: patterns are matched by wcmatch itself and conditions by celpy's
interpreter. ``fast=True`` precompiles each rule's glob and uses the native condition
evaluator, which makes it a fair *linear* baseline for the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wcmatch import glob as wcglob

from mosaic.routing.patterns import FLAGS, glob_matches
from mosaic.routing.rules import Facts, Rule, Tier, pattern_matches, rank, with_legacy


class ReferenceEvaluator:
    def __init__(self, rules: Sequence[Rule], legacy: Sequence[str] = (), *, fast: bool = False) -> None:
        self.rules = list(rules)
        self.legacy = [g.lower() for g in legacy]
        self.fast = fast
        self._compiled: list[Any] = []
        if fast:
            for r in self.rules:
                p = r.pattern
                self._compiled.append(wcglob.compile(p.glob, flags=FLAGS)
                                      if p is not None and p.glob is not None else None)

    def _is_legacy(self, repo: str | None) -> bool:
        return repo is not None and any(glob_matches(repo, g) for g in self.legacy)

    def matching(self, facts: Facts) -> list[Rule]:
        fields = with_legacy(facts.fields, self._is_legacy(facts.fields.get("repo")))
        op = facts.op
        out: list[Rule] = []
        for i, r in enumerate(self.rules):
            if r.service != op.service or not r.applies_to(op):
                continue
            p = r.pattern
            if p is not None:
                if self.fast and self._compiled[i] is not None:
                    assert p.field is not None
                    v = fields.get(p.field)
                    hit = v is not None and bool(self._compiled[i].match(v))
                    if hit == p.negated:
                        continue
                elif not pattern_matches(p, fields):
                    continue
            c = r.condition
            if c is not None and not (c.matches(facts.activation()) if self.fast
                                      else c.matches_celpy(facts.activation())):
                continue
            out.append(r)
        return out

    def match(self, facts: Facts) -> tuple[Tier, ...]:
        return rank(self.matching(facts))
