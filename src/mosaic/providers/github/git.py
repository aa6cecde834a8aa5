"""GitHub git provider (github.com, GHE.com and Enterprise Server), over the REST API v3.

Why the shared HTTP base and not ``githubkit``: githubkit is async and well kept, but it is not a
dependency of MosAIc (it would add it plus its generated schema package, tens of MB of models) and
it brings its own request stack: its own httpx clients and auth flows, automatic retries on rate
limits and server errors, and its own exception types. MosAIc's gateway owns rate limiting, retries,
circuit breaking and metrics, and the shared base owns the pooled client, the request deadline, the
rate-limit bookkeeping and the typed errors; running githubkit underneath would mean switching
most of it off and translating the rest. The REST calls used here are a couple of dozen plain JSON
endpoints; ``mapping.py`` turns GitHub's payloads into the catalog's models, and every request the
tests send is validated against GitHub's own OpenAPI description (``github.json``).

Who is the owner? ``create_repository`` and ``list_repositories`` compare ``owner`` with the login
of the token (``GET /user``, asked once per instance); any other owner is looked up once
(``GET /users/{owner}``, cached) to tell an organization (``/orgs/{org}/repos``) from another user.
A GitHub App installation token cannot call ``GET /user`` (it is nobody): with App auth every
owner is looked up, repositories are created in organizations only, and listing without ``owner``
lists the installation's repositories.

Branch merges: ``merge`` is GitHub's merge endpoint (``POST /repos/{o}/{r}/merges``), a real merge
commit made on the server. GitHub has no squash or rebase for branches, so those two are a pull
request from ``head`` into ``base`` merged at once with that method (the pull request stays as the
record; if the merge is refused it is closed again and the error is raised).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, ClassVar, Literal

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
from mosaic.errors import Conflict, Forbidden, InvalidRequest, MosaicError, NotFound
from mosaic.gateway.context import RequestContext
from mosaic.plugins.http import compact, json_body, quote_path, quote_segment
from mosaic.plugins.http_pagination import LinkHeaderPagination
from mosaic.providers.github import mapping
from mosaic.providers.github.base import GitHubHttpPlugin

OwnerKind = Literal["self", "org", "user"]
_REVIEW_EVENTS = {"approve": "APPROVE", "request_changes": "REQUEST_CHANGES", "comment": "COMMENT"}
_FULL_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_OWNER_CACHE_MAX = 1024


class GitHubGitPlugin(GitHubHttpPlugin):
    service = "git"
    name: ClassVar[str] = "GitHub"
    version: ClassVar[str] = "0.1.0"
    notes: ClassVar[dict[str, str]] = {
        "create_repository": "GitHub takes no default branch on create: with auto_init the first branch "
                             "is renamed when it differs; an App installation must name an organization",
        "list_repositories": "without owner: what the token can access (an App: the installation's "
                             "repositories)",
        "create_branch": "from_ref is resolved to a commit, then a ref is created (POST /git/refs)",
        "merge_branch": "merge: GitHub's merge endpoint; squash/rebase: a pull request merged at once "
                        "with that method (kept as the record)",
        "list_pull_requests": "state 'merged' lists closed pull requests and keeps the merged ones, so a "
                              "page may hold fewer than `limit` items",
        "get_file": "files over 1 MB are read through the git blobs API",
    }

    PAGES: ClassVar[LinkHeaderPagination] = LinkHeaderPagination(page_param="page", size_param="per_page")
    INSTALLATION_PAGES: ClassVar[LinkHeaderPagination] = LinkHeaderPagination(
        page_param="page", size_param="per_page", items_key="repositories")

    def __init__(self, plugin_id: str, **kwargs: Any) -> None:
        super().__init__(plugin_id, **kwargs)
        self._me: str | None = None
        self._owner_kinds: dict[str, OwnerKind] = {}

    # -- helpers ----------------------------------------------------------------
    async def _get(self, path: str, ctx: RequestContext, **params: Any) -> Any:
        return json_body(await self.request("GET", path, ctx=ctx, params=params or None))

    async def _page(self, path: str, ctx: RequestContext, *, limit: int, cursor: str | None,
                    params: dict[str, Any] | None = None,
                    pagination: LinkHeaderPagination | None = None) -> tuple[list[Any], str | None]:
        items, following = await self.fetch_page(path, ctx=ctx, pagination=pagination or self.PAGES,
                                                 limit=limit, cursor=cursor, params=params)
        return [i for i in items if isinstance(i, dict)], following

    async def _login(self, ctx: RequestContext) -> str | None:
        """Login of the token's user (asked once); None for an App installation, which has none."""
        if self.uses_app:
            return None
        if self._me is None:
            user = await self._get("/user", ctx)
            login = user.get("login") if isinstance(user, dict) else None
            if not isinstance(login, str) or not login:
                raise NotFound(f"{self.id}: the API did not say who the token belongs to")
            self._me = login
        return self._me

    async def _owner_kind(self, owner: str, ctx: RequestContext) -> OwnerKind:
        me = await self._login(ctx)
        if me is not None and owner.lower() == me.lower():
            return "self"
        kind = self._owner_kinds.get(owner.lower())
        if kind is None:
            try:
                body = await self._get(f"/users/{quote_segment(owner)}", ctx)
            except NotFound:
                raise NotFound(f"{self.id}: no user or organization {owner!r}", details={"owner": owner}) \
                    from None
            kind = "org" if isinstance(body, dict) and body.get("type") == "Organization" else "user"
            if len(self._owner_kinds) >= _OWNER_CACHE_MAX:
                self._owner_kinds.clear()
            self._owner_kinds[owner.lower()] = kind
        return kind

    async def _default_branch(self, repo: str, ctx: RequestContext) -> str:
        return (await self.get_repository(GetRepositoryParams(repo=repo), ctx)).default_branch

    async def _resolve_sha(self, repo: str, ref: str, ctx: RequestContext) -> str:
        """The commit a branch, tag or sha names."""
        if _FULL_SHA.match(ref):
            return ref
        # per_page bounds the file list that comes with the commit.
        body = await self._get(f"{self.repo_path(repo)}/commits/{quote_segment(ref)}", ctx, per_page=1)
        sha = body.get("sha") if isinstance(body, dict) else None
        if not isinstance(sha, str) or not sha:
            raise NotFound(f"{self.id}: {ref!r} does not name a commit in {repo}", details={"ref": ref})
        return sha

    # -- repositories -------------------------------------------------------------
    async def create_repository(self, p: CreateRepositoryParams, ctx: RequestContext) -> Repository:
        body = {"name": p.name, "description": p.description, "private": p.private, "auto_init": p.auto_init}
        if p.owner is None:
            if self.uses_app:
                raise InvalidRequest("a GitHub App installation creates repositories in an organization: "
                                     "pass owner", details={"field": "owner"})
            path = "/user/repos"
        else:
            kind = await self._owner_kind(p.owner, ctx)
            if kind == "user":
                whose = "a user account" if self.uses_app else "another user"
                raise Forbidden(f"{self.id}: cannot create a repository for {whose} ({p.owner!r})",
                                details={"owner": p.owner})
            path = "/user/repos" if kind == "self" else f"/orgs/{quote_segment(p.owner)}/repos"
        try:
            response = await self.request("POST", path, ctx=ctx, json=body, expected=(201,))
        except NotFound:
            raise NotFound(f"{self.id}: organization {p.owner!r} not found", details={"owner": p.owner}) \
                from None
        created = mapping.repository(self.id, json_body(response))
        if p.auto_init and created.default_branch != p.default_branch:
            await self.request("POST", f"{self.repo_path(created.full_name)}/branches/"
                                       f"{quote_segment(created.default_branch)}/rename",
                               ctx=ctx, json={"new_name": p.default_branch}, expected=(201,))
            return await self.get_repository(GetRepositoryParams(repo=created.full_name), ctx)
        return created

    async def get_repository(self, p: GetRepositoryParams, ctx: RequestContext) -> Repository:
        return mapping.repository(self.id, await self._get(self.repo_path(p.repo), ctx))

    async def update_repository(self, p: UpdateRepositoryParams, ctx: RequestContext) -> Repository:
        body = compact({"description": p.description, "private": p.private,
                        "default_branch": p.default_branch, "archived": p.archived, "name": p.new_name})
        if not body:
            return await self.get_repository(GetRepositoryParams(repo=p.repo), ctx)
        response = await self.request("PATCH", self.repo_path(p.repo), ctx=ctx, json=body)
        return mapping.repository(self.id, json_body(response))

    async def delete_repository(self, p: DeleteRepositoryParams, ctx: RequestContext) -> Deleted:
        current = await self.get_repository(GetRepositoryParams(repo=p.repo), ctx)
        await self.request("DELETE", self.repo_path(p.repo), ctx=ctx, expected=(204,))
        return Deleted(provider=self.id, id=current.id)

    async def list_repositories(self, p: ListRepositoriesParams, ctx: RequestContext) -> Page[Repository]:
        pagination: LinkHeaderPagination | None = None
        params: dict[str, Any] | None = None
        if p.owner is None:
            if self.uses_app:
                path, pagination = "/installation/repositories", self.INSTALLATION_PAGES
            else:
                path = "/user/repos"
        else:
            kind = await self._owner_kind(p.owner, ctx)
            if kind == "self":
                path, params = "/user/repos", {"affiliation": "owner"}
            elif kind == "org":
                path = f"/orgs/{quote_segment(p.owner)}/repos"
            else:
                path = f"/users/{quote_segment(p.owner)}/repos"
        items, following = await self._page(path, ctx, limit=p.limit, cursor=p.cursor, params=params,
                                            pagination=pagination)
        return Page[Repository](items=[mapping.repository(self.id, r) for r in items], next_cursor=following)

    # -- branches -----------------------------------------------------------------
    async def create_branch(self, p: CreateBranchParams, ctx: RequestContext) -> Branch:
        source = p.from_ref or await self._default_branch(p.repo, ctx)
        sha = await self._resolve_sha(p.repo, source, ctx)
        response = await self.request("POST", f"{self.repo_path(p.repo)}/git/refs", ctx=ctx, expected=(201,),
                                      json={"ref": f"refs/heads/{p.branch}", "sha": sha})
        return mapping.branch_from_ref(self.id, p.repo, self.web_base, p.branch, json_body(response))

    async def get_branch(self, p: BranchParams, ctx: RequestContext) -> Branch:
        body = await self._get(f"{self.repo_path(p.repo)}/branches/{quote_segment(p.branch)}", ctx)
        return mapping.branch(self.id, p.repo, self.web_base, body)

    async def list_branches(self, p: ListBranchesParams, ctx: RequestContext) -> Page[Branch]:
        items, following = await self._page(f"{self.repo_path(p.repo)}/branches", ctx, limit=p.limit,
                                            cursor=p.cursor)
        return Page[Branch](items=[mapping.branch(self.id, p.repo, self.web_base, b) for b in items],
                            next_cursor=following)

    async def delete_branch(self, p: BranchParams, ctx: RequestContext) -> Deleted:
        path = f"{self.repo_path(p.repo)}/git/refs/{quote_segment('heads/' + p.branch)}"
        try:
            await self.request("DELETE", path, ctx=ctx, expected=(204,))
        except InvalidRequest as exc:
            # GitHub answers 422 "Reference does not exist" for a missing branch.
            if "does not exist" in exc.message:
                raise NotFound(exc.message, details=exc.details) from None
            raise
        return Deleted(provider=self.id, id=f"{p.repo}:{p.branch}")

    async def merge_branch(self, p: MergeBranchParams, ctx: RequestContext) -> MergeResult:
        if p.strategy != "merge":
            return await self._merge_through_pull_request(p, ctx)
        body = compact({"base": p.base, "head": p.head, "commit_message": p.message})
        try:
            response = await self.request("POST", f"{self.repo_path(p.repo)}/merges", ctx=ctx, json=body,
                                          expected=(201, 204))
        except NotFound:
            raise NotFound(f"{self.id}: base {p.base!r} or head {p.head!r} not found in {p.repo}",
                           details={"base": p.base, "head": p.head}) from None
        except Conflict as exc:
            raise Conflict(f"{p.head} cannot be merged into {p.base} without conflicts: {exc.message}",
                           details=exc.details) from None
        if response.status_code == 204:
            base = await self.get_branch(BranchParams(repo=p.repo, branch=p.base), ctx)
            return MergeResult(provider=self.id, id=base.sha, url=base.url, merged=False, sha=base.sha,
                               strategy="merge", message=f"{p.head} is already merged into {p.base}")
        made = mapping.commit(self.id, json_body(response))
        return MergeResult(provider=self.id, id=made.sha, url=made.url, merged=True, sha=made.sha,
                           strategy="merge", message=made.message, raw=made.raw)

    async def _merge_through_pull_request(self, p: MergeBranchParams, ctx: RequestContext) -> MergeResult:
        compare = await self.compare_commits(CompareCommitsParams(repo=p.repo, base=p.base, head=p.head), ctx)
        if compare.ahead_by == 0:
            base = await self.get_branch(BranchParams(repo=p.repo, branch=p.base), ctx)
            return MergeResult(provider=self.id, id=base.sha, url=base.url, merged=False, sha=base.sha,
                               strategy=p.strategy, message=f"{p.head} is already merged into {p.base}")
        title = (p.message or f"Merge branch '{p.head}' into {p.base}").partition("\n")[0]
        created = await self.create_pull_request(CreatePullRequestParams(
            repo=p.repo, title=title, head=p.head, base=p.base, body="Merged through MosAIc merge_branch."),
            ctx)
        try:
            return await self.merge_pull_request(
                MergePullRequestParams(repo=p.repo, number=created.number, strategy=p.strategy,
                                       message=p.message), ctx)
        except MosaicError:
            try:
                await self.close_pull_request(PullRequestParams(repo=p.repo, number=created.number), ctx)
            except MosaicError:
                pass  # the merge error is the one to report; the pull request stays open
            raise

    # -- files ----------------------------------------------------------------------
    async def get_file(self, p: GetFileParams, ctx: RequestContext) -> FileContent:
        body = await self._get(f"{self.repo_path(p.repo)}/contents/{quote_path(p.path)}", ctx, ref=p.ref)
        if isinstance(body, list) or (isinstance(body, dict) and body.get("type") == "dir"):
            raise InvalidRequest(f"{p.path!r} is a directory in {p.repo}", details={"path": p.path})
        if not isinstance(body, dict) or body.get("type") != "file":
            kind = body.get("type") if isinstance(body, dict) else "unknown"
            raise InvalidRequest(f"{p.path!r} is a {kind}, not a file", details={"path": p.path})
        data: bytes | None = None
        if body.get("encoding") == "none" and body.get("sha"):
            # Over 1 MB the contents API omits the content; the blobs API serves up to 100 MB.
            blob_path = f"{self.repo_path(p.repo)}/git/blobs/{quote_segment(str(body['sha']))}"
            blob = await self._get(blob_path, ctx)
            try:
                data = base64.b64decode(str(blob.get("content", "")), validate=False)
            except (binascii.Error, ValueError):
                data = b""
        return mapping.file_content(self.id, p.ref, body, data)

    async def put_file(self, p: PutFileParams, ctx: RequestContext) -> FileCommit:
        if p.encoding == "base64":
            try:
                content = base64.b64encode(base64.b64decode(p.content, validate=True)).decode("ascii")
            except (binascii.Error, ValueError):
                raise InvalidRequest("content is not valid base64", details={"field": "content"}) from None
        else:
            content = base64.b64encode(p.content.encode()).decode("ascii")
        if (p.author_name is None) != (p.author_email is None):
            missing = "author_name" if p.author_name is None else "author_email"
            raise InvalidRequest("GitHub needs both author_name and author_email (or neither)",
                                 details={"field": missing})
        author = {"name": p.author_name, "email": p.author_email} if p.author_name else None
        body = compact({"message": p.message, "content": content, "branch": p.branch, "sha": p.sha,
                        "author": author})
        path = f"{self.repo_path(p.repo)}/contents/{quote_path(p.path)}"
        try:
            response = await self.request("PUT", path, ctx=ctx, json=body, expected=(200, 201))
        except InvalidRequest as exc:
            # 422 '"sha" wasn't supplied': the file exists and the call did not say which version it replaces.
            if p.sha is None and "\"sha\" wasn't supplied" in exc.message:
                raise Conflict(f"{p.path!r} already exists in {p.repo}: pass its current blob sha to "
                               "update it", details={**exc.details, "path": p.path}) from None
            raise
        return mapping.file_commit(self.id, json_body(response))

    # -- commits ------------------------------------------------------------------------
    async def list_commits(self, p: ListCommitsParams, ctx: RequestContext) -> Page[Commit]:
        try:
            items, following = await self._page(f"{self.repo_path(p.repo)}/commits", ctx, limit=p.limit,
                                                cursor=p.cursor, params={"sha": p.ref, "path": p.path})
        except Conflict:
            # 409 "Git Repository is empty."
            return Page[Commit](items=[], next_cursor=None)
        return Page[Commit](items=[mapping.commit(self.id, c) for c in items], next_cursor=following)

    async def get_commit(self, p: GetCommitParams, ctx: RequestContext) -> Commit:
        body = await self._get(f"{self.repo_path(p.repo)}/commits/{quote_segment(p.sha)}", ctx)
        return mapping.commit(self.id, body)

    async def compare_commits(self, p: CompareCommitsParams, ctx: RequestContext) -> Comparison:
        body = await self._get(f"{self.repo_path(p.repo)}/compare/{quote_path(f'{p.base}...{p.head}')}", ctx)
        return mapping.comparison(self.id, p.base, p.head, body)

    # -- pull requests --------------------------------------------------------------------
    def _pull(self, repo: str, number: int) -> str:
        return f"{self.repo_path(repo)}/pulls/{number}"

    async def create_pull_request(self, p: CreatePullRequestParams, ctx: RequestContext) -> PullRequest:
        base = p.base or await self._default_branch(p.repo, ctx)
        response = await self.request("POST", f"{self.repo_path(p.repo)}/pulls", ctx=ctx, expected=(201,),
                                      json={"title": p.title, "head": p.head, "base": base, "body": p.body,
                                            "draft": p.draft})
        return mapping.pull_request(self.id, p.repo, json_body(response))

    async def get_pull_request(self, p: PullRequestParams, ctx: RequestContext) -> PullRequest:
        return mapping.pull_request(self.id, p.repo, await self._get(self._pull(p.repo, p.number), ctx))

    async def list_pull_requests(self, p: ListPullRequestsParams, ctx: RequestContext) -> Page[PullRequest]:
        state = "closed" if p.state == "merged" else p.state
        items, following = await self._page(f"{self.repo_path(p.repo)}/pulls", ctx, limit=p.limit,
                                            cursor=p.cursor, params={"state": state})
        pulls = [mapping.pull_request(self.id, p.repo, i) for i in items]
        if p.state == "merged":
            pulls = [pr for pr in pulls if pr.merged]
        return Page[PullRequest](items=pulls, next_cursor=following)

    async def update_pull_request(self, p: UpdatePullRequestParams, ctx: RequestContext) -> PullRequest:
        body = compact({"title": p.title, "body": p.body, "base": p.base, "state": p.state})
        if not body:
            return await self.get_pull_request(PullRequestParams(repo=p.repo, number=p.number), ctx)
        response = await self.request("PATCH", self._pull(p.repo, p.number), ctx=ctx, json=body)
        return mapping.pull_request(self.id, p.repo, json_body(response))

    async def merge_pull_request(self, p: MergePullRequestParams, ctx: RequestContext) -> MergeResult:
        path = f"{self._pull(p.repo, p.number)}/merge"
        title, _, rest = (p.message or "").partition("\n")
        body = compact({"merge_method": p.strategy, "commit_title": title or None,
                        "commit_message": rest.strip("\n") or None, "sha": p.sha})
        response = await self.request("PUT", path, ctx=ctx, json=body, expected=(200, 405))
        if response.status_code == 405:
            # "Pull Request is not mergeable": conflicts, failing required checks, missing reviews, or
            # a merge method the repository does not allow.
            error = self.map_error(response, "PUT", path)
            raise Conflict(f"pull request #{p.number} cannot be merged: {error.message}",
                           details={**error.details, "number": p.number})
        url = mapping.web_url(self.web_base, p.repo, "pull", str(p.number))
        return mapping.merge_result(self.id, url, p.strategy, json_body(response))

    async def close_pull_request(self, p: PullRequestParams, ctx: RequestContext) -> PullRequest:
        return await self.update_pull_request(UpdatePullRequestParams(repo=p.repo, number=p.number,
                                                                      state="closed"), ctx)

    async def list_pull_request_files(self, p: ListPullRequestFilesParams,
                                      ctx: RequestContext) -> Page[FileChange]:
        items, following = await self._page(f"{self._pull(p.repo, p.number)}/files", ctx, limit=p.limit,
                                            cursor=p.cursor)
        return Page[FileChange](items=[mapping.changed_file(self.id, f) for f in items],
                                next_cursor=following)

    async def review_pull_request(self, p: ReviewPullRequestParams, ctx: RequestContext) -> Review:
        if p.event != "approve" and not p.body.strip():
            raise InvalidRequest(f"GitHub needs a body to {p.event.replace('_', ' ')}",
                                 details={"field": "body"})
        body = compact({"event": _REVIEW_EVENTS[p.event], "body": p.body or None})
        response = await self.request("POST", f"{self._pull(p.repo, p.number)}/reviews", ctx=ctx, json=body,
                                      expected=(200,))
        return mapping.review(self.id, p.number, json_body(response))

    async def list_reviews(self, p: ListReviewsParams, ctx: RequestContext) -> Page[Review]:
        items, following = await self._page(f"{self._pull(p.repo, p.number)}/reviews", ctx, limit=p.limit,
                                            cursor=p.cursor)
        return Page[Review](items=[mapping.review(self.id, p.number, r) for r in items],
                            next_cursor=following)

    # -- statuses -------------------------------------------------------------------------
    async def set_commit_status(self, p: SetCommitStatusParams, ctx: RequestContext) -> CommitStatus:
        body = compact({"state": p.state, "context": p.context, "description": p.description or None,
                        "target_url": p.target_url})
        response = await self.request("POST", f"{self.repo_path(p.repo)}/statuses/{quote_segment(p.sha)}",
                                      ctx=ctx, json=body, expected=(201,))
        return mapping.commit_status(self.id, p.sha, json_body(response))

    async def list_commit_statuses(self, p: ListCommitStatusesParams,
                                   ctx: RequestContext) -> Page[CommitStatus]:
        items, following = await self._page(
            f"{self.repo_path(p.repo)}/commits/{quote_segment(p.ref)}/statuses", ctx, limit=p.limit,
            cursor=p.cursor)
        return Page[CommitStatus](items=[mapping.commit_status(self.id, p.ref, s) for s in items],
                                  next_cursor=following)
