"""GiteaGitPlugin against the stateful fake: pagination, rate limits, error mapping, merges,
drafts, files, config — every request and answer checked against gitea.json (forgejo.json)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.providers.gitea.fake import GiteaFake
from tests.support.fake_upstream import json_response
from tests.support.spec_validation import SpecValidatingTransport

from mosaic.catalog import git as g
from mosaic.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    ProviderUnavailable,
    RateLimited,
    Unauthorized,
)
from mosaic.gateway.context import RequestContext
from mosaic.plugins.http_pagination import encode_cursor
from mosaic.providers.gitea.git import ForgejoGitPlugin, GiteaGitPlugin

BASE = "https://gitea.test"
NOW = 1_717_430_000.0
TOKEN = "token-alice-s3cret"


@dataclass
class Env:
    fake: GiteaFake
    plugin: GiteaGitPlugin
    transport: SpecValidatingTransport
    ctx: RequestContext

    def query(self, index: int) -> dict[str, str]:
        return dict(self.transport.requests[index].url.params)


async def make(
    spec_transport: Callable[..., SpecValidatingTransport],
    *,
    flavour: str = "gitea",
    token: str = TOKEN,
    **config: Any,
) -> Env:
    fake = GiteaFake(base_url=BASE, flavour=flavour)
    fake.add_user("alice", TOKEN)
    fake.add_user("bob", "token-bob")
    fake.add_org("acme", ["alice"])
    transport = spec_transport(flavour, fake.transport())
    cls = ForgejoGitPlugin if flavour == "forgejo" else GiteaGitPlugin
    plugin = cls(flavour, transport=transport, clock=lambda: NOW)
    await plugin.initialize(
        cls.Config.model_validate({"baseUrl": BASE, "auth": {"type": "token", "token": token}, **config})
    )
    await plugin.start()
    return Env(fake, plugin, transport, RequestContext())


@pytest.fixture
async def env(spec_transport: Callable[..., SpecValidatingTransport]) -> AsyncIterator[Env]:
    e = await make(spec_transport)
    yield e
    await e.plugin.dispose()


# -- pagination ------------------------------------------------------------------------------


async def test_link_header_pagination_across_three_pages(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "many", {"README.md": "x\n"})
    for i in range(7):
        env.fake.push(repo, f"b{i}", {f"f{i}": "y"}, f"c{i}", "alice")
    names: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await env.plugin.list_branches(
            g.ListBranchesParams(repo="alice/many", limit=3, cursor=cursor), env.ctx
        )
        pages += 1
        names += [b.name for b in page.items]
        assert all(b.sha == repo.branches[b.name] for b in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert names == sorted(repo.branches)
    assert [env.query(i) for i in range(3)] == [
        {"limit": "3"},
        {"limit": "3", "page": "2"},
        {"limit": "3", "page": "3"},
    ]


async def test_page_size_is_the_servers_once_it_caps_it(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "wide", {"README.md": "x\n"})
    for i in range(60):
        env.fake.push(repo, f"b{i:02d}", {}, f"c{i}", "alice")
    first = await env.plugin.list_branches(g.ListBranchesParams(repo="alice/wide", limit=100), env.ctx)
    assert len(first.items) == 50  # MAX_RESPONSE_ITEMS
    second = await env.plugin.list_branches(
        g.ListBranchesParams(repo="alice/wide", limit=100, cursor=first.next_cursor), env.ctx
    )
    assert len(second.items) == 11 and second.next_cursor is None
    assert env.query(1) == {"limit": "50", "page": "2"}


@pytest.mark.parametrize("cursor", ["not-a-cursor!", encode_cursor({"state": "closed"}), encode_cursor({})])
async def test_foreign_cursor_is_an_invalid_request(env: Env, cursor: str) -> None:
    env.fake.seed_repo("alice", "r", {"README.md": "x\n"})
    with pytest.raises(InvalidRequest, match="cursor"):
        await env.plugin.list_branches(g.ListBranchesParams(repo="alice/r", cursor=cursor), env.ctx)
    assert env.transport.requests == []


# -- rate limits -----------------------------------------------------------------------------------


async def test_429_with_retry_after_is_rate_limited(env: Env) -> None:
    env.fake.router.inject(json_response(429, {"message": "rate limit exceeded"}, {"Retry-After": "7"}))
    with pytest.raises(RateLimited) as info:
        await env.plugin.get_repository(g.GetRepositoryParams(repo="alice/r"), env.ctx)
    assert info.value.retry_after == 7.0
    assert info.value.details["retry_after"] == 7.0
    assert env.ctx.meta["rate_limit"]["retry_after"] == 7.0


async def test_403_with_exhausted_window_is_rate_limited_until_reset(env: Env) -> None:
    headers = {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(int(NOW) + 30),
    }
    env.fake.router.inject(json_response(403, {"message": "API rate limit exceeded"}, headers))
    with pytest.raises(RateLimited) as info:
        await env.plugin.get_repository(g.GetRepositoryParams(repo="alice/r"), env.ctx)
    assert info.value.retry_after == 30.0
    assert env.ctx.meta["rate_limit"] == {"limit": 5000, "remaining": 0, "reset": NOW + 30}


async def test_403_without_limit_headers_is_forbidden(env: Env) -> None:
    env.fake.seed_repo("bob", "theirs", {"README.md": "x\n"})
    with pytest.raises(Forbidden, match="permission"):
        await env.plugin.delete_repository(g.DeleteRepositoryParams(repo="bob/theirs"), env.ctx)


async def test_rate_limit_headroom_reaches_context_and_health(env: Env) -> None:
    headers = {
        "X-RateLimit-Limit": "5000",
        "X-RateLimit-Remaining": "120",
        "X-RateLimit-Reset": str(int(NOW) + 600),
    }
    env.fake.router.inject(json_response(200, env.fake.user_json("alice"), headers), template="/user")
    health = await env.plugin.health_check()
    assert health.status == "degraded" and "headroom" in health.detail
    assert health.rate_limit == {"limit": 5000, "remaining": 120, "reset": NOW + 600}
    assert health.latency_ms is not None and health.latency_ms >= 0


# -- error mapping -----------------------------------------------------------------------------------


async def test_404_is_not_found_with_the_vendor_message(env: Env) -> None:
    with pytest.raises(NotFound) as info:
        await env.plugin.get_repository(g.GetRepositoryParams(repo="alice/missing"), env.ctx)
    assert "404" in info.value.message and "The target couldn't be found" in info.value.message
    assert info.value.details["path"] == "/repos/alice/missing"


async def test_409_existing_repository_is_conflict(env: Env) -> None:
    env.fake.seed_repo("alice", "dup")
    with pytest.raises(Conflict, match="already exists"):
        await env.plugin.create_repository(g.CreateRepositoryParams(name="dup"), env.ctx)


async def test_422_is_invalid_request_with_the_reason(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "same", {"README.md": "x\n"})
    env.fake.push(repo, "copy", {}, "nothing new", "alice")
    repo.branches["copy"] = repo.branches["main"]
    with pytest.raises(InvalidRequest, match="no changes between the head and the base"):
        await env.plugin.create_pull_request(
            g.CreatePullRequestParams(repo="alice/same", title="t", head="copy"), env.ctx
        )


async def test_401_is_unauthorized_and_never_shows_the_token(spec_transport: Callable[..., Any]) -> None:
    e = await make(spec_transport, token="wrong-token-value")
    try:
        with pytest.raises(Unauthorized) as info:
            await e.plugin.get_repository(g.GetRepositoryParams(repo="alice/r"), e.ctx)
        text = f"{info.value} {info.value.to_dict()} {e.plugin.config!r} {e.plugin!r}"
        assert "wrong-token-value" not in text
        health = await e.plugin.health_check()
        assert health.status == "unhealthy" and "401" in health.detail
    finally:
        await e.plugin.dispose()


async def test_5xx_is_provider_unavailable(env: Env) -> None:
    env.fake.router.inject(
        httpx.Response(502, text="<html>Bad Gateway</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(ProviderUnavailable) as info:
        await env.plugin.get_repository(g.GetRepositoryParams(repo="alice/r"), env.ctx)
    assert info.value.sent is True and "502" in info.value.message and "<html>" not in info.value.message


async def test_subgroups_are_rejected_before_sending(env: Env) -> None:
    with pytest.raises(InvalidRequest, match="owner/name"):
        await env.plugin.get_repository(g.GetRepositoryParams(repo="a/b/c"), env.ctx)
    assert env.transport.requests == []


# -- merges --------------------------------------------------------------------------------------


def _diverged(fake: GiteaFake) -> None:
    repo = fake.seed_repo("alice", "clash", {"app.txt": "one\n"})
    fake.push(repo, "feature", {"app.txt": "feature\n"}, "feature edit", "alice")
    fake.push(repo, "main", {"app.txt": "main\n"}, "main edit", "alice")


async def test_conflicting_pull_request_cannot_be_merged(env: Env) -> None:
    _diverged(env.fake)
    pr = await env.plugin.create_pull_request(
        g.CreatePullRequestParams(repo="alice/clash", title="Clash", head="feature"), env.ctx
    )
    assert pr.mergeable is False
    with pytest.raises(Conflict, match="cannot be merged"):
        await env.plugin.merge_pull_request(
            g.MergePullRequestParams(repo="alice/clash", number=pr.number), env.ctx
        )
    again = await env.plugin.get_pull_request(
        g.PullRequestParams(repo="alice/clash", number=pr.number), env.ctx
    )
    assert again.state == "open"


async def test_merge_branch_failure_closes_its_pull_request(env: Env) -> None:
    _diverged(env.fake)
    with pytest.raises(Conflict):
        await env.plugin.merge_branch(
            g.MergeBranchParams(repo="alice/clash", base="main", head="feature"), env.ctx
        )
    pulls = env.fake.repos["alice/clash"].pulls
    assert [(p.title, p.state, p.merged) for p in pulls.values()] == [
        ("Merge branch 'feature' into main", "closed", False)
    ]


async def test_head_moved_since_sha_is_conflict(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "moving", {"a": "1\n"})
    env.fake.push(repo, "topic", {"b": "2\n"}, "b", "alice")
    pr = await env.plugin.create_pull_request(
        g.CreatePullRequestParams(repo="alice/moving", title="T", head="topic"), env.ctx
    )
    with pytest.raises(Conflict, match="head out of date"):
        await env.plugin.merge_pull_request(
            g.MergePullRequestParams(repo="alice/moving", number=pr.number, sha="0" * 40), env.ctx
        )


@pytest.mark.parametrize(("strategy", "parents"), [("merge", 2), ("squash", 1), ("rebase", 1)])
async def test_merge_strategies(env: Env, strategy: g.MergeStrategy, parents: int) -> None:
    repo = env.fake.seed_repo("alice", "styles", {"a": "1\n"})
    head = env.fake.push(repo, "topic", {"b": "2\n"}, "add b", "alice")
    pr = await env.plugin.create_pull_request(
        g.CreatePullRequestParams(repo="alice/styles", title="Add b", head="topic"), env.ctx
    )
    result = await env.plugin.merge_pull_request(
        g.MergePullRequestParams(
            repo="alice/styles", number=pr.number, strategy=strategy, message="Ship b\n\nBecause."
        ),
        env.ctx,
    )
    assert result.merged and result.strategy == strategy and result.sha == repo.branches["main"]
    assert len(repo.commits[result.sha].parents) == parents
    if strategy == "rebase":
        assert result.sha == head  # a fast-forward
    else:
        assert repo.commits[result.sha].message == "Ship b\n\nBecause."
    body = env.transport.requests[-2].content
    assert f'"Do":"{strategy}"'.encode() in body and b'"MergeTitleField":"Ship b"' in body


async def test_merge_branch_already_merged_makes_nothing(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "same", {"a": "1\n"})
    repo.branches["topic"] = repo.branches["main"]
    result = await env.plugin.merge_branch(
        g.MergeBranchParams(repo="alice/same", base="main", head="topic"), env.ctx
    )
    assert result.merged is False and result.sha == repo.branches["main"]
    assert repo.pulls == {}


# -- pull requests, files, repositories ---------------------------------------------------------------


async def test_draft_is_a_wip_title(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "drafts", {"a": "1\n"})
    env.fake.push(repo, "topic", {"b": "2\n"}, "b", "alice")
    pr = await env.plugin.create_pull_request(
        g.CreatePullRequestParams(repo="alice/drafts", title="Try", head="topic", draft=True), env.ctx
    )
    assert pr.draft is True and pr.title == "WIP: Try" and pr.base == "main"


async def test_list_merged_pull_requests(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "prs", {"a": "1\n"})
    for name in ("x", "y"):
        env.fake.push(repo, name, {name: "1\n"}, name, "alice")
        await env.plugin.create_pull_request(
            g.CreatePullRequestParams(repo="alice/prs", title=name, head=name), env.ctx
        )
    await env.plugin.merge_pull_request(g.MergePullRequestParams(repo="alice/prs", number=1), env.ctx)
    await env.plugin.close_pull_request(g.PullRequestParams(repo="alice/prs", number=2), env.ctx)
    merged = await env.plugin.list_pull_requests(
        g.ListPullRequestsParams(repo="alice/prs", state="merged"), env.ctx
    )
    closed = await env.plugin.list_pull_requests(
        g.ListPullRequestsParams(repo="alice/prs", state="closed"), env.ctx
    )
    assert [p.number for p in merged.items] == [1]
    assert sorted((p.number, p.state) for p in closed.items) == [(1, "merged"), (2, "closed")]
    assert env.query(-1)["state"] == "closed"


async def test_commits_of_an_empty_repository(env: Env) -> None:
    env.fake.seed_repo("alice", "empty")
    page = await env.plugin.list_commits(g.ListCommitsParams(repo="alice/empty"), env.ctx)
    assert page.items == [] and page.next_cursor is None


async def test_commits_of_a_path(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "hist", {"a": "1\n"})
    env.fake.push(repo, "main", {"b": "1\n"}, "add b", "alice")
    env.fake.push(repo, "main", {"a": "2\n"}, "change a", "alice")
    page = await env.plugin.list_commits(g.ListCommitsParams(repo="alice/hist", path="a"), env.ctx)
    assert [c.message for c in page.items] == ["change a", "Initial commit"]
    assert env.query(0) == {
        "path": "a",
        "stat": "false",
        "verification": "false",
        "files": "false",
        "limit": "30",
    }


async def test_directory_is_not_a_file(env: Env) -> None:
    env.fake.seed_repo("alice", "tree", {"docs/a.md": "a", "docs/b.md": "b"})
    with pytest.raises(InvalidRequest, match="directory"):
        await env.plugin.get_file(g.GetFileParams(repo="alice/tree", path="docs"), env.ctx)


async def test_binary_file_round_trip_and_update(env: Env) -> None:
    env.fake.seed_repo("alice", "bin", {"README.md": "x\n"})
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\xff").decode()
    made = await env.plugin.put_file(
        g.PutFileParams(
            repo="alice/bin", path="img/logo.png", content=png, encoding="base64", message="logo"
        ),
        env.ctx,
    )
    got = await env.plugin.get_file(g.GetFileParams(repo="alice/bin", path="img/logo.png"), env.ctx)
    assert (got.encoding, got.content, got.sha) == ("base64", png, made.sha)
    updated = await env.plugin.put_file(
        g.PutFileParams(
            repo="alice/bin",
            path="img/logo.png",
            content="text now",
            message="text",
            sha=made.sha,
            author_name="Robot",
            author_email="robot@example.com",
        ),
        env.ctx,
    )
    assert updated.commit.author_name == "Robot" and updated.commit.parents == [made.commit.sha]
    assert [r.method for r in env.transport.requests] == ["POST", "GET", "PUT"]
    with pytest.raises(InvalidRequest, match="base64"):
        await env.plugin.put_file(
            g.PutFileParams(repo="alice/bin", path="x", content="%%%", encoding="base64", message="m"),
            env.ctx,
        )


async def test_create_in_an_organization(env: Env) -> None:
    repo = await env.plugin.create_repository(
        g.CreateRepositoryParams(name="svc", owner="acme", private=True), env.ctx
    )
    assert (repo.full_name, repo.owner, repo.private) == ("acme/svc", "acme", True)
    mine = await env.plugin.create_repository(g.CreateRepositoryParams(name="own", owner="alice"), env.ctx)
    assert mine.full_name == "alice/own"
    with pytest.raises(NotFound, match="organization 'nowhere'"):
        await env.plugin.create_repository(g.CreateRepositoryParams(name="x", owner="nowhere"), env.ctx)
    listed = await env.plugin.list_repositories(g.ListRepositoriesParams(owner="acme"), env.ctx)
    assert [r.full_name for r in listed.items] == ["acme/svc"]
    assert [m for m, _ in env.transport.calls()].count("GET") >= 2  # /user looked up once, then listing
    assert sum(1 for _, t in env.transport.calls() if t == "/user") == 1


async def test_update_repository(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "old", {"a": "1\n"})
    env.fake.push(repo, "dev", {"b": "1"}, "b", "alice")
    updated = await env.plugin.update_repository(
        g.UpdateRepositoryParams(
            repo="alice/old", new_name="new", description="renamed", default_branch="dev", archived=True
        ),
        env.ctx,
    )
    assert (updated.full_name, updated.description, updated.default_branch, updated.archived) == (
        "alice/new",
        "renamed",
        "dev",
        True,
    )
    unchanged = await env.plugin.update_repository(g.UpdateRepositoryParams(repo="alice/new"), env.ctx)
    assert unchanged.full_name == "alice/new" and env.transport.calls()[-1] == (
        "GET",
        "/repos/{owner}/{repo}",
    )


async def test_compare_reports_ahead_and_behind(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "cmp", {"a": "1\n"})
    env.fake.push(repo, "feat/x", {"b": "1\n"}, "b1", "alice")
    env.fake.push(repo, "feat/x", {"c": "1\n"}, "c1", "alice")
    env.fake.push(repo, "main", {"d": "1\n"}, "d1", "alice")
    cmp = await env.plugin.compare_commits(
        g.CompareCommitsParams(repo="alice/cmp", base="main", head="feat/x"), env.ctx
    )
    assert (cmp.ahead_by, cmp.behind_by) == (2, 1)
    assert [c.message for c in cmp.commits] == ["c1", "b1"] and cmp.files == []
    assert env.transport.requests[0].url.raw_path.endswith(b"/compare/main...feat/x")


async def test_reviews_follow_gitea_rules(env: Env, spec_transport: Callable[..., Any]) -> None:
    repo = env.fake.seed_repo("alice", "rev", {"a": "1\n"})
    env.fake.push(repo, "topic", {"b": "1\n"}, "b", "alice")
    pr = await env.plugin.create_pull_request(
        g.CreatePullRequestParams(repo="alice/rev", title="T", head="topic"), env.ctx
    )
    with pytest.raises(InvalidRequest, match="own pull request"):
        await env.plugin.review_pull_request(
            g.ReviewPullRequestParams(repo="alice/rev", number=pr.number, event="approve"), env.ctx
        )
    bob = GiteaGitPlugin("bob", transport=env.transport)
    await bob.initialize(
        GiteaGitPlugin.Config.model_validate(
            {"baseUrl": BASE, "auth": {"type": "token", "token": "token-bob"}}
        )
    )
    await bob.start()
    try:
        with pytest.raises(InvalidRequest, match="requires a body"):
            await bob.review_pull_request(
                g.ReviewPullRequestParams(repo="alice/rev", number=pr.number, event="request_changes"),
                env.ctx,
            )
        review = await bob.review_pull_request(
            g.ReviewPullRequestParams(
                repo="alice/rev", number=pr.number, event="request_changes", body="Tests?"
            ),
            env.ctx,
        )
        assert (review.state, review.author, review.commit_sha) == (
            "changes_requested",
            "bob",
            repo.branches["topic"],
        )
    finally:
        await bob.dispose()


async def test_statuses_carry_their_commit(env: Env) -> None:
    repo = env.fake.seed_repo("alice", "ci", {"a": "1\n"})
    sha = repo.branches["main"]
    for state in ("pending", "success"):
        await env.plugin.set_commit_status(
            g.SetCommitStatusParams(repo="alice/ci", sha=sha, state=state, context="ci/build"), env.ctx
        )
    listed = await env.plugin.list_commit_statuses(
        g.ListCommitStatusesParams(repo="alice/ci", ref="main"), env.ctx
    )
    assert [(s.sha, s.state) for s in listed.items] == [(sha, "success"), (sha, "pending")]


# -- passthrough, config -------------------------------------------------------------------------------


async def test_passthrough(env: Env) -> None:
    env.fake.seed_repo("alice", "pt", {"a": "1\n"})
    result = await env.plugin.passthrough(
        g.PassthroughParams(path="/repos/alice/pt/branches", query={"limit": "1"}), env.ctx
    )
    assert result.status == 200 and result.provider == "gitea"
    assert [b["name"] for b in result.body] == ["main"] and result.headers["x-total-count"] == "1"
    made = await env.plugin.passthrough(
        g.PassthroughParams(method="POST", path="/user/repos", body={"name": "raw", "private": True}), env.ctx
    )
    assert made.status == 201 and made.body["full_name"] == "alice/raw"


@pytest.mark.parametrize(
    "path",
    [
        "https://evil.example/api/v1/user",
        "//evil.example/user",
        "/../../etc/passwd",
        "/repos/%2e%2e/%2e%2e/x",
        "/user?token=x",
        "user",
        "/a\\b",
    ],
)
async def test_passthrough_cannot_leave_the_api(env: Env, path: str) -> None:
    with pytest.raises(InvalidRequest, match="path"):
        await env.plugin.passthrough(g.PassthroughParams(path=path), env.ctx)
    assert env.transport.requests == []


def test_config_normalizes_urls() -> None:
    cfg = GiteaGitPlugin.Config.model_validate(
        {"baseUrl": "https://git.example.com/", "auth": {"token": "t"}}
    )
    assert cfg.base_url == "https://git.example.com/api/v1"  # type: ignore[attr-defined]
    same = GiteaGitPlugin.Config.model_validate({"baseUrl": "https://git.example.com/gitea/api/v1"})
    assert same.base_url == "https://git.example.com/gitea/api/v1"  # type: ignore[attr-defined]
    plugin = GiteaGitPlugin("x")
    plugin.config = same
    assert plugin.web_base == "https://git.example.com/gitea"


async def test_app_auth_is_not_a_gitea_thing() -> None:
    plugin = GiteaGitPlugin("x")
    cfg = GiteaGitPlugin.Config.model_validate(
        {"baseUrl": BASE, "auth": {"type": "app", "appId": 1, "installationId": 2, "privateKey": "k"}}
    )
    with pytest.raises(ConfigError, match="auth type 'app' is not supported by gitea"):
        await plugin.initialize(cfg)


async def test_forgejo_against_its_own_description(spec_transport: Callable[..., Any]) -> None:
    e = await make(spec_transport, flavour="forgejo")
    try:
        repo = e.fake.seed_repo("alice", "fj", {"a": "1\n"})
        e.fake.push(repo, "topic", {"b": "1\n", "a": None}, "swap", "alice")
        cmp = await e.plugin.compare_commits(
            g.CompareCommitsParams(repo="alice/fj", base="main", head="topic"), e.ctx
        )
        assert sorted((f.path, f.status) for f in cmp.files) == [("a", "removed"), ("b", "added")]
        assert cmp.provider == "forgejo" and e.transport.spec.name == "forgejo"
    finally:
        await e.plugin.dispose()
