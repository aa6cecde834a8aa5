"""GitLab git provider (gitlab.com and self-managed), over the REST API v4.

Why no SDK: ``python-gitlab`` is synchronous (requests) and would bypass the shared base — one
pooled async client per instance, the request deadline, rate-limit bookkeeping and typed errors —
and the calls needed here are a few dozen JSON endpoints. ``mapping.py`` turns GitLab's entities
into the catalog's models; every request the tests send is checked against GitLab's own OpenAPI
description (``gitlab.yaml``, with the errata listed in ``tests/providers/gitlab/spec.py``).

How GitLab's concepts map onto the catalog:

* **Projects are repositories**, addressed by their URL-encoded full path, so ``repo`` may have
  subgroups: ``group/sub/name`` → ``/projects/group%2Fsub%2Fname``. ``owner`` of
  ``create_repository``/``list_repositories`` is a namespace path (user or group), resolved to its
  id with ``GET /namespaces/:id``.
* **Merge requests are pull requests**; ``number`` is the MR's ``iid``. A draft is a ``Draft:``
  title prefix (GitLab's own convention).
* **Merge strategies**: ``merge`` and ``squash`` are ``PUT .../merge`` with ``squash`` false/true;
  ``rebase`` is ``PUT .../rebase`` (asynchronous on GitLab: polled until done), then merge. The
  history is linear only if the project's merge method is fast-forward (or semi-linear, which adds
  a merge commit on top): GitLab's merge method is a project setting, not a per-call choice.
* **Reviews**: ``approve`` is ``POST .../approve`` (pinned to the head sha read just before; a
  body is posted as a note first); ``comment`` is a note. ``request_changes`` has no REST endpoint
  (GitLab's "requested changes" reviewer state is settable only through its UI and GraphQL), so it
  is a note plus withdrawing the caller's approval (``POST .../unapprove``) — which is also what
  that state does to an approval. ``list_reviews`` lists what GitLab itself calls a review's
  outcome: the approvals, and reviewers in the "requested changes" state. Notes are comments, not
  reviews, and are not listed (so a ``request_changes`` made here reads back as "not approved").
* **Files**: read with the repository files API (``blob_id`` is the blob sha). Written with the
  commits API (``POST /repository/commits``, one action) rather than ``PUT /repository/files``:
  both take ``last_commit_id``, but only the commits API answers with the commit it made, so the
  result never has to be looked up afterwards (where another push could slip in between).
  Updating with ``sha``: the current ``blob_id`` must equal ``sha`` (else Conflict), and the write
  carries the ``last_commit_id`` read with it, so GitLab itself refuses (→ Conflict) if the file
  changed in between — no race window.
* **Statuses**: ``error`` is sent as ``failed`` (GitLab has no error state) and reads back as
  ``failure``. Setting a state a status already has is a no-op that returns it (GitLab answers 400
  "Cannot transition status"; ``set_commit_status`` is idempotent in the catalog).

Auth: ``token`` (personal, project or group access token) is sent as ``PRIVATE-TOKEN``; ``bearer``
(an OAuth access token) as ``Authorization: Bearer``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import BaseModel, Field, field_validator

from mosaic.catalog.base import Deleted, Page
from mosaic.catalog.git import (
    Branch,
    BranchParams,
    Commit,
    CommitStatus,
    CompareCommitsParams,
    Comparison,
    CreateBranchParams,
    CreatePullRequestParams,
    CreateRepositoryParams,
    DeleteRepositoryParams,
    FileChange,
    FileCommit,
    FileContent,
    GetCommitParams,
    GetFileParams,
    GetRepositoryParams,
    ListBranchesParams,
    ListCommitsParams,
    ListCommitStatusesParams,
    ListPullRequestFilesParams,
    ListPullRequestsParams,
    ListRepositoriesParams,
    ListReviewsParams,
    MergeBranchParams,
    MergePullRequestParams,
    MergeResult,
    PullRequest,
    PullRequestParams,
    PutFileParams,
    Repository,
    Review,
    ReviewPullRequestParams,
    SetCommitStatusParams,
    StatusState,
    UpdatePullRequestParams,
    UpdateRepositoryParams,
)
from mosaic.errors import Conflict, Forbidden, InvalidRequest, MosaicError, NotFound, Timeout, Unauthorized
from mosaic.gateway.context import RequestContext
from mosaic.plugins.http import HttpConfig, HttpProviderPlugin, compact, json_body, quote_segment
from mosaic.plugins.http_auth import AuthType
from mosaic.providers.gitlab import mapping
from mosaic.providers.gitlab.pagination import GitLabPagination, slice_page

API_PREFIX = "/api/v4"
DRAFT_PREFIX = "Draft: "
_DRAFT_PREFIXES = ("draft:", "[draft]", "(draft)")
_LIST_STATES = {"open": "opened", "closed": "closed", "merged": "merged", "all": "all"}
# Our status states → GitLab's (it has no "error"; a failed check is the closest).
_STATUS_OUT: dict[StatusState, str] = {"pending": "pending", "success": "success", "failure": "failed",
                                       "error": "failed"}
# GitLab's merge endpoint: 405 not mergeable now (draft, closed, blocked), 406 conflicts,
# 422 refused for another reason — each a conflict with the merge request's current state.
_MERGE_REFUSED = (405, 406, 422)


class GitLabConfig(HttpConfig):
    """``baseUrl`` may be the instance root (``https://gitlab.example.com``) or its API root
    (``.../api/v4``)."""

    base_url: str = Field(default="https://gitlab.com/api/v4", alias="baseUrl",
                          description="API root, e.g. https://gitlab.example.com/api/v4")

    @field_validator("base_url")
    @classmethod
    def _api_root(cls, v: str) -> str:
        v = v.rstrip("/")
        return v if v.endswith(API_PREFIX) else v + API_PREFIX


class GitLabGitPlugin(HttpProviderPlugin):
    provider: ClassVar[str] = "gitlab"
    service = "git"
    name: ClassVar[str] = "GitLab"
    version: ClassVar[str] = "0.1.0"
    Config: ClassVar[type[BaseModel]] = GitLabConfig
    health_path: ClassVar[str] = "/user"
    token_header: ClassVar[str] = "PRIVATE-TOKEN"
    token_format: ClassVar[str] = "{token}"
    # GitLab's API takes access tokens (header) and OAuth bearer tokens; no basic auth, no app JWTs.
    auth_types: ClassVar[frozenset[AuthType]] = frozenset({"token", "bearer"})
    notes: ClassVar[dict[str, str]] = {
        "create_repository": "owner is a namespace path (user, group or group/subgroup)",
        "delete_repository": "GitLab may only mark the project for deletion (delayed deletion)",
        "merge_branch": "made as a merge request from head into base, merged at once (kept as the record)",
        "create_pull_request": "a merge request; draft = a 'Draft: ' title prefix",
        "list_pull_requests": "'closed' excludes merged merge requests; 'locked' ones count as open",
        "merge_pull_request": "rebase = PUT /rebase then merge; linear history only with the project's "
                              "fast-forward merge method",
        "review_pull_request": "comment = a note; request_changes = a note plus withdrawing the caller's "
                               "approval (GitLab's REST API cannot set its 'requested changes' state)",
        "list_reviews": "approvals and 'requested changes' reviewer states (set in GitLab's UI); notes are "
                        "comments, not reviews, and are not listed",
        "compare_commits": "merge_base is not reported; behind_by costs a second compare",
        "set_commit_status": "'error' is sent as GitLab's 'failed' and reads back as failure",
    }

    PAGES: ClassVar[GitLabPagination] = GitLabPagination()
    # GitLab rebases in the background: how often and how long to wait for it.
    rebase_poll_s: float = 0.5
    rebase_timeout_s: float = 60.0

    def __init__(self, plugin_id: str, **kwargs: Any) -> None:
        super().__init__(plugin_id, **kwargs)
        self._me: dict[str, Any] | None = None

    # -- helpers --------------------------------------------------------------
    @property
    def web_base(self) -> str:
        parts = urlsplit(self.settings.base_url)
        path = parts.path[: -len(API_PREFIX)] if parts.path.endswith(API_PREFIX) else parts.path
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    @staticmethod
    def _project(repo: str) -> str:
        return f"/projects/{quote(repo, safe='')}"

    def _mr(self, repo: str, number: int) -> str:
        return f"{self._project(repo)}/merge_requests/{number}"

    def _mr_url(self, repo: str, number: int) -> str:
        return f"{self.web_base}/{repo}/-/merge_requests/{number}"

    async def _user(self, ctx: RequestContext) -> dict[str, Any]:
        """The authenticated user (asked once per plugin instance)."""
        if self._me is None:
            user = json_body(await self.request("GET", "/user", ctx=ctx))
            if not isinstance(user, dict) or not user.get("username"):
                raise NotFound(f"{self.id}: the API did not say who the token belongs to")
            self._me = user
        return self._me

    async def _get(self, path: str, ctx: RequestContext, **params: Any) -> Any:
        return json_body(await self.request("GET", path, ctx=ctx, params=params or None))

    async def _page(self, path: str, ctx: RequestContext, *, limit: int, cursor: str | None,
                    params: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], str | None]:
        items, following = await self.fetch_page(path, ctx=ctx, pagination=self.PAGES, limit=limit,
                                                 cursor=cursor, params=params)
        return [i for i in items if isinstance(i, dict)], following

    async def _default_branch(self, repo: str, ctx: RequestContext) -> str:
        project = await self._get(self._project(repo), ctx)
        # An empty project has no default branch yet; its first commit creates the instance default.
        return str(project.get("default_branch") or "main")

    async def _namespace(self, owner: str, ctx: RequestContext) -> dict[str, Any]:
        try:
            found = await self._get(f"/namespaces/{quote(owner, safe='')}", ctx)
        except NotFound:
            raise NotFound(f"{self.id}: namespace {owner!r} not found (or not visible to this token)",
                           details={"owner": owner}) from None
        if not isinstance(found, dict) or "id" not in found:
            raise NotFound(f"{self.id}: namespace {owner!r} not found", details={"owner": owner})
        return found

    # -- repositories -----------------------------------------------------------
    async def create_repository(self, p: CreateRepositoryParams, ctx: RequestContext) -> Repository:
        body: dict[str, Any] = {"name": p.name, "path": p.name, "description": p.description,
                                "visibility": "private" if p.private else "public",
                                "initialize_with_readme": p.auto_init, "default_branch": p.default_branch}
        if p.owner is not None:
            body["namespace_id"] = (await self._namespace(p.owner, ctx))["id"]
        try:
            response = await self.request("POST", "/projects", ctx=ctx, json=body, expected=(201,))
        except InvalidRequest as exc:
            if "has already been taken" in exc.message:
                where = f"{p.owner}/{p.name}" if p.owner else p.name
                raise Conflict(f"{self.id}: a project {where!r} already exists",
                               details=exc.details) from None
            raise
        return mapping.repository(self.id, json_body(response))

    async def get_repository(self, p: GetRepositoryParams, ctx: RequestContext) -> Repository:
        return mapping.repository(self.id, await self._get(self._project(p.repo), ctx))

    async def update_repository(self, p: UpdateRepositoryParams, ctx: RequestContext) -> Repository:
        body = compact({"description": p.description, "default_branch": p.default_branch,
                        "visibility": None if p.private is None else ("private" if p.private else "public"),
                        "name": p.new_name, "path": p.new_name})
        target = self._project(p.repo)
        latest: Any = None
        # An archived project is read-only: unarchive before editing, archive after.
        if p.archived is False:
            latest = json_body(await self.request("POST", f"{target}/unarchive", ctx=ctx, expected=(201,)))
        if body:
            latest = json_body(await self.request("PUT", target, ctx=ctx, json=body))
            target = f"/projects/{latest['id']}"  # the path changes on rename; the id does not
        if p.archived is True:
            latest = json_body(await self.request("POST", f"{target}/archive", ctx=ctx, expected=(201,)))
        if latest is None:
            return await self.get_repository(GetRepositoryParams(repo=p.repo), ctx)
        return mapping.repository(self.id, latest)

    async def delete_repository(self, p: DeleteRepositoryParams, ctx: RequestContext) -> Deleted:
        current = await self.get_repository(GetRepositoryParams(repo=p.repo), ctx)
        await self.request("DELETE", f"/projects/{current.id}", ctx=ctx, expected=(202, 204))
        return Deleted(provider=self.id, id=current.id)

    async def list_repositories(self, p: ListRepositoriesParams, ctx: RequestContext) -> Page[Repository]:
        params: dict[str, Any] = {"order_by": "id", "sort": "asc"}
        if p.owner is None:
            path = "/projects"
            params["membership"] = True
        else:
            ns = await self._namespace(p.owner, ctx)
            full_path = str(ns.get("full_path") or p.owner)
            kind = "groups" if ns.get("kind") == "group" else "users"
            path = f"/{kind}/{quote(full_path, safe='')}/projects"
        items, following = await self._page(path, ctx, limit=p.limit, cursor=p.cursor, params=params)
        return Page[Repository](items=[mapping.repository(self.id, r) for r in items], next_cursor=following)

    # -- branches ---------------------------------------------------------------
    async def create_branch(self, p: CreateBranchParams, ctx: RequestContext) -> Branch:
        ref = p.from_ref or await self._default_branch(p.repo, ctx)
        try:
            response = await self.request("POST", f"{self._project(p.repo)}/repository/branches", ctx=ctx,
                                          json={"branch": p.branch, "ref": ref}, expected=(201,))
        except InvalidRequest as exc:
            if "already exists" in exc.message:
                raise Conflict(f"{self.id}: branch {p.branch!r} already exists in {p.repo}",
                               details=exc.details) from None
            if "Invalid reference name" in exc.message:
                raise NotFound(f"{self.id}: ref {ref!r} not found in {p.repo}", details=exc.details) from None
            raise
        return mapping.branch(self.id, p.repo, json_body(response))

    async def get_branch(self, p: BranchParams, ctx: RequestContext) -> Branch:
        body = await self._get(f"{self._project(p.repo)}/repository/branches/{quote_segment(p.branch)}", ctx)
        return mapping.branch(self.id, p.repo, body)

    async def list_branches(self, p: ListBranchesParams, ctx: RequestContext) -> Page[Branch]:
        items, following = await self._page(f"{self._project(p.repo)}/repository/branches", ctx,
                                            limit=p.limit, cursor=p.cursor)
        return Page[Branch](items=[mapping.branch(self.id, p.repo, b) for b in items], next_cursor=following)

    async def delete_branch(self, p: BranchParams, ctx: RequestContext) -> Deleted:
        await self.request("DELETE", f"{self._project(p.repo)}/repository/branches/{quote_segment(p.branch)}",
                           ctx=ctx, expected=(204,))
        return Deleted(provider=self.id, id=f"{p.repo}:{p.branch}")

    async def merge_branch(self, p: MergeBranchParams, ctx: RequestContext) -> MergeResult:
        compare = await self._get(f"{self._project(p.repo)}/repository/compare", ctx, **{"from": p.base,
                                                                                          "to": p.head})
        if not compare.get("commits"):
            base = await self.get_branch(BranchParams(repo=p.repo, branch=p.base), ctx)
            return MergeResult(provider=self.id, id=base.sha, url=base.url, merged=False, sha=base.sha,
                               strategy=p.strategy, message=f"{p.head} is already merged into {p.base}",
                               raw=compare)
        title = (p.message or f"Merge branch '{p.head}' into '{p.base}'").partition("\n")[0]
        body = {"source_branch": p.head, "target_branch": p.base, "title": title,
                "description": "Merged through MosAIc merge_branch."}
        created = await self.request("POST", f"{self._project(p.repo)}/merge_requests", ctx=ctx,
                                     expected=(201,), json=body)
        number = int(json_body(created)["iid"])
        try:
            merge = MergePullRequestParams(repo=p.repo, number=number, strategy=p.strategy, message=p.message)
            return await self.merge_pull_request(merge, ctx)
        except MosaicError:
            try:
                await self.request("PUT", self._mr(p.repo, number), ctx=ctx, json={"state_event": "close"})
            except MosaicError:
                pass  # the merge error is the one to report; the merge request stays open
            raise

    # -- files ------------------------------------------------------------------
    def _file(self, repo: str, path: str) -> str:
        return f"{self._project(repo)}/repository/files/{quote_segment(path.strip('/'))}"

    async def get_file(self, p: GetFileParams, ctx: RequestContext) -> FileContent:
        # ``HEAD`` is GitLab's documented shorthand for the default branch here.
        body = await self._get(self._file(p.repo, p.path), ctx, ref=p.ref or "HEAD")
        return mapping.file_content(self.id, p.repo, self.web_base, p.ref, body)

    async def put_file(self, p: PutFileParams, ctx: RequestContext) -> FileCommit:
        content = _base64(p)
        path = p.path.strip("/")
        branch = p.branch or await self._default_branch(p.repo, ctx)
        action: dict[str, Any] = {"action": "create", "file_path": path, "content": content,
                                  "encoding": "base64"}
        if p.sha:
            try:
                current = await self._get(self._file(p.repo, path), ctx, ref=branch)
            except NotFound:
                raise NotFound(f"{self.id}: {path!r} does not exist on {branch!r} in {p.repo}; omit sha to "
                               "create it", details={"path": path, "branch": branch}) from None
            if current.get("blob_id") != p.sha:
                raise Conflict(f"{self.id}: {path!r} on {branch!r} is at blob {current.get('blob_id')}, not "
                               f"{p.sha}: it changed since that sha was read",
                               details={"path": path, "branch": branch, "sha": current.get("blob_id")})
            action.update(action="update", last_commit_id=current.get("last_commit_id"))
        body = compact({"branch": branch, "commit_message": p.message, "actions": [action],
                        "author_name": p.author_name, "author_email": p.author_email})
        try:
            response = await self.request("POST", f"{self._project(p.repo)}/repository/commits", ctx=ctx,
                                          json=body, expected=(200, 201))
        except InvalidRequest as exc:
            lowered = exc.message.lower()
            if "already exists" in lowered:
                raise Conflict(f"{exc.message} (pass its current sha to update it)", details=exc.details) \
                    from None
            if "has changed since" in lowered:
                raise Conflict(f"{exc.message} (the file changed since that sha was read)",
                               details=exc.details) from None
            if "doesn't exist" in lowered or "does not exist" in lowered:
                raise NotFound(exc.message, details=exc.details) from None
            raise
        made = mapping.commit(self.id, json_body(response))
        # The blob id at the new commit: exact, whatever was pushed after it.
        written = await self._get(self._file(p.repo, path), ctx, ref=made.sha)
        return FileCommit(provider=self.id, id=made.sha,
                          url=mapping.blob_url(self.web_base, p.repo, made.sha, path), path=path,
                          sha=str(written.get("blob_id", "")), commit=made, raw=json_body(response))

    # -- commits ----------------------------------------------------------------
    async def list_commits(self, p: ListCommitsParams, ctx: RequestContext) -> Page[Commit]:
        items, following = await self._page(f"{self._project(p.repo)}/repository/commits", ctx, limit=p.limit,
                                            cursor=p.cursor, params={"ref_name": p.ref, "path": p.path})
        return Page[Commit](items=[mapping.commit(self.id, c) for c in items], next_cursor=following)

    async def get_commit(self, p: GetCommitParams, ctx: RequestContext) -> Commit:
        body = await self._get(f"{self._project(p.repo)}/repository/commits/{quote_segment(p.sha)}", ctx)
        return mapping.commit(self.id, body)

    async def compare_commits(self, p: CompareCommitsParams, ctx: RequestContext) -> Comparison:
        path = f"{self._project(p.repo)}/repository/compare"
        ahead = await self._get(path, ctx, **{"from": p.base, "to": p.head})
        behind = await self._get(path, ctx, **{"from": p.head, "to": p.base})
        behind_by = len(behind.get("commits") or []) if isinstance(behind, dict) else 0
        return mapping.comparison(self.id, p.base, p.head, ahead, behind_by)

    # -- merge requests -------------------------------------------------------------
    async def create_pull_request(self, p: CreatePullRequestParams, ctx: RequestContext) -> PullRequest:
        base = p.base or await self._default_branch(p.repo, ctx)
        title = p.title
        if p.draft and not title.lower().startswith(_DRAFT_PREFIXES):
            title = DRAFT_PREFIX + title
        response = await self.request("POST", f"{self._project(p.repo)}/merge_requests", ctx=ctx,
                                      expected=(201,), json={"source_branch": p.head, "target_branch": base,
                                                             "title": title, "description": p.body})
        return mapping.pull_request(self.id, p.repo, json_body(response))

    async def get_pull_request(self, p: PullRequestParams, ctx: RequestContext) -> PullRequest:
        return mapping.pull_request(self.id, p.repo, await self._get(self._mr(p.repo, p.number), ctx))

    async def list_pull_requests(self, p: ListPullRequestsParams, ctx: RequestContext) -> Page[PullRequest]:
        items, following = await self._page(f"{self._project(p.repo)}/merge_requests", ctx, limit=p.limit,
                                            cursor=p.cursor, params={"state": _LIST_STATES[p.state]})
        return Page[PullRequest](items=[mapping.pull_request(self.id, p.repo, i) for i in items],
                                 next_cursor=following)

    async def update_pull_request(self, p: UpdatePullRequestParams, ctx: RequestContext) -> PullRequest:
        state_event = {"closed": "close", "open": "reopen", None: None}[p.state]
        body = compact({"title": p.title, "description": p.body, "target_branch": p.base,
                        "state_event": state_event})
        if not body:
            return await self.get_pull_request(PullRequestParams(repo=p.repo, number=p.number), ctx)
        response = await self.request("PUT", self._mr(p.repo, p.number), ctx=ctx, json=body)
        return mapping.pull_request(self.id, p.repo, json_body(response))

    async def close_pull_request(self, p: PullRequestParams, ctx: RequestContext) -> PullRequest:
        return await self.update_pull_request(UpdatePullRequestParams(repo=p.repo, number=p.number,
                                                                      state="closed"), ctx)

    async def merge_pull_request(self, p: MergePullRequestParams, ctx: RequestContext) -> MergeResult:
        path = self._mr(p.repo, p.number)
        expected_sha = p.sha
        if p.strategy == "rebase":
            expected_sha = await self._rebase(path, p, ctx)
        message_key = "squash_commit_message" if p.strategy == "squash" else "merge_commit_message"
        body = compact({"squash": p.strategy == "squash", "sha": expected_sha, message_key: p.message})
        try:
            response = await self.request("PUT", f"{path}/merge", ctx=ctx, json=body, expected=(200,))
        except (InvalidRequest, Conflict) as exc:
            if exc.details.get("status") not in (*_MERGE_REFUSED, 409):
                raise
            raise Conflict(f"merge request !{p.number} cannot be merged: {exc.message}",
                           details={**exc.details, "number": p.number}) from None
        merged = mapping.pull_request(self.id, p.repo, json_body(response))
        return MergeResult(provider=self.id, id=merged.merge_sha or merged.id, url=merged.url,
                           merged=merged.merged, sha=merged.merge_sha, strategy=p.strategy,
                           message=p.message or merged.title, raw=merged.raw)

    async def _rebase(self, path: str, p: MergePullRequestParams, ctx: RequestContext) -> str:
        """Rebase the source branch onto the target and wait for it; the new head sha."""
        current = await self._get(path, ctx)
        if p.sha and current.get("sha") != p.sha:
            raise Conflict(f"merge request !{p.number} head is {current.get('sha')}, not {p.sha}",
                           details={"number": p.number, "head_sha": current.get("sha")})
        await self.request("PUT", f"{path}/rebase", ctx=ctx, json={}, expected=(200, 202))
        waited_until = time.monotonic() + self.rebase_timeout_s
        while True:
            current = await self._get(path, ctx, include_rebase_in_progress=True)
            if not current.get("rebase_in_progress"):
                break
            remaining = ctx.remaining()
            out_of_time = remaining is not None and remaining <= self.rebase_poll_s
            if time.monotonic() >= waited_until or out_of_time:
                raise Timeout(f"{self.id}: the rebase of merge request !{p.number} is still running",
                              details={"number": p.number})
            await asyncio.sleep(self.rebase_poll_s)
        if current.get("merge_error"):
            raise Conflict(f"merge request !{p.number} cannot be rebased: {current['merge_error']}",
                           details={"number": p.number})
        return str(current.get("sha") or "")

    async def list_pull_request_files(self, p: ListPullRequestFilesParams,
                                      ctx: RequestContext) -> Page[FileChange]:
        items, following = await self._page(f"{self._mr(p.repo, p.number)}/diffs", ctx, limit=p.limit,
                                            cursor=p.cursor)
        return Page[FileChange](items=[mapping.changed_file(self.id, d) for d in items],
                                next_cursor=following)

    # -- reviews ------------------------------------------------------------------------
    async def _note(self, p: ReviewPullRequestParams, ctx: RequestContext) -> dict[str, Any]:
        response = await self.request("POST", f"{self._mr(p.repo, p.number)}/notes", ctx=ctx,
                                      json={"body": p.body}, expected=(201,))
        note: dict[str, Any] = json_body(response)
        return note

    async def review_pull_request(self, p: ReviewPullRequestParams, ctx: RequestContext) -> Review:
        mr_url = self._mr_url(p.repo, p.number)
        if p.event != "approve" and not p.body.strip():
            raise InvalidRequest(f"a {p.event} review needs a body", details={"field": "body"})
        if p.event == "comment":
            return mapping.note_review(self.id, p.number, mr_url, await self._note(p, ctx))
        mr = await self._get(self._mr(p.repo, p.number), ctx)
        # The approvals endpoints take the numeric project id.
        approvals_path = f"/projects/{mr['project_id']}/merge_requests/{p.number}"
        if p.event == "request_changes":
            note = await self._note(p, ctx)
            try:
                await self.request("POST", f"{approvals_path}/unapprove", ctx=ctx, expected=(201,))
            except (NotFound, Unauthorized):
                pass  # the caller had not approved: nothing to withdraw
            return mapping.note_review(self.id, p.number, mr_url, note, state="changes_requested")
        if p.body.strip():
            await self._note(p, ctx)
        try:
            response = await self.request("POST", f"{approvals_path}/approve", ctx=ctx,
                                          json=compact({"sha": mr.get("sha")}), expected=(201,))
        except Unauthorized as exc:
            # The token just read the merge request, so a 401 here is GitLab refusing the approval.
            raise Forbidden(f"{self.id}: GitLab refused to approve !{p.number}: authors may not approve "
                            "their own merge request in this project, or you already approved it",
                            details=exc.details) from None
        approvals = json_body(response)
        me = await self._user(ctx)
        mine = next((a for a in approvals.get("approved_by") or []
                     if isinstance(a, dict) and (a.get("user") or {}).get("username") == me["username"]),
                    {"user": {"id": me.get("id"), "username": me["username"]}})
        review = mapping.approval_review(self.id, p.number, mr_url, mr.get("sha"), mine, body=p.body)
        return review.model_copy(update={"raw": approvals})

    async def list_reviews(self, p: ListReviewsParams, ctx: RequestContext) -> Page[Review]:
        mr_url = self._mr_url(p.repo, p.number)
        mr = await self._get(self._mr(p.repo, p.number), ctx)
        approvals = await self._get(f"/projects/{mr['project_id']}/merge_requests/{p.number}/approvals", ctx)
        reviewers = await self._get(f"{self._mr(p.repo, p.number)}/reviewers", ctx)
        reviews = [mapping.approval_review(self.id, p.number, mr_url, mr.get("sha"), a)
                   for a in approvals.get("approved_by") or [] if isinstance(a, dict)]
        reviews += [mapping.reviewer_review(self.id, p.number, mr_url, r) for r in reviewers or []
                    if isinstance(r, dict) and r.get("state") == "requested_changes"]
        items, following = slice_page(reviews, limit=p.limit, cursor=p.cursor)
        return Page[Review](items=items, next_cursor=following)

    # -- statuses -------------------------------------------------------------------------
    async def set_commit_status(self, p: SetCommitStatusParams, ctx: RequestContext) -> CommitStatus:
        body = compact({"state": _STATUS_OUT[p.state], "name": p.context, "target_url": p.target_url,
                        "description": p.description or None})
        try:
            response = await self.request("POST", f"{self._project(p.repo)}/statuses/{quote_segment(p.sha)}",
                                          ctx=ctx, json=body, expected=(200, 201))
        except InvalidRequest as exc:
            if "cannot transition status" not in exc.message.lower():
                raise
            # GitLab refuses a transition to the state a status is already in: that state is the result.
            current = await self._get(f"{self._project(p.repo)}/repository/commits/{quote_segment(p.sha)}"
                                      "/statuses", ctx, name=p.context)
            same = [s for s in current or [] if isinstance(s, dict) and s.get("name") == p.context
                    and s.get("status") == _STATUS_OUT[p.state]]
            if not same:
                raise Conflict(f"{self.id}: {exc.message}", details=exc.details) from None
            return mapping.commit_status(self.id, p.sha, same[-1])
        return mapping.commit_status(self.id, p.sha, json_body(response))

    async def list_commit_statuses(self, p: ListCommitStatusesParams,
                                   ctx: RequestContext) -> Page[CommitStatus]:
        items, following = await self._page(
            f"{self._project(p.repo)}/repository/commits/{quote_segment(p.ref)}/statuses", ctx, limit=p.limit,
            cursor=p.cursor)
        return Page[CommitStatus](items=[mapping.commit_status(self.id, p.ref, s) for s in items],
                                  next_cursor=following)


def _base64(p: PutFileParams) -> str:
    if p.encoding == "utf-8":
        return base64.b64encode(p.content.encode("utf-8")).decode("ascii")
    try:
        return base64.b64encode(base64.b64decode(p.content, validate=True)).decode("ascii")
    except (binascii.Error, ValueError):
        raise InvalidRequest("content is not valid base64", details={"field": "content"}) from None
