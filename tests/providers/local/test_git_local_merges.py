"""Local git provider: server-side merges (merge, squash, rebase), verified with plain git."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from mosaic.errors import Conflict, Forbidden, InvalidRequest, NotFound

if TYPE_CHECKING:
    from conftest import GitCaller


async def diverge(git: GitCaller, repo: str) -> tuple[str, str]:
    """main and feature each gain commits touching different files; returns their tips."""
    await git("create_branch", repo=repo, branch="feature")
    await git("put_file", repo=repo, path="f1.txt", content="one\n", message="feature one", branch="feature",
              author_name="Fay", author_email="fay@example.com")
    await git("put_file", repo=repo, path="f2.txt", content="two\n", message="feature two\n\nwith body",
              branch="feature", author_name="Fay", author_email="fay@example.com")
    await git("put_file", repo=repo, path="m.txt", content="main\n", message="main moves")
    main = (await git("get_branch", repo=repo, branch="main")).sha
    feature = (await git("get_branch", repo=repo, branch="feature")).sha
    return main, feature


async def parents(git: GitCaller, repo: str, rev: str) -> list[str]:
    return (await git.plain(repo, "log", "-1", "--format=%P", rev)).split()


async def test_merge_strategy_makes_a_two_parent_merge_commit(git: GitCaller, repo: str) -> None:
    main, feature = await diverge(git, repo)
    res = await git("merge_branch", repo=repo, base="main", head="feature")
    assert res.merged and res.strategy == "merge" and res.message == "Merge feature into main"
    assert await git.plain(repo, "rev-parse", "main") == f"{res.sha}\n"
    assert await parents(git, repo, "main") == [main, feature]
    assert await git.plain(repo, "show", "main:f1.txt") == "one\n"
    assert await git.plain(repo, "show", "main:m.txt") == "main\n"
    assert await git.plain(repo, "log", "-1", "--format=%s", "main") == "Merge feature into main\n"
    # The head is now part of the base: merging again has nothing to do.
    again = await git("merge_branch", repo=repo, base="main", head="feature")
    assert not again.merged and again.sha == res.sha


async def test_merge_never_fast_forwards(git: GitCaller, repo: str) -> None:
    await git("create_branch", repo=repo, branch="ahead")
    put = await git("put_file", repo=repo, path="a.txt", content="a", message="a", branch="ahead")
    base = (await git("get_branch", repo=repo, branch="main")).sha
    await git("merge_branch", repo=repo, base="main", head="ahead", message="Custom message")
    assert await parents(git, repo, "main") == [base, put.commit.sha]
    assert await git.plain(repo, "log", "-1", "--format=%B", "main") == "Custom message\n\n"


async def test_squash_makes_one_single_parent_commit(git: GitCaller, repo: str) -> None:
    main, _ = await diverge(git, repo)
    res = await git("merge_branch", repo=repo, base="main", head="feature", strategy="squash")
    assert res.merged and res.strategy == "squash"
    assert await parents(git, repo, "main") == [main]
    assert await git.plain(repo, "rev-list", "--count", f"{main}..main") == "1\n"
    assert sorted((await git.plain(repo, "ls-tree", "--name-only", "main")).split()) == \
        ["README.md", "f1.txt", "f2.txt", "m.txt"]
    message = await git.plain(repo, "log", "-1", "--format=%B", "main")
    assert message.startswith("Merge feature into main\n\n* feature one\n* feature two")


async def test_rebase_replays_each_commit_linearly_keeping_authors(git: GitCaller, repo: str) -> None:
    main, feature = await diverge(git, repo)
    res = await git("merge_branch", repo=repo, base="main", head="feature", strategy="rebase")
    assert res.merged and res.strategy == "rebase" and len(res.raw["created"]) == 2
    # Linear: no merge commits, every commit has one parent, and the old main tip is below.
    assert await git.plain(repo, "rev-list", "--merges", "main") == ""
    assert await git.plain(repo, "rev-list", "--count", f"{main}..main") == "2\n"
    assert (await git.plain(repo, "merge-base", "--is-ancestor", main, "main")) == ""
    log = await git.plain(repo, "log", "--format=%an|%cn|%s|%P", f"{main}..main")
    lines = log.splitlines()
    assert [line.split("|")[:3] for line in lines] == [["Fay", "MosAIc", "feature two"],
                                                      ["Fay", "MosAIc", "feature one"]]
    assert lines[1].split("|")[3] == main
    assert await git.plain(repo, "log", "-1", "--format=%B", "main") == "feature two\n\nwith body\n\n"
    # The replayed commits are new objects; the feature branch is left as it was.
    assert feature not in log and await git.plain(repo, "rev-parse", "feature") == f"{feature}\n"
    assert await git.plain(repo, "show", "main:f2.txt") == "two\n"


async def test_rebase_skips_changes_already_in_the_base(git: GitCaller, repo: str) -> None:
    await git("create_branch", repo=repo, branch="dup")
    await git("put_file", repo=repo, path="same.txt", content="same\n", message="on dup", branch="dup")
    await git("put_file", repo=repo, path="same.txt", content="same\n", message="on main")
    res = await git("merge_branch", repo=repo, base="main", head="dup", strategy="rebase")
    assert not res.merged
    res = await git("merge_branch", repo=repo, base="main", head="dup", strategy="squash")
    assert not res.merged


async def conflicting(git: GitCaller, repo: str) -> None:
    readme = await git("get_file", repo=repo, path="README.md")
    await git("create_branch", repo=repo, branch="theirs")
    await git("put_file", repo=repo, path="README.md", content="theirs\n", message="theirs", branch="theirs",
              sha=readme.sha)
    await git("put_file", repo=repo, path="shared.txt", content="theirs\n", message="t2", branch="theirs")
    await git("put_file", repo=repo, path="README.md", content="ours\n", message="ours", sha=readme.sha)
    await git("put_file", repo=repo, path="shared.txt", content="ours\n", message="o2")
    await git("put_file", repo=repo, path="clean.txt", content="fine\n", message="o3")


@pytest.mark.parametrize("strategy", ["merge", "squash", "rebase"])
async def test_conflicts_name_the_paths_and_change_nothing(git: GitCaller, repo: str, strategy: str) -> None:
    await conflicting(git, repo)
    before = await git.plain(repo, "rev-parse", "main")
    with pytest.raises(Conflict) as exc:
        await git("merge_branch", repo=repo, base="main", head="theirs", strategy=strategy)
    err = exc.value
    assert "README.md" in err.message
    if strategy == "rebase":  # stops at the first commit that conflicts
        assert err.details["paths"] == ["README.md"] and "commit" in err.details
    else:
        assert err.details["paths"] == ["README.md", "shared.txt"]
        assert "shared.txt" in err.message
    assert await git.plain(repo, "rev-parse", "main") == before


async def test_merge_errors(git: GitCaller, repo: str) -> None:
    with pytest.raises(NotFound, match="ghost"):
        await git("merge_branch", repo=repo, base="main", head="ghost")
    with pytest.raises(NotFound, match="ghost"):
        await git("merge_branch", repo=repo, base="ghost", head="main")
    with pytest.raises(InvalidRequest):
        await git("merge_branch", repo=repo, base="main", head="-x")
    with pytest.raises(NotFound):
        await git("merge_branch", repo="acme/ghost", base="main", head="x")
    # Unrelated histories cannot be merged.
    blob = (await git.plain(repo, "hash-object", "-w", "--stdin", stdin="x")).strip()
    tree = (await git.plain(repo, "mktree", stdin=f"100644 blob {blob}\tx\n")).strip()
    orphan = (await git.plain(repo, "commit-tree", tree, "-m", "orphan")).strip()
    with pytest.raises(Conflict, match="no history"):
        await git("merge_branch", repo=repo, base="main", head=orphan)
    await git("update_repository", repo=repo, archived=True)
    with pytest.raises(Forbidden):
        await git("merge_branch", repo=repo, base="main", head="main")


async def test_merge_into_a_sha_head(git: GitCaller, repo: str) -> None:
    _, feature = await diverge(git, repo)
    res = await git("merge_branch", repo=repo, base="main", head=feature[:12], strategy="squash")
    assert res.merged and await git.plain(repo, "show", "main:f2.txt") == "two\n"
