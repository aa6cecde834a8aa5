"""The embedded ``local`` git provider: real bare repositories on disk, no account needed.

Repositories live at ``<dataDir>/git/<owner>/<name>.git`` and are written with git
plumbing only (see :mod:`.git_repo`); pull requests, reviews and statuses live in
``<dataDir>/git/meta.sqlite3`` (see :mod:`.git_meta`). Two instances with different data
dirs share nothing. Archived repositories are read-only (writes raise ``Forbidden``), as
on the hosted forges.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mosaic.catalog.base import Deleted, Page, check_name
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
    UpdatePullRequestParams,
    UpdateRepositoryParams,
)
from mosaic.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    InvalidRequest,
    MosaicError,
    NotFound,
    ProviderUnavailable,
)
from mosaic.gateway.context import RequestContext
from mosaic.plugins.contract import HealthStatus, ProviderPlugin
from mosaic.providers.local.git_merge import MergeOutcome, merge_commits
from mosaic.providers.local.git_meta import GitMetaStore, PullRow, ReviewRow, ReviewState, StatusRow, now
from mosaic.providers.local.git_names import check_branch, check_path, check_rev
from mosaic.providers.local.git_repo import BareRepo, CommitInfo, DiffEntry
from mosaic.providers.local.git_store import RepoMeta, RepoStore, is_owner_name
from mosaic.providers.local.gitcli import GitCli, Identity

# How often put_file re-applies a write whose branch moved underneath it before giving up.
_PUT_ATTEMPTS = 3
# Most commits a comparison lists (GitHub's limit too).
_COMPARE_COMMITS = 250
_REVIEW_STATES: dict[str, ReviewState] = {
    "approve": "approved", "request_changes": "changes_requested", "comment": "commented"}


class LocalGitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    data_dir: Path = Field(alias="dataDir", description="Directory holding repositories and metadata.")
    base_url: str | None = Field(
        default=None, alias="baseUrl",
        description="Web base for `url` fields, e.g. 'http://localhost:8080/git'; default: file:// URLs.")
    default_owner: str = Field(default="local", alias="defaultOwner",
                               description="Owner of repositories created without one.")
    command_timeout: float = Field(default=60.0, gt=0, alias="commandTimeout",
                                   description="Seconds one git command may take.")

    @field_validator("default_owner")
    @classmethod
    def _owner(cls, v: str) -> str:
        check_name(v)
        if not is_owner_name(v):
            raise ValueError(f"{v!r} is reserved")
        return v

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str | None) -> str | None:
        return v.rstrip("/") if v else None


@dataclass(frozen=True, slots=True)
class _Repo:
    owner: str
    name: str
    path: Path
    meta: RepoMeta
    default_branch: str
    git: BareRepo

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class LocalGitPlugin(ProviderPlugin):
    provider: ClassVar[str] = "local"
    service = "git"
    name: ClassVar[str] = "Local git"
    version: ClassVar[str] = "0.1.0"
    Config: ClassVar[type[BaseModel]] = LocalGitConfig
    unsupported: ClassVar[dict[str, str]] = {"passthrough": "the local provider has no remote API"}
    notes: ClassVar[dict[str, str]] = {
        "merge_branch": "strategy 'merge' always makes a merge commit, never a fast-forward",
        "merge_pull_request": "strategy 'merge' always makes a merge commit, never a fast-forward",
        "set_commit_status": "one status per (commit, context): setting it again replaces it",
        "list_pull_requests": "mergeable is null in lists; get_pull_request computes it",
        "put_file": "a write that loses a race for the branch is re-checked against the new tip",
    }

    def __init__(self, plugin_id: str) -> None:
        super().__init__(plugin_id)
        self._cfg: LocalGitConfig | None = None
        self._store: RepoStore | None = None
        self._cli: GitCli | None = None
        self._meta: GitMetaStore | None = None
        self._git_version: str | None = None
        # Serialises state transitions of one repository's pull requests and metadata in
        # this process; across processes the ref compare-and-swap still guards the branches.
        self._locks: dict[str, asyncio.Lock] = {}

    # -- lifecycle ------------------------------------------------------------
    async def initialize(self, config: BaseModel) -> None:
        if not isinstance(config, LocalGitConfig):
            try:
                config = LocalGitConfig.model_validate(config.model_dump(by_alias=True))
            except ValidationError as exc:
                raise ConfigError([f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                   for e in exc.errors()]) from None
        await super().initialize(config)
        self._cfg = config

    async def start(self) -> None:
        cfg = self._require_config()
        # Absolute, so file:// URLs are valid whatever the working directory was.
        store = RepoStore(cfg.data_dir.expanduser().absolute() / "git")
        try:
            await asyncio.to_thread(store.prepare)
        except OSError as exc:
            raise ProviderUnavailable(f"cannot create the git data directory {store.root}: {exc.strerror}",
                                      sent=False) from None
        cli = GitCli(store.home, timeout=cfg.command_timeout)
        try:
            self._git_version = await cli.version()
        except (OSError, MosaicError) as exc:
            raise ProviderUnavailable(f"the git executable does not work: {exc}", sent=False) from None
        if self._meta is None or not self._meta.is_open:
            self._meta = GitMetaStore(store.root / "meta.sqlite3")
            await self._meta.open()
        self._store, self._cli = store, cli
        await super().start()

    async def dispose(self) -> None:
        if self._meta is not None:
            await self._meta.close()
            self._meta = None
        await super().dispose()

    async def health_check(self) -> HealthStatus:
        t0 = time.perf_counter()
        if not self.started or self._store is None or self._meta is None or not self._meta.is_open:
            return HealthStatus(status="unhealthy", detail="not started")
        problems: list[str] = []
        if not os.access(self._store.root, os.W_OK | os.X_OK):
            problems.append(f"data directory {self._store.root} is not writable")
        if self._git_version is None:
            problems.append("git is not available")
        latency = (time.perf_counter() - t0) * 1000
        if problems:
            return HealthStatus(status="unhealthy", detail="; ".join(problems), latency_ms=latency)
        return HealthStatus(status="healthy", detail=self._git_version or "", latency_ms=latency)

    def metrics(self) -> dict[str, Any]:
        out = super().metrics()
        out["git_version"] = self._git_version
        return out

    # -- repositories -----------------------------------------------------------
    async def create_repository(self, p: CreateRepositoryParams, ctx: RequestContext) -> Repository:
        store, cli, _ = self._require()
        owner = p.owner or self._require_config().default_owner
        _check_owner(owner)
        branch = check_branch(p.default_branch, what="default_branch")
        if await asyncio.to_thread(store.exists, owner, p.name):
            raise Conflict(f"repository {owner}/{p.name} already exists",
                           details={"repo": f"{owner}/{p.name}"})
        staged = store.staging_dir()
        try:
            await cli.run(["init", "--bare", "--quiet", "--template=", f"--initial-branch={branch}",
                           str(staged)])
            await asyncio.to_thread(store.write_meta, staged, RepoMeta.new(description=p.description,
                                                                           private=p.private))
            if p.auto_init:
                git = BareRepo(cli, staged, store.tmp)
                readme = f"# {p.name}\n" + (f"\n{p.description}\n" if p.description else "")
                blob = await git.write_blob(readme.encode())
                tree = await git.tree_with_file(None, "README.md", "100644", blob)
                commit = await git.commit_tree(tree, [], "Initial commit\n")
                await git.update_ref(f"refs/heads/{branch}", commit, None, "create repository")
            if not await asyncio.to_thread(store.publish, staged, owner, p.name):
                raise Conflict(f"repository {owner}/{p.name} already exists",
                               details={"repo": f"{owner}/{p.name}"})
        finally:
            await asyncio.to_thread(store.discard, staged)
        return self._repository(await self._open(f"{owner}/{p.name}"))

    async def get_repository(self, p: GetRepositoryParams, ctx: RequestContext) -> Repository:
        return self._repository(await self._open(p.repo))

    async def update_repository(self, p: UpdateRepositoryParams, ctx: RequestContext) -> Repository:
        store, _, _ = self._require()
        r = await self._open(p.repo)
        async with self._lock(r):
            r = await self._open(p.repo)
            # Check everything before changing anything, so a refused update changes nothing.
            new_name = p.new_name if p.new_name is not None and p.new_name != r.name else None
            if new_name is not None and await asyncio.to_thread(store.exists, r.owner, new_name):
                raise Conflict(f"cannot rename {r.full_name}: {r.owner}/{p.new_name} already exists",
                               details={"repo": r.full_name, "new_name": p.new_name})
            branch = None
            if p.default_branch is not None and p.default_branch != r.default_branch:
                branch = check_branch(p.default_branch, what="default_branch")
                if await r.git.has_commits() and await r.git.branch_sha(branch) is None:
                    raise NotFound(f"branch {branch!r} not found in {r.full_name}",
                                   details={"repo": r.full_name, "branch": branch})
            if branch is not None:
                await r.git.set_head(branch)
            changes = {k: v for k, v in (("description", p.description), ("private", p.private),
                                         ("archived", p.archived)) if v is not None}
            meta = r.meta.changed(**changes)
            await asyncio.to_thread(store.write_meta, r.path, meta)
            full_name = r.full_name
            if new_name is not None:
                if not await asyncio.to_thread(store.rename, r.owner, r.name, new_name):
                    raise Conflict(f"cannot rename {r.full_name}: {r.owner}/{new_name} already exists",
                                   details={"repo": r.full_name, "new_name": new_name})
                full_name = f"{r.owner}/{new_name}"
        return self._repository(await self._open(full_name))

    async def delete_repository(self, p: DeleteRepositoryParams, ctx: RequestContext) -> Deleted:
        store, _, meta = self._require()
        r = await self._open(p.repo)
        async with self._lock(r):
            try:
                await asyncio.to_thread(store.delete, r.owner, r.name)
            except FileNotFoundError:
                raise self._repo_not_found(p.repo) from None
            await meta.delete_repository(r.meta.id)
        self._locks.pop(r.meta.id, None)
        return Deleted(provider=self.id, id=r.meta.id)

    async def list_repositories(self, p: ListRepositoriesParams, ctx: RequestContext) -> Page[Repository]:
        store, cli, _ = self._require()
        if p.owner is not None:
            _check_owner(p.owner)
        offset = _offset(p.cursor)
        names = await asyncio.to_thread(store.list, p.owner)
        items: list[Repository] = []
        for owner, name in names[offset:offset + p.limit]:
            path = store.path(owner, name)
            try:
                meta, head = await asyncio.to_thread(store.load, path)
            except OSError:
                continue  # deleted while we listed
            items.append(self._repository(_Repo(owner, name, path, meta, head,
                                                BareRepo(cli, path, store.tmp))))
        return Page[Repository](items=items, next_cursor=_next(offset, p.limit, len(names)))

    # -- branches ---------------------------------------------------------------
    async def create_branch(self, p: CreateBranchParams, ctx: RequestContext) -> Branch:
        r = await self._open_writable(p.repo)
        branch = check_branch(p.branch)
        source = check_rev(p.from_ref, what="from_ref") if p.from_ref else r.default_branch
        sha = await self._resolve(r, source)
        if not await r.git.update_ref(f"refs/heads/{branch}", sha, None, f"create branch from {source}"):
            raise Conflict(f"branch {branch!r} already exists in {r.full_name}",
                           details={"repo": r.full_name, "branch": branch})
        return self._branch(r, branch, sha)

    async def get_branch(self, p: BranchParams, ctx: RequestContext) -> Branch:
        r = await self._open(p.repo)
        branch = check_branch(p.branch)
        return self._branch(r, branch, await self._branch_sha(r, branch))

    async def list_branches(self, p: ListBranchesParams, ctx: RequestContext) -> Page[Branch]:
        r = await self._open(p.repo)
        offset = _offset(p.cursor)
        branches = await r.git.branches()
        items = [self._branch(r, name, sha) for name, sha in branches[offset:offset + p.limit]]
        return Page[Branch](items=items, next_cursor=_next(offset, p.limit, len(branches)))

    async def delete_branch(self, p: BranchParams, ctx: RequestContext) -> Deleted:
        r = await self._open_writable(p.repo)
        branch = check_branch(p.branch)
        if branch == r.default_branch:
            raise Conflict(f"cannot delete {branch!r}: it is the default branch of {r.full_name}",
                           details={"repo": r.full_name, "branch": branch})
        sha = await self._branch_sha(r, branch)
        if not await r.git.delete_ref(f"refs/heads/{branch}", sha):
            raise Conflict(f"branch {branch!r} moved while being deleted; try again",
                           details={"repo": r.full_name, "branch": branch})
        return Deleted(provider=self.id, id=f"{r.full_name}:{branch}")

    async def merge_branch(self, p: MergeBranchParams, ctx: RequestContext) -> MergeResult:
        r = await self._open_writable(p.repo)
        base = check_branch(p.base, what="base")
        head = check_rev(p.head, what="head")
        base_sha = await self._branch_sha(r, base)
        head_sha = await self._resolve(r, head)
        message = p.message or await self._default_message(r, p.strategy, base_sha, head_sha,
                                                           f"Merge {head} into {base}")
        outcome = await merge_commits(r.git, base_sha, head_sha, p.strategy, _terminated(message))
        await self._publish(r, base, base_sha, outcome)
        return self._merge_result(r, outcome, p.strategy)

    # -- files and commits --------------------------------------------------------
    async def get_file(self, p: GetFileParams, ctx: RequestContext) -> FileContent:
        r = await self._open(p.repo)
        path = check_path(p.path)
        ref = check_rev(p.ref) if p.ref else r.default_branch
        sha = await self._resolve(r, ref)
        entry = await r.git.entry(sha, path)
        if entry is None:
            raise NotFound(f"file {path!r} not found at {ref!r} in {r.full_name}",
                           details={"repo": r.full_name, "path": path, "ref": ref})
        if entry.type != "blob":
            raise InvalidRequest(f"{path!r} is a {'directory' if entry.type == 'tree' else entry.type}, "
                                 "not a file", details={"repo": r.full_name, "path": path})
        data = await r.git.read_blob(entry.sha)
        try:
            content, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            content, encoding = base64.b64encode(data).decode("ascii"), "base64"
        return FileContent(provider=self.id, id=f"{sha}:{path}", url=self._url(r, "blob", ref, path),
                           path=path, ref=ref, sha=entry.sha, size=len(data), encoding=encoding,
                           content=content, raw={"mode": entry.mode, "type": entry.type, "sha": entry.sha,
                                                 "commit": sha, "size": len(data)})

    async def put_file(self, p: PutFileParams, ctx: RequestContext) -> FileCommit:
        r = await self._open_writable(p.repo)
        path = check_path(p.path)
        branch = check_branch(p.branch) if p.branch else r.default_branch
        data = _decode_content(p.content, p.encoding)
        author = _identity(p.author_name, p.author_email)
        message = _terminated(p.message)
        expected = p.sha.lower() if p.sha else None
        blob = await r.git.write_blob(data)
        for _ in range(_PUT_ATTEMPTS):
            parent = await r.git.branch_sha(branch)
            if parent is None and await r.git.has_commits():
                raise NotFound(f"branch {branch!r} not found in {r.full_name}",
                               details={"repo": r.full_name, "branch": branch})
            current = await r.git.entry(parent, path) if parent else None
            if current is not None and current.type != "blob":
                raise Conflict(f"{path!r} is a directory on {branch!r}", details={"path": path})
            if current is None and expected is not None:
                raise Conflict(f"{path!r} does not exist on {branch!r}: it cannot be updated from sha "
                               f"{expected}", details={"path": path, "sha": expected})
            if current is not None and expected is None:
                raise Conflict(f"{path!r} already exists on {branch!r}; pass its current sha to update it",
                               details={"path": path, "current_sha": current.sha})
            if current is not None and current.sha != expected:
                raise Conflict(f"{path!r} changed on {branch!r}: sha {expected} is stale, the file is now "
                               f"at {current.sha}", details={"path": path, "sha": expected,
                                                             "current_sha": current.sha})
            mode = current.mode if current is not None else "100644"
            tree = await r.git.tree_with_file(parent, path, mode, blob)
            commit = await r.git.commit_tree(tree, [parent] if parent else [], message, author=author)
            # Compare-and-swap: if the branch moved since we read it, nothing is overwritten;
            # the write is re-checked against the new tip (whose file sha decides).
            if await r.git.update_ref(f"refs/heads/{branch}", commit, parent, f"put_file {path}"):
                info = await r.git.commit_info(commit)
                return FileCommit(provider=self.id, id=commit, url=self._url(r, "blob", branch, path),
                                  path=path, sha=blob, commit=self._commit(r, info),
                                  raw={"blob": blob, "tree": tree, "commit": commit, "branch": branch,
                                       "parent": parent})
        raise Conflict(f"branch {branch!r} kept moving while writing {path!r}; try again",
                       details={"path": path, "branch": branch})

    async def list_commits(self, p: ListCommitsParams, ctx: RequestContext) -> Page[Commit]:
        r = await self._open(p.repo)
        offset = _offset(p.cursor)
        path = check_path(p.path) if p.path is not None else None
        if p.ref is None and not await r.git.has_commits():
            return Page[Commit](items=[])
        sha = await self._resolve(r, check_rev(p.ref) if p.ref else r.default_branch)
        infos = await r.git.log(sha, path=path, skip=offset, max_count=p.limit + 1)
        items = [self._commit(r, c) for c in infos[:p.limit]]
        return Page[Commit](items=items, next_cursor=str(offset + p.limit) if len(infos) > p.limit else None)

    async def get_commit(self, p: GetCommitParams, ctx: RequestContext) -> Commit:
        r = await self._open(p.repo)
        sha = await self._resolve(r, check_rev(p.sha, what="sha"))
        return self._commit(r, await r.git.commit_info(sha))

    async def compare_commits(self, p: CompareCommitsParams, ctx: RequestContext) -> Comparison:
        r = await self._open(p.repo)
        base_sha = await self._resolve(r, check_rev(p.base, what="base"))
        head_sha = await self._resolve(r, check_rev(p.head, what="head"))
        merge_base = await r.git.merge_base(base_sha, head_sha)
        ahead, behind, commits, files = await asyncio.gather(
            r.git.count(base_sha, head_sha), r.git.count(head_sha, base_sha),
            r.git.log(head_sha, f"^{base_sha}", max_count=_COMPARE_COMMITS, extra=("--topo-order",)),
            r.git.diff(merge_base or base_sha, head_sha))
        commits.reverse()  # oldest first, as the forges list them
        return Comparison(provider=self.id, id=f"{base_sha}...{head_sha}",
                          url=self._url(r, "compare", f"{p.base}...{p.head}"),
                          base=p.base, head=p.head, merge_base=merge_base, ahead_by=ahead, behind_by=behind,
                          commits=[self._commit(r, c) for c in commits],
                          files=[_file(self.id, f) for f in files],
                          raw={"base_sha": base_sha, "head_sha": head_sha, "merge_base": merge_base})

    # -- pull requests ------------------------------------------------------------
    async def create_pull_request(self, p: CreatePullRequestParams, ctx: RequestContext) -> PullRequest:
        _, _, meta = self._require()
        r = await self._open_writable(p.repo)
        head = check_branch(p.head, what="head")
        base = check_branch(p.base, what="base") if p.base else r.default_branch
        if head == base:
            raise InvalidRequest(f"head and base are both {head!r}: a pull request needs two branches",
                                 details={"head": head, "base": base})
        head_sha = await self._branch_sha(r, head)
        base_sha = await self._branch_sha(r, base)
        row = await meta.create_pull(r.meta.id, title=p.title, body=p.body, head=head, base=base,
                                     author=ctx.principal.id, draft=p.draft, head_sha=head_sha,
                                     base_sha=base_sha)
        return await self._pull_request(r, row, with_mergeable=True)

    async def get_pull_request(self, p: PullRequestParams, ctx: RequestContext) -> PullRequest:
        r = await self._open(p.repo)
        return await self._pull_request(r, await self._pull(r, p.number), with_mergeable=True)

    async def list_pull_requests(self, p: ListPullRequestsParams, ctx: RequestContext) -> Page[PullRequest]:
        """Newest first. ``mergeable`` is left unknown in lists (as GitHub does): get one to compute it."""
        _, _, meta = self._require()
        r = await self._open(p.repo)
        offset = _offset(p.cursor)
        rows = await meta.list_pulls(r.meta.id, p.state, offset, p.limit + 1)
        items = [await self._pull_request(r, row) for row in rows[:p.limit]]
        return Page[PullRequest](items=items,
                                 next_cursor=str(offset + p.limit) if len(rows) > p.limit else None)

    async def update_pull_request(self, p: UpdatePullRequestParams, ctx: RequestContext) -> PullRequest:
        _, _, meta = self._require()
        r = await self._open_writable(p.repo)
        async with self._lock(r):
            row = await self._pull(r, p.number)
            fields: dict[str, Any] = {k: v for k, v in (("title", p.title), ("body", p.body))
                                      if v is not None}
            if p.title is not None and not p.title:
                raise InvalidRequest("title must not be empty", details={"title": p.title})
            if row.state == "merged" and (p.base is not None or p.state is not None):
                raise Conflict(f"pull request #{p.number} is merged: its base and state cannot change",
                               details={"number": p.number})
            if p.base is not None and p.base != row.base:
                base = check_branch(p.base, what="base")
                if base == row.head:
                    raise InvalidRequest(f"base {base!r} is the head branch", details={"base": base})
                fields["base"] = base
                fields["base_sha"] = await self._branch_sha(r, base)
            if p.state is not None and p.state != row.state:
                fields["state"] = p.state
                fields["closed_at"] = now() if p.state == "closed" else None
                if p.state == "closed":
                    fields.update(await self._frozen_shas(r, row))
                elif await r.git.branch_sha(row.head) is None:
                    raise Conflict(f"cannot reopen #{p.number}: its head branch {row.head!r} is gone",
                                   details={"number": p.number, "head": row.head})
            updated = row
            if fields:
                updated = await meta.update_pull(r.meta.id, p.number, expect_state=(row.state,), **fields) \
                    or await self._pull(r, p.number)
        return await self._pull_request(r, updated, with_mergeable=True)

    async def close_pull_request(self, p: PullRequestParams, ctx: RequestContext) -> PullRequest:
        _, _, meta = self._require()
        r = await self._open_writable(p.repo)
        async with self._lock(r):
            row = await self._pull(r, p.number)
            if row.state == "merged":
                raise Conflict(f"pull request #{p.number} is already merged", details={"number": p.number})
            if row.state == "open":
                row = await meta.update_pull(r.meta.id, p.number, expect_state=("open",), state="closed",
                                             closed_at=now(), **await self._frozen_shas(r, row)) \
                    or await self._pull(r, p.number)
        return await self._pull_request(r, row)

    async def merge_pull_request(self, p: MergePullRequestParams, ctx: RequestContext) -> MergeResult:
        _, _, meta = self._require()
        r = await self._open_writable(p.repo)
        async with self._lock(r):
            row = await self._pull(r, p.number)
            if row.state != "open":
                raise Conflict(f"pull request #{p.number} is already {row.state}",
                               details={"number": p.number, "state": row.state, "merge_sha": row.merge_sha})
            head_sha = await r.git.branch_sha(row.head)
            base_sha = await r.git.branch_sha(row.base)
            if head_sha is None or base_sha is None:
                gone = row.head if head_sha is None else row.base
                raise Conflict(f"cannot merge #{p.number}: branch {gone!r} no longer exists",
                               details={"number": p.number, "branch": gone})
            if p.sha is not None and not _same_sha(p.sha, head_sha):
                raise Conflict(f"head of #{p.number} moved: it is at {head_sha}, not {p.sha}",
                               details={"number": p.number, "sha": p.sha, "head_sha": head_sha})
            title = f"Merge pull request #{p.number} from {row.head}\n\n{row.title}"
            if p.strategy == "squash":
                title = f"{row.title} (#{p.number})"
            message = p.message or await self._default_message(r, p.strategy, base_sha, head_sha, title,
                                                               body=row.body)
            outcome = await merge_commits(r.git, base_sha, head_sha, p.strategy, _terminated(message))
            await self._publish(r, row.base, base_sha, outcome)
            ts = now()
            await meta.update_pull(r.meta.id, p.number, expect_state=("open",), state="merged",
                                   merge_sha=outcome.sha, head_sha=head_sha, base_sha=base_sha,
                                   merged_at=ts, closed_at=ts)
        merged = MergeOutcome(outcome.sha, True, outcome.message, outcome.created)
        return self._merge_result(r, merged, p.strategy, pull=p.number)

    async def list_pull_request_files(self, p: ListPullRequestFilesParams,
                                      ctx: RequestContext) -> Page[FileChange]:
        r = await self._open(p.repo)
        row = await self._pull(r, p.number)
        base_sha, head_sha = await self._pull_shas(r, row)
        if base_sha is None or head_sha is None:
            raise NotFound(f"the branches of #{p.number} no longer exist", details={"number": p.number})
        merge_base = await r.git.merge_base(base_sha, head_sha)
        files = await r.git.diff(merge_base or base_sha, head_sha)
        offset = _offset(p.cursor)
        return Page[FileChange](items=[_file(self.id, f) for f in files[offset:offset + p.limit]],
                                next_cursor=_next(offset, p.limit, len(files)))

    async def review_pull_request(self, p: ReviewPullRequestParams, ctx: RequestContext) -> Review:
        _, _, meta = self._require()
        r = await self._open_writable(p.repo)
        row = await self._pull(r, p.number)
        if row.state != "open":
            raise Conflict(f"pull request #{p.number} is {row.state}: it can no longer be reviewed",
                           details={"number": p.number, "state": row.state})
        _, head_sha = await self._pull_shas(r, row)
        review = await meta.add_review(r.meta.id, p.number, state=_REVIEW_STATES[p.event], body=p.body,
                                       author=ctx.principal.id, commit_sha=head_sha)
        return self._review(r, review)

    async def list_reviews(self, p: ListReviewsParams, ctx: RequestContext) -> Page[Review]:
        _, _, meta = self._require()
        r = await self._open(p.repo)
        await self._pull(r, p.number)
        offset = _offset(p.cursor)
        rows = await meta.list_reviews(r.meta.id, p.number, offset, p.limit + 1)
        return Page[Review](items=[self._review(r, row) for row in rows[:p.limit]],
                            next_cursor=str(offset + p.limit) if len(rows) > p.limit else None)

    # -- statuses -----------------------------------------------------------------
    async def set_commit_status(self, p: SetCommitStatusParams, ctx: RequestContext) -> CommitStatus:
        """One status per (commit, context): setting a context again replaces its state."""
        _, _, meta = self._require()
        r = await self._open_writable(p.repo)
        if not p.context:
            raise InvalidRequest("context must not be empty", details={"context": p.context})
        sha = await self._resolve(r, check_rev(p.sha, what="sha"))
        row = await meta.set_status(r.meta.id, sha, context=p.context, state=p.state,
                                    description=p.description, target_url=p.target_url)
        return _status(self.id, row)

    async def list_commit_statuses(self, p: ListCommitStatusesParams,
                                   ctx: RequestContext) -> Page[CommitStatus]:
        """Newest first."""
        _, _, meta = self._require()
        r = await self._open(p.repo)
        sha = await self._resolve(r, check_rev(p.ref))
        offset = _offset(p.cursor)
        rows = await meta.list_statuses(r.meta.id, sha, offset, p.limit + 1)
        return Page[CommitStatus](items=[_status(self.id, row) for row in rows[:p.limit]],
                                  next_cursor=str(offset + p.limit) if len(rows) > p.limit else None)

    # -- internals ----------------------------------------------------------------
    def _require_config(self) -> LocalGitConfig:
        if self._cfg is None:
            raise ProviderUnavailable(f"provider {self.id!r} is not initialized", sent=False)
        return self._cfg

    def _require(self) -> tuple[RepoStore, GitCli, GitMetaStore]:
        if not self.started or self._store is None or self._cli is None or self._meta is None:
            raise ProviderUnavailable(f"provider {self.id!r} is not started", sent=False)
        return self._store, self._cli, self._meta

    def _lock(self, r: _Repo) -> asyncio.Lock:
        return self._locks.setdefault(r.meta.id, asyncio.Lock())

    async def _open(self, repo: str) -> _Repo:
        store, cli, _ = self._require()
        parts = repo.split("/")
        if len(parts) != 2:
            raise InvalidRequest(f"the local provider has no subgroups: expected 'owner/name', got {repo!r}",
                                 details={"repo": repo})
        owner, name = parts
        if not is_owner_name(owner) or not await asyncio.to_thread(store.exists, owner, name):
            raise self._repo_not_found(repo)
        path = store.path(owner, name)
        try:
            meta, head = await asyncio.to_thread(store.load, path)
        except OSError:
            raise self._repo_not_found(repo) from None
        return _Repo(owner, name, path, meta, head, BareRepo(cli, path, store.tmp))

    async def _open_writable(self, repo: str) -> _Repo:
        r = await self._open(repo)
        if r.meta.archived:
            raise Forbidden(f"repository {r.full_name} is archived and read-only", details={"repo": repo})
        return r

    @staticmethod
    def _repo_not_found(repo: str) -> NotFound:
        return NotFound(f"repository {repo} not found", details={"repo": repo})

    async def _resolve(self, r: _Repo, rev: str) -> str:
        sha = await r.git.resolve(rev)
        if sha is None:
            raise NotFound(f"ref {rev!r} not found in {r.full_name}",
                           details={"repo": r.full_name, "ref": rev})
        return sha

    async def _branch_sha(self, r: _Repo, branch: str) -> str:
        sha = await r.git.branch_sha(branch)
        if sha is None:
            raise NotFound(f"branch {branch!r} not found in {r.full_name}",
                           details={"repo": r.full_name, "branch": branch})
        return sha

    async def _pull(self, r: _Repo, number: int) -> PullRow:
        _, _, meta = self._require()
        row = await meta.get_pull(r.meta.id, number)
        if row is None:
            raise NotFound(f"pull request #{number} not found in {r.full_name}",
                           details={"repo": r.full_name, "number": number})
        return row

    async def _pull_shas(self, r: _Repo, row: PullRow) -> tuple[str | None, str | None]:
        """Base and head tips: live while open, as they were when it was closed or merged."""
        base, head, _ = await self._pull_tips(r, row)
        return base, head

    async def _pull_tips(self, r: _Repo, row: PullRow) -> tuple[str | None, str | None, bool]:
        """Like :meth:`_pull_shas`, plus whether both are live branch tips (not remembered shas)."""
        if row.state != "open":
            return row.base_sha, row.head_sha, False
        base, head = await asyncio.gather(r.git.branch_sha(row.base), r.git.branch_sha(row.head))
        return base or row.base_sha, head or row.head_sha, base is not None and head is not None

    async def _frozen_shas(self, r: _Repo, row: PullRow) -> dict[str, str | None]:
        base, head = await self._pull_shas(r, row)
        return {"base_sha": base, "head_sha": head}

    async def _publish(self, r: _Repo, branch: str, old: str, outcome: MergeOutcome) -> None:
        if outcome.merged and not await r.git.update_ref(f"refs/heads/{branch}", outcome.sha, old,
                                                         "merge"):
            raise Conflict(f"branch {branch!r} moved while merging; nothing was merged, try again",
                           details={"repo": r.full_name, "branch": branch})

    async def _default_message(self, r: _Repo, strategy: MergeStrategy, base_sha: str, head_sha: str,
                               title: str, *, body: str = "") -> str:
        if strategy != "squash" or body:
            return f"{title}\n\n{body}" if body else title
        commits = await r.git.log(head_sha, f"^{base_sha}", extra=("--reverse", "--no-merges"))
        lines = "\n".join(f"* {c.message.splitlines()[0] if c.message else c.sha[:12]}" for c in commits)
        return f"{title}\n\n{lines}" if lines else title

    # -- builders -------------------------------------------------------------
    def _url(self, r: _Repo, *parts: str) -> str | None:
        base = self._require_config().base_url
        if base is None:
            return None if parts else r.path.as_uri()
        return "/".join([base, quote(r.owner), quote(r.name), *(quote(x) for x in parts)])

    def _repository(self, r: _Repo) -> Repository:
        m = r.meta
        return Repository(provider=self.id, id=m.id, url=self._url(r), owner=r.owner, name=r.name,
                          full_name=r.full_name, description=m.description, private=m.private,
                          default_branch=r.default_branch, clone_url=r.path.as_uri(), archived=m.archived,
                          created_at=_dt(m.created_at), updated_at=_dt(m.updated_at),
                          raw={**m.record(), "path": str(r.path), "default_branch": r.default_branch})

    def _branch(self, r: _Repo, name: str, sha: str) -> Branch:
        return Branch(provider=self.id, id=f"{r.full_name}:{name}", url=self._url(r, "tree", name),
                      name=name, sha=sha, protected=False, raw={"ref": f"refs/heads/{name}", "sha": sha})

    def _commit(self, r: _Repo, c: CommitInfo) -> Commit:
        return Commit(provider=self.id, id=c.sha, url=self._url(r, "commit", c.sha), sha=c.sha,
                      message=c.message.rstrip("\n"), author_name=c.author_name,
                      author_email=c.author_email, authored_at=c.authored_at, parents=list(c.parents),
                      raw=c.record())

    def _merge_result(self, r: _Repo, o: MergeOutcome, strategy: MergeStrategy, *,
                      pull: int | None = None) -> MergeResult:
        raw: dict[str, Any] = {"sha": o.sha, "created": list(o.created), "merged": o.merged}
        if pull is not None:
            raw["pull_number"] = pull
        return MergeResult(provider=self.id, id=o.sha, url=self._url(r, "commit", o.sha), merged=o.merged,
                           sha=o.sha, strategy=strategy, message=o.message.rstrip("\n"), raw=raw)

    async def _pull_request(self, r: _Repo, row: PullRow, *, with_mergeable: bool = False) -> PullRequest:
        base_sha, head_sha, live = await self._pull_tips(r, row)
        mergeable: bool | None = None
        # Unknown (None) unless both branches still exist: a remembered sha says nothing now.
        if with_mergeable and live and base_sha and head_sha:
            try:
                mergeable = (await r.git.merge_tree(base_sha, head_sha)).clean
            except Conflict:
                mergeable = False
        return PullRequest(provider=self.id, id=f"{r.full_name}#{row.number}",
                           url=self._url(r, "pull", str(row.number)), number=row.number, title=row.title,
                           body=row.body, state=row.state,
                           head=row.head, base=row.base, head_sha=head_sha, author=row.author,
                           draft=row.draft, merged=row.state == "merged", merge_sha=row.merge_sha,
                           mergeable=mergeable, created_at=_dt(row.created_at),
                           updated_at=_dt(row.updated_at), raw=row.record())

    def _review(self, r: _Repo, row: ReviewRow) -> Review:
        pull_url = self._url(r, "pull", str(row.pull_number))
        return Review(provider=self.id, id=str(row.id),
                      url=f"{pull_url}#review-{row.id}" if pull_url else None,
                      pull_number=row.pull_number, state=row.state,
                      body=row.body, author=row.author, commit_sha=row.commit_sha,
                      submitted_at=_dt(row.submitted_at), raw=row.record())


# -- pure helpers ---------------------------------------------------------------

def _check_owner(owner: str) -> None:
    if not is_owner_name(owner):
        raise InvalidRequest(f"owner {owner!r} is reserved by the local provider", details={"owner": owner})


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise InvalidRequest(f"invalid cursor {cursor!r}: pass the next_cursor of a previous page",
                             details={"cursor": cursor})
    return int(cursor)


def _next(offset: int, limit: int, total: int) -> str | None:
    return str(offset + limit) if offset + limit < total else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _terminated(message: str) -> str:
    if not message.strip():
        raise InvalidRequest("the commit message must not be empty", details={"message": message})
    return message if message.endswith("\n") else message + "\n"


def _same_sha(given: str, actual: str) -> bool:
    g = given.strip().lower()
    return g == actual or (len(g) >= 7 and actual.startswith(g))


def _decode_content(content: str, encoding: str) -> bytes:
    if encoding == "utf-8":
        return content.encode("utf-8")
    try:
        return base64.b64decode("".join(content.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("content is not valid base64", details={"encoding": encoding}) from None


def _identity(name: str | None, email: str | None) -> Identity | None:
    if name is None and email is None:
        return None
    ident = Identity(name if name is not None else Identity().name,
                     email if email is not None else Identity().email)
    for field, value in (("author_name", ident.name), ("author_email", ident.email)):
        if not value.strip() or any(c in value for c in "<>\n\r\x00"):
            raise InvalidRequest(f"{field} must be non-empty and contain no '<', '>' or line breaks",
                                 details={field: value})
    return ident


def _file(provider: str, d: DiffEntry) -> FileChange:
    return FileChange(provider=provider, id=d.path, path=d.path, status=d.status,
                      previous_path=d.previous_path, additions=d.additions, deletions=d.deletions,
                      patch=d.patch, raw={"binary": d.binary, "status": d.status,
                                          "previous_path": d.previous_path})


def _status(provider: str, row: StatusRow) -> CommitStatus:
    return CommitStatus(provider=provider, id=str(row.id), url=None, sha=row.sha,
                        state=row.state,
                        context=row.context, description=row.description, target_url=row.target_url,
                        created_at=_dt(row.created_at), raw=row.record())


__all__ = ["LocalGitConfig", "LocalGitPlugin"]
