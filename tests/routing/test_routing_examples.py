"""The four use-case examples of the seed, loaded from `examples/` and run on real local providers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mosaic.api import Orchestrator
from mosaic.config.loader import load_config
from mosaic.errors import NotFound
from mosaic.gateway.context import Principal, RequestContext

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOSAIC_DATA_DIR", str(tmp_path))  # phase state is kept there too
    return tmp_path


@contextlib.asynccontextmanager
async def running(name: str, data_dir: Path) -> AsyncIterator[Orchestrator]:
    cfg = load_config(EXAMPLES / name, env={"MOSAIC_DATA_DIR": str(data_dir)})
    async with Orchestrator(cfg) as orch:
        assert not orch.gateway.manager.failed, orch.gateway.manager.failed
        yield orch


def bare_repo(data_dir: Path, example: str, instance: str, repo: str) -> Path:
    return data_dir / "examples" / example / instance / "git" / f"{repo}.git"


async def test_hybrid_cloud(data_dir: Path) -> None:
    async with running("hybrid-cloud.yaml", data_dir) as orch:
        internal = await orch.git.create_repository(name="api", owner="internal-tools")
        oss = await orch.git.create_repository(name="cli", owner="opensource-kit")
        secret = await orch.git.create_repository(name="keys", owner="opensource-kit", private=True)
        other = await orch.git.create_repository(name="site", owner="marketing")
        assert [r.provider for r in (internal, oss, secret, other)] == \
            ["gitea-git", "github-git", "gitea-git", "gitea-git"]  # type: ignore[attr-defined]
        # Real bare repositories, each in its instance's data dir.
        assert (bare_repo(data_dir, "hybrid-cloud", "gitea", "internal-tools/api") / "HEAD").is_file()
        assert (bare_repo(data_dir, "hybrid-cloud", "github", "opensource-kit/cli") / "HEAD").is_file()
        assert not bare_repo(data_dir, "hybrid-cloud", "github", "internal-tools/api").exists()
        ctx = RequestContext()
        got = await orch.git.get_repository(repo="internal-tools/api", ctx=ctx)
        assert got.provider == "gitea-git"  # type: ignore[attr-defined]
        assert ctx.meta["routing"]["rules"] == ["rule 'internal-on-premise' (routing.rules[0])"]
        assert (await orch.git.get_repository(repo="opensource-kit/cli")).provider == "github-git"  # type: ignore[attr-defined]


async def test_cost_optimized_ci(data_dir: Path) -> None:
    async with running("cost-optimized-ci.yaml", data_dir) as orch:
        await orch.git.create_repository(name="model", owner="ml")
        # Each CI service knows the pipeline (as each would read it from the repository).
        for ci in ("self-hosted-jenkins", "github-actions", "woodpecker-ci"):
            await orch.cicd.create_pipeline(repo="ml/model", name="ci",
                                            steps=[{"name": "build", "commands": ["echo built"]}],
                                            ctx=RequestContext(plugin=ci))

        async def trigger(**facts: object) -> str:
            ctx = RequestContext()
            run = await orch.cicd.trigger_pipeline(repo="ml/model", pipeline="ci", ctx=ctx, **facts)
            assert run.provider == ctx.meta["provider"]  # type: ignore[attr-defined]
            return str(run.provider)  # type: ignore[attr-defined]

        assert await trigger(size_bytes=20 << 30, public=False) == "self-hosted-jenkins"
        assert await trigger(size_bytes=20 << 30, public=True) == "self-hosted-jenkins"  # priority 20 > 10
        assert await trigger(size_bytes=1 << 30, public=True) == "github-actions"
        assert await trigger(size_bytes=1 << 30, public=False) == "woodpecker-ci"
        assert await trigger() == "woodpecker-ci"  # nothing stated: the default
        # Reads of other objects are not builds: the default serves them.
        assert (await orch.cicd.get_pipeline(repo="ml/model", pipeline="ci")).provider == "woodpecker-ci"  # type: ignore[attr-defined]


async def test_multi_region_docs(data_dir: Path) -> None:
    async with running("multi-region-docs.yaml", data_dir) as orch:
        def as_user(region: str | None) -> RequestContext:
            attrs = {"region": region} if region else {}
            return RequestContext(principal=Principal(id="u", roles=("editor",), attributes=attrs))

        spaces = {}
        for region in ("EU", "US", "APAC"):
            space = await orch.docs.create_space(key="handbook", name=f"{region} handbook", ctx=as_user(region))
            spaces[region] = space
            await orch.docs.create_document(space_id=space.id, title="Onboarding",  # type: ignore[attr-defined]
                                            body=f"welcome to the {region} office", ctx=as_user(region))
        assert {r: s.provider for r, s in spaces.items()} == \
            {"EU": "eu-bookstack", "US": "us-confluence", "APAC": "apac-notion"}  # type: ignore[attr-defined]
        found = await orch.docs.search_documents(query="welcome", ctx=as_user("US"))
        assert found.provider == "us-confluence"  # type: ignore[attr-defined]
        assert [h.snippet for h in found.hits] == ["<mark>welcome</mark> to the US office"]  # type: ignore[attr-defined]
        # No region: the instance marked default (strictest residency).
        anon = await orch.docs.list_spaces(ctx=as_user(None))
        assert {s.provider for s in anon.items} == {"eu-bookstack"}  # type: ignore[attr-defined]


async def test_progressive_migration(data_dir: Path) -> None:
    async with running("progressive-migration.yaml", data_dir) as orch:
        gw, phases = orch.gateway, orch.gateway.routing.phases
        github = RequestContext(plugin="github-git")
        # Existing repositories live on GitHub.
        for owner, name in (("team-a-core", "api"), ("team-b", "web"), ("acme", "old-monolith")):
            await orch.git.create_repository(name=name, owner=owner, ctx=RequestContext(plugin="github-git"))
        assert github.plugin == "github-git"

        async def served(repo: str) -> tuple[str, list[str]]:
            ctx = RequestContext()
            r = await orch.git.get_repository(repo=repo, ctx=ctx)
            return str(r.provider), [h["reason"] for h in ctx.meta.get("failovers", [])]  # type: ignore[attr-defined]

        # Phase 1: new repositories go to Gitea; everything else is read from GitHub.
        assert phases.active == "1"
        fresh = await orch.git.create_repository(name="svc", owner="team-a-core")
        assert fresh.provider == "gitea-git"  # type: ignore[attr-defined]
        assert await served("team-b/web") == ("github-git", [])
        assert await served("team-a-core/svc") == ("gitea-git", ["not_found"])  # found where it lives
        with pytest.raises(NotFound):
            await orch.git.get_repository(repo="nobody/nothing")

        # Phase 2: team A has moved (its repositories are now on Gitea).
        await orch.git.create_repository(name="api", owner="team-a-core", ctx=RequestContext(plugin="gitea-git"))
        entry = await phases.switch("2", by="migration-bot", reason="team A moved")
        assert entry["from"] == "1" and entry["to"] == "2"
        assert await served("team-a-core/api") == ("gitea-git", [])
        assert await served("team-a-core/svc") == ("gitea-git", [])
        assert await served("team-b/web") == ("github-git", [])

        # Phase 3: Gitea by default, legacy repositories stay on GitHub.
        await phases.switch("3", by="migration-bot")
        assert await served("acme/old-monolith") == ("github-git", [])
        assert await served("team-a-core/api") == ("gitea-git", [])
        assert await served("team-b/web") == ("github-git", ["not_found"])  # not moved yet: still found
        assert (await orch.git.create_repository(name="new", owner="team-b")).provider == "gitea-git"  # type: ignore[attr-defined]
        # The switches were recorded.
        assert [(e["from"], e["to"]) for e in phases.log] == [("1", "2"), ("2", "3")]
        assert (data_dir / "routing-phase.json").is_file()
        assert gw.routing.phases.current.phase == "3"
