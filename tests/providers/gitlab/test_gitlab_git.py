"""GitLabGitPlugin against the stateful GitLab fake; every request validated against GitLab's
description (``spec.py``). What the shared conformance suite does not cover: subgroups, auth
styles, pagination, rate limits, error mapping, merge strategies, reviews, statuses, concurrency."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from tests.providers.gitlab.fake import GitLabFake
from tests.providers.gitlab.gitmodel import blob_sha
from tests.providers.gitlab.spec import gitlab_spec
from tests.support.conformance import shutdown, started
from tests.support.fake_upstream import json_response
from tests.support.spec_validation import SpecValidatingTransport, validating

from mosaic.catalog.git import CreateRepositoryParams
from mosaic.catalog.registry import CATALOG
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
from mosaic.providers.gitlab.git import GitLabGitPlugin
from mosaic.providers.gitlab.pagination import GitLabPagination, slice_page

BASE = "https://gitlab.test"
NOW = 1_714_557_600.0


@dataclass
class Env:
    fake: GitLabFake
    transport: SpecValidatingTransport
    alice: GitLabGitPlugin
    bob: GitLabGitPlugin

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.raw_path.decode()}" for r in self.transport.requests]


async def plugin(transport: httpx.AsyncBaseTransport, auth: dict[str, Any], name: str = "gitlab",
                 **extra: Any) -> GitLabGitPlugin:
    made = await started(GitLabGitPlugin(name, transport=transport, clock=lambda: NOW),
                         {"baseUrl": BASE, "auth": auth, **extra})
    assert isinstance(made, GitLabGitPlugin)
    made.rebase_poll_s = 0.0
    return made


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    fake = GitLabFake(BASE)
    fake.add_user("alice", "glpat-alice")
    fake.add_user("bob", "glpat-bob")
    fake.add_group("acme", ["alice", "bob"])
    fake.add_group("acme/platform", ["alice", "bob"])
    transport = validating(gitlab_spec(), fake.transport())
    alice = await plugin(transport, {"type": "token", "token": "glpat-alice"}, "gitlab-alice")
    bob = await plugin(transport, {"type": "bearer", "token": "glpat-bob"}, "gitlab-bob")
    yield Env(fake, transport, alice, bob)
    await shutdown(alice, bob)
    transport.assert_clean()


async def call(p: GitLabGitPlugin, operation: str, ctx: RequestContext | None = None, /, **params: Any) -> Any:
    op = CATALOG[f"git.{operation}"]
    result = await p.call(op, op.params(**params), ctx or RequestContext())
    assert isinstance(result, BaseModel)
    return result


def seed(env: Env, path: str = "acme/platform/svc") -> str:
    env.fake.add_project(path, {"README.md": "# svc\n", "src/app.py": "print('hi')\n"}, creator="alice")
    return path


# -- config and auth -----------------------------------------------------------------------------

def test_base_url_defaults_to_gitlab_com_and_accepts_an_instance_root() -> None:
    cfg = GitLabGitPlugin.Config.model_validate({})
    assert cfg.base_url == "https://gitlab.com/api/v4"  # type: ignore[attr-defined]
    own = GitLabGitPlugin.Config.model_validate({"baseUrl": "https://git.example.com/"})
    assert own.base_url == "https://git.example.com/api/v4"  # type: ignore[attr-defined]


async def test_web_base_is_the_instance_root(env: Env) -> None:
    assert env.alice.web_base == BASE


async def test_token_is_a_private_token_header_and_oauth_a_bearer(env: Env) -> None:
    path = seed(env)
    await call(env.alice, "get_repository", repo=path)
    await call(env.bob, "get_repository", repo=path)
    first, second = env.transport.requests
    assert first.headers["private-token"] == "glpat-alice" and "authorization" not in first.headers
    assert second.headers["authorization"] == "Bearer glpat-bob" and "private-token" not in second.headers


@pytest.mark.parametrize("auth", [{"type": "basic", "username": "u", "password": "p"},
                                  {"type": "app", "appId": 1, "installationId": 2, "privateKey": "k"}])
async def test_gitlab_refuses_basic_and_app_auth(auth: dict[str, Any]) -> None:
    p = GitLabGitPlugin("gitlab")
    with pytest.raises(ConfigError, match="not supported by gitlab"):
        await p.initialize(GitLabGitPlugin.Config.model_validate({"baseUrl": BASE, "auth": auth}))


async def test_bad_token_is_unauthorized(env: Env) -> None:
    stranger = await plugin(env.transport, {"type": "token", "token": "nope"})
    with pytest.raises(Unauthorized):
        await call(stranger, "get_repository", repo=seed(env))
    await shutdown(stranger)


# -- subgroups -------------------------------------------------------------------------------------

async def test_subgroup_paths_are_url_encoded_project_ids(env: Env) -> None:
    path = seed(env)
    repo = await call(env.alice, "get_repository", repo=path)
    assert (repo.owner, repo.name, repo.full_name) == ("acme/platform", "svc", path)
    assert repo.url == f"{BASE}/acme/platform/svc"
    f = await call(env.alice, "get_file", repo=path, path="src/app.py")
    assert (f.content, f.sha, f.ref) == ("print('hi')\n", blob_sha(b"print('hi')\n"), None)
    assert f.url == f"{BASE}/acme/platform/svc/-/blob/HEAD/src/app.py"
    branch = await call(env.alice, "create_branch", repo=path, branch="feature/x")
    assert branch.id == f"{path}:feature/x"
    assert (await call(env.alice, "get_branch", repo=path, branch="feature/x")).sha == branch.sha
    listed = await call(env.alice, "list_repositories", owner="acme/platform")
    assert [r.full_name for r in listed.items] == [path]
    assert env.paths() == [
        "GET /api/v4/projects/acme%2Fplatform%2Fsvc",
        "GET /api/v4/projects/acme%2Fplatform%2Fsvc/repository/files/src%2Fapp.py?ref=HEAD",
        "GET /api/v4/projects/acme%2Fplatform%2Fsvc",
        "POST /api/v4/projects/acme%2Fplatform%2Fsvc/repository/branches",
        "GET /api/v4/projects/acme%2Fplatform%2Fsvc/repository/branches/feature%2Fx",
        "GET /api/v4/namespaces/acme%2Fplatform",
        "GET /api/v4/groups/acme%2Fplatform/projects?order_by=id&sort=asc&per_page=30",
    ]


async def test_create_in_a_subgroup_namespace(env: Env) -> None:
    # The catalog's `owner` is one name segment today (see the report); the plugin itself resolves
    # any namespace path, so a subgroup works as soon as the catalog lets one through.
    params = CreateRepositoryParams.model_construct(name="tool", owner="acme/platform", description="",
                                                    private=True, default_branch="main", auto_init=True)
    repo = await env.alice.create_repository(params, RequestContext())
    assert (repo.full_name, repo.owner, repo.private) == ("acme/platform/tool", "acme/platform", True)
    assert env.fake.project_by_path("acme/platform/tool") is not None


async def test_create_in_an_unknown_namespace_is_not_found(env: Env) -> None:
    with pytest.raises(NotFound, match="namespace 'ghosts'"):
        await call(env.alice, "create_repository", name="x", owner="ghosts")


# -- pagination and rate limits -------------------------------------------------------------------

async def test_listing_walks_three_pages_with_x_next_page(env: Env) -> None:
    path = seed(env)
    project = env.fake.project_by_path(path)
    assert project is not None
    for i in range(6):
        project.repo.branches[f"b{i}"] = project.repo.branches["main"]
    names: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await call(env.alice, "list_branches", repo=path, limit=3, cursor=cursor)
        pages += 1
        names += [b.name for b in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3 and names == ["b0", "b1", "b2", "b3", "b4", "b5", "main"]
    queries = [r.url.params for r in env.transport.requests]
    assert [(q.get("page"), q.get("per_page")) for q in queries] == [(None, "3"), ("2", "3"), ("3", "3")]


def test_pagination_reads_x_next_page_then_keyset_links() -> None:
    pages = GitLabPagination()
    last = httpx.Response(200, headers={"X-Next-Page": ""})
    assert pages.next_params(last, [], {"per_page": "3"}, 3) is None
    offset = httpx.Response(200, headers={"X-Next-Page": "4"})
    assert pages.next_params(offset, [], {"per_page": "3"}, 3) == {"page": "4", "per_page": "3"}
    keyset = httpx.Response(200, headers={"Link": '<https://gitlab.test/api/v4/projects?id_after=42&'
                                                  'per_page=3&pagination=keyset&order_by=id>; rel="next"'})
    assert pages.next_params(keyset, [], {"per_page": "3"}, 3) == {"id_after": "42", "per_page": "3"}
    assert pages.next_params(httpx.Response(200), [], {}, 0) is None


def test_slice_page_cursor_is_an_offset_and_refuses_forgeries() -> None:
    items, cursor = slice_page(list(range(5)), limit=2, cursor=None)
    assert items == [0, 1] and cursor
    items, cursor = slice_page(list(range(5)), limit=2, cursor=cursor)
    assert items == [2, 3] and cursor
    assert slice_page(list(range(5)), limit=2, cursor=cursor) == ([4], None)
    from mosaic.plugins.http_pagination import encode_cursor
    with pytest.raises(InvalidRequest):
        slice_page([1], limit=1, cursor=encode_cursor({"offset": "-1"}))


async def test_rate_limit_exhaustion_is_rate_limited_with_the_reset(env: Env) -> None:
    path = seed(env)
    env.fake.router.inject(json_response(429, {"message": "Retry later"}, {
        "RateLimit-Limit": "2000", "RateLimit-Remaining": "0", "RateLimit-Reset": str(int(NOW) + 45),
        "RateLimit-ResetTime": "Wed, 01 May 2024 10:00:45 GMT", "Retry-After": "45"}))
    ctx = RequestContext()
    with pytest.raises(RateLimited) as caught:
        await call(env.alice, "get_repository", ctx, repo=path)
    assert caught.value.retry_after == 45.0
    assert ctx.meta["rate_limit"] == {"limit": 2000, "remaining": 0, "reset": NOW + 45, "retry_after": 45.0}


async def test_rate_limit_without_retry_after_waits_until_the_reset(env: Env) -> None:
    path = seed(env)
    env.fake.router.inject(json_response(429, {"message": "Retry later"}, {
        "RateLimit-Limit": "2000", "RateLimit-Remaining": "0", "RateLimit-Reset": str(int(NOW) + 12)}))
    with pytest.raises(RateLimited) as caught:
        await call(env.alice, "get_repository", repo=path)
    assert caught.value.retry_after == 12.0


async def test_health_check_reports_headroom(env: Env) -> None:
    healthy = await env.alice.health_check()
    assert healthy.status == "healthy" and healthy.rate_limit is not None
    assert healthy.rate_limit["limit"] == 2000
    env.fake.rate_remaining = 51  # 2.5% left after this call
    degraded = await env.alice.health_check()
    assert degraded.status == "degraded" and "headroom" in degraded.detail


# -- error mapping ---------------------------------------------------------------------------------

async def test_errors_map_to_typed_errors(env: Env) -> None:
    path = seed(env)
    with pytest.raises(NotFound):  # 404 "404 Project Not Found"
        await call(env.alice, "get_repository", repo="acme/none")
    await call(env.alice, "create_repository", name="dup", owner="acme")
    with pytest.raises(Conflict, match="already exists"):  # 400 "has already been taken"
        await call(env.alice, "create_repository", name="dup", owner="acme")
    with pytest.raises(Conflict):  # 400 "Branch already exists"
        await call(env.alice, "create_branch", repo=path, branch="main")
    with pytest.raises(NotFound, match="ref 'nope'"):  # 400 "Invalid reference name"
        await call(env.alice, "create_branch", repo=path, branch="x", from_ref="nope")
    with pytest.raises(InvalidRequest):  # 422 source branch does not exist
        await call(env.alice, "create_pull_request", repo=path, title="t", head="ghost")
    await call(env.alice, "create_branch", repo=path, branch="f")
    await call(env.alice, "put_file", repo=path, path="f.txt", content="f\n", message="f", branch="f")
    await call(env.alice, "create_pull_request", repo=path, title="t", head="f")
    with pytest.raises(Conflict, match="Another open merge request"):  # 409
        await call(env.alice, "create_pull_request", repo=path, title="t2", head="f")


async def test_writing_without_membership_is_forbidden(env: Env) -> None:
    env.fake.add_project("alice/solo", {"a.txt": "a\n"}, visibility="public", creator="alice")
    with pytest.raises(Forbidden):
        await call(env.bob, "create_branch", repo="alice/solo", branch="x")


# -- files -----------------------------------------------------------------------------------------

async def test_put_file_writes_through_the_commits_api(env: Env) -> None:
    path = seed(env)
    made = await call(env.alice, "put_file", repo=path, path="bin/data.bin",
                      content=base64.b64encode(b"\x00\xff\x10").decode(), encoding="base64",
                      message="Add data\n\nbinary", author_name="Robot", author_email="robot@example.com")
    assert made.sha == blob_sha(b"\x00\xff\x10") and made.path == "bin/data.bin"
    assert (made.commit.message, made.commit.author_name) == ("Add data\n\nbinary", "Robot")
    sent = next(r for r in env.transport.requests if r.method == "POST")
    assert sent.url.raw_path.decode().endswith("/repository/commits")
    body = httpx.Response(200, content=sent.content).json()
    assert body == {"branch": "main", "commit_message": "Add data\n\nbinary", "author_name": "Robot",
                    "author_email": "robot@example.com",
                    "actions": [{"action": "create", "file_path": "bin/data.bin", "content": "AP8Q",
                                 "encoding": "base64"}]}
    got = await call(env.alice, "get_file", repo=path, path="bin/data.bin", ref="main")
    assert (got.encoding, got.content, got.sha) == ("base64", "AP8Q", made.sha)


async def test_put_file_update_checks_the_blob_and_pins_last_commit_id(env: Env) -> None:
    path = seed(env)
    current = await call(env.alice, "get_file", repo=path, path="README.md", ref="main")
    with pytest.raises(Conflict, match="changed since"):
        await call(env.alice, "put_file", repo=path, path="README.md", content="x", message="x",
                   sha="0" * 40)
    with pytest.raises(NotFound, match="omit sha"):
        await call(env.alice, "put_file", repo=path, path="nope.md", content="x", message="x", sha=current.sha)
    updated = await call(env.alice, "put_file", repo=path, path="README.md", content="# new\n", message="m",
                         sha=current.sha)
    assert updated.sha == blob_sha(b"# new\n")
    sent = [r for r in env.transport.requests if r.method == "POST"][-1]
    action = httpx.Response(200, content=sent.content).json()["actions"][0]
    assert action["action"] == "update" and action["last_commit_id"]


async def test_put_file_loses_a_race_as_a_conflict(env: Env) -> None:
    """Someone pushes between the plugin's read and its write: GitLab's last_commit_id check wins."""
    path = seed(env)
    project = env.fake.project_by_path(path)
    assert project is not None
    sha = blob_sha(b"# svc\n")
    def racing(request: httpx.Request) -> httpx.Response:
        response = env.fake._handle(request)
        if request.method == "GET" and "/repository/files/" in request.url.path and project.repo.commits[
                project.repo.branches["main"]].tree["README.md"] == b"# svc\n":
            project.repo.push("main", {"README.md": "# theirs\n"}, "theirs", env.fake.person("bob"))
        return response

    transport = validating(gitlab_spec(), racing)
    p = await plugin(transport, {"type": "token", "token": "glpat-alice"})
    with pytest.raises(Conflict, match="changed since"):
        await call(p, "put_file", repo=path, path="README.md", content="# mine\n", message="mine", sha=sha)
    assert project.repo.commits[project.repo.branches["main"]].tree["README.md"] == b"# theirs\n"
    await shutdown(p)
    transport.assert_clean()


# -- merge requests --------------------------------------------------------------------------------

async def open_mr(env: Env, path: str, branch: str = "feature", **kw: Any) -> Any:
    await call(env.alice, "create_branch", repo=path, branch=branch)
    await call(env.alice, "put_file", repo=path, path=f"{branch}.txt", content="x\n", message=f"add {branch}",
               branch=branch)
    return await call(env.alice, "create_pull_request", repo=path, title=f"Add {branch}", head=branch, **kw)


async def test_draft_is_a_title_prefix(env: Env) -> None:
    pr = await open_mr(env, seed(env), draft=True)
    assert (pr.title, pr.draft, pr.number) == ("Draft: Add feature", True, 1)
    with pytest.raises(Conflict, match="cannot be merged"):  # 405: drafts can't be merged
        await call(env.alice, "merge_pull_request", repo="acme/platform/svc", number=pr.number)


async def test_squash_merge(env: Env) -> None:
    path = seed(env)
    pr = await open_mr(env, path)
    merged = await call(env.alice, "merge_pull_request", repo=path, number=pr.number, strategy="squash",
                        message="Squashed!")
    mr = env.fake.project_by_path(path).mrs[pr.number]  # type: ignore[union-attr]
    assert merged.merged and merged.strategy == "squash" and mr.squash_sha
    squash = await call(env.alice, "get_commit", repo=path, sha=mr.squash_sha)
    assert squash.message == "Squashed!"
    sent = next(r for r in env.transport.requests if r.url.path.endswith("/merge"))
    assert httpx.Response(200, content=sent.content).json() == {"squash": True,
                                                                  "squash_commit_message": "Squashed!"}


async def test_rebase_then_merge_polls_the_background_rebase(env: Env) -> None:
    path = seed(env)
    project = env.fake.project_by_path(path)
    assert project is not None
    project.merge_method = "ff"
    pr = await open_mr(env, path)
    project.repo.push("main", {"other.txt": "o\n"}, "meanwhile", env.fake.person("bob"))
    with pytest.raises(Conflict, match="cannot be merged"):  # 406: a fast-forward project needs a rebase
        await call(env.alice, "merge_pull_request", repo=path, number=pr.number, strategy="merge")
    merged = await call(env.alice, "merge_pull_request", repo=path, number=pr.number, strategy="rebase")
    head = project.repo.branches["feature"]
    assert merged.merged and merged.sha == head == project.repo.branches["main"]  # linear: fast-forwarded
    polls = [r for r in env.transport.requests if r.url.params.get("include_rebase_in_progress") == "true"]
    assert len(polls) == 2  # the fake's rebase is still running at the first poll


async def test_rebase_conflict_and_stale_sha(env: Env) -> None:
    path = seed(env)
    project = env.fake.project_by_path(path)
    assert project is not None
    pr = await open_mr(env, path)
    with pytest.raises(Conflict, match="head is"):
        await call(env.alice, "merge_pull_request", repo=path, number=pr.number, strategy="rebase", sha="0" * 40)
    with pytest.raises(Conflict, match="SHA does not match"):  # 409 from GitLab
        await call(env.alice, "merge_pull_request", repo=path, number=pr.number, sha="0" * 40)
    project.repo.push("main", {"feature.txt": "theirs\n"}, "clash", env.fake.person("bob"))
    with pytest.raises(Conflict, match="cannot be rebased"):
        await call(env.alice, "merge_pull_request", repo=path, number=pr.number, strategy="rebase")
    with pytest.raises(Conflict, match="Branch cannot be merged"):  # 406 conflicts
        await call(env.alice, "merge_pull_request", repo=path, number=pr.number)


async def test_merge_branch_closes_its_merge_request_when_refused(env: Env) -> None:
    path = seed(env)
    project = env.fake.project_by_path(path)
    assert project is not None
    await call(env.alice, "create_branch", repo=path, branch="topic")
    await call(env.alice, "put_file", repo=path, path="c.txt", content="topic\n", message="t", branch="topic")
    project.repo.push("main", {"c.txt": "main\n"}, "clash", env.fake.person("alice"))
    with pytest.raises(Conflict):
        await call(env.alice, "merge_branch", repo=path, base="main", head="topic")
    assert [m.state for m in project.mrs.values()] == ["closed"]


async def test_list_pull_requests_by_state(env: Env) -> None:
    path = seed(env)
    first = await open_mr(env, path, "one")
    second = await open_mr(env, path, "two")
    await call(env.alice, "merge_pull_request", repo=path, number=first.number)
    await call(env.alice, "close_pull_request", repo=path, number=second.number)
    by_state = {s: [x.number for x in (await call(env.alice, "list_pull_requests", repo=path, state=s)).items]
                for s in ("open", "closed", "merged", "all")}
    assert by_state == {"open": [], "closed": [2], "merged": [1], "all": [2, 1]}
    reopened = await call(env.alice, "update_pull_request", repo=path, number=2, state="open", body="again")
    assert (reopened.state, reopened.body) == ("open", "again")


async def test_pull_request_files_carry_patches(env: Env) -> None:
    path = seed(env)
    pr = await open_mr(env, path)
    files = await call(env.alice, "list_pull_request_files", repo=path, number=pr.number)
    assert [(f.path, f.status, f.additions, f.deletions) for f in files.items] == [("feature.txt", "added", 1, 0)]
    assert files.items[0].patch == "@@ -0,0 +1 @@\n+x\n"


# -- reviews ---------------------------------------------------------------------------------------

async def test_reviews(env: Env) -> None:
    path = seed(env)
    pr = await open_mr(env, path)
    with pytest.raises(Forbidden, match="refused to approve"):  # GitLab answers 401
        await call(env.alice, "review_pull_request", repo=path, number=pr.number, event="approve")
    approved = await call(env.bob, "review_pull_request", repo=path, number=pr.number, event="approve")
    assert (approved.state, approved.author, approved.commit_sha) == ("approved", "bob", pr.head_sha)
    approve = next(r for r in env.transport.requests if r.url.path.endswith("/approve") and r.method == "POST"
                   and r.headers.get("authorization"))
    project_id = env.fake.project_by_path(path).id  # type: ignore[union-attr]
    assert approve.url.path == f"/api/v4/projects/{project_id}/merge_requests/1/approve"
    listed = await call(env.alice, "list_reviews", repo=path, number=pr.number)
    assert [(r.id, r.state, r.author) for r in listed.items] == [(approved.id, "approved", "bob")]

    changes = await call(env.bob, "review_pull_request", repo=path, number=pr.number, event="request_changes",
                         body="Please add tests")
    assert (changes.state, changes.body) == ("changes_requested", "Please add tests")
    assert (await call(env.alice, "list_reviews", repo=path, number=pr.number)).items == []  # approval withdrawn

    env.fake.project_by_path(path).mrs[1].reviewers["bob"] = "requested_changes"  # type: ignore[union-attr]
    listed = await call(env.alice, "list_reviews", repo=path, number=pr.number)
    assert [(r.state, r.author) for r in listed.items] == [("changes_requested", "bob")]

    comment = await call(env.bob, "review_pull_request", repo=path, number=pr.number, event="comment",
                         body="Nice")
    assert (comment.state, comment.url) == ("commented", f"{BASE}/{path}/-/merge_requests/1#note_{comment.id}")
    with pytest.raises(InvalidRequest, match="needs a body"):
        await call(env.bob, "review_pull_request", repo=path, number=pr.number, event="comment")


# -- statuses, repositories, passthrough -----------------------------------------------------------

async def test_commit_status_is_idempotent_and_maps_states(env: Env) -> None:
    path = seed(env)
    sha = (await call(env.alice, "get_branch", repo=path, branch="main")).sha
    first = await call(env.alice, "set_commit_status", repo=path, sha=sha, state="pending", context="ci")
    again = await call(env.alice, "set_commit_status", repo=path, sha=sha, state="pending", context="ci")
    assert first.id == again.id and again.state == "pending"
    failed = await call(env.alice, "set_commit_status", repo=path, sha=sha, state="error", context="ci",
                        description="boom", target_url="https://ci.test/1")
    assert (failed.state, failed.description, failed.target_url) == ("failure", "boom", "https://ci.test/1")
    listed = await call(env.alice, "list_commit_statuses", repo=path, ref=sha)
    assert [(s.context, s.state) for s in listed.items] == [("ci", "failure")]
    with pytest.raises(NotFound):
        await call(env.alice, "set_commit_status", repo=path, sha="f" * 40, state="success")


async def test_update_repository_archives_after_renaming(env: Env) -> None:
    path = seed(env)
    updated = await call(env.alice, "update_repository", repo=path, new_name="svc2", private=False,
                         archived=True)
    assert (updated.full_name, updated.archived, updated.private) == ("acme/platform/svc2", True, False)
    project_id = env.fake.project_by_path("acme/platform/svc2").id  # type: ignore[union-attr]
    assert env.paths()[-1] == f"POST /api/v4/projects/{project_id}/archive"
    back = await call(env.alice, "update_repository", repo="acme/platform/svc2", archived=False,
                      description="again")
    assert (back.archived, back.description) == (False, "again")
    assert env.paths()[-2].endswith("/unarchive")


async def test_delete_repository_is_accepted(env: Env) -> None:
    path = seed(env)
    gone = await call(env.alice, "delete_repository", repo=path)
    assert gone.deleted and env.fake.project_by_path(path) is None
    with pytest.raises(NotFound):
        await call(env.alice, "get_repository", repo=path)


async def test_passthrough_uses_the_same_auth_and_refuses_escapes(env: Env) -> None:
    result = await call(env.alice, "passthrough", path="/user")
    assert result.status == 200 and result.body["username"] == "alice"
    assert result.headers["ratelimit-limit"] == "2000"
    with pytest.raises(InvalidRequest):
        await call(env.alice, "passthrough", path="/../../admin")


async def test_compare_counts_both_directions(env: Env) -> None:
    path = seed(env)
    project = env.fake.project_by_path(path)
    assert project is not None
    await call(env.alice, "create_branch", repo=path, branch="f")
    await call(env.alice, "put_file", repo=path, path="a.txt", content="a\nb\n", message="a", branch="f")
    project.repo.push("main", {"m.txt": "m\n"}, "main moves", env.fake.person("bob"))
    cmp = await call(env.alice, "compare_commits", repo=path, base="main", head="f")
    assert (cmp.ahead_by, cmp.behind_by) == (1, 1)
    assert [(f.path, f.status, f.additions) for f in cmp.files] == [("a.txt", "added", 2)]
