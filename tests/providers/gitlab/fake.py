"""A stateful in-memory GitLab (REST v4) for tests: namespaces with subgroups, projects, branches,
files, commits (with the multi-action commits API), compare, merge requests (merge, squash, rebase,
the project's merge method), approvals, notes and commit statuses.

Payloads have the shape of ``gitlab.yaml`` (with the errata of ``spec.py``): the tests run the fake
behind ``SpecValidatingTransport``, which checks each answer against the description too. Where
the description and GitLab's server disagree on a success status (``POST /statuses/:sha`` and
``POST /repository/commits`` answer 201, ``PUT /rebase`` 202; the description says 200), the fake
answers what the description says and the plugin accepts both.

Behaviours follow GitLab's API: 400 with a ``message`` for validation failures ("has already been
taken", "Branch already exists", "A file with this name already exists", a stale
``last_commit_id``), 404 "404 Project Not Found" for a project the caller cannot see, 405 for a
merge request that is not open or is a draft, 406 for a merge with conflicts, 409 for a stale
``sha``, 401 for approving one's own merge request, 400 "Cannot transition status" for setting a
status to the state it has. Offset pagination with ``X-Next-Page``/``X-Total``/``Link``
(``per_page`` default 20, at most 100) and ``RateLimit-*`` headers on every answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx
from tests.providers.gitlab.gitmodel import (
    Clock,
    CommitObj,
    FileDiff,
    GitRepo,
    MergeConflict,
    Person,
    blob_sha,
    iso,
)
from tests.support.fake_upstream import FakeRequest, HttpError, Router, empty_response, json_response

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
RATE_LIMIT = 2000


def _err(status: int, message: Any) -> HttpError:
    return HttpError(status, {"message": message})


@dataclass
class User:
    id: int
    username: str
    name: str
    email: str
    token: str
    namespace_id: int


@dataclass
class Namespace:
    id: int
    name: str
    path: str
    kind: Literal["user", "group"]
    parent_id: int | None
    full_path: str
    members: set[str] = field(default_factory=set)


@dataclass
class MergeRequest:
    iid: int
    id: int
    title: str
    description: str
    source: str
    target: str
    author: str
    created: datetime
    updated: datetime
    state: Literal["opened", "closed", "merged", "locked"] = "opened"
    head_sha: str = ""
    base_sha: str = ""
    merge_sha: str | None = None
    squash_sha: str | None = None
    merged_by: str | None = None
    merged_at: datetime | None = None
    closed_at: datetime | None = None
    merge_error: str | None = None
    # Polls left during which a requested rebase still reports "in progress".
    rebase_polls: int = 0
    approvals: list[tuple[str, datetime]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    # Assigned reviewers and their state (unreviewed, reviewed, requested_changes, approved...).
    reviewers: dict[str, str] = field(default_factory=dict)


@dataclass
class Status:
    id: int
    sha: str
    name: str
    status: str
    target_url: str | None
    description: str | None
    author: str
    created: datetime
    ref: str | None


@dataclass
class Project:
    id: int
    name: str
    path: str
    namespace: Namespace
    description: str
    visibility: str
    repo: GitRepo
    creator: str
    created: datetime
    updated: datetime
    archived: bool = False
    # Project setting: "merge" (merge commit), "rebase_merge" (semi-linear) or "ff" (fast-forward).
    merge_method: Literal["merge", "rebase_merge", "ff"] = "merge"
    author_can_approve: bool = False
    mrs: dict[int, MergeRequest] = field(default_factory=dict)
    statuses: list[Status] = field(default_factory=list)
    next_iid: int = 1

    @property
    def full_path(self) -> str:
        return f"{self.namespace.full_path}/{self.path}"


class GitLabFake:
    """An in-memory GitLab at ``base_url`` (API under ``/api/v4``)."""

    def __init__(self, base_url: str = "https://gitlab.test") -> None:
        self.base = base_url.rstrip("/")
        self.api = self.base + "/api/v4"
        self.clock = Clock()
        self.users: dict[str, User] = {}
        self.namespaces: dict[int, Namespace] = {}
        self.projects: dict[int, Project] = {}
        self.rate_remaining = RATE_LIMIT
        self._ids = 100
        self.router = Router(prefix="/api/v4", not_found_body=lambda path: {"error": "404 Not Found"})
        self._routes()

    # -- setup -------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        response = self.router(request)
        self.rate_remaining = max(0, self.rate_remaining - 1)
        if "ratelimit-limit" not in response.headers:
            response.headers["RateLimit-Limit"] = str(RATE_LIMIT)
            response.headers["RateLimit-Remaining"] = str(self.rate_remaining)
            response.headers["RateLimit-Reset"] = "1714557660"
        return response

    def _id(self) -> int:
        self._ids += 1
        return self._ids

    def add_user(self, username: str, token: str) -> User:
        ns = Namespace(self._id(), username.capitalize(), username, "user", None, username, {username})
        self.namespaces[ns.id] = ns
        user = User(self._id(), username, username.capitalize(), f"{username}@example.com", token, ns.id)
        self.users[username] = user
        return user

    def add_group(self, full_path: str, members: list[str]) -> Namespace:
        parent_path, _, path = full_path.rpartition("/")
        parent = self.namespace_by_path(parent_path) if parent_path else None
        ns = Namespace(self._id(), path.capitalize(), path, "group", parent.id if parent else None, full_path,
                       set(members))
        self.namespaces[ns.id] = ns
        return ns

    def add_project(self, full_path: str, files: dict[str, str] | None = None, *, visibility: str = "private",
                    default_branch: str = "main", creator: str | None = None) -> Project:
        ns_path, _, path = full_path.rpartition("/")
        ns = self.namespace_by_path(ns_path)
        assert ns is not None, ns_path
        who = creator or next(iter(sorted(ns.members)))
        project = self._new_project(path, path, ns, "", visibility, default_branch, who)
        if files is not None:
            project.repo.push(default_branch, dict(files), "Initial commit", self.person(who))
        return project

    def person(self, username: str) -> Person:
        user = self.users[username]
        return Person(user.name, user.email)

    def namespace_by_path(self, full_path: str) -> Namespace | None:
        return next((n for n in self.namespaces.values() if n.full_path.lower() == full_path.lower()), None)

    def project_by_path(self, full_path: str) -> Project | None:
        return next((p for p in self.projects.values() if p.full_path.lower() == full_path.lower()), None)

    def _new_project(self, name: str, path: str, ns: Namespace, description: str, visibility: str,
                     default_branch: str, creator: str) -> Project:
        when = self.clock.now()
        project = Project(self._id(), name, path, ns, description, visibility,
                          GitRepo(self.clock, default_branch=default_branch), creator, when, when)
        self.projects[project.id] = project
        return project

    # -- access ------------------------------------------------------------------
    def whoami(self, req: FakeRequest) -> User:
        token = req.headers.get("private-token")
        if token is None:
            scheme, _, value = req.headers.get("authorization", "").partition(" ")
            token = value if scheme.lower() == "bearer" else None
        user = next((u for u in self.users.values() if token and u.token == token), None)
        if user is None:
            raise _err(401, "401 Unauthorized")
        return user

    def is_member(self, ns: Namespace, username: str) -> bool:
        cur: Namespace | None = ns
        while cur is not None:
            if username in cur.members:
                return True
            cur = self.namespaces.get(cur.parent_id) if cur.parent_id else None
        return False

    def project_for(self, req: FakeRequest, *, write: bool = False, key: str = "id") -> tuple[Project, User]:
        me = self.whoami(req)
        ref = req.params[key]
        project = self.projects.get(int(ref)) if ref.isdigit() else self.project_by_path(ref)
        if project is None or (project.visibility != "public" and not self.is_member(project.namespace,
                                                                                       me.username)):
            raise _err(404, "404 Project Not Found")
        if write and not self.is_member(project.namespace, me.username):
            raise _err(403, "403 Forbidden")
        if write and project.archived:
            raise _err(403, "403 Forbidden - Project is archived")
        return project, me

    def mr_for(self, project: Project, req: FakeRequest) -> MergeRequest:
        mr = project.mrs.get(int(req.params["merge_request_iid"]))
        if mr is None:
            raise _err(404, "404 Not found")
        return mr

    def sha_of(self, project: Project, ref: str | None) -> str:
        sha = project.repo.resolve(ref)
        if sha is None:
            raise _err(404, "404 Commit Not Found")
        return sha

    # -- payloads (gitlab.yaml entities) -------------------------------------------
    def user_basic(self, username: str) -> dict[str, Any]:
        u = self.users[username]
        return {"id": u.id, "username": u.username, "public_email": "", "name": u.name, "state": "active",
                "locked": False, "avatar_url": f"{self.base}/uploads/-/system/user/avatar/{u.id}/avatar.png",
                "web_url": f"{self.base}/{u.username}"}

    def user_json(self, u: User) -> dict[str, Any]:
        return {**self.user_basic(u.username), "created_at": iso(self.clock.now()), "email": u.email, "bot": False}

    def namespace_json(self, ns: Namespace) -> dict[str, Any]:
        return {"id": ns.id, "name": ns.name, "path": ns.path, "kind": ns.kind, "full_path": ns.full_path,
                "parent_id": ns.parent_id, "avatar_url": None, "web_url": f"{self.base}/{ns.full_path}"}

    def project_json(self, p: Project, *, basic: bool = False) -> dict[str, Any]:
        web = f"{self.base}/{p.full_path}"
        api = f"{self.api}/projects/{p.id}"
        data: dict[str, Any] = {
            "id": p.id, "description": p.description, "name": p.name,
            "name_with_namespace": f"{p.namespace.name} / {p.name}", "path": p.path,
            "path_with_namespace": p.full_path, "created_at": iso(p.created),
            "default_branch": None if p.repo.empty else p.repo.default_branch, "tag_list": [], "topics": [],
            "ssh_url_to_repo": f"git@gitlab.test:{p.full_path}.git", "http_url_to_repo": f"{web}.git",
            "web_url": web, "readme_url": f"{web}/-/blob/{p.repo.default_branch}/README.md"
            if "README.md" in self._tree(p) else None, "forks_count": 0, "avatar_url": None, "star_count": 0,
            "last_activity_at": iso(p.updated), "namespace": self.namespace_json(p.namespace),
        }
        if basic:
            return data
        data.update({
            "visibility": p.visibility, "container_registry_image_prefix": f"registry.gitlab.test/{p.full_path}",
            "_links": {"self": api, "issues": f"{api}/issues", "merge_requests": f"{api}/merge_requests",
                       "repo_branches": f"{api}/repository/branches", "labels": f"{api}/labels",
                       "events": f"{api}/events", "members": f"{api}/members",
                       "cluster_agents": f"{api}/cluster_agents"},
            "packages_enabled": True, "empty_repo": p.repo.empty, "archived": p.archived,
            "resolve_outdated_diff_discussions": False, "repository_object_format": "sha1",
            "issues_enabled": True, "merge_requests_enabled": True, "wiki_enabled": True, "jobs_enabled": True,
            "snippets_enabled": True, "container_registry_enabled": True, "service_desk_enabled": False,
            "can_create_merge_request_in": True, "issues_access_level": "enabled",
            "repository_access_level": "enabled", "merge_requests_access_level": "enabled",
            "forking_access_level": "enabled", "wiki_access_level": "enabled", "builds_access_level": "enabled",
            "snippets_access_level": "enabled", "pages_access_level": "private",
            "analytics_access_level": "enabled", "container_registry_access_level": "enabled",
            "security_and_compliance_access_level": "private", "releases_access_level": "enabled",
            "environments_access_level": "enabled", "feature_flags_access_level": "enabled",
            "infrastructure_access_level": "enabled", "monitor_access_level": "enabled",
            "model_experiments_access_level": "enabled", "model_registry_access_level": "enabled",
            "package_registry_access_level": "private", "emails_disabled": False, "emails_enabled": True,
            "shared_runners_enabled": True, "lfs_enabled": True, "creator_id": self.users[p.creator].id,
            "open_issues_count": 0, "updated_at": iso(p.updated), "merge_method": p.merge_method,
            "squash_option": "default_off", "only_allow_merge_if_pipeline_succeeds": False,
        })
        return data

    def _tree(self, p: Project) -> dict[str, bytes]:
        sha = p.repo.resolve(None)
        return p.repo.commits[sha].tree if sha else {}

    def commit_json(self, p: Project, c: CommitObj) -> dict[str, Any]:
        return {"id": c.sha, "short_id": c.sha[:8], "created_at": iso(c.date), "parent_ids": list(c.parents),
                "title": c.title, "message": c.message, "author_name": c.author.name,
                "author_email": c.author.email, "authored_date": iso(c.date), "committer_name": c.committer.name,
                "committer_email": c.committer.email, "committed_date": iso(c.date), "trailers": {},
                "extended_trailers": {}, "web_url": f"{self.base}/{p.full_path}/-/commit/{c.sha}"}

    def commit_detail(self, p: Project, c: CommitObj) -> dict[str, Any]:
        changes = p.repo.diff(p.repo.commits[c.parents[0]].tree if c.parents else {}, c.tree)
        adds, dels = sum(x.additions for x in changes), sum(x.deletions for x in changes)
        return {**self.commit_json(p, c), "stats": {"additions": adds, "deletions": dels, "total": adds + dels},
                "status": None, "project_id": p.id, "last_pipeline": None}

    def branch_json(self, p: Project, name: str) -> dict[str, Any]:
        sha = p.repo.branches[name]
        default = p.repo.resolve(None)
        return {"name": name, "commit": self.commit_json(p, p.repo.commits[sha]),
                "merged": name != p.repo.default_branch and default is not None
                and sha in p.repo.ancestors(default), "protected": name == p.repo.default_branch,
                "developers_can_push": False, "developers_can_merge": False, "can_push": True,
                "default": name == p.repo.default_branch,
                "web_url": f"{self.base}/{p.full_path}/-/tree/{quote(name, safe='')}"}

    @staticmethod
    def diff_json(d: FileDiff) -> dict[str, Any]:
        return {"diff": d.patch, "collapsed": False, "too_large": False, "new_path": d.path,
                "old_path": d.old_path, "a_mode": "0" if d.status == "added" else "100644",
                "b_mode": "0" if d.status == "removed" else "100644", "new_file": d.status == "added",
                "renamed_file": False, "deleted_file": d.status == "removed", "generated_file": False}

    def mr_shas(self, p: Project, mr: MergeRequest) -> tuple[str, str]:
        if mr.state in ("opened", "locked"):
            return p.repo.branches.get(mr.source, mr.head_sha), p.repo.branches.get(mr.target, mr.base_sha)
        return mr.head_sha, mr.base_sha

    def detailed_status(self, p: Project, mr: MergeRequest) -> str:
        if mr.state != "opened":
            return "not_open"
        if mr.title.lower().startswith(("draft:", "[draft]", "(draft)")):
            return "draft_status"
        head, base = self.mr_shas(p, mr)
        if not p.repo.mergeable(base, head):
            return "conflict"
        if p.merge_method != "merge" and p.repo.merge_base(base, head) != base:
            return "need_rebase"
        return "mergeable"

    def mr_json(self, p: Project, mr: MergeRequest) -> dict[str, Any]:
        head, base = self.mr_shas(p, mr)
        mb = p.repo.merge_base(base, head) if head and base else None
        web = f"{self.base}/{p.full_path}/-/merge_requests/{mr.iid}"
        detailed = self.detailed_status(p, mr)
        data: dict[str, Any] = {
            "id": mr.id, "iid": mr.iid, "project_id": p.id, "title": mr.title, "description": mr.description,
            "state": mr.state, "created_at": iso(mr.created), "updated_at": iso(mr.updated),
            "merged_by": self.user_basic(mr.merged_by) if mr.merged_by else None,
            "merge_user": self.user_basic(mr.merged_by) if mr.merged_by else None,
            "merged_at": iso(mr.merged_at) if mr.merged_at else None,
            "closed_by": self.user_basic(mr.author) if mr.closed_at else None,
            "closed_at": iso(mr.closed_at) if mr.closed_at else None,
            "target_branch": mr.target, "source_branch": mr.source, "user_notes_count": len(
                [n for n in mr.notes if not n["system"]]), "upvotes": 0, "downvotes": 0,
            "author": self.user_basic(mr.author), "assignees": [], "assignee": None, "reviewers": [],
            "source_project_id": p.id, "target_project_id": p.id, "labels": [],
            "draft": detailed == "draft_status" or mr.title.lower().startswith("draft:"),
            "imported": False, "imported_from": "none", "work_in_progress": mr.title.lower().startswith("draft:"),
            "milestone": None, "merge_when_pipeline_succeeds": False,
            "merge_status": "can_be_merged" if detailed == "mergeable" else "cannot_be_merged",
            "detailed_merge_status": detailed, "merge_after": None, "sha": head,
            "merge_commit_sha": mr.merge_sha, "squash_commit_sha": mr.squash_sha, "discussion_locked": None,
            "should_remove_source_branch": None, "force_remove_source_branch": False,
            "prepared_at": iso(mr.created), "reference": f"!{mr.iid}",
            "references": {"short": f"!{mr.iid}", "relative": f"!{mr.iid}", "full": f"{p.full_path}!{mr.iid}"},
            "web_url": web, "time_stats": {"time_estimate": 0, "total_time_spent": 0,
                                           "human_time_estimate": None, "human_total_time_spent": None},
            "squash": False, "squash_on_merge": False,
            "task_completion_status": {"count": 0, "completed_count": 0},
            "has_conflicts": detailed == "conflict", "blocking_discussions_resolved": True,
            "subscribed": True, "changes_count": str(len(p.repo.changes_between(base, head))) if head else "0",
            "latest_build_started_at": None, "latest_build_finished_at": None,
            "first_deployed_to_production_at": None, "pipeline": None, "head_pipeline": None,
            "diff_refs": {"base_sha": mb, "head_sha": head, "start_sha": base}, "merge_error": mr.merge_error,
            "first_contribution": False, "user": {"can_merge": True},
        }
        return data

    def approvals_json(self, mr: MergeRequest, me: str) -> dict[str, Any]:
        return {"user_has_approved": any(u == me for u, _ in mr.approvals),
                "user_can_approve": me != mr.author and all(u != me for u, _ in mr.approvals),
                "approved": bool(mr.approvals),
                "approved_by": [{"user": self.user_basic(u), "approved_at": iso(when)} for u, when in mr.approvals]}

    def status_json(self, s: Status) -> dict[str, Any]:
        return {"id": s.id, "sha": s.sha, "ref": s.ref, "status": s.status, "name": s.name,
                "target_url": s.target_url, "description": s.description, "created_at": iso(s.created),
                "started_at": None, "finished_at": None, "allow_failure": False, "coverage": None,
                "pipeline_id": 9000 + s.id, "author": self.user_basic(s.author)}

    def add_note(self, p: Project, mr: MergeRequest, author: str, body: str, *, system: bool = False
                 ) -> dict[str, Any]:
        note = {"id": self._id(), "type": None, "body": body, "author": self.user_basic(author),
                "created_at": iso(self.clock.now()), "updated_at": iso(self.clock.now()), "system": system,
                "noteable_id": mr.id, "noteable_type": "MergeRequest", "noteable_iid": mr.iid,
                "project_id": p.id, "resolvable": False, "confidential": False, "internal": False,
                "imported": False, "imported_from": "none"}
        mr.notes.append(note)
        return note

    # -- pagination ----------------------------------------------------------------
    def paginate(self, req: FakeRequest, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        per_page = req.query_int("per_page", DEFAULT_PER_PAGE)
        per_page = DEFAULT_PER_PAGE if per_page <= 0 else min(per_page, MAX_PER_PAGE)
        page = max(1, req.query_int("page", 1))
        pages = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page: page * per_page]

        def url(n: int) -> str:
            return str(req.request.url.copy_set_param("page", n).copy_set_param("per_page", per_page))

        links = [f'<{url(page + 1)}>; rel="next"'] if page < pages else []
        links += [f'<{url(page - 1)}>; rel="prev"'] if page > 1 else []
        links += [f'<{url(1)}>; rel="first"', f'<{url(pages)}>; rel="last"']
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page),
                   "X-Next-Page": str(page + 1) if page < pages else "",
                   "X-Prev-Page": str(page - 1) if page > 1 else "", "X-Total": str(len(items)),
                   "X-Total-Pages": str(pages), "Link": ", ".join(links)}
        return chunk, headers

    def listing(self, req: FakeRequest, items: list[Any]) -> httpx.Response:
        chunk, headers = self.paginate(req, items)
        return json_response(200, chunk, headers)

    # -- routes --------------------------------------------------------------------
    def _routes(self) -> None:
        r = self.router

        @r.route("GET", "/user")
        def current_user(req: FakeRequest) -> httpx.Response:
            return json_response(200, self.user_json(self.whoami(req)))

        @r.route("GET", "/namespaces/{id}")
        def get_namespace(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            ref = req.params["id"]
            ns = self.namespaces.get(int(ref)) if ref.isdigit() else self.namespace_by_path(ref)
            if ns is None or not self.is_member(ns, me.username):
                raise _err(404, "404 Namespace Not Found")
            return json_response(200, self.namespace_json(ns))

        # -- projects
        @r.route("POST", "/projects")
        def create_project(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            body = req.json() or {}
            ns = self.namespaces.get(int(body.get("namespace_id") or self.users[me.username].namespace_id))
            if ns is None:
                raise _err(404, "404 Namespace Not Found")
            if not self.is_member(ns, me.username):
                raise _err(403, "403 Forbidden")
            name = body.get("name") or body.get("path") or ""
            path = body.get("path") or name
            if not name:
                raise _err(400, "name or path is missing")
            if self.project_by_path(f"{ns.full_path}/{path}"):
                raise _err(400, {"project_namespace.name": ["has already been taken"],
                                 "name": ["has already been taken"], "path": ["has already been taken"]})
            branch = body.get("default_branch") or "main"
            project = self._new_project(name, path, ns, body.get("description") or "",
                                        body.get("visibility") or "private", branch, me.username)
            if body.get("initialize_with_readme"):
                project.repo.push(branch, {"README.md": f"# {name}\n"}, "Initial commit", self.person(me.username))
            return json_response(201, self.project_json(project))

        @r.route("GET", "/projects")
        def list_projects(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            found = [p for p in self.projects.values() if self.is_member(p.namespace, me.username)
                     or (req.query.get("membership") != "true" and p.visibility == "public")]
            return self.listing(req, [self.project_json(p) for p in self._ordered(req, found)])

        @r.route("GET", "/groups/{id}/projects")
        def group_projects(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            ns = self.namespace_by_path(req.params["id"])
            if ns is None or ns.kind != "group" or not self.is_member(ns, me.username):
                raise _err(404, "404 Group Not Found")
            found = [p for p in self.projects.values() if p.namespace.id == ns.id]
            return self.listing(req, [self.project_json(p) for p in self._ordered(req, found)])

        @r.route("GET", "/users/{user_id}/projects")
        def user_projects(req: FakeRequest) -> httpx.Response:
            me = self.whoami(req)
            owner = self.users.get(req.params["user_id"])
            if owner is None:
                raise _err(404, "404 User Not Found")
            found = [p for p in self.projects.values() if p.namespace.id == owner.namespace_id
                     and (p.visibility == "public" or self.is_member(p.namespace, me.username))]
            return self.listing(req, [self.project_json(p) for p in self._ordered(req, found)])

        @r.route("GET", "/projects/{id}")
        def get_project(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            return json_response(200, self.project_json(project))

        @r.route("PUT", "/projects/{id}")
        def edit_project(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req, write=True)
            body = req.json() or {}
            branch = body.get("default_branch")
            if branch and not project.repo.empty and branch not in project.repo.branches:
                raise _err(400, {"default_branch": ["is invalid"]})
            path = body.get("path")
            if path and path != project.path and self.project_by_path(f"{project.namespace.full_path}/{path}"):
                raise _err(400, {"path": ["has already been taken"]})
            for key in ("name", "path", "description", "visibility"):
                if body.get(key) is not None:
                    setattr(project, key, body[key])
            if branch:
                project.repo.default_branch = branch
            project.updated = self.clock.now()
            return json_response(200, self.project_json(project))

        @r.route("DELETE", "/projects/{id}")
        def delete_project(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req, write=True)
            del self.projects[project.id]
            return json_response(202, {"message": "202 Accepted"})

        def set_archived(req: FakeRequest, archived: bool) -> httpx.Response:
            project, me = self.project_for(req)
            if not self.is_member(project.namespace, me.username):
                raise _err(403, "403 Forbidden")
            project.archived = archived
            project.updated = self.clock.now()
            return json_response(201, self.project_json(project))

        r.add("POST", "/projects/{id}/archive", lambda req: set_archived(req, True))
        r.add("POST", "/projects/{id}/unarchive", lambda req: set_archived(req, False))

        # -- branches
        @r.route("GET", "/projects/{id}/repository/branches")
        def list_branches(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            return self.listing(req, [self.branch_json(project, b) for b in sorted(project.repo.branches)])

        @r.route("POST", "/projects/{id}/repository/branches")
        def create_branch(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req, write=True)
            body = req.json() or {}
            name, ref = body.get("branch") or "", body.get("ref") or ""
            if name in project.repo.branches:
                raise _err(400, "Branch already exists")
            sha = project.repo.resolve(ref)
            if sha is None:
                raise _err(400, f"Invalid reference name: {ref}")
            project.repo.branches[name] = sha
            return json_response(201, self.branch_json(project, name))

        @r.route("GET", "/projects/{id}/repository/branches/{branch}")
        def get_branch(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            if req.params["branch"] not in project.repo.branches:
                raise _err(404, "404 Branch Not Found")
            return json_response(200, self.branch_json(project, req.params["branch"]))

        @r.route("DELETE", "/projects/{id}/repository/branches/{branch}")
        def delete_branch(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req, write=True)
            name = req.params["branch"]
            if name not in project.repo.branches:
                raise _err(404, "404 Branch Not Found")
            if name == project.repo.default_branch:
                raise _err(400, "Cannot remove the default branch")
            del project.repo.branches[name]
            return empty_response(204)

        # -- files and commits
        @r.route("GET", "/projects/{id}/repository/files/{file_path}")
        def get_file(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            ref = req.query.get("ref") or ""
            sha = self.sha_of(project, ref)
            path = req.params["file_path"].strip("/")
            commit = project.repo.commits[sha]
            if path not in commit.tree:
                raise _err(404, "404 File Not Found")
            data = commit.tree[path]
            last = next(c.sha for c in project.repo.log(sha) if project.repo.touches(c, path))
            return json_response(200, {
                "file_name": path.rsplit("/", 1)[-1], "file_path": path, "size": len(data),
                "encoding": "base64", "content_sha256": hashlib.sha256(data).hexdigest(), "ref": ref,
                "blob_id": blob_sha(data), "commit_id": sha, "last_commit_id": last, "execute_filemode": False,
                "content": base64.b64encode(data).decode("ascii")})

        @r.route("POST", "/projects/{id}/repository/commits")
        def create_commit(req: FakeRequest) -> httpx.Response:
            project, me = self.project_for(req, write=True)
            body = req.json() or {}
            branch = body["branch"]
            repo = project.repo
            parent = repo.branches.get(branch)
            if parent is None and body.get("start_branch"):
                parent = repo.branches.get(body["start_branch"])
            if parent is None and not repo.empty:
                raise _err(400, "You can only create or edit files when you are on a branch")
            tree = dict(repo.commits[parent].tree) if parent else {}
            for action in body["actions"]:
                path = action["file_path"].strip("/")
                kind = action["action"]
                if kind == "create" and path in tree:
                    raise _err(400, "A file with this name already exists")
                if kind in ("update", "delete") and path not in tree:
                    raise _err(400, "A file with this name doesn't exist")
                if kind in ("update", "delete") and action.get("last_commit_id") and parent:
                    last = next(c.sha for c in repo.log(parent) if repo.touches(c, path))
                    if last != action["last_commit_id"]:
                        raise _err(400, "You are attempting to update a file that has changed since you "
                                        "started editing it.")
                if kind == "delete":
                    del tree[path]
                    continue
                content = action.get("content") or ""
                if action.get("encoding") == "base64":
                    try:
                        tree[path] = base64.b64decode(content, validate=True)
                    except (binascii.Error, ValueError):
                        raise _err(400, "content is invalid base64") from None
                else:
                    tree[path] = content.encode()
            author = self.person(me.username)
            if body.get("author_name") or body.get("author_email"):
                author = Person(body.get("author_name") or author.name, body.get("author_email") or author.email)
            made = repo.commit(tree, [parent] if parent else [], body["commit_message"], author,
                               self.person(me.username))
            repo.branches[branch] = made.sha
            project.updated = self.clock.now()
            return json_response(200, self.commit_detail(project, made))

        @r.route("GET", "/projects/{id}/repository/commits")
        def list_commits(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            if project.repo.empty:
                return self.listing(req, [])
            commits = project.repo.log(self.sha_of(project, req.query.get("ref_name")))
            path = req.query.get("path")
            if path:
                commits = [c for c in commits if project.repo.touches(c, path)]
            return self.listing(req, [self.commit_json(project, c) for c in commits])

        @r.route("GET", "/projects/{id}/repository/commits/{sha}")
        def get_commit(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            sha = self.sha_of(project, req.params["sha"])
            return json_response(200, self.commit_detail(project, project.repo.commits[sha]))

        @r.route("GET", "/projects/{id}/repository/compare")
        def compare(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            base = self.sha_of(project, req.query.get("from"))
            head = self.sha_of(project, req.query.get("to"))
            commits = list(reversed(project.repo.log(head, exclude=base)))  # oldest first
            return json_response(200, {
                "commit": self.commit_json(project, project.repo.commits[head]),
                "commits": [self.commit_json(project, c) for c in commits],
                "diffs": [self.diff_json(d) for d in project.repo.changes_between(base, head)],
                "compare_timeout": False, "compare_same_ref": base == head,
                "web_url": f"{self.base}/{project.full_path}/-/compare/{base}...{head}"})

        # -- merge requests
        @r.route("GET", "/projects/{id}/merge_requests")
        def list_mrs(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            state = req.query.get("state", "all")
            found = [m for m in sorted(project.mrs.values(), key=lambda m: -m.iid)
                     if state == "all" or m.state == state]
            return self.listing(req, [self.mr_json(project, m) for m in found])

        @r.route("POST", "/projects/{id}/merge_requests")
        def create_mr(req: FakeRequest) -> httpx.Response:
            project, me = self.project_for(req)
            body = req.json() or {}
            source, target = body.get("source_branch", ""), body.get("target_branch", "")
            if not body.get("title"):
                raise _err(400, "title is missing")
            if source not in project.repo.branches or target not in project.repo.branches:
                raise _err(422, ["Source branch does not exist" if source not in project.repo.branches
                                 else "Target branch does not exist"])
            if source == target:
                raise _err(422, ["You can't use same project/branch for source and target"])
            for other in project.mrs.values():
                if other.state == "opened" and other.source == source and other.target == target:
                    raise _err(409, [f"Another open merge request already exists for this source branch: "
                                     f"!{other.iid}"])
            when = self.clock.now()
            mr = MergeRequest(project.next_iid, self._id(), body["title"], body.get("description") or "", source,
                              target, me.username, when, when)
            project.next_iid += 1
            project.mrs[mr.iid] = mr
            return json_response(201, self.mr_json(project, mr))

        @r.route("GET", "/projects/{id}/merge_requests/{merge_request_iid}")
        def get_mr(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            mr = self.mr_for(project, req)
            data = self.mr_json(project, mr)
            if req.query.get("include_rebase_in_progress") == "true" and mr.rebase_polls > 0:
                mr.rebase_polls -= 1
                data["rebase_in_progress"] = True
            return json_response(200, data)

        @r.route("PUT", "/projects/{id}/merge_requests/{merge_request_iid}")
        def edit_mr(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req, write=True)
            mr = self.mr_for(project, req)
            body = req.json() or {}
            target = body.get("target_branch")
            if target and target not in project.repo.branches:
                raise _err(422, ["Target branch does not exist"])
            for key, attr in (("title", "title"), ("description", "description"), ("target_branch", "target")):
                if body.get(key) is not None:
                    setattr(mr, attr, body[key])
            event = body.get("state_event")
            if event == "close" and mr.state == "opened":
                mr.head_sha, mr.base_sha = self.mr_shas(project, mr)
                mr.state, mr.closed_at = "closed", self.clock.now()
            elif event == "reopen" and mr.state == "closed":
                mr.state, mr.closed_at = "opened", None
            mr.updated = self.clock.now()
            return json_response(200, self.mr_json(project, mr))

        @r.route("PUT", "/projects/{id}/merge_requests/{merge_request_iid}/merge")
        def merge_mr(req: FakeRequest) -> httpx.Response:
            project, me = self.project_for(req, write=True)
            mr = self.mr_for(project, req)
            body = req.json() or {}
            detailed = self.detailed_status(project, mr)
            if detailed in ("not_open", "draft_status"):
                raise _err(405, "405 Method Not Allowed")
            head, base = self.mr_shas(project, mr)
            if body.get("sha") and body["sha"] != head:
                raise _err(409, f"SHA does not match HEAD of source branch: {head}")
            if detailed in ("conflict", "need_rebase"):
                raise _err(406, "Branch cannot be merged")
            who = self.person(me.username)
            repo = project.repo
            tip = head
            if body.get("squash"):
                mb = repo.merge_base(base, head)
                message = body.get("squash_commit_message") or mr.title
                mr.squash_sha = repo.commit(repo.commits[head].tree, [mb] if mb else [], message,
                                            repo.commits[head].author, who).sha
                tip = mr.squash_sha
            merge_message = (body.get("merge_commit_message")
                             or f"Merge branch '{mr.source}' into '{mr.target}'\n\n{mr.title}\n\n"
                                f"See merge request {project.full_path}!{mr.iid}")
            try:
                if project.merge_method == "ff":
                    new_base = repo.merge(base, tip, "ff", merge_message, who)
                else:
                    new_base = repo.merge(base, tip, "merge", merge_message, who)
                    mr.merge_sha = new_base
            except MergeConflict:
                raise _err(406, "Branch cannot be merged") from None
            repo.branches[mr.target] = new_base
            when = self.clock.now()
            mr.state, mr.merged_by, mr.merged_at, mr.updated = "merged", me.username, when, when
            mr.head_sha, mr.base_sha = head, base
            return json_response(200, self.mr_json(project, mr))

        @r.route("PUT", "/projects/{id}/merge_requests/{merge_request_iid}/rebase")
        def rebase_mr(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req, write=True)
            mr = self.mr_for(project, req)
            if mr.state != "opened":
                raise _err(403, "403 Forbidden")
            head, base = self.mr_shas(project, mr)
            try:
                project.repo.branches[mr.source] = project.repo.rebase(base, head)
                mr.merge_error = None
            except MergeConflict as exc:
                mr.merge_error = f"Rebase failed: conflict in {exc}. Please rebase locally"
            mr.rebase_polls = 1  # the next poll still sees it running, like GitLab's background job
            return json_response(200, {"rebase_in_progress": True})

        @r.route("GET", "/projects/{id}/merge_requests/{merge_request_iid}/diffs")
        def mr_diffs(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            mr = self.mr_for(project, req)
            head, base = self.mr_shas(project, mr)
            return self.listing(req, [self.diff_json(d) for d in project.repo.changes_between(base, head)])

        @r.route("GET", "/projects/{id}/merge_requests/{merge_request_iid}/approvals")
        def get_approvals(req: FakeRequest) -> httpx.Response:
            project, me = self.project_for(req)
            return json_response(200, self.approvals_json(self.mr_for(project, req), me.username))

        @r.route("POST", "/projects/{id}/merge_requests/{merge_request_iid}/approve")
        def approve(req: FakeRequest) -> httpx.Response:
            project, me = self.project_for(req)
            mr = self.mr_for(project, req)
            body = req.json() or {}
            head, _ = self.mr_shas(project, mr)
            if body.get("sha") and body["sha"] != head:
                raise _err(409, "SHA does not match HEAD of source branch")
            if (me.username == mr.author and not project.author_can_approve) or any(
                    u == me.username for u, _ in mr.approvals):
                raise _err(401, "401 Unauthorized")
            mr.approvals.append((me.username, self.clock.now()))
            self.add_note(project, mr, me.username, "approved this merge request", system=True)
            return json_response(201, self.approvals_json(mr, me.username))

        @r.route("POST", "/projects/{id}/merge_requests/{merge_request_iid}/unapprove")
        def unapprove(req: FakeRequest) -> httpx.Response:
            project, me = self.project_for(req)
            mr = self.mr_for(project, req)
            if all(u != me.username for u, _ in mr.approvals):
                raise _err(404, "404 Not Found")
            mr.approvals = [(u, w) for u, w in mr.approvals if u != me.username]
            self.add_note(project, mr, me.username, "revoked approval for this merge request", system=True)
            return json_response(201, self.approvals_json(mr, me.username))

        @r.route("GET", "/projects/{id}/merge_requests/{merge_request_iid}/reviewers")
        def list_reviewers(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            mr = self.mr_for(project, req)
            return json_response(200, [{"user": self.user_basic(u), "state": state, "created_at": iso(mr.created)}
                                       for u, state in mr.reviewers.items()])

        @r.route("GET", "/projects/{id}/merge_requests/{merge_request_iid}/notes")
        def list_notes(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            notes = list(self.mr_for(project, req).notes)
            if req.query.get("sort", "desc") == "desc":
                notes.reverse()
            return self.listing(req, notes)

        @r.route("POST", "/projects/{id}/merge_requests/{merge_request_iid}/notes")
        def create_note(req: FakeRequest) -> httpx.Response:
            project, me = self.project_for(req)
            body = req.json() or {}
            if not (body.get("body") or "").strip():
                raise _err(400, {"note": ["can't be blank"]})
            return json_response(201, self.add_note(project, self.mr_for(project, req), me.username, body["body"]))

        # -- statuses
        @r.route("POST", "/projects/{id}/statuses/{sha}")
        def set_status(req: FakeRequest) -> httpx.Response:
            project, me = self.project_for(req, write=True)
            sha = project.repo.resolve(req.params["sha"])
            if sha is None or sha != req.params["sha"]:
                raise _err(404, "404 Commit Not Found")
            body = req.json() or {}
            name = body.get("name") or body.get("context") or "default"
            existing = next((s for s in project.statuses if s.sha == sha and s.name == name), None)
            state = body["state"]
            if existing is not None:
                if existing.status == state:
                    verb = {"running": "run", "success": "succeed", "failed": "drop", "canceled": "cancel",
                            "pending": "enqueue", "skipped": "skip"}[state]
                    raise _err(400, f"Cannot transition status via :{verb} from :{existing.status}")
                existing.status = state
                existing.target_url = body.get("target_url", existing.target_url)
                existing.description = body.get("description", existing.description)
                return json_response(200, self.status_json(existing))
            status = Status(self._id(), sha, name, state, body.get("target_url"), body.get("description"),
                            me.username, self.clock.now(), body.get("ref") or project.repo.default_branch)
            project.statuses.append(status)
            return json_response(200, self.status_json(status))

        @r.route("GET", "/projects/{id}/repository/commits/{sha}/statuses")
        def list_statuses(req: FakeRequest) -> httpx.Response:
            project, _ = self.project_for(req)
            sha = self.sha_of(project, req.params["sha"])
            found = [s for s in project.statuses if s.sha == sha
                     and (not req.query.get("name") or s.name == req.query["name"])]
            return self.listing(req, [self.status_json(s) for s in found])

    @staticmethod
    def _ordered(req: FakeRequest, projects: list[Project]) -> list[Project]:
        ordered = sorted(projects, key=lambda p: p.id)
        return ordered if req.query.get("sort", "desc") == "asc" else list(reversed(ordered))
