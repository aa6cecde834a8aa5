"""Gitea and Forgejo git providers, over their REST API v1 (``/api/v1``).

Why no SDK: the official Go SDK is not usable from Python, and the Python clients on PyPI
(``py-gitea``, ``giteapy``, ...) are synchronous, lag the API by several releases and each bring
their own HTTP stack, which would bypass the shared base — one pooled async client, the request
deadline, rate-limit bookkeeping and typed errors. The API is plain JSON over a dozen endpoints;
``mapping.py`` turns its payloads into the catalog's models, and every request the tests send is
checked against Gitea's own Swagger description (``gitea.json``; ``forgejo.json`` for Forgejo).

Forgejo is a fork of Gitea with the same ``/api/v1`` for everything used here; the one difference
that shows is that Forgejo's compare lists the changed files. ``ForgejoGitPlugin`` is this code with
``provider = "forgejo"``.

``merge_branch``: Gitea has no endpoint that merges one branch into another (``merge-upstream``
only syncs a fork with its parent). It is implemented the way Gitea's UI does it — a pull request
from ``head`` into ``base``, merged at once with the requested strategy. The pull request stays in
the repository as the record of the merge; if the merge is refused (conflicts, protection) it is
closed again and the error is raised. Nothing to merge (``head`` already in ``base``) returns
``merged=false`` without creating anything.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

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
    UpdatePullRequestParams,
    UpdateRepositoryParams,
)
from mosaic.errors import Conflict, InvalidRequest, MosaicError, NotFound
from mosaic.gateway.context import RequestContext
from mosaic.plugins.http import (
    HttpConfig,
    HttpProviderPlugin,
    compact,
    json_body,
    quote_path,
    quote_segment,
)
from mosaic.plugins.http_auth import AuthType
from mosaic.plugins.http_pagination import LinkHeaderPagination
from mosaic.providers.gitea import mapping

API_PREFIX = "/api/v1"
# Gitea's "work in progress" title prefix is what makes a pull request a draft.
WIP_PREFIX = "WIP: "
_WIP_PREFIXES = ("wip:", "[wip]")
_REVIEW_EVENTS = {"approve": "APPROVED", "request_changes": "REQUEST_CHANGES", "comment": "COMMENT"}
# Go error strings of the contents API's 422 answers that are conflicts with the current file.
_FILE_CONFLICTS = ("already exists", "sha does not match")


class GiteaConfig(HttpConfig):
    """``baseUrl`` may be the instance root (``https://git.example.com``) or its API root
    (``.../api/v1``); ``webUrl`` defaults to the instance root and is used for ``url`` fields the API
    does not return (branches, comparisons)."""

    web_url: str | None = Field(default=None, alias="webUrl")

    @field_validator("base_url")
    @classmethod
    def _api_root(cls, v: str) -> str:
        v = v.rstrip("/")
        return v if v.endswith(API_PREFIX) else v + API_PREFIX

    @field_validator("web_url")
    @classmethod
    def _web(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else None


class GiteaGitPlugin(HttpProviderPlugin):
    provider: ClassVar[str] = "gitea"
    service = "git"
    name: ClassVar[str] = "Gitea"
    version: ClassVar[str] = "0.1.0"
    Config: ClassVar[type[BaseModel]] = GiteaConfig
    # Which description the API follows; the code is the same for both.
    flavour: ClassVar[str] = "gitea"
    health_path: ClassVar[str] = "/user"
    token_format: ClassVar[str] = "token {token}"
    # Gitea accepts API tokens, OAuth2 access tokens and basic auth; it has no app-JWT scheme.
    auth_types: ClassVar[frozenset[AuthType]] = frozenset({"token", "bearer", "basic"})
    notes: ClassVar[dict[str, str]] = {
        "merge_branch": "made as a pull request from head into base, merged at once (kept as the record)",
        "create_pull_request": "draft = a 'WIP: ' title prefix, Gitea's own convention",
        "list_pull_requests": "state 'merged' lists closed pull requests and keeps the merged ones, "
                              "so a page may hold fewer than `limit` items",
        "compare_commits": "Gitea lists no files in a comparison (Forgejo does); behind_by costs a "
                           "second compare",
        "list_pull_request_files": "Gitea gives line counts but no patch",
        "set_commit_status": "Gitea's 'warning' reads as failure and 'skipped' as success",
    }

    PAGES: ClassVar[LinkHeaderPagination] = LinkHeaderPagination(page_param="page", size_param="limit")

    # Login of the token's owner, asked once per instance (see _login).
    _me: str | None = None

    # -- helpers --------------------------------------------------------------
    @property
    def web_base(self) -> str:
        cfg = self.settings
        web = getattr(cfg, "web_url", None)
        if isinstance(web, str) and web:
            return web
        parts = urlsplit(cfg.base_url)
        path = parts.path[: -len(API_PREFIX)] if parts.path.endswith(API_PREFIX) else parts.path
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    @staticmethod
    def _repo(repo: str) -> str:
        parts = repo.split("/")
        if len(parts) != 2:
            raise InvalidRequest(f"Gitea repositories are 'owner/name', got {repo!r}", details={"repo": repo})
        return f"/repos/{quote_segment(parts[0])}/{quote_segment(parts[1])}"

    async def _login(self, ctx: RequestContext) -> str:
        """Login of the authenticated user (asked once per plugin instance)."""
        if self._me is None:
            user = json_body(await self.request("GET", "/user", ctx=ctx))
            login = user.get("login") if isinstance(user, dict) else None
            if not isinstance(login, str) or not login:
                raise NotFound(f"{self.id}: the API did not say who the token belongs to")
            self._me = login
        return self._me

    async def _get(self, path: str, ctx: RequestContext, **params: Any) -> Any:
        return json_body(await self.request("GET", path, ctx=ctx, params=params or None))

    async def _page(self, path: str, ctx: RequestContext, *, limit: int, cursor: str | None,
                    params: dict[str, Any] | None = None) -> tuple[list[Any], str | None]:
        items, following = await self.fetch_page(path, ctx=ctx, pagination=self.PAGES, limit=limit,
                                                 cursor=cursor, params=params)
        return [i for i in items if isinstance(i, dict)], following

    # -- repositories -----------------------------------------------------------
    async def create_repository(self, p: CreateRepositoryParams, ctx: RequestContext) -> Repository:
        body = {"name": p.name, "description": p.description, "private": p.private,
                "default_branch": p.default_branch, "auto_init": p.auto_init}
        if p.owner is None or p.owner == await self._login(ctx):
            path = "/user/repos"
        else:
            path = f"/orgs/{quote_segment(p.owner)}/repos"
        try:
            response = await self.request("POST", path, ctx=ctx, json=body, expected=(201,))
        except NotFound:
            raise NotFound(f"{self.id}: organization {p.owner!r} not found", details={"owner": p.owner}) \
                from None
        return mapping.repository(self.id, json_body(response))

    async def get_repository(self, p: GetRepositoryParams, ctx: RequestContext) -> Repository:
        return mapping.repository(self.id, await self._get(self._repo(p.repo), ctx))

    async def update_repository(self, p: UpdateRepositoryParams, ctx: RequestContext) -> Repository:
        body = compact({"description": p.description, "private": p.private,
                        "default_branch": p.default_branch, "archived": p.archived, "name": p.new_name})
        if not body:
            return await self.get_repository(GetRepositoryParams(repo=p.repo), ctx)
        response = await self.request("PATCH", self._repo(p.repo), ctx=ctx, json=body)
        return mapping.repository(self.id, json_body(response))

    async def delete_repository(self, p: DeleteRepositoryParams, ctx: RequestContext) -> Deleted:
        current = await self.get_repository(GetRepositoryParams(repo=p.repo), ctx)
        await self.request("DELETE", self._repo(p.repo), ctx=ctx, expected=(204,))
        return Deleted(provider=self.id, id=current.id)

    async def list_repositories(self, p: ListRepositoriesParams, ctx: RequestContext) -> Page[Repository]:
        path = "/user/repos" if p.owner is None else f"/users/{quote_segment(p.owner)}/repos"
        items, following = await self._page(path, ctx, limit=p.limit, cursor=p.cursor)
        return Page[Repository](items=[mapping.repository(self.id, r) for r in items], next_cursor=following)

    # -- branches ---------------------------------------------------------------
    async def create_branch(self, p: CreateBranchParams, ctx: RequestContext) -> Branch:
        body = compact({"new_branch_name": p.branch, "old_ref_name": p.from_ref})
        response = await self.request("POST", f"{self._repo(p.repo)}/branches", ctx=ctx, json=body,
                                      expected=(201,))
        return mapping.branch(self.id, p.repo, self.web_base, json_body(response))

    async def get_branch(self, p: BranchParams, ctx: RequestContext) -> Branch:
        body = await self._get(f"{self._repo(p.repo)}/branches/{quote_segment(p.branch)}", ctx)
        return mapping.branch(self.id, p.repo, self.web_base, body)

    async def list_branches(self, p: ListBranchesParams, ctx: RequestContext) -> Page[Branch]:
        items, following = await self._page(f"{self._repo(p.repo)}/branches", ctx, limit=p.limit,
                                            cursor=p.cursor)
        return Page[Branch](items=[mapping.branch(self.id, p.repo, self.web_base, b) for b in items],
                            next_cursor=following)

    async def delete_branch(self, p: BranchParams, ctx: RequestContext) -> Deleted:
        await self.request("DELETE", f"{self._repo(p.repo)}/branches/{quote_segment(p.branch)}", ctx=ctx,
                           expected=(204,))
        return Deleted(provider=self.id, id=f"{p.repo}:{p.branch}")

    async def merge_branch(self, p: MergeBranchParams, ctx: RequestContext) -> MergeResult:
        compare = await self._get(f"{self._repo(p.repo)}/compare/{quote_path(f'{p.base}...{p.head}')}", ctx)
        if int(compare.get("total_commits") or 0) == 0:
            base = await self.get_branch(BranchParams(repo=p.repo, branch=p.base), ctx)
            return MergeResult(provider=self.id, id=base.sha, url=base.url, merged=False, sha=base.sha,
                               strategy=p.strategy, message=f"{p.head} is already merged into {p.base}",
                               raw=compare)
        title = (p.message or f"Merge branch '{p.head}' into {p.base}").partition("\n")[0]
        created = await self.request("POST", f"{self._repo(p.repo)}/pulls", ctx=ctx, expected=(201,),
                                     json={"head": p.head, "base": p.base, "title": title,
                                           "body": "Merged through MosAIc merge_branch."})
        number = int(json_body(created)["number"])
        try:
            return await self.merge_pull_request(
                MergePullRequestParams(repo=p.repo, number=number, strategy=p.strategy, message=p.message),
                ctx)
        except MosaicError:
            try:
                await self.request("PATCH", f"{self._repo(p.repo)}/pulls/{number}", ctx=ctx,
                                   json={"state": "closed"}, expected=(201,))
            except MosaicError:
                pass  # the merge error is the one to report; the pull request stays open
            raise

    # -- files ------------------------------------------------------------------
    async def get_file(self, p: GetFileParams, ctx: RequestContext) -> FileContent:
        body = await self._get(f"{self._repo(p.repo)}/contents/{quote_path(p.path)}", ctx, ref=p.ref)
        if isinstance(body, list) or (isinstance(body, dict) and body.get("type") == "dir"):
            raise InvalidRequest(f"{p.path!r} is a directory in {p.repo}", details={"path": p.path})
        if not isinstance(body, dict) or body.get("type") not in ("file", None):
            kind = body.get("type") if isinstance(body, dict) else "unknown"
            raise InvalidRequest(f"{p.path!r} is a {kind}, not a file", details={"path": p.path})
        return mapping.file_content(self.id, p.ref, body)

    async def put_file(self, p: PutFileParams, ctx: RequestContext) -> FileCommit:
        if p.encoding == "base64":
            try:
                content = base64.b64encode(base64.b64decode(p.content, validate=True)).decode("ascii")
            except (binascii.Error, ValueError):
                raise InvalidRequest("content is not valid base64", details={"field": "content"}) from None
        else:
            content = base64.b64encode(p.content.encode("utf-8")).decode("ascii")
        author = compact({"name": p.author_name, "email": p.author_email})
        body = compact({"content": content, "message": p.message, "branch": p.branch, "sha": p.sha,
                        "author": author or None})
        method, status = ("PUT", 200) if p.sha else ("POST", 201)
        try:
            response = await self.request(method, f"{self._repo(p.repo)}/contents/{quote_path(p.path)}",
                                          ctx=ctx, json=body, expected=(status,))
        except InvalidRequest as exc:
            if any(s in exc.message for s in _FILE_CONFLICTS):
                hint = ("pass its current sha to update it" if not p.sha
                        else "the file changed since that sha was read")
                raise Conflict(f"{exc.message} ({hint})", details=exc.details) from None
            raise
        return mapping.file_commit(self.id, json_body(response))

    # -- commits ----------------------------------------------------------------
    async def list_commits(self, p: ListCommitsParams, ctx: RequestContext) -> Page[Commit]:
        params = {"sha": p.ref, "path": p.path, "stat": False, "verification": False, "files": False}
        try:
            items, following = await self._page(f"{self._repo(p.repo)}/commits", ctx, limit=p.limit,
                                                cursor=p.cursor, params=params)
        except Conflict:
            # Gitea answers 409 "Git Repository is empty" for a repository without commits.
            return Page[Commit](items=[], next_cursor=None)
        return Page[Commit](items=[mapping.commit(self.id, c) for c in items], next_cursor=following)

    async def get_commit(self, p: GetCommitParams, ctx: RequestContext) -> Commit:
        body = await self._get(f"{self._repo(p.repo)}/git/commits/{quote_segment(p.sha)}", ctx)
        return mapping.commit(self.id, body)

    async def compare_commits(self, p: CompareCommitsParams, ctx: RequestContext) -> Comparison:
        root = f"{self._repo(p.repo)}/compare"
        ahead = await self._get(f"{root}/{quote_path(f'{p.base}...{p.head}')}", ctx)
        behind = await self._get(f"{root}/{quote_path(f'{p.head}...{p.base}')}", ctx)
        behind_by = int(behind.get("total_commits") or 0) if isinstance(behind, dict) else 0
        return mapping.comparison(self.id, p.repo, self.web_base, p.base, p.head, ahead, behind_by)

    # -- pull requests ------------------------------------------------------------
    async def create_pull_request(self, p: CreatePullRequestParams, ctx: RequestContext) -> PullRequest:
        base = p.base
        if base is None:
            base = (await self.get_repository(GetRepositoryParams(repo=p.repo), ctx)).default_branch
        title = p.title
        if p.draft and not title.lower().startswith(_WIP_PREFIXES):
            title = WIP_PREFIX + title
        response = await self.request("POST", f"{self._repo(p.repo)}/pulls", ctx=ctx, expected=(201,),
                                      json={"head": p.head, "base": base, "title": title, "body": p.body})
        return mapping.pull_request(self.id, p.repo, json_body(response))

    async def get_pull_request(self, p: PullRequestParams, ctx: RequestContext) -> PullRequest:
        return mapping.pull_request(self.id, p.repo, await self._get(f"{self._repo(p.repo)}/pulls/{p.number}",
                                                                     ctx))

    async def list_pull_requests(self, p: ListPullRequestsParams, ctx: RequestContext) -> Page[PullRequest]:
        state = "closed" if p.state == "merged" else p.state
        items, following = await self._page(f"{self._repo(p.repo)}/pulls", ctx, limit=p.limit,
                                            cursor=p.cursor, params={"state": state})
        pulls = [mapping.pull_request(self.id, p.repo, i) for i in items]
        if p.state == "merged":
            pulls = [pr for pr in pulls if pr.merged]
        return Page[PullRequest](items=pulls, next_cursor=following)

    async def update_pull_request(self, p: UpdatePullRequestParams, ctx: RequestContext) -> PullRequest:
        body = compact({"title": p.title, "body": p.body, "base": p.base, "state": p.state})
        if not body:
            return await self.get_pull_request(PullRequestParams(repo=p.repo, number=p.number), ctx)
        response = await self.request("PATCH", f"{self._repo(p.repo)}/pulls/{p.number}", ctx=ctx, json=body,
                                      expected=(201,))
        return mapping.pull_request(self.id, p.repo, json_body(response))

    async def merge_pull_request(self, p: MergePullRequestParams, ctx: RequestContext) -> MergeResult:
        path = f"{self._repo(p.repo)}/pulls/{p.number}"
        title, _, rest = (p.message or "").partition("\n")
        body = compact({"Do": p.strategy, "MergeTitleField": title or None,
                        "MergeMessageField": rest.strip("\n") or None, "head_commit_id": p.sha})
        response = await self.request("POST", f"{path}/merge", ctx=ctx, json=body, expected=(200, 405))
        if response.status_code == 405:
            # Gitea's "not mergeable": conflicts, failing required checks, missing approvals, or merged.
            error = self.map_error(response, "POST", f"{path}/merge")
            raise Conflict(f"pull request #{p.number} cannot be merged: {error.message}",
                           details={**error.details, "number": p.number})
        merged = mapping.pull_request(self.id, p.repo, await self._get(path, ctx))
        message = p.message or (merged.raw.get("title") or "")
        return MergeResult(provider=self.id, id=merged.merge_sha or merged.id, url=merged.url,
                           merged=merged.merged, sha=merged.merge_sha, strategy=p.strategy,
                           message=str(message), raw=merged.raw)

    async def close_pull_request(self, p: PullRequestParams, ctx: RequestContext) -> PullRequest:
        return await self.update_pull_request(UpdatePullRequestParams(repo=p.repo, number=p.number,
                                                                      state="closed"), ctx)

    async def list_pull_request_files(self, p: ListPullRequestFilesParams,
                                      ctx: RequestContext) -> Page[FileChange]:
        items, following = await self._page(f"{self._repo(p.repo)}/pulls/{p.number}/files", ctx,
                                            limit=p.limit, cursor=p.cursor)
        return Page[FileChange](items=[mapping.changed_file(self.id, f) for f in items],
                                next_cursor=following)

    async def review_pull_request(self, p: ReviewPullRequestParams, ctx: RequestContext) -> Review:
        response = await self.request("POST", f"{self._repo(p.repo)}/pulls/{p.number}/reviews", ctx=ctx,
                                      json={"event": _REVIEW_EVENTS[p.event], "body": p.body},
                                      expected=(200,))
        return mapping.review(self.id, p.number, json_body(response))

    async def list_reviews(self, p: ListReviewsParams, ctx: RequestContext) -> Page[Review]:
        items, following = await self._page(f"{self._repo(p.repo)}/pulls/{p.number}/reviews", ctx,
                                            limit=p.limit, cursor=p.cursor)
        return Page[Review](items=[mapping.review(self.id, p.number, r) for r in items],
                            next_cursor=following)

    # -- statuses -------------------------------------------------------------------
    async def set_commit_status(self, p: SetCommitStatusParams, ctx: RequestContext) -> CommitStatus:
        body = compact({"state": p.state, "context": p.context, "description": p.description,
                        "target_url": p.target_url})
        response = await self.request("POST", f"{self._repo(p.repo)}/statuses/{quote_segment(p.sha)}",
                                      ctx=ctx, json=body, expected=(201,))
        return mapping.commit_status(self.id, p.sha, json_body(response))

    async def list_commit_statuses(self, p: ListCommitStatusesParams,
                                   ctx: RequestContext) -> Page[CommitStatus]:
        items, following = await self._page(
            f"{self._repo(p.repo)}/commits/{quote_segment(p.ref)}/statuses", ctx, limit=p.limit,
            cursor=p.cursor)
        return Page[CommitStatus](items=[mapping.commit_status(self.id, p.ref, s) for s in items],
                                  next_cursor=following)


class ForgejoGitPlugin(GiteaGitPlugin):
    """Forgejo: the same API (validated against Forgejo's own description in the tests)."""

    provider: ClassVar[str] = "forgejo"
    name: ClassVar[str] = "Forgejo"
    flavour: ClassVar[str] = "forgejo"
