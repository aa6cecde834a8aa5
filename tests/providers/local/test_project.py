"""Local project provider: lifecycle, projects, issues, transitions and listing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from mosaic.catalog.registry import CATALOG
from mosaic.errors import Conflict, InvalidRequest, NotFound, PluginError, ProviderUnavailable
from mosaic.gateway.context import Principal, RequestContext
from mosaic.providers.local.project import LocalProjectConfig, LocalProjectPlugin


async def started(data_dir: Path, plugin_id: str = "local-project", **config: Any) -> LocalProjectPlugin:
    plugin = LocalProjectPlugin(plugin_id)
    await plugin.initialize(LocalProjectPlugin.Config(dataDir=data_dir, **config))
    await plugin.start()
    return plugin


@pytest.fixture
async def pm(tmp_path: Path) -> AsyncIterator[LocalProjectPlugin]:
    plugin = await started(tmp_path, baseUrl="http://localhost:8080/")
    yield plugin
    await plugin.stop()
    await plugin.dispose()


async def call(plugin: LocalProjectPlugin, op_name: str, ctx: RequestContext | None = None, /,
               **kw: Any) -> Any:
    op = CATALOG[f"project.{op_name}"]
    return await plugin.call(op, op.params(**kw), ctx or RequestContext())


async def seed(pm: LocalProjectPlugin, key: str = "MOS", n: int = 0, **issue: Any) -> list[str]:
    await call(pm, "create_project", key=key, name=f"Project {key}")
    return [(await call(pm, "create_issue", project=key, title=f"issue {i}", **issue)).key
            for i in range(1, n + 1)]


# ---------------------------------------------------------------------------
# Lifecycle


async def test_database_file_wal_and_health(tmp_path: Path) -> None:
    plugin = LocalProjectPlugin("p1")
    assert (await plugin.health_check()).status == "unhealthy"
    await plugin.initialize(LocalProjectConfig(dataDir=tmp_path))
    with pytest.raises(ProviderUnavailable, match="not started"):
        await call(plugin, "list_projects")
    await plugin.start()
    health = await plugin.health_check()
    assert health.status == "healthy" and health.latency_ms is not None
    db = tmp_path / "project" / "project.sqlite3"
    assert db.is_file()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    await plugin.stop()
    await plugin.dispose()
    assert (await plugin.health_check()).status == "unhealthy"


async def test_config_and_capabilities(tmp_path: Path) -> None:
    assert LocalProjectPlugin.capabilities() == CATALOG.names("project")
    with pytest.raises(ValidationError):
        LocalProjectConfig.model_validate({})  # dataDir is required
    with pytest.raises(ValidationError):
        LocalProjectConfig.model_validate({"dataDir": str(tmp_path), "colour": "red"})
    with pytest.raises(ValidationError, match="listed twice"):
        LocalProjectConfig.model_validate({"dataDir": str(tmp_path), "defaultStates": [
            {"name": "Open", "category": "todo"}, {"name": "open", "category": "done"}]})
    plugin = LocalProjectPlugin("p")

    class Other(BaseModel):
        pass

    with pytest.raises(PluginError):
        await plugin.initialize(Other())


async def test_data_survives_a_restart_and_numbering_continues(tmp_path: Path) -> None:
    first = await started(tmp_path)
    await seed(first, n=2)
    await first.stop()
    await first.dispose()
    second = await started(tmp_path)
    assert (await call(second, "get_issue", issue="MOS-2")).title == "issue 2"
    assert (await call(second, "create_issue", project="MOS", title="later")).key == "MOS-3"
    await second.dispose()


async def test_custom_default_states(tmp_path: Path) -> None:
    plugin = await started(tmp_path, defaultStates=[{"name": "Open", "category": "todo"},
                                                    {"name": "Closed", "category": "done"}])
    project = await call(plugin, "create_project", key="ABC", name="abc")
    assert [s.name for s in project.states] == ["Open", "Closed"]
    await plugin.dispose()


# ---------------------------------------------------------------------------
# Projects


async def test_create_and_get_project(pm: LocalProjectPlugin) -> None:
    p = await call(pm, "create_project", key="mos", name="MosAIc", description="gateway", lead="ada")
    assert (p.provider, p.id, p.key, p.lead) == ("local-project", "MOS", "MOS", "ada")
    assert p.url == "http://localhost:8080/projects/MOS"
    assert [(s.name, s.category) for s in p.states] == [
        ("Backlog", "todo"), ("Todo", "todo"), ("In Progress", "in_progress"),
        ("In Review", "in_progress"), ("Done", "done"), ("Canceled", "canceled")]
    assert p.raw["key"] == "MOS" and p.created_at is not None
    got = await call(pm, "get_project", project="MOS")
    assert got == p


async def test_project_errors(pm: LocalProjectPlugin) -> None:
    await call(pm, "create_project", key="MOS", name="one")
    with pytest.raises(Conflict, match="already exists"):
        await call(pm, "create_project", key="MOS", name="two")
    with pytest.raises(NotFound, match="project NOPE not found"):
        await call(pm, "get_project", project="NOPE")
    with pytest.raises(ValidationError, match="project key"):
        await call(pm, "create_project", key="1-bad", name="x")
    with pytest.raises(ValidationError, match="listed twice"):
        await call(pm, "create_project", key="ABC", name="x",
                   states=[{"name": "A", "category": "todo"}, {"name": "a", "category": "done"}])
    with pytest.raises(NotFound):
        await call(pm, "update_project", project="NOPE", name="x")


async def test_update_project(pm: LocalProjectPlugin) -> None:
    await call(pm, "create_project", key="MOS", name="one", lead="ada")
    p = await call(pm, "update_project", project="MOS", name="renamed", description="d")
    assert (p.name, p.description, p.lead) == ("renamed", "d", "ada")
    p = await call(pm, "update_project", project="MOS", lead=None)
    assert p.lead is None and p.name == "renamed"


async def test_update_project_states_moves_issues_and_refuses_orphans(pm: LocalProjectPlugin) -> None:
    [key] = await seed(pm, n=1)
    await call(pm, "transition_issue", issue=key, state="In Review")
    with pytest.raises(Conflict, match="1 in 'In Review'"):
        await call(pm, "update_project", project="MOS",
                   states=[{"name": "Backlog", "category": "todo"}, {"name": "Done", "category": "done"}])
    # Renaming by case and re-categorizing a state carries the issues along.
    p = await call(pm, "update_project", project="MOS", states=[
        {"name": "Backlog", "category": "todo"}, {"name": "in review", "category": "done"}])
    assert [s.name for s in p.states] == ["Backlog", "in review"]
    issue = await call(pm, "get_issue", issue=key)
    assert (issue.state, issue.state_category) == ("in review", "done")


async def test_list_projects_pages_and_query(pm: LocalProjectPlugin) -> None:
    for key in ("DDD", "AAA", "CCC", "BBB", "EEE"):
        await call(pm, "create_project", key=key, name=f"name {key.lower()}")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await call(pm, "list_projects", limit=2, cursor=cursor)
        seen += [p.key for p in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["AAA", "BBB", "CCC", "DDD", "EEE"] and pages == 3
    assert [p.key for p in (await call(pm, "list_projects", query="name c")).items] == ["CCC"]


# ---------------------------------------------------------------------------
# Issues


async def test_issue_numbers_are_per_project(pm: LocalProjectPlugin) -> None:
    assert await seed(pm, "MOS", 3) == ["MOS-1", "MOS-2", "MOS-3"]
    assert await seed(pm, "OPS", 2) == ["OPS-1", "OPS-2"]


async def test_create_issue_fields_and_defaults(pm: LocalProjectPlugin) -> None:
    await seed(pm)
    issue = await call(pm, "create_issue", project="MOS", title="Fix login", description="boom",
                       priority=1, estimate=3, assignee="ada", labels=["bug", " ui ", "bug"])
    assert (issue.id, issue.key, issue.number, issue.project) == ("MOS-1", "MOS-1", 1, "MOS")
    assert (issue.state, issue.state_category) == ("Backlog", "todo")
    assert (issue.priority, issue.estimate, issue.assignee) == (1, 3, "ada")
    assert issue.labels == ["bug", "ui"]
    assert issue.url == "http://localhost:8080/projects/MOS/issues/MOS-1"
    assert issue.provider == "local-project" and issue.raw["number"] == 1
    explicit = await call(pm, "create_issue", project="MOS", title="t", state="in progress")
    assert (explicit.state, explicit.state_category) == ("In Progress", "in_progress")
    assert await call(pm, "get_issue", issue="mos-1") == issue


async def test_create_issue_errors(pm: LocalProjectPlugin) -> None:
    await seed(pm)
    with pytest.raises(NotFound):
        await call(pm, "create_issue", project="NOPE", title="t")
    with pytest.raises(InvalidRequest, match=r"has no state 'Doing'.*'Backlog'"):
        await call(pm, "create_issue", project="MOS", title="t", state="Doing")
    with pytest.raises(NotFound, match="sprint 42"):
        await call(pm, "create_issue", project="MOS", title="t", sprint_id="42")
    with pytest.raises(ValidationError):
        await call(pm, "create_issue", project="MOS", title="t", priority=5)
    with pytest.raises(ValidationError):
        await call(pm, "create_issue", project="MOS", title="")
    # A failed create does not use up an issue number.
    assert (await call(pm, "create_issue", project="MOS", title="ok")).key == "MOS-1"


async def test_get_issue_errors(pm: LocalProjectPlugin) -> None:
    await seed(pm, n=1)
    with pytest.raises(NotFound, match="issue MOS-2 not found"):
        await call(pm, "get_issue", issue="MOS-2")
    with pytest.raises(NotFound):
        await call(pm, "get_issue", issue="NOPE-1")
    with pytest.raises(ValidationError, match="issue key"):
        await call(pm, "get_issue", issue="MOS12")


async def test_update_issue(pm: LocalProjectPlugin) -> None:
    [key] = await seed(pm, n=1, estimate=2, assignee="ada", labels=["a"])
    before = await call(pm, "get_issue", issue=key)
    issue = await call(pm, "update_issue", issue=key, title="new", priority=2, labels=["x", "y"])
    assert (issue.title, issue.priority, issue.labels, issue.estimate, issue.assignee) == (
        "new", 2, ["x", "y"], 2, "ada")
    assert issue.updated_at > before.updated_at
    issue = await call(pm, "update_issue", issue=key, estimate=None, assignee=None)
    assert issue.estimate is None and issue.assignee is None and issue.title == "new"
    with pytest.raises(ValidationError, match="nothing to update"):
        await call(pm, "update_issue", issue=key)
    with pytest.raises(NotFound):
        await call(pm, "update_issue", issue="MOS-9", title="x")


async def test_update_issue_sprint(pm: LocalProjectPlugin) -> None:
    [key] = await seed(pm, n=1)
    await seed(pm, "OPS")
    sprint = await call(pm, "create_sprint", project="MOS", name="S1")
    other = await call(pm, "create_sprint", project="OPS", name="O1")
    closed = await call(pm, "create_sprint", project="MOS", name="old", state="closed")
    assert (await call(pm, "update_issue", issue=key, sprint_id=sprint.id)).sprint_id == sprint.id
    with pytest.raises(InvalidRequest, match="belongs to project OPS"):
        await call(pm, "update_issue", issue=key, sprint_id=other.id)
    with pytest.raises(Conflict, match="closed"):
        await call(pm, "update_issue", issue=key, sprint_id=closed.id)
    assert (await call(pm, "update_issue", issue=key, sprint_id=None)).sprint_id is None


async def test_transition_issue(pm: LocalProjectPlugin) -> None:
    [key] = await seed(pm, n=1)
    moved = await call(pm, "transition_issue", issue=key, state="in progress")
    assert (moved.state, moved.state_category) == ("In Progress", "in_progress")
    again = await call(pm, "transition_issue", issue=key, state="In Progress")
    assert again.updated_at == moved.updated_at  # already there: nothing changes
    done = await call(pm, "transition_issue", issue=key, state="Done")
    assert done.state_category == "done"
    with pytest.raises(InvalidRequest, match="no state 'Shipped'") as err:
        await call(pm, "transition_issue", issue=key, state="Shipped")
    assert "In Review" in err.value.details["states"]
    with pytest.raises(NotFound):
        await call(pm, "transition_issue", issue="MOS-7", state="Done")


async def test_concurrent_creates_get_distinct_numbers(pm: LocalProjectPlugin) -> None:
    await seed(pm)
    made = await asyncio.gather(*(call(pm, "create_issue", project="MOS", title=f"t{i}") for i in range(20)))
    assert sorted(i.number for i in made) == list(range(1, 21))


# ---------------------------------------------------------------------------
# Listing


async def test_list_issues_filters(pm: LocalProjectPlugin) -> None:
    await seed(pm)
    await seed(pm, "OPS")
    sprint = await call(pm, "create_sprint", project="MOS", name="S1")
    mk = [
        dict(title="Login fails with 100% CPU", priority=1, assignee="ada", labels=["bug"]),
        dict(title="Dark mode", priority=3, labels=["ui", "feature"], sprint_id=sprint.id),
        dict(title="Refactor", description="the login module", priority=3, assignee="bob"),
        dict(title="Docs", priority=4, assignee="ada", labels=["docs"], state="Done"),
    ]
    for kw in mk:
        await call(pm, "create_issue", project="MOS", **kw)
    await call(pm, "create_issue", project="OPS", title="Login for ops", assignee="ada", state="todo")

    async def keys(**kw: Any) -> list[str]:
        return [i.key for i in (await call(pm, "list_issues", **kw)).items]

    assert await keys() == ["MOS-1", "MOS-2", "MOS-3", "MOS-4", "OPS-1"]
    assert await keys(project="OPS") == ["OPS-1"]
    assert await keys(project="MOS", state="done") == ["MOS-4"]
    assert await keys(state="Todo") == ["OPS-1"]  # without a project: any project's state of that name
    assert await keys(state_category="todo", project="MOS") == ["MOS-1", "MOS-2", "MOS-3"]
    assert await keys(assignee="ada") == ["MOS-1", "MOS-4", "OPS-1"]
    assert await keys(label="ui") == ["MOS-2"]
    assert await keys(sprint_id=sprint.id) == ["MOS-2"]
    assert await keys(priority=3) == ["MOS-2", "MOS-3"]
    assert await keys(query="login") == ["MOS-1", "MOS-3", "OPS-1"]
    assert await keys(query="100%") == ["MOS-1"]
    assert await keys(query="_") == []  # LIKE wildcards are taken literally
    assert await keys(assignee="ada", project="MOS", label="docs") == ["MOS-4"]
    with pytest.raises(InvalidRequest, match="no state 'Doing'"):
        await call(pm, "list_issues", project="MOS", state="Doing")
    with pytest.raises(NotFound):
        await call(pm, "list_issues", project="NOPE")
    with pytest.raises(NotFound):
        await call(pm, "list_issues", sprint_id="99")


async def test_list_issues_pagination(pm: LocalProjectPlugin) -> None:
    created = await seed(pm, n=7)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await call(pm, "list_issues", project="MOS", limit=2, cursor=cursor)
        seen += [i.key for i in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == created and pages == 4
    # Items added between pages are not skipped or repeated.
    first = await call(pm, "list_issues", project="MOS", limit=3)
    await call(pm, "create_issue", project="MOS", title="late")
    rest = await call(pm, "list_issues", project="MOS", limit=100, cursor=first.next_cursor)
    assert [i.key for i in first.items + rest.items] == [*created, "MOS-8"]
    with pytest.raises(InvalidRequest, match="invalid cursor"):
        await call(pm, "list_issues", cursor="garbage!")
    # A cursor of another listing is refused rather than silently misread.
    await call(pm, "create_project", key="ZZZ", name="z")
    projects_cursor = (await call(pm, "list_projects", limit=1)).next_cursor
    assert projects_cursor is not None
    with pytest.raises(InvalidRequest, match="invalid cursor"):
        await call(pm, "list_issues", cursor=projects_cursor)


async def test_issue_list_includes_links(pm: LocalProjectPlugin) -> None:
    await seed(pm, n=3)
    await call(pm, "link_issues", issue="MOS-1", type="blocks", target="MOS-2")
    page = await call(pm, "list_issues", project="MOS")
    links = {i.key: [(lk.source, lk.type, lk.target) for lk in i.links] for i in page.items}
    assert links == {"MOS-1": [("MOS-1", "blocks", "MOS-2")], "MOS-2": [("MOS-1", "blocks", "MOS-2")],
                     "MOS-3": []}


async def test_comment_author_is_the_caller(pm: LocalProjectPlugin) -> None:
    [key] = await seed(pm, n=1)
    ctx = RequestContext(principal=Principal(id="ada"))
    c = await call(pm, "comment_issue", ctx, issue=key, body="looks good")
    assert (c.issue, c.body, c.author, c.provider) == ("MOS-1", "looks good", "ada", "local-project")
    assert c.url == f"http://localhost:8080/projects/MOS/issues/MOS-1#comment-{c.id}"
