"""Bitbucket Cloud git provider, over the REST API 2.0 (``https://api.bitbucket.org/2.0``).

Why no SDK: the Python clients (``atlassian-python-api``, ``pybitbucket``) are synchronous
(requests), would bypass the shared base — one pooled async client per instance, the request
deadline, rate-limit bookkeeping and typed errors — and cover less than needed here. The API is
JSON plus one form upload; ``mapping.py`` turns its payloads into the catalog's models, and every
request the tests send is checked against ``bitbucket.yaml`` (with the errata listed in
``tests/providers/bitbucket/spec.py``).

How Bitbucket's concepts map onto the catalog:

* **Workspaces are owners**: ``repo`` is ``workspace/repo_slug``. Without ``owner``,
  ``create_repository`` uses the caller's personal workspace (its slug is the user's
  ``username``). A repository is created empty; ``auto_init`` then commits a README through
  ``POST /src``, which also fixes the main branch's name (``default_branch``).
* **Files** are read with ``GET /src/{commit}/{path}`` and written with ``POST /src``, a
  ``multipart/form-data`` form: one file field per path (absolute, so a file can't be mistaken for
  the ``message``/``branch`` fields), plus ``message``, ``branch``, ``parents`` and ``author``.
  Bitbucket has no blob ids, so a file's ``sha`` is the git blob id computed from its bytes — what
  ``git hash-object`` prints for it. How ``sha`` is checked on update: the branch tip is read, the
  file at that commit is hashed and compared with ``sha`` (mismatch → Conflict), and the upload
  names that tip as ``parents``: Bitbucket then refuses (409 → Conflict) if the branch moved in
  the meantime. So there is no race window; the price is that *any* push to the branch between the
  read and the write is a Conflict, even one that did not touch the file (re-read and retry).
* **Merge strategies**: ``merge`` → ``merge_commit``, ``squash`` → ``squash``, ``rebase`` →
  ``fast_forward``: Bitbucket replays nothing, so it succeeds only when the base has not moved
  since the branch was cut (otherwise Conflict). Bitbucket's newer ``rebase_fast_forward`` is the
  true equivalent, but it is missing from the API description the tests validate against.
  ``sha``: compared with the pull request's source commit just before merging (Bitbucket's merge
  takes no expected head), so a push in between can still slip in.
* **Reviews**: ``approve`` → ``POST .../approve``, ``request_changes`` → ``POST
  .../request-changes``, ``comment`` → a comment; a body given with approve/request_changes is
  posted as a comment first. ``list_reviews`` lists the participants who approved or requested
  changes; comments are not reviews on Bitbucket and are not listed.
* **Hashes**: Bitbucket abbreviates commit hashes inside pull request payloads (12 digits). The
  single-pull-request operations look the full ones up (one ``GET /commit`` each);
  ``list_pull_requests`` does not, and reports ``head_sha``/``merge_sha`` as None rather than a
  prefix that would not compare equal to a sha.
* **Statuses** are build statuses keyed by ``context``: ``pending`` → ``INPROGRESS``, ``success``
  → ``SUCCESSFUL``, ``failure`` → ``FAILED``, ``error`` → ``STOPPED``. Bitbucket requires a link:
  without ``target_url`` the commit's own page is used.

Auth: ``basic`` is a username (or, for API tokens, the account's email) with an app password or API
token; ``bearer``/``token`` is an access token (repository, project or workspace) or an OAuth token.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import time
from typing import Any, ClassVar, Literal, TypeVar

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
    MergeStrategy,
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
from mosaic.errors import (
    Conflict,
    InvalidRequest,
    MosaicError,
    NotFound,
    OperationNotSupported,
    ProviderUnavailable,
    Timeout,
)
from mosaic.gateway.context import RequestContext
from mosaic.plugins.http import HttpConfig, HttpProviderPlugin, compact, json_body, quote_path, quote_segment
from mosaic.plugins.http_auth import AuthType
from mosaic.plugins.http_pagination import NextUrlPagination, decode_cursor, encode_cursor
from mosaic.providers.bitbucket import forms, mapping

_MERGE_STRATEGIES: dict[MergeStrategy, str] = {"merge": "merge_commit", "squash": "squash",
                                               "rebase": "fast_forward"}
_STATUS_OUT: dict[StatusState, str] = {"pending": "INPROGRESS", "success": "SUCCESSFUL", "failure": "FAILED",
                                       "error": "STOPPED"}
# One state is a `state` parameter; several are a BBQL filter (the `state` parameter would have to
# be repeated, and with `q` present Bitbucket filters by `q` alone).
_LIST_STATES: dict[str, tuple[str, ...]] = {
    "open": ("OPEN",), "merged": ("MERGED",), "closed": ("DECLINED", "SUPERSEDED"),
    "all": ("OPEN", "MERGED", "DECLINED", "SUPERSEDED"),
}
_SHA = re.compile(r"^[0-9a-fA-F]{7,40}$")
# Most items a comparison collects (ahead commits, behind commits, changed files), like GitHub's cap.
COMPARE_CAP = 1000


class BitbucketConfig(HttpConfig):
    base_url: str = Field(default="https://api.bitbucket.org/2.0", alias="baseUrl",
                          description="API root (Bitbucket Cloud: https://api.bitbucket.org/2.0)")
    web_url: str = Field(default="https://bitbucket.org", alias="webUrl",
                         description="Web root, for links the API does not return.")

    @field_validator("web_url")
    @classmethod
    def _web(cls, v: str) -> str:
        return v.rstrip("/")


class BitbucketGitPlugin(HttpProviderPlugin):
    provider: ClassVar[str] = "bitbucket"
    service = "git"
    name: ClassVar[str] = "Bitbucket Cloud"
    version: ClassVar[str] = "0.1.0"
    Config: ClassVar[type[BaseModel]] = BitbucketConfig
    health_path: ClassVar[str] = "/user"
    # Access tokens and OAuth tokens are bearer tokens; app passwords and API tokens are basic auth.
    token_format: ClassVar[str] = "Bearer {token}"
    auth_types: ClassVar[frozenset[AuthType]] = frozenset({"basic", "bearer", "token"})
    unsupported: ClassVar[dict[str, str]] = {}
    notes: ClassVar[dict[str, str]] = {
        "create_repository": "owner is a workspace; auto_init commits a README through POST /src",
        "update_repository": "Bitbucket Cloud cannot archive repositories (archived raises "
                             "operation_not_supported)",
        "merge_branch": "made as a pull request from head into base, merged at once (kept as the record)",
        "put_file": "sha is the git blob id computed from the file's bytes; the write is pinned to the "
                    "branch tip it was checked at, so any concurrent push to the branch is a conflict",
        "get_file": "sha is the git blob id computed from the bytes (Bitbucket exposes no blob ids)",
        "merge_pull_request": "rebase = Bitbucket's fast_forward (no replay: fails if the base moved); "
                              "sha is checked just before merging",
        "update_pull_request": "a declined pull request cannot be reopened",
        "compare_commits": "merge_base is not reported; at most 1000 commits/files are collected",
        "list_pull_request_files": "line counts from diffstat, no patch",
        "review_pull_request": "comment = a pull request comment; a body given with approve or "
                               "request_changes is posted as a comment first",
        "list_reviews": "participants who approved or requested changes; comments are not reviews on "
                        "Bitbucket and are not listed",
        "list_pull_requests": "head_sha/merge_sha are None: Bitbucket abbreviates hashes in listings (the "
                              "single-pull-request operations look the full ones up)",
        "set_commit_status": "'error' is Bitbucket's STOPPED; without target_url the commit page is linked",
    }

    PAGES: ClassVar[NextUrlPagination] = NextUrlPagination(size_param="pagelen", items_key="values",
                                                           page_keys=("page",))
    # A merge that takes Bitbucket long answers 202 and finishes in the background.
    merge_poll_s: float = 1.0
    merge_timeout_s: float = 60.0

    def __init__(self, plugin_id: str, **kwargs: Any) -> None:
        super().__init__(plugin_id, **kwargs)
        self._me: dict[str, Any] | None = None

    # -- helpers --------------------------------------------------------------
    @property
    def web_base(self) -> str:
        web = getattr(self.settings, "web_url", "https://bitbucket.org")
        return str(web)

    @staticmethod
    def _repo(repo: str) -> str:
        parts = repo.split("/")
        if len(parts) != 2:
            raise InvalidRequest(f"Bitbucket repositories are 'workspace/repo_slug', got {repo!r}",
                                 details={"repo": repo})
        return f"/repositories/{quote_segment(parts[0])}/{quote_segment(parts[1])}"

    def _pr(self, repo: str, number: int) -> str:
        return f"{self._repo(repo)}/pullrequests/{number}"

    async def _user(self, ctx: RequestContext) -> dict[str, Any]:
        if self._me is None:
            user = json_body(await self.request("GET", "/user", ctx=ctx))
            if not isinstance(user, dict):
                raise NotFound(f"{self.id}: the API did not say who the credentials belong to")
            self._me = user
        return self._me

    async def _get(self, path: str, ctx: RequestContext, **params: Any) -> Any:
        return json_body(await self.request("GET", path, ctx=ctx, params=params or None))

    async def _page(self, path: str, ctx: RequestContext, *, limit: int, cursor: str | None,
                    params: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], str | None]:
        items, following = await self.fetch_page(path, ctx=ctx, pagination=self.PAGES, limit=limit,
                                                 cursor=cursor, params=params)
        return [i for i in items if isinstance(i, dict)], following

    async def _collect(self, path: str, ctx: RequestContext, params: dict[str, Any] | None = None,
                       cap: int = COMPARE_CAP) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(out) < cap:
            items, cursor = await self._page(path, ctx, limit=100, cursor=cursor, params=params)
            out += items
            if cursor is None:
                break
        return out[:cap]

    async def _repository(self, repo: str, ctx: RequestContext) -> dict[str, Any]:
        found: dict[str, Any] = await self._get(self._repo(repo), ctx)
        return found

    async def _main_branch(self, repo: str, ctx: RequestContext) -> str | None:
        """The main branch's name; None while the repository is empty."""
        mainbranch = (await self._repository(repo, ctx)).get("mainbranch") or {}
        name = mainbranch.get("name")
        return name if isinstance(name, str) and name else None

    async def _tip(self, repo: str, branch: str, ctx: RequestContext) -> str:
        found = await self._get(f"{self._repo(repo)}/refs/branches/{quote_segment(branch)}", ctx)
        return str((found.get("target") or {}).get("hash") or "")

    async def _resolve(self, repo: str, ref: str | None, ctx: RequestContext) -> str:
        """A branch, tag or commit → the full commit hash."""
        if ref is None:
            ref = await self._main_branch(repo, ctx)
            if ref is None:
                raise NotFound(f"{self.id}: {repo} is empty: it has no branch to start from",
                               details={"repo": repo})
        lookups = [f"refs/branches/{quote_segment(ref)}", f"refs/tags/{quote_segment(ref)}",
                   f"commit/{quote_segment(ref)}"]
        if _SHA.match(ref):
            lookups.insert(0, lookups.pop())
        for lookup in lookups:
            try:
                found = await self._get(f"{self._repo(repo)}/{lookup}", ctx)
            except NotFound:
                continue
            target = found.get("target") if "target" in found else found
            if isinstance(target, dict) and target.get("hash"):
                return str(target["hash"])
        raise NotFound(f"{self.id}: ref {ref!r} not found in {repo}", details={"ref": ref})

    async def _pull(self, repo: str, payload: dict[str, Any], ctx: RequestContext) -> PullRequest:
        """Map one pull request, looking up the full hashes Bitbucket abbreviates in it."""
        shorts = sorted(mapping.abbreviated_hashes(payload))
        found = await asyncio.gather(*(self._get(f"{self._repo(repo)}/commit/{quote_segment(h)}", ctx)
                                       for h in shorts))
        full = {h: str(c.get("hash")) for h, c in zip(shorts, found, strict=True) if isinstance(c, dict)}
        return mapping.pull_request(self.id, repo, payload, full)

    # -- repositories -----------------------------------------------------------
    async def create_repository(self, p: CreateRepositoryParams, ctx: RequestContext) -> Repository:
        workspace = p.owner or (await self._user(ctx)).get("username")
        if not isinstance(workspace, str) or not workspace:
            raise InvalidRequest("pass owner: the workspace to create the repository in",
                                 details={"field": "owner"})
        repo = f"{workspace}/{p.name.lower()}"
        body = {"type": "repository", "scm": "git", "name": p.name, "is_private": p.private,
                "description": p.description}
        try:
            response = await self.request("POST", self._repo(repo), ctx=ctx, json=body, expected=(200, 201))
        except InvalidRequest as exc:
            if "already exists" in exc.message.lower():
                raise Conflict(f"{self.id}: repository {repo!r} already exists",
                               details=exc.details) from None
            raise
        created = json_body(response)
        if p.auto_init:
            readme = f"# {p.name}\n\n{p.description}\n" if p.description else f"# {p.name}\n"
            body_bytes, ctype = forms.encode([forms.Field("/README.md", readme.encode(), "README.md"),
                                              forms.Field("message", b"Initial commit"),
                                              forms.Field("branch", p.default_branch.encode())])
            await self.request("POST", f"{self._repo(repo)}/src", ctx=ctx, content=body_bytes,
                               headers={"Content-Type": ctype}, expected=(200, 201))
            created = await self._repository(str(created.get("full_name") or repo), ctx)
        return mapping.repository(self.id, created)

    async def get_repository(self, p: GetRepositoryParams, ctx: RequestContext) -> Repository:
        return mapping.repository(self.id, await self._repository(p.repo, ctx))

    async def update_repository(self, p: UpdateRepositoryParams, ctx: RequestContext) -> Repository:
        if p.archived is not None:
            raise OperationNotSupported("git.update_repository", self.id,
                                        "Bitbucket Cloud has no archived repositories")
        # PUT creates a repository that does not exist: make sure this one does.
        current = await self._repository(p.repo, ctx)
        mainbranch = {"type": "branch", "name": p.default_branch} if p.default_branch else None
        body = compact({"description": p.description, "is_private": p.private, "name": p.new_name,
                        "mainbranch": mainbranch})
        if not body:
            return mapping.repository(self.id, current)
        response = await self.request("PUT", self._repo(p.repo), ctx=ctx, json={"type": "repository", **body},
                                      expected=(200, 201))
        return mapping.repository(self.id, json_body(response))

    async def delete_repository(self, p: DeleteRepositoryParams, ctx: RequestContext) -> Deleted:
        current = await self.get_repository(GetRepositoryParams(repo=p.repo), ctx)
        await self.request("DELETE", self._repo(p.repo), ctx=ctx, expected=(204,))
        return Deleted(provider=self.id, id=current.id)

    async def list_repositories(self, p: ListRepositoriesParams, ctx: RequestContext) -> Page[Repository]:
        path = "/repositories" if p.owner is None else f"/repositories/{quote_segment(p.owner)}"
        items, following = await self._page(path, ctx, limit=p.limit, cursor=p.cursor,
                                            params={"role": "member"})
        return Page[Repository](items=[mapping.repository(self.id, r) for r in items], next_cursor=following)

    # -- branches ---------------------------------------------------------------
    async def create_branch(self, p: CreateBranchParams, ctx: RequestContext) -> Branch:
        target = await self._resolve(p.repo, p.from_ref, ctx)
        try:
            response = await self.request("POST", f"{self._repo(p.repo)}/refs/branches", ctx=ctx,
                                          json={"name": p.branch, "target": {"hash": target}},
                                          expected=(201,))
        except InvalidRequest as exc:
            if "already exists" in exc.message.lower():
                raise Conflict(f"{self.id}: branch {p.branch!r} already exists in {p.repo}",
                               details=exc.details) from None
            raise
        return mapping.branch(self.id, p.repo, json_body(response))

    async def get_branch(self, p: BranchParams, ctx: RequestContext) -> Branch:
        body = await self._get(f"{self._repo(p.repo)}/refs/branches/{quote_segment(p.branch)}", ctx)
        return mapping.branch(self.id, p.repo, body)

    async def list_branches(self, p: ListBranchesParams, ctx: RequestContext) -> Page[Branch]:
        items, following = await self._page(f"{self._repo(p.repo)}/refs/branches", ctx, limit=p.limit,
                                            cursor=p.cursor)
        return Page[Branch](items=[mapping.branch(self.id, p.repo, b) for b in items], next_cursor=following)

    async def delete_branch(self, p: BranchParams, ctx: RequestContext) -> Deleted:
        await self.request("DELETE", f"{self._repo(p.repo)}/refs/branches/{quote_segment(p.branch)}", ctx=ctx,
                           expected=(204,))
        return Deleted(provider=self.id, id=f"{p.repo}:{p.branch}")

    async def merge_branch(self, p: MergeBranchParams, ctx: RequestContext) -> MergeResult:
        ahead, _ = await self._page(f"{self._repo(p.repo)}/commits/{quote_segment(p.head)}", ctx, limit=1,
                                    cursor=None, params={"exclude": p.base})
        if not ahead:
            base = await self.get_branch(BranchParams(repo=p.repo, branch=p.base), ctx)
            return MergeResult(provider=self.id, id=base.sha, url=base.url, merged=False, sha=base.sha,
                               strategy=p.strategy, message=f"{p.head} is already merged into {p.base}")
        title = (p.message or f"Merge branch '{p.head}' into {p.base}").partition("\n")[0]
        created = await self.create_pull_request(
            CreatePullRequestParams(repo=p.repo, title=title, head=p.head, base=p.base,
                                    body="Merged through MosAIc merge_branch."), ctx)
        try:
            merge = MergePullRequestParams(repo=p.repo, number=created.number, strategy=p.strategy,
                                           message=p.message)
            return await self.merge_pull_request(merge, ctx)
        except MosaicError:
            try:
                await self.request("POST", f"{self._pr(p.repo, created.number)}/decline", ctx=ctx)
            except MosaicError:
                pass  # the merge error is the one to report; the pull request stays open
            raise

    # -- files ------------------------------------------------------------------
    def _src(self, repo: str, node: str, path: str) -> str:
        return f"{self._repo(repo)}/src/{quote_segment(node)}/{quote_path(path)}"

    async def _meta(self, repo: str, node: str, path: str, ctx: RequestContext) -> dict[str, Any] | None:
        try:
            meta = await self._get(self._src(repo, node, path), ctx, format="meta")
        except NotFound:
            return None
        return meta if isinstance(meta, dict) else None

    async def _raw(self, repo: str, node: str, path: str, ctx: RequestContext) -> bytes:
        return (await self.request("GET", self._src(repo, node, path), ctx=ctx,
                                   headers={"Accept": "*/*"})).content

    async def get_file(self, p: GetFileParams, ctx: RequestContext) -> FileContent:
        node = p.ref or await self._main_branch(p.repo, ctx)
        if node is None:
            raise NotFound(f"{self.id}: {p.repo} is empty", details={"repo": p.repo})
        meta = await self._meta(p.repo, node, p.path, ctx)
        if meta is None:
            raise NotFound(f"{self.id}: {p.path!r} not found at {node!r} in {p.repo}",
                           details={"path": p.path})
        if meta.get("type") != "commit_file":
            raise InvalidRequest(f"{p.path!r} is a directory in {p.repo}", details={"path": p.path})
        # Read the bytes at the commit the metadata names: both describe the same snapshot.
        at = str((meta.get("commit") or {}).get("hash") or node)
        data = await self._raw(p.repo, at, p.path, ctx)
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(data).decode("ascii"), "base64"
        sha = mapping.git_blob_sha(data)
        path = str(meta.get("path") or p.path.strip("/"))
        url = f"{self.web_base}/{p.repo}/src/{at}/{path}"
        return FileContent(provider=self.id, id=f"{sha}:{path}", url=url,
                           path=path, ref=p.ref, sha=sha, size=len(data),
                           encoding="utf-8" if encoding == "utf-8" else "base64", content=text, raw=meta)

    async def put_file(self, p: PutFileParams, ctx: RequestContext) -> FileCommit:
        data = _content(p)
        path = p.path.strip("/")
        branch = p.branch or await self._main_branch(p.repo, ctx)
        tip: str | None = None
        if branch is not None:
            try:
                tip = await self._tip(p.repo, branch, ctx)
            except NotFound:
                if await self._main_branch(p.repo, ctx) is not None:
                    raise NotFound(f"{self.id}: branch {branch!r} not found in {p.repo}",
                                   details={"branch": branch}) from None
        present = await self._meta(p.repo, tip, path, ctx) if tip else None
        if p.sha:
            if present is None or present.get("type") != "commit_file":
                raise NotFound(f"{self.id}: {path!r} does not exist on {branch!r} in {p.repo}; omit sha to "
                               "create it", details={"path": path, "branch": branch})
            assert tip is not None
            current = mapping.git_blob_sha(await self._raw(p.repo, tip, path, ctx))
            if current != p.sha:
                raise Conflict(f"{self.id}: {path!r} on {branch!r} is at blob {current}, not {p.sha}: it "
                               "changed since that sha was read", details={"path": path, "sha": current})
        elif present is not None:
            raise Conflict(f"{self.id}: {path!r} already exists on {branch!r} (pass its current sha to "
                           "update it)", details={"path": path, "branch": branch})
        fields = [forms.Field("/" + path, data, path.rsplit("/", 1)[-1]),
                  forms.Field("message", p.message.encode())]
        if branch is not None:
            fields.append(forms.Field("branch", branch.encode()))
        if tip:
            fields.append(forms.Field("parents", tip.encode()))
        author = _author(p)
        if author:
            fields.append(forms.Field("author", author.encode()))
        body, ctype = forms.encode(fields)
        try:
            response = await self.request("POST", f"{self._repo(p.repo)}/src", ctx=ctx, content=body,
                                          headers={"Content-Type": ctype}, expected=(200, 201))
        except Conflict as exc:
            raise Conflict(f"{exc.message} (branch {branch!r} moved since it was read: re-read the file and "
                           "retry)", details=exc.details) from None
        location = response.headers.get("location", "")
        made_sha = location.rstrip("/").rsplit("/commit/", 1)[1] if "/commit/" in location else None
        if not made_sha:
            # Without a Location, the new commit is the branch tip (a push after ours would show here).
            made_sha = await self._tip(p.repo, branch, ctx) if branch else None
        if not made_sha:
            raise ProviderUnavailable(f"{self.id}: POST /src did not say which commit it made")
        made = await self.get_commit(GetCommitParams(repo=p.repo, sha=made_sha), ctx)
        url = f"{self.web_base}/{p.repo}/src/{made.sha}/{path}"
        return FileCommit(provider=self.id, id=made.sha, url=url,
                          path=path, sha=mapping.git_blob_sha(data), commit=made,
                          raw={"location": location} if location else {})

    # -- commits ----------------------------------------------------------------
    async def list_commits(self, p: ListCommitsParams, ctx: RequestContext) -> Page[Commit]:
        revision = p.ref or await self._main_branch(p.repo, ctx)
        if revision is None:
            return Page[Commit](items=[], next_cursor=None)
        items, following = await self._page(f"{self._repo(p.repo)}/commits/{quote_segment(revision)}", ctx,
                                            limit=p.limit, cursor=p.cursor, params={"path": p.path})
        return Page[Commit](items=[mapping.commit(self.id, c) for c in items], next_cursor=following)

    async def get_commit(self, p: GetCommitParams, ctx: RequestContext) -> Commit:
        body = await self._get(f"{self._repo(p.repo)}/commit/{quote_segment(p.sha)}", ctx)
        return mapping.commit(self.id, body)

    async def compare_commits(self, p: CompareCommitsParams, ctx: RequestContext) -> Comparison:
        root = self._repo(p.repo)
        ahead = await self._collect(f"{root}/commits/{quote_segment(p.head)}", ctx, {"exclude": p.base})
        behind = await self._collect(f"{root}/commits/{quote_segment(p.base)}", ctx, {"exclude": p.head})
        # Bitbucket's `a..b` diffstat is what `a` changed since its merge base with `b`.
        files = await self._collect(f"{root}/diffstat/{quote_segment(f'{p.head}..{p.base}')}", ctx)
        return Comparison(
            provider=self.id, id=f"{p.base}...{p.head}",
            url=f"{self.web_base}/{p.repo}/branches/compare/{quote_segment(p.head)}%0D{quote_segment(p.base)}",
            base=p.base, head=p.head, ahead_by=len(ahead), behind_by=len(behind),
            commits=[mapping.commit(self.id, c) for c in ahead],
            files=[mapping.diffstat(self.id, f) for f in files],
            raw={"ahead": ahead, "behind_count": len(behind), "diffstat": files})

    # -- pull requests ------------------------------------------------------------
    async def create_pull_request(self, p: CreatePullRequestParams, ctx: RequestContext) -> PullRequest:
        body: dict[str, Any] = {"type": "pullrequest", "title": p.title, "description": p.body,
                                "source": {"branch": {"name": p.head}}}
        if p.base is not None:  # without a destination Bitbucket targets the main branch
            body["destination"] = {"branch": {"name": p.base}}
        if p.draft:
            body["draft"] = True
        response = await self.request("POST", f"{self._repo(p.repo)}/pullrequests", ctx=ctx, json=body,
                                      expected=(201,))
        return await self._pull(p.repo, json_body(response), ctx)

    async def get_pull_request(self, p: PullRequestParams, ctx: RequestContext) -> PullRequest:
        return await self._pull(p.repo, await self._get(self._pr(p.repo, p.number), ctx), ctx)

    async def list_pull_requests(self, p: ListPullRequestsParams, ctx: RequestContext) -> Page[PullRequest]:
        states = _LIST_STATES[p.state]
        params = ({"state": states[0]} if len(states) == 1
                  else {"q": " OR ".join(f'state="{s}"' for s in states)})
        items, following = await self._page(f"{self._repo(p.repo)}/pullrequests", ctx, limit=p.limit,
                                            cursor=p.cursor, params=params)
        return Page[PullRequest](items=[mapping.pull_request(self.id, p.repo, i) for i in items],
                                 next_cursor=following)

    async def update_pull_request(self, p: UpdatePullRequestParams, ctx: RequestContext) -> PullRequest:
        path = self._pr(p.repo, p.number)
        current = await self._get(path, ctx)
        if p.state == "open" and current.get("state") != "OPEN":
            raise OperationNotSupported("git.update_pull_request", self.id,
                                        "Bitbucket Cloud cannot reopen a declined or merged pull request")
        body = compact({"title": p.title, "description": p.body,
                        "destination": {"branch": {"name": p.base}} if p.base else None})
        if body:
            response = await self.request("PUT", path, ctx=ctx, json={"type": "pullrequest", **body})
            current = json_body(response)
        if p.state == "closed" and current.get("state") == "OPEN":
            current = json_body(await self.request("POST", f"{path}/decline", ctx=ctx))
        return await self._pull(p.repo, current, ctx)

    async def close_pull_request(self, p: PullRequestParams, ctx: RequestContext) -> PullRequest:
        return await self.update_pull_request(UpdatePullRequestParams(repo=p.repo, number=p.number,
                                                                      state="closed"), ctx)

    async def merge_pull_request(self, p: MergePullRequestParams, ctx: RequestContext) -> MergeResult:
        path = self._pr(p.repo, p.number)
        if p.sha:
            head = str(((await self._get(path, ctx)).get("source") or {}).get("commit", {}).get("hash") or "")
            if not head or not (p.sha.startswith(head) or head.startswith(p.sha)):
                raise Conflict(f"pull request #{p.number} head is {head}, not {p.sha}",
                               details={"number": p.number, "head_sha": head})
        body = compact({"type": "pullrequest_merge_parameters", "message": p.message,
                        "merge_strategy": _MERGE_STRATEGIES[p.strategy], "close_source_branch": False})
        try:
            response = await self.request("POST", f"{path}/merge", ctx=ctx, json=body, expected=(200, 202))
        except InvalidRequest as exc:
            # Bitbucket answers 400 for conflicts, a disallowed strategy, or a non-fast-forward.
            raise Conflict(f"pull request #{p.number} cannot be merged: {exc.message}",
                           details={**exc.details, "number": p.number}) from None
        merged = json_body(response) if response.status_code == 200 else await self._await_merge(path, p, ctx)
        pr = await self._pull(p.repo, merged, ctx)
        sha = pr.merge_sha
        return MergeResult(provider=self.id, id=sha or pr.id, url=pr.url, merged=pr.merged, sha=sha,
                           strategy=p.strategy, message=p.message or pr.title, raw=merged)

    async def _await_merge(self, path: str, p: MergePullRequestParams, ctx: RequestContext) -> dict[str, Any]:
        deadline = time.monotonic() + self.merge_timeout_s
        while True:
            current: dict[str, Any] = await self._get(path, ctx)
            if current.get("state") != "OPEN":
                return current
            remaining = ctx.remaining()
            if time.monotonic() >= deadline or (remaining is not None and remaining <= self.merge_poll_s):
                raise Timeout(f"{self.id}: the merge of pull request #{p.number} is still running",
                              details={"number": p.number})
            await asyncio.sleep(self.merge_poll_s)

    async def list_pull_request_files(self, p: ListPullRequestFilesParams,
                                      ctx: RequestContext) -> Page[FileChange]:
        pr = await self._get(self._pr(p.repo, p.number), ctx)
        source = ((pr.get("source") or {}).get("commit") or {}).get("hash")
        destination = ((pr.get("destination") or {}).get("commit") or {}).get("hash")
        if not source or not destination:
            raise ProviderUnavailable(f"{self.id}: pull request #{p.number} has no source/destination commit")
        # What Bitbucket's own /pullrequests/{id}/diffstat redirects to: source against the merge base.
        spec = quote_segment(f"{source}..{destination}")
        items, following = await self._page(f"{self._repo(p.repo)}/diffstat/{spec}", ctx, limit=p.limit,
                                            cursor=p.cursor)
        return Page[FileChange](items=[mapping.diffstat(self.id, f) for f in items], next_cursor=following)

    # -- reviews ------------------------------------------------------------------------
    async def _comment(self, p: ReviewPullRequestParams, ctx: RequestContext) -> dict[str, Any]:
        response = await self.request("POST", f"{self._pr(p.repo, p.number)}/comments", ctx=ctx,
                                      json={"type": "pullrequest_comment", "content": {"raw": p.body}},
                                      expected=(201,))
        made: dict[str, Any] = json_body(response)
        return made

    async def review_pull_request(self, p: ReviewPullRequestParams, ctx: RequestContext) -> Review:
        if p.event == "comment":
            if not p.body.strip():
                raise InvalidRequest("a comment review needs a body", details={"field": "body"})
            return mapping.comment_review(self.id, p.number, await self._comment(p, ctx))
        if p.body.strip():
            await self._comment(p, ctx)
        action = "approve" if p.event == "approve" else "request-changes"
        response = await self.request("POST", f"{self._pr(p.repo, p.number)}/{action}", ctx=ctx,
                                      expected=(200,))
        participant = json_body(response)
        kind: Literal["approved", "changes_requested"] = (
            "approved" if p.event == "approve" else "changes_requested")
        review = mapping.participant_review(self.id, p.number, None, {**participant, "state": kind},
                                            body=p.body)
        assert review is not None
        return review.model_copy(update={"raw": participant})

    async def list_reviews(self, p: ListReviewsParams, ctx: RequestContext) -> Page[Review]:
        pr = await self._get(self._pr(p.repo, p.number), ctx)
        pr_url = ((pr.get("links") or {}).get("html") or {}).get("href")
        verdicts = [mapping.participant_review(self.id, p.number, pr_url, x)
                    for x in pr.get("participants") or [] if isinstance(x, dict)]
        items, following = _slice_page([v for v in verdicts if v is not None], limit=p.limit, cursor=p.cursor)
        return Page[Review](items=items, next_cursor=following)

    # -- statuses -------------------------------------------------------------------------
    async def set_commit_status(self, p: SetCommitStatusParams, ctx: RequestContext) -> CommitStatus:
        body = compact({"type": "build", "key": p.context, "name": p.context, "state": _STATUS_OUT[p.state],
                        "description": p.description or None,
                        "url": p.target_url or f"{self.web_base}/{p.repo}/commits/{p.sha}"})
        path = f"{self._repo(p.repo)}/commit/{quote_segment(p.sha)}/statuses/build"
        response = await self.request("POST", path, ctx=ctx, json=body, expected=(200, 201))
        return mapping.commit_status(self.id, p.sha, json_body(response))

    async def list_commit_statuses(self, p: ListCommitStatusesParams,
                                   ctx: RequestContext) -> Page[CommitStatus]:
        path = f"{self._repo(p.repo)}/commit/{quote_segment(p.ref)}/statuses"
        items, following = await self._page(path, ctx, limit=p.limit, cursor=p.cursor)
        return Page[CommitStatus](items=[mapping.commit_status(self.id, p.ref, s) for s in items],
                                  next_cursor=following)


T = TypeVar("T")


def _slice_page(items: list[T], *, limit: int, cursor: str | None) -> tuple[list[T], str | None]:
    """One page of a list assembled in memory; the cursor is an offset into it. (The same helper as
    GitLab's ``slice_page``; a candidate for the shared ``http_pagination``.)"""
    offset = 0
    if cursor:
        raw = decode_cursor(cursor, frozenset({"offset"}))["offset"]
        if not raw.isdigit():
            raise InvalidRequest("cursor is not valid: pass the next_cursor of a previous page unchanged",
                                 details={"field": "cursor"})
        offset = int(raw)
    end = offset + limit
    return items[offset:end], encode_cursor({"offset": str(end)}) if end < len(items) else None


def _content(p: PutFileParams) -> bytes:
    if p.encoding == "utf-8":
        return p.content.encode("utf-8")
    try:
        return base64.b64decode(p.content, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("content is not valid base64", details={"field": "content"}) from None


def _author(p: PutFileParams) -> str | None:
    """The ``author`` form field, ``"Name <email>"``; Bitbucket needs the email to attribute a commit."""
    if p.author_name is None and p.author_email is None:
        return None
    if not p.author_email:
        raise InvalidRequest("Bitbucket needs author_email to set a commit's author",
                             details={"field": "author_email"})
    name = (p.author_name or p.author_email).replace("<", "").replace(">", "").strip()
    return f"{name} <{p.author_email.strip()}>"
