"""Explain: the engine's view, `mosaic route ...` on the command line, and the REST endpoints."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from tests.routing.fakes import gateway
from typer.testing import CliRunner

from mosaic.gateway.context import Principal, RequestContext
from mosaic.gateway.gateway import Gateway
from mosaic.interfaces.cli.route import app as route_app
from mosaic.plugins.contract import HealthStatus
from mosaic.routing.http import router

RULES = {
    "rules": [
        {"name": "eu-users", "condition": "user.region == 'EU'", "provider": "a", "priority": 50},
        {"pattern": "org:mosaic-*", "provider": ["b", "c"], "priority": 10},
        {"pattern": "repo:mosaic-core/*", "provider": "a", "priority": 1},
        {"pattern": "org:other", "provider": "c"},
        {"default": {"provider": "c"}},
    ],
    "loadBalancing": {"healthCheck": {"interval": 60000}},
}


@pytest.fixture
async def gw() -> AsyncIterator[Gateway]:
    g = gateway(RULES, plugins=("a", "b", "c"))
    await g.start()
    yield g
    await g.stop()


def explain_for(g: Gateway, user: str = "alice", **attrs: str) -> object:
    call = g.prepare("git.get_repository", {"repo": "mosaic-core/api"},
                     RequestContext(principal=Principal(id=user, attributes=attrs)))
    return g.routing.explain(call.ctx, call.op)


async def test_explain_lists_every_candidate_with_rules_score_health_and_choice(gw: Gateway) -> None:
    gw.routing.board.probe_result("c", HealthStatus(status="unhealthy", detail="503"), 2.0)
    x = explain_for(gw, region="EU")
    by = {c.provider: c for c in x.candidates}  # type: ignore[attr-defined]
    assert x.chosen == "a" and x.order == ["a", "b"]  # type: ignore[attr-defined]
    assert by["a"].rules == ["rule 'eu-users' (routing.rules[0])", "rule routing.rules[2] ('repo:mosaic-core/*')"]
    assert (by["a"].tier, by["a"].score, by["a"].position, by["a"].chosen) == (0, 50, 0, True)
    assert (by["b"].tier, by["b"].score, by["b"].position) == (1, 10, 1)
    assert by["c"].skipped == "unhealthy: 503" and by["c"].health["status"] == "unhealthy"
    assert by["c"].rules == ["rule routing.rules[1] ('org:mosaic-*')", "rule routing.rules[4] ('default')"]
    assert [r.rule for r in x.rules] == [  # type: ignore[attr-defined]
        "rule 'eu-users' (routing.rules[0])", "rule routing.rules[1] ('org:mosaic-*')",
        "rule routing.rules[2] ('repo:mosaic-core/*')", "rule routing.rules[4] ('default')"]
    assert x.rules_total == 5  # type: ignore[attr-defined]


async def test_explain_moves_no_balancer_state(gw: Gateway) -> None:
    x1 = explain_for(gw)
    x2 = explain_for(gw)
    assert x1.chosen == x2.chosen == "b" and x1.order == ["b", "c", "a"]  # type: ignore[attr-defined]
    ctx = RequestContext()
    await gw.execute("git.list_repositories", {"owner": "x"}, ctx)  # no repo: the default (c)
    call = gw.prepare("git.get_repository", {"repo": "mosaic-core/api"})
    assert gw.routing.decide(call.ctx, call.op).chosen == "b"  # the round-robin did not move


async def test_explain_with_all_rules_says_why_each_did_not_match(gw: Gateway) -> None:
    call = gw.prepare("git.get_repository", {"repo": "other/x"}, RequestContext())
    x = gw.routing.explain(call.ctx, call.op, all_rules=True)
    why = {r.rule: (r.pattern_matched, r.condition_matched, r.matched) for r in x.rules}
    assert why["rule 'eu-users' (routing.rules[0])"] == (None, False, False)
    assert why["rule routing.rules[3] ('org:other')"] == (True, None, True)
    assert x.chosen == "c"


async def test_rest_endpoints(gw: Gateway, tmp_path: Path) -> None:
    app = FastAPI()
    app.include_router(router)
    app.state.gateway = gw
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        r = await client.get("/v1/routing/explain", params=[
            ("operation", "git.get_repository"), ("repo", "mosaic-core/api"), ("as", "bob"),
            ("attr", "region=EU")])
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["chosen"] == "a" and body["facts"]["principal"]["attributes"] == {"region": "EU"}
        bad = await client.get("/v1/routing/explain", params={"operation": "git.get_repository"})
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"
        assert "repo" in bad.json()["detail"]
        r = await client.get("/v1/routing/phases")
        assert r.json()["phases"] == [] and r.json()["active"] is None
        r = await client.post("/v1/routing/phase", json={"phase": "2"})
        assert r.status_code == 422 and "none are configured" in r.json()["detail"]


async def test_rest_phase_switch_needs_admin(tmp_path: Path) -> None:
    from mosaic.interfaces.auth import PRINCIPAL_KEY

    g = gateway({"phases": [{"phase": 1, "rules": [{"pattern": "*", "provider": "a"}]},
                            {"phase": 2, "rules": [{"pattern": "*", "provider": "b"}]}],
                 "loadBalancing": {"healthCheck": {"interval": 60000}}},
                plugins=("a", "b"), data_dir=tmp_path)
    await g.start()
    app = FastAPI()
    app.include_router(router)
    app.state.gateway = g
    who: dict[str, Principal] = {"p": Principal(id="bob", roles=("reader",))}

    async def as_caller(scope, receive, send):  # type: ignore[no-untyped-def]
        scope[PRINCIPAL_KEY] = who["p"]
        await app(scope, receive, send)

    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=as_caller), base_url="http://t") as c:
            r = await c.post("/v1/routing/phase", json={"phase": "2"})
            assert r.status_code == 403 and r.json()["code"] == "forbidden"
            who["p"] = Principal(id="ops-alice", roles=("admin",))
            r = await c.post("/v1/routing/phase", json={"phase": "2", "reason": "go"})
            assert r.status_code == 200 and r.json()["active"] == "2"
            view = (await c.get("/v1/routing/phases")).json()
            assert view["active"] == "2" and view["switches"][-1]["by"] == "ops-alice"
    finally:
        await g.stop()


PHASED = """\
orchestration:
  plugins:
    - {{id: gitea-git, type: git, provider: local, config: {{dataDir: "{d}/gitea"}}}}
    - {{id: github-git, type: git, provider: local, default: true, config: {{dataDir: "{d}/github"}}}}
  routing:
    phases:
      - phase: 1
        routing:
          - pattern: "org:team-a-*"
            provider: gitea-git
      - phase: 2
        routing:
          - default:
              provider: gitea-git
"""


def test_cli_explain_phase_and_phases(tmp_path: Path) -> None:
    cfg = tmp_path / "mosaic.yaml"
    cfg.write_text(PHASED.format(d=tmp_path))
    env = {"MOSAIC_DATA_DIR": str(tmp_path / "state")}
    runner = CliRunner()
    r = runner.invoke(route_app, ["explain", "git.get_repository", "repo=team-a-x/api", "--as", "alice",
                                  "--attr", "region=EU", "--config", str(cfg), "--json"], env=env)
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert body["chosen"] == "gitea-git" and body["phase"] == "1"
    assert {c["provider"]: c["health"]["status"] for c in body["candidates"]} == \
        {"gitea-git": "healthy", "github-git": "healthy"}  # probed once before explaining
    table = runner.invoke(route_app, ["explain", "git.get_repository", "repo=team-b/api", "--config", str(cfg)],
                          env=env)
    assert table.exit_code == 0 and "github-git" in table.output and "chosen" in table.output

    r = runner.invoke(route_app, ["phase", "2", "--reason", "all teams", "--config", str(cfg)], env=env)
    assert r.exit_code == 0, r.output
    assert "routing phase 1 → 2" in r.output
    r = runner.invoke(route_app, ["phases", "--config", str(cfg), "--json"], env=env)
    view = json.loads(r.output)
    assert view["active"] == "2" and view["switches"][-1]["reason"] == "all teams"
    r = runner.invoke(route_app, ["explain", "git.get_repository", "repo=team-b/api", "--config", str(cfg),
                                  "--json", "--offline"], env=env)
    assert json.loads(r.output)["phase"] == "2" and json.loads(r.output)["order"] == ["gitea-git"]

    r = runner.invoke(route_app, ["phase", "7", "--config", str(cfg)], env=env)
    assert r.exit_code == 2 and "unknown routing phase '7'" in r.output
    r = runner.invoke(route_app, ["explain", "git.get_repository", "--config", str(cfg)], env=env)
    assert r.exit_code == 2 and "repo: required" in r.output
