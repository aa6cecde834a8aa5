"""Rules as the engine uses them: parsed once, with the request facts they read.

Ranking (shared by the compiled matcher and the reference evaluator):

* rules rank by ``priority`` (higher first); rules with equal priority are *tied* and the
  balancer chooses among their providers;
* ``default`` rules rank after every other rule, so they win only when nothing else
  matches, and otherwise serve as the last failover candidates;
* a provider appears once, at the best rank of the rules naming it. The resulting tiers,
  flattened, are the failover order.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from mosaic.catalog.base import Operation, Service
from mosaic.errors import ConfigError
from mosaic.gateway.context import RequestContext
from mosaic.routing.conditions import Condition, compile_condition
from mosaic.routing.config import RuleSpec
from mosaic.routing.patterns import Pattern, glob_matches, parse_pattern

# Operations that create a repository: what `new-repos:` patterns apply to.
CREATING_REPOSITORIES = frozenset({"git.create_repository"})


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    index: int  # position in its rule set: breaks ties in ranking, names it in messages
    label: str
    providers: tuple[str, ...]
    priority: int
    default: bool
    service: Service
    pattern: Pattern | None
    condition: Condition | None
    operations: tuple[str, ...] | None
    _ops_re: re.Pattern[str] | None = field(default=None, repr=False)
    # Sort key of the ranking, computed once: defaults last, then priority, then order.
    rank: tuple[bool, int, int] = field(default=(False, 0, 0), repr=False)
    # Precomputed for the matcher's inner loop.
    tier: tuple[bool, int] = field(default=(False, 0), repr=False)
    single: str | None = field(default=None, repr=False)  # the provider, when there is one
    negated: bool = field(default=False, repr=False)
    checked: bool = field(default=False, repr=False)  # an operation filter, negation or condition

    def applies_to(self, op: Operation | str) -> bool:
        if self._ops_re is None:
            return True
        return self._ops_re.match(op if isinstance(op, str) else op.qualified_name) is not None


def _ops_regex(globs: Sequence[str]) -> re.Pattern[str]:
    parts = []
    for g in globs:
        g = g.strip()
        # A bare operation name ("create_repository") means that operation in any service.
        parts.append(fnmatch.translate(g if "." in g else f"*.{g}"))
    return re.compile("|".join(f"(?:{p})" for p in parts))


def build_rule(spec: RuleSpec, index: int, where: str, services: Mapping[str, Service]) -> Rule:
    """Validate a rule against the configured plugin instances and compile it."""
    label = spec.label(where)
    problems: list[str] = []
    svc: set[Service] = set()
    for pid in spec.provider:
        s = services.get(pid)
        if s is None:
            known = ", ".join(sorted(services)) or "none"
            problems.append(f"{label}: provider {pid!r} is not a configured plugin instance "
                            f"(configured: {known})")
        else:
            svc.add(s)
    if len(svc) > 1:
        problems.append(f"{label}: providers {', '.join(spec.provider)} serve different services")
    if spec.service is not None and svc and spec.service not in svc:
        problems.append(f"{label}: service {spec.service!r} does not match its provider's service "
                        f"{next(iter(svc))!r}")
    try:
        pattern = parse_pattern(spec.pattern) if spec.pattern else None
        condition = compile_condition(spec.condition) if spec.condition else None
    except ValueError as exc:
        problems.append(f"{label}: {exc}")
    if problems:
        raise ConfigError(problems)
    service: Service = spec.service if spec.service is not None else next(iter(svc))
    ops = tuple(spec.operations) if spec.operations else None
    negated = pattern is not None and pattern.negated
    return Rule(index, label, tuple(spec.provider), spec.priority, spec.default, service,
                pattern, condition, ops, _ops_regex(ops) if ops else None,
                rank=(spec.default, -spec.priority, index), tier=(spec.default, spec.priority),
                single=spec.provider[0] if len(spec.provider) == 1 else None, negated=negated,
                checked=bool(ops) or negated or condition is not None)


# ---------------------------------------------------------------------------
# Request facts


class Facts:
    """What routing reads from one request, computed once per decision."""

    __slots__ = ("_act", "ctx", "fields", "op", "operation")

    def __init__(self, ctx: RequestContext, op: Operation) -> None:
        self.ctx = ctx
        self.op = op
        self.operation = qualified = op.qualified_name
        res = ctx.resource
        f: dict[str, Any] = {"user": ctx.principal.id.lower()}
        org, repo, name = res.get("org"), res.get("repo"), res.get("name")
        if isinstance(org, str) and org:
            f["org"] = org.lower()
        if isinstance(repo, str):
            f["repo"] = repo.lower()
        private = res.get("private")
        if isinstance(private, bool):
            f["private"] = private
        if qualified in CREATING_REPOSITORIES:
            if isinstance(name, str):
                f["newname"] = name.lower()
            if isinstance(repo, str):
                f["newrepo"] = repo.lower()
        self.fields = f
        self._act: Activation | None = None

    def activation(self) -> Activation:
        """The variables CEL conditions read (see conditions.VARIABLES), built lazily."""
        act = self._act
        if act is None:
            act = self._act = Activation(self.ctx, self.op)
        return act

    def lookup(self, path: tuple[str, ...]) -> tuple[bool, Any]:
        """The value at a variable path (``user.region``), or (False, None) if absent."""
        try:
            cur: Any = self.activation()[path[0]]
        except KeyError:
            return False, None
        for key in path[1:]:
            if type(cur) is not dict or key not in cur:
                return False, None
            cur = cur[key]
        return True, cur


def _user(ctx: RequestContext, op: Operation) -> dict[str, Any]:
    p = ctx.principal
    return {**p.attributes, "id": p.id, "roles": list(p.roles)}


def _build(ctx: RequestContext, op: Operation) -> dict[str, Any]:
    b = ctx.resource.get("build")
    return b if isinstance(b, dict) else {}


def _res(key: str) -> Any:
    return lambda ctx, op: ctx.resource.get(key)


_ROOTS: dict[str, Any] = {
    "user": _user, "tenant": lambda ctx, op: ctx.tenant, "operation": lambda ctx, op: op.qualified_name,
    "service": lambda ctx, op: op.service, "effect": lambda ctx, op: op.effect.value,
    "resource": lambda ctx, op: ctx.resource, "build": _build,
    "org": _res("org"), "repo": _res("repo"), "name": _res("name"), "private": _res("private"),
}


class Activation(dict[str, Any]):
    """The CEL variables of one request, each computed the first time a condition reads it."""

    __slots__ = ("_ctx", "_op")

    def __init__(self, ctx: RequestContext, op: Operation) -> None:
        super().__init__()
        self._ctx = ctx
        self._op = op

    def __missing__(self, key: str) -> Any:
        fn = _ROOTS.get(key)
        if fn is None:
            raise KeyError(key)
        value = self[key] = fn(self._ctx, self._op)
        return value

    def complete(self) -> Activation:
        for key in _ROOTS:
            self.__getitem__(key)
        return self


def activation(ctx: RequestContext, op: Operation) -> dict[str, Any]:
    """Every variable, as a plain dict."""
    return dict(Activation(ctx, op).complete())


def with_legacy(fields: dict[str, Any], is_legacy: bool) -> dict[str, Any]:
    """Add the `legacy:` facts when the request's repository is in the legacy set."""
    if not is_legacy:
        return fields
    out = dict(fields)
    repo = fields.get("repo")
    if repo is not None:
        out["legacyrepo"] = repo
        out["legacyname"] = repo.rpartition("/")[2]
    return out


def pattern_matches(p: Pattern, fields: Mapping[str, Any]) -> bool:
    """Reference semantics of a pattern, straight from wcmatch (used by the oracle)."""
    if p.kind == "any":
        hit = True
    elif p.kind == "private":
        v = fields.get("private")
        hit = v is not None and v == p.value
    else:
        assert p.field is not None and p.glob is not None
        v = fields.get(p.field)
        hit = v is not None and glob_matches(v, p.glob)
    return hit != p.negated


# ---------------------------------------------------------------------------
# Ranking


class Tier(NamedTuple):
    priority: int
    default: bool
    providers: tuple[str, ...]
    rules: tuple[Rule, ...]

    def key(self) -> tuple[int, bool, tuple[str, ...]]:
        return (self.priority, self.default, self.providers)


def rank(matched: Iterable[Rule]) -> tuple[Tier, ...]:
    ordered = sorted(matched, key=lambda r: r.rank)
    tiers: list[Tier] = []
    placed: set[str] = set()
    key: tuple[bool, int] | None = None
    providers: list[str] = []
    rules: list[Rule] = []
    for r in ordered:
        k = (r.default, r.priority)
        if k != key:
            if providers:
                tiers.append(Tier(key[1], key[0], tuple(providers), tuple(rules)))  # type: ignore[index]
            key, providers, rules = k, [], []
        rules.append(r)
        for p in r.providers:
            if p not in placed:
                placed.add(p)
                providers.append(p)
    if providers and key is not None:
        tiers.append(Tier(key[1], key[0], tuple(providers), tuple(rules)))
    return tuple(tiers)
