"""Local project provider: comments, links and sprints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from mosaic.catalog.registry import CATALOG
from mosaic.errors import InvalidRequest, NotFound
from mosaic.gateway.context import RequestContext
from mosaic.providers.local.project import LocalProjectPlugin


@pytest.fixture
async def pm(tmp_path: Path) -> AsyncIterator[LocalProjectPlugin]:
    plugin = LocalProjectPlugin("pm-1")
    await plugin.initialize(LocalProjectPlugin.Config(dataDir=tmp_path))
    await plugin.start()
    yield plugin
    await plugin.stop()
    await plugin.dispose()


async def call(plugin: LocalProjectPlugin, op_name: str, /, **kw: Any) -> Any:
    op = CATALOG[f"project.{op_name}"]
    return await plugin.call(op, op.params(**kw), RequestContext())


async def seed(pm: LocalProjectPlugin, key: str = "MOS", n: int = 3) -> list[str]:
    await call(pm, "create_project", key=key, name=key)
    return [(await call(pm, "create_issue", project=key, title=f"{key} {i}")).key for i in range(1, n + 1)]


# ---------------------------------------------------------------------------
# Comments


async def test_comments_list_in_order_across_pages(pm: LocalProjectPlugin) -> None:
    await seed(pm, n=2)
    for i in range(7):
        await call(pm, "comment_issue", issue="MOS-1", body=f"c{i}")
    await call(pm, "comment_issue", issue="MOS-2", body="elsewhere")
    bodies: list[str] = []
    cursor, pages = None, 0
    while True:
        page = await call(pm, "list_comments", issue="MOS-1", limit=3, cursor=cursor)
        bodies += [c.body for c in page.items]
        pages += 1
        if (cursor := page.next_cursor) is None:
            break
    assert bodies == [f"c{i}" for i in range(7)] and pages == 3
    first = (await call(pm, "list_comments", issue="MOS-1")).items[0]
    assert (first.author, first.issue, first.url) == ("local", "MOS-1", None)


async def test_comment_errors(pm: LocalProjectPlugin) -> None:
    await seed(pm, n=1)
    with pytest.raises(NotFound):
        await call(pm, "comment_issue", issue="MOS-9", body="x")
    with pytest.raises(NotFound):
        await call(pm, "list_comments", issue="MOS-9")
    with pytest.raises(ValidationError):
        await call(pm, "comment_issue", issue="MOS-1", body="")


# ---------------------------------------------------------------------------
# Links


async def test_link_is_idempotent_and_visible_on_both_issues(pm: LocalProjectPlugin) -> None:
    await seed(pm)
    link = await call(pm, "link_issues", issue="MOS-1", type="blocks", target="MOS-2")
    assert (link.type, link.source, link.target, link.provider) == ("blocks", "MOS-1", "MOS-2", "pm-1")
    again = await call(pm, "link_issues", issue="mos-1", type="blocks", target="MOS-2")
    assert again.id == link.id
    for key in ("MOS-1", "MOS-2"):
        issue = await call(pm, "get_issue", issue=key)
        assert [(lk.id, lk.source, lk.target) for lk in issue.links] == [(link.id, "MOS-1", "MOS-2")]
    # The reverse 'blocks' is another link (a cycle the planner reports), not the same one.
    reverse = await call(pm, "link_issues", issue="MOS-2", type="blocks", target="MOS-1")
    assert reverse.id != link.id


async def test_relates_has_no_direction_and_duplicates_coexists(pm: LocalProjectPlugin) -> None:
    await seed(pm)
    rel = await call(pm, "link_issues", issue="MOS-1", type="relates", target="MOS-3")
    assert (await call(pm, "link_issues", issue="MOS-3", type="relates", target="MOS-1")).id == rel.id
    blocks = await call(pm, "link_issues", issue="MOS-1", type="blocks", target="MOS-3")
    dup = await call(pm, "link_issues", issue="MOS-1", type="duplicates", target="MOS-3")
    assert len({rel.id, blocks.id, dup.id}) == 3
    issue = await call(pm, "get_issue", issue="MOS-3")
    assert sorted(lk.type for lk in issue.links) == ["blocks", "duplicates", "relates"]


async def test_links_across_projects(pm: LocalProjectPlugin) -> None:
    await seed(pm, "MOS", 1)
    await seed(pm, "OPS", 1)
    link = await call(pm, "link_issues", issue="OPS-1", type="blocks", target="MOS-1")
    assert (link.source, link.target) == ("OPS-1", "MOS-1")


async def test_link_errors(pm: LocalProjectPlugin) -> None:
    await seed(pm, n=1)
    with pytest.raises(InvalidRequest, match="itself"):
        await call(pm, "link_issues", issue="MOS-1", type="blocks", target="mos-1")
    with pytest.raises(NotFound, match="MOS-5"):
        await call(pm, "link_issues", issue="MOS-1", type="blocks", target="MOS-5")
    with pytest.raises(NotFound, match="MOS-5"):
        await call(pm, "link_issues", issue="MOS-5", type="relates", target="MOS-1")
    with pytest.raises(ValidationError):
        await call(pm, "link_issues", issue="MOS-1", type="causes", target="MOS-2")


async def test_unlink(pm: LocalProjectPlugin) -> None:
    await seed(pm)
    link = await call(pm, "link_issues", issue="MOS-1", type="relates", target="MOS-2")
    await call(pm, "link_issues", issue="MOS-1", type="blocks", target="MOS-2")
    gone = await call(pm, "unlink_issues", issue="MOS-2", type="relates", target="MOS-1")
    assert (gone.deleted, gone.id, gone.provider) == (True, link.id, "pm-1")
    again = await call(pm, "unlink_issues", issue="MOS-1", type="relates", target="MOS-2")
    assert again.deleted is False
    assert [lk.type for lk in (await call(pm, "get_issue", issue="MOS-1")).links] == ["blocks"]
    with pytest.raises(NotFound):
        await call(pm, "unlink_issues", issue="MOS-1", type="blocks", target="MOS-9")
    with pytest.raises(InvalidRequest):
        await call(pm, "unlink_issues", issue="MOS-1", type="blocks", target="MOS-1")


# ---------------------------------------------------------------------------
# Sprints


async def test_create_get_update_sprint(pm: LocalProjectPlugin) -> None:
    await seed(pm, n=0)
    start, end = datetime(2025, 3, 3, tzinfo=UTC), datetime(2025, 3, 14, tzinfo=UTC)
    s = await call(pm, "create_sprint", project="MOS", name="Sprint 1", goal="ship", start=start, end=end,
                   capacity=20)
    assert (s.project, s.name, s.goal, s.start, s.end, s.state, s.capacity) == (
        "MOS", "Sprint 1", "ship", start, end, "planned", 20)
    assert s.provider == "pm-1" and s.raw["name"] == "Sprint 1"
    assert await call(pm, "get_sprint", sprint_id=s.id) == s
    s2 = await call(pm, "update_sprint", sprint_id=s.id, state="active", capacity=None, goal="ship it")
    assert (s2.state, s2.capacity, s2.goal, s2.start) == ("active", None, "ship it", start)
    s3 = await call(pm, "update_sprint", sprint_id=s.id, start=None)
    assert s3.start is None and s3.end == end


async def test_sprint_errors(pm: LocalProjectPlugin) -> None:
    await seed(pm, n=0)
    with pytest.raises(NotFound):
        await call(pm, "create_sprint", project="NOPE", name="x")
    for bad in ("99", "abc", "-1", "0"):
        with pytest.raises(NotFound):
            await call(pm, "get_sprint", sprint_id=bad)
    with pytest.raises(ValidationError, match="before its start"):
        await call(pm, "create_sprint", project="MOS", name="x", start=datetime(2025, 3, 3),
                   end=datetime(2025, 3, 1))
    s = await call(pm, "create_sprint", project="MOS", name="x", start=datetime(2025, 3, 3, tzinfo=UTC))
    with pytest.raises(InvalidRequest, match="before its start"):
        await call(pm, "update_sprint", sprint_id=s.id, end=datetime(2025, 3, 1))
    with pytest.raises(ValidationError, match="nothing to update"):
        await call(pm, "update_sprint", sprint_id=s.id)
    with pytest.raises(NotFound):
        await call(pm, "update_sprint", sprint_id="77", name="y")
    with pytest.raises(ValidationError):
        await call(pm, "create_sprint", project="MOS", name="x", capacity=-1)


async def test_list_sprints_by_state_and_pages(pm: LocalProjectPlugin) -> None:
    await seed(pm, n=0)
    await seed(pm, "OPS", 0)
    states = ["closed", "active", "planned", "planned", "planned", "closed", "planned"]
    made = [await call(pm, "create_sprint", project="MOS", name=f"S{i}", state=st)
            for i, st in enumerate(states)]
    await call(pm, "create_sprint", project="OPS", name="other")
    seen: list[str] = []
    cursor, pages = None, 0
    while True:
        page = await call(pm, "list_sprints", project="MOS", limit=3, cursor=cursor)
        seen += [s.id for s in page.items]
        pages += 1
        if (cursor := page.next_cursor) is None:
            break
    assert seen == [s.id for s in made] and pages == 3
    planned = await call(pm, "list_sprints", project="MOS", state="planned")
    assert [s.name for s in planned.items] == ["S2", "S3", "S4", "S6"]
    with pytest.raises(NotFound):
        await call(pm, "list_sprints", project="NOPE")
