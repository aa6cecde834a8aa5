"""BitbucketGitPlugin against the stateful Bitbucket fake; every request validated against
``bitbucket.yaml`` (with the errata of ``spec.py``). What the shared conformance suite does not
cover: workspaces, auth styles, the /src form upload and its concurrency check, pagination, rate
limits, error mapping, merge strategies, reviews, statuses."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from tests.providers.bitbucket.fake import BitbucketFake
from tests.providers.bitbucket.spec import bitbucket_spec
from tests.support.conformance import shutdown, started
from tests.support.fake_upstream import json_response
from tests.support.spec_validation import SpecValidatingTransport, validating

from mosaic.catalog.registry import CATALOG
from mosaic.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    OperationNotSupported,
    RateLimited,
    Timeout,
    Unauthorized,
)
from mosaic.gateway.context import RequestContext
from mosaic.providers.bitbucket import forms
from mosaic.providers.bitbucket.git import BitbucketGitPlugin
from mosaic.providers.bitbucket.mapping import git_blob_sha, parse_author

API = "https://api.bitbucket.test/2.0"
WEB = "https://bitbucket.test"


@dataclass
class Env:
    fake: BitbucketFake
    transport: SpecValidatingTransport
    alice: BitbucketGitPlugin
    bob: BitbucketGitPlugin

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.raw_path.decode()}" for r in self.transport.requests]


async def plugin(transport: httpx.AsyncBaseTransport, auth: dict[str, Any], name: str = "bitbucket"
                 ) -> BitbucketGitPlugin:
    made = await started(BitbucketGitPlugin(name, transport=transport),
                         {"baseUrl": API, "webUrl": WEB, "auth": auth})
    assert isinstance(made, BitbucketGitPlugin)
    made.merge_poll_s = 0.0
    return made


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    fake = BitbucketFake(API, WEB)
    fake.add_user("alice", "token-alice", app_password="app-pw-alice")
    fake.add_user("bob", "token-bob")
    fake.add_workspace("acme", ["alice", "bob"])
    transport = validating(bitbucket_spec(), fake.transport())
    alice = await plugin(transport, {"type": "basic", "username": "alice", "password": "app-pw-alice"},
                         "bitbucket-alice")
    bob = await plugin(transport, {"type": "bearer", "token": "token-bob"}, "bitbucket-bob")
    yield Env(fake, transport, alice, bob)
    await shutdown(alice, bob)
    transport.assert_clean()


async def call(p: BitbucketGitPlugin, operation: str, ctx: RequestContext | None = None, /,
               **params: Any) -> Any:
    op = CATALOG[f"git.{operation}"]
    result = await p.call(op, op.params(**params), ctx or RequestContext())
    assert isinstance(result, BaseModel)
    return result


def seed(env: Env, name: str = "acme/api") -> str:
    env.fake.add_repo(name, {"README.md": "# api\n", "src/app.py": "print('hi')\n"})
    return name


def form_fields(request: httpx.Request) -> dict[str, tuple[str | None, bytes]]:
    message = BytesParser(policy=policy.HTTP).parsebytes(
        f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode() + request.content)
    out: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out[str(part.get_param("name", header="content-disposition"))] = (part.get_filename(), payload)
    return out


# -- config and auth -----------------------------------------------------------------------------

def test_defaults_are_bitbucket_cloud() -> None:
    cfg = BitbucketGitPlugin.Config.model_validate({})
    assert (cfg.base_url, cfg.web_url) == ("https://api.bitbucket.org/2.0", "https://bitbucket.org")  # type: ignore[attr-defined]


async def test_app_password_is_basic_and_access_token_is_bearer(env: Env) -> None:
    path = seed(env)
    await call(env.alice, "get_repository", repo=path)
    await call(env.bob, "get_repository", repo=path)
    token = await plugin(env.transport, {"type": "token", "token": "token-bob"})
    await call(token, "get_repository", repo=path)
    await shutdown(token)
    basic, bearer, plain = (r.headers["authorization"] for r in env.transport.requests)
    assert basic == "Basic " + base64.b64encode(b"alice:app-pw-alice").decode()
    assert bearer == plain == "Bearer token-bob"


async def test_app_auth_is_refused() -> None:
    with pytest.raises(ConfigError, match="not supported by bitbucket"):
        await BitbucketGitPlugin("bitbucket").initialize(BitbucketGitPlugin.Config.model_validate(
            {"auth": {"type": "app", "appId": 1, "installationId": 2, "privateKey": "k"}}))


async def test_bad_credentials_are_unauthorized(env: Env) -> None:
    stranger = await plugin(env.transport, {"type": "basic", "username": "alice", "password": "wrong"})
    with pytest.raises(Unauthorized):
        await call(stranger, "get_repository", repo=seed(env))
    await shutdown(stranger)


# -- workspaces and repositories ----------------------------------------------------------------

async def test_workspaces_are_owners(env: Env) -> None:
    mine = await call(env.alice, "create_repository", name="Notes", auto_init=False, private=True)
    assert (mine.full_name, mine.owner, mine.name, mine.private) == ("alice/notes", "alice", "notes", True)
    team = await call(env.alice, "create_repository", name="web", owner="acme", description="site",
                      default_branch="trunk")
    assert (team.full_name, team.default_branch, team.description) == ("acme/web", "trunk", "site")
    upload = next(r for r in env.transport.requests if r.url.path.endswith("/src"))
    fields = form_fields(upload)
    assert fields["/README.md"] == ("README.md", b"# web\n\nsite\n")
    assert (fields["branch"], fields["message"]) == ((None, b"trunk"), (None, b"Initial commit"))
    listed = await call(env.alice, "list_repositories", owner="acme")
    assert [r.full_name for r in listed.items] == ["acme/web"]
    everything = await call(env.bob, "list_repositories")
    assert [r.full_name for r in everything.items] == ["acme/web"]
    env.fake.add_workspace("other", ["bob"])
    with pytest.raises(Forbidden):
        await call(env.alice, "create_repository", name="x", owner="other")


async def test_update_repository_checks_existence_first_and_cannot_archive(env: Env) -> None:
    path = seed(env)
    with pytest.raises(NotFound):  # PUT would create it: the plugin never sends one
        await call(env.alice, "update_repository", repo="acme/ghost", description="x")
    assert not any(r.method == "PUT" for r in env.transport.requests)
    with pytest.raises(OperationNotSupported, match="no archived repositories"):
        await call(env.alice, "update_repository", repo=path, archived=True)
    renamed = await call(env.alice, "update_repository", repo=path, new_name="API2", private=False)
    assert (renamed.full_name, renamed.private) == ("acme/api2", False)


# -- files -----------------------------------------------------------------------------------------

async def test_get_file_hashes_the_bytes_it_serves(env: Env) -> None:
    path = seed(env)
    f = await call(env.alice, "get_file", repo=path, path="src/app.py")
    assert (f.content, f.encoding, f.sha) == ("print('hi')\n", "utf-8", git_blob_sha(b"print('hi')\n"))
    meta, raw = env.transport.requests[-2:]
    assert meta.url.params["format"] == "meta"
    assert raw.url.path.split("/src/")[1].startswith(f.raw["commit"]["hash"])  # the same snapshot
    with pytest.raises(InvalidRequest, match="directory"):
        await call(env.alice, "get_file", repo=path, path="src")
    with pytest.raises(NotFound):
        await call(env.alice, "get_file", repo=path, path="nope.txt")


def test_git_blob_sha_is_what_git_hash_object_prints() -> None:
    assert git_blob_sha(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert git_blob_sha(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"


async def test_put_file_uploads_a_form_pinned_to_the_branch_tip(env: Env) -> None:
    path = seed(env)
    tip = env.fake.repos[path].git.branches["main"]
    made = await call(env.alice, "put_file", repo=path, path="bin/data.bin", encoding="base64",
                      content=base64.b64encode(b"\x00\xff").decode(), message="Add data",
                      author_name="Robot", author_email="robot@example.com")
    upload = next(r for r in env.transport.requests if r.url.path.endswith("/src") and r.method == "POST")
    assert upload.url.query == b""  # the fields are in the body, not in the query
    fields = form_fields(upload)
    assert fields == {"/bin/data.bin": ("data.bin", b"\x00\xff"), "message": (None, b"Add data"),
                      "branch": (None, b"main"), "parents": (None, tip.encode()),
                      "author": (None, b"Robot <robot@example.com>")}
    assert made.sha == git_blob_sha(b"\x00\xff") and made.commit.parents == [tip]
    assert made.commit.author_name == "Robot" and made.commit.author_email == "robot@example.com"
    assert made.id == env.fake.repos[path].git.branches["main"]


async def test_put_file_checks_the_sha_and_existence(env: Env) -> None:
    path = seed(env)
    with pytest.raises(Conflict, match="already exists"):
        await call(env.alice, "put_file", repo=path, path="README.md", content="x", message="x")
    with pytest.raises(Conflict, match="changed since"):
        await call(env.alice, "put_file", repo=path, path="README.md", content="x", message="x", sha="0" * 40)
    with pytest.raises(NotFound, match="omit sha"):
        await call(env.alice, "put_file", repo=path, path="new.md", content="x", message="x", sha="0" * 40)
    with pytest.raises(NotFound, match="branch 'ghost'"):
        await call(env.alice, "put_file", repo=path, path="new.md", content="x", message="x", branch="ghost")
    with pytest.raises(InvalidRequest, match="author_email"):
        await call(env.alice, "put_file", repo=path, path="new.md", content="x", message="x", author_name="R")
    with pytest.raises(InvalidRequest, match="base64"):
        await call(env.alice, "put_file", repo=path, path="new.md", content="%%", encoding="base64", message="x")
    ok = await call(env.alice, "put_file", repo=path, path="README.md", content="# new\n", message="m",
                    sha=git_blob_sha(b"# api\n"))
    assert ok.sha == git_blob_sha(b"# new\n")


async def test_put_file_loses_a_race_as_a_conflict(env: Env) -> None:
    """A push lands between the plugin's read and its upload: Bitbucket's parents check refuses."""
    path = seed(env)
    repo = env.fake.repos[path]

    def racing(request: httpx.Request) -> httpx.Response:
        response = env.fake._handle(request)
        if request.method == "GET" and "/src/" in request.url.path and "meta" not in str(request.url.params):
            repo.git.push("main", {"other.txt": "theirs\n"}, "theirs", env.fake.person("bob"))
        return response

    transport = validating(bitbucket_spec(), racing)
    p = await plugin(transport, {"type": "bearer", "token": "token-alice"})
    with pytest.raises(Conflict, match="moved since it was read"):
        await call(p, "put_file", repo=path, path="README.md", content="# mine\n", message="mine",
                   sha=git_blob_sha(b"# api\n"))
    assert repo.git.commits[repo.git.branches["main"]].tree["README.md"] == b"# api\n"
    await shutdown(p)
    transport.assert_clean()


async def test_put_file_into_an_empty_repository_makes_the_root_commit(env: Env) -> None:
    empty = await call(env.alice, "create_repository", name="empty", owner="acme", auto_init=False)
    made = await call(env.alice, "put_file", repo=empty.full_name, path="a.txt", content="a\n", message="first",
                      branch="main")
    assert made.commit.parents == []
    assert (await call(env.alice, "get_repository", repo="acme/empty")).default_branch == "main"


def test_forms_escape_names_and_pick_a_boundary_absent_from_the_values() -> None:
    body, ctype = forms.encode([forms.Field('/we"ird\r\nname.txt', b"--x--", "we\"ird"),
                                forms.Field("message", b"hi")])
    boundary = ctype.split("boundary=")[1]
    assert body.count(f"--{boundary}".encode()) == 3 and b'name="/we%22ird%0D%0Aname.txt"' in body
    request = httpx.Request("POST", "https://x.test/", content=body, headers={"content-type": ctype})
    # Quotes and line breaks arrive percent-escaped (the HTML form convention): no header injection.
    assert form_fields(request) == {"/we%22ird%0D%0Aname.txt": ("we%22ird", b"--x--"), "message": (None, b"hi")}


def test_parse_author() -> None:
    assert parse_author("Ada Lovelace <ada@example.com>") == ("Ada Lovelace", "ada@example.com")
    assert parse_author("just a name") == ("just a name", None)
    assert parse_author("") == (None, None)


# -- pagination and rate limits -------------------------------------------------------------------

async def test_listing_follows_next_urls_over_three_pages(env: Env) -> None:
    path = seed(env)
    git = env.fake.repos[path].git
    for i in range(6):
        git.branches[f"b{i}"] = git.branches["main"]
    names: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        page = await call(env.alice, "list_branches", repo=path, limit=3, cursor=cursor)
        names += [b.name for b in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert names == ["b0", "b1", "b2", "b3", "b4", "b5", "main"]
    assert [(r.url.params.get("page"), r.url.params["pagelen"]) for r in env.transport.requests] == [
        (None, "3"), ("2", "3"), ("3", "3")]


async def test_commit_pages_use_opaque_tokens(env: Env) -> None:
    path = seed(env)
    for i in range(4):
        env.fake.repos[path].git.push("main", {f"f{i}": f"{i}\n"}, f"c{i}", env.fake.person("alice"))
    first = await call(env.alice, "list_commits", repo=path, limit=2)
    second = await call(env.alice, "list_commits", repo=path, limit=2, cursor=first.next_cursor)
    third = await call(env.alice, "list_commits", repo=path, limit=2, cursor=second.next_cursor)
    assert [c.message for p in (first, second, third) for c in p.items] == ["c3", "c2", "c1", "c0",
                                                                         "Initial commit"]
    assert third.next_cursor is None
    assert env.transport.requests[-1].url.params["page"] == "00000004"


async def test_rate_limited_with_retry_after(env: Env) -> None:
    path = seed(env)
    env.fake.router.inject(json_response(429, {"type": "error", "error": {
        "message": "Rate limit for this resource has been exceeded"}}, {
        "Retry-After": "60", "X-RateLimit-Limit": "1000", "X-RateLimit-Resource": "api/repositories"}))
    ctx = RequestContext()
    with pytest.raises(RateLimited, match="Rate limit for this resource") as caught:
        await call(env.alice, "get_repository", ctx, repo=path)
    assert caught.value.retry_after == 60.0
    assert ctx.meta["rate_limit"]["resource"] == "api/repositories"
    env.fake.router.inject(json_response(429, {"type": "error", "error": {"message": "slow down"}}))
    with pytest.raises(RateLimited) as unknown:
        await call(env.alice, "get_repository", repo=path)
    assert unknown.value.retry_after is None


async def test_health_check_uses_the_user_endpoint(env: Env) -> None:
    health = await env.bob.health_check()
    assert health.status == "healthy" and health.rate_limit == {"limit": 1000, "resource": "api"}
    assert env.paths() == ["GET /2.0/user"]


# -- errors ----------------------------------------------------------------------------------------

async def test_errors_map_to_typed_errors(env: Env) -> None:
    path = seed(env)
    with pytest.raises(NotFound):
        await call(env.alice, "get_repository", repo="acme/ghost")
    with pytest.raises(Conflict, match="already exists"):
        await call(env.alice, "create_repository", name="api", owner="acme")
    with pytest.raises(Conflict, match="already exists"):
        await call(env.alice, "create_branch", repo=path, branch="main")
    with pytest.raises(NotFound, match="ref 'nope'"):
        await call(env.alice, "create_branch", repo=path, branch="x", from_ref="nope")
    with pytest.raises(InvalidRequest, match="no changes"):
        await call(env.alice, "create_pull_request", repo=path, title="t", head="main")
    with pytest.raises(InvalidRequest, match="workspace/repo_slug"):
        await call(env.alice, "get_repository", repo="a/b/c")


async def test_create_branch_from_a_sha_or_the_main_branch(env: Env) -> None:
    path = seed(env)
    tip = env.fake.repos[path].git.branches["main"]
    by_sha = await call(env.alice, "create_branch", repo=path, branch="from-sha", from_ref=tip[:10])
    by_default = await call(env.alice, "create_branch", repo=path, branch="from-main")
    assert by_sha.sha == by_default.sha == tip
    assert env.paths()[0].endswith(f"/commit/{tip[:10]}")  # a sha is looked up as a commit first


# -- pull requests ---------------------------------------------------------------------------------

async def open_pr(env: Env, path: str, branch: str = "feature", **kw: Any) -> Any:
    await call(env.alice, "create_branch", repo=path, branch=branch)
    await call(env.alice, "put_file", repo=path, path=f"{branch}.txt", content="x\n", message=f"add {branch}",
               branch=branch)
    return await call(env.alice, "create_pull_request", repo=path, title=f"Add {branch}", head=branch, **kw)


async def test_pull_requests_expand_abbreviated_hashes_where_they_can(env: Env) -> None:
    path = seed(env)
    pr = await open_pr(env, path, draft=True)
    head = env.fake.repos[path].git.branches["feature"]
    assert (pr.head_sha, pr.draft, pr.base) == (head, True, "main")
    listed = await call(env.alice, "list_pull_requests", repo=path)
    assert listed.items[0].head_sha is None and listed.items[0].raw["source"]["commit"]["hash"] == head[:12]


async def test_list_pull_requests_by_state(env: Env) -> None:
    path = seed(env)
    one = await open_pr(env, path, "one")
    two = await open_pr(env, path, "two")
    await call(env.alice, "merge_pull_request", repo=path, number=one.number)
    await call(env.alice, "close_pull_request", repo=path, number=two.number)
    by_state = {s: [x.number for x in (await call(env.alice, "list_pull_requests", repo=path, state=s)).items]
                for s in ("open", "closed", "merged", "all")}
    assert by_state == {"open": [], "closed": [2], "merged": [1], "all": [2, 1]}
    queries = [r.url.params for r in env.transport.requests if r.url.path.endswith("/pullrequests")
               and r.method == "GET"]
    assert [q.get("state") for q in queries[:3]] == ["OPEN", None, "MERGED"]
    assert queries[1]["q"] == 'state="DECLINED" OR state="SUPERSEDED"'
    with pytest.raises(OperationNotSupported, match="cannot reopen"):
        await call(env.alice, "update_pull_request", repo=path, number=2, state="open")


async def test_merge_strategies(env: Env) -> None:
    path = seed(env)
    git = env.fake.repos[path].git
    squash = await open_pr(env, path, "squashed")
    merged = await call(env.alice, "merge_pull_request", repo=path, number=squash.number, strategy="squash",
                        message="One commit")
    assert merged.merged and len(merged.sha) == 40 and git.commits[merged.sha].parents != []
    assert len(git.commits[merged.sha].parents) == 1 and git.commits[merged.sha].message == "One commit"
    sent = next(r for r in env.transport.requests if r.url.path.endswith("/merge"))
    assert httpx.Response(200, content=sent.content).json() == {
        "type": "pullrequest_merge_parameters", "message": "One commit", "merge_strategy": "squash",
        "close_source_branch": False}

    ff = await open_pr(env, path, "linear")
    fast = await call(env.alice, "merge_pull_request", repo=path, number=ff.number, strategy="rebase")
    assert fast.sha == git.branches["linear"] == git.branches["main"]  # fast-forwarded

    diverged = await open_pr(env, path, "diverged")
    git.push("main", {"other.txt": "o\n"}, "meanwhile", env.fake.person("bob"))
    with pytest.raises(Conflict, match="Unable to fast forward"):
        await call(env.alice, "merge_pull_request", repo=path, number=diverged.number, strategy="rebase")
    with pytest.raises(Conflict, match="head is"):
        await call(env.alice, "merge_pull_request", repo=path, number=diverged.number, sha="0" * 40)
    git.push("main", {"diverged.txt": "clash\n"}, "clash", env.fake.person("bob"))
    with pytest.raises(Conflict, match="resolve all merge conflicts"):
        await call(env.alice, "merge_pull_request", repo=path, number=diverged.number)


async def test_a_slow_merge_is_polled_until_done(env: Env) -> None:
    path = seed(env)
    pr = await open_pr(env, path)
    env.fake.slow_merges = 1
    merged = await call(env.alice, "merge_pull_request", repo=path, number=pr.number, sha=pr.head_sha)
    assert merged.merged and merged.sha == env.fake.repos[path].git.branches["main"]


async def test_a_merge_that_never_finishes_times_out(env: Env) -> None:
    path = seed(env)
    pr = await open_pr(env, path)
    env.fake.router.inject(json_response(202, {"task_status": "PENDING"}), method="POST")
    env.alice.merge_timeout_s = 0.0
    with pytest.raises(Timeout, match="still running"):
        await call(env.alice, "merge_pull_request", repo=path, number=pr.number)


async def test_pull_request_files_and_compare(env: Env) -> None:
    path = seed(env)
    pr = await open_pr(env, path)
    env.fake.repos[path].git.push("main", {"m.txt": "m\n"}, "main moves", env.fake.person("bob"))
    files = await call(env.alice, "list_pull_request_files", repo=path, number=pr.number)
    assert [(f.path, f.status, f.additions, f.patch) for f in files.items] == [("feature.txt", "added", 1, None)]
    cmp = await call(env.alice, "compare_commits", repo=path, base="main", head="feature")
    assert (cmp.ahead_by, cmp.behind_by, [f.path for f in cmp.files]) == (1, 1, ["feature.txt"])
    assert cmp.url == f"{WEB}/{path}/branches/compare/feature%0Dmain"


async def test_merge_branch_declines_its_pull_request_when_refused(env: Env) -> None:
    path = seed(env)
    git = env.fake.repos[path].git
    await call(env.alice, "create_branch", repo=path, branch="topic")
    await call(env.alice, "put_file", repo=path, path="c.txt", content="topic\n", message="t", branch="topic")
    git.push("main", {"c.txt": "main\n"}, "clash", env.fake.person("alice"))
    with pytest.raises(Conflict):
        await call(env.alice, "merge_branch", repo=path, base="main", head="topic")
    assert [p.state for p in env.fake.repos[path].prs.values()] == ["DECLINED"]


# -- reviews and statuses ------------------------------------------------------------------------

async def test_reviews(env: Env) -> None:
    path = seed(env)
    pr = await open_pr(env, path)
    with pytest.raises(InvalidRequest, match="your own pull request"):
        await call(env.alice, "review_pull_request", repo=path, number=pr.number, event="approve")
    approved = await call(env.bob, "review_pull_request", repo=path, number=pr.number, event="approve",
                          body="LGTM")
    assert (approved.state, approved.author, approved.body) == ("approved", "bob", "LGTM")
    comments = env.fake.repos[path].prs[pr.number].comments
    assert [c["content"]["raw"] for c in comments] == ["LGTM"]
    listed = await call(env.alice, "list_reviews", repo=path, number=pr.number)
    assert [(r.id, r.state, r.author) for r in listed.items] == [(approved.id, "approved", "bob")]
    changes = await call(env.bob, "review_pull_request", repo=path, number=pr.number, event="request_changes")
    assert changes.state == "changes_requested"
    listed = await call(env.alice, "list_reviews", repo=path, number=pr.number, limit=1)
    assert [(r.state, r.author) for r in listed.items] == [("changes_requested", "bob")]
    comment = await call(env.bob, "review_pull_request", repo=path, number=pr.number, event="comment",
                         body="Nit: rename")
    assert (comment.state, comment.body) == ("commented", "Nit: rename")
    assert comment.url == f"{WEB}/{path}/pull-requests/{pr.number}#comment-{comment.id}"
    with pytest.raises(InvalidRequest, match="needs a body"):
        await call(env.bob, "review_pull_request", repo=path, number=pr.number, event="comment")


async def test_commit_statuses(env: Env) -> None:
    path = seed(env)
    sha = env.fake.repos[path].git.branches["main"]
    first = await call(env.alice, "set_commit_status", repo=path, sha=sha, state="pending", context="ci/build")
    assert (first.state, first.target_url) == ("pending", f"{WEB}/{path}/commits/{sha}")
    again = await call(env.alice, "set_commit_status", repo=path, sha=sha, state="error", context="ci/build",
                       description="stopped", target_url="https://ci.test/7")
    assert (again.id, again.state, again.target_url) == (first.id, "error", "https://ci.test/7")
    sent = httpx.Response(200, content=env.transport.requests[-1].content).json()
    assert sent == {"type": "build", "key": "ci/build", "name": "ci/build", "state": "STOPPED",
                    "description": "stopped", "url": "https://ci.test/7"}
    listed = await call(env.alice, "list_commit_statuses", repo=path, ref=sha)
    assert [(s.context, s.state, s.sha) for s in listed.items] == [("ci/build", "error", sha)]


async def test_passthrough(env: Env) -> None:
    result = await call(env.bob, "passthrough", path="/user")
    assert result.status == 200 and result.body["nickname"] == "bob"
