"""Git service: repositories, branches, files, commits, pull requests, reviews, statuses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from mosaic.catalog.base import (
    Deleted,
    Effect,
    Entity,
    ListParams,
    Operation,
    Page,
    Params,
    RepoListParams,
    RepoParams,
    Rest,
    check_name,
)

MergeStrategy = Literal["merge", "squash", "rebase"]

# ---------------------------------------------------------------------------
# Domain objects


class Repository(Entity):
    owner: str
    name: str
    full_name: str = Field(description="'owner/name'")
    description: str = ""
    private: bool = False
    default_branch: str = "main"
    clone_url: str | None = None
    archived: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Branch(Entity):
    name: str
    sha: str
    protected: bool = False


class Commit(Entity):
    sha: str
    message: str
    author_name: str | None = None
    author_email: str | None = None
    authored_at: datetime | None = None
    parents: list[str] = Field(default_factory=list)


class FileChange(Entity):
    """One changed file; ``id`` is its path (the provider's file id where it has one)."""

    path: str
    status: Literal["added", "modified", "removed", "renamed", "copied", "changed"] = "modified"
    previous_path: str | None = None
    additions: int = 0
    deletions: int = 0
    patch: str | None = None


class Comparison(Entity):
    base: str
    head: str
    merge_base: str | None = None
    ahead_by: int = 0
    behind_by: int = 0
    commits: list[Commit] = Field(default_factory=list)
    files: list[FileChange] = Field(default_factory=list)


class FileContent(Entity):
    path: str
    ref: str | None = None
    sha: str = Field(description="Blob sha; pass back as `sha` to update this file.")
    size: int = 0
    encoding: Literal["utf-8", "base64"] = "utf-8"
    content: str


class FileCommit(Entity):
    path: str
    sha: str = Field(description="Blob sha of the new content.")
    commit: Commit


class MergeResult(Entity):
    merged: bool
    sha: str | None = Field(default=None, description="Sha of the resulting commit.")
    strategy: MergeStrategy = "merge"
    message: str = ""


class PullRequest(Entity):
    number: int
    title: str
    body: str = ""
    state: Literal["open", "closed", "merged"] = "open"
    head: str
    base: str
    head_sha: str | None = None
    author: str | None = None
    draft: bool = False
    merged: bool = False
    merge_sha: str | None = None
    mergeable: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


ReviewEvent = Literal["approve", "request_changes", "comment"]


class Review(Entity):
    pull_number: int
    state: Literal["approved", "changes_requested", "commented", "pending", "dismissed"]
    body: str = ""
    author: str | None = None
    commit_sha: str | None = None
    submitted_at: datetime | None = None


StatusState = Literal["pending", "success", "failure", "error"]


class CommitStatus(Entity):
    sha: str
    state: StatusState
    context: str = "default"
    description: str = ""
    target_url: str | None = None
    created_at: datetime | None = None


class PassthroughResult(BaseModel):
    provider: str
    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None


# ---------------------------------------------------------------------------
# Parameters


class CreateRepositoryParams(Params):
    name: str = Field(description="Repository name (no owner).")
    owner: str | None = Field(
        default=None,
        description="Organization, user or namespace path (GitLab 'group/subgroup'); default: the caller.")
    description: str = ""
    private: bool = False
    default_branch: str = "main"
    auto_init: bool = Field(default=True, description="Create an initial commit with a README.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("owner")
    @classmethod
    def _owner(cls, v: str | None) -> str | None:
        return None if v is None else "/".join(check_name(s) for s in v.split("/"))


class GetRepositoryParams(RepoParams):
    pass


class UpdateRepositoryParams(RepoParams):
    description: str | None = None
    private: bool | None = None
    default_branch: str | None = None
    archived: bool | None = None
    new_name: str | None = Field(default=None, description="Rename the repository.")

    @field_validator("new_name")
    @classmethod
    def _new_name(cls, v: str | None) -> str | None:
        return None if v is None else check_name(v)


class DeleteRepositoryParams(RepoParams):
    pass


class ListRepositoriesParams(ListParams):
    owner: str | None = Field(default=None, description="Only this organization or user.")


class CreateBranchParams(RepoParams):
    branch: str = Field(description="New branch name.")
    from_ref: str | None = Field(default=None, description="Branch, tag or sha; default: default branch.")


class BranchParams(RepoParams):
    branch: str


class ListBranchesParams(RepoListParams):
    pass


class MergeBranchParams(RepoParams):
    base: str = Field(description="Branch that receives the changes.")
    head: str = Field(description="Branch or sha whose changes are merged.")
    message: str | None = None
    strategy: MergeStrategy = "merge"


class GetFileParams(RepoParams):
    path: str
    ref: str | None = Field(default=None, description="Branch, tag or sha; default: default branch.")


class PutFileParams(RepoParams):
    path: str
    content: str
    message: str = Field(description="Commit message.")
    branch: str | None = None
    encoding: Literal["utf-8", "base64"] = "utf-8"
    sha: str | None = Field(
        default=None,
        description="Blob sha of the file being replaced; required to update, omitted to create.",
    )
    author_name: str | None = None
    author_email: str | None = None


class ListCommitsParams(RepoListParams):
    ref: str | None = None
    path: str | None = None


class GetCommitParams(RepoParams):
    sha: str


class CompareCommitsParams(RepoParams):
    base: str
    head: str


class CreatePullRequestParams(RepoParams):
    title: str = Field(min_length=1)
    head: str = Field(description="Source branch.")
    base: str | None = Field(default=None, description="Target branch; default: default branch.")
    body: str = ""
    draft: bool = False


class PullRequestParams(RepoParams):
    number: int = Field(ge=1)


class ListPullRequestsParams(RepoListParams):
    state: Literal["open", "closed", "merged", "all"] = Field(
        default="open", description="'closed' means closed without merging.")


class UpdatePullRequestParams(PullRequestParams):
    title: str | None = None
    body: str | None = None
    base: str | None = None
    state: Literal["open", "closed"] | None = None


class MergePullRequestParams(PullRequestParams):
    strategy: MergeStrategy = "merge"
    message: str | None = None
    sha: str | None = Field(default=None, description="Merge only if the head is still at this sha.")


class ListPullRequestFilesParams(PullRequestParams):
    cursor: str | None = None
    limit: int = Field(default=100, ge=1, le=100)


class ReviewPullRequestParams(PullRequestParams):
    event: ReviewEvent
    body: str = ""


class ListReviewsParams(PullRequestParams):
    cursor: str | None = None
    limit: int = Field(default=30, ge=1, le=100)


class SetCommitStatusParams(RepoParams):
    sha: str
    state: StatusState
    context: str = "default"
    description: str = ""
    target_url: str | None = None


class ListCommitStatusesParams(RepoListParams):
    ref: str


class PassthroughParams(Params):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str = Field(description="Path relative to the provider's API base, e.g. '/user'.")
    query: dict[str, str] = Field(default_factory=dict)
    body: Any = None


# ---------------------------------------------------------------------------
# Operations

R = "/git/repositories"
RP = R + "/{repo}"

create_repository = Operation(
    "git", "create_repository", CreateRepositoryParams, Repository, Effect.WRITE,
    Rest("POST", R, 201), "Create a repository for a user or an organization.",
    invalidates=("list_repositories",),
)
get_repository = Operation(
    "git", "get_repository", GetRepositoryParams, Repository, Effect.READ,
    Rest("GET", RP), "Get a repository by 'owner/name'.", cache_ttl=60,
)
update_repository = Operation(
    "git", "update_repository", UpdateRepositoryParams, Repository, Effect.WRITE,
    Rest("PATCH", RP), "Change a repository's description, visibility, default branch or name.",
    idempotent=True, invalidates=("get_repository", "list_repositories"),
)
delete_repository = Operation(
    "git", "delete_repository", DeleteRepositoryParams, Deleted, Effect.WRITE,
    Rest("DELETE", RP), "Delete a repository and everything in it. Irreversible.",
    idempotent=True, destructive=True, invalidates=("get_repository", "list_repositories"),
)
list_repositories = Operation(
    "git", "list_repositories", ListRepositoriesParams, Page[Repository], Effect.READ,
    Rest("GET", R), "List repositories, optionally of one owner.", cache_ttl=30,
)
create_branch = Operation(
    "git", "create_branch", CreateBranchParams, Branch, Effect.WRITE,
    Rest("POST", RP + "/branches", 201), "Create a branch from a branch, tag or commit.",
    invalidates=("list_branches",),
)
get_branch = Operation(
    "git", "get_branch", BranchParams, Branch, Effect.READ,
    Rest("GET", RP + "/branches/{branch}"), "Get a branch and the commit it points at.", cache_ttl=10,
)
list_branches = Operation(
    "git", "list_branches", ListBranchesParams, Page[Branch], Effect.READ,
    Rest("GET", RP + "/branches"), "List the branches of a repository.", cache_ttl=10,
)
delete_branch = Operation(
    "git", "delete_branch", BranchParams, Deleted, Effect.WRITE,
    Rest("DELETE", RP + "/branches/{branch}"), "Delete a branch.",
    idempotent=True, destructive=True, invalidates=("get_branch", "list_branches"),
)
merge_branch = Operation(
    "git", "merge_branch", MergeBranchParams, MergeResult, Effect.WRITE,
    Rest("POST", RP + "/merges", 201),
    "Merge one branch into another on the server (merge, squash or rebase). Reports conflicts.",
    invalidates=("get_branch", "list_branches", "list_commits"),
)
get_file = Operation(
    "git", "get_file", GetFileParams, FileContent, Effect.READ,
    Rest("GET", RP + "/contents/{path}"), "Read a file at a branch, tag or commit.", cache_ttl=10,
)
put_file = Operation(
    "git", "put_file", PutFileParams, FileCommit, Effect.WRITE,
    Rest("PUT", RP + "/contents/{path}"),
    "Create or update one file with a commit. Updating needs the current blob `sha`.",
    invalidates=("get_file", "list_commits", "get_branch", "list_branches"),
)
list_commits = Operation(
    "git", "list_commits", ListCommitsParams, Page[Commit], Effect.READ,
    Rest("GET", RP + "/commits"), "List commits reachable from a ref, newest first.", cache_ttl=10,
)
get_commit = Operation(
    "git", "get_commit", GetCommitParams, Commit, Effect.READ,
    Rest("GET", RP + "/commits/{sha}"), "Get one commit.", cache_ttl=3600,
)
compare_commits = Operation(
    "git", "compare_commits", CompareCommitsParams, Comparison, Effect.READ,
    Rest("GET", RP + "/compare"), "Compare two refs: commits and changed files between them.",
    cache_ttl=10,
)
create_pull_request = Operation(
    "git", "create_pull_request", CreatePullRequestParams, PullRequest, Effect.WRITE,
    Rest("POST", RP + "/pulls", 201), "Open a pull request (merge request) from head into base.",
    invalidates=("list_pull_requests",),
)
get_pull_request = Operation(
    "git", "get_pull_request", PullRequestParams, PullRequest, Effect.READ,
    Rest("GET", RP + "/pulls/{number}"), "Get a pull request by number.", cache_ttl=5,
)
list_pull_requests = Operation(
    "git", "list_pull_requests", ListPullRequestsParams, Page[PullRequest], Effect.READ,
    Rest("GET", RP + "/pulls"), "List pull requests by state.", cache_ttl=5,
)
update_pull_request = Operation(
    "git", "update_pull_request", UpdatePullRequestParams, PullRequest, Effect.WRITE,
    Rest("PATCH", RP + "/pulls/{number}"), "Change a pull request's title, body, base or state.",
    idempotent=True, invalidates=("get_pull_request", "list_pull_requests"),
)
merge_pull_request = Operation(
    "git", "merge_pull_request", MergePullRequestParams, MergeResult, Effect.WRITE,
    Rest("POST", RP + "/pulls/{number}/merge"),
    "Merge a pull request with a strategy (merge, squash, rebase).",
    invalidates=("get_pull_request", "list_pull_requests", "get_branch", "list_branches",
                 "list_commits", "get_file"),
)
close_pull_request = Operation(
    "git", "close_pull_request", PullRequestParams, PullRequest, Effect.WRITE,
    Rest("POST", RP + "/pulls/{number}/close"), "Close a pull request without merging.",
    idempotent=True, invalidates=("get_pull_request", "list_pull_requests"),
)
list_pull_request_files = Operation(
    "git", "list_pull_request_files", ListPullRequestFilesParams, Page[FileChange], Effect.READ,
    Rest("GET", RP + "/pulls/{number}/files"), "List the files a pull request changes, with patches.",
    cache_ttl=5,
)
review_pull_request = Operation(
    "git", "review_pull_request", ReviewPullRequestParams, Review, Effect.WRITE,
    Rest("POST", RP + "/pulls/{number}/reviews", 201),
    "Review a pull request: approve, request changes, or comment.",
    invalidates=("list_reviews", "get_pull_request"),
)
list_reviews = Operation(
    "git", "list_reviews", ListReviewsParams, Page[Review], Effect.READ,
    Rest("GET", RP + "/pulls/{number}/reviews"),
    "List the review verdicts (approvals, change requests, review comments) of a pull request.",
    cache_ttl=5,
)
set_commit_status = Operation(
    "git", "set_commit_status", SetCommitStatusParams, CommitStatus, Effect.WRITE,
    Rest("POST", RP + "/statuses/{sha}", 201), "Set a CI status (context, state) on a commit.",
    idempotent=True, invalidates=("list_commit_statuses",),
)
list_commit_statuses = Operation(
    "git", "list_commit_statuses", ListCommitStatusesParams, Page[CommitStatus], Effect.READ,
    Rest("GET", RP + "/commits/{ref}/statuses"), "List the statuses set on a commit.", cache_ttl=5,
)
passthrough = Operation(
    "git", "passthrough", PassthroughParams, PassthroughResult, Effect.WRITE,
    Rest("POST", "/git/passthrough"),
    "Send a raw API call to the provider through the same auth, routing, limits and audit.",
)

OPERATIONS: tuple[Operation, ...] = (
    create_repository, get_repository, update_repository, delete_repository, list_repositories,
    create_branch, get_branch, list_branches, delete_branch, merge_branch,
    get_file, put_file, list_commits, get_commit, compare_commits,
    create_pull_request, get_pull_request, list_pull_requests, update_pull_request,
    merge_pull_request, close_pull_request, list_pull_request_files,
    review_pull_request, list_reviews, set_commit_status, list_commit_statuses, passthrough,
)
