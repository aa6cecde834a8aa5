"""Project service: projects, issues, links, comments, sprints and sprint planning.

Provider-neutral: a Jira issue, a Linear issue and a Plane work item are an :class:`Issue`;
a Jira sprint, a Linear cycle and a Plane cycle are a :class:`Sprint`. Issues are addressed
by key (``MOS-12``), projects by key (``MOS``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from mosaic.catalog.base import Deleted, Effect, Entity, ListParams, Operation, Page, Params, Rest

StateCategory = Literal["todo", "in_progress", "done", "canceled"]
STATE_CATEGORIES: tuple[StateCategory, ...] = ("todo", "in_progress", "done", "canceled")
LinkType = Literal["blocks", "relates", "duplicates"]
SprintState = Literal["planned", "active", "closed"]

# Linear's convention, which Jira/Plane priorities map onto.
PRIORITY_NAMES: dict[int, str] = {0: "none", 1: "urgent", 2: "high", 3: "medium", 4: "low"}
PRIORITY_DESCRIPTION = "Priority as in Linear: 0 = no priority, 1 = urgent, 2 = high, 3 = medium, 4 = low."

_PROJECT_KEY_RE = re.compile(r"^[A-Z][A-Z0-9]{1,9}$")
_ISSUE_KEY_RE = re.compile(r"^([A-Z][A-Z0-9]{1,9})-([1-9][0-9]{0,9})$")


def check_project_key(value: str) -> str:
    """A project key is 2-10 upper-case letters/digits starting with a letter (``MOS``)."""
    key = value.strip().upper()
    if not _PROJECT_KEY_RE.match(key):
        raise ValueError("expected a project key of 2-10 letters/digits starting with a letter, e.g. 'MOS'")
    return key


def check_issue_key(value: str) -> str:
    """An issue key is ``PROJECTKEY-N`` (``MOS-12``)."""
    key = value.strip().upper()
    if not _ISSUE_KEY_RE.match(key):
        raise ValueError("expected an issue key like 'MOS-12' (project key, '-', issue number)")
    return key


def check_labels(values: list[str]) -> list[str]:
    """Labels are non-blank, at most 100 characters; duplicates are dropped, order kept."""
    out: list[str] = []
    for raw in values:
        label = raw.strip()
        if not label or len(label) > 100:
            raise ValueError(f"invalid label {raw!r}: expected 1-100 characters")
        if label not in out:
            out.append(label)
    return out


def check_period(start: datetime | None, end: datetime | None) -> None:
    """A sprint must not end before it starts (a date without a zone is taken as UTC)."""
    if start is None or end is None:
        return
    s = start if start.tzinfo else start.replace(tzinfo=UTC)
    e = end if end.tzinfo else end.replace(tzinfo=UTC)
    if e < s:
        raise ValueError(f"the sprint's end ({end.isoformat()}) is before its start ({start.isoformat()})")


def split_issue_key(key: str) -> tuple[str, int]:
    """``MOS-12`` -> ``("MOS", 12)``; the key must already be valid."""
    m = _ISSUE_KEY_RE.match(key)
    if m is None:
        raise ValueError(f"invalid issue key {key!r}")
    return m.group(1), int(m.group(2))


# ---------------------------------------------------------------------------
# Domain objects


class WorkflowState(BaseModel):
    name: str = Field(min_length=1, max_length=60, description="State name, e.g. 'In Review'.")
    category: StateCategory = Field(description="What the state means: todo, in_progress, done, canceled.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("a state name must not be blank")
        return v


def check_states(states: list[WorkflowState]) -> list[WorkflowState]:
    """A workflow needs at least one state, and names are unique ignoring case."""
    if not states:
        raise ValueError("a project needs at least one workflow state")
    seen: set[str] = set()
    for s in states:
        folded = s.name.casefold()
        if folded in seen:
            raise ValueError(f"workflow state {s.name!r} is listed twice")
        seen.add(folded)
    return states


class Project(Entity):
    key: str = Field(description="Short upper-case key used in issue keys, e.g. 'MOS'.")
    name: str
    description: str = ""
    lead: str | None = None
    states: list[WorkflowState] = Field(description="Workflow states, in board order.")
    created_at: datetime | None = None
    updated_at: datetime | None = None


class IssueLink(Entity):
    type: LinkType = Field(description="'source blocks target', 'source relates target', "
                                       "'source duplicates target'.")
    source: str = Field(description="Issue key the link starts from.")
    target: str = Field(description="Issue key the link points to.")


class Issue(Entity):
    project: str = Field(description="Project key.")
    key: str = Field(description="Issue key, e.g. 'MOS-12'.")
    number: int
    title: str
    description: str = ""
    state: str = Field(description="Workflow state name.")
    state_category: StateCategory
    priority: int = Field(default=0, ge=0, le=4, description=PRIORITY_DESCRIPTION)
    estimate: float | None = Field(default=None, description="Estimate in points; null = unestimated.")
    assignee: str | None = None
    labels: list[str] = Field(default_factory=list)
    sprint_id: str | None = Field(default=None, description="Sprint (cycle) the issue is planned in.")
    links: list[IssueLink] = Field(default_factory=list,
                                   description="Links from and to this issue (blocks, relates, duplicates).")
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Comment(Entity):
    issue: str = Field(description="Issue key.")
    body: str
    author: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Sprint(Entity):
    project: str = Field(description="Project key.")
    name: str
    goal: str = ""
    start: datetime | None = None
    end: datetime | None = None
    state: SprintState = "planned"
    capacity: float | None = Field(default=None, description="Points the team can commit to.")
    created_at: datetime | None = None
    updated_at: datetime | None = None


ExclusionReason = Literal["blocked", "cycle", "over_capacity", "unestimated", "in_other_sprint"]


class PlannedIssue(BaseModel):
    key: str
    title: str = ""
    priority: int = Field(description=PRIORITY_DESCRIPTION)
    effective_priority: int = Field(
        description="Priority used for ordering: a blocker inherits the priority of the most "
                    "urgent issue it unblocks.")
    estimate: float = Field(description="Points counted against capacity.")
    estimate_defaulted: bool = Field(default=False,
                                     description="True when the issue had no estimate and "
                                                 "`default_estimate` was used.")
    cumulative_points: float = Field(description="Points committed up to and including this issue.")
    reason: str = Field(description="Why it was chosen, in words.")


class ExcludedIssue(BaseModel):
    key: str
    title: str = ""
    priority: int = Field(description=PRIORITY_DESCRIPTION)
    estimate: float | None = None
    reason: ExclusionReason
    detail: str = Field(description="Why it was left out, in words.")
    blocked_by: list[str] = Field(default_factory=list,
                                  description="Unfinished, unselected blockers (reason 'blocked').")
    cycle: list[str] = Field(default_factory=list,
                             description="A blocking cycle through this issue, first key repeated "
                                         "at the end (reason 'cycle').")


class SprintPlan(Entity):
    project: str
    sprint_id: str
    capacity: float = Field(description="Points available to this plan.")
    committed_points: float = Field(description="Sum of the selected issues' estimates.")
    remaining: float = Field(description="capacity - committed_points.")
    committed: bool = Field(description="True when the selection was applied to the sprint "
                                        "(commit=true); false for a dry run.")
    unestimated_policy: Literal["excluded", "default_estimate"] = Field(
        description="What happened to candidates without an estimate.")
    default_estimate: float | None = None
    selected: list[PlannedIssue] = Field(default_factory=list,
                                         description="Chosen issues, in the order to work on them.")
    excluded: list[ExcludedIssue] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list,
                               description="Candidates already in the sprint that the plan does not "
                                           "select: taken out of the sprint by commit=true (on a dry "
                                           "run: would be).")
    algorithm: str = Field(default="", description="How the plan was computed.")


# ---------------------------------------------------------------------------
# Parameters


class CreateProjectParams(Params):
    key: str = Field(description="Project key: 2-10 letters/digits, e.g. 'MOS'. Issue keys are KEY-N.",
                     examples=["MOS"])
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    lead: str | None = Field(default=None, description="User who leads the project.")
    states: list[WorkflowState] | None = Field(
        default=None, description="Workflow states in board order; default: the provider's workflow.")

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return check_project_key(v)

    @field_validator("states")
    @classmethod
    def _states(cls, v: list[WorkflowState] | None) -> list[WorkflowState] | None:
        return None if v is None else check_states(v)


class ProjectParams(Params):
    project: str = Field(description="Project key, e.g. 'MOS'.", examples=["MOS"])

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        return check_project_key(v)


class UpdateProjectParams(ProjectParams):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    lead: str | None = Field(default=None, description="New lead; an explicit null removes the lead.")
    states: list[WorkflowState] | None = Field(
        default=None,
        description="Replace the workflow. Every state an issue is in must remain (by name).")

    @field_validator("states")
    @classmethod
    def _states(cls, v: list[WorkflowState] | None) -> list[WorkflowState] | None:
        return None if v is None else check_states(v)


class ListProjectsParams(ListParams):
    query: str | None = Field(default=None, description="Only projects whose key or name contains this.")


class CreateIssueParams(ProjectParams):
    title: str = Field(min_length=1, max_length=500)
    description: str = ""
    state: str | None = Field(default=None, description="Initial state; default: the first 'todo' state.")
    priority: int = Field(default=0, ge=0, le=4, description=PRIORITY_DESCRIPTION)
    estimate: float | None = Field(default=None, ge=0, le=10_000, description="Points.")
    assignee: str | None = None
    labels: list[str] = Field(default_factory=list)
    sprint_id: str | None = Field(default=None, description="Put the issue in this sprint of the project.")

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str]) -> list[str]:
        return check_labels(v)


class IssueParams(Params):
    issue: str = Field(description="Issue key, e.g. 'MOS-12'.", examples=["MOS-12"])

    @field_validator("issue")
    @classmethod
    def _issue(cls, v: str) -> str:
        return check_issue_key(v)


class UpdateIssueParams(IssueParams):
    title: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = None
    priority: int | None = Field(default=None, ge=0, le=4, description=PRIORITY_DESCRIPTION)
    estimate: float | None = Field(default=None, ge=0, le=10_000,
                                   description="Points; an explicit null clears the estimate.")
    assignee: str | None = Field(default=None, description="An explicit null unassigns.")
    labels: list[str] | None = Field(default=None, description="Replace the labels.")
    sprint_id: str | None = Field(default=None, description="An explicit null takes the issue out of "
                                                            "its sprint.")

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else check_labels(v)

    @model_validator(mode="after")
    def _something(self) -> UpdateIssueParams:
        if not (self.model_fields_set - {"issue"}):
            raise ValueError("nothing to update: pass at least one field to change")
        return self


class ListIssuesParams(ListParams):
    project: str | None = Field(default=None, description="Only issues of this project key.")
    state: str | None = Field(default=None, description="Only issues in this workflow state.")
    state_category: StateCategory | None = None
    assignee: str | None = None
    label: str | None = Field(default=None, description="Only issues carrying this label.")
    sprint_id: str | None = Field(default=None, description="Only issues in this sprint.")
    priority: int | None = Field(default=None, ge=0, le=4, description=PRIORITY_DESCRIPTION)
    query: str | None = Field(default=None, description="Text that the title or description contains.")

    @field_validator("project")
    @classmethod
    def _project(cls, v: str | None) -> str | None:
        return None if v is None else check_project_key(v)


class TransitionIssueParams(IssueParams):
    state: str = Field(min_length=1, description="Target workflow state name (see the project's states).")


class CommentIssueParams(IssueParams):
    body: str = Field(min_length=1, max_length=65_536)


class ListCommentsParams(IssueParams):
    cursor: str | None = None
    limit: int = Field(default=30, ge=1, le=100)


class LinkIssuesParams(IssueParams):
    type: LinkType = Field(description="'blocks': issue blocks target; 'relates'; 'duplicates': issue "
                                       "duplicates target.")
    target: str = Field(description="Issue key the link points to.", examples=["MOS-13"])

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        return check_issue_key(v)


class UnlinkIssuesParams(LinkIssuesParams):
    pass


class CreateSprintParams(ProjectParams):
    name: str = Field(min_length=1, max_length=200)
    goal: str = ""
    start: datetime | None = None
    end: datetime | None = None
    state: SprintState = "planned"
    capacity: float | None = Field(default=None, ge=0, le=1_000_000, description="Points.")

    @model_validator(mode="after")
    def _dates(self) -> CreateSprintParams:
        check_period(self.start, self.end)
        return self


class SprintParams(Params):
    sprint_id: str = Field(min_length=1, description="Sprint (cycle) id.")


class UpdateSprintParams(SprintParams):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    goal: str | None = None
    start: datetime | None = Field(default=None, description="An explicit null clears the start.")
    end: datetime | None = Field(default=None, description="An explicit null clears the end.")
    state: SprintState | None = Field(default=None, description="planned, active or closed.")
    capacity: float | None = Field(default=None, ge=0, le=1_000_000,
                                   description="Points; an explicit null clears the capacity.")

    @model_validator(mode="after")
    def _something(self) -> UpdateSprintParams:
        if not (self.model_fields_set - {"sprint_id"}):
            raise ValueError("nothing to update: pass at least one field to change")
        return self


class ListSprintsParams(ListParams):
    project: str = Field(description="Project key.", examples=["MOS"])
    state: SprintState | None = None

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        return check_project_key(v)


def _todo_only() -> list[StateCategory]:
    return ["todo"]


class PlanSprintParams(SprintParams):
    project: str = Field(description="Project key; must be the sprint's project.", examples=["MOS"])
    capacity: float | None = Field(default=None, ge=0, le=1_000_000,
                                   description="Points available; default: the sprint's capacity.")
    labels: list[str] = Field(default_factory=list,
                              description="Only issues carrying at least one of these labels.")
    state_categories: list[StateCategory] = Field(
        default_factory=_todo_only, min_length=1,
        description="Candidate issues are in these state categories.")
    default_estimate: float | None = Field(
        default=None, ge=0, le=10_000,
        description="Points assumed for unestimated issues; null = unestimated issues are excluded.")
    commit: bool = Field(default=False, description="false = dry run; true = also put the selected "
                                                    "issues in the sprint.")

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        return check_project_key(v)


# ---------------------------------------------------------------------------
# Operations

PJ = "/project/projects"
PJK = PJ + "/{project}"
IS = "/project/issues"
ISK = IS + "/{issue}"
SPR = "/project/sprints"
SPK = SPR + "/{sprint_id}"

_ISSUE_READS = ("get_issue", "list_issues")

create_project = Operation(
    "project", "create_project", CreateProjectParams, Project, Effect.WRITE,
    Rest("POST", PJ, 201), "Create a project with a short key (issue keys become KEY-N) and a workflow.",
    invalidates=("list_projects",),
)
get_project = Operation(
    "project", "get_project", ProjectParams, Project, Effect.READ,
    Rest("GET", PJK), "Get a project by key, including its workflow states.", cache_ttl=60,
)
update_project = Operation(
    "project", "update_project", UpdateProjectParams, Project, Effect.WRITE,
    Rest("PATCH", PJK), "Change a project's name, description, lead or workflow states.",
    idempotent=True, invalidates=("get_project", "list_projects", *_ISSUE_READS),
)
list_projects = Operation(
    "project", "list_projects", ListProjectsParams, Page[Project], Effect.READ,
    Rest("GET", PJ), "List projects, optionally matching a text.", cache_ttl=30,
)
create_issue = Operation(
    "project", "create_issue", CreateIssueParams, Issue, Effect.WRITE,
    Rest("POST", IS, 201),
    "Create an issue in a project; returns its key (e.g. MOS-12). Priority 1 = urgent .. 4 = low.",
    invalidates=("list_issues",),
)
get_issue = Operation(
    "project", "get_issue", IssueParams, Issue, Effect.READ,
    Rest("GET", ISK), "Get an issue by key (e.g. MOS-12), with its state, estimate, sprint and links.",
    cache_ttl=5,
)
update_issue = Operation(
    "project", "update_issue", UpdateIssueParams, Issue, Effect.WRITE,
    Rest("PATCH", ISK),
    "Change an issue's title, description, priority, estimate, assignee, labels or sprint. "
    "Use transition_issue to change its state.",
    idempotent=True, invalidates=_ISSUE_READS,
)
list_issues = Operation(
    "project", "list_issues", ListIssuesParams, Page[Issue], Effect.READ,
    Rest("GET", IS),
    "Search issues by project, state, state category, assignee, label, sprint, priority or text.",
    cache_ttl=5,
)
transition_issue = Operation(
    "project", "transition_issue", TransitionIssueParams, Issue, Effect.WRITE,
    Rest("POST", ISK + "/transitions"),
    "Move an issue to another workflow state of its project (e.g. 'In Progress', 'Done').",
    idempotent=True, invalidates=_ISSUE_READS,
)
comment_issue = Operation(
    "project", "comment_issue", CommentIssueParams, Comment, Effect.WRITE,
    Rest("POST", ISK + "/comments", 201), "Add a comment to an issue.",
    invalidates=("list_comments",),
)
list_comments = Operation(
    "project", "list_comments", ListCommentsParams, Page[Comment], Effect.READ,
    Rest("GET", ISK + "/comments"), "List an issue's comments, oldest first.", cache_ttl=5,
)
link_issues = Operation(
    "project", "link_issues", LinkIssuesParams, IssueLink, Effect.WRITE,
    Rest("POST", ISK + "/links", 201),
    "Link two issues: 'blocks' (issue blocks target), 'relates', or 'duplicates'. Repeating is harmless.",
    idempotent=True, invalidates=_ISSUE_READS,
)
unlink_issues = Operation(
    "project", "unlink_issues", UnlinkIssuesParams, Deleted, Effect.WRITE,
    Rest("DELETE", ISK + "/links/{type}/{target}"),
    "Remove a link between two issues; deleted=false when there was none.",
    idempotent=True, invalidates=_ISSUE_READS,
)
create_sprint = Operation(
    "project", "create_sprint", CreateSprintParams, Sprint, Effect.WRITE,
    Rest("POST", SPR, 201),
    "Create a sprint (Jira sprint, Linear/Plane cycle) with dates, goal and capacity in points.",
    invalidates=("list_sprints",),
)
get_sprint = Operation(
    "project", "get_sprint", SprintParams, Sprint, Effect.READ,
    Rest("GET", SPK), "Get a sprint (cycle) by id.", cache_ttl=10,
)
update_sprint = Operation(
    "project", "update_sprint", UpdateSprintParams, Sprint, Effect.WRITE,
    Rest("PATCH", SPK), "Change a sprint's name, goal, dates, capacity or state (planned, active, closed).",
    idempotent=True, invalidates=("get_sprint", "list_sprints"),
)
list_sprints = Operation(
    "project", "list_sprints", ListSprintsParams, Page[Sprint], Effect.READ,
    Rest("GET", SPR), "List a project's sprints (cycles), optionally by state.", cache_ttl=10,
)
plan_sprint = Operation(
    "project", "plan_sprint", PlanSprintParams, SprintPlan, Effect.WRITE,
    Rest("POST", SPK + "/plan"),
    "Plan a sprint within a point capacity: respects blocking links, then priority and value per "
    "point. Explains every choice and exclusion. commit=false is a dry run.",
    idempotent=True, invalidates=(*_ISSUE_READS, "get_sprint"),
)

OPERATIONS: tuple[Operation, ...] = (
    create_project, get_project, update_project, list_projects,
    create_issue, get_issue, update_issue, list_issues, transition_issue,
    comment_issue, list_comments, link_issues, unlink_issues,
    create_sprint, get_sprint, update_sprint, list_sprints, plan_sprint,
)
