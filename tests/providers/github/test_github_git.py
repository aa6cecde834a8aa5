"""GitHubGitPlugin against the stateful fake: pagination, rate limits, error mapping, owners,
merges, files, health, passthrough, Enterprise Server — every request and answer checked against
github.json."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest
from tests.providers.github.conftest import TOKEN, Env, make_env, new_fake
from tests.providers.github.fake import GitHubFake
from tests.support.fake_upstream import json_response
from tests.support.spec_validation import SpecValidatingTransport

from mosaic.catalog import git as g
from mosaic.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthorized,
)
from mosaic.gateway.context import RequestContext
from mosaic.providers.github.base import web_root
from mosaic.providers.github.git import GitHubGitPlugin

R = "/repos/{owner}/{repo}"


# -- headers and config ------------------------------------------------------------------------------


async def test_every_request_carries_githubs_headers(env: Env) -> None:
    env.fake.seed_repo("alice", "api", {"README.md": "hi\n"})
    await env.plugin.get_repository(g.GetRepositoryParams(repo="alice/api"), env.ctx)
    sent = env.transport.requests[0].headers
    assert sent["authorization"] == f"Bearer {TOKEN}"
    assert sent["accept"] == "application/vnd.github+json"
    assert sent["x-github-api-version"] == "2022-11-28"
    assert sent["user-agent"].startswith("mosaic/")


def test_config_defaults_to_github_com() -> None:
    cfg = GitHubGitPlugin.Config.model_validate({"auth": {"type": "token", "token": "x"}})
    assert cfg.base_url == "https://api.github.com"  # type: ignore[attr-defined]


async def test_basic_auth_is_a_config_error() -> None:
    plugin = GitHubGitPlugin("gh")
    with pytest.raises(ConfigError, match="basic"):
        await plugin.initialize(
            GitHubGitPlugin.Config.model_validate(
                {"auth": {"type": "basic", "username": "a", "password": "b"}}
            )
        )


@pytest.mark.parametrize(
    ("base", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://ghe.example/api/v3", "https://ghe.example"),
        ("https://api.acme.ghe.com", "https://acme.ghe.com"),
        ("http://127.0.0.1:8080/api/v3", "http://127.0.0.1:8080"),
    ],
)
def test_web_root_follows_the_api_root(base: str, web: str) -> None:
    assert web_root(base) == web


# -- pagination ----------------------------------------------------------------------------------------


async def test_link_header_pagination_across_three_pages(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "many", {"README.md": "x\n"})
    for i in range(7):
        repo.git.push(f"b{i}", {f"f{i}": "y"}, f"c{i}", env.fake.user("alice").person)
    names: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await env.plugin.list_branches(
            g.ListBranchesParams(repo="alice/many", limit=3, cursor=cursor), env.ctx
        )
        pages += 1
        names += [b.name for b in page.items]
        assert all(b.sha == repo.git.branches[b.name] for b in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert names == sorted(repo.git.branches)
    assert [env.query(i) for i in range(3)] == [
        {"per_page": "3"},
        {"per_page": "3", "page": "2"},
        {"per_page": "3", "page": "3"},
    ]


async def test_listing_keeps_its_filters_on_later_pages(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "log", {"a.txt": "0\n"})
    for i in range(4):
        repo.git.push(
            "main", {"a.txt": f"{i + 1}\n", f"other{i}": "x"}, f"edit {i}", env.fake.user("alice").person
        )
    first = await env.plugin.list_commits(
        g.ListCommitsParams(repo="alice/log", path="a.txt", limit=2), env.ctx
    )
    second = await env.plugin.list_commits(
        g.ListCommitsParams(repo="alice/log", path="a.txt", limit=2, cursor=first.next_cursor), env.ctx
    )
    assert [c.message for c in first.items + second.items] == ["edit 3", "edit 2", "edit 1", "edit 0"]
    assert env.query(1) == {"path": "a.txt", "per_page": "2", "page": "2"}


# -- rate limits ---------------------------------------------------------------------------------------


async def test_rate_limit_exhaustion_is_rate_limited_until_the_reset(env: Env) -> None:
    env.fake.seed_repo("alice", "api", {"README.md": "hi\n"})
    env.fake.rate_remaining = 1
    ctx = RequestContext()
    await env.plugin.get_repository(g.GetRepositoryParams(repo="alice/api"), ctx)
    assert ctx.meta["rate_limit"]["remaining"] == 0
    assert ctx.meta["rate_limit"]["limit"] == 5000
    with pytest.raises(RateLimited) as caught:
        await env.plugin.get_repository(g.GetRepositoryParams(repo="alice/api"), env.ctx)
    assert caught.value.retry_after == env.fake.rate_reset - env.fake.now == 3600
    assert caught.value.details["status"] == 403
    health = await env.plugin.health_check()
    assert health.status == "degraded" and health.rate_limit and health.rate_limit["remaining"] == 0


async def test_429_with_retry_after(env: Env) -> None:
    env.fake.router.inject(json_response(429, {"message": "Too many requests"}, {"Retry-After": "17"}))
    with pytest.raises(RateLimited) as caught:
        await env.plugin.get_repository(g.GetRepositoryParams(repo="alice/api"), env.ctx)
    assert caught.value.retry_after == 17


async def test_secondary_rate_limit_403(env: Env) -> None:
    env.fake.router.inject(
        json_response(
            403,
            {
                "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest",
            },
        )
    )
    with pytest.raises(RateLimited) as caught:
        await env.plugin.get_repository(g.GetRepositoryParams(repo="alice/api"), env.ctx)
    assert caught.value.retry_after == 60  # GitHub: wait at least a minute when no header says otherwise


async def test_secondary_rate_limit_with_retry_after_header(env: Env) -> None:
    env.fake.router.inject(
        json_response(403, {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "5"})
    )
    with pytest.raises(RateLimited) as caught:
        await env.plugin.get_repository(g.GetRepositoryParams(repo="alice/api"), env.ctx)
    assert caught.value.retry_after == 5


async def test_health_reports_headroom(env: Env) -> None:
    health = await env.plugin.health_check()
    assert health.status == "healthy"
    assert health.rate_limit == {
        "limit": 5000,
        "remaining": 4999,
        "reset": env.fake.rate_reset,
        "resource": "core",
    }
    assert env.calls() == [("GET", "/rate_limit")]
    env.fake.rate_remaining = 100
    low = await env.plugin.health_check()
    assert low.status == "degraded" and "headroom" in low.detail


# -- errors ----------------------------------------------------------------------------------------------


async def test_bad_token_is_unauthorized_and_not_echoed(
    spec_transport: Callable[..., SpecValidatingTransport],
) -> None:
    e = await make_env(spec_transport, auth={"type": "token", "token": "ghp_wrong_s3cret"})
    with pytest.raises(Unauthorized) as caught:
        await e.plugin.get_repository(g.GetRepositoryParams(repo="alice/api"), e.ctx)
    assert "Bad credentials" in caught.value.message
    assert "ghp_wrong_s3cret" not in str(caught.value.to_dict())
    await e.plugin.dispose()


async def test_not_found_conflict_and_validation_errors(env: Env) -> None:
    with pytest.raises(NotFound):
        await env.plugin.get_repository(g.GetRepositoryParams(repo="alice/none"), env.ctx)
    env.fake.seed_repo("alice", "api", {"README.md": "hi\n"})
    with pytest.raises(NotFound):
        await env.plugin.get_branch(g.BranchParams(repo="alice/api", branch="nope"), env.ctx)
    # 422 already_exists → Conflict
    with pytest.raises(Conflict, match="already exists"):
        await env.plugin.create_repository(g.CreateRepositoryParams(name="api"), env.ctx)
    await env.plugin.create_branch(g.CreateBranchParams(repo="alice/api", branch="x"), env.ctx)
    with pytest.raises(Conflict, match="Reference already exists"):
        await env.plugin.create_branch(g.CreateBranchParams(repo="alice/api", branch="x"), env.ctx)
    # 422 that is a plain validation error
    with pytest.raises(InvalidRequest, match="No commits between"):
        await env.plugin.create_pull_request(
            g.CreatePullRequestParams(repo="alice/api", title="t", head="x"), env.ctx
        )
    # 409 "Git Repository is empty." is an empty history, not an error
    env.fake.seed_repo("alice", "empty")
    page = await env.plugin.list_commits(g.ListCommitsParams(repo="alice/empty"), env.ctx)
    assert page.items == [] and page.next_cursor is None
    # 422 "Reference does not exist" on delete → NotFound
    with pytest.raises(NotFound):
        await env.plugin.delete_branch(g.BranchParams(repo="alice/api", branch="gone"), env.ctx)


async def test_file_conflicts(env: Env) -> None:
    env.fake.seed_repo("alice", "api", {"a.txt": "one\n"})
    with pytest.raises(Conflict, match="pass its current blob sha"):
        await env.plugin.put_file(
            g.PutFileParams(repo="alice/api", path="a.txt", content="x", message="m"), env.ctx
        )
    with pytest.raises(Conflict):  # 409: the sha is not the file's current one
        await env.plugin.put_file(
            g.PutFileParams(repo="alice/api", path="a.txt", content="x", message="m", sha="0" * 40), env.ctx
        )
    with pytest.raises(InvalidRequest, match="author_email"):
        await env.plugin.put_file(
            g.PutFileParams(repo="alice/api", path="b.txt", content="x", message="m", author_name="Alice"),
            env.ctx,
        )
    with pytest.raises(InvalidRequest, match="base64"):
        await env.plugin.put_file(
            g.PutFileParams(repo="alice/api", path="b.txt", content="%%%", message="m", encoding="base64"),
            env.ctx,
        )


# -- repositories and owners ---------------------------------------------------------------------------


async def test_create_repository_for_self_org_and_others(env: Env) -> None:
    mine = await env.plugin.create_repository(g.CreateRepositoryParams(name="one"), env.ctx)
    assert mine.full_name == "alice/one" and mine.default_branch == "main"
    same = await env.plugin.create_repository(g.CreateRepositoryParams(name="two", owner="Alice"), env.ctx)
    assert same.full_name == "alice/two"
    org = await env.plugin.create_repository(
        g.CreateRepositoryParams(name="svc", owner="acme", private=True), env.ctx
    )
    assert org.full_name == "acme/svc" and org.private
    with pytest.raises(Forbidden, match="another user"):
        await env.plugin.create_repository(g.CreateRepositoryParams(name="x", owner="bob"), env.ctx)
    with pytest.raises(NotFound, match="no user or organization"):
        await env.plugin.create_repository(g.CreateRepositoryParams(name="x", owner="ghost"), env.ctx)
    # GET /user once for the whole instance; each other owner looked up once
    assert env.calls().count(("GET", "/user")) == 1
    assert [c for c in env.calls() if c[0] == "POST"] == [
        ("POST", "/user/repos"),
        ("POST", "/user/repos"),
        ("POST", "/orgs/{org}/repos"),
    ]
    await env.plugin.list_repositories(g.ListRepositoriesParams(owner="acme"), env.ctx)
    assert env.calls().count(("GET", "/users/{username}")) == 3  # acme (cached after), bob, ghost


async def test_create_repository_renames_the_first_branch(
    spec_transport: Callable[..., SpecValidatingTransport],
) -> None:
    fake = GitHubFake()
    fake.add_user("alice", TOKEN, default_branch="master")
    e = await make_env(spec_transport, fake=fake)
    repo = await e.plugin.create_repository(g.CreateRepositoryParams(name="r", default_branch="trunk"), e.ctx)
    assert repo.default_branch == "trunk"
    assert list(fake.repo("alice/r").git.branches) == ["trunk"]
    assert ("POST", R + "/branches/{branch}/rename") in e.calls()
    await e.plugin.dispose()


async def test_list_repositories_by_owner_kind(env: Env) -> None:
    env.fake.seed_repo("alice", "mine", {"a": "1"})
    env.fake.seed_repo("acme", "shared", {"a": "1"}, private=True)
    env.fake.seed_repo("bob", "theirs", {"a": "1"})
    env.fake.seed_repo("bob", "hidden", {"a": "1"}, private=True)
    everything = await env.plugin.list_repositories(g.ListRepositoriesParams(), env.ctx)
    assert [r.full_name for r in everything.items] == ["acme/shared", "alice/mine"]
    own = await env.plugin.list_repositories(g.ListRepositoriesParams(owner="alice"), env.ctx)
    assert [r.full_name for r in own.items] == ["alice/mine"]
    org = await env.plugin.list_repositories(g.ListRepositoriesParams(owner="acme"), env.ctx)
    assert [(r.full_name, r.private) for r in org.items] == [("acme/shared", True)]
    other = await env.plugin.list_repositories(g.ListRepositoriesParams(owner="bob"), env.ctx)
    assert [r.full_name for r in other.items] == ["bob/theirs"]
    paths = [t for m, t in env.calls() if m == "GET" and t.endswith("repos")]
    assert paths == ["/user/repos", "/user/repos", "/orgs/{org}/repos", "/users/{username}/repos"]
    assert env.query(0) == {"per_page": "30"} and env.query(2) == {"affiliation": "owner", "per_page": "30"}


async def test_update_and_delete_repository(env: Env) -> None:
    env.fake.seed_repo("alice", "api", {"a": "1"})
    updated = await env.plugin.update_repository(
        g.UpdateRepositoryParams(repo="alice/api", description="new", private=True, new_name="api2"), env.ctx
    )
    assert (updated.full_name, updated.description, updated.private) == ("alice/api2", "new", True)
    gone = await env.plugin.delete_repository(g.DeleteRepositoryParams(repo="alice/api2"), env.ctx)
    assert gone.id == updated.id
    with pytest.raises(NotFound):
        await env.plugin.get_repository(g.GetRepositoryParams(repo="alice/api2"), env.ctx)


# -- branches, files, merges ------------------------------------------------------------------------


async def test_create_branch_from_a_tag_or_branch(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "api", {"a": "1"})
    first = repo.git.branches["main"]
    repo.git.tags["v1"] = first
    repo.git.push("main", {"a": "2"}, "two", env.fake.user("alice").person)
    b = await env.plugin.create_branch(
        g.CreateBranchParams(repo="alice/api", branch="fix/v1", from_ref="v1"), env.ctx
    )
    assert (b.name, b.sha, b.url) == ("fix/v1", first, "https://github.com/alice/api/tree/fix/v1")
    got = await env.plugin.get_branch(g.BranchParams(repo="alice/api", branch="fix/v1"), env.ctx)
    assert got.sha == first and got.url == "https://github.com/alice/api/tree/fix/v1"
    assert env.query(0) == {"per_page": "1"}  # the commit lookup asks for at most one file
    deleted = await env.plugin.delete_branch(g.BranchParams(repo="alice/api", branch="fix/v1"), env.ctx)
    assert deleted.deleted and "fix/v1" not in repo.git.branches


async def test_get_file_directory_and_large_file(env: Env) -> None:
    big = "x" * (1024 * 1024 + 10)
    env.fake.seed_repo("alice", "api", {"docs/a.md": "a\n", "big.txt": big})
    with pytest.raises(InvalidRequest, match="directory"):
        await env.plugin.get_file(g.GetFileParams(repo="alice/api", path="docs"), env.ctx)
    f = await env.plugin.get_file(g.GetFileParams(repo="alice/api", path="big.txt"), env.ctx)
    assert f.content == big and f.size == len(big)
    assert env.calls()[-1] == ("GET", R + "/git/blobs/{file_sha}")


async def test_binary_files_round_trip_as_base64(env: Env) -> None:
    env.fake.seed_repo("alice", "api", {"a": "1"})
    data = bytes(range(256))
    written = await env.plugin.put_file(
        g.PutFileParams(
            repo="alice/api",
            path="bin/blob.dat",
            content=base64.b64encode(data).decode(),
            encoding="base64",
            message="binary",
        ),
        env.ctx,
    )
    got = await env.plugin.get_file(g.GetFileParams(repo="alice/api", path="bin/blob.dat"), env.ctx)
    assert (got.encoding, base64.b64decode(got.content), got.sha) == ("base64", data, written.sha)


@pytest.mark.parametrize("strategy", ["merge", "squash", "rebase"])
async def test_merge_pull_request_strategies(env: Env, strategy: g.MergeStrategy) -> None:
    repo = env.fake.seed_repo("alice", "api", {"a": "1"})
    alice = env.fake.user("alice").person
    base = repo.git.push("main", {"b": "base"}, "base moves", alice)
    repo.git.branches["topic"] = repo.git.commits[base].parents[0]
    repo.git.push("topic", {"c": "1"}, "c1", alice)
    repo.git.push("topic", {"d": "1"}, "c2", alice)
    pr = await env.plugin.create_pull_request(
        g.CreatePullRequestParams(repo="alice/api", title="Topic", head="topic"), env.ctx
    )
    assert pr.base == "main"
    result = await env.plugin.merge_pull_request(
        g.MergePullRequestParams(
            repo="alice/api", number=pr.number, strategy=strategy, message="Title\n\nBody"
        ),
        env.ctx,
    )
    assert (
        result.merged
        and result.strategy == strategy
        and result.url == f"https://github.com/alice/api/pull/{pr.number}"
    )
    tip = repo.git.commits[repo.git.branches["main"]]
    assert result.sha == tip.sha and set(tip.tree) == {"a", "b", "c", "d"}
    sent = env.transport.requests[-1]
    assert sent.method == "PUT" and b'"merge_method":"' + strategy.encode() in sent.content
    if strategy == "merge":
        assert len(tip.parents) == 2 and tip.message == "Title\n\nBody"
    elif strategy == "squash":
        assert tip.parents == [base] and tip.message == "Title\n\nBody"
    else:
        assert tip.message == "c2" and len(tip.parents) == 1
    after = await env.plugin.get_pull_request(
        g.PullRequestParams(repo="alice/api", number=pr.number), env.ctx
    )
    assert (after.state, after.merged, after.merge_sha) == ("merged", True, result.sha)


async def test_unmergeable_and_stale_pull_requests_are_conflicts(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "api", {"a": "1"})
    alice = env.fake.user("alice").person
    repo.git.branches["topic"] = repo.git.branches["main"]
    repo.git.push("topic", {"a": "topic"}, "topic edit", alice)
    repo.git.push("main", {"a": "main"}, "main edit", alice)
    pr = await env.plugin.create_pull_request(
        g.CreatePullRequestParams(repo="alice/api", title="T", head="topic"), env.ctx
    )
    assert pr.mergeable is False
    with pytest.raises(Conflict, match="cannot be merged"):
        await env.plugin.merge_pull_request(
            g.MergePullRequestParams(repo="alice/api", number=pr.number), env.ctx
        )
    with pytest.raises(Conflict, match="modified"):
        await env.plugin.merge_pull_request(
            g.MergePullRequestParams(repo="alice/api", number=pr.number, sha="f" * 40), env.ctx
        )


async def test_merge_branch_merge_conflict_and_up_to_date(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "api", {"a": "1"})
    alice = env.fake.user("alice").person
    repo.git.branches["topic"] = repo.git.branches["main"]
    repo.git.push("topic", {"a": "topic"}, "topic edit", alice)
    repo.git.push("main", {"a": "main"}, "main edit", alice)
    with pytest.raises(Conflict, match="without conflicts"):
        await env.plugin.merge_branch(
            g.MergeBranchParams(repo="alice/api", base="main", head="topic"), env.ctx
        )
    with pytest.raises(NotFound, match="not found"):
        await env.plugin.merge_branch(
            g.MergeBranchParams(repo="alice/api", base="main", head="nope"), env.ctx
        )
    repo.git.branches["old"] = repo.git.commits[repo.git.branches["main"]].parents[0]
    same = await env.plugin.merge_branch(
        g.MergeBranchParams(repo="alice/api", base="main", head="old"), env.ctx
    )
    assert not same.merged and same.sha == repo.git.branches["main"]


async def test_merge_branch_squash_goes_through_a_pull_request(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "api", {"a": "1"})
    alice = env.fake.user("alice").person
    repo.git.branches["topic"] = repo.git.branches["main"]
    repo.git.push("topic", {"b": "1"}, "b", alice)
    repo.git.push("topic", {"c": "1"}, "c", alice)
    result = await env.plugin.merge_branch(
        g.MergeBranchParams(
            repo="alice/api", base="main", head="topic", strategy="squash", message="Squashed"
        ),
        env.ctx,
    )
    tip = repo.git.commits[repo.git.branches["main"]]
    assert result.merged and result.strategy == "squash" and tip.sha == result.sha and len(tip.parents) == 1
    assert tip.message.startswith("Squashed") and set(tip.tree) == {"a", "b", "c"}
    assert [p.state for p in repo.pulls.values()] == ["closed"] and repo.pulls[1].merged
    # a refused squash closes the pull request it opened
    repo.git.push("topic", {"a": "topic"}, "conflict", alice)
    repo.git.push("main", {"a": "main"}, "conflict", alice)
    with pytest.raises(Conflict):
        await env.plugin.merge_branch(
            g.MergeBranchParams(repo="alice/api", base="main", head="topic", strategy="rebase"), env.ctx
        )
    assert repo.pulls[2].state == "closed" and not repo.pulls[2].merged


async def test_reviews_need_a_body_to_comment_and_reject_self_approval(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "api", {"a": "1"})
    repo.git.branches["topic"] = repo.git.branches["main"]
    repo.git.push("topic", {"b": "1"}, "b", env.fake.user("alice").person)
    pr = await env.plugin.create_pull_request(
        g.CreatePullRequestParams(repo="alice/api", title="T", head="topic", draft=True), env.ctx
    )
    assert pr.draft
    sent = len(env.transport.requests)
    with pytest.raises(InvalidRequest, match="needs a body"):
        await env.plugin.review_pull_request(
            g.ReviewPullRequestParams(repo="alice/api", number=pr.number, event="request_changes"), env.ctx
        )
    assert len(env.transport.requests) == sent  # refused before any request
    with pytest.raises(InvalidRequest, match="own pull request"):
        await env.plugin.review_pull_request(
            g.ReviewPullRequestParams(repo="alice/api", number=pr.number, event="approve"), env.ctx
        )
    comment = await env.plugin.review_pull_request(
        g.ReviewPullRequestParams(repo="alice/api", number=pr.number, event="comment", body="nit"), env.ctx
    )
    assert comment.state == "commented" and comment.author == "alice"


async def test_close_and_list_merged_pull_requests(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "api", {"a": "1"})
    alice = env.fake.user("alice").person
    for name in ("x", "y"):
        repo.git.branches[name] = repo.git.branches["main"]
        repo.git.push(name, {name: "1"}, name, alice)
    one = await env.plugin.create_pull_request(
        g.CreatePullRequestParams(repo="alice/api", title="X", head="x"), env.ctx
    )
    two = await env.plugin.create_pull_request(
        g.CreatePullRequestParams(repo="alice/api", title="Y", head="y"), env.ctx
    )
    await env.plugin.merge_pull_request(
        g.MergePullRequestParams(repo="alice/api", number=one.number), env.ctx
    )
    closed = await env.plugin.close_pull_request(
        g.PullRequestParams(repo="alice/api", number=two.number), env.ctx
    )
    assert closed.state == "closed" and not closed.merged
    merged = await env.plugin.list_pull_requests(
        g.ListPullRequestsParams(repo="alice/api", state="merged"), env.ctx
    )
    assert [p.number for p in merged.items] == [one.number]
    assert env.query(len(env.transport.requests) - 1) == {"state": "closed", "per_page": "30"}


async def test_statuses_on_a_branch_name_report_the_commit(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "api", {"a": "1"})
    sha = repo.git.branches["main"]
    await env.plugin.set_commit_status(
        g.SetCommitStatusParams(repo="alice/api", sha=sha, state="pending", context="ci"), env.ctx
    )
    await env.plugin.set_commit_status(
        g.SetCommitStatusParams(
            repo="alice/api", sha=sha, state="failure", context="ci", target_url="https://ci.example/1"
        ),
        env.ctx,
    )
    listed = await env.plugin.list_commit_statuses(
        g.ListCommitStatusesParams(repo="alice/api", ref="main"), env.ctx
    )
    assert [(s.sha, s.state, s.target_url) for s in listed.items] == [
        (sha, "failure", "https://ci.example/1"),
        (sha, "pending", None),
    ]


async def test_passthrough_uses_the_same_auth_and_stays_under_the_api(env: Env) -> None:
    result = await env.plugin.passthrough(g.PassthroughParams(path="/rate_limit"), env.ctx)
    assert result.status == 200 and result.body["rate"]["limit"] == 5000
    assert result.headers["x-ratelimit-resource"] == "core"
    assert env.transport.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    with pytest.raises(InvalidRequest):
        await env.plugin.passthrough(g.PassthroughParams(path="https://evil.example/steal"), env.ctx)


# -- Enterprise Server ---------------------------------------------------------------------------------


async def test_enterprise_server_base_url(spec_transport: Callable[..., SpecValidatingTransport]) -> None:
    fake = new_fake(api="https://ghe.example/api/v3", web="https://ghe.example")
    e = await make_env(spec_transport, fake=fake, api_root="/api/v3", baseUrl="https://ghe.example/api/v3")
    created = await e.plugin.create_repository(g.CreateRepositoryParams(name="svc", owner="acme"), e.ctx)
    assert created.url == "https://ghe.example/acme/svc"
    assert created.clone_url == "https://ghe.example/acme/svc.git"
    branch = await e.plugin.create_branch(g.CreateBranchParams(repo="acme/svc", branch="dev"), e.ctx)
    assert branch.url == "https://ghe.example/acme/svc/tree/dev"
    health = await e.plugin.health_check()
    assert health.ok
    paths = [r.url.path for r in e.transport.requests]
    assert paths and all(p.startswith("/api/v3/") for p in paths)
    assert all(r.url.host == "ghe.example" for r in e.transport.requests)
    await e.plugin.dispose()


async def test_web_url_overrides_links(spec_transport: Callable[..., SpecValidatingTransport]) -> None:
    e = await make_env(spec_transport, webUrl="https://code.example.org/")
    e.fake.seed_repo("alice", "api", {"a": "1"})
    page = await e.plugin.list_branches(g.ListBranchesParams(repo="alice/api"), e.ctx)
    assert page.items[0].url == "https://code.example.org/alice/api/tree/main"
    await e.plugin.dispose()


async def test_transport_failure_is_provider_unavailable(
    spec_transport: Callable[..., SpecValidatingTransport],
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    plugin = GitHubGitPlugin("gh", transport=httpx.MockTransport(refuse))
    await plugin.initialize(GitHubGitPlugin.Config.model_validate({"auth": {"type": "token", "token": "t"}}))
    await plugin.start()
    health = await plugin.health_check()
    assert health.status == "unhealthy" and "could not connect" in health.detail
    await plugin.dispose()
