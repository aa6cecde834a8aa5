"""The shared git conformance suite: the same flows against every registered git provider.

Each step runs only when the provider claims the operation (``supports``); the assertions are on
the normalized results, so a provider passes only if it means the same thing by each field.
Providers register in ``tests/support/conformance.py`` (see there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from tests.support.conformance import GitTarget, discover

from mosaic.catalog.registry import CATALOG
from mosaic.errors import Conflict, NotFound
from mosaic.gateway.context import RequestContext
from mosaic.plugins.contract import ProviderPlugin

TARGETS = discover()


@pytest.fixture(params=sorted(TARGETS))
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[GitTarget]:
    async with TARGETS[request.param](tmp_path) as t:
        yield t
        t.check()


async def call(
    plugin: ProviderPlugin, operation: str, ctx: RequestContext | None = None, /, **params: Any
) -> Any:
    op = CATALOG[f"git.{operation}"]
    result = await plugin.call(op, op.params(**params), ctx or RequestContext())
    assert isinstance(result, BaseModel)
    return result


def need(target: GitTarget, *ops: str) -> None:
    missing = [op for op in ops if not target.plugin.supports(op)]
    if missing:
        pytest.skip(f"{target.plugin.provider} does not support {', '.join(missing)}")


async def new_repo(target: GitTarget, name: str) -> Any:
    repo = await call(
        target.plugin,
        "create_repository",
        name=name,
        owner=target.owner,
        description="conformance",
        auto_init=True,
    )
    assert repo.provider == target.plugin.id
    assert repo.name == name and repo.full_name.endswith(f"/{name}")
    assert repo.description == "conformance" and repo.default_branch == "main"
    assert repo.id and repo.raw
    return repo


def test_registry_has_targets() -> None:
    assert {"gitea", "forgejo"} <= set(TARGETS)


async def test_claims_are_catalog_operations(target: GitTarget) -> None:
    names = CATALOG.names("git")
    claimed = target.plugin.capabilities()
    assert claimed and claimed <= names
    assert not claimed & set(target.plugin.unsupported)


async def test_pull_request_flow(target: GitTarget) -> None:
    """create repo → branch → file → pull request → review → status → merge → read back."""
    need(
        target, "create_repository", "create_branch", "put_file", "create_pull_request", "merge_pull_request"
    )
    p = target.plugin
    repo = await new_repo(target, "conformance-flow")
    full, base = repo.full_name, repo.default_branch

    if p.supports("get_repository"):
        again = await call(p, "get_repository", repo=full)
        assert (again.id, again.full_name, again.default_branch) == (repo.id, full, base)

    base_sha = (await call(p, "get_branch", repo=full, branch=base)).sha if p.supports("get_branch") else None
    branch = await call(p, "create_branch", repo=full, branch="feature", from_ref=base)
    assert branch.name == "feature" and branch.provider == p.id
    if base_sha:
        assert branch.sha == base_sha

    text = "hello conformance\n"
    written = await call(
        p, "put_file", repo=full, path="docs/hello.md", content=text, message="Add hello", branch="feature"
    )
    assert written.path == "docs/hello.md" and written.sha
    assert written.commit.sha and written.commit.parents == [branch.sha]
    assert written.commit.message == "Add hello"

    if p.supports("get_file"):
        f = await call(p, "get_file", repo=full, path="docs/hello.md", ref="feature")
        assert (f.content, f.encoding, f.sha, f.path) == (text, "utf-8", written.sha, "docs/hello.md")

    pr = await call(
        p,
        "create_pull_request",
        repo=full,
        title="Add hello",
        head="feature",
        base=base,
        body="Adds a greeting",
    )
    assert pr.number >= 1 and pr.state == "open" and not pr.merged
    assert (pr.head, pr.base, pr.title, pr.body) == ("feature", base, "Add hello", "Adds a greeting")
    assert pr.head_sha in (None, written.commit.sha)

    if p.supports("list_pull_requests"):
        listed = await call(p, "list_pull_requests", repo=full, state="open")
        assert [x.number for x in listed.items] == [pr.number]

    if p.supports("list_pull_request_files"):
        files = await call(p, "list_pull_request_files", repo=full, number=pr.number)
        assert [(x.path, x.status, x.additions) for x in files.items] == [("docs/hello.md", "added", 1)]

    if p.supports("review_pull_request"):
        review = await call(
            target.reviewer,
            "review_pull_request",
            target.reviewer_ctx,
            repo=full,
            number=pr.number,
            event="approve",
            body="LGTM",
        )
        assert review.state == "approved" and review.pull_number == pr.number and review.body == "LGTM"
        if p.supports("list_reviews"):
            reviews = await call(p, "list_reviews", repo=full, number=pr.number)
            assert [(r.id, r.state) for r in reviews.items] == [(review.id, "approved")]

    if p.supports("set_commit_status"):
        status = await call(
            p,
            "set_commit_status",
            repo=full,
            sha=written.commit.sha,
            state="success",
            context="ci/conformance",
            description="all green",
        )
        assert (status.state, status.context, status.sha) == ("success", "ci/conformance", written.commit.sha)
        if p.supports("list_commit_statuses"):
            statuses = await call(p, "list_commit_statuses", repo=full, ref=written.commit.sha)
            assert [(s.context, s.state) for s in statuses.items] == [("ci/conformance", "success")]

    merged = await call(p, "merge_pull_request", repo=full, number=pr.number, strategy="merge")
    assert merged.merged is True and merged.sha and merged.strategy == "merge"

    if p.supports("get_pull_request"):
        after = await call(p, "get_pull_request", repo=full, number=pr.number)
        assert (after.state, after.merged, after.merge_sha) == ("merged", True, merged.sha)

    if p.supports("get_file"):
        on_base = await call(p, "get_file", repo=full, path="docs/hello.md", ref=base)
        assert on_base.content == text

    if p.supports("list_commits"):
        log = await call(p, "list_commits", repo=full, ref=base, limit=10)
        shas = [c.sha for c in log.items]
        assert shas[0] == merged.sha
        assert written.commit.sha in shas
        assert set(log.items[0].parents) == {base_sha or log.items[0].parents[0], written.commit.sha}


async def test_reads_and_updates(target: GitTarget) -> None:
    """The operations the pull-request flow does not touch."""
    need(target, "create_repository", "create_branch", "put_file")
    p = target.plugin
    repo = await new_repo(target, "conformance-reads")
    full = repo.full_name
    await call(p, "create_branch", repo=full, branch="feature")
    made = await call(
        p, "put_file", repo=full, path="x.txt", content="x\n", message="add x", branch="feature"
    )

    if p.supports("list_repositories"):
        listed = await call(p, "list_repositories", owner=repo.owner)
        assert full in [r.full_name for r in listed.items]
    if p.supports("list_branches"):
        branches = await call(p, "list_branches", repo=full)
        assert sorted(b.name for b in branches.items) == ["feature", "main"]
        assert {b.name: b.sha for b in branches.items}["feature"] == made.commit.sha
    if p.supports("get_commit"):
        commit = await call(p, "get_commit", repo=full, sha=made.commit.sha)
        assert (commit.sha, commit.message, commit.parents) == (made.commit.sha, "add x", made.commit.parents)
        assert commit.author_name and commit.authored_at is not None
    if p.supports("compare_commits"):
        cmp = await call(p, "compare_commits", repo=full, base="main", head="feature")
        assert (cmp.ahead_by, cmp.behind_by) == (1, 0)
        assert [c.sha for c in cmp.commits] == [made.commit.sha]
    if p.supports("update_repository"):
        updated = await call(p, "update_repository", repo=full, description="changed")
        assert updated.description == "changed" and updated.full_name == full
        if p.supports("get_repository"):
            assert (await call(p, "get_repository", repo=full)).description == "changed"
    if p.supports("create_pull_request") and p.supports("update_pull_request"):
        pr = await call(p, "create_pull_request", repo=full, title="Old", head="feature")
        assert pr.base == "main"
        renamed = await call(p, "update_pull_request", repo=full, number=pr.number, title="New", body="why")
        assert (renamed.title, renamed.body, renamed.state) == ("New", "why", "open")
        if p.supports("close_pull_request"):
            closed = await call(p, "close_pull_request", repo=full, number=pr.number)
            assert (closed.state, closed.merged) == ("closed", False)
            if p.supports("list_pull_requests"):
                gone = await call(p, "list_pull_requests", repo=full, state="closed")
                assert [x.number for x in gone.items] == [pr.number]


async def test_merge_branch(target: GitTarget) -> None:
    need(target, "create_repository", "create_branch", "put_file", "merge_branch", "get_file")
    p = target.plugin
    repo = await new_repo(target, "conformance-merge")
    await call(p, "create_branch", repo=repo.full_name, branch="topic")
    await call(
        p,
        "put_file",
        repo=repo.full_name,
        path="topic.txt",
        content="topic\n",
        message="Topic",
        branch="topic",
    )
    result = await call(p, "merge_branch", repo=repo.full_name, base="main", head="topic", strategy="merge")
    assert result.merged is True and result.sha
    assert (await call(p, "get_file", repo=repo.full_name, path="topic.txt", ref="main")).content == "topic\n"
    again = await call(p, "merge_branch", repo=repo.full_name, base="main", head="topic")
    assert again.merged is False


async def test_errors_are_typed(target: GitTarget) -> None:
    need(target, "create_repository", "get_repository", "put_file")
    p = target.plugin
    with pytest.raises(NotFound):
        await call(p, "get_repository", repo="nobody-here/nothing-here")
    repo = await new_repo(target, "conformance-errors")
    with pytest.raises(Conflict):
        await call(p, "create_repository", name="conformance-errors", owner=target.owner)
    first = await call(p, "put_file", repo=repo.full_name, path="a.txt", content="one\n", message="one")
    with pytest.raises(Conflict):  # exists: updating needs its sha
        await call(p, "put_file", repo=repo.full_name, path="a.txt", content="two\n", message="two")
    updated = await call(
        p, "put_file", repo=repo.full_name, path="a.txt", content="two\n", message="two", sha=first.sha
    )
    assert updated.sha != first.sha and updated.commit.parents == [first.commit.sha]
    with pytest.raises(Conflict):  # stale sha
        await call(
            p,
            "put_file",
            repo=repo.full_name,
            path="a.txt",
            content="three\n",
            message="three",
            sha=first.sha,
        )


async def test_commit_pages(target: GitTarget) -> None:
    need(target, "create_repository", "put_file", "list_commits")
    p = target.plugin
    repo = await new_repo(target, "conformance-pages")
    for i in range(4):
        await call(p, "put_file", repo=repo.full_name, path=f"f{i}.txt", content=f"{i}\n", message=f"c{i}")
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page = await call(p, "list_commits", repo=repo.full_name, limit=2, cursor=cursor)
        assert len(page.items) <= 2
        seen += [c.message for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ["c3", "c2", "c1", "c0", "Initial commit"]


async def test_delete(target: GitTarget) -> None:
    need(target, "create_repository", "create_branch", "delete_branch", "delete_repository", "get_repository")
    p = target.plugin
    repo = await new_repo(target, "conformance-delete")
    await call(p, "create_branch", repo=repo.full_name, branch="gone")
    deleted = await call(p, "delete_branch", repo=repo.full_name, branch="gone")
    assert deleted.deleted is True and deleted.provider == p.id
    if p.supports("get_branch"):
        with pytest.raises(NotFound):
            await call(p, "get_branch", repo=repo.full_name, branch="gone")
    gone = await call(p, "delete_repository", repo=repo.full_name)
    assert gone.deleted is True and gone.id == repo.id
    with pytest.raises(NotFound):
        await call(p, "get_repository", repo=repo.full_name)
