"""The compiled matcher: rules indexed once so that a decision never scans them all.

Per service, every rule goes to exactly one place:

* a pattern over a request field (``org``, ``repo``, ``user``, ``new-repos``, ``legacy``)
  -> that field's :class:`GlobIndex`: brace alternatives without glob syntax go to an
  exact map, alternatives with a literal head go to a prefix trie (walked once along the
  value, each hit verified by its glob), the rest to a residual list guarded by one
  combined regex;
* ``private:true|false`` -> a two-entry map;
* no pattern (or ``*``, or a negation) but a condition with a top-level
  ``path == literal`` conjunct -> an exact map keyed by that path's value;
* everything else -> the short "always" list.

A lookup gathers the candidate rules, then evaluates their conditions in rank order,
skipping any rule whose providers are already placed (it could not change the outcome).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Generic, TypeVar

from mosaic.catalog.base import Service
from mosaic.routing.conditions import CelError, kind_of
from mosaic.routing.patterns import alternatives, compiled_glob
from mosaic.routing.rules import Facts, Rule, Tier, with_legacy

T = TypeVar("T")

_SIMPLE_STAR = re.compile(r"^[^*?\[\]\\(){}|!+@]+\*$")


class _Check(Generic[T]):
    """One indexed glob alternative: its payload and how to verify a candidate value."""

    __slots__ = ("_re", "glob", "payload", "prefix_star")

    def __init__(self, glob: str, payload: T) -> None:
        self.glob = glob
        self.payload = payload
        # `literal*`: a startswith test plus "no '/' in the rest" is wcmatch's meaning.
        self.prefix_star = glob[:-1] if _SIMPLE_STAR.match(glob) and not glob.endswith("/*") else None
        self._re: re.Pattern[str] | None = None

    def test(self, value: str) -> bool:
        p = self.prefix_star
        if p is not None:
            return value.startswith(p) and "/" not in value[len(p):]
        if self._re is None:
            self._re = compiled_glob(self.glob)
        return self._re.match(value) is not None


class _Node(Generic[T]):
    __slots__ = ("children", "entries")

    def __init__(self) -> None:
        self.children: dict[str, _Node[T]] = {}
        self.entries: list[_Check[T]] = []


class GlobIndex(Generic[T]):
    """Globs over one field, looked up without testing every glob."""

    def __init__(self) -> None:
        self.exact: dict[str, list[T]] = {}
        self.root: _Node[T] = _Node()
        self.residual: list[_Check[T]] = []
        self._residual_re: re.Pattern[str] | None = None
        self.size = 0

    def add(self, glob: str, payload: T) -> None:
        self.size += 1
        for alt in alternatives(glob):
            if alt.exact:
                self.exact.setdefault(alt.glob, []).append(payload)
            elif alt.literal_prefix:
                node = self.root
                for ch in alt.literal_prefix:
                    nxt = node.children.get(ch)
                    if nxt is None:
                        nxt = node.children[ch] = _Node()
                    node = nxt
                node.entries.append(_Check(alt.glob, payload))
            else:
                self.residual.append(_Check(alt.glob, payload))
                self._residual_re = None

    def lookup(self, value: str) -> list[T] | tuple[()]:
        """Payloads of every glob matching ``value``."""
        exact = self.exact.get(value)
        children = self.root.children
        if not children and not self.residual:  # exact patterns only: one dict lookup
            return exact if exact is not None else ()
        out: list[T] = list(exact) if exact is not None else []
        node = self.root
        for ch in value:
            nxt = children.get(ch)
            if nxt is None:
                break
            node = nxt
            children = node.children
            for chk in node.entries:
                if chk.test(value):
                    out.append(chk.payload)
        if self.residual:
            rx = self._residual_re
            if rx is None:
                rx = self._residual_re = re.compile(
                    "|".join(f"(?:{compiled_glob(c.glob).pattern})" for c in self.residual))
            if rx.match(value) is not None:
                out.extend(chk.payload for chk in self.residual if chk.test(value))
        return out

    def contains(self, value: str) -> bool:
        return bool(self.lookup(value))


_RANK = attrgetter("rank")


@dataclass
class ServiceMatcher:
    """The compiled rules of one service."""

    service: Service
    rules: list[Rule] = field(default_factory=list)
    fields: dict[str, GlobIndex[Rule]] = field(default_factory=dict)
    private: dict[bool, list[Rule]] = field(default_factory=dict)
    by_condition: dict[tuple[str, ...], dict[tuple[str, Any], list[Rule]]] = field(default_factory=dict)
    always: list[Rule] = field(default_factory=list)
    # Variable paths read by this service's conditions (part of the cache key).
    cond_paths: tuple[tuple[str, ...], ...] = ()
    # Request fields read by this service's patterns (the rest of the cache key).
    used_fields: tuple[str, ...] = ()
    needs_legacy: bool = False

    def add(self, rule: Rule) -> None:
        self.rules.append(rule)
        p, c = rule.pattern, rule.condition
        if p is not None and not p.negated and p.kind != "any":
            if p.kind == "private":
                self.private.setdefault(bool(p.value), []).append(rule)
            else:
                assert p.field is not None and p.glob is not None
                self.fields.setdefault(p.field, GlobIndex()).add(p.glob, rule)
            return
        if c is not None and c.index_key is not None:
            path, key = c.index_key
            self.by_condition.setdefault(path, {}).setdefault(key, []).append(rule)
            return
        self.always.append(rule)

    def finish(self) -> None:
        paths: set[tuple[str, ...]] = set()
        used: set[str] = set()
        for r in self.rules:
            if r.condition is not None:
                paths |= r.condition.paths
            if r.pattern is not None and r.pattern.field is not None:
                used.add(r.pattern.field)
                if r.pattern.kind == "legacy":
                    used.add("repo")
                    self.needs_legacy = True
        self.cond_paths = tuple(sorted(paths))
        self.used_fields = tuple(sorted(used))
        self.always.sort(key=lambda r: r.index)

    def candidates(self, facts: Facts, fields: Mapping[str, Any]) -> list[Rule]:
        """Rules whose pattern (or indexed condition) may match, in rank order."""
        found: set[Rule] = set()
        for name, index in self.fields.items():
            v = fields.get(name)
            if v is not None:
                hits = index.lookup(v)
                if hits:
                    found.update(hits)
        if self.private:
            pv = fields.get("private")
            if pv is not None:
                found.update(self.private.get(pv, ()))
        for path, table in self.by_condition.items():
            ok, v = facts.lookup(path)
            if ok:
                k = kind_of(v)
                if k in ("string", "int", "bool"):
                    found.update(table.get((k, v), ()))
        found.update(self.always)
        return sorted(found, key=_RANK)

    def _fields(self, facts: Facts, legacy: GlobIndex[str] | None) -> Mapping[str, Any]:
        fields = facts.fields
        if legacy is not None and self.needs_legacy:
            repo = fields.get("repo")
            fields = with_legacy(fields, repo is not None and legacy.contains(repo))
        return fields

    def matching(self, facts: Facts, legacy: GlobIndex[str] | None) -> list[Rule]:
        """Every matching rule, in rank order (explain; no shortcut)."""
        fields = self._fields(facts, legacy)
        return [r for r in self.candidates(facts, fields)
                if r.applies_to(facts.operation) and _verify(r, fields)
                and (r.condition is None or r.condition.matches(facts.activation()))]

    def match(self, facts: Facts, legacy: GlobIndex[str] | None, *, full: bool = False) -> tuple[Tier, ...]:
        """Tiers of matching rules. ``full`` evaluates every candidate (no shortcut)."""
        fields = self._fields(facts, legacy) if legacy is not None else facts.fields
        qualified = facts.operation
        tiers: list[Tier] = []
        placed: set[str] = set()
        key: tuple[bool, int] | None = None
        providers: list[str] = []
        rules: list[Rule] = []
        act = None
        # Candidates, as in candidates(), inlined: this is the hottest loop of a decision.
        found: set[Rule] = set()
        for name, index in self.fields.items():
            v = fields.get(name)
            if v is not None:
                hits = index.lookup(v)
                if hits:
                    found.update(hits)
        if self.private:
            pv = fields.get("private")
            if pv is not None:
                found.update(self.private.get(pv, ()))
        for path, table in self.by_condition.items():
            ok, v = facts.lookup(path)
            if ok:
                kv = kind_of(v)
                if kv in ("string", "int", "bool"):
                    found.update(table.get((kv, v), ()))
        found.update(self.always)
        for r in sorted(found, key=_RANK):
            if not full:  # a rule whose providers already rank higher cannot change the outcome
                one = r.single
                if one is not None:
                    if one in placed:
                        continue
                elif all(p in placed for p in r.providers):
                    continue
            if r.checked:
                rx = r._ops_re
                if rx is not None and rx.match(qualified) is None:
                    continue
                if r.negated and not _verify(r, fields):
                    continue
                c = r.condition
                if c is not None:
                    if act is None:
                        act = facts.activation()
                    try:
                        if c.fn(act) is not True:
                            continue
                    except CelError:
                        continue
            if r.tier != key:
                if providers:
                    tiers.append(Tier(key[1], key[0], tuple(providers), tuple(rules)))  # type: ignore[index]
                key, providers, rules = r.tier, [], []
            rules.append(r)
            for p in r.providers:
                if p not in placed:
                    placed.add(p)
                    providers.append(p)
        if providers and key is not None:
            tiers.append(Tier(key[1], key[0], tuple(providers), tuple(rules)))
        return tuple(tiers)


def _verify(rule: Rule, fields: Mapping[str, Any]) -> bool:
    """Patterns the indexes could not decide alone: negations (and `*`)."""
    p = rule.pattern
    if p is None or p.kind == "any":
        return True if p is None else not p.negated
    if not p.negated:
        return True  # found through its own index, already verified
    if p.kind == "private":
        v = fields.get("private")
        return not (v is not None and v == p.value)
    assert p.field is not None and p.glob is not None
    v = fields.get(p.field)
    return v is None or compiled_glob(p.glob).match(v) is None


def build_matchers(rules: Iterable[Rule]) -> dict[Service, ServiceMatcher]:
    out: dict[Service, ServiceMatcher] = {}
    for r in rules:
        sm = out.get(r.service)
        if sm is None:
            sm = out[r.service] = ServiceMatcher(r.service)
        sm.add(r)
    for sm in out.values():
        sm.finish()
    return out


def build_legacy(globs: Iterable[str]) -> GlobIndex[str] | None:
    idx: GlobIndex[str] = GlobIndex()
    for g in globs:
        idx.add(g.lower(), g)
    return idx if idx.size else None
