"""Sprint planning: choose issues for a sprint within a point capacity, and say why.

Pure and deterministic: no I/O, no clock, no randomness; the same input always gives
the same plan. Every provider of the project service (local, Jira, Linear, Plane...)
gathers candidates and blocking links its own way and calls :func:`plan_sprint`.

Points are compared exactly, as the decimals they are written as (``0.1 + 0.2`` fits a
capacity of ``0.3``), so "never over capacity" holds without float rounding.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from mosaic.catalog.project import (
    PRIORITY_NAMES,
    ExcludedIssue,
    ExclusionReason,
    PlannedIssue,
    StateCategory,
)

ALGORITHM = (
    "1. Candidates in a blocking cycle are excluded (the cycle is named); so are unestimated ones "
    "when no default estimate is given, and any candidate blocked by an issue that is neither done, "
    "canceled nor a plannable candidate (transitively). "
    "2. A blocker inherits the priority of the most urgent issue it (transitively) unblocks. "
    "3. Greedy: repeatedly take, among candidates whose blockers are all done, canceled or already "
    "taken, the first by (priority: urgent, high, medium, low, none; then value per point, i.e. the "
    "smaller estimate within one priority; then issue number) that still fits the remaining capacity. "
    "4. Improvement: swap one taken issue that nothing taken depends on for one left-out ready issue "
    "of the same or higher priority whose larger estimate still fits, choosing the swap that fills "
    "the most points (at most {max_swaps} swaps, then greedy again after each). "
    "5. The chosen issues are listed in dependency order (blockers first), then by the order of step 3."
)
MAX_SWAPS = 100

_RESOLVED: frozenset[str] = frozenset({"done", "canceled"})


@dataclass(frozen=True, slots=True)
class PlanIssue:
    """A candidate issue as the planner sees it."""

    key: str
    number: int
    title: str = ""
    priority: int = 0
    estimate: float | None = None
    state_category: StateCategory = "todo"


@dataclass(frozen=True, slots=True)
class PlanResult:
    capacity: float
    committed_points: float
    remaining: float
    selected: tuple[PlannedIssue, ...]
    excluded: tuple[ExcludedIssue, ...]
    default_estimate: float | None
    algorithm: str

    @property
    def selected_keys(self) -> list[str]:
        return [s.key for s in self.selected]

    @property
    def excluded_by_key(self) -> dict[str, ExcludedIssue]:
        return {e.key: e for e in self.excluded}


def points(value: float) -> Fraction:
    """A point value as the exact decimal it prints as (the shortest repr of the float)."""
    return Fraction(repr(float(value)))


def tier(priority: int) -> int:
    """Ordering rank of a priority: urgent (1) first, 'no priority' (0) after low (4), as Linear does."""
    return 5 if priority == 0 else priority


def _tier_name(t: int) -> str:
    return PRIORITY_NAMES[0 if t == 5 else t]


def _pts(x: Fraction) -> str:
    return f"{float(x):g}"


def _plural(x: Fraction) -> str:
    return "point" if x == 1 else "points"


class _Planner:
    """One planning run; the state of the run lives here so the steps stay small."""

    def __init__(self, candidates: Sequence[PlanIssue], blocks: Iterable[tuple[str, str]],
                 capacity: float, default_estimate: float | None,
                 states: Mapping[str, StateCategory]) -> None:
        self.issues: dict[str, PlanIssue] = {}
        for c in candidates:
            if c.key in self.issues:
                raise ValueError(f"candidate {c.key} is listed twice")
            if c.priority not in PRIORITY_NAMES:
                raise ValueError(f"{c.key} has priority {c.priority}; expected 0-4")
            self.issues[c.key] = c
        if not math.isfinite(capacity) or capacity < 0:
            raise ValueError("capacity must be a finite, non-negative number of points")
        if default_estimate is not None and (not math.isfinite(default_estimate) or default_estimate < 0):
            raise ValueError("default_estimate must be a finite, non-negative number of points")
        self.capacity = points(capacity)
        self.states = states
        self.size: dict[str, Fraction | None] = {}
        self.defaulted: set[str] = set()
        for k, c in self.issues.items():
            if c.estimate is not None:
                if not math.isfinite(c.estimate) or c.estimate < 0:
                    raise ValueError(f"{k} has a negative or non-finite estimate")
                self.size[k] = points(c.estimate)
            elif default_estimate is not None:
                self.size[k] = points(default_estimate)
                self.defaulted.add(k)
            else:
                self.size[k] = None
        # Unresolved blockers of each candidate, and candidate dependents of each candidate.
        self.blockers: dict[str, list[str]] = {k: [] for k in self.issues}
        self.dependents: dict[str, list[str]] = {k: [] for k in self.issues}
        for blocker, blocked in sorted(set(blocks)):
            if blocked not in self.issues or self._resolved(blocker):
                continue
            self.blockers[blocked].append(blocker)
            if blocker in self.issues:
                self.dependents[blocker].append(blocked)
        self.cycles: dict[str, list[str]] = {}
        self.pool: list[str] = []        # plannable candidates, sorted by rank key
        self.eff: dict[str, int] = {}    # effective priority tier
        self.src: dict[str, str] = {}    # the issue whose priority was inherited
        self.selected: set[str] = set()
        self.used = Fraction(0)
        self.swapped_in: dict[str, tuple[str, Fraction]] = {}

    # -- helpers ------------------------------------------------------------
    def _resolved(self, key: str) -> bool:
        c = self.issues.get(key)
        state = c.state_category if c is not None else self.states.get(key)
        return state in _RESOLVED

    def _num(self, key: str) -> int:
        c = self.issues.get(key)
        if c is not None:
            return c.number
        tail = key.rsplit("-", 1)[-1]  # an outside blocker: its key's number, when it has one
        return int(tail) if tail.isdigit() and len(tail) < 19 else 0

    def _rank(self, key: str) -> tuple[int, Fraction, int, str]:
        size = self.size[key]
        assert size is not None
        return (self.eff[key], size, self.issues[key].number, key)

    def _by_number(self, keys: Iterable[str]) -> list[str]:
        return sorted(keys, key=lambda k: (self._num(k), k))

    # -- step 1: cycles and hard exclusions ----------------------------------
    def find_cycles(self) -> None:
        """Tarjan's strongly connected components, iteratively (no recursion limit)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        on_stack: set[str] = set()
        stack: list[str] = []
        counter = 0
        for root in self._by_number(self.issues):
            if root in index:
                continue
            work: list[tuple[str, int]] = [(root, 0)]
            while work:
                node, i = work.pop()
                if i == 0:
                    index[node] = low[node] = counter
                    counter += 1
                    stack.append(node)
                    on_stack.add(node)
                succ = self.dependents[node]
                if i < len(succ):
                    work.append((node, i + 1))
                    nxt = succ[i]
                    if nxt not in index:
                        work.append((nxt, 0))
                    elif nxt in on_stack:
                        low[node] = min(low[node], index[nxt])
                    continue
                if low[node] == index[node]:
                    comp: list[str] = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1 or node in self.dependents[node]:
                        self._name_cycles(comp)
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])

    def _name_cycles(self, component: list[str]) -> None:
        """Give every member of a cyclic component a cycle through it: the shortest cycle from
        the lowest-numbered member not yet on a named cycle, shared (rotated) by all on it."""
        members = set(component)
        for m in self._by_number(component):
            if m in self.cycles:
                continue
            cycle = self._shortest_cycle(m, members)
            ring = cycle[:-1]
            for i, k in enumerate(ring):
                if k not in self.cycles:
                    self.cycles[k] = [*ring[i:], *ring[:i], k]

    def _shortest_cycle(self, start: str, members: set[str]) -> list[str]:
        """Shortest 'blocks' path from start back to start inside one component."""
        prev: dict[str, str] = {}
        queue = deque([start])
        seen = {start}
        while queue:
            node = queue.popleft()
            for nxt in self.dependents[node]:
                if nxt not in members:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if nxt not in seen:
                    seen.add(nxt)
                    prev[nxt] = node
                    queue.append(nxt)
        raise AssertionError("a strongly connected component always has a cycle")  # pragma: no cover

    def build_pool(self) -> None:
        """Drop cycle members, unestimated issues and whatever they (or outsiders) block."""
        out = set(self.cycles) | {k for k, s in self.size.items() if s is None}
        queue = deque(self._by_number(out))
        for k in self._by_number(self.issues):
            if k not in out and any(b not in self.issues for b in self.blockers[k]):
                out.add(k)
                queue.append(k)
        while queue:
            for d in self.dependents[queue.popleft()]:
                if d not in out:
                    out.add(d)
                    queue.append(d)
        plannable = [k for k in self.issues if k not in out]
        self._inherit_priority(plannable)
        self.pool = sorted(plannable, key=self._rank)

    # -- step 2: priority inheritance ----------------------------------------
    def _inherit_priority(self, plannable: list[str]) -> None:
        members = set(plannable)
        order = self._topological(members, key=lambda k: (self._num(k), k))
        for k in reversed(order):
            best_tier, best_src = tier(self.issues[k].priority), k
            for d in self.dependents[k]:
                if d in members and (self.eff[d], self._num(self.src[d])) < (best_tier, self._num(best_src)):
                    best_tier, best_src = self.eff[d], self.src[d]
            self.eff[k], self.src[k] = best_tier, best_src

    def _topological(self, members: set[str], key: Callable[[str], Any]) -> list[str]:
        """Kahn's algorithm over ``members`` (acyclic); ties taken by the smallest ``key``."""
        sort_key = key
        indeg = {k: sum(1 for b in self.blockers[k] if b in members) for k in members}
        heap = [(sort_key(k), k) for k in members if indeg[k] == 0]
        heapq.heapify(heap)
        order: list[str] = []
        while heap:
            _, k = heapq.heappop(heap)
            order.append(k)
            for d in self.dependents[k]:
                if d in members:
                    indeg[d] -= 1
                    if indeg[d] == 0:
                        heapq.heappush(heap, (sort_key(d), d))
        return order

    # -- step 3: greedy fill -----------------------------------------------------
    def _ready(self, key: str) -> bool:
        return all(b in self.selected for b in self.blockers[key])

    def fill(self) -> None:
        """Take ready candidates in rank order while they fit; taking one may ready others."""
        pos = {k: i for i, k in enumerate(self.pool)}
        waiting = {k: sum(1 for b in self.blockers[k] if b not in self.selected)
                   for k in self.pool if k not in self.selected}
        heap = [pos[k] for k, n in waiting.items() if n == 0]
        heapq.heapify(heap)
        while heap:
            k = self.pool[heapq.heappop(heap)]
            size = self.size[k]
            assert size is not None
            # Capacity only shrinks during a fill, so an issue that does not fit now never will.
            if self.used + size > self.capacity:
                continue
            self.selected.add(k)
            self.used += size
            for d in self.dependents[k]:
                if d in waiting:
                    waiting[d] -= 1
                    if waiting[d] == 0:
                        heapq.heappush(heap, pos[d])

    # -- step 4: swaps -----------------------------------------------------------
    def improve(self) -> None:
        for _ in range(MAX_SWAPS):
            swap = self._best_swap()
            if swap is None:
                return
            gain, incoming, outgoing = swap
            self.selected.discard(outgoing)
            self.selected.add(incoming)
            self.used += gain
            self.swapped_in[incoming] = (outgoing, gain)
            self.swapped_in.pop(outgoing, None)
            self.fill()

    def _best_swap(self) -> tuple[Fraction, str, str] | None:
        room = self.capacity - self.used
        leaves = [s for s in self.pool if s in self.selected
                  and not any(d in self.selected for d in self.dependents[s])]
        best: tuple[tuple[Fraction, int, int, str, int, str], Fraction, str, str] | None = None
        for incoming in self.pool:
            if incoming in self.selected or not self._ready(incoming):
                continue
            size_in = self.size[incoming]
            assert size_in is not None
            for outgoing in leaves:
                size_out = self.size[outgoing]
                assert size_out is not None
                gain = size_in - size_out
                if (gain <= 0 or gain > room or outgoing in self.blockers[incoming]
                        or self.eff[incoming] > self.eff[outgoing]):
                    continue
                order = (-gain, self.eff[incoming], self._num(incoming), incoming,
                         self._num(outgoing), outgoing)
                if best is None or order < best[0]:
                    best = (order, gain, incoming, outgoing)
        return None if best is None else (best[1], best[2], best[3])

    # -- step 5: explain -----------------------------------------------------------
    def explain_selected(self) -> list[PlannedIssue]:
        order = self._topological(self.selected, key=self._rank)
        out: list[PlannedIssue] = []
        total = Fraction(0)
        for i, k in enumerate(order, 1):
            c = self.issues[k]
            size = self.size[k]
            assert size is not None
            total += size
            parts = [f"#{i}: {_tier_name(self.eff[k])} priority, {_pts(size)} {_plural(size)}"]
            if self.eff[k] < tier(c.priority):
                own = _tier_name(tier(c.priority))
                parts.append(f"inherits {_tier_name(self.eff[k])} priority (own: {own}) "
                             f"because it unblocks {self.src[k]}")
            done_first = [b for b in self.blockers[k] if b in self.selected]
            if done_first:
                parts.append(f"after its blocker{'s' if len(done_first) > 1 else ''} "
                             f"{', '.join(self._by_number(done_first))}")
            if k in self.defaulted:
                parts.append(f"unestimated, counted as the default {_pts(size)} {_plural(size)}")
            if k in self.swapped_in:
                outgoing, gain = self.swapped_in[k]
                parts.append(f"swapped in for {outgoing} to use {_pts(gain)} more {_plural(gain)}")
            parts.append(f"fits: {_pts(total)} of {_pts(self.capacity)} points committed")
            out.append(PlannedIssue(
                key=k, title=c.title, priority=c.priority,
                effective_priority=0 if self.eff[k] == 5 else self.eff[k],
                estimate=float(size), estimate_defaulted=k in self.defaulted,
                cumulative_points=float(total), reason="; ".join(parts),
            ))
        return out

    def explain_excluded(self) -> list[ExcludedIssue]:
        codes: dict[str, ExclusionReason] = {}
        result: dict[str, ExcludedIssue] = {}
        left_out = {k for k in self.issues if k not in self.selected}
        # Blockers before the issues they block, so a reason can cite its blocker's reason.
        acyclic = left_out - set(self.cycles)
        ordered = [*self._by_number(left_out & set(self.cycles)),
                   *self._topological(acyclic, key=lambda k: (self._num(k), k))]
        for k in ordered:
            c = self.issues[k]
            size = self.size[k]
            est = None if size is None else float(size)
            base = {"key": k, "title": c.title, "priority": c.priority, "estimate": est}
            if k in self.cycles:
                cyc = self.cycles[k]
                codes[k] = "cycle"
                result[k] = ExcludedIssue(**base, reason="cycle", cycle=cyc,
                                          detail="in a blocking cycle: " + " blocks ".join(cyc))
                continue
            if size is None:
                codes[k] = "unestimated"
                result[k] = ExcludedIssue(**base, reason="unestimated",
                                          detail="no estimate and no default_estimate given")
                continue
            waiting = self._by_number(b for b in self.blockers[k] if b not in self.selected)
            if waiting:
                why = []
                for b in waiting:
                    if b in self.issues:
                        why.append(f"{b} (not selected: {codes[b].replace('_', ' ')})")
                    else:
                        state = self.states.get(b)
                        why.append(f"{b} ({state.replace('_', ' ') if state else 'state unknown'}, "
                                   "not a candidate)")
                codes[k] = "blocked"
                result[k] = ExcludedIssue(**base, reason="blocked", blocked_by=waiting,
                                          detail="blocked by " + ", ".join(why))
                continue
            room = self.capacity - self.used
            codes[k] = "over_capacity"
            result[k] = ExcludedIssue(
                **base, reason="over_capacity",
                detail=f"needs {_pts(size)} {_plural(size)} but only {_pts(room)} of "
                       f"{_pts(self.capacity)} remain after the selected issues "
                       f"(it ranks at {_tier_name(self.eff[k])} priority)",
            )
        return [result[k] for k in self._by_number(result)]


def plan_sprint(candidates: Sequence[PlanIssue], blocks: Iterable[tuple[str, str]], *,
                capacity: float, default_estimate: float | None = None,
                states: Mapping[str, StateCategory] | None = None) -> PlanResult:
    """Choose candidates for a sprint of ``capacity`` points.

    ``blocks`` holds ``(blocker_key, blocked_key)`` pairs; pairs about other issues are
    ignored. ``states`` gives the state category of blockers that are not candidates
    (a blocker that is done or canceled no longer blocks; an unknown one still does).
    Unestimated candidates count as ``default_estimate`` points, or are excluded when it
    is None. See :data:`ALGORITHM` for the method.
    """
    run = _Planner(candidates, blocks, capacity, default_estimate, states or {})
    run.find_cycles()
    run.build_pool()
    run.fill()
    run.improve()
    selected = run.explain_selected()
    excluded = run.explain_excluded()
    return PlanResult(
        capacity=float(run.capacity), committed_points=float(run.used),
        remaining=float(run.capacity - run.used), selected=tuple(selected),
        excluded=tuple(excluded), default_estimate=default_estimate,
        algorithm=ALGORITHM.format(max_swaps=MAX_SWAPS),
    )
