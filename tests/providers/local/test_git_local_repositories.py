"""Local git provider: lifecycle, configuration and repositories."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mosaic.catalog.registry import CATALOG
from mosaic.errors import ConfigError, Conflict, Forbidden, InvalidRequest, NotFound, OperationNotSupported
from mosaic.gateway.context import RequestContext
from mosaic.providers.local.git import LocalGitPlugin

if TYPE_CHECKING:
    from conftest import GitCaller


async def test_capabilities_are_every_git_operation_but_passthrough() -> None:
    expected = CATALOG.names("git") - {"passthrough"}
    assert LocalGitPlugin.capabilities() == expected
    assert "passthrough" in LocalGitPlugin.unsupported


async def test_passthrough_is_unsupported_with_a_reason(git: GitCaller) -> None:
    with pytest.raises(OperationNotSupported, match="no remote API"):
        await git("passthrough", path="/user")


async def test_config_uses_camel_case_keys_and_validates_the_owner(tmp_path: Path) -> None:
    cfg = LocalGitPlugin.Config.model_validate(
        {"dataDir": str(tmp_path), "baseUrl": "http://localhost:3000/", "defaultOwner": "team"})
    assert cfg.model_dump() == {"data_dir": tmp_path, "base_url": "http://localhost:3000",
                                "default_owner": "team", "command_timeout": 60.0}
    with pytest.raises(ValueError):
        LocalGitPlugin.Config.model_validate({"dataDir": str(tmp_path), "defaultOwner": ".tmp"})
    with pytest.raises(ValueError):
        LocalGitPlugin.Config.model_validate({"dataDir": str(tmp_path), "unknown": 1})
    with pytest.raises(ValueError):
        LocalGitPlugin.Config.model_validate({})


async def test_initialize_rejects_a_foreign_config_model(tmp_path: Path) -> None:
    from pydantic import BaseModel

    class Other(BaseModel):
        path: str = "x"

    with pytest.raises(ConfigError):
        await LocalGitPlugin("x").initialize(Other())


async def test_health_is_cached_and_reflects_the_data_dir(git_plugin: LocalGitPlugin, tmp_path: Path) -> None:
    status = await git_plugin.health_check()
    assert status.status == "healthy" and status.detail.startswith("git version")
    assert git_plugin.metrics()["git_version"].startswith("git version")
    (tmp_path / "git").chmod(0o500)
    try:
        import os
        if os.geteuid() != 0:  # root writes anywhere: the check cannot fail for it
            assert (await git_plugin.health_check()).status == "unhealthy"
    finally:
        (tmp_path / "git").chmod(0o700)
    await git_plugin.stop()
    assert (await git_plugin.health_check()).status == "unhealthy"


async def test_calls_before_start_are_unavailable(tmp_path: Path) -> None:
    from mosaic.errors import ProviderUnavailable

    plugin = LocalGitPlugin("cold")
    await plugin.initialize(LocalGitPlugin.Config(dataDir=tmp_path))
    op = CATALOG["git.get_repository"]
    with pytest.raises(ProviderUnavailable):
        await plugin.call(op, op.params(repo="a/b"), RequestContext())
    assert (await plugin.health_check()).status == "unhealthy"


async def test_create_repository_is_a_real_bare_repository(git: GitCaller) -> None:
    repo = await git("create_repository", name="api", owner="acme", description="The API", private=True)
    assert (repo.provider, repo.full_name, repo.owner, repo.name) == ("local-git", "acme/api", "acme", "api")
    assert repo.private and repo.description == "The API" and repo.default_branch == "main"
    path = git.repo_dir("acme/api")
    assert repo.clone_url == path.as_uri() and repo.url == path.as_uri()
    assert repo.created_at is not None and repo.raw["id"] == repo.id
    assert await git.plain("acme/api", "rev-parse", "--is-bare-repository") == "true\n"
    assert await git.plain("acme/api", "symbolic-ref", "HEAD") == "refs/heads/main\n"
    assert await git.plain("acme/api", "show", "main:README.md") == "# api\n\nThe API\n"
    assert await git.plain("acme/api", "log", "--format=%an <%ae>|%s", "main") == \
        "MosAIc <mosaic@localhost>|Initial commit\n"


async def test_create_repository_defaults_and_empty_repositories(git: GitCaller) -> None:
    repo = await git("create_repository", name="empty", auto_init=False, default_branch="trunk")
    assert repo.full_name == "local/empty" and repo.default_branch == "trunk"
    assert await git.plain("local/empty", "for-each-ref") == ""
    assert (await git("list_branches", repo="local/empty")).items == []
    assert (await git("list_commits", repo="local/empty")).items == []
    with pytest.raises(NotFound):
        await git("get_file", repo="local/empty", path="README.md")
    # The first file written to an empty repository makes its root commit.
    put = await git("put_file", repo="local/empty", path="a.txt", content="a\n", message="first")
    assert put.commit.parents == []
    assert (await git("get_branch", repo="local/empty", branch="trunk")).sha == put.commit.sha


async def test_create_repository_errors(git: GitCaller, repo: str) -> None:
    with pytest.raises(Conflict, match="already exists"):
        await git("create_repository", name="api", owner="acme")
    with pytest.raises(InvalidRequest):
        await git("create_repository", name="x", owner=".tmp")
    with pytest.raises(InvalidRequest, match="default_branch"):
        await git("create_repository", name="x", default_branch="bad..name")
    with pytest.raises(ValueError):  # rejected by the params model already
        await git("create_repository", name="../evil")


async def test_get_repository_and_not_found(git: GitCaller, repo: str) -> None:
    got = await git("get_repository", repo=repo)
    assert got.full_name == repo and got.description == "The API"
    with pytest.raises(NotFound, match="acme/nope"):
        await git("get_repository", repo="acme/nope")
    with pytest.raises(NotFound):
        await git("get_repository", repo="nobody/api")
    with pytest.raises(InvalidRequest, match="subgroups"):
        await git("get_repository", repo="acme/sub/api")


async def test_update_repository_fields_default_branch_and_rename(git: GitCaller, repo: str) -> None:
    await git("create_branch", repo=repo, branch="develop")
    before = await git("get_repository", repo=repo)
    updated = await git("update_repository", repo=repo, description="new", private=True,
                        default_branch="develop")
    assert (updated.description, updated.private, updated.default_branch) == ("new", True, "develop")
    assert updated.updated_at is not None and before.updated_at is not None
    assert updated.updated_at >= before.updated_at
    assert await git.plain(repo, "symbolic-ref", "HEAD") == "refs/heads/develop\n"
    with pytest.raises(NotFound, match="branch"):
        await git("update_repository", repo=repo, default_branch="ghost")

    pr = await git("create_pull_request", repo=repo, title="t", head="main", base="develop")
    renamed = await git("update_repository", repo=repo, new_name="service")
    assert renamed.full_name == "acme/service" and renamed.id == before.id
    assert not git.repo_dir(repo).exists() and git.repo_dir("acme/service").is_dir()
    with pytest.raises(NotFound):
        await git("get_repository", repo=repo)
    # Pull requests follow the repository: they are keyed by its stable id, not its name.
    assert (await git("get_pull_request", repo="acme/service", number=pr.number)).title == "t"

    await git("create_repository", name="other", owner="acme")
    with pytest.raises(Conflict, match="already exists"):
        await git("update_repository", repo="acme/service", new_name="other", description="lost")
    assert (await git("get_repository", repo="acme/service")).description == "new"  # nothing changed
    with pytest.raises(NotFound):
        await git("update_repository", repo="acme/ghost", description="x")


async def test_archived_repositories_are_read_only(git: GitCaller, repo: str) -> None:
    await git("update_repository", repo=repo, archived=True)
    assert (await git("get_repository", repo=repo)).archived
    assert (await git("get_file", repo=repo, path="README.md")).content.startswith("# api")
    with pytest.raises(Forbidden, match="archived"):
        await git("put_file", repo=repo, path="x", content="x", message="x")
    with pytest.raises(Forbidden):
        await git("create_branch", repo=repo, branch="b")
    await git("update_repository", repo=repo, archived=False)
    await git("create_branch", repo=repo, branch="b")


async def test_delete_repository_removes_directory_and_metadata(git: GitCaller, repo: str) -> None:
    await git("create_branch", repo=repo, branch="feature")
    await git("put_file", repo=repo, path="f.txt", content="f", message="f", branch="feature")
    await git("create_pull_request", repo=repo, title="first", head="feature")
    head = (await git("get_branch", repo=repo, branch="main")).sha
    await git("set_commit_status", repo=repo, sha=head, state="success")
    original = await git("get_repository", repo=repo)

    deleted = await git("delete_repository", repo=repo)
    assert deleted.deleted and deleted.id == original.id and deleted.provider == "local-git"
    assert not git.repo_dir(repo).exists()
    with pytest.raises(NotFound):
        await git("get_repository", repo=repo)
    with pytest.raises(NotFound):
        await git("delete_repository", repo=repo)

    # Same name again: a new repository, with no pull requests or statuses of the old one.
    again = await git("create_repository", name="api", owner="acme")
    assert again.id != original.id
    with pytest.raises(NotFound):
        await git("get_pull_request", repo=repo, number=1)
    new_head = (await git("get_branch", repo=repo, branch="main")).sha
    assert (await git("list_commit_statuses", repo=repo, ref=new_head)).items == []
    await git("create_branch", repo=repo, branch="feature")
    await git("put_file", repo=repo, path="g.txt", content="g", message="g", branch="feature")
    assert (await git("create_pull_request", repo=repo, title="again", head="feature")).number == 1


async def test_list_repositories_paginates_and_filters_by_owner(git: GitCaller) -> None:
    for name in ("a1", "a2", "a3", "a4", "a5", "a6", "a7"):
        await git("create_repository", name=name, owner="acme", auto_init=False)
    await git("create_repository", name="solo", owner="zed", auto_init=False)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await git("list_repositories", limit=3, cursor=cursor)
        pages += 1
        seen += [r.full_name for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"acme/a{i}" for i in range(1, 8)] + ["zed/solo"]
    only = await git("list_repositories", owner="zed")
    assert [r.full_name for r in only.items] == ["zed/solo"] and only.next_cursor is None
    assert (await git("list_repositories", owner="nobody")).items == []
    with pytest.raises(InvalidRequest, match="cursor"):
        await git("list_repositories", cursor="abc")


async def test_two_instances_with_different_data_dirs_are_independent(tmp_path: Path,
                                                                      git_factory: Any) -> None:
    one = await git_factory(tmp_path / "one", "local-one")
    two = await git_factory(tmp_path / "two", "local-two", baseUrl="http://localhost:3000/git")
    a = await one("create_repository", name="api", owner="acme")
    b = await two("create_repository", name="api", owner="acme")
    assert a.provider == "local-one" and b.provider == "local-two" and a.id != b.id
    assert b.url == "http://localhost:3000/git/acme/api"
    await one("put_file", repo="acme/api", path="only-one.txt", content="1", message="1")
    with pytest.raises(NotFound):
        await two("get_file", repo="acme/api", path="only-one.txt")
    await one("delete_repository", repo="acme/api")
    assert (await two("get_repository", repo="acme/api")).full_name == "acme/api"


async def test_base_url_builds_web_urls(tmp_path: Path, git_factory: Any) -> None:
    git = await git_factory(tmp_path, baseUrl="http://localhost:3000")
    await git("create_repository", name="api", owner="acme")
    await git("create_branch", repo="acme/api", branch="feat/x")
    branch = await git("get_branch", repo="acme/api", branch="feat/x")
    assert branch.url == "http://localhost:3000/acme/api/tree/feat/x"
    file = await git("get_file", repo="acme/api", path="README.md")
    assert file.url == "http://localhost:3000/acme/api/blob/main/README.md"
    await git("put_file", repo="acme/api", path="b.txt", content="b", message="b", branch="feat/x")
    pr = await git("create_pull_request", repo="acme/api", title="t", head="feat/x")
    assert pr.url == "http://localhost:3000/acme/api/pull/1"
    review = await git("review_pull_request", repo="acme/api", number=1, event="comment")
    assert review.url == f"http://localhost:3000/acme/api/pull/1#review-{review.id}"


async def test_a_repository_dropped_in_by_hand_is_served(git: GitCaller) -> None:
    import asyncio

    target = git.repo_dir("hand/made")
    target.parent.mkdir(parents=True)
    proc = await asyncio.create_subprocess_exec("git", "init", "--bare", "-q", "-b", "main", str(target))
    assert await proc.wait() == 0
    repo = await git("get_repository", repo="hand/made")
    assert repo.full_name == "hand/made" and repo.id
    assert (await git("get_repository", repo="hand/made")).id == repo.id  # metadata was persisted
    assert [r.full_name for r in (await git("list_repositories")).items] == ["hand/made"]
