"""The embedded ``local`` project-management provider: projects, issues, links, sprints in SQLite.

Data lives in ``<dataDir>/project/project.sqlite3``. Issue numbers count from 1 per project
and are never reused; issue keys are ``PROJECTKEY-N``. Sprint planning uses the
provider-neutral planner in :mod:`mosaic.planning.sprint`.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mosaic.catalog.base import Deleted, Page
from mosaic.catalog.project import (
    Comment,
    CommentIssueParams,
    CreateIssueParams,
    CreateProjectParams,
    CreateSprintParams,
    Issue,
    IssueLink,
    IssueParams,
    LinkIssuesParams,
    ListCommentsParams,
    ListIssuesParams,
    ListProjectsParams,
    ListSprintsParams,
    PlanSprintParams,
    Project,
    ProjectParams,
    Sprint,
    SprintParams,
    SprintPlan,
    TransitionIssueParams,
    UnlinkIssuesParams,
    UpdateIssueParams,
    UpdateProjectParams,
    UpdateSprintParams,
    WorkflowState,
    check_period,
    check_states,
)
from mosaic.errors import Conflict, InvalidRequest, MosaicError, PluginError
from mosaic.gateway.context import RequestContext
from mosaic.plugins.contract import HealthStatus, ProviderPlugin
from mosaic.providers.local.project_plan import plan
from mosaic.providers.local.project_rows import Renderer, load_states
from mosaic.providers.local.project_schema import database_path
from mosaic.providers.local.project_store import (
    ISSUE_SELECT,
    SPRINT_SELECT,
    ProjectStore,
    Tx,
    decode_cursor,
    dump_json,
    encode_cursor,
    like_pattern,
    now,
)


def default_states() -> list[WorkflowState]:
    return [
        WorkflowState(name="Backlog", category="todo"),
        WorkflowState(name="Todo", category="todo"),
        WorkflowState(name="In Progress", category="in_progress"),
        WorkflowState(name="In Review", category="in_progress"),
        WorkflowState(name="Done", category="done"),
        WorkflowState(name="Canceled", category="canceled"),
    ]


class LocalProjectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    data_dir: Path = Field(alias="dataDir", description="Directory of the instance's data.")
    base_url: str | None = Field(default=None, alias="baseUrl",
                                 description="Web base URL used to build object URLs.")
    default_states: list[WorkflowState] = Field(default_factory=default_states, alias="defaultStates",
                                                description="Workflow of projects created without one.")

    @field_validator("default_states")
    @classmethod
    def _states(cls, v: list[WorkflowState]) -> list[WorkflowState]:
        return check_states(v)


def _find_state(states: list[WorkflowState], name: str, project: str) -> WorkflowState:
    """The project's state called ``name`` (ignoring case), or a clear error listing the states."""
    folded = name.strip().casefold()
    for s in states:
        if s.name.casefold() == folded:
            return s
    names = ", ".join(repr(s.name) for s in states)
    raise InvalidRequest(f"project {project} has no state {name!r}; its states are {names}",
                         details={"project": project, "state": name, "states": [s.name for s in states]})


async def _sprint_for_issue(tx: Tx, sprint_id: str, project_id: int, project: str) -> int:
    row = await tx.sprint(sprint_id)
    if row["project_id"] != project_id:
        raise InvalidRequest(f"sprint {sprint_id} belongs to project {row['project_key']}, not {project}",
                             details={"sprint_id": sprint_id, "project": project})
    if row["state"] == "closed":
        raise Conflict(f"sprint {sprint_id} is closed; issues cannot be added to it",
                       details={"sprint_id": sprint_id})
    pk: int = row["id"]
    return pk


def _page_limit(rows: list[sqlite3.Row], limit: int) -> tuple[list[sqlite3.Row], bool]:
    return rows[:limit], len(rows) > limit


class LocalProjectPlugin(ProviderPlugin):
    provider = "local"
    service = "project"
    name = "Local project management"
    version = "0.1.0"
    Config = LocalProjectConfig

    def __init__(self, plugin_id: str) -> None:
        super().__init__(plugin_id)
        self._store: ProjectStore | None = None
        self._render = Renderer(plugin_id, None)

    # -- lifecycle ------------------------------------------------------------
    @property
    def settings(self) -> LocalProjectConfig:
        if not isinstance(self.config, LocalProjectConfig):
            raise PluginError(f"{self.id}: not initialized with a LocalProjectConfig")
        return self.config

    async def initialize(self, config: BaseModel) -> None:
        if not isinstance(config, LocalProjectConfig):
            raise PluginError(f"{self.id}: expected LocalProjectConfig, got {type(config).__name__}")
        await super().initialize(config)
        self._store = ProjectStore(database_path(config.data_dir))
        self._render = Renderer(self.id, config.base_url)

    async def start(self) -> None:
        await self.store.open()
        await super().start()

    async def dispose(self) -> None:
        if self._store is not None:
            await self._store.close()
        await super().dispose()

    @property
    def store(self) -> ProjectStore:
        if self._store is None:
            raise PluginError(f"{self.id}: initialize() was not called")
        return self._store

    async def health_check(self) -> HealthStatus:
        if not self.started or self._store is None or not self._store.is_open:
            return HealthStatus(status="unhealthy", detail="not started")
        t0 = time.perf_counter()
        try:
            await self._store.ping()
        except MosaicError as exc:
            return HealthStatus(status="unhealthy", detail=exc.message)
        return HealthStatus(status="healthy", latency_ms=round((time.perf_counter() - t0) * 1000, 3))

    # -- projects -------------------------------------------------------------
    async def create_project(self, p: CreateProjectParams, ctx: RequestContext) -> Project:
        states = p.states or self.settings.default_states
        stamp = now()
        async with self.store.write() as tx:
            if await tx.one("SELECT 1 FROM projects WHERE key = ?", p.key):
                raise Conflict(f"project {p.key} already exists", details={"project": p.key})
            pk = await tx.insert(
                "INSERT INTO projects (key, name, description, lead, states, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                p.key, p.name, p.description, p.lead,
                dump_json([s.model_dump() for s in states]), stamp, stamp,
            )
            row = await tx.one("SELECT * FROM projects WHERE id = ?", pk)
        assert row is not None
        return self._render.project(row)

    async def get_project(self, p: ProjectParams, ctx: RequestContext) -> Project:
        async with self.store.read() as tx:
            return self._render.project(await tx.project(p.project))

    async def update_project(self, p: UpdateProjectParams, ctx: RequestContext) -> Project:
        async with self.store.write() as tx:
            row = await tx.project(p.project)
            sets: dict[str, Any] = {}
            if p.name is not None:
                sets["name"] = p.name
            if p.description is not None:
                sets["description"] = p.description
            if "lead" in p.model_fields_set:
                sets["lead"] = p.lead
            if p.states is not None:
                await self._replace_states(tx, row, p.states)
                sets["states"] = dump_json([s.model_dump() for s in p.states])
            if sets:
                sets["updated_at"] = now()
                cols = ", ".join(f"{c} = ?" for c in sets)
                await tx.run(f"UPDATE projects SET {cols} WHERE id = ?", *sets.values(), row["id"])
            return self._render.project(await tx.project(p.project))

    async def _replace_states(self, tx: Tx, project: sqlite3.Row, states: list[WorkflowState]) -> None:
        """Move issues onto the new workflow by state name; refuse to orphan any issue."""
        used = await tx.all("SELECT state, count(*) AS n FROM issues WHERE project_id = ? GROUP BY state",
                            project["id"])
        by_name = {s.name.casefold(): s for s in states}
        orphans = {r["state"]: r["n"] for r in used if r["state"].casefold() not in by_name}
        if orphans:
            listed = ", ".join(f"{n} in {s!r}" for s, n in sorted(orphans.items()))
            raise Conflict(f"the new workflow of {project['key']} drops states that issues are in "
                           f"({listed}); transition those issues first",
                           details={"project": project["key"], "orphaned": orphans})
        for r in used:
            new = by_name[r["state"].casefold()]
            await tx.run("UPDATE issues SET state = ?, state_category = ? WHERE project_id = ? AND state = ?",
                         new.name, new.category, project["id"], r["state"])

    async def list_projects(self, p: ListProjectsParams, ctx: RequestContext) -> Page[Project]:
        after = decode_cursor("projects", p.cursor, str)
        where, args = ["1 = 1"], []
        if after is not None:
            where.append("key > ?")
            args.append(after)
        if p.query:
            where.append("(key LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\')")
            args += [like_pattern(p.query)] * 2
        async with self.store.read() as tx:
            rows = await tx.all(f"SELECT * FROM projects WHERE {' AND '.join(where)} ORDER BY key LIMIT ?",
                                *args, p.limit + 1)
        rows, more = _page_limit(rows, p.limit)
        return Page[Project](items=[self._render.project(r) for r in rows],
                             next_cursor=encode_cursor("projects", rows[-1]["key"]) if more else None)

    # -- issues -----------------------------------------------------------------
    async def _issue(self, tx: Tx, pk: int) -> Issue:
        return self._render.issue(await tx.issue_by_id(pk), await tx.links_of([pk]))

    async def create_issue(self, p: CreateIssueParams, ctx: RequestContext) -> Issue:
        async with self.store.write() as tx:
            project = await tx.project(p.project)
            states = load_states(project["states"])
            if p.state is not None:
                state = _find_state(states, p.state, p.project)
            else:
                state = next((s for s in states if s.category == "todo"), states[0])
            sprint_pk = (None if p.sprint_id is None
                         else await _sprint_for_issue(tx, p.sprint_id, project["id"], p.project))
            number = project["next_number"]
            await tx.run("UPDATE projects SET next_number = ? WHERE id = ?", number + 1, project["id"])
            stamp = now()
            pk = await tx.insert(
                "INSERT INTO issues (project_id, number, title, description, state, state_category,"
                " priority, estimate, assignee, labels, sprint_id, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                project["id"], number, p.title, p.description, state.name, state.category, p.priority,
                p.estimate, p.assignee, dump_json(p.labels), sprint_pk, stamp, stamp,
            )
            return await self._issue(tx, pk)

    async def get_issue(self, p: IssueParams, ctx: RequestContext) -> Issue:
        async with self.store.read() as tx:
            row = await tx.issue(p.issue)
            return self._render.issue(row, await tx.links_of([row["id"]]))

    async def update_issue(self, p: UpdateIssueParams, ctx: RequestContext) -> Issue:
        given = p.model_fields_set
        async with self.store.write() as tx:
            row = await tx.issue(p.issue)
            sets: dict[str, Any] = {}
            for name in ("title", "description", "priority"):
                if getattr(p, name) is not None:
                    sets[name] = getattr(p, name)
            for name in ("estimate", "assignee"):  # explicit null clears these
                if name in given:
                    sets[name] = getattr(p, name)
            if p.labels is not None:
                sets["labels"] = dump_json(p.labels)
            if "sprint_id" in given:
                sets["sprint_id"] = (None if p.sprint_id is None else await _sprint_for_issue(
                    tx, p.sprint_id, row["project_id"], row["project_key"]))
            if sets:
                sets["updated_at"] = now()
                cols = ", ".join(f"{c} = ?" for c in sets)
                await tx.run(f"UPDATE issues SET {cols} WHERE id = ?", *sets.values(), row["id"])
            return await self._issue(tx, row["id"])

    async def list_issues(self, p: ListIssuesParams, ctx: RequestContext) -> Page[Issue]:
        after = decode_cursor("issues", p.cursor, int)
        where: list[str] = []
        args: list[Any] = []
        async with self.store.read() as tx:
            if p.project is not None:
                project = await tx.project(p.project)
                where.append("i.project_id = ?")
                args.append(project["id"])
                if p.state is not None:
                    where.append("i.state = ?")
                    args.append(_find_state(load_states(project["states"]), p.state, p.project).name)
            elif p.state is not None:
                where.append("i.state = ? COLLATE NOCASE")
                args.append(p.state.strip())
            if p.sprint_id is not None:
                where.append("i.sprint_id = ?")
                args.append((await tx.sprint(p.sprint_id))["id"])
            if p.state_category is not None:
                where.append("i.state_category = ?")
                args.append(p.state_category)
            if p.assignee is not None:
                where.append("i.assignee = ?")
                args.append(p.assignee)
            if p.priority is not None:
                where.append("i.priority = ?")
                args.append(p.priority)
            if p.label is not None:
                where.append("EXISTS (SELECT 1 FROM json_each(i.labels) WHERE json_each.value = ?)")
                args.append(p.label.strip())
            if p.query:
                where.append("(i.title LIKE ? ESCAPE '\\' OR i.description LIKE ? ESCAPE '\\')")
                args += [like_pattern(p.query)] * 2
            if after is not None:
                where.append("i.id > ?")
                args.append(after)
            sql = ISSUE_SELECT + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY i.id LIMIT ?"
            rows, more = _page_limit(await tx.all(sql, *args, p.limit + 1), p.limit)
            links = await tx.links_of([r["id"] for r in rows])
        return Page[Issue](items=[self._render.issue(r, links) for r in rows],
                           next_cursor=encode_cursor("issues", rows[-1]["id"]) if more else None)

    async def transition_issue(self, p: TransitionIssueParams, ctx: RequestContext) -> Issue:
        async with self.store.write() as tx:
            row = await tx.issue(p.issue)
            project = await tx.one("SELECT states FROM projects WHERE id = ?", row["project_id"])
            assert project is not None
            state = _find_state(load_states(project["states"]), p.state, row["project_key"])
            if state.name != row["state"] or state.category != row["state_category"]:
                await tx.run("UPDATE issues SET state = ?, state_category = ?, updated_at = ? WHERE id = ?",
                             state.name, state.category, now(), row["id"])
            return await self._issue(tx, row["id"])

    # -- comments -----------------------------------------------------------------
    async def comment_issue(self, p: CommentIssueParams, ctx: RequestContext) -> Comment:
        stamp = now()
        async with self.store.write() as tx:
            issue = await tx.issue(p.issue)
            pk = await tx.insert(
                "INSERT INTO comments (issue_id, body, author, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                issue["id"], p.body, ctx.principal.id, stamp, stamp,
            )
            row = await tx.one("SELECT * FROM comments WHERE id = ?", pk)
        assert row is not None
        return self._render.comment(row, p.issue)

    async def list_comments(self, p: ListCommentsParams, ctx: RequestContext) -> Page[Comment]:
        after = decode_cursor("comments", p.cursor, int) or 0
        async with self.store.read() as tx:
            issue = await tx.issue(p.issue)
            rows = await tx.all("SELECT * FROM comments WHERE issue_id = ? AND id > ? ORDER BY id LIMIT ?",
                                issue["id"], after, p.limit + 1)
        rows, more = _page_limit(rows, p.limit)
        return Page[Comment](items=[self._render.comment(r, p.issue) for r in rows],
                             next_cursor=encode_cursor("comments", rows[-1]["id"]) if more else None)

    # -- links ----------------------------------------------------------------------
    async def _existing_link(self, tx: Tx, p: LinkIssuesParams) -> tuple[sqlite3.Row | None, int, int]:
        if p.issue == p.target:
            raise InvalidRequest(f"an issue cannot be linked to itself ({p.issue})",
                                 details={"issue": p.issue, "target": p.target})
        source = (await tx.issue(p.issue))["id"]
        target = (await tx.issue(p.target))["id"]
        link = await tx.link(p.type, source, target)
        if link is None and p.type == "relates":  # 'relates' has no direction
            link = await tx.link(p.type, target, source)
        return link, source, target

    async def link_issues(self, p: LinkIssuesParams, ctx: RequestContext) -> IssueLink:
        async with self.store.write() as tx:
            link, source, target = await self._existing_link(tx, p)
            if link is None:
                await tx.insert(
                    "INSERT INTO links (type, source_id, target_id, created_at) VALUES (?, ?, ?, ?)",
                    p.type, source, target, now())
                link = await tx.link(p.type, source, target)
                assert link is not None
                await tx.run("UPDATE issues SET updated_at = ? WHERE id IN (?, ?)", now(), source, target)
        return self._render.link(link)

    async def unlink_issues(self, p: UnlinkIssuesParams, ctx: RequestContext) -> Deleted:
        async with self.store.write() as tx:
            link, source, target = await self._existing_link(tx, p)
            if link is None:
                return Deleted(provider=self.id, id=f"{p.issue} {p.type} {p.target}", deleted=False)
            await tx.run("DELETE FROM links WHERE id = ?", link["id"])
            await tx.run("UPDATE issues SET updated_at = ? WHERE id IN (?, ?)", now(), source, target)
        return Deleted(provider=self.id, id=str(link["id"]), deleted=True)

    # -- sprints ----------------------------------------------------------------------
    async def create_sprint(self, p: CreateSprintParams, ctx: RequestContext) -> Sprint:
        stamp = now()
        async with self.store.write() as tx:
            project = await tx.project(p.project)
            pk = await tx.insert(
                "INSERT INTO sprints (project_id, name, goal, start_at, end_at, state, capacity,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                project["id"], p.name, p.goal, _iso(p.start), _iso(p.end), p.state, p.capacity, stamp, stamp,
            )
            return self._render.sprint(await tx.sprint(str(pk)))

    async def get_sprint(self, p: SprintParams, ctx: RequestContext) -> Sprint:
        async with self.store.read() as tx:
            return self._render.sprint(await tx.sprint(p.sprint_id))

    async def update_sprint(self, p: UpdateSprintParams, ctx: RequestContext) -> Sprint:
        given = p.model_fields_set
        async with self.store.write() as tx:
            row = await tx.sprint(p.sprint_id)
            current = self._render.sprint(row)
            sets: dict[str, Any] = {}
            for name in ("name", "goal", "state"):
                if getattr(p, name) is not None:
                    sets[name] = getattr(p, name)
            if "capacity" in given:
                sets["capacity"] = p.capacity
            start = p.start if "start" in given else current.start
            end = p.end if "end" in given else current.end
            try:
                check_period(start, end)
            except ValueError as exc:
                raise InvalidRequest(str(exc), details={"sprint_id": p.sprint_id}) from exc
            if "start" in given:
                sets["start_at"] = _iso(p.start)
            if "end" in given:
                sets["end_at"] = _iso(p.end)
            if sets:
                sets["updated_at"] = now()
                cols = ", ".join(f"{c} = ?" for c in sets)
                await tx.run(f"UPDATE sprints SET {cols} WHERE id = ?", *sets.values(), row["id"])
            return self._render.sprint(await tx.sprint(p.sprint_id))

    async def list_sprints(self, p: ListSprintsParams, ctx: RequestContext) -> Page[Sprint]:
        after = decode_cursor("sprints", p.cursor, int) or 0
        async with self.store.read() as tx:
            project = await tx.project(p.project)
            where, args = ["s.project_id = ?", "s.id > ?"], [project["id"], after]
            if p.state is not None:
                where.append("s.state = ?")
                args.append(p.state)
            rows = await tx.all(SPRINT_SELECT + f" WHERE {' AND '.join(where)} ORDER BY s.id LIMIT ?",
                                *args, p.limit + 1)
        rows, more = _page_limit(rows, p.limit)
        return Page[Sprint](items=[self._render.sprint(r) for r in rows],
                            next_cursor=encode_cursor("sprints", rows[-1]["id"]) if more else None)

    async def plan_sprint(self, p: PlanSprintParams, ctx: RequestContext) -> SprintPlan:
        # A dry run only reads; a commit holds the write lock from reading candidates to applying.
        if p.commit:
            async with self.store.write() as tx:
                return await plan(tx, self._render, p)
        async with self.store.read() as tx:
            return await plan(tx, self._render, p)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


__all__ = ["LocalProjectConfig", "LocalProjectPlugin", "default_states"]
