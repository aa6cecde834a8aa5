"""``plan_sprint`` for the local store: gather candidates and links, plan, optionally apply."""

from __future__ import annotations

import sqlite3

from mosaic.catalog.project import ExcludedIssue, PlanSprintParams, SprintPlan, StateCategory
from mosaic.errors import Conflict, InvalidRequest
from mosaic.planning.sprint import PlanIssue, plan_sprint
from mosaic.providers.local.project_rows import Renderer, load_labels
from mosaic.providers.local.project_store import Tx, now


def _key(row: sqlite3.Row) -> str:
    return f"{row['project_key']}-{row['number']}"


async def plan(tx: Tx, render: Renderer, p: PlanSprintParams) -> SprintPlan:
    sprint = await tx.sprint(p.sprint_id)
    project = await tx.project(p.project)
    if sprint["project_id"] != project["id"]:
        raise InvalidRequest(f"sprint {p.sprint_id} belongs to project {sprint['project_key']}, "
                             f"not {p.project}", details={"sprint_id": p.sprint_id, "project": p.project})
    if sprint["state"] == "closed":
        raise Conflict(f"sprint {p.sprint_id} is closed; plan a planned or active sprint",
                       details={"sprint_id": p.sprint_id})
    capacity = p.capacity if p.capacity is not None else sprint["capacity"]
    if capacity is None:
        raise InvalidRequest(f"sprint {p.sprint_id} has no capacity: pass `capacity` (points)",
                             details={"sprint_id": p.sprint_id})

    cats = sorted(set(p.state_categories))
    rows = await tx.all(
        "SELECT i.*, p.key AS project_key, o.state AS sprint_state FROM issues i"
        " JOIN projects p ON p.id = i.project_id LEFT JOIN sprints o ON o.id = i.sprint_id"
        f" WHERE i.project_id = ? AND i.state_category IN ({','.join('?' * len(cats))})"
        " ORDER BY i.number",
        project["id"], *cats,
    )
    if p.labels:
        wanted = set(p.labels)
        rows = [r for r in rows if wanted.intersection(load_labels(r["labels"]))]

    # Carry-over from a closed sprint is fair game; an issue committed to another open sprint is not.
    elsewhere = [r for r in rows
                 if r["sprint_id"] not in (None, sprint["id"]) and r["sprint_state"] != "closed"]
    taken_elsewhere = {r["id"] for r in elsewhere}
    pool = [r for r in rows if r["id"] not in taken_elsewhere]
    candidates = [PlanIssue(key=_key(r), number=r["number"], title=r["title"], priority=r["priority"],
                            estimate=r["estimate"], state_category=r["state_category"]) for r in pool]
    pairs = await tx.blocking_pairs(project["id"])
    states: dict[str, StateCategory] = {r["blocker"]: r["blocker_category"] for r in pairs}
    result = plan_sprint(candidates, [(r["blocker"], r["blocked"]) for r in pairs],
                         capacity=float(capacity), default_estimate=p.default_estimate, states=states)

    chosen = set(result.selected_keys)
    to_add = [r["id"] for r in pool if _key(r) in chosen and r["sprint_id"] != sprint["id"]]
    to_remove = [r for r in pool if _key(r) not in chosen and r["sprint_id"] == sprint["id"]]
    if p.commit:
        stamp = now()
        for pk in to_add:
            await tx.run("UPDATE issues SET sprint_id = ?, updated_at = ? WHERE id = ?",
                         sprint["id"], stamp, pk)
        for r in to_remove:
            await tx.run("UPDATE issues SET sprint_id = NULL, updated_at = ? WHERE id = ?", stamp, r["id"])

    other = [
        ExcludedIssue(key=_key(r), title=r["title"], priority=r["priority"], estimate=r["estimate"],
                      reason="in_other_sprint",
                      detail=f"already in sprint {r['sprint_id']} ({r['sprint_state']})")
        for r in elsewhere
    ]
    excluded = sorted([*other, *result.excluded], key=lambda e: int(e.key.rsplit("-", 1)[1]))
    rendered = render.sprint(sprint)
    return SprintPlan(
        provider=render.provider, id=rendered.id, url=rendered.url,
        raw={"sprint": rendered.raw, "candidates": [c.key for c in candidates]},
        project=p.project, sprint_id=rendered.id, capacity=result.capacity,
        committed_points=result.committed_points, remaining=result.remaining, committed=p.commit,
        unestimated_policy="excluded" if p.default_estimate is None else "default_estimate",
        default_estimate=p.default_estimate, selected=list(result.selected), excluded=excluded,
        removed=[_key(r) for r in to_remove], algorithm=result.algorithm,
    )
