"""Local project provider: plan_sprint end to end (dry run, commit, re-plan, errors)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mosaic.catalog.registry import CATALOG
from mosaic.errors import Conflict, InvalidRequest, NotFound
from mosaic.gateway.context import RequestContext
from mosaic.providers.local.project import LocalProjectPlugin


@pytest.fixture
async def pm(tmp_path: Path) -> AsyncIterator[LocalProjectPlugin]:
    plugin = LocalProjectPlugin("pm-plan")
    await plugin.initialize(LocalProjectPlugin.Config(dataDir=tmp_path))
    await plugin.start()
    yield plugin
    await plugin.stop()
    await plugin.dispose()


async def call(plugin: LocalProjectPlugin, op_name: str, /, **kw: Any) -> Any:
    op = CATALOG[f"project.{op_name}"]
    return await plugin.call(op, op.params(**kw), RequestContext())


async def sprint_keys(pm: LocalProjectPlugin, sprint_id: str) -> list[str]:
    return [i.key for i in (await call(pm, "list_issues", sprint_id=sprint_id)).items]


@pytest.fixture
async def board(pm: LocalProjectPlugin) -> str:
    """The board the expected plans below are computed by hand from; returns the sprint id."""
    await call(pm, "create_project", key="MOS", name="MosAIc")
    await call(pm, "create_project", key="OPS", name="Ops")
    await call(pm, "create_issue", project="OPS", title="Cluster", state="In Progress")
    s0 = await call(pm, "create_sprint", project="MOS", name="S0", state="active")
    s1 = await call(pm, "create_sprint", project="MOS", name="S1", capacity=10)
    issues: list[dict[str, Any]] = [
        dict(title="Auth API", priority=2, estimate=3),                           # MOS-1
        dict(title="Login UI", priority=1, estimate=5, labels=["frontend"]),      # MOS-2
        dict(title="Docs", priority=4, estimate=2),                               # MOS-3
        dict(title="Metrics", priority=3, estimate=8),                            # MOS-4
        dict(title="Spike", priority=2),                                          # MOS-5
        dict(title="Done thing", priority=3, estimate=1, state="Done"),           # MOS-6
        dict(title="Follow-up", priority=3, estimate=1),                          # MOS-7
        dict(title="Elsewhere", priority=1, estimate=1, sprint_id=s0.id),         # MOS-8
        dict(title="Needs ops", priority=1, estimate=1),                          # MOS-9
    ]
    for kw in issues:
        await call(pm, "create_issue", project="MOS", **kw)
    for source, target in [("MOS-1", "MOS-2"), ("MOS-6", "MOS-7"), ("OPS-1", "MOS-9")]:
        await call(pm, "link_issues", issue=source, type="blocks", target=target)
    sid: str = s1.id
    return sid


async def test_dry_run_explains_and_changes_nothing(pm: LocalProjectPlugin, board: str) -> None:
    plan = await call(pm, "plan_sprint", project="MOS", sprint_id=board)
    # MOS-1 inherits urgent from MOS-2 (3 + 5), then medium MOS-7 (1); 1 point left for
    # MOS-4 (8) and MOS-3 (2); no swap helps (MOS-3 is less urgent than every leaf).
    assert [s.key for s in plan.selected] == ["MOS-1", "MOS-2", "MOS-7"]
    assert (plan.capacity, plan.committed_points, plan.remaining) == (10, 9, 1)
    assert (plan.committed, plan.unestimated_policy, plan.provider, plan.id) == (
        False, "excluded", "pm-plan", board)
    assert "because it unblocks MOS-2" in plan.selected[0].reason
    reasons = {e.key: (e.reason, e.detail) for e in plan.excluded}
    assert reasons == {
        "MOS-3": ("over_capacity", "needs 2 points but only 1 of 10 remain after the selected issues "
                                   "(it ranks at low priority)"),
        "MOS-4": ("over_capacity", "needs 8 points but only 1 of 10 remain after the selected issues "
                                   "(it ranks at medium priority)"),
        "MOS-5": ("unestimated", "no estimate and no default_estimate given"),
        "MOS-8": ("in_other_sprint", "already in sprint 1 (active)"),
        "MOS-9": ("blocked", "blocked by OPS-1 (in progress, not a candidate)"),
    }
    assert [e.key for e in plan.excluded] == ["MOS-3", "MOS-4", "MOS-5", "MOS-8", "MOS-9"]
    assert plan.algorithm.startswith("1. Candidates in a blocking cycle")
    assert await sprint_keys(pm, board) == []


async def test_commit_assigns_the_plan_and_replanning_is_stable(pm: LocalProjectPlugin, board: str) -> None:
    plan = await call(pm, "plan_sprint", project="MOS", sprint_id=board, commit=True)
    assert plan.committed is True and plan.removed == []
    assert await sprint_keys(pm, board) == ["MOS-1", "MOS-2", "MOS-7"]
    assert (await call(pm, "get_issue", issue="MOS-2")).sprint_id == board
    again = await call(pm, "plan_sprint", project="MOS", sprint_id=board, commit=True)
    assert again.selected == plan.selected and again.excluded == plan.excluded
    assert await sprint_keys(pm, board) == ["MOS-1", "MOS-2", "MOS-7"]


async def test_commit_takes_unselected_candidates_out_of_the_sprint(pm: LocalProjectPlugin,
                                                                    board: str) -> None:
    await call(pm, "update_issue", issue="MOS-4", sprint_id=board)
    await call(pm, "update_issue", issue="MOS-6", sprint_id=board)  # done: not a candidate, stays
    dry = await call(pm, "plan_sprint", project="MOS", sprint_id=board)
    assert dry.removed == ["MOS-4"]
    assert await sprint_keys(pm, board) == ["MOS-4", "MOS-6"]
    plan = await call(pm, "plan_sprint", project="MOS", sprint_id=board, commit=True)
    assert plan.removed == ["MOS-4"]
    assert await sprint_keys(pm, board) == ["MOS-1", "MOS-2", "MOS-6", "MOS-7"]


async def test_default_estimate_and_capacity_override(pm: LocalProjectPlugin, board: str) -> None:
    plan = await call(pm, "plan_sprint", project="MOS", sprint_id=board, default_estimate=1)
    assert [s.key for s in plan.selected] == ["MOS-1", "MOS-2", "MOS-5", "MOS-7"]
    assert plan.unestimated_policy == "default_estimate" and plan.committed_points == 10
    assert plan.selected[2].estimate_defaulted is True
    small = await call(pm, "plan_sprint", project="MOS", sprint_id=board, capacity=3)
    assert [s.key for s in small.selected] == ["MOS-1"]
    assert {e.key: e.reason for e in small.excluded}["MOS-2"] == "over_capacity"


async def test_label_and_state_filters(pm: LocalProjectPlugin, board: str) -> None:
    plan = await call(pm, "plan_sprint", project="MOS", sprint_id=board, labels=["frontend"])
    assert plan.selected == []
    [only] = plan.excluded
    assert (only.key, only.detail) == ("MOS-2", "blocked by MOS-1 (todo, not a candidate)")
    await call(pm, "transition_issue", issue="MOS-4", state="In Progress")
    plan = await call(pm, "plan_sprint", project="MOS", sprint_id=board,
                      state_categories=["in_progress"], capacity=8)
    assert [s.key for s in plan.selected] == ["MOS-4"] and plan.excluded == []


async def test_closed_sprint_carry_over_is_a_candidate(pm: LocalProjectPlugin, board: str) -> None:
    await call(pm, "update_sprint", sprint_id="1", state="closed")
    plan = await call(pm, "plan_sprint", project="MOS", sprint_id=board, capacity=20)
    assert "MOS-8" in [s.key for s in plan.selected]


async def test_cycle_is_reported_end_to_end(pm: LocalProjectPlugin) -> None:
    await call(pm, "create_project", key="CYC", name="cycles")
    for i in range(3):
        await call(pm, "create_issue", project="CYC", title=f"c{i}", estimate=1)
    await call(pm, "link_issues", issue="CYC-1", type="blocks", target="CYC-2")
    await call(pm, "link_issues", issue="CYC-2", type="blocks", target="CYC-1")
    sprint = await call(pm, "create_sprint", project="CYC", name="S", capacity=5)
    plan = await call(pm, "plan_sprint", project="CYC", sprint_id=sprint.id, commit=True)
    assert [s.key for s in plan.selected] == ["CYC-3"]
    ex = {e.key: e for e in plan.excluded}
    assert ex["CYC-1"].cycle == ["CYC-1", "CYC-2", "CYC-1"]
    assert ex["CYC-2"].detail == "in a blocking cycle: CYC-2 blocks CYC-1 blocks CYC-2"
    assert await sprint_keys(pm, sprint.id) == ["CYC-3"]


async def test_plan_errors(pm: LocalProjectPlugin, board: str) -> None:
    await call(pm, "create_project", key="XYZ", name="other")
    other = await call(pm, "create_sprint", project="XYZ", name="x", capacity=5)
    with pytest.raises(InvalidRequest, match="belongs to project XYZ"):
        await call(pm, "plan_sprint", project="MOS", sprint_id=other.id)
    with pytest.raises(NotFound):
        await call(pm, "plan_sprint", project="MOS", sprint_id="404")
    with pytest.raises(NotFound):
        await call(pm, "plan_sprint", project="NOPE", sprint_id=board)
    with pytest.raises(InvalidRequest, match="no capacity"):
        await call(pm, "plan_sprint", project="MOS", sprint_id="1")  # S0 has no capacity
    await call(pm, "update_sprint", sprint_id=board, state="closed")
    with pytest.raises(Conflict, match="closed"):
        await call(pm, "plan_sprint", project="MOS", sprint_id=board, commit=True)
