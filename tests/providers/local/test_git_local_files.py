"""Local git provider: branches, files, commits and comparisons, checked against plain git."""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any

import pytest

from mosaic.errors import Conflict, InvalidRequest, NotFound
from mosaic.providers.local.git_names import check_branch, check_path, check_rev

if TYPE_CHECKING:
    from conftest import GitCaller


# -- branches ---------------------------------------------------------------------

async def test_create_get_list_delete_branch(git: GitCaller, repo: str) -> None:
    main = await git("get_branch", repo=repo, branch="main")
    assert main.sha == (await git.plain(repo, "rev-parse", "main")).strip()
    assert (main.id, main.protected) == ("acme/api:main", False)
    feat = await git("create_branch", repo=repo, branch="feat/login")
    assert feat.sha == main.sha and feat.name == "feat/login"
    put = await git("put_file", repo=repo, path="x.txt", content="x", message="x", branch="feat/login")
    from_sha = await git("create_branch", repo=repo, branch="pinned", from_ref=main.sha[:10])
    assert from_sha.sha == main.sha
    from_branch = await git("create_branch", repo=repo, branch="copy", from_ref="feat/login")
    assert from_branch.sha == put.commit.sha
    names = [b.name for b in (await git("list_branches", repo=repo)).items]
    assert names == ["copy", "feat/login", "main", "pinned"]

    deleted = await git("delete_branch", repo=repo, branch="copy")
    assert deleted.deleted
    assert "copy" not in await git.plain(repo, "branch", "--list")
    with pytest.raises(NotFound):
        await git("get_branch", repo=repo, branch="copy")


async def test_branch_errors(git: GitCaller, repo: str) -> None:
    await git("create_branch", repo=repo, branch="dup")
    with pytest.raises(Conflict, match="already exists"):
        await git("create_branch", repo=repo, branch="dup")
    with pytest.raises(NotFound, match="ghost"):
        await git("create_branch", repo=repo, branch="x", from_ref="ghost")
    with pytest.raises(NotFound):
        await git("get_branch", repo=repo, branch="ghost")
    with pytest.raises(NotFound):
        await git("delete_branch", repo=repo, branch="ghost")
    with pytest.raises(Conflict, match="default branch"):
        await git("delete_branch", repo=repo, branch="main")
    for bad in ("-x", "a..b", "a b", "a~1", "x.lock", ".hidden", "a//b", "HEAD", "a:b", "@"):
        with pytest.raises(InvalidRequest):
            await git("create_branch", repo=repo, branch=bad)
    with pytest.raises(NotFound):
        await git("list_branches", repo="acme/ghost")


async def test_list_branches_paginates(git: GitCaller, repo: str) -> None:
    for i in range(6):
        await git("create_branch", repo=repo, branch=f"b{i}")
    pages = []
    cursor = None
    while True:
        page = await git("list_branches", repo=repo, limit=3, cursor=cursor)
        pages.append([b.name for b in page.items])
        if (cursor := page.next_cursor) is None:
            break
    assert pages == [["b0", "b1", "b2"], ["b3", "b4", "b5"], ["main"]]


# -- files ------------------------------------------------------------------------

async def test_put_file_creates_then_updates_with_sha(git: GitCaller, repo: str) -> None:
    created = await git("put_file", repo=repo, path="docs/guide.md", content="v1\n", message="Add guide")
    assert created.path == "docs/guide.md"
    assert created.sha == (await git.plain(repo, "rev-parse", "main:docs/guide.md")).strip()
    assert created.commit.sha == (await git.plain(repo, "rev-parse", "main")).strip()
    assert created.commit.message == "Add guide"
    got = await git("get_file", repo=repo, path="docs/guide.md")
    assert (got.content, got.encoding, got.sha, got.size, got.ref) == \
        ("v1\n", "utf-8", created.sha, 3, "main")

    updated = await git("put_file", repo=repo, path="docs/guide.md", content="v2\n", message="Update",
                        sha=got.sha, author_name="Ada", author_email="ada@example.com")
    assert await git.plain(repo, "show", "main:docs/guide.md") == "v2\n"
    assert await git.plain(repo, "log", "-1", "--format=%an <%ae>|%cn|%P", "main") == \
        f"Ada <ada@example.com>|MosAIc|{created.commit.sha}\n"
    # Reading at an older ref still sees the old content.
    assert (await git("get_file", repo=repo, path="docs/guide.md", ref=created.commit.sha)).content == "v1\n"
    assert (await git("get_file", repo=repo, path="docs/guide.md")).sha == updated.sha
    # The work never touched a work tree: the repository is still bare with no index.
    assert not (git.repo_dir(repo) / "index").exists()
    # No throwaway index or staged repository is left behind.
    assert list((git.data_dir / "git" / ".tmp").iterdir()) == []


async def test_put_file_optimistic_concurrency(git: GitCaller, repo: str) -> None:
    first = await git("put_file", repo=repo, path="a.txt", content="1", message="1")
    with pytest.raises(Conflict, match="already exists") as exc:
        await git("put_file", repo=repo, path="a.txt", content="2", message="2")
    assert exc.value.details["current_sha"] == first.sha
    await git("put_file", repo=repo, path="a.txt", content="2", message="2", sha=first.sha)
    with pytest.raises(Conflict, match="stale"):
        await git("put_file", repo=repo, path="a.txt", content="3", message="3", sha=first.sha)
    with pytest.raises(Conflict, match="does not exist"):
        await git("put_file", repo=repo, path="new.txt", content="3", message="3", sha=first.sha)
    assert await git.plain(repo, "show", "main:a.txt") == "2"


async def test_concurrent_put_file_on_one_branch_loses_no_commit(git: GitCaller, repo: str) -> None:
    base = await git("put_file", repo=repo, path="shared.txt", content="0", message="base")
    results = await asyncio.gather(
        git("put_file", repo=repo, path="shared.txt", content="left", message="left", sha=base.sha),
        git("put_file", repo=repo, path="shared.txt", content="right", message="right", sha=base.sha),
        return_exceptions=True)
    wins = [r for r in results if not isinstance(r, BaseException)]
    losses = [r for r in results if isinstance(r, BaseException)]
    assert len(wins) == 1 and len(losses) == 1 and isinstance(losses[0], Conflict)
    winner = wins[0]
    assert await git.plain(repo, "show", "main:shared.txt") == winner.commit.message
    assert await git.plain(repo, "rev-parse", "main") == winner.commit.sha + "\n"
    assert winner.commit.parents == [base.commit.sha]

    # Different files at once: both land, one after the other, none overwritten.
    tip = (await git("get_branch", repo=repo, branch="main")).sha
    both = await asyncio.gather(*(git("put_file", repo=repo, path=f"f{i}.txt", content=str(i),
                                      message=f"f{i}") for i in range(2)))
    log = (await git.plain(repo, "log", "--format=%H", f"{tip}..main")).split()
    assert sorted(log) == sorted(r.commit.sha for r in both)
    for i in range(2):
        assert await git.plain(repo, "show", f"main:f{i}.txt") == str(i)


async def test_put_file_rechecks_against_a_tip_that_moved(git: GitCaller, repo: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Another writer publishes between our read of the tip and our swap: nothing is lost."""
    from mosaic.providers.local.git_repo import BareRepo

    original = BareRepo.update_ref
    race: dict[str, Any] = {}

    async def racing(self: BareRepo, ref: str, new: str, old: str | None, message: str) -> bool:
        if "path" in race and "winner" not in race:
            race["winner"] = None  # re-entrant call below goes straight through
            race["winner"] = await git("put_file", repo=repo, path=race["path"], content="theirs",
                                       message="theirs", sha=race.get("sha"))
        return await original(self, ref, new, old, message)

    monkeypatch.setattr(BareRepo, "update_ref", racing)
    # A different file: our write is re-applied on top of theirs.
    race["path"] = "theirs.txt"
    mine = await git("put_file", repo=repo, path="mine.txt", content="mine", message="mine")
    assert mine.commit.parents == [race["winner"].commit.sha]
    assert await git.plain(repo, "show", "main:theirs.txt") == "theirs"
    assert await git.plain(repo, "show", "main:mine.txt") == "mine"
    # The same file, updated from the same sha: theirs won, ours is stale.
    race.clear()
    race.update(path="mine.txt", sha=mine.sha)
    with pytest.raises(Conflict, match="stale"):
        await git("put_file", repo=repo, path="mine.txt", content="ours", message="ours", sha=mine.sha)
    assert await git.plain(repo, "show", "main:mine.txt") == "theirs"
    assert await git.plain(repo, "rev-parse", "main") == f"{race['winner'].commit.sha}\n"


async def test_lost_ref_race_is_a_conflict_not_an_overwrite(git: GitCaller, repo: str) -> None:
    from mosaic.providers.local.git_repo import BareRepo

    r = git.plugin._store  # type: ignore[attr-defined]
    bare = BareRepo(git.plugin._cli, git.repo_dir(repo), r.tmp)  # type: ignore[attr-defined]
    old = (await git("get_branch", repo=repo, branch="main")).sha
    moved = await git("put_file", repo=repo, path="m.txt", content="m", message="m")
    tree = await bare.tree_of(old)
    stale = await bare.commit_tree(tree, [old], "stale\n")
    assert not await bare.update_ref("refs/heads/main", stale, old, "test")
    assert (await git("get_branch", repo=repo, branch="main")).sha == moved.commit.sha
    assert not await bare.update_ref("refs/heads/main", stale, None, "must not exist")


async def test_binary_content_round_trips_as_base64(git: GitCaller, repo: str) -> None:
    data = bytes(range(256))
    put = await git("put_file", repo=repo, path="bin/blob.dat", content=base64.b64encode(data).decode(),
                    encoding="base64", message="binary")
    got = await git("get_file", repo=repo, path="bin/blob.dat")
    assert got.encoding == "base64" and base64.b64decode(got.content) == data and got.size == 256
    assert got.sha == put.sha
    text = await git("put_file", repo=repo, path="t.txt", content=base64.b64encode("héllo".encode()).decode(),
                     encoding="base64", message="text via base64")
    assert (await git("get_file", repo=repo, path="t.txt")).content == "héllo" and text.sha
    with pytest.raises(InvalidRequest, match="base64"):
        await git("put_file", repo=repo, path="x", content="not base64!", encoding="base64", message="x")


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside", "a/../../b", "a/./b", ".git/config",
                                  "src/.GIT/hooks/x", "a\x00b", "a//b", "dir/", "", "C:/x", "a\\..\\b"])
async def test_path_traversal_is_rejected(git: GitCaller, repo: str, path: str) -> None:
    with pytest.raises(InvalidRequest):
        await git("put_file", repo=repo, path=path, content="x", message="x")
    with pytest.raises(InvalidRequest):
        await git("get_file", repo=repo, path=path)
    # Nothing was written anywhere.
    assert (await git.plain(repo, "rev-list", "--count", "main")).strip() == "1"


async def test_file_errors(git: GitCaller, repo: str) -> None:
    with pytest.raises(NotFound, match=r"missing\.txt"):
        await git("get_file", repo=repo, path="missing.txt")
    with pytest.raises(NotFound, match="ghost"):
        await git("get_file", repo=repo, path="README.md", ref="ghost")
    with pytest.raises(NotFound):
        await git("get_file", repo="acme/ghost", path="README.md")
    with pytest.raises(NotFound, match="ghost"):
        await git("put_file", repo=repo, path="x", content="x", message="x", branch="ghost")
    await git("put_file", repo=repo, path="dir/inner.txt", content="x", message="x")
    with pytest.raises(InvalidRequest, match="directory"):
        await git("get_file", repo=repo, path="dir")
    with pytest.raises(Conflict):
        await git("put_file", repo=repo, path="dir", content="x", message="x")
    with pytest.raises(Conflict, match="file and a directory"):
        await git("put_file", repo=repo, path="README.md/child", content="x", message="x")
    with pytest.raises(InvalidRequest, match="message"):
        await git("put_file", repo=repo, path="y", content="x", message="  ")
    with pytest.raises(InvalidRequest, match="author_email"):
        await git("put_file", repo=repo, path="y", content="x", message="y", author_email="a<b")
    with pytest.raises(InvalidRequest, match="ref"):
        await git("get_file", repo=repo, path="README.md", ref="--upload-pack=evil")


async def test_odd_but_legal_file_names_are_literal(git: GitCaller, repo: str) -> None:
    # Pathspec magic and globs must not be interpreted.
    for name in (":(glob)*", "sp ace.txt", "ünï.txt", "*"):
        await git("put_file", repo=repo, path=f"odd/{name}", content=name, message=name)
        assert (await git("get_file", repo=repo, path=f"odd/{name}")).content == name
    with pytest.raises(NotFound):
        await git("get_file", repo=repo, path="odd/?")


# -- commits and comparisons ------------------------------------------------------

async def test_list_commits_pages_by_ref_and_path(git: GitCaller, repo: str) -> None:
    await git("create_branch", repo=repo, branch="work")
    sha = None
    for i in range(7):
        put = await git("put_file", repo=repo, path="counter.txt", content=str(i), message=f"count {i}",
                        branch="work", sha=sha)
        sha = put.sha
    await git("put_file", repo=repo, path="other.txt", content="o", message="other", branch="work")
    expected = (await git.plain(repo, "log", "--format=%H", "work", "--", "counter.txt")).split()
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await git("list_commits", repo=repo, ref="work", path="counter.txt", limit=3, cursor=cursor)
        pages += 1
        seen += [c.sha for c in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert pages == 3 and seen == expected and len(seen) == 7
    everything = await git("list_commits", repo=repo, ref="work", limit=100)
    assert [c.message for c in everything.items][:2] == ["other", "count 6"]
    assert len(everything.items) == 9 and everything.next_cursor is None
    assert len((await git("list_commits", repo=repo)).items) == 1  # default branch
    with pytest.raises(NotFound):
        await git("list_commits", repo=repo, ref="ghost")
    with pytest.raises(InvalidRequest):
        await git("list_commits", repo=repo, path="../x")


async def test_get_commit(git: GitCaller, repo: str) -> None:
    put = await git("put_file", repo=repo, path="a.txt", content="a", message="Subject\n\nBody line",
                    author_name="Bob", author_email="bob@example.com")
    c = await git("get_commit", repo=repo, sha=put.commit.sha[:12])
    assert c.sha == put.commit.sha and c.id == c.sha
    assert c.message == "Subject\n\nBody line"
    assert (c.author_name, c.author_email) == ("Bob", "bob@example.com")
    assert c.parents == [(await git.plain(repo, "rev-parse", "main~1")).strip()]
    assert c.authored_at is not None and c.authored_at.tzinfo is not None
    assert (await git("get_commit", repo=repo, sha="main~1")).message == "Initial commit"
    with pytest.raises(NotFound):
        await git("get_commit", repo=repo, sha="0" * 40)
    with pytest.raises(InvalidRequest):
        await git("get_commit", repo=repo, sha="main..other")


async def test_compare_commits(git: GitCaller, repo: str) -> None:
    await git("put_file", repo=repo, path="keep.txt", content="1\n2\n3\n", message="keep")
    await git("create_branch", repo=repo, branch="topic")
    keep = await git("get_file", repo=repo, path="keep.txt", ref="topic")
    await git("put_file", repo=repo, path="keep.txt", content="1\nTWO\n3\n", message="edit", branch="topic",
              sha=keep.sha)
    await git("put_file", repo=repo, path="added.txt", content="new\n", message="add", branch="topic")
    await git("put_file", repo=repo, path="main-only.txt", content="m\n", message="main moves")

    cmp = await git("compare_commits", repo=repo, base="main", head="topic")
    assert (cmp.ahead_by, cmp.behind_by) == (2, 1)
    assert cmp.merge_base == (await git.plain(repo, "merge-base", "main", "topic")).strip()
    assert [c.message for c in cmp.commits] == ["edit", "add"]  # oldest first
    files = {f.path: f for f in cmp.files}
    assert set(files) == {"keep.txt", "added.txt"}  # main-only.txt is not the head's change
    assert (files["keep.txt"].status, files["keep.txt"].additions, files["keep.txt"].deletions) == \
        ("modified", 1, 1)
    assert files["keep.txt"].patch is not None and "-2\n+TWO" in files["keep.txt"].patch
    assert files["keep.txt"].patch.startswith("@@")
    assert files["added.txt"].status == "added" and files["added.txt"].id == "added.txt"
    with pytest.raises(NotFound):
        await git("compare_commits", repo=repo, base="main", head="ghost")


async def test_compare_reports_renames_removals_and_binaries(git: GitCaller, repo: str) -> None:
    body = "".join(f"line {i}\n" for i in range(20))
    await git("put_file", repo=repo, path="old/name.txt", content=body, message="a")
    base = (await git("get_branch", repo=repo, branch="main")).sha
    # A commit made with plain plumbing, as a push from a client would arrive: README.md
    # removed, old/name.txt renamed, a binary file added.
    blob = (await git.plain(repo, "rev-parse", "main:old/name.txt")).strip()
    binary = (await git.plain(repo, "hash-object", "-w", "--stdin", stdin="\x00\xff\x00")).strip()
    entries = f"100644 blob {blob}\tnew_name.txt\n100644 blob {binary}\timg.bin\n"
    tree = (await git.plain(repo, "mktree", stdin=entries)).strip()
    head = (await git.plain(repo, "commit-tree", tree, "-p", "main", "-m", "restructure")).strip()
    await git.plain(repo, "update-ref", "refs/heads/restructured", head)

    cmp = await git("compare_commits", repo=repo, base=base, head="restructured")
    files = {f.path: f for f in cmp.files}
    assert set(files) == {"new_name.txt", "README.md", "img.bin"}
    assert files["new_name.txt"].status == "renamed"
    assert files["new_name.txt"].previous_path == "old/name.txt"
    assert files["README.md"].status == "removed" and files["README.md"].deletions == 3
    assert files["README.md"].patch is not None and files["README.md"].patch.startswith("@@ -1,3 +0,0 @@")
    assert files["img.bin"].status == "added" and files["img.bin"].patch is None
    assert files["img.bin"].raw["binary"] is True
    assert [c.author_name for c in cmp.commits] == ["Pusher"]


def test_name_validators() -> None:
    assert check_path("a/b.txt") == "a/b.txt"
    assert check_branch("feature/x-1") == "feature/x-1"
    assert check_rev("main~2") == "main~2" and check_rev("abc123^") == "abc123^"
    for bad in ("a/.git", ".git", "a/../b", "/abs", "a\nb"):
        with pytest.raises(InvalidRequest):
            check_path(bad)
    for bad in ("-rf", "a..b", "a:b", "main@{1}", "ref with space"):
        with pytest.raises(InvalidRequest):
            check_rev(bad)


async def test_nul_in_commit_message_is_invalid_request(git_plugin, repo) -> None:  # type: ignore[no-untyped-def]
    from mosaic.catalog import git as g
    from mosaic.errors import InvalidRequest
    from mosaic.gateway.context import RequestContext

    with pytest.raises(InvalidRequest):
        await git_plugin.call(g.put_file, g.PutFileParams(repo=repo, path="a.txt", content="x",
                                                          message="bad\x00message"), RequestContext())
