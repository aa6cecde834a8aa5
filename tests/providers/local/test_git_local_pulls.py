"""Local git provider: pull requests, reviews and commit statuses."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from mosaic.errors import Conflict, InvalidRequest, NotFound

if TYPE_CHECKING:
    from conftest import GitCaller


async def branch_with_change(git: GitCaller, repo: str, branch: str, path: str = "feature.txt",
                             content: str = "feature\n") -> str:
    await git("create_branch", repo=repo, branch=branch)
    put = await git("put_file", repo=repo, path=path, content=content, message=f"change {path}",
                    branch=branch)
    return str(put.commit.sha)


async def test_create_and_get_pull_request(git: GitCaller, repo: str) -> None:
    head_sha = await branch_with_change(git, repo, "feature")
    pr = await git("create_pull_request", repo=repo, title="Add feature", head="feature", body="Why",
                   draft=True, principal="bob")
    assert (pr.number, pr.state, pr.head, pr.base, pr.author) == (1, "open", "feature", "main", "bob")
    assert pr.head_sha == head_sha and pr.draft and not pr.merged and pr.mergeable is True
    assert pr.id == "acme/api#1" and pr.raw["number"] == 1 and pr.created_at is not None
    got = await git("get_pull_request", repo=repo, number=1)
    assert (got.title, got.body, got.mergeable) == ("Add feature", "Why", True)
    # Numbers are per repository and start at 1.
    await branch_with_change(git, repo, "second", "second.txt")
    assert (await git("create_pull_request", repo=repo, title="2", head="second")).number == 2
    await git("create_repository", name="other", owner="acme")
    await branch_with_change(git, "acme/other", "feature")
    assert (await git("create_pull_request", repo="acme/other", title="x", head="feature")).number == 1


async def test_pull_request_numbers_are_unique_under_concurrency(git: GitCaller, repo: str) -> None:
    for i in range(5):
        await git("create_branch", repo=repo, branch=f"c{i}")
    prs = await asyncio.gather(*(git("create_pull_request", repo=repo, title=f"c{i}", head=f"c{i}")
                                 for i in range(5)))
    assert sorted(p.number for p in prs) == [1, 2, 3, 4, 5]


async def test_create_pull_request_errors(git: GitCaller, repo: str) -> None:
    await branch_with_change(git, repo, "feature")
    await git("create_pull_request", repo=repo, title="one", head="feature")
    with pytest.raises(Conflict, match="already exists"):
        await git("create_pull_request", repo=repo, title="dup", head="feature")
    with pytest.raises(NotFound, match="ghost"):
        await git("create_pull_request", repo=repo, title="x", head="ghost")
    with pytest.raises(NotFound, match="ghost"):
        await git("create_pull_request", repo=repo, title="x", head="feature", base="ghost")
    with pytest.raises(InvalidRequest, match="two branches"):
        await git("create_pull_request", repo=repo, title="x", head="main")
    with pytest.raises(NotFound):
        await git("get_pull_request", repo=repo, number=99)
    with pytest.raises(NotFound):
        await git("create_pull_request", repo="acme/ghost", title="x", head="feature")


async def test_mergeable_is_false_when_the_pull_request_conflicts(git: GitCaller, repo: str) -> None:
    readme = await git("get_file", repo=repo, path="README.md")
    await git("create_branch", repo=repo, branch="clash")
    await git("put_file", repo=repo, path="README.md", content="a\n", message="a", branch="clash",
              sha=readme.sha)
    await git("put_file", repo=repo, path="README.md", content="b\n", message="b", sha=readme.sha)
    pr = await git("create_pull_request", repo=repo, title="clash", head="clash")
    assert pr.mergeable is False
    with pytest.raises(Conflict) as exc:
        await git("merge_pull_request", repo=repo, number=pr.number)
    assert exc.value.details["paths"] == ["README.md"] and "README.md" in exc.value.message
    assert (await git("get_pull_request", repo=repo, number=pr.number)).state == "open"


async def test_mergeable_is_unknown_once_a_branch_is_gone(git: GitCaller, repo: str) -> None:
    await branch_with_change(git, repo, "feature")
    await git("create_branch", repo=repo, branch="release")
    pr = await git("create_pull_request", repo=repo, title="t", head="feature", base="release")
    assert pr.mergeable is True
    await git("delete_branch", repo=repo, branch="release")
    got = await git("get_pull_request", repo=repo, number=pr.number)
    assert got.mergeable is None and got.state == "open" and got.head_sha == pr.head_sha


async def test_list_pull_requests_by_state_with_pages(git: GitCaller, repo: str) -> None:
    for i in range(7):
        await branch_with_change(git, repo, f"b{i}", f"b{i}.txt")
        await git("create_pull_request", repo=repo, title=f"pr {i}", head=f"b{i}")
    await git("close_pull_request", repo=repo, number=2)
    await git("merge_pull_request", repo=repo, number=3)
    numbers: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = await git("list_pull_requests", repo=repo, state="all", limit=3, cursor=cursor)
        pages += 1
        numbers += [p.number for p in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert pages == 3 and numbers == [7, 6, 5, 4, 3, 2, 1]
    assert [p.number for p in (await git("list_pull_requests", repo=repo)).items] == [7, 6, 5, 4, 1]
    assert [p.number for p in (await git("list_pull_requests", repo=repo, state="closed")).items] == [2]
    merged = (await git("list_pull_requests", repo=repo, state="merged")).items
    assert [(p.number, p.merged, p.mergeable) for p in merged] == [(3, True, None)]


async def test_update_and_close_pull_request(git: GitCaller, repo: str) -> None:
    await branch_with_change(git, repo, "feature")
    await git("create_branch", repo=repo, branch="release")
    pr = await git("create_pull_request", repo=repo, title="t", head="feature")
    updated = await git("update_pull_request", repo=repo, number=pr.number, title="New title", body="b",
                        base="release")
    assert (updated.title, updated.body, updated.base) == ("New title", "b", "release")
    closed = await git("close_pull_request", repo=repo, number=pr.number)
    assert closed.state == "closed" and closed.raw["closed_at"]
    assert (await git("close_pull_request", repo=repo, number=pr.number)).state == "closed"  # idempotent
    reopened = await git("update_pull_request", repo=repo, number=pr.number, state="open")
    assert reopened.state == "open" and reopened.raw["closed_at"] is None
    with pytest.raises(NotFound):
        await git("update_pull_request", repo=repo, number=pr.number, base="ghost")
    with pytest.raises(NotFound):
        await git("close_pull_request", repo=repo, number=42)
    await git("merge_pull_request", repo=repo, number=pr.number)
    with pytest.raises(Conflict, match="merged"):
        await git("update_pull_request", repo=repo, number=pr.number, state="closed")
    with pytest.raises(Conflict, match="merged"):
        await git("close_pull_request", repo=repo, number=pr.number)
    # Editing the text of a merged pull request stays allowed, as on the forges.
    assert (await git("update_pull_request", repo=repo, number=pr.number, title="Final")).title == "Final"


@pytest.mark.parametrize("strategy", ["merge", "squash", "rebase"])
async def test_merge_pull_request_with_each_strategy(git: GitCaller, repo: str, strategy: str) -> None:
    head_sha = await branch_with_change(git, repo, "feature")
    await git("put_file", repo=repo, path="main.txt", content="m\n", message="main moves")
    base_sha = (await git("get_branch", repo=repo, branch="main")).sha
    pr = await git("create_pull_request", repo=repo, title="Feature", head="feature", body="Details")
    res = await git("merge_pull_request", repo=repo, number=pr.number, strategy=strategy, sha=head_sha)
    assert res.merged and res.strategy == strategy and res.raw["pull_number"] == pr.number
    assert await git.plain(repo, "rev-parse", "main") == f"{res.sha}\n"
    parent_line = (await git.plain(repo, "log", "-1", "--format=%P", "main")).split()
    subject = (await git.plain(repo, "log", "-1", "--format=%s", "main")).strip()
    if strategy == "merge":
        assert parent_line == [base_sha, head_sha]
        assert subject == "Merge pull request #1 from feature"
    elif strategy == "squash":
        assert parent_line == [base_sha] and subject == "Feature (#1)"
    else:
        assert parent_line == [base_sha] and subject == "change feature.txt"
        assert await git.plain(repo, "rev-list", "--merges", "main") == ""
    assert await git.plain(repo, "show", "main:feature.txt") == "feature\n"

    merged = await git("get_pull_request", repo=repo, number=pr.number)
    assert (merged.state, merged.merged, merged.merge_sha, merged.mergeable) == \
        ("merged", True, res.sha, None)
    assert merged.head_sha == head_sha
    with pytest.raises(Conflict, match="already merged"):
        await git("merge_pull_request", repo=repo, number=pr.number)
    # Files of a merged pull request are still what it changed.
    files = (await git("list_pull_request_files", repo=repo, number=pr.number)).items
    assert [f.path for f in files] == ["feature.txt"]


async def test_merge_pull_request_refusals(git: GitCaller, repo: str) -> None:
    head_sha = await branch_with_change(git, repo, "feature")
    pr = await git("create_pull_request", repo=repo, title="t", head="feature")
    with pytest.raises(Conflict, match="moved") as exc:
        await git("merge_pull_request", repo=repo, number=pr.number, sha="f" * 40)
    assert exc.value.details["head_sha"] == head_sha
    await git("close_pull_request", repo=repo, number=pr.number)
    with pytest.raises(Conflict, match="closed"):
        await git("merge_pull_request", repo=repo, number=pr.number)
    with pytest.raises(NotFound):
        await git("merge_pull_request", repo=repo, number=7)
    await git("update_pull_request", repo=repo, number=pr.number, state="open")
    await git("delete_branch", repo=repo, branch="feature")
    with pytest.raises(Conflict, match="no longer exists"):
        await git("merge_pull_request", repo=repo, number=pr.number)


async def test_concurrent_merges_of_one_pull_request_merge_once(git: GitCaller, repo: str) -> None:
    await branch_with_change(git, repo, "feature")
    await git("put_file", repo=repo, path="main.txt", content="m\n", message="main moves")
    pr = await git("create_pull_request", repo=repo, title="t", head="feature")
    before = (await git("get_branch", repo=repo, branch="main")).sha
    merges = [git("merge_pull_request", repo=repo, number=pr.number) for _ in range(3)]
    results = await asyncio.gather(*merges, return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert len(ok) == 1 and all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    assert await git.plain(repo, "rev-list", "--count", f"{before}..main") == "2\n"  # merge + feature


async def test_list_pull_request_files_paginates_with_patches(git: GitCaller, repo: str) -> None:
    await git("create_branch", repo=repo, branch="many")
    for i in range(7):
        await git("put_file", repo=repo, path=f"f{i}.txt", content=f"{i}\n", message=f"f{i}", branch="many")
    await git("put_file", repo=repo, path="unrelated-main.txt", content="x\n", message="main moves")
    pr = await git("create_pull_request", repo=repo, title="many", head="many")
    paths: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await git("list_pull_request_files", repo=repo, number=pr.number, limit=3, cursor=cursor)
        pages += 1
        paths += [f.path for f in page.items]
        assert all(f.status == "added" and f.additions == 1 and f.patch for f in page.items)
        if (cursor := page.next_cursor) is None:
            break
    assert pages == 3 and paths == [f"f{i}.txt" for i in range(7)]
    with pytest.raises(NotFound):
        await git("list_pull_request_files", repo=repo, number=9)


async def test_reviews(git: GitCaller, repo: str) -> None:
    head_sha = await branch_with_change(git, repo, "feature")
    pr = await git("create_pull_request", repo=repo, title="t", head="feature")
    states = []
    for event in ("comment", "request_changes", "approve"):
        review = await git("review_pull_request", repo=repo, number=pr.number, event=event, body=event,
                           principal="carol")
        assert review.pull_number == pr.number and review.author == "carol" and review.commit_sha == head_sha
        states.append(review.state)
    assert states == ["commented", "changes_requested", "approved"]
    page1 = await git("list_reviews", repo=repo, number=pr.number, limit=2)
    page2 = await git("list_reviews", repo=repo, number=pr.number, limit=2, cursor=page1.next_cursor)
    assert [r.body for r in page1.items + page2.items] == ["comment", "request_changes", "approve"]
    assert page2.next_cursor is None
    with pytest.raises(NotFound):
        await git("list_reviews", repo=repo, number=5)
    with pytest.raises(NotFound):
        await git("review_pull_request", repo=repo, number=5, event="approve")
    await git("merge_pull_request", repo=repo, number=pr.number)
    with pytest.raises(Conflict, match="merged"):
        await git("review_pull_request", repo=repo, number=pr.number, event="approve")
    await branch_with_change(git, repo, "other", "o.txt")
    closed = await git("create_pull_request", repo=repo, title="o", head="other")
    await git("close_pull_request", repo=repo, number=closed.number)
    with pytest.raises(Conflict, match="closed"):
        await git("review_pull_request", repo=repo, number=closed.number, event="comment")


async def test_commit_statuses(git: GitCaller, repo: str) -> None:
    sha = (await git("get_branch", repo=repo, branch="main")).sha
    ci = await git("set_commit_status", repo=repo, sha=sha[:10], state="pending", context="ci/build",
                   description="running", target_url="http://localhost/runs/1")
    assert (ci.sha, ci.state, ci.context, ci.target_url) == (sha, "pending", "ci/build", "http://localhost/runs/1")
    await git("set_commit_status", repo=repo, sha=sha, state="success", context="lint")
    done = await git("set_commit_status", repo=repo, sha=sha, state="success", context="ci/build")
    assert done.id == ci.id  # the same context is replaced, not duplicated
    listed = await git("list_commit_statuses", repo=repo, ref="main")
    assert [(s.context, s.state) for s in listed.items] == [("ci/build", "success"), ("lint", "success")]
    for i in range(5):
        await git("set_commit_status", repo=repo, sha=sha, state="failure", context=f"extra/{i}")
    seen, cursor, pages = [], None, 0
    while True:
        page = await git("list_commit_statuses", repo=repo, ref=sha, limit=3, cursor=cursor)
        pages += 1
        seen += [s.context for s in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert pages == 3 and len(seen) == 7 and len(set(seen)) == 7
    with pytest.raises(NotFound):
        await git("set_commit_status", repo=repo, sha="0" * 40, state="success")
    with pytest.raises(NotFound):
        await git("list_commit_statuses", repo=repo, ref="ghost")
    with pytest.raises(InvalidRequest):
        await git("set_commit_status", repo=repo, sha=sha, state="success", context="")
