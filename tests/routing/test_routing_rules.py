"""Ranking: priorities, ties, defaults (in the seed's YAML shapes), scoping, fallback."""

from __future__ import annotations

import pytest
import yaml
from tests.routing.fakes import engine, request, route

from mosaic.config.schema import MosaicConfig
from mosaic.errors import ConfigError
from mosaic.routing.config import RoutingConfig
from mosaic.routing.engine import RoutingEngine
from mosaic.routing.rules import Facts


def test_highest_priority_wins_and_the_rest_is_the_failover_order() -> None:
    eng = engine({"rules": [
        {"pattern": "org:acme", "provider": "c", "priority": 1},
        {"pattern": "repo:acme/*", "provider": "a", "priority": 50},
        {"pattern": "acme/**", "provider": "b", "priority": 10},
    ]})
    assert route(eng, "git.get_repository", {"repo": "acme/api"}) == ["a", "b", "c"]
    tiers = eng.current.match(Facts(*request("git.get_repository", {"repo": "acme/api"})))
    assert [t.priority for t in tiers] == [50, 10, 1]


def test_a_provider_appears_once_at_its_best_rank() -> None:
    eng = engine({"rules": [
        {"pattern": "org:acme", "provider": "a", "priority": 1},
        {"pattern": "repo:acme/api", "provider": "a", "priority": 90},
        {"pattern": "acme/*", "provider": "b", "priority": 5},
    ]})
    assert route(eng, "git.get_repository", {"repo": "acme/api"}) == ["a", "b"]


def test_equal_priorities_tie_and_the_balancer_rotates_among_them() -> None:
    eng = engine({"rules": [{"pattern": "org:acme", "provider": "a", "priority": 5},
                            {"pattern": "acme/*", "provider": "b", "priority": 5},
                            {"pattern": "org:*", "provider": "c", "priority": 1}]})
    ctx, op = request("git.get_repository", {"repo": "acme/api"})
    orders = [eng.decide(ctx, op).candidates for _ in range(4)]
    assert orders == [["a", "b", "c"], ["b", "a", "c"], ["a", "b", "c"], ["b", "a", "c"]]
    # A rule naming several providers is the same as a tie.
    multi = engine({"rules": [{"pattern": "*", "provider": ["b", "c"]}]})
    ctx, op = request("git.list_repositories", {})
    assert [multi.decide(ctx, op).candidates[0] for _ in range(4)] == ["b", "c", "b", "c"]


SEED_USE_CASE_2 = """
rules:
  - condition: "build.size > 10GB"
    provider: a
    priority: 20
  - condition: "build.public == true"
    provider: b
    priority: 10
  - default:
    provider: c
"""


@pytest.mark.parametrize("default_shape", [
    "  - default:\n    provider: c\n",             # the seed's text: {"default": None, "provider": "c"}
    "  - default:\n      provider: c\n",           # {"default": {"provider": "c"}}
    "  - default: c\n",
    "  - provider: c\n    default: true\n",
])
def test_default_rules_in_every_yaml_shape(default_shape: str) -> None:
    text = SEED_USE_CASE_2.split("  - default:")[0] + default_shape
    cfg = RoutingConfig.model_validate(yaml.safe_load(text))
    assert [r.default for r in cfg.rules] == [False, False, True]
    assert cfg.rules[2].provider == ["c"]


def test_defaults_win_only_when_nothing_else_matches() -> None:
    eng = engine(SEED_USE_CASE_2, service="cicd")
    run = {"repo": "acme/api", "pipeline": "ci"}
    assert route(eng, "cicd.trigger_pipeline", {**run, "size_bytes": 11 << 30, "public": True}) == ["a", "b", "c"]
    assert route(eng, "cicd.trigger_pipeline", {**run, "size_bytes": 1 << 30, "public": True}) == ["b", "c"]
    assert route(eng, "cicd.trigger_pipeline", {**run, "size_bytes": 1 << 30, "public": False}) == ["c"]
    assert route(eng, "cicd.get_pipeline", run) == ["c"]  # no build facts: conditions cannot hold


def test_default_rules_rank_after_every_other_rule_whatever_their_priority() -> None:
    eng = engine({"rules": [{"default": {"provider": "c", "priority": 1000}},
                            {"pattern": "org:acme", "provider": "a", "priority": -5}]})
    assert route(eng, "git.get_repository", {"repo": "acme/api"}) == ["a", "c"]
    assert route(eng, "git.get_repository", {"repo": "other/api"}) == ["c"]


def test_operation_filters_scope_rules() -> None:
    eng = engine({"rules": [
        {"pattern": "org:acme", "provider": "a", "operations": ["git.create_*"], "priority": 10},
        {"pattern": "org:acme", "provider": "b", "operation": "get_repository"},
        {"default": {"provider": "c"}},
    ]})
    assert route(eng, "git.create_repository", {"name": "x", "owner": "acme"}) == ["a", "c"]
    assert route(eng, "git.get_repository", {"repo": "acme/x"}) == ["b", "c"]
    assert route(eng, "git.delete_repository", {"repo": "acme/x"}) == ["c"]


def test_rules_apply_to_their_providers_service_only() -> None:
    cfg = MosaicConfig.model_validate({"orchestration": {
        "plugins": [{"id": "g", "type": "git", "provider": "memory"},
                    {"id": "d", "type": "docs", "provider": "memory"}],
        "routing": {"rules": [{"pattern": "*", "provider": "d"}]}}})
    eng = RoutingEngine(cfg.orchestration.routing, {"g": "git", "d": "docs"})
    assert eng.routes("docs") and not eng.routes("git")
    assert route(eng, "docs.list_spaces", {}) == ["d"]


def test_without_a_matching_rule_the_service_default_serves() -> None:
    eng = engine({"rules": [{"pattern": "org:acme", "provider": "a"}]}, default="b")
    assert route(eng, "git.get_repository", {"repo": "other/x"}) == ["b"]
    no_default = engine({"rules": [{"pattern": "org:acme", "provider": "b"}]})
    assert route(no_default, "git.get_repository", {"repo": "other/x"}) == ["a"]  # first instance
    ctx, op = request("git.get_repository", {"repo": "o/x"})
    assert eng.decide(ctx, op).fallback


@pytest.mark.parametrize(("rules", "problem"), [
    ([{"pattern": "org:x", "provider": "nope"}], "provider 'nope' is not a configured plugin instance"),
    ([{"name": "mixed", "pattern": "*", "provider": ["a", "docs"]}], "serve different services"),
    ([{"pattern": "*", "provider": "a", "service": "docs"}], "does not match its provider's service"),
])
def test_rule_problems_name_the_rule(rules: list[dict[str, object]], problem: str) -> None:
    cfg = MosaicConfig.model_validate({"orchestration": {
        "plugins": [{"id": "a", "type": "git", "provider": "memory"},
                    {"id": "docs", "type": "docs", "provider": "memory"}],
        "routing": {"rules": rules}}})
    with pytest.raises(ConfigError) as info:
        RoutingEngine(cfg.orchestration.routing, {"a": "git", "docs": "docs"})
    assert problem in info.value.message
    assert "routing.rules[0]" in info.value.message or "'mixed'" in info.value.message


def test_phase_names_and_active_phase_are_validated() -> None:
    with pytest.raises(ValueError, match="activePhase '9' is not a phase"):
        RoutingConfig.model_validate({"phases": [{"phase": 1, "routing": []}], "activePhase": 9})
    with pytest.raises(ValueError, match="defined twice"):
        RoutingConfig.model_validate({"phases": [{"phase": 1}, {"name": "1"}]})
    cfg = RoutingConfig.model_validate({"phases": {"one": {"rules": []}, "two": []}})
    assert [p.name for p in cfg.phases] == ["one", "two"] and cfg.active_phase == "one"
