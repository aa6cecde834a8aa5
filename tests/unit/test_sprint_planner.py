"""The provider-neutral sprint planner: hand-computed plans, then properties over random inputs."""

from __future__ import annotations

import itertools
import random
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mosaic.catalog.project import StateCategory
from mosaic.planning import PlanIssue, PlanResult, plan_sprint


def issue(n: int, priority: int = 3, estimate: float | None = 1, state: StateCategory = "todo") -> PlanIssue:
    return PlanIssue(key=f"T-{n}", number=n, title=f"issue {n}", priority=priority, estimate=estimate,
                     state_category=state)


def keys(result: PlanResult) -> list[str]:
    return result.selected_keys


# ---------------------------------------------------------------------------
# Hand-computed plans


def test_priority_first_then_fill_remaining_capacity() -> None:
    # urgent 5 (rem 5) -> high 4 (rem 1) -> low 3 does not fit -> none 1 fits (rem 0).
    cands = [issue(1, priority=1, estimate=5), issue(2, priority=4, estimate=3),
             issue(3, priority=2, estimate=4), issue(4, priority=0, estimate=1)]
    r = plan_sprint(cands, [], capacity=10)
    assert keys(r) == ["T-1", "T-3", "T-4"]
    assert (r.capacity, r.committed_points, r.remaining) == (10, 10, 0)
    assert [s.cumulative_points for s in r.selected] == [5, 9, 10]
    assert r.selected[0].reason.startswith("#1: urgent priority, 5 points")
    [out] = r.excluded
    assert (out.key, out.reason) == ("T-2", "over_capacity")
    assert "needs 3 points but only 0 of 10 remain" in out.detail


def test_blocker_inherits_priority_of_what_it_unblocks() -> None:
    # T-1 (low, 2) blocks T-2 (urgent, 3); T-3 is high, 3. Inheritance makes T-1 urgent:
    # T-1 (rem 4), T-2 (rem 1), T-3 does not fit. Without it T-3 would have gone first.
    cands = [issue(1, priority=4, estimate=2), issue(2, priority=1, estimate=3),
             issue(3, priority=2, estimate=3)]
    r = plan_sprint(cands, [("T-1", "T-2")], capacity=6)
    assert keys(r) == ["T-1", "T-2"]
    first, second = r.selected
    assert first.priority == 4 and first.effective_priority == 1
    assert "inherits urgent priority (own: low) because it unblocks T-2" in first.reason
    assert "after its blocker T-1" in second.reason
    assert r.excluded_by_key["T-3"].reason == "over_capacity"


def test_improvement_pass_swaps_to_fill_capacity() -> None:
    # Greedy (smaller first within one priority): 3 + 4 = 7, 5 does not fit (rem 3).
    # Best single swap: 3 out, 5 in (+2) -> 4 + 5 = 9, then 3 no longer fits (rem 1).
    cands = [issue(1, estimate=3), issue(2, estimate=4), issue(3, estimate=5)]
    r = plan_sprint(cands, [], capacity=10)
    assert keys(r) == ["T-2", "T-3"]
    assert r.committed_points == 9 and r.remaining == 1
    assert "swapped in for T-1 to use 2 more points" in r.selected[1].reason
    assert r.excluded_by_key["T-1"].detail.startswith("needs 3 points but only 1 of 10 remain")


def test_swap_never_trades_a_more_urgent_issue_for_a_less_urgent_one() -> None:
    # urgent 3 taken (rem 1); low 4 would fill better by replacing it, but is less urgent.
    r = plan_sprint([issue(1, priority=1, estimate=3), issue(2, priority=4, estimate=4)], [], capacity=4)
    assert keys(r) == ["T-1"]
    assert r.excluded_by_key["T-2"].reason == "over_capacity"


def test_ties_broken_by_issue_number() -> None:
    r = plan_sprint([issue(7, estimate=2), issue(3, estimate=2), issue(5, estimate=2)], [], capacity=4)
    assert keys(r) == ["T-3", "T-5"]


def test_within_a_priority_higher_value_per_point_first() -> None:
    r = plan_sprint([issue(1, estimate=8), issue(2, estimate=1), issue(3, estimate=2)], [], capacity=20)
    assert keys(r) == ["T-2", "T-3", "T-1"]


def test_cycle_is_excluded_named_and_blocks_its_dependents() -> None:
    cands = [issue(1), issue(2), issue(3), issue(4), issue(5)]
    blocks = [("T-1", "T-2"), ("T-2", "T-3"), ("T-3", "T-1"), ("T-3", "T-4")]
    r = plan_sprint(cands, blocks, capacity=100)
    assert keys(r) == ["T-5"]
    ex = r.excluded_by_key
    assert ex["T-1"].cycle == ["T-1", "T-2", "T-3", "T-1"]
    assert ex["T-2"].cycle == ["T-2", "T-3", "T-1", "T-2"]
    assert ex["T-3"].cycle == ["T-3", "T-1", "T-2", "T-3"]
    assert all(ex[k].reason == "cycle" for k in ("T-1", "T-2", "T-3"))
    assert ex["T-1"].detail == "in a blocking cycle: T-1 blocks T-2 blocks T-3 blocks T-1"
    assert ex["T-4"].reason == "blocked" and ex["T-4"].blocked_by == ["T-3"]
    assert ex["T-4"].detail == "blocked by T-3 (not selected: cycle)"


def test_self_block_is_a_cycle() -> None:
    r = plan_sprint([issue(1)], [("T-1", "T-1")], capacity=5)
    assert keys(r) == []
    assert r.excluded_by_key["T-1"].cycle == ["T-1", "T-1"]


def test_blockers_outside_the_candidates() -> None:
    cands = [issue(1), issue(2), issue(3), issue(4)]
    blocks = [("X-9", "T-1"), ("X-8", "T-2"), ("X-7", "T-3"), ("X-6", "T-4"), ("X-5", "X-4")]
    states: dict[str, StateCategory] = {"X-9": "in_progress", "X-8": "done", "X-6": "canceled"}
    r = plan_sprint(cands, blocks, capacity=10, states=states)
    assert keys(r) == ["T-2", "T-4"]  # done and canceled blockers no longer block
    ex = r.excluded_by_key
    assert ex["T-1"].detail == "blocked by X-9 (in progress, not a candidate)"
    assert ex["T-3"].detail == "blocked by X-7 (state unknown, not a candidate)"


def test_done_candidate_does_not_block() -> None:
    r = plan_sprint([issue(1, estimate=5, state="done"), issue(2)], [("T-1", "T-2")], capacity=1)
    assert keys(r) == ["T-2"]


def test_dependents_of_an_issue_over_capacity_are_blocked() -> None:
    cands = [issue(1, priority=1, estimate=8), issue(2, priority=1, estimate=1),
             issue(3, priority=4, estimate=5)]
    r = plan_sprint(cands, [("T-1", "T-2")], capacity=5)
    assert keys(r) == ["T-3"]
    ex = r.excluded_by_key
    assert ex["T-1"].reason == "over_capacity"
    assert ex["T-2"].detail == "blocked by T-1 (not selected: over capacity)"


def test_unestimated_excluded_or_defaulted() -> None:
    cands = [issue(1, estimate=None), issue(2, estimate=2), issue(3, estimate=1)]
    blocks = [("T-1", "T-3")]
    r = plan_sprint(cands, blocks, capacity=10)
    assert keys(r) == ["T-2"]
    assert r.excluded_by_key["T-1"].reason == "unestimated"
    assert r.excluded_by_key["T-3"].detail == "blocked by T-1 (not selected: unestimated)"

    r = plan_sprint(cands, blocks, capacity=10, default_estimate=3)
    assert keys(r) == ["T-2", "T-1", "T-3"]
    defaulted = r.selected[1]
    assert defaulted.estimate_defaulted and defaulted.estimate == 3
    assert "unestimated, counted as the default 3 points" in defaulted.reason
    assert r.committed_points == 6


def test_zero_capacity_takes_only_zero_point_issues() -> None:
    r = plan_sprint([issue(1, estimate=0), issue(2, estimate=0.5)], [], capacity=0)
    assert keys(r) == ["T-1"] and r.remaining == 0


def test_fractional_points_are_exact() -> None:
    r = plan_sprint([issue(1, estimate=0.1), issue(2, estimate=0.2)], [], capacity=0.3)
    assert keys(r) == ["T-1", "T-2"]


def test_blockers_come_first_in_the_order() -> None:
    # T-3 (urgent) is blocked by T-2, which is blocked by T-1: both inherit urgent.
    cands = [issue(1, priority=4, estimate=1), issue(2, priority=4, estimate=1),
             issue(3, priority=1, estimate=1), issue(4, priority=1, estimate=1)]
    r = plan_sprint(cands, [("T-1", "T-2"), ("T-2", "T-3")], capacity=10)
    assert keys(r) == ["T-1", "T-2", "T-3", "T-4"]


def test_empty_input() -> None:
    r = plan_sprint([], [], capacity=5)
    assert (r.selected, r.excluded, r.committed_points, r.remaining) == ((), (), 0, 5)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        plan_sprint([issue(1), issue(1)], [], capacity=1)
    with pytest.raises(ValueError, match="capacity must be"):
        plan_sprint([issue(1)], [], capacity=-1)
    with pytest.raises(ValueError, match="priority"):
        plan_sprint([issue(1, priority=9)], [], capacity=1)
    with pytest.raises(ValueError, match="negative or non-finite estimate"):
        plan_sprint([issue(1, estimate=-2)], [], capacity=1)
    with pytest.raises(ValueError, match="capacity"):
        plan_sprint([issue(1)], [], capacity=float("nan"))
    with pytest.raises(ValueError, match="default_estimate"):
        plan_sprint([issue(1, estimate=None)], [], capacity=1, default_estimate=float("inf"))


def test_large_cycle_and_chain_terminate_quickly() -> None:
    n = 3000
    cands = [issue(i) for i in range(1, n + 1)]
    ring = [(f"T-{i}", f"T-{i % n + 1}") for i in range(1, n + 1)]
    t0 = time.perf_counter()
    r = plan_sprint(cands, ring, capacity=50)
    assert keys(r) == [] and len(r.excluded_by_key["T-1"].cycle) == n + 1
    chain = ring[:-1]
    r = plan_sprint(cands, chain, capacity=50)
    assert keys(r) == [f"T-{i}" for i in range(1, 51)]
    assert time.perf_counter() - t0 < 10


# ---------------------------------------------------------------------------
# Properties

ESTIMATES = st.one_of(st.none(), st.sampled_from([0, 0.5, 1, 2, 3, 5, 8, 13]),
                      st.floats(0, 20, allow_nan=False, allow_infinity=False))
CATEGORIES: list[StateCategory] = ["todo", "todo", "todo", "in_progress", "done", "canceled"]


@st.composite
def problems(draw: st.DrawFn) -> tuple[list[PlanIssue], list[tuple[str, str]], dict[str, StateCategory],
                                      float, float | None]:
    n = draw(st.integers(0, 14))
    numbers = draw(st.lists(st.integers(1, 60), min_size=n, max_size=n, unique=True))
    cands = [PlanIssue(key=f"T-{k}", number=k, priority=draw(st.integers(0, 4)),
                       estimate=draw(ESTIMATES), state_category=draw(st.sampled_from(CATEGORIES)))
             for k in numbers]
    outside = [f"X-{i}" for i in range(1, 4)]
    names = [c.key for c in cands] + outside
    blocks = draw(st.lists(st.tuples(st.sampled_from(names), st.sampled_from(names)), max_size=3 * n)) \
        if names else []
    states = {k: draw(st.sampled_from(CATEGORIES)) for k in outside if draw(st.booleans())}
    capacity = draw(st.one_of(st.sampled_from([0, 1, 5, 10, 20]), st.floats(0, 60, allow_nan=False)))
    default = draw(st.one_of(st.none(), st.sampled_from([0, 1, 3])))
    return cands, blocks, states, capacity, default


def _resolved(key: str, cands: dict[str, PlanIssue], states: dict[str, StateCategory]) -> bool:
    state = cands[key].state_category if key in cands else states.get(key)
    return state in ("done", "canceled")


def _size(c: PlanIssue, default: float | None) -> Fraction:
    value = c.estimate if c.estimate is not None else default
    assert value is not None, "an unestimated issue was selected without a default"
    return Fraction(repr(float(value)))  # points count as the decimals they are written as


@settings(max_examples=150, deadline=None)
@given(problems())
def test_never_exceeds_capacity(problem: tuple) -> None:  # type: ignore[type-arg]
    cands, blocks, states, capacity, default = problem
    r = plan_sprint(cands, blocks, capacity=capacity, default_estimate=default, states=states)
    by_key = {c.key: c for c in cands}
    total = sum((_size(by_key[k], default) for k in keys(r)), Fraction(0))
    assert total <= Fraction(repr(float(capacity)))
    assert r.committed_points == float(total)
    # Everything left out for capacity really does not fit in what remains.
    room = Fraction(repr(float(capacity))) - total
    for e in r.excluded:
        if e.reason == "over_capacity":
            assert _size(by_key[e.key], default) > room


@settings(max_examples=150, deadline=None)
@given(problems())
def test_never_selects_an_issue_before_an_unfinished_blocker(problem: tuple) -> None:  # type: ignore[type-arg]
    cands, blocks, states, capacity, default = problem
    r = plan_sprint(cands, blocks, capacity=capacity, default_estimate=default, states=states)
    by_key = {c.key: c for c in cands}
    position = {k: i for i, k in enumerate(keys(r))}
    for blocker, blocked in blocks:
        if blocked in position and not _resolved(blocker, by_key, states):
            assert blocker in position and position[blocker] < position[blocked], (blocker, blocked)


@settings(max_examples=150, deadline=None)
@given(problems(), st.randoms(use_true_random=False))
def test_deterministic_whatever_the_input_order(problem: tuple, rnd: random.Random) -> None:  # type: ignore[type-arg]
    cands, blocks, states, capacity, default = problem
    first = plan_sprint(cands, blocks, capacity=capacity, default_estimate=default, states=states)
    again = plan_sprint(list(cands), list(blocks), capacity=capacity, default_estimate=default, states=states)
    shuffled_c, shuffled_b = list(cands), list(blocks)
    rnd.shuffle(shuffled_c)
    rnd.shuffle(shuffled_b)
    other = plan_sprint(shuffled_c, shuffled_b, capacity=capacity, default_estimate=default, states=states)
    assert first == again == other


@settings(max_examples=150, deadline=None)
@given(problems())
def test_every_candidate_accounted_for_and_cycles_reported(problem: tuple) -> None:  # type: ignore[type-arg]
    cands, blocks, states, capacity, default = problem
    r = plan_sprint(cands, blocks, capacity=capacity, default_estimate=default, states=states)
    by_key = {c.key: c for c in cands}
    selected, excluded = keys(r), [e.key for e in r.excluded]
    assert sorted(selected + excluded) == sorted(by_key)
    assert len(set(selected)) == len(selected)
    live = {(a, b) for a, b in blocks if a in by_key and b in by_key and not _resolved(a, by_key, states)}
    for e in r.excluded:
        if e.reason == "cycle":
            path = e.cycle
            assert path[0] == path[-1] == e.key
            assert all(edge in live for edge in itertools.pairwise(path))
        if e.reason == "blocked":
            assert e.blocked_by and all(b not in selected for b in e.blocked_by)
    # Any candidate on a cycle of unfinished blocks is reported as a cycle (never selected).
    for a, b in live:
        if a == b:
            assert r.excluded_by_key[a].reason == "cycle"
    for k in selected:
        assert _reaches(k, k, live) is False


def _reaches(start: str, goal: str, edges: set[tuple[str, str]]) -> bool:
    frontier, seen = [start], set()
    while frontier:
        node = frontier.pop()
        for a, b in edges:
            if a == node:
                if b == goal:
                    return True
                if b not in seen:
                    seen.add(b)
                    frontier.append(b)
    return False
